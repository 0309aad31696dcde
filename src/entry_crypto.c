/* entry_crypto.c - cryptographic functions. Only the *Init calls look at the key:
 * they check the CMK's state and usage and swap in the backend handle. Every
 * call after an Init goes to the backend untouched: no lock, no lookup. */
#include "cmk.h"
#include "entry.h"
#include "handles.h"
#include "soft_crypt.h"
#include "soft_digest.h"
#include "vendor_crypto.h"

/* Translates the key of an operation init; a NULL mechanism cancels (PKCS#11 3.0). */
static CK_RV key_for(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE *key,
                     enum cmk_use use)
{
    if (!mech || !handle_is_cmk(*key)) return CKR_OK;
    return cmk_resolve_for_use(session, *key, use, key);
}

/* A CMK's cached backend handle can go stale (the backend renumbers after a logout):
 * then the handle is looked up again and the call made once more. */
#define DEFINE_INIT(linkage, name, func, use)                                                      \
    linkage CK_RV name(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)     \
    {                                                                                              \
        ENTRY_BEGIN(#func);                                                                        \
        CK_OBJECT_HANDLE backend_key = key;                                                        \
        CK_RV rv = key_for(session, mech, &backend_key, use);                                      \
        if (rv == CKR_OK) rv = module.be.fn->func(session, mech, backend_key);                     \
        if (handle_is_cmk(key) && cmk_handle_went_stale(rv)) {                                     \
            cmk_cache_forget_row_handles(handle_row(key));                                         \
            backend_key = key;                                                                     \
            rv = key_for(session, mech, &backend_key, use);                                        \
            if (rv == CKR_OK) rv = module.be.fn->func(session, mech, backend_key);                 \
        }                                                                                          \
        if (rv == CKR_OBJECT_HANDLE_INVALID) rv = CKR_KEY_HANDLE_INVALID; /* the spec's name */    \
        ENTRY_RETURN(#func, rv);                                                                   \
    }

#define FORWARD_INIT(func, use) DEFINE_INIT(CK_EXPORT, func, func, use)

/* The forwarded part of C_EncryptInit / C_DecryptInit; the exported ones come below. */
DEFINE_INIT(static, forward_encrypt_init, C_EncryptInit, CMK_USE_ENCRYPT)
DEFINE_INIT(static, forward_decrypt_init, C_DecryptInit, CMK_USE_DECRYPT)
FORWARD_INIT(C_SignInit, CMK_USE_SIGN)
FORWARD_INIT(C_SignRecoverInit, CMK_USE_SIGN)
FORWARD_INIT(C_VerifyInit, CMK_USE_VERIFY)
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

FORWARD_IN_OUT(C_Sign)
FORWARD_UPDATE(C_SignUpdate)
FORWARD_FINAL(C_SignFinal)
FORWARD_IN_OUT(C_SignRecover)
FORWARD_UPDATE(C_VerifyUpdate)
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

CK_EXPORT CK_RV C_Verify(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                         CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    FORWARD(C_Verify, session, data, data_len, sig, sig_len);
}

CK_EXPORT CK_RV C_VerifyFinal(CK_SESSION_HANDLE session, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    FORWARD(C_VerifyFinal, session, sig, sig_len);
}

CK_EXPORT CK_RV C_SeedRandom(CK_SESSION_HANDLE session, CK_BYTE_PTR seed, CK_ULONG len)
{
    FORWARD(C_SeedRandom, session, seed, len);
}

CK_EXPORT CK_RV C_GenerateRandom(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG len)
{
    FORWARD(C_GenerateRandom, session, out, len);
}

/* SOFTWARE keys: the module runs the cipher itself (soft_crypt.h). */
static CK_RV soft_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                       bool encrypt)
{
    ENTRY_BEGIN(encrypt ? "C_EncryptInit" : "C_DecryptInit");
    CK_RV rv = soft_crypt_init(session, mech, key, encrypt);
    ENTRY_RETURN(encrypt ? "C_EncryptInit" : "C_DecryptInit", rv);
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
    if (mech && soft_crypt_is_soft(key)) return soft_init(session, mech, key, true);
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
    if (mech && mech->mechanism == CKM_CMK_ENVELOPE)
        return envelope_init(session, mech, key, false);
    if (mech && soft_crypt_is_soft(key)) return soft_init(session, mech, key, false);
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

ROUTE_IN_OUT(C_Encrypt, true, vendor_encrypt)
ROUTE_IN_OUT(C_EncryptUpdate, true, vendor_encrypt_update)
ROUTE_FINAL(C_EncryptFinal, true, vendor_encrypt_final)
ROUTE_IN_OUT(C_Decrypt, false, vendor_decrypt)
ROUTE_IN_OUT(C_DecryptUpdate, false, vendor_decrypt_update)
ROUTE_FINAL(C_DecryptFinal, false, vendor_decrypt_final)
