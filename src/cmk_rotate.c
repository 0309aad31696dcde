/* cmk_rotate.c - key versions: on-demand and automatic rotation.
 *
 * A rotation makes new material in the backend and then, in one store transaction,
 * makes it the primary version. Before generating, the process claims the rotation in
 * the row (rotating_to, with its pid and start time): other processes that notice the
 * same due key see the claim and leave it, so a due key rotates exactly once. A claim
 * left by a dead process is undone by recovery (its half-made material destroyed).
 *
 * The claim rule: a claim is matched by its owner (pid and start time) and version,
 * never by version alone. Only the owner promotes or releases it. Recovery takes a dead
 * owner's claim over (store_claim_move: one write transaction that matches the dead
 * owner it saw and makes this process the owner) before it destroys anything, so of
 * several recoveries one undoes it, and one that read the row before the claim was undone
 * or taken anew by a live rotator does nothing. While a process owns the claim for
 * version v (> the primary), nobody else may make v: what carries v's identity is the
 * owner's to destroy. A rotation that finds its claim gone destroys only the object its
 * own C_GenerateKey made, by that handle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmk.h"
#include "cmk_create.h"
#include "cmk_material_attrs.h"
#include "cmkp11/cmkp11.h"
#include "keyspec.h"
#include "log.h"
#include "module.h"
#include "sm_backend_map.h"
#include "soft_key.h"
#include "template.h"
#include "util.h"

static const CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

/* This process as the owner of a claim: its pid and its start time (a later process
 * given the same pid has another start time). */
static void claim_owner(long *pid, int64_t *start)
{
    *pid = (long)getpid();
    *start = util_process_start(getpid());
}

static bool claim_is(const struct cmk_record *rec, unsigned long version, long pid, int64_t start)
{
    return rec->rotating_to == version && version != 0 && rec->rotating_pid == pid &&
           rec->rotating_start == start;
}

bool cmk_rotation_under_way(const struct cmk_record *rec)
{
    return rec->rotating_to && util_process_alive(rec->rotating_pid, rec->rotating_start);
}

/* Symmetric encryption keys of KMS origin only, as the clouds rule: an HMAC key's
 * tags could not be verified after a rotation (MAC verify has no fallback to older
 * versions), and imported material cannot be made anew. */
static bool can_rotate(const struct cmk_record *rec)
{
    return keyspec_is_cipher_key(rec->key_type) && rec->origin == CMK_ORIGIN_KMS;
}

/* Step 1: under the write lock, check the rules and claim version primary + 1.
 * Returns CKR_OK with *version set, or CKR_OK with *version 0 when there is nothing to
 * do (automatic, not due or already being rotated elsewhere). */
static CK_RV claim(int64_t row, bool automatic, unsigned long *version, struct cmk_record *rec)
{
    *version = 0;
    if (store_begin(module.store) != STORE_OK) return CKR_DEVICE_ERROR;
    CK_RV rv = CKR_OK;
    enum store_status s = store_cmk_get(module.store, row, rec);
    if (s != STORE_OK) {
        store_rollback(module.store);
        return s == STORE_NOT_FOUND ? CKR_KEY_HANDLE_INVALID : CKR_DEVICE_ERROR;
    }
    int64_t now = util_now();
    if (automatic) {
        bool due = rec->rotation_enabled && rec->state == CMK_STATE_ENABLED &&
                   rec->next_rotation > 0 && rec->next_rotation <= now && can_rotate(rec);
        if (!due || cmk_rotation_under_way(rec)) goto done; /* nothing to do, or someone is on it */
    } else if (!can_rotate(rec)) {
        log_warning("RotateKey: key %s: only symmetric keys of KMS origin rotate (key spec %s)",
                    rec->key_id, rec->key_spec);
        rv = CKR_ACTION_PROHIBITED;
        goto done;
    } else if (rec->state != CMK_STATE_ENABLED) {
        log_warning("RotateKey: key %s: only Enabled keys rotate", rec->key_id);
        rv = CKR_ACTION_PROHIBITED;
        goto done;
    } else if (cmk_rotation_under_way(rec)) {
        log_warning("RotateKey: key %s: another process (pid %ld) is rotating it now", rec->key_id,
                    rec->rotating_pid);
        rv = CKR_FUNCTION_FAILED;
        goto done;
    }
    rec->rotating_to = rec->primary_version + 1;
    claim_owner(&rec->rotating_pid, &rec->rotating_start);
    if (store_cmk_update(module.store, rec) != STORE_OK) {
        rv = CKR_DEVICE_ERROR;
        goto done;
    }
    if (store_commit(module.store) != STORE_OK) return CKR_DEVICE_ERROR;
    *version = rec->rotating_to;
    return CKR_OK;
done:
    store_rollback(module.store);
    return rv;
}

/* Step 2: the material, with the same spec and usage as version 1; *made is the object
 * made (CK_INVALID_HANDLE when none, or for a SOFTWARE key, sealed in the store). */
static CK_RV generate_version(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                              unsigned long version, CK_OBJECT_HANDLE *made)
{
    *made = CK_INVALID_HANDLE;
    if (rec->protection == CMK_PROTECTION_SOFTWARE) /* a sealed row left by a crash is replaced */
        return soft_key_make(session, rec->row, rec->key_id, version,
                             keyspec_secret_bytes(rec->key_spec));
    unsigned char bid[CMK_BACKEND_ID_LEN];
    char label[80];
    cmk_backend_id(rec->key_id, version, bid);
    snprintf(label, sizeof(label), CMK_BACKEND_LABEL_PREFIX "%s/v%lu", rec->key_id, version);
    CK_ULONG len = keyspec_secret_bytes(rec->key_spec);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = rec->key_type;
    bool mac = rec->key_type == CKK_GENERIC_SECRET;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_TOKEN, (void *)&ck_true, 1},
        /* As the key's first version: public only when its template asked so. */
        {CKA_PRIVATE, (void *)((rec->private_mask & CMK_OBJ_SECRET) ? &ck_true : &ck_false), 1},
        {CKA_SENSITIVE, (void *)&ck_true, 1},
        {CKA_EXTRACTABLE, (void *)&ck_false, 1},
        {CKA_ENCRYPT, (void *)(mac ? &ck_false : &ck_true), 1},
        {CKA_DECRYPT, (void *)(mac ? &ck_false : &ck_true), 1},
        {CKA_SIGN, (void *)(mac ? &ck_true : &ck_false), 1},
        {CKA_VERIFY, (void *)(mac ? &ck_true : &ck_false), 1},
        {CKA_DERIVE, (void *)&ck_false, 1},
        {CKA_ID, bid, sizeof(bid)},
        {CKA_LABEL, label, (CK_ULONG)strlen(label)},
    };
    CK_MECHANISM mech = {mac ? CKM_GENERIC_SECRET_KEY_GEN : CKM_AES_KEY_GEN, NULL, 0};
    /* An SM4 key at level HSM: the backend's own key type (t points at type) and generation. */
    if (sm_map_is_sm_key(type) && !sm_map_keygen(type, &type, &mech.mechanism))
        return CKR_MECHANISM_INVALID;
    /* The usage flags and dates the key has now (set at CreateKey or since) carry over.
     * Unread, the rotation fails: the defaults could allow what the key was kept from. */
    struct tmpl_builder b;
    tmpl_init(&b);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        tmpl_set(&b, t[i].type, t[i].pValue, t[i].ulValueLen);
    struct cmk_inherited inherited;
    cmk_cache_forget(rec->row); /* the primary read with the claim, not an older cached one */
    CK_RV rv = cmk_material_read_inherited(session, rec, rec->primary_version, &inherited);
    if (rv != CKR_OK) {
        log_error("RotateKey: key %s: could not read version %lu's usage flags (0x%lx); not "
                  "rotated",
                  rec->key_id, rec->primary_version, rv);
        tmpl_free(&b);
        return rv;
    }
    for (CK_ULONG i = 0; i < inherited.count; i++)
        tmpl_set(&b, inherited.attrs[i].type, inherited.attrs[i].pValue,
                 inherited.attrs[i].ulValueLen);
    if (b.failed) {
        tmpl_free(&b);
        return CKR_HOST_MEMORY;
    }
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    /* Material a crashed attempt left under this identity would make two objects. We own
     * the claim for this version, so nothing under its identity is a live process's. */
    cmk_destroy_material(session, rec->key_id, version);
    for (int attempt = 0; attempt < CMK_CREATE_ATTEMPTS; attempt++) {
        MODULE_UNDER_TOKEN_LOCK(rv, module.be.fn->C_GenerateKey(session, &mech, b.attrs, b.count, &h));
        if (!cmk_create_should_retry(session, rv, rec->key_id, version, attempt)) break;
    }
    tmpl_free(&b);
    if (rv == CKR_OK) *made = h;
    return rv;
}

/* Step 3: the new version becomes primary, with its version row and audit, at once. */
static CK_RV promote(int64_t row, unsigned long version, bool automatic)
{
    long me;
    int64_t my_start;
    claim_owner(&me, &my_start);
    if (store_begin(module.store) != STORE_OK) return CKR_DEVICE_ERROR;
    struct cmk_record rec;
    enum store_status s = store_cmk_get(module.store, row, &rec);
    if (s == STORE_OK && !claim_is(&rec, version, me, my_start)) {
        /* Our version number in another's claim is not ours to promote. */
        log_error("RotateKey: key %s: this process no longer holds the claim on version %lu",
                  rec.key_id, version);
        cmk_record_free(&rec);
        s = STORE_NOT_FOUND;
    }
    if (s == STORE_OK) {
        int64_t now = util_now();
        unsigned long from = rec.primary_version;
        rec.primary_version = version;
        rec.rotating_to = 0;
        rec.rotating_pid = 0;
        rec.rotating_start = 0;
        rec.last_rotation = now;
        /* The schedule's anchor is the last automatic rotation; on demand leaves it. */
        if (automatic) rec.next_rotation = now + rec.rotation_interval;
        s = store_cmk_update(module.store, &rec);
        if (s == STORE_OK)
            s = store_version_insert(module.store, row, version, now,
                                     automatic ? "automatic" : "on-demand");
        char detail[96];
        snprintf(detail, sizeof(detail), "primary version: %lu -> %lu (%s)", from, version,
                 automatic ? "automatic" : "on demand");
        if (s == STORE_OK) s = store_audit(module.store, "RotateKey", rec.key_id, detail);
        if (s == STORE_OK) log_info("RotateKey: key %s: %s", rec.key_id, detail);
        cmk_record_free(&rec);
    }
    if (s != STORE_OK) {
        store_rollback(module.store);
        return CKR_DEVICE_ERROR;
    }
    cmk_cache_forget(row);
    return store_commit(module.store) == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

/* A rotation that failed undoes what it made. While the claim is still this process's,
 * nobody else may make this version, so whatever carries its identity is ours (an
 * attempt the backend failed may have left an object too): it goes, and then the claim
 * is released, matched by owner. A rotation that finds its claim gone (the key purged
 * meanwhile; or taken over, which the owner check keeps from a live process) may share
 * the version number with another process's attempt: it destroys only the object its own
 * C_GenerateKey made, by the handle it got. */
static void give_up(CK_SESSION_HANDLE session, const struct cmk_record *rec, unsigned long version,
                    CK_OBJECT_HANDLE made)
{
    long me;
    int64_t my_start;
    claim_owner(&me, &my_start);
    struct cmk_record cur = {0};
    /* No lock needed: a live owner's claim moves only by the owner's own hand. */
    bool ours = store_cmk_get(module.store, rec->row, &cur) == STORE_OK &&
                claim_is(&cur, version, me, my_start);
    cmk_record_free(&cur);
    if (!ours) {
        if (made != CK_INVALID_HANDLE) module_backend_destroy_own(session, &made, 1);
        return;
    }
    if (!cmk_destroy_material(session, rec->key_id, version)) {
        /* Keeping the claim keeps others from the version; recovery ends it after us. */
        log_error("RotateKey: key %s: version %lu's material could not be destroyed; its "
                  "claim stays until this process ends",
                  rec->key_id, version);
        return;
    }
    if (store_claim_move(module.store, STORE_CLAIM_ROTATION, rec->row, version, me, my_start, 0,
                         0) != STORE_OK)
        log_error("RotateKey: key %s: the claim on version %lu could not be released; it is "
                  "recovered after this process ends",
                  rec->key_id, version);
}

CK_RV cmk_rotate(CK_SESSION_HANDLE session, int64_t row, bool automatic)
{
    struct cmk_record rec;
    unsigned long version = 0;
    CK_RV rv = claim(row, automatic, &version, &rec);
    if (rv != CKR_OK || version == 0) {
        if (rv == CKR_OK || rv == CKR_ACTION_PROHIBITED || rv == CKR_FUNCTION_FAILED)
            cmk_record_free(&rec);
        return rv;
    }
    util_crash_point("rotate:after-claim");
    CK_OBJECT_HANDLE made;
    rv = generate_version(session, &rec, version, &made);
    if (rv == CKR_OK) {
        util_crash_point("rotate:after-generate");
        util_pause_point("rotate:before-promote");
        rv = promote(row, version, automatic);
    }
    if (rv != CKR_OK) {
        log_warning("RotateKey: key %s: making version %lu failed: 0x%lx", rec.key_id, version, rv);
        give_up(session, &rec, version, made);
    }
    cmk_record_free(&rec);
    return rv;
}

void cmk_rotate_due(CK_SESSION_HANDLE session)
{
    struct store_filter f;
    store_filter_init(&f);
    f.state = CMK_STATE_ENABLED;
    f.due_before = util_now();
    struct store_match *m = NULL;
    size_t n = 0;
    if (store_cmk_find(module.store, &f, &m, &n) != STORE_OK) return;
    for (size_t i = 0; i < n; i++)
        cmk_rotate(session, m[i].row, true);
    free(m);
}

/* Undoes one dead rotation (the claim rule above): taken over, material destroyed, then
 * released and audited in one transaction that matches this process as the owner, so the
 * undo is audited once. Dying half-way leaves the claim to a dead owner (this process):
 * the next recovery takes it over in turn. */
static void recover_rotation(CK_SESSION_HANDLE session, const struct cmk_record *seen)
{
    long me;
    int64_t my_start;
    claim_owner(&me, &my_start);
    unsigned long version = seen->rotating_to;
    if (store_claim_move(module.store, STORE_CLAIM_ROTATION, seen->row, version, seen->rotating_pid,
                         seen->rotating_start, me, my_start) != STORE_OK)
        return; /* undone, being undone, or claimed anew by a live rotator */
    util_crash_point("recover-rotate:taken");
    util_pause_point("recover-rotate:taken");
    if (!cmk_destroy_material(session, seen->key_id, version)) {
        log_error("recovery: key %s: version %lu left by a dead rotation could not be "
                  "destroyed; the next recovery after this process ends tries again",
                  seen->key_id, version);
        return;
    }
    cmk_cache_forget(seen->row);
    if (store_begin(module.store) != STORE_OK) return;
    enum store_status s = store_claim_move(module.store, STORE_CLAIM_ROTATION, seen->row, version,
                                           me, my_start, 0, 0);
    char detail[128];
    snprintf(detail, sizeof(detail), "rotating process %ld died; half-made version %lu removed",
             seen->rotating_pid, version);
    if (s == STORE_OK) s = store_audit(module.store, "RecoverRotateKey", seen->key_id, detail);
    if (s == STORE_OK)
        s = store_commit(module.store);
    else
        store_rollback(module.store);
    if (s == STORE_OK)
        log_warning("recovery: key %s: removed version %lu left by a dead rotation (process %ld)",
                    seen->key_id, version, seen->rotating_pid);
}

void cmk_recover_rotations(CK_SESSION_HANDLE session)
{
    struct store_filter f;
    store_filter_init(&f);
    f.rotating = true;
    f.include_pending_deletion = true;
    struct store_match *m = NULL;
    size_t n = 0;
    if (store_cmk_find(module.store, &f, &m, &n) != STORE_OK) return;
    for (size_t i = 0; i < n; i++) {
        struct cmk_record rec;
        if (store_cmk_get(module.store, m[i].row, &rec) != STORE_OK) continue;
        /* A look without the lock: only a claim that seems dead is taken over. */
        if (rec.rotating_to && !cmk_rotation_under_way(&rec)) {
            util_pause_point("recover-rotate:read");
            recover_rotation(session, &rec);
        }
        cmk_record_free(&rec);
    }
    free(m);
}
