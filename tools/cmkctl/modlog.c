/* modlog.c - see modlog.h. */
#define _GNU_SOURCE /* memfd_create */
#include "modlog.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctl.h"

#define MODLOG_MAX (64 * 1024) /* more than any run writes; the rest is cut */
#define MODLOG_LINES 20

FILE *ctl_stderr;
static int saved = -1, capture = -1;

void modlog_begin(void)
{
    ctl_stderr = stderr;
    int cap = memfd_create("cmkctl-module-log", MFD_CLOEXEC);
    int real = cap >= 0 ? dup(STDERR_FILENO) : -1;
    FILE *out = real >= 0 ? fdopen(real, "w") : NULL;
    if (!out || dup2(cap, STDERR_FILENO) < 0) {
        if (out)
            fclose(out);
        else if (real >= 0)
            close(real);
        if (cap >= 0) close(cap);
        return;
    }
    setvbuf(out, NULL, _IONBF, 0);
    ctl_stderr = out;
    saved = real;
    capture = cap;
}

/* The text after "cmkp11[PID] warning: " or "error: " in a module log line, else NULL. */
static const char *reason_of(const char *line)
{
    const char *tag = strstr(line, "] warning: ");
    if (tag) return tag + 11;
    tag = strstr(line, "] error: ");
    return tag ? tag + 9 : NULL;
}

json_object *modlog_end(struct ctl *ctl, int failed)
{
    if (capture < 0) return NULL;
    fflush(stderr);
    char *text = malloc(MODLOG_MAX + 1);
    ssize_t n = text ? pread(capture, text, MODLOG_MAX, 0) : -1;
    dup2(saved, STDERR_FILENO); /* ctl_stderr keeps its own descriptor */
    close(capture);
    capture = -1;
    json_object *lines = NULL;
    if (n > 0 && !(failed && ctl->err.set)) {
        fwrite(text, 1, (size_t)n, ctl_stderr);
    } else if (n > 0) {
        text[n] = '\0';
        lines = json_object_new_array();
        const char *reason = NULL;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            if (json_object_array_length(lines) < MODLOG_LINES)
                json_object_array_add(lines, json_object_new_string(line));
            if (reason_of(line)) reason = reason_of(line);
        }
        size_t used = strlen(ctl->err.message);
        if (reason && used + 12 < sizeof(ctl->err.message))
            snprintf(ctl->err.message + used, sizeof(ctl->err.message) - used, " (module: %s)",
                     reason);
    }
    free(text);
    return lines;
}
