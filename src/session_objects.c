/* session_objects.c - a small locked list; entries whose session closed are pruned by
 * the finder when the backend no longer knows the handle. */
#include "session_objects.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static CK_OBJECT_HANDLE *items;
static CK_ULONG count, capacity;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void session_objects_add(CK_OBJECT_HANDLE handle)
{
    pthread_mutex_lock(&lock);
    if (count == capacity) {
        CK_ULONG cap = capacity ? capacity * 2 : 16;
        CK_OBJECT_HANDLE *grown = realloc(items, cap * sizeof(*grown));
        if (grown) {
            items = grown;
            capacity = cap;
        }
    }
    if (count < capacity) items[count++] = handle;
    pthread_mutex_unlock(&lock);
}

void session_objects_remove(CK_OBJECT_HANDLE handle)
{
    pthread_mutex_lock(&lock);
    for (CK_ULONG i = 0; i < count; i++) {
        if (items[i] == handle) {
            items[i] = items[--count];
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}

void session_objects_clear(void)
{
    pthread_mutex_lock(&lock);
    free(items);
    items = NULL;
    count = capacity = 0;
    pthread_mutex_unlock(&lock);
}

CK_OBJECT_HANDLE *session_objects_snapshot(CK_ULONG *out_count)
{
    pthread_mutex_lock(&lock);
    CK_OBJECT_HANDLE *copy = count ? malloc(count * sizeof(*copy)) : NULL;
    *out_count = copy ? count : 0;
    if (copy) memcpy(copy, items, count * sizeof(*copy));
    pthread_mutex_unlock(&lock);
    return copy;
}

void session_objects_at_fork(enum fork_phase p) { fork_phase_mutex(&lock, p); }
