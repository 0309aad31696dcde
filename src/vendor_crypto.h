/* vendor_crypto.h - the envelope mechanism and AES-GCM decrypt across key versions. */
#ifndef CMKP11_VENDOR_CRYPTO_H
#define CMKP11_VENDOR_CRYPTO_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

#include "envelope_format.h"
#include "vendor_op.h"

/* Envelope layout (envelope_format.h): format(1) | key id(16) | version(4, big-endian) |
 * IV(12) | ciphertext | tag(16). GCM's AAD is the 33-byte header followed by the
 * caller's AAD, so a changed header fails the tag. */

CK_RV envelope_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                    bool encrypt);
/* After the backend accepted CKM_AES_GCM decrypt with the primary version of a CMK that
 * has older versions: remembers what is needed to try those if the tag fails. */
CK_RV gcm_fallback_begin(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key);

/* The data calls for a session whose op is ours. */
CK_RV vendor_encrypt(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in, CK_ULONG in_len,
                     CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV vendor_encrypt_update(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in,
                            CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV vendor_encrypt_final(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len);
CK_RV vendor_decrypt(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in, CK_ULONG in_len,
                     CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV vendor_decrypt_update(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in,
                            CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV vendor_decrypt_final(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len);

#endif
