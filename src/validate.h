/* validate.h - the CreateKey field rules shared by every cloud the users know.
 * Pure functions: no store, no backend. Each refusal fills why[] with the rule. */
#ifndef CMKP11_VALIDATE_H
#define CMKP11_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmk_record.h"

#define VALIDATE_WHY_SIZE 160

#define ROTATION_MIN_SECONDS (7LL * 86400)
#define ROTATION_MAX_SECONDS (2560LL * 86400)
#define ROTATION_DEFAULT_SECONDS (365LL * 86400)
#define PENDING_WINDOW_MIN_DAYS 7UL
#define PENDING_WINDOW_MAX_DAYS 1096UL
#define DESCRIPTION_MAX_CHARS 8192
#define TAGS_MAX 50

/* Checks an alias as a template gives it (any length, NULL with a length, NUL bytes:
 * each refused with its reason) and writes its canonical form (the "alias/" prefix
 * stripped) to out, which needs 256 bytes. Returns 0 or -1 with why filled. */
int validate_alias(const char *alias, size_t len, char *out, char why[VALIDATE_WHY_SIZE]);
int validate_description(const char *text, size_t len, char why[VALIDATE_WHY_SIZE]);
/* Parses "<n>d", "<n>h", "<n>m", "<n>s" or "<n>" (days) into seconds and checks the range. */
int validate_rotation_period(const char *text, size_t len, int64_t *seconds,
                             char why[VALIDATE_WHY_SIZE]);
int validate_rotation_seconds(int64_t seconds, char why[VALIDATE_WHY_SIZE]);
int validate_pending_window(unsigned long days, char why[VALIDATE_WHY_SIZE]);
/* Parses the CKA_CMK_TAGS text ("k=v" lines) into a sorted, checked array. */
int validate_tags(const char *text, size_t len, struct cmk_tag **tags, size_t *count,
                  char why[VALIDATE_WHY_SIZE]);
/* Formats tags back into CKA_CMK_TAGS text; returns the byte length (without NUL). */
size_t tags_format(const struct cmk_tag *tags, size_t count, char *out, size_t size);
/* Counts UTF-8 characters; returns -1 for malformed UTF-8. */
long utf8_length(const char *text, size_t len);

#endif
