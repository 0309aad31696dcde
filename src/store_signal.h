/* store_signal.h - a change counter in shared memory, raised after every commit to the
 * store by any cmkp11 process; read without a system call. See store_signal.c. */
#ifndef CMKP11_STORE_SIGNAL_H
#define CMKP11_STORE_SIGNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct store_signal;

/* Maps "<store_path>-signal" (made 0600 when absent); NULL when that is impossible,
 * and then callers fall back to asking the store. */
struct store_signal *store_signal_open(const char *store_path);
void store_signal_close(struct store_signal *sig);
uint64_t store_signal_read(const struct store_signal *sig);
/* After a commit. NULL is allowed (no signal file). */
void store_signal_raise(struct store_signal *sig);
/* Was the store file st fully checked by some process, with no commit since? */
bool store_signal_verified(const struct store_signal *sig, const struct stat *st);
/* Records a full check of the file st, made when the counter was counter. */
void store_signal_mark_verified(struct store_signal *sig, uint64_t counter, const struct stat *st);

#endif
