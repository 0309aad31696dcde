/* import_expiry.c - the end of imported material: expiry (at login),
 * DeleteImportedKeyMaterial, and the undoing of imports whose process died half-way. */
#include "import_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void cmk_import_recover(CK_SESSION_HANDLE session)
{
    int64_t *rows = NULL;
    size_t n = 0;
    if (store_import_rows(module.store, true, 0, &rows, &n) != STORE_OK) return;
    for (size_t i = 0; i < n; i++) {
        struct cmk_record rec;
        struct store_import imp;
        if (store_cmk_get(module.store, rows[i], &rec) != STORE_OK) continue;
        if (store_import_get(module.store, rows[i], &imp) == STORE_OK &&
            !util_process_alive(imp.importing_pid, imp.importing_start)) {
            if (rec.state == CMK_STATE_PENDING_IMPORT && import_is_soft(&rec))
                import_soft_drop(&rec);
            else if (rec.state == CMK_STATE_PENDING_IMPORT)
                cmk_destroy_material(session, rec.key_id, 1);
            if (import_set_claim(&rec, NULL) == CKR_OK) {
                store_audit(module.store, "RecoverImportKeyMaterial", rec.key_id,
                            "importer died mid-import; its material removed");
                log_warning("recovery: undid the import into key %s left by process %ld",
                            rec.key_id, imp.importing_pid);
            }
        }
        store_import_free(&imp);
        cmk_record_free(&rec);
    }
    free(rows);
}
