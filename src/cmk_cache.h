/* cmk_cache.h - what an operation init needs to know about a CMK, without SQL.
 * Entries are refreshed when the store's data_version says another connection
 * committed; backend handles survive refreshes while the primary version is the same. */
#ifndef CMKP11_CMK_CACHE_H
#define CMKP11_CMK_CACHE_H

#include "fork_phase.h"

#include <p11-kit/pkcs11.h>
#include <stdint.h>

struct cmk_live {
    int64_t row;
    char key_id[37];
    unsigned long state, usage, key_type, origin, protection, primary_version;
    unsigned objects;
    int64_t material_expires;        /* imported material expires then, 0 = never */
    CK_OBJECT_HANDLE backend_main;   /* secret or private key of the primary version, 0 = unknown */
    CK_OBJECT_HANDLE backend_public; /* public key of the primary version, 0 = unknown */
    uint64_t handle_epoch;           /* handles found now belong to this epoch */
};

/* Fills out with current facts about row; CKR_OBJECT_HANDLE_INVALID if it is gone. */
CK_RV cmk_cache_get(int64_t row, struct cmk_live *out);
/* Remembers backend handles found for row's primary version. */
void cmk_cache_set_handles(int64_t row, unsigned long version, uint64_t epoch,
                           CK_OBJECT_HANDLE main, CK_OBJECT_HANDLE pub);

/* True when a backend call failed because a cached handle of a CMK went stale. */
static inline int cmk_handle_went_stale(CK_RV rv)
{
    return rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}
/* Backend handle of an older version's secret/private material: 0 when unknown. */
CK_OBJECT_HANDLE cmk_cache_version_handle(int64_t row, unsigned long version, uint64_t epoch);
void cmk_cache_set_version_handle(int64_t row, unsigned long version, uint64_t epoch,
                                  CK_OBJECT_HANDLE handle);

/* Backend handles die with the backend's login state or last session (SoftHSMv2
 * renumbers objects then): forget them all, facts stay. */
void cmk_cache_forget_handles(void);
/* Forgets one row's backend handles (the backend said they are invalid). */
void cmk_cache_forget_row_handles(int64_t row);
/* Drops everything known about row (after this process changed it). */
void cmk_cache_forget(int64_t row);
void cmk_cache_clear(void);

/* fork_phase.h: the cache's lock across fork(). */
void cmk_cache_at_fork(enum fork_phase p);

#endif
