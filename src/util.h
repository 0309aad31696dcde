/* util.h - small things with no better home: ids, clock, process identity. */
#ifndef CMKP11_UTIL_H
#define CMKP11_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A random (v4) UUID as 36 lower-case characters + NUL; bytes gets its 16 bytes. */
int util_uuid4(char out[37], unsigned char bytes[16]);
/* Parses the 36-character form back into 16 bytes. */
int util_uuid_bytes(const char *text, unsigned char bytes[16]);
/* Seconds since the epoch. Test builds honour CMKP11_TEST_NOW (seconds) to move time. */
int64_t util_now(void);
/* The start time of a process in clock ticks since boot, 0 when it does not exist:
 * with the pid it names one process even after pids are reused. */
int64_t util_process_start(pid_t pid);
/* Is the process that recorded (pid, start) still running? Unsure counts as alive. */
bool util_process_alive(long pid, int64_t start);
/* What /proc/locks says of the flock held on the file open as fd. */
enum util_flock_holder {
    UTIL_HOLDER_UNKNOWN, /* /proc/locks cannot be read */
    UTIL_HOLDER_UNSEEN,  /* no holder listed: it has just let go, or its line was missed */
    UTIL_HOLDER_RUNNING,
    UTIL_HOLDER_STOPPED, /* SIGSTOP, Ctrl-Z, a debugger; named first among shared holders */
};
/* *pid is the holder's when one is listed, else 0. */
enum util_flock_holder util_flock_holder(int fd, long *pid);
/* Fault injection: in test builds, kills the process with SIGKILL when
 * CMKP11_TEST_CRASH_AT names this point. Compiled to nothing otherwise. */
/* Interleaving control: in test builds, when CMKP11_TEST_PAUSE_AT names this point and
 * CMKP11_TEST_PAUSE_DIR a folder, the first thread (of any process) to reach it creates
 * DIR/NAME.reached and waits (at most 60 s) until DIR/NAME.go exists, so a test can hold
 * one caller inside a window while another thread or process acts. Later arrivals pass.
 * Compiled to nothing otherwise. */
#ifdef CMKP11_TESTING
void util_crash_point(const char *name);
void util_pause_point(const char *name);
#else
static inline void util_crash_point(const char *name) { (void)name; }
static inline void util_pause_point(const char *name) { (void)name; }
#endif

#endif
