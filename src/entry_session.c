/* entry_session.c - sessions and login. Session handles are the backend's own. */
#include "cmk.h"
#include "cmk_copy.h"
#include "cmk_import.h"
#include "handles.h"
#include "entry.h"
#include "session.h"
#include "session_gate.h"
#include "vendor_op.h"

/* A session on a pass-through slot: the backend's, recorded so that its calls are
 * forwarded (entry_gate.c) and held like any other; no token lock (another token's
 * files), no housekeeping. */
static CK_RV open_passthrough(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                              CK_SESSION_HANDLE_PTR session)
{
    CK_SLOT_ID backend_slot = module_passthrough_backend_slot(slot);
    session_gate_list_shared();
    CK_RV rv = module.be.fn->C_OpenSession(backend_slot, flags, app, notify, session);
    if (rv == CKR_OK) {
        rv = session_gate_add(*session, true, backend_slot);
        if (rv != CKR_OK) module.be.fn->C_CloseSession(*session);
    }
    session_gate_list_unlock();
    return rv;
}

/* Opening holds the sessions' list shared, so that no login, logout or close-all runs
 * between the backend's open and the record of it. The housekeeping that may follow
 * runs inside the new session like any call on it. */
CK_EXPORT CK_RV C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app,
                              CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session)
{
    ENTRY_BEGIN("C_OpenSession");
    if (slot != MODULE_SLOT_ID)
        ENTRY_RETURN("C_OpenSession", open_passthrough(slot, flags, app, notify, session));
    session_gate_list_shared();
    CK_RV rv;
    MODULE_UNDER_TOKEN_LOCK_SHARED(
        rv, module.be.fn->C_OpenSession(module.be.slot, flags, app, notify, session));
    if (rv == CKR_OK) {
        rv = session_gate_add(*session, false, module.be.slot);
        if (rv != CKR_OK) module.be.fn->C_CloseSession(*session);
    }
    session_gate_list_unlock();
    if (rv == CKR_OK) {
        __atomic_add_fetch(&module.open_sessions, 1, __ATOMIC_RELAXED);
        struct session_gate_entry *pass;
        if (session_gate_enter(*session, &pass) == CKR_OK) {
            cmk_housekeeping_if_due(*session);
            session_gate_leave(pass);
        }
    }
    ENTRY_RETURN("C_OpenSession", rv);
}

/* What the module keeps of a session the backend has closed. When the last session
 * closes, the backend drops its object handles, and so must our cache of them. */
static void forget_closed_session(CK_SESSION_HANDLE session)
{
    session_forget(session);
    cmk_copy_forget_session(session);
    if (vendor_op_any()) vendor_op_end_session(session);
    if (__atomic_sub_fetch(&module.open_sessions, 1, __ATOMIC_RELAXED) == 0) cmk_cache_forget_handles();
}

/* A call running on the session ends first; calls after the close, or waiting for it,
 * answer CKR_SESSION_HANDLE_INVALID. */
CK_EXPORT CK_RV C_CloseSession(CK_SESSION_HANDLE session)
{
    ENTRY_BEGIN("C_CloseSession");
    struct session_gate_entry *pass;
    CK_RV rv = session_gate_close_begin(session, &pass);
    if (rv != CKR_OK) ENTRY_RETURN("C_CloseSession", rv);
    rv = module.be.fn->C_CloseSession(session);
    if (rv == CKR_OK && !session_gate_passthrough(pass)) forget_closed_session(session);
    session_gate_close_end(pass, rv == CKR_OK);
    ENTRY_RETURN("C_CloseSession", rv);
}

/* Every session held: no call runs in any while the backend closes them all. Only the
 * slot's sessions are forgotten: the other slots' stay open, as on the backend. */
CK_EXPORT CK_RV C_CloseAllSessions(CK_SLOT_ID slot)
{
    ENTRY_BEGIN("C_CloseAllSessions");
    bool cmk = slot == MODULE_SLOT_ID;
    CK_SLOT_ID backend_slot = cmk ? module.be.slot : module_passthrough_backend_slot(slot);
    session_gate_hold_all();
    CK_RV rv = module.be.fn->C_CloseAllSessions(backend_slot);
    if (rv == CKR_OK && cmk) {
        session_forget_all();
        cmk_copy_forget_all();
        vendor_op_end_all();
        __atomic_store_n(&module.open_sessions, 0, __ATOMIC_RELAXED);
        cmk_cache_forget_handles();
    }
    if (rv == CKR_OK)
        session_gate_release_all_forget_slot(backend_slot);
    else
        session_gate_release_all();
    ENTRY_RETURN("C_CloseAllSessions", rv);
}

/* Written out rather than in entry_gated.def: its answer names a slot, which both kinds
 * of session map to the client's slot id. */
CK_EXPORT CK_RV C_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info)
{
    ENTRY_BEGIN("C_GetSessionInfo");
    struct session_gate_entry *pass;
    CK_RV rv = session_gate_enter(session, &pass);
    if (rv != CKR_OK)
        ENTRY_RETURN("C_GetSessionInfo", module_ready() ? rv : CKR_CRYPTOKI_NOT_INITIALIZED);
    rv = module.be.fn->C_GetSessionInfo(session, info);
    if (rv == CKR_OK) info->slotID = module_slot_of_backend(info->slotID);
    session_gate_leave(pass);
    ENTRY_RETURN("C_GetSessionInfo", rv);
}

CK_RV ENTRY_IMPL(C_GetOperationState)(CK_SESSION_HANDLE session, CK_BYTE_PTR state,
                                    CK_ULONG_PTR len)
{
    FORWARD(C_GetOperationState, session, state, len);
}

CK_RV ENTRY_IMPL(C_SetOperationState)(CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG len,
                                    CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key)
{
    ENTRY_BEGIN("C_SetOperationState");
    /* A saved state names keys by handle: CMK handles must become backend handles. */
    CK_RV rv = cmk_copy_resolve(session, &enc_key);
    if (rv == CKR_OK) rv = cmk_copy_resolve(session, &auth_key);
    if (rv == CKR_OK && enc_key && handle_is_cmk(enc_key))
        rv = cmk_resolve_backend(session, enc_key, &enc_key);
    if (rv == CKR_OK && auth_key && handle_is_cmk(auth_key))
        rv = cmk_resolve_backend(session, auth_key, &auth_key);
    if (rv == CKR_OBJECT_HANDLE_INVALID) rv = CKR_KEY_HANDLE_INVALID;
    if (rv == CKR_OK) rv = module.be.fn->C_SetOperationState(session, state, len, enc_key, auth_key);
    ENTRY_RETURN("C_SetOperationState", rv);
}

/* Login and logout change every session's state at once: they hold every session, so
 * no call is between its look at the key and the backend's use of it meanwhile (an
 * *Init that saw a key logged in must not reach the backend logged out). */
CK_EXPORT CK_RV C_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                        CK_ULONG len)
{
    ENTRY_BEGIN("C_Login");
    session_gate_hold_all();
    CK_RV rv = CKR_SESSION_HANDLE_INVALID;
    bool passthrough = false;
    bool open = session_gate_lookup(session, &passthrough);
    if (open && passthrough)
        rv = module.be.fn->C_Login(session, user, pin, len); /* another token: verbatim */
    else if (open)
        MODULE_UNDER_TOKEN_LOCK(rv, module.be.fn->C_Login(session, user, pin, len));
    session_gate_release_all();
    /* Only a logged-in user sees private material, so this is where half-made keys
     * left by crashed processes are cleaned and keys past their window destroyed, and
     * keys due for automatic rotation rotated. Inside the session like any call: a
     * logout waits for the chores to end. */
    struct session_gate_entry *pass;
    if (rv == CKR_OK && user == CKU_USER && !passthrough &&
        session_gate_enter(session, &pass) == CKR_OK) {
        cmk_housekeeping(session);
        session_gate_leave(pass);
    }
    ENTRY_RETURN("C_Login", rv);
}

CK_EXPORT CK_RV C_Logout(CK_SESSION_HANDLE session)
{
    ENTRY_BEGIN("C_Logout");
    session_gate_hold_all();
    CK_RV rv = CKR_SESSION_HANDLE_INVALID;
    bool passthrough = false;
    bool open = session_gate_lookup(session, &passthrough);
    if (open && passthrough) { /* another token: verbatim, as the backend answers */
        rv = module.be.fn->C_Logout(session);
        session_gate_release_all();
        ENTRY_RETURN("C_Logout", rv);
    }
    /* A logout with nobody logged in gets the backend's answer (SoftHSMv2: CKR_OK; the
     * spec: CKR_USER_NOT_LOGGED_IN), as clients that log out twice expect of their HSM. */
    if (open) rv = module.be.fn->C_Logout(session);
    if (rv == CKR_OK) cmk_cache_forget_handles(); /* private objects get new handles */
    session_gate_release_all();
    ENTRY_RETURN("C_Logout", rv);
}

CK_RV ENTRY_IMPL(C_GetFunctionStatus)(CK_SESSION_HANDLE session)
{
    FORWARD(C_GetFunctionStatus, session);
}

CK_RV ENTRY_IMPL(C_CancelFunction)(CK_SESSION_HANDLE session)
{
    FORWARD(C_CancelFunction, session);
}
