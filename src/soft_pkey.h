/* soft_pkey.h - SOFTWARE key pairs (RSA, EC, SM2): generated in-process in the module's
 * own OpenSSL library context, the private key sealed at once (soft_key), the public
 * key kept in the store as SPKI, from which every public attribute is answered. */
#ifndef CMKP11_SOFT_PKEY_H
#define CMKP11_SOFT_PKEY_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmk_create.h"
#include "cmk_record.h"
#include "keyspec.h"

#include <openssl/types.h>

/* A key pair spec of the SOFTWARE level, as OpenSSL names it. */
struct soft_pair_spec {
    const char *spec;  /* key spec */
    const char *type;  /* OpenSSL key type: "RSA", "EC" or "SM2" */
    const char *group; /* EC group, or NULL (RSA; SM2, whose type names its curve) */
    unsigned bits;     /* RSA modulus bits, or 0 */
};

/* The SOFTWARE pair spec named spec, NULL when the level does not make it. */
const struct soft_pair_spec *soft_pkey_spec(const char *spec);
/* Is spec a key pair spec the SOFTWARE level makes? */
bool soft_pkey_spec_supported(const char *spec);

/* Generates a key pair of spec (RSA_2048/3072/4096, EC_P256/P384/P521/P256K, EC_SM2),
 * with the CKA_PUBLIC_EXPONENT of the public template pub if it has one, seals its PKCS#8
 * for (row, version) and fills pk (malloc'd SPKI and DER EC point). */
CK_RV soft_pkey_generate(const struct keyspec *spec, const CK_ATTRIBUTE *pub, CK_ULONG npub,
                         int64_t row, const char *key_id, unsigned long version,
                         struct public_key *pk);

/* Seals pkey's private key, re-encoded as PKCS#8 (the DER wiped at once), for (row,
 * version). */
CK_RV soft_pkey_seal(EVP_PKEY *pkey, int64_t row, const char *key_id, unsigned long version);

/* Fills pk (malloc'd SPKI and, for EC and SM2, the DER CKA_EC_POINT) from pkey. */
CK_RV soft_pkey_public(EVP_PKEY *pkey, struct public_key *pk);

/* Answers a standard attribute of a SOFTWARE pair's private or public object (kind) from
 * the record alone, as the backend would for an HSM pair. */
CK_RV soft_pkey_answer(const struct cmk_record *rec, unsigned kind, CK_ATTRIBUTE *a);

#endif
