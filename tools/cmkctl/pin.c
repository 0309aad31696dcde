/* pin.c - PIN sources. The PIN is held in one heap buffer, wiped after login, and no
 * code path writes it to stdout, stderr or an error message. */
#include "pin.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"
#include "modlog.h"

#define PIN_MAX 256

void pin_free(char *pin, size_t len)
{
    (void)len; /* the whole buffer is wiped: a PIN file may have put more in it */
    if (!pin) return;
    explicit_bzero(pin, PIN_MAX + 1);
    free(pin);
}

/* Keeps the first line only: PIN files are usually written with a trailing newline. */
static size_t first_line(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r') return i;
    return n;
}

static int pin_from_file(struct ctl *ctl, const char *path, char *buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ctl_fail(ctl, KMS_UNAUTHORIZED, "cannot read PIN file %s: %s", path,
                        strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077))
        fprintf(ctl_stderr, "cmkctl: warning: PIN file %s is readable by other users (chmod 600)\n",
                path);
    size_t n = 0;
    ssize_t got;
    while (n < PIN_MAX && (got = read(fd, buf + n, PIN_MAX - n)) > 0)
        n += (size_t)got;
    close(fd);
    n = first_line(buf, n);
    if (n == 0) return ctl_fail(ctl, KMS_UNAUTHORIZED, "PIN file %s is empty", path);
    *len = n;
    return 0;
}

static struct termios saved_tty;

/* Ctrl-C at the prompt must not leave the terminal without echo. */
static void restore_tty_and_die(int sig)
{
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int pin_from_prompt(struct ctl *ctl, const char *token_label, char *buf, size_t *len)
{
    if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
        return ctl_fail(ctl, KMS_UNAUTHORIZED, "cannot read the terminal: %s", strerror(errno));
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = restore_tty_and_die;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    struct termios quiet = saved_tty;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    /* Echo goes off before the prompt shows, so nothing typed after it is echoed. */
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    fprintf(ctl_stderr, "User PIN for token '%s': ", token_label);
    fflush(ctl_stderr);
    size_t n = 0;
    char c;
    ssize_t got;
    while (n < PIN_MAX && (got = read(STDIN_FILENO, &c, 1)) == 1 && c != '\n')
        buf[n++] = c;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    n = first_line(buf, n);
    if (n == 0) return ctl_fail(ctl, KMS_UNAUTHORIZED, "no PIN entered");
    *len = n;
    return 0;
}

int pin_get(struct ctl *ctl, const char *token_label, char **pin, size_t *len)
{
    *pin = NULL;
    *len = 0;
    char *buf = calloc(1, PIN_MAX + 1);
    if (!buf) return ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    int rc = 0;
    const char *file = arg_str(&ctl->global, "pin-file");
    char *arg = (char *)arg_str(&ctl->global, "pin");
    const char *env = getenv("CMKP11_PIN");
    if (file) {
        rc = pin_from_file(ctl, file, buf, len);
    } else if (arg) {
        fprintf(ctl_stderr, "cmkctl: warning: --pin shows the PIN to every user in the process "
                        "list (ps); use --pin-file or CMKP11_PIN\n");
        *len = strnlen(arg, PIN_MAX);
        memcpy(buf, arg, *len);
        /* Shortens the window in which /proc/PID/cmdline shows it. */
        memset(arg, 'x', strlen(arg));
    } else if (env) {
        *len = strnlen(env, PIN_MAX);
        memcpy(buf, env, *len);
    } else if (isatty(STDIN_FILENO)) {
        rc = pin_from_prompt(ctl, token_label, buf, len);
    } else {
        rc = ctl_fail(ctl, KMS_UNAUTHORIZED,
                      "no PIN: give --pin-file PATH or set CMKP11_PIN (stdin is not a terminal "
                      "to ask on)");
    }
    if (rc == 0 && *len == 0) rc = ctl_fail(ctl, KMS_UNAUTHORIZED, "the PIN is empty");
    if (rc) {
        pin_free(buf, PIN_MAX);
        *len = 0;
        return rc;
    }
    *pin = buf;
    return 0;
}
