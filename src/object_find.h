/* object_find.h - C_FindObjectsInit: CMKs from the indexed store, everything else
 * from the backend, never a CMK's raw material. */
#ifndef CMKP11_OBJECT_FIND_H
#define CMKP11_OBJECT_FIND_H

#include <p11-kit/pkcs11.h>

/* Collects every matching handle into *out (malloc'd). */
CK_RV object_find_all(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                      CK_OBJECT_HANDLE **out, CK_ULONG *found);

#endif
