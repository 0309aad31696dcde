/* mech_extra.h - the mechanisms the module runs itself on SOFTWARE keys or in-process
 * (SM4 and its key generation, SM3, AES-CTR), for C_GetMechanismList/Info: the backend
 * knows none of the vendor ones, and may or may not offer AES-CTR itself. */
#ifndef CMKP11_MECH_EXTRA_H
#define CMKP11_MECH_EXTRA_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

#define MECH_EXTRA_MAX 8

/* Appends to list[0..n) those of the table that are not in it already, and
 * CKM_CMK_SM3_HMAC when the backend serves it; list has room for n + MECH_EXTRA_MAX.
 * Returns the new count. */
CK_ULONG mech_extra_merge(CK_MECHANISM_TYPE *list, CK_ULONG n);
/* An SM mechanism the backend serves through [gm_backend] (sm_backend_map.h): true, with
 * the backend's flags for the mapped code joined to the module's own; false otherwise. */
bool mech_extra_mapped_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);
/* The module's own answer for type: CKR_MECHANISM_INVALID when not in the table. */
CK_RV mech_extra_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);

#endif
