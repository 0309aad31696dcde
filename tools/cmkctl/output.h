/* output.h - responses as JSON (json-c) or as tables for people, and errors. */
#ifndef CMKCTL_OUTPUT_H
#define CMKCTL_OUTPUT_H

#include <json-c/json.h>
#include <stdint.h>

struct ctl;

/* A fresh random UUID v4 (RequestId). */
void out_uuid4(char out[37]);

/* "2024-05-01T10:00:00Z"; seconds since the epoch, UTC. */
void out_rfc3339(int64_t t, char out[32]);
json_object *out_time(int64_t t);

/* Adds RequestId, prints resp on stdout in the chosen format, releases it; returns rc so a
 * command can end with `return out_emit(ctl, resp, 0);`. */
int out_emit(struct ctl *ctl, json_object *resp, int rc);
/* Prints ctl->err on stderr: JSON, or one line in table mode. */
void out_error(struct ctl *ctl);

/* Seconds since the epoch. cmkp11's test builds follow CMKP11_TEST_NOW (seconds), so
 * cmkctl does too: its idea of "now" must agree with the module's. */
long long out_now(void);
/* Unix seconds, or RFC 3339 "YYYY-MM-DDTHH:MM:SS[Z]" / "YYYY-MM-DD" in UTC; -1 if neither. */
int out_parse_time(const char *text, long long *out);

/* json_object_object_add for a string that may be NULL (then nothing is added). */
void out_add_str(json_object *o, const char *key, const char *value);

#endif
