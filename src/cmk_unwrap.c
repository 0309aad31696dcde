/* cmk_unwrap.c - C_UnwrapKey under a CMK. A key wrapped before a rotation unwraps with the
 * version that wrapped it, as a cloud KMS decrypts ciphertext of older versions: when the
 * primary version's integrity check fails, the older versions are tried, newest first.
 * Only mechanisms that check integrity take part (AES key wrap, with or without padding,
 * and AES-GCM): under another key they fail, where CBC could hand back garbage. */
#include "cmk_unwrap.h"

#include "cmk.h"
#include "cmk_cache.h"
#include "handles.h"
#include "log.h"
#include "module.h"
#include "sm_backend_map.h"
#include "template.h"

static bool checks_integrity(const CK_MECHANISM *mech)
{
    return mech && (mech->mechanism == CKM_AES_KEY_WRAP ||
                    mech->mechanism == CKM_AES_KEY_WRAP_PAD || mech->mechanism == CKM_AES_GCM);
}

/* How a backend says a wrapped key fails its integrity check under this key. SoftHSMv2
 * 2.6 says CKR_GENERAL_ERROR; the standard's code is CKR_WRAPPED_KEY_INVALID. */
static bool integrity_failed(CK_RV rv)
{
    return rv == CKR_GENERAL_ERROR || rv == CKR_WRAPPED_KEY_INVALID ||
           rv == CKR_ENCRYPTED_DATA_INVALID;
}

/* One version (its CMK handle): state and usage checked, the mechanism mapped for an SM
 * key, the backend's unwrap under the token lock when it makes a token object. */
static CK_RV unwrap_with(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE cmk,
                         CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl,
                         CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    CK_MECHANISM mapped;
    CK_OBJECT_HANDLE material = cmk;
    CK_RV rv = sm_map_resolve(session, &material, CMK_USE_UNWRAP, &mech, &mapped);
    if (rv != CKR_OK) return rv;
    bool token = tmpl_wants_token(tmpl, count);
    if (token) module_token_lock();
    rv = module.be.fn->C_UnwrapKey(session, mech, material, wrapped, wrapped_len, tmpl, count, key);
    if (token) module_token_unlock();
    return rv;
}

CK_RV cmk_unwrap(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE cmk,
                 CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                 CK_OBJECT_HANDLE_PTR key)
{
    CK_RV rv = unwrap_with(session, mech, cmk, wrapped, wrapped_len, tmpl, count, key);
    if (rv == CKR_OK || !checks_integrity(mech) || !integrity_failed(rv)) return rv;
    struct cmk_live live;
    if (cmk_cache_get(handle_row(cmk), &live) != CKR_OK) return rv;
    unsigned long tried = 1;
    if (handle_version(cmk) == 0) {
        for (unsigned long v = live.primary_version - 1; v >= 1; v--, tried++) {
            CK_OBJECT_HANDLE older = handle_for_version(handle_row(cmk), handle_kind(cmk), v);
            CK_RV r = unwrap_with(session, mech, older, wrapped, wrapped_len, tmpl, count, key);
            if (r == CKR_OK) {
                log_info("C_UnwrapKey: key %s: unwrapped with its version %lu", live.key_id, v);
                return CKR_OK;
            }
            if (!integrity_failed(r)) return r; /* refused for a reason of its own: say it */
        }
    }
    log_warning("C_UnwrapKey: key %s: the wrapped key fails the integrity check of %s "
                "(0x%lx from the backend): it was not wrapped by this key, or was changed",
                live.key_id, tried > 1 ? "every version of the key" : "this version", rv);
    return CKR_WRAPPED_KEY_INVALID;
}
