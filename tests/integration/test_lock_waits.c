/* test_lock_waits.c - a process stopped (SIGSTOP, Ctrl-Z, a debugger) while it holds the
 * token lock must not hang the other processes sharing the store: their waits end after
 * [token] lock_wait_seconds with a clear code and one log line naming the stopped holder,
 * and everything works again once the holder goes on. Before, flock waited forever, in
 * C_Initialize too. (A busy lock with running holders is waited for longer: the suite's
 * concurrency tests hold that to account.) */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define WAIT_SECONDS 2

/* A child that makes a token key and is held inside the exclusive token lock, then
 * stopped there by the test. */
static pid_t start_holder(void)
{
    pause_arm("token-lock:held");
    pid_t pid = fork();
    if (pid == 0) {
        /* A group of its own, whose parent (this test) is outside it: a group that
         * becomes orphaned with a stopped member is sent SIGHUP and SIGCONT by the
         * kernel (POSIX job control), which would kill or wake the holder under the
         * test's feet whenever the test runs in an orphaned group (a detached shell). */
        setpgid(0, 0);
        CK_SESSION_HANDLE s = fixture_open();
        CK_OBJECT_HANDLE k;
        CK_RV rv = make_aes(s, NULL, NULL, 0, &k);
        _exit(rv == CKR_OK ? 0 : 1);
    }
    setpgid(pid, pid); /* as the child does: whichever runs first */
    bool held = pause_wait_reached("token-lock:held");
    CHECK(held);
    CHECK(kill(pid, SIGSTOP) == 0);
    /* Stopped for sure before anyone looks: a waiter that found it still running would
     * queue for the lock, as for any busy holder. */
    int status = 0;
    CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status));
    return pid;
}

static void let_holder_go(pid_t pid)
{
    pause_release("token-lock:held");
    CHECK(kill(pid, SIGCONT) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static bool log_names(pid_t holder)
{
    char path[4096], want[128], line[1024];
    snprintf(path, sizeof(path), "%s/cmkp11.log", getenv("CMK_WORK"));
    snprintf(want, sizeof(want), "token lock: process %ld is stopped", (long)holder);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f)) found = strstr(line, want) != NULL;
    if (f) fclose(f);
    return found;
}

static void test_a_stopped_lock_holder_fails_c_initialize_instead_of_hanging_it(void)
{
    char line[64];
    snprintf(line, sizeof(line), "lock_wait_seconds = %d", WAIT_SECONDS);
    fixture_set_conf("token", line);
    fixture_set_conf("log", "level = error");
    alarm(60); /* a hang fails the test instead of blocking the suite */
    pid_t holder = start_holder();
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CHECK_RV(p11->C_Initialize(&args), CKR_DEVICE_ERROR);
    CHECK(log_names(holder));
    let_holder_go(holder);
    /* The holder went on: this process starts and makes keys again. */
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE k;
    CHECK_RV(make_aes(s, NULL, NULL, 0, &k), CKR_OK);
    fixture_close(s);
    alarm(0);
}

/* Already running, a process meets the stopped holder at a key's creation (exclusive):
 * it gives up with CKR_FUNCTION_FAILED and changes nothing; signing with a key already in
 * use goes on untouched, for the module knows its backend handle and needs no token lock. */
static void test_a_stopped_lock_holder_fails_creates_but_not_signatures_with_keys_in_use(void)
{
    char line[64];
    snprintf(line, sizeof(line), "lock_wait_seconds = %d", WAIT_SECONDS);
    fixture_set_conf("token", line);
    fixture_set_conf("log", "level = error");
    alarm(60);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv, k;
    CHECK_RV(make_ec(s, "before-the-stop", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    pid_t holder = start_holder();
    CHECK_RV(make_aes(s, "during-the-stop", NULL, 0, &k), CKR_FUNCTION_FAILED);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    CHECK(log_names(holder));
    let_holder_go(holder);
    CHECK(find_by_label(s, "during-the-stop", CKO_SECRET_KEY, NULL) == 0);
    CHECK_RV(make_aes(s, "during-the-stop", NULL, 0, &k), CKR_OK);
    CHECK(find_by_label(s, "during-the-stop", CKO_SECRET_KEY, NULL) == 1);
    fixture_close(s);
    alarm(0);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_a_stopped_lock_holder_fails_c_initialize_instead_of_hanging_it),
        T(test_a_stopped_lock_holder_fails_creates_but_not_signatures_with_keys_in_use),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
