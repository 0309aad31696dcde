/* session.h - what cmkp11 keeps per session: the results of an active find.
 * Session handles are the backend's own, so forwarded calls need no lookup at all. */
#ifndef CMKP11_SESSION_H
#define CMKP11_SESSION_H

#include "fork_phase.h"

#include <p11-kit/pkcs11.h>

/* Takes ownership of handles. CKR_OPERATION_ACTIVE if a find is already running. */
CK_RV session_find_begin(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *handles, CK_ULONG count);
CK_RV session_find_next(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *out, CK_ULONG max,
                        CK_ULONG *count);
CK_RV session_find_end(CK_SESSION_HANDLE session);
/* True while a find is active (C_FindObjectsInit done, Final not yet). */
int session_find_active(CK_SESSION_HANDLE session);
void session_forget(CK_SESSION_HANDLE session);
void session_forget_all(void);

/* fork_phase.h: the find states' lock across fork(). */
void session_at_fork(enum fork_phase p);

#endif
