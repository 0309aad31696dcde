/* soft_crypt.c - AES on SOFTWARE keys with OpenSSL EVP in the module's own library
 * context. The material comes from soft_key (locked memory) into a cipher context that
 * lives for one call and is freed (and cleansed by OpenSSL) at once. */
#include "soft_crypt.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "cmk.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "log.h"
#include "soft_key.h"

#define AES_BLOCK 16

bool soft_crypt_is_soft(CK_OBJECT_HANDLE handle)
{
    struct cmk_live live;
    return handle_is_cmk(handle) && cmk_cache_get(handle_row(handle), &live) == CKR_OK &&
           live.protection == CMK_PROTECTION_SOFTWARE;
}

static void *dup_bytes(const void *p, size_t n)
{
    void *copy = malloc(n ? n : 1);
    if (copy && n) memcpy(copy, p, n);
    return copy;
}

static CK_RV parse_mechanism(const CK_MECHANISM *mech, struct vendor_op *op)
{
    switch (mech->mechanism) {
    case CKM_AES_GCM: {
        const CK_GCM_PARAMS *gcm = mech->pParameter;
        if (!gcm || mech->ulParameterLen != sizeof(*gcm) || !gcm->pIv || gcm->ulIvLen == 0 ||
            gcm->ulIvLen > 256 || (gcm->ulAADLen && !gcm->pAAD) || gcm->ulTagBits < 32 ||
            gcm->ulTagBits > 128 || gcm->ulTagBits % 8)
            return CKR_MECHANISM_PARAM_INVALID;
        op->iv = dup_bytes(gcm->pIv, gcm->ulIvLen);
        op->iv_len = gcm->ulIvLen;
        op->aad = dup_bytes(gcm->pAAD, gcm->ulAADLen);
        op->aad_len = gcm->ulAADLen;
        op->tag_bits = gcm->ulTagBits;
        return op->iv && op->aad ? CKR_OK : CKR_HOST_MEMORY;
    }
    case CKM_AES_CBC_PAD:
    case CKM_AES_CBC:
        if (!mech->pParameter || mech->ulParameterLen != AES_BLOCK)
            return CKR_MECHANISM_PARAM_INVALID;
        op->iv = dup_bytes(mech->pParameter, AES_BLOCK);
        op->iv_len = AES_BLOCK;
        return op->iv ? CKR_OK : CKR_HOST_MEMORY;
    case CKM_AES_ECB: return mech->ulParameterLen ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
    default: return CKR_MECHANISM_INVALID;
    }
}

CK_RV soft_crypt_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                      bool encrypt)
{
    struct cmk_live live;
    CK_RV rv = cmk_check_use(session, key, handle_version(key),
                             encrypt ? CMK_USE_ENCRYPT : CMK_USE_DECRYPT, &live);
    if (rv != CKR_OK) return rv;
    if (handle_kind(key) != CMK_OBJ_SECRET || live.key_type != CKK_AES)
        return CKR_KEY_TYPE_INCONSISTENT;
    struct vendor_op op = {.kind = encrypt ? VOP_SOFT_ENCRYPT : VOP_SOFT_DECRYPT,
                           .key = key,
                           .mechanism = mech->mechanism,
                           .version = handle_version(key)};
    rv = parse_mechanism(mech, &op);
    if (rv != CKR_OK) {
        free(op.iv);
        free(op.aad);
        if (rv == CKR_MECHANISM_INVALID)
            log_warning("key %s: mechanism 0x%lx is not offered on SOFTWARE keys (AES-GCM, "
                        "AES-CBC-PAD, AES-CBC, AES-ECB and the envelope are)",
                        live.key_id, mech->mechanism);
        else if (rv == CKR_MECHANISM_PARAM_INVALID)
            log_warning("key %s: mechanism 0x%lx: invalid parameter", live.key_id, mech->mechanism);
        return rv;
    }
    return vendor_op_begin(session, &op);
}

static const char *mode_of(CK_MECHANISM_TYPE m)
{
    return m == CKM_AES_GCM ? "GCM" : m == CKM_AES_ECB ? "ECB" : "CBC";
}

/* One whole cipher call into out (room for in_len + one block + tag), *written set.
 * CKR_ENCRYPTED_DATA_INVALID when GCM's tag or CBC-PAD's padding fails. */
static CK_RV evp_run(CK_SESSION_HANDLE session, const struct cmk_live *key, unsigned long version,
                     CK_MECHANISM_TYPE m, bool encrypt, const unsigned char *iv, size_t iv_len,
                     const unsigned char *aad, size_t aad_len, size_t tag_len,
                     const unsigned char *in, size_t in_len, unsigned char *out, size_t *written)
{
    bool gcm = m == CKM_AES_GCM;
    size_t body = gcm && !encrypt ? in_len - tag_len : in_len;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return CKR_HOST_MEMORY;
    CK_RV rv = soft_key_cipher_init(session, key->row, key->key_id, version, ctx, mode_of(m), iv,
                                    iv_len, encrypt);
    int n = 0, fin = 0;
    if (rv != CKR_OK) goto out;
    rv = CKR_FUNCTION_FAILED;
    if (m != CKM_AES_CBC_PAD && EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) goto out;
    if (gcm && aad_len && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) goto out;
    if (gcm && !encrypt &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)tag_len, (void *)(in + body)) != 1)
        goto out;
    n = 0;
    if (body && EVP_CipherUpdate(ctx, out, &n, in, (int)body) != 1) goto out;
    if (EVP_CipherFinal_ex(ctx, out + n, &fin) != 1) {
        rv = encrypt ? CKR_FUNCTION_FAILED : CKR_ENCRYPTED_DATA_INVALID;
        goto out;
    }
    *written = (size_t)n + (size_t)fin;
    if (gcm && encrypt) {
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)tag_len, out + *written) != 1)
            goto out;
        *written += tag_len;
    }
    rv = CKR_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}

/* The exact output length, or an upper bound for CBC-PAD decrypt; or why the input
 * cannot be right. */
static CK_RV output_length(const struct vendor_op *op, bool encrypt, size_t in_len, size_t *need)
{
    size_t tag = op->tag_bits / 8;
    if (in_len > INT_MAX - 2 * AES_BLOCK) /* EVP counts in int */
        return encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
    switch (op->mechanism) {
    case CKM_AES_GCM:
        if (!encrypt && in_len < tag) return CKR_ENCRYPTED_DATA_LEN_RANGE;
        *need = encrypt ? in_len + tag : in_len - tag;
        return CKR_OK;
    case CKM_AES_CBC_PAD:
        if (!encrypt && (in_len == 0 || in_len % AES_BLOCK)) return CKR_ENCRYPTED_DATA_LEN_RANGE;
        *need = encrypt ? (in_len / AES_BLOCK + 1) * AES_BLOCK : in_len;
        return CKR_OK;
    default:
        if (in_len % AES_BLOCK) return encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
        *need = in_len;
        return CKR_OK;
    }
}

CK_RV soft_crypt_run(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                     size_t in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    bool encrypt = op->kind == VOP_SOFT_ENCRYPT;
    if (!in) {
        in = op->buffer;
        in_len = op->buffer_len;
    }
    size_t need = 0;
    CK_RV rv = output_length(op, encrypt, in_len, &need);
    if (rv != CKR_OK) return rv;
    if (!out) {
        *out_len = need;
        return CKR_OK;
    }
    bool exact = encrypt || op->mechanism != CKM_AES_CBC_PAD;
    if (exact && *out_len < need) {
        *out_len = need;
        return CKR_BUFFER_TOO_SMALL;
    }
    /* State, usage and the primary version are asked again: they may have changed
     * since the Init. */
    struct cmk_live key;
    rv = cmk_check_use(session, op->key, op->version, encrypt ? CMK_USE_ENCRYPT : CMK_USE_DECRYPT,
                       &key);
    if (rv != CKR_OK) return rv;
    unsigned long version = op->version ? op->version : key.primary_version;
    size_t cap = in_len + AES_BLOCK + SOFT_TAG_LEN;
    unsigned char *tmp = malloc(cap);
    if (!tmp) return CKR_HOST_MEMORY;
    size_t written = 0;
    rv = evp_run(session, &key, version, op->mechanism, encrypt, op->iv, op->iv_len, op->aad,
                 op->aad_len, op->tag_bits / 8, in, in_len, tmp, &written);
    /* GCM under a rotated key: a tag that fails may be an older version's. */
    for (unsigned long v = version - 1;
         rv == CKR_ENCRYPTED_DATA_INVALID && !op->version && op->mechanism == CKM_AES_GCM && v >= 1;
         v--) {
        rv = evp_run(session, &key, v, op->mechanism, false, op->iv, op->iv_len, op->aad,
                     op->aad_len, op->tag_bits / 8, in, in_len, tmp, &written);
        if (rv == CKR_OK) log_debug("AES-GCM decrypt: key %s: version %lu verified", key.key_id, v);
    }
    if (rv == CKR_ENCRYPTED_DATA_INVALID)
        log_warning("key %s: decrypt failed: %s", key.key_id,
                    op->mechanism == CKM_AES_GCM ? "the GCM tag does not verify"
                                                 : "the padding is invalid");
    if (rv == CKR_OK && *out_len < written) {
        *out_len = written;
        rv = CKR_BUFFER_TOO_SMALL;
    } else if (rv == CKR_OK) {
        memcpy(out, tmp, written);
        *out_len = written;
    }
    OPENSSL_cleanse(tmp, cap);
    free(tmp);
    return rv;
}

CK_RV soft_crypt_gcm(CK_SESSION_HANDLE session, const struct cmk_live *key, unsigned long version,
                     bool encrypt, const unsigned char *iv, size_t iv_len, const unsigned char *aad,
                     size_t aad_len, size_t tag_len, const unsigned char *in, size_t in_len,
                     CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    if ((!encrypt && in_len < tag_len) || in_len > INT_MAX - 2 * AES_BLOCK)
        return encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_INVALID;
    size_t need = encrypt ? in_len + tag_len : in_len - tag_len;
    if (*out_len < need) {
        *out_len = need;
        return CKR_BUFFER_TOO_SMALL;
    }
    size_t cap = in_len + AES_BLOCK + tag_len;
    unsigned char *tmp = malloc(cap);
    if (!tmp) return CKR_HOST_MEMORY;
    size_t written = 0;
    CK_RV rv = evp_run(session, key, version, CKM_AES_GCM, encrypt, iv, iv_len, aad, aad_len,
                       tag_len, in, in_len, tmp, &written);
    if (rv == CKR_OK) {
        memcpy(out, tmp, written);
        *out_len = written;
    }
    OPENSSL_cleanse(tmp, cap);
    free(tmp);
    return rv;
}
