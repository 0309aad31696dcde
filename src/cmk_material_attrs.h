/* cmk_material_attrs.h - a key's standard attributes across its versions. */
#ifndef CMKP11_CMK_MATERIAL_ATTRS_H
#define CMKP11_CMK_MATERIAL_ATTRS_H

#include <p11-kit/pkcs11.h>
#include <stdint.h>

#define CMK_INHERITED_MAX 9

/* The attributes a new version takes over from the primary one: attrs[0..count) point
 * into values. */
struct cmk_inherited {
    unsigned char values[CMK_INHERITED_MAX][sizeof(CK_DATE)];
    CK_ATTRIBUTE attrs[CMK_INHERITED_MAX];
    CK_ULONG count;
};

/* Reads, from a version's backend object, the usage flags and dates a client may have
 * set on the key (at CreateKey or later). */
CK_RV cmk_material_read_inherited(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material,
                                  struct cmk_inherited *out);

/* Sets standard attributes on every version (1..primary) of one kind of a key's material:
 * all take the change or none keeps it. */
CK_RV cmk_material_set_all_versions(CK_SESSION_HANDLE session, int64_t row, unsigned kind,
                                    unsigned long primary, const CK_ATTRIBUTE *tmpl,
                                    CK_ULONG count);

#endif
