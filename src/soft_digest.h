/* soft_digest.h - the SM3 digest (CKM_CMK_SM3, GB/T 32905) run in the module, as a
 * per-session vendor operation: the backend has no SM3. Other digests are forwarded. */
#ifndef CMKP11_SOFT_DIGEST_H
#define CMKP11_SOFT_DIGEST_H

#include <p11-kit/pkcs11.h>

#include "vendor_op.h"

#define SM3_DIGEST_LEN 32

/* C_DigestInit(CKM_CMK_SM3): CKR_MECHANISM_PARAM_INVALID for a parameter,
 * CKR_SESSION_HANDLE_INVALID for a session the backend does not know. */
CK_RV soft_digest_init(CK_SESSION_HANDLE session, const CK_MECHANISM *mech);
/* C_Digest / C_DigestUpdate / C_DigestFinal on the session's op; each ends the op as
 * PKCS#11 says (not on a length query or CKR_BUFFER_TOO_SMALL). */
CK_RV soft_digest(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                  CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV soft_digest_update(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                         CK_ULONG in_len);
CK_RV soft_digest_final(CK_SESSION_HANDLE session, struct vendor_op *op, CK_BYTE_PTR out,
                        CK_ULONG_PTR out_len);

#endif
