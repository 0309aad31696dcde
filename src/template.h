/* template.h - reading clients' attribute templates and building the backend's. */
#ifndef CMKP11_TEMPLATE_H
#define CMKP11_TEMPLATE_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>

#include "cmkp11/cmkp11.h"

static inline bool attr_is_vendor(CK_ATTRIBUTE_TYPE t)
{
    return (t & ~0xFFUL) == (CKA_VENDOR_DEFINED | CMKP11_VENDOR_BASE);
}

/* Does the template speak the KMS vocabulary (any CKA_CMK_* attribute)? */
static inline bool tmpl_has_vendor(const CK_ATTRIBUTE *t, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++)
        if (attr_is_vendor(t[i].type)) return true;
    return false;
}

/* One of the vendor attributes cmkp11 defines (include/cmkp11/cmkp11.h). */
static inline bool attr_is_known_vendor(CK_ATTRIBUTE_TYPE t)
{
    return attr_is_vendor(t) && t >= CKA_CMK_KEY_ID && t <= CKA_CMK_ROTATE_NOW;
}

const CK_ATTRIBUTE *attr_find(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE type);

enum attr_read { ATTR_ABSENT = 0, ATTR_PRESENT = 1, ATTR_BAD = -1 };
/* Reads a CK_BBOOL / CK_ULONG attribute; ATTR_BAD when the length or pointer is wrong. */
enum attr_read attr_get_bool(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE type,
                             bool *out);
enum attr_read attr_get_ulong(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE type,
                              CK_ULONG *out);
/* Does the template ask for a token object (CKA_TOKEN present and TRUE)? */
bool tmpl_wants_token(const CK_ATTRIBUTE *tmpl, CK_ULONG n);

/* A template under construction; values point at memory the caller keeps alive. */
struct tmpl_builder {
    CK_ATTRIBUTE *attrs;
    CK_ULONG count, capacity;
    bool failed; /* out of memory at some point: check once at the end */
};

void tmpl_init(struct tmpl_builder *b);
void tmpl_free(struct tmpl_builder *b);
/* Adds or replaces the attribute of that type. */
void tmpl_set(struct tmpl_builder *b, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len);
void tmpl_remove(struct tmpl_builder *b, CK_ATTRIBUTE_TYPE type);
/* Copies the client's attributes, leaving out cmkp11's vendor attributes. */
void tmpl_copy_standard(struct tmpl_builder *b, const CK_ATTRIBUTE *tmpl, CK_ULONG n);

/* Validates a client template's shape: non-NULL values where a length is given, known
 * attribute types, the right size for fixed-size types (CK_BBOOL, CK_ULONG), no attribute
 * type twice. Returns CKR_OK or the spec's code. */
CK_RV tmpl_check_shape(const CK_ATTRIBUTE *tmpl, CK_ULONG n, const char *what);

#endif
