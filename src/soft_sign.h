/* soft_sign.h - sign, verify, encrypt and decrypt on SOFTWARE key pairs (RSA, EC, SM2),
 * in-process with OpenSSL EVP, as per-session vendor operations (vendor_op.h). Multi-part
 * input is gathered and run as one at the last call. */
#ifndef CMKP11_SOFT_SIGN_H
#define CMKP11_SOFT_SIGN_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>

#include "cmk_cache.h"
#include "vendor_op.h"

/* C_SignInit / C_VerifyInit / C_EncryptInit / C_DecryptInit (kind VOP_PKEY_*) on a
 * SOFTWARE pair's object whose use cmk_check_use has just allowed (live: its facts): the
 * mechanism, its parameter and the key are checked here, state and usage again at every
 * call. */
CK_RV soft_sign_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                     const struct cmk_live *live, enum vendor_op_kind kind);
/* Sign, encrypt or decrypt over in (single-part) or, in == NULL, the op's buffer (Final).
 * Ends the op unless it was a length query or the buffer was too small. */
CK_RV soft_sign_run(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                    size_t in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
/* Verify sig over in or, in == NULL, the op's buffer; ends the op. */
CK_RV soft_sign_verify(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                       size_t in_len, const unsigned char *sig, size_t sig_len);
/* An Update: appends the part; ends the op on failure. */
CK_RV soft_sign_update(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *part,
                       size_t len);

/* The SM2 mechanisms only the SOFTWARE level serves, for C_GetMechanismList and
 * C_GetMechanismInfo (the backend lists the RSA and EC ones). */
#define SOFT_SIGN_SM2_MECHANISMS 3
void soft_sign_sm2_mechanisms(CK_MECHANISM_TYPE *out);
/* Fills info and returns true when type is one of them. */
bool soft_sign_sm2_mechanism_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);

#endif
