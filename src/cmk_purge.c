/* cmk_purge.c - the end of a key's life: material and row destroyed together. */
#include <stdio.h>
#include <stdlib.h>

#include "cmk.h"
#include "cmk_import.h"
#include "cmkp11/cmkp11.h"
#include "log.h"
#include "module.h"
#include "util.h"

/* Material first, row last: if we die between the two, the row is still due and the
 * next purge finds no material left and removes it. The reverse order could orphan
 * material that no row names. */
static void purge_one(CK_SESSION_HANDLE session, const struct cmk_record *rec, const char *why)
{
    for (unsigned long v = 1; v <= rec->primary_version; v++)
        cmk_destroy_material(session, rec->key_id, v);
    cmk_import_forget(session, rec->key_id);
    util_crash_point("purge:after-material");
    if (store_begin(module.store) != STORE_OK) return;
    enum store_status s = store_cmk_delete(module.store, rec->row);
    if (s == STORE_OK) s = store_audit(module.store, "DeleteKey", rec->key_id, why);
    if (s == STORE_OK) s = store_commit(module.store);
    else store_rollback(module.store);
    if (s == STORE_OK) {
        cmk_cache_forget(rec->row);
        log_info("key %s: destroyed (%s)", rec->key_id, why);
    }
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
        struct cmk_record rec;
        if (store_cmk_get(module.store, m[i].row, &rec) != STORE_OK) continue;
        if (rec.state == CMK_STATE_PENDING_DELETION && rec.deletion_date <= now)
            purge_one(session, &rec, "pending window elapsed");
        cmk_record_free(&rec);
    }
    free(m);
}

CK_RV cmk_destroy_now(CK_SESSION_HANDLE session, const struct cmk_record *rec)
{
    purge_one(session, rec, "destroyed at once (policy allow_immediate_destroy)");
    return CKR_OK;
}
