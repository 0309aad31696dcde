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

/* cmkp11 presents one slot, numbered 0, for the configured backend token. */
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
 * take milliseconds anyway. */
void module_token_lock(void);
/* The same lock, shared: for calls that only read the token's state files. Taken again
 * by a thread that holds it either way, it only counts. */
void module_token_lock_shared(void);
void module_token_unlock(void);
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
CK_RV module_slot_to_backend(CK_SLOT_ID slot, CK_SLOT_ID *backend_slot);

#endif
