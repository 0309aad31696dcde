/* entry_crypto.c - cryptographic functions. Only the *Init calls look at the key:
 * they check the CMK's state and usage and swap in the backend handle. Every
 * call after an Init goes to the backend untouched: no lock, no lookup. */
#include "cmk.h"
#include "entry.h"
#include "handles.h"
#include "sm_backend_map.h"
#include "soft_crypt.h"
#include "soft_digest.h"
#include "soft_mac.h"
#include "soft_sign.h"
#include "vendor_crypto.h"

/* Translates the key of an operation init, and an SM mechanism to the backend's code
 * (sm_backend_map.h); a NULL mechanism cancels (PKCS#11 3.0). */
static CK_RV key_for(CK_SESSION_HANDLE session, CK_MECHANISM_PTR *mech, CK_MECHANISM *mapped,
                     CK_OBJECT_HANDLE *key, enum cmk_use use)
{
    if (!*mech || !handle_is_cmk(*key)) return CKR_OK;
    return sm_map_resolve(session, key, use, mech, mapped);
}

/* A CMK's cached backend handle can go stale (the backend renumbers after a logout):
 * then the handle is looked up again and the call made once more. */
#define DEFINE_INIT(linkage, name, func, use)                                                      \
    linkage CK_RV name(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)     \
    {                                                                                              \
        ENTRY_BEGIN(#func);                                                                        \
        CK_OBJECT_HANDLE backend_key = key;                                                        \
        CK_MECHANISM mapped, *m = mech;                                                            \
        CK_RV rv = key_for(session, &m, &mapped, &backend_key, use);                               \
        if (rv == CKR_OK) rv = module.be.fn->func(session, m, backend_key);                        \
        if (handle_is_cmk(key) && cmk_handle_went_stale(rv)) {                                     \
            cmk_cache_forget_row_handles(handle_row(key));                                         \
            backend_key = key, m = mech;                                                           \
            rv = key_for(session, &m, &mapped, &backend_key, use);                                 \
            if (rv == CKR_OK) rv = module.be.fn->func(session, m, backend_key);                    \
        }                                                                                          \
        if (rv == CKR_OBJECT_HANDLE_INVALID) rv = CKR_KEY_HANDLE_INVALID; /* the spec's name */    \
        ENTRY_RETURN(#func, rv);                                                                   \
    }

#define FORWARD_INIT(func, use) DEFINE_INIT(CK_EXPORT, func, func, use)

/* The forwarded part of C_EncryptInit / C_DecryptInit; the exported ones come below. */
DEFINE_INIT(static, forward_encrypt_init, C_EncryptInit, CMK_USE_ENCRYPT)
DEFINE_INIT(static, forward_decrypt_init, C_DecryptInit, CMK_USE_DECRYPT)
DEFINE_INIT(static, forward_sign_init, C_SignInit, CMK_USE_SIGN)
DEFINE_INIT(static, forward_verify_init, C_VerifyInit, CMK_USE_VERIFY)
FORWARD_INIT(C_SignRecoverInit, CMK_USE_SIGN)
FORWARD_INIT(C_VerifyRecoverInit, CMK_USE_VERIFY)

/* in -> out: one-shot and update forms share this shape. */
#define FORWARD_IN_OUT(func)                                                                         \
    CK_EXPORT CK_RV func(CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len,                 \
                       CK_BYTE_PTR out, CK_ULONG_PTR out_len)                                      \
    {                                                                                              \
        FORWARD(func, session, in, in_len, out, out_len);                                            \
    }

#define FORWARD_FINAL(func)                                                                          \
    CK_EXPORT CK_RV func(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)           \
    {                                                                                              \
        FORWARD(func, session, out, out_len);                                                        \
    }

#define FORWARD_UPDATE(func)                                                                         \
    CK_EXPORT CK_RV func(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)             \
    {                                                                                              \
        FORWARD(func, session, part, part_len);                                                      \
    }

FORWARD_IN_OUT(C_SignRecover)
FORWARD_IN_OUT(C_VerifyRecover)
FORWARD_IN_OUT(C_DigestEncryptUpdate)
FORWARD_IN_OUT(C_DecryptDigestUpdate)
FORWARD_IN_OUT(C_SignEncryptUpdate)
FORWARD_IN_OUT(C_DecryptVerifyUpdate)

/* Digests: SM3 runs in the module (soft_digest.h); the rest is the backend's. */
static struct vendor_op *digest_op(CK_SESSION_HANDLE session)
{
    return vendor_op_any() ? vendor_op_get_digest(session) : NULL;
}

CK_EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech)
{
    ENTRY_BEGIN("C_DigestInit");
    if (digest_op(session)) {
        if (mech) ENTRY_RETURN("C_DigestInit", CKR_OPERATION_ACTIVE);
        vendor_op_end_digest(session); /* a NULL mechanism cancels (PKCS#11 3.0) */
        ENTRY_RETURN("C_DigestInit", CKR_OK);
    }
    if (mech && mech->mechanism == CKM_CMK_SM3)
        ENTRY_RETURN("C_DigestInit", soft_digest_init(session, mech));
    ENTRY_RETURN("C_DigestInit", module.be.fn->C_DigestInit(session, mech));
}

CK_EXPORT CK_RV C_Digest(CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len,
                         CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    ENTRY_BEGIN("C_Digest");
    struct vendor_op *op = digest_op(session);
    if (op) ENTRY_RETURN("C_Digest", soft_digest(session, op, in, in_len, out, out_len));
    ENTRY_RETURN("C_Digest", module.be.fn->C_Digest(session, in, in_len, out, out_len));
}

CK_EXPORT CK_RV C_DigestUpdate(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
    ENTRY_BEGIN("C_DigestUpdate");
    struct vendor_op *op = digest_op(session);
    if (op) ENTRY_RETURN("C_DigestUpdate", soft_digest_update(session, op, part, part_len));
    ENTRY_RETURN("C_DigestUpdate", module.be.fn->C_DigestUpdate(session, part, part_len));
}

CK_EXPORT CK_RV C_DigestFinal(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    ENTRY_BEGIN("C_DigestFinal");
    struct vendor_op *op = digest_op(session);
    if (op) ENTRY_RETURN("C_DigestFinal", soft_digest_final(session, op, out, out_len));
    ENTRY_RETURN("C_DigestFinal", module.be.fn->C_DigestFinal(session, out, out_len));
}

CK_EXPORT CK_RV C_DigestKey(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
    ENTRY_BEGIN("C_DigestKey");
    if (digest_op(session)) {
        /* No key value ever reaches the module's SM3 (CMK material never leaves its
         * place); the running digest is left as it was. */
        log_warning("C_DigestKey: not offered with CKM_CMK_SM3 (the module never sees key "
                    "values)");
        ENTRY_RETURN("C_DigestKey", CKR_KEY_INDIGESTIBLE);
    }
    CK_RV rv = CKR_OK;
    if (handle_is_cmk(key)) rv = cmk_resolve_for_use(session, key, CMK_USE_DIGEST, &key);
    if (rv == CKR_OK) rv = module.be.fn->C_DigestKey(session, key);
    ENTRY_RETURN("C_DigestKey", rv);
}

CK_EXPORT CK_RV C_SeedRandom(CK_SESSION_HANDLE session, CK_BYTE_PTR seed, CK_ULONG len)
{
    FORWARD(C_SeedRandom, session, seed, len);
}

CK_EXPORT CK_RV C_GenerateRandom(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG len)
{
    FORWARD(C_GenerateRandom, session, out, len);
}

/* SOFTWARE keys: the module runs the cipher itself (soft_crypt.h and soft_mac.h for
 * secret keys, soft_sign.h for pairs). */
static CK_RV soft_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                       enum vendor_op_kind kind)
{
    static const char *const names[] = {[VOP_PKEY_ENCRYPT] = "C_EncryptInit",
                                        [VOP_PKEY_DECRYPT] = "C_DecryptInit",
                                        [VOP_PKEY_SIGN] = "C_SignInit",
                                        [VOP_PKEY_VERIFY] = "C_VerifyInit"};
    ENTRY_BEGIN(names[kind]);
    CK_RV rv = handle_kind(key) != CMK_OBJ_SECRET ? soft_sign_init(session, mech, key, kind)
               : kind == VOP_PKEY_ENCRYPT || kind == VOP_PKEY_DECRYPT
                   ? soft_crypt_init(session, mech, key, kind == VOP_PKEY_ENCRYPT)
                   : soft_mac_init(session, mech, key, kind == VOP_PKEY_SIGN);
    ENTRY_RETURN(names[kind], rv);
}

/* Sign and verify: our own operation for SOFTWARE keys, else forwarded. */
static CK_RV sign_verify_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                              CK_OBJECT_HANDLE key, enum vendor_op_slot slot)
{
    if (!module_ready()) return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (vendor_op_any() && vendor_op_get_slot(session, slot)) {
        if (mech) return CKR_OPERATION_ACTIVE;
        vendor_op_end_slot(session, slot); /* a NULL mechanism cancels (PKCS#11 3.0) */
        return CKR_OK;
    }
    bool sign = slot == VOP_SLOT_SIGN;
    if (mech && soft_crypt_is_soft(key))
        return soft_init(session, mech, key, sign ? VOP_PKEY_SIGN : VOP_PKEY_VERIFY);
    return sign ? forward_sign_init(session, mech, key) : forward_verify_init(session, mech, key);
}

CK_EXPORT CK_RV C_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    return sign_verify_init(session, mech, key, VOP_SLOT_SIGN);
}

CK_EXPORT CK_RV C_VerifyInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    return sign_verify_init(session, mech, key, VOP_SLOT_VERIFY);
}

CK_EXPORT CK_RV C_EncryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                              CK_OBJECT_HANDLE key)
{
    if (!module_ready()) return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (vendor_op_any() && vendor_op_get(session, true)) {
        if (mech) return CKR_OPERATION_ACTIVE;
        vendor_op_end(session, true); /* a NULL mechanism cancels (PKCS#11 3.0) */
    }
    if (mech && mech->mechanism == CKM_CMK_ENVELOPE) return envelope_init(session, mech, key, true);
    if (mech && soft_crypt_is_soft(key)) return soft_init(session, mech, key, VOP_PKEY_ENCRYPT);
    return forward_encrypt_init(session, mech, key);
}

CK_EXPORT CK_RV C_DecryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                              CK_OBJECT_HANDLE key)
{
    if (!module_ready()) return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (vendor_op_any() && vendor_op_get(session, false)) {
        if (mech) return CKR_OPERATION_ACTIVE;
        vendor_op_end(session, false);
    }
    if (mech && mech->mechanism == CKM_CMK_ENVELOPE) return envelope_init(session, mech, key, false);
    if (mech && soft_crypt_is_soft(key)) return soft_init(session, mech, key, VOP_PKEY_DECRYPT);
    CK_RV rv = forward_decrypt_init(session, mech, key);
    /* GCM under a rotated key: older versions may be needed if the tag fails. */
    if (rv == CKR_OK && mech && mech->mechanism == CKM_AES_GCM && handle_is_cmk(key) &&
        handle_version(key) == 0) {
        struct cmk_live live;
        if (cmk_cache_get(handle_row(key), &live) == CKR_OK && live.primary_version > 1)
            rv = gcm_fallback_begin(session, mech, key);
    }
    return rv;
}

/* A pair's encrypt/decrypt is soft_sign's; the rest of ours is vendor_crypto's. */
static bool is_pkey_op(const struct vendor_op *op)
{
    return op->kind == VOP_PKEY_ENCRYPT || op->kind == VOP_PKEY_DECRYPT;
}

#define PKEY_OR_VENDOR_IN_OUT(name, vendor)                                                        \
    static CK_RV name(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in, CK_ULONG in_len,  \
                      CK_BYTE_PTR out, CK_ULONG_PTR out_len)                                       \
    {                                                                                              \
        if (!is_pkey_op(op)) return vendor(s, op, in, in_len, out, out_len);                       \
        if (!out_len || (!in && in_len)) return CKR_ARGUMENTS_BAD;                                 \
        return soft_sign_run(s, op, in ? in : (CK_BYTE_PTR) "", in_len, out, out_len);             \
    }

#define PKEY_OR_VENDOR_UPDATE(name, vendor)                                                        \
    static CK_RV name(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in, CK_ULONG in_len,  \
                      CK_BYTE_PTR out, CK_ULONG_PTR out_len)                                       \
    {                                                                                              \
        if (!is_pkey_op(op)) return vendor(s, op, in, in_len, out, out_len);                       \
        if (!out_len || (!in && in_len)) return CKR_ARGUMENTS_BAD;                                 \
        *out_len = 0; /* everything comes out at Final */                                          \
        return soft_sign_update(s, op, in, in_len);                                                \
    }

#define PKEY_OR_VENDOR_FINAL(name, vendor)                                                         \
    static CK_RV name(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR out,                  \
                      CK_ULONG_PTR out_len)                                                        \
    {                                                                                              \
        if (!is_pkey_op(op)) return vendor(s, op, out, out_len);                                   \
        if (!out_len) return CKR_ARGUMENTS_BAD;                                                    \
        return soft_sign_run(s, op, NULL, 0, out, out_len);                                        \
    }

PKEY_OR_VENDOR_IN_OUT(encrypt_op, vendor_encrypt)
PKEY_OR_VENDOR_UPDATE(encrypt_update_op, vendor_encrypt_update)
PKEY_OR_VENDOR_FINAL(encrypt_final_op, vendor_encrypt_final)
PKEY_OR_VENDOR_IN_OUT(decrypt_op, vendor_decrypt)
PKEY_OR_VENDOR_UPDATE(decrypt_update_op, vendor_decrypt_update)
PKEY_OR_VENDOR_FINAL(decrypt_final_op, vendor_decrypt_final)

/* Data calls: forwarded untouched unless this session runs one of our operations. */
#define ROUTE_IN_OUT(func, encrypt, ours)                                                          \
    CK_EXPORT CK_RV func(CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len,               \
                         CK_BYTE_PTR out, CK_ULONG_PTR out_len)                                    \
    {                                                                                              \
        ENTRY_BEGIN(#func);                                                                        \
        struct vendor_op *op = vendor_op_any() ? vendor_op_get(session, encrypt) : NULL;           \
        if (op) ENTRY_RETURN(#func, ours(session, op, in, in_len, out, out_len));                  \
        ENTRY_RETURN(#func, module.be.fn->func(session, in, in_len, out, out_len));                \
    }

#define ROUTE_FINAL(func, encrypt, ours)                                                           \
    CK_EXPORT CK_RV func(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)         \
    {                                                                                              \
        ENTRY_BEGIN(#func);                                                                        \
        struct vendor_op *op = vendor_op_any() ? vendor_op_get(session, encrypt) : NULL;           \
        if (op) ENTRY_RETURN(#func, ours(session, op, out, out_len));                              \
        ENTRY_RETURN(#func, module.be.fn->func(session, out, out_len));                            \
    }

ROUTE_IN_OUT(C_Encrypt, true, encrypt_op)
ROUTE_IN_OUT(C_EncryptUpdate, true, encrypt_update_op)
ROUTE_FINAL(C_EncryptFinal, true, encrypt_final_op)
ROUTE_IN_OUT(C_Decrypt, false, decrypt_op)
ROUTE_IN_OUT(C_DecryptUpdate, false, decrypt_update_op)
ROUTE_FINAL(C_DecryptFinal, false, decrypt_final_op)

/* Sign and verify calls: the same, on the session's sign or verify slot. */
static struct vendor_op *op_in(CK_SESSION_HANDLE session, enum vendor_op_slot slot)
{
    return vendor_op_any() ? vendor_op_get_slot(session, slot) : NULL;
}

static CK_RV sign_op(CK_SESSION_HANDLE s, struct vendor_op *op, const unsigned char *in,
                     size_t in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    return op->kind == VOP_MAC_SIGN ? soft_mac_sign(s, op, in, in_len, out, out_len)
                                    : soft_sign_run(s, op, in, in_len, out, out_len);
}

static CK_RV verify_op(CK_SESSION_HANDLE s, struct vendor_op *op, const unsigned char *in,
                       size_t in_len, const unsigned char *sig, size_t sig_len)
{
    return op->kind == VOP_MAC_VERIFY ? soft_mac_verify(s, op, in, in_len, sig, sig_len)
                                      : soft_sign_verify(s, op, in, in_len, sig, sig_len);
}

CK_EXPORT CK_RV C_Sign(CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                       CK_ULONG_PTR out_len)
{
    ENTRY_BEGIN("C_Sign");
    struct vendor_op *op = op_in(session, VOP_SLOT_SIGN);
    if (op && (!out_len || (!in && in_len))) ENTRY_RETURN("C_Sign", CKR_ARGUMENTS_BAD);
    if (op)
        ENTRY_RETURN("C_Sign",
                     sign_op(session, op, in ? in : (CK_BYTE_PTR) "", in_len, out, out_len));
    ENTRY_RETURN("C_Sign", module.be.fn->C_Sign(session, in, in_len, out, out_len));
}

/* An Update on the sign or verify slot: the part joins our op's input, or goes on. */
#define ROUTE_SIGN_UPDATE(func, slot)                                                              \
    CK_EXPORT CK_RV func(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)           \
    {                                                                                              \
        ENTRY_BEGIN(#func);                                                                        \
        struct vendor_op *op = op_in(session, slot);                                               \
        if (op && !part && part_len) ENTRY_RETURN(#func, CKR_ARGUMENTS_BAD);                       \
        if (op) ENTRY_RETURN(#func, soft_sign_update(session, op, part, part_len));                \
        ENTRY_RETURN(#func, module.be.fn->func(session, part, part_len));                          \
    }

ROUTE_SIGN_UPDATE(C_SignUpdate, VOP_SLOT_SIGN)
ROUTE_SIGN_UPDATE(C_VerifyUpdate, VOP_SLOT_VERIFY)

CK_EXPORT CK_RV C_SignFinal(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    ENTRY_BEGIN("C_SignFinal");
    struct vendor_op *op = op_in(session, VOP_SLOT_SIGN);
    if (op && !out_len) ENTRY_RETURN("C_SignFinal", CKR_ARGUMENTS_BAD);
    if (op) ENTRY_RETURN("C_SignFinal", sign_op(session, op, NULL, 0, out, out_len));
    ENTRY_RETURN("C_SignFinal", module.be.fn->C_SignFinal(session, out, out_len));
}

CK_EXPORT CK_RV C_Verify(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                         CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    ENTRY_BEGIN("C_Verify");
    struct vendor_op *op = op_in(session, VOP_SLOT_VERIFY);
    if (op && ((!data && data_len) || !sig)) ENTRY_RETURN("C_Verify", CKR_ARGUMENTS_BAD);
    if (op)
        ENTRY_RETURN("C_Verify", verify_op(session, op, data ? data : (CK_BYTE_PTR) "", data_len,
                                           sig, sig_len));
    ENTRY_RETURN("C_Verify", module.be.fn->C_Verify(session, data, data_len, sig, sig_len));
}

CK_EXPORT CK_RV C_VerifyFinal(CK_SESSION_HANDLE session, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    ENTRY_BEGIN("C_VerifyFinal");
    struct vendor_op *op = op_in(session, VOP_SLOT_VERIFY);
    if (op && !sig) ENTRY_RETURN("C_VerifyFinal", CKR_ARGUMENTS_BAD);
    if (op) ENTRY_RETURN("C_VerifyFinal", verify_op(session, op, NULL, 0, sig, sig_len));
    ENTRY_RETURN("C_VerifyFinal", module.be.fn->C_VerifyFinal(session, sig, sig_len));
}
