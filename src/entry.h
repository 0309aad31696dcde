/* entry.h - what every exported C_* function starts and ends with. */
#ifndef CMKP11_ENTRY_H
#define CMKP11_ENTRY_H

#include <p11-kit/pkcs11.h>

#include "cmkp11/cmkp11.h"
#include "log.h"
#include "module.h"

#define CK_EXPORT __attribute__((visibility("default")))

/* Every entry point traces in/out at debug level and refuses before C_Initialize. */
#define ENTRY_BEGIN(name)                                                                          \
    log_debug("%s: in", name);                                                                    \
    if (!module_ready()) return CKR_CRYPTOKI_NOT_INITIALIZED

#define ENTRY_RETURN(name, expr)                                                                   \
    do {                                                                                           \
        CK_RV entry_rv_ = (expr);                                                                  \
        log_debug("%s: out 0x%lx", name, entry_rv_);                                              \
        return entry_rv_;                                                                          \
    } while (0)

/* Forwards a call unchanged: session handles are the backend's own. */
#define FORWARD(func, ...)                                                                         \
    do {                                                                                           \
        ENTRY_BEGIN(#func);                                                                        \
        ENTRY_RETURN(#func, module.be.fn->func(__VA_ARGS__));                                      \
    } while (0)

/* FORWARD for a call that rewrites the backend token's files: under the token lock. */
#define FORWARD_WRITING_TOKEN(func, ...)                                                           \
    do {                                                                                           \
        ENTRY_BEGIN(#func);                                                                        \
        CK_RV forwarded_rv;                                                                        \
        MODULE_UNDER_TOKEN_LOCK(forwarded_rv, module.be.fn->func(__VA_ARGS__));                    \
        ENTRY_RETURN(#func, forwarded_rv);                                                         \
    } while (0)

/* The body of a function that acts on one session: the exported name (entry_gate.c) holds
 * the session around it (session_gate.h). Bodies call each other by this name, never by
 * the exported one, which would wait on the session they already hold. */
#define ENTRY_IMPL(name) entry_impl_##name
#define ENTRY_GATED(name, params, args) CK_RV ENTRY_IMPL(name) params;
#include "entry_gated.def"
#undef ENTRY_GATED

extern CK_FUNCTION_LIST entry_function_list;

#endif
