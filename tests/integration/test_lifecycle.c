/* test_lifecycle.c - scheduled deletion, purge, and state changes seen across processes. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

static void set_now_offset_days(long days)
{
    char now[32];
    snprintf(now, sizeof(now), "%ld", (long)time(NULL) + days * 86400L);
    setenv("CMKP11_TEST_NOW", now, 1);
}

static CK_ULONG find_by_key_id(CK_SESSION_HANDLE s, const char *key_id)
{
    CK_ATTRIBUTE t[] = {{CKA_CMK_KEY_ID, (void *)key_id, strlen(key_id)}};
    return find_count(s, t, 1, NULL);
}

static void test_purge_destroys_material_and_row_after_the_window(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, pub, priv;
    char key_id[40];
    CHECK_RV(make_aes(s, "short-lived", NULL, 0, &key), CKR_OK);
    CHECK_RV(make_ec(s, "survivor", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(get_text(s, key, CKA_CMK_KEY_ID, key_id, sizeof(key_id)), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, key), CKR_OK);
    fixture_close(s);
    CHECK(inspect_backend_material() == 3);

    set_now_offset_days(29); /* inside the 30-day window: nothing happens */
    s = fixture_open();
    CHECK(find_by_key_id(s, key_id) == 1);
    fixture_close(s);
    CHECK(inspect_backend_material() == 3);

    set_now_offset_days(31);
    s = fixture_open();
    CHECK(find_by_key_id(s, key_id) == 0);
    CHECK(find_by_label(s, "survivor", CKO_PRIVATE_KEY, NULL) == 1);
    fixture_close(s);
    unsetenv("CMKP11_TEST_NOW");
    CHECK(inspect_backend_material() == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'DeleteKey'") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
}

static void test_per_key_pending_window_is_used(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "week", NULL, 0, &key), CKR_OK);
    CHECK_RV(set_ulong(s, key, CKA_CMK_PENDING_WINDOW_DAYS, 7), CKR_OK);
    CK_ULONG created = 0, when = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_CREATION_DATE, &created), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, key), CKR_OK);
    CHECK_RV(get_ulong(s, key, CKA_CMK_DELETION_DATE, &when), CKR_OK);
    CHECK(when >= created + 7 * 86400UL && when < created + 7 * 86400UL + 60);
    /* Changes other than cancelling are refused while pending. */
    CHECK_RV(set_text(s, key, CKA_CMK_DESCRIPTION, "late"), CKR_ACTION_PROHIBITED);
    CHECK_RV(p11->C_DestroyObject(s, key), CKR_OBJECT_HANDLE_INVALID);
    fixture_close(s);
}

static void test_crash_during_purge_is_finished_next_time(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "halfway", NULL, 0, &key), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, key), CKR_OK);
    fixture_close(s);
    set_now_offset_days(31);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("CMKP11_TEST_CRASH_AT", "purge:after-material", 1);
        fixture_open();
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    CHECK(inspect_backend_material() == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
    s = fixture_open();
    fixture_close(s);
    unsetenv("CMKP11_TEST_NOW");
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 0);
}

static void test_state_change_in_another_process_takes_effect_at_next_init(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_ec(s, "shared", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK); /* this process has it cached now */
    pid_t pid = fork();
    if (pid == 0) {
        /* A forked child starts afresh with its own C_Initialize. */
        CK_SESSION_HANDLE c = fixture_open();
        CK_OBJECT_HANDLE k = 0;
        find_by_label(c, "shared", CKO_PRIVATE_KEY, &k);
        CK_RV rv = set_ulong(c, k, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED);
        fixture_close(c);
        _exit(rv == CKR_OK && harness_failed_checks == 0 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_ULONG state = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_STATE, &state), CKR_OK);
    CHECK(state == CMK_STATE_DISABLED);
    /* And back: another process enables it, this one may sign again. */
    pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE c = fixture_open();
        CK_OBJECT_HANDLE k = 0;
        find_by_label(c, "shared", CKO_PRIVATE_KEY, &k);
        CK_RV rv = set_ulong(c, k, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED);
        fixture_close(c);
        _exit(rv == CKR_OK && harness_failed_checks == 0 ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'DisableKey' AND "
                              "detail LIKE 'state: Enabled -> Disabled;%'") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'EnableKey'") == 1);
}

static void test_immediate_destroy_policy_destroys_at_once(void)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", getenv("CMKP11_CONF"));
    FILE *f = fopen(path, "a");
    fputs("\n[policy]\nallow_immediate_destroy = true\n", f);
    fclose(f);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "gone", NULL, 0, &key), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, key), CKR_OK);
    CK_ULONG pending = CMK_STATE_PENDING_DELETION;
    CK_ATTRIBUTE by_state[] = {{CKA_CMK_KEY_STATE, &pending, sizeof(pending)}};
    CHECK(find_count(s, by_state, 1, NULL) == 0);
    fixture_close(s);
    CHECK(inspect_backend_material() == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 0);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_purge_destroys_material_and_row_after_the_window),
        T(test_per_key_pending_window_is_used),
        T(test_crash_during_purge_is_finished_next_time),
        T(test_state_change_in_another_process_takes_effect_at_next_init),
        T(test_immediate_destroy_policy_destroys_at_once),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
