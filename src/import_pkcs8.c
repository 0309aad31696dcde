/* import_pkcs8.c - a SOFTWARE key pair's imported material: the PKCS#8 PrivateKeyInfo the
 * backend unwrapped into a generic secret candidate, read into OpenSSL's secure heap
 * (locked, left out of core dumps), decoded in the module's own library context and
 * checked against the key spec. Its public key (SPKI) is the fingerprint, as for HSM
 * pairs, and what the store keeps once the import commits. */
#include "import_internal.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <string.h>

#include "pubkey.h"
#include "soft_key.h"
#include "soft_pkey.h"

static const char op[] = "ImportKeyMaterial";

/* The bytes must be one DER PrivateKeyInfo and nothing after it: trailing bytes would be
 * sealed with nothing to say what they were. */
static CK_RV decode(const struct cmk_record *rec, const unsigned char *der, size_t len,
                    EVP_PKEY **out)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    bool whole = p8 && p == der + len;
    *out = whole ? EVP_PKCS82PKEY_ex(p8, pubkey_libctx(), NULL) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears its copy of the private key */
    if (*out) return CKR_OK;
    log_warning("%s: key %s: the material is not %s (an unencrypted PKCS#8 PrivateKeyInfo, "
                "DER, is expected for %s)",
                op, rec->key_id,
                whole ? "a private key OpenSSL can decode" : "one PKCS#8 structure", rec->key_spec);
    return CKR_WRAPPED_KEY_INVALID;
}

/* A curve's NID from OpenSSL's group name or a NIST name (P-256). */
static int curve_nid(const char *name)
{
    int nid = EC_curve_nist2nid(name);
    return nid != NID_undef ? nid : OBJ_sn2nid(name);
}

/* EC and SM2: the spec's named curve; a key given by explicit parameters is refused, as
 * its SPKI and CKA_EC_PARAMS would not name the curve. */
static CK_RV check_curve(const struct cmk_record *rec, const struct soft_pair_spec *ps,
                         EVP_PKEY *pkey)
{
    char group[64] = "", encoding[32] = "";
    size_t n = 0;
    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &n);
    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, encoding, sizeof(encoding),
                                   &n);
    if (!group[0] || curve_nid(group) != curve_nid(ps->group ? ps->group : "SM2")) {
        log_warning("%s: the material is a key on curve %s, key %s is %s", op,
                    group[0] ? group : "(unnamed)", rec->key_id, rec->key_spec);
        return CKR_KEY_SIZE_RANGE;
    }
    if (strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP)) {
        log_warning("%s: key %s: the material gives its curve as explicit parameters; only a "
                    "named curve (OID) is taken",
                    op, rec->key_id);
        return CKR_CMK_INCORRECT_KEY_MATERIAL;
    }
    return CKR_OK;
}

/* RSA: the spec's modulus size and an exponent as generation takes it (odd, 3 or more, at
 * most 64 bits). */
static CK_RV check_rsa(const struct cmk_record *rec, const struct soft_pair_spec *ps,
                       EVP_PKEY *pkey)
{
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits != (int)ps->bits) {
        log_warning("%s: the material is an RSA %d key, key %s is %s", op, bits, rec->key_id,
                    rec->key_spec);
        return CKR_KEY_SIZE_RANGE;
    }
    BIGNUM *e = NULL;
    bool sane = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1 && BN_is_odd(e) &&
                BN_num_bits(e) <= 64 && BN_cmp(e, BN_value_one()) > 0;
    BN_free(e);
    if (!sane) {
        log_warning("%s: key %s: the material's RSA public exponent is not odd, 3 or more and "
                    "at most 64 bits",
                    op, rec->key_id);
        return CKR_CMK_INCORRECT_KEY_MATERIAL;
    }
    return CKR_OK;
}

/* The decoded key against the spec: its type (RSA, or EC/SM2 with the spec's curve), its
 * size, and the agreement of its public and private halves. */
static CK_RV check_key(const struct cmk_record *rec, EVP_PKEY *pkey)
{
    const struct soft_pair_spec *ps = soft_pkey_spec(rec->key_spec);
    if (!ps) return CKR_FUNCTION_FAILED; /* refused at CreateKey */
    bool rsa = ps->bits != 0, is_rsa = EVP_PKEY_is_a(pkey, "RSA");
    bool is_ec = EVP_PKEY_is_a(pkey, "EC") || EVP_PKEY_is_a(pkey, "SM2");
    if (rsa ? !is_rsa : !is_ec) {
        log_warning("%s: the material is a %s private key, key %s is %s", op,
                    EVP_PKEY_get0_type_name(pkey), rec->key_id, rec->key_spec);
        return CKR_CMK_INCORRECT_KEY_MATERIAL;
    }
    CK_RV rv = rsa ? check_rsa(rec, ps, pkey) : check_curve(rec, ps, pkey);
    if (rv != CKR_OK) return rv;
    /* EC: the public point is the private scalar's; RSA: n = pq, d inverts e, the primes
     * are primes. A key that fails would sign what its public key does not verify. */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(pubkey_libctx(), pkey, NULL);
    bool ok = ctx && EVP_PKEY_pairwise_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        log_warning("%s: key %s: the material's public and private parts do not agree (or it "
                    "lacks the CRT parts of an RSA key)",
                    op, rec->key_id);
        return CKR_CMK_INCORRECT_KEY_MATERIAL;
    }
    return CKR_OK;
}

CK_RV import_soft_check_pair(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                             CK_OBJECT_HANDLE candidate, CK_ULONG len, struct import_facts *mf)
{
    if (len == 0 || len > SOFT_MAX_PKCS8) {
        log_warning("%s: key %s: the material is %lu bytes; a PKCS#8 private key of %s is 1..%d",
                    op, rec->key_id, len, rec->key_spec, SOFT_MAX_PKCS8);
        return CKR_WRAPPED_KEY_INVALID;
    }
    if (!soft_key_secure_heap_ready()) return CKR_HOST_MEMORY;
    unsigned char *der = OPENSSL_secure_malloc(len);
    if (!der) return CKR_HOST_MEMORY;
    CK_ATTRIBUTE value = {CKA_VALUE, der, len};
    EVP_PKEY *pkey = NULL;
    CK_RV rv = module.be.fn->C_GetAttributeValue(session, candidate, &value, 1);
    if (rv != CKR_OK || value.ulValueLen != len) {
        log_error("%s: key %s: the unwrapped material cannot be read: 0x%lx", op, rec->key_id, rv);
        rv = CKR_FUNCTION_FAILED;
    }
    if (rv == CKR_OK) rv = decode(rec, der, len, &pkey);
    OPENSSL_secure_clear_free(der, len); /* the decoded key is all that stays */
    if (rv == CKR_OK) rv = check_key(rec, pkey);
    struct public_key pk;
    if (rv == CKR_OK) rv = soft_pkey_public(pkey, &pk);
    if (rv != CKR_OK) {
        EVP_PKEY_free(pkey);
        return rv;
    }
    mf->pkey = pkey;
    mf->fp = pk.spki;
    mf->fp_len = pk.spki_len;
    mf->ec_point = pk.ec_point;
    mf->ec_point_len = pk.ec_point_len;
    return CKR_OK;
}
