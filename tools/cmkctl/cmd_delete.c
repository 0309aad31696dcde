/* cmd_delete.c - the end of a key: schedule-key-deletion, cancel-key-deletion, purge-due. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "keymeta.h"
#include "keyspec.h"
#include "output.h"
#include "progress.h"
#include "store_ro.h"

/* ---- schedule-key-deletion ---- */

static const struct opt_def schedule_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI"},
    {"pending-window-in-days", "N", 0,
     "days before the key is destroyed, 7 to 1096 (default: the token's policy, 30)"},
    {NULL, NULL, 0, NULL},
};

static int run_schedule_key_deletion(struct ctl *ctl)
{
    const char *days_text = arg_str(&ctl->args, "pending-window-in-days");
    CK_ULONG days = 0;
    if (days_text) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(days_text, &end, 10);
        if (errno || *end || !*days_text || days_text[0] == '-')
            return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                            "--pending-window-in-days must be a whole number of days, not '%s'",
                            days_text);
        days = (CK_ULONG)v;
    }
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (rc) goto out;
    if (keymeta_ulong(&m, CKA_CMK_KEY_STATE, 0) == CMK_STATE_PENDING_DELETION) {
        rc = ctl_fail(ctl, KMS_STATE, "key %s is already PendingDeletion", ref.key_id);
        goto out;
    }
    CK_RV rv;
    if (days_text) {
        CK_ATTRIBUTE window = {CKA_CMK_PENDING_WINDOW_DAYS, &days, sizeof(days)};
        rv = p11_set(&ctl->p11, ref.main, &window, 1);
        if (rv == CKR_ATTRIBUTE_VALUE_INVALID) {
            rc = ctl_fail(ctl, KMS_INVALID_PARAMETER,
                          "the pending window must be 7 to 1096 days, not %lu", days);
            goto out;
        }
        if (rv != CKR_OK) {
            rc = keymeta_fail(ctl, rv, "ScheduleKeyDeletion", &m);
            goto out;
        }
    }
    /* Destroying the secret or private object is what schedules a CMK's deletion. */
    rv = ctl->p11.fn->C_DestroyObject(ctl->p11.session, ref.main);
    if (rv != CKR_OK) {
        if (days_text) { /* nothing half done: the key keeps the window it had */
            CK_ULONG before = keymeta_ulong(&m, CKA_CMK_PENDING_WINDOW_DAYS, 0);
            CK_ATTRIBUTE back = {CKA_CMK_PENDING_WINDOW_DAYS, &before, sizeof(before)};
            if (before) p11_set(&ctl->p11, ref.main, &back, 1);
        }
        rc = keymeta_fail(ctl, rv, "ScheduleKeyDeletion", &m);
        goto out;
    }
    struct key_ref after;
    int exists = keyref_exists(ctl, ref.key_id);
    if (exists < 0) {
        rc = err_code_exit(ctl->err.code);
    } else if (!exists) {
        /* The token's policy destroys at once (allow_immediate_destroy). */
        json_object *resp = json_object_new_object();
        out_add_str(resp, "KeyId", ref.key_id);
        out_add_str(resp, "KeyState", "Deleted");
        rc = out_emit(ctl, resp, 0);
    } else if (!(rc = keyref_resolve(ctl, ref.key_id, &after))) {
        static const char *const fields[] = {"KeyState", "DeleteDate", "PendingWindowInDays", NULL};
        rc = keymeta_report(ctl, &after, fields);
    }
out:
    keymeta_free(&m);
    return rc;
}

const struct cmd_def cmd_schedule_key_deletion = {
    "schedule-key-deletion",
    "Schedule a key's deletion after a pending window (ScheduleKeyDeletion)",
    "Sets CKA_CMK_PENDING_WINDOW_DAYS when given, then C_DestroyObject on the secret or\n"
    "private key object: the key turns PendingDeletion, disappears from plain finds, and is\n"
    "destroyed at the first login after its DeleteDate (see purge-due).",
    "cmkctl schedule-key-deletion --key-id alias/old-payments --pending-window-in-days 7",
    schedule_opts,
    run_schedule_key_deletion,
};

/* ---- cancel-key-deletion ---- */

static const struct opt_def cancel_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI"},
    {NULL, NULL, 0, NULL},
};

static int run_cancel_key_deletion(struct ctl *ctl)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    CK_ULONG state = keymeta_ulong(&m, CKA_CMK_KEY_STATE, 0);
    /* The module's Disabled is also a plain disable: only cancel what is pending. */
    if (!rc && state != CMK_STATE_PENDING_DELETION)
        rc = ctl_fail(ctl, KMS_STATE, "key %s is %s, not PendingDeletion", ref.key_id,
                      keystate_name(state));
    if (!rc) {
        CK_ULONG disabled = CMK_STATE_DISABLED;
        CK_ATTRIBUTE a = {CKA_CMK_KEY_STATE, &disabled, sizeof(disabled)};
        CK_RV rv = p11_set(&ctl->p11, ref.main, &a, 1);
        static const char *const fields[] = {"KeyState", NULL};
        rc = rv == CKR_OK ? keymeta_report(ctl, &ref, fields)
                          : keymeta_fail(ctl, rv, "CancelKeyDeletion", &m);
    }
    keymeta_free(&m);
    return rc;
}

const struct cmd_def cmd_cancel_key_deletion = {
    "cancel-key-deletion",
    "Cancel a scheduled deletion; the key becomes Disabled (CancelKeyDeletion)",
    "Finds the key with CKA_CMK_KEY_ID or CKA_CMK_KEY_STATE in the template (keys pending\n"
    "deletion are hidden from other finds) and sets CKA_CMK_KEY_STATE to Disabled.",
    "cmkctl cancel-key-deletion --key-id 1f6c0a52-3c1e-4d0b-9f7a-2b8e5d7c9a10",
    cancel_opts,
    run_cancel_key_deletion,
};

/* ---- purge-due ---- */

static const struct opt_def no_opts[] = {{NULL, NULL, 0, NULL}};

struct pending {
    char key_id[37];
    char *alias, *spec;
    long long delete_date;
};

static void pending_free(struct pending *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].alias);
        free(p[i].spec);
    }
    free(p);
}

static char *column_text(sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    return strdup(t ? (const char *)t : "");
}

/* Before login: the module purges at login, and private keys are invisible until then,
 * so the list of keys pending deletion comes from the store. */
static int read_pending(struct ctl *ctl, struct pending **out, size_t *n)
{
    struct cmk_conf conf;
    char why[PATH_MAX + 128];
    sqlite3 *db;
    *out = NULL;
    *n = 0;
    if (conf_load(&conf, why, sizeof(why)) || store_open_ro(conf.store, &db, why, sizeof(why)))
        return ctl_fail(ctl, KMS_INTERNAL, "purge-due reads the store named in CMKP11_CONF: %s",
                        why);
    sqlite3_stmt *q;
    int rc = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT key_id, " CMK_FIRST_ALIAS ", key_spec, deletion_date FROM cmk "
                           "WHERE state = 3 ORDER BY deletion_date, key_id",
                           -1, &q, NULL) != SQLITE_OK) {
        rc =
            ctl_fail(ctl, KMS_INTERNAL, "cannot read store %s: %s", conf.store, sqlite3_errmsg(db));
        sqlite3_close(db);
        return rc;
    }
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        struct pending *grown = realloc(*out, (*n + 1) * sizeof(*grown));
        if (!grown) {
            rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
            break;
        }
        *out = grown;
        struct pending *p = &grown[(*n)++];
        snprintf(p->key_id, sizeof(p->key_id), "%s", (const char *)sqlite3_column_text(q, 0));
        p->alias = column_text(q, 1);
        p->spec = column_text(q, 2);
        p->delete_date = sqlite3_column_int64(q, 3);
    }
    if (!rc && step != SQLITE_DONE)
        rc =
            ctl_fail(ctl, KMS_INTERNAL, "cannot read store %s: %s", conf.store, sqlite3_errmsg(db));
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc;
}

static json_object *pending_json(const struct pending *p, int with_spec)
{
    json_object *e = json_object_new_object();
    out_add_str(e, "KeyId", p->key_id);
    out_add_str(e, "Alias", p->alias);
    if (with_spec) out_add_str(e, "KeySpec", p->spec);
    json_object_object_add(e, "DeleteDate", out_time(p->delete_date));
    return e;
}

static int run_purge_due(struct ctl *ctl)
{
    struct pending *before = NULL;
    size_t n = 0;
    int rc = read_pending(ctl, &before, &n);
    if (!rc && n) progress_note("purge-due", "logging in: cmkp11 destroys the due keys now");
    if (!rc) rc = p11_open(ctl, P11_LOGIN);
    json_object *purged = json_object_new_array(), *remaining = json_object_new_array();
    size_t npurged = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        progress_step("purge-due, keys checked", i + 1, n);
        int exists = keyref_exists(ctl, before[i].key_id);
        if (exists < 0)
            rc = err_code_exit(ctl->err.code);
        else if (!exists) {
            json_object_array_add(purged, pending_json(&before[i], 1));
            npurged++;
        } else {
            json_object *e = pending_json(&before[i], 0);
            /* Past its date yet still here: the module could not destroy it at login. */
            json_object_object_add(e, "Overdue",
                                   json_object_new_boolean(before[i].delete_date <= time(NULL)));
            json_object_array_add(remaining, e);
        }
    }
    pending_free(before, n);
    if (rc) {
        json_object_put(purged);
        json_object_put(remaining);
        return rc;
    }
    json_object *resp = json_object_new_object();
    json_object_object_add(resp, "PurgedKeys", purged);
    json_object_object_add(resp, "PurgedCount", json_object_new_int64((int64_t)npurged));
    json_object_object_add(resp, "PendingDeletionKeys", remaining);
    return out_emit(ctl, resp, 0);
}

const struct cmd_def cmd_purge_due = {
    "purge-due",
    "Destroy keys whose pending window has passed, and report them",
    "Lists the keys pending deletion from the store (read-only), logs in (C_Login is when\n"
    "cmkp11 destroys keys past their DeleteDate), and reports which are gone.",
    "cmkctl purge-due",
    no_opts,
    run_purge_due,
};
