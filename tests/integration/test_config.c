/* test_config.c - C_Initialize with a missing or wrong configuration, backend or store
 * fails with the documented code and one log line that says what is wrong. */
#include <signal.h>
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

/* A C_Initialize that hangs fails the test instead of holding ctest until its timeout. */
static void on_hang(int sig)
{
    (void)sig;
    static const char msg[] = "  C_Initialize did not return within 30 s: hung\n";
    if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0) {}
    _exit(3);
}

static CK_RV init_bounded(char *log, size_t size)
{
    signal(SIGALRM, on_hang);
    alarm(30);
    CK_RV rv = fixture_init_capturing(log, size);
    alarm(0);
    return rv;
}

static void expect_bounded(CK_RV want, const char *needle)
{
    char log[8192];
    CK_RV rv = init_bounded(log, sizeof(log));
    if (rv != want || !strstr(log, needle))
        fprintf(stderr, "  CMKP11_CONF %s -> rv 0x%lx, log: %s", getenv("CMKP11_CONF"), rv, log);
    CHECK(rv == want);
    CHECK(strstr(log, needle) != NULL);
}

static void test_config_that_is_not_a_regular_file_is_refused(void)
{
    setenv("CMKP11_CONF", "/dev/zero", 1); /* read before: endless */
    expect_bounded(CKR_GENERAL_ERROR, "config /dev/zero: is a character device, not a regular file");
    char fifo[4096], log[8192];
    snprintf(fifo, sizeof(fifo), "%s/fifo.conf", getenv("CMK_WORK"));
    CHECK(mkfifo(fifo, 0600) == 0);
    setenv("CMKP11_CONF", fifo, 1); /* opened before: waited for a writer forever */
    expect_bounded(CKR_GENERAL_ERROR, "fifo.conf: is a FIFO, not a regular file");
    setenv("CMKP11_CONF", getenv("CMK_WORK"), 1); /* read before as empty: "missing key" */
    expect_bounded(CKR_GENERAL_ERROR, "is a directory, not a regular file");
    /* The same settings in a file are taken. */
    remember_backend();
    char body[1024];
    snprintf(body, sizeof(body), "%s[token]\nstore = x.db\n", good_backend);
    write_conf(body);
    CHECK_RV(init_bounded(log, sizeof(log)), CKR_OK);
}

static void test_key_given_twice_is_refused_naming_both_lines(void)
{
    remember_backend(); /* lines 1 to 3 */
    char body[1024];
    snprintf(body, sizeof(body), "%s[token]\nstore = x.db\nlabel = a\nstore = other.db\n",
             good_backend);
    expect(body, CKR_GENERAL_ERROR,
           "test.conf line 7: [token] store: given twice (first at line 5)");
    /* A second [token] section is the same section: the key is there twice all the same. */
    snprintf(body, sizeof(body), "%s[token]\nstore = x.db\n[log]\nlevel = info\n\n[token]\n"
             "store = other.db\n", good_backend);
    expect(body, CKR_GENERAL_ERROR,
           "test.conf line 10: [token] store: given twice (first at line 5)");
    snprintf(body, sizeof(body), "%s[gm_backend]\nsm4_cbc = 0x1082\nsm4_cbc = 0x1082\n"
             "[token]\nstore = x.db\n", good_backend);
    expect(body, CKR_GENERAL_ERROR, "line 6: [gm_backend] sm4_cbc: given twice (first at line 5)");
    /* A line that starts with a blank is read as more of the value above it. */
    snprintf(body, sizeof(body), "%s[token]\nstore = x.db\n  other.db\n", good_backend);
    expect(body, CKR_GENERAL_ERROR,
           "test.conf line 6: [token] store: a line that starts with a blank continues the "
           "value of line 5");
    /* Sections may still be repeated with other keys, and the file is then taken. */
    snprintf(body, sizeof(body), "%s[token]\nstore = x.db\n[log]\nlevel = info\n[token]\n"
             "label = again\n", good_backend);
    expect(body, CKR_OK, "");
}

/* The fault backend built beside this test (fault_backend.c), over the module at
 * forward_to, with the tests' backend token. */
static void use_fault_backend(const char *forward_to)
{
    char exe[4096], body[8192];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    CHECK(n > 0);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    setenv("CMK_FAULT_BACKEND", forward_to, 1);
    snprintf(body, sizeof(body), "[backend]\nmodule = %s/libcmk_fault_backend.so\n"
             "token_label = %s\n[token]\nstore = x.db\n", exe, getenv("CMK_BACKEND_TOKEN"));
    write_conf(body);
}

static void test_backend_function_list_with_a_null_entry_is_refused(void)
{
    use_fault_backend(getenv("CMK_BACKEND"));
    /* Called at once, called while the token is looked for, or only forwarded later: each
     * is refused at C_Initialize (before, the first two crashed it, the last was taken). */
    static const char *const entries[] = {"C_Initialize", "C_GetSlotList", "C_SignRecover",
                                          "C_CancelFunction"};
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        char needle[256];
        snprintf(needle, sizeof(needle), "libcmk_fault_backend.so: its function list has no %s, "
                 "which cmkp11 calls", entries[i]);
        setenv("CMK_FAULT_NULL_ENTRY", entries[i], 1);
        expect_bounded(CKR_GENERAL_ERROR, needle);
    }
    setenv("CMK_FAULT_VERSION_MAJOR", "1", 1);
    unsetenv("CMK_FAULT_NULL_ENTRY");
    expect_bounded(CKR_GENERAL_ERROR, "its function list has version 1.40; PKCS#11 2.x or 3.x");
    /* The same backend with a whole list is taken: the entry was what was refused. */
    unsetenv("CMK_FAULT_VERSION_MAJOR");
    expect_bounded(CKR_OK, "");
}

static void test_cmkp11_as_its_own_backend_fails_without_hanging(void)
{
    const char *self = getenv("CMK_MODULE");
    char sym[4096], hard[4096], copy[4096], body[16384];
    snprintf(sym, sizeof(sym), "%s/symlink.so", getenv("CMK_WORK"));
    snprintf(hard, sizeof(hard), "%s/hardlink.so", getenv("CMK_WORK"));
    snprintf(copy, sizeof(copy), "%s/copy.so", getenv("CMK_WORK"));
    CHECK(symlink(self, sym) == 0);
    char cmd[8400];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", self, copy);
    CHECK(system(cmd) == 0);
    /* /tmp and the build folder may be different file systems: a hard link where it can. */
    bool linked = link(self, hard) == 0;
    const char *paths[] = {self, sym, copy, linked ? hard : self};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        snprintf(body, sizeof(body), "[backend]\nmodule = %s\ntoken_label = %s\n"
                 "[token]\nstore = x.db\n", paths[i], getenv("CMK_BACKEND_TOKEN"));
        write_conf(body);
        expect_bounded(CKR_GENERAL_ERROR, paths[i] == copy ? ": is cmkp11 itself (a copy of its file)"
                                                          : ": is cmkp11 itself;");
    }
    remember_backend();
    snprintf(body, sizeof(body), "%s[token]\nstore = x.db\n", good_backend);
    expect(body, CKR_OK, "");
}

/* A module that forwards to cmkp11 (as p11-kit-proxy does when its module list includes
 * cmkp11) calls cmkp11's C_Initialize from inside its own. */
static void test_backend_that_forwards_to_cmkp11_fails_without_hanging(void)
{
    use_fault_backend(getenv("CMK_MODULE"));
    expect_bounded(CKR_GENERAL_ERROR, "C_Initialize: called again from inside its own C_Initialize");
    char log[8192];
    CHECK_RV(init_bounded(log, sizeof(log)), CKR_GENERAL_ERROR);
    CHECK(strstr(log, "libcmk_fault_backend.so: C_Initialize failed: 0x5") != NULL);
    /* The refusal left nothing behind: the real backend is taken at once. */
    remember_backend();
    char body[1024];
    snprintf(body, sizeof(body), "%s[token]\nstore = x.db\n", good_backend);
    expect(body, CKR_OK, "");
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
        T(test_config_that_is_not_a_regular_file_is_refused),
        T(test_key_given_twice_is_refused_naming_both_lines),
        T(test_backend_function_list_with_a_null_entry_is_refused),
        T(test_cmkp11_as_its_own_backend_fails_without_hanging),
        T(test_backend_that_forwards_to_cmkp11_fails_without_hanging),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
