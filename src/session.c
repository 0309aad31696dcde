/* session.c - find state per session, in a small locked hash map. Only the find
 * functions touch it, so no lock lies on the cryptographic path. */
#include "session.h"

#include <pthread.h>
#include <stdlib.h>

#define SESSION_BUCKETS 256

struct find_state {
    struct find_state *next;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE *handles;
    CK_ULONG count, pos;
};

static struct find_state *buckets[SESSION_BUCKETS];
static pthread_mutex_t session_lock = PTHREAD_MUTEX_INITIALIZER;

static struct find_state **slot_of(CK_SESSION_HANDLE s)
{
    return &buckets[s % SESSION_BUCKETS];
}

static struct find_state *state_find(CK_SESSION_HANDLE s)
{
    for (struct find_state *f = *slot_of(s); f; f = f->next)
        if (f->session == s) return f;
    return NULL;
}

static void state_remove(CK_SESSION_HANDLE s)
{
    for (struct find_state **p = slot_of(s); *p; p = &(*p)->next) {
        if ((*p)->session == s) {
            struct find_state *f = *p;
            *p = f->next;
            free(f->handles);
            free(f);
            return;
        }
    }
}

CK_RV session_find_begin(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *handles, CK_ULONG count)
{
    pthread_mutex_lock(&session_lock);
    CK_RV rv = CKR_OK;
    if (state_find(session)) {
        rv = CKR_OPERATION_ACTIVE;
    } else {
        struct find_state *f = calloc(1, sizeof(*f));
        if (!f) {
            rv = CKR_HOST_MEMORY;
        } else {
            f->session = session;
            f->handles = handles;
            f->count = count;
            f->next = *slot_of(session);
            *slot_of(session) = f;
            handles = NULL;
        }
    }
    pthread_mutex_unlock(&session_lock);
    free(handles);
    return rv;
}

CK_RV session_find_next(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *out, CK_ULONG max,
                        CK_ULONG *count)
{
    pthread_mutex_lock(&session_lock);
    struct find_state *f = state_find(session);
    CK_RV rv = CKR_OPERATION_NOT_INITIALIZED;
    if (f) {
        CK_ULONG n = 0;
        while (n < max && f->pos < f->count) out[n++] = f->handles[f->pos++];
        *count = n;
        rv = CKR_OK;
    }
    pthread_mutex_unlock(&session_lock);
    return rv;
}

CK_RV session_find_end(CK_SESSION_HANDLE session)
{
    pthread_mutex_lock(&session_lock);
    CK_RV rv = state_find(session) ? CKR_OK : CKR_OPERATION_NOT_INITIALIZED;
    state_remove(session);
    pthread_mutex_unlock(&session_lock);
    return rv;
}

int session_find_active(CK_SESSION_HANDLE session)
{
    pthread_mutex_lock(&session_lock);
    int active = state_find(session) != NULL;
    pthread_mutex_unlock(&session_lock);
    return active;
}

void session_forget(CK_SESSION_HANDLE session)
{
    pthread_mutex_lock(&session_lock);
    state_remove(session);
    pthread_mutex_unlock(&session_lock);
}

void session_forget_all(void)
{
    pthread_mutex_lock(&session_lock);
    for (size_t i = 0; i < SESSION_BUCKETS; i++)
        while (buckets[i]) state_remove(buckets[i]->session);
    pthread_mutex_unlock(&session_lock);
}

void session_at_fork(enum fork_phase p) { fork_phase_mutex(&session_lock, p); }
