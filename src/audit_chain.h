/* audit_chain.h - the audit rows as a hash chain: each row carries the hash of the row
 * before it and its own, so a row edited or deleted from the middle of the audit, or rows
 * put in out of order, no longer chain (cmkctl doctor walks it). Shared by the module,
 * which writes the rows, and cmkctl, which checks them: one encoding in one place.
 * The chain's head is not yet anchored outside the store (the HSM), so rows removed from
 * the end, or a whole audit rewritten with hashes recomputed, are not seen from the chain
 * alone. */
#ifndef CMKP11_AUDIT_CHAIN_H
#define CMKP11_AUDIT_CHAIN_H

#include <openssl/types.h>
#include <stdint.h>

#define AUDIT_HASH_LEN 32

/* SHA-256, fetched from libctx (the module passes its own library context, never the
 * default one a host may have given a PKCS#11 provider; cmkctl passes NULL), over prev (32 zero
 * bytes before the first row) || time || pid || uid (8 bytes each, big-endian) || action, key id
 * and detail (each a presence byte, a 4-byte big-endian length and its bytes; NULL is absent). 0,
 * or -1 when the digest cannot be made. */
int audit_chain_hash(OSSL_LIB_CTX *libctx, const unsigned char prev[AUDIT_HASH_LEN], int64_t time,
                     int64_t pid, int64_t uid, const char *action, const char *key_id,
                     const char *detail, unsigned char out[AUDIT_HASH_LEN]);

#endif
