/* test_fork.c - fork() while other threads are inside the module, and a child that goes
 * on with the store after its parent. Each case forces its interleaving with a pause
 * point; the stress form (threads hammering while the main thread forks 40 times) is in
 * test_software.c. A child has 10 s before SIGALRM ends it: a hang is a failure. */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

/* A thread that makes a key, and one that lets it go on from a pause point after 300 ms,
 * saying so first: fork() returning before that means the child was made while the first
 * thread was at the point. */
static volatile int released;

static void *create_key(void *arg)
{
    CK_SESSION_HANDLE s = fixture_session(CKF_SERIAL_SESSION | CKF_RW_SESSION);
    CK_OBJECT_HANDLE key;
    *(CK_RV *)arg = make_aes(s, "made-across-fork", NULL, 0, &key);
    p11->C_CloseSession(s);
    return NULL;
}

static void *release_later(void *point)
{
    usleep(300 * 1000);
    __atomic_store_n(&released, 1, __ATOMIC_SEQ_CST);
    pause_release(point);
    return NULL;
}

/* Holds a CreateKey at point, forks, and checks that the fork waited for it, that the
 * child could make a key of its own, and that the parent's key was made. */
static void fork_while_held_at(const char *point)
{
#ifdef __SANITIZE_ADDRESS__
    /* GCC 12's AddressSanitizer does not hold its allocator's lock across fork(): a child
     * forked while another thread allocates can hang in ASan's malloc whatever the module
     * does. The normal build runs this test. */
    harness_skip("AddressSanitizer's allocator is not fork-safe with threads in this GCC");
    return;
#endif
    CK_SESSION_HANDLE s = fixture_open();
    pause_arm(point);
    CK_RV made = CKR_GENERAL_ERROR;
    pthread_t creator, releaser;
    pthread_create(&creator, NULL, create_key, &made);
    CHECK(pause_wait_reached(point));
    pthread_create(&releaser, NULL, release_later, (void *)point);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        int waited = __atomic_load_n(&released, __ATOMIC_SEQ_CST);
        CK_SESSION_HANDLE c = fixture_open();
        CK_OBJECT_HANDLE key;
        CK_RV rv = make_aes(c, "made-in-child", NULL, 0, &key);
        if (rv == CKR_OK) rv = encrypt_block(c, key);
        fixture_close(c);
        _exit(waited && rv == CKR_OK && harness_failed_checks == 0 ? 0 : 1);
    }
    int waited = __atomic_load_n(&released, __ATOMIC_SEQ_CST);
    int status = 0;
    waitpid(pid, &status, 0);
    pthread_join(releaser, NULL);
    pthread_join(creator, NULL);
    CHECK(waited);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_RV(made, CKR_OK);
    CHECK(find_by_label(s, "made-across-fork", CKO_SECRET_KEY, NULL) == 1);
    CHECK(find_by_label(s, "made-in-child", CKO_SECRET_KEY, NULL) == 1);
    fixture_close(s);
}

/* SQLite marks its per-file lock records held while a transaction is open, and a child
 * forked then waited for ever on its parent's write lock in its first transaction (a
 * thread inside an sqlite3_* call could leave SQLite's own mutexes held as well): the
 * fork waits until no transaction is open. */
static void test_fork_waits_for_a_thread_in_a_store_transaction(void)
{
    fork_while_held_at("store:in-transaction");
}

/* SoftHSMv2 holds locks of its own inside its calls, and a child forked then hung in the
 * backend's C_Finalize at its C_Initialize: the fork waits until no thread is inside a
 * backend call (backend_gate.h). The point is inside the gate, just before the backend's
 * C_GenerateKey. */
static void test_fork_waits_for_a_thread_inside_the_backend(void)
{
    fork_while_held_at("backend:C_GenerateKey");
}

/* A child starts its own connection to the store; its parent then finalises, closing its
 * connection, and the child goes on to make a key. The child had inherited SQLite's record
 * of the parent's file locks, so it took no lock of its own on the store, and the parent's
 * close, believing itself the last user, checkpointed and removed the write-ahead log the
 * child was writing to: the child's key was lost. The child now closes what it inherited
 * first (a connection with no transaction open: store_at_fork), as SQLite prescribes. */
static void test_a_child_keeps_what_it_writes_after_its_parent_closes_the_store(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE parents;
    CHECK_RV(make_aes(s, "parents-key", NULL, 0, &parents), CKR_OK);
    int child_ready[2], parent_gone[2];
    CHECK(pipe(child_ready) == 0 && pipe(parent_gone) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        char c = 0;
        CK_SESSION_HANDLE cs = fixture_open();
        CK_OBJECT_HANDLE key;
        CK_RV rv = make_aes(cs, "before-parent-left", NULL, 0, &key);
        CHECK(write(child_ready[1], "r", 1) == 1);
        CHECK(read(parent_gone[0], &c, 1) == 1);
        if (rv == CKR_OK) rv = make_aes(cs, "after-parent-left", NULL, 0, &key);
        if (rv == CKR_OK) rv = encrypt_block(cs, key);
        fixture_close(cs);
        _exit(rv == CKR_OK && harness_failed_checks == 0 ? 0 : 1);
    }
    char c = 0;
    CHECK(read(child_ready[0], &c, 1) == 1);
    fixture_close(s);
    CHECK(write(parent_gone[1], "g", 1) == 1);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* A later process sees every key, each with its catalog row. */
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state != 0") == 3);
    s = fixture_open();
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CHECK(find_by_label(s, "after-parent-left", CKO_SECRET_KEY, &key) == 1);
    CHECK_RV(encrypt_block(s, key), CKR_OK);
    CHECK(find_by_label(s, "before-parent-left", CKO_SECRET_KEY, NULL) == 1);
    CHECK(find_by_label(s, "parents-key", CKO_SECRET_KEY, NULL) == 1);
    fixture_close(s);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_fork_waits_for_a_thread_in_a_store_transaction),
        T(test_fork_waits_for_a_thread_inside_the_backend),
        T(test_a_child_keeps_what_it_writes_after_its_parent_closes_the_store),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
