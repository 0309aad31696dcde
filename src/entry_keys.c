/* entry_keys.c - key generation (CreateKey for token keys), wrap, unwrap, derive. */
#include "cmk.h"
#include "cmk_copy.h"
#include "cmk_import.h"
#include "cmk_request.h"
#include "cmk_unwrap.h"
#include "cmkp11/cmkp11.h"
#include "entry.h"
#include "handles.h"
#include "log.h"
#include "object_track.h"
#include "sm_backend_map.h"
#include "template.h"

/* PKCS#11's default for CKA_TOKEN is FALSE: only an explicit TRUE makes a CMK. */
static CK_RV refuse_vendor_on_session_key(const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
    for (CK_ULONG i = 0; i < count; i++) {
        if (attr_is_vendor(tmpl[i].type) && !attr_is_known_vendor(tmpl[i].type)) {
            log_warning("key generation: vendor attribute 0x%lx is unknown", tmpl[i].type);
            return CKR_ATTRIBUTE_TYPE_INVALID;
        }
        if (attr_is_vendor(tmpl[i].type)) {
            log_warning("key generation: vendor attribute 0x%lx needs CKA_TOKEN=TRUE (a CMK)",
                        tmpl[i].type);
            return CKR_TEMPLATE_INCONSISTENT;
        }
    }
    return CKR_OK;
}

CK_RV ENTRY_IMPL(C_GenerateKey)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                              CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    ENTRY_BEGIN("C_GenerateKey");
    if (!mech || !key) return CKR_ARGUMENTS_BAD;
    CK_RV rv = tmpl_check_shape(tmpl, count, "C_GenerateKey");
    if (rv == CKR_OK) {
        bool token = tmpl_wants_token(tmpl, count);
        if (token && !cmk_request_plain_object(tmpl, count, NULL, 0, "C_GenerateKey")) {
            rv = cmk_generate_key(session, mech, tmpl, count, key);
        } else if ((rv = refuse_vendor_on_session_key(tmpl, count)) == CKR_OK) {
            /* A token key (an extractable one) writes the token: module_token_lock. */
            MODULE_UNDER_TOKEN_LOCK_IF(token, rv, module.be.fn->C_GenerateKey(session, mech, tmpl,
                                                                            count, key));
            if (rv == CKR_OK) object_track_new(session, *key);
        }
    }
    ENTRY_RETURN("C_GenerateKey", rv);
}

/* A pair the backend makes as it is; a token public key beside a session private key, or
 * an extractable token private key, still writes the token (module_token_lock). */
static CK_RV generate_pair_passthrough(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                                       CK_ATTRIBUTE_PTR pub, CK_ULONG pub_count,
                                       CK_ATTRIBUTE_PTR priv, CK_ULONG priv_count,
                                       CK_OBJECT_HANDLE_PTR pub_key, CK_OBJECT_HANDLE_PTR priv_key)
{
    CK_RV rv;
    MODULE_UNDER_TOKEN_LOCK_IF(tmpl_wants_token(pub, pub_count) ||
                                   tmpl_wants_token(priv, priv_count),
                               rv,
                               module.be.fn->C_GenerateKeyPair(session, mech, pub, pub_count, priv,
                                                               priv_count, pub_key, priv_key));
    if (rv == CKR_OK) {
        object_track_new(session, *pub_key);
        object_track_new(session, *priv_key);
    }
    return rv;
}

CK_RV ENTRY_IMPL(C_GenerateKeyPair)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                                  CK_ATTRIBUTE_PTR pub, CK_ULONG pub_count, CK_ATTRIBUTE_PTR priv,
                                  CK_ULONG priv_count, CK_OBJECT_HANDLE_PTR pub_key,
                                  CK_OBJECT_HANDLE_PTR priv_key)
{
    ENTRY_BEGIN("C_GenerateKeyPair");
    if (!mech || !pub_key || !priv_key) return CKR_ARGUMENTS_BAD;
    CK_RV rv = tmpl_check_shape(pub, pub_count, "C_GenerateKeyPair public template");
    if (rv == CKR_OK) rv = tmpl_check_shape(priv, priv_count, "C_GenerateKeyPair private template");
    if (rv == CKR_OK && mech->mechanism == CKM_CMK_IMPORT_PARAMS)
        rv =
            cmk_import_get_parameters(session, pub, pub_count, priv, priv_count, pub_key, priv_key);
    else if (rv == CKR_OK) {
        if (tmpl_wants_token(priv, priv_count) &&
            !cmk_request_plain_object(priv, priv_count, pub, pub_count, "C_GenerateKeyPair"))
            rv = cmk_generate_key_pair(session, mech, pub, pub_count, priv, priv_count, pub_key,
                                       priv_key);
        else if ((rv = refuse_vendor_on_session_key(pub, pub_count)) == CKR_OK &&
                 (rv = refuse_vendor_on_session_key(priv, priv_count)) == CKR_OK)
            rv = generate_pair_passthrough(session, mech, pub, pub_count, priv, priv_count, pub_key,
                                           priv_key);
    }
    ENTRY_RETURN("C_GenerateKeyPair", rv);
}

CK_RV ENTRY_IMPL(C_WrapKey)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                          CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, CK_BYTE_PTR wrapped,
                          CK_ULONG_PTR wrapped_len)
{
    ENTRY_BEGIN("C_WrapKey");
    /* A session copy of a CMK is the key (cmk_copy.h). */
    if (cmk_copy_resolve(session, &key) != CKR_OK) ENTRY_RETURN("C_WrapKey", CKR_KEY_HANDLE_INVALID);
    if (cmk_copy_resolve(session, &wrapping_key) != CKR_OK)
        ENTRY_RETURN("C_WrapKey", CKR_WRAPPING_KEY_HANDLE_INVALID);
    CK_RV rv = CKR_OK;
    if (handle_is_cmk(key)) {
        log_warning("C_WrapKey: a CMK's material never leaves the HSM");
        ENTRY_RETURN("C_WrapKey", CKR_KEY_UNEXTRACTABLE);
    }
    CK_MECHANISM mapped; /* an SM mechanism: the backend's code (sm_backend_map.h) */
    const CK_OBJECT_HANDLE original_wrapping = wrapping_key;
    if (handle_is_cmk(wrapping_key)) {
        rv = sm_map_resolve(session, &wrapping_key, CMK_USE_WRAP, &mech, &mapped);
        if (rv == CKR_KEY_HANDLE_INVALID) rv = CKR_WRAPPING_KEY_HANDLE_INVALID;
    }
    /* A CMK's version material is the module's own, which a purge destroys: its use is a
     * shared token-lock section (module.h: the lifetime of the module's own objects). */
    if (rv == CKR_OK && handle_is_cmk(original_wrapping))
        MODULE_UNDER_TOKEN_LOCK_SHARED(rv, module.be.fn->C_WrapKey(session, mech, wrapping_key, key,
                                                                   wrapped, wrapped_len));
    else if (rv == CKR_OK)
        rv = module.be.fn->C_WrapKey(session, mech, wrapping_key, key, wrapped, wrapped_len);
    ENTRY_RETURN("C_WrapKey", rv);
}

CK_RV ENTRY_IMPL(C_UnwrapKey)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                            CK_OBJECT_HANDLE unwrapping_key, CK_BYTE_PTR wrapped,
                            CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                            CK_OBJECT_HANDLE_PTR key)
{
    ENTRY_BEGIN("C_UnwrapKey");
    if (cmk_copy_resolve(session, &unwrapping_key) != CKR_OK)
        ENTRY_RETURN("C_UnwrapKey", CKR_UNWRAPPING_KEY_HANDLE_INVALID);
    CK_RV rv = tmpl_check_shape(tmpl, count, "C_UnwrapKey");
    if (rv == CKR_OK && cmk_import_wanted(unwrapping_key, tmpl, count))
        ENTRY_RETURN("C_UnwrapKey", cmk_import_material(session, mech, unwrapping_key, wrapped,
                                                        wrapped_len, tmpl, count, key));
    if (rv == CKR_OK) rv = refuse_vendor_on_session_key(tmpl, count);
    if (rv == CKR_OK && handle_is_cmk(unwrapping_key)) {
        rv = cmk_unwrap(session, mech, unwrapping_key, wrapped, wrapped_len, tmpl, count, key);
    } else if (rv == CKR_OK) {
        /* A token key writes the token: module_token_lock. */
        MODULE_UNDER_TOKEN_LOCK_IF(tmpl_wants_token(tmpl, count), rv,
                                   module.be.fn->C_UnwrapKey(session, mech, unwrapping_key, wrapped,
                                                             wrapped_len, tmpl, count, key));
    }
    if (rv == CKR_OK) object_track_new(session, *key);
    ENTRY_RETURN("C_UnwrapKey", rv);
}

CK_RV ENTRY_IMPL(C_DeriveKey)(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                            CK_OBJECT_HANDLE base_key, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                            CK_OBJECT_HANDLE_PTR key)
{
    ENTRY_BEGIN("C_DeriveKey");
    if (cmk_copy_resolve(session, &base_key) != CKR_OK)
        ENTRY_RETURN("C_DeriveKey", CKR_KEY_HANDLE_INVALID);
    CK_RV rv = tmpl_check_shape(tmpl, count, "C_DeriveKey");
    if (rv == CKR_OK) rv = refuse_vendor_on_session_key(tmpl, count);
    /* A token key writes the token: exclusive. A CMK's material, which a purge destroys,
     * is used under the shared side at least (module.h). */
    bool writes = tmpl_wants_token(tmpl, count), cmk_base = handle_is_cmk(base_key);
    if (rv == CKR_OK && cmk_base)
        rv = cmk_resolve_for_use(session, base_key, CMK_USE_DERIVE, &base_key);
    if (rv == CKR_OK && cmk_base)
        MODULE_UNDER_TOKEN_LOCK_AS(writes, rv, module.be.fn->C_DeriveKey(session, mech, base_key,
                                                                         tmpl, count, key));
    else if (rv == CKR_OK)
        MODULE_UNDER_TOKEN_LOCK_IF(writes, rv,
                                   module.be.fn->C_DeriveKey(session, mech, base_key, tmpl, count, key));
    /* The spec's name for a CMK's missing key; a backend key's answer is the backend's. */
    if (rv == CKR_OBJECT_HANDLE_INVALID && cmk_base) rv = CKR_KEY_HANDLE_INVALID;
    if (rv == CKR_OK) object_track_new(session, *key);
    ENTRY_RETURN("C_DeriveKey", rv);
}
