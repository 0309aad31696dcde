/* test_software_pairs.c - protection level SOFTWARE for key pairs (RSA, EC, SM2) over a
 * real SoftHSMv2 token: created in-process and sealed, attributes as for HSM pairs,
 * sign/verify/encrypt/decrypt in-process, checked against real OpenSSL. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "import_client.h"
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
                       const unsigned char *params, size_t params_len, CK_ULONG bits,
                       CK_ULONG level, CK_ULONG usage, CK_OBJECT_HANDLE *pub,
                       CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM m = {mech, NULL, 0};
    CK_ATTRIBUTE pt[4] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, (void *)alias, strlen(alias)}};
    CK_ULONG np = 2;
    if (params) pt[np++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)params, params_len};
    if (bits) pt[np++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
    CK_ATTRIBUTE vt[4] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, (void *)alias, strlen(alias)}};
    CK_ULONG nv = 2;
    if (level) vt[nv++] = (CK_ATTRIBUTE){CKA_CMK_PROTECTION_LEVEL, &level, sizeof(level)};
    if (usage) vt[nv++] = (CK_ATTRIBUTE){CKA_CMK_KEY_USAGE, &usage, sizeof(usage)};
    return p11->C_GenerateKeyPair(s, &m, pt, np, vt, nv, pub, priv);
}

static CK_RV make_soft_ec(CK_SESSION_HANDLE s, const char *alias, const unsigned char *oid,
                          size_t oid_len, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    return make_pair(s, alias, CKM_EC_KEY_PAIR_GEN, oid, oid_len, 0, software, 0, pub, priv);
}

static CK_RV make_soft_rsa(CK_SESSION_HANDLE s, const char *alias, CK_ULONG bits, CK_ULONG usage,
                           CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    return make_pair(s, alias, CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0, bits, software, usage, pub, priv);
}

static CK_RV make_soft_sm2(CK_SESSION_HANDLE s, const char *alias, CK_ULONG usage,
                           CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    return make_pair(s, alias, CKM_CMK_SM2_KEY_PAIR_GEN, NULL, 0, 0, software, usage, pub, priv);
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


static void test_software_pairs_answer_attributes_as_hsm_pairs(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE spub, spriv, hpub, hpriv;
    CHECK_RV(make_soft_ec(s, "soft-ec", p256_oid, sizeof(p256_oid), &spub, &spriv), CKR_OK);
    CHECK_RV(make_pair(s, "hsm-ec", CKM_EC_KEY_PAIR_GEN, p256_oid, sizeof(p256_oid), 0, 0,
                       CMK_USAGE_SIGN_VERIFY,
                       &hpub, &hpriv),
             CKR_OK);
    fixture_same_answers(s, spub, hpub, false);
    fixture_same_answers(s, spriv, hpriv, false);
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
    CHECK_RV(make_pair(s, "hsm-rsa", CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0, 2048, 0,
                       CMK_USAGE_SIGN_VERIFY, &hpub, &hpriv),
             CKR_OK);
    fixture_same_answers(s, spub, hpub, false);
    fixture_same_answers(s, spriv, hpriv, false);
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
    /* An SM2 key cannot live in this backend: at level HSM it is refused; with no level
     * asked it is SOFTWARE. */
    const CK_ULONG hsm = CMK_PROTECTION_HSM;
    CHECK_RV(make_pair(s, "sm2-hsm", CKM_CMK_SM2_KEY_PAIR_GEN, NULL, 0, 0, hsm, 0, &pub, &priv),
             CKR_MECHANISM_INVALID);
    CHECK_RV(make_pair(s, "sm2-hsm2", CKM_EC_KEY_PAIR_GEN, sm2_oid, sizeof(sm2_oid), 0, hsm, 0,
                       &pub, &priv),
             CKR_MECHANISM_INVALID);
    CHECK_RV(make_pair(s, "sm2-implied", CKM_CMK_SM2_KEY_PAIR_GEN, NULL, 0, 0, 0, 0, &pub, &priv),
             CKR_OK);
    CK_ULONG level = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_PROTECTION_LEVEL, &level), CKR_OK);
    CHECK(level == CMK_PROTECTION_SOFTWARE);
    /* Sizes the SOFTWARE level does not make. */
    CHECK_RV(make_soft_rsa(s, "rsa1024", 1024, 0, &pub, &priv), CKR_TEMPLATE_INCONSISTENT);
    fixture_close(s);
    CHECK(inspect_log_count("the backend has no SM mechanisms") == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 8);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed") == 8);
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


/* OpenSSL verifies a module signature over msg: md NULL = msg is the digest. */
static int openssl_verify(EVP_PKEY *pkey, const char *md, int pad, const char *pss_md, int salt,
                          const char *sm2_id, const unsigned char *msg, size_t msg_len,
                          const unsigned char *sig, size_t sig_len)
{
    unsigned char der[256];
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        sig_len = raw_sig_to_der(sig, sig_len, der);
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
    CK_RSA_PKCS_PSS_PARAMS salty = {CKM_SHA256, CKG_MGF1_SHA256, 256 - 32 - 1};
    CK_MECHANISM salty_pss = {CKM_SHA256_RSA_PKCS_PSS, &salty, sizeof(salty)};
    CHECK_RV(p11->C_SignInit(s, &salty_pss, priv), CKR_MECHANISM_PARAM_INVALID);
    salty.sLen = 256 - 32 - 2; /* the longest salt a 2048-bit key takes */
    CHECK_RV(sign(s, priv, &salty_pss, msg, sizeof(msg), sig, &len), CKR_OK);
    CHECK(openssl_verify(ossl, "SHA256", RSA_PKCS1_PSS_PADDING, NULL, 222, NULL, msg, sizeof(msg),
                         sig, len) == 1);
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

/* A PEM public key made from CKA_EC_POINT (and the curve's name) or CKA_MODULUS and
 * CKA_PUBLIC_EXPONENT as the module gives them: what a client converts. */
static void write_public_pem(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, const char *type,
                             const char *group, const char *path)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    CK_ULONG a_len = 0, b_len = 0;
    unsigned char *a = NULL, *b = NULL;
    BIGNUM *n = NULL, *e = NULL;
    if (group) {
        a = get_bytes(s, pub, CKA_EC_POINT, &a_len); /* DER OCTET STRING around the point */
        CHECK(a && a_len > 2 && a[0] == 0x04);
        size_t head = a && a[1] == 0x81 ? 3 : 2;
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, a + head, a_len - head);
    } else {
        a = get_bytes(s, pub, CKA_MODULUS, &a_len);
        b = get_bytes(s, pub, CKA_PUBLIC_EXPONENT, &b_len);
        n = BN_bin2bn(a, (int)a_len, NULL);
        e = BN_bin2bn(b, (int)b_len, NULL);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    }
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    CHECK(EVP_PKEY_fromdata_init(ctx) == 1 &&
          EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1);
    FILE *f = fopen(path, "w");
    CHECK(f && pkey && PEM_write_PUBKEY(f, pkey) == 1);
    if (f) fclose(f);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(a);
    free(b);
}

static void write_der_signature(const unsigned char *raw, size_t len, const char *path)
{
    unsigned char der[256];
    size_t n = raw_sig_to_der(raw, len, der);
    client_write(path, der, n);
}

static void test_software_signatures_verify_with_the_openssl_command(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    client_write(client_path("msg"), msg, sizeof(msg));
    unsigned char sig[512];
    CK_ULONG len = sizeof(sig);
    /* ECDSA P-256 with SHA-256: openssl dgst. */
    CHECK_RV(make_soft_ec(s, "cli-ec", p256_oid, sizeof(p256_oid), &pub, &priv), CKR_OK);
    write_public_pem(s, pub, "EC", "P-256", client_path("ec.pem"));
    CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
    CHECK_RV(sign(s, priv, &ecdsa, msg, sizeof(msg), sig, &len), CKR_OK);
    write_der_signature(sig, len, client_path("ec.sig"));
    CHECK(client_shell("/usr/bin/openssl dgst -sha256 -verify %s -signature %s %s >/dev/null",
                client_path("ec.pem"), client_path("ec.sig"), client_path("msg")) == 0);
    /* A signature over other data fails there too: the check can fail. */
    CHECK(client_shell("/usr/bin/openssl dgst -sha256 -verify %s -signature %s %s >/dev/null 2>&1",
                client_path("ec.pem"), client_path("ec.sig"), client_path("ec.pem")) != 0);
    /* RSA-2048, PKCS#1 v1.5 and PSS (salt 32) with SHA-256. */
    CHECK_RV(make_soft_rsa(s, "cli-rsa", 2048, CMK_USAGE_SIGN_VERIFY, &pub, &priv), CKR_OK);
    write_public_pem(s, pub, "RSA", NULL, client_path("rsa.pem"));
    CK_MECHANISM pkcs1 = {CKM_SHA256_RSA_PKCS, NULL, 0};
    len = sizeof(sig);
    CHECK_RV(sign(s, priv, &pkcs1, msg, sizeof(msg), sig, &len), CKR_OK);
    client_write(client_path("rsa.sig"), sig, len);
    CHECK(client_shell("/usr/bin/openssl dgst -sha256 -verify %s -signature %s %s >/dev/null",
                client_path("rsa.pem"), client_path("rsa.sig"), client_path("msg")) == 0);
    CK_RSA_PKCS_PSS_PARAMS pp = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_MECHANISM pss = {CKM_SHA256_RSA_PKCS_PSS, &pp, sizeof(pp)};
    len = sizeof(sig);
    CHECK_RV(sign(s, priv, &pss, msg, sizeof(msg), sig, &len), CKR_OK);
    client_write(client_path("pss.sig"), sig, len);
    CHECK(client_shell("/usr/bin/openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt "
                "rsa_pss_saltlen:32 -verify %s -signature %s %s >/dev/null",
                client_path("rsa.pem"), client_path("pss.sig"), client_path("msg")) == 0);
    CHECK(client_shell("/usr/bin/openssl pkeyutl -verify -pubin -inkey %s -rawin -digest sha256 "
                "-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 -in %s -sigfile %s "
                ">/dev/null",
                client_path("rsa.pem"), client_path("msg"), client_path("pss.sig")) == 0);
    fixture_close(s);
}

static void test_software_sm2_signatures_verify_with_openssl_and_distid(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_soft_sm2(s, "sm2-sign", 0, &pub, &priv), CKR_OK);
    EVP_PKEY *ossl = openssl_public(s, pub);
    CHECK(ossl != NULL && EVP_PKEY_is_a(ossl, "SM2"));
    /* Default user id, then one of our own. */
    CK_MECHANISM def = {CKM_CMK_SM2_SM3, NULL, 0};
    check_mechanism(s, priv, pub, ossl, &def, "SM3", 0, NULL, 0, "1234567812345678", 64, msg,
                    sizeof(msg));
    CK_CMK_SM2_PARAMS alice = {(CK_BYTE_PTR) "alice@example.com", 17};
    CK_MECHANISM own = {CKM_CMK_SM2_SM3, &alice, sizeof(alice)};
    check_mechanism(s, priv, pub, ossl, &own, "SM3", 0, NULL, 0, "alice@example.com", 64, msg,
                    sizeof(msg));
    unsigned char sig[64];
    CK_ULONG len = sizeof(sig);
    CHECK_RV(sign(s, priv, &own, msg, sizeof(msg), sig, &len), CKR_OK);
    /* The user id is in the signed Z value: another id does not verify. */
    CHECK_RV(verify(s, pub, &def, msg, sizeof(msg), sig, len), CKR_SIGNATURE_INVALID);
    /* The openssl command, with the public key converted from CKA_EC_POINT. */
    client_write(client_path("msg"), msg, sizeof(msg));
    write_public_pem(s, pub, "SM2", "SM2", client_path("sm2.pem"));
    write_der_signature(sig, len, client_path("sm2.sig"));
    CHECK(client_shell("/usr/bin/openssl pkeyutl -verify -pubin -inkey %s -rawin -digest sm3 -pkeyopt "
                "distid:alice@example.com -in %s -sigfile %s >/dev/null",
                client_path("sm2.pem"), client_path("msg"), client_path("sm2.sig")) == 0);
    CHECK(client_shell("/usr/bin/openssl pkeyutl -verify -pubin -inkey %s -rawin -digest sm3 -pkeyopt "
                "distid:1234567812345678 -in %s -sigfile %s >/dev/null 2>&1",
                client_path("sm2.pem"), client_path("msg"), client_path("sm2.sig")) != 0);
    /* User ids up to 8191 bits; one byte more is refused. */
    static unsigned char long_id[1024];
    memset(long_id, 'u', sizeof(long_id));
    CK_CMK_SM2_PARAMS longest = {long_id, 1023}, too_long = {long_id, 1024};
    CK_MECHANISM m = {CKM_CMK_SM2_SM3, &longest, sizeof(longest)};
    len = sizeof(sig);
    CHECK_RV(sign(s, priv, &m, msg, sizeof(msg), sig, &len), CKR_OK);
    CHECK_RV(verify(s, pub, &m, msg, sizeof(msg), sig, len), CKR_OK);
    m.pParameter = &too_long;
    CHECK_RV(p11->C_SignInit(s, &m, priv), CKR_MECHANISM_PARAM_INVALID);
    /* SM2 mechanisms are for SM2 keys only, and ECDSA is not for SM2 keys. */
    CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &ecdsa, priv), CKR_KEY_TYPE_INCONSISTENT);
    CK_OBJECT_HANDLE ecpub, ecpriv;
    CHECK_RV(make_soft_ec(s, "not-sm2", p256_oid, sizeof(p256_oid), &ecpub, &ecpriv), CKR_OK);
    CHECK_RV(p11->C_SignInit(s, &def, ecpriv), CKR_KEY_TYPE_INCONSISTENT);
    EVP_PKEY_free(ossl);
    fixture_close(s);
    CHECK(inspect_log_count("the user id is over 8191 bits") == 1);
}

static void test_software_sm2_encryption_interoperates_with_openssl(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_soft_sm2(s, "sm2-enc", CMK_USAGE_ENCRYPT_DECRYPT, &pub, &priv), CKR_OK);
    EVP_PKEY *ossl = openssl_public(s, pub);
    CHECK(ossl != NULL);
    /* OpenSSL's library encrypts (C1C3C2, DER); the module decrypts. */
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(ossl, NULL);
    unsigned char ct[512], pt[512];
    size_t n = sizeof(ct);
    CHECK(EVP_PKEY_encrypt_init(c) == 1 && EVP_PKEY_encrypt(c, ct, &n, msg, sizeof(msg)) == 1);
    EVP_PKEY_CTX_free(c);
    CK_MECHANISM m = {CKM_CMK_SM2_ENCRYPT, NULL, 0};
    CK_ULONG pt_len = 0;
    CHECK_RV(p11->C_DecryptInit(s, &m, priv), CKR_OK);
    CHECK_RV(p11->C_Decrypt(s, ct, n, NULL, &pt_len), CKR_OK);
    CHECK(pt_len >= sizeof(msg));
    pt_len = sizeof(pt);
    CHECK_RV(p11->C_Decrypt(s, ct, n, pt, &pt_len), CKR_OK);
    CHECK(pt_len == sizeof(msg) && memcmp(pt, msg, pt_len) == 0);
    /* The openssl command encrypts to the key converted from CKA_EC_POINT. */
    client_write(client_path("msg"), msg, sizeof(msg));
    write_public_pem(s, pub, "SM2", "SM2", client_path("sm2.pem"));
    CHECK(client_shell("/usr/bin/openssl pkeyutl -encrypt -pubin -inkey %s -in %s -out %s",
                client_path("sm2.pem"), client_path("msg"), client_path("sm2.ct")) == 0);
    FILE *f = fopen(client_path("sm2.ct"), "rb");
    n = f ? fread(ct, 1, sizeof(ct), f) : 0;
    if (f) fclose(f);
    pt_len = sizeof(pt);
    CHECK_RV(p11->C_DecryptInit(s, &m, priv), CKR_OK);
    CHECK_RV(p11->C_Decrypt(s, ct, n, pt, &pt_len), CKR_OK);
    CHECK(pt_len == sizeof(msg) && memcmp(pt, msg, pt_len) == 0);
    /* The module encrypts and decrypts; multi-part decrypt gives the same. (The module's
     * ciphertext opens only with the private key, which nothing outside has.) */
    CK_ULONG ct_len = sizeof(ct);
    CHECK_RV(p11->C_EncryptInit(s, &m, pub), CKR_OK);
    CHECK_RV(p11->C_Encrypt(s, (CK_BYTE_PTR)msg, sizeof(msg), ct, &ct_len), CKR_OK);
    CHECK(ct_len > sizeof(msg) + 64 + 32 && ct[0] == 0x30);
    CK_ULONG part = sizeof(pt);
    CHECK_RV(p11->C_DecryptInit(s, &m, priv), CKR_OK);
    CHECK_RV(p11->C_DecryptUpdate(s, ct, 10, pt, &part), CKR_OK);
    CHECK(part == 0);
    part = sizeof(pt);
    CHECK_RV(p11->C_DecryptUpdate(s, ct + 10, ct_len - 10, pt, &part), CKR_OK);
    part = sizeof(pt);
    CHECK_RV(p11->C_DecryptFinal(s, pt, &part), CKR_OK);
    CHECK(part == sizeof(msg) && memcmp(pt, msg, part) == 0);
    /* A changed byte of C3 (the hash) does not open. */
    ct[ct_len - sizeof(msg) - 3] ^= 1;
    pt_len = sizeof(pt);
    CHECK_RV(p11->C_DecryptInit(s, &m, priv), CKR_OK);
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_ENCRYPTED_DATA_INVALID);
    CK_MECHANISM sig = {CKM_CMK_SM2_SM3, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &sig, priv), CKR_KEY_FUNCTION_NOT_PERMITTED); /* usage */
    EVP_PKEY_free(ossl);
    fixture_close(s);
}

/* Reads a file whole (NULL if absent). */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    return buf;
}

static bool contains(const unsigned char *hay, size_t n, const unsigned char *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(hay + i, needle, k)) return true;
    return false;
}

/* Neither the store (with its WAL) nor the log holds a private key in clear: no PKCS#8
 * header, no EC private key structure, no RSA modulus followed by private fields; the
 * public key is there. */
static void test_no_private_key_bytes_in_the_store_or_log(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE ecpub, ecpriv, rpub, rpriv, mpub, mpriv;
    CHECK_RV(make_soft_ec(s, "secret-ec", p256_oid, sizeof(p256_oid), &ecpub, &ecpriv), CKR_OK);
    CHECK_RV(make_soft_rsa(s, "secret-rsa", 2048, 0, &rpub, &rpriv), CKR_OK);
    CHECK_RV(make_soft_sm2(s, "secret-sm2", 0, &mpub, &mpriv), CKR_OK);
    unsigned char sig[256];
    CK_ULONG len = sizeof(sig);
    CK_MECHANISM e = {CKM_ECDSA_SHA256, NULL, 0}, r = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CHECK_RV(sign(s, ecpriv, &e, msg, sizeof(msg), sig, &len), CKR_OK);
    len = sizeof(sig);
    CHECK_RV(sign(s, rpriv, &r, msg, sizeof(msg), sig, &len), CKR_OK);
    CK_ULONG n_len = 0, p_len = 0;
    unsigned char *modulus = get_bytes(s, rpub, CKA_MODULUS, &n_len);
    unsigned char *point = get_bytes(s, ecpub, CKA_EC_POINT, &p_len);
    fixture_close(s);
    CHECK(modulus && n_len == 256 && point && p_len == 67);
    /* PrivateKeyInfo's start (version 0, then the algorithm) for EC and RSA, and
     * ECPrivateKey's (version 1, then a 32-byte OCTET STRING). */
    static const unsigned char p8_ec[] = {0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07,
                                          0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
    static const unsigned char p8_rsa[] = {0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a,
                                           0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
    static const unsigned char ec_priv[] = {0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20};
    unsigned char rsa_priv[256 + 7];
    memcpy(rsa_priv, modulus, 256);
    memcpy(rsa_priv + 256, "\x02\x03\x01\x00\x01\x02\x82", 7); /* e, then d */
    const char *files[] = {"cmk.db", "cmk.db-wal", "cmkp11.log"};
    bool saw_modulus = false, saw_point = false;
    for (size_t i = 0; i < 3; i++) {
        size_t n = 0;
        unsigned char *data = slurp(client_path(files[i]), &n);
        if (!data) continue;
        CHECK(!contains(data, n, p8_ec, sizeof(p8_ec)));
        CHECK(!contains(data, n, p8_rsa, sizeof(p8_rsa)));
        CHECK(!contains(data, n, ec_priv, sizeof(ec_priv)));
        CHECK(!contains(data, n, rsa_priv, sizeof(rsa_priv)));
        saw_modulus |= contains(data, n, modulus, n_len);
        saw_point |= contains(data, n, point + 2, p_len - 2);
        free(data);
    }
    CHECK(saw_modulus && saw_point); /* the checks look where the key would be */
    /* Each sealed blob is IV || ciphertext || tag, longer than a PKCS#8 by 28 bytes, and
     * does not start as DER would. */
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed WHERE substr(blob, 1, 1) = x'30' "
                              "AND substr(blob, 3, 3) = x'020100'") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed s JOIN cmk c ON c.id = s.cmk_id "
                              "WHERE c.id IN (SELECT cmk_id FROM cmk_alias WHERE alias = 'secret-ec') AND length(s.blob) = 12 + 138 + 16") ==
          1);
    free(modulus);
    free(point);
}

/* The secure-heap mapping that holds the private keys, as /proc/self/smaps shows it. */
static bool mapping_flags(const void *addr, bool *locked, bool *undumped)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false, found = false;
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
            in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
            continue;
        }
        if (in && !strncmp(line, "VmFlags:", 8)) {
            *locked = strstr(line, " lo") != NULL;
            *undumped = strstr(line, " dd") != NULL;
            found = true;
            in = false;
        }
    }
    if (f) fclose(f);
    return found;
}

static void test_software_private_keys_live_in_locked_undumped_memory(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_soft_rsa(s, "mem-rsa", 2048, 0, &pub, &priv), CKR_OK);
    fixture_close(s);
    /* A new process state: nothing unsealed yet. */
    s = fixture_open();
    CHECK(find_by_label(s, "mem-rsa", CKO_PRIVATE_KEY, &priv) == 1);
    size_t before = CRYPTO_secure_used();
    unsigned char sig[256];
    CK_ULONG len = sizeof(sig);
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CHECK_RV(sign(s, priv, &m, msg, sizeof(msg), sig, &len), CKR_OK);
    /* The module and this test share libcrypto, so its secure heap: the RSA private key
     * now takes room there (and stays, cached), and that heap's pages are locked and
     * left out of core dumps. */
    CHECK(CRYPTO_secure_malloc_initialized());
    size_t during = CRYPTO_secure_used();
    CHECK(during >= before + 512);
    void *probe = OPENSSL_secure_malloc(16);
    CHECK(probe && CRYPTO_secure_allocated(probe));
    bool locked = false, undumped = false;
    CHECK(mapping_flags(probe, &locked, &undumped));
    CHECK(locked && undumped);
    OPENSSL_secure_free(probe);
    fixture_close(s);
    /* Finalize frees (and so clears) them. */
    CHECK(CRYPTO_secure_used() < during);
    CHECK(CRYPTO_secure_used() == before);
}

static void test_sm2_mechanisms_are_listed_with_flags_and_sizes(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_ULONG n = 0;
    CHECK_RV(p11->C_GetMechanismList(0, NULL, &n), CKR_OK);
    CK_MECHANISM_TYPE *list = calloc(n, sizeof(*list));
    CHECK_RV(p11->C_GetMechanismList(0, list, &n), CKR_OK);
    static const struct {
        CK_MECHANISM_TYPE type;
        CK_FLAGS flags;
    } want[] = {{CKM_CMK_SM2_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR},
                {CKM_CMK_SM2_SM3, CKF_SIGN | CKF_VERIFY},
                {CKM_CMK_SM2_ENCRYPT, CKF_ENCRYPT | CKF_DECRYPT}};
    for (size_t i = 0; i < 3; i++) {
        int seen = 0;
        for (CK_ULONG k = 0; k < n; k++)
            seen += list[k] == want[i].type;
        CHECK(seen == 1);
        CK_MECHANISM_INFO info = {0};
        CHECK_RV(p11->C_GetMechanismInfo(0, want[i].type, &info), CKR_OK);
        CHECK(info.flags == want[i].flags && info.ulMinKeySize == 256 && info.ulMaxKeySize == 256);
    }
    /* The mechanisms the backend offers for RSA and EC are still there, once. */
    int ecdsa = 0;
    for (CK_ULONG k = 0; k < n; k++)
        ecdsa += list[k] == CKM_ECDSA;
    CHECK(ecdsa == 1);
    CHECK_RV(p11->C_GetMechanismInfo(0, CKM_CMK_SM2_SM3, NULL), CKR_ARGUMENTS_BAD);
    free(list);
    fixture_close(s);
}

static CK_RV sign_by_label(CK_SESSION_HANDLE s, const char *alias)
{
    CK_OBJECT_HANDLE priv = 0;
    CHECK(find_by_label(s, alias, CKO_PRIVATE_KEY, &priv) == 1);
    CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
    unsigned char sig[64];
    CK_ULONG len = sizeof(sig);
    return sign(s, priv, &m, msg, sizeof(msg), sig, &len);
}

/* A damaged, moved or missing sealed private key, or a missing master key: signing
 * fails with CKR_DEVICE_ERROR and a log line, the key stays as it was, and its public
 * half (kept in the store) still verifies. */
static void test_damaged_sealed_pair_or_missing_master_key_makes_signing_fail_cleanly(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv, pub_b, priv_b;
    CHECK_RV(make_soft_ec(s, "pair-a", p256_oid, sizeof(p256_oid), &pub, &priv), CKR_OK);
    CHECK_RV(make_soft_ec(s, "pair-b", p256_oid, sizeof(p256_oid), &pub_b, &priv_b), CKR_OK);
    CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
    unsigned char sig[64];
    CK_ULONG len = sizeof(sig);
    CHECK_RV(sign(s, priv, &m, msg, sizeof(msg), sig, &len), CKR_OK);
    fixture_close(s);
    CHECK(inspect_store_exec(
              "UPDATE cmk_sealed SET blob = CAST(substr(blob, 1, 40) || "
              "(CASE WHEN substr(blob, 41, 1) = x'00' THEN x'01' ELSE x'00' END) || "
              "substr(blob, 42) AS BLOB) WHERE cmk_id = "
              "(SELECT cmk_id FROM cmk_alias WHERE alias = 'pair-a')") == 0);
    s = fixture_open();
    CHECK_RV(sign_by_label(s, "pair-a"), CKR_DEVICE_ERROR);
    CHECK_RV(sign_by_label(s, "pair-b"), CKR_OK);
    CHECK(find_by_label(s, "pair-a", CKO_PUBLIC_KEY, &pub) == 1);
    CHECK_RV(verify(s, pub, &m, msg, sizeof(msg), sig, len), CKR_OK);
    CK_ULONG state = 0;
    CHECK(find_by_label(s, "pair-a", CKO_PRIVATE_KEY, &priv) == 1);
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_STATE, &state), CKR_OK);
    CHECK(state == CMK_STATE_ENABLED);
    fixture_close(s);
    CHECK(inspect_log_count("sealed SOFTWARE material fails authentication") == 1);
    /* b's sealed key moved into a's row: bound to b's id, it does not open as a. */
    CHECK(inspect_store_exec(
              "UPDATE cmk_sealed SET blob = (SELECT blob FROM cmk_sealed WHERE cmk_id = "
              "(SELECT cmk_id FROM cmk_alias WHERE alias = 'pair-b')) WHERE cmk_id = "
              "(SELECT cmk_id FROM cmk_alias WHERE alias = 'pair-a')") == 0);
    s = fixture_open();
    CHECK_RV(sign_by_label(s, "pair-a"), CKR_DEVICE_ERROR);
    fixture_close(s);
    CHECK(inspect_log_count("sealed SOFTWARE material fails authentication") == 2);
    /* The master key gone: every SOFTWARE private key is unusable, nothing else changes. */
    CHECK(inspect_backend_destroy("cmkp11/master") == 1);
    s = fixture_open();
    CHECK_RV(sign_by_label(s, "pair-b"), CKR_DEVICE_ERROR);
    fixture_close(s);
    CHECK(inspect_log_count("the token master key") >= 1);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed") == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 1") == 2);
}

/* CreateKey of a SOFTWARE pair killed after its sealed key is stored: the next login
 * removes the half-made row and its sealed key together. */
static void test_crash_while_creating_a_software_pair_leaves_nothing(void)
{
    const char *points[] = {"create:after-insert", "create:after-generate"};
    for (size_t i = 0; i < 2; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            setenv("CMKP11_TEST_CRASH_AT", points[i], 1);
            CK_SESSION_HANDLE s = fixture_open();
            CK_OBJECT_HANDLE a, b;
            make_soft_ec(s, "crashy", p256_oid, sizeof(p256_oid), &a, &b);
            _exit(0); /* reached only if the crash point did not fire */
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        if (i == 1) CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed") == 1);
        CK_SESSION_HANDLE s = fixture_open(); /* login runs recovery */
        CHECK(find_by_label(s, "crashy", CKO_PRIVATE_KEY, NULL) == 0);
        fixture_close(s);
        CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 0);
        CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed") == 0);
    }
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_soft_ec(s, "crashy", p256_oid, sizeof(p256_oid), &pub, &priv), CKR_OK);
    CHECK_RV(sign_by_label(s, "crashy"), CKR_OK);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'RecoverCreateKey'") == 2);
}

/* A forked child does not use the parent's unsealed keys: after its own C_Initialize it
 * unseals again and signs. */
static void test_forked_child_signs_with_its_own_unsealed_key(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_soft_ec(s, "forky", p256_oid, sizeof(p256_oid), &pub, &priv), CKR_OK);
    CHECK_RV(sign_by_label(s, "forky"), CKR_OK);
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE c = fixture_open();
        CK_RV rv = sign_by_label(c, "forky");
        fixture_close(c);
        _exit(rv == CKR_OK && harness_failed_checks == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_RV(sign_by_label(s, "forky"), CKR_OK);
    fixture_close(s);
}

/* CKA_PUBLIC_EXPONENT is honoured as an HSM honours it; a bad one changes nothing. */
static void test_software_rsa_takes_the_public_exponent_asked(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 2048;
    unsigned char three[] = {0x03}, even[] = {0x01, 0x00, 0x00};
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, 1},
                         {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                         {CKA_PUBLIC_EXPONENT, three, sizeof(three)}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &yes, 1},
                         {CKA_CMK_PROTECTION_LEVEL, &software, sizeof(software)}};
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(p11->C_GenerateKeyPair(s, &gen, pt, 3, vt, 2, &pub, &priv), CKR_OK);
    CK_ULONG len = 0;
    unsigned char *e = get_bytes(s, pub, CKA_PUBLIC_EXPONENT, &len);
    CHECK(e && len == 1 && e[0] == 3);
    free(e);
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
    unsigned char sig[256];
    len = sizeof(sig);
    CHECK_RV(sign(s, priv, &m, msg, sizeof(msg), sig, &len), CKR_OK);
    EVP_PKEY *ossl = openssl_public(s, pub);
    CHECK(openssl_verify(ossl, "SHA256", RSA_PKCS1_PADDING, NULL, 0, NULL, msg, sizeof(msg), sig,
                         len) == 1);
    EVP_PKEY_free(ossl);
    pt[2] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, even, sizeof(even)};
    CHECK_RV(p11->C_GenerateKeyPair(s, &gen, pt, 3, vt, 2, &pub, &priv),
             CKR_ATTRIBUTE_VALUE_INVALID);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed") == 1);
    CHECK(inspect_log_count("CKA_PUBLIC_EXPONENT must be odd") == 1);
}

struct signer {
    CK_OBJECT_HANDLE priv, pub;
    CK_MECHANISM_TYPE mech;
    int failures;
};

/* One thread's session: signs and verifies over and over. */
static void *sign_loop(void *arg)
{
    struct signer *w = arg;
    CK_SESSION_HANDLE s;
    if (p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK) {
        w->failures++;
        return NULL;
    }
    CK_MECHANISM m = {w->mech, NULL, 0};
    for (int i = 0; i < 40; i++) {
        unsigned char sig[256];
        CK_ULONG len = sizeof(sig);
        if (sign(s, w->priv, &m, msg, sizeof(msg), sig, &len) != CKR_OK ||
            verify(s, w->pub, &m, msg, sizeof(msg), sig, len) != CKR_OK)
            w->failures++;
    }
    p11->C_CloseSession(s);
    return NULL;
}

/* Threads of one process sign at once with the same keys (the first use unseals them
 * while the others wait), and more keys than the module keeps unsealed take turns. */
static void test_software_pairs_sign_from_many_threads_and_many_keys(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE ecpub, ecpriv, rpub, rpriv;
    CHECK_RV(make_soft_ec(s, "threads-ec", p256_oid, sizeof(p256_oid), &ecpub, &ecpriv), CKR_OK);
    CHECK_RV(make_soft_rsa(s, "threads-rsa", 2048, 0, &rpub, &rpriv), CKR_OK);
    fixture_close(s);
    s = fixture_open(); /* nothing unsealed yet */
    CHECK(find_by_label(s, "threads-ec", CKO_PRIVATE_KEY, &ecpriv) == 1);
    CHECK(find_by_label(s, "threads-ec", CKO_PUBLIC_KEY, &ecpub) == 1);
    CHECK(find_by_label(s, "threads-rsa", CKO_PRIVATE_KEY, &rpriv) == 1);
    CHECK(find_by_label(s, "threads-rsa", CKO_PUBLIC_KEY, &rpub) == 1);
    struct signer w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct signer){i % 2 ? rpriv : ecpriv, i % 2 ? rpub : ecpub,
                               i % 2 ? CKM_SHA256_RSA_PKCS : CKM_ECDSA_SHA256, 0};
        pthread_create(&t[i], NULL, sign_loop, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].failures == 0);
    }
    /* 40 pairs: more than the 32 kept unsealed; each signs, then the first again. */
    CK_OBJECT_HANDLE privs[40], pubs[40];
    for (int i = 0; i < 40; i++) {
        char alias[32];
        snprintf(alias, sizeof(alias), "many-%d", i);
        CHECK_RV(make_soft_ec(s, alias, p256_oid, sizeof(p256_oid), &pubs[i], &privs[i]), CKR_OK);
    }
    CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 40; i++) {
            unsigned char sig[64];
            CK_ULONG len = sizeof(sig);
            CHECK_RV(sign(s, privs[i], &m, msg, sizeof(msg), sig, &len), CKR_OK);
            CHECK_RV(verify(s, pubs[i], &m, msg, sizeof(msg), sig, len), CKR_OK);
        }
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
        T(test_software_signatures_verify_with_the_openssl_command),
        T(test_software_sm2_signatures_verify_with_openssl_and_distid),
        T(test_software_sm2_encryption_interoperates_with_openssl),
        T(test_no_private_key_bytes_in_the_store_or_log),
        T(test_software_private_keys_live_in_locked_undumped_memory),
        T(test_sm2_mechanisms_are_listed_with_flags_and_sizes),
        T(test_damaged_sealed_pair_or_missing_master_key_makes_signing_fail_cleanly),
        T(test_crash_while_creating_a_software_pair_leaves_nothing),
        T(test_forked_child_signs_with_its_own_unsealed_key),
        T(test_software_pairs_sign_from_many_threads_and_many_keys),
        T(test_software_rsa_takes_the_public_exponent_asked),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
