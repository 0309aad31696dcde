/* cmk_token.c - C_InitToken on the CMK token: the SO's explicit act, and the end of
 * every CMK on it. The backend token is re-initialised as it would be alone (its
 * material gone, a SOFTWARE key's master key too), and the store forgets, in the
 * transaction that was open around the backend call, everything that named it: the
 * keys (versions, tags, sealed material, import state go with them) and the records of
 * pass-through objects. Nothing is left that names material that is gone. */
#include "cmk_token.h"

#include <stdio.h>
#include <string.h>

#include "cmk.h"
#include "cmk_cache.h"
#include "cmk_create.h"
#include "log.h"
#include "module.h"
#include "object_track.h"
#include "session_gate.h"
#include "soft_key.h"
#include "soft_pubcache.h"

/* Does the 32-byte blank-padded field equal text (at most 32 bytes)? */
static bool padded_equals(const CK_UTF8CHAR *field, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (!text || n > 32 || memcmp(field, text, n) != 0) return false;
    for (size_t i = n; i < 32; i++)
        if (field[i] != ' ') return false;
    return true;
}

bool cmk_token_label_is_backend_token(const CK_UTF8CHAR *label)
{
    return padded_equals(label, module.cfg.backend_token_label);
}

/* For log lines: the label as given, without its padding. */
static void label_text(const CK_UTF8CHAR *label, char out[33])
{
    size_t n = 32;
    while (n > 0 && label[n - 1] == ' ')
        n--;
    for (size_t i = 0; i < n; i++)
        out[i] = label[i] >= 0x20 && label[i] < 0x7f ? (char)label[i] : '?';
    out[n] = '\0';
}

/* The checks that need no store: the request itself and this process's sessions. */
static CK_RV check_request(CK_UTF8CHAR_PTR pin, CK_UTF8CHAR_PTR label)
{
    unsigned long open = __atomic_load_n(&module.open_sessions, __ATOMIC_RELAXED);
    if (open > 0) {
        log_warning("C_InitToken: %lu session(s) of this process are open on the CMK token; a "
                    "token is initialised with none open (close them first)",
                    open);
        return CKR_SESSION_EXISTS;
    }
    if (!pin || !label) {
        log_error("C_InitToken: %s: NULL; refused", pin ? "label" : "pin");
        return CKR_ARGUMENTS_BAD;
    }
    if (!padded_equals(label, module.cfg.token_label)) {
        char given[33];
        label_text(label, given);
        log_error("C_InitToken: label: '%s' is not the CMK token's label '%s' ([token] label in "
                  "%s): the CMK token keeps its configured label; refused, nothing changed",
                  given, module.cfg.token_label, module.cfg.path);
        return CKR_ACTION_PROHIBITED;
    }
    if (module.cfg.init_token == INIT_TOKEN_REFUSE) {
        log_error("C_InitToken: refused by [policy] init_token = refuse: initialise the backend "
                  "token with the HSM's own tools; nothing changed");
        return CKR_ACTION_PROHIBITED;
    }
    return CKR_OK;
}

/* The backend's C_InitToken on the CMK token, under the exclusive token lock, with the
 * backend token's own label, so that [backend] token_label (or token_serial) still
 * finds it. */
static CK_RV backend_reinit(CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    if (!module.be.fn->C_InitToken) {
        log_error("C_InitToken: the backend module has no C_InitToken");
        return CKR_FUNCTION_NOT_SUPPORTED;
    }
    CK_RV rv = module_token_lock();
    if (rv != CKR_OK) return rv;
    CK_TOKEN_INFO info;
    rv = module.be.fn->C_GetTokenInfo(module.be.slot, &info);
    if (rv == CKR_OK) rv = module.be.fn->C_InitToken(module.be.slot, pin, pin_len, info.label);
    module_token_unlock();
    if (rv != CKR_OK) log_info("C_InitToken: the backend refused: 0x%lx; nothing changed", rv);
    return rv;
}

/* What the store forgets, and the audit row that says so; a transaction of its own
 * when the caller has none. */
static enum store_status forget_token(int64_t *keys, int64_t *objects)
{
    enum store_status s = store_begin(module.store);
    if (s != STORE_OK) return s;
    s = store_token_reset(module.store, keys, objects);
    char detail[128];
    snprintf(detail, sizeof(detail), "keys=%lld objects=%lld", (long long)*keys,
             (long long)*objects);
    if (s == STORE_OK) s = store_audit(module.store, "InitToken", NULL, detail);
    if (s == STORE_OK) return store_commit(module.store);
    store_rollback(module.store);
    return s;
}

/* The process's own memory of the keys that went: facts, handles, unsealed material,
 * decoded public keys, pass-through records. Other processes see the store's change
 * at their next operation init (store_signal.c) and find the keys gone. */
static void forget_in_process(void)
{
    cmk_cache_clear();
    soft_key_cleanup();
    soft_pubcache_clear();
    object_track_reset();
    cmk_housekeeping_reset();
}

/* With every session held (none of the CMK slot's open): the store's write transaction
 * first, then the token lock (the module's lock order), so that no process creates,
 * rotates or imports a key between the policy's look at the store and the end. */
static CK_RV init_held(CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label)
{
    CK_RV rv = check_request(pin, label);
    if (rv != CKR_OK) return rv;
    enum store_status s = store_begin(module.store);
    if (s != STORE_OK) return cmk_create_store_rv(s);
    int64_t keys = 0, objects = 0;
    s = store_cmk_count(module.store, &keys);
    if (s != STORE_OK) {
        rv = cmk_create_store_rv(s);
    } else if (keys > 0 && module.cfg.init_token == INIT_TOKEN_REFUSE_WITH_KEYS) {
        log_error("C_InitToken: refused by [policy] init_token = refuse_with_keys: the token "
                  "holds %lld CMK(s) (any state, pending deletion included); nothing changed",
                  (long long)keys);
        rv = CKR_ACTION_PROHIBITED;
    } else {
        rv = backend_reinit(pin, pin_len);
    }
    if (rv != CKR_OK) {
        store_rollback(module.store);
        return rv;
    }
    /* The backend's material is gone now: the store must follow. Inside the open
     * transaction first; should that commit fail, once more on its own. */
    s = forget_token(&keys, &objects);
    if (s == STORE_OK) {
        s = store_commit(module.store);
    } else {
        store_rollback(module.store);
    }
    if (s != STORE_OK) s = forget_token(&keys, &objects);
    forget_in_process();
    if (s != STORE_OK) {
        log_error("C_InitToken: the backend token was initialised but the store could not "
                  "forget its keys (%s): its CMKs name material that is gone; run "
                  "C_InitToken again once the store is writable",
                  store_status_name(s));
        return cmk_create_store_rv(s);
    }
    log_info("C_InitToken: the CMK token was initialised by the SO: %lld CMK(s) and %lld "
             "recorded object(s) are gone",
             (long long)keys, (long long)objects);
    return CKR_OK;
}

CK_RV cmk_token_init(CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label)
{
    session_gate_hold_all();
    CK_RV rv = init_held(pin, pin_len, label);
    session_gate_release_all();
    return rv;
}
