/* backend_gcm.h - one single-part AES-GCM operation in the backend, run to its end. */
#ifndef CMKP11_BACKEND_GCM_H
#define CMKP11_BACKEND_GCM_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

/* Encrypts or decrypts in (in_len bytes, in may be NULL when in_len is 0) with CKM_AES_GCM
 * and gcm under the backend object material. *out_len holds out's capacity, which the
 * caller has checked against the result's length; on CKR_OK it holds the length written.
 * The backend writes into a module-side buffer big enough for any backend's length rule
 * (SoftHSMv2 wants the whole ciphertext's length to decrypt), wiped after the copy. The
 * backend's operation is over when this returns, whatever the result. A failed tag gives
 * CKR_ENCRYPTED_DATA_INVALID; any other failure logs one line and keeps a code that says
 * what failed (session, login, memory, device), else gives CKR_DEVICE_ERROR. */
CK_RV backend_gcm_run(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material,
                      const CK_GCM_PARAMS *gcm, bool encrypt, const unsigned char *in,
                      CK_ULONG in_len, unsigned char *out, CK_ULONG_PTR out_len);

#endif
