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

bool tmpl_wants_token(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    bool token = false;
    return attr_get_bool(tmpl, n, CKA_TOKEN, &token) == ATTR_PRESENT && token;
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

/* The attribute types of PKCS#11 v2.40 (and 3.x's CKA_UNIQUE_ID and 0x600 block). A
 * template naming another standard type is refused here: passed on, it may leave the
 * backend with a half-made object (SoftHSMv2 keeps a generated key whose template it
 * then refuses). Types in the vendor range are the backend's or ours to judge. */
static bool attr_type_standard(CK_ATTRIBUTE_TYPE t)
{
    static const CK_ATTRIBUTE_TYPE ranges[][2] = {
        {0x000, 0x004}, {0x010, 0x012}, {0x080, 0x08C}, {0x090, 0x090}, {0x100, 0x10C},
        {0x110, 0x111}, {0x120, 0x129}, {0x130, 0x134}, {0x140, 0x140}, {0x161, 0x166},
        {0x170, 0x172}, {0x180, 0x181}, {0x200, 0x202}, {0x210, 0x210}, {0x220, 0x22F},
        {0x250, 0x252}, {0x300, 0x302}, {0x400, 0x406}, {0x480, 0x482}, {0x500, 0x503},
        {0x600, 0x6FF}, {0x40000211, 0x40000213}, {0x40000600, 0x40000600},
    };
    if (t & CKA_VENDOR_DEFINED) return true;
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        if (t >= ranges[i][0] && t <= ranges[i][1]) return true;
    return false;
}

/* The size a value of this type must have, 0 when it varies. */
static CK_ULONG attr_fixed_size(CK_ATTRIBUTE_TYPE t)
{
    switch (t) {
    case CKA_TOKEN: case CKA_PRIVATE: case CKA_TRUSTED: case CKA_SENSITIVE: case CKA_ENCRYPT:
    case CKA_DECRYPT: case CKA_WRAP: case CKA_UNWRAP: case CKA_SIGN: case CKA_SIGN_RECOVER:
    case CKA_VERIFY: case CKA_VERIFY_RECOVER: case CKA_DERIVE: case CKA_EXTRACTABLE:
    case CKA_LOCAL: case CKA_NEVER_EXTRACTABLE: case CKA_ALWAYS_SENSITIVE: case CKA_MODIFIABLE:
    case CKA_COPYABLE: case CKA_DESTROYABLE: case CKA_ALWAYS_AUTHENTICATE:
    case CKA_WRAP_WITH_TRUSTED:
        return sizeof(CK_BBOOL);
    case CKA_CLASS: case CKA_CERTIFICATE_TYPE: case CKA_CERTIFICATE_CATEGORY: case CKA_KEY_TYPE:
    case CKA_MODULUS_BITS: case CKA_PRIME_BITS: case CKA_SUB_PRIME_BITS: case CKA_VALUE_BITS:
    case CKA_VALUE_LEN: case CKA_KEY_GEN_MECHANISM:
        return sizeof(CK_ULONG);
    default:
        return 0;
    }
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
        if (!attr_type_standard(tmpl[i].type)) {
            log_warning("%s: attribute type 0x%lx is not a PKCS#11 attribute", what, tmpl[i].type);
            return CKR_ATTRIBUTE_TYPE_INVALID;
        }
        CK_ULONG size = attr_fixed_size(tmpl[i].type);
        if (size && tmpl[i].ulValueLen != size) {
            log_warning("%s: attribute 0x%lx must be %lu bytes, not %lu", what, tmpl[i].type,
                        size, tmpl[i].ulValueLen);
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
