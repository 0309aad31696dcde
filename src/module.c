/* module.c - C_Initialize and C_Finalize: config, log, backend, store, in that order. */
#define _GNU_SOURCE /* a writer-preferring rwlock for the token lock */
#include "module.h"
#include "backend_gate.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cmk.h"
#include "cmk_cache.h"
#include "cmk_copy.h"
#include "log.h"
#include "object_track.h"
#include "private_file.h"
#include "pubkey.h"
#include "session.h"
#include "session_gate.h"
#include "session_objects.h"
#include "soft_key.h"
#include "soft_pubcache.h"
#include "vendor_op.h"
#include "util.h"

struct module module;
volatile bool module_forked;

/* The token lock's in-process half (see module_token_lock). Writers first: every
 * backend find reads under it, and a steady stream of finds must not keep a CreateKey
 * waiting. Safe because a thread never read-locks it twice (token_nested counts the
 * re-entries). */
static pthread_rwlock_t token_rw = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static pthread_mutex_t token_readers_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned token_readers;
static __thread bool token_held_exclusive;
/* Sections this thread entered while it already held the lock, either way: they only
 * count, so that a find made under a writer's lock, or inside a reader's, does not wait
 * on itself. */
static __thread unsigned token_nested;
static __thread bool token_held_shared;

static void mark_forked(void)
{
    module_forked = true;
    /* A parent thread may have held the token lock at the fork: the child has one
     * thread, and the flock is the parent's (the child opens its own at C_Initialize). */
    token_rw = (pthread_rwlock_t)PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    pthread_mutex_init(&token_readers_lock, NULL);
    token_readers = 0;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Serialises initialise/finalise against each other (the spec lets apps race them). */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

/* The module's locks across fork() (fork_phase.h), taken in this order and given back in
 * the reverse one. The leaves come last: the backend's gate (no thread inside a backend
 * call, backend_gate.h), whose holders wait for none of ours, then the log, which every
 * other lock may take. */
static void at_fork(enum fork_phase p)
{
    void (*const each[])(enum fork_phase) = {
        session_gate_at_fork,    session_at_fork,         session_objects_at_fork, vendor_op_at_fork, cmk_cache_at_fork,
        cmk_copy_at_fork,
        soft_key_at_fork,        soft_pubcache_at_fork,   backend_gate_at_fork,    log_at_fork,
    };
    const size_t n = sizeof(each) / sizeof(each[0]);
    /* init_lock keeps module.store from changing; the store's lock comes next (store.h). */
    if (p == FORK_PREPARE) fork_phase_mutex(&init_lock, p);
    if (p == FORK_PREPARE && module.store) store_at_fork(module.store, p);
    for (size_t i = 0; i < n; i++)
        each[p == FORK_PREPARE ? i : n - 1 - i](p);
    if (p != FORK_PREPARE && module.store) store_at_fork(module.store, p);
    if (p != FORK_PREPARE) fork_phase_mutex(&init_lock, p);
}

static void fork_prepare(void) { at_fork(FORK_PREPARE); }
static void fork_parent(void) { at_fork(FORK_PARENT); }

static void fork_child(void)
{
    at_fork(FORK_CHILD);
    mark_forked();
}

static void register_atfork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static CK_RV check_init_args(CK_C_INITIALIZE_ARGS_PTR args)
{
    if (!args) return CKR_OK;
    if (args->pReserved) return CKR_ARGUMENTS_BAD;
    int given = (args->CreateMutex != NULL) + (args->DestroyMutex != NULL) +
                (args->LockMutex != NULL) + (args->UnlockMutex != NULL);
    if (given != 0 && given != 4) return CKR_ARGUMENTS_BAD;
    /* With or without CKF_OS_LOCKING_OK we lock with the OS's primitives: the mutex
     * callbacks, when given, protect the app's threads, and ours are always threads. */
    return CKR_OK;
}

/* Never through a link, and only a regular file of ours: in a folder others can write, a
 * planted symlink would make this process create or lock another file, and a lock file of
 * another user's would let that user hold every process off. */
static int open_token_lock(const char *store_path, char why[PRIVATE_FILE_WHY_SIZE])
{
    char path[4096];
    snprintf(path, sizeof(path), "%s-token.lock", store_path);
    return private_file_open(path, O_RDWR | O_CREAT, why);
}

static void close_token_lock(void)
{
    if (module.token_lock_fd >= 0) close(module.token_lock_fd);
    module.token_lock_fd = -1;
}

/* A flock belongs to the open file description, which all our threads share: a second
 * thread's LOCK_SH would turn a first thread's LOCK_EX into a shared lock, and its
 * LOCK_UN would drop the lock the first thread still relies on. So threads first agree
 * among themselves (token_rw), and the flock then stands for the whole process: taken
 * exclusive by one writer, or shared by the first of the readers and dropped by the
 * last. Sections under it make backend calls (a find's whole scan, at most), and take no
 * other lock than the log's.
 *
 * Every wait is bounded: a process stopped (SIGSTOP, Ctrl-Z, a debugger) while it holds
 * the lock would otherwise hang every other process sharing the store, C_Initialize
 * included. A busy lock is no fault, though: under load many processes and threads queue
 * for it, and a wait of more than [token] lock_wait_seconds then means nothing is wrong.
 * So a lock found busy is waited for in the kernel's queue (a blocking flock: fair, where
 * polling let one process's threads take it again and again while others slept) once its
 * holder is seen running (read from /proc/locks and /proc/PID/stat). A stopped holder
 * is tried at growing intervals, and the wait gives up after lock_wait_seconds; a holder
 * not seen (util_flock_holder) is looked for again, never queued for blindly. A process
 * that was
 * already queued when the holder stopped waits until the holder goes on. Among this
 * process's threads the wait gives up after TOKEN_WAIT_CAP times lock_wait_seconds. */
#define TOKEN_WAIT_CAP 6

struct token_wait {
    struct timespec patience; /* from here on, a stopped holder ends the wait */
    struct timespec cap;      /* from here on, the wait among this process's threads ends */
    long holder;              /* who held the flock when last looked at, 0 when unknown */
    bool stopped;             /* ... and whether it was stopped */
};

static bool past(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static unsigned long token_wait_seconds(void)
{
    return module.cfg.lock_wait_seconds ? module.cfg.lock_wait_seconds : 10;
}

static struct token_wait token_wait_start(void)
{
    struct token_wait w = {.holder = 0, .stopped = false};
    clock_gettime(CLOCK_MONOTONIC, &w.patience);
    w.cap = w.patience;
    w.patience.tv_sec += (time_t)token_wait_seconds();
    w.cap.tv_sec += (time_t)(token_wait_seconds() * TOKEN_WAIT_CAP);
    return w;
}

/* Consecutive looks that saw no holder after which /proc/locks is taken not to list this
 * file's locks at all (the wait then blocks, as it did before it was bounded). */
#define TOKEN_HOLDER_UNSEEN_MAX 64

static bool token_flock_until(int op, struct token_wait *w)
{
    if (module.token_lock_fd < 0) return true;
    long pause_ns = 1000 * 1000;
    int unseen = 0;
    for (;;) {
        if (flock(module.token_lock_fd, op | LOCK_NB) == 0) return true;
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) return true; /* as before the bound: no lock to be had */
        enum util_flock_holder h = util_flock_holder(module.token_lock_fd, &w->holder);
        w->stopped = h == UTIL_HOLDER_STOPPED;
        unseen = h == UTIL_HOLDER_UNSEEN ? unseen + 1 : 0;
        /* Only a holder seen running is queued for: a wait must never block on a holder
         * that may be stopped. An unseen one (it just let go, or a busy /proc/locks lost
         * its line) is looked for again. */
        if (h == UTIL_HOLDER_RUNNING || h == UTIL_HOLDER_UNKNOWN ||
            unseen > TOKEN_HOLDER_UNSEEN_MAX) {
            while (flock(module.token_lock_fd, op) != 0)
                if (errno != EINTR) return true;
            return true;
        }
        if (w->stopped && past(&w->patience)) return false;
        struct timespec pause = {0, w->stopped ? pause_ns : 1000 * 1000};
        nanosleep(&pause, NULL);
        if (w->stopped && pause_ns < 20 * 1000 * 1000) pause_ns *= 2;
    }
}

static void token_unflock(void)
{
    if (module.token_lock_fd >= 0)
        while (flock(module.token_lock_fd, LOCK_UN) != 0 && errno == EINTR) {}
}

/* Set when this thread's last wait for the token lock ran out (module_token_lock_gave_up). */
static __thread bool token_gave_up;

bool module_token_lock_gave_up(void) { return token_gave_up; }

/* The one line a wait that ran out says: whose lock it was, when that can be known.
 * other_process: the flock's wait, else the wait among this process's threads (whose
 * holder is running: it works, or itself waits for the flock, which ends). */
static CK_RV token_wait_failed(const struct token_wait *w, bool other_process)
{
    token_gave_up = true;
    unsigned long patience = token_wait_seconds(), cap = patience * TOKEN_WAIT_CAP;
    if (!other_process)
        log_error("token lock: another thread of this process held it for more than %lu s; "
                  "gave up waiting",
                  cap);
    else /* token_flock_until gives up on a stopped holder only */
        log_error("token lock: process %ld is stopped (SIGSTOP, Ctrl-Z or a debugger) while it "
                  "holds it; gave up waiting after %lu s",
                  w->holder, patience);
    return CKR_FUNCTION_FAILED;
}

/* SoftHSMv2 lists its token's objects again only when the token's generation number on
 * disk differs from the last one it saw, and a write of its own records the disk value
 * plus one as seen. A process that writes right after another process wrote would so
 * never list the other's new objects (a CMK made by cmkctl could not be used by a
 * running application until a third change). Any look at the token info re-reads the
 * number first; made here, under the exclusive lock, no other write can come between.
 * One cheap call; for a backend without that flaw, a harmless one. */
static void see_other_processes_writes(void)
{
    CK_TOKEN_INFO info;
    if (module.be.fn) module.be.fn->C_GetTokenInfo(module.be.slot, &info);
}

CK_RV module_token_lock(void)
{
    if (token_held_exclusive || token_held_shared) {
        /* Within a section that already holds it: never wait on ourselves. Under the
         * shared side this write is not exclusive, which no path of ours does; say so. */
        if (!token_held_exclusive)
            log_error("internal: a token write inside a token read section; not exclusive");
        token_nested++;
        return CKR_OK;
    }
    token_gave_up = false;
    struct token_wait w = token_wait_start();
    if (pthread_rwlock_clockwrlock(&token_rw, CLOCK_MONOTONIC, &w.cap) != 0)
        return token_wait_failed(&w, false);
    if (!token_flock_until(LOCK_EX, &w)) {
        pthread_rwlock_unlock(&token_rw);
        return token_wait_failed(&w, true);
    }
    token_held_exclusive = true;
    util_pause_point("token-lock:held"); /* tests: a process stopped while it holds it */
    see_other_processes_writes();
    return CKR_OK;
}

CK_RV module_token_lock_shared(void)
{
    if (token_held_exclusive || token_held_shared) {
        token_nested++;
        return CKR_OK;
    }
    token_gave_up = false;
    struct token_wait w = token_wait_start();
    if (pthread_rwlock_clockrdlock(&token_rw, CLOCK_MONOTONIC, &w.cap) != 0)
        return token_wait_failed(&w, false);
    pthread_mutex_lock(&token_readers_lock);
    bool had = token_readers > 0 || token_flock_until(LOCK_SH, &w);
    if (had) token_readers++;
    pthread_mutex_unlock(&token_readers_lock);
    if (!had) {
        pthread_rwlock_unlock(&token_rw);
        return token_wait_failed(&w, true);
    }
    token_held_shared = true;
    return CKR_OK;
}

void module_token_unlock(void)
{
    if (token_nested > 0) {
        token_nested--;
        return;
    }
    if (token_held_exclusive) {
        token_held_exclusive = false;
        token_unflock();
    } else {
        pthread_mutex_lock(&token_readers_lock);
        if (--token_readers == 0) token_unflock();
        pthread_mutex_unlock(&token_readers_lock);
        token_held_shared = false;
    }
    pthread_rwlock_unlock(&token_rw);
}

CK_RV module_backend_find_by_id(CK_SESSION_HANDLE session, const void *id, CK_ULONG len,
                                CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *out, CK_ULONG max,
                                CK_ULONG *count)
{
    CK_RV rv;
    MODULE_UNDER_TOKEN_LOCK_SHARED(
        rv, backend_find_by_id(&module.be, session, id, len, cls, out, max, count));
    return rv;
}

CK_RV module_backend_find(CK_SESSION_HANDLE session, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                          CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count)
{
    CK_RV rv;
    MODULE_UNDER_TOKEN_LOCK_SHARED(rv, backend_find(&module.be, session, tmpl, n, out, max, count));
    return rv;
}

bool module_backend_token_present(void)
{
    /* A lock not had is no evidence of a removal: present, as far as we know. */
    if (module_token_lock_shared() != CKR_OK) return true;
    bool present = backend_token_present(&module.be);
    module_token_unlock();
    return present;
}

static CK_RV open_store(void)
{
    /* store_open has logged the one line that says why. */
    return store_open(module.cfg.store_path, &module.store) == STORE_OK ? CKR_OK
                                                                        : CKR_DEVICE_ERROR;
}

static CK_RV initialize(CK_VOID_PTR init_args)
{
    CK_RV rv = check_init_args(init_args);
    if (rv != CKR_OK) return rv;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&init_lock);
    if (module_ready()) {
        pthread_mutex_unlock(&init_lock);
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    }
    /* A forked child inherits the parent's state. The parent's SQLite connection is
     * closed, never used: no transaction was open at the fork (store_at_fork), and SQLite
     * then closes it without writing; the child's POSIX locks are its own, so the
     * parent's stay. Left open, it would keep SQLite's per-process record of the parent's
     * locks on the file, and the child's own connection would take none, so the parent's
     * last close could remove a write-ahead log the child still writes to. The backend's
     * copy is finalised so that its sessions and login start afresh. */
    if (module.initialized && module_forked) {
        store_close(module.store);
        backend_reset_after_fork(&module.be);
    }
    memset(&module, 0, sizeof(module));
    module.token_lock_fd = -1;
    module_forked = false;
    object_track_reset();
    session_forget_all();
    cmk_copy_forget_all(); /* a forked child's session handles are not the parent's */
    cmk_cache_clear();
    soft_key_cleanup(); /* a forked child's inherited copy of the material */
    soft_pubcache_clear();

    if (config_load(&module.cfg) != 0) {
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    log_threshold = module.cfg.log_level;
    char why[PRIVATE_FILE_WHY_SIZE];
    if (module.cfg.log_file && log_open_file(module.cfg.log_file, why) != 0)
        log_error("C_Initialize: cannot open the log file (%s); logging to stderr", why);
    module.token_lock_fd = open_token_lock(module.cfg.store_path, why);
    if (module.token_lock_fd < 0 && errno != ENOENT) {
        /* Never skipped: without it SoftHSMv2's token files would have two writers. A
         * missing folder is the store's error too, and its open names it next. */
        log_error("C_Initialize: the token lock file cannot be used (%s); refused", why);
        rv = CKR_DEVICE_ERROR;
    } else {
        MODULE_UNDER_TOKEN_LOCK(rv, backend_open(&module.be, module.cfg.backend_module,
                                                 module.cfg.backend_token_label,
                                                 module.cfg.backend_token_serial));
    }
    if (rv != CKR_OK) {
        if (rv != CKR_GENERAL_ERROR) rv = CKR_DEVICE_ERROR;
        close_token_lock();
        config_free(&module.cfg);
        goto out;
    }
    rv = open_store();
    if (rv != CKR_OK) {
        backend_close(&module.be);
        close_token_lock();
        config_free(&module.cfg);
        goto out;
    }
    if (pubkey_init() != 0) log_warning("C_Initialize: OpenSSL context unavailable; "
                                        "CKA_PUBLIC_KEY_INFO will be missing on new keys");
    module.pid = getpid();
    module.initialized = true;
    log_info("C_Initialize: token '%s' over backend %s, store %s", module.cfg.token_label,
             module.cfg.backend_module, module.cfg.store_path);
out:
    pthread_mutex_unlock(&init_lock);
    return rv;
}

/* Set while this thread runs initialize(). A backend that forwards to cmkp11 (a p11-kit
 * proxy whose module list includes cmkp11) calls our C_Initialize again from inside the
 * backend's, on this thread, while init_lock is held: waiting for it would never end.
 * Said once per C_Initialize: backend_open may initialise the backend again and again
 * while it looks for its token (p11-kit's proxy then drops cmkp11 and goes on). */
static __thread bool initializing, reentry_told;

CK_RV module_initialize(CK_VOID_PTR init_args)
{
    if (initializing) {
        if (!reentry_told)
            log_error("C_Initialize: called again from inside its own C_Initialize: the "
                      "backend module forwards to cmkp11 (a p11-kit proxy that lists "
                      "cmkp11?); [backend] module must name the HSM's PKCS#11 module");
        reentry_told = true;
        return CKR_GENERAL_ERROR;
    }
    initializing = true;
    reentry_told = false;
    CK_RV rv = initialize(init_args);
    initializing = false;
    return rv;
}

CK_RV module_finalize(void)
{
    pthread_mutex_lock(&init_lock);
    if (!module_ready()) {
        pthread_mutex_unlock(&init_lock);
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    module.initialized = false;
    session_forget_all();
    cmk_copy_forget_all();
    vendor_op_end_all();
    object_track_reset();
    cmk_cache_clear();
    cmk_housekeeping_reset();
    store_close(module.store);
    backend_close(&module.be);
    close_token_lock();
    soft_key_cleanup(); /* wipes unsealed material; before its library context goes */
    soft_pubcache_clear();
    pubkey_cleanup();
    config_free(&module.cfg);
    log_close();
    memset(&module, 0, sizeof(module));
    module.token_lock_fd = -1;
    pthread_mutex_unlock(&init_lock);
    return CKR_OK;
}

/* module.h: the lifetime of the module's own backend objects. Refused inside the same
 * thread's shared section, where the destroy could not wait for the other users: a
 * leaked object (a later clean-up finds it by its identity) is better than a crash. */
bool module_backend_destroy_own(CK_SESSION_HANDLE session, const CK_OBJECT_HANDLE *h, CK_ULONG n)
{
    if (n == 0) return true;
    if (token_held_shared && !token_held_exclusive) {
        log_error("internal: a destroy of the module's own backend object inside a token "
                  "read section; not destroyed");
        return false;
    }
    if (module_token_lock() != CKR_OK) return false;
    for (CK_ULONG i = 0; i < n; i++)
        if (h[i] != CK_INVALID_HANDLE) module.be.fn->C_DestroyObject(session, h[i]);
    module_token_unlock();
    return true;
}
