/* keyspec.h - the clouds' names for key specs, usages, states, origins and protection
 * levels, and what each means for PKCS#11. */
#ifndef CMKCTL_KEYSPEC_H
#define CMKCTL_KEYSPEC_H

#include <p11-kit/pkcs11.h>
#include <stddef.h>

enum spec_family { FAMILY_AES, FAMILY_SM4, FAMILY_HMAC, FAMILY_RSA, FAMILY_EC, FAMILY_SM2 };

struct key_spec {
    const char *name; /* canonical, as the module stores it */
    enum spec_family family;
    CK_ULONG size;               /* AES/HMAC: CKA_VALUE_LEN bytes; RSA: modulus bits */
    const unsigned char *ec_oid; /* DER OID for CKA_EC_PARAMS */
    size_t ec_oid_len;
    CK_ULONG ec_coordinate_bytes; /* half of a raw ECDSA signature */
};

enum spec_lookup { SPEC_FOUND, SPEC_UNKNOWN, SPEC_UNSUPPORTED };

/* Canonical names and the synonyms the clouds use (case-insensitive). */
enum spec_lookup keyspec_lookup(const char *name, const struct key_spec **out);
/* The default symmetric spec: SM4 in gm_mode (as the clouds' mainland regions), else
 * AES_256. */
const struct key_spec *keyspec_default(int gm_mode);
/* A symmetric encryption spec (AES, SM4): ENCRYPT_DECRYPT, rotates, SOFTWARE level. */
int keyspec_is_cipher(const struct key_spec *spec);
/* By canonical name as the module reports it (CKA_CMK_KEY_SPEC); NULL for other specs. */
const struct key_spec *keyspec_by_name(const char *name);
/* "AES_128, AES_192, ..." for messages. */
const char *keyspec_names(void);

/* A --key-usage value: plain usages, or Tencent's combined values that also fix the spec
 * (*implied is set then). */
enum spec_lookup keyusage_lookup(const char *text, CK_ULONG *usage,
                                 const struct key_spec **implied);
int keyusage_allowed(const struct key_spec *spec, CK_ULONG usage);
CK_ULONG keyusage_default(const struct key_spec *spec);

const char *keyusage_name(CK_ULONG usage);
const char *keystate_name(CK_ULONG state);
int keystate_parse(const char *text, CK_ULONG *state);
const char *origin_name(CK_ULONG origin);
const char *protection_name(CK_ULONG level);

#endif
