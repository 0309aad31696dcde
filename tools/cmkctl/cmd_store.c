/* cmd_store.c - audit-log and doctor: they read the module's SQLite store directly, read
 * only. They rely on these parts of its schema: audit(id, time, pid, uid, action, key_id,
 * detail), cmk(id, key_id, alias, alias_norm, state, deletion_date, primary_version,
 * rotating_to, objects, protection), cmk_import(cmk_id, wrap_id), cmk_sealed(cmk_id,
 * version), PRAGMA user_version. doctor also reads the backend token itself,
 * read-only, to compare its material with the store: it relies on the identity cmkp11
 * gives material (src/cmk_create.c, cmk_backend_label and cmk_backend_id). */
#define _GNU_SOURCE /* timegm, RTLD_NODELETE */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "ctl.h"
#include "doctor.h"
#include "keyspec.h"
#include "output.h"
#include "progress.h"
#include "pin.h"
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
    if (sqlite3_prepare_v2(db, "SELECT key_id FROM cmk WHERE id IN (SELECT cmk_id FROM cmk_alias WHERE alias_norm = lower(?1))", -1, &q,
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

/* Returns 1 when the check failed, so the caller can count. */
int doctor_add_check(json_object *checks, const char *name, const char *status, const char *fmt,
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
        failed += doctor_add_check(checks, "integrity", "error", "%s", sqlite3_errmsg(db));
    } else {
        const char *first = NULL;
        if (sqlite3_step(q) == SQLITE_ROW) first = (const char *)sqlite3_column_text(q, 0);
        if (first && !strcmp(first, "ok"))
            doctor_add_check(checks, "integrity", "ok", "PRAGMA integrity_check: ok");
        else
            failed += doctor_add_check(checks, "integrity", "error", "PRAGMA integrity_check: %s",
                                       first ? first : sqlite3_errmsg(db));
        sqlite3_finalize(q);
    }
    long long version = query_int(db, "PRAGMA user_version", &ok);
    json_object_object_add(facts, "SchemaVersion", json_object_new_int64(version));
    if (!ok || version == 0)
        failed += doctor_add_check(checks, "schema", "error",
                                   "PRAGMA user_version is %lld: the module "
                                   "has not created its tables here",
                                   version);
    else
        doctor_add_check(checks, "schema", "ok", "schema version %lld", version);

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
        doctor_add_check(checks, "keys", "ok", "%lld keys", total - creating);
    } else {
        failed +=
            doctor_add_check(checks, "keys", "error", "cannot count keys: %s", sqlite3_errmsg(db));
    }
    json_object_object_add(facts, "KeysByState", by_state);
    if (creating)
        doctor_add_check(checks, "half-created", "warning",
                         "%lld keys in state Creating: a CreateKey is running, or its process died "
                         "(removed at the next login)",
                         creating);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM cmk WHERE state = 3 AND deletion_date <= %lld",
             (long long)time(NULL));
    long long overdue = query_int(db, sql, &ok);
    if (ok && overdue)
        doctor_add_check(checks, "overdue-deletions", "warning",
                         "%lld keys are past their deletion date (run cmkctl purge-due)", overdue);
    return failed;
}

/* ---- doctor: the backend's material against the store ---- */

/* cmkp11 names a version's material in the backend twice (src/cmk_create.c): CKA_LABEL
 * "cmkp11/<key id>/v<n>" and CKA_ID "CMK\x01" + the key id's 16 bytes + n, big-endian.
 * Its other objects under the prefix are doctor_objects.c's. */
#define MATERIAL_LABEL_PREFIX "cmkp11/"
#define MATERIAL_ID_LEN 24

int doctor_uuid_text_ok(const char *t)
{
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? t[i] != '-' : !isxdigit((unsigned char)t[i])) return 0;
    }
    return 1;
}

void doctor_lower_copy(char out[37], const char *in)
{
    for (int i = 0; i < 36; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[36] = '\0';
}

/* "cmkp11/<key id>/v<n>": 0 with key_id and version set, -1 when the label has another form. */
static int parse_material_label(const char *label, char key_id[37], CK_ULONG *version)
{
    const char *p = label + strlen(MATERIAL_LABEL_PREFIX);
    if (strlen(p) < 39 || !doctor_uuid_text_ok(p) || strncmp(p + 36, "/v", 2)) return -1;
    const char *digits = p + 38;
    char *end;
    errno = 0;
    unsigned long v = strtoul(digits, &end, 10);
    if (errno || *end || !isdigit((unsigned char)*digits) || v == 0) return -1;
    doctor_lower_copy(key_id, p);
    *version = v;
    return 0;
}

void doctor_key_id_of_bytes(const unsigned char b[16], char key_id[37])
{
    snprintf(key_id, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void parse_material_id(const unsigned char *id, char key_id[37], CK_ULONG *version)
{
    doctor_key_id_of_bytes(id + 4, key_id);
    *version = (CK_ULONG)id[20] << 24 | (CK_ULONG)id[21] << 16 | (CK_ULONG)id[22] << 8 | id[23];
}

/* Fills m from an object's label and id; 0 when the object carries neither of cmkp11's
 * names (then it is none of doctor's business). */
static int material_identify(struct material *m, const struct attr_val *label,
                             const struct attr_val *id)
{
    if (token_object_identify(m, label, id)) return 1;
    int by_label = label && label->len >= strlen(MATERIAL_LABEL_PREFIX) &&
                   !memcmp(label->value, MATERIAL_LABEL_PREFIX, strlen(MATERIAL_LABEL_PREFIX));
    int by_id = id && id->len == MATERIAL_ID_LEN && !memcmp(id->value, "CMK\x01", 4);
    if (!by_label && !by_id) return 0;
    char label_key[37] = "", id_key[37] = "";
    CK_ULONG label_version = 0, id_version = 0;
    int label_ok = by_label &&
                   parse_material_label((const char *)label->value, label_key, &label_version) == 0;
    if (by_id) parse_material_id(id->value, id_key, &id_version);
    if (by_label && !label_ok)
        m->fault = "CKA_LABEL starts with cmkp11/ but is none of the names cmkp11 gives backend "
                   "objects";
    else if (label_ok && by_id && (strcmp(label_key, id_key) || label_version != id_version))
        m->fault = "CKA_LABEL and CKA_ID name different keys or versions";
    snprintf(m->key_id, sizeof(m->key_id), "%s", label_ok ? label_key : id_key);
    m->version = label_ok ? label_version : id_version;
    return 1;
}

static int material_cmp(const void *a, const void *b)
{
    const struct material *x = a, *y = b;
    int c = strcmp(x->key_id, y->key_id);
    if (c) return c;
    return x->version < y->version ? -1 : x->version > y->version;
}

static int key_row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct key_row *)a)->key_id, ((const struct key_row *)b)->key_id);
}

static const struct key_row *key_row_find(const struct key_row *rows, size_t n, const char *key_id)
{
    struct key_row want;
    snprintf(want.key_id, sizeof(want.key_id), "%s", key_id);
    return n ? bsearch(&want, rows, n, sizeof(*rows), key_row_cmp) : NULL;
}

static void key_rows_free(struct key_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        free(rows[i].alias);
    free(rows);
}

static void materials_free(struct material *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        free(m[i].label);
        free(m[i].id_hex);
    }
    free(m);
}

/* Every cmk row, sorted by key id. 0, or -1 with why filled. */
static int read_key_rows(sqlite3 *db, struct key_row **out, size_t *n, char *why, size_t why_size)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db,
                           doctor_table_exists(db, "cmk_import")
                               ? "SELECT key_id, coalesce(" CMK_FIRST_ALIAS ", ''), state, primary_version, "
                                 "rotating_to, objects, protection, EXISTS (SELECT 1 FROM "
                                 "cmk_import i WHERE i.cmk_id = cmk.id AND i.wrap_id IS NOT "
                                 "NULL) FROM cmk"
                               : "SELECT key_id, coalesce(" CMK_FIRST_ALIAS ", ''), state, primary_version, "
                                 "rotating_to, objects, protection, 0 FROM cmk",
                           -1, &q, NULL) != SQLITE_OK) {
        snprintf(why, why_size, "cannot read the key table: %s", sqlite3_errmsg(db));
        return -1;
    }
    int step, rc = 0;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        const char *key_id = (const char *)sqlite3_column_text(q, 0);
        if (!key_id || strlen(key_id) != 36) continue; /* not a key id: names no material */
        struct key_row *grown = realloc(*out, (*n + 1) * sizeof(*grown));
        if (!grown) {
            rc = -1;
            snprintf(why, why_size, "out of memory");
            break;
        }
        *out = grown;
        struct key_row *r = &grown[(*n)++];
        doctor_lower_copy(r->key_id, key_id);
        r->alias = column_dup(q, 1);
        r->state = (CK_ULONG)sqlite3_column_int64(q, 2);
        r->primary = (CK_ULONG)sqlite3_column_int64(q, 3);
        r->rotating_to = (CK_ULONG)sqlite3_column_int64(q, 4);
        r->objects = (unsigned)sqlite3_column_int64(q, 5);
        r->protection = (CK_ULONG)sqlite3_column_int64(q, 6);
        r->has_params = sqlite3_column_int(q, 7);
    }
    if (!rc && step != SQLITE_DONE) {
        rc = -1;
        snprintf(why, why_size, "cannot read the key table: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(q);
    if (!rc) qsort(*out, *n, sizeof(**out), key_row_cmp);
    return rc;
}

static const char *backend_token_name(const struct cmk_conf *conf)
{
    return conf->backend_token_label[0] ? conf->backend_token_label : conf->backend_token_serial;
}

/* The backend module and token named in the configuration, loaded with dlopen (kept
 * mapped: the module under test loads the same library afterwards), a read-only session,
 * logged in as the user with cmkctl's PIN. 0, or -1 with why filled. */
int doctor_backend_open(struct ctl *ctl, const struct cmk_conf *conf, struct p11 *be, char *why,
                        size_t why_size)
{
    char buf[32];
    memset(be, 0, sizeof(*be));
    if (!conf->backend[0]) {
        snprintf(why, why_size, "%s names no [backend] module", conf->path);
        return -1;
    }
    be->dl = dlopen(conf->backend, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!be->dl) {
        snprintf(why, why_size, "cannot load backend module %s: %s", conf->backend, dlerror());
        return -1;
    }
    CK_C_GetFunctionList get_list;
    *(void **)&get_list = dlsym(be->dl, "C_GetFunctionList");
    if (!get_list || get_list(&be->fn) != CKR_OK || !be->fn) {
        snprintf(why, why_size, "%s is not a PKCS#11 module", conf->backend);
        return -1;
    }
    CK_C_INITIALIZE_ARGS init = {0};
    init.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = be->fn->C_Initialize(&init);
    if (rv != CKR_OK) {
        snprintf(why, why_size, "C_Initialize of backend %s: %s", conf->backend, ckr_name(rv, buf));
        return -1;
    }
    be->initialized = 1;
    /* Token labels and serials are blank-padded fields. */
    char label[32], serial[16];
    memset(label, ' ', sizeof(label));
    memset(serial, ' ', sizeof(serial));
    memcpy(label, conf->backend_token_label, strnlen(conf->backend_token_label, sizeof(label)));
    memcpy(serial, conf->backend_token_serial, strnlen(conf->backend_token_serial, sizeof(serial)));
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    rv = be->fn->C_GetSlotList(CK_TRUE, slots, &n);
    int found = 0;
    for (CK_ULONG i = 0; rv == CKR_OK && i < n && !found; i++) {
        CK_TOKEN_INFO info;
        if (be->fn->C_GetTokenInfo(slots[i], &info) != CKR_OK) continue;
        found = conf->backend_token_label[0] ? !memcmp(info.label, label, sizeof(label))
                                             : !memcmp(info.serialNumber, serial, sizeof(serial));
        if (found) be->slot = slots[i];
    }
    const char *token = backend_token_name(conf);
    if (!found) {
        snprintf(why, why_size, "backend %s has no token '%s'%s%s", conf->backend, token,
                 rv == CKR_OK ? "" : ": C_GetSlotList ", rv == CKR_OK ? "" : ckr_name(rv, buf));
        return -1;
    }
    rv = be->fn->C_OpenSession(be->slot, CKF_SERIAL_SESSION, NULL, NULL, &be->session);
    if (rv != CKR_OK) {
        snprintf(why, why_size, "C_OpenSession on backend token '%s': %s", token,
                 ckr_name(rv, buf));
        return -1;
    }
    be->has_session = 1;
    char *pin = NULL;
    size_t pin_len = 0;
    if (pin_get(ctl, token, &pin, &pin_len)) {
        snprintf(why, why_size, "%s", ctl->err.message);
        memset(&ctl->err, 0, sizeof(ctl->err));
        return -1;
    }
    rv = be->fn->C_Login(be->session, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pin_len);
    pin_free(pin, pin_len);
    if (rv != CKR_OK) {
        snprintf(why, why_size, "login to backend token '%s': %s", token, ckr_name(rv, buf));
        return -1;
    }
    return 0;
}

/* Every backend object that carries one of cmkp11's names, sorted by key id and version. */
static int backend_scan(struct p11 *be, struct material **out, size_t *count, char *why,
                        size_t why_size)
{
    char buf[32];
    *out = NULL;
    *count = 0;
    CK_OBJECT_HANDLE *all;
    CK_ULONG n;
    CK_RV rv = p11_find(be, NULL, 0, &all, &n);
    if (rv != CKR_OK) {
        snprintf(why, why_size, "C_FindObjects on the backend token: %s", ckr_name(rv, buf));
        return -1;
    }
    int rc = 0;
    enum { NA = 3 + DOCTOR_FLAGS };
    for (CK_ULONG i = 0; i < n && !rc; i++) {
        struct attr_val a[NA] = {
            {CKA_CLASS, NULL, 0, 0}, {CKA_LABEL, NULL, 0, 0}, {CKA_ID, NULL, 0, 0}};
        for (size_t f = 0; f < DOCTOR_FLAGS; f++)
            a[3 + f] = (struct attr_val){doctor_flag_types[f], NULL, 0, 0};
        if (p11_get_attrs(be, all[i], a, NA) != CKR_OK) continue; /* gone meanwhile */
        struct material m;
        memset(&m, 0, sizeof(m));
        m.cls = attr_ulong(a, NA, CKA_CLASS, (CK_ULONG)-1);
        const struct attr_val *id = attr_lookup(a, NA, CKA_ID);
        if (material_identify(&m, attr_lookup(a, NA, CKA_LABEL), id)) {
            doctor_read_flags(&m, a, NA);
            struct material *grown = realloc(*out, (*count + 1) * sizeof(*grown));
            m.label = strdup(attr_text(a, NA, CKA_LABEL));
            m.id_hex = id ? hex_encode(id->value, id->len) : strdup("");
            if (!grown || !m.label || !m.id_hex) {
                free(m.label);
                free(m.id_hex);
                snprintf(why, why_size, "out of memory");
                rc = -1;
            } else {
                *out = grown;
                grown[(*count)++] = m;
            }
        }
        p11_attrs_free(a, NA);
    }
    free(all);
    if (!rc) qsort(*out, *count, sizeof(**out), material_cmp);
    return rc;
}

static const char *class_name(CK_OBJECT_CLASS cls)
{
    return cls == CKO_SECRET_KEY    ? "SecretKey"
           : cls == CKO_PRIVATE_KEY ? "PrivateKey"
           : cls == CKO_PUBLIC_KEY  ? "PublicKey"
                                    : "Other";
}

/* The objects the store says a key has (src/cmk_record.h: 1 secret, 2 private, 4 public;
 * a pair's public half deleted on its own is no longer counted). */
static const struct {
    unsigned bit;
    CK_OBJECT_CLASS cls;
} key_objects[] = {{1, CKO_SECRET_KEY}, {2, CKO_PRIVATE_KEY}, {4, CKO_PUBLIC_KEY}};

/* 1 when the scan has an object of this class for the key's version. */
static int material_present(const struct material *m, size_t n, const struct key_row *r, CK_ULONG v,
                            CK_OBJECT_CLASS cls)
{
    struct material want;
    memset(&want, 0, sizeof(want));
    snprintf(want.key_id, sizeof(want.key_id), "%s", r->key_id);
    want.version = v;
    const struct material *hit = n ? bsearch(&want, m, n, sizeof(*m), material_cmp) : NULL;
    if (!hit) return 0;
    /* bsearch lands on any object of (key, version): look at all of them. */
    while (hit > m && !material_cmp(hit - 1, &want))
        hit--;
    for (; hit < m + n && !material_cmp(hit, &want); hit++)
        if (!hit->fault && hit->cls == cls) return 1;
    return 0;
}

/* Why an object belongs to no version of any key in either reading of the store, or NULL
 * when it belongs. */
static const char *stray_reason(const struct material *m, const struct key_row *a,
                                const struct key_row *b, size_t masters, char *buf, size_t size)
{
    if (m->kind != MATERIAL_VERSION) return token_object_stray_reason(m, a, b, masters, buf, size);
    if (m->fault) return m->fault;
    if (!a && !b) return "no key in the store has this key id";
    CK_ULONG last = 0;
    const struct key_row *rows[2] = {a, b};
    for (int i = 0; i < 2; i++)
        if (rows[i]) {
            if (rows[i]->primary > last) last = rows[i]->primary;
            if (rows[i]->rotating_to > last) last = rows[i]->rotating_to; /* being made */
        }
    if (m->version >= 1 && m->version <= last) return NULL;
    snprintf(buf, size, "the key has versions 1 to %lu in the store", last);
    return buf;
}

static json_object *missing_json(const struct key_row *r, CK_ULONG v, CK_OBJECT_CLASS cls)
{
    char text[24];
    json_object *e = json_object_new_object();
    out_add_str(e, "KeyId", r->key_id);
    out_add_str(e, "Alias", r->alias);
    out_add_str(e, "KeyState", *keystate_name(r->state) ? keystate_name(r->state) : "Unknown");
    snprintf(text, sizeof(text), "%lu", v);
    out_add_str(e, "KeyVersionId", text);
    out_add_str(e, "Object", class_name(cls));
    return e;
}

static json_object *stray_json(const struct material *m, const char *reason)
{
    char text[24];
    json_object *e = json_object_new_object();
    out_add_str(e, "Label", m->label);
    out_add_str(e, "CkaId", m->id_hex);
    out_add_str(e, "Object", class_name(m->cls));
    if (m->key_id[0]) {
        out_add_str(e, "KeyId", m->key_id);
        snprintf(text, sizeof(text), "%lu", m->version);
        out_add_str(e, "KeyVersionId", text);
    }
    out_add_str(e, "Reason", reason);
    return e;
}

/* A PIN is at hand without asking for one that is not there (doctor needs none for its
 * other checks). */
static int pin_available(struct ctl *ctl)
{
    return arg_str(&ctl->global, "pin-file") || arg_str(&ctl->global, "pin") ||
           getenv("CMKP11_PIN") || isatty(STDIN_FILENO);
}

/* 1 when a key read from the store has material sealed under the master key. */
static int has_sealed_material(const struct key_row *r)
{
    return r->protection == CMK_PROTECTION_SOFTWARE && r->state != CMK_STATE_CREATING &&
           r->state != CMK_STATE_PENDING_IMPORT;
}

/* Every version of every HSM key (but those being created or awaiting import) has its
 * material (each object the store counts for it), SOFTWARE keys have the master key that
 * seals theirs, and every object carrying cmkp11's names belongs to a version of a key, to
 * an import that can still use it, or is one of the token's own keys. The store is read before and
 * after the backend, so a key created, rotated or purged meanwhile is not taken for an
 * inconsistency: material is made before its row counts it and destroyed before its row goes.
 * Returns 1 when the check failed. */
static int check_material(struct ctl *ctl, const struct cmk_conf *conf, sqlite3 *db,
                          json_object *checks, json_object *facts)
{
    if (!pin_available(ctl))
        return doctor_add_check(
            checks, "material", "skipped",
            "no PIN (--pin-file or CMKP11_PIN) to log in to the backend token and "
            "compare its material with the store");
    char why[PATH_MAX + 256];
    struct key_row *before = NULL, *after = NULL;
    size_t nbefore = 0, nafter = 0, nm = 0;
    struct material *m = NULL;
    struct p11 be;
    memset(&be, 0, sizeof(be));
    int rc = read_key_rows(db, &before, &nbefore, why, sizeof(why));
    if (!rc) rc = doctor_backend_open(ctl, conf, &be, why, sizeof(why));
    if (!rc) progress_note("doctor", "reading the backend token's objects");
    if (!rc) rc = backend_scan(&be, &m, &nm, why, sizeof(why));
    if (be.dl) p11_close(&be);
    if (!rc) rc = read_key_rows(db, &after, &nafter, why, sizeof(why));
    int failed = 0;
    if (rc) {
        failed = doctor_add_check(checks, "material", "error", "%s", why);
        goto out;
    }
    json_object *missing = json_object_new_array(), *stray = json_object_new_array();
    size_t versions = 0, soft_keys = 0, masters = 0;
    for (size_t i = 0; i < nm; i++)
        masters += m[i].kind == MATERIAL_MASTER && !m[i].fault;
    for (size_t i = 0; i < nbefore; i++) {
        progress_step("doctor, keys checked against the backend", i + 1, nbefore);
        const struct key_row *r = &before[i], *now = key_row_find(after, nafter, r->key_id);
        if (r->state == CMK_STATE_CREATING || r->state == CMK_STATE_PENDING_IMPORT || !now)
            continue;
        /* Its material is sealed in the store (checked by doctor_check_sealed); the master
         * key that seals it existed before the key did. */
        if (has_sealed_material(r)) {
            soft_keys++;
            continue;
        }
        for (CK_ULONG v = 1; v <= r->primary; v++, versions++)
            for (size_t k = 0; k < sizeof(key_objects) / sizeof(key_objects[0]); k++)
                if ((r->objects & key_objects[k].bit) &&
                    !material_present(m, nm, r, v, key_objects[k].cls))
                    json_object_array_add(missing, missing_json(r, v, key_objects[k].cls));
    }
    for (size_t i = 0; i < nm; i++) {
        char buf[160];
        const char *reason =
            stray_reason(&m[i], key_row_find(before, nbefore, m[i].key_id),
                         key_row_find(after, nafter, m[i].key_id), masters, buf, sizeof(buf));
        if (reason) json_object_array_add(stray, stray_json(&m[i], reason));
    }
    json_object *token_keys = token_objects_missing(masters, soft_keys);
    size_t nmissing = json_object_array_length(missing), nstray = json_object_array_length(stray),
           ntoken = json_object_array_length(token_keys);
    json_object_object_add(facts, "BackendObjects", json_object_new_int64((int64_t)nm));
    json_object_object_add(facts, "MissingMaterial", missing);
    json_object_object_add(facts, "MissingTokenKeys", token_keys);
    json_object_object_add(facts, "StrayMaterial", stray);
    if (nmissing || nstray || ntoken)
        failed = doctor_add_check(
            checks, "material", "error",
            "%zu objects the store counts for key versions and %zu of cmkp11's own keys are "
            "missing from backend token '%s'; %zu backend objects named cmkp11/... belong to no "
            "key version or import (see MissingMaterial, MissingTokenKeys, StrayMaterial)",
            nmissing, ntoken, backend_token_name(conf), nstray);
    else
        doctor_add_check(checks, "material", "ok",
                         "%zu versions of HSM keys have their material; the %zu backend objects "
                         "named cmkp11/... all belong to them, to imports or to the token",
                         versions, nm);
    doctor_check_version_flags(m, nm, checks, facts);
out:
    key_rows_free(before, nbefore);
    key_rows_free(after, nafter);
    materials_free(m, nm);
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
        doctor_add_check(checks, "config", "ok", "%s (store %s, token '%s')", conf.path, conf.store,
                         conf.token_label);
    else
        failed += doctor_add_check(checks, "config", "error", "%s", why);

    /* The store first: loading the module creates a missing store, which would hide
     * that it was missing. Each failure is reported and the next check still runs. */
    sqlite3 *db = NULL;
    if (!have_conf) {
        doctor_add_check(checks, "store", "skipped", "no configuration to name the store");
        doctor_add_check(checks, "material", "skipped", "no configuration to name the backend");
    } else if (store_open_ro(conf.store, &db, why, sizeof(why))) {
        failed += doctor_add_check(checks, "store", "error", "%s", why);
        doctor_add_check(checks, "material", "skipped", "no store to compare the backend with");
    } else {
        doctor_add_check(checks, "store", "ok", "%s opened read-only", conf.store);
        int store_failed = check_store_content(db, checks, facts);
        failed += store_failed;
        failed += doctor_check_audit(db, checks);
        /* Before the module is loaded: both load the backend library, and this check
         * initialises and finalises it on its own. */
        if (store_failed) {
            doctor_add_check(checks, "material", "skipped", "the store failed its checks");
        } else {
            failed += doctor_check_sealed(db, checks, facts);
            failed += check_material(ctl, &conf, db, checks, facts);
        }
    }
    sqlite3_close(db);
    if (p11_load(ctl) == 0) {
        doctor_add_check(checks, "module", "ok", "%s loaded and initialised", p11_module_path(ctl));
        if (p11_open(ctl, P11_NO_LOGIN) == 0)
            doctor_add_check(checks, "token", "ok", "token '%s' present", ctl->p11.token_label);
        else
            failed += doctor_add_check(checks, "token", "error", "%s", ctl->err.message);
    } else {
        failed += doctor_add_check(checks, "module", "error", "%s", ctl->err.message);
        doctor_add_check(checks, "token", "skipped", "the module did not load");
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
    "Check configuration, store, backend material, module and token; count keys per state",
    "Parses $CMKP11_CONF (inih), opens the store read-only, runs PRAGMA integrity_check and\n"
    "PRAGMA user_version, and counts keys per state. With a PIN (--pin-file, CMKP11_PIN, or\n"
    "a terminal to ask on) it logs in to the backend token named in [backend] (its own\n"
    "module, a read-only session) and compares the material with the store: every version\n"
    "of every HSM key has its objects (MissingMaterial), SOFTWARE keys have the token master\n"
    "key (MissingTokenKeys), and every object labelled cmkp11/... belongs to a key version,\n"
    "an import or the token (StrayMaterial). Every version of every SOFTWARE key has its\n"
    "sealed row in the store (MissingSealedMaterial, no PIN needed). Then it loads the\n"
    "module and finds the token (no login). Healthy is false, and the exit code 1, when a\n"
    "check fails.",
    "cmkctl doctor --output table",
    doctor_opts,
    run_doctor,
};
