/* import_token.h - the import token's bytes: what GetParametersForImport hands out and
 * ImportKeyMaterial reads back. Pure functions: no backend, no store, no log. */
#ifndef CMKP11_IMPORT_TOKEN_H
#define CMKP11_IMPORT_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMPORT_WRAP_ID_LEN 28 /* "CMKW", the key id's 16 bytes, 8 random bytes */
#define IMPORT_TOKEN_BODY_LEN (4 + 1 + 36 + 1 + IMPORT_WRAP_ID_LEN + 1 + 2 + 8)
#define IMPORT_TOKEN_MAC_LEN 32
#define IMPORT_TOKEN_LEN (IMPORT_TOKEN_BODY_LEN + IMPORT_TOKEN_MAC_LEN)

/* Token body: magic, format 1, key id, wrap id length and wrap id, algorithm, modulus
 * bits (big-endian 16), valid-to (big-endian 64); then the HMAC-SHA-256 of all that. */
struct import_token {
    char key_id[37];
    unsigned char wrap_id[IMPORT_WRAP_ID_LEN];
    unsigned long alg, bits;
    int64_t valid_to;
};

/* Writes the body (IMPORT_TOKEN_BODY_LEN bytes); the MAC that follows is written apart. */
void import_token_encode(const struct import_token *f, unsigned char out[IMPORT_TOKEN_LEN]);
/* Reads a token of len bytes (t may be NULL when len is 0): false unless it is exactly
 * IMPORT_TOKEN_LEN bytes of format 1. The MAC is not checked here. */
bool import_token_decode(const unsigned char *t, size_t len, struct import_token *f);

#endif
