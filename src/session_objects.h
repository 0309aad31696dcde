/* session_objects.h - the session objects this process made through cmkp11.
 * Finds for keys answer from the store and from this short list, so they need not
 * scan the backend token (SoftHSMv2's find reads every object it holds). */
#ifndef CMKP11_SESSION_OBJECTS_H
#define CMKP11_SESSION_OBJECTS_H

#include "fork_phase.h"

#include <p11-kit/pkcs11.h>

void session_objects_add(CK_OBJECT_HANDLE handle);
void session_objects_remove(CK_OBJECT_HANDLE handle);
void session_objects_clear(void);
/* A copy of the list (malloc'd, caller frees); NULL with count 0 when empty. */
CK_OBJECT_HANDLE *session_objects_snapshot(CK_ULONG *count);

/* fork_phase.h: the list's lock across fork(). */
void session_objects_at_fork(enum fork_phase p);

#endif
