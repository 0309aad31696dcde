/* input.h - the bytes a command takes from --NAME (base64) or --NAME-file (raw). */
#ifndef CMKCTL_INPUT_H
#define CMKCTL_INPUT_H

#include <stddef.h>

struct ctl;

/* Exactly one of --NAME BASE64 and --NAME-file FILE must be given; --NAME also takes the
 * AWS CLI's fileb://PATH (raw bytes) and file://PATH (a file of base64). A file is read up to max
 * bytes and refused at once when it holds more (a /dev/zero never fills memory), as is
 * base64 that decodes to more. The caller frees *data. */
int input_bytes(struct ctl *ctl, const char *name, size_t max, unsigned char **data, size_t *len);

#endif
