/* entry_crypto.c - cryptographic functions. Only the *Init calls look at the key:
 * they check the CMK's state and usage and swap in the backend handle. Every
 * call after an Init goes to the backend untouched: no lock, no lookup. */
#include "cmk.h"
#include "entry.h"
#include "handles.h"

/* Translates the key of an operation init; a NULL mechanism cancels (PKCS#11 3.0). */
static CK_RV key_for(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE *key,
                     enum cmk_use use)
{
    if (!mech || !handle_is_cmk(*key)) return CKR_OK;
    return cmk_resolve_for_use(session, *key, use, key);
}

/* A CMK's cached backend handle can go stale (the backend renumbers after a logout):
 * then the handle is looked up again and the call made once more. */
#define FORWARD_INIT(func, use)                                                                    \
    CK_EXPORT CK_RV func(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)   \
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
        ENTRY_RETURN(#func, rv);                                                                   \
    }

FORWARD_INIT(C_EncryptInit, CMK_USE_ENCRYPT)
FORWARD_INIT(C_DecryptInit, CMK_USE_DECRYPT)
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

FORWARD_IN_OUT(C_Encrypt)
FORWARD_IN_OUT(C_EncryptUpdate)
FORWARD_FINAL(C_EncryptFinal)
FORWARD_IN_OUT(C_Decrypt)
FORWARD_IN_OUT(C_DecryptUpdate)
FORWARD_FINAL(C_DecryptFinal)
FORWARD_IN_OUT(C_Digest)
FORWARD_UPDATE(C_DigestUpdate)
FORWARD_FINAL(C_DigestFinal)
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

CK_EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech)
{
    FORWARD(C_DigestInit, session, mech);
}

CK_EXPORT CK_RV C_DigestKey(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
    ENTRY_BEGIN("C_DigestKey");
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
