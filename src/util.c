/* util.c - ids, clock and process identity. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

int util_uuid4(char out[37], unsigned char bytes[16])
{
    uuid_t b;
    uuid_generate_random(b); /* libuuid: getrandom, version 4, RFC 4122 variant */
    uuid_unparse_lower(b, out);
    if (bytes) memcpy(bytes, b, 16);
    return 0;
}

int util_uuid_bytes(const char *text, unsigned char bytes[16])
{
    uuid_t b;
    if (uuid_parse(text, b) != 0) {
        memset(bytes, 0, 16);
        return -1;
    }
    memcpy(bytes, b, 16);
    return 0;
}

int64_t util_now(void)
{
#ifdef CMKP11_TESTING
    const char *fake = getenv("CMKP11_TEST_NOW");
    if (fake && *fake) return strtoll(fake, NULL, 10);
#endif
    return (int64_t)time(NULL);
}

int64_t util_process_start(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: count fields after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    int field = 2;
    for (p++; *p && field < 22; p++)
        if (*p == ' ') field++;
    return field == 22 ? strtoll(p, NULL, 10) : 0;
}

/* Another process's work (a CreateKey, a rotation, an import) is undone only when that
 * process is surely gone. Its start time rules out a reused pid. Where /proc hides it
 * (mounted with hidepid=1/2, and the process is another user's), kill(pid, 0) still says
 * whether the pid exists: EPERM means it does. Then it counts as alive: recovery waits
 * rather than undo a live process's work (a reused pid only delays it). */
bool util_process_alive(long pid, int64_t start)
{
    if (pid <= 0) return false;
    int64_t now = util_process_start((pid_t)pid);
    if (now) return now == start;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* /proc/locks lines read "N: FLOCK ADVISORY WRITE pid MAJ:MIN:INODE start end", the
 * device in hex; a line that waits for the lock starts "N: -> ". */
/* 'T' (stopped: SIGSTOP, Ctrl-Z) or 't' (stopped by a debugger), from /proc/PID/stat. */
static bool process_stopped(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    return p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
}

/* A holder can be unseen (UTIL_HOLDER_UNSEEN) though the lock is busy: it let go between
 * our try and this look, or, on a system with more locks than fit one page of
 * /proc/locks, the lines moved between two page reads. */
enum util_flock_holder util_flock_holder(int fd, long *pid)
{
    *pid = 0;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return UTIL_HOLDER_UNKNOWN;
    char want[64];
    snprintf(want, sizeof(want), "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev),
             (unsigned long)st.st_ino);
    FILE *f = fopen("/proc/locks", "re");
    if (!f) return UTIL_HOLDER_UNKNOWN;
    char line[256];
    enum util_flock_holder seen = UTIL_HOLDER_UNSEEN;
    /* Shared holders are several lines: a stopped one is the one to name. */
    while (seen != UTIL_HOLDER_STOPPED && fgets(line, sizeof(line), f)) {
        char kind[16], mode[16], access[16], dev[64];
        long holder;
        if (strstr(line, "->")) continue;
        if (sscanf(line, "%*d: %15s %15s %15s %ld %63s", kind, mode, access, &holder, dev) == 5 &&
            strcmp(kind, "FLOCK") == 0 && strcmp(dev, want) == 0) {
            *pid = holder;
            seen = process_stopped(holder) ? UTIL_HOLDER_STOPPED : UTIL_HOLDER_RUNNING;
        }
    }
    fclose(f);
    return seen;
}

#ifdef CMKP11_TESTING
void util_crash_point(const char *name)
{
    const char *at = getenv("CMKP11_TEST_CRASH_AT");
    if (at && strcmp(at, name) == 0) raise(SIGKILL);
}
#endif

#ifdef CMKP11_TESTING
/* O_EXCL makes exactly one arrival the one that waits: the file is the claim, across
 * threads and processes alike. */
void util_pause_point(const char *name)
{
    const char *at = getenv("CMKP11_TEST_PAUSE_AT");
    const char *dir = getenv("CMKP11_TEST_PAUSE_DIR");
    if (!at || !dir || strcmp(at, name) != 0) return;
    char reached[4096], go[4096];
    snprintf(reached, sizeof(reached), "%s/%s.reached", dir, name);
    snprintf(go, sizeof(go), "%s/%s.go", dir, name);
    int fd = open(reached, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    close(fd);
    for (int waited_ms = 0; waited_ms < 60000 && access(go, F_OK) != 0; waited_ms++) {
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
}
#endif
