/* audit_chain.c - see audit_chain.h. */
#include "audit_chain.h"

#include <openssl/evp.h>
#include <string.h>

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static int add_int(EVP_MD_CTX *md, int64_t v)
{
    unsigned char b[8];
    put_be(b, (uint64_t)v, 8);
    return EVP_DigestUpdate(md, b, sizeof(b));
}

static int add_text(EVP_MD_CTX *md, const char *text)
{
    unsigned char head[5] = {text != NULL};
    size_t len = text ? strlen(text) : 0;
    put_be(head + 1, len, 4);
    return EVP_DigestUpdate(md, head, sizeof(head)) && (!len || EVP_DigestUpdate(md, text, len));
}

int audit_chain_hash(OSSL_LIB_CTX *libctx, const unsigned char prev[AUDIT_HASH_LEN], int64_t time,
                     int64_t pid, int64_t uid, const char *action, const char *key_id,
                     const char *detail, unsigned char out[AUDIT_HASH_LEN])
{
    EVP_MD *sha256 = EVP_MD_fetch(libctx, "SHA256", NULL);
    EVP_MD_CTX *md = sha256 ? EVP_MD_CTX_new() : NULL;
    unsigned int len = 0;
    int ok = md && EVP_DigestInit_ex(md, sha256, NULL) &&
             EVP_DigestUpdate(md, prev, AUDIT_HASH_LEN) && add_int(md, time) && add_int(md, pid) &&
             add_int(md, uid) && add_text(md, action) && add_text(md, key_id) &&
             add_text(md, detail) && EVP_DigestFinal_ex(md, out, &len) && len == AUDIT_HASH_LEN;
    EVP_MD_CTX_free(md);
    EVP_MD_free(sha256);
    return ok ? 0 : -1;
}
