/* session_gate.h - which sessions are open through the module, and who is inside each.
 *
 * The rule it keeps: nothing of a session (the backend's session, the module's record of
 * an operation, a SOFTWARE key's running state, a find) is freed or changed under a
 * thread that is inside a call on that session. SoftHSMv2 frees a session's operation
 * when another thread closes the session, and the module's own records would be freed
 * likewise, so the backend alone crashes where cmkp11 must not.
 *
 * - A call on a session enters it: calls on one session run one at a time (PKCS#11 lets
 *   an application share a session between threads; the backend and our records are not
 *   safe for two at once), calls on different sessions never wait for each other.
 * - Closing a session waits until no call is inside it; later calls on it answer
 *   CKR_SESSION_HANDLE_INVALID.
 * - Session-wide acts (login, logout, close all, finalize) hold every session: they wait
 *   until no call is inside any, and no call starts until they are done. Opening and
 *   closing a session hold the sessions' list shared, so they never overlap those.
 * Lock order: the list lock, then one session's lock (or all of them, in table order),
 * then every other lock of the module. */
#ifndef CMKP11_SESSION_GATE_H
#define CMKP11_SESSION_GATE_H

#include "fork_phase.h"

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

struct session_gate_entry;

/* What every entry starts with, so that the exported functions route a call with one
 * load (session_gate_passthrough) and no call: whether the session is on a pass-through
 * slot (any backend slot but the CMK token's: every call is forwarded verbatim), and the
 * backend slot it was opened on. */
struct session_gate_head {
    bool passthrough;
    CK_SLOT_ID backend_slot;
};

/* Records a session the backend has just opened on backend_slot. The caller holds the
 * list shared (session_gate_list_shared). CKR_HOST_MEMORY when it cannot. */
CK_RV session_gate_add(CK_SESSION_HANDLE session, bool passthrough, CK_SLOT_ID backend_slot);

/* Is the session entered as pass (session_gate_enter, _close_begin) a pass-through one? */
static inline bool session_gate_passthrough(const struct session_gate_entry *pass)
{
    return ((const struct session_gate_head *)(const void *)pass)->passthrough;
}
void session_gate_list_shared(void);
void session_gate_list_unlock(void);

/* Enters a session for one call (*pass names it for the leave), waiting for a call
 * already inside. CKR_SESSION_HANDLE_INVALID for a session not open through the module
 * or being closed. */
CK_RV session_gate_enter(CK_SESSION_HANDLE session, struct session_gate_entry **pass);
void session_gate_leave(struct session_gate_entry *pass);

/* Closing one session: begin waits until no call is inside it and keeps new ones out
 * (CKR_SESSION_HANDLE_INVALID when it is not open or already closing); end takes it off
 * the list when closed, else lets calls in again. */
CK_RV session_gate_close_begin(CK_SESSION_HANDLE session, struct session_gate_entry **pass);
void session_gate_close_end(struct session_gate_entry *pass, bool closed);

/* Holds every session (see above). end_forget ends the hold by taking every session off
 * the list (all were closed): a call that waited for one of them answers
 * CKR_SESSION_HANDLE_INVALID. */
void session_gate_hold_all(void);
void session_gate_release_all(void);
void session_gate_release_all_forget(void);
/* Ends the hold by taking off the list the sessions opened on backend_slot alone (the
 * backend closed that slot's sessions: C_CloseAllSessions); the others stay open. */
void session_gate_release_all_forget_slot(CK_SLOT_ID backend_slot);

/* True when the session is open through the module. */
bool session_gate_is_open(CK_SESSION_HANDLE session);
/* True when the session is open through the module; *passthrough says its kind. */
bool session_gate_lookup(CK_SESSION_HANDLE session, bool *passthrough);

/* fork_phase.h: a child drops every session (it has none of the parent's). */
void session_gate_at_fork(enum fork_phase p);

#endif
