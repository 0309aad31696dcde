/* log.c - the module's only writer of diagnostics. Never given secrets: callers pass
 * field names and rules, not values of PINs or key material. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

int log_threshold = LOG_LEVEL_WARNING;

static FILE *log_file;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* The file's path and identity as opened: logrotate renames the file (or removes it) and
 * the next line goes to a new file of that name, without a signal to anyone. */
static char log_path[PATH_MAX];
static dev_t log_dev;
static ino_t log_ino;
static bool log_syslog; /* [log] file = syslog: the system log (journald takes it too) */

static const char *const level_names[] = {"error", "warning", "info", "debug"};

int log_level_parse(const char *name, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Opens path as the private log file (0600, never through a link); NULL with why filled. */
static FILE *open_private_log(const char *path, char why[PRIVATE_FILE_WHY_SIZE])
{
    int fd = private_file_open(path, O_WRONLY | O_APPEND | O_CREAT, why);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "a");
    if (!f) {
        snprintf(why, PRIVATE_FILE_WHY_SIZE, "%s: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

/* Remembers what f is, so that a rename of the file under it is seen. Under log_lock. */
static void remember_locked(FILE *f, const char *path)
{
    struct stat st;
    log_path[0] = '\0';
    if (f && path && strlen(path) < sizeof(log_path) && fstat(fileno(f), &st) == 0) {
        snprintf(log_path, sizeof(log_path), "%s", path);
        log_dev = st.st_dev;
        log_ino = st.st_ino;
    }
}

int log_open_file(const char *path, char why[PRIVATE_FILE_WHY_SIZE])
{
    if (path && !strcmp(path, "syslog")) {
        openlog("cmkp11", LOG_PID, LOG_USER);
        pthread_mutex_lock(&log_lock);
        if (log_file) fclose(log_file);
        log_file = NULL;
        log_path[0] = '\0';
        log_syslog = true;
        pthread_mutex_unlock(&log_lock);
        return 0;
    }
    FILE *f = NULL;
    if (path && !(f = open_private_log(path, why))) return -1;
    log_use_stream(f);
    pthread_mutex_lock(&log_lock);
    remember_locked(f, path);
    pthread_mutex_unlock(&log_lock);
    return 0;
}

/* After logrotate moved the file away (or removed it), the file of that name is made
 * anew and used from this line on; if that cannot be done, the old file goes on. One
 * stat per line: the log is written on warnings and events, not on every operation. */
static void follow_rotation_locked(void)
{
    struct stat st;
    if (!log_file || !log_path[0]) return;
    if (stat(log_path, &st) == 0 && st.st_dev == log_dev && st.st_ino == log_ino) return;
    char why[PRIVATE_FILE_WHY_SIZE];
    FILE *f = open_private_log(log_path, why);
    if (!f) return;
    fclose(log_file);
    log_file = f;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", log_path);
    remember_locked(f, path);
}

int log_use_stream(FILE *f)
{
    pthread_mutex_lock(&log_lock);
    if (log_file) fclose(log_file);
    log_file = f;
    log_path[0] = '\0';
    if (log_syslog) closelog();
    log_syslog = false;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void log_close(void)
{
    char why[PRIVATE_FILE_WHY_SIZE];
    log_open_file(NULL, why);
}

void log_write(enum log_level level, const char *fmt, ...)
{
    if ((int)level > log_threshold) return;

    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);

    /* One fprintf per line so lines from threads and processes do not interleave. */
    pthread_mutex_lock(&log_lock);
    if (log_syslog) {
        static const int priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        syslog(priorities[level], "%s: %s", level_names[level], message);
        pthread_mutex_unlock(&log_lock);
        return;
    }
    follow_rotation_locked();
    FILE *out = log_file ? log_file : stderr;
    fprintf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ cmkp11[%d] %s: %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000,
            (int)getpid(), level_names[level], message);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

void log_at_fork(enum fork_phase p) { fork_phase_mutex(&log_lock, p); }
