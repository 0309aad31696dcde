/* test_software_pairs.c - protection level SOFTWARE for key pairs (RSA, EC, SM2) over a
 * real SoftHSMv2 token: created in-process and sealed, attributes as for HSM pairs,
 * sign/verify/encrypt/decrypt in-process, checked against real OpenSSL. */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

static CK_ULONG software = CMK_PROTECTION_SOFTWARE;
static CK_BBOOL yes = CK_TRUE;
static const unsigned char p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char p384_oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char p521_oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const unsigned char k256_oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
static const unsigned char sm2_oid[] = {0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d};

/* A token pair: EC (params given) or RSA (bits given), optionally SOFTWARE, usage 0 =
 * the default. */
static CK_RV make_pair(CK_SESSION_HANDLE s, const char *alias, CK_MECHANISM_TYPE mech,
                       const unsigned char *params, size_t params_len, CK_ULONG bits, bool soft,
                       CK_ULONG usage, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM m = {mech, NULL, 0};
    CK_ATTRIBUTE pt[4] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, (void *)alias, strlen(alias)}};
    CK_ULONG np = 2;
    if (params) pt[np++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)params, params_len};
    if (bits) pt[np++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
    CK_ATTRIBUTE vt[4] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, (void *)alias, strlen(alias)}};
    CK_ULONG nv = 2;
    if (soft) vt[nv++] = (CK_ATTRIBUTE){CKA_CMK_PROTECTION_LEVEL, &software, sizeof(software)};
    if (usage) vt[nv++] = (CK_ATTRIBUTE){CKA_CMK_KEY_USAGE, &usage, sizeof(usage)};
    return p11->C_GenerateKeyPair(s, &m, pt, np, vt, nv, pub, priv);
}

static CK_RV make_soft_ec(CK_SESSION_HANDLE s, const char *alias, const unsigned char *oid,
                          size_t oid_len, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    return make_pair(s, alias, CKM_EC_KEY_PAIR_GEN, oid, oid_len, 0, true, 0, pub, priv);
}

static CK_RV make_soft_rsa(CK_SESSION_HANDLE s, const char *alias, CK_ULONG bits, CK_ULONG usage,
                           CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    return make_pair(s, alias, CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0, bits, true, usage, pub, priv);
}

static CK_RV make_soft_sm2(CK_SESSION_HANDLE s, const char *alias, CK_ULONG usage,
                           CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    return make_pair(s, alias, CKM_CMK_SM2_KEY_PAIR_GEN, NULL, 0, 0, true, usage, pub, priv);
}

/* Reads an attribute of any length into malloc'd memory; NULL when absent. */
static unsigned char *get_bytes(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t,
                                CK_ULONG *len)
{
    CK_ATTRIBUTE a = {t, NULL, 0};
    if (p11->C_GetAttributeValue(s, h, &a, 1) != CKR_OK) return NULL;
    a.pValue = malloc(a.ulValueLen + 1);
    if (p11->C_GetAttributeValue(s, h, &a, 1) != CKR_OK) {
        free(a.pValue);
        return NULL;
    }
    *len = a.ulValueLen;
    return a.pValue;
}

/* Every standard attribute a client may ask of a pair's objects: the SOFTWARE pair must
 * answer each with the code the HSM pair gives, and booleans and numbers alike. */
static const CK_ATTRIBUTE_TYPE pair_attrs[] = {
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_LOCAL,
    CKA_DERIVE,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_NEVER_EXTRACTABLE,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN_RECOVER,
    CKA_VERIFY_RECOVER,
    CKA_KEY_GEN_MECHANISM,
    CKA_EC_PARAMS,
    CKA_MODULUS,
    CKA_PUBLIC_EXPONENT,
    CKA_MODULUS_BITS,
    CKA_VALUE,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_ALWAYS_AUTHENTICATE,
};

static void compare_objects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE soft, CK_OBJECT_HANDLE hsm)
{
    for (size_t i = 0; i < sizeof(pair_attrs) / sizeof(pair_attrs[0]); i++) {
        unsigned char a[1024], b[1024];
        CK_ATTRIBUTE x = {pair_attrs[i], a, sizeof(a)}, y = {pair_attrs[i], b, sizeof(b)};
        CK_RV rx = p11->C_GetAttributeValue(s, soft, &x, 1);
        CK_RV ry = p11->C_GetAttributeValue(s, hsm, &y, 1);
        if (rx != ry)
            fprintf(stderr, "  attribute 0x%lx: 0x%lx vs HSM 0x%lx\n", pair_attrs[i], rx, ry);
        CHECK(rx == ry);
        bool fixed = pair_attrs[i] != CKA_MODULUS && pair_attrs[i] != CKA_PUBLIC_EXPONENT;
        if (rx == CKR_OK && ry == CKR_OK && fixed) {
            if (x.ulValueLen != y.ulValueLen || memcmp(a, b, x.ulValueLen))
                fprintf(stderr, "  attribute 0x%lx differs\n", pair_attrs[i]);
            CHECK(x.ulValueLen == y.ulValueLen && memcmp(a, b, x.ulValueLen) == 0);
        }
    }
}

static void test_software_pairs_answer_attributes_as_hsm_pairs(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE spub, spriv, hpub, hpriv;
    CHECK_RV(make_soft_ec(s, "soft-ec", p256_oid, sizeof(p256_oid), &spub, &spriv), CKR_OK);
    CHECK_RV(make_pair(s, "hsm-ec", CKM_EC_KEY_PAIR_GEN, p256_oid, sizeof(p256_oid), 0, false, 0,
                       &hpub, &hpriv),
             CKR_OK);
    compare_objects(s, spub, hpub);
    compare_objects(s, spriv, hpriv);
    CK_ULONG len = 0, hlen = 0;
    unsigned char *point = get_bytes(s, spub, CKA_EC_POINT, &len);
    unsigned char *hpoint = get_bytes(s, hpub, CKA_EC_POINT, &hlen);
    CHECK(point && hpoint && len == 67 && hlen == 67 && point[0] == 4 && point[2] == 4);
    unsigned char *ppoint = get_bytes(s, spriv, CKA_EC_POINT, &hlen);
    CHECK(ppoint && hlen == len && memcmp(point, ppoint, len) == 0);
    free(point);
    free(hpoint);
    free(ppoint);
    CHECK_RV(make_soft_rsa(s, "soft-rsa", 2048, CMK_USAGE_SIGN_VERIFY, &spub, &spriv), CKR_OK);
    CHECK_RV(make_pair(s, "hsm-rsa", CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0, 2048, false,
                       CMK_USAGE_SIGN_VERIFY, &hpub, &hpriv),
             CKR_OK);
    compare_objects(s, spub, hpub);
    compare_objects(s, spriv, hpriv);
    unsigned char *n = get_bytes(s, spub, CKA_MODULUS, &len);
    unsigned char *pn = get_bytes(s, spriv, CKA_MODULUS, &hlen);
    CHECK(n && pn && len == 256 && hlen == 256 && memcmp(n, pn, 256) == 0 && (n[0] & 0x80));
    free(n);
    free(pn);
    unsigned char *e = get_bytes(s, spub, CKA_PUBLIC_EXPONENT, &len);
    CHECK(e && len == 3 && memcmp(e, "\x01\x00\x01", 3) == 0);
    free(e);
    CK_ULONG level = 0;
    CHECK_RV(get_ulong(s, spriv, CKA_CMK_PROTECTION_LEVEL, &level), CKR_OK);
    CHECK(level == CMK_PROTECTION_SOFTWARE);
    /* Found like any pair, by class and level. */
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE by_level[] = {{CKA_CLASS, &cls, sizeof(cls)},
                               {CKA_CMK_PROTECTION_LEVEL, &software, sizeof(software)}};
    CHECK(find_count(s, by_level, 2, NULL) == 2);
    CK_KEY_TYPE rsa = CKK_RSA;
    CK_ATTRIBUTE by_type[] = {{CKA_KEY_TYPE, &rsa, sizeof(rsa)},
                              {CKA_CMK_PROTECTION_LEVEL, &software, sizeof(software)}};
    CHECK(find_count(s, by_type, 2, NULL) == 2); /* public and private */
    fixture_close(s);
    /* Sealed in the store; the only backend objects are the master key and the HSM pairs. */
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed") == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE protection = 2 AND "
                              "public_key_info IS NOT NULL") == 2);
    CHECK(inspect_backend_objects("cmkp11/master") == 1);
    CHECK(inspect_backend_material() == 1 + 4);
}

static void test_software_pairs_of_every_spec_are_created(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    static const struct {
        const char *alias, *spec;
        const unsigned char *oid;
        size_t oid_len;
        CK_ULONG bits;
    } specs[] = {
        {"p384", "EC_P384", p384_oid, sizeof(p384_oid), 0},
        {"p521", "EC_P521", p521_oid, sizeof(p521_oid), 0},
        {"k256", "EC_P256K", k256_oid, sizeof(k256_oid), 0},
        {"sm2-by-oid", "EC_SM2", sm2_oid, sizeof(sm2_oid), 0},
        {"rsa3072", "RSA_3072", NULL, 0, 3072},
        {"rsa4096", "RSA_4096", NULL, 0, 4096},
    };
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        CK_RV rv = specs[i].bits ? make_soft_rsa(s, specs[i].alias, specs[i].bits, 0, &pub, &priv)
                                 : make_soft_ec(s, specs[i].alias, specs[i].oid, specs[i].oid_len,
                                                &pub, &priv);
        CHECK_RV(rv, CKR_OK);
        char spec[40] = "";
        CHECK_RV(get_text(s, priv, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
        CHECK(strcmp(spec, specs[i].spec) == 0);
        CK_ULONG len = 0;
        unsigned char *v = specs[i].bits ? get_bytes(s, pub, CKA_MODULUS, &len)
                                         : get_bytes(s, pub, CKA_EC_PARAMS, &len);
        CHECK(v && (specs[i].bits ? len == specs[i].bits / 8
                                  : len == specs[i].oid_len && !memcmp(v, specs[i].oid, len)));
        free(v);
    }
    CHECK_RV(make_soft_sm2(s, "sm2", 0, &pub, &priv), CKR_OK);
    CK_ULONG type = 0;
    CHECK_RV(get_ulong(s, pub, CKA_KEY_TYPE, &type), CKR_OK);
    CHECK(type == CKK_CMK_SM2);
    CK_ULONG len = 0;
    unsigned char *params = get_bytes(s, priv, CKA_EC_PARAMS, &len);
    CHECK(params && len == sizeof(sm2_oid) && memcmp(params, sm2_oid, len) == 0);
    free(params);
    /* An SM2 key cannot live in this backend: without SOFTWARE it is refused. */
    CHECK_RV(make_pair(s, "sm2-hsm", CKM_CMK_SM2_KEY_PAIR_GEN, NULL, 0, 0, false, 0, &pub, &priv),
             CKR_MECHANISM_INVALID);
    CHECK_RV(make_pair(s, "sm2-hsm2", CKM_EC_KEY_PAIR_GEN, sm2_oid, sizeof(sm2_oid), 0, false, 0,
                       &pub, &priv),
             CKR_MECHANISM_INVALID);
    /* Sizes the SOFTWARE level does not make. */
    CHECK_RV(make_soft_rsa(s, "rsa1024", 1024, 0, &pub, &priv), CKR_TEMPLATE_INCONSISTENT);
    fixture_close(s);
    CHECK(inspect_log_count("the backend has no SM2 mechanisms") == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 7);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed") == 7);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_software_pairs_answer_attributes_as_hsm_pairs),
        T(test_software_pairs_of_every_spec_are_created),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
