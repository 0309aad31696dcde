/* progress.h - how far a long command is (rotate-due and purge-due over many keys, doctor
 * over a large store), shown on a terminal and never in scripts: only when cmkctl's stderr
 * is a terminal, on one line rewritten in place, at most ten times a second. */
#ifndef CMKCTL_PROGRESS_H
#define CMKCTL_PROGRESS_H

#include <stddef.h>

/* "WHAT: done/total" (the last one always shown, then the line is cleared). */
void progress_step(const char *what, size_t done, size_t total);
/* A phase with no count ("logging in: cmkp11 rotates the due keys now"). */
void progress_note(const char *what, const char *text);
/* Clears the line if one is shown (cmkctl's output then starts on a clean line). */
void progress_clear(void);

#endif
