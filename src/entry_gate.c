/* entry_gate.c - the exported functions that act on one session (entry_gated.def): each
 * holds its session for the length of the call, so that no other thread closes it, logs
 * out or finalises under the call (session_gate.h), then runs the body, or, on a session
 * of a pass-through slot (module.h: MODULE_SLOT_ID), forwards the call to the backend verbatim: one
 * load and one branch that the CMK path does not take. */
#include "entry.h"
#include "session_gate.h"
#include "util.h"

#define ENTRY_GATED(name, params, args)                                                            \
    CK_EXPORT CK_RV name params                                                                    \
    {                                                                                              \
        if (!module_ready()) return CKR_CRYPTOKI_NOT_INITIALIZED;                                  \
        struct session_gate_entry *pass;                                                           \
        CK_RV rv = session_gate_enter(session, &pass);                                             \
        if (rv != CKR_OK) {                                                                        \
            log_debug("%s: session 0x%lx is not open", #name, session);                            \
            return module_ready() ? rv : CKR_CRYPTOKI_NOT_INITIALIZED;                             \
        }                                                                                          \
        util_pause_point(#name); /* tests: hold a call inside its session */                       \
        if (__builtin_expect(session_gate_passthrough(pass), 0))                                   \
            rv = module.be.fn->name args;                                                          \
        else                                                                                       \
            rv = ENTRY_IMPL(name) args;                                                            \
        session_gate_leave(pass);                                                                  \
        return rv;                                                                                 \
    }
#include "entry_gated.def"
