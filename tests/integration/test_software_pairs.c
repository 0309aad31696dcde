/* test_software_pairs.c - protection level SOFTWARE for key pairs (RSA, EC, SM2) over a
 * real SoftHSMv2 token: created in-process and sealed, attributes as for HSM pairs,
 * sign/verify/encrypt/decrypt in-process, checked against real OpenSSL. */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
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

/* The public key as OpenSSL reads it from the module's CKA_PUBLIC_KEY_INFO. */
static EVP_PKEY *openssl_public(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub)
{
    CK_ULONG len = 0;
    unsigned char *spki = get_bytes(s, pub, CKA_PUBLIC_KEY_INFO, &len);
    const unsigned char *p = spki;
    EVP_PKEY *pkey = spki ? d2i_PUBKEY(NULL, &p, (long)len) : NULL;
    free(spki);
    return pkey;
}

/* r || s -> DER, as OpenSSL verifies it. */
static int raw_to_der(const unsigned char *raw, size_t len, unsigned char *der)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(raw, (int)len / 2, NULL),
                   BN_bin2bn(raw + len / 2, (int)len / 2, NULL));
    unsigned char *p = der;
    int n = i2d_ECDSA_SIG(sig, &p);
    ECDSA_SIG_free(sig);
    return n;
}

/* OpenSSL verifies a module signature over msg: md NULL = msg is the digest. */
static int openssl_verify(EVP_PKEY *pkey, const char *md, int pad, const char *pss_md, int salt,
                          const char *sm2_id, const unsigned char *msg, size_t msg_len,
                          const unsigned char *sig, size_t sig_len)
{
    unsigned char der[256];
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        sig_len = (size_t)raw_to_der(sig, sig_len, der);
        sig = der;
    }
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(pkey, NULL);
    int ok = -1;
    if (sm2_id) EVP_PKEY_CTX_set1_id(pctx, sm2_id, strlen(sm2_id));
    if (md) {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        EVP_PKEY_CTX *used = pctx;
        if (sm2_id) EVP_MD_CTX_set_pkey_ctx(m, pctx);
        if (EVP_DigestVerifyInit(m, sm2_id ? NULL : &used, EVP_get_digestbyname(md), NULL, pkey) ==
            1) {
            if (pad) EVP_PKEY_CTX_set_rsa_padding(used, pad);
            if (pad == RSA_PKCS1_PSS_PADDING) EVP_PKEY_CTX_set_rsa_pss_saltlen(used, salt);
            ok = EVP_DigestVerify(m, sig, sig_len, msg, msg_len);
        }
        EVP_MD_CTX_free(m);
    } else {
        EVP_PKEY_verify_init(pctx);
        if (pad) EVP_PKEY_CTX_set_rsa_padding(pctx, pad);
        if (pss_md) {
            EVP_PKEY_CTX_set_signature_md(pctx, EVP_get_digestbyname(pss_md));
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_get_digestbyname(pss_md));
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt);
        }
        ok = EVP_PKEY_verify(pctx, sig, sig_len, msg, msg_len);
    }
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

static CK_RV sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM *m,
                  const unsigned char *msg, CK_ULONG len, unsigned char *sig, CK_ULONG *sig_len)
{
    CK_RV rv = p11->C_SignInit(s, m, key);
    if (rv == CKR_OK) rv = p11->C_Sign(s, (CK_BYTE_PTR)msg, len, sig, sig_len);
    return rv;
}

static CK_RV verify(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM *m,
                    const unsigned char *msg, CK_ULONG len, unsigned char *sig, CK_ULONG sig_len)
{
    CK_RV rv = p11->C_VerifyInit(s, m, key);
    if (rv == CKR_OK) rv = p11->C_Verify(s, (CK_BYTE_PTR)msg, len, sig, sig_len);
    return rv;
}

static const unsigned char msg[] = "the quick brown fox jumps over the lazy dog";

/* Signs msg two ways (single- and multi-part), verifies both through the module and
 * with OpenSSL, and checks a flipped bit fails. */
static void check_mechanism(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub,
                            EVP_PKEY *ossl, CK_MECHANISM *m, const char *md, int pad,
                            const char *pss_md, int salt, const char *sm2_id, CK_ULONG sig_want,
                            const unsigned char *in, CK_ULONG in_len)
{
    unsigned char sig[1024], sig2[1024];
    CK_ULONG len = 0, len2 = sizeof(sig2);
    CHECK_RV(p11->C_SignInit(s, m, priv), CKR_OK);
    CHECK_RV(p11->C_Sign(s, (CK_BYTE_PTR)in, in_len, NULL, &len), CKR_OK); /* length query */
    CHECK(len == sig_want);
    len = sizeof(sig);
    CHECK_RV(p11->C_Sign(s, (CK_BYTE_PTR)in, in_len, sig, &len), CKR_OK);
    CHECK(len == sig_want);
    CHECK_RV(p11->C_SignInit(s, m, priv), CKR_OK);
    CHECK_RV(p11->C_SignUpdate(s, (CK_BYTE_PTR)in, in_len / 2), CKR_OK);
    CHECK_RV(p11->C_SignUpdate(s, (CK_BYTE_PTR)in + in_len / 2, in_len - in_len / 2), CKR_OK);
    CHECK_RV(p11->C_SignFinal(s, sig2, &len2), CKR_OK);
    CHECK(len2 == sig_want);
    CHECK_RV(verify(s, pub, m, in, in_len, sig, len), CKR_OK);
    CHECK_RV(p11->C_VerifyInit(s, m, pub), CKR_OK);
    CHECK_RV(p11->C_VerifyUpdate(s, (CK_BYTE_PTR)in, 5), CKR_OK);
    CHECK_RV(p11->C_VerifyUpdate(s, (CK_BYTE_PTR)in + 5, in_len - 5), CKR_OK);
    CHECK_RV(p11->C_VerifyFinal(s, sig2, len2), CKR_OK);
    int ok = openssl_verify(ossl, md, pad, pss_md, salt, sm2_id, in, in_len, sig, len);
    if (ok != 1) fprintf(stderr, "  mechanism 0x%lx: OpenSSL does not verify\n", m->mechanism);
    CHECK(ok == 1);
    CHECK(openssl_verify(ossl, md, pad, pss_md, salt, sm2_id, in, in_len, sig2, len2) == 1);
    sig[len / 2] ^= 0x01;
    CHECK_RV(verify(s, pub, m, in, in_len, sig, len), CKR_SIGNATURE_INVALID);
    CHECK_RV(verify(s, pub, m, in, in_len, sig, len - 1), CKR_SIGNATURE_LEN_RANGE);
}

static void test_software_ecdsa_signatures_verify_in_module_and_openssl(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_soft_ec(s, "soft-ecdsa", p256_oid, sizeof(p256_oid), &pub, &priv), CKR_OK);
    EVP_PKEY *ossl = openssl_public(s, pub);
    CHECK(ossl != NULL);
    unsigned char digest[32];
    SHA256(msg, sizeof(msg), digest);
    CK_MECHANISM raw = {CKM_ECDSA, NULL, 0};
    check_mechanism(s, priv, pub, ossl, &raw, NULL, 0, NULL, 0, NULL, 64, digest, 32);
    static const struct {
        CK_MECHANISM_TYPE m;
        const char *md;
    } hashed[] = {{CKM_ECDSA_SHA1, "SHA1"},
                  {CKM_ECDSA_SHA224, "SHA224"},
                  {CKM_ECDSA_SHA256, "SHA256"},
                  {CKM_ECDSA_SHA384, "SHA384"},
                  {CKM_ECDSA_SHA512, "SHA512"}};
    for (size_t i = 0; i < 5; i++) {
        CK_MECHANISM m = {hashed[i].m, NULL, 0};
        check_mechanism(s, priv, pub, ossl, &m, hashed[i].md, 0, NULL, 0, NULL, 64, msg,
                        sizeof(msg));
    }
    EVP_PKEY_free(ossl);
    /* P-521: r || s of 66 bytes each. */
    CHECK_RV(make_soft_ec(s, "soft-p521", p521_oid, sizeof(p521_oid), &pub, &priv), CKR_OK);
    ossl = openssl_public(s, pub);
    CK_MECHANISM m = {CKM_ECDSA_SHA512, NULL, 0};
    check_mechanism(s, priv, pub, ossl, &m, "SHA512", 0, NULL, 0, NULL, 132, msg, sizeof(msg));
    EVP_PKEY_free(ossl);
    fixture_close(s);
}

static void test_software_rsa_pkcs1_and_pss_signatures_verify_in_module_and_openssl(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_soft_rsa(s, "soft-rsa-sig", 2048, CMK_USAGE_SIGN_VERIFY, &pub, &priv), CKR_OK);
    EVP_PKEY *ossl = openssl_public(s, pub);
    CHECK(ossl != NULL);
    /* CKM_RSA_PKCS signs a DigestInfo as given. */
    static const unsigned char sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                  0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                  0x01, 0x05, 0x00, 0x04, 0x20};
    unsigned char info[19 + 32];
    memcpy(info, sha256_prefix, 19);
    SHA256(msg, sizeof(msg), info + 19);
    CK_MECHANISM raw = {CKM_RSA_PKCS, NULL, 0};
    check_mechanism(s, priv, pub, ossl, &raw, NULL, RSA_PKCS1_PADDING, NULL, 0, NULL, 256, info,
                    sizeof(info));
    static const struct {
        CK_MECHANISM_TYPE pkcs1, pss, hash, mgf;
        const char *md;
        int len;
    } hashed[] = {
        {CKM_SHA1_RSA_PKCS, CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1, "SHA1", 20},
        {CKM_SHA224_RSA_PKCS, CKM_SHA224_RSA_PKCS_PSS, CKM_SHA224, CKG_MGF1_SHA224, "SHA224", 28},
        {CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, "SHA256", 32},
        {CKM_SHA384_RSA_PKCS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384, "SHA384", 48},
        {CKM_SHA512_RSA_PKCS, CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, "SHA512", 64},
    };
    for (size_t i = 0; i < 5; i++) {
        CK_MECHANISM m = {hashed[i].pkcs1, NULL, 0};
        check_mechanism(s, priv, pub, ossl, &m, hashed[i].md, RSA_PKCS1_PADDING, NULL, 0, NULL, 256,
                        msg, sizeof(msg));
        CK_RSA_PKCS_PSS_PARAMS pp = {hashed[i].hash, hashed[i].mgf, (CK_ULONG)hashed[i].len};
        CK_MECHANISM pss = {hashed[i].pss, &pp, sizeof(pp)};
        check_mechanism(s, priv, pub, ossl, &pss, hashed[i].md, RSA_PKCS1_PSS_PADDING, NULL,
                        hashed[i].len, NULL, 256, msg, sizeof(msg));
    }
    /* CKM_RSA_PKCS_PSS signs a hash; a salt length of 0 is honoured too. */
    unsigned char digest[32];
    SHA256(msg, sizeof(msg), digest);
    CK_RSA_PKCS_PSS_PARAMS pp = {CKM_SHA256, CKG_MGF1_SHA256, 0};
    CK_MECHANISM pss = {CKM_RSA_PKCS_PSS, &pp, sizeof(pp)};
    check_mechanism(s, priv, pub, ossl, &pss, NULL, RSA_PKCS1_PSS_PADDING, "SHA256", 0, NULL, 256,
                    digest, 32);
    unsigned char sig[256];
    CK_ULONG len = sizeof(sig);
    CHECK_RV(sign(s, priv, &pss, digest, 31, sig, &len), CKR_DATA_LEN_RANGE);
    /* Bad parameters: MGF of another hash, a hashing mechanism with another hash. */
    CK_RSA_PKCS_PSS_PARAMS bad = {CKM_SHA256, CKG_MGF1_SHA1, 32};
    CK_MECHANISM bad_pss = {CKM_RSA_PKCS_PSS, &bad, sizeof(bad)};
    CHECK_RV(p11->C_SignInit(s, &bad_pss, priv), CKR_MECHANISM_PARAM_INVALID);
    CK_RSA_PKCS_PSS_PARAMS other = {CKM_SHA_1, CKG_MGF1_SHA1, 20};
    CK_MECHANISM other_pss = {CKM_SHA256_RSA_PKCS_PSS, &other, sizeof(other)};
    CHECK_RV(p11->C_SignInit(s, &other_pss, priv), CKR_MECHANISM_PARAM_INVALID);
    CK_MECHANISM no_param = {CKM_SHA256_RSA_PKCS_PSS, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &no_param, priv), CKR_MECHANISM_PARAM_INVALID);
    /* Wrong objects and mechanisms. */
    CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &ecdsa, priv), CKR_KEY_TYPE_INCONSISTENT);
    CK_MECHANISM sha = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &sha, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(p11->C_VerifyInit(s, &sha, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(p11->C_EncryptInit(s, &raw, pub), CKR_KEY_FUNCTION_NOT_PERMITTED); /* usage */
    CK_MECHANISM x931 = {CKM_SHA256_RSA_PKCS, NULL, 0};
    x931.mechanism = CKM_RSA_X9_31;
    CHECK_RV(p11->C_SignInit(s, &x931, priv), CKR_MECHANISM_INVALID);
    EVP_PKEY_free(ossl);
    fixture_close(s);
    CHECK(inspect_log_count("mgf must be MGF1 with hashAlg's hash") == 1);
}

/* States and usage as for HSM keys: a Disabled pair refuses, an Enabled one works again,
 * and a state change between Init and the call is seen. */
static void test_disabled_software_pair_refuses_every_use(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_soft_ec(s, "soft-off", p256_oid, sizeof(p256_oid), &pub, &priv), CKR_OK);
    CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
    unsigned char sig[64];
    CK_ULONG len = sizeof(sig);
    CHECK_RV(sign(s, priv, &m, msg, sizeof(msg), sig, &len), CKR_OK);
    CHECK_RV(p11->C_SignInit(s, &m, priv), CKR_OK);
    CHECK_RV(set_ulong(s, priv, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    len = sizeof(sig);
    CHECK_RV(p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &len),
             CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(p11->C_SignInit(s, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(p11->C_VerifyInit(s, &m, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(set_ulong(s, priv, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED), CKR_OK);
    len = sizeof(sig);
    CHECK_RV(sign(s, priv, &m, msg, sizeof(msg), sig, &len), CKR_OK);
    CHECK_RV(verify(s, pub, &m, msg, sizeof(msg), sig, len), CKR_OK);
    /* Another operation while one runs; a NULL mechanism cancels. */
    CHECK_RV(p11->C_SignInit(s, &m, priv), CKR_OK);
    CHECK_RV(p11->C_SignInit(s, &m, priv), CKR_OPERATION_ACTIVE);
    CHECK_RV(p11->C_SignInit(s, NULL, priv), CKR_OK);
    CHECK_RV(p11->C_SignInit(s, &m, priv), CKR_OK);
    fixture_close(s);
}

static void test_software_rsa_encrypts_with_pkcs1_and_oaep(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_soft_rsa(s, "soft-rsa-enc", 2048, CMK_USAGE_ENCRYPT_DECRYPT, &pub, &priv),
             CKR_OK);
    EVP_PKEY *ossl = openssl_public(s, pub);
    unsigned char ct[256], pt[256];
    CK_ULONG ct_len = sizeof(ct), pt_len = sizeof(pt);
    CK_MECHANISM pkcs = {CKM_RSA_PKCS, NULL, 0};
    CHECK_RV(p11->C_EncryptInit(s, &pkcs, pub), CKR_OK);
    CHECK_RV(p11->C_Encrypt(s, (CK_BYTE_PTR)msg, sizeof(msg), ct, &ct_len), CKR_OK);
    CHECK(ct_len == 256);
    CHECK_RV(p11->C_DecryptInit(s, &pkcs, priv), CKR_OK);
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == sizeof(msg) && memcmp(pt, msg, pt_len) == 0);
    static const struct {
        CK_MECHANISM_TYPE hash, mgf;
        const char *md;
    } hashes[] = {{CKM_SHA_1, CKG_MGF1_SHA1, "SHA1"},
                  {CKM_SHA224, CKG_MGF1_SHA224, "SHA224"},
                  {CKM_SHA256, CKG_MGF1_SHA256, "SHA256"},
                  {CKM_SHA384, CKG_MGF1_SHA384, "SHA384"},
                  {CKM_SHA512, CKG_MGF1_SHA512, "SHA512"}};
    for (size_t i = 0; i < 5; i++) {
        /* OpenSSL encrypts with a label; the module decrypts it. */
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(ossl, NULL);
        EVP_PKEY_encrypt_init(c);
        EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING);
        EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_get_digestbyname(hashes[i].md));
        EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_get_digestbyname(hashes[i].md));
        EVP_PKEY_CTX_set0_rsa_oaep_label(c, OPENSSL_strdup("label"), 5);
        size_t n = sizeof(ct);
        CHECK(EVP_PKEY_encrypt(c, ct, &n, msg, 20) == 1);
        EVP_PKEY_CTX_free(c);
        CK_RSA_PKCS_OAEP_PARAMS op = {hashes[i].hash, hashes[i].mgf, CKZ_DATA_SPECIFIED,
                                      (void *)"label", 5};
        CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
        pt_len = sizeof(pt);
        CHECK_RV(p11->C_DecryptInit(s, &oaep, priv), CKR_OK);
        CHECK_RV(p11->C_Decrypt(s, ct, n, pt, &pt_len), CKR_OK);
        CHECK(pt_len == 20 && memcmp(pt, msg, 20) == 0);
        /* Another label does not open it. */
        op.pSourceData = (void *)"lobel";
        pt_len = sizeof(pt);
        CHECK_RV(p11->C_DecryptInit(s, &oaep, priv), CKR_OK);
        CHECK_RV(p11->C_Decrypt(s, ct, n, pt, &pt_len), CKR_ENCRYPTED_DATA_INVALID);
        /* The module's own OAEP round-trips. */
        op.pSourceData = (void *)"label";
        ct_len = sizeof(ct);
        CHECK_RV(p11->C_EncryptInit(s, &oaep, pub), CKR_OK);
        CHECK_RV(p11->C_Encrypt(s, (CK_BYTE_PTR)msg, 20, ct, &ct_len), CKR_OK);
        pt_len = sizeof(pt);
        CHECK_RV(p11->C_DecryptInit(s, &oaep, priv), CKR_OK);
        CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_OK);
        CHECK(pt_len == 20 && memcmp(pt, msg, 20) == 0);
    }
    CK_RSA_PKCS_OAEP_PARAMS mismatched = {CKM_SHA256, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM bad = {CKM_RSA_PKCS_OAEP, &mismatched, sizeof(mismatched)};
    CHECK_RV(p11->C_DecryptInit(s, &bad, priv), CKR_MECHANISM_PARAM_INVALID);
    pt_len = sizeof(pt);
    CHECK_RV(p11->C_DecryptInit(s, &pkcs, priv), CKR_OK);
    CHECK_RV(p11->C_Decrypt(s, ct, 100, pt, &pt_len), CKR_ENCRYPTED_DATA_LEN_RANGE);
    CK_MECHANISM sig = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &sig, priv), CKR_KEY_FUNCTION_NOT_PERMITTED); /* usage */
    EVP_PKEY_free(ossl);
    fixture_close(s);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_software_pairs_answer_attributes_as_hsm_pairs),
        T(test_software_pairs_of_every_spec_are_created),
        T(test_software_ecdsa_signatures_verify_in_module_and_openssl),
        T(test_software_rsa_pkcs1_and_pss_signatures_verify_in_module_and_openssl),
        T(test_disabled_software_pair_refuses_every_use),
        T(test_software_rsa_encrypts_with_pkcs1_and_oaep),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
