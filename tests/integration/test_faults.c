/* test_faults.c - faults of the environment: the store read-only, its disk full, locked
 * by another process, damaged; the backend token gone. Each gets a clear code and a log
 * line, loses nothing, leaves nothing half-made, and the module works again once the
 * fault ends. Faults are made for real (an immutable file, a small tmpfs in a private
 * mount namespace, a second SQLite connection, garbage over the file, a moved token);
 * a test the environment cannot stage is skipped, not passed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

static const char *work(void)
{
    return getenv("CMK_WORK");
}

/* A path under the test's folder (one of a few rotating buffers). */
static const char *at(const char *name)
{
    static char paths[4][4096];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof(paths[0]), "%s/%s", work(), name);
    return p;
}

static bool shell(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd) == 0;
}

/* The log's length now: lines after it are what the calls since wrote. */
static long log_mark(void)
{
    struct stat st;
    return stat(at("cmkp11.log"), &st) == 0 ? (long)st.st_size : 0;
}

/* Is there a line written since mark that contains every one of the words? */
static bool logged_since(long mark, const char *word, const char *word2)
{
    FILE *f = fopen(at("cmkp11.log"), "r");
    if (!f) return false;
    fseek(f, mark, SEEK_SET);
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, word) && (!word2 || strstr(line, word2));
    fclose(f);
    if (!found) fprintf(stderr, "  no log line with '%s'%s%s\n", word, word2 ? " and " : "",
                        word2 ? word2 : "");
    return found;
}

static CK_ULONG count_label(CK_SESSION_HANDLE s, const char *label)
{
    return find_by_label(s, label, CKO_SECRET_KEY, NULL);
}

/* After the fault: the key made before it still works, the one refused during it left
 * nothing behind (its alias is free), and it can be made now. Ends the session. */
static void check_recovered(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE before, const char *refused)
{
    CHECK_RV(aes_gcm_roundtrip(s, before), CKR_OK);
    CHECK(count_label(s, refused) == 0);
    CK_OBJECT_HANDLE again;
    CHECK_RV(make_aes(s, refused, NULL, 0, &again), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, again), CKR_OK);
    CHECK(count_label(s, refused) == 1);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state != 1") == 0);
    CHECK(inspect_backend_material() == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'CreateKey'") == 2);
}

static void test_read_only_store_refuses_createkey_and_recovers(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE before, key;
    CHECK_RV(make_aes(s, "before", NULL, 0, &before), CKR_OK);
    /* As root a chmod stops nothing: the immutable flag stops even root's writes, through
     * descriptors already open too. The WAL is where SQLite writes first. */
    if (!shell("chattr +i %s %s 2>/dev/null", at("cmk.db"), at("cmk.db-wal"))) {
        shell("chattr -i %s %s 2>/dev/null", at("cmk.db"), at("cmk.db-wal"));
        harness_skip("chattr +i is not available here");
        fixture_close(s);
        return;
    }
    long mark = log_mark();
    CHECK_RV(make_aes(s, "during", NULL, 0, &key), CKR_TOKEN_WRITE_PROTECTED);
    CHECK(logged_since(mark, "store", "read-only"));
    CHECK(count_label(s, "during") == 0);
    CHECK_RV(aes_gcm_roundtrip(s, before), CKR_OK); /* reads and crypto go on */
    CHECK(shell("chattr -i %s %s", at("cmk.db"), at("cmk.db-wal")));
    check_recovered(s, before, "during");
}

/* Moves the store onto a tmpfs of the given size, in a mount namespace of this process
 * alone (it goes away with the process). False when mounting is not permitted. Call
 * before the module starts threads: unshare refuses a multi-threaded process. */
static bool store_on_small_disk(const char *size)
{
    if (unshare(CLONE_NEWNS) != 0) return false;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return false;
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
    if (mkdir(at("disk"), 0700) != 0 || mount("tmpfs", at("disk"), "tmpfs", 0, opts) != 0)
        return false;
    /* SQLite follows the link, so the WAL and shared memory live on the small disk too. */
    return symlink(at("disk/cmk.db"), at("cmk.db")) == 0;
}

/* Writes a file until the disk is full. */
static void fill_disk(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    static char chunk[4096];
    memset(chunk, 0xee, sizeof(chunk));
    while (fd >= 0 && write(fd, chunk, sizeof(chunk)) > 0) {}
    int full = errno;
    CHECK(full == ENOSPC);
    if (fd >= 0) close(fd);
}

static void test_full_disk_refuses_createkey_and_recovers(void)
{
    if (!store_on_small_disk("2m")) {
        harness_skip("cannot mount a tmpfs in a private mount namespace here");
        return;
    }
    CK_SESSION_HANDLE s = fixture_open();
    struct stat st;
    CHECK(stat(at("disk/cmk.db-wal"), &st) == 0); /* the WAL is on the small disk */
    CK_OBJECT_HANDLE before, key;
    CHECK_RV(make_aes(s, "before", NULL, 0, &before), CKR_OK);
    fill_disk(at("disk/filler"));
    long mark = log_mark();
    CHECK_RV(make_aes(s, "during", NULL, 0, &key), CKR_DEVICE_MEMORY);
    CHECK(logged_since(mark, "store", "full"));
    CHECK(count_label(s, "during") == 0);
    CHECK_RV(aes_gcm_roundtrip(s, before), CKR_OK);
    CHECK(unlink(at("disk/filler")) == 0);
    check_recovered(s, before, "during");
}

/* The SQLite busy timeout of the module (src/store.c), which the lock outlasts. */
#define BUSY_TIMEOUT_S 10
#define LOCK_HELD_S (BUSY_TIMEOUT_S + 8)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A child holds the store's write lock (BEGIN EXCLUSIVE) for LOCK_HELD_S seconds. */
static pid_t lock_store(void)
{
    int ready[2];
    if (pipe(ready) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        sqlite3 *db;
        if (sqlite3_open(at("cmk.db"), &db) != SQLITE_OK ||
            sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
            _exit(1);
        if (write(ready[1], "x", 1) != 1) _exit(1);
        sleep(LOCK_HELD_S);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        _exit(0);
    }
    close(ready[1]);
    char c;
    bool locked = read(ready[0], &c, 1) == 1;
    close(ready[0]);
    CHECK(locked);
    return pid;
}

static void test_locked_store_refuses_createkey_and_recovers(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE before, key;
    CHECK_RV(make_aes(s, "before", NULL, 0, &before), CKR_OK);
    pid_t holder = lock_store();
    long mark = log_mark();
    double t0 = now_s();
    CHECK_RV(make_aes(s, "during", NULL, 0, &key), CKR_FUNCTION_FAILED);
    double waited = now_s() - t0;
    /* It waited out the busy timeout, and gave up before the lock was released. */
    CHECK(waited >= BUSY_TIMEOUT_S - 1 && waited < LOCK_HELD_S);
    CHECK(logged_since(mark, "store", "locked"));
    CHECK_RV(aes_gcm_roundtrip(s, before), CKR_OK); /* readers are not blocked */
    int status = 0;
    waitpid(holder, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    check_recovered(s, before, "during");
}

static bool copy_file(const char *from, const char *to)
{
    return shell("cp -f '%s' '%s'", from, to);
}

/* Writes len bytes of garbage at offset. */
static void scribble(const char *path, long offset, size_t len)
{
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0);
    unsigned char junk[4096];
    srand(7);
    for (size_t done = 0; fd >= 0 && done < len; done += sizeof(junk)) {
        for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (unsigned char)rand();
        size_t n = len - done < sizeof(junk) ? len - done : sizeof(junk);
        CHECK(pwrite(fd, junk, n, offset + (off_t)done) == (ssize_t)n);
    }
    if (fd >= 0) close(fd);
}

static void expect_initialize_refused(const char *word, const char *word2)
{
    long mark = log_mark();
    CHECK_RV(p11->C_Initialize(NULL), CKR_DEVICE_ERROR);
    CHECK(logged_since(mark, word, word2));
    CK_INFO info;
    CHECK_RV(p11->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    CHECK_RV(p11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void test_damaged_store_fails_initialize_cleanly(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE before;
    for (int i = 0; i < 20; i++) {
        char alias[32];
        snprintf(alias, sizeof(alias), "key-%d", i);
        CHECK_RV(make_aes(s, alias, NULL, 0, &before), CKR_OK);
    }
    fixture_close(s); /* the last connection folds the WAL into the file */
    struct stat st;
    CHECK(stat(at("cmk.db-wal"), &st) != 0);
    CHECK(stat(at("cmk.db"), &st) == 0 && st.st_size >= 4 * 4096);
    CHECK(copy_file(at("cmk.db"), at("good.db")));
    /* Garbage over the header, over the tables' pages, and over the tail. */
    long offsets[] = {0, 4096, st.st_size - 4096};
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        CHECK(copy_file(at("good.db"), at("cmk.db")));
        scribble(at("cmk.db"), offsets[i], i == 1 ? (size_t)st.st_size - 8192 : 4096);
        expect_initialize_refused("store", i == 0 ? "not a database" : "damaged");
        unlink(at("cmk.db-wal"));
        unlink(at("cmk.db-shm"));
    }
    /* Put back, the store is whole again: nothing was written over it meanwhile. */
    CHECK(copy_file(at("good.db"), at("cmk.db")));
    s = fixture_open();
    CHECK(find_by_label(s, "key-19", CKO_SECRET_KEY, &before) == 1);
    CHECK_RV(aes_gcm_roundtrip(s, before), CKR_OK);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 20);
}

/* The SoftHSMv2 token's own folder under tokens/. */
static bool token_folder(char *out, size_t size)
{
    DIR *d = opendir(at("tokens"));
    if (!d) return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d)))
        if (e->d_name[0] != '.') found = snprintf(out, size, "%s/%s", at("tokens"), e->d_name) > 0;
    closedir(d);
    return found;
}

static void test_removed_backend_token_refuses_createkey_and_recovers(void)
{
    char token[4096], away[4096];
    CHECK(token_folder(token, sizeof(token)));
    snprintf(away, sizeof(away), "%s", at("token-away"));
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE before, key;
    CHECK_RV(make_aes(s, "before", NULL, 0, &before), CKR_OK);
    CHECK(rename(token, away) == 0);
    long mark = log_mark();
    CHECK_RV(make_aes(s, "during", NULL, 0, &key), CKR_DEVICE_REMOVED);
    CHECK(logged_since(mark, "backend token", "is gone"));
    /* Back again: the backend needs a fresh start to see it, as after any removal. */
    CHECK(rename(away, token) == 0);
    p11->C_CloseSession(s);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
    s = fixture_open();
    CHECK(find_by_label(s, "before", CKO_SECRET_KEY, &before) == 1);
    check_recovered(s, before, "during");

    /* Gone at C_Initialize: the documented CKR_DEVICE_ERROR, and a line naming the token. */
    CHECK(rename(token, away) == 0);
    expect_initialize_refused("no token with label", NULL);
    CHECK(rename(away, token) == 0);
    s = fixture_open();
    CHECK(count_label(s, "before") == 1);
    fixture_close(s);
}

/* Points the configuration at the fault backend built beside this test, over the real
 * one; the fault is on while the file backend-fault exists (see fault_backend.c). */
static bool use_fault_backend(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return false;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    setenv("CMK_FAULT_BACKEND", getenv("CMK_BACKEND"), 1);
    setenv("CMK_FAULT_FILE", at("backend-fault"), 1);
    return shell("sed -i 's|^module = .*|module = %s/libcmk_fault_backend.so|' %s", exe,
                 at("cmkp11.conf"));
}

static void test_backend_device_error_refuses_createkey_and_recovers(void)
{
    CHECK(use_fault_backend());
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE before, key;
    CHECK_RV(make_aes(s, "before", NULL, 0, &before), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, before), CKR_OK);
    CHECK(shell("echo fail > %s", at("backend-fault")));
    long mark = log_mark();
    CHECK_RV(make_aes(s, "during", NULL, 0, &key), CKR_DEVICE_ERROR);
    CHECK(logged_since(mark, "backend refused", "0x30"));
    CHECK_RV(aes_gcm_roundtrip(s, before), CKR_DEVICE_ERROR); /* passed on as it is */
    CHECK(count_label(s, "during") == 0);                      /* the store still answers */
    /* The HSM comes back: no restart needed. */
    CHECK(unlink(at("backend-fault")) == 0);
    check_recovered(s, before, "during");
}

static void test_backend_failing_after_generation_leaves_no_material(void)
{
    CHECK(use_fault_backend());
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE before, key, pub;
    CHECK_RV(make_aes(s, "before", NULL, 0, &before), CKR_OK);
    /* The HSM makes the key, then fails to say so: the key must not stay behind, unowned. */
    CHECK(shell("echo late > %s", at("backend-fault")));
    CHECK_RV(make_aes(s, "during", NULL, 0, &key), CKR_DEVICE_ERROR);
    CHECK_RV(make_ec(s, "during-pair", NULL, 0, &pub, &key), CKR_DEVICE_ERROR);
    CHECK(unlink(at("backend-fault")) == 0);
    CHECK(find_by_label(s, "during-pair", CKO_PRIVATE_KEY, NULL) == 0);
    check_recovered(s, before, "during");
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_read_only_store_refuses_createkey_and_recovers),
        T(test_full_disk_refuses_createkey_and_recovers),
        T(test_locked_store_refuses_createkey_and_recovers),
        T(test_damaged_store_fails_initialize_cleanly),
        T(test_removed_backend_token_refuses_createkey_and_recovers),
        T(test_backend_device_error_refuses_createkey_and_recovers),
        T(test_backend_failing_after_generation_leaves_no_material),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
