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
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

int log_threshold = LOG_LEVEL_WARNING;

static FILE *log_file;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

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

int log_open_file(const char *path, char why[PRIVATE_FILE_WHY_SIZE])
{
    FILE *f = NULL;
    if (path) {
        /* 0600, never through a link: the log names keys, aliases and users. */
        int fd = private_file_open(path, O_WRONLY | O_APPEND | O_CREAT, why);
        if (fd < 0) return -1;
        f = fdopen(fd, "a");
        if (!f) {
            snprintf(why, PRIVATE_FILE_WHY_SIZE, "%s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return log_use_stream(f);
}

int log_use_stream(FILE *f)
{
    pthread_mutex_lock(&log_lock);
    if (log_file) fclose(log_file);
    log_file = f;
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
    FILE *out = log_file ? log_file : stderr;
    fprintf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ cmkp11[%d] %s: %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000,
            (int)getpid(), level_names[level], message);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

void log_at_fork(enum fork_phase p) { fork_phase_mutex(&log_lock, p); }
