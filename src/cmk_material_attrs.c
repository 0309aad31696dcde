/* cmk_material_attrs.c - the standard attributes of a key's material are the same on every
 * version: a change made on the key reaches all its versions, and a rotation's new version
 * starts from the primary version's attributes, not from the defaults.
 *
 * The backend objects hold these attributes (the backend enforces them); the store does
 * not repeat them, so there is one truth per version and nothing to keep in step. */
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

CK_RV cmk_material_read_inherited(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material,
                                  struct cmk_inherited *out)
{
    memset(out, 0, sizeof(*out));
    CK_ATTRIBUTE a[CMK_INHERITED_MAX];
    for (size_t i = 0; i < CMK_INHERITED_MAX; i++) {
        a[i].type = inherited_types[i];
        a[i].pValue = out->values[i];
        a[i].ulValueLen = sizeof(out->values[i]);
    }
    /* One call; an attribute the backend does not keep for this class comes back with
     * CK_UNAVAILABLE_INFORMATION and the others are still filled (PKCS#11 5.7). */
    CK_RV rv = module.be.fn->C_GetAttributeValue(session, material, a, CMK_INHERITED_MAX);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
        return rv;
    for (size_t i = 0; i < CMK_INHERITED_MAX; i++) {
        bool is_date = a[i].type == CKA_START_DATE || a[i].type == CKA_END_DATE;
        CK_ULONG want = is_date ? sizeof(CK_DATE) : sizeof(CK_BBOOL);
        if (a[i].ulValueLen == want) out->attrs[out->count++] = a[i]; /* an empty date: none */
    }
    return CKR_OK;
}

/* The values one backend object has now for the attributes of tmpl, to put back if a later
 * version refuses the change. Storage is owned by saved; free with saved_free. */
struct saved {
    CK_OBJECT_HANDLE material;
    CK_ATTRIBUTE *attrs;
    CK_ULONG count;
};

static void saved_free(struct saved *s)
{
    for (CK_ULONG i = 0; s->attrs && i < s->count; i++)
        free(s->attrs[i].pValue);
    free(s->attrs);
    memset(s, 0, sizeof(*s));
}

static CK_RV save_current(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material,
                          const CK_ATTRIBUTE *tmpl, CK_ULONG count, struct saved *s)
{
    memset(s, 0, sizeof(*s));
    s->material = material;
    if (!(s->attrs = calloc(count ? count : 1, sizeof(*s->attrs)))) return CKR_HOST_MEMORY;
    for (CK_ULONG i = 0; i < count; i++) {
        CK_ATTRIBUTE a = {tmpl[i].type, NULL, 0};
        /* An attribute that cannot be read cannot be put back either: it is left out. */
        if (module.be.fn->C_GetAttributeValue(session, material, &a, 1) != CKR_OK ||
            a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
            continue;
        if (!(a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1))) return CKR_HOST_MEMORY;
        s->attrs[s->count++] = a; /* owned by s from here */
        if (module.be.fn->C_GetAttributeValue(session, material, &s->attrs[s->count - 1], 1) !=
            CKR_OK)
            free(s->attrs[--s->count].pValue);
    }
    return CKR_OK;
}

/* One version's material, found again once if its cached handle went stale. */
static CK_RV material_of(CK_SESSION_HANDLE session, int64_t row, unsigned kind,
                         unsigned long version, CK_OBJECT_HANDLE *material, bool fresh)
{
    if (fresh) cmk_cache_forget_row_handles(row);
    return cmk_resolve_backend(session, handle_for_version(row, kind, version), material);
}

static CK_RV set_one(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material, const CK_ATTRIBUTE *tmpl,
                     CK_ULONG count)
{
    module_token_lock();
    CK_RV rv = module.be.fn->C_SetAttributeValue(session, material, (CK_ATTRIBUTE_PTR)tmpl, count);
    module_token_unlock();
    return rv;
}

CK_RV cmk_material_set_all_versions(CK_SESSION_HANDLE session, int64_t row, unsigned kind,
                                    unsigned long primary, const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
    if (primary == 0) primary = 1;
    struct saved *done = calloc(primary, sizeof(*done));
    if (!done) return CKR_HOST_MEMORY;
    CK_RV rv = CKR_OK;
    unsigned long n = 0;
    /* The primary first (version 0 names it): if the backend refuses the change, it does so
     * there, before anything changed. */
    for (unsigned long v = primary; v >= 1 && rv == CKR_OK; v--) {
        unsigned long version = v == primary ? 0 : v;
        CK_OBJECT_HANDLE material = 0;
        struct saved s = {0};
        rv = material_of(session, row, kind, version, &material, false);
        if (rv == CKR_OK) rv = save_current(session, material, tmpl, count, &s);
        if (rv == CKR_OK) rv = set_one(session, material, tmpl, count);
        if (cmk_handle_went_stale(rv)) {
            saved_free(&s);
            rv = material_of(session, row, kind, version, &material, true);
            if (rv == CKR_OK) rv = save_current(session, material, tmpl, count, &s);
            if (rv == CKR_OK) rv = set_one(session, material, tmpl, count);
        }
        if (rv == CKR_OK)
            done[n++] = s;
        else
            saved_free(&s);
        if (rv != CKR_OK && v != primary)
            log_error("SetAttributeValue: version %lu of the key refused a change its newer "
                      "versions took (0x%lx); the change is undone on them",
                      v, rv);
    }
    for (unsigned long i = 0; i < n; i++) {
        if (rv != CKR_OK && done[i].count)
            set_one(session, done[i].material, done[i].attrs, done[i].count);
        saved_free(&done[i]);
    }
    free(done);
    return rv;
}
