/* fork_phase.h - the module's locks across fork(). The forking thread takes every one of
 * them just before the fork (in one order: module.c's fork_prepare) and gives them back
 * just after it, so a child never inherits a lock that another parent thread held at that
 * instant, nor the half-changed table behind it. The child has one thread and starts its
 * locks afresh; the parent unlocks. */
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
