/* keyspec.h - which cloud key spec a PKCS#11 key-generation request makes. */
#ifndef CMKP11_KEYSPEC_H
#define CMKP11_KEYSPEC_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>

struct keyspec {
    char name[40];        /* "AES_256", "RSA_2048", "EC_P256", "RSA_3092", "EC_brainpoolP256r1" */
    CK_KEY_TYPE key_type; /* CKK_AES, CKK_CMK_SM4, CKK_RSA, CKK_EC, CKK_EC_EDWARDS,
                             CKK_GENERIC_SECRET, CKK_DES2, CKK_DES3 */
    bool symmetric;
    bool cloud_spec; /* one of the clouds' own names */
};

/* Works out the spec from the mechanism and the key's template (the public one for a
 * pair). Returns CKR_OK, or a code with one log line naming the field and rule. */
CK_RV keyspec_from_request(CK_MECHANISM_TYPE mech, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           bool cloud_specs_only, struct keyspec *out);

/* Bytes of secret material a symmetric spec names ("AES_256" 32, "SM4" 16, "HMAC_256"
 * 32); 0 for other specs. */
size_t keyspec_secret_bytes(const char *spec);
/* A symmetric encryption key type (AES, SM4): ENCRYPT_DECRYPT, rotates, envelope. */
bool keyspec_is_cipher_key(CK_KEY_TYPE type);

#endif
