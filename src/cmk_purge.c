/* cmk_purge.c - the end of a key's life: material and row destroyed together. */
#include <stdio.h>
#include <stdlib.h>

#include "cmk.h"
#include "cmk_import.h"
#include "cmkp11/cmkp11.h"
#include "log.h"
#include "module.h"
#include "soft_key.h"
#include "util.h"

/* Whether a row read under the write lock is still to be destroyed. */
typedef bool (*purge_check)(const struct cmk_record *rec, int64_t now);

static bool past_window(const struct cmk_record *rec, int64_t now)
{
    return rec->state == CMK_STATE_PENDING_DELETION && rec->deletion_date <= now;
}

/* The row is read again and the material destroyed inside one write transaction, so a
 * cancel committed by another process after our search is seen (and the key kept), and
 * none can slip in while the material goes. Material first, row last: if we die between
 * the two, the transaction is gone, the row is still due, and the next purge finds no
 * material left and removes it. The reverse order could orphan material that no row
 * names. Backend calls under the store lock are safe: the token lock is never held
 * while the store is called. */
static CK_RV purge_one(CK_SESSION_HANDLE session, int64_t row, purge_check still_due,
                       const char *why)
{
    if (store_begin(module.store) != STORE_OK) return CKR_DEVICE_ERROR;
    struct cmk_record rec;
    enum store_status s = store_cmk_get(module.store, row, &rec);
    if (s != STORE_OK) {
        store_rollback(module.store);
        return s == STORE_NOT_FOUND ? CKR_OBJECT_HANDLE_INVALID : CKR_DEVICE_ERROR;
    }
    if (!still_due(&rec, util_now())) {
        log_info("key %s: no longer due for destruction (state %lu): kept", rec.key_id,
                 rec.state);
        store_rollback(module.store);
        cmk_record_free(&rec);
        return CKR_OK;
    }
    for (unsigned long v = 1; v <= rec.primary_version; v++)
        cmk_destroy_material(session, rec.key_id, v);
    /* A dead rotation's half-made version would outlive the row that names it. A live
     * rotator's is left to it: it finds its claim gone and destroys what it made. */
    if (rec.rotating_to > rec.primary_version && !cmk_rotation_under_way(&rec))
        cmk_destroy_material(session, rec.key_id, rec.rotating_to);
    cmk_import_forget(session, rec.key_id);
    util_crash_point("purge:after-material");
    if (rec.protection == CMK_PROTECTION_SOFTWARE) s = store_sealed_delete(module.store, rec.row);
    if (s == STORE_OK) s = store_cmk_delete(module.store, rec.row);
    if (s == STORE_OK) s = store_audit(module.store, "DeleteKey", rec.key_id, why);
    if (s == STORE_OK) s = store_commit(module.store);
    else store_rollback(module.store);
    if (s == STORE_OK) {
        cmk_cache_forget(rec.row);
        soft_key_forget(rec.row);
        log_info("key %s: destroyed (%s)", rec.key_id, why);
    }
    cmk_record_free(&rec);
    return s == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

void cmk_purge_due(CK_SESSION_HANDLE session)
{
    struct store_filter f;
    store_filter_init(&f);
    f.state = CMK_STATE_PENDING_DELETION;
    struct store_match *m = NULL;
    size_t n = 0;
    if (store_cmk_find(module.store, &f, &m, &n) != STORE_OK) return;
    int64_t now = util_now();
    for (size_t i = 0; i < n; i++) {
        /* A cheap look first; only keys that seem due take the write lock. */
        struct cmk_record rec;
        if (store_cmk_get(module.store, m[i].row, &rec) != STORE_OK) continue;
        bool due = past_window(&rec, now);
        cmk_record_free(&rec);
        if (due) purge_one(session, m[i].row, past_window, "pending window elapsed");
    }
    free(m);
}

CK_RV cmk_destroy_now(CK_SESSION_HANDLE session, int64_t row)
{
    return purge_one(session, row, past_window,
                     "destroyed at once (policy allow_immediate_destroy)");
}
