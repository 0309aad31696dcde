/* private_file.c - see private_file.h. A folder others can write lets them plant a link
 * or a FIFO where our file goes (a root process would then write through the link, or
 * hang on the FIFO), or a file of their own whose lock they hold; these checks refuse
 * each of those before the file is used. */
#include "private_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int refuse(char *why, int err, const char *fmt, const char *path, unsigned long a,
                  unsigned long b)
{
    snprintf(why, PRIVATE_FILE_WHY_SIZE, fmt, path, a, b);
    errno = err;
    return -1;
}

/* The folder: not writable by others, unless sticky (/tmp: others may add files but not
 * replace ours; the O_NOFOLLOW and owner checks below catch what they add). */
static int check_folder(const char *path, char *why)
{
    char copy[4096];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
        return refuse(why, ENAMETOOLONG, "%s: the path is too long", path, 0, 0);
    const char *dir = dirname(copy);
    struct stat st;
    if (stat(dir, &st) != 0) return 0; /* the open below names the error */
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
        return refuse(why, EPERM,
                      "%s: its folder is writable by every user and not sticky (chmod o-w or "
                      "+t)",
                      dir, 0, 0);
    return 0;
}

static int check_file(int fd, const char *path, char *why)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return refuse(why, errno, "%s: cannot stat it", path, 0, 0);
    if (!S_ISREG(st.st_mode)) return refuse(why, EPERM, "%s: not a regular file", path, 0, 0);
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return refuse(why, EPERM, "%s: owned by uid %lu, not by this user (uid %lu) or root",
                      path, (unsigned long)st.st_uid, (unsigned long)geteuid());
    if (st.st_mode & S_IWOTH)
        return refuse(why, EPERM, "%s: writable by every user (chmod o-w)", path, 0, 0);
    return 0;
}

int private_file_open(const char *path, int flags, char why[PRIVATE_FILE_WHY_SIZE])
{
    why[0] = '\0';
    if (check_folder(path, why) != 0) return -1;
    /* O_NONBLOCK: a FIFO planted here must not hang the open; cleared once it is known
     * to be a regular file. */
    int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
    if (fd < 0) {
        int err = errno;
        if (err == ELOOP) return refuse(why, err, "%s: a symbolic link; refused", path, 0, 0);
        snprintf(why, PRIVATE_FILE_WHY_SIZE, "%s: %s", path, strerror(err));
        errno = err;
        return -1;
    }
    if (check_file(fd, path, why) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}
