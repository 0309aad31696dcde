/* soft_pubcache.c - see soft_pubcache.h.
 *
 * Why caching is safe: a pair's public key never changes once the key is usable. Pairs
 * do not rotate, an import must bring the material imported first, and row ids are never
 * reused; entries are still matched on the key id, which is unique across stores, so a
 * re-initialised process with another store cannot pick up a key of the first. Public
 * keys are not secret: nothing here needs wiping. */
#include "soft_pubcache.h"

#include <openssl/x509.h>
#include <pthread.h>
#include <string.h>

#include "cmk_record.h"
#include "log.h"
#include "module.h"
#include "pubkey.h"
#include "store.h"

#define SLOTS 64 /* direct-mapped by row: a busy process uses few pairs at once */

static struct {
    int64_t row;
    char key_id[37];
    EVP_PKEY *pkey;
} slots[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *cached(const struct cmk_live *live)
{
    EVP_PKEY *p = NULL;
    pthread_mutex_lock(&lock);
    unsigned i = (unsigned)((uint64_t)live->row % SLOTS);
    if (slots[i].pkey && slots[i].row == live->row && !strcmp(slots[i].key_id, live->key_id) &&
        EVP_PKEY_up_ref(slots[i].pkey) == 1)
        p = slots[i].pkey;
    pthread_mutex_unlock(&lock);
    return p;
}

static void remember(const struct cmk_live *live, EVP_PKEY *pkey)
{
    if (EVP_PKEY_up_ref(pkey) != 1) return;
    pthread_mutex_lock(&lock);
    unsigned i = (unsigned)((uint64_t)live->row % SLOTS);
    EVP_PKEY *old = slots[i].pkey;
    slots[i].pkey = pkey;
    slots[i].row = live->row;
    snprintf(slots[i].key_id, sizeof(slots[i].key_id), "%s", live->key_id);
    pthread_mutex_unlock(&lock);
    EVP_PKEY_free(old);
}

CK_RV soft_pubcache_get(const struct cmk_live *live, EVP_PKEY **out)
{
    if ((*out = cached(live))) return CKR_OK;
    struct cmk_record rec;
    enum store_status st = store_cmk_get(module.store, live->row, &rec);
    if (st != STORE_OK) return st == STORE_BUSY ? CKR_FUNCTION_FAILED : CKR_DEVICE_ERROR;
    const unsigned char *p = rec.public_key_info;
    *out = p ? d2i_PUBKEY_ex(NULL, &p, (long)rec.public_key_info_len, pubkey_libctx(), NULL) : NULL;
    cmk_record_free(&rec);
    if (!*out) {
        log_error("key %s: its stored public key is missing or does not decode", live->key_id);
        return CKR_DEVICE_ERROR;
    }
    remember(live, *out);
    return CKR_OK;
}

void soft_pubcache_clear(void)
{
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < SLOTS; i++) {
        EVP_PKEY_free(slots[i].pkey);
        slots[i].pkey = NULL;
    }
    pthread_mutex_unlock(&lock);
}

void soft_pubcache_at_fork(enum fork_phase p) { fork_phase_mutex(&lock, p); }
