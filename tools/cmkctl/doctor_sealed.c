/* doctor_sealed.c - doctor and SOFTWARE keys: their material is in no backend object but
 * sealed in the store, one cmk_sealed row per version (src/store.c, schema 7), so what
 * makes such a version usable is its row. Read in one statement, a consistent snapshot:
 * a version is counted (primary_version) only after its row is written. */
#include <stdio.h>

#include "doctor.h"
#include "keyspec.h"
#include "output.h"

/* Every version 1..primary_version of every SOFTWARE key that has material (not being
 * created, not waiting for an import), without its sealed row. */
static const char missing_sql[] =
    "WITH RECURSIVE v(cmk_id, version) AS ("
    " SELECT id, 1 FROM cmk WHERE protection = ?1 AND state NOT IN (?2, ?3)"
    " AND primary_version >= 1"
    " UNION ALL SELECT v.cmk_id, v.version + 1 FROM v JOIN cmk c ON c.id = v.cmk_id"
    " WHERE v.version < c.primary_version)"
    " SELECT lower(c.key_id), coalesce((SELECT a.alias FROM cmk_alias a WHERE a.cmk_id = c.id"
    " ORDER BY a.created, a.rowid LIMIT 1), ''), c.state, v.version"
    " FROM v JOIN cmk c ON c.id = v.cmk_id"
    " WHERE NOT EXISTS (SELECT 1 FROM cmk_sealed s WHERE s.cmk_id = v.cmk_id"
    " AND s.version = v.version)"
    " ORDER BY 1, 4";

int doctor_table_exists(sqlite3 *db, const char *name)
{
    sqlite3_stmt *q;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", -1,
                           &q, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    return found;
}

static json_object *missing_sealed_json(sqlite3_stmt *q)
{
    char text[24];
    CK_ULONG state = (CK_ULONG)sqlite3_column_int64(q, 2);
    json_object *e = json_object_new_object();
    out_add_str(e, "KeyId", (const char *)sqlite3_column_text(q, 0));
    out_add_str(e, "Alias", (const char *)sqlite3_column_text(q, 1));
    out_add_str(e, "KeyState", *keystate_name(state) ? keystate_name(state) : "Unknown");
    snprintf(text, sizeof(text), "%lld", (long long)sqlite3_column_int64(q, 3));
    out_add_str(e, "KeyVersionId", text);
    return e;
}

int doctor_check_sealed(sqlite3 *db, json_object *checks, json_object *facts)
{
    json_object *missing = json_object_new_array();
    json_object_object_add(facts, "MissingSealedMaterial", missing);
    /* Before schema 7 there are no SOFTWARE keys. */
    if (!doctor_table_exists(db, "cmk_sealed"))
        return doctor_add_check(checks, "sealed", "ok", "no SOFTWARE keys (schema without them)");
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, missing_sql, -1, &q, NULL) != SQLITE_OK)
        return doctor_add_check(checks, "sealed", "error", "cannot read the sealed material: %s",
                                sqlite3_errmsg(db));
    sqlite3_bind_int64(q, 1, (sqlite3_int64)CMK_PROTECTION_SOFTWARE);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)CMK_STATE_CREATING);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)CMK_STATE_PENDING_IMPORT);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        json_object_array_add(missing, missing_sealed_json(q));
    sqlite3_finalize(q);
    if (step != SQLITE_DONE)
        return doctor_add_check(checks, "sealed", "error", "cannot read the sealed material: %s",
                                sqlite3_errmsg(db));
    size_t n = json_object_array_length(missing);
    if (n)
        return doctor_add_check(checks, "sealed", "error",
                                "%zu versions of SOFTWARE keys have no sealed material row in the "
                                "store (table cmk_sealed): they cannot be used (see "
                                "MissingSealedMaterial)",
                                n);
    return doctor_add_check(checks, "sealed", "ok",
                            "every version of every SOFTWARE key has its sealed material");
}
