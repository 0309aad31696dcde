/* import_token.c - the import token's bytes, written and read by one pure pair of
 * functions (fuzzed by tests/fuzz/fuzz_import_token.c); its MAC is import_token_mac.c's. */
#include "import_token.h"

#include <string.h>

#define TOKEN_MAGIC "CMKT"

void import_token_encode(const struct import_token *f, unsigned char out[IMPORT_TOKEN_LEN])
{
    unsigned char *p = out;
    memcpy(p, TOKEN_MAGIC, 4), p += 4;
    *p++ = 1;
    memcpy(p, f->key_id, 36), p += 36;
    *p++ = IMPORT_WRAP_ID_LEN;
    memcpy(p, f->wrap_id, IMPORT_WRAP_ID_LEN), p += IMPORT_WRAP_ID_LEN;
    *p++ = (unsigned char)f->alg;
    *p++ = (unsigned char)(f->bits >> 8);
    *p++ = (unsigned char)f->bits;
    for (int i = 7; i >= 0; i--)
        *p++ = (unsigned char)((uint64_t)f->valid_to >> (8 * i));
}

bool import_token_decode(const unsigned char *t, size_t len, struct import_token *f)
{
    if (len != IMPORT_TOKEN_LEN || memcmp(t, TOKEN_MAGIC, 4) || t[4] != 1 ||
        t[41] != IMPORT_WRAP_ID_LEN)
        return false;
    memcpy(f->key_id, t + 5, 36);
    f->key_id[36] = '\0';
    memcpy(f->wrap_id, t + 42, IMPORT_WRAP_ID_LEN);
    const unsigned char *p = t + 42 + IMPORT_WRAP_ID_LEN;
    f->alg = p[0];
    f->bits = (unsigned long)p[1] << 8 | p[2];
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[3 + i];
    f->valid_to = (int64_t)v;
    return true;
}
