/* modlog.h - the module's log lines during one cmkctl run. cmkp11 (and any backend it
 * loads) writes its log to stderr when no [log] file is set; a refused call then put the
 * module's warning before cmkctl's JSON error, so `2> err.json; jq . err.json` failed, and
 * the module's reason for a failure was never in the error's Message. cmkctl gives the
 * module a stderr of its own for the run: on success its lines are passed on, after; on
 * failure the last warning or error becomes part of Message and every line goes into the
 * error object as ModuleLog. cmkctl's own messages (the PIN prompt, its warnings) go to
 * ctl_stderr, the real stderr. */
#ifndef CMKCTL_MODLOG_H
#define CMKCTL_MODLOG_H

#include <json-c/json.h>
#include <stdio.h>

struct ctl;

/* The real stderr for cmkctl's own output (stderr itself until modlog_begin). */
extern FILE *ctl_stderr;

/* Points fd 2 at a private in-memory file; does nothing when that cannot be made. */
void modlog_begin(void);
/* Gives fd 2 back. failed: the run ends in ctl->err, which gains the module's reason;
 * else the lines are copied to stderr. Returns the lines for the error (or NULL). */
json_object *modlog_end(struct ctl *ctl, int failed);

#endif
