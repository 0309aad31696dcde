/* cmk_unwrap.h - C_UnwrapKey with a CMK as the unwrapping key. */
#ifndef CMKP11_CMK_UNWRAP_H
#define CMKP11_CMK_UNWRAP_H

#include <p11-kit/pkcs11.h>

/* Unwraps with the CMK's version the handle names (the primary for the key itself); a key
 * wrapped by an older version, under a mechanism that checks integrity, unwraps with that
 * version. A blob no version takes: CKR_WRAPPED_KEY_INVALID. */
CK_RV cmk_unwrap(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE cmk,
                 CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                 CK_OBJECT_HANDLE_PTR key);

#endif
