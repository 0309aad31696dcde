/* import_store.c - the import's store transactions: parameters recorded, the importing
 * claim, the import committed, each audited. */
#include "import_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Ends an import step's transaction: the audit row, then commit (or rollback when any
 * step failed); the cache forgets the key either way. */
CK_RV import_audit_and_commit(enum store_status s, int64_t row, const char *action,
                              const char *key_id, const char *detail)
{
    if (s == STORE_OK) s = store_audit(module.store, action, key_id, detail);
    if (s == STORE_OK)
        s = store_commit(module.store);
    else
        store_rollback(module.store);
    cmk_cache_forget(row);
    return s == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

/* Records whether the key's material is in the backend (inside the caller's transaction). */
enum store_status import_mark_material(int64_t row, bool has)
{
    struct store_import imp;
    enum store_status s = store_import_get(module.store, row, &imp);
    if (s == STORE_NOT_FOUND) s = STORE_OK;
    imp.has_material = has;
    if (s == STORE_OK) s = store_import_put(module.store, row, &imp);
    store_import_free(&imp);
    return s;
}

/* Records the parameters (replacing any earlier ones) and audits, at once. */
CK_RV import_record_parameters(const struct cmk_record *rec, const struct import_token *f,
                               unsigned char *token, unsigned char *spki, size_t spki_len,
                               unsigned char replaced[IMPORT_WRAP_ID_LEN], bool *had)
{
    struct store_import imp;
    *had = false;
    enum store_status s = store_begin(module.store);
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    s = store_import_get(module.store, rec->row, &imp);
    if (s == STORE_NOT_FOUND) s = STORE_OK;
    if (s == STORE_OK) {
        if (imp.wrap_id && imp.wrap_id_len == IMPORT_WRAP_ID_LEN) {
            memcpy(replaced, imp.wrap_id, IMPORT_WRAP_ID_LEN);
            *had = true;
        }
        free(imp.wrap_id);
        free(imp.token);
        free(imp.spki);
        imp.wrap_id = (unsigned char *)f->wrap_id;
        imp.wrap_id_len = IMPORT_WRAP_ID_LEN;
        imp.token = token;
        imp.token_len = IMPORT_TOKEN_LEN;
        imp.spki = spki;
        imp.spki_len = spki_len;
        imp.wrap_alg = f->alg;
        imp.wrap_bits = f->bits;
        imp.valid_to = f->valid_to;
        s = store_import_put(module.store, rec->row, &imp);
        imp.wrap_id = imp.token = imp.spki = NULL;
        store_import_free(&imp);
    }
    char detail[128];
    snprintf(detail, sizeof(detail), "wrapping=%s RSA_%lu valid_to=%lld", import_alg_name(f->alg),
             f->bits, (long long)f->valid_to);
    return import_audit_and_commit(s, rec->row, "GetParametersForImport", rec->key_id, detail);
}

bool import_params_current(const struct store_import *imp, const unsigned char *wrap_id)
{
    return imp->wrap_id && imp->wrap_id_len == IMPORT_WRAP_ID_LEN &&
           !memcmp(imp->wrap_id, wrap_id, IMPORT_WRAP_ID_LEN);
}

/* After a failed step: were the import parameters used up or replaced meanwhile? An import
 * that won destroys the wrapping pair another may be using at that moment, and the backend
 * then fails in ways of its own (a handle gone, a general error); the client should hear
 * the one reason that counts, as it does when it comes second to the claim or the commit. */
bool import_token_used_meanwhile(const struct cmk_record *rec, const unsigned char *wrap_id)
{
    struct store_import imp;
    enum store_status s = store_import_get(module.store, rec->row, &imp);
    if (s != STORE_OK) return s == STORE_NOT_FOUND;
    bool used = !import_params_current(&imp, wrap_id);
    store_import_free(&imp);
    return used;
}

/* How long an import waits for another one of the same key to end (the store's busy
 * timeout), and how often it looks. */
#define CLAIM_WAIT_MS 10000
#define CLAIM_POLL_MS 20

/* One attempt at the claim (wrap_id: the token's wrapping pair) or its release (NULL).
 * *busy when a live process holds it. */
static CK_RV claim_once(const struct cmk_record *rec, const unsigned char *wrap_id, bool *busy)
{
    static const char op[] = "ImportKeyMaterial";
    *busy = false;
    enum store_status s = store_begin(module.store);
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    struct cmk_record cur;
    struct store_import imp;
    CK_RV rv = CKR_OK;
    s = store_cmk_get(module.store, rec->row, &cur);
    if (s != STORE_OK) {
        store_rollback(module.store);
        return s == STORE_NOT_FOUND ? CKR_KEY_HANDLE_INVALID : CKR_DEVICE_ERROR;
    }
    s = store_import_get(module.store, rec->row, &imp);
    if (s == STORE_NOT_FOUND) s = STORE_OK;
    if (wrap_id && s == STORE_OK) {
        *busy = util_process_alive(imp.importing_pid, imp.importing_start);
        if (*busy) {
            rv = CKR_FUNCTION_FAILED;
        } else if (cur.state == CMK_STATE_PENDING_DELETION) {
            log_warning("%s: key %s was scheduled for deletion meanwhile", op, rec->key_id);
            rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
        } else if (cur.state != CMK_STATE_PENDING_IMPORT || !import_params_current(&imp, wrap_id)) {
            log_warning("%s: key %s: CKA_CMK_IMPORT_TOKEN was used by another import meanwhile "
                        "(or replaced by newer parameters)",
                        op, rec->key_id);
            rv = CKR_ATTRIBUTE_VALUE_INVALID;
        }
        imp.importing_pid = (long)getpid();
        imp.importing_start = util_process_start(getpid());
    } else {
        imp.importing_pid = 0;
        imp.importing_start = 0;
    }
    if (s == STORE_OK && rv == CKR_OK) s = store_import_put(module.store, rec->row, &imp);
    store_import_free(&imp);
    cmk_record_free(&cur);
    if (s != STORE_OK || rv != CKR_OK) {
        store_rollback(module.store);
        return rv != CKR_OK ? rv : CKR_DEVICE_ERROR;
    }
    return store_commit(module.store) == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

/* Claims the key for an import into its material identity (wrap_id: the token's wrapping
 * pair, which must still be outstanding), or releases the claim (NULL). Another live
 * import of the key is waited for, so that of two imports at once the second learns the
 * first one's outcome: the token used up, or the key free again. */
CK_RV import_set_claim(const struct cmk_record *rec, const unsigned char *wrap_id)
{
    bool busy = false;
    for (int waited = 0;; waited += CLAIM_POLL_MS) {
        CK_RV rv = claim_once(rec, wrap_id, &busy);
        if (!busy) return rv;
        if (waited >= CLAIM_WAIT_MS) break;
        usleep(CLAIM_POLL_MS * 1000);
    }
    log_warning("ImportKeyMaterial: key %s: another import of it has been under way for %d s; "
                "try again",
                rec->key_id, CLAIM_WAIT_MS / 1000);
    return CKR_FUNCTION_FAILED;
}

/* Makes the import permanent: state, expiry, fingerprint, public key, parameters used up,
 * claim released, audit, in one transaction. */
CK_RV import_commit(const struct cmk_record *rec, const struct import_request *req,
                    const struct import_facts *mf, bool first)
{
    enum store_status s = store_begin(module.store);
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    struct cmk_record cur;
    struct store_import imp;
    s = store_cmk_get(module.store, rec->row, &cur);
    if (s != STORE_OK) {
        store_rollback(module.store);
        return CKR_DEVICE_ERROR;
    }
    /* Checked again inside the transaction: of two imports with one token, one commits. */
    s = store_import_get(module.store, rec->row, &imp);
    bool current = s == STORE_OK && import_params_current(&imp, req->wrap_id);
    store_import_free(&imp);
    if (!current) {
        store_rollback(module.store);
        cmk_record_free(&cur);
        if (s != STORE_OK && s != STORE_NOT_FOUND) return CKR_DEVICE_ERROR;
        log_warning("ImportKeyMaterial: key %s: CKA_CMK_IMPORT_TOKEN was used by another import "
                    "meanwhile",
                    rec->key_id);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    unsigned long from = cur.state;
    if (cur.state == CMK_STATE_PENDING_IMPORT) cur.state = CMK_STATE_ENABLED;
    s = store_cmk_update(module.store, &cur);
    if (s == STORE_OK) s = store_cmk_set_material_expires(module.store, cur.row, req->expires);
    if (s == STORE_OK && !(rec->objects & CMK_OBJ_SECRET))
        s = store_cmk_set_public(module.store, cur.row, mf->fp, mf->fp_len, mf->ec_point,
                                 mf->ec_point_len);
    if (s == STORE_OK) {
        s = store_import_get(module.store, cur.row, &imp);
        if (s == STORE_OK && !imp.fingerprint) {
            imp.fingerprint = malloc(mf->fp_len);
            if (!imp.fingerprint)
                s = STORE_ERROR;
            else
                memcpy(imp.fingerprint, mf->fp, mf->fp_len), imp.fingerprint_len = mf->fp_len;
        }
        if (s == STORE_OK) {
            free(imp.wrap_id), imp.wrap_id = NULL;
            free(imp.token), imp.token = NULL;
            free(imp.spki), imp.spki = NULL;
            imp.wrap_alg = imp.wrap_bits = 0;
            imp.valid_to = 0;
            imp.importing_pid = 0;
            imp.importing_start = 0;
            imp.has_material = true;
            s = store_import_put(module.store, cur.row, &imp);
        }
        store_import_free(&imp);
    }
    char detail[160];
    snprintf(detail, sizeof(detail), "wrapping=%s %s; expires=%lld; state: %s",
             import_alg_name(req->alg), first ? "first import" : "same material as before",
             (long long)req->expires, from == cur.state ? "unchanged" : "PendingImport -> Enabled");
    cmk_record_free(&cur);
    return import_audit_and_commit(s, rec->row, "ImportKeyMaterial", rec->key_id, detail);
}
