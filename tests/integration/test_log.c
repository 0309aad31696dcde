/* test_log.c - where the module's log goes: a file that logrotate moves away is made anew
 * at the next line (no signal, no restart), and `[log] file = syslog` sends each line to
 * the system log (journald reads the same socket). */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

/* How many times needle is in the file (-1: no such file). */
static long count_in(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[2048];
    long n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle)) n++;
    fclose(f);
    return n;
}

/* A CreateKey refused for its alias: one warning line naming the alias. */
static void provoke_warning(CK_SESSION_HANDLE s, const char *alias)
{
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes_alias(s, alias, alias, &key), CKR_OK);
    CHECK_RV(make_aes_alias(s, alias, alias, &key), CKR_ATTRIBUTE_VALUE_INVALID);
}

static void test_a_log_file_moved_away_by_logrotate_is_made_anew(void)
{
    char log[4096], rotated[4096];
    snprintf(log, sizeof(log), "%s/cmkp11.log", getenv("CMK_WORK"));
    snprintf(rotated, sizeof(rotated), "%s/cmkp11.log.1", getenv("CMK_WORK"));
    CK_SESSION_HANDLE s = fixture_open();
    provoke_warning(s, "before-rotation");
    CHECK(rename(log, rotated) == 0); /* what logrotate does, then it forgets the file */
    provoke_warning(s, "after-rotation");
    CHECK(count_in(rotated, "'before-rotation' already exists") == 1);
    CHECK(count_in(rotated, "'after-rotation' already exists") == 0);
    CHECK(count_in(log, "'after-rotation' already exists") == 1);
    CHECK(count_in(log, "'before-rotation' already exists") == 0);
    struct stat st;
    CHECK(lstat(log, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
    CHECK(unlink(log) == 0); /* removed rather than renamed ("copytruncate" aside) */
    provoke_warning(s, "after-removal");
    CHECK(count_in(log, "'after-removal' already exists") == 1);
    fixture_close(s);
}

/* The system log is the socket /dev/log. The test binds it when nothing does (CI's fresh
 * machine runs no syslog daemon) and reads what the module sends; on a machine with a
 * syslog daemon it leaves the daemon alone and skips. */
static void test_the_log_can_be_the_system_log(void)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "/dev/log");
    int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) != 0 &&
        errno == ECONNREFUSED && geteuid() == 0)
        unlink("/dev/log"); /* a socket left by an earlier run of this test, no one behind it */
    if (probe >= 0) close(probe);
    if (access("/dev/log", F_OK) == 0 || geteuid() != 0) {
        harness_skip("/dev/log belongs to a running syslog daemon (or we are not root)");
        return;
    }
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(sock >= 0 && bind(sock, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    struct timeval wait = {5, 0};
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    fixture_set_conf("log", "file = syslog");
    CK_SESSION_HANDLE s = fixture_open();
    provoke_warning(s, "to-the-system-log");
    char msg[2048] = {0}, want[64];
    bool seen = false;
    snprintf(want, sizeof(want), "cmkp11[%d]: warning: ", (int)getpid());
    for (int i = 0; i < 20 && !seen; i++) {
        ssize_t n = recv(sock, msg, sizeof(msg) - 1, 0);
        if (n <= 0) break;
        msg[n] = '\0';
        seen = strstr(msg, want) && strstr(msg, "'to-the-system-log' already exists");
    }
    fixture_close(s);
    close(sock);
    unlink("/dev/log");
    if (!seen) fprintf(stderr, "  last syslog message: %s\n", msg);
    CHECK(seen);
    /* <12> is LOG_USER | LOG_WARNING: the level is the syslog priority too. */
    CHECK(msg[0] == '<' && atoi(msg + 1) == 12);
    char log[4096];
    snprintf(log, sizeof(log), "%s/syslog", getenv("CMK_WORK"));
    CHECK(access(log, F_OK) != 0); /* "syslog" is a destination, not a file name */
}

#define T(name) {#name, name}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
        T(test_a_log_file_moved_away_by_logrotate_is_made_anew),
        T(test_the_log_can_be_the_system_log),
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
