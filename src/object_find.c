/* object_find.c - searching CMKs and pass-through objects. */
#include "object_find.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "cmk.h"
#include "cmk_copy.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "log.h"
#include "module.h"
#include "object_track.h"
#include "session_objects.h"
#include "template.h"

struct handle_list {
    CK_OBJECT_HANDLE *items;
    CK_ULONG count, capacity;
};

static int list_add(struct handle_list *l, CK_OBJECT_HANDLE h)
{
    if (l->count == l->capacity) {
        CK_ULONG cap = l->capacity ? l->capacity * 2 : 32;
        CK_OBJECT_HANDLE *grown = realloc(l->items, cap * sizeof(*grown));
        if (!grown) return -1;
        l->items = grown;
        l->capacity = cap;
    }
    l->items[l->count++] = h;
    return 0;
}

/* What the template asks of CMKs, split into what SQL answers and what it cannot. */
struct cmk_query {
    struct store_filter filter;
    unsigned kinds;          /* object kinds wanted */
    int want_private;        /* CKA_PRIVATE asked: -1 any */
    bool impossible;         /* no CMK object can match */
    const CK_ATTRIBUTE **residual; /* standard attributes compared on the material */
    CK_ULONG nresidual;
    char alias[300];
    char *tag_key, *tag_value;
    unsigned long version; /* a version asked for: version objects are listed */
};

static unsigned kinds_of_class(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_SECRET_KEY: return CMK_OBJ_SECRET;
    case CKO_PRIVATE_KEY: return CMK_OBJ_PRIVATE;
    case CKO_PUBLIC_KEY: return CMK_OBJ_PUBLIC;
    default: return 0;
    }
}

static const char *text_copy(const CK_ATTRIBUTE *a, char *buf, size_t size)
{
    if (!a->pValue || a->ulValueLen >= size || memchr(a->pValue, 0, a->ulValueLen)) return NULL;
    memcpy(buf, a->pValue, a->ulValueLen);
    buf[a->ulValueLen] = '\0';
    return buf;
}

static bool read_ulong(const CK_ATTRIBUTE *a, long *out)
{
    if (!a->pValue || a->ulValueLen != sizeof(CK_ULONG)) return false;
    *out = (long)*(CK_ULONG *)a->pValue;
    return true;
}

/* Vendor attributes in a find template; false when the value cannot match anything. */
static bool query_vendor(struct cmk_query *q, const CK_ATTRIBUTE *a)
{
    struct store_filter *f = &q->filter;
    switch (a->type) {
    case CKA_CMK_ALIAS: {
        /* "alias/x" finds x, as the clouds spell it; an empty alias finds nothing. */
        char raw[300];
        const char *text = text_copy(a, raw, sizeof(raw));
        if (!text || a->ulValueLen == 0) return false;
        if (!strncasecmp(text, "alias/", 6)) text += 6;
        snprintf(q->alias, sizeof(q->alias), "%s", text);
        f->alias = q->alias;
        return true;
    }
    case CKA_CMK_KEY_ID: {
        static __thread char key_id[40];
        f->key_id = text_copy(a, key_id, sizeof(key_id));
        return f->key_id != NULL;
    }
    case CKA_CMK_DESCRIPTION:
        f->description = a->pValue ? strndup(a->pValue, a->ulValueLen) : NULL;
        return f->description != NULL;
    case CKA_CMK_KEY_SPEC: {
        static __thread char spec[48];
        f->key_spec = text_copy(a, spec, sizeof(spec));
        return f->key_spec != NULL;
    }
    case CKA_CMK_KEY_USAGE: return read_ulong(a, &f->usage);
    case CKA_CMK_ORIGIN: return read_ulong(a, &f->origin);
    case CKA_CMK_PROTECTION_LEVEL: return read_ulong(a, &f->protection);
    case CKA_CMK_KEY_STATE:
        f->include_pending_deletion = true;
        return read_ulong(a, &f->state) && f->state != (long)CMK_STATE_CREATING;
    case CKA_CMK_ROTATION_ENABLED:
        if (!a->pValue || a->ulValueLen != sizeof(CK_BBOOL)) return false;
        f->rotation_enabled = *(CK_BBOOL *)a->pValue ? 1 : 0;
        return true;
    case CKA_CMK_VERSION: {
        long v;
        if (!read_ulong(a, &v) || v < 1) return false;
        q->version = (unsigned long)v;
        f->min_version = q->version;
        return true;
    }
    case CKA_CMK_TAG: {
        if (!a->pValue) return false;
        const char *eq = memchr(a->pValue, '=', a->ulValueLen);
        size_t klen = eq ? (size_t)(eq - (const char *)a->pValue) : a->ulValueLen;
        q->tag_key = strndup(a->pValue, klen);
        if (eq) q->tag_value = strndup(eq + 1, a->ulValueLen - klen - 1);
        f->tag_key = q->tag_key;
        f->tag_value = q->tag_value;
        return q->tag_key != NULL;
    }
    }
    return false; /* other vendor attributes are not searchable */
}

static bool query_standard(struct cmk_query *q, const CK_ATTRIBUTE *a)
{
    struct store_filter *f = &q->filter;
    switch (a->type) {
    case CKA_CLASS: {
        long cls;
        if (!read_ulong(a, &cls)) return false;
        q->kinds &= kinds_of_class((CK_OBJECT_CLASS)cls);
        return q->kinds != 0;
    }
    case CKA_KEY_TYPE: return read_ulong(a, &f->key_type);
    case CKA_TOKEN: return a->ulValueLen == sizeof(CK_BBOOL) && *(CK_BBOOL *)a->pValue;
    case CKA_PRIVATE:
        if (a->ulValueLen != sizeof(CK_BBOOL)) return false;
        q->want_private = *(CK_BBOOL *)a->pValue ? 1 : 0;
        return true;
    case CKA_LABEL: /* the object's label, byte for byte, as on the backend */
        if (a->ulValueLen && !a->pValue) return false;
        f->has_label = true;
        f->label = a->pValue;
        f->label_len = a->ulValueLen;
        return true;
    case CKA_ID:
        f->has_cka_id = true;
        f->cka_id = a->pValue;
        f->cka_id_len = a->ulValueLen;
        return true;
    }
    q->residual[q->nresidual++] = a;
    return true;
}

static void query_build(struct cmk_query *q, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    memset(q, 0, sizeof(*q));
    store_filter_init(&q->filter);
    q->kinds = CMK_OBJ_SECRET | CMK_OBJ_PRIVATE | CMK_OBJ_PUBLIC;
    q->want_private = -1;
    q->residual = calloc(n ? n : 1, sizeof(*q->residual));
    if (!q->residual) {
        q->impossible = true;
        return;
    }
    for (CK_ULONG i = 0; i < n && !q->impossible; i++) {
        bool ok = attr_is_vendor(t[i].type) ? query_vendor(q, &t[i]) : query_standard(q, &t[i]);
        if (!ok) q->impossible = true;
    }
}

static void query_free(struct cmk_query *q)
{
    free((void *)q->filter.description);
    free(q->tag_key);
    free(q->tag_value);
    free(q->residual);
}

/* Compares the attributes SQL cannot answer against the material itself. */
static bool residual_match(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                           const struct cmk_query *q)
{
    if (q->nresidual == 0) return true;
    struct cmk_live live;
    if (cmk_cache_get(handle_row(handle), &live) == CKR_OK &&
        live.protection == CMK_PROTECTION_SOFTWARE) {
        for (CK_ULONG i = 0; i < q->nresidual; i++) { /* answered by the record */
            const CK_ATTRIBUTE *want = q->residual[i];
            unsigned char stack[512];
            CK_ATTRIBUTE have = {want->type, stack, sizeof(stack)};
            if (cmk_get_attributes(session, handle, &have, 1) != CKR_OK ||
                have.ulValueLen != want->ulValueLen ||
                (want->ulValueLen && memcmp(stack, want->pValue, want->ulValueLen)))
                return false;
        }
        return true;
    }
    CK_OBJECT_HANDLE material;
    if (cmk_resolve_backend(session, handle, &material) != CKR_OK) return false;
    for (CK_ULONG i = 0; i < q->nresidual; i++) {
        const CK_ATTRIBUTE *want = q->residual[i];
        unsigned char stack[512];
        CK_ATTRIBUTE have = {want->type, stack, sizeof(stack)};
        if (module.be.fn->C_GetAttributeValue(session, material, &have, 1) != CKR_OK ||
            have.ulValueLen != want->ulValueLen ||
            (want->ulValueLen && memcmp(stack, want->pValue, want->ulValueLen)))
            return false;
    }
    return true;
}

static CK_RV find_cmks(CK_SESSION_HANDLE session, const CK_ATTRIBUTE *t, CK_ULONG n,
                       struct handle_list *out)
{
    struct cmk_query q;
    query_build(&q, t, n);
    if (q.impossible) {
        query_free(&q);
        return CKR_OK;
    }
    struct store_match *m = NULL;
    size_t count = 0;
    enum store_status s = store_cmk_find(module.store, &q.filter, &m, &count);
    CK_RV rv = s == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
    bool user = backend_session_logged_in(&module.be, session);
    static const unsigned kinds[3] = {CMK_OBJ_SECRET, CMK_OBJ_PRIVATE, CMK_OBJ_PUBLIC};
    for (size_t i = 0; rv == CKR_OK && i < count; i++) {
        for (int k = 0; k < 3; k++) {
            unsigned kind = kinds[k];
            if (!(m[i].objects & kind & q.kinds)) continue;
            /* Of a key pending deletion, a plain find sees only a public object that was
             * not destroyed itself; naming its state or key id (KMS) sees the key. */
            if (m[i].state == CMK_STATE_PENDING_DELETION && kind != CMK_OBJ_PUBLIC &&
                !q.filter.include_pending_deletion && !q.filter.key_id)
                continue;
            bool is_private = (m[i].private_mask & kind) != 0;
            if (is_private && !user) continue; /* PKCS#11: private objects need login */
            if (q.want_private >= 0 && q.want_private != (int)is_private) continue;
            CK_OBJECT_HANDLE h = handle_for_version(m[i].row, kind, q.version);
            if (!residual_match(session, h, &q)) continue;
            if (list_add(out, h)) rv = CKR_HOST_MEMORY;
        }
    }
    free(m);
    query_free(&q);
    return rv;
}

/* Is this backend object the raw material of some CMK version? */
static bool is_cmk_material(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h)
{
    char label[80];
    CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label)};
    if (module.be.fn->C_GetAttributeValue(session, h, &a, 1) != CKR_OK) return false;
    size_t prefix = strlen(CMK_BACKEND_LABEL_PREFIX);
    return a.ulValueLen >= prefix && memcmp(label, CMK_BACKEND_LABEL_PREFIX, prefix) == 0;
}

/* The session objects this process made, checked one by one: no backend scan. */
static CK_RV find_session_objects(CK_SESSION_HANDLE session, CK_ATTRIBUTE *t, CK_ULONG n,
                                  struct handle_list *out)
{
    CK_ULONG count = 0;
    CK_OBJECT_HANDLE *objects = session_objects_snapshot(&count);
    CK_RV rv = CKR_OK;
    for (CK_ULONG i = 0; i < count && rv == CKR_OK; i++) {
        int matches = 0;
        if (backend_object_matches(&module.be, session, objects[i], t, n, &matches) != CKR_OK) {
            session_objects_remove(objects[i]); /* its session has closed */
            continue;
        }
        if (matches && list_add(out, objects[i])) rv = CKR_HOST_MEMORY;
    }
    free(objects);
    return rv;
}

static CK_RV find_passthrough(CK_SESSION_HANDLE session, CK_ATTRIBUTE *t, CK_ULONG n,
                              struct handle_list *out)
{
    if (tmpl_has_vendor(t, n)) return CKR_OK;
    /* Token objects that are not CMKs were recorded when made through cmkp11: unless
     * one may match (or objects of other origin may exist), the backend is asked only
     * about this process's session objects, never scanned. */
    bool token = true;
    bool session_only = attr_get_bool(t, n, CKA_TOKEN, &token) == ATTR_PRESENT && !token;
    if (session_only || !object_track_token_objects_may_match(t, n))
        return find_session_objects(session, t, n, out);
    /* A label that is not ours cannot match material; skip the per-object check. */
    const CK_ATTRIBUTE *label = attr_find(t, n, CKA_LABEL);
    size_t prefix = strlen(CMK_BACKEND_LABEL_PREFIX);
    bool need_check = !label || label->ulValueLen < prefix ||
                      memcmp(label->pValue, CMK_BACKEND_LABEL_PREFIX, prefix) == 0;
    /* Under the shared token lock, as every backend find (module_backend_find_by_id). */
    CK_RV rv = module_token_lock_shared();
    if (rv != CKR_OK) return rv;
    rv = module.be.fn->C_FindObjectsInit(session, t, n);
    if (rv != CKR_OK) {
        module_token_unlock();
        return rv;
    }
    CK_OBJECT_HANDLE batch[64];
    CK_ULONG got;
    while ((rv = module.be.fn->C_FindObjects(session, batch, 64, &got)) == CKR_OK && got > 0) {
        for (CK_ULONG i = 0; i < got && rv == CKR_OK; i++) {
            if (handle_is_cmk(batch[i]) || handle_is_copy(batch[i])) {
                log_error("backend object handle 0x%lx collides with cmkp11's handle range; "
                          "it is not listed",
                          batch[i]);
                continue;
            }
            if (need_check && is_cmk_material(session, batch[i])) continue;
            if (list_add(out, batch[i])) rv = CKR_HOST_MEMORY;
        }
    }
    CK_RV rv2 = module.be.fn->C_FindObjectsFinal(session);
    module_token_unlock();
    return rv != CKR_OK ? rv : rv2;
}

/* The session copies of CMKs this session made (cmk_copy.h), as session objects. */
static CK_RV find_copies(CK_SESSION_HANDLE session, CK_ATTRIBUTE *t, CK_ULONG n,
                         struct handle_list *out)
{
    CK_OBJECT_HANDLE *copies;
    CK_ULONG found;
    CK_RV rv = cmk_copy_find(session, t, n, &copies, &found);
    for (CK_ULONG i = 0; rv == CKR_OK && i < found; i++)
        if (list_add(out, copies[i])) rv = CKR_HOST_MEMORY;
    free(copies);
    return rv;
}

CK_RV object_find_all(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                      CK_OBJECT_HANDLE **out, CK_ULONG *found)
{
    struct handle_list list = {0};
    CK_RV rv = find_cmks(session, tmpl, count, &list);
    if (rv == CKR_OK) rv = find_passthrough(session, tmpl, count, &list);
    if (rv == CKR_OK) rv = find_copies(session, tmpl, count, &list);
    if (rv != CKR_OK) {
        free(list.items);
        return rv;
    }
    *out = list.items;
    *found = list.count;
    return CKR_OK;
}
