/* log.h - one line per event, to stderr or a file, filtered by level. */
#ifndef CMKP11_LOG_H
#define CMKP11_LOG_H

#include <stdio.h>

#include "fork_phase.h"
#include "private_file.h"

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* The current threshold; read without a lock on hot paths (a torn read is harmless). */
extern int log_threshold;

int log_level_parse(const char *name, enum log_level *out);
/* Logs to path from now on (NULL: stderr only; "syslog": the system log, which journald
 * also takes); -1 with why filled when the file cannot be opened as a private file
 * (private_file.h). A file renamed or removed under the log (logrotate) is followed: the
 * next line makes the file of that name anew. */
int log_open_file(const char *path, char why[PRIVATE_FILE_WHY_SIZE]);
/* Logs to f from now on (the log closes it later): for harnesses that log to /dev/null,
 * which log_open_file refuses as no private file. */
int log_use_stream(FILE *f);
void log_close(void);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_write(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_threshold >= LOG_LEVEL_INFO) log_write(LOG_LEVEL_INFO, __VA_ARGS__);               \
    } while (0)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_threshold >= LOG_LEVEL_DEBUG) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__);             \
    } while (0)

/* fork_phase.h: the log's lock across fork(). */
void log_at_fork(enum fork_phase p);

#endif
