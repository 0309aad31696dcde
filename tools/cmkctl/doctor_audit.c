/* doctor_audit.c - the audit is a hash chain (src/audit_chain.h): each row names the hash
 * of the row before it and hashes its own content with it. A row edited since it was
 * written, or a row removed from between two others (or rows reordered), breaks it there. */
#include <string.h>

#include "audit_chain.h"
#include "doctor.h"

int doctor_check_audit(sqlite3 *db, json_object *checks)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, time, pid, uid, action, key_id, detail, prev_hash, hash "
                           "FROM audit ORDER BY id",
                           -1, &q, NULL) != SQLITE_OK)
        return doctor_add_check(checks, "audit", "error",
                                "the audit has no hash chain (a store older than schema 10 that "
                                "cmkp11 has not opened since?): %s",
                                sqlite3_errmsg(db));
    unsigned char running[AUDIT_HASH_LEN] = {0}, hash[AUDIT_HASH_LEN];
    long long rows = 0, bad_id = 0;
    const char *fault = NULL;
    int rc;
    while (!fault && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        rows++;
        long long id = sqlite3_column_int64(q, 0);
        const void *prev = sqlite3_column_blob(q, 7), *have = sqlite3_column_blob(q, 8);
        int ok = audit_chain_hash(NULL, running, sqlite3_column_int64(q, 1),
                                  sqlite3_column_int64(q, 2), sqlite3_column_int64(q, 3),
                                  (const char *)sqlite3_column_text(q, 4),
                                  (const char *)sqlite3_column_text(q, 5),
                                  (const char *)sqlite3_column_text(q, 6), hash) == 0;
        if (!have || sqlite3_column_bytes(q, 8) != AUDIT_HASH_LEN)
            fault = "has no hash";
        else if (!prev || sqlite3_column_bytes(q, 7) != AUDIT_HASH_LEN ||
                 memcmp(prev, running, AUDIT_HASH_LEN))
            fault = "does not follow the row before it (a row between was removed, or rows "
                    "were moved)";
        else if (!ok || memcmp(have, hash, AUDIT_HASH_LEN))
            fault = "no longer matches its hash (edited since it was written)";
        if (fault) bad_id = id;
        memcpy(running, have && sqlite3_column_bytes(q, 8) == AUDIT_HASH_LEN ? have : hash,
               AUDIT_HASH_LEN);
    }
    sqlite3_finalize(q);
    if (fault)
        return doctor_add_check(checks, "audit", "error", "audit row %lld %s", bad_id, fault);
    return doctor_add_check(checks, "audit", "ok", "%lld rows, each chained to the one before",
                            rows);
}
