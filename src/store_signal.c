/* store_signal.c - a change counter shared by every process using one store.
 *
 * Each *Init on a CMK must notice a change another process committed (a key disabled by
 * cmkctl stops signing at the next C_SignInit). Asking SQLite (PRAGMA data_version)
 * opens a read transaction: a lock and an unlock of the WAL index by fcntl and a stat,
 * several microseconds per Init, a tenth of an AES-GCM operation. Instead every commit
 * made through cmkp11 increments a 64-bit counter in a small file mapped shared by all
 * processes, and an Init compares it with an atomic load: no system call at all.
 *
 * The counter is a hint that must never be trusted alone: a process killed between its
 * commit and the increment, or a writer that is not cmkp11, changes the store without
 * it. store.c therefore still asks SQLite itself every STORE_SIGNAL_RECHECK_NS. */
#include "store_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "private_file.h"

/* The shared page. The counter counts commits. The rest remembers the last full
 * integrity check of the store file: the counter then, plus one (0: never), and the
 * file's identity, size and modification time. */
struct signal_page {
    uint64_t counter;
    uint64_t checked_at;
    uint64_t checked_ino, checked_size, checked_mtime_ns;
};

struct store_signal {
    struct signal_page *page; /* the shared mapping */
    size_t size;
};

struct store_signal *store_signal_open(const char *store_path)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s-signal", store_path) >= (int)sizeof(path)) return NULL;
    char why[PRIVATE_FILE_WHY_SIZE];
    int fd = private_file_open(path, O_RDWR | O_CREAT, why);
    if (fd < 0) {
        /* Safe without it, only slower: every C_*Init then asks the store. */
        log_warning("store signal (%s): not used; changes are checked in the store at every "
                    "init",
                    why);
        return NULL;
    }
    struct stat st;
    size_t size = (size_t)sysconf(_SC_PAGESIZE);
    /* A fresh file is sized once; ftruncate to the same size by a racing process is
     * harmless, and a mapping past the end of a shorter file would fault. */
    if (fstat(fd, &st) != 0 || ((size_t)st.st_size < size && ftruncate(fd, (off_t)size) != 0)) {
        log_info("store signal %s: cannot size it: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        log_info("store signal %s: cannot map it: %s", path, strerror(errno));
        return NULL;
    }
    struct store_signal *sig = calloc(1, sizeof(*sig));
    if (!sig) {
        munmap(map, size);
        return NULL;
    }
    sig->page = map;
    sig->size = size;
    return sig;
}

void store_signal_close(struct store_signal *sig)
{
    if (!sig) return;
    munmap(sig->page, sig->size);
    free(sig);
}

uint64_t store_signal_read(const struct store_signal *sig)
{
    return __atomic_load_n(&sig->page->counter, __ATOMIC_ACQUIRE);
}

void store_signal_raise(struct store_signal *sig)
{
    if (sig) __atomic_fetch_add(&sig->page->counter, 1, __ATOMIC_RELEASE);
}

static uint64_t mtime_ns(const struct stat *st)
{
    return (uint64_t)st->st_mtim.tv_sec * 1000000000ULL + (uint64_t)st->st_mtim.tv_nsec;
}

/* A race with a writer can only make the answer "no" (the counter moved): then the
 * store is checked once more, never once less. */
bool store_signal_verified(const struct store_signal *sig, const struct stat *st)
{
    if (!sig) return false;
    struct signal_page *p = sig->page;
    return __atomic_load_n(&p->checked_at, __ATOMIC_ACQUIRE) == store_signal_read(sig) + 1 &&
           __atomic_load_n(&p->checked_ino, __ATOMIC_RELAXED) == (uint64_t)st->st_ino &&
           __atomic_load_n(&p->checked_size, __ATOMIC_RELAXED) == (uint64_t)st->st_size &&
           __atomic_load_n(&p->checked_mtime_ns, __ATOMIC_RELAXED) == mtime_ns(st);
}

void store_signal_mark_verified(struct store_signal *sig, uint64_t counter, const struct stat *st)
{
    if (!sig) return;
    struct signal_page *p = sig->page;
    __atomic_store_n(&p->checked_ino, (uint64_t)st->st_ino, __ATOMIC_RELAXED);
    __atomic_store_n(&p->checked_size, (uint64_t)st->st_size, __ATOMIC_RELAXED);
    __atomic_store_n(&p->checked_mtime_ns, mtime_ns(st), __ATOMIC_RELAXED);
    __atomic_store_n(&p->checked_at, counter + 1, __ATOMIC_RELEASE);
}
