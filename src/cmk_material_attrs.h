/* cmk_material_attrs.h - a key's standard attributes across its versions. */
#ifndef CMKP11_CMK_MATERIAL_ATTRS_H
#define CMKP11_CMK_MATERIAL_ATTRS_H

#include <p11-kit/pkcs11.h>
#include <stdint.h>

#include "cmk_record.h"

#define CMK_INHERITED_MAX 9

/* The attributes a new version takes over from the primary one: attrs[0..count) point
 * into values. */
struct cmk_inherited {
    unsigned char values[CMK_INHERITED_MAX][sizeof(CK_DATE)];
    CK_ATTRIBUTE attrs[CMK_INHERITED_MAX];
    CK_ULONG count;
};

/* Reads, from version `version` of rec's secret material, the usage flags and dates a
 * client may have set on the key (at CreateKey or later). Any failure is returned: a
 * rotation must not fall back to defaults that would allow more. */
CK_RV cmk_material_read_inherited(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                                  unsigned long version, struct cmk_inherited *out);

/* A change made on every version, with what each had before, to put back. */
struct material_saved;
struct cmk_material_change {
    struct material_saved *saved;
    unsigned long count;
};

/* Sets standard attributes on every version (1..rec->primary_version) of one kind of a
 * key's material. All take the change or none keeps it: on failure what changed is put
 * back. On success, change can undo it (cmk_material_undo) if a later step fails; free it
 * with cmk_material_change_free either way. */
CK_RV cmk_material_set_all_versions(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                                    unsigned kind, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                                    struct cmk_material_change *change);
void cmk_material_undo(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                       struct cmk_material_change *change);
void cmk_material_change_free(struct cmk_material_change *change);

#endif
