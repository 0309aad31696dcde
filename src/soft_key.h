/* soft_key.h - SOFTWARE protection level: material sealed in the store under the
 * backend's token master key, unsealed once per process and version into locked memory
 * that core dumps leave out, and used in-process through OpenSSL. */
#ifndef CMKP11_SOFT_KEY_H
#define CMKP11_SOFT_KEY_H

#include "fork_phase.h"

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOFT_IV_LEN 12
#define SOFT_TAG_LEN 16
#define SOFT_MAX_KEY 64      /* AES-256 32, SM4 16, HMAC up to HMAC_512 */
#define SOFT_MAX_PKCS8 16384 /* an RSA-4096 PrivateKeyInfo is about 2.4 KB */

/* Makes key_bytes of material from the backend's RNG, seals it under the master key
 * (made on first need) with key id and version as AAD, and stores it for row. */
CK_RV soft_key_make(CK_SESSION_HANDLE session, int64_t row, const char *key_id,
                    unsigned long version, size_t key_bytes);

/* Seals material of any length (a PKCS#8 PrivateKeyInfo for key pairs) as soft_key_make
 * does, and stores it for row. The caller wipes material. */
CK_RV soft_key_seal(int64_t row, const char *key_id, unsigned long version,
                    const unsigned char *material, size_t len);

/* Seals the len-byte CKA_VALUE of obj, an extractable, non-sensitive session object of
 * the backend (imported material), as soft_key_seal does: the value is read straight into
 * locked memory and wiped once sealed. The caller destroys obj. */
CK_RV soft_key_seal_object(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE obj, int64_t row,
                           const char *key_id, unsigned long version, size_t len);

/* Reseeds the module's OpenSSL DRBGs with the backend's RNG as additional input: before
 * generating a key pair in-process. */
CK_RV soft_key_seed_drbg(void);

/* Initialises OpenSSL's secure heap (locked, MADV_DONTDUMP) unless the host has; false,
 * with a log line, when it cannot be locked. */
bool soft_key_secure_heap_ready(void);

/* One version's private key (its PKCS#8 unsealed once per process and version, decoded
 * into the secure heap, the DER wiped at once), with a reference the caller frees with
 * EVP_PKEY_free. CKR_DEVICE_ERROR as for soft_key_cipher_init. */
CK_RV soft_key_pkey(int64_t row, const char *key_id, unsigned long version, EVP_PKEY **out);

/* Initialises ctx for AES in mode ("GCM", "CBC", "ECB", "CTR") or SM4 ("SM4-ECB",
 * "SM4-CBC", "SM4-CTR") under one version's material
 * (unsealed if this process has not yet), with the cipher fetched once from the module's
 * own OpenSSL library context. CKR_DEVICE_ERROR, with a log line, when the sealed
 * material is missing or fails authentication, or the master key is missing. */
CK_RV soft_key_cipher_init(CK_SESSION_HANDLE session, int64_t row, const char *key_id,
                           unsigned long version, EVP_CIPHER_CTX *ctx, const char *mode,
                           const unsigned char *iv, size_t iv_len, bool encrypt);

/* Initialises an HMAC ctx (EVP_MAC "HMAC" of the module's context) with digest under one
 * version's material, unsealed as for soft_key_cipher_init. */
CK_RV soft_key_mac_init(int64_t row, const char *key_id, unsigned long version, EVP_MAC_CTX **ctx,
                        const char *digest);

/* Wipes one key's (row) unsealed material and private keys from memory. */
void soft_key_forget(int64_t row);
/* Wipes all of it and releases the arena and ciphers (C_Finalize). */
void soft_key_cleanup(void);

/* fork_phase.h: the unsealed material's locks across fork() (the child's C_Initialize then
 * wipes what it inherited). */
void soft_key_at_fork(enum fork_phase p);

#endif
