/* cmk_cache.c - a small hash map from store row to live facts. */
#include "cmk_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "module.h"

#define CACHE_BUCKETS 4096

struct cache_entry {
    struct cache_entry *next;
    struct cmk_live live;
    uint64_t generation;   /* cache generation the facts were read in */
    uint64_t handle_epoch; /* epoch the backend handles were found in */
    CK_OBJECT_HANDLE *versions; /* [v - 1]: handles of older versions, 0 = unknown */
    size_t nversions;
};

static void entry_drop_handles(struct cache_entry *e)
{
    e->live.backend_main = e->live.backend_public = 0;
    free(e->versions);
    e->versions = NULL;
    e->nversions = 0;
}

static struct cache_entry *buckets[CACHE_BUCKETS];
/* Readers (every operation Init, and every call on a SOFTWARE key) share it; only a
 * change of facts or handles writes. */
static pthread_rwlock_t cache_lock = PTHREAD_RWLOCK_INITIALIZER;
static uint64_t generation = 1;
static uint64_t handle_epoch = 1;
static int64_t seen_data_version = -1;

static struct cache_entry **bucket_of(int64_t row)
{
    return &buckets[(uint64_t)row % CACHE_BUCKETS];
}

static struct cache_entry *entry_find(int64_t row)
{
    for (struct cache_entry *e = *bucket_of(row); e; e = e->next)
        if (e->live.row == row) return e;
    return NULL;
}

static void entry_unlink(int64_t row)
{
    for (struct cache_entry **p = bucket_of(row); *p; p = &(*p)->next) {
        if ((*p)->live.row == row) {
            struct cache_entry *e = *p;
            *p = e->next;
            entry_drop_handles(e);
            free(e);
            return;
        }
    }
}

/* Lock order: the cache lock is a leaf. The store is never called while it is held
 * (store transactions call cmk_cache_forget, so the other order would deadlock). */

/* Another process's commit makes every cached fact suspect; our own commits forget
 * their rows explicitly, so this is the only cross-process signal needed. Called
 * with the cache lock held, with a version read before taking it. */
static void note_data_version(bool ok, int64_t v)
{
    if (!ok) {
        generation++;
        return;
    }
    if (v != seen_data_version) {
        seen_data_version = v;
        generation++;
    }
}

static void entry_fill(struct cache_entry *e, const struct cmk_record *rec, uint64_t gen)
{
    if (e->live.primary_version != rec->primary_version)
        e->live.backend_main = e->live.backend_public = 0; /* older versions stay valid */
    e->live.row = rec->row;
    memcpy(e->live.key_id, rec->key_id, sizeof(e->live.key_id));
    e->live.state = rec->state;
    e->live.usage = rec->usage;
    e->live.key_type = rec->key_type;
    e->live.origin = rec->origin;
    e->live.protection = rec->protection;
    e->live.primary_version = rec->primary_version;
    e->live.objects = rec->objects;
    e->live.material_expires = rec->material_expires;
    e->generation = gen;
}

/* The read-only way: copies a fresh entry out when nothing about it needs writing (the
 * store seen as it was, the entry's handles of this epoch). Read lock held. */
static bool copy_if_plainly_fresh(int64_t row, bool ok, int64_t v, struct cmk_live *out)
{
    if (!ok || v != seen_data_version) return false;
    struct cache_entry *e = entry_find(row);
    if (!e || e->handle_epoch != handle_epoch || e->generation != generation) return false;
    *out = e->live;
    out->handle_epoch = handle_epoch;
    return true;
}

/* Copies a fresh entry out; false when row is unknown or stale. Cache lock held. */
static bool copy_if_fresh(int64_t row, struct cmk_live *out)
{
    struct cache_entry *e = entry_find(row);
    if (!e) return false;
    if (e->handle_epoch != handle_epoch) {
        entry_drop_handles(e);
        e->handle_epoch = handle_epoch;
    }
    if (e->generation != generation) return false;
    *out = e->live;
    out->handle_epoch = handle_epoch;
    return true;
}

CK_RV cmk_cache_get(int64_t row, struct cmk_live *out)
{
    int64_t v = 0;
    bool ok = store_data_version(module.store, &v) == STORE_OK;
    pthread_rwlock_rdlock(&cache_lock);
    bool plain = copy_if_plainly_fresh(row, ok, v, out);
    pthread_rwlock_unlock(&cache_lock);
    if (plain) return CKR_OK;
    pthread_rwlock_wrlock(&cache_lock);
    note_data_version(ok, v);
    uint64_t gen = generation;
    bool fresh = copy_if_fresh(row, out);
    pthread_rwlock_unlock(&cache_lock);
    if (fresh) return CKR_OK;

    struct cmk_record rec;
    enum store_status s = store_cmk_get(module.store, row, &rec);
    CK_RV rv = CKR_OK;
    pthread_rwlock_wrlock(&cache_lock);
    if (s != STORE_OK) {
        entry_unlink(row);
        rv = s == STORE_NOT_FOUND ? CKR_OBJECT_HANDLE_INVALID : CKR_DEVICE_ERROR;
        goto out;
    }
    struct cache_entry *e = entry_find(row);
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        e->next = *bucket_of(row);
        *bucket_of(row) = e;
        e->handle_epoch = handle_epoch;
    }
    if (e->handle_epoch != handle_epoch) {
        entry_drop_handles(e);
        e->handle_epoch = handle_epoch;
    }
    /* Facts read for generation gen; if a newer change was noted meanwhile, the next
     * caller reads again. */
    entry_fill(e, &rec, gen);
    *out = e->live;
    out->handle_epoch = handle_epoch;
out:
    pthread_rwlock_unlock(&cache_lock);
    if (s == STORE_OK) cmk_record_free(&rec);
    return rv;
}

void cmk_cache_set_handles(int64_t row, unsigned long version, uint64_t epoch,
                           CK_OBJECT_HANDLE main, CK_OBJECT_HANDLE pub)
{
    pthread_rwlock_wrlock(&cache_lock);
    struct cache_entry *e = entry_find(row);
    /* A handle found before a logout or last close must not be kept after it. */
    if (e && e->live.primary_version == version && epoch == handle_epoch) {
        if (main) e->live.backend_main = main;
        if (pub) e->live.backend_public = pub;
    }
    pthread_rwlock_unlock(&cache_lock);
}

void cmk_cache_forget_handles(void)
{
    pthread_rwlock_wrlock(&cache_lock);
    handle_epoch++;
    pthread_rwlock_unlock(&cache_lock);
}

void cmk_cache_forget_row_handles(int64_t row)
{
    pthread_rwlock_wrlock(&cache_lock);
    struct cache_entry *e = entry_find(row);
    if (e) entry_drop_handles(e);
    pthread_rwlock_unlock(&cache_lock);
}

CK_OBJECT_HANDLE cmk_cache_version_handle(int64_t row, unsigned long version, uint64_t epoch)
{
    CK_OBJECT_HANDLE h = 0;
    pthread_rwlock_rdlock(&cache_lock);
    struct cache_entry *e = entry_find(row);
    if (e && epoch == handle_epoch && e->handle_epoch == epoch && version >= 1 &&
        version <= e->nversions)
        h = e->versions[version - 1];
    pthread_rwlock_unlock(&cache_lock);
    return h;
}

void cmk_cache_set_version_handle(int64_t row, unsigned long version, uint64_t epoch,
                                  CK_OBJECT_HANDLE handle)
{
    pthread_rwlock_wrlock(&cache_lock);
    struct cache_entry *e = entry_find(row);
    if (e && epoch == handle_epoch && e->handle_epoch == epoch && version >= 1) {
        if (version > e->nversions) {
            CK_OBJECT_HANDLE *grown = realloc(e->versions, version * sizeof(*grown));
            if (grown) {
                memset(grown + e->nversions, 0, (version - e->nversions) * sizeof(*grown));
                e->versions = grown;
                e->nversions = version;
            }
        }
        if (version <= e->nversions) e->versions[version - 1] = handle;
    }
    pthread_rwlock_unlock(&cache_lock);
}

void cmk_cache_forget(int64_t row)
{
    /* Our own commits do not move data_version (it counts other connections), so a
     * change here ages every entry: a thread that read the row just before the change
     * stored its facts under the older generation, and they are read again. Backend
     * handles stay: they are valid while the version is. */
    (void)row;
    pthread_rwlock_wrlock(&cache_lock);
    generation++;
    pthread_rwlock_unlock(&cache_lock);
}

void cmk_cache_clear(void)
{
    pthread_rwlock_wrlock(&cache_lock);
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        while (buckets[i]) {
            struct cache_entry *e = buckets[i];
            buckets[i] = e->next;
            entry_drop_handles(e);
            free(e);
        }
    }
    seen_data_version = -1;
    generation++;
    pthread_rwlock_unlock(&cache_lock);
}

void cmk_cache_at_fork(enum fork_phase p) { fork_phase_rwlock(&cache_lock, p); }
