/* entry_crypto.c - cryptographic functions. Only the *Init calls look at the key:
 * they check the CMK's state and usage and swap in the backend handle. Every
 * call after an Init goes to the backend untouched: no lock, no lookup. */
#include "cmk.h"
#include "cmk_copy.h"
#include "entry.h"
#include "handles.h"
#include "op_cancel.h"
#include "sm_backend_map.h"
#include "soft_crypt.h"
#include "soft_digest.h"
#include "soft_mac.h"
#include "soft_sign.h"
#include "vendor_crypto.h"

static CK_RV soft_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                       const struct cmk_live *live, enum vendor_op_kind kind);

/* No operation of the module's own for a SOFTWARE key (recover forms): the backend
 * lookup refuses it. */
#define NO_SOFT_OP ((enum vendor_op_kind) - 1)

/* The one look at the key an *Init makes (a NULL mechanism cancels, PKCS#11 3.0): its
 * state and usage are checked, then a SOFTWARE key's operation begins in the module
 * (*ours), or the CMK handle is swapped for the backend's and an SM mechanism for the
 * backend's code in mapped (sm_backend_map.h). facts: what the check said. */
static CK_RV resolve_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR *mech, CK_MECHANISM *mapped,
                          CK_OBJECT_HANDLE *key, enum cmk_use use, enum vendor_op_kind soft,
                          bool *ours, struct cmk_live *facts)
{
    *ours = false;
    if (!*mech || !handle_is_cmk(*key)) return CKR_OK;
    CK_RV rv = cmk_check_use(session, *key, handle_version(*key), use, facts);
    if (rv != CKR_OK) return rv;
    if (facts->protection == CMK_PROTECTION_SOFTWARE && soft != NO_SOFT_OP) {
        *ours = true;
        return soft_init(session, *mech, *key, facts, soft);
    }
    rv = cmk_backend_of_checked(session, facts, *key, key);
    return rv == CKR_OK ? sm_map_for_key(facts->key_type, mech, mapped) : rv;
}

typedef CK_RV (*backend_init_fn)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);

/* An *Init: ours for SOFTWARE keys, else forwarded. A CMK's cached backend handle can go
 * stale (the backend renumbers after a logout): then the handle is looked up again and
 * the call made once more. The caller has checked module_ready. */
static CK_RV key_op_init(const char *name, backend_init_fn backend_init, CK_SESSION_HANDLE session,
                         CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key, enum cmk_use use,
                         enum vendor_op_kind soft, bool *ours, struct cmk_live *facts)
{
    log_debug("%s: in", name);
    CK_OBJECT_HANDLE backend_key = key;
    CK_MECHANISM mapped, *m = mech;
    CK_RV rv = resolve_init(session, &m, &mapped, &backend_key, use, soft, ours, facts);
    if (rv == CKR_OK && !*ours) rv = backend_init(session, m, backend_key);
    if (!*ours && handle_is_cmk(key) && cmk_handle_went_stale(rv)) {
        cmk_cache_forget_row_handles(handle_row(key));
        backend_key = key, m = mech;
        rv = resolve_init(session, &m, &mapped, &backend_key, use, soft, ours, facts);
        if (rv == CKR_OK && !*ours) rv = backend_init(session, m, backend_key);
    }
    /* The spec's name for a CMK's missing key; a backend key's answer is the backend's
     * (SoftHSMv2 says CKR_OBJECT_HANDLE_INVALID for a destroyed session key). */
    if (rv == CKR_OBJECT_HANDLE_INVALID && handle_is_cmk(key)) rv = CKR_KEY_HANDLE_INVALID;
    ENTRY_RETURN(name, rv);
}

/* The recover forms: forwarded only (SOFTWARE keys have no recover operation). */
#define RECOVER_INIT(func, use)                                                                    \
    CK_RV ENTRY_IMPL(func)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)   \
    {                                                                                              \
        if (!module_ready()) return CKR_CRYPTOKI_NOT_INITIALIZED;                                  \
        if (mech && cmk_copy_resolve(session, &key) != CKR_OK) return CKR_KEY_HANDLE_INVALID;      \
        bool ours;                                                                                 \
        struct cmk_live facts;                                                                     \
        return key_op_init(#func, module.be.fn->func, session, mech, key, use, NO_SOFT_OP, &ours,  \
                           &facts);                                                                \
    }

RECOVER_INIT(C_SignRecoverInit, CMK_USE_SIGN)
RECOVER_INIT(C_VerifyRecoverInit, CMK_USE_VERIFY)

/* in -> out: one-shot and update forms share this shape. */
#define FORWARD_IN_OUT(func)                                                                       \
    CK_RV ENTRY_IMPL(func)(CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len,               \
                         CK_BYTE_PTR out, CK_ULONG_PTR out_len)                                    \
    {                                                                                              \
        FORWARD(func, session, in, in_len, out, out_len);                                          \
    }

#define FORWARD_FINAL(func)                                                                        \
    CK_RV ENTRY_IMPL(func)(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)         \
    {                                                                                              \
        FORWARD(func, session, out, out_len);                                                      \
    }

#define FORWARD_UPDATE(func)                                                                       \
    CK_RV ENTRY_IMPL(func)(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)           \
    {                                                                                              \
        FORWARD(func, session, part, part_len);                                                    \
    }

FORWARD_IN_OUT(C_SignRecover)
FORWARD_IN_OUT(C_VerifyRecover)

/* Digests: SM3 runs in the module (soft_digest.h); the rest is the backend's. */
static struct vendor_op *digest_op(CK_SESSION_HANDLE session)
{
    return vendor_op_any() ? vendor_op_get_digest(session) : NULL;
}

CK_RV ENTRY_IMPL(C_DigestInit)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech)
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

CK_RV ENTRY_IMPL(C_Digest)(CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len,
                         CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    ENTRY_BEGIN("C_Digest");
    struct vendor_op *op = digest_op(session);
    if (op) ENTRY_RETURN("C_Digest", soft_digest(session, op, in, in_len, out, out_len));
    ENTRY_RETURN("C_Digest", module.be.fn->C_Digest(session, in, in_len, out, out_len));
}

CK_RV ENTRY_IMPL(C_DigestUpdate)(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
    ENTRY_BEGIN("C_DigestUpdate");
    struct vendor_op *op = digest_op(session);
    if (op) ENTRY_RETURN("C_DigestUpdate", soft_digest_update(session, op, part, part_len));
    ENTRY_RETURN("C_DigestUpdate", module.be.fn->C_DigestUpdate(session, part, part_len));
}

CK_RV ENTRY_IMPL(C_DigestFinal)(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    ENTRY_BEGIN("C_DigestFinal");
    struct vendor_op *op = digest_op(session);
    if (op) ENTRY_RETURN("C_DigestFinal", soft_digest_final(session, op, out, out_len));
    ENTRY_RETURN("C_DigestFinal", module.be.fn->C_DigestFinal(session, out, out_len));
}

CK_RV ENTRY_IMPL(C_DigestKey)(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
    ENTRY_BEGIN("C_DigestKey");
    if (digest_op(session)) {
        /* No key value ever reaches the module's SM3 (CMK material never leaves its
         * place); the running digest is left as it was. */
        log_warning("C_DigestKey: not offered with CKM_CMK_SM3 (the module never sees key "
                    "values)");
        ENTRY_RETURN("C_DigestKey", CKR_KEY_INDIGESTIBLE);
    }
    CK_RV rv = cmk_copy_resolve(session, &key) == CKR_OK ? CKR_OK : CKR_KEY_HANDLE_INVALID;
    if (rv == CKR_OK && handle_is_cmk(key))
        rv = cmk_resolve_for_use(session, key, CMK_USE_DIGEST, &key);
    if (rv == CKR_OK) rv = module.be.fn->C_DigestKey(session, key);
    ENTRY_RETURN("C_DigestKey", rv);
}

CK_RV ENTRY_IMPL(C_SeedRandom)(CK_SESSION_HANDLE session, CK_BYTE_PTR seed, CK_ULONG len)
{
    FORWARD(C_SeedRandom, session, seed, len);
}

CK_RV ENTRY_IMPL(C_GenerateRandom)(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG len)
{
    FORWARD(C_GenerateRandom, session, out, len);
}

/* SOFTWARE keys: the module runs the cipher itself (soft_crypt.h and soft_mac.h for
 * secret keys, soft_sign.h for pairs). */
static CK_RV soft_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                       const struct cmk_live *live, enum vendor_op_kind kind)
{
    if (handle_kind(key) != CMK_OBJ_SECRET) return soft_sign_init(session, mech, key, live, kind);
    if (kind == VOP_PKEY_ENCRYPT || kind == VOP_PKEY_DECRYPT)
        return soft_crypt_init(session, mech, key, live, kind == VOP_PKEY_ENCRYPT);
    return soft_mac_init(session, mech, key, live, kind == VOP_PKEY_SIGN);
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
    bool sign = slot == VOP_SLOT_SIGN, ours;
    if (!mech) return op_cancel_backend(session, sign ? OP_CANCEL_SIGN : OP_CANCEL_VERIFY);
    /* A session copy of a CMK is the key (cmk_copy.h). */
    if (cmk_copy_resolve(session, &key) != CKR_OK) return CKR_KEY_HANDLE_INVALID;
    struct cmk_live facts;
    return sign ? key_op_init("C_SignInit", module.be.fn->C_SignInit, session, mech, key,
                              CMK_USE_SIGN, VOP_PKEY_SIGN, &ours, &facts)
                : key_op_init("C_VerifyInit", module.be.fn->C_VerifyInit, session, mech, key,
                              CMK_USE_VERIFY, VOP_PKEY_VERIFY, &ours, &facts);
}

CK_RV ENTRY_IMPL(C_SignInit)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    return sign_verify_init(session, mech, key, VOP_SLOT_SIGN);
}

CK_RV ENTRY_IMPL(C_VerifyInit)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    return sign_verify_init(session, mech, key, VOP_SLOT_VERIFY);
}

CK_RV ENTRY_IMPL(C_EncryptInit)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                              CK_OBJECT_HANDLE key)
{
    if (!module_ready()) return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (vendor_op_any() && vendor_op_get(session, true)) {
        if (mech) return CKR_OPERATION_ACTIVE;
        vendor_op_end(session, true); /* a NULL mechanism cancels (PKCS#11 3.0) */
        return CKR_OK;
    }
    if (!mech) return op_cancel_backend(session, OP_CANCEL_ENCRYPT);
    if (cmk_copy_resolve(session, &key) != CKR_OK) return CKR_KEY_HANDLE_INVALID;
    if (mech->mechanism == CKM_CMK_ENVELOPE) return envelope_init(session, mech, key, true);
    bool ours;
    struct cmk_live facts;
    return key_op_init("C_EncryptInit", module.be.fn->C_EncryptInit, session, mech, key,
                       CMK_USE_ENCRYPT, VOP_PKEY_ENCRYPT, &ours, &facts);
}

CK_RV ENTRY_IMPL(C_DecryptInit)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                              CK_OBJECT_HANDLE key)
{
    if (!module_ready()) return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (vendor_op_any() && vendor_op_get(session, false)) {
        if (mech) return CKR_OPERATION_ACTIVE;
        /* A GCM decrypt under a rotated key runs in the backend too, beside our record of
         * it: that one ends as well (with nothing of the backend's active, this is a no-op). */
        vendor_op_end(session, false);
        (void)op_cancel_backend(session, OP_CANCEL_DECRYPT);
        return CKR_OK;
    }
    if (!mech) return op_cancel_backend(session, OP_CANCEL_DECRYPT);
    if (cmk_copy_resolve(session, &key) != CKR_OK) return CKR_KEY_HANDLE_INVALID;
    if (mech->mechanism == CKM_CMK_ENVELOPE) return envelope_init(session, mech, key, false);
    bool ours;
    struct cmk_live facts;
    CK_RV rv = key_op_init("C_DecryptInit", module.be.fn->C_DecryptInit, session, mech, key,
                           CMK_USE_DECRYPT, VOP_PKEY_DECRYPT, &ours, &facts);
    /* GCM under a rotated key: older versions may be needed if the tag fails (a SOFTWARE
     * key's own operation tries them itself). */
    if (rv == CKR_OK && !ours && mech->mechanism == CKM_AES_GCM && handle_is_cmk(key) &&
        handle_version(key) == 0 && facts.primary_version > 1) {
        rv = gcm_fallback_begin(session, mech, key);
        /* The backend's decryption has begun: a failed Init must not leave it active, or
         * every later C_DecryptInit in the session would answer CKR_OPERATION_ACTIVE. */
        if (rv != CKR_OK) (void)op_cancel_backend(session, OP_CANCEL_DECRYPT);
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
        return out ? soft_sign_update(s, op, in, in_len) : CKR_OK; /* NULL: a length query */      \
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

/* Data calls: forwarded untouched unless this session runs one of our operations on the
 * call's slot. The shapes: in -> out, final -> out, and a part in. */
static struct vendor_op *op_in(CK_SESSION_HANDLE session, enum vendor_op_slot slot)
{
    return vendor_op_any() ? vendor_op_get_slot(session, slot) : NULL;
}

#define ROUTE_IN_OUT(func, slot, ours)                                                             \
    CK_RV ENTRY_IMPL(func)(CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len,               \
                         CK_BYTE_PTR out, CK_ULONG_PTR out_len)                                    \
    {                                                                                              \
        ENTRY_BEGIN(#func);                                                                        \
        struct vendor_op *op = op_in(session, slot);                                               \
        if (op) ENTRY_RETURN(#func, ours(session, op, in, in_len, out, out_len));                  \
        ENTRY_RETURN(#func, module.be.fn->func(session, in, in_len, out, out_len));                \
    }

#define ROUTE_FINAL(func, slot, ours)                                                              \
    CK_RV ENTRY_IMPL(func)(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)         \
    {                                                                                              \
        ENTRY_BEGIN(#func);                                                                        \
        struct vendor_op *op = op_in(session, slot);                                               \
        if (op) ENTRY_RETURN(#func, ours(session, op, out, out_len));                              \
        ENTRY_RETURN(#func, module.be.fn->func(session, out, out_len));                            \
    }

#define ROUTE_PART(func, slot, ours)                                                               \
    CK_RV ENTRY_IMPL(func)(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)           \
    {                                                                                              \
        ENTRY_BEGIN(#func);                                                                        \
        struct vendor_op *op = op_in(session, slot);                                               \
        if (op) ENTRY_RETURN(#func, ours(session, op, part, part_len));                            \
        ENTRY_RETURN(#func, module.be.fn->func(session, part, part_len));                          \
    }

ROUTE_IN_OUT(C_Encrypt, VOP_SLOT_ENCRYPT, encrypt_op)
ROUTE_IN_OUT(C_EncryptUpdate, VOP_SLOT_ENCRYPT, encrypt_update_op)
ROUTE_FINAL(C_EncryptFinal, VOP_SLOT_ENCRYPT, encrypt_final_op)
ROUTE_IN_OUT(C_Decrypt, VOP_SLOT_DECRYPT, decrypt_op)
ROUTE_IN_OUT(C_DecryptUpdate, VOP_SLOT_DECRYPT, decrypt_update_op)
ROUTE_FINAL(C_DecryptFinal, VOP_SLOT_DECRYPT, decrypt_final_op)

/* Our sign and verify operations: C_Sign / C_Verify over the data given, *Final over what
 * the updates gathered (in == NULL). */
static CK_RV sign_run(CK_SESSION_HANDLE s, struct vendor_op *op, const unsigned char *in,
                      size_t in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    if (!out_len) return CKR_ARGUMENTS_BAD;
    return op->kind == VOP_MAC_SIGN ? soft_mac_sign(s, op, in, in_len, out, out_len)
                                    : soft_sign_run(s, op, in, in_len, out, out_len);
}

static CK_RV verify_run(CK_SESSION_HANDLE s, struct vendor_op *op, const unsigned char *in,
                        size_t in_len, const unsigned char *sig, size_t sig_len)
{
    if (!sig) return CKR_ARGUMENTS_BAD;
    return op->kind == VOP_MAC_VERIFY ? soft_mac_verify(s, op, in, in_len, sig, sig_len)
                                      : soft_sign_verify(s, op, in, in_len, sig, sig_len);
}

static CK_RV sign_op(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in, CK_ULONG in_len,
                     CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    if (!in && in_len) return CKR_ARGUMENTS_BAD;
    return sign_run(s, op, in ? in : (CK_BYTE_PTR) "", in_len, out, out_len);
}

static CK_RV sign_final_op(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len)
{
    return sign_run(s, op, NULL, 0, out, out_len);
}

static CK_RV verify_final_op(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR sig,
                             CK_ULONG sig_len)
{
    return verify_run(s, op, NULL, 0, sig, sig_len);
}

/* An update joins our op's input. */
static CK_RV gather_op(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR part,
                       CK_ULONG part_len)
{
    if (!part && part_len) return CKR_ARGUMENTS_BAD;
    return soft_sign_update(s, op, part, part_len);
}

ROUTE_IN_OUT(C_Sign, VOP_SLOT_SIGN, sign_op)
ROUTE_PART(C_SignUpdate, VOP_SLOT_SIGN, gather_op)
ROUTE_FINAL(C_SignFinal, VOP_SLOT_SIGN, sign_final_op)
ROUTE_PART(C_VerifyUpdate, VOP_SLOT_VERIFY, gather_op)
ROUTE_PART(C_VerifyFinal, VOP_SLOT_VERIFY, verify_final_op)

/* C_Verify alone has data and a signature in. */
CK_RV ENTRY_IMPL(C_Verify)(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                         CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    ENTRY_BEGIN("C_Verify");
    struct vendor_op *op = op_in(session, VOP_SLOT_VERIFY);
    if (op && !data && data_len) ENTRY_RETURN("C_Verify", CKR_ARGUMENTS_BAD);
    if (op)
        ENTRY_RETURN("C_Verify", verify_run(session, op, data ? data : (CK_BYTE_PTR) "", data_len,
                                            sig, sig_len));
    ENTRY_RETURN("C_Verify", module.be.fn->C_Verify(session, data, data_len, sig, sig_len));
}

/* The dual-function calls (PKCS#11 5.13) are made of the two single calls, whoever runs
 * each half: the SM3 digest or a SOFTWARE key's cipher, MAC or signature may be ours, and
 * SoftHSMv2 has no dual functions at all (CKR_FUNCTION_NOT_SUPPORTED). The cipher half goes
 * first, for it alone sets the output: a length query or a short buffer ends the call
 * there, the other half untouched. The other half then takes the plaintext: the input when
 * encrypting, the output when decrypting. */
#define ROUTE_DUAL(func, cipher_update, other_update, over_output)                                 \
    CK_RV ENTRY_IMPL(func)(CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len,               \
                         CK_BYTE_PTR out, CK_ULONG_PTR out_len)                                    \
    {                                                                                              \
        ENTRY_BEGIN(#func);                                                                        \
        if (!out_len || (!in && in_len)) ENTRY_RETURN(#func, CKR_ARGUMENTS_BAD);                   \
        CK_RV rv = ENTRY_IMPL(cipher_update)(session, in, in_len, out, out_len);                   \
        if (rv != CKR_OK || !out) ENTRY_RETURN(#func, rv);                                         \
        ENTRY_RETURN(#func, over_output ? ENTRY_IMPL(other_update)(session, out, *out_len)         \
                                        : ENTRY_IMPL(other_update)(session, in, in_len));          \
    }

ROUTE_DUAL(C_DigestEncryptUpdate, C_EncryptUpdate, C_DigestUpdate, false)
ROUTE_DUAL(C_DecryptDigestUpdate, C_DecryptUpdate, C_DigestUpdate, true)
ROUTE_DUAL(C_SignEncryptUpdate, C_EncryptUpdate, C_SignUpdate, false)
ROUTE_DUAL(C_DecryptVerifyUpdate, C_DecryptUpdate, C_VerifyUpdate, true)
