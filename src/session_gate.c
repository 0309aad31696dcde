/* session_gate.c - the open sessions, each with the lock its calls hold (session_gate.h).
 * A hash of the backend's session handles; one small lock per bucket guards the lists and
 * the counts, and each session's own lock is held across its calls. */
#define _GNU_SOURCE /* a writer-preferring rwlock */
#include "session_gate.h"

#include <pthread.h>
#include <stdlib.h>

#define GATE_BUCKETS 64

struct session_gate_entry {
    struct session_gate_head head; /* first: session_gate_passthrough reads it */
    struct session_gate_entry *next;
    CK_SESSION_HANDLE session;
    /* Threads inside a call on it or waiting to be (and a closer): the entry is freed only
     * when none is left. Under the bucket lock. */
    unsigned users;
    /* Set under the bucket lock and read under call: once set, no call starts. */
    bool closing;
    pthread_mutex_t call;
};

/* Sessions are numbered from 1 and threads tend to own sessions: a bucket lock each, on
 * cache lines of their own, keeps threads on different sessions from meeting. */
static struct {
    pthread_mutex_t m;
    pthread_cond_t drained; /* a closing entry's last user left */
    struct session_gate_entry *head;
} __attribute__((aligned(64))) buckets[GATE_BUCKETS];
static pthread_once_t buckets_once = PTHREAD_ONCE_INIT;

/* Shared by open and close, exclusive while every session is held. Writers first, so a
 * stream of opens cannot keep a logout waiting. */
static pthread_rwlock_t list_lock;

static void list_lock_init(void)
{
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&list_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
}

static void buckets_init(void)
{
    for (size_t i = 0; i < GATE_BUCKETS; i++) {
        pthread_mutex_init(&buckets[i].m, NULL);
        pthread_cond_init(&buckets[i].drained, NULL);
        buckets[i].head = NULL;
    }
    list_lock_init();
}

static size_t bucket_of(CK_SESSION_HANDLE s)
{
    pthread_once(&buckets_once, buckets_init);
    return s % GATE_BUCKETS;
}

static struct session_gate_entry *find_locked(size_t b, CK_SESSION_HANDLE s)
{
    for (struct session_gate_entry *e = buckets[b].head; e; e = e->next)
        if (e->session == s) return e;
    return NULL;
}

static void unlink_locked(size_t b, struct session_gate_entry *gone)
{
    for (struct session_gate_entry **p = &buckets[b].head; *p; p = &(*p)->next) {
        if (*p == gone) {
            *p = gone->next;
            return;
        }
    }
}

/* One user fewer; the closer waiting for the last is woken. */
static void drop_user(struct session_gate_entry *e)
{
    size_t b = bucket_of(e->session);
    pthread_mutex_lock(&buckets[b].m);
    if (--e->users == 0 && e->closing) pthread_cond_broadcast(&buckets[b].drained);
    pthread_mutex_unlock(&buckets[b].m);
}

/* Waits, under the bucket lock, until no user is left of a closing entry. */
static void wait_drained_locked(size_t b, struct session_gate_entry *e)
{
    while (e->users > 0)
        pthread_cond_wait(&buckets[b].drained, &buckets[b].m);
}

void session_gate_list_shared(void)
{
    pthread_once(&buckets_once, buckets_init);
    pthread_rwlock_rdlock(&list_lock);
}

void session_gate_list_unlock(void) { pthread_rwlock_unlock(&list_lock); }

CK_RV session_gate_add(CK_SESSION_HANDLE session, bool passthrough, CK_SLOT_ID backend_slot)
{
    struct session_gate_entry *e = calloc(1, sizeof(*e));
    if (!e) return CKR_HOST_MEMORY;
    e->head.passthrough = passthrough;
    e->head.backend_slot = backend_slot;
    e->session = session;
    pthread_mutex_init(&e->call, NULL);
    size_t b = bucket_of(session);
    pthread_mutex_lock(&buckets[b].m);
    e->next = buckets[b].head;
    buckets[b].head = e;
    pthread_mutex_unlock(&buckets[b].m);
    return CKR_OK;
}

/* Counts the caller in, then waits its turn; a session closed meanwhile lets it go. */
CK_RV session_gate_enter(CK_SESSION_HANDLE session, struct session_gate_entry **pass)
{
    size_t b = bucket_of(session);
    pthread_mutex_lock(&buckets[b].m);
    struct session_gate_entry *e = find_locked(b, session);
    if (e && !e->closing) e->users++;
    else e = NULL;
    pthread_mutex_unlock(&buckets[b].m);
    if (!e) return CKR_SESSION_HANDLE_INVALID;
    pthread_mutex_lock(&e->call);
    if (__atomic_load_n(&e->closing, __ATOMIC_ACQUIRE)) {
        pthread_mutex_unlock(&e->call);
        drop_user(e);
        return CKR_SESSION_HANDLE_INVALID;
    }
    *pass = e;
    return CKR_OK;
}

void session_gate_leave(struct session_gate_entry *pass)
{
    pthread_mutex_unlock(&pass->call);
    drop_user(pass);
}

CK_RV session_gate_close_begin(CK_SESSION_HANDLE session, struct session_gate_entry **pass)
{
    session_gate_list_shared();
    size_t b = bucket_of(session);
    pthread_mutex_lock(&buckets[b].m);
    struct session_gate_entry *e = find_locked(b, session);
    if (e && !e->closing) {
        __atomic_store_n(&e->closing, true, __ATOMIC_RELEASE);
        e->users++;
    } else {
        e = NULL;
    }
    pthread_mutex_unlock(&buckets[b].m);
    if (!e) {
        session_gate_list_unlock();
        return CKR_SESSION_HANDLE_INVALID;
    }
    pthread_mutex_lock(&e->call); /* the call inside, if any, ends first */
    *pass = e;
    return CKR_OK;
}

void session_gate_close_end(struct session_gate_entry *pass, bool closed)
{
    size_t b = bucket_of(pass->session);
    if (!closed) {
        pthread_mutex_lock(&buckets[b].m);
        __atomic_store_n(&pass->closing, false, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&buckets[b].m);
        session_gate_leave(pass);
        session_gate_list_unlock();
        return;
    }
    pthread_mutex_unlock(&pass->call);
    pthread_mutex_lock(&buckets[b].m);
    /* Calls that waited for the closed session see `closing` and leave; the last one
     * out wakes us. */
    pass->users--;
    wait_drained_locked(b, pass);
    unlink_locked(b, pass);
    pthread_mutex_unlock(&buckets[b].m);
    pthread_mutex_destroy(&pass->call);
    free(pass);
    session_gate_list_unlock();
}

/* With the list held exclusively no session is added or removed, so the second walk
 * (release) meets exactly the sessions the first (hold) locked. */
void session_gate_hold_all(void)
{
    pthread_once(&buckets_once, buckets_init);
    pthread_rwlock_wrlock(&list_lock);
    for (size_t b = 0; b < GATE_BUCKETS; b++) {
        pthread_mutex_lock(&buckets[b].m);
        for (struct session_gate_entry *e = buckets[b].head; e; e = e->next) e->users++;
        pthread_mutex_unlock(&buckets[b].m);
        /* The bucket's entries stay: their users count keeps them. */
        for (struct session_gate_entry *e = buckets[b].head; e; e = e->next)
            pthread_mutex_lock(&e->call);
    }
}

void session_gate_release_all(void)
{
    for (size_t b = 0; b < GATE_BUCKETS; b++) {
        for (struct session_gate_entry *e = buckets[b].head; e; e = e->next)
            pthread_mutex_unlock(&e->call);
        pthread_mutex_lock(&buckets[b].m);
        for (struct session_gate_entry *e = buckets[b].head; e; e = e->next) e->users--;
        pthread_mutex_unlock(&buckets[b].m);
    }
    pthread_rwlock_unlock(&list_lock);
}

/* The entries of a bucket that match come off the list at once (all of them when
 * !one_slot); calls that waited on their sessions get their turn, see them closing and
 * leave, and the last one out lets them be freed. The others are released as by
 * session_gate_release_all. */
static void release_forgetting(bool one_slot, CK_SLOT_ID backend_slot)
{
    for (size_t b = 0; b < GATE_BUCKETS; b++) {
        pthread_mutex_lock(&buckets[b].m);
        struct session_gate_entry *chain = NULL, *kept = NULL;
        while (buckets[b].head) {
            struct session_gate_entry *e = buckets[b].head;
            buckets[b].head = e->next;
            bool forget = !one_slot || e->head.backend_slot == backend_slot;
            if (forget) __atomic_store_n(&e->closing, true, __ATOMIC_RELEASE);
            e->next = forget ? chain : kept;
            *(forget ? &chain : &kept) = e;
        }
        buckets[b].head = kept;
        pthread_mutex_unlock(&buckets[b].m);
        for (struct session_gate_entry *e = chain; e; e = e->next)
            pthread_mutex_unlock(&e->call);
        for (struct session_gate_entry *e = kept; e; e = e->next)
            pthread_mutex_unlock(&e->call);
        pthread_mutex_lock(&buckets[b].m);
        for (struct session_gate_entry *e = kept; e; e = e->next) e->users--;
        for (struct session_gate_entry *e = chain; e; e = e->next) {
            e->users--;
            wait_drained_locked(b, e);
        }
        pthread_mutex_unlock(&buckets[b].m);
        while (chain) {
            struct session_gate_entry *next = chain->next;
            pthread_mutex_destroy(&chain->call);
            free(chain);
            chain = next;
        }
    }
    pthread_rwlock_unlock(&list_lock);
}

void session_gate_release_all_forget(void) { release_forgetting(false, 0); }

void session_gate_release_all_forget_slot(CK_SLOT_ID backend_slot)
{
    release_forgetting(true, backend_slot);
}

bool session_gate_lookup(CK_SESSION_HANDLE session, bool *passthrough)
{
    size_t b = bucket_of(session);
    pthread_mutex_lock(&buckets[b].m);
    struct session_gate_entry *e = find_locked(b, session);
    bool open = e && !e->closing;
    *passthrough = open && e->head.passthrough;
    pthread_mutex_unlock(&buckets[b].m);
    return open;
}

bool session_gate_is_open(CK_SESSION_HANDLE session)
{
    bool passthrough;
    return session_gate_lookup(session, &passthrough);
}

/* The child has one thread and none of the parent's sessions: it starts with an empty
 * list. Entries are freed without touching their call locks, which parent threads that
 * do not exist in the child may have held. */
void session_gate_at_fork(enum fork_phase p)
{
    pthread_once(&buckets_once, buckets_init);
    for (size_t i = 0; i < GATE_BUCKETS; i++) {
        size_t b = p == FORK_PREPARE ? i : GATE_BUCKETS - 1 - i;
        fork_phase_mutex(&buckets[b].m, p);
        if (p != FORK_CHILD) continue;
        pthread_cond_init(&buckets[b].drained, NULL);
        while (buckets[b].head) {
            struct session_gate_entry *next = buckets[b].head->next;
            free(buckets[b].head);
            buckets[b].head = next;
        }
    }
    if (p == FORK_CHILD) list_lock_init();
}
