/* cmk_unwrap.c - C_UnwrapKey under a CMK. A key wrapped before a rotation unwraps with the
 * version that wrapped it, as a cloud KMS decrypts ciphertext of older versions: when the
 * primary version's integrity check fails, the older versions are tried, newest first.
 * Only mechanisms that check integrity take part (AES key wrap, with or without padding,
 * and AES-GCM): under another key they fail, where CBC could hand back garbage. */
#include "cmk_unwrap.h"

#include <stdlib.h>

#include "cmk.h"
#include "cmk_cache.h"
#include "handles.h"
#include "log.h"
#include "module.h"
#include "sm_backend_map.h"
#include "template.h"

/* AES-GCM counts only with a tag of 96 bits or more: a short tag could let a wrong version
 * through now and then. */
static bool checks_integrity(const CK_MECHANISM *mech)
{
    if (!mech) return false;
    if (mech->mechanism == CKM_AES_KEY_WRAP || mech->mechanism == CKM_AES_KEY_WRAP_PAD) return true;
    return mech->mechanism == CKM_AES_GCM && mech->pParameter &&
           mech->ulParameterLen == sizeof(CK_GCM_PARAMS) &&
           ((const CK_GCM_PARAMS *)mech->pParameter)->ulTagBits >= 96;
}

/* How a backend says a wrapped key fails its integrity check under this key. SoftHSMv2
 * 2.6 says CKR_GENERAL_ERROR; the standard's code is CKR_WRAPPED_KEY_INVALID. */
static bool integrity_failed(CK_RV rv)
{
    return rv == CKR_GENERAL_ERROR || rv == CKR_WRAPPED_KEY_INVALID ||
           rv == CKR_ENCRYPTED_DATA_INVALID;
}

/* One version's backend object and mechanism, checked for the use (state, usage) and
 * mapped for an SM key. Done before the token lock is taken: the checks may read the
 * store, and the store is never waited for under the token lock. */
struct unwrap_target {
    CK_OBJECT_HANDLE material;
    CK_MECHANISM_PTR mech;
    CK_MECHANISM mapped;
};

static CK_RV target_of(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE cmk,
                       struct unwrap_target *t)
{
    t->material = cmk;
    t->mech = mech;
    return sm_map_resolve(session, &t->material, CMK_USE_UNWRAP, &t->mech, &t->mapped);
}

static CK_RV backend_unwrap(CK_SESSION_HANDLE session, const struct unwrap_target *t,
                            CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl,
                            CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    return module.be.fn->C_UnwrapKey(session, t->mech, t->material, wrapped, wrapped_len, tmpl,
                                     count, key);
}

/* After the primary's integrity check failed: the primary (first, resolved by the caller)
 * once more with other writers held off (SoftHSMv2 also says CKR_GENERAL_ERROR for a good
 * blob when another process rewrites the token's files meanwhile), then the older
 * versions, newest first. *own gets the reason of a version that could not try (its
 * material missing): it may be the one that wrapped the blob. */
static CK_RV try_every_version(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                               CK_OBJECT_HANDLE cmk, const struct unwrap_target *first,
                               CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl,
                               CK_ULONG count, CK_OBJECT_HANDLE_PTR key,
                               const struct cmk_live *live, CK_RV *own)
{
    /* older[i]: version primary - 1 - i; its material CK_INVALID_HANDLE when it cannot try */
    unsigned long n = handle_version(cmk) == 0 ? live->primary_version - 1 : 0;
    struct unwrap_target *older = n ? calloc(n, sizeof(*older)) : NULL;
    if (n && !older) return CKR_HOST_MEMORY;
    for (unsigned long i = 0; i < n; i++) {
        unsigned long v = live->primary_version - 1 - i;
        CK_RV r = target_of(session, mech, handle_for_version(handle_row(cmk), handle_kind(cmk), v),
                            &older[i]);
        if (r == CKR_OK) continue;
        older[i].material = CK_INVALID_HANDLE;
        if (*own == CKR_OK) {
            log_warning("C_UnwrapKey: key %s: version %lu cannot unwrap (0x%lx)", live->key_id, v,
                        r);
            *own = r;
        }
    }
    CK_RV rv = module_token_lock_as(tmpl_wants_token(tmpl, count));
    if (rv != CKR_OK) return rv;
    rv = backend_unwrap(session, first, wrapped, wrapped_len, tmpl, count, key);
    unsigned long used = 0; /* the older version that unwrapped it */
    for (unsigned long i = 0; i < n && rv != CKR_OK && integrity_failed(rv); i++) {
        if (older[i].material == CK_INVALID_HANDLE) continue;
        CK_RV r = backend_unwrap(session, &older[i], wrapped, wrapped_len, tmpl, count, key);
        if (r == CKR_OK)
            rv = CKR_OK, used = live->primary_version - 1 - i;
        else if (!integrity_failed(r) && *own == CKR_OK)
            *own = r;
    }
    module_token_unlock();
    if (used) log_info("C_UnwrapKey: key %s: unwrapped with its version %lu", live->key_id, used);
    free(older);
    return rv;
}

CK_RV cmk_unwrap(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE cmk,
                 CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                 CK_OBJECT_HANDLE_PTR key)
{
    struct unwrap_target first;
    CK_RV rv = target_of(session, mech, cmk, &first);
    if (rv != CKR_OK) return rv;
    /* A token object writes the token: exclusive. A session object's unwrap still uses the
     * version's material, which a purge destroys: shared (module.h: the lifetime of the
     * module's own backend objects). */
    rv = module_token_lock_as(tmpl_wants_token(tmpl, count));
    if (rv != CKR_OK) return rv;
    rv = backend_unwrap(session, &first, wrapped, wrapped_len, tmpl, count, key);
    module_token_unlock();
    if (rv == CKR_OK || !checks_integrity(mech) || !integrity_failed(rv)) return rv;
    struct cmk_live live;
    if (cmk_cache_get(handle_row(cmk), &live) != CKR_OK) return rv;
    CK_RV own = CKR_OK;
    rv = try_every_version(session, mech, cmk, &first, wrapped, wrapped_len, tmpl, count, key,
                           &live, &own);
    if (rv == CKR_OK || !integrity_failed(rv)) return rv;
    if (own != CKR_OK) return own;
    bool all = handle_version(cmk) == 0 && live.primary_version > 1;
    log_warning("C_UnwrapKey: key %s: the wrapped key fails the integrity check of %s "
                "(0x%lx from the backend): it was not wrapped by this key, or was changed",
                live.key_id, all ? "every version of the key" : "this version", rv);
    return CKR_WRAPPED_KEY_INVALID;
}
