/* soft_key.h - SOFTWARE protection level: material sealed in the store under the
 * backend's token master key, unsealed once per process and version into locked memory
 * that core dumps leave out, and used in-process through OpenSSL. */
#ifndef CMKP11_SOFT_KEY_H
#define CMKP11_SOFT_KEY_H

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOFT_IV_LEN 12
#define SOFT_TAG_LEN 16
#define SOFT_MAX_KEY 32

/* Makes key_bytes of material from the backend's RNG, seals it under the master key
 * (made on first need) with key id and version as AAD, and stores it for row. */
CK_RV soft_key_make(CK_SESSION_HANDLE session, int64_t row, const char *key_id,
                    unsigned long version, size_t key_bytes);

/* Initialises ctx for AES in mode ("GCM", "CBC", "ECB", "CTR") or SM4 ("SM4-ECB",
 * "SM4-CBC", "SM4-CTR") under one version's material
 * (unsealed if this process has not yet), with the cipher fetched once from the module's
 * own OpenSSL library context. CKR_DEVICE_ERROR, with a log line, when the sealed
 * material is missing or fails authentication, or the master key is missing. */
CK_RV soft_key_cipher_init(CK_SESSION_HANDLE session, int64_t row, const char *key_id,
                           unsigned long version, EVP_CIPHER_CTX *ctx, const char *mode,
                           const unsigned char *iv, size_t iv_len, bool encrypt);

/* Wipes one key's (row) unsealed material from memory. */
void soft_key_forget(int64_t row);
/* Wipes all of it and releases the arena and ciphers (C_Finalize). */
void soft_key_cleanup(void);

#endif
