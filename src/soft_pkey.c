/* soft_pkey.c - SOFTWARE key pairs: generation, and their attributes from the SPKI.
 *
 * The private key exists in clear only inside OpenSSL (secure heap) and, for the moment
 * it is sealed, as a PKCS#8 DER that is wiped at once. The public half is what the store
 * keeps (cmk.public_key_info, cmk.ec_point), so reading attributes never unseals. */
#include "soft_pkey.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "cmk_import.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "log.h"
#include "pubkey.h"
#include "soft_key.h"
#include "template.h"

static const struct soft_pair_spec pair_specs[] = {
    {"RSA_2048", "RSA", NULL, 2048},    {"RSA_3072", "RSA", NULL, 3072},
    {"RSA_4096", "RSA", NULL, 4096},    {"EC_P256", "EC", "P-256", 0},
    {"EC_P384", "EC", "P-384", 0},      {"EC_P521", "EC", "P-521", 0},
    {"EC_P256K", "EC", "secp256k1", 0}, {"EC_SM2", "SM2", NULL, 0},
};

const struct soft_pair_spec *soft_pkey_spec(const char *name)
{
    for (size_t i = 0; i < sizeof(pair_specs) / sizeof(pair_specs[0]); i++)
        if (!strcmp(pair_specs[i].spec, name)) return &pair_specs[i];
    return NULL;
}

bool soft_pkey_spec_supported(const char *spec) { return soft_pkey_spec(spec) != NULL; }

/* An RSA public exponent asked for: odd, 3 or more, at most 64 bits (what OpenSSL and
 * HSMs take); 0 with a log line when it is not one. */
static uint64_t exponent_of(const CK_ATTRIBUTE *a)
{
    const unsigned char *p = a->pValue;
    uint64_t e = 0;
    for (CK_ULONG i = 0; p && i < a->ulValueLen; i++) {
        if (e >> 56) return 0;
        e = e << 8 | p[i];
    }
    if (e < 3 || !(e & 1)) {
        log_warning("CreateKey: CKA_PUBLIC_EXPONENT must be odd, at least 3 and at most 64 "
                    "bits");
        return 0;
    }
    return e;
}

static EVP_PKEY *generate(const struct soft_pair_spec *ps, uint64_t exponent)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(pubkey_libctx(), ps->type, NULL);
    size_t bits = ps->bits;
    OSSL_PARAM params[3] = {OSSL_PARAM_END, OSSL_PARAM_END, OSSL_PARAM_END};
    if (ps->bits) params[0] = OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_BITS, &bits);
    if (ps->bits) params[1] = OSSL_PARAM_construct_uint64(OSSL_PKEY_PARAM_RSA_E, &exponent);
    if (ps->group)
        params[0] =
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)ps->group, 0);
    if (ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_CTX_set_params(ctx, params) == 1)
        EVP_PKEY_generate(ctx, &pkey);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* A DER OCTET STRING around a raw EC point (CKA_EC_POINT as PKCS#11 wants it). */
static unsigned char *der_octet_string(const unsigned char *in, size_t len, CK_ULONG *out_len)
{
    size_t head = len < 128 ? 2 : 3;
    unsigned char *out = len < 256 ? malloc(head + len) : NULL;
    if (!out) return NULL;
    out[0] = 0x04;
    if (head == 3) out[1] = 0x81;
    out[head - 1] = (unsigned char)len;
    memcpy(out + head, in, len);
    *out_len = head + len;
    return out;
}

/* The raw public point and the curve OID (DER) of an EC or SM2 SPKI. */
static int spki_ec_parts(const unsigned char *spki, size_t spki_len, unsigned char **point,
                         CK_ULONG *point_len, unsigned char **params, int *params_len)
{
    const unsigned char *p = spki;
    /* Decoded in the module's library context: never a provider the host application loaded. */
    X509_PUBKEY *xpk = X509_PUBKEY_new_ex(pubkey_libctx(), NULL);
    if (xpk && !d2i_X509_PUBKEY(&xpk, &p, (long)spki_len)) xpk = NULL; /* d2i freed it */
    const unsigned char *raw = NULL;
    int raw_len = 0, ptype = 0;
    const void *pval = NULL;
    X509_ALGOR *alg = NULL;
    int rc = -1;
    if (xpk && X509_PUBKEY_get0_param(NULL, &raw, &raw_len, &alg, xpk) == 1) {
        X509_ALGOR_get0(NULL, &ptype, &pval, alg);
        if (point) *point = der_octet_string(raw, (size_t)raw_len, point_len);
        if (params && ptype == V_ASN1_OBJECT) {
            *params = NULL;
            *params_len = i2d_ASN1_OBJECT(pval, params);
        }
        rc = (!point || *point) && (!params || *params_len > 0) ? 0 : -1;
    }
    X509_PUBKEY_free(xpk);
    return rc;
}

static unsigned char *spki_of(EVP_PKEY *pkey, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pkey, &der);
    unsigned char *copy = n > 0 ? malloc((size_t)n) : NULL;
    if (copy) memcpy(copy, der, (size_t)n);
    OPENSSL_free(der);
    *len = copy ? (size_t)n : 0;
    return copy;
}

CK_RV soft_pkey_seal(EVP_PKEY *pkey, int64_t row, const char *key_id, unsigned long version)
{
    /* The DER is written into the secure heap (locked, left out of core dumps): measured
     * first, then encoded into a buffer of that size. */
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
    int len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, NULL) : -1;
    unsigned char *der =
        len > 0 && len <= SOFT_MAX_PKCS8 ? OPENSSL_secure_malloc((size_t)len) : NULL;
    unsigned char *w = der;
    bool encoded = der && i2d_PKCS8_PRIV_KEY_INFO(p8, &w) == len;
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears its copy of the private key */
    CK_RV rv = CKR_FUNCTION_FAILED;
    if (encoded)
        rv = soft_key_seal(row, key_id, version, der, (size_t)len);
    else
        log_error("key %s: cannot encode the private key as PKCS#8 (in the secure heap)", key_id);
    if (der) OPENSSL_secure_clear_free(der, (size_t)len);
    return rv;
}

CK_RV soft_pkey_generate(const struct keyspec *spec, const CK_ATTRIBUTE *pub, CK_ULONG npub,
                         int64_t row, const char *key_id, unsigned long version,
                         struct public_key *pk)
{
    memset(pk, 0, sizeof(*pk));
    const struct soft_pair_spec *ps = soft_pkey_spec(spec->name);
    if (!ps) return CKR_MECHANISM_INVALID; /* refused earlier by cmk_request */
    const CK_ATTRIBUTE *e = ps->bits ? attr_find(pub, npub, CKA_PUBLIC_EXPONENT) : NULL;
    uint64_t exponent = e ? exponent_of(e) : 65537;
    if (!exponent) return CKR_ATTRIBUTE_VALUE_INVALID;
    if (!soft_key_secure_heap_ready()) return CKR_HOST_MEMORY;
    CK_RV rv = soft_key_seed_drbg();
    if (rv != CKR_OK) return rv;
    EVP_PKEY *pkey = generate(ps, exponent);
    if (!pkey) {
        log_error("key %s: OpenSSL cannot generate a %s key pair", key_id, spec->name);
        return CKR_FUNCTION_FAILED;
    }
    rv = soft_pkey_seal(pkey, row, key_id, version);
    if (rv == CKR_OK) rv = soft_pkey_public(pkey, pk);
    EVP_PKEY_free(pkey);
    return rv;
}

CK_RV soft_pkey_public(EVP_PKEY *pkey, struct public_key *pk)
{
    memset(pk, 0, sizeof(*pk));
    pk->spki = spki_of(pkey, &pk->spki_len);
    if (pk->spki &&
        (EVP_PKEY_is_a(pkey, "RSA") ||
         !spki_ec_parts(pk->spki, pk->spki_len, &pk->ec_point, &pk->ec_point_len, NULL, NULL)))
        return CKR_OK;
    free(pk->spki);
    free(pk->ec_point);
    memset(pk, 0, sizeof(*pk));
    return CKR_HOST_MEMORY;
}

static CK_RV put(CK_ATTRIBUTE *a, const void *value, CK_ULONG len)
{
    return cmk_attr_put(a, value, len);
}

static CK_RV put_ulong(CK_ATTRIBUTE *a, CK_ULONG v) { return put(a, &v, sizeof(v)); }

static CK_RV put_bool(CK_ATTRIBUTE *a, bool v)
{
    CK_BBOOL b = v ? CK_TRUE : CK_FALSE;
    return put(a, &b, 1);
}

static CK_RV invalid(CK_ATTRIBUTE *a, CK_RV rv)
{
    a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
    return rv;
}

/* CKA_MODULUS / CKA_PUBLIC_EXPONENT / CKA_MODULUS_BITS of an RSA SPKI. */
static CK_RV rsa_part(const struct cmk_record *rec, CK_ATTRIBUTE *a)
{
    const unsigned char *p = rec->public_key_info;
    EVP_PKEY *pkey =
        p ? d2i_PUBKEY_ex(NULL, &p, (long)rec->public_key_info_len, pubkey_libctx(), NULL) : NULL;
    BIGNUM *bn = NULL;
    const char *name =
        a->type == CKA_PUBLIC_EXPONENT ? OSSL_PKEY_PARAM_RSA_E : OSSL_PKEY_PARAM_RSA_N;
    CK_RV rv = CKR_DEVICE_ERROR;
    if (pkey && EVP_PKEY_get_bn_param(pkey, name, &bn) == 1) {
        int n = BN_num_bytes(bn);
        unsigned char buf[1024];
        if (a->type == CKA_MODULUS_BITS)
            rv = put_ulong(a, (CK_ULONG)BN_num_bits(bn));
        else if (n > 0 && (size_t)n <= sizeof(buf) && BN_bn2bin(bn, buf) == n)
            rv = put(a, buf, (CK_ULONG)n);
    }
    if (rv == CKR_DEVICE_ERROR) {
        log_error("key %s: its stored public key does not decode", rec->key_id);
        a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
    }
    BN_free(bn);
    EVP_PKEY_free(pkey);
    return rv;
}

static CK_RV ec_params(const struct cmk_record *rec, CK_ATTRIBUTE *a)
{
    unsigned char *params = NULL;
    int len = 0;
    if (!rec->public_key_info ||
        spki_ec_parts(rec->public_key_info, rec->public_key_info_len, NULL, NULL, &params, &len)) {
        log_error("key %s: its stored public key does not decode", rec->key_id);
        return invalid(a, CKR_DEVICE_ERROR);
    }
    CK_RV rv = put(a, params, (CK_ULONG)len);
    OPENSSL_free(params);
    return rv;
}

static CK_MECHANISM_TYPE keygen_mechanism(CK_KEY_TYPE type)
{
    return type == CKK_RSA  ? CKM_RSA_PKCS_KEY_PAIR_GEN
           : type == CKK_EC ? CKM_EC_KEY_PAIR_GEN
                            : CKM_CMK_SM2_KEY_PAIR_GEN;
}

/* Attributes of the private object only. (CK_RV)-1: not one. */
static CK_RV private_only(const struct cmk_record *rec, CK_ATTRIBUTE *a)
{
    bool crypt = rec->usage == CMK_USAGE_ENCRYPT_DECRYPT;
    switch (a->type) {
    case CKA_SENSITIVE:
    case CKA_ALWAYS_SENSITIVE:
    case CKA_NEVER_EXTRACTABLE: return put_bool(a, true);
    case CKA_EXTRACTABLE:
    case CKA_SIGN_RECOVER:
    case CKA_UNWRAP:
    case CKA_ALWAYS_AUTHENTICATE:
    case CKA_WRAP_WITH_TRUSTED: return put_bool(a, false);
    case CKA_SIGN: return put_bool(a, !crypt);
    case CKA_DECRYPT: return put_bool(a, crypt);
    case CKA_VALUE:
    case CKA_PRIVATE_EXPONENT:
    case CKA_PRIME_1:
    case CKA_PRIME_2:
    case CKA_EXPONENT_1:
    case CKA_EXPONENT_2:
    case CKA_COEFFICIENT:
        if ((a->type == CKA_VALUE) == (rec->key_type == CKK_RSA)) break; /* not this type's */
        return invalid(a, CKR_ATTRIBUTE_SENSITIVE);
    }
    return (CK_RV)-1;
}

/* Attributes of the public object only. (CK_RV)-1: not one. */
static CK_RV public_only(const struct cmk_record *rec, CK_ATTRIBUTE *a)
{
    bool crypt = rec->usage == CMK_USAGE_ENCRYPT_DECRYPT;
    switch (a->type) {
    case CKA_VERIFY: return put_bool(a, !crypt);
    case CKA_ENCRYPT: return put_bool(a, crypt);
    case CKA_VERIFY_RECOVER:
    case CKA_WRAP:
    case CKA_TRUSTED: return put_bool(a, false);
    case CKA_MODULUS_BITS:
        if (rec->key_type == CKK_RSA) return rsa_part(rec, a);
        break;
    case CKA_EC_POINT:
        if (rec->key_type != CKK_RSA && rec->ec_point)
            return put(a, rec->ec_point, (CK_ULONG)rec->ec_point_len);
        break;
    }
    return (CK_RV)-1;
}

CK_RV soft_pkey_answer(const struct cmk_record *rec, unsigned kind, CK_ATTRIBUTE *a)
{
    /* Imported material not there yet (PendingImport): the spec answers, as for HSM pairs. */
    if (!cmk_import_has_material(rec)) return cmk_import_answer_pending(rec, kind, a);
    bool priv = kind == CMK_OBJ_PRIVATE;
    CK_RV rv = cmk_import_answer_unwrapped(rec, kind, a);
    if (rv == (CK_RV)-1) rv = priv ? private_only(rec, a) : public_only(rec, a);
    if (rv != (CK_RV)-1) return rv;
    switch (a->type) {
    case CKA_CLASS: return put_ulong(a, priv ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY);
    case CKA_KEY_TYPE: return put_ulong(a, rec->key_type);
    case CKA_KEY_GEN_MECHANISM: return put_ulong(a, keygen_mechanism(rec->key_type));
    case CKA_PRIVATE: return put_bool(a, (rec->private_mask & kind) != 0);
    case CKA_TOKEN:
    case CKA_LOCAL:
    case CKA_MODIFIABLE:
    case CKA_DESTROYABLE: return put_bool(a, true);
    case CKA_DERIVE:
    case CKA_COPYABLE: return put_bool(a, false);
    case CKA_START_DATE:
    case CKA_END_DATE:
    case CKA_SUBJECT: return put(a, NULL, 0);
    case CKA_MODULUS:
    case CKA_PUBLIC_EXPONENT:
        if (rec->key_type == CKK_RSA) return rsa_part(rec, a);
        break;
    case CKA_EC_PARAMS:
        if (rec->key_type != CKK_RSA) return ec_params(rec, a);
        break;
    }
    return invalid(a, CKR_ATTRIBUTE_TYPE_INVALID);
}
