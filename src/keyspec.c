/* keyspec.c - mechanism + template -> key spec.
 * Sizes and curves outside the clouds' list are accepted when the backend can make
 * them (real clients ask for RSA 1024 or brainpool curves), named after what they are. */
#include "keyspec.h"

#include <openssl/asn1.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmkp11/cmkp11.h"
#include "log.h"
#include "template.h"

struct curve_name {
    const char *sn;   /* OpenSSL short name */
    const char *spec; /* cloud key spec */
};

static const struct curve_name cloud_curves[] = {
    {"prime256v1", "EC_P256"},
    {"secp384r1", "EC_P384"},
    {"secp521r1", "EC_P521"},
    {"secp256k1", "EC_P256K"},
    {"SM2", "EC_SM2"},
};

/* Explicit curve parameters (a DER ECParameters SEQUENCE, as keys written from a PEM
 * made with -param_enc explicit carry them) name the curve they spell out, when OpenSSL
 * knows one with exactly those parameters. */
static int explicit_curve_nid(const unsigned char *p, size_t len)
{
    EC_GROUP *group = d2i_ECPKParameters(NULL, &p, (long)len);
    if (!group) return NID_undef;
    int nid = EC_GROUP_check_named_curve(group, 0, NULL);
    EC_GROUP_free(group);
    return nid > 0 ? nid : NID_undef;
}

/* CKA_EC_PARAMS holds a DER OID (named curve), explicit parameters, or, from some
 * clients, a PrintableString with the curve's name. Returns OpenSSL's short name, or
 * NULL. */
static const char *curve_short_name(const CK_ATTRIBUTE *params)
{
    const unsigned char *p = params->pValue;
    if (!p || params->ulValueLen < 2) return NULL;
    if (p[0] == 0x06) {
        ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)params->ulValueLen);
        if (!oid) return NULL;
        int nid = OBJ_obj2nid(oid);
        ASN1_OBJECT_free(oid);
        return nid == NID_undef ? NULL : OBJ_nid2sn(nid);
    }
    if (p[0] == 0x30) {
        int nid = explicit_curve_nid(p, params->ulValueLen);
        return nid == NID_undef ? NULL : OBJ_nid2sn(nid);
    }
    if (p[0] == 0x13 && p[1] + 2UL == params->ulValueLen) {
        char name[64];
        size_t len = p[1] < sizeof(name) - 1 ? p[1] : sizeof(name) - 1;
        memcpy(name, p + 2, len);
        name[len] = '\0';
        int nid = OBJ_sn2nid(name);
        if (nid == NID_undef) nid = OBJ_ln2nid(name);
        if (!strcmp(name, "edwards25519")) nid = NID_ED25519;
        if (!strcmp(name, "edwards448")) nid = NID_ED448;
        return nid == NID_undef ? NULL : OBJ_nid2sn(nid);
    }
    return NULL;
}

static CK_RV spec_aes(const CK_ATTRIBUTE *tmpl, CK_ULONG n, struct keyspec *out)
{
    CK_ULONG len;
    enum attr_read r = attr_get_ulong(tmpl, n, CKA_VALUE_LEN, &len);
    if (r == ATTR_ABSENT) {
        log_warning("CreateKey: CKA_VALUE_LEN is required for AES (16, 24 or 32 bytes)");
        return CKR_TEMPLATE_INCOMPLETE;
    }
    if (r == ATTR_BAD || (len != 16 && len != 24 && len != 32)) {
        log_warning("CreateKey: CKA_VALUE_LEN must be 16, 24 or 32 for AES");
        return r == ATTR_BAD ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_KEY_SIZE_RANGE;
    }
    snprintf(out->name, sizeof(out->name), "AES_%lu", len * 8);
    out->key_type = CKK_AES;
    out->symmetric = out->cloud_spec = true;
    return CKR_OK;
}

/* SM4 has one size: CKA_VALUE_LEN may be left out, and if given must be 16. */
static CK_RV spec_sm4(const CK_ATTRIBUTE *tmpl, CK_ULONG n, struct keyspec *out)
{
    CK_ULONG len = 16;
    enum attr_read r = attr_get_ulong(tmpl, n, CKA_VALUE_LEN, &len);
    if (r == ATTR_BAD || len != 16) {
        log_warning("CreateKey: CKA_VALUE_LEN must be 16 for SM4 (or left out)");
        return r == ATTR_BAD ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_KEY_SIZE_RANGE;
    }
    snprintf(out->name, sizeof(out->name), "SM4");
    out->key_type = CKK_CMK_SM4;
    out->symmetric = out->cloud_spec = true;
    return CKR_OK;
}

static CK_RV spec_hmac(const CK_ATTRIBUTE *tmpl, CK_ULONG n, struct keyspec *out)
{
    CK_ULONG len;
    enum attr_read r = attr_get_ulong(tmpl, n, CKA_VALUE_LEN, &len);
    if (r != ATTR_PRESENT || len < 16 || len > 128) {
        log_warning("CreateKey: CKA_VALUE_LEN must be 16..128 bytes for a generic secret (HMAC)");
        return r == ATTR_ABSENT ? CKR_TEMPLATE_INCOMPLETE : CKR_KEY_SIZE_RANGE;
    }
    snprintf(out->name, sizeof(out->name), "HMAC_%lu", len * 8);
    out->key_type = CKK_GENERIC_SECRET;
    out->symmetric = true;
    out->cloud_spec = len == 28 || len == 32 || len == 48 || len == 64; /* AWS HMAC_224..512 */
    return CKR_OK;
}

static CK_RV spec_rsa(const CK_ATTRIBUTE *tmpl, CK_ULONG n, struct keyspec *out)
{
    CK_ULONG bits;
    enum attr_read r = attr_get_ulong(tmpl, n, CKA_MODULUS_BITS, &bits);
    if (r != ATTR_PRESENT) {
        log_warning("CreateKey: CKA_MODULUS_BITS is required for RSA (2048, 3072 or 4096)");
        return r == ATTR_ABSENT ? CKR_TEMPLATE_INCOMPLETE : CKR_ATTRIBUTE_VALUE_INVALID;
    }
    snprintf(out->name, sizeof(out->name), "RSA_%lu", bits);
    out->key_type = CKK_RSA;
    out->cloud_spec = bits == 2048 || bits == 3072 || bits == 4096;
    return CKR_OK;
}

static CK_RV spec_ec(CK_MECHANISM_TYPE mech, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                     struct keyspec *out)
{
    const CK_ATTRIBUTE *params = attr_find(tmpl, n, CKA_EC_PARAMS);
    if (!params) {
        log_warning("CreateKey: CKA_EC_PARAMS is required for an EC key pair");
        return CKR_TEMPLATE_INCOMPLETE;
    }
    const char *sn = curve_short_name(params);
    if (!sn) {
        log_warning("CreateKey: CKA_EC_PARAMS names no known curve (explicit parameters "
                    "make a CMK spec only when they are a named curve's)");
        return CKR_CURVE_NOT_SUPPORTED;
    }
    out->key_type = mech == CKM_EC_KEY_PAIR_GEN ? CKK_EC : CKK_EC_EDWARDS;
    if (!strcmp(sn, "SM2")) { /* an EC curve with its own key type, made by cmkp11 */
        if (mech != CKM_EC_KEY_PAIR_GEN) {
            log_warning("CreateKey: the SM2 curve takes CKM_EC_KEY_PAIR_GEN or "
                        "CKM_CMK_SM2_KEY_PAIR_GEN, not an Edwards mechanism");
            return CKR_CURVE_NOT_SUPPORTED;
        }
        out->key_type = CKK_CMK_SM2;
    }
    for (size_t i = 0; i < sizeof(cloud_curves) / sizeof(cloud_curves[0]); i++) {
        if (!strcmp(sn, cloud_curves[i].sn)) {
            snprintf(out->name, sizeof(out->name), "%s", cloud_curves[i].spec);
            out->cloud_spec = true;
            return CKR_OK;
        }
    }
    if (!strcmp(sn, "ED25519") || !strcmp(sn, "ED448"))
        snprintf(out->name, sizeof(out->name), "%s", sn);
    else
        snprintf(out->name, sizeof(out->name), "EC_%s", sn);
    return CKR_OK;
}

/* Triple DES (three keys, or two): no cloud has it, but HSMs and payment software still
 * make it, and a plain template gets it as on the backend (unless cloud_specs_only). */
static void spec_des(CK_MECHANISM_TYPE mech, struct keyspec *out)
{
    bool two = mech == CKM_DES2_KEY_GEN;
    snprintf(out->name, sizeof(out->name), two ? "DES2" : "DES3");
    out->key_type = two ? CKK_DES2 : CKK_DES3;
    out->symmetric = true;
}

/* CKM_CMK_SM2_KEY_PAIR_GEN: the curve is implied; CKA_EC_PARAMS, if given, must name it. */
static CK_RV spec_sm2(const CK_ATTRIBUTE *tmpl, CK_ULONG n, struct keyspec *out)
{
    const CK_ATTRIBUTE *params = attr_find(tmpl, n, CKA_EC_PARAMS);
    const char *sn = params ? curve_short_name(params) : "SM2";
    if (!sn || strcmp(sn, "SM2")) {
        log_warning("CreateKey: CKA_EC_PARAMS with CKM_CMK_SM2_KEY_PAIR_GEN must be the SM2 "
                    "curve (OID 1.2.156.10197.1.301) or absent");
        return CKR_TEMPLATE_INCONSISTENT;
    }
    snprintf(out->name, sizeof(out->name), "EC_SM2");
    out->key_type = CKK_CMK_SM2;
    out->cloud_spec = true;
    return CKR_OK;
}

CK_RV keyspec_from_request(CK_MECHANISM_TYPE mech, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           bool cloud_specs_only, struct keyspec *out)
{
    memset(out, 0, sizeof(*out));
    CK_RV rv;
    switch (mech) {
    case CKM_AES_KEY_GEN: rv = spec_aes(tmpl, n, out); break;
    case CKM_CMK_SM4_KEY_GEN: rv = spec_sm4(tmpl, n, out); break;
    case CKM_GENERIC_SECRET_KEY_GEN: rv = spec_hmac(tmpl, n, out); break;
    case CKM_DES2_KEY_GEN:
    case CKM_DES3_KEY_GEN: spec_des(mech, out); rv = CKR_OK; break;
    case CKM_RSA_PKCS_KEY_PAIR_GEN:
    case CKM_RSA_X9_31_KEY_PAIR_GEN: rv = spec_rsa(tmpl, n, out); break;
    case CKM_EC_KEY_PAIR_GEN:
    case CKM_EC_EDWARDS_KEY_PAIR_GEN: rv = spec_ec(mech, tmpl, n, out); break;
    case CKM_CMK_SM2_KEY_PAIR_GEN: rv = spec_sm2(tmpl, n, out); break;
    default:
        log_warning("CreateKey: mechanism 0x%lx makes no CMK key spec (AES, SM4, generic "
                    "secret, DES3, RSA, EC and EdDSA can); use CKA_TOKEN=FALSE for a plain "
                    "session key",
                    mech);
        return CKR_MECHANISM_INVALID;
    }
    if (rv != CKR_OK) return rv;
    if (!out->cloud_spec) {
        if (cloud_specs_only) {
            log_warning("CreateKey: key spec %s is not a cloud key spec and policy "
                        "cloud_specs_only refuses it",
                        out->name);
            bool curve = out->key_type == CKK_EC || out->key_type == CKK_EC_EDWARDS;
            bool des = out->key_type == CKK_DES2 || out->key_type == CKK_DES3;
            return curve ? CKR_CURVE_NOT_SUPPORTED
                   : des ? CKR_MECHANISM_INVALID
                         : CKR_KEY_SIZE_RANGE; /* RSA, HMAC sizes */
        }
        log_info("CreateKey: key spec %s is not one of the clouds' specs; accepted", out->name);
    }
    return CKR_OK;
}

size_t keyspec_secret_bytes(const char *spec)
{
    if (!strcmp(spec, "SM4")) return 16;
    const char *size = strchr(spec, '_');
    if (!size || (strncmp(spec, "AES_", 4) && strncmp(spec, "HMAC_", 5))) return 0;
    return strtoul(size + 1, NULL, 10) / 8;
}

bool keyspec_is_cipher_key(CK_KEY_TYPE type) { return type == CKK_AES || type == CKK_CMK_SM4; }
