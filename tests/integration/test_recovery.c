/* test_recovery.c - CreateKey is one unit: a process killed at any step leaves, after
 * the next initialisation and login, either a whole CMK or nothing at all. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

/* Runs CreateKey in a child that SIGKILLs itself at the named step. */
static void create_and_die_at(const char *point, bool pair)
{
    pid_t pid = fork();
    if (pid == 0) {
        setenv("CMKP11_TEST_CRASH_AT", point, 1);
        CK_SESSION_HANDLE s = fixture_open();
        CK_OBJECT_HANDLE a, b;
        if (pair) make_ec(s, "crashy", NULL, 0, &a, &b);
        else make_aes(s, "crashy", NULL, 0, &a);
        _exit(0); /* reached only if the crash point did not fire */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void check_rolled_back(const char *point, bool pair)
{
    create_and_die_at(point, pair);
    CK_SESSION_HANDLE s = fixture_open(); /* login runs recovery */
    CHECK(find_by_label(s, "crashy", pair ? CKO_PRIVATE_KEY : CKO_SECRET_KEY, NULL) == 0);
    CK_OBJECT_HANDLE again, pub;
    /* The alias is free again: nothing half-made holds it. */
    CHECK_RV(pair ? make_ec(s, "crashy", NULL, 0, &pub, &again) : make_aes(s, "crashy", NULL, 0, &again), CKR_OK);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 0") == 0);
    CHECK(inspect_backend_material() == (pair ? 2 : 1));
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'RecoverCreateKey'") ==
          (strcmp(point, "create:after-insert") == 0 || strcmp(point, "create:after-generate") == 0 ? 1 : 0));
}

static void test_crash_after_row_insert_is_rolled_back(void)
{
    check_rolled_back("create:after-insert", false);
}

static void test_crash_after_material_generated_is_rolled_back(void)
{
    check_rolled_back("create:after-generate", false);
}

static void test_crash_after_material_generated_for_a_pair_is_rolled_back(void)
{
    check_rolled_back("create:after-generate", true);
}

static void test_crash_after_commit_keeps_a_whole_key(void)
{
    create_and_die_at("create:after-commit", true);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE priv = 0, pub = 0;
    CHECK(find_by_label(s, "crashy", CKO_PRIVATE_KEY, &priv) == 1);
    CHECK(find_by_label(s, "crashy", CKO_PUBLIC_KEY, &pub) == 1);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 1") == 1);
    CHECK(inspect_backend_material() == 2);
}

static void test_a_live_creator_is_not_recovered(void)
{
    /* A Creating row whose creator still runs is someone's CreateKey in progress. */
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "alive", NULL, 0, &key), CKR_OK);
    fixture_close(s);
    char path[4096];
    snprintf(path, sizeof(path), "sqlite3 %s/cmk.db \"UPDATE cmk SET state = 0, creator_pid = %d, "
             "creator_start = (SELECT creator_start FROM cmk LIMIT 1)\"",
             getenv("CMK_WORK"), (int)getpid());
    CHECK(system(path) == 0);
    s = fixture_open();
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 0") == 1);
    CHECK(inspect_backend_material() == 1);
}

/* A rename or a scheduled deletion is one transaction: killed before its commit, the
 * key is as it was (no audit row); after it, as asked (with its audit row). The key
 * and its alias are never lost or doubled. */
static void change_and_die_at(const char *point, bool destroy)
{
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE s = fixture_open();
        CK_OBJECT_HANDLE k = 0;
        find_by_label(s, "before", CKO_SECRET_KEY, &k);
        setenv("CMKP11_TEST_CRASH_AT", point, 1);
        if (destroy) p11->C_DestroyObject(s, k);
        else set_text(s, k, CKA_LABEL, "after");
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void check_change_crash(const char *point, bool destroy, bool committed)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "before", NULL, 0, &key), CKR_OK);
    fixture_close(s);
    change_and_die_at(point, destroy);
    s = fixture_open();
    CK_ULONG pending = CMK_STATE_PENDING_DELETION;
    CK_ATTRIBUTE by_state[] = {{CKA_CMK_KEY_STATE, &pending, sizeof(pending)}};
    if (destroy) {
        CHECK(find_by_label(s, "before", CKO_SECRET_KEY, NULL) == (committed ? 0 : 1));
        CHECK(find_count(s, by_state, 1, NULL) == (committed ? 1 : 0));
    } else {
        CHECK(find_by_label(s, "before", CKO_SECRET_KEY, NULL) == (committed ? 0 : 1));
        CHECK(find_by_label(s, "after", CKO_SECRET_KEY, &key) == (committed ? 1 : 0));
        if (committed) CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    }
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
    CHECK(inspect_backend_material() == 1);
    CHECK(inspect_store_count(destroy ? "SELECT count(*) FROM audit WHERE action = 'ScheduleKeyDeletion'"
                                      : "SELECT count(*) FROM audit WHERE action = 'UpdateKeyAttributes'") ==
          (committed ? 1 : 0));
}

static void test_crash_before_a_rename_commits_keeps_the_old_alias(void)
{
    check_change_crash("change:before-commit", false, false);
}

static void test_crash_after_a_rename_commits_keeps_the_new_alias(void)
{
    check_change_crash("change:after-commit", false, true);
}

static void test_crash_before_a_scheduled_deletion_commits_keeps_the_key(void)
{
    check_change_crash("change:before-commit", true, false);
}

static void test_crash_after_a_scheduled_deletion_commits_keeps_it_pending(void)
{
    check_change_crash("change:after-commit", true, true);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_crash_after_row_insert_is_rolled_back),
        T(test_crash_after_material_generated_is_rolled_back),
        T(test_crash_after_material_generated_for_a_pair_is_rolled_back),
        T(test_crash_after_commit_keeps_a_whole_key),
        T(test_a_live_creator_is_not_recovered),
        T(test_crash_before_a_rename_commits_keeps_the_old_alias),
        T(test_crash_after_a_rename_commits_keeps_the_new_alias),
        T(test_crash_before_a_scheduled_deletion_commits_keeps_the_key),
        T(test_crash_after_a_scheduled_deletion_commits_keeps_it_pending),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
