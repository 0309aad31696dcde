/* cmd_init.c - init: the production set-up of a cmkp11 token over an HSM token that exists.
 * It checks the backend token (found by label, the user PIN accepted), makes the store's
 * folder (0700, owned by the service user that will run the applications), writes the
 * configuration and, when asked, a PIN file only that user reads, then opens the new token
 * through cmkp11 once, which creates the store, and hands the store's files to that user.
 * Nothing that exists is overwritten without --force. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "doctor.h"
#include "output.h"
#include "pin.h"
#include "store_ro.h"

static const struct opt_def init_opts[] = {
    {"backend-token", "LABEL", OPT_REQUIRED, "label of the HSM token that holds the material"},
    {"backend-module", "PATH", 0,
     "the HSM vendor's PKCS#11 module (default /usr/lib/softhsm/libsofthsm2.so)"},
    {"token-label", "LABEL", 0, "label of the cmkp11 token (default cmkp11)"},
    {"config", "PATH", 0, "configuration to write (default " CMKCTL_DEFAULT_CONF ")"},
    {"store", "PATH", 0, "the CMK store (default /var/lib/cmkp11/cmk.db)"},
    {"service-user", "USER", 0,
     "the user the applications run as: owns the store and the PIN "
     "file (default: the user running cmkctl)"},
    {"write-pin-file", "PATH", 0,
     "also write the user PIN to PATH, mode 0400, for the service user"},
    {"force", NULL, 0, "replace a configuration or PIN file that exists"},
    {NULL, NULL, 0, NULL},
};

/* Makes the missing folders above path, 0755. */
static int make_parents(struct ctl *ctl, const char *file)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", file);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return ctl_fail(ctl, KMS_INTERNAL, "cannot make %s: %s", path, strerror(errno));
        *p = '/';
    }
    return 0;
}

/* Writes text to path (mode, owner uid:gid), refusing a link and, unless force, a file
 * that exists. 0, or an exit code. */
static int write_file(struct ctl *ctl, const char *path, const char *text, size_t len, mode_t mode,
                      uid_t uid, gid_t gid, int force)
{
    int rc = make_parents(ctl, path);
    if (rc) return rc;
    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, mode);
    if (fd < 0)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot write %s: %s%s", path, strerror(errno),
                        errno == EEXIST ? " (--force replaces it)" : "");
    int ok =
        fchmod(fd, mode) == 0 && fchown(fd, uid, gid) == 0 && write(fd, text, len) == (ssize_t)len;
    int err = errno;
    close(fd);
    return ok ? 0 : ctl_fail(ctl, KMS_INTERNAL, "cannot write %s: %s", path, strerror(err));
}

/* Makes dir (0700, owned by uid:gid) and its missing parents. An existing dir must not be
 * writable by others. */
static int make_store_dir(struct ctl *ctl, const char *dir, uid_t uid, gid_t gid)
{
    int rc = make_parents(ctl, dir);
    if (rc) return rc;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ctl_fail(ctl, KMS_INTERNAL, "cannot make %s: %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "%s is not a folder", dir);
    if (st.st_mode & 0002)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "%s is writable by every user: the store's folder must not be", dir);
    if (chown(dir, uid, gid) != 0 || chmod(dir, 0700) != 0)
        return ctl_fail(ctl, KMS_INTERNAL, "cannot give %s to the service user: %s", dir,
                        strerror(errno));
    return 0;
}

/* The store and the files cmkp11 keeps beside it, created by this run, given to uid:gid. */
static int hand_over_store(struct ctl *ctl, const char *store, uid_t uid, gid_t gid)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-signal", "-token.lock"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s%s", store, suffixes[i]);
        if (lchown(path, uid, gid) != 0 && errno != ENOENT)
            return ctl_fail(ctl, KMS_INTERNAL, "cannot give %s to the service user: %s", path,
                            strerror(errno));
    }
    return 0;
}

static int run_init(struct ctl *ctl)
{
    const char *backend = arg_str(&ctl->args, "backend-module");
    const char *token = arg_str(&ctl->args, "token-label");
    const char *conf_path = arg_str(&ctl->args, "config");
    const char *store = arg_str(&ctl->args, "store");
    const char *user = arg_str(&ctl->args, "service-user");
    const char *pin_out = arg_str(&ctl->args, "write-pin-file");
    int force = arg_flag(&ctl->args, "force");
    if (!backend) backend = "/usr/lib/softhsm/libsofthsm2.so";
    if (!token) token = "cmkp11";
    if (!conf_path) conf_path = CMKCTL_DEFAULT_CONF;
    if (!store) store = "/var/lib/cmkp11/cmk.db";
    if (backend[0] != '/' || conf_path[0] != '/' || store[0] != '/')
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "--backend-module, --config and --store take absolute paths");
    if (strlen(token) > 32)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--token-label is at most 32 characters");
    struct passwd *pw = user ? getpwnam(user) : getpwuid(geteuid());
    if (!pw)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "no user '%s' on this machine",
                        user ? user : "(running)");
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    char user_name[64];
    snprintf(user_name, sizeof(user_name), "%s", pw->pw_name);

    /* 1. The backend token exists and takes the PIN. */
    struct cmk_conf conf;
    memset(&conf, 0, sizeof(conf));
    snprintf(conf.backend, sizeof(conf.backend), "%s", backend);
    snprintf(conf.backend_token_label, sizeof(conf.backend_token_label), "%s",
             arg_str(&ctl->args, "backend-token"));
    struct p11 be;
    char why[512];
    int rc = 0;
    if (doctor_backend_open(ctl, &conf, &be, why, sizeof(why)) != 0)
        rc = ctl_fail(ctl, strstr(why, "login") ? KMS_UNAUTHORIZED : KMS_INVALID_PARAMETER,
                      "the backend token: %s", why);
    p11_close(&be);
    if (rc) return rc;
    char *pin = NULL;
    size_t pin_len = 0;
    if (pin_out && (rc = pin_get(ctl, conf.backend_token_label, &pin, &pin_len))) return rc;

    /* 2. The store's folder, the PIN file, the configuration. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", store);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) *slash = '\0';
    rc = make_store_dir(ctl, dir, uid, gid);
    if (!rc && pin_out) {
        char *line = malloc(pin_len + 1);
        if (!line) rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        if (line) {
            memcpy(line, pin, pin_len);
            line[pin_len] = '\n';
            rc = write_file(ctl, pin_out, line, pin_len + 1, 0400, uid, gid, force);
            explicit_bzero(line, pin_len + 1);
            free(line);
        }
    }
    if (pin) pin_free(pin, pin_len);
    char text[4 * PATH_MAX];
    int n = snprintf(text, sizeof(text),
                     "# cmkp11 configuration, written by cmkctl init\n"
                     "[backend]\nmodule = %s\ntoken_label = %s\n\n"
                     "[token]\nlabel = %s\nstore = %s\n\n"
                     "[log]\nlevel = warning\n",
                     backend, conf.backend_token_label, token, store);
    if (!rc) rc = write_file(ctl, conf_path, text, (size_t)n, 0644, 0, 0, force);
    if (rc) return rc;

    /* 3. The token through cmkp11: the store is made now, then given to the service user. */
    setenv("CMKP11_CONF", conf_path, 1);
    rc = p11_open(ctl, P11_LOGIN);
    if (!rc) rc = hand_over_store(ctl, store, uid, gid);
    if (rc) return rc;
    json_object *resp = json_object_new_object();
    out_add_str(resp, "Config", conf_path);
    out_add_str(resp, "Store", store);
    out_add_str(resp, "ServiceUser", user_name);
    out_add_str(resp, "BackendModule", backend);
    out_add_str(resp, "BackendToken", conf.backend_token_label);
    out_add_str(resp, "Token", ctl->p11.token_label);
    if (pin_out) out_add_str(resp, "PinFile", pin_out);
    return out_emit(ctl, resp, 0);
}

const struct cmd_def cmd_init = {
    "init",
    "Set up a cmkp11 token over an HSM token: configuration, store, PIN file",
    "Checks that the backend module has the token and takes the user PIN (cmkctl's usual PIN\n"
    "sources), makes the store's folder 0700 for --service-user, writes the configuration\n"
    "(and, with --write-pin-file, the PIN, 0400, for that user), opens the token through\n"
    "cmkp11 once to create the store, and gives the store's files to that user.",
    "cmkctl --pin-file /root/hsm-pin init --backend-token prod-hsm --service-user cmkapp "
    "--write-pin-file /etc/cmkp11/user-pin",
    init_opts,
    run_init,
};
