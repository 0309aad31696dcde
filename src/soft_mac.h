/* soft_mac.h - HMAC on SOFTWARE generic-secret keys (key spec HMAC_128..HMAC_256),
 * in-process with OpenSSL's EVP_MAC, as per-session vendor operations on the sign and
 * verify slots (vendor_op.h). */
#ifndef CMKP11_SOFT_MAC_H
#define CMKP11_SOFT_MAC_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>

#include "cmk_cache.h"
#include "vendor_op.h"

/* C_SignInit / C_VerifyInit: CKM_SHA_1_HMAC, CKM_SHA224/256/384/512_HMAC, CKM_CMK_SM3_HMAC.
 * live: what cmk_check_use said when it allowed the use. */
CK_RV soft_mac_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                    const struct cmk_live *live, bool sign);
/* The MAC of in (or, in == NULL, the op's buffer) into out; ends the op unless it was a
 * length query or the buffer was too small. */
CK_RV soft_mac_sign(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                    size_t in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
/* Checks mac over in (or the op's buffer); ends the op. */
CK_RV soft_mac_verify(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                      size_t in_len, const unsigned char *mac, size_t mac_len);

#endif
