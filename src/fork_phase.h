/* fork_phase.h - the module's locks across fork(). The forking thread takes every one of
 * them just before the fork (in one order: module.c's fork_prepare) and gives them back
 * just after it, so a child never inherits a lock that another parent thread held at that
 * instant, nor the half-changed table behind it. The child has one thread and starts its
 * locks afresh; the parent unlocks.
 *
 * The order is the one every thread keeps: init_lock; the store's connection lock (held
 * through a transaction, which may take any lock below, so nothing below ever calls the
 * store: soft_key reads and writes sealed blobs outside its own locks); the tables'
 * locks; then two leaves, the backend's gate (a thread inside a backend call waits for
 * nothing of ours) and the log. Libraries that keep process-wide locks of their own are
 * covered by the first and the leaf: SQLite's are only taken under the store's lock, the
 * HSM module's only inside a backend call. */
#ifndef CMKP11_FORK_PHASE_H
#define CMKP11_FORK_PHASE_H

#include <pthread.h>

enum fork_phase { FORK_PREPARE, FORK_PARENT, FORK_CHILD };

static inline void fork_phase_mutex(pthread_mutex_t *m, enum fork_phase p)
{
    if (p == FORK_PREPARE)
        pthread_mutex_lock(m);
    else if (p == FORK_PARENT)
        pthread_mutex_unlock(m);
    else
        pthread_mutex_init(m, NULL);
}

static inline void fork_phase_rwlock(pthread_rwlock_t *l, enum fork_phase p)
{
    if (p == FORK_PREPARE)
        pthread_rwlock_wrlock(l);
    else if (p == FORK_PARENT)
        pthread_rwlock_unlock(l);
    else
        pthread_rwlock_init(l, NULL);
}

#endif
