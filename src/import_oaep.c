/* import_oaep.c - EME-OAEP decoding (SHA-256, MGF1-SHA-256, empty label) and locked memory
 * for the secret it yields.
 *
 * Decoding must not tell an attacker which check failed, nor where, or the backend's raw
 * RSA becomes a decryption oracle (Manger's attack): every check below is computed on all
 * bytes with masks, folded into one flag, and tested once at the end.
 *
 * Why not OpenSSL's: its EVP decryption with OAEP needs the RSA private key, which stays in
 * the HSM (the backend gives only the raw RSA result here); the one API that checks a raw
 * OAEP block, RSA_padding_check_PKCS1_OAEP_mgf1, is deprecated since OpenSSL 3.0 and is on
 * its way out. Ours is small and constant-time, and tests/fuzz/fuzz_import_oaep holds it to
 * that deprecated check as the reference: both accept exactly the same blocks. */
#include "import_oaep.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>
#include <sys/mman.h>

#include "pubkey.h"

#define HLEN SHA256_DIGEST_LENGTH

void *import_secret_alloc(size_t len)
{
    void *p =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (mlock(p, len) != 0 || madvise(p, len, MADV_DONTDUMP) != 0) {
        munmap(p, len);
        return NULL;
    }
    return p;
}

void import_secret_free(void *p, size_t len)
{
    if (!p) return;
    OPENSSL_cleanse(p, len);
    munlock(p, len);
    munmap(p, len);
}

/* All ones when a == b, else zero; no branch. */
static unsigned ct_eq(unsigned a, unsigned b)
{
    unsigned x = a ^ b;
    return (unsigned)((((unsigned long long)x) - 1) >> 63) * 0xFFFFFFFFu;
}

static unsigned ct_select(unsigned mask, unsigned a, unsigned b)
{
    return (mask & a) | (~mask & b);
}

/* out ^= MGF1-SHA-256(seed, len); scratch holds seed || counter (seed_len + 4 bytes). */
static void mgf1_xor(unsigned char *out, size_t len, const unsigned char *seed, size_t seed_len,
                     unsigned char *scratch)
{
    unsigned char mask[HLEN];
    memcpy(scratch, seed, seed_len);
    for (size_t done = 0, counter = 0; done < len; counter++) {
        scratch[seed_len] = (unsigned char)(counter >> 24);
        scratch[seed_len + 1] = (unsigned char)(counter >> 16);
        scratch[seed_len + 2] = (unsigned char)(counter >> 8);
        scratch[seed_len + 3] = (unsigned char)counter;
        /* The module's own library context: never a provider the host application loaded. */
        if (!EVP_Q_digest(pubkey_libctx(), "SHA256", NULL, scratch, seed_len + 4, mask, NULL))
            memset(mask, 0xff, sizeof(mask)); /* a wrong mask: the label hash check fails */
        for (size_t i = 0; i < HLEN && done < len; i++, done++)
            out[done] ^= mask[i];
    }
    OPENSSL_cleanse(mask, sizeof(mask));
}

int import_oaep_sha256_decode(const unsigned char *em, size_t k, unsigned char *work,
                              unsigned char *out, size_t cap, size_t *out_len)
{
    static const unsigned char empty_label_hash[HLEN] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    /* The sizes are public (the modulus length), so these checks may branch. */
    if (k < 2 * HLEN + 2 || k > 1024) return -1;
    size_t db_len = k - HLEN - 1;
    unsigned char *seed = work, *db = work + HLEN, *scratch = work + k;
    memcpy(seed, em + 1, HLEN);
    memcpy(db, em + 1 + HLEN, db_len);
    mgf1_xor(seed, HLEN, db, db_len, scratch); /* maskedDB -> seedMask -> seed */
    mgf1_xor(db, db_len, seed, HLEN, scratch); /* seed -> dbMask -> DB */

    unsigned good = ct_eq(em[0], 0);
    unsigned diff = 0;
    for (size_t i = 0; i < HLEN; i++)
        diff |= db[i] ^ empty_label_hash[i];
    good &= ct_eq(diff, 0);
    /* DB = lHash || PS (zero bytes) || 0x01 || M: find the 0x01, every byte before it 0. */
    unsigned found = 0, index = 0;
    for (size_t i = HLEN; i < db_len; i++) {
        unsigned is_one = ct_eq(db[i], 1), is_zero = ct_eq(db[i], 0);
        index = ct_select(~found & is_one, (unsigned)i, index);
        found |= is_one;
        good &= found | is_zero;
    }
    good &= found;
    size_t msg_len = db_len - index - 1;
    good &= 0u - (unsigned)(msg_len <= cap);
    if (good) {
        memcpy(out, db + index + 1, msg_len);
        *out_len = msg_len;
    }
    OPENSSL_cleanse(work, 2 * k);
    return good ? 0 : -1;
}
