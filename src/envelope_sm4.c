/* envelope_sm4.c - SM4-CTR then HMAC-SM3 for the SM4 envelope (see envelope_sm4.h), in
 * the module's own OpenSSL library context. Derived keys live on the stack for one call
 * and are cleansed before it returns. */
#include "envelope_sm4.h"

#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "envelope_format.h"
#include "cmkp11/cmkp11.h"
#include "pubkey.h"
#include "sm_backend_map.h"
#include "soft_crypt.h"

#define SM4_KEY 16
#define DERIVED (SM4_KEY + ENVELOPE_MAC_LEN)

static CK_RV derive_keys(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material,
                         const struct cmk_live *key, unsigned long version,
                         unsigned char keys[DERIVED])
{
    static const char label[] = "CMKP11-ENV-SM4"; /* 14 bytes, then 0x00, then i */
    unsigned char blocks[DERIVED];
    for (size_t i = 0; i < DERIVED / 16; i++) {
        memcpy(blocks + 16 * i, label, 14);
        blocks[16 * i + 14] = 0;
        blocks[16 * i + 15] = (unsigned char)(i + 1);
    }
    if (key->protection == CMK_PROTECTION_HSM)
        return sm_map_sm4_ecb(session, material, blocks, DERIVED, keys);
    return soft_crypt_sm4_ecb(session, key, version, blocks, DERIVED, keys);
}

static CK_RV ctr(const unsigned char enc_key[SM4_KEY], const unsigned char *nonce,
                 const unsigned char *in, size_t len, unsigned char *out)
{
    unsigned char cb[16] = {0};
    memcpy(cb, nonce, ENVELOPE_IV_LEN);
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(pubkey_libctx(), "SM4-CTR", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    CK_RV rv = CKR_FUNCTION_FAILED;
    int n = 0, fin = 0;
    if (!cipher || !ctx || EVP_EncryptInit_ex2(ctx, cipher, enc_key, cb, NULL) != 1) goto out;
    if (len && EVP_EncryptUpdate(ctx, out, &n, in, (int)len) != 1) goto out;
    if (EVP_EncryptFinal_ex(ctx, out + n, &fin) != 1) goto out;
    rv = CKR_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    return rv;
}

static CK_RV mac(const unsigned char mac_key[ENVELOPE_MAC_LEN], const unsigned char *header,
                 const unsigned char *aad, size_t aad_len, const unsigned char *ct, size_t ct_len,
                 unsigned char tag[ENVELOPE_MAC_LEN])
{
    unsigned char aad_len_be[8];
    for (int i = 0; i < 8; i++)
        aad_len_be[i] = (unsigned char)((unsigned long long)aad_len >> (56 - 8 * i));
    char digest[] = "SM3";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_END};
    EVP_MAC *hmac = EVP_MAC_fetch(pubkey_libctx(), "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    size_t out_len = 0;
    CK_RV rv = CKR_FUNCTION_FAILED;
    if (!ctx || EVP_MAC_init(ctx, mac_key, ENVELOPE_MAC_LEN, params) != 1 ||
        EVP_MAC_update(ctx, header, ENVELOPE_HEADER_LEN) != 1 ||
        EVP_MAC_update(ctx, aad_len_be, sizeof(aad_len_be)) != 1 ||
        (aad_len && EVP_MAC_update(ctx, aad, aad_len) != 1) ||
        (ct_len && EVP_MAC_update(ctx, ct, ct_len) != 1) ||
        EVP_MAC_final(ctx, tag, &out_len, ENVELOPE_MAC_LEN) != 1 || out_len != ENVELOPE_MAC_LEN)
        goto out;
    rv = CKR_OK;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    return rv;
}

CK_RV envelope_sm4_run(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material,
                       const struct cmk_live *key, unsigned long version, bool encrypt, const unsigned char *header, const unsigned char *aad,
                       size_t aad_len, const unsigned char *in, size_t in_len, unsigned char *out)
{
    if (!encrypt && in_len < ENVELOPE_MAC_LEN) return CKR_ENCRYPTED_DATA_INVALID;
    size_t body = encrypt ? in_len : in_len - ENVELOPE_MAC_LEN;
    if (body > INT_MAX - 32) return encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
    unsigned char keys[DERIVED], tag[ENVELOPE_MAC_LEN];
    const unsigned char *nonce = header + ENVELOPE_HEADER_LEN - ENVELOPE_IV_LEN;
    CK_RV rv = derive_keys(session, material, key, version, keys);
    if (rv != CKR_OK) goto out;
    if (encrypt) {
        rv = ctr(keys, nonce, in, body, out);
        if (rv == CKR_OK) rv = mac(keys + SM4_KEY, header, aad, aad_len, out, body, out + body);
        goto out;
    }
    rv = mac(keys + SM4_KEY, header, aad, aad_len, in, body, tag);
    if (rv == CKR_OK && CRYPTO_memcmp(tag, in + body, ENVELOPE_MAC_LEN) != 0)
        rv = CKR_ENCRYPTED_DATA_INVALID;
    if (rv == CKR_OK) rv = ctr(keys, nonce, in, body, out);
out:
    OPENSSL_cleanse(keys, sizeof(keys));
    return rv;
}
