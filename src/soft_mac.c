/* soft_mac.c - HMAC on SOFTWARE generic-secret keys. The key comes from soft_key's locked
 * arena into an EVP_MAC context that lives for one call. */
#include "soft_mac.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "cmk.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "log.h"
#include "soft_key.h"

static const struct {
    CK_MECHANISM_TYPE mech;
    const char *digest;
    size_t len;
} macs[] = {
    {CKM_SHA_1_HMAC, "SHA1", 20},    {CKM_SHA224_HMAC, "SHA224", 28},
    {CKM_SHA256_HMAC, "SHA256", 32}, {CKM_SHA384_HMAC, "SHA384", 48},
    {CKM_SHA512_HMAC, "SHA512", 64}, {CKM_CMK_SM3_HMAC, "SM3", 32},
};

static int mac_index(CK_MECHANISM_TYPE m)
{
    for (int i = 0; i < (int)(sizeof(macs) / sizeof(macs[0])); i++)
        if (macs[i].mech == m) return i;
    return -1;
}

CK_RV soft_mac_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                    const struct cmk_live *live, bool sign)
{
    if (live->key_type != CKK_GENERIC_SECRET) {
        log_warning("key %s: SOFTWARE keys of this type neither sign nor verify", live->key_id);
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    if (mac_index(mech->mechanism) < 0) {
        log_warning("key %s: mechanism 0x%lx is not offered on SOFTWARE HMAC keys (SHA-1/224/"
                    "256/384/512 HMAC and CKM_CMK_SM3_HMAC are)",
                    live->key_id, mech->mechanism);
        return CKR_MECHANISM_INVALID;
    }
    if (mech->pParameter || mech->ulParameterLen) {
        log_warning("key %s: mechanism 0x%lx takes no parameter", live->key_id, mech->mechanism);
        return CKR_MECHANISM_PARAM_INVALID;
    }
    struct vendor_op op = {.kind = sign ? VOP_MAC_SIGN : VOP_MAC_VERIFY,
                           .key = key,
                           .mechanism = mech->mechanism,
                           .version = handle_version(key)};
    return vendor_op_begin(session, &op);
}

/* The MAC of in into out (room for the digest's length). */
static CK_RV compute(CK_SESSION_HANDLE session, const struct vendor_op *op, const unsigned char *in,
                     size_t in_len, unsigned char *out, size_t *len)
{
    struct cmk_live live;
    CK_RV rv = cmk_check_use(session, op->key, op->version,
                             op->kind == VOP_MAC_SIGN ? CMK_USE_SIGN : CMK_USE_VERIFY, &live);
    if (rv != CKR_OK) return rv;
    unsigned long version = op->version ? op->version : live.primary_version;
    EVP_MAC_CTX *ctx = NULL;
    rv = soft_key_mac_init(live.row, live.key_id, version, &ctx,
                           macs[mac_index(op->mechanism)].digest);
    if (rv == CKR_OK && (EVP_MAC_update(ctx, in, in_len) != 1 ||
                         EVP_MAC_final(ctx, out, len, EVP_MAX_MD_SIZE) != 1))
        rv = CKR_FUNCTION_FAILED;
    EVP_MAC_CTX_free(ctx);
    return rv;
}

static void input_of(const struct vendor_op *op, const unsigned char **in, size_t *in_len)
{
    if (*in) return;
    *in = op->buffer ? op->buffer : (const unsigned char *)"";
    *in_len = op->buffer_len;
}

CK_RV soft_mac_sign(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                    size_t in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    input_of(op, &in, &in_len);
    size_t need = macs[mac_index(op->mechanism)].len;
    CK_RV rv = CKR_OK;
    if (!out || *out_len < need) {
        rv = out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
        *out_len = need;
        return rv; /* the operation goes on */
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t len = 0;
    rv = compute(session, op, in, in_len, mac, &len);
    if (rv == CKR_OK) {
        memcpy(out, mac, len);
        *out_len = len;
    }
    vendor_op_end_slot(session, VOP_SLOT_SIGN);
    return rv;
}

CK_RV soft_mac_verify(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                      size_t in_len, const unsigned char *mac, size_t mac_len)
{
    input_of(op, &in, &in_len);
    unsigned char want[EVP_MAX_MD_SIZE];
    size_t len = 0;
    CK_RV rv = compute(session, op, in, in_len, want, &len);
    if (rv == CKR_OK && mac_len != len)
        rv = CKR_SIGNATURE_LEN_RANGE;
    else if (rv == CKR_OK && CRYPTO_memcmp(want, mac, len) != 0)
        rv = CKR_SIGNATURE_INVALID;
    OPENSSL_cleanse(want, sizeof(want));
    vendor_op_end_slot(session, VOP_SLOT_VERIFY);
    return rv;
}
