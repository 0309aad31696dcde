/* soft_crypt.c - AES and SM4 on SOFTWARE keys with OpenSSL EVP in the module's own
 * library context. The material comes from soft_key (locked memory) into a cipher context
 * that lives for one call and is freed (and cleansed by OpenSSL) at once. */
#include "soft_crypt.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "cmk.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "keyspec.h"
#include "log.h"
#include "soft_key.h"

#define BLOCK 16 /* AES and SM4 alike */

enum soft_param { PARAM_NONE, PARAM_IV, PARAM_GCM, PARAM_CTR };

/* What each mechanism on a SOFTWARE key is: its key type, soft_key's mode name, its
 * parameter, and whether PKCS#7 padding applies. */
struct soft_mech {
    CK_MECHANISM_TYPE type;
    CK_KEY_TYPE key_type;
    const char *mode;
    enum soft_param param;
    bool pad;
};

static const struct soft_mech soft_mechs[] = {
    {CKM_AES_GCM, CKK_AES, "GCM", PARAM_GCM, false},
    {CKM_AES_CBC_PAD, CKK_AES, "CBC", PARAM_IV, true},
    {CKM_AES_CBC, CKK_AES, "CBC", PARAM_IV, false},
    {CKM_AES_ECB, CKK_AES, "ECB", PARAM_NONE, false},
    {CKM_AES_CTR, CKK_AES, "CTR", PARAM_CTR, false},
    {CKM_CMK_SM4_ECB, CKK_CMK_SM4, "SM4-ECB", PARAM_NONE, false},
    {CKM_CMK_SM4_CBC, CKK_CMK_SM4, "SM4-CBC", PARAM_IV, false},
    {CKM_CMK_SM4_CBC_PAD, CKK_CMK_SM4, "SM4-CBC", PARAM_IV, true},
    {CKM_CMK_SM4_CTR, CKK_CMK_SM4, "SM4-CTR", PARAM_CTR, false},
};

static const struct soft_mech *soft_mech_of(CK_MECHANISM_TYPE type)
{
    for (size_t i = 0; i < sizeof(soft_mechs) / sizeof(soft_mechs[0]); i++)
        if (soft_mechs[i].type == type) return &soft_mechs[i];
    return NULL;
}

static void *dup_bytes(const void *p, size_t n)
{
    void *copy = malloc(n ? n : 1);
    if (copy && n) memcpy(copy, p, n);
    return copy;
}

/* Copies the mechanism's parameter into op; *why names the rule it breaks. */
static CK_RV parse_param(const CK_MECHANISM *mech, const struct soft_mech *m, struct vendor_op *op,
                         const char **why)
{
    switch (m->param) {
    case PARAM_GCM: {
        const CK_GCM_PARAMS *gcm = mech->pParameter;
        *why = "CK_GCM_PARAMS with a 1..256-byte IV and 32..128 tag bits in whole bytes";
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
    case PARAM_IV:
        *why = "a 16-byte IV";
        if (!mech->pParameter || mech->ulParameterLen != BLOCK) return CKR_MECHANISM_PARAM_INVALID;
        op->iv = dup_bytes(mech->pParameter, BLOCK);
        op->iv_len = BLOCK;
        return op->iv ? CKR_OK : CKR_HOST_MEMORY;
    case PARAM_CTR: {
        const CK_AES_CTR_PARAMS *ctr = mech->pParameter;
        *why = "CK_AES_CTR_PARAMS with ulCounterBits 1..128";
        if (!ctr || mech->ulParameterLen != sizeof(*ctr) || ctr->ulCounterBits == 0 ||
            ctr->ulCounterBits > 128)
            return CKR_MECHANISM_PARAM_INVALID;
        op->iv = dup_bytes(ctr->cb, BLOCK);
        op->iv_len = BLOCK;
        op->counter_bits = ctr->ulCounterBits;
        return op->iv ? CKR_OK : CKR_HOST_MEMORY;
    }
    default:
        *why = "absent (ECB takes none)";
        return mech->ulParameterLen ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
    }
}

CK_RV soft_crypt_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                      const struct cmk_live *live, bool encrypt)
{
    CK_RV rv;
    if (handle_kind(key) != CMK_OBJ_SECRET || !keyspec_is_cipher_key(live->key_type)) {
        log_warning("key %s: encrypt and decrypt need an AES or SM4 secret key", live->key_id);
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    const struct soft_mech *m = soft_mech_of(mech->mechanism);
    if (!m) {
        log_warning("key %s: mechanism 0x%lx is not offered on SOFTWARE keys (AES: GCM, "
                    "CBC-PAD, CBC, ECB, CTR; SM4: ECB, CBC, CBC-PAD, CTR; the envelope)",
                    live->key_id, mech->mechanism);
        return CKR_MECHANISM_INVALID;
    }
    if (m->key_type != live->key_type) {
        log_warning("key %s: mechanism 0x%lx is for %s keys; this key is %s", live->key_id,
                    mech->mechanism, m->key_type == CKK_AES ? "AES" : "SM4",
                    live->key_type == CKK_AES ? "AES" : "SM4");
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    struct vendor_op op = {.kind = encrypt ? VOP_SOFT_ENCRYPT : VOP_SOFT_DECRYPT,
                           .key = key,
                           .mechanism = mech->mechanism,
                           .version = handle_version(key)};
    const char *why = "";
    rv = parse_param(mech, m, &op, &why);
    if (rv != CKR_OK) {
        free(op.iv);
        free(op.aad);
        if (rv == CKR_MECHANISM_PARAM_INVALID)
            log_warning("key %s: mechanism 0x%lx: the parameter must be %s", live->key_id,
                        mech->mechanism, why);
        return rv;
    }
    return vendor_op_begin(session, &op);
}

/* One whole cipher call into out (room for in_len + one block + tag), *written set.
 * CKR_ENCRYPTED_DATA_INVALID when GCM's tag or CBC-PAD's padding fails. */
static CK_RV evp_run(CK_SESSION_HANDLE session, const struct cmk_live *key, unsigned long version,
                     const struct soft_mech *m, bool encrypt, const unsigned char *iv,
                     size_t iv_len, const unsigned char *aad, size_t aad_len, size_t tag_len,
                     const unsigned char *in, size_t in_len, unsigned char *out, size_t *written)
{
    bool gcm = m->param == PARAM_GCM;
    size_t body = gcm && !encrypt ? in_len - tag_len : in_len;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return CKR_HOST_MEMORY;
    CK_RV rv = soft_key_cipher_init(session, key->row, key->key_id, version, ctx, m->mode, iv,
                                    iv_len, encrypt);
    int n = 0, fin = 0;
    if (rv != CKR_OK) goto out;
    rv = CKR_FUNCTION_FAILED;
    if (!m->pad && EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) goto out;
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

/* Would the counter of the last of blocks carry out of the low bits of the counter block?
 * PKCS#11's ulCounterBits: the rest of the block is a nonce that must not change (OpenSSL
 * would carry into it), so such input is refused rather than run. */
static bool ctr_would_wrap(const unsigned char cb[BLOCK], CK_ULONG bits, size_t blocks)
{
    if (blocks == 0) return false;
    unsigned long long add = blocks - 1;
    unsigned carry = 0;
    for (int i = BLOCK - 1, done = 0; i >= 0 && done < (int)bits; i--, done += 8) {
        unsigned width = bits - (CK_ULONG)done >= 8 ? 8 : (unsigned)(bits - (CK_ULONG)done);
        unsigned v = (cb[i] & ((1u << width) - 1)) + (unsigned)(add & 0xff) + carry;
        carry = v >> width;
        add >>= 8;
    }
    return carry || add;
}

/* The exact output length, or an upper bound for CBC-PAD decrypt; or why the input
 * cannot be right. */
static CK_RV output_length(const struct vendor_op *op, const struct soft_mech *m, bool encrypt,
                           size_t in_len, size_t *need)
{
    size_t tag = op->tag_bits / 8;
    CK_RV range = encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
    if (in_len > INT_MAX - 2 * BLOCK) return range; /* EVP counts in int */
    switch (m->param) {
    case PARAM_GCM:
        if (!encrypt && in_len < tag) return CKR_ENCRYPTED_DATA_LEN_RANGE;
        *need = encrypt ? in_len + tag : in_len - tag;
        return CKR_OK;
    case PARAM_CTR:
        if (ctr_would_wrap(op->iv, op->counter_bits, (in_len + BLOCK - 1) / BLOCK)) {
            log_warning("CTR: %zu bytes would wrap the %lu-bit counter of the counter block",
                        in_len, op->counter_bits);
            return range;
        }
        *need = in_len;
        return CKR_OK;
    default:
        if (m->pad) {
            if (!encrypt && (in_len == 0 || in_len % BLOCK)) {
                log_warning("CBC-PAD decrypt: ciphertext of %zu bytes is not a positive "
                            "multiple of 16",
                            in_len);
                return CKR_ENCRYPTED_DATA_LEN_RANGE;
            }
            *need = encrypt ? (in_len / BLOCK + 1) * BLOCK : in_len;
            return CKR_OK;
        }
        if (in_len % BLOCK) {
            log_warning("%s: %zu bytes of %s is not a multiple of the 16-byte block", m->mode,
                        in_len, encrypt ? "data" : "ciphertext");
            return range;
        }
        *need = in_len;
        return CKR_OK;
    }
}

CK_RV soft_crypt_run(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                     size_t in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    bool encrypt = op->kind == VOP_SOFT_ENCRYPT;
    const struct soft_mech *m = soft_mech_of(op->mechanism);
    if (!m) return CKR_OPERATION_NOT_INITIALIZED;
    if (!in) {
        in = op->buffer;
        in_len = op->buffer_len;
    }
    size_t need = 0;
    CK_RV rv = output_length(op, m, encrypt, in_len, &need);
    if (rv != CKR_OK) return rv;
    if (!out) {
        *out_len = need;
        return CKR_OK;
    }
    bool exact = encrypt || !m->pad;
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
    size_t cap = in_len + BLOCK + SOFT_TAG_LEN;
    unsigned char *tmp = malloc(cap);
    if (!tmp) return CKR_HOST_MEMORY;
    size_t written = 0;
    rv = evp_run(session, &key, version, m, encrypt, op->iv, op->iv_len, op->aad, op->aad_len,
                 op->tag_bits / 8, in, in_len, tmp, &written);
    /* GCM under a rotated key: a tag that fails may be an older version's. */
    for (unsigned long v = version - 1;
         rv == CKR_ENCRYPTED_DATA_INVALID && !op->version && m->param == PARAM_GCM && v >= 1; v--) {
        rv = evp_run(session, &key, v, m, false, op->iv, op->iv_len, op->aad, op->aad_len,
                     op->tag_bits / 8, in, in_len, tmp, &written);
        if (rv == CKR_OK) log_debug("AES-GCM decrypt: key %s: version %lu verified", key.key_id, v);
    }
    if (rv == CKR_ENCRYPTED_DATA_INVALID)
        log_warning("key %s: decrypt failed: %s", key.key_id,
                    m->param == PARAM_GCM ? "the GCM tag does not verify"
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
    if ((!encrypt && in_len < tag_len) || in_len > INT_MAX - 2 * BLOCK)
        return encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_INVALID;
    size_t need = encrypt ? in_len + tag_len : in_len - tag_len;
    if (*out_len < need) {
        *out_len = need;
        return CKR_BUFFER_TOO_SMALL;
    }
    size_t cap = in_len + BLOCK + tag_len;
    unsigned char *tmp = malloc(cap);
    if (!tmp) return CKR_HOST_MEMORY;
    size_t written = 0;
    CK_RV rv = evp_run(session, key, version, soft_mech_of(CKM_AES_GCM), encrypt, iv, iv_len, aad,
                       aad_len, tag_len, in, in_len, tmp, &written);
    if (rv == CKR_OK) {
        memcpy(out, tmp, written);
        *out_len = written;
    }
    OPENSSL_cleanse(tmp, cap);
    free(tmp);
    return rv;
}

CK_RV soft_crypt_sm4_ecb(CK_SESSION_HANDLE session, const struct cmk_live *key,
                         unsigned long version, const unsigned char *in, size_t len,
                         unsigned char *out)
{
    size_t written = 0;
    if (len % BLOCK || len > INT_MAX - 2 * BLOCK) return CKR_DATA_LEN_RANGE;
    return evp_run(session, key, version, soft_mech_of(CKM_CMK_SM4_ECB), true, NULL, 0, NULL, 0, 0,
                   in, len, out, &written);
}
