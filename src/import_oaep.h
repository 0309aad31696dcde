/* import_oaep.h - RSAES-OAEP decoding with SHA-256 and MGF1-SHA-256 (empty label) in the
 * module, for backends whose C_UnwrapKey does OAEP with SHA-1 only, and the locked memory
 * the decoded secret lives in for the moment it takes to hand it to the backend. */
#ifndef CMKP11_IMPORT_OAEP_H
#define CMKP11_IMPORT_OAEP_H

#include <stddef.h>

/* Memory that is locked (never swapped) and kept out of core dumps; NULL when that is
 * impossible. import_secret_free wipes it before unmapping. */
void *import_secret_alloc(size_t len);
void import_secret_free(void *p, size_t len);

/* Decodes em (the k-byte output of the raw RSA private operation) as EME-OAEP with SHA-256,
 * MGF1-SHA-256 and an empty label (RFC 8017, 7.1.2 step 3). The checks do not branch on
 * the content of em, and every bad encoding gives the same answer: -1. On success the
 * message is in out (cap bytes at most; a longer message is a failure too), its length in
 * *out_len, and 0 is returned. work is scratch of at least 2 * k bytes, wiped before the
 * return; pass locked memory, it holds the message in clear. */
int import_oaep_sha256_decode(const unsigned char *em, size_t k, unsigned char *work,
                              unsigned char *out, size_t cap, size_t *out_len);

#endif
