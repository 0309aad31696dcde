/* test_init_token.c - C_InitToken on the CMK token (issue 17 item 6): the SO's explicit
 * act re-initialises the backend token as on any token, and every CMK of the token goes
 * with its material, in one audited store transaction; [policy] init_token may refuse
 * it; refusals (sessions open, another label, a wrong SO PIN, the policy) change
 * nothing. */
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

static CK_BBOOL yes = CK_TRUE;

static const char *user_pin(void) { return getenv("CMK_PIN") ? getenv("CMK_PIN") : "1234"; }

static CK_RV init_token(const char *label)
{
    return p11->C_InitToken(0, (CK_UTF8CHAR_PTR)fixture_so_pin(), strlen(fixture_so_pin()),
                            fixture_token_label(label));
}

/* After a re-initialisation the user PIN is unset, as on any token: the SO sets it. */
static void so_sets_user_pin(void)
{
    CK_SESSION_HANDLE s;
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK_RV(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)fixture_so_pin(), strlen(fixture_so_pin())),
             CKR_OK);
    CHECK_RV(p11->C_InitPIN(s, (CK_UTF8CHAR_PTR)user_pin(), strlen(user_pin())), CKR_OK);
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    CHECK_RV(p11->C_CloseSession(s), CKR_OK);
}

static CK_SESSION_HANDLE user_session(void)
{
    CK_SESSION_HANDLE s = 0;
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK_RV(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)user_pin(), strlen(user_pin())), CKR_OK);
    return s;
}

/* An HSM AES key, an HSM EC pair, a SOFTWARE AES key (whose master key is a backend
 * object too) and a data object (a recorded pass-through object). */
static void make_keys_and_an_object(CK_SESSION_HANDLE s)
{
    CK_OBJECT_HANDLE aes, pub, priv, soft, data;
    CHECK_RV(make_aes(s, "before-aes", NULL, 0, &aes), CKR_OK);
    CHECK_RV(make_ec(s, "before-ec", NULL, 0, &pub, &priv), CKR_OK);
    CK_ULONG level = CMK_PROTECTION_SOFTWARE;
    CK_ATTRIBUTE soft_level[] = {{CKA_CMK_PROTECTION_LEVEL, &level, sizeof(level)}};
    CHECK_RV(make_aes(s, "before-soft", soft_level, 1, &soft), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, soft), CKR_OK);
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_TOKEN, &yes, sizeof(yes)},
                        {CKA_LABEL, "before-data", 11},
                        {CKA_VALUE, "payload", 7}};
    CHECK_RV(p11->C_CreateObject(s, t, 4, &data), CKR_OK);
}

static void test_init_token_removes_every_cmk_with_its_material_and_audits_once(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    make_keys_and_an_object(s);
    CHECK_RV(p11->C_CloseSession(s), CKR_OK);
    CHECK_RV(init_token("cmkp11"), CKR_OK);
    so_sets_user_pin();
    s = user_session();
    CHECK(find_count(s, NULL, 0, NULL) == 0);
    CK_ULONG state = CMK_STATE_PENDING_DELETION;
    CK_ATTRIBUTE pending[] = {{CKA_CMK_KEY_STATE, &state, sizeof(state)}};
    CHECK(find_count(s, pending, 1, NULL) == 0);
    /* The token works as a new one: keys of both levels are made and used again, the
     * SOFTWARE one under a new master key. */
    CK_OBJECT_HANDLE aes, pub, priv, soft;
    CHECK_RV(make_aes(s, "after-aes", NULL, 0, &aes), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, aes), CKR_OK);
    CHECK_RV(make_ec(s, "after-ec", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    CK_ULONG level = CMK_PROTECTION_SOFTWARE;
    CK_ATTRIBUTE soft_level[] = {{CKA_CMK_PROTECTION_LEVEL, &level, sizeof(level)}};
    CHECK_RV(make_aes(s, "before-soft", soft_level, 1, &soft), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, soft), CKR_OK);
    CHECK(find_by_label(s, "before-aes", CKO_SECRET_KEY, NULL) == 0);
    CHECK(find_by_label(s, "after-aes", CKO_SECRET_KEY, NULL) == 1);
    fixture_close(s);

    /* Behind the module: nothing names what went; one audit row says how much. */
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 3);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_version WHERE cmk_id NOT IN "
                              "(SELECT id FROM cmk)") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed WHERE cmk_id NOT IN "
                              "(SELECT id FROM cmk)") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_tag WHERE cmk_id NOT IN "
                              "(SELECT id FROM cmk)") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM passthrough") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'InitToken'") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'InitToken' AND "
                              "key_id IS NULL AND detail = 'keys=3 objects=1'") == 1);
    /* The backend holds the new keys' material (AES, the EC pair's two objects, the
     * master key) and nothing of the old: no data object, no old material. */
    CHECK(inspect_backend_objects("before-data") == 0);
    long objects = inspect_backend_objects("");
    if (objects != 4) fprintf(stderr, "  backend objects: %ld\n", objects);
    CHECK(objects == 4);
    /* Row ids are not handed out again: a handle kept from before never names a new key. */
    CHECK(inspect_store_count("SELECT min(id) FROM cmk") > 3);
}

/* Everything a refused C_InitToken must leave as it was, taken with the module finalised. */
static void snapshot(char *out, size_t size) { CHECK(inspect_snapshot(out, size) == 0); }

static void refused_changes_nothing(CK_RV want, const char *label, const char *log_needle,
                                    bool session_open)
{
    CK_SESSION_HANDLE s = fixture_open();
    make_keys_and_an_object(s);
    fixture_close(s);
    static char before[65536], after[65536];
    snapshot(before, sizeof(before));
    long lines = log_needle ? inspect_log_count(log_needle) : 0;
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CHECK_RV(p11->C_Initialize(&args), CKR_OK);
    if (session_open) CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK_RV(init_token(label), want);
    s = user_session(); /* the old PIN still opens the token */
    CHECK(find_by_label(s, "before-aes", CKO_SECRET_KEY, NULL) == 1);
    CK_OBJECT_HANDLE soft;
    CHECK(find_by_label(s, "before-soft", CKO_SECRET_KEY, &soft) == 1);
    CHECK_RV(aes_gcm_roundtrip(s, soft), CKR_OK);
    fixture_close(s);
    snapshot(after, sizeof(after));
    CHECK(strcmp(before, after) == 0);
    if (log_needle) CHECK(inspect_log_count(log_needle) == lines + 1);
}

static void test_init_token_with_a_session_open_is_session_exists_and_changes_nothing(void)
{
    refused_changes_nothing(CKR_SESSION_EXISTS, "cmkp11", "session(s) of this process are open",
                            true);
}

static void test_init_token_with_another_label_is_refused_and_changes_nothing(void)
{
    refused_changes_nothing(CKR_ACTION_PROHIBITED, "fresh",
                            "label: 'fresh' is not the CMK token's label 'cmkp11'", false);
}

static void test_init_token_with_a_wrong_so_pin_is_pin_incorrect_and_changes_nothing(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    make_keys_and_an_object(s);
    fixture_close(s);
    static char before[65536], after[65536];
    snapshot(before, sizeof(before));
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CHECK_RV(p11->C_Initialize(&args), CKR_OK);
    CHECK_RV(p11->C_InitToken(0, (CK_UTF8CHAR_PTR) "87654321", 8, fixture_token_label("cmkp11")),
             CKR_PIN_INCORRECT);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
    snapshot(after, sizeof(after));
    /* SoftHSMv2 keeps a count-low flag in its token file; the store and keys are alike. */
    CHECK(strcmp(before, after) == 0);
}

static void test_init_token_null_pin_or_label_is_arguments_bad(void)
{
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CHECK_RV(p11->C_Initialize(&args), CKR_OK);
    CHECK_RV(p11->C_InitToken(0, NULL, 4, fixture_token_label("cmkp11")), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_InitToken(0, (CK_UTF8CHAR_PTR)fixture_so_pin(), strlen(fixture_so_pin()), NULL),
             CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
    CHECK(inspect_log_count("C_InitToken: pin: NULL") == 1);
    CHECK(inspect_log_count("C_InitToken: label: NULL") == 1);
}

static void test_policy_refuse_with_keys_refuses_while_a_cmk_exists(void)
{
    fixture_append_policy("init_token = refuse_with_keys");
    refused_changes_nothing(CKR_ACTION_PROHIBITED, "cmkp11",
                            "[policy] init_token = refuse_with_keys: the token holds 3 CMK(s)",
                            false);
}

static void test_policy_refuse_with_keys_allows_a_token_without_cmks(void)
{
    fixture_append_policy("init_token = refuse_with_keys");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &yes, sizeof(yes)}, {CKA_LABEL, "data", 4}};
    CK_OBJECT_HANDLE data;
    CHECK_RV(p11->C_CreateObject(s, t, 3, &data), CKR_OK);
    CHECK_RV(p11->C_CloseSession(s), CKR_OK);
    CHECK_RV(init_token("cmkp11"), CKR_OK);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'InitToken' AND "
                              "detail = 'keys=0 objects=1'") == 1);
}

static void test_policy_refuse_refuses_even_an_empty_token(void)
{
    fixture_append_policy("init_token = refuse");
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CHECK_RV(p11->C_Initialize(&args), CKR_OK);
    CHECK_RV(init_token("cmkp11"), CKR_ACTION_PROHIBITED);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
    CHECK(inspect_log_count("refused by [policy] init_token = refuse:") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'InitToken'") == 0);
}

static void test_policy_init_token_with_a_bad_value_fails_initialize_naming_the_key(void)
{
    fixture_append_policy("init_token = sometimes");
    char log[4096];
    CHECK_RV(fixture_init_capturing(log, sizeof(log)), CKR_GENERAL_ERROR);
    CHECK(strstr(log, "[policy] init_token: must be 'allow', 'refuse_with_keys' or 'refuse'") !=
          NULL);
}

/* Another process keeps its session and its handles across the re-initialisation: at its
 * next use the keys are gone (the store's change signal), never a dead backend handle. */
static void test_keys_vanish_for_another_process_at_its_next_use(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE aes, pub, priv;
    CHECK_RV(make_aes(s, "shared-aes", NULL, 0, &aes), CKR_OK);
    CHECK_RV(make_ec(s, "shared-ec", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, aes), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
        CK_RV rv = p11->C_Initialize(&args);
        if (rv == CKR_OK) rv = init_token("cmkp11");
        p11->C_Finalize(NULL);
        _exit(rv == CKR_OK ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &ecdsa, priv), CKR_KEY_HANDLE_INVALID);
    unsigned char iv[12] = {0};
    CK_GCM_PARAMS gcm = {iv, sizeof(iv), sizeof(iv) * 8, NULL, 0, 128};
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    CHECK_RV(p11->C_EncryptInit(s, &mech, aes), CKR_KEY_HANDLE_INVALID);
    CK_ULONG len = 0;
    CK_ATTRIBUTE a = {CKA_LABEL, NULL, 0};
    CHECK_RV(p11->C_GetAttributeValue(s, aes, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    (void)len;
    CHECK(find_by_label(s, "shared-aes", CKO_SECRET_KEY, NULL) == 0);
    CHECK(find_count(s, NULL, 0, NULL) == 0);
    fixture_close(s);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_init_token_removes_every_cmk_with_its_material_and_audits_once),
        T(test_init_token_with_a_session_open_is_session_exists_and_changes_nothing),
        T(test_init_token_with_another_label_is_refused_and_changes_nothing),
        T(test_init_token_with_a_wrong_so_pin_is_pin_incorrect_and_changes_nothing),
        T(test_init_token_null_pin_or_label_is_arguments_bad),
        T(test_policy_refuse_with_keys_refuses_while_a_cmk_exists),
        T(test_policy_refuse_with_keys_allows_a_token_without_cmks),
        T(test_policy_refuse_refuses_even_an_empty_token),
        T(test_policy_init_token_with_a_bad_value_fails_initialize_naming_the_key),
        T(test_keys_vanish_for_another_process_at_its_next_use),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
