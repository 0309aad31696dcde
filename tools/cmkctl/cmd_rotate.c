/* cmd_rotate.c - key versions: rotate-key (on demand), rotate-due (the automatic schedule),
 * list-key-versions. Rotation is the module's: on demand is C_SetAttributeValue(
 * CKA_CMK_ROTATE_NOW = TRUE); automatic rotation happens inside C_Login (user), where cmkp11
 * rotates every Enabled key whose next rotation date has passed, once across processes.
 * Read-only, from the module's store, these commands rely on: cmk(id, key_id, alias,
 * key_spec, state, rotation_enabled, next_rotation, primary_version, rotating_to,
 * rotating_pid) and cmk_version(cmk_id, version, created, reason). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "modlog.h"
#include "progress.h"
#include "keymeta.h"
#include "keyspec.h"
#include "output.h"
#include "store_ro.h"

static const struct opt_def key_only_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI"},
    {NULL, NULL, 0, NULL},
};

static const struct opt_def no_opts[] = {{NULL, NULL, 0, NULL}};

static char *version_text(CK_ULONG v, char buf[24])
{
    snprintf(buf, 24, "%lu", v);
    return buf;
}

/* ---- rotate-key ---- */

/* Only symmetric keys of KMS origin rotate (AES and HMAC in cmkp11); a refusal of any
 * other key is about the key, not its state. */
static int rotatable_kind(const struct key_meta *m)
{
    const struct key_spec *s = keyspec_by_name(keymeta_text(m, CKA_CMK_KEY_SPEC));
    CK_ULONG cls = keymeta_ulong(m, CKA_CLASS, CKO_SECRET_KEY);
    return cls == CKO_SECRET_KEY && (!s || keyspec_is_cipher(s) || s->family == FAMILY_HMAC) &&
           keymeta_ulong(m, CKA_CMK_ORIGIN, CMK_ORIGIN_KMS) == CMK_ORIGIN_KMS;
}

static int explain_rotate(struct ctl *ctl, CK_RV rv, const struct key_meta *m)
{
    char buf[32];
    const char *id = keymeta_text(m, CKA_CMK_KEY_ID), *spec = keymeta_text(m, CKA_CMK_KEY_SPEC);
    if ((rv == CKR_ACTION_PROHIBITED || rv == CKR_TEMPLATE_INCONSISTENT) && !rotatable_kind(m))
        return ctl_fail(ctl, KMS_UNSUPPORTED,
                        "RotateKey: only symmetric keys of KMS origin rotate; key %s is %s%s (%s)",
                        id, *spec ? spec : "not one",
                        keymeta_ulong(m, CKA_CMK_ORIGIN, CMK_ORIGIN_KMS) == CMK_ORIGIN_EXTERNAL
                            ? " of EXTERNAL origin"
                            : "",
                        ckr_name(rv, buf));
    const char *state = keystate_name(keymeta_ulong(m, CKA_CMK_KEY_STATE, (CK_ULONG)-1));
    if (rv == CKR_ACTION_PROHIBITED)
        return ctl_fail(ctl, KMS_STATE, "RotateKey: key %s is %s: only Enabled keys rotate (%s)",
                        id, *state ? state : "not Enabled", ckr_name(rv, buf));
    if (rv == CKR_FUNCTION_FAILED)
        return ctl_fail(ctl, KMS_STATE,
                        "RotateKey: key %s: another process is rotating it now, or the backend "
                        "failed; see the module log and try again (%s)",
                        id, ckr_name(rv, buf));
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
        return ctl_fail(ctl, KMS_UNSUPPORTED,
                        "RotateKey: the module does not know CKA_CMK_ROTATE_NOW (%s)",
                        ckr_name(rv, buf));
    return keymeta_fail(ctl, rv, "RotateKey", m);
}

static int run_rotate_key(struct ctl *ctl)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (!rc) {
        struct tmpl t = {0};
        tmpl_add_bool(&t, CKA_CMK_ROTATE_NOW, 1);
        CK_RV rv = p11_set(&ctl->p11, ref.main, t.a, t.n);
        if (rv != CKR_OK) rc = explain_rotate(ctl, rv, &m);
    }
    /* The new primary as the module reports it now, not as computed here. */
    struct key_meta after;
    memset(&after, 0, sizeof(after));
    if (!rc) rc = keymeta_read(ctl, &ref, &after);
    if (!rc) {
        char v[24];
        json_object *resp = json_object_new_object();
        out_add_str(resp, "KeyId", ref.key_id);
        out_add_str(resp, "KeyVersionId",
                    version_text(keymeta_ulong(&after, CKA_CMK_PRIMARY_VERSION, 0), v));
        rc = out_emit(ctl, resp, 0);
    }
    keymeta_free(&after);
    keymeta_free(&m);
    return rc;
}

const struct cmd_def cmd_rotate_key = {
    "rotate-key",
    "Rotate a key now: a new primary version (RotateKeyOnDemand)",
    "Sets CKA_CMK_ROTATE_NOW=TRUE on the key: cmkp11 makes new material in the HSM and makes\n"
    "it the primary version; older versions still decrypt. The automatic schedule does not\n"
    "move. Only Enabled symmetric keys of KMS origin rotate: asymmetric keys answer\n"
    "UnsupportedOperation, Disabled or PendingDeletion keys FailedOperation.CmkStateNotSupported.",
    "cmkctl rotate-key --key-id alias/payments",
    key_only_opts,
    run_rotate_key,
};

/* ---- rotate-due ---- */

struct due {
    char key_id[37];
    char *alias, *spec;
    CK_ULONG version;
    long long next_rotation;
};

static void due_free(struct due *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(d[i].alias);
        free(d[i].spec);
    }
    free(d);
}

static char *column_text(sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    return strdup(t ? (const char *)t : "");
}

static int open_store(struct ctl *ctl, sqlite3 **db)
{
    struct cmk_conf conf;
    char why[PATH_MAX + 128];
    if (conf_load(&conf, why, sizeof(why)) || store_open_ro(conf.store, db, why, sizeof(why)))
        return ctl_fail(ctl, KMS_INTERNAL, "rotate-due reads the store named in CMKP11_CONF: %s",
                        why);
    return 0;
}

/* Before login: the module rotates at login, and secret keys are invisible until then, so
 * the due keys and their primary versions come from the store (read-only). */
static int read_due(struct ctl *ctl, sqlite3 *db, long long now, struct due **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(
            db,
            "SELECT key_id, " CMK_FIRST_ALIAS ", key_spec, primary_version, next_rotation FROM cmk "
            "WHERE state = 1 AND rotation_enabled AND next_rotation > 0 "
            "AND next_rotation <= ?1 ORDER BY next_rotation, key_id",
            -1, &q, NULL) != SQLITE_OK)
        return ctl_fail(ctl, KMS_INTERNAL, "cannot read the store: %s", sqlite3_errmsg(db));
    sqlite3_bind_int64(q, 1, now);
    int step, rc = 0;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        struct due *grown = realloc(*out, (*n + 1) * sizeof(*grown));
        if (!grown) {
            rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
            break;
        }
        *out = grown;
        struct due *d = &grown[(*n)++];
        snprintf(d->key_id, sizeof(d->key_id), "%s", (const char *)sqlite3_column_text(q, 0));
        d->alias = column_text(q, 1);
        d->spec = column_text(q, 2);
        d->version = (CK_ULONG)sqlite3_column_int64(q, 3);
        d->next_rotation = sqlite3_column_int64(q, 4);
    }
    if (!rc && step != SQLITE_DONE)
        rc = ctl_fail(ctl, KMS_INTERNAL, "cannot read the store: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q);
    return rc;
}

/* 1 while a live process holds the key's rotation claim (cmkp11 writes rotating_to and
 * rotating_pid into the row before it makes the new version, and clears them after). */
static int rotation_claimed(sqlite3 *db, const char *key_id)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT rotating_to, rotating_pid FROM cmk WHERE key_id = ?1", -1,
                           &q, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(q, 1, key_id, -1, SQLITE_STATIC);
    int claimed = 0;
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0)) {
        pid_t pid = (pid_t)sqlite3_column_int64(q, 1);
        claimed = pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
    }
    sqlite3_finalize(q);
    return claimed;
}

/* Another process that logged in at the same moment may hold the key's rotation: its
 * login rotates the key, ours left it. Wait for that process (at most ROTATION_WAIT_MS)
 * and read the key again, so a rotation is not reported missing only because another
 * process made it. */
#define ROTATION_WAIT_MS 15000
static int wait_for_claim(struct ctl *ctl, sqlite3 *db, const struct due *d,
                          const struct key_ref *ref, struct key_meta *m)
{
    for (int waited = 0; waited < ROTATION_WAIT_MS && rotation_claimed(db, d->key_id);
         waited += 50) {
        struct timespec pause = {0, 50000000L};
        nanosleep(&pause, NULL);
    }
    keymeta_free(m);
    memset(m, 0, sizeof(*m));
    return keymeta_read(ctl, ref, m);
}

/* Still due after the login: Enabled, rotation on, next rotation passed (a key disabled
 * or changed meanwhile by another process waits, which is no failure). */
static int still_due(const struct key_meta *m, long long now)
{
    CK_ULONG next = keymeta_ulong(m, CKA_CMK_NEXT_ROTATION_DATE, 0);
    return keymeta_ulong(m, CKA_CMK_KEY_STATE, 0) == CMK_STATE_ENABLED &&
           keymeta_ulong(m, CKA_CMK_ROTATION_ENABLED, 0) && next && (long long)next <= now;
}

static int run_rotate_due(struct ctl *ctl)
{
    long long now = out_now();
    struct due *due = NULL;
    size_t n = 0;
    sqlite3 *db = NULL;
    int rc = open_store(ctl, &db);
    if (!rc) rc = read_due(ctl, db, now, &due, &n);
    if (!rc && n) progress_note("rotate-due", "logging in: cmkp11 rotates the due keys now");
    if (!rc) rc = p11_open(ctl, P11_LOGIN); /* cmkp11 rotates the due keys here */
    json_object *rotated = json_object_new_array(), *not_rotated = json_object_new_array();
    size_t nrotated = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        progress_step("rotate-due, keys checked", i + 1, n);
        int exists = keyref_exists(ctl, due[i].key_id);
        if (exists < 0) {
            rc = err_code_exit(ctl->err.code);
            break;
        }
        if (!exists) continue; /* deleted by another process meanwhile: nothing to report */
        struct key_ref ref;
        struct key_meta m;
        memset(&m, 0, sizeof(m));
        rc = keyref_resolve(ctl, due[i].key_id, &ref);
        if (!rc) rc = keymeta_read(ctl, &ref, &m);
        if (!rc && keymeta_ulong(&m, CKA_CMK_PRIMARY_VERSION, 0) <= due[i].version)
            rc = wait_for_claim(ctl, db, &due[i], &ref, &m);
        if (rc) {
            keymeta_free(&m);
            break;
        }
        CK_ULONG version = keymeta_ulong(&m, CKA_CMK_PRIMARY_VERSION, 0);
        CK_ULONG next = keymeta_ulong(&m, CKA_CMK_NEXT_ROTATION_DATE, 0);
        char v[24];
        json_object *e = json_object_new_object();
        out_add_str(e, "KeyId", due[i].key_id);
        out_add_str(e, "Alias", due[i].alias);
        out_add_str(e, "KeySpec", due[i].spec);
        if (version > due[i].version) {
            out_add_str(e, "PreviousKeyVersionId", version_text(due[i].version, v));
            out_add_str(e, "KeyVersionId", version_text(version, v));
            CK_ULONG last = keymeta_ulong(&m, CKA_CMK_LAST_ROTATION_DATE, 0);
            if (last) json_object_object_add(e, "RotationDate", out_time((int64_t)last));
            if (next) json_object_object_add(e, "NextRotationDate", out_time((int64_t)next));
            json_object_array_add(rotated, e);
            nrotated++;
        } else if (still_due(&m, now)) {
            /* Due, no claim held by a live process, and the version did not grow: the
             * module tried and failed (the module log says why). */
            out_add_str(e, "KeyVersionId", version_text(version, v));
            json_object_object_add(e, "NextRotationDate",
                                   out_time(next ? (int64_t)next : due[i].next_rotation));
            json_object_array_add(not_rotated, e);
        } else {
            json_object_put(e); /* disabled or changed meanwhile: it waits, no failure */
        }
        keymeta_free(&m);
    }
    due_free(due, n);
    sqlite3_close(db);
    if (rc) {
        json_object_put(rotated);
        json_object_put(not_rotated);
        return rc;
    }
    size_t failed = json_object_array_length(not_rotated);
    if (failed)
        fprintf(ctl_stderr,
                "cmkctl: warning: %zu due key%s did not rotate (NotRotatedKeys; the module log "
                "says why); exit %d\n",
                failed, failed == 1 ? "" : "s", EXIT_NEGATIVE);
    json_object *resp = json_object_new_object();
    json_object_object_add(resp, "RotatedKeys", rotated);
    json_object_object_add(resp, "RotatedCount", json_object_new_int64((int64_t)nrotated));
    json_object_object_add(resp, "NotRotatedKeys", not_rotated);
    json_object_object_add(resp, "CheckTime", out_time(now));
    return out_emit(ctl, resp, failed ? EXIT_NEGATIVE : EXIT_OK);
}

const struct cmd_def cmd_rotate_due = {
    "rotate-due",
    "Rotate the keys whose automatic rotation is due, and report them",
    "Lists the Enabled keys with rotation on and NextRotationDate <= now from the store\n"
    "(read-only), logs in (C_Login is when cmkp11 rotates due keys, each exactly once across\n"
    "processes), and reports those whose CKA_CMK_PRIMARY_VERSION grew, with the old and new\n"
    "version. A key another process is rotating at that moment is waited for. Due keys that\n"
    "did not rotate are listed in NotRotatedKeys, and the exit code is then 1 (the report is\n"
    "still printed), so a timer sees the failure. Run it from a timer\n"
    "(conf/cmkp11-rotate.timer). Follows CMKP11_TEST_NOW, the test builds' clock, as the\n"
    "module does.",
    "cmkctl --pin-file /etc/cmkp11/pin rotate-due",
    no_opts,
    run_rotate_due,
};

/* ---- list-key-versions ---- */

struct version_info {
    long long created; /* 0: unknown */
    char *reason;
};

static void versions_free(struct version_info *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].reason);
    free(v);
}

/* Creation date and reason of each version, from the store; -1 with why filled when the
 * store cannot be read (the listing then leaves those fields out). */
static int read_version_rows(const char *key_id, struct version_info *v, CK_ULONG primary,
                             char *why, size_t why_size)
{
    struct cmk_conf conf;
    sqlite3 *db;
    if (conf_load(&conf, why, why_size) || store_open_ro(conf.store, &db, why, why_size)) return -1;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db,
                           "SELECT v.version, v.created, v.reason FROM cmk_version v "
                           "JOIN cmk c ON c.id = v.cmk_id WHERE c.key_id = ?1 ORDER BY v.version",
                           -1, &q, NULL) != SQLITE_OK) {
        snprintf(why, why_size, "cannot read the version table of %s: %s", conf.store,
                 sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_bind_text(q, 1, key_id, -1, SQLITE_STATIC);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        long long n = sqlite3_column_int64(q, 0);
        if (n < 1 || (CK_ULONG)n > primary) continue;
        v[n].created = sqlite3_column_int64(q, 1);
        free(v[n].reason);
        v[n].reason = column_text(q, 2);
    }
    int rc = 0;
    if (step != SQLITE_DONE) {
        snprintf(why, why_size, "cannot read the version table of %s: %s", conf.store,
                 sqlite3_errmsg(db));
        rc = -1;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc;
}

/* Version n as its own object: a find naming the key id, the key's class and
 * CKA_CMK_VERSION = n. 1 when found (its CKA_CMK_VERSION says n), 0 when not, -1 on error. */
static int version_object(struct ctl *ctl, const struct key_ref *ref, CK_ULONG n)
{
    CK_OBJECT_CLASS cls = ref->main_class;
    CK_ATTRIBUTE t[] = {
        {CKA_CMK_KEY_ID, (void *)ref->key_id, (CK_ULONG)strlen(ref->key_id)},
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_CMK_VERSION, &n, sizeof(n)},
    };
    CK_OBJECT_HANDLE *found;
    CK_ULONG count;
    CK_RV rv = p11_find(&ctl->p11, t, 3, &found, &count);
    if (rv != CKR_OK) {
        ctl_fail_rv(ctl, rv, "C_FindObjects (CKA_CMK_VERSION)");
        return -1;
    }
    int ok = 0;
    for (CK_ULONG i = 0; i < count && !ok; i++) {
        CK_ULONG got = 0;
        CK_ATTRIBUTE a = {CKA_CMK_VERSION, &got, sizeof(got)};
        if (ctl->p11.fn->C_GetAttributeValue(ctl->p11.session, found[i], &a, 1) == CKR_OK &&
            got == n)
            ok = 1;
    }
    free(found);
    return ok;
}

static int run_list_key_versions(struct ctl *ctl)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    CK_ULONG primary = rc ? 0 : keymeta_ulong(&m, CKA_CMK_PRIMARY_VERSION, 0);
    if (!rc && primary == 0)
        rc = ctl_fail(ctl, KMS_UNSUPPORTED,
                      "the module gives no CKA_CMK_PRIMARY_VERSION for key %s: it has no versions",
                      ref.key_id);
    struct version_info *info = NULL;
    if (!rc && !(info = calloc(primary + 1, sizeof(*info))))
        rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    int dated = 0;
    if (!rc) {
        char why[PATH_MAX + 128];
        dated = read_version_rows(ref.key_id, info, primary, why, sizeof(why)) == 0;
        if (!dated) fprintf(ctl_stderr, "cmkctl: warning: version dates left out: %s\n", why);
    }
    json_object *list = json_object_new_array();
    size_t total = 0;
    for (CK_ULONG n = 1; !rc && n <= primary; n++) {
        int found = version_object(ctl, &ref, n);
        if (found < 0) {
            rc = err_code_exit(ctl->err.code);
            break;
        }
        if (!found) {
            /* The store says the version exists but the module shows no object for it. */
            fprintf(ctl_stderr, "cmkctl: warning: key %s: no object for version %lu\n", ref.key_id, n);
            continue;
        }
        char v[24];
        json_object *e = json_object_new_object();
        out_add_str(e, "KeyId", ref.key_id);
        out_add_str(e, "KeyVersionId", version_text(n, v));
        if (dated && info[n].created)
            json_object_object_add(e, "CreationDate", out_time(info[n].created));
        if (dated && info[n].reason) out_add_str(e, "Reason", info[n].reason);
        json_object_object_add(e, "Primary", json_object_new_boolean(n == primary));
        json_object_array_add(list, e);
        total++;
    }
    versions_free(info, primary + 1);
    keymeta_free(&m);
    if (rc) {
        json_object_put(list);
        return rc;
    }
    char v[24];
    json_object *resp = json_object_new_object();
    out_add_str(resp, "KeyId", ref.key_id);
    out_add_str(resp, "PrimaryKeyVersion", version_text(primary, v));
    json_object_object_add(resp, "KeyVersions", list);
    json_object_object_add(resp, "TotalCount", json_object_new_int64((int64_t)total));
    return out_emit(ctl, resp, 0);
}

const struct cmd_def cmd_list_key_versions = {
    "list-key-versions",
    "List a key's versions, oldest first, and which is primary (ListKeyVersions)",
    "Reads CKA_CMK_PRIMARY_VERSION, then finds each version 1..primary as its own object\n"
    "(template: CKA_CMK_KEY_ID, CKA_CLASS, CKA_CMK_VERSION = n). CreationDate and Reason\n"
    "(create, automatic, on-demand) come from the store's version table, read-only.",
    "cmkctl list-key-versions --key-id alias/payments --output table",
    key_only_opts,
    run_list_key_versions,
};
