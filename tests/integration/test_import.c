/* test_import.c - EXTERNAL origin through PKCS#11: keys created without material,
 * import parameters, material wrapped by OpenSSL the way a client of the clouds' import
 * guides wraps it, its use, expiry, re-import and deletion, and every bad input changing
 * nothing. */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "import_client.h"
#include "inspect.h"

static CK_BBOOL yes = CK_TRUE;
static CK_ULONG external = CMK_ORIGIN_EXTERNAL;

static CK_RV make_external_aes(CK_SESSION_HANDLE s, const char *alias, CK_OBJECT_HANDLE *key)
{
    CK_ATTRIBUTE extra[] = {{CKA_CMK_ORIGIN, &external, sizeof(external)}};
    return make_aes(s, alias, extra, 1, key);
}

static CK_RV make_external_rsa(CK_SESSION_HANDLE s, const char *alias, CK_OBJECT_HANDLE *pub,
                               CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 2048;
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, 1}, {CKA_MODULUS_BITS, &bits, sizeof(bits)}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &yes, 1},
                         {CKA_SIGN, &yes, 1},
                         {CKA_LABEL, (void *)alias, strlen(alias)},
                         {CKA_CMK_ORIGIN, &external, sizeof(external)}};
    return p11->C_GenerateKeyPair(s, &mech, pt, 2, vt, 4, pub, priv);
}

/* AES-CBC-PAD with a fixed IV through the CMK must equal OpenSSL with the material. */
static bool cmk_encrypts_like(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const unsigned char *m)
{
    unsigned char iv[16] = {7}, msg[] = "imported material in use", ct[64], want[64];
    CK_MECHANISM mech = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
    CK_ULONG ct_len = sizeof(ct);
    if (p11->C_EncryptInit(s, &mech, key) != CKR_OK ||
        p11->C_Encrypt(s, msg, sizeof(msg), ct, &ct_len) != CKR_OK)
        return false;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, m, iv);
    EVP_EncryptUpdate(ctx, want, &l1, msg, sizeof(msg));
    EVP_EncryptFinal_ex(ctx, want + l1, &l2);
    EVP_CIPHER_CTX_free(ctx);
    return ct_len == (CK_ULONG)(l1 + l2) && memcmp(ct, want, ct_len) == 0;
}

/* A new EXTERNAL AES_256 key, its parameters, and random material wrapped for them. */
static void new_wrapped_aes(CK_SESSION_HANDLE s, const char *alias, CK_ULONG alg, CK_ULONG bits,
                            CK_OBJECT_HANDLE *key, struct params *p, unsigned char m[32],
                            struct blob *b)
{
    RAND_bytes(m, 32);
    CHECK_RV(make_external_aes(s, alias, key), CKR_OK);
    CHECK_RV(get_params(s, *key, alg, bits, p), CKR_OK);
    wrap_material(alg, p, m, 32, b);
}

/* ---- Create ---------------------------------------------------------------------- */

static void test_create_external_aes_is_pending_import_without_material(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_external_aes(s, "byok", &key), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    CK_ULONG origin = 0, cls = 0, len = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_ORIGIN, &origin), CKR_OK);
    CHECK(origin == CMK_ORIGIN_EXTERNAL);
    CHECK_RV(get_ulong(s, key, CKA_CLASS, &cls), CKR_OK);
    CHECK(cls == CKO_SECRET_KEY);
    CHECK_RV(get_ulong(s, key, CKA_VALUE_LEN, &len), CKR_OK);
    CHECK(len == 32);
    CHECK(find_by_label(s, "byok", CKO_SECRET_KEY, NULL) == 1);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_BBOOL rotate = CK_TRUE;
    CK_ATTRIBUTE now[] = {{CKA_CMK_ROTATE_NOW, &rotate, 1}};
    CHECK(p11->C_SetAttributeValue(s, key, now, 1) != CKR_OK);
    CK_ULONG enabled = CMK_STATE_ENABLED;
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, enabled), CKR_ACTION_PROHIBITED);
    fixture_close(s);
    CHECK(inspect_backend_material() == 0);
    CHECK(audits("CreateKey") == 1);
}

static void test_create_external_rsa_pair_is_pending_import(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_external_rsa(s, "byok-rsa", &pub, &priv), CKR_OK);
    CHECK(state_of(s, priv) == CMK_STATE_PENDING_IMPORT);
    CK_ULONG bits = 0;
    CHECK_RV(get_ulong(s, priv, CKA_MODULUS_BITS, &bits), CKR_OK);
    CHECK(bits == 2048);
    fixture_close(s);
    CHECK(inspect_backend_material() == 0);
}

static void test_import_ec_private_key_as_pkcs8_signs_for_the_original_public_key(void)
{
    EVP_PKEY *ec = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-384");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    struct params p;
    struct blob b;
    CK_ATTRIBUTE extra[] = {{CKA_CMK_ORIGIN, &external, sizeof(external)}};
    CHECK_RV(make_ec(s, "byok-ec", extra, 1, &pub, &priv), CKR_OK);
    CHECK(state_of(s, priv) == CMK_STATE_PENDING_IMPORT);
    wrap_private_key(s, priv, other, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &p,
                     &b); /* a P-384 key for an EC_P256 CMK */
    CHECK_RV(import(s, priv, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b, &p, 0), CKR_KEY_SIZE_RANGE);
    wrap_private_key(s, priv, ec, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &p, &b);
    CHECK_RV(import(s, priv, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b, &p, 0), CKR_OK);
    unsigned char digest[32] = {1, 2, 3}, sig[128], der_sig[160];
    CK_ULONG sig_len = sizeof(sig);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &mech, priv), CKR_OK);
    CHECK_RV(p11->C_Sign(s, digest, sizeof(digest), sig, &sig_len), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK); /* the public key object verifies too */
    /* OpenSSL verifies the r||s signature with the original public key. */
    size_t der_len = raw_sig_to_der(sig, sig_len, der_sig);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(ec, NULL);
    CHECK(ctx && EVP_PKEY_verify_init(ctx) == 1 &&
          EVP_PKEY_verify(ctx, der_sig, der_len, digest, sizeof(digest)) == 1);
    EVP_PKEY_CTX_free(ctx);
    check_public_key_info(s, priv, ec);
    fixture_close(s);
    CHECK(inspect_backend_material() == 3); /* token key, private and public key */
    EVP_PKEY_free(ec);
    EVP_PKEY_free(other);
}

/* ---- Parameters ------------------------------------------------------------------ */

static void test_import_parameters_give_public_key_and_token_and_asking_again_replaces_them(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    struct params p1, p2;
    CHECK_RV(make_external_aes(s, "params", &key), CKR_OK);
    CHECK_RV(get_params(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, 3072, &p1), CKR_OK);
    const unsigned char *der = p1.spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &der, (long)p1.spki_len);
    CHECK(pk && EVP_PKEY_get_bits(pk) == 3072);
    EVP_PKEY_free(pk);
    CK_ULONG valid_to = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_IMPORT_VALID_TO, &valid_to), CKR_OK);
    CHECK(valid_to > (CK_ULONG)time(NULL) + 23 * 3600 &&
          valid_to <= (CK_ULONG)time(NULL) + 24 * 3600);
    CHECK_RV(get_params(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, 2048, &p2), CKR_OK);
    CHECK(p1.token_len != p2.token_len || memcmp(p1.token, p2.token, p1.token_len) != 0);
    unsigned char m[32];
    RAND_bytes(m, sizeof(m));
    struct blob b;
    wrap_oaep(&p1, false, m, sizeof(m), &b);
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &p1, 0), CKR_ATTRIBUTE_VALUE_INVALID);
    fixture_close(s);
    CHECK(inspect_backend_material() == 3); /* the token key and one wrapping pair */
    CHECK(audits("GetParametersForImport") == 2);
}

static void test_import_parameters_refused_for_kms_keys_and_bad_requests(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE kms, key, pub, priv;
    struct params p;
    CHECK_RV(make_aes(s, "kms", NULL, 0, &kms), CKR_OK);
    CHECK_RV(get_params(s, kms, CMK_WRAP_RSAES_OAEP_SHA_1, 2048, &p),
             CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(make_external_aes(s, "ext", &key), CKR_OK);
    CHECK_RV(get_params(s, key, 9, 2048, &p), CKR_MECHANISM_INVALID);
    CHECK_RV(get_params(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, 1024, &p), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(make_external_rsa(s, "ext-rsa", &pub, &priv), CKR_OK);
    CHECK_RV(get_params(s, priv, CMK_WRAP_RSAES_OAEP_SHA_1, 2048, &p), CKR_ATTRIBUTE_VALUE_INVALID);
    fixture_close(s);
    CHECK(audits("GetParametersForImport") == 0);
}

/* ---- Import ---------------------------------------------------------------------- */

static void test_import_oaep_sha1_aes_material_is_the_material_in_use(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    struct params p;
    unsigned char m[32];
    struct blob b;
    new_wrapped_aes(s, "oaep", CMK_WRAP_RSAES_OAEP_SHA_1, 2048, &key, &p, m, &b);
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &p, 0), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_ENABLED);
    CHECK(cmk_encrypts_like(s, key, m));
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    CK_ULONG valid_to = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_IMPORT_VALID_TO, &valid_to), CKR_ATTRIBUTE_TYPE_INVALID);
    /* The token is used up with its wrapping pair. */
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &p, 0), CKR_ATTRIBUTE_VALUE_INVALID);
    fixture_close(s);
    CHECK(inspect_backend_material() == 2); /* the token key and the material */
    CHECK(audits("ImportKeyMaterial") == 1);
}

/* The tests' configuration turns [import] oaep_decode_in_module on; this copies it with
 * that line set as asked (a second line would be refused) and points CMKP11_CONF at the
 * copy. */
static void set_oaep_decode_in_module(bool on)
{
    static char path[4096];
    char src[4096];
    snprintf(src, sizeof(src), "%s/cmkp11.conf", getenv("CMK_WORK"));
    snprintf(path, sizeof(path), "%s/cmkp11-oaep.conf", getenv("CMK_WORK"));
    FILE *in = fopen(src, "r"), *out = fopen(path, "w");
    CHECK(in && out);
    if (!in || !out) {
        if (in) fclose(in);
        if (out) fclose(out);
        return;
    }
    char line[4096];
    while (fgets(line, sizeof(line), in)) {
        if (!strncmp(line, "oaep_decode_in_module", 21))
            fprintf(out, "oaep_decode_in_module = %s\n", on ? "true" : "false");
        else
            fputs(line, out);
    }
    fclose(in);
    fclose(out);
    setenv("CMKP11_CONF", path, 1);
}

static void test_import_oaep_sha256_aes_material_is_the_material_in_use(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    struct params p;
    unsigned char m[32];
    struct blob b;
    RAND_bytes(m, sizeof(m));
    CHECK_RV(make_external_aes(s, "oaep256", &key), CKR_OK);
    /* SHA-256 is the default for a symmetric key, whatever OAEP the HSM itself does. */
    CHECK_RV(get_params(s, key, 0, 2048, &p), CKR_OK);
    CK_ULONG alg = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_WRAPPING_ALGORITHM, &alg), CKR_OK);
    CHECK(alg == CMK_WRAP_RSAES_OAEP_SHA_256);
    wrap_oaep(&p, true, m, sizeof(m), &b);
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, &b, &p, 0), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_ENABLED);
    CHECK(cmk_encrypts_like(s, key, m));
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    CK_BBOOL extractable = CK_TRUE;
    CK_ATTRIBUTE a = {CKA_EXTRACTABLE, &extractable, 1};
    CHECK_RV(p11->C_GetAttributeValue(s, key, &a, 1), CKR_OK);
    CHECK(extractable == CK_FALSE);
    fixture_close(s);
    CHECK(inspect_backend_material() == 2); /* token key and material: no candidate, no pair */
    /* A new process (which has not probed the HSM yet) uses the material too. */
    s = fixture_open();
    CHECK(cmk_encrypts_like(s, key, m));
    fixture_close(s);
}

static void test_import_rsa_aes_key_wrap_sha256_aes_and_rsa_material(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, pub, priv;
    struct params p;
    unsigned char m[32];
    struct blob b;
    new_wrapped_aes(s, "kw256", CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, 3072, &key, &p, m, &b);
    CHECK_RV(import(s, key, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, &b, &p, 0), CKR_OK);
    CHECK(cmk_encrypts_like(s, key, m));
    /* An RSA private key as PKCS#8, the default for an asymmetric key being SHA-256. */
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    CHECK_RV(make_external_rsa(s, "rsa256", &pub, &priv), CKR_OK);
    wrap_private_key(s, priv, rsa, 0, &p, &b);
    CK_ULONG alg = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_WRAPPING_ALGORITHM, &alg), CKR_OK);
    CHECK(alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256);
    CHECK_RV(import(s, priv, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, &b, &p, 0), CKR_OK);
    check_public_key_info(s, priv, rsa);
    fixture_close(s);
    /* token key, AES material, RSA private and public key: no ephemeral key, no pair */
    CHECK(inspect_backend_material() == 4);
    EVP_PKEY_free(rsa);
}

static void test_import_oaep_sha256_refuses_bad_blobs_and_changes_nothing(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, other, kw;
    struct params p, op, kp;
    unsigned char m[32];
    struct blob b;
    RAND_bytes(m, sizeof(m));
    CHECK_RV(make_external_aes(s, "target", &key), CKR_OK);
    CHECK_RV(get_params(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, 2048, &p), CKR_OK);
    CHECK_RV(make_external_aes(s, "other", &other), CKR_OK);
    CHECK_RV(get_params(s, other, CMK_WRAP_RSAES_OAEP_SHA_256, 2048, &op), CKR_OK);
    CHECK_RV(make_external_aes(s, "kw", &kw), CKR_OK);
    CHECK_RV(get_params(s, kw, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, 2048, &kp), CKR_OK);
    fixture_close(s);
    char before[8192], after[8192];
    CHECK(inspect_snapshot(before, sizeof(before)) == 0);
    long warnings = inspect_log_count("ImportKeyMaterial");
    s = fixture_open();
    wrap_oaep(&op, true, m, sizeof(m), &b); /* for another public key */
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, &b, &p, 0), CKR_WRAPPED_KEY_INVALID);
    wrap_oaep(&p, true, m, sizeof(m), &b);
    b.data[b.len / 2] ^= 0x01; /* damaged */
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, &b, &p, 0), CKR_WRAPPED_KEY_INVALID);
    memset(b.data, 0xff, b.len); /* not below the modulus */
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, &b, &p, 0), CKR_WRAPPED_KEY_INVALID);
    wrap_oaep(&p, true, m, sizeof(m), &b);
    b.len -= 1; /* truncated */
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, &b, &p, 0), CKR_WRAPPED_KEY_LEN_RANGE);
    wrap_oaep(&p, true, m, 16, &b); /* AES_128 material for an AES_256 key */
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, &b, &p, 0), CKR_KEY_SIZE_RANGE);
    wrap_oaep(&p, false, m, sizeof(m), &b); /* SHA-1 OAEP under SHA-256 parameters */
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, &b, &p, 0), CKR_WRAPPED_KEY_INVALID);
    /* RSA_AES_KEY_WRAP whose ephemeral key is not the size the mechanism names */
    wrap_oaep(&kp, true, m, 16, &b);
    memset(b.data + b.len, 0xa6, 40);
    b.len += 40;
    CHECK_RV(import(s, kw, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, &b, &kp, 0), CKR_WRAPPED_KEY_INVALID);
    fixture_close(s);
    CHECK(inspect_snapshot(after, sizeof(after)) == 0);
    CHECK(strcmp(before, after) == 0);
    CHECK(inspect_log_count("ImportKeyMaterial") - warnings == 7); /* one line each */
    s = fixture_open(); /* the parameters still import the right blob */
    wrap_oaep(&p, true, m, sizeof(m), &b);
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, &b, &p, 0), CKR_OK);
    CHECK(cmk_encrypts_like(s, key, m));
    fixture_close(s);
}

static void test_oaep_sha256_is_refused_with_the_option_off_where_the_hsm_lacks_it(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    struct params p256, p;
    unsigned char m[32];
    struct blob b;
    RAND_bytes(m, sizeof(m));
    CHECK_RV(make_external_aes(s, "oaep256", &key), CKR_OK);
    CHECK_RV(get_params(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, 2048, &p256), CKR_OK);
    fixture_close(s);
    set_oaep_decode_in_module(false);
    long named = inspect_log_count("oaep_decode_in_module");
    s = fixture_open();
    wrap_oaep(&p256, true, m, sizeof(m), &b);
    CK_RV rv = import(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, &b, &p256, 0);
    if (rv == CKR_OK) { /* an HSM that unwraps with OAEP-SHA-256 needs no option */
        fixture_close(s);
        return;
    }
    CHECK_RV(rv, CKR_MECHANISM_PARAM_INVALID);
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    CHECK_RV(get_params(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, 2048, &p),
             CKR_MECHANISM_PARAM_INVALID);
    CHECK(inspect_log_count("oaep_decode_in_module") - named == 2);
    /* The refusal kept the earlier parameters: they import once the option is back. */
    CK_ULONG alg = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_WRAPPING_ALGORITHM, &alg), CKR_OK);
    CHECK(alg == CMK_WRAP_RSAES_OAEP_SHA_256);
    /* Without the option the default is the SHA-1 algorithm, whose pair cannot decrypt. */
    CHECK_RV(get_params(s, key, 0, 2048, &p), CKR_OK);
    CHECK_RV(get_ulong(s, key, CKA_CMK_WRAPPING_ALGORITHM, &alg), CKR_OK);
    CHECK(alg == CMK_WRAP_RSAES_OAEP_SHA_1);
    wrap_oaep(&p, false, m, sizeof(m), &b);
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &p, 0), CKR_OK);
    CHECK(cmk_encrypts_like(s, key, m));
    fixture_close(s);
    CHECK(inspect_backend_material() == 2);
    CHECK(audits("ImportKeyMaterial") == 1);
}

static void test_import_rsa_aes_key_wrap_aes_material(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    struct params p;
    unsigned char m[32];
    struct blob b;
    new_wrapped_aes(s, "kw", CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 4096, &key, &p, m, &b);
    CHECK(b.len == 512 + 40);
    CHECK_RV(import(s, key, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b, &p, 0), CKR_OK);
    CHECK(cmk_encrypts_like(s, key, m));
    fixture_close(s);
    CHECK(inspect_backend_material() == 2); /* no ephemeral key left */
}

static void test_import_rsa_private_key_as_pkcs8_signs_for_the_original_public_key(void)
{
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    struct params p;
    struct blob b;
    CHECK_RV(make_external_rsa(s, "byok-sign", &pub, &priv), CKR_OK);
    wrap_private_key(s, priv, rsa, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &p, &b);
    CHECK_RV(import(s, priv, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b, &p, 0), CKR_OK);
    CHECK(state_of(s, priv) == CMK_STATE_ENABLED);
    unsigned char msg[] = "signed by imported material", sig[512];
    CK_ULONG sig_len = sizeof(sig);
    CK_MECHANISM mech = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &mech, priv), CKR_OK);
    CHECK_RV(p11->C_Sign(s, msg, sizeof(msg), sig, &sig_len), CKR_OK);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CHECK(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, rsa) == 1);
    CHECK(EVP_DigestVerify(md, sig, sig_len, msg, sizeof(msg)) == 1);
    EVP_MD_CTX_free(md);
    /* The public key object and CKA_PUBLIC_KEY_INFO are the original public key. */
    check_public_key_info(s, priv, rsa);
    CHECK_RV(p11->C_VerifyInit(s, &mech, pub), CKR_OK);
    CHECK_RV(p11->C_Verify(s, msg, sizeof(msg), sig, sig_len), CKR_OK);
    fixture_close(s);
    CHECK(inspect_backend_material() == 3); /* token key, private and public key */
    EVP_PKEY_free(rsa);
}

/* ---- Bad input: a precise code, and nothing changed ------------------------------ */

/* A target key and another key, both with outstanding RSAES_OAEP_SHA_1 parameters. */
struct bad_case {
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key, other;
    struct params p, op;
    unsigned char m[32];
    char before[16384];
    long log_lines;
};

static void bad_setup(struct bad_case *c)
{
    c->s = fixture_open();
    CHECK_RV(make_external_aes(c->s, "target", &c->key), CKR_OK);
    CHECK_RV(get_params(c->s, c->key, CMK_WRAP_RSAES_OAEP_SHA_1, 2048, &c->p), CKR_OK);
    CHECK_RV(make_external_aes(c->s, "other", &c->other), CKR_OK);
    CHECK_RV(get_params(c->s, c->other, CMK_WRAP_RSAES_OAEP_SHA_1, 2048, &c->op), CKR_OK);
    RAND_bytes(c->m, sizeof(c->m));
    fixture_close(c->s);
    import_snapshot(c->before, sizeof(c->before));
    c->log_lines = inspect_log_count("ImportKeyMaterial");
    c->s = fixture_open();
}

/* Each of the refusals logged one line, and changed nothing; the parameters still import
 * the right blob afterwards. */
static void bad_check_nothing_changed(struct bad_case *c, long refusals)
{
    fixture_close(c->s);
    static char after[16384];
    import_snapshot(after, sizeof(after));
    if (strcmp(c->before, after) != 0) printf("  before %s\n  after  %s\n", c->before, after);
    CHECK(strcmp(c->before, after) == 0);
    CHECK(inspect_log_count("ImportKeyMaterial") - c->log_lines == refusals);
    c->s = fixture_open();
    struct blob b;
    wrap_oaep(&c->p, false, c->m, sizeof(c->m), &b);
    CHECK_RV(import(c->s, c->key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c->p, 0), CKR_OK);
    CHECK(cmk_encrypts_like(c->s, c->key, c->m));
    fixture_close(c->s);
}

static void test_import_refuses_forged_and_edited_tokens(void)
{
    struct bad_case c;
    bad_setup(&c);
    struct blob b;
    wrap_oaep(&c.p, false, c.m, sizeof(c.m), &b);
    struct params forged = c.p;
    forged.token[forged.token_len - 1] ^= 1; /* the MAC */
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &forged, 0),
             CKR_ATTRIBUTE_VALUE_INVALID);
    struct params edited = c.p;
    edited.token[edited.token_len - 33] ^= 0x40; /* the last byte of valid-to */
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &edited, 0),
             CKR_ATTRIBUTE_VALUE_INVALID);
    struct params cut = c.p;
    cut.token_len -= 1;
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &cut, 0),
             CKR_ATTRIBUTE_VALUE_INVALID);
    struct params none = c.p;
    none.token_len = 0;
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &none, 0),
             CKR_ATTRIBUTE_VALUE_INVALID);
    bad_check_nothing_changed(&c, 4);
}

static void test_import_refuses_another_keys_token(void)
{
    struct bad_case c;
    bad_setup(&c);
    struct blob b;
    wrap_oaep(&c.op, false, c.m, sizeof(c.m), &b);
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c.op, 0),
             CKR_ATTRIBUTE_VALUE_INVALID);
    bad_check_nothing_changed(&c, 1);
}

static void test_import_refuses_an_expired_token(void)
{
    struct bad_case c;
    bad_setup(&c);
    struct blob b;
    wrap_oaep(&c.p, false, c.m, sizeof(c.m), &b);
    set_now_offset(24 * 3600 + 60);
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c.p, 0),
             CKR_CMK_IMPORT_TOKEN_EXPIRED);
    unsetenv("CMKP11_TEST_NOW");
    bad_check_nothing_changed(&c, 1);
}

static void test_import_refuses_material_wrapped_for_another_public_key(void)
{
    struct bad_case c;
    bad_setup(&c);
    struct blob b;
    wrap_oaep(&c.op, false, c.m, sizeof(c.m), &b);
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c.p, 0), CKR_WRAPPED_KEY_INVALID);
    wrap_rsa_aes(&c.op, false, c.m, sizeof(c.m), &b); /* the RSA_AES_KEY_WRAP form, too */
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c.p, 0), CKR_WRAPPED_KEY_LEN_RANGE);
    bad_check_nothing_changed(&c, 2);
}

static void test_import_refuses_truncated_blobs_and_wrong_lengths(void)
{
    struct bad_case c;
    bad_setup(&c);
    struct blob b;
    wrap_oaep(&c.p, false, c.m, sizeof(c.m), &b);
    b.len -= 1;
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c.p, 0), CKR_WRAPPED_KEY_LEN_RANGE);
    b.len = 0;
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c.p, 0), CKR_WRAPPED_KEY_LEN_RANGE);
    wrap_oaep(&c.p, false, c.m, 16, &b); /* AES_128 material for an AES_256 key */
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c.p, 0), CKR_KEY_SIZE_RANGE);
    unsigned char longer[48];
    memcpy(longer, c.m, 32);
    memset(longer + 32, 0x33, 16);
    wrap_oaep(&c.p, false, longer, sizeof(longer), &b); /* 48 bytes */
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c.p, 0), CKR_KEY_SIZE_RANGE);
    bad_check_nothing_changed(&c, 4);
}

static void test_import_refuses_unknown_algorithms_and_mismatched_mechanisms(void)
{
    struct bad_case c;
    bad_setup(&c);
    struct blob b;
    wrap_oaep(&c.p, false, c.m, sizeof(c.m), &b);
    CK_MECHANISM pkcs1 = {CKM_RSA_PKCS, NULL, 0};
    CK_ATTRIBUTE t[] = {{CKA_CMK_IMPORT_TOKEN, c.p.token, c.p.token_len}};
    CK_OBJECT_HANDLE out;
    CHECK_RV(p11->C_UnwrapKey(c.s, &pkcs1, c.key, b.data, (CK_ULONG)b.len, t, 1, &out),
             CKR_MECHANISM_INVALID);
    /* The token is for RSAES_OAEP_SHA_1. */
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b, &c.p, 0),
             CKR_MECHANISM_PARAM_INVALID);
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_256, &b, &c.p, 0),
             CKR_MECHANISM_PARAM_INVALID);
    /* OAEP with a label, or MGF1 with another hash */
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, "x", 1};
    CK_MECHANISM labelled = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    CHECK_RV(p11->C_UnwrapKey(c.s, &labelled, c.key, b.data, (CK_ULONG)b.len, t, 1, &out),
             CKR_MECHANISM_PARAM_INVALID);
    op = (CK_RSA_PKCS_OAEP_PARAMS){CKM_SHA_1, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CHECK_RV(p11->C_UnwrapKey(c.s, &labelled, c.key, b.data, (CK_ULONG)b.len, t, 1, &out),
             CKR_MECHANISM_PARAM_INVALID);
    /* A template attribute an import has no use for */
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE extra[] = {{CKA_CMK_IMPORT_TOKEN, c.p.token, c.p.token_len},
                            {CKA_EXTRACTABLE, &no, 1}};
    op = (CK_RSA_PKCS_OAEP_PARAMS){CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CHECK_RV(p11->C_UnwrapKey(c.s, &labelled, c.key, b.data, (CK_ULONG)b.len, extra, 2, &out),
             CKR_TEMPLATE_INCONSISTENT);
    bad_check_nothing_changed(&c, 6);
}

static void test_import_refuses_kms_and_pending_deletion_keys(void)
{
    struct bad_case c;
    bad_setup(&c);
    CK_OBJECT_HANDLE kms;
    CHECK_RV(make_aes(c.s, "kms", NULL, 0, &kms), CKR_OK);
    struct blob b;
    wrap_oaep(&c.p, false, c.m, sizeof(c.m), &b);
    CHECK_RV(import(c.s, kms, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c.p, 0),
             CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(p11->C_DestroyObject(c.s, c.key), CKR_OK);
    CHECK_RV(import(c.s, c.key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &c.p, 0),
             CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(c.s);
    CHECK(audits("ImportKeyMaterial") == 0);
}

/* ---- Expiry, re-import, deletion ------------------------------------------------- */

static void import_fresh(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const unsigned char *m,
                         CK_ULONG expires, CK_RV want)
{
    struct params p;
    struct blob b;
    CHECK_RV(get_params(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, 2048, &p), CKR_OK);
    wrap_oaep(&p, false, m, 32, &b);
    CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &p, expires), want);
}

static void test_expired_material_is_refused_at_once_and_destroyed_at_login(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    unsigned char m[32], other[32];
    RAND_bytes(m, sizeof(m));
    RAND_bytes(other, sizeof(other));
    CHECK_RV(make_external_aes(s, "expiring", &key), CKR_OK);
    CK_ULONG expires = (CK_ULONG)time(NULL) + 3600;
    import_fresh(s, key, m, expires, CKR_OK);
    CK_ULONG got = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_MATERIAL_EXPIRES, &got), CKR_OK);
    CHECK(got == expires);
    CHECK(cmk_encrypts_like(s, key, m));
    set_now_offset(3601);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
    CHECK(inspect_backend_material() == 2); /* not yet destroyed */
    s = fixture_open();                     /* login: the expiry step */
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    fixture_close(s);
    CHECK(inspect_backend_material() == 1);
    CHECK(audits("KeyMaterialExpired") == 1);
    s = fixture_open();
    import_fresh(s, key, other, 0, CKR_CMK_INCORRECT_KEY_MATERIAL);
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    import_fresh(s, key, m, 0, CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_ENABLED);
    CHECK(cmk_encrypts_like(s, key, m));
    unsetenv("CMKP11_TEST_NOW");
    fixture_close(s);
    CHECK(inspect_backend_material() == 2);
}

/* HMAC material at level HSM: HMAC_256 MACs as OpenSSL does with the bytes; HMAC_128 is
 * fingerprinted too, though SoftHSMv2 refuses HMAC-SHA-256 under a key shorter than the
 * digest (the fingerprint falls back to a shorter one), and takes only the same bytes again. */
static void test_import_hmac_material_of_128_and_256_bits(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_MECHANISM gen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE keys[2];
    unsigned char m[2][32], other[32];
    static const CK_ULONG sizes[] = {16, 32};
    RAND_bytes(other, sizeof(other));
    for (int i = 0; i < 2; i++) {
        CK_ULONG len = sizes[i];
        CK_ATTRIBUTE t[] = {{CKA_TOKEN, &yes, 1},
                            {CKA_SIGN, &yes, 1},
                            {CKA_VALUE_LEN, &len, sizeof(len)},
                            {CKA_LABEL, (void *)(i ? "hmac-256" : "hmac-128"), 8},
                            {CKA_CMK_ORIGIN, &external, sizeof(external)}};
        RAND_bytes(m[i], (int)len);
        CHECK_RV(p11->C_GenerateKey(s, &gen, t, 5, &keys[i]), CKR_OK);
        struct params p;
        struct blob b;
        CHECK_RV(get_params(s, keys[i], CMK_WRAP_RSAES_OAEP_SHA_1, 2048, &p), CKR_OK);
        wrap_material(CMK_WRAP_RSAES_OAEP_SHA_1, &p, m[i], len, &b);
        CHECK_RV(import(s, keys[i], CMK_WRAP_RSAES_OAEP_SHA_1, &b, &p, 0), CKR_OK);
        CHECK(state_of(s, keys[i]) == CMK_STATE_ENABLED);
        CHECK_RV(get_params(s, keys[i], CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 2048, &p), CKR_OK);
        wrap_material(CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &p, other, len, &b);
        CHECK_RV(import(s, keys[i], CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b, &p, 0),
                 CKR_CMK_INCORRECT_KEY_MATERIAL);
        CHECK_RV(get_params(s, keys[i], CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 2048, &p), CKR_OK);
        wrap_material(CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &p, m[i], len, &b);
        CHECK_RV(import(s, keys[i], CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b, &p, 0), CKR_OK);
    }
    CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
    unsigned char msg[] = "imported HMAC material", mac[32], want[32];
    CK_ULONG mac_len = sizeof(mac);
    size_t want_len = 0;
    CHECK_RV(p11->C_SignInit(s, &mech, keys[1]), CKR_OK);
    CHECK_RV(p11->C_Sign(s, msg, sizeof(msg), mac, &mac_len), CKR_OK);
    CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, m[1], 32, msg, sizeof(msg), want,
                    sizeof(want), &want_len) != NULL);
    CHECK(mac_len == 32 && want_len == 32 && memcmp(mac, want, 32) == 0);
    fixture_close(s);
    CHECK(inspect_log_count("is not the material imported first") == 2);
}

static void test_reimport_into_a_key_with_material_takes_only_the_same_material(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    unsigned char m[32], other[32];
    RAND_bytes(m, sizeof(m));
    RAND_bytes(other, sizeof(other));
    CHECK_RV(make_external_aes(s, "again", &key), CKR_OK);
    import_fresh(s, key, m, 0, CKR_OK);
    import_fresh(s, key, other, 0, CKR_CMK_INCORRECT_KEY_MATERIAL);
    CHECK(cmk_encrypts_like(s, key, m));
    CK_ULONG expires = (CK_ULONG)time(NULL) + 7200, got = 0;
    import_fresh(s, key, m, expires, CKR_OK);
    CHECK_RV(get_ulong(s, key, CKA_CMK_MATERIAL_EXPIRES, &got), CKR_OK);
    CHECK(got == expires);
    CHECK(cmk_encrypts_like(s, key, m));
    fixture_close(s);
    CHECK(inspect_backend_material() == 2); /* no candidate or wrapping pair left */
    CHECK(audits("ImportKeyMaterial") == 2);
}

static void test_delete_imported_material_destroys_it_at_once(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, kms;
    unsigned char m[32];
    RAND_bytes(m, sizeof(m));
    CHECK_RV(make_external_aes(s, "deleted", &key), CKR_OK);
    CK_BBOOL t = CK_TRUE;
    CK_ATTRIBUTE del[] = {{CKA_CMK_DELETE_MATERIAL, &t, 1}};
    CHECK_RV(p11->C_SetAttributeValue(s, key, del, 1), CKR_ACTION_PROHIBITED); /* none yet */
    import_fresh(s, key, m, 0, CKR_OK);
    CHECK_RV(p11->C_SetAttributeValue(s, key, del, 1), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(make_aes(s, "kms", NULL, 0, &kms), CKR_OK);
    CHECK_RV(p11->C_SetAttributeValue(s, kms, del, 1), CKR_ACTION_PROHIBITED);
    fixture_close(s);
    CHECK(inspect_backend_material() == 2); /* the token key and the KMS key */
    CHECK(audits("DeleteImportedKeyMaterial") == 1);
    s = fixture_open();
    import_fresh(s, key, m, 0, CKR_OK);
    CHECK(cmk_encrypts_like(s, key, m));
    fixture_close(s);
}

static void test_cancelled_deletion_returns_a_key_without_material_to_pending_import(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_external_aes(s, "never-imported", &key), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, key), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_PENDING_DELETION);
    /* Destroyed for plain PKCS#11; the KMS view (a CKA_CMK_* attribute) still reads it,
     * answered from the record. */
    CK_ULONG cls = 0, state = 0;
    CHECK_RV(get_ulong(s, key, CKA_CLASS, &cls), CKR_OBJECT_HANDLE_INVALID);
    CK_ATTRIBUTE kms[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_CMK_KEY_STATE, &state, sizeof(state)}};
    CHECK_RV(p11->C_GetAttributeValue(s, key, kms, 2), CKR_OK);
    CHECK(cls == CKO_SECRET_KEY && state == CMK_STATE_PENDING_DELETION);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    /* Writing the state schedules it as C_DestroyObject does, and cancels it again. */
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_PENDING_DELETION), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_PENDING_DELETION);
    CK_ULONG when = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_DELETION_DATE, &when), CKR_OK);
    CHECK(when > (CK_ULONG)time(NULL));
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    /* A key waiting for material is never enabled by a state write. */
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED), CKR_ACTION_PROHIBITED);
    fixture_close(s);
    CHECK(audits("CancelKeyDeletion") == 2);
    CHECK(audits("ScheduleKeyDeletion") == 2);
}

/* An importing process killed at a crash point: the next login undoes what it made, the
 * key stays PendingImport and its parameters still import. */
static void crash_import_and_recover(const char *alias, CK_ULONG alg, const char *point,
                                     bool material_made)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    unsigned char m[32];
    struct params p;
    struct blob b;
    new_wrapped_aes(s, alias, alg, 2048, &key, &p, m, &b);
    fixture_close(s);
    long base = inspect_backend_material(), recovered = audits("RecoverImportKeyMaterial");
    pid_t pid = fork();
    if (pid == 0) {
        setenv("CMKP11_TEST_CRASH_AT", point, 1);
        CK_SESSION_HANDLE cs = fixture_open();
        import(cs, key, alg, &b, &p, 0);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(inspect_backend_material() == base + (material_made ? 1 : 0));
    s = fixture_open(); /* login: recovery */
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    fixture_close(s);
    CHECK(inspect_backend_material() == base);
    CHECK(audits("RecoverImportKeyMaterial") == recovered + 1);
    s = fixture_open(); /* the parameters are still good */
    CHECK_RV(import(s, key, alg, &b, &p, 0), CKR_OK);
    CHECK(cmk_encrypts_like(s, key, m));
    fixture_close(s);
    CHECK(inspect_backend_material() == base - 1); /* the pair went, the material came */
}

static void test_crash_during_import_leaves_the_key_pending_import(void)
{
    crash_import_and_recover("crashy", CMK_WRAP_RSAES_OAEP_SHA_1, "import:after-unwrap", true);
    crash_import_and_recover("claimed", CMK_WRAP_RSAES_OAEP_SHA_1, "import:after-claim", false);
    /* Material decoded in the module (copied from the candidate into the key's identity) */
    crash_import_and_recover("decoded", CMK_WRAP_RSAES_OAEP_SHA_256, "import:after-unwrap", true);
    crash_import_and_recover("kw", CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, "import:after-unwrap", true);
}

/* ---- Two processes at once ------------------------------------------------------ */

/* One child: its own C_Initialize and login, then, at the parent's word, the import;
 * its result goes back through the pipe. */
static void import_child(CK_OBJECT_HANDLE key, CK_ULONG alg, struct blob *b, const struct params *p,
                         int ready, int go, int result)
{
    CK_SESSION_HANDLE s = fixture_open();
    char c = 'r';
    if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1) _exit(2);
    CK_RV rv = import(s, key, alg, b, p, 0);
    if (write(result, &rv, sizeof(rv)) != sizeof(rv)) _exit(2);
    fixture_close(s);
    _exit(0);
}

/* Imports the same blob with the same token from two processes at the same moment. */
static void race_imports(CK_OBJECT_HANDLE key, CK_ULONG alg, struct blob *b, const struct params *p,
                         CK_RV rv[2])
{
    int ready[2], go[2], result[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0 && pipe(result) == 0);
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        if (pids[i] == 0) import_child(key, alg, b, p, ready[1], go[0], result[1]);
    }
    char c;
    for (int i = 0; i < 2; i++)
        CHECK(read(ready[0], &c, 1) == 1);
    CHECK(write(go[1], "gg", 2) == 2);
    for (int i = 0; i < 2; i++) {
        CHECK(read(result[0], &rv[i], sizeof(rv[i])) == sizeof(rv[i]));
        int status = 0;
        waitpid(pids[i], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (int i = 0; i < 2; i++) {
        close(ready[i]);
        close(go[i]);
        close(result[i]);
    }
}

static void test_two_processes_importing_into_one_key_at_once_one_wins(void)
{
    static const CK_ULONG algs[] = {CMK_WRAP_RSAES_OAEP_SHA_1, CMK_WRAP_RSAES_OAEP_SHA_256,
                                    CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1,
                                    CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256};
    const int rounds = 8;
    CK_OBJECT_HANDLE keys[8];
    unsigned char m[8][32];
    for (int r = 0; r < rounds; r++) {
        CK_SESSION_HANDLE s = fixture_open();
        struct params p;
        struct blob b;
        char alias[16];
        snprintf(alias, sizeof(alias), "race-%d", r);
        CK_ULONG alg = algs[r % 4];
        new_wrapped_aes(s, alias, alg, 2048, &keys[r], &p, m[r], &b);
        fixture_close(s);
        CK_RV rv[2] = {0, 0};
        race_imports(keys[r], alg, &b, &p, rv);
        /* Exactly one wins; the other learns the token is used up, whatever the order. */
        CHECK((rv[0] == CKR_OK) != (rv[1] == CKR_OK));
        CK_RV lost = rv[0] == CKR_OK ? rv[1] : rv[0];
        if (lost != CKR_ATTRIBUTE_VALUE_INVALID)
            printf("  round %d (%lu): the losing import got 0x%lx\n", r, alg, lost);
        CHECK(lost == CKR_ATTRIBUTE_VALUE_INVALID);
    }
    /* No orphan material: the token key and one material object per key, nothing else. */
    CHECK(inspect_backend_objects("") == 1 + rounds);
    CHECK(inspect_backend_material() == 1 + rounds);
    CHECK(audits("ImportKeyMaterial") == rounds);
    CHECK(audits("GetParametersForImport") == rounds);
    CHECK(audits("RecoverImportKeyMaterial") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_import WHERE importing_pid != 0 OR "
                              "wrap_id IS NOT NULL OR fingerprint IS NULL") == 0);
    CK_SESSION_HANDLE s = fixture_open();
    for (int r = 0; r < rounds; r++) {
        CHECK(state_of(s, keys[r]) == CMK_STATE_ENABLED);
        CHECK(cmk_encrypts_like(s, keys[r], m[r]));
    }
    fixture_close(s);
}

/* The same with threads of one process, each on its own session. */
struct racer {
    CK_OBJECT_HANDLE key;
    CK_ULONG alg;
    struct blob *b;
    const struct params *p;
    pthread_barrier_t *go;
    CK_RV rv;
};

static void *import_thread(void *arg)
{
    struct racer *r = arg;
    CK_SESSION_HANDLE s = 0;
    r->rv = p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    pthread_barrier_wait(r->go);
    if (r->rv == CKR_OK) r->rv = import(s, r->key, r->alg, r->b, r->p, 0);
    if (s) p11->C_CloseSession(s);
    return NULL;
}

/* Four at once: a loser may be in the middle of a backend call on the wrapping key when the
 * winner destroys it, and the backend then fails in its own way (with two threads, CI saw
 * CKR_MECHANISM_PARAM_INVALID now and then); each loser must still hear the token was used. */
static void test_four_threads_importing_into_one_key_at_once_one_wins(void)
{
    static const CK_ULONG algs[] = {CMK_WRAP_RSAES_OAEP_SHA_1, CMK_WRAP_RSAES_OAEP_SHA_256,
                                    CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256};
    enum { RACERS = 4 };
    const int rounds = 9;
    CK_SESSION_HANDLE s = fixture_open();
    for (int r = 0; r < rounds; r++) {
        CK_OBJECT_HANDLE key;
        struct params p;
        struct blob b;
        unsigned char m[32];
        char alias[16];
        snprintf(alias, sizeof(alias), "threads-%d", r);
        CK_ULONG alg = algs[r % 3];
        new_wrapped_aes(s, alias, alg, 2048, &key, &p, m, &b);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, RACERS);
        struct racer racers[RACERS];
        pthread_t t[RACERS];
        for (int i = 0; i < RACERS; i++) {
            racers[i] = (struct racer){key, alg, &b, &p, &go, 0};
            CHECK(pthread_create(&t[i], NULL, import_thread, &racers[i]) == 0);
        }
        for (int i = 0; i < RACERS; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&go);
        int won = 0;
        for (int i = 0; i < RACERS; i++) {
            if (racers[i].rv == CKR_OK) {
                won++;
                continue;
            }
            if (racers[i].rv != CKR_ATTRIBUTE_VALUE_INVALID)
                printf("  round %d (%lu): a losing import got 0x%lx\n", r, alg, racers[i].rv);
            CHECK(racers[i].rv == CKR_ATTRIBUTE_VALUE_INVALID);
        }
        CHECK(won == 1);
        CHECK(cmk_encrypts_like(s, key, m));
    }
    fixture_close(s);
    CHECK(inspect_backend_objects("") == 1 + rounds);
    CHECK(audits("ImportKeyMaterial") == rounds);
}

/* GetParametersForImport asked for by several threads at once: each call succeeds, and
 * what stays is one wrapping pair, the one the key's outstanding token names; importing
 * with that token works, and then no pair is left. */
struct asker {
    CK_OBJECT_HANDLE key;
    pthread_barrier_t *go;
    struct params p;
    CK_RV rv;
};

static void *params_thread(void *arg)
{
    struct asker *a = arg;
    CK_SESSION_HANDLE s = 0;
    a->rv = p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    pthread_barrier_wait(a->go);
    if (a->rv == CKR_OK) a->rv = get_params(s, a->key, CMK_WRAP_RSAES_OAEP_SHA_1, 2048, &a->p);
    if (s) p11->C_CloseSession(s);
    return NULL;
}

static void test_parameters_asked_for_at_once_leave_the_outstanding_pair(void)
{
    enum { ASKERS = 4 };
    const int rounds = 6;
    CK_SESSION_HANDLE s = fixture_open();
    for (int r = 0; r < rounds; r++) {
        CK_OBJECT_HANDLE key;
        char alias[16], key_id[40], prefix[80];
        snprintf(alias, sizeof(alias), "askers-%d", r);
        CHECK_RV(make_external_aes(s, alias, &key), CKR_OK);
        key_id_of(s, key, key_id);
        snprintf(prefix, sizeof(prefix), "cmkp11/import/%s", key_id);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, ASKERS);
        struct asker askers[ASKERS];
        pthread_t t[ASKERS];
        for (int i = 0; i < ASKERS; i++) {
            memset(&askers[i], 0, sizeof(askers[i]));
            askers[i].key = key;
            askers[i].go = &go;
            CHECK(pthread_create(&t[i], NULL, params_thread, &askers[i]) == 0);
        }
        for (int i = 0; i < ASKERS; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&go);
        for (int i = 0; i < ASKERS; i++)
            CHECK_RV(askers[i].rv, CKR_OK);
        fixture_close(s); /* the backend is read directly, which needs it finalized here */
        long pairs = inspect_backend_objects(prefix);
        if (pairs != 2) printf("  round %d: %ld wrapping key objects left, not 2\n", r, pairs);
        CHECK(pairs == 2);
        s = fixture_open();
        /* The outstanding token, read now, imports; its pair is the one left. */
        struct params now;
        CK_ATTRIBUTE a[] = {{CKA_CMK_IMPORT_TOKEN, now.token, sizeof(now.token)},
                            {CKA_CMK_IMPORT_PUBLIC_KEY, now.spki, sizeof(now.spki)}};
        CHECK_RV(p11->C_GetAttributeValue(s, key, a, 2), CKR_OK);
        now.token_len = a[0].ulValueLen;
        now.spki_len = a[1].ulValueLen;
        unsigned char m[32];
        struct blob b;
        RAND_bytes(m, sizeof(m));
        wrap_material(CMK_WRAP_RSAES_OAEP_SHA_1, &now, m, sizeof(m), &b);
        CHECK_RV(import(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, &b, &now, 0), CKR_OK);
        CHECK(cmk_encrypts_like(s, key, m));
        fixture_close(s);
        CHECK(inspect_backend_objects(prefix) == 0);
        s = fixture_open();
    }
    fixture_close(s);
    CHECK(audits("GetParametersForImport") == rounds * ASKERS);
}

/* ---- The wrapping key while an import is inside a backend call on it ---------------- */

/* An import, or new parameters, run on a session of its own; done once it returned. */
struct held_job {
    CK_OBJECT_HANDLE key;
    CK_ULONG alg;
    struct blob *b;
    const struct params *p;
    bool params;         /* GetParametersForImport instead of an import */
    bool by_process;     /* run by another process, not another thread */
    struct params fresh; /* what it gave */
    CK_RV rv;
    atomic_bool done;
};

static void *held_job_run(void *arg)
{
    struct held_job *j = arg;
    CK_SESSION_HANDLE s = 0;
    j->rv = p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (j->rv == CKR_OK)
        j->rv = j->params ? get_params(s, j->key, j->alg, 2048, &j->fresh)
                          : import(s, j->key, j->alg, j->b, j->p, 0);
    if (s) p11->C_CloseSession(s);
    atomic_store(&j->done, true);
    return NULL;
}

/* A child process for job: initialised and logged in before the hold (so that only the
 * job runs during it), it runs job at the word on go and sends back its code and the
 * parameters it got on result. */
static pid_t held_job_child(struct held_job *job, int go, int result)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    int before = harness_failed_checks; /* the parent's, inherited */
    CK_SESSION_HANDLE c = fixture_open();
    char byte;
    if (read(go, &byte, 1) == 1) held_job_run(job);
    if (write(result, &job->rv, sizeof(job->rv)) != sizeof(job->rv) ||
        write(result, &job->fresh, sizeof(job->fresh)) != sizeof(job->fresh))
        _exit(2);
    fixture_close(c);
    _exit(harness_failed_checks > before ? 1 : 0);
}

/* Whether other has ended: its thread said so, or its process sent its result. */
static bool held_job_ended(struct held_job *other, int result)
{
    struct pollfd p = {result, POLLIN, 0};
    return other->by_process ? poll(&p, 1, 0) == 1 : atomic_load(&other->done);
}

/* Holds importer a at point, inside its use of the wrapping key, and runs other meanwhile
 * (an import with the same token, or new parameters, either of which destroys the pair),
 * in another thread or another process. Unhindered, other ends in a fraction of a second;
 * it is given 2 s, and must not have ended: its destroy of the pair waits until a is out
 * of the backend. Then a goes on and both end (a waits at most 60 s at the point, so
 * nothing here can hang). True when other did not end while a was held. */
static bool run_while_held(const char *point, struct held_job *a, struct held_job *other)
{
    int go[2] = {-1, -1}, result[2] = {-1, -1};
    pid_t child = -1;
    if (other->by_process) {
        CHECK(pipe(go) == 0 && pipe(result) == 0);
        child = held_job_child(other, go[0], result[1]);
    }
    pause_arm(point);
    pthread_t ta, to;
    CHECK(pthread_create(&ta, NULL, held_job_run, a) == 0);
    CHECK(pause_wait_reached(point));
    if (other->by_process)
        CHECK(write(go[1], "g", 1) == 1);
    else
        CHECK(pthread_create(&to, NULL, held_job_run, other) == 0);
    for (int ms = 0; ms < 2000 && !held_job_ended(other, result[0]); ms += 10)
        usleep(10 * 1000);
    bool waited = !held_job_ended(other, result[0]);
    pause_release(point);
    pthread_join(ta, NULL);
    if (other->by_process) {
        CHECK(read(result[0], &other->rv, sizeof(other->rv)) == sizeof(other->rv));
        CHECK(read(result[0], &other->fresh, sizeof(other->fresh)) == sizeof(other->fresh));
        int status = 0;
        waitpid(child, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (int i = 0; i < 2; i++) {
            close(go[i]);
            close(result[i]);
        }
    } else {
        pthread_join(to, NULL);
    }
    if (!waited)
        printf("  %s: the other call (0x%lx) ended while the import was held there\n", point,
               other->rv);
    return waited;
}

/* Where an import uses the wrapping key: the raw RSA step of OAEP-SHA-256 decoded in the
 * module (between C_DecryptInit and C_Decrypt), the backend's OAEP unwrap of the material
 * and the one of RSA_AES_KEY_WRAP's ephemeral key (just before C_UnwrapKey). */
static const struct {
    const char *point;
    CK_ULONG alg;
} held_at[] = {
    {"import:decrypting-with-wrapping-key", CMK_WRAP_RSAES_OAEP_SHA_256},
    {"import:unwrapping-with-wrapping-key", CMK_WRAP_RSAES_OAEP_SHA_1},
    {"import:unwrapping-with-wrapping-key", CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1},
};
enum { HELD_POINTS = sizeof(held_at) / sizeof(held_at[0]) };
/* Each point with the other call in another thread, and the first point once more with
 * it in another process (the token lock's flock, not only its threads' half). */
enum { HELD_CASES = HELD_POINTS + 1 };

/* Case i: a new key, its parameters and material m wrapped for them; the import a held at
 * the case's point while other (an import of the same blob, or new parameters) runs. */
struct held_case {
    const char *point;
    CK_ULONG alg;
    CK_OBJECT_HANDLE key;
    struct params p;
    struct blob b;
    unsigned char m[32];
    struct held_job a, other;
};

static void held_case_run(CK_SESSION_HANDLE s, int i, bool params, struct held_case *c)
{
    char alias[32];
    snprintf(alias, sizeof(alias), "held-%d-%s", i, params ? "params" : "import");
    c->point = held_at[i % HELD_POINTS].point;
    c->alg = held_at[i % HELD_POINTS].alg;
    new_wrapped_aes(s, alias, c->alg, 2048, &c->key, &c->p, c->m, &c->b);
    c->a = (struct held_job){.key = c->key, .alg = c->alg, .b = &c->b, .p = &c->p};
    c->other = c->a;
    c->other.params = params;
    c->other.by_process = i >= HELD_POINTS;
    CHECK(run_while_held(c->point, &c->a, &c->other));
}

/* Issue 16, case 1: the winner of two imports with one token destroyed the wrapping pair
 * while the loser was inside C_Decrypt or C_UnwrapKey on it, and SoftHSMv2 crashed. Now
 * the winner's destroy waits; exactly one import wins, the other hears the token was used. */
static void test_an_import_on_the_wrapping_key_holds_off_the_winner_s_destroy(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    for (int i = 0; i < HELD_CASES; i++) {
        struct held_case c;
        held_case_run(s, i, false, &c);
        CHECK((c.a.rv == CKR_OK) != (c.other.rv == CKR_OK));
        CK_RV lost = c.a.rv == CKR_OK ? c.other.rv : c.a.rv;
        if (lost != CKR_ATTRIBUTE_VALUE_INVALID)
            printf("  %s (%lu): the losing import got 0x%lx\n", c.point, c.alg, lost);
        CHECK_RV(lost, CKR_ATTRIBUTE_VALUE_INVALID);
        CHECK(state_of(s, c.key) == CMK_STATE_ENABLED);
        CHECK(cmk_encrypts_like(s, c.key, c.m));
    }
    fixture_close(s);
    /* The token key and one material object per key: no pair, no candidate left. */
    CHECK(inspect_backend_objects("") == 1 + HELD_CASES);
    CHECK(audits("ImportKeyMaterial") == HELD_CASES);
}

/* Issue 16, case 2: GetParametersForImport replaced (destroyed) the pair while an import
 * with the old parameters was inside C_UnwrapKey on it. Now the replacement waits; the
 * import then either wins (it came first) or hears its token was replaced, and the key
 * ends with the material either way. */
static void test_an_import_on_the_wrapping_key_holds_off_new_parameters(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    int outstanding = 0; /* new parameters left unused, where the held import won */
    for (int i = 0; i < HELD_CASES; i++) {
        struct held_case c;
        held_case_run(s, i, true, &c);
        CHECK_RV(c.other.rv, CKR_OK);
        if (c.a.rv != CKR_OK) {
            CHECK_RV(c.a.rv, CKR_ATTRIBUTE_VALUE_INVALID);
            CHECK(state_of(s, c.key) == CMK_STATE_PENDING_IMPORT);
            /* The new parameters take the same material. */
            wrap_material(c.alg, &c.other.fresh, c.m, sizeof(c.m), &c.b);
            CHECK_RV(import(s, c.key, c.alg, &c.b, &c.other.fresh, 0), CKR_OK);
        } else {
            outstanding++;
        }
        CHECK(state_of(s, c.key) == CMK_STATE_ENABLED);
        CHECK(cmk_encrypts_like(s, c.key, c.m));
    }
    fixture_close(s);
    /* The token key, one material object per key, the pair of each set of new parameters
     * left unused; the replaced pairs went. */
    CHECK(inspect_backend_objects("") == 1 + HELD_CASES + 2 * outstanding);
    CHECK(audits("ImportKeyMaterial") == HELD_CASES);
    CHECK(audits("GetParametersForImport") == 2 * HELD_CASES);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_create_external_aes_is_pending_import_without_material),
        T(test_create_external_rsa_pair_is_pending_import),
        T(test_import_ec_private_key_as_pkcs8_signs_for_the_original_public_key),
        T(test_import_parameters_give_public_key_and_token_and_asking_again_replaces_them),
        T(test_import_parameters_refused_for_kms_keys_and_bad_requests),
        T(test_import_oaep_sha1_aes_material_is_the_material_in_use),
        T(test_import_oaep_sha256_aes_material_is_the_material_in_use),
        T(test_import_rsa_aes_key_wrap_sha256_aes_and_rsa_material),
        T(test_import_oaep_sha256_refuses_bad_blobs_and_changes_nothing),
        T(test_oaep_sha256_is_refused_with_the_option_off_where_the_hsm_lacks_it),
        T(test_import_rsa_aes_key_wrap_aes_material),
        T(test_import_rsa_private_key_as_pkcs8_signs_for_the_original_public_key),
        T(test_import_refuses_forged_and_edited_tokens),
        T(test_import_refuses_another_keys_token),
        T(test_import_refuses_an_expired_token),
        T(test_import_refuses_material_wrapped_for_another_public_key),
        T(test_import_refuses_truncated_blobs_and_wrong_lengths),
        T(test_import_refuses_unknown_algorithms_and_mismatched_mechanisms),
        T(test_import_refuses_kms_and_pending_deletion_keys),
        T(test_expired_material_is_refused_at_once_and_destroyed_at_login),
        T(test_reimport_into_a_key_with_material_takes_only_the_same_material),
        T(test_import_hmac_material_of_128_and_256_bits),
        T(test_delete_imported_material_destroys_it_at_once),
        T(test_cancelled_deletion_returns_a_key_without_material_to_pending_import),
        T(test_crash_during_import_leaves_the_key_pending_import),
        T(test_two_processes_importing_into_one_key_at_once_one_wins),
        T(test_four_threads_importing_into_one_key_at_once_one_wins),
        T(test_parameters_asked_for_at_once_leave_the_outstanding_pair),
        T(test_an_import_on_the_wrapping_key_holds_off_the_winner_s_destroy),
        T(test_an_import_on_the_wrapping_key_holds_off_new_parameters),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
