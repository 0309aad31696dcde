/* backend_gate.c - see backend_gate.h. */
#include "backend_gate.h"

#include <pthread.h>
#include <stdbool.h>

#include "util.h"

/* Threads spread over padded counters, so that threads on different cores do not bounce
 * one cache line on every backend call; only their sum means anything. */
#define GATE_SHARDS 32
struct shard {
    _Alignas(64) long inside;
};
static struct shard shards[GATE_SHARDS];
static unsigned next_shard;
static __thread struct shard *my_shard;
static __thread long my_depth; /* this thread's own calls in progress (a backend may fork) */

static int forking; /* set by the forking thread from PREPARE to PARENT/CHILD */
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER; /* a call left, or a fork ended */

static struct shard *shard_of_thread(void)
{
    if (!my_shard)
        my_shard = &shards[__atomic_fetch_add(&next_shard, 1, __ATOMIC_RELAXED) % GATE_SHARDS];
    return my_shard;
}

static long inside_total(void)
{
    long n = 0;
    for (size_t i = 0; i < GATE_SHARDS; i++)
        n += __atomic_load_n(&shards[i].inside, __ATOMIC_SEQ_CST);
    return n;
}

static void leave(struct shard *s)
{
    my_depth--;
    __atomic_sub_fetch(&s->inside, 1, __ATOMIC_SEQ_CST);
    if (__builtin_expect(__atomic_load_n(&forking, __ATOMIC_SEQ_CST), 0)) {
        pthread_mutex_lock(&wait_lock);
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&wait_lock);
    }
}

/* Counts the thread in. The count goes up before forking is read, and the forking thread
 * sets forking before it sums the counts (both sequentially consistent): so either this
 * thread sees the fork coming and steps back, or the fork sees this call and waits. */
static struct shard *enter(void)
{
    struct shard *s = shard_of_thread();
    for (;;) {
        my_depth++;
        __atomic_add_fetch(&s->inside, 1, __ATOMIC_SEQ_CST);
        if (__builtin_expect(!__atomic_load_n(&forking, __ATOMIC_SEQ_CST), 1) || my_depth > 1)
            return s;
        leave(s);
        pthread_mutex_lock(&wait_lock);
        while (__atomic_load_n(&forking, __ATOMIC_SEQ_CST))
            pthread_cond_wait(&changed, &wait_lock);
        pthread_mutex_unlock(&wait_lock);
    }
}

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST gated;

#define BACKEND_CALL(name, params, args)                                                           \
    static CK_RV gated_##name params                                                               \
    {                                                                                              \
        struct shard *s = enter();                                                                 \
        util_pause_point("backend:" #name); /* tests: hold a thread inside the gate */             \
        CK_RV rv = real->name args;                                                                \
        leave(s);                                                                                  \
        return rv;                                                                                 \
    }
#include "backend_calls.def"
#undef BACKEND_CALL

CK_FUNCTION_LIST_PTR backend_gate_wrap(CK_FUNCTION_LIST_PTR list)
{
    real = list;
    gated = *list;
#define BACKEND_CALL(name, params, args)                                                           \
    if (list->name) gated.name = gated_##name;
#include "backend_calls.def"
#undef BACKEND_CALL
    return &gated;
}

void backend_gate_at_fork(enum fork_phase p)
{
    if (p == FORK_PREPARE) {
        pthread_mutex_lock(&wait_lock);
        __atomic_store_n(&forking, 1, __ATOMIC_SEQ_CST);
        /* A backend that forks from inside one of its calls waits for no one but itself. */
        while (inside_total() > my_depth)
            pthread_cond_wait(&changed, &wait_lock);
        pthread_mutex_unlock(&wait_lock);
        return;
    }
    if (p == FORK_CHILD) { /* one thread: the parent's waiters do not exist here */
        pthread_mutex_init(&wait_lock, NULL);
        pthread_cond_init(&changed, NULL);
        for (size_t i = 0; i < GATE_SHARDS; i++)
            shards[i].inside = 0;
        shard_of_thread()->inside = my_depth;
    }
    pthread_mutex_lock(&wait_lock);
    __atomic_store_n(&forking, 0, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&wait_lock);
}
