/* template.c - attribute template helpers. */
#include "template.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

const CK_ATTRIBUTE *attr_find(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
    for (CK_ULONG i = 0; i < n; i++)
        if (tmpl[i].type == type) return &tmpl[i];
    return NULL;
}

enum attr_read attr_get_bool(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE type,
                             bool *out)
{
    const CK_ATTRIBUTE *a = attr_find(tmpl, n, type);
    if (!a) return ATTR_ABSENT;
    if (!a->pValue || a->ulValueLen != sizeof(CK_BBOOL)) return ATTR_BAD;
    *out = *(const CK_BBOOL *)a->pValue != CK_FALSE;
    return ATTR_PRESENT;
}

enum attr_read attr_get_ulong(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE type,
                              CK_ULONG *out)
{
    const CK_ATTRIBUTE *a = attr_find(tmpl, n, type);
    if (!a) return ATTR_ABSENT;
    if (!a->pValue || a->ulValueLen != sizeof(CK_ULONG)) return ATTR_BAD;
    memcpy(out, a->pValue, sizeof(CK_ULONG));
    return ATTR_PRESENT;
}

void tmpl_init(struct tmpl_builder *b)
{
    memset(b, 0, sizeof(*b));
}

void tmpl_free(struct tmpl_builder *b)
{
    free(b->attrs);
    memset(b, 0, sizeof(*b));
}

void tmpl_set(struct tmpl_builder *b, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len)
{
    for (CK_ULONG i = 0; i < b->count; i++) {
        if (b->attrs[i].type == type) {
            b->attrs[i].pValue = (void *)value;
            b->attrs[i].ulValueLen = len;
            return;
        }
    }
    if (b->count == b->capacity) {
        CK_ULONG cap = b->capacity ? b->capacity * 2 : 16;
        CK_ATTRIBUTE *grown = realloc(b->attrs, cap * sizeof(*grown));
        if (!grown) {
            b->failed = true;
            return;
        }
        b->attrs = grown;
        b->capacity = cap;
    }
    b->attrs[b->count++] = (CK_ATTRIBUTE){type, (void *)value, len};
}

void tmpl_remove(struct tmpl_builder *b, CK_ATTRIBUTE_TYPE type)
{
    for (CK_ULONG i = 0; i < b->count; i++) {
        if (b->attrs[i].type == type) {
            b->attrs[i] = b->attrs[--b->count];
            return;
        }
    }
}

void tmpl_copy_standard(struct tmpl_builder *b, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++)
        if (!attr_is_vendor(tmpl[i].type))
            tmpl_set(b, tmpl[i].type, tmpl[i].pValue, tmpl[i].ulValueLen);
}

CK_RV tmpl_check_shape(const CK_ATTRIBUTE *tmpl, CK_ULONG n, const char *what)
{
    if (n > 0 && !tmpl) {
        log_warning("%s: template is NULL with %lu attributes", what, n);
        return CKR_ARGUMENTS_BAD;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        if (!tmpl[i].pValue && tmpl[i].ulValueLen > 0) {
            log_warning("%s: attribute 0x%lx has a length but no value", what, tmpl[i].type);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        for (CK_ULONG k = 0; k < i; k++) {
            if (tmpl[k].type == tmpl[i].type) {
                log_warning("%s: attribute 0x%lx is given twice", what, tmpl[i].type);
                return CKR_TEMPLATE_INCONSISTENT;
            }
        }
    }
    return CKR_OK;
}
