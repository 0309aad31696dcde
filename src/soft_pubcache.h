/* soft_pubcache.h - the decoded public keys of SOFTWARE pairs, kept per process so that
 * verify and encrypt need not read and decode the stored SPKI at every call. */
#ifndef CMKP11_SOFT_PUBCACHE_H
#define CMKP11_SOFT_PUBCACHE_H

#include "fork_phase.h"

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "cmk_cache.h"

/* The public key of the SOFTWARE pair live describes, as a new reference the caller
 * frees. Read from the store on the first use in this process. */
CK_RV soft_pubcache_get(const struct cmk_live *live, EVP_PKEY **out);
/* Drops every cached key (C_Initialize, C_Finalize: before the library context goes). */
void soft_pubcache_clear(void);

/* fork_phase.h: the cache's lock across fork(). */
void soft_pubcache_at_fork(enum fork_phase p);

#endif
