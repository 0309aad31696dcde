/* backend_gate.h - no fork() while a thread is inside the backend.
 *
 * An HSM vendor's module keeps locks of its own (SoftHSMv2: its object store's, its
 * secure allocator's), and a child forked while another thread held one inherits it held
 * for ever: its first C_Finalize or C_Initialize of the backend hangs. cmkp11 cannot reach
 * those locks, so it makes the instant of the fork one at which no thread is inside a
 * backend call: every call goes through a wrapper (backend_calls.def) that counts itself
 * in and out, and the forking thread (module.c's fork handlers) waits until the count is
 * zero and holds new calls back until the fork is done. A wrapped call costs two atomic
 * additions on a counter of the thread's own cache line, and no lock.
 *
 * A leaf of the module's fork order: nothing inside the backend waits for a lock of ours,
 * so it comes after every other lock but the log's. */
#ifndef CMKP11_BACKEND_GATE_H
#define CMKP11_BACKEND_GATE_H

#include "fork_phase.h"

#include <p11-kit/pkcs11.h>

/* A function list that calls real's functions through the gate; NULL entries stay NULL.
 * One backend per process: the list is static, and replaced by the next call. */
CK_FUNCTION_LIST_PTR backend_gate_wrap(CK_FUNCTION_LIST_PTR real);

/* fork_phase.h: PREPARE waits until no other thread is inside the backend. */
void backend_gate_at_fork(enum fork_phase p);

#endif
