/* cmk_create.c - CreateKey: C_GenerateKey(Pair) of a token key makes a CMK.
 *
 * Creation is one unit across two stores that share no transaction: the row is
 * written first in state Creating, the material is generated in the backend under
 * an identity derived from the key id, then the row turns Enabled. A crash between
 * the steps leaves a Creating row whose creator is dead: cmk_recover removes it and
 * any material carrying its identity. Clients never see Creating rows. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmk.h"
#include "cmk_create.h"
#include "cmk_import.h"
#include "cmk_request.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "keyspec.h"
#include "log.h"
#include "module.h"
#include "pubkey.h"
#include "sm_backend_map.h"
#include "soft_key.h"
#include "soft_pkey.h"
#include "template.h"
#include "util.h"
#include "validate.h"

static const CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

void cmk_backend_id(const char *key_id, unsigned long version,
                    unsigned char out[CMK_BACKEND_ID_LEN])
{
    memcpy(out, "CMK\x01", 4);
    util_uuid_bytes(key_id, out + 4);
    out[20] = (unsigned char)(version >> 24);
    out[21] = (unsigned char)(version >> 16);
    out[22] = (unsigned char)(version >> 8);
    out[23] = (unsigned char)version;
}

/* Rows of this process's refused CreateKeys that the store would not delete either: a
 * full disk refuses the delete as it refused the commit. Recovery leaves a live creator's
 * rows alone, so left to it such a row would hold its alias and its place in the quota
 * until this process ended. This process keeps them and removes them itself as soon as
 * the store takes writes again: before its next CreateKey and at its next housekeeping.
 * Should it die first, recovery finds a dead creator and removes them as any other. */
#define ABANDONED_MAX 64
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int64_t row;
    char key_id[37];
} abandoned[ABANDONED_MAX];
static size_t abandoned_count; /* under abandoned_lock */

void cmk_create_drop_row(const struct cmk_record *rec)
{
    if (store_cmk_delete(module.store, rec->row) == STORE_OK) return;
    pthread_mutex_lock(&abandoned_lock);
    bool kept = abandoned_count < ABANDONED_MAX;
    if (kept) {
        abandoned[abandoned_count].row = rec->row;
        memcpy(abandoned[abandoned_count].key_id, rec->key_id, sizeof(rec->key_id));
        abandoned_count++;
    }
    pthread_mutex_unlock(&abandoned_lock);
    log_warning("CreateKey: key %s: its Creating row could not be removed now; %s", rec->key_id,
                kept ? "it is removed as soon as the store takes writes again"
                     : "recovery removes it once this process has ended");
}

/* Tries the removals the store refused before; with a session, destroying first what may
 * carry the key's identity (a failure with the token gone could not). The list is copied
 * out: no lock of ours is held across the store and the backend. */
static void drop_abandoned(CK_SESSION_HANDLE session, bool with_session)
{
    pthread_mutex_lock(&abandoned_lock);
    size_t n = abandoned_count;
    int64_t rows[ABANDONED_MAX];
    char key_ids[ABANDONED_MAX][37];
    for (size_t i = 0; i < n; i++) {
        rows[i] = abandoned[i].row;
        memcpy(key_ids[i], abandoned[i].key_id, sizeof(key_ids[i]));
    }
    pthread_mutex_unlock(&abandoned_lock);
    for (size_t i = 0; i < n; i++) {
        if (with_session && !cmk_destroy_material(session, key_ids[i], 1)) continue;
        if (store_cmk_delete(module.store, rows[i]) != STORE_OK) continue;
        log_info("CreateKey: key %s: its refused creation's row is removed now", key_ids[i]);
        pthread_mutex_lock(&abandoned_lock);
        for (size_t j = 0; j < abandoned_count; j++)
            if (abandoned[j].row == rows[i]) {
                abandoned[j] = abandoned[--abandoned_count];
                break;
            }
        pthread_mutex_unlock(&abandoned_lock);
    }
}

CK_RV cmk_create_backend_failed(CK_SESSION_HANDLE session, CK_RV rv, struct cmk_record *rec,
                                const char *what, const char *spec)
{
    log_warning("%s %s: 0x%lx", what, spec, rv);
    if (!module_backend_token_present()) rv = CKR_DEVICE_REMOVED;
    /* An HSM may fail after it made the key: what carries this key's identity goes, or it
     * would stay behind owned by no row. */
    else
        cmk_destroy_material(session, rec->key_id, 1);
    cmk_create_drop_row(rec);
    return rv;
}

CK_RV cmk_create_store_rv(enum store_status s)
{
    switch (s) {
    case STORE_OK: return CKR_OK;
    case STORE_READ_ONLY: return CKR_TOKEN_WRITE_PROTECTED;
    case STORE_FULL: return CKR_DEVICE_MEMORY;
    case STORE_BUSY: return CKR_FUNCTION_FAILED;
    default: return CKR_DEVICE_ERROR;
    }
}

/* Writes the Creating row. The unique alias index makes concurrent creates of one
 * alias fail here, before any material exists. */
CK_RV cmk_create_insert_row(struct create_request *req, unsigned objects, struct cmk_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    /* An alias a refused CreateKey of ours still holds comes free first, if it can. */
    drop_abandoned(0, false);
    unsigned char id_bytes[16];
    if (util_uuid4(rec->key_id, id_bytes) != 0) return CKR_FUNCTION_FAILED;
    rec->alias = req->has_alias ? req->alias : NULL;
    rec->alias_if_free = req->alias_from_label;
    /* The record points into the request here; nothing of it is freed (see below). */
    rec->label = (unsigned char *)req->label;
    rec->label_len = req->label_len;
    rec->pub_label = (unsigned char *)req->pub_label;
    rec->pub_label_len = req->pub_label_len;
    rec->cka_id = req->has_cka_id ? (unsigned char *)req->cka_id : id_bytes;
    rec->cka_id_len = req->has_cka_id ? req->cka_id_len : 16;
    rec->pub_cka_id = req->has_cka_id ? (unsigned char *)req->pub_cka_id : id_bytes;
    rec->pub_cka_id_len = req->has_cka_id ? req->pub_cka_id_len : 16;
    char description[1] = "";
    rec->description = description;
    char *desc_copy = NULL;
    if (req->description_len) {
        desc_copy = strndup(req->description, req->description_len);
        if (!desc_copy) return CKR_HOST_MEMORY;
        rec->description = desc_copy;
    }
    snprintf(rec->key_spec, sizeof(rec->key_spec), "%s", req->spec.name);
    rec->key_type = req->spec.key_type;
    rec->usage = req->usage;
    rec->origin = req->origin;
    rec->protection = req->protection;
    rec->state = CMK_STATE_CREATING;
    rec->created = util_now();
    rec->creator_uid = (long)getuid();
    rec->creator_pid = (long)getpid();
    rec->creator_start = util_process_start(getpid());
    rec->rotation_enabled = req->rotation_enabled;
    rec->rotation_interval = req->rotation_interval;
    rec->next_rotation = req->rotation_enabled ? rec->created + req->rotation_interval : 0;
    rec->primary_version = 1;
    rec->objects = objects;
    rec->private_mask = (req->secret_private ? objects & (CMK_OBJ_SECRET | CMK_OBJ_PRIVATE) : 0) |
                        (req->public_private ? objects & CMK_OBJ_PUBLIC : 0);
    rec->tags = req->tags;
    rec->tag_count = req->tag_count;

    /* The quota is counted in the transaction that inserts: two creators at once cannot
     * both take the last place. */
    enum store_status s = store_begin(module.store);
    CK_RV quota = CKR_OK;
    if (s == STORE_OK) {
        quota = cmk_request_check_quota();
        if (quota == CKR_OK) s = store_cmk_insert(module.store, rec);
        if (quota == CKR_OK && s == STORE_OK)
            s = store_commit(module.store);
        else
            store_rollback(module.store);
    }
    free(desc_copy);
    if (s == STORE_OK && req->alias_from_label && !rec->alias) {
        log_info("CreateKey: key %s: its label '%s' is another key's alias; it has no alias",
                 rec->key_id, req->alias);
        req->has_alias = false;
    }
    rec->alias = NULL;
    rec->label = rec->pub_label = NULL;
    rec->cka_id = rec->pub_cka_id = NULL;
    rec->description = NULL;
    rec->tags = NULL;
    rec->tag_count = 0;
    if (quota != CKR_OK) return quota;
    if (s == STORE_ALIAS_EXISTS) {
        log_warning("CreateKey: CKA_CMK_ALIAS '%s' already exists on this token (aliases are "
                    "unique ignoring case)",
                    req->alias);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    return cmk_create_store_rv(s);
}

/* The public half as the store keeps it: SPKI for every asymmetric key, and the EC
 * point, so the private object still answers both once the public object is gone. */

/* Reads one attribute of any length from a backend object into malloc'd memory. */
unsigned char *cmk_create_read_attr(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h,
                                    CK_ATTRIBUTE_TYPE type, CK_ULONG *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    if (module.be.fn->C_GetAttributeValue(session, h, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0)
        return NULL;
    a.pValue = malloc(a.ulValueLen);
    if (a.pValue && module.be.fn->C_GetAttributeValue(session, h, &a, 1) != CKR_OK) {
        free(a.pValue);
        return NULL;
    }
    *len = a.ulValueLen;
    return a.pValue;
}

void cmk_create_read_public_key(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE pub, CK_KEY_TYPE type,
                                struct public_key *out)
{
    memset(out, 0, sizeof(*out));
    CK_ULONG a_len = 0, b_len = 0;
    if (type == CKK_RSA) {
        unsigned char *n = cmk_create_read_attr(session, pub, CKA_MODULUS, &a_len);
        unsigned char *e = cmk_create_read_attr(session, pub, CKA_PUBLIC_EXPONENT, &b_len);
        if (n && e) out->spki = pubkey_spki_rsa(n, a_len, e, b_len, &out->spki_len);
        free(n);
        free(e);
    } else {
        unsigned char *params = cmk_create_read_attr(session, pub, CKA_EC_PARAMS, &a_len);
        out->ec_point = cmk_create_read_attr(session, pub, CKA_EC_POINT, &out->ec_point_len);
        if (params && out->ec_point)
            out->spki = pubkey_spki_ec(type, params, a_len, out->ec_point, out->ec_point_len,
                                       &out->spki_len);
        free(params);
    }
    if (!out->spki) log_warning("CreateKey: could not encode the public key as SPKI");
}

/* Turns the row Enabled and audits, in one transaction. */
CK_RV cmk_create_commit(struct cmk_record *rec, const char *action, const char *how,
                        const struct public_key *pk)
{
    return cmk_create_commit_state(rec, CMK_STATE_ENABLED, action, how, pk);
}

CK_RV cmk_create_commit_state(struct cmk_record *rec, unsigned long state, const char *action,
                              const char *how, const struct public_key *pk)
{
    enum store_status s = store_begin(module.store);
    if (s == STORE_OK) {
        struct cmk_record cur;
        s = store_cmk_get(module.store, rec->row, &cur);
        if (s == STORE_OK) {
            cur.state = state;
            cur.usage = rec->usage; /* read back from the material (usage_from_material) */
            s = store_cmk_update(module.store, &cur);
            if (s == STORE_OK)
                s = store_version_insert(module.store, cur.row, 1, cur.created, "create");
            if (s == STORE_OK && pk)
                s = store_cmk_set_public(module.store, cur.row, pk->spki, pk->spki_len,
                                         pk->ec_point, pk->ec_point_len);
            char detail[256], usage[CMK_USAGE_NAME_SIZE];
            snprintf(detail, sizeof(detail), "spec=%s %s usage=%s", cur.key_spec, how,
                     cmk_request_usage_name(cur.usage, usage));
            if (s == STORE_OK) s = store_audit(module.store, action, cur.key_id, detail);
            cmk_record_free(&cur);
        }
        if (s == STORE_OK)
            s = store_commit(module.store);
        else
            store_rollback(module.store);
    }
    return cmk_create_store_rv(s);
}

bool cmk_destroy_material(CK_SESSION_HANDLE session, const char *key_id, unsigned long version)
{
    unsigned char bid[CMK_BACKEND_ID_LEN];
    cmk_backend_id(key_id, version, bid);
    /* Found again until none is left: a version has one or two objects, but a crash of an
     * attempt the backend failed may have left more than one find returns at once. */
    for (int round = 0; round < 4; round++) {
        CK_OBJECT_HANDLE found[8];
        CK_ULONG n = 0;
        if (module_backend_find_by_id(session, bid, sizeof(bid), (CK_OBJECT_CLASS)-1, found, 8,
                                      &n) != CKR_OK)
            return false;
        if (n == 0) return true;
        if (!module_backend_destroy_own(session, found, n)) return false;
    }
    return false;
}

void cmk_create_undo(CK_SESSION_HANDLE session, struct cmk_record *rec)
{
    cmk_destroy_material(session, rec->key_id, 1);
    cmk_create_drop_row(rec);
}

/* The backend's own identity for the material: never the client's label or id. */
CK_RV cmk_create_internal_key(CK_SESSION_HANDLE session, CK_MECHANISM_TYPE mech, CK_KEY_TYPE type,
                              const CK_ATTRIBUTE *usage, CK_ULONG n_usage, const void *id,
                              CK_ULONG id_len, const char *label, CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ULONG len = 32;
    struct tmpl_builder b;
    tmpl_init(&b);
    tmpl_set(&b, CKA_CLASS, &cls, sizeof(cls));
    tmpl_set(&b, CKA_KEY_TYPE, &type, sizeof(type));
    tmpl_set(&b, CKA_VALUE_LEN, &len, sizeof(len));
    tmpl_set(&b, CKA_TOKEN, &ck_true, 1);
    tmpl_set(&b, CKA_PRIVATE, &ck_true, 1);
    tmpl_set(&b, CKA_SENSITIVE, &ck_true, 1);
    tmpl_set(&b, CKA_EXTRACTABLE, &ck_false, 1);
    for (CK_ULONG i = 0; i < n_usage; i++)
        tmpl_set(&b, usage[i].type, usage[i].pValue, usage[i].ulValueLen);
    tmpl_set(&b, CKA_DERIVE, &ck_false, 1);
    tmpl_set(&b, CKA_ID, id, id_len);
    tmpl_set(&b, CKA_LABEL, label, (CK_ULONG)strlen(label));
    CK_RV rv = CKR_HOST_MEMORY;
    if (!b.failed) {
        CK_MECHANISM gen = {mech, NULL, 0};
        MODULE_UNDER_TOKEN_LOCK(rv, module.be.fn->C_GenerateKey(session, &gen, b.attrs, b.count, out));
    }
    tmpl_free(&b);
    return rv;
}

void cmk_create_backend_identity(struct tmpl_builder *b, const unsigned char *bid,
                                 const char *label)
{
    tmpl_set(b, CKA_TOKEN, &ck_true, sizeof(CK_BBOOL));
    tmpl_set(b, CKA_ID, bid, CMK_BACKEND_ID_LEN);
    tmpl_set(b, CKA_LABEL, label, (CK_ULONG)strlen(label));
}

bool cmk_create_should_retry(CK_SESSION_HANDLE session, CK_RV rv, const char *key_id,
                             unsigned long version, int attempt)
{
    /* SoftHSMv2's file store can fail a generation (CKR_GENERAL_ERROR or
     * CKR_FUNCTION_FAILED, and for an object it re-read half-written,
     * CKR_TEMPLATE_INCONSISTENT) when something reads the token's files meanwhile. Our
     * own finds and writes are kept apart by the token lock (module.h), which made these
     * failures go away in our tests; a backend may still have causes of its own, and
     * another attempt succeeds. A client's template may be inconsistent for real, so that
     * code is retried only for later versions, whose template is ours and already made
     * version 1. Whatever the failed attempt left under this version's identity goes
     * first. Each retry is logged as a warning: an operator should see a failing HSM. */
    bool transient = (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED ||
                      (rv == CKR_TEMPLATE_INCONSISTENT && version > 1)) &&
                     !module_token_lock_gave_up();
    if (!transient || attempt + 1 >= CMK_CREATE_ATTEMPTS) return false;
    log_warning("key %s version %lu: the backend failed to make material (0x%lx); trying again",
                key_id, version, rv);
    cmk_destroy_material(session, key_id, version);
    return true;
}

void cmk_create_material_template(struct tmpl_builder *b, const CK_ATTRIBUTE *client, CK_ULONG n,
                                  const unsigned char *bid, const char *label, CK_OBJECT_CLASS cls,
                                  CK_ULONG usage, bool backend_flags)
{
    tmpl_copy_standard(b, client, n);
    cmk_create_backend_identity(b, bid, label);
    tmpl_set(b, CKA_SENSITIVE, &ck_true, sizeof(CK_BBOOL));
    tmpl_set(b, CKA_EXTRACTABLE, &ck_false, sizeof(CK_BBOOL));
    tmpl_set(b, CKA_PRIVATE, &ck_true, sizeof(CK_BBOOL)); /* cmk_create_material_public */
    /* Deriving from a secret CMK would make key material outside its lifecycle: never,
     * whoever asks (cmk_request.c, derive_is_agreement). */
    if (cls != CKO_PRIVATE_KEY || !backend_flags)
        tmpl_set(b, CKA_DERIVE, &ck_false, sizeof(CK_BBOOL));
    if (backend_flags) return; /* the client's flags as given, the rest the backend's */
    if (cls == CKO_PRIVATE_KEY) {
        cmk_request_usage_flags(b, usage, true, false, client, n);
        return;
    }
    cmk_request_secret_flags(b, usage, client, n);
}

void cmk_create_material_public(struct tmpl_builder *b, const struct create_request *req)
{
    if (!req->secret_private) tmpl_set(b, CKA_PRIVATE, &ck_false, sizeof(CK_BBOOL));
}

/* One object's usage flags as the backend made them; a flag its class does not have reads
 * FALSE. The recover forms are left out: SoftHSMv2 defaults them TRUE even on EC keys,
 * which recover nothing, and a key that signs only with recovery is not one anybody
 * makes without asking CKA_SIGN_RECOVER (which resolve_usage then sees). */
static void read_usage_flags(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h,
                             struct cmk_usage_flags *f)
{
    static const CK_ATTRIBUTE_TYPE types[] = {CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP,
                                              CKA_SIGN,    CKA_VERIFY,  CKA_DERIVE};
    enum { N = sizeof(types) / sizeof(types[0]) };
    CK_BBOOL v[N] = {0};
    CK_ATTRIBUTE a[N];
    for (int i = 0; i < N; i++)
        a[i] = (CK_ATTRIBUTE){types[i], &v[i], 1};
    /* One call; an attribute the class lacks comes back unavailable and the others are
     * still filled (PKCS#11 5.7). */
    CK_RV rv = module.be.fn->C_GetAttributeValue(session, h, a, N);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID) return;
    for (int i = 0; i < N; i++) {
        bool on = a[i].ulValueLen == 1 && v[i] != CK_FALSE;
        if (i < 4) f->crypt |= on;
        else if (i < 6) f->sign |= on;
        else f->derive |= on;
    }
}

void cmk_create_usage_from_material(CK_SESSION_HANDLE session, struct create_request *req,
                                    CK_OBJECT_HANDLE main, CK_OBJECT_HANDLE pub,
                                    struct cmk_record *rec)
{
    if (!req->flags_by_backend) return;
    struct cmk_usage_flags f = {0}, p = {0};
    read_usage_flags(session, main, &f);
    if (pub) read_usage_flags(session, pub, &p);
    f.crypt |= p.crypt;
    f.sign |= p.sign; /* ECDH needs the private key's CKA_DERIVE alone */
    cmk_request_usage_of_flags(req, &f);
    rec->usage = req->usage;
}

void cmk_backend_label(const char *key_id, unsigned long version, char out[80])
{
    snprintf(out, 80, CMK_BACKEND_LABEL_PREFIX "%s/v%lu", key_id, version);
}

static void mech_name(CK_MECHANISM_TYPE m, char out[24])
{
    snprintf(out, 24, "mechanism=0x%lx", m);
}

/* SOFTWARE: the material is made and sealed (soft_key, soft_pkey) and stored beside the
 * row (the sealed row goes with the row if we die before the commit). A pair's public
 * key is committed with the row. */
static CK_RV create_software(CK_SESSION_HANDLE session, const struct create_request *req,
                             struct cmk_record *rec, CK_MECHANISM_PTR mech,
                             CK_OBJECT_HANDLE_PTR key, CK_OBJECT_HANDLE_PTR pub_key,
                             const CK_ATTRIBUTE *pub_tmpl, CK_ULONG pub_count)
{
    CK_RV rv;
    struct public_key pk = {0};
    if (pub_key)
        rv = soft_pkey_generate(&req->spec, pub_tmpl, pub_count, rec->row, rec->key_id, 1, &pk);
    else
        rv = soft_key_make(session, rec->row, rec->key_id, 1, keyspec_secret_bytes(req->spec.name));
    if (rv != CKR_OK) {
        cmk_create_drop_row(rec);
        return rv;
    }
    util_crash_point("create:after-generate");
    char mn[24];
    mech_name(mech->mechanism, mn);
    char how[48];
    snprintf(how, sizeof(how), "%s protection=SOFTWARE", mn);
    rv = cmk_create_commit(rec, "CreateKey", how, pub_key ? &pk : NULL);
    free(pk.spki);
    free(pk.ec_point);
    if (rv != CKR_OK) {
        cmk_create_drop_row(rec);
        return rv;
    }
    util_crash_point("create:after-commit");
    *key = handle_for_cmk(rec->row, pub_key ? CMK_OBJ_PRIVATE : CMK_OBJ_SECRET);
    if (pub_key) *pub_key = handle_for_cmk(rec->row, CMK_OBJ_PUBLIC);
    log_info("CreateKey: %s %s (SOFTWARE) alias '%s'", rec->key_id, req->spec.name,
             req->has_alias ? req->alias : "");
    return CKR_OK;
}

CK_RV cmk_generate_key(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl,
                       CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    struct create_request req;
    memset(&req, 0, sizeof(req));
    struct cmk_record rec = {0};
    struct tmpl_builder b;
    tmpl_init(&b);
    CK_RV rv = cmk_request_session_writable(session);
    if (rv == CKR_OK) rv = cmk_request_parse(&req, mech->mechanism, tmpl, count, NULL, 0);
    if (rv != CKR_OK) goto out;
    rv = cmk_create_insert_row(&req, CMK_OBJ_SECRET, &rec);
    if (rv != CKR_OK) goto out;
    if (req.origin == CMK_ORIGIN_EXTERNAL) {
        if ((rv = cmk_import_finish_create(&rec)) == CKR_OK)
            *key = handle_for_cmk(rec.row, CMK_OBJ_SECRET);
        goto out;
    }
    util_crash_point("create:after-insert");
    util_pause_point("create:after-insert");
    if (req.protection == CMK_PROTECTION_SOFTWARE) {
        rv = create_software(session, &req, &rec, mech, key, NULL, NULL, 0);
        goto out;
    }

    unsigned char bid[CMK_BACKEND_ID_LEN];
    char label[80];
    cmk_backend_id(rec.key_id, 1, bid);
    cmk_backend_label(rec.key_id, 1, label);
    cmk_create_material_template(&b, tmpl, count, bid, label, CKO_SECRET_KEY, req.usage,
                                 req.flags_by_backend);
    cmk_create_material_public(&b, &req);
    CK_MECHANISM gen = *mech; /* an SM key: the backend's own type and mechanism */
    bool gen_ok =
        !sm_map_is_sm_key(req.spec.key_type) || sm_map_generate(req.spec.key_type, &b, NULL, &gen);
    if (b.failed || !gen_ok) {
        rv = gen_ok ? CKR_HOST_MEMORY : CKR_MECHANISM_INVALID;
        cmk_create_drop_row(&rec);
        goto out;
    }

    CK_OBJECT_HANDLE material = 0;
    for (int attempt = 0; attempt < CMK_CREATE_ATTEMPTS; attempt++) {
        MODULE_UNDER_TOKEN_LOCK(
            rv, module.be.fn->C_GenerateKey(session, &gen, b.attrs, b.count, &material));
        if (!cmk_create_should_retry(session, rv, rec.key_id, 1, attempt)) break;
    }
    if (rv != CKR_OK) {
        rv = cmk_create_backend_failed(session, rv, &rec,
                                       "CreateKey: the backend refused to generate", req.spec.name);
        goto out;
    }
    util_crash_point("create:after-generate");
    cmk_create_usage_from_material(session, &req, material, 0, &rec);
    char mn[24];
    mech_name(mech->mechanism, mn);
    rv = cmk_create_commit(&rec, "CreateKey", mn, NULL);
    if (rv != CKR_OK) {
        cmk_create_undo(session, &rec);
        goto out;
    }
    util_crash_point("create:after-commit");
    *key = handle_for_cmk(rec.row, CMK_OBJ_SECRET);
    log_info("CreateKey: %s %s alias '%s'", rec.key_id, req.spec.name,
             req.has_alias ? req.alias : "");
out:
    tmpl_free(&b);
    cmk_tags_free(req.tags, req.tag_count);
    return rv;
}

CK_RV cmk_generate_key_pair(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                            CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG pub_count,
                            CK_ATTRIBUTE_PTR priv_tmpl, CK_ULONG priv_count,
                            CK_OBJECT_HANDLE_PTR pub_key, CK_OBJECT_HANDLE_PTR priv_key)
{
    struct create_request req;
    memset(&req, 0, sizeof(req));
    struct cmk_record rec = {0};
    struct tmpl_builder bpub, bpriv;
    tmpl_init(&bpub);
    tmpl_init(&bpriv);
    CK_RV rv = cmk_request_session_writable(session);
    if (rv == CKR_OK)
        rv = cmk_request_parse(&req, mech->mechanism, priv_tmpl, priv_count,
                               pub_tmpl ? pub_tmpl : priv_tmpl, pub_tmpl ? pub_count : 0);
    if (rv != CKR_OK) goto out;
    rv = cmk_create_insert_row(&req, CMK_OBJ_PRIVATE | CMK_OBJ_PUBLIC, &rec);
    if (rv != CKR_OK) goto out;
    if (req.origin == CMK_ORIGIN_EXTERNAL) {
        if ((rv = cmk_import_finish_create(&rec)) == CKR_OK) {
            *pub_key = handle_for_cmk(rec.row, CMK_OBJ_PUBLIC);
            *priv_key = handle_for_cmk(rec.row, CMK_OBJ_PRIVATE);
        }
        goto out;
    }
    util_crash_point("create:after-insert");
    util_pause_point("create:after-insert");
    if (req.protection == CMK_PROTECTION_SOFTWARE) {
        rv = create_software(session, &req, &rec, mech, priv_key, pub_key, pub_tmpl, pub_count);
        goto out;
    }

    unsigned char bid[CMK_BACKEND_ID_LEN];
    char label[80];
    cmk_backend_id(rec.key_id, 1, bid);
    cmk_backend_label(rec.key_id, 1, label);
    tmpl_copy_standard(&bpub, pub_tmpl, pub_count);
    cmk_create_backend_identity(&bpub, bid, label);
    tmpl_set(&bpub, CKA_PRIVATE, req.public_private ? &ck_true : &ck_false, sizeof(CK_BBOOL));
    if (!req.flags_by_backend)
        cmk_request_usage_flags(&bpub, req.usage, false, true, pub_tmpl, pub_count);
    cmk_create_material_template(&bpriv, priv_tmpl, priv_count, bid, label, CKO_PRIVATE_KEY,
                                 req.usage, req.flags_by_backend);
    cmk_create_material_public(&bpriv, &req);
    CK_MECHANISM gen = *mech;
    bool gen_ok = !sm_map_is_sm_key(req.spec.key_type) ||
                  sm_map_generate(req.spec.key_type, &bpriv, &bpub, &gen);
    if (bpub.failed || bpriv.failed || !gen_ok) {
        rv = gen_ok ? CKR_HOST_MEMORY : CKR_MECHANISM_INVALID;
        cmk_create_drop_row(&rec);
        goto out;
    }

    CK_OBJECT_HANDLE mpub = 0, mpriv = 0;
    for (int attempt = 0; attempt < CMK_CREATE_ATTEMPTS; attempt++) {
        MODULE_UNDER_TOKEN_LOCK(rv, module.be.fn->C_GenerateKeyPair(session, &gen, bpub.attrs,
                                                                    bpub.count, bpriv.attrs,
                                                                    bpriv.count, &mpub, &mpriv));
        if (!cmk_create_should_retry(session, rv, rec.key_id, 1, attempt)) break;
    }
    if (rv != CKR_OK) {
        rv = cmk_create_backend_failed(session, rv, &rec,
                                       "CreateKey: the backend refused to generate", req.spec.name);
        goto out;
    }
    util_crash_point("create:after-generate");
    cmk_create_usage_from_material(session, &req, mpriv, mpub, &rec);
    char mn[24];
    mech_name(mech->mechanism, mn);
    struct public_key pk;
    cmk_create_read_public_key(session, mpub, req.spec.key_type, &pk);
    rv = cmk_create_commit(&rec, "CreateKey", mn, &pk);
    free(pk.spki);
    free(pk.ec_point);
    if (rv != CKR_OK) {
        cmk_create_undo(session, &rec);
        goto out;
    }
    util_crash_point("create:after-commit");
    *pub_key = handle_for_cmk(rec.row, CMK_OBJ_PUBLIC);
    *priv_key = handle_for_cmk(rec.row, CMK_OBJ_PRIVATE);
    log_info("CreateKey: %s %s alias '%s'", rec.key_id, req.spec.name,
             req.has_alias ? req.alias : "");
out:
    tmpl_free(&bpub);
    tmpl_free(&bpriv);
    cmk_tags_free(req.tags, req.tag_count);
    return rv;
}

/* A Creating row belongs to a live CreateKey unless its creator process is gone. */
static bool creator_is_gone(const struct cmk_record *rec)
{
    return !util_process_alive(rec->creator_pid, rec->creator_start);
}

/* This process as the owner of a claim: its pid and start time. */
static void claim_owner(long *pid, int64_t *start)
{
    *pid = (long)getpid();
    *start = util_process_start(getpid());
}

/* Undoes one dead creation. The row is first taken over: its creator becomes this
 * process, in a transaction that matches the dead creator seen (store_claim_move), so of
 * recoveries that saw the same dead creator one goes on and the others, and any that read
 * the row before it was undone, leave it alone. Only then the material goes; the row is
 * deleted and audited in one transaction that matches this process as the creator, so the
 * undo is audited once. Dying half-way leaves the row Creating under a dead creator (this
 * process), and the next recovery takes it over in turn. */
static void recover_one(CK_SESSION_HANDLE session, const struct cmk_record *seen)
{
    long me;
    int64_t my_start;
    claim_owner(&me, &my_start);
    enum store_status s = store_claim_move(module.store, STORE_CLAIM_CREATION, seen->row, 0,
                                           seen->creator_pid, seen->creator_start, me, my_start);
    if (s != STORE_OK) return; /* undone, or being undone, by another process */
    util_crash_point("recover-create:taken");
    util_pause_point("recover-create:taken");
    /* The client never got a handle: roll back rather than finish. */
    if (!cmk_destroy_material(session, seen->key_id, 1)) {
        log_error("recovery: key %s: its half-made material could not be destroyed; the "
                  "next recovery after this process ends tries again",
                  seen->key_id);
        return;
    }
    if (store_begin(module.store) != STORE_OK) return;
    struct cmk_record cur = {0};
    s = store_cmk_get(module.store, seen->row, &cur);
    if (s == STORE_OK &&
        (cur.state != CMK_STATE_CREATING || cur.creator_pid != me || cur.creator_start != my_start))
        s = STORE_NOT_FOUND;
    cmk_record_free(&cur);
    if (s == STORE_OK) s = store_cmk_delete(module.store, seen->row);
    if (s == STORE_OK)
        s = store_audit(module.store, "RecoverCreateKey", seen->key_id,
                        "creator died mid-CreateKey; row and material removed");
    if (s == STORE_OK)
        s = store_commit(module.store);
    else
        store_rollback(module.store);
    if (s == STORE_OK)
        log_warning("recovery: removed key %s left half-created by process %ld", seen->key_id,
                    seen->creator_pid);
}

void cmk_recover(CK_SESSION_HANDLE session)
{
    struct store_filter f;
    store_filter_init(&f);
    f.state = CMK_STATE_CREATING;
    f.include_creating = true;
    struct store_match *m = NULL;
    size_t n = 0;
    drop_abandoned(session, true);
    if (store_cmk_find(module.store, &f, &m, &n) != STORE_OK) return;
    for (size_t i = 0; i < n; i++) {
        struct cmk_record rec;
        if (store_cmk_get(module.store, m[i].row, &rec) != STORE_OK) continue;
        /* A look without the lock: only a row that seems dead is taken over. */
        if (rec.state == CMK_STATE_CREATING && creator_is_gone(&rec)) {
            util_pause_point("recover-create:read");
            recover_one(session, &rec);
        }
        cmk_record_free(&rec);
    }
    free(m);
}
