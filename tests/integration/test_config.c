/* test_config.c - C_Initialize with a missing or wrong configuration, backend or store
 * fails with the documented code and one log line that says what is wrong. */
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static char conf_path[4096];

/* Writes a config with the given body and points CMKP11_CONF at it. */
static void write_conf(const char *body)
{
    snprintf(conf_path, sizeof(conf_path), "%s/test.conf", getenv("CMK_WORK"));
    FILE *f = fopen(conf_path, "w");
    fputs(body, f);
    fclose(f);
    setenv("CMKP11_CONF", conf_path, 1);
}

static char good_backend[512];

static void remember_backend(void)
{
    snprintf(good_backend, sizeof(good_backend), "[backend]\nmodule = %s\ntoken_label = %s\n",
             getenv("CMK_BACKEND"), getenv("CMK_BACKEND_TOKEN"));
}

static void expect(const char *body, CK_RV want, const char *needle)
{
    char conf[2048], log[4096];
    snprintf(conf, sizeof(conf), "%s", body);
    write_conf(conf);
    CK_RV rv = fixture_init_capturing(log, sizeof(log));
    if (rv != want || !strstr(log, needle))
        fprintf(stderr, "  config:\n%s  -> rv 0x%lx, log: %s", body, rv, log);
    CHECK(rv == want);
    CHECK(strstr(log, needle) != NULL);
}

static void test_missing_config_file_fails_with_general_error(void)
{
    setenv("CMKP11_CONF", "/nonexistent/cmkp11.conf", 1);
    char log[4096];
    CHECK_RV(fixture_init_capturing(log, sizeof(log)), CKR_GENERAL_ERROR);
    CHECK(strstr(log, "/nonexistent/cmkp11.conf: cannot open") != NULL);
}

static void test_unknown_key_is_named_with_file_and_line(void)
{
    remember_backend();
    char body[1024];
    snprintf(body, sizeof(body), "%s[token]\nstore = x.db\ncolour = blue\n", good_backend);
    expect(body, CKR_GENERAL_ERROR, "test.conf line 6: [token] colour: unknown key");
}

static void test_bad_value_is_named_with_the_rule(void)
{
    remember_backend();
    char body[1024];
    snprintf(body, sizeof(body), "%s[token]\nstore = x.db\n[policy]\npending_window_days = 5\n",
             good_backend);
    expect(body, CKR_GENERAL_ERROR,
           "[policy] pending_window_days: must be a whole number of days from 7 to 1096");
}

static void test_missing_required_key_is_named(void)
{
    remember_backend();
    expect(good_backend, CKR_GENERAL_ERROR, "required key [token] store is missing");
}

static void test_missing_backend_module_fails(void)
{
    expect("[backend]\nmodule = /nonexistent/libhsm.so\ntoken_label = x\n[token]\nstore = x.db\n",
           CKR_GENERAL_ERROR, "backend module /nonexistent/libhsm.so: cannot load");
}

static void test_missing_backend_token_fails_with_device_error(void)
{
    char body[1024];
    snprintf(body, sizeof(body), "[backend]\nmodule = %s\ntoken_label = no-such-token\n"
             "[token]\nstore = x.db\n", getenv("CMK_BACKEND"));
    expect(body, CKR_DEVICE_ERROR, "no token with label 'no-such-token'");
}

static void test_unusable_store_fails_with_device_error(void)
{
    remember_backend();
    char body[1024];
    snprintf(body, sizeof(body), "%s[token]\nstore = /nonexistent/dir/cmk.db\n", good_backend);
    expect(body, CKR_DEVICE_ERROR, "store /nonexistent/dir/cmk.db: cannot open for writing");
}

static void test_store_is_created_private_and_in_wal_mode(void)
{
    remember_backend();
    char body[1024], log[4096], db[4096];
    snprintf(db, sizeof(db), "%s/fresh.db", getenv("CMK_WORK"));
    snprintf(body, sizeof(body), "%s[token]\nstore = fresh.db\n", good_backend);
    write_conf(body);
    CHECK_RV(fixture_init_capturing(log, sizeof(log)), CKR_OK);
    struct stat st;
    CHECK(stat(db, &st) == 0 && (st.st_mode & 0777) == 0600);
    char cmd[8400];
    snprintf(cmd, sizeof(cmd), "test \"$(sqlite3 %s 'PRAGMA journal_mode')\" = wal && "
             "test \"$(sqlite3 %s 'PRAGMA user_version')\" -ge 2", db, db);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_missing_config_file_fails_with_general_error),
        T(test_unknown_key_is_named_with_file_and_line),
        T(test_bad_value_is_named_with_the_rule),
        T(test_missing_required_key_is_named),
        T(test_missing_backend_module_fails),
        T(test_missing_backend_token_fails_with_device_error),
        T(test_unusable_store_fails_with_device_error),
        T(test_store_is_created_private_and_in_wal_mode),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
