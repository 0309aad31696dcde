/* cmk_import.h - EXTERNAL origin: keys created without material, the import parameters
 * (a wrapping pair and an authenticated import token), the import of wrapped material,
 * its expiry and its deletion. */
#ifndef CMKP11_CMK_IMPORT_H
#define CMKP11_CMK_IMPORT_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

#include "cmk_record.h"
#include "keyspec.h"

/* Can material of this spec be imported? CKR_OK, or a refusal with one log line. */
CK_RV cmk_import_spec_supported(const struct keyspec *spec);
/* Turns a freshly inserted Creating row of EXTERNAL origin into PendingImport (no
 * material), audited; removes the row when that fails. */
CK_RV cmk_import_finish_create(struct cmk_record *rec);

/* GetParametersForImport: C_GenerateKeyPair(CKM_CMK_IMPORT_PARAMS). */
CK_RV cmk_import_get_parameters(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR pub, CK_ULONG npub,
                                CK_ATTRIBUTE_PTR priv, CK_ULONG npriv, CK_OBJECT_HANDLE_PTR pub_key,
                                CK_OBJECT_HANDLE_PTR priv_key);
/* Is this C_UnwrapKey an import (a CMK unwrapping key and CKA_CMK_IMPORT_TOKEN)? */
bool cmk_import_wanted(CK_OBJECT_HANDLE unwrapping_key, const CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* ImportKeyMaterial: C_UnwrapKey into the CMK named by its handle. */
CK_RV cmk_import_material(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE cmk,
                          CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl,
                          CK_ULONG n, CK_OBJECT_HANDLE_PTR key);
/* DeleteImportedKeyMaterial (CKA_CMK_DELETE_MATERIAL = CK_TRUE). */
CK_RV cmk_import_delete_material(CK_SESSION_HANDLE session, int64_t row);

/* Does the key have material in the backend? (False in PendingImport.) */
bool cmk_import_has_material(const struct cmk_record *rec);
/* Answers an import vendor attribute of a CMK; (CK_RV)-1 when a not one of them. */
CK_RV cmk_import_answer_vendor(const struct cmk_record *rec, CK_ATTRIBUTE *a);
/* Answers what the backend says of material it unwrapped rather than generated, for a
 * SOFTWARE key of EXTERNAL origin (an HSM key's backend object says it itself): CKA_LOCAL,
 * CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE FALSE, CKA_KEY_GEN_MECHANISM unavailable.
 * (CK_RV)-1 when the key is of KMS origin or a is not one of these. */
CK_RV cmk_import_answer_unwrapped(const struct cmk_record *rec, unsigned kind, CK_ATTRIBUTE *a);
/* Answers a standard attribute of a key without material from its record. */
CK_RV cmk_import_answer_pending(const struct cmk_record *rec, unsigned kind, CK_ATTRIBUTE *a);

/* Housekeeping at login: undo imports whose process died half-way, and destroy the
 * material of keys whose material expiry has passed (state PendingImport). */
void cmk_import_recover(CK_SESSION_HANDLE session);
void cmk_import_expire_due(CK_SESSION_HANDLE session);
/* Destroys a key's outstanding wrapping pairs (the key is being destroyed). */
void cmk_import_forget(CK_SESSION_HANDLE session, const char *key_id);

/* cmk_attrs.c's answer helper: the PKCS#11 rules for one attribute value. */
CK_RV cmk_attr_put(CK_ATTRIBUTE *a, const void *value, CK_ULONG len);

#endif
