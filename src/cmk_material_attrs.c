/* cmk_material_attrs.c - the standard attributes of a key's material are the same on every
 * version: a change made on the key reaches all its versions, and a rotation's new version
 * starts from the primary version's attributes, not from the defaults.
 *
 * The backend objects hold these attributes (the backend enforces them); the store does
 * not repeat them, so there is one truth per version and nothing to keep in step. Versions
 * are always named by number: the cache's idea of the primary may lag a commit another
 * process just made. */
#include "cmk_material_attrs.h"

#include <stdlib.h>
#include <string.h>

#include "cmk.h"
#include "cmk_cache.h"
#include "handles.h"
#include "log.h"
#include "module.h"

/* What a client may set on a key and a new version takes over. The rest of a version's
 * template is the module's: class, type, length, identity, sensitivity, token, private. */
static const CK_ATTRIBUTE_TYPE inherited_types[CMK_INHERITED_MAX] = {
    CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN,       CKA_VERIFY,   CKA_WRAP,
    CKA_UNWRAP,  CKA_DERIVE,  CKA_START_DATE, CKA_END_DATE,
};

/* One version's backend object, found again once if a cached handle went stale (probe:
 * a call on it that says so). */
static CK_RV version_material(CK_SESSION_HANDLE session, int64_t row, unsigned kind,
                              unsigned long version, CK_OBJECT_HANDLE *material)
{
    CK_OBJECT_HANDLE cmk = handle_for_version(row, kind, version);
    CK_RV rv = cmk_resolve_backend(session, cmk, material);
    if (rv != CKR_OK) return rv;
    CK_OBJECT_CLASS cls;
    CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof(cls)};
    rv = module.be.fn->C_GetAttributeValue(session, *material, &a, 1);
    if (!cmk_handle_went_stale(rv)) return CKR_OK;
    cmk_cache_forget_row_handles(row);
    return cmk_resolve_backend(session, cmk, material);
}

CK_RV cmk_material_read_inherited(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                                  unsigned long version, struct cmk_inherited *out)
{
    memset(out, 0, sizeof(*out));
    CK_OBJECT_HANDLE material = 0;
    CK_RV rv = version_material(session, rec->row, CMK_OBJ_SECRET, version, &material);
    if (rv != CKR_OK) return rv;
    CK_ATTRIBUTE a[CMK_INHERITED_MAX];
    for (size_t i = 0; i < CMK_INHERITED_MAX; i++) {
        a[i].type = inherited_types[i];
        a[i].pValue = out->values[i];
        a[i].ulValueLen = sizeof(out->values[i]);
    }
    /* One call; an attribute the backend does not keep for this class comes back with
     * CK_UNAVAILABLE_INFORMATION and the others are still filled (PKCS#11 5.7). */
    rv = module.be.fn->C_GetAttributeValue(session, material, a, CMK_INHERITED_MAX);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
        return rv;
    for (size_t i = 0; i < CMK_INHERITED_MAX; i++) {
        bool is_date = a[i].type == CKA_START_DATE || a[i].type == CKA_END_DATE;
        CK_ULONG want = is_date ? sizeof(CK_DATE) : sizeof(CK_BBOOL);
        if (a[i].ulValueLen == want) out->attrs[out->count++] = a[i]; /* an empty date: none */
    }
    return CKR_OK;
}

/* The values one version's object has for the attributes being changed. */
struct material_saved {
    unsigned long version;
    CK_OBJECT_HANDLE material;
    CK_ATTRIBUTE *attrs;
    CK_ULONG count;
};

static void saved_free(struct material_saved *s)
{
    for (CK_ULONG i = 0; s->attrs && i < s->count; i++)
        free(s->attrs[i].pValue);
    free(s->attrs);
    s->attrs = NULL;
    s->count = 0;
}

/* An attribute that cannot be read (not kept for this class) is left out: setting it
 * fails on every version alike, before anything changed. */
static CK_RV save_current(CK_SESSION_HANDLE session, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                          struct material_saved *s)
{
    if (!(s->attrs = calloc(count ? count : 1, sizeof(*s->attrs)))) return CKR_HOST_MEMORY;
    for (CK_ULONG i = 0; i < count; i++) {
        CK_ATTRIBUTE a = {tmpl[i].type, NULL, 0};
        if (module.be.fn->C_GetAttributeValue(session, s->material, &a, 1) != CKR_OK ||
            a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
            continue;
        if (!(a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1))) return CKR_HOST_MEMORY;
        s->attrs[s->count++] = a; /* owned by s from here */
        if (module.be.fn->C_GetAttributeValue(session, s->material, &s->attrs[s->count - 1], 1) !=
            CKR_OK)
            free(s->attrs[--s->count].pValue);
    }
    return CKR_OK;
}

static CK_RV set_on(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material, const CK_ATTRIBUTE *tmpl,
                    CK_ULONG count)
{
    CK_RV rv;
    MODULE_UNDER_TOKEN_LOCK(
        rv, module.be.fn->C_SetAttributeValue(session, material, (CK_ATTRIBUTE_PTR)tmpl, count));
    return rv;
}

/* Puts back what versions [0, upto) of change had, one attribute at a time, so one that
 * cannot go back does not keep the others from it. */
static void put_back(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                     struct cmk_material_change *change, unsigned long upto)
{
    for (unsigned long i = 0; i < upto; i++) {
        struct material_saved *s = &change->saved[i];
        for (CK_ULONG k = 0; k < s->count; k++) {
            CK_RV rv = set_on(session, s->material, &s->attrs[k], 1);
            if (rv != CKR_OK)
                log_error("SetAttributeValue: key %s version %lu: could not put attribute 0x%lx "
                          "back (0x%lx): its versions now differ; set it on the key again",
                          rec->key_id, s->version, s->attrs[k].type, rv);
        }
    }
}

void cmk_material_change_free(struct cmk_material_change *change)
{
    for (unsigned long i = 0; change->saved && i < change->count; i++)
        saved_free(&change->saved[i]);
    free(change->saved);
    change->saved = NULL;
    change->count = 0;
}

void cmk_material_undo(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                       struct cmk_material_change *change)
{
    put_back(session, rec, change, change->count);
}

CK_RV cmk_material_set_all_versions(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                                    unsigned kind, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                                    struct cmk_material_change *change)
{
    unsigned long versions = rec->primary_version ? rec->primary_version : 1;
    change->count = 0;
    if (!(change->saved = calloc(versions, sizeof(*change->saved)))) return CKR_HOST_MEMORY;
    /* First every version found and its values saved, the primary first; nothing changes
     * until all of them are known. */
    CK_RV rv = CKR_OK;
    for (unsigned long v = versions; v >= 1 && rv == CKR_OK; v--) {
        struct material_saved *s = &change->saved[change->count++];
        s->version = v;
        rv = version_material(session, rec->row, kind, v, &s->material);
        if (rv == CKR_OK) rv = save_current(session, tmpl, count, s);
        if (rv != CKR_OK)
            log_error("SetAttributeValue: key %s version %lu: its material cannot be read "
                      "(0x%lx); no version was changed",
                      rec->key_id, v, rv);
        /* The key's handle is good: a version's missing material is the token's fault. */
        if (cmk_handle_went_stale(rv)) rv = CKR_FUNCTION_FAILED;
    }
    /* Then the change, the primary first: a change the backend refuses is refused there. */
    unsigned long done = 0;
    for (; rv == CKR_OK && done < change->count; done++) {
        rv = set_on(session, change->saved[done].material, tmpl, count);
        if (rv != CKR_OK && done > 0)
            log_error("SetAttributeValue: key %s version %lu refused a change its newer versions "
                      "took (0x%lx); it is put back on them",
                      rec->key_id, change->saved[done].version, rv);
        if (rv != CKR_OK) break;
    }
    if (rv != CKR_OK) {
        put_back(session, rec, change, done);
        cmk_material_change_free(change);
    }
    return rv;
}
