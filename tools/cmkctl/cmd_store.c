/* cmd_store.c - audit-log and doctor: they read the module's SQLite store directly, read
 * only. They rely on these parts of its schema: audit(id, time, pid, uid, action, key_id,
 * detail), cmk(key_id, alias, alias_norm, state, deletion_date), PRAGMA user_version. */
#define _GNU_SOURCE /* timegm */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ctl.h"
#include "keyspec.h"
#include "output.h"
#include "store_ro.h"

/* ---- audit-log ---- */

static const struct opt_def audit_opts[] = {
    {"key-id", "KEY", 0, "only events of this key (key id, or the alias of an existing key)"},
    {"action", "ACTION", OPT_REPEAT, "only these actions (CreateKey, DisableKey, ...)"},
    {"since", "TIME", 0, "events at or after TIME (RFC 3339 like 2024-05-01T00:00:00Z, or unix)"},
    {"until", "TIME", 0, "events at or before TIME"},
    {"limit", "N", 0, "the newest N events, shown oldest first (default 100, max 100000)"},
    {NULL, NULL, 0, NULL},
};

static char *column_dup(sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    return t ? strdup((const char *)t) : NULL;
}

/* An alias names a key only while the key exists: look it up in the store's key table. */
static int key_filter(struct ctl *ctl, sqlite3 *db, const char *name, char **key_id)
{
    *key_id = NULL;
    int uuid = strlen(name) == 36 && name[8] == '-' && name[13] == '-';
    if (uuid) {
        *key_id = strdup(name);
        for (char *c = *key_id; c && *c; c++)
            *c = (char)tolower((unsigned char)*c);
        return *key_id ? 0 : ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    }
    const char *alias = !strncasecmp(name, "alias/", 6) ? name + 6 : name;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT key_id FROM cmk WHERE alias_norm = lower(?1)", -1, &q,
                           NULL) != SQLITE_OK)
        return ctl_fail(ctl, KMS_INTERNAL, "cannot read the store: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, alias, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) *key_id = column_dup(q, 0);
    sqlite3_finalize(q);
    if (!*key_id)
        return ctl_fail(ctl, KMS_NOT_FOUND,
                        "no key has the alias '%s' (for a deleted key, give its key id)", name);
    return 0;
}

static json_object *event_json(sqlite3_stmt *q)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "Id", json_object_new_int64(sqlite3_column_int64(q, 0)));
    json_object_object_add(e, "Time", out_time(sqlite3_column_int64(q, 1)));
    json_object_object_add(e, "Timestamp", json_object_new_int64(sqlite3_column_int64(q, 1)));
    json_object_object_add(e, "Pid", json_object_new_int64(sqlite3_column_int64(q, 2)));
    json_object_object_add(e, "Uid", json_object_new_int64(sqlite3_column_int64(q, 3)));
    const unsigned char *action = sqlite3_column_text(q, 4), *key = sqlite3_column_text(q, 5),
                        *detail = sqlite3_column_text(q, 6);
    out_add_str(e, "Action", action ? (const char *)action : "");
    out_add_str(e, "KeyId", key ? (const char *)key : "");
    out_add_str(e, "Detail", detail ? (const char *)detail : "");
    return e;
}

static int run_audit_log(struct ctl *ctl)
{
    long long since = 0, until = 0, limit = 100;
    const char *since_text = arg_str(&ctl->args, "since"),
               *until_text = arg_str(&ctl->args, "until");
    const char *limit_text = arg_str(&ctl->args, "limit");
    if (since_text && out_parse_time(since_text, &since))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--since: '%s' is not a time", since_text);
    if (until_text && out_parse_time(until_text, &until))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--until: '%s' is not a time", until_text);
    if (limit_text) {
        char *end;
        limit = strtoll(limit_text, &end, 10);
        if (*end || limit < 1 || limit > 100000)
            return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--limit must be 1 to 100000");
    }
    const char *const *actions;
    size_t nactions = arg_list(&ctl->args, "action", &actions);
    if (nactions > 16) return ctl_fail(ctl, KMS_INVALID_PARAMETER, "at most 16 --action options");

    struct cmk_conf conf;
    char why[PATH_MAX + 128];
    sqlite3 *db = NULL;
    if (conf_load(&conf, why, sizeof(why)) || store_open_ro(conf.store, &db, why, sizeof(why)))
        return ctl_fail(ctl, KMS_INTERNAL, "audit-log reads the store named in CMKP11_CONF: %s",
                        why);
    char *key_id = NULL;
    const char *key_name = arg_str(&ctl->args, "key-id");
    int rc = key_name ? key_filter(ctl, db, key_name, &key_id) : 0;

    char sql[1024];
    size_t n = (size_t)snprintf(sql, sizeof(sql),
                                "SELECT id, time, pid, uid, action, key_id, detail FROM audit "
                                "WHERE 1");
    if (key_id) n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND key_id = :key");
    if (since_text) n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND time >= :since");
    if (until_text) n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND time <= :until");
    if (nactions) {
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND action IN (");
        for (size_t i = 0; i < nactions; i++)
            n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s:a%zu", i ? ", " : "", i);
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, ")");
    }
    /* The newest N, then turned around so the output reads in time order. */
    snprintf(sql + n, sizeof(sql) - n, " ORDER BY id DESC LIMIT :limit");
    sqlite3_stmt *q = NULL;
    if (!rc && sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        rc = ctl_fail(ctl, KMS_INTERNAL, "cannot read the audit table: %s", sqlite3_errmsg(db));
    json_object *events = json_object_new_array();
    if (!rc) {
        for (size_t i = 0; i < nactions; i++) {
            char name[16];
            snprintf(name, sizeof(name), ":a%zu", i);
            sqlite3_bind_text(q, sqlite3_bind_parameter_index(q, name), actions[i], -1,
                              SQLITE_STATIC);
        }
        if (key_id)
            sqlite3_bind_text(q, sqlite3_bind_parameter_index(q, ":key"), key_id, -1,
                              SQLITE_STATIC);
        if (since_text) sqlite3_bind_int64(q, sqlite3_bind_parameter_index(q, ":since"), since);
        if (until_text) sqlite3_bind_int64(q, sqlite3_bind_parameter_index(q, ":until"), until);
        sqlite3_bind_int64(q, sqlite3_bind_parameter_index(q, ":limit"), limit);
        int step;
        while ((step = sqlite3_step(q)) == SQLITE_ROW)
            json_object_array_add(events, event_json(q));
        if (step != SQLITE_DONE)
            rc = ctl_fail(ctl, KMS_INTERNAL, "cannot read the audit table: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(key_id);
    if (rc) {
        json_object_put(events);
        return rc;
    }
    size_t count = json_object_array_length(events);
    json_object *ordered = json_object_new_array();
    for (size_t i = count; i > 0; i--)
        json_object_array_add(ordered, json_object_get(json_object_array_get_idx(events, i - 1)));
    json_object_put(events);
    json_object *resp = json_object_new_object();
    json_object_object_add(resp, "Events", ordered);
    json_object_object_add(resp, "TotalCount", json_object_new_int64((int64_t)count));
    return out_emit(ctl, resp, 0);
}

const struct cmd_def cmd_audit_log = {
    "audit-log",
    "Show the token's audit trail (who did what to which key, when)",
    "Reads the audit table of the store named in the module's configuration ($CMKP11_CONF,\n"
    "[token] store), read-only. Events of deleted keys stay: name those by key id.",
    "cmkctl audit-log --key-id alias/payments --action DisableKey --since 2024-05-01T00:00:00Z",
    audit_opts,
    run_audit_log,
};

/* ---- doctor ---- */

static const struct opt_def doctor_opts[] = {{NULL, NULL, 0, NULL}};

static int add_check(json_object *checks, const char *name, const char *status, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* Returns 1 when the check failed, so the caller can count. */
static int add_check(json_object *checks, const char *name, const char *status, const char *fmt,
                     ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    json_object *c = json_object_new_object();
    out_add_str(c, "Check", name);
    out_add_str(c, "Status", status);
    out_add_str(c, "Detail", detail);
    json_object_array_add(checks, c);
    return !strcmp(status, "error");
}

static long long query_int(sqlite3 *db, const char *sql, int *ok)
{
    sqlite3_stmt *q;
    long long v = 0;
    *ok = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return 0;
    if (sqlite3_step(q) == SQLITE_ROW) {
        v = sqlite3_column_int64(q, 0);
        *ok = 1;
    }
    sqlite3_finalize(q);
    return v;
}

/* Integrity, schema and key counts; the store is open. */
static int check_store_content(sqlite3 *db, json_object *checks, json_object *facts)
{
    int failed = 0, ok;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) != SQLITE_OK) {
        failed += add_check(checks, "integrity", "error", "%s", sqlite3_errmsg(db));
    } else {
        const char *first = NULL;
        if (sqlite3_step(q) == SQLITE_ROW) first = (const char *)sqlite3_column_text(q, 0);
        if (first && !strcmp(first, "ok"))
            add_check(checks, "integrity", "ok", "PRAGMA integrity_check: ok");
        else
            failed += add_check(checks, "integrity", "error", "PRAGMA integrity_check: %s",
                                first ? first : sqlite3_errmsg(db));
        sqlite3_finalize(q);
    }
    long long version = query_int(db, "PRAGMA user_version", &ok);
    json_object_object_add(facts, "SchemaVersion", json_object_new_int64(version));
    if (!ok || version == 0)
        failed += add_check(checks, "schema", "error",
                            "PRAGMA user_version is %lld: the module "
                            "has not created its tables here",
                            version);
    else
        add_check(checks, "schema", "ok", "schema version %lld", version);

    json_object *by_state = json_object_new_object();
    const char *states[] = {"Enabled", "Disabled", "PendingDeletion", "PendingImport", "Creating"};
    for (size_t i = 0; i < 5; i++)
        json_object_object_add(by_state, states[i], json_object_new_int64(0));
    long long creating = 0, total = 0;
    if (sqlite3_prepare_v2(db, "SELECT state, count(*) FROM cmk GROUP BY state", -1, &q, NULL) ==
        SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            CK_ULONG state = (CK_ULONG)sqlite3_column_int64(q, 0);
            long long count = sqlite3_column_int64(q, 1);
            const char *name = keystate_name(state);
            json_object_object_add(by_state, *name ? name : "Unknown",
                                   json_object_new_int64(count));
            if (state == CMK_STATE_CREATING) creating = count;
            total += count;
        }
        sqlite3_finalize(q);
        add_check(checks, "keys", "ok", "%lld keys", total - creating);
    } else {
        failed += add_check(checks, "keys", "error", "cannot count keys: %s", sqlite3_errmsg(db));
    }
    json_object_object_add(facts, "KeysByState", by_state);
    if (creating)
        add_check(checks, "half-created", "warning",
                  "%lld keys in state Creating: a CreateKey is running, or its process died "
                  "(removed at the next login)",
                  creating);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM cmk WHERE state = 3 AND deletion_date <= %lld",
             (long long)time(NULL));
    long long overdue = query_int(db, sql, &ok);
    if (ok && overdue)
        add_check(checks, "overdue-deletions", "warning",
                  "%lld keys are past their deletion date (run cmkctl purge-due)", overdue);
    return failed;
}

static int run_doctor(struct ctl *ctl)
{
    json_object *facts = json_object_new_object(), *checks = json_object_new_array();
    int failed = 0;
    struct cmk_conf conf;
    char why[PATH_MAX + 128];
    int have_conf = conf_load(&conf, why, sizeof(why)) == 0;
    if (have_conf)
        add_check(checks, "config", "ok", "%s (store %s, token '%s')", conf.path, conf.store,
                  conf.token_label);
    else
        failed += add_check(checks, "config", "error", "%s", why);

    /* The store first: loading the module creates a missing store, which would hide
     * that it was missing. Each failure is reported and the next check still runs. */
    sqlite3 *db = NULL;
    if (!have_conf) {
        add_check(checks, "store", "skipped", "no configuration to name the store");
    } else if (store_open_ro(conf.store, &db, why, sizeof(why))) {
        failed += add_check(checks, "store", "error", "%s", why);
    } else {
        add_check(checks, "store", "ok", "%s opened read-only", conf.store);
        failed += check_store_content(db, checks, facts);
    }
    sqlite3_close(db);
    if (p11_load(ctl) == 0) {
        add_check(checks, "module", "ok", "%s loaded and initialised", p11_module_path(ctl));
        if (p11_open(ctl, P11_NO_LOGIN) == 0)
            add_check(checks, "token", "ok", "token '%s' present", ctl->p11.token_label);
        else
            failed += add_check(checks, "token", "error", "%s", ctl->err.message);
    } else {
        failed += add_check(checks, "module", "error", "%s", ctl->err.message);
        add_check(checks, "token", "skipped", "the module did not load");
    }
    memset(&ctl->err, 0, sizeof(ctl->err));

    json_object *resp = json_object_new_object();
    json_object_object_add(resp, "Healthy", json_object_new_boolean(failed == 0));
    json_object_object_add(resp, "Checks", checks);
    json_object_object_foreach(facts, key, value)
    {
        json_object_object_add(resp, key, json_object_get(value));
    }
    json_object_put(facts);
    return out_emit(ctl, resp, failed ? EXIT_NEGATIVE : EXIT_OK);
}

const struct cmd_def cmd_doctor = {
    "doctor",
    "Check configuration, module, token and store; count keys per state",
    "Parses $CMKP11_CONF (inih), loads the module and finds the token (no login), opens the\n"
    "store read-only, runs PRAGMA integrity_check and PRAGMA user_version, and counts keys\n"
    "per state. Healthy is false, and the exit code 1, when a check fails.",
    "cmkctl doctor --output table",
    doctor_opts,
    run_doctor,
};
