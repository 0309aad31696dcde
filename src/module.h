/* module.h - the state of one loaded cmkp11: configuration, backend, store. */
#ifndef CMKP11_MODULE_H
#define CMKP11_MODULE_H

#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <unistd.h>

#include "backend.h"
#include "config.h"
#include "store.h"

/* The CMK slot: the configured backend token, with CMK semantics, is slot 0. Every other
 * backend slot (its free slot, other tokens) is a pass-through slot: listed where the
 * backend lists it, and every call on it or on its sessions forwarded verbatim. A
 * pass-through slot keeps the backend's own id, except that the backend slot numbered 0,
 * when it is not the CMK token's, takes the id the CMK token has in the backend (a swap:
 * ids never collide, and the CMK token's backend slot is never reachable as a
 * pass-through one). */
#define MODULE_SLOT_ID 0UL

struct module {
    bool initialized;
    pid_t pid; /* the process that initialised: a forked child must start afresh */
    struct config cfg;
    struct backend be;
    struct store *store;
    unsigned long open_sessions; /* atomic: sessions opened through us and not closed */
    int token_lock_fd;           /* see module_token_lock */
};

extern struct module module;

/* Set in a forked child (pthread_atfork), so that module_ready needs no getpid()
 * system call on every entry point. */
extern volatile bool module_forked;

/* True when C_Initialize has run in this process (not merely in a parent). */
static inline bool module_ready(void)
{
    return module.initialized && !module_forked;
}

/* Serialises, across the processes sharing this store and across this process's
 * threads, the backend calls that rewrite or read the backend token's own files:
 * SoftHSMv2 rewrites them at every login and object creation, change or destruction,
 * and a reader meanwhile fails or, within one process, spoils the object being written
 * (module_backend_find_by_id). Every backend call that writes a token object takes it
 * exclusively, every backend find shared. Cheap: an uncontended flock, on calls that
 * take milliseconds anyway. A holder found stopped (SIGSTOP, a debugger) is waited for
 * [token] lock_wait_seconds (10 s) at most, and this process's other threads six times
 * that; past it, CKR_FUNCTION_FAILED and one log line naming the holder, and the caller
 * must not make the backend call; unlock only after CKR_OK. */
CK_RV module_token_lock(void) __attribute__((warn_unused_result));
/* The same lock, shared: for calls that only read the token's state files. Taken again
 * by a thread that holds it either way, it only counts. */
CK_RV module_token_lock_shared(void) __attribute__((warn_unused_result));
void module_token_unlock(void);
/* True when this thread's last wait for the token lock ran out: a retry would only wait
 * again (CKR_FUNCTION_FAILED is also a backend's transient failure). */
bool module_token_lock_gave_up(void);
/* The token lock exclusive when the section writes the token, else shared. */
static inline CK_RV module_token_lock_as(bool writes)
{
    return writes ? module_token_lock() : module_token_lock_shared();
}
/* rv = call, made under the token lock, exclusive when `writes`, else shared; a lock not
 * had within the bound is the answer, and then the call is not made. */
#define MODULE_UNDER_TOKEN_LOCK_AS(writes, rv, call)                                               \
    do {                                                                                           \
        (rv) = module_token_lock_as(writes);                                                       \
        if ((rv) == CKR_OK) {                                                                      \
            (rv) = (call);                                                                         \
            module_token_unlock();                                                                 \
        }                                                                                          \
    } while (0)
#define MODULE_UNDER_TOKEN_LOCK(rv, call) MODULE_UNDER_TOKEN_LOCK_AS(true, rv, call)
#define MODULE_UNDER_TOKEN_LOCK_SHARED(rv, call) MODULE_UNDER_TOKEN_LOCK_AS(false, rv, call)
/* Under the exclusive lock when `writes` (a token object is written), else the call alone. */
#define MODULE_UNDER_TOKEN_LOCK_IF(writes, rv, call)                                               \
    do {                                                                                           \
        (rv) = (writes) ? module_token_lock() : CKR_OK;                                            \
        if ((rv) == CKR_OK) {                                                                      \
            (rv) = (call);                                                                         \
            if (writes) module_token_unlock();                                                     \
        }                                                                                          \
    } while (0)
/* The lifetime of the module's own backend objects. Import wrapping pairs, import
 * candidates, the material of a CMK's versions, the SOFTWARE master key, the import token
 * key: the module makes them for its own use, and destroys or replaces them itself (an
 * import that used the parameters, newer parameters, a purge, an undone creation).
 * SoftHSMv2 frees an object under a call of another thread that is using it (the next
 * read of it crashes: C_Decrypt -> RSA_size, C_UnwrapKey), and another process's destroy
 * of a token object spoils this process's view of it likewise. So, the rule:
 *   - every USE of such an object that other threads or processes could destroy, from the
 *     first backend call of the use to its last (C_DecryptInit through C_Decrypt, one
 *     C_UnwrapKey, a C_GetAttributeValue), is one section under module_token_lock_shared
 *     (or under module_token_lock when the call also writes the token);
 *   - every DESTROY is under module_token_lock, exclusive, so it waits until no thread of
 *     this process and no other process is inside a use: module_backend_destroy_own,
 *     which also refuses to run inside the caller's own shared section.
 * A use section never lasts longer than one entry point's backend calls, and calls
 * neither the store nor a destroy: a destroy inside the same thread's shared section
 * could not be exclusive, and a destroyer may hold the store's write lock while it waits.
 * Once the destroy has run, a later use fails cleanly with a handle error, which the
 * caller tells in its own terms (an import: the token was used or replaced). Objects
 * made by one call for itself alone (a session candidate, an ephemeral key) are used by
 * that thread only; they go through the same helper for the rule to be in one place.
 * An application's own operation on a version (its C_*Init, then its final call in a
 * later entry point) cannot hold the lock between the two: there the state stands in
 * (a key is destroyed only PendingDeletion past its window, or at once where the policy
 * allow_immediate_destroy says so). */
/* False when the objects were not destroyed (the lock was not had, or a read section). */
bool module_backend_destroy_own(CK_SESSION_HANDLE session, const CK_OBJECT_HANDLE *h, CK_ULONG n);
/* backend_find_by_id, under the shared token lock. A backend find reads every object
 * of the token: SoftHSMv2 then re-reads from its file any object another thread is still
 * creating, and can drop the attributes that thread set a moment before (its
 * C_GenerateKey then fails with CKR_TEMPLATE_INCONSISTENT); in another process, it
 * can miss an object being written. Creation holds the lock exclusively. */
CK_RV module_backend_find_by_id(CK_SESSION_HANDLE session, const void *id, CK_ULONG len,
                                CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *out, CK_ULONG max,
                                CK_ULONG *count);
/* backend_find, under the shared token lock likewise. */
CK_RV module_backend_find(CK_SESSION_HANDLE session, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                          CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count);
/* backend_token_present, under the shared token lock (a rewrite by another process
 * must not pass for a removal). */
bool module_backend_token_present(void);

CK_RV module_initialize(CK_VOID_PTR init_args);
CK_RV module_finalize(void);
/* The backend slot of a pass-through slot id (any id but MODULE_SLOT_ID). */
static inline CK_SLOT_ID module_passthrough_backend_slot(CK_SLOT_ID slot)
{
    return slot == module.be.slot ? MODULE_SLOT_ID : slot;
}
/* The id a client sees for a backend slot. */
static inline CK_SLOT_ID module_slot_of_backend(CK_SLOT_ID backend_slot)
{
    if (backend_slot == module.be.slot) return MODULE_SLOT_ID;
    return backend_slot == MODULE_SLOT_ID ? module.be.slot : backend_slot;
}

#endif
