/* cmk_copy.h - session copies of a CMK's objects (C_CopyObject with CKA_TOKEN=FALSE, as
 * OpenSSL's pkcs11-provider and other clients make to cache a key). A copy is no second
 * key: it is the CMK itself under a handle of the session's own, so every use still meets
 * the key's state and usage (a Disable reaches the copy at once), it never outlives its
 * session, and destroying it drops the handle, not the key. It answers the key's
 * attributes, with CKA_TOKEN FALSE. */
#ifndef CMKP11_CMK_COPY_H
#define CMKP11_CMK_COPY_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

#include "fork_phase.h"

/* Copy handles: the low word's two top bits set, nothing above; the backend's handles
 * never take this range (checked where they come in, as for CMK handles). */
static inline bool handle_is_copy(CK_OBJECT_HANDLE h)
{
    return (h & 0xC0000000UL) == 0xC0000000UL && (h >> 32) == 0;
}

/* C_CopyObject of a CMK object: only a session copy (CKA_TOKEN FALSE or absent from a
 * template that names nothing else) of the key itself, its secret, private or public
 * object; *copy gets the new handle. */
CK_RV cmk_copy_make(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, const CK_ATTRIBUTE *tmpl,
                    CK_ULONG count, CK_OBJECT_HANDLE *copy);
/* If *handle is a copy of this session, the key's handle replaces it (CKR_OK); a copy
 * unknown to the session is CKR_OBJECT_HANDLE_INVALID; any other handle is left alone. */
CK_RV cmk_copy_resolve(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *handle);
/* C_DestroyObject of a copy: the handle goes, the key stays. */
CK_RV cmk_copy_destroy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE copy);
/* C_GetAttributeValue of a copy: the key's answers, CKA_TOKEN FALSE. */
CK_RV cmk_copy_get_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE copy,
                              CK_ATTRIBUTE_PTR tmpl, CK_ULONG count);
/* The copies of session that match a find template (none for one naming a vendor
 * attribute: the KMS view is of keys); *out malloc'd, caller frees. */
CK_RV cmk_copy_find(CK_SESSION_HANDLE session, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                    CK_OBJECT_HANDLE **out, CK_ULONG *found);
/* The session closed (or all did): its copies go. */
void cmk_copy_forget_session(CK_SESSION_HANDLE session);
void cmk_copy_forget_all(void);
/* fork_phase.h: the table's lock across fork(). */
void cmk_copy_at_fork(enum fork_phase p);

#endif
