/* progress.c - see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "modlog.h"

static int shown; /* a line is on the terminal, to be cleared before any output */

static int on_terminal(void) { return ctl_stderr && isatty(fileno(ctl_stderr)); }

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void progress_step(const char *what, size_t done, size_t total)
{
    static long long shown_ms;
    if (!on_terminal()) return;
    long long t = now_ms();
    if (done < total && t - shown_ms < 100) return;
    shown_ms = t;
    fprintf(ctl_stderr, "\r\033[K%s: %zu/%zu", what, done, total);
    shown = 1;
    if (done >= total) progress_clear();
    fflush(ctl_stderr);
}

void progress_note(const char *what, const char *text)
{
    if (!on_terminal()) return;
    fprintf(ctl_stderr, "\r\033[K%s: %s", what, text);
    shown = 1;
    fflush(ctl_stderr);
}

void progress_clear(void)
{
    if (!shown) return;
    fprintf(ctl_stderr, "\r\033[K");
    fflush(ctl_stderr);
    shown = 0;
}
