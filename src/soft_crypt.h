/* soft_crypt.h - encrypt and decrypt on SOFTWARE keys, in-process with OpenSSL EVP, as
 * per-session vendor operations (vendor_op.h). Input is gathered until the last call and
 * run as one, so every output length is known before anything is written. */
#ifndef CMKP11_SOFT_CRYPT_H
#define CMKP11_SOFT_CRYPT_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmk_cache.h"
#include "vendor_op.h"

/* C_EncryptInit / C_DecryptInit on a SOFTWARE key: on AES keys CKM_AES_GCM,
 * CKM_AES_CBC_PAD, CKM_AES_CBC, CKM_AES_ECB, CKM_AES_CTR; on SM4 keys CKM_CMK_SM4_ECB,
 * _CBC, _CBC_PAD, _CTR. A mechanism of the other key type: CKR_KEY_TYPE_INCONSISTENT.
 * live: what cmk_check_use said when it allowed the use (state and usage are asked
 * again at every call). */
CK_RV soft_crypt_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                      const struct cmk_live *live, bool encrypt);
/* Runs the op over in (single-part) or its buffer (in == NULL: at Final). */
CK_RV soft_crypt_run(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                     size_t in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
/* AES-GCM on one version of a SOFTWARE key (the envelope's cipher): out holds
 * ciphertext || tag; CKR_ENCRYPTED_DATA_INVALID when the tag fails. */
CK_RV soft_crypt_gcm(CK_SESSION_HANDLE session, const struct cmk_live *key, unsigned long version,
                     bool encrypt, const unsigned char *iv, size_t iv_len, const unsigned char *aad,
                     size_t aad_len, size_t tag_len, const unsigned char *in, size_t in_len,
                     CK_BYTE_PTR out, CK_ULONG_PTR out_len);
/* Raw SM4-ECB encryption of whole blocks under one version of a SOFTWARE SM4 key: the
 * envelope derives its keys with it (the material itself never leaves soft_key). */
CK_RV soft_crypt_sm4_ecb(CK_SESSION_HANDLE session, const struct cmk_live *key,
                         unsigned long version, const unsigned char *in, size_t len,
                         unsigned char *out);

#endif
