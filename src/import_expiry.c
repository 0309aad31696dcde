/* import_expiry.c - the end of imported material: expiry (at login),
 * DeleteImportedKeyMaterial, and the undoing of imports whose process died half-way. */
#include "import_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Destroys a key's material and makes it PendingImport. Material first, row after: a crash
 * between leaves the expiry due, and the next run finds no material and ends the job. */
static void remove_material(CK_SESSION_HANDLE session, int64_t row, const char *action,
                            const char *why)
{
    struct cmk_record rec;
    if (store_cmk_get(module.store, row, &rec) != STORE_OK) return;
    if (rec.origin == CMK_ORIGIN_EXTERNAL && !import_is_soft(&rec))
        cmk_destroy_material(session, rec.key_id, 1);
    cmk_cache_forget(row);
    util_crash_point("import:after-material-removed");
    if (store_begin(module.store) != STORE_OK) goto out;
    struct cmk_record cur;
    enum store_status s = store_cmk_get(module.store, row, &cur);
    char detail[160] = "";
    if (s == STORE_OK) {
        unsigned long from = cur.state;
        if (cur.state == CMK_STATE_ENABLED || cur.state == CMK_STATE_DISABLED)
            cur.state = CMK_STATE_PENDING_IMPORT;
        s = store_cmk_update(module.store, &cur);
        if (s == STORE_OK) s = store_cmk_set_material_expires(module.store, row, 0);
        if (s == STORE_OK) s = import_mark_material(row, false);
        /* A SOFTWARE key's sealed material goes in the transaction that ends its state. */
        if (s == STORE_OK && import_is_soft(&rec)) s = import_soft_drop(&rec);
        snprintf(detail, sizeof(detail), "%s; material destroyed; state: %s", why,
                 from == cur.state ? "unchanged" : "-> PendingImport");
        cmk_record_free(&cur);
    }
    if (import_audit_and_commit(s, row, action, rec.key_id, detail) == CKR_OK)
        log_info("key %s: %s: imported material destroyed", rec.key_id, why);
out:
    cmk_record_free(&rec);
}

void cmk_import_expire_due(CK_SESSION_HANDLE session)
{
    int64_t *rows = NULL;
    size_t n = 0;
    if (store_import_rows(module.store, false, util_now(), &rows, &n) != STORE_OK) return;
    for (size_t i = 0; i < n; i++)
        remove_material(session, rows[i], "KeyMaterialExpired", "material expiry passed");
    free(rows);
}

CK_RV cmk_import_delete_material(CK_SESSION_HANDLE session, int64_t row)
{
    static const char op[] = "DeleteImportedKeyMaterial";
    struct cmk_record rec;
    enum store_status s = store_cmk_get(module.store, row, &rec);
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    CK_RV rv = CKR_OK;
    if (rec.origin != CMK_ORIGIN_EXTERNAL) {
        log_warning("%s: key %s is of KMS origin: it has no imported material", op, rec.key_id);
        rv = CKR_ACTION_PROHIBITED;
    } else if (rec.state != CMK_STATE_ENABLED && rec.state != CMK_STATE_DISABLED) {
        log_warning("%s: key %s has no material to delete (state PendingImport)", op, rec.key_id);
        rv = CKR_ACTION_PROHIBITED;
    } else if (store_cmk_set_material_expires(module.store, row, 1) != STORE_OK) {
        /* Expired from now on: every process refuses the key before the material goes. */
        rv = CKR_DEVICE_ERROR;
    } else {
        remove_material(session, row, op, "deleted on request");
    }
    cmk_record_free(&rec);
    return rv;
}

/* Undoes one dead import. The claim is first taken over (store_claim_move matches the
 * dead importer seen), so of recoveries that saw it one goes on, and one that read the
 * claim before it was undone, or before a later import made the key Enabled, does
 * nothing. Then, in one write transaction: the state is read again, the material goes
 * only if the key is still waiting for it (no commit can come between the read and the
 * destruction while we hold the write lock), the claim is released matched by owner, and
 * the undo audited: once. Dying half-way leaves the claim to a dead owner (this process),
 * and the next recovery takes it over in turn. */
static void recover_import(CK_SESSION_HANDLE session, int64_t row, long dead, int64_t dead_start)
{
    long me = (long)getpid();
    int64_t my_start = util_process_start(getpid());
    if (store_claim_move(module.store, STORE_CLAIM_IMPORT, row, 0, dead, dead_start, me,
                         my_start) != STORE_OK)
        return; /* undone, or being undone, by another process, or the import ended */
    util_crash_point("recover-import:taken");
    util_pause_point("recover-import:taken");
    if (store_begin(module.store) != STORE_OK) return;
    struct cmk_record rec = {0};
    enum store_status s = store_cmk_get(module.store, row, &rec);
    bool gone = true;
    if (s == STORE_OK && rec.state == CMK_STATE_PENDING_IMPORT) {
        /* A SOFTWARE key's sealed material goes in this transaction. */
        if (import_is_soft(&rec))
            s = import_soft_drop(&rec);
        else
            gone = cmk_destroy_material(session, rec.key_id, 1);
        if (s == STORE_OK) s = import_mark_material(row, false);
    }
    if (s == STORE_OK && !gone) s = STORE_ERROR; /* the claim stays: tried again later */
    if (s == STORE_OK)
        s = store_claim_move(module.store, STORE_CLAIM_IMPORT, row, 0, me, my_start, 0, 0);
    char detail[128];
    snprintf(detail, sizeof(detail), "importing process %ld died mid-import; %s", dead,
             rec.state == CMK_STATE_PENDING_IMPORT ? "its material removed"
                                                   : "the key no longer waits for it: kept");
    if (s == STORE_OK)
        s = store_audit(module.store, "RecoverImportKeyMaterial", rec.key_id, detail);
    if (s == STORE_OK)
        s = store_commit(module.store);
    else
        store_rollback(module.store);
    cmk_cache_forget(row);
    if (s == STORE_OK)
        log_warning("recovery: undid the import into key %s left by process %ld", rec.key_id, dead);
    else if (!gone)
        log_error("recovery: key %s: the material of a dead import could not be destroyed; the "
                  "next recovery after this process ends tries again",
                  rec.key_id);
    cmk_record_free(&rec);
}

void cmk_import_recover(CK_SESSION_HANDLE session)
{
    int64_t *rows = NULL;
    size_t n = 0;
    if (store_import_rows(module.store, true, 0, &rows, &n) != STORE_OK) return;
    for (size_t i = 0; i < n; i++) {
        struct store_import imp;
        /* A look without the lock: only a claim that seems dead is taken over. */
        if (store_import_get(module.store, rows[i], &imp) == STORE_OK && imp.importing_pid &&
            !util_process_alive(imp.importing_pid, imp.importing_start)) {
            util_pause_point("recover-import:read");
            recover_import(session, rows[i], imp.importing_pid, imp.importing_start);
        }
        store_import_free(&imp);
    }
    free(rows);
}
