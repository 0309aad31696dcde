/* cmk_use.c - may this CMK do this now? And which backend object does it? */
#include <stdio.h>
#include <string.h>

#include "cmk.h"
#include "cmk_request.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "log.h"
#include "module.h"
#include "util.h"

static const char *use_name(enum cmk_use use)
{
    static const char *const names[] = {"encrypt", "decrypt", "sign",   "verify",
                                        "wrap",    "unwrap",  "derive", "digest"};
    return names[use];
}

static const char *state_name(unsigned long state)
{
    switch (state) {
    case CMK_STATE_ENABLED: return "Enabled";
    case CMK_STATE_DISABLED: return "Disabled";
    case CMK_STATE_PENDING_DELETION: return "PendingDeletion";
    case CMK_STATE_PENDING_IMPORT: return "PendingImport";
    default: return "Creating";
    }
}

/* A key may have several usages (CMK_USAGE_ALSO): each operation needs one of them. The
 * backend still checks the object's own flag (CKA_DECRYPT...), as it would alone. */
static bool usage_allows(unsigned long usage, enum cmk_use use)
{
    switch (use) {
    case CMK_USE_ENCRYPT:
    case CMK_USE_DECRYPT:
    case CMK_USE_WRAP:
    case CMK_USE_UNWRAP: return CMK_USAGE_HAS(usage, CMK_USAGE_ENCRYPT_DECRYPT);
    case CMK_USE_SIGN:
    case CMK_USE_VERIFY:
        return CMK_USAGE_HAS(usage, CMK_USAGE_SIGN_VERIFY) ||
               CMK_USAGE_HAS(usage, CMK_USAGE_GENERATE_VERIFY_MAC);
    case CMK_USE_DERIVE: return CMK_USAGE_HAS(usage, CMK_USAGE_KEY_AGREEMENT);
    case CMK_USE_DIGEST: return false;
    }
    return false;
}

static CK_OBJECT_CLASS class_of(unsigned kind)
{
    return kind == CMK_OBJ_SECRET    ? CKO_SECRET_KEY
           : kind == CMK_OBJ_PRIVATE ? CKO_PRIVATE_KEY
                                     : CKO_PUBLIC_KEY;
}

/* Asks the backend for one version's material, by the identity CreateKey gave it. */
static CK_RV find_material(CK_SESSION_HANDLE session, const struct cmk_live *live, unsigned kind,
                           unsigned long version, CK_OBJECT_HANDLE *out)
{
    unsigned char bid[CMK_BACKEND_ID_LEN];
    cmk_backend_id(live->key_id, version, bid);
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CK_RV rv = module_backend_find_by_id(session, bid, sizeof(bid), class_of(kind), found, 2, &n);
    if (rv == CKR_OK && n == 0) {
        /* A call outside the token lock (an operation's init refreshes SoftHSMv2's index)
         * may have indexed the object from a file another process was still writing;
         * SoftHSMv2 reads it again at the next look. So look once more before calling the
         * material missing. */
        rv = module_backend_find_by_id(session, bid, sizeof(bid), class_of(kind), found, 2, &n);
    }
    if (rv != CKR_OK) return rv;
    if (n == 0 && !module_backend_token_present()) return CKR_DEVICE_REMOVED;
    if (n == 0) {
        /* Private material is invisible before login: say so rather than "invalid". */
        CK_SESSION_INFO info;
        if (kind != CMK_OBJ_PUBLIC && module.be.fn->C_GetSessionInfo(session, &info) == CKR_OK &&
            info.state != CKS_RO_USER_FUNCTIONS && info.state != CKS_RW_USER_FUNCTIONS)
            return CKR_USER_NOT_LOGGED_IN;
        log_error("key %s version %lu: its material is missing from the backend token",
                  live->key_id, version);
        return CKR_OBJECT_HANDLE_INVALID;
    }
    *out = found[0];
    return CKR_OK;
}

/* The backend object behind a CMK object, found once per process and version. */
static CK_RV lookup_backend(CK_SESSION_HANDLE session, struct cmk_live *live, unsigned kind,
                            unsigned long version, CK_OBJECT_HANDLE *out)
{
    if (live->protection == CMK_PROTECTION_SOFTWARE) {
        log_warning("key %s: protection level SOFTWARE: it has no backend object; only "
                    "encrypt, decrypt, sign and verify run on it, in the module",
                    live->key_id);
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    bool pub = kind == CMK_OBJ_PUBLIC;
    if (version == 0 || version == live->primary_version) {
        CK_OBJECT_HANDLE cached = pub ? live->backend_public : live->backend_main;
        if (cached) {
            *out = cached;
            return CKR_OK;
        }
        CK_RV rv = find_material(session, live, kind, live->primary_version, out);
        if (rv == CKR_OK)
            cmk_cache_set_handles(live->row, live->primary_version, live->handle_epoch,
                                  pub ? 0 : *out, pub ? *out : 0);
        return rv;
    }
    if (!pub && (*out = cmk_cache_version_handle(live->row, version, live->handle_epoch)))
        return CKR_OK;
    CK_RV rv = find_material(session, live, kind, version, out);
    if (rv == CKR_OK && !pub) cmk_cache_set_version_handle(live->row, version, live->handle_epoch, *out);
    return rv;
}

static CK_RV live_of(CK_OBJECT_HANDLE handle, struct cmk_live *live)
{
    unsigned kind = handle_kind(handle);
    CK_RV rv = cmk_cache_get(handle_row(handle), live);
    if (rv != CKR_OK) return rv;
    if (live->state == CMK_STATE_CREATING || !(live->objects & kind) ||
        handle_version(handle) > live->primary_version)
        return CKR_OBJECT_HANDLE_INVALID;
    return CKR_OK;
}

CK_RV cmk_resolve_backend(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                          CK_OBJECT_HANDLE *backend)
{
    struct cmk_live live;
    CK_RV rv = live_of(handle, &live);
    if (rv != CKR_OK) return rv;
    return lookup_backend(session, &live, handle_kind(handle), handle_version(handle), backend);
}

static CK_RV check_use(const struct cmk_live *live, enum cmk_use use, unsigned long version)
{
    if (live->state != CMK_STATE_ENABLED) {
        log_warning("key %s: cannot %s: key state is %s (only Enabled keys may be used)",
                    live->key_id, use_name(use), state_name(live->state));
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    if (live->material_expires && util_now() >= live->material_expires) {
        log_warning("key %s: cannot %s: its imported key material expired at %lld",
                    live->key_id, use_name(use), (long long)live->material_expires);
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    if (!usage_allows(live->usage, use)) {
        char names[CMK_USAGE_NAME_SIZE];
        log_warning("key %s: cannot %s: key usage is %s", live->key_id, use_name(use),
                    cmk_request_usage_name(live->usage, names));
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    bool producing = use == CMK_USE_ENCRYPT || use == CMK_USE_SIGN || use == CMK_USE_WRAP;
    if (producing && version != 0 && version != live->primary_version) {
        log_warning("key %s: cannot %s with version %lu: only the primary version %lu may",
                    live->key_id, use_name(use), version, live->primary_version);
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    return CKR_OK;
}

CK_RV cmk_resolve_for_use(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, enum cmk_use use,
                          CK_OBJECT_HANDLE *backend)
{
    return cmk_resolve_version_for_use(session, handle, handle_version(handle), use, backend, NULL);
}

/* A refusal of the key means nothing for a session that is not there: the session's
 * own code goes first. Asked only when refusing, so the way to a usable key costs none. */
static CK_RV refusal(CK_SESSION_HANDLE session, CK_RV rv)
{
    CK_SESSION_INFO info;
    CK_RV srv = module.be.fn->C_GetSessionInfo(session, &info);
    return srv == CKR_OK ? rv : srv;
}

CK_RV cmk_check_use(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, unsigned long version,
                    enum cmk_use use, struct cmk_live *facts)
{
    CK_RV rv = live_of(handle, facts);
    if (rv == CKR_OBJECT_HANDLE_INVALID) return refusal(session, CKR_KEY_HANDLE_INVALID);
    if (rv != CKR_OK) return rv;
    if (version > facts->primary_version) return refusal(session, CKR_KEY_HANDLE_INVALID);
    if ((rv = check_use(facts, use, version)) != CKR_OK) return refusal(session, rv);
    /* The backend refuses an HSM key's secret or private half to a session without the
     * user logged in. A SOFTWARE key's material is unsealed in this process, maybe still
     * cached from an earlier login: the module must refuse it the same way. Asked at
     * every call, as the backend does: a logout between the Init and the call counts. */
    if (facts->protection == CMK_PROTECTION_SOFTWARE && handle_kind(handle) != CMK_OBJ_PUBLIC &&
        !backend_session_logged_in(&module.be, session)) {
        log_warning("key %s: cannot %s: protection level SOFTWARE: its %s key needs the user "
                    "logged in",
                    facts->key_id, use_name(use),
                    handle_kind(handle) == CMK_OBJ_SECRET ? "secret" : "private");
        return refusal(session, CKR_USER_NOT_LOGGED_IN);
    }
    return CKR_OK;
}

CK_RV cmk_resolve_version_for_use(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                                  unsigned long version, enum cmk_use use,
                                  CK_OBJECT_HANDLE *backend, struct cmk_live *facts)
{
    struct cmk_live live;
    CK_RV rv = cmk_check_use(session, handle, version, use, &live);
    if (rv != CKR_OK) return rv;
    if (facts) *facts = live;
    return lookup_backend(session, &live, handle_kind(handle), version, backend);
}

CK_RV cmk_backend_of_checked(CK_SESSION_HANDLE session, struct cmk_live *facts,
                             CK_OBJECT_HANDLE handle, CK_OBJECT_HANDLE *backend)
{
    return lookup_backend(session, facts, handle_kind(handle), handle_version(handle), backend);
}

CK_RV cmk_object_size(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, CK_ULONG *size)
{
    struct cmk_live live;
    CK_RV rv = live_of(handle, &live);
    if (rv != CKR_OK) return refusal(session, rv);
    if (live.protection == CMK_PROTECTION_SOFTWARE) {
        /* No backend object to ask, and the size of material sealed in the store is not
         * the client's business: the spec's "unavailable". The store read says whether the
         * object is visible to this session (a private half needs a login). */
        rv = cmk_object_exists(session, handle);
        if (rv == CKR_OK && !size) rv = CKR_ARGUMENTS_BAD;
        if (rv == CKR_OK) *size = CK_UNAVAILABLE_INFORMATION;
        return rv;
    }
    CK_OBJECT_HANDLE backend;
    rv = lookup_backend(session, &live, handle_kind(handle), handle_version(handle), &backend);
    return rv == CKR_OK ? module.be.fn->C_GetObjectSize(session, backend, size) : rv;
}

CK_RV cmk_object_exists(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle)
{
    CK_OBJECT_CLASS cls;
    CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof(cls)};
    if (handle == CK_INVALID_HANDLE) return refusal(session, CKR_OBJECT_HANDLE_INVALID);
    if (!handle_is_cmk(handle)) return module.be.fn->C_GetAttributeValue(session, handle, &a, 1);
    CK_RV rv = cmk_get_attributes(session, handle, &a, 1);
    return rv == CKR_OK ? rv : refusal(session, rv);
}
