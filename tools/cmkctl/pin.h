/* pin.h - where the user PIN comes from. It is never printed. */
#ifndef CMKCTL_PIN_H
#define CMKCTL_PIN_H

#include <stddef.h>

struct ctl;

/* --pin-file, else --pin (with a warning), else $CMKP11_PIN, else a no-echo prompt when
 * stdin is a terminal. On success *pin is malloc'd; release it with pin_free. Returns 0 or
 * an exit code with ctl->err set. */
int pin_get(struct ctl *ctl, const char *token_label, char **pin, size_t *len);
void pin_free(char *pin, size_t len);

#endif
