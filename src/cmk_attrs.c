/* cmk_attrs.c - a CMK's attributes: read, change, and C_DestroyObject.
 * Alias, CKA_ID and the vendor attributes live in the store; every other attribute
 * is the backend material's own and is forwarded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmk.h"
#include "cmk_alias.h"
#include "cmk_import.h"
#include "cmk_material_attrs.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "keyspec.h"
#include "log.h"
#include "module.h"
#include "sm_backend_map.h"
#include "soft_pkey.h"
#include "template.h"
#include "util.h"
#include "validate.h"

CK_RV cmk_attr_put(CK_ATTRIBUTE *a, const void *value, CK_ULONG len)
{
    if (!a->pValue) {
        a->ulValueLen = len;
        return CKR_OK;
    }
    if (a->ulValueLen < len) {
        a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return CKR_BUFFER_TOO_SMALL;
    }
    if (len) memcpy(a->pValue, value, len);
    a->ulValueLen = len;
    return CKR_OK;
}

static CK_RV put_ulong(CK_ATTRIBUTE *a, CK_ULONG v) { return cmk_attr_put(a, &v, sizeof(v)); }

static CK_RV put_text(CK_ATTRIBUTE *a, const char *s)
{
    return cmk_attr_put(a, s ? s : "", s ? (CK_ULONG)strlen(s) : 0);
}

/* Answers one attribute from the record; CKR_ATTRIBUTE_TYPE_INVALID for unknown
 * vendor attributes, and (CK_RV)-1 when the attribute is the backend's. */
static CK_RV answer_from_record(struct cmk_record *rec, CK_OBJECT_HANDLE handle, CK_ATTRIBUTE *a)
{
    unsigned kind = handle_kind(handle);
    CK_RV sm = rec->protection == CMK_PROTECTION_HSM && sm_map_is_sm_key(rec->key_type)
                   ? sm_map_answer(rec->key_type, a)
                   : (CK_RV)-1;
    if (sm != (CK_RV)-1) return sm;
    switch (a->type) {
    case CKA_CMK_VERSION:
        return put_ulong(a, handle_version(handle) ? handle_version(handle) : rec->primary_version);
    case CKA_CMK_ROTATE_NOW: {
        CK_BBOOL no = CK_FALSE; /* an action, not a state: always reads FALSE */
        return cmk_attr_put(a, &no, sizeof(no));
    }
    case CKA_PUBLIC_KEY_INFO:
        if (!rec->public_key_info) return (CK_RV)-1;
        return cmk_attr_put(a, rec->public_key_info, (CK_ULONG)rec->public_key_info_len);
    case CKA_EC_POINT:
        if (kind != CMK_OBJ_PRIVATE || !rec->ec_point) return (CK_RV)-1;
        return cmk_attr_put(a, rec->ec_point, (CK_ULONG)rec->ec_point_len);
    case CKA_LABEL:
        return kind == CMK_OBJ_PUBLIC ? cmk_attr_put(a, rec->pub_label, (CK_ULONG)rec->pub_label_len)
                                      : cmk_attr_put(a, rec->label, (CK_ULONG)rec->label_len);
    case CKA_ID:
        return kind == CMK_OBJ_PUBLIC
                   ? cmk_attr_put(a, rec->pub_cka_id, (CK_ULONG)rec->pub_cka_id_len)
                   : cmk_attr_put(a, rec->cka_id, (CK_ULONG)rec->cka_id_len);
    case CKA_CMK_ALIAS: return put_text(a, rec->alias);
    case CKA_CMK_ALIASES: return cmk_alias_answer_all(rec, a);
    case CKA_CMK_ADD_ALIAS:
    case CKA_CMK_REMOVE_ALIAS:
    case CKA_CMK_MOVE_ALIAS: return put_text(a, NULL); /* actions: they read empty */
    case CKA_CMK_KEY_ID: return put_text(a, rec->key_id);
    case CKA_CMK_DESCRIPTION: return put_text(a, rec->description);
    case CKA_CMK_KEY_SPEC: return put_text(a, rec->key_spec);
    case CKA_CMK_KEY_USAGE: return put_ulong(a, rec->usage);
    case CKA_CMK_ORIGIN: return put_ulong(a, rec->origin);
    case CKA_CMK_PROTECTION_LEVEL: return put_ulong(a, rec->protection);
    case CKA_CMK_KEY_STATE: return put_ulong(a, rec->state);
    case CKA_CMK_CREATION_DATE: return put_ulong(a, (CK_ULONG)rec->created);
    case CKA_CMK_ROTATION_ENABLED: {
        CK_BBOOL v = rec->rotation_enabled ? CK_TRUE : CK_FALSE;
        return cmk_attr_put(a, &v, sizeof(v));
    }
    case CKA_CMK_ROTATION_INTERVAL: return put_ulong(a, (CK_ULONG)rec->rotation_interval);
    case CKA_CMK_LAST_ROTATION_DATE: return put_ulong(a, (CK_ULONG)rec->last_rotation);
    case CKA_CMK_NEXT_ROTATION_DATE: return put_ulong(a, (CK_ULONG)rec->next_rotation);
    case CKA_CMK_PRIMARY_VERSION: return put_ulong(a, rec->primary_version);
    case CKA_CMK_DELETION_DATE: return put_ulong(a, (CK_ULONG)rec->deletion_date);
    case CKA_CMK_PENDING_WINDOW_DAYS:
        return put_ulong(a, rec->pending_window ? rec->pending_window
                                                : module.cfg.pending_window_days);
    case CKA_CMK_CREATOR: return put_ulong(a, (CK_ULONG)rec->creator_uid);
    case CKA_CMK_ARN: {
        char arn[128];
        snprintf(arn, sizeof(arn), "arn:cmkp11:%s:key/%s", module.cfg.token_label, rec->key_id);
        return put_text(a, arn);
    }
    case CKA_CMK_TAGS: {
        if (!rec->tags_loaded && store_tags_load(module.store, rec) != STORE_OK)
            return CKR_DEVICE_ERROR;
        size_t len = tags_format(rec->tags, rec->tag_count, NULL, 0);
        char *text = malloc(len + 1);
        if (!text) return CKR_HOST_MEMORY;
        tags_format(rec->tags, rec->tag_count, text, len + 1);
        CK_RV rv = cmk_attr_put(a, text, (CK_ULONG)len);
        free(text);
        return rv;
    }
    }
    if (attr_is_vendor(a->type)) {
        CK_RV r = cmk_import_answer_vendor(rec, a);
        if (r != (CK_RV)-1) return r;
        a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
    return (CK_RV)-1;
}

/* A SOFTWARE key has no backend object: its standard attributes follow from the record,
 * as the backend would answer them for a sensitive, non-extractable AES key (or, for a
 * pair, from its stored public key: soft_pkey). */
static CK_RV answer_software(const struct cmk_record *rec, unsigned kind, CK_ATTRIBUTE *a)
{
    if (kind != CMK_OBJ_SECRET) return soft_pkey_answer(rec, kind, a);
    CK_RV imported = cmk_import_answer_unwrapped(rec, kind, a);
    if (imported != (CK_RV)-1) return imported;
    CK_BBOOL t = CK_TRUE, f = CK_FALSE;
    bool crypt = rec->usage == CMK_USAGE_ENCRYPT_DECRYPT;
    bool mac = rec->usage == CMK_USAGE_GENERATE_VERIFY_MAC;
    switch (a->type) {
    case CKA_CLASS: return put_ulong(a, CKO_SECRET_KEY);
    case CKA_KEY_TYPE: return put_ulong(a, rec->key_type);
    case CKA_VALUE_LEN: return put_ulong(a, keyspec_secret_bytes(rec->key_spec));
    case CKA_KEY_GEN_MECHANISM:
        return put_ulong(a, mac                            ? CKM_GENERIC_SECRET_KEY_GEN
                            : rec->key_type == CKK_CMK_SM4 ? CKM_CMK_SM4_KEY_GEN
                                                           : CKM_AES_KEY_GEN);
    case CKA_SIGN:
    case CKA_VERIFY: return cmk_attr_put(a, mac ? &t : &f, 1);
    case CKA_ENCRYPT:
    case CKA_DECRYPT: return cmk_attr_put(a, crypt ? &t : &f, 1);
    case CKA_PRIVATE: return cmk_attr_put(a, (rec->private_mask & CMK_OBJ_SECRET) ? &t : &f, 1);
    case CKA_TOKEN:
    case CKA_LOCAL:
    case CKA_SENSITIVE:
    case CKA_ALWAYS_SENSITIVE:
    case CKA_NEVER_EXTRACTABLE:
    case CKA_MODIFIABLE: return cmk_attr_put(a, &t, 1);
    case CKA_EXTRACTABLE:
    case CKA_WRAP:
    case CKA_UNWRAP:
    case CKA_DERIVE:
    case CKA_COPYABLE:
    case CKA_TRUSTED:
    case CKA_WRAP_WITH_TRUSTED: return cmk_attr_put(a, &f, 1);
    case CKA_DESTROYABLE: return cmk_attr_put(a, &t, 1);
    case CKA_VALUE: a->ulValueLen = CK_UNAVAILABLE_INFORMATION; return CKR_ATTRIBUTE_SENSITIVE;
    case CKA_START_DATE:
    case CKA_END_DATE: return cmk_attr_put(a, NULL, 0);
    default: a->ulValueLen = CK_UNAVAILABLE_INFORMATION; return CKR_ATTRIBUTE_TYPE_INVALID;
    }
}

/* PKCS#11 lets C_GetAttributeValue return any of these; the most telling one wins. */
static int rv_rank(CK_RV rv)
{
    switch (rv) {
    case CKR_OK: return 0;
    case CKR_BUFFER_TOO_SMALL: return 1;
    case CKR_ATTRIBUTE_TYPE_INVALID: return 2;
    case CKR_ATTRIBUTE_SENSITIVE: return 3;
    default: return 4;
    }
}

/* The key behind a handle, if this session may see it: like the backend, a private
 * object does not exist for a session that is not logged in, and a destroyed one (the
 * secret or private object of a key pending deletion) does not exist for plain PKCS#11.
 * A template that speaks the KMS vocabulary (a CKA_CMK_* attribute) still reaches it: it
 * is how a deletion is looked at and cancelled. A pair's public object stays until it is
 * destroyed itself, as on the backend. */
static CK_RV load_visible(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                          struct cmk_record *rec, bool kms_view)
{
    enum store_status s = store_cmk_get(module.store, handle_row(handle), rec);
    if (s == STORE_NOT_FOUND) return CKR_OBJECT_HANDLE_INVALID;
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    bool destroyed = rec->state == CMK_STATE_PENDING_DELETION &&
                     handle_kind(handle) != CMK_OBJ_PUBLIC && !kms_view;
    if (rec->state == CMK_STATE_CREATING || destroyed || !(rec->objects & handle_kind(handle)) ||
        handle_version(handle) > rec->primary_version ||
        ((rec->private_mask & handle_kind(handle)) &&
         !backend_session_logged_in(&module.be, session))) {
        cmk_record_free(rec);
        return CKR_OBJECT_HANDLE_INVALID;
    }
    return CKR_OK;
}

CK_RV cmk_get_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, CK_ATTRIBUTE_PTR tmpl,
                         CK_ULONG count)
{
    struct cmk_record rec;
    CK_RV rv = load_visible(session, handle, &rec, tmpl_has_vendor(tmpl, count));
    if (rv != CKR_OK) return rv;
    CK_RV worst = CKR_OK;
    CK_ULONG *forward = calloc(count ? count : 1, sizeof(*forward));
    CK_ATTRIBUTE *sub = calloc(count ? count : 1, sizeof(*sub));
    CK_ULONG nforward = 0;
    if (!forward || !sub) {
        worst = CKR_HOST_MEMORY;
        goto out;
    }
    for (CK_ULONG i = 0; i < count; i++) {
        CK_RV r = answer_from_record(&rec, handle, &tmpl[i]);
        if (r == (CK_RV)-1) {
            forward[nforward] = i;
            sub[nforward++] = tmpl[i];
        } else if (rv_rank(r) > rv_rank(worst)) {
            worst = r;
        }
    }
    if (nforward > 0 && rec.protection == CMK_PROTECTION_SOFTWARE) {
        for (CK_ULONG k = 0; k < nforward; k++) {
            CK_RV r = answer_software(&rec, handle_kind(handle), &tmpl[forward[k]]);
            if (rv_rank(r) > rv_rank(worst)) worst = r;
        }
        nforward = 0;
    }
    if (nforward > 0 && !cmk_import_has_material(&rec)) {
        /* No material yet (EXTERNAL origin, PendingImport): the record answers. */
        for (CK_ULONG k = 0; k < nforward; k++) {
            CK_RV r = cmk_import_answer_pending(&rec, handle_kind(handle), &tmpl[forward[k]]);
            if (rv_rank(r) > rv_rank(worst)) worst = r;
        }
        nforward = 0;
    }
    if (nforward > 0 && rv_rank(worst) < 4) {
        CK_OBJECT_HANDLE material;
        CK_RV r = cmk_resolve_backend(session, handle, &material);
        if (r == CKR_OK) r = module.be.fn->C_GetAttributeValue(session, material, sub, nforward);
        if (cmk_handle_went_stale(r)) { /* renumbered by the backend: look up once more */
            cmk_cache_forget_row_handles(handle_row(handle));
            r = cmk_resolve_backend(session, handle, &material);
            if (r == CKR_OK)
                r = module.be.fn->C_GetAttributeValue(session, material, sub, nforward);
        }
        for (CK_ULONG k = 0; k < nforward; k++)
            tmpl[forward[k]].ulValueLen = sub[k].ulValueLen;
        if (rv_rank(r) > rv_rank(worst)) worst = r;
    }
out:
    free(forward);
    free(sub);
    cmk_record_free(&rec);
    return worst;
}

/* What one C_SetAttributeValue changes besides the record's own fields. */
struct change {
    unsigned kind; /* the object named: its label and CKA_ID change, not its twin's */
    struct cmk_tag *tags;
    size_t tag_count;
    bool tags_changed;
    struct cmk_alias_ops aliases;
};

static void change_free(struct change *c)
{
    cmk_tags_free(c->tags, c->tag_count);
}

/* CKA_LABEL and CKA_ID are the named object's, free bytes as on any token. */
static CK_RV apply_object_bytes(struct cmk_record *rec, unsigned kind, const CK_ATTRIBUTE *a)
{
    if (a->ulValueLen && !a->pValue) return CKR_ATTRIBUTE_VALUE_INVALID;
    bool pub = kind == CMK_OBJ_PUBLIC, label = a->type == CKA_LABEL;
    unsigned char **field = label ? (pub ? &rec->pub_label : &rec->label)
                                  : (pub ? &rec->pub_cka_id : &rec->cka_id);
    size_t *len = label ? (pub ? &rec->pub_label_len : &rec->label_len)
                        : (pub ? &rec->pub_cka_id_len : &rec->cka_id_len);
    return cmk_record_set_bytes(field, len, a->pValue, a->ulValueLen) ? CKR_HOST_MEMORY : CKR_OK;
}

static CK_RV apply_rotation(struct cmk_record *rec, const CK_ATTRIBUTE *a)
{
    if (rec->state != CMK_STATE_ENABLED) {
        log_warning("SetAttributeValue: key %s: the rotation policy changes only while the key "
                    "is Enabled",
                    rec->key_id);
        return CKR_ACTION_PROHIBITED;
    }
    char why[VALIDATE_WHY_SIZE];
    int64_t now = util_now();
    int64_t anchor = rec->rotation_enabled ? rec->next_rotation - rec->rotation_interval : now;
    if (a->type == CKA_CMK_ROTATION_ENABLED) {
        if (a->ulValueLen != sizeof(CK_BBOOL)) return CKR_ATTRIBUTE_VALUE_INVALID;
        bool on = *(CK_BBOOL *)a->pValue != CK_FALSE;
        if (on && (!keyspec_is_cipher_key(rec->key_type) || rec->origin != CMK_ORIGIN_KMS)) {
            log_warning("SetAttributeValue: key %s: automatic rotation is only for symmetric "
                        "keys of KMS origin (key spec %s)",
                        rec->key_id, rec->key_spec);
            return CKR_ACTION_PROHIBITED;
        }
        if (on && !rec->rotation_enabled) anchor = now; /* the anchor is the enabling time */
        rec->rotation_enabled = on;
        if (on && !rec->rotation_interval) rec->rotation_interval = ROTATION_DEFAULT_SECONDS;
    } else {
        int64_t seconds;
        if (a->type == CKA_CMK_ROTATION_INTERVAL) {
            if (a->ulValueLen != sizeof(CK_ULONG)) return CKR_ATTRIBUTE_VALUE_INVALID;
            seconds = (int64_t) * (CK_ULONG *)a->pValue;
            if (validate_rotation_seconds(seconds, why)) {
                log_warning("SetAttributeValue: CKA_CMK_ROTATION_INTERVAL invalid: %s", why);
                return CKR_ATTRIBUTE_VALUE_INVALID;
            }
        } else if (validate_rotation_period(a->pValue, a->ulValueLen, &seconds, why)) {
            log_warning("SetAttributeValue: CKA_CMK_ROTATION_PERIOD invalid: %s", why);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        rec->rotation_interval = seconds; /* the anchor stays: only the interval changes */
    }
    rec->next_rotation = rec->rotation_enabled ? anchor + rec->rotation_interval : 0;
    return CKR_OK;
}

static CK_RV apply_state(struct cmk_record *rec, const CK_ATTRIBUTE *a)
{
    if (a->ulValueLen != sizeof(CK_ULONG)) return CKR_ATTRIBUTE_VALUE_INVALID;
    CK_ULONG to = *(CK_ULONG *)a->pValue;
    unsigned long from = rec->state;
    if (to == from) return CKR_OK;
    if (to == CMK_STATE_ENABLED && from == CMK_STATE_DISABLED) {
        rec->state = to;
        return CKR_OK;
    }
    if (to == CMK_STATE_DISABLED &&
        (from == CMK_STATE_ENABLED || from == CMK_STATE_PENDING_DELETION)) {
        /* From PendingDeletion this cancels the deletion; a key of EXTERNAL origin without
         * material goes back to waiting for it. */
        rec->state = cmk_import_has_material(rec) ? to : CMK_STATE_PENDING_IMPORT;
        rec->deletion_date = 0;
        return CKR_OK;
    }
    /* A key waiting for imported material may be scheduled too, as C_DestroyObject does. */
    if (to == CMK_STATE_PENDING_DELETION &&
        (from == CMK_STATE_ENABLED || from == CMK_STATE_DISABLED ||
         from == CMK_STATE_PENDING_IMPORT)) {
        unsigned long days =
            rec->pending_window ? rec->pending_window : module.cfg.pending_window_days;
        rec->state = to;
        rec->deletion_date = util_now() + (int64_t)days * 86400;
        return CKR_OK;
    }
    log_warning("SetAttributeValue: key %s: CKA_CMK_KEY_STATE cannot move from %lu to %lu "
                "(allowed: Enabled<->Disabled, Enabled/Disabled/PendingImport->PendingDeletion, "
                "PendingDeletion->Disabled)",
                rec->key_id, from, to);
    return to <= CMK_STATE_PENDING_IMPORT && to != CMK_STATE_CREATING ? CKR_ACTION_PROHIBITED
                                                                      : CKR_ATTRIBUTE_VALUE_INVALID;
}

static bool is_metadata_attr(CK_ATTRIBUTE_TYPE t)
{
    return t == CKA_LABEL || t == CKA_ID || attr_is_vendor(t);
}

/* Checks and applies the store-held part of a C_SetAttributeValue to rec. */
static CK_RV apply_metadata(struct cmk_record *rec, const CK_ATTRIBUTE *a, struct change *c)
{
    char why[VALIDATE_WHY_SIZE];
    bool pending = rec->state == CMK_STATE_PENDING_DELETION;
    /* A key pending deletion may still lose an alias (DeleteAlias), as on the clouds. */
    if (pending && a->type != CKA_CMK_KEY_STATE && a->type != CKA_CMK_REMOVE_ALIAS) {
        log_warning("SetAttributeValue: key %s is pending deletion: only cancelling (state "
                    "Disabled) is allowed",
                    rec->key_id);
        return CKR_ACTION_PROHIBITED;
    }
    if (cmk_alias_is_change(a->type)) return cmk_alias_queue(&c->aliases, a);
    switch (a->type) {
    case CKA_LABEL:
    case CKA_ID: return apply_object_bytes(rec, c->kind, a);
    case CKA_CMK_DESCRIPTION: {
        if (validate_description(a->pValue, a->ulValueLen, why)) {
            log_warning("SetAttributeValue: CKA_CMK_DESCRIPTION invalid: %s", why);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        char *d = strndup(a->ulValueLen ? a->pValue : "", a->ulValueLen);
        if (!d) return CKR_HOST_MEMORY;
        free(rec->description);
        rec->description = d;
        return CKR_OK;
    }
    case CKA_CMK_ROTATION_ENABLED:
    case CKA_CMK_ROTATION_INTERVAL:
    case CKA_CMK_ROTATION_PERIOD: return apply_rotation(rec, a);
    case CKA_CMK_KEY_STATE: return apply_state(rec, a);
    case CKA_CMK_ROTATE_NOW:
    case CKA_CMK_DELETE_MATERIAL:
        if (a->ulValueLen != sizeof(CK_BBOOL)) return CKR_ATTRIBUTE_VALUE_INVALID;
        return CKR_OK; /* acted on after the other changes commit */
    case CKA_CMK_PENDING_WINDOW_DAYS:
        if (a->ulValueLen != sizeof(CK_ULONG) ||
            validate_pending_window(*(CK_ULONG *)a->pValue, why)) {
            log_warning("SetAttributeValue: CKA_CMK_PENDING_WINDOW_DAYS invalid: %s",
                        a->ulValueLen != sizeof(CK_ULONG) ? "must be a CK_ULONG" : why);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        rec->pending_window = *(CK_ULONG *)a->pValue;
        return CKR_OK;
    case CKA_CMK_TAGS:
        cmk_tags_free(c->tags, c->tag_count);
        c->tags = NULL;
        c->tag_count = 0;
        if (validate_tags(a->pValue, a->ulValueLen, &c->tags, &c->tag_count, why)) {
            log_warning("SetAttributeValue: CKA_CMK_TAGS invalid: %s", why);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        c->tags_changed = true;
        return CKR_OK;
    }
    if (a->type <= CKA_CMK_CREATOR) {
        log_warning("SetAttributeValue: vendor attribute 0x%lx is read-only", a->type);
        return CKR_ATTRIBUTE_READ_ONLY;
    }
    log_warning("SetAttributeValue: vendor attribute 0x%lx is unknown", a->type);
    return CKR_ATTRIBUTE_TYPE_INVALID;
}

static CK_RV check_standard_change(const CK_ATTRIBUTE *a)
{
    bool weakens = (a->type == CKA_SENSITIVE && a->ulValueLen == 1 && !*(CK_BBOOL *)a->pValue) ||
                   (a->type == CKA_EXTRACTABLE && a->ulValueLen == 1 && *(CK_BBOOL *)a->pValue);
    if (weakens) {
        log_warning("SetAttributeValue: CMK material stays sensitive and non-extractable");
        return CKR_ATTRIBUTE_READ_ONLY;
    }
    return CKR_OK;
}

static const char *state_text(unsigned long state)
{
    static const char *const names[] = {"Creating", "Enabled", "Disabled", "PendingDeletion",
                                        "PendingImport"};
    return state < 5 ? names[state] : "?";
}

/* "field: old -> new" for each change, as the audit row's detail. */
/* Labels and ids are client bytes: the audit shows them as hex, never raw. */
static size_t describe_bytes(char *out, size_t size, const char *what, const unsigned char *a,
                             size_t a_len, const unsigned char *b, size_t b_len)
{
    if (a_len == b_len && (!a_len || !memcmp(a, b, a_len))) return 0;
    size_t n = (size_t)snprintf(out, size, "%s: ", what);
    for (size_t i = 0; i < a_len && i < 24 && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%02x", a[i]);
    if (n < size) n += (size_t)snprintf(out + n, size - n, " -> ");
    for (size_t i = 0; i < b_len && i < 24 && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%02x", b[i]);
    if (n < size) n += (size_t)snprintf(out + n, size - n, "; ");
    return n < size ? n : size;
}

static void describe_changes(const struct cmk_record *old, const struct cmk_record *new,
                             const struct change *c, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (n < size) n += (size_t)snprintf(out + n, size - n, __VA_ARGS__);                       \
    } while (0)
    if (old->state != new->state)
        ADD("state: %s -> %s; ", state_text(old->state), state_text(new->state));
    if (strcmp(old->description, new->description))
        ADD("description: '%.60s%s' -> '%.60s%s'; ", old->description,
            strlen(old->description) > 60 ? "..." : "", new->description,
            strlen(new->description) > 60 ? "..." : "");
    if (n < size)
        n += describe_bytes(out + n, size - n, "CKA_LABEL", old->label, old->label_len,
                            new->label, new->label_len);
    if (n < size)
        n += describe_bytes(out + n, size - n, "CKA_ID", old->cka_id, old->cka_id_len,
                            new->cka_id, new->cka_id_len);
    if (n < size)
        n += describe_bytes(out + n, size - n, "public CKA_LABEL", old->pub_label,
                            old->pub_label_len, new->pub_label, new->pub_label_len);
    if (n < size)
        n += describe_bytes(out + n, size - n, "public CKA_ID", old->pub_cka_id,
                            old->pub_cka_id_len, new->pub_cka_id, new->pub_cka_id_len);
    if (old->rotation_enabled != new->rotation_enabled)
        ADD("rotation: %s -> %s; ", old->rotation_enabled ? "on" : "off",
            new->rotation_enabled ? "on" : "off");
    if (old->rotation_interval != new->rotation_interval)
        ADD("rotation interval: %llds -> %llds; ", (long long)old->rotation_interval,
            (long long)new->rotation_interval);
    if (old->pending_window != new->pending_window)
        ADD("pending window: %lu -> %lu days; ", old->pending_window, new->pending_window);
    if (old->deletion_date != new->deletion_date)
        ADD("deletion date: %lld -> %lld; ", (long long)old->deletion_date,
            (long long)new->deletion_date);
    if (old->objects != new->objects) ADD("public key object removed; ");
    if (c && c->tags_changed) {
        ADD("tags replaced by:");
        for (size_t i = 0; i < c->tag_count; i++)
            ADD(" %.40s=%.40s", c->tags[i].key, c->tags[i].value);
        ADD("; ");
    }
#undef ADD
    if (n >= size && size > 4) memcpy(out + size - 4, "...", 4); /* cut, and says so */
}

static CK_RV commit_changes(const struct cmk_record *old, struct cmk_record *rec,
                            const struct change *c, const char *what)
{
    char detail[1024];
    describe_changes(old, rec, c, detail, sizeof(detail));
    bool aliases = c && c->aliases.count > 0;
    if (!detail[0] && !aliases) return CKR_OK; /* nothing changed (a rotate-now alone, ...) */
    enum store_status s = store_begin(module.store);
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    s = store_cmk_update(module.store, rec);
    if (s == STORE_OK && c && c->tags_changed)
        s = store_tags_replace(module.store, rec->row, c->tags, c->tag_count);
    CK_RV rv = s == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
    if (rv == CKR_OK && aliases) rv = cmk_alias_apply(rec, &c->aliases, detail, sizeof(detail));
    if (rv == CKR_OK && store_audit(module.store, what, rec->key_id, detail) != STORE_OK)
        rv = CKR_DEVICE_ERROR;
    if (rv != CKR_OK) {
        store_rollback(module.store);
        return rv;
    }
    s = store_commit(module.store);
    cmk_cache_forget(rec->row);
    return s == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

/* Applies a C_SetAttributeValue template to rec: the store-held attributes are checked
 * and changed in rec (or queued in c), the standard ones checked and, when forward is
 * given, gathered to go to the backend. */
static CK_RV apply_template(struct cmk_record *rec, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                            struct change *c, bool *metadata, struct tmpl_builder *forward)
{
    CK_RV rv = CKR_OK;
    for (CK_ULONG i = 0; i < count && rv == CKR_OK; i++) {
        if (is_metadata_attr(tmpl[i].type)) {
            *metadata = true;
            rv = apply_metadata(rec, &tmpl[i], c);
        } else {
            rv = check_standard_change(&tmpl[i]);
            if (forward) tmpl_set(forward, tmpl[i].type, tmpl[i].pValue, tmpl[i].ulValueLen);
        }
    }
    return rv;
}

static const char *action_of(unsigned long from, unsigned long to)
{
    return to == from                           ? "UpdateKeyAttributes"
           : to == CMK_STATE_ENABLED            ? "EnableKey"
           : to == CMK_STATE_PENDING_DELETION   ? "ScheduleKeyDeletion"
           : from == CMK_STATE_PENDING_DELETION ? "CancelKeyDeletion"
                                                : "DisableKey";
}

/* Opens a write transaction and reads the row twice in it: rec to change, old to
 * compare (the audit's "from"). On failure nothing is left open. */
static CK_RV begin_and_load(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, bool kms_view,
                            struct cmk_record *rec, struct cmk_record *old)
{
    if (store_begin(module.store) != STORE_OK) return CKR_DEVICE_ERROR;
    CK_RV rv = load_visible(session, handle, rec, kms_view);
    if (rv == CKR_OK && (rv = load_visible(session, handle, old, kms_view)) != CKR_OK)
        cmk_record_free(rec);
    if (rv != CKR_OK) store_rollback(module.store);
    return rv;
}

/* Ends what begin_and_load opened: commits when rv is CKR_OK, else rolls back. */
static CK_RV end_and_free(CK_RV rv, struct cmk_record *rec, struct cmk_record *old)
{
    if (rv == CKR_OK) {
        util_crash_point("change:before-commit");
        if (store_commit(module.store) != STORE_OK)
            rv = CKR_DEVICE_ERROR;
        else
            util_crash_point("change:after-commit");
    } else {
        store_rollback(module.store);
    }
    cmk_record_free(rec);
    cmk_record_free(old);
    return rv;
}

/* The store part of a change, read-modify-write inside one write transaction: the row
 * is read again under the lock and the template applied to that copy, so a change made
 * meanwhile by another process or thread (a rotation, a state change) is kept, never
 * written back over with what was read before. */
static CK_RV commit_template(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                             const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
    struct cmk_record rec, old;
    struct change c = {.kind = handle_kind(handle)};
    bool metadata = false;
    CK_RV rv = begin_and_load(session, handle, tmpl_has_vendor(tmpl, count), &rec, &old);
    if (rv != CKR_OK) return rv;
    rv = apply_template(&rec, tmpl, count, &c, &metadata, NULL);
    if (rv == CKR_OK) rv = commit_changes(&old, &rec, &c, action_of(old.state, rec.state));
    change_free(&c);
    return end_and_free(rv, &rec, &old);
}

/* How long a change of standard attributes waits for a rotation under way elsewhere. */
#define ROTATION_WAIT_MS 10000
#define ROTATION_POLL_MS 20

/* Opens the store transaction a change of standard attributes runs in and reads the key
 * in it, once no rotation of it is under way: a rotation cannot claim the key while the
 * transaction is open, and one that claims it after reads the changed primary. */
static CK_RV begin_without_rotation(CK_OBJECT_HANDLE handle, struct cmk_record *cur)
{
    for (int waited = 0;; waited += ROTATION_POLL_MS) {
        if (store_begin(module.store) != STORE_OK) return CKR_DEVICE_ERROR;
        enum store_status s = store_cmk_get(module.store, handle_row(handle), cur);
        if (s != STORE_OK) {
            store_rollback(module.store);
            return s == STORE_NOT_FOUND ? CKR_OBJECT_HANDLE_INVALID : CKR_DEVICE_ERROR;
        }
        if (!cmk_rotation_under_way(cur)) return CKR_OK;
        store_rollback(module.store);
        if (waited >= ROTATION_WAIT_MS) {
            log_warning("SetAttributeValue: key %s has been rotating for %d s (pid %ld); try "
                        "again",
                        cur->key_id, ROTATION_WAIT_MS / 1000, cur->rotating_pid);
            cmk_record_free(cur);
            return CKR_FUNCTION_FAILED;
        }
        cmk_record_free(cur);
        usleep(ROTATION_POLL_MS * 1000);
    }
}

/* The standard attributes of a CMK's material are the backend objects' own, the same on
 * every version (cmk_material_attrs.c). They change, and the template's metadata with
 * them, in one store transaction: if the store refuses the metadata (an alias taken
 * meanwhile), the material's change is put back. */
static CK_RV change_key(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                        const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                        const struct tmpl_builder *forward, bool metadata)
{
    struct cmk_record cur;
    CK_RV rv = begin_without_rotation(handle, &cur);
    if (rv != CKR_OK) return rv;
    cmk_cache_forget(cur.row); /* versions resolve by the primary read here */
    struct cmk_material_change change = {0};
    rv = cmk_material_set_all_versions(session, &cur, handle_kind(handle), forward->attrs,
                                       forward->count, &change);
    if (rv == CKR_OK && metadata) rv = commit_template(session, handle, tmpl, count);
    if (rv == CKR_OK && store_commit(module.store) != STORE_OK)
        rv = CKR_DEVICE_ERROR;
    else if (rv != CKR_OK)
        store_rollback(module.store);
    if (rv != CKR_OK && change.count) cmk_material_undo(session, &cur, &change);
    cmk_material_change_free(&change);
    cmk_record_free(&cur);
    return rv;
}

CK_RV cmk_set_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, CK_ATTRIBUTE_PTR tmpl,
                         CK_ULONG count)
{
    struct cmk_record rec;
    bool kms = tmpl_has_vendor(tmpl, count);
    CK_RV rv = load_visible(session, handle, &rec, kms);
    if (rv != CKR_OK) return rv;
    /* A public session may change a public object, as on any token, but never the key
     * behind it: its state, aliases, policy and the rest of the CKA_CMK_* metadata belong
     * to the key, whose secret or private half only the user may use (issue 18). */
    if (kms && !backend_session_logged_in(&module.be, session)) {
        log_warning("SetAttributeValue: key %s: CKA_CMK_* attributes change the key itself and "
                    "need the user logged in",
                    rec.key_id);
        cmk_record_free(&rec);
        return CKR_USER_NOT_LOGGED_IN;
    }
    struct change c = {.kind = handle_kind(handle)};
    bool metadata = false;
    struct tmpl_builder forward;
    tmpl_init(&forward);
    /* A first pass checks the whole template before anything changes anywhere. */
    rv = apply_template(&rec, tmpl, count, &c, &metadata, &forward);
    if (rv == CKR_OK && forward.failed) rv = CKR_HOST_MEMORY;
    /* Backend first: it may refuse, and then nothing of ours has changed. */
    if (rv == CKR_OK && forward.count > 0 && !cmk_import_has_material(&rec)) {
        log_warning("SetAttributeValue: key %s has no material yet (PendingImport): only its "
                    "metadata can change",
                    rec.key_id);
        rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    if (rv == CKR_OK && forward.count > 0 && rec.protection == CMK_PROTECTION_SOFTWARE) {
        log_warning("SetAttributeValue: key %s: the standard attributes of a SOFTWARE key are "
                    "fixed; only its metadata can change",
                    rec.key_id);
        rv = CKR_ATTRIBUTE_READ_ONLY;
    }
    if (rv == CKR_OK && handle_version(handle) != 0 && (metadata || forward.count > 0)) {
        log_warning("SetAttributeValue: a version object is read-only; change the key");
        rv = CKR_ACTION_PROHIBITED;
    }
    bool rotate_now = false, delete_material = false;
    if (rv == CKR_OK) {
        bool v;
        rotate_now = attr_get_bool(tmpl, count, CKA_CMK_ROTATE_NOW, &v) == ATTR_PRESENT && v;
        delete_material =
            attr_get_bool(tmpl, count, CKA_CMK_DELETE_MATERIAL, &v) == ATTR_PRESENT && v;
    }
    if (rv == CKR_OK && forward.count > 0)
        rv = change_key(session, handle, tmpl, count, &forward, metadata);
    else if (rv == CKR_OK && metadata)
        rv = commit_template(session, handle, tmpl, count);
    if (rv == CKR_OK && rotate_now) rv = cmk_rotate(session, rec.row, false);
    if (rv == CKR_OK && delete_material) rv = cmk_import_delete_material(session, rec.row);
    tmpl_free(&forward);
    change_free(&c);
    cmk_record_free(&rec);
    return rv;
}

CK_RV cmk_destroy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle)
{
    /* Read, decide and write under the store's write lock (see commit_template). */
    struct cmk_record rec, old;
    CK_RV rv = begin_and_load(session, handle, false, &rec, &old);
    if (rv != CKR_OK) return rv; /* a secret or private object already destroyed too */
    const char *what;
    if (handle_version(handle) != 0) {
        /* A version object stands for one version of the key's material, which goes only
         * with the key (its purge): read-only, as for C_SetAttributeValue. */
        log_warning("DestroyObject: key %s: a version object is read-only; destroy the key",
                    rec.key_id);
        return end_and_free(CKR_ACTION_PROHIBITED, &rec, &old);
    }
    if (handle_kind(handle) == CMK_OBJ_PUBLIC) {
        /* Clients drop the public half and keep signing, or drop both halves in either
         * order: only that object goes, the key's state stays. */
        rec.objects &= ~(unsigned)CMK_OBJ_PUBLIC;
        what = "DeletePublicKeyObject";
    } else if (!backend_session_logged_in(&module.be, session)) {
        /* A key made public (CKA_PRIVATE=FALSE) is seen and used without a login, but its
         * destroy schedules the key's deletion: a change of the key, the user's alone. */
        log_warning("DestroyObject: key %s: destroying a key schedules its deletion and needs "
                    "the user logged in",
                    rec.key_id);
        return end_and_free(CKR_USER_NOT_LOGGED_IN, &rec, &old);
    } else if (module.cfg.allow_immediate_destroy) {
        /* Due at once, committed before any material goes: the purge destroys material
         * inside its own transaction, and a process killed there would otherwise leave an
         * Enabled row naming material that is gone. A due row is ended by the next purge. */
        rec.state = CMK_STATE_PENDING_DELETION;
        rec.deletion_date = util_now();
        int64_t row = rec.row;
        if (store_cmk_update(module.store, &rec) != STORE_OK) rv = CKR_DEVICE_ERROR;
        rv = end_and_free(rv, &rec, &old);
        return rv == CKR_OK ? cmk_destroy_now(session, row) : rv;
    } else {
        unsigned long days =
            rec.pending_window ? rec.pending_window : module.cfg.pending_window_days;
        rec.state = CMK_STATE_PENDING_DELETION;
        rec.deletion_date = util_now() + (int64_t)days * 86400;
        what = "ScheduleKeyDeletion";
        log_info("key %s: scheduled for deletion in %lu days", rec.key_id, days);
    }
    rv = commit_changes(&old, &rec, NULL, what);
    return end_and_free(rv, &rec, &old);
}
