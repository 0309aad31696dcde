/* test_private_files.c - the files cmkp11 keeps beside its store (the token lock, the
 * change signal) and its log (issue 18, item 3): never opened through a link, never a FIFO
 * or another user's file, never in a folder every user may write (unless sticky), created
 * 0600 whatever the umask. A refused lock file refuses C_Initialize (the lock is never
 * skipped); a refused signal or log file is done without, with a line saying so. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

/* A path under the test's folder (one of a few rotating buffers). */
static const char *at(const char *name)
{
    static char paths[4][4096];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof(paths[0]), "%s/%s", getenv("CMK_WORK"), name);
    return p;
}

#define VICTIM_TEXT "a file of somebody else's\n"

/* A file the module must never write: its text and mode are checked afterwards. */
static void make_victim(void)
{
    int fd = open(at("victim"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, VICTIM_TEXT, strlen(VICTIM_TEXT)) == (ssize_t)strlen(VICTIM_TEXT));
    if (fd >= 0) close(fd);
}

static void victim_untouched(void)
{
    char buf[128] = {0};
    int fd = open(at("victim"), O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == (ssize_t)strlen(VICTIM_TEXT));
    if (fd >= 0) close(fd);
    CHECK(strcmp(buf, VICTIM_TEXT) == 0);
    struct stat st;
    CHECK(stat(at("victim"), &st) == 0 && (st.st_mode & 0777) == 0644);
}

/* C_Initialize with nothing else done; a hang fails the test within 20 s. */
static CK_RV initialize(char *out, size_t size)
{
    alarm(20);
    CK_RV rv = fixture_init_capturing(out, size);
    alarm(0);
    return rv;
}

/* The line is in the log, or on stderr when the log file is refused too (same folder). */
static bool said(const char *out, const char *text)
{
    return inspect_log_count(text) == 1 || (strstr(out, text) && inspect_log_count(text) <= 0);
}

static void refuses_initialize(const char *rule)
{
    char out[4096];
    CHECK_RV(initialize(out, sizeof(out)), CKR_DEVICE_ERROR);
    CHECK(said(out, "the token lock file cannot be used"));
    CHECK(said(out, rule));
}

static void test_a_link_as_the_lock_file_refuses_initialize_and_writes_nothing(void)
{
    make_victim();
    CHECK(symlink(at("victim"), at("cmk.db-token.lock")) == 0);
    refuses_initialize("a symbolic link; refused");
    victim_untouched();
}

static void test_a_fifo_as_the_lock_file_refuses_initialize_without_hanging(void)
{
    CHECK(mkfifo(at("cmk.db-token.lock"), 0600) == 0);
    refuses_initialize("not a regular file");
}

static void test_a_world_writable_lock_file_refuses_initialize(void)
{
    int fd = open(at("cmk.db-token.lock"), O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0 && fchmod(fd, 0666) == 0);
    if (fd >= 0) close(fd);
    refuses_initialize("writable by every user");
}

/* Another user's lock file: that user could hold its flock and every process off. */
static void test_another_users_lock_file_refuses_initialize(void)
{
    if (geteuid() != 0) {
        harness_skip("giving a file to another user needs root");
        return;
    }
    int fd = open(at("cmk.db-token.lock"), O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0 && fchown(fd, 65534, 65534) == 0);
    if (fd >= 0) close(fd);
    refuses_initialize("owned by uid 65534, not by this user (uid 0) or root");
}

/* A folder every user may write lets them plant the files above; sticky, it does not. */
static void test_a_folder_open_to_everyone_refuses_initialize_unless_sticky(void)
{
    CHECK(chmod(getenv("CMK_WORK"), 0777) == 0);
    refuses_initialize("its folder is writable by every user and not sticky");
    CHECK(access(at("cmkp11.log"), F_OK) != 0); /* the log file is refused as well */
    CHECK(chmod(getenv("CMK_WORK"), 01777) == 0);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "in a sticky folder", NULL, 0, &key), CKR_OK);
    fixture_close(s);
    CHECK(chmod(getenv("CMK_WORK"), 0700) == 0);
}

/* The change signal is an optimisation: refused, the module works without it. */
static void test_a_link_as_the_signal_file_is_not_followed_and_the_module_works(void)
{
    make_victim();
    CHECK(symlink(at("victim"), at("cmk.db-signal")) == 0);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, found;
    CHECK_RV(make_aes(s, "without a signal", NULL, 0, &key), CKR_OK);
    CHECK(find_by_label(s, "without a signal", CKO_SECRET_KEY, &found) == 1 && found == key);
    fixture_close(s);
    victim_untouched();
    CHECK(inspect_log_count("a symbolic link; refused): not used") >= 1);
}

/* The log names keys and aliases: never written through a link, logged to stderr instead. */
static void test_a_link_as_the_log_file_is_not_followed(void)
{
    make_victim();
    CHECK(symlink(at("victim"), at("linked.log")) == 0);
    char line[4200];
    snprintf(line, sizeof(line), "file = %s", at("linked.log"));
    fixture_set_conf("log", line);
    char out[4096];
    CHECK_RV(initialize(out, sizeof(out)), CKR_OK);
    CHECK(strstr(out, "cannot open the log file") && strstr(out, "a symbolic link; refused"));
    victim_untouched();
}

/* Whatever the umask, what the module creates only its user reads. */
static void test_files_are_created_0600_whatever_the_umask(void)
{
    char line[4200];
    snprintf(line, sizeof(line), "file = %s", at("fresh.log"));
    fixture_set_conf("log", line);
    mode_t old = umask(0);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "umask 0", NULL, 0, &key), CKR_OK);
    fixture_close(s);
    umask(old);
    static const char *const made[] = {"fresh.log", "cmk.db", "cmk.db-token.lock",
                                       "cmk.db-signal"};
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
        struct stat st;
        bool exists = lstat(at(made[i]), &st) == 0;
        if (!exists || (st.st_mode & 0777) != 0600 || !S_ISREG(st.st_mode))
            fprintf(stderr, "  %s: mode %o\n", made[i], exists ? (unsigned)st.st_mode : 0);
        CHECK(exists && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
    }
}

#define T(name) {#name, name}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
        T(test_a_link_as_the_lock_file_refuses_initialize_and_writes_nothing),
        T(test_a_fifo_as_the_lock_file_refuses_initialize_without_hanging),
        T(test_a_world_writable_lock_file_refuses_initialize),
        T(test_another_users_lock_file_refuses_initialize),
        T(test_a_folder_open_to_everyone_refuses_initialize_unless_sticky),
        T(test_a_link_as_the_signal_file_is_not_followed_and_the_module_works),
        T(test_a_link_as_the_log_file_is_not_followed),
        T(test_files_are_created_0600_whatever_the_umask),
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
