/* vendor_op.c - per-session state of the operations cmkp11 runs itself. */
#include "vendor_op.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define OP_BUCKETS 64

/* One operation of each slot may be active per session, as in PKCS#11. */
struct op_entry {
    struct op_entry *next;
    CK_SESSION_HANDLE session;
    enum vendor_op_slot slot;
    struct vendor_op op;
};

static enum vendor_op_slot slot_of_kind(enum vendor_op_kind kind)
{
    switch (kind) {
    case VOP_ENVELOPE_ENCRYPT:
    case VOP_SOFT_ENCRYPT:
    case VOP_PKEY_ENCRYPT: return VOP_SLOT_ENCRYPT;
    case VOP_PKEY_SIGN:
    case VOP_MAC_SIGN: return VOP_SLOT_SIGN;
    case VOP_PKEY_VERIFY:
    case VOP_MAC_VERIFY: return VOP_SLOT_VERIFY;
    case VOP_DIGEST_SM3: return VOP_SLOT_DIGEST;
    default: return VOP_SLOT_DECRYPT;
    }
}

static enum vendor_op_slot crypt_slot(bool encrypt)
{
    return encrypt ? VOP_SLOT_ENCRYPT : VOP_SLOT_DECRYPT;
}

unsigned long vendor_ops_active;
static struct op_entry *buckets[OP_BUCKETS];
/* One lock per bucket, each on a cache line of its own: sessions are numbered from 1, so
 * threads on sessions of their own take locks of their own, and SOFTWARE keys' operations
 * (four lookups a call) scale with threads. */
static struct {
    pthread_mutex_t m;
} __attribute__((aligned(64))) locks[OP_BUCKETS];
static pthread_once_t locks_once = PTHREAD_ONCE_INIT;

static void locks_init(void)
{
    for (size_t i = 0; i < OP_BUCKETS; i++)
        pthread_mutex_init(&locks[i].m, NULL);
}

static pthread_mutex_t *lock_of(CK_SESSION_HANDLE s)
{
    pthread_once(&locks_once, locks_init);
    return &locks[s % OP_BUCKETS].m;
}

static void op_free(struct vendor_op *op)
{
    free(op->aad);
    free(op->iv);
    EVP_MD_CTX_free(op->md_ctx);
    if (op->buffer) {
        /* Plaintext passed through here: do not leave it in freed memory. */
        memset(op->buffer, 0, op->buffer_len);
        free(op->buffer);
    }
}

static struct op_entry **slot_of(CK_SESSION_HANDLE s) { return &buckets[s % OP_BUCKETS]; }

static void remove_locked(CK_SESSION_HANDLE session, enum vendor_op_slot slot)
{
    for (struct op_entry **p = slot_of(session); *p; p = &(*p)->next) {
        if ((*p)->session == session && (*p)->slot == slot) {
            struct op_entry *e = *p;
            *p = e->next;
            op_free(&e->op);
            free(e);
            __atomic_sub_fetch(&vendor_ops_active, 1, __ATOMIC_RELAXED);
            return;
        }
    }
}

CK_RV vendor_op_begin(CK_SESSION_HANDLE session, struct vendor_op *op)
{
    struct op_entry *e = calloc(1, sizeof(*e));
    if (!e) {
        op_free(op);
        return CKR_HOST_MEMORY;
    }
    e->session = session;
    e->slot = slot_of_kind(op->kind);
    e->op = *op;
    pthread_mutex_t *lock = lock_of(session);
    pthread_mutex_lock(lock);
    remove_locked(session, e->slot);
    e->next = *slot_of(session);
    *slot_of(session) = e;
    __atomic_add_fetch(&vendor_ops_active, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(lock);
    return CKR_OK;
}

struct vendor_op *vendor_op_get_slot(CK_SESSION_HANDLE session, enum vendor_op_slot slot)
{
    struct vendor_op *found = NULL;
    pthread_mutex_t *lock = lock_of(session);
    pthread_mutex_lock(lock);
    for (struct op_entry *e = *slot_of(session); e && !found; e = e->next)
        if (e->session == session && e->slot == slot) found = &e->op;
    pthread_mutex_unlock(lock);
    return found;
}

struct vendor_op *vendor_op_get(CK_SESSION_HANDLE session, bool encrypt)
{
    return vendor_op_get_slot(session, crypt_slot(encrypt));
}

void vendor_op_end_slot(CK_SESSION_HANDLE session, enum vendor_op_slot slot)
{
    pthread_mutex_t *lock = lock_of(session);
    pthread_mutex_lock(lock);
    remove_locked(session, slot);
    pthread_mutex_unlock(lock);
}

void vendor_op_end(CK_SESSION_HANDLE session, bool encrypt)
{
    vendor_op_end_slot(session, crypt_slot(encrypt));
}

struct vendor_op *vendor_op_get_digest(CK_SESSION_HANDLE session)
{
    return vendor_op_get_slot(session, VOP_SLOT_DIGEST);
}

void vendor_op_end_digest(CK_SESSION_HANDLE session) { vendor_op_end_slot(session, VOP_SLOT_DIGEST); }

void vendor_op_end_session(CK_SESSION_HANDLE session)
{
    pthread_mutex_t *lock = lock_of(session);
    pthread_mutex_lock(lock);
    for (int slot = VOP_SLOT_DECRYPT; slot <= VOP_SLOT_DIGEST; slot++)
        remove_locked(session, (enum vendor_op_slot)slot);
    pthread_mutex_unlock(lock);
}

void vendor_op_end_all(void)
{
    for (size_t i = 0; i < OP_BUCKETS; i++) {
        pthread_mutex_t *lock = lock_of((CK_SESSION_HANDLE)i);
        pthread_mutex_lock(lock);
        while (buckets[i])
            remove_locked(buckets[i]->session, buckets[i]->slot);
        pthread_mutex_unlock(lock);
    }
}

CK_RV vendor_op_buffer(struct vendor_op *op, const unsigned char *part, size_t len)
{
    if (len == 0) return CKR_OK;
    unsigned char *grown = malloc(op->buffer_len + len);
    if (!grown) return CKR_HOST_MEMORY;
    if (op->buffer_len) memcpy(grown, op->buffer, op->buffer_len);
    memcpy(grown + op->buffer_len, part, len);
    if (op->buffer) {
        memset(op->buffer, 0, op->buffer_len);
        free(op->buffer);
    }
    op->buffer = grown;
    op->buffer_len += len;
    return CKR_OK;
}

void vendor_op_at_fork(enum fork_phase p)
{
    pthread_once(&locks_once, locks_init);
    for (size_t i = 0; i < OP_BUCKETS; i++)
        fork_phase_mutex(&locks[p == FORK_PREPARE ? i : OP_BUCKETS - 1 - i].m, p);
}
