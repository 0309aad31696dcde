/* test_soft_import.c - EXTERNAL origin for SOFTWARE keys (AES, SM4, HMAC and the key
 * pairs, SM2 included) over a real SoftHSMv2 token: the material is wrapped by OpenSSL as
 * the clouds' guides say (pairs as PKCS#8), imported with C_UnwrapKey, sealed under the
 * token master key, and proved in use by OpenSSL: it decrypts what the module encrypted,
 * verifies what it signed, and makes the same MAC, with the original key. */
#define _GNU_SOURCE /* memmem */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "import_client.h"
#include "inspect.h"

static CK_ULONG external = CMK_ORIGIN_EXTERNAL, software = CMK_PROTECTION_SOFTWARE;
static CK_BBOOL yes = CK_TRUE;

static CK_RV make_soft_external_aes(CK_SESSION_HANDLE s, const char *alias, CK_OBJECT_HANDLE *key)
{
    CK_ATTRIBUTE extra[] = {{CKA_CMK_ORIGIN, &external, sizeof(external)},
                            {CKA_CMK_PROTECTION_LEVEL, &software, sizeof(software)}};
    return make_aes(s, alias, extra, 2, key);
}

/* A SOFTWARE HMAC key of EXTERNAL origin, of bytes bytes (HMAC_<8 * bytes>). */
static CK_RV make_soft_external_hmac(CK_SESSION_HANDLE s, const char *alias, CK_ULONG bytes,
                                     CK_OBJECT_HANDLE *key)
{
    CK_MECHANISM gen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE t[] = {{CKA_TOKEN, &yes, 1},
                        {CKA_SIGN, &yes, 1},
                        {CKA_VALUE_LEN, &bytes, sizeof(bytes)},
                        {CKA_LABEL, (void *)alias, strlen(alias)},
                        {CKA_CMK_ORIGIN, &external, sizeof(external)},
                        {CKA_CMK_PROTECTION_LEVEL, &software, sizeof(software)}};
    return p11->C_GenerateKey(s, &gen, t, sizeof(t) / sizeof(t[0]), key);
}

/* SM4 is SOFTWARE on this backend without being asked. */
static CK_RV make_external_sm4(CK_SESSION_HANDLE s, const char *alias, CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_CMK_SM4;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &type, sizeof(type)},
                        {CKA_TOKEN, &yes, 1},
                        {CKA_ENCRYPT, &yes, 1},
                        {CKA_DECRYPT, &yes, 1},
                        {CKA_LABEL, (void *)alias, strlen(alias)},
                        {CKA_CMK_ORIGIN, &external, sizeof(external)}};
    CK_MECHANISM mech = {CKM_CMK_SM4_KEY_GEN, NULL, 0};
    return p11->C_GenerateKey(s, &mech, t, sizeof(t) / sizeof(t[0]), key);
}

/* Fresh parameters for key, m (n bytes) wrapped for them with alg, and the import. */
static CK_RV import_with(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_ULONG alg,
                         const unsigned char *m, size_t n, CK_ULONG expires)
{
    struct params p;
    struct blob b;
    CHECK_RV(get_params(s, key, alg, 2048, &p), CKR_OK);
    wrap_material(alg, &p, m, n, &b);
    return import(s, key, alg, &b, &p, expires);
}

/* AES-GCM through the CMK, decrypted by OpenSSL with the 32 original bytes. */
static bool aes_gcm_is_material(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const unsigned char *m)
{
    unsigned char iv[12], aad[] = "soft import", msg[] = "imported SOFTWARE material in use";
    unsigned char ct[128], pt[128];
    RAND_bytes(iv, sizeof(iv));
    CK_GCM_PARAMS gcm = {iv, sizeof(iv), sizeof(iv) * 8, aad, sizeof(aad), 128};
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    CK_ULONG ct_len = sizeof(ct);
    if (p11->C_EncryptInit(s, &mech, key) != CKR_OK ||
        p11->C_Encrypt(s, msg, sizeof(msg), ct, &ct_len) != CKR_OK || ct_len != sizeof(msg) + 16)
        return false;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0, aad_len = 0;
    bool ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, sizeof(iv), NULL) == 1 &&
              EVP_DecryptInit_ex(ctx, NULL, NULL, m, iv) == 1 &&
              EVP_DecryptUpdate(ctx, NULL, &aad_len, aad, sizeof(aad)) == 1 &&
              EVP_DecryptUpdate(ctx, pt, &l1, ct, (int)sizeof(msg)) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, ct + sizeof(msg)) == 1 &&
              EVP_DecryptFinal_ex(ctx, pt + l1, &l2) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok && l1 + l2 == (int)sizeof(msg) && !memcmp(pt, msg, sizeof(msg));
}

/* SM4-CBC through the CMK, decrypted by OpenSSL with the 16 original bytes. */
static bool sm4_cbc_is_material(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const unsigned char *m)
{
    unsigned char iv[16], msg[32] = "SM4 material imported, in use!", ct[64], pt[64];
    RAND_bytes(iv, sizeof(iv));
    CK_MECHANISM mech = {CKM_CMK_SM4_CBC, iv, sizeof(iv)};
    CK_ULONG ct_len = sizeof(ct);
    if (p11->C_EncryptInit(s, &mech, key) != CKR_OK ||
        p11->C_Encrypt(s, msg, sizeof(msg), ct, &ct_len) != CKR_OK || ct_len != sizeof(msg))
        return false;
    EVP_CIPHER *sm4 = EVP_CIPHER_fetch(NULL, "SM4-CBC", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    bool ok = sm4 && EVP_DecryptInit_ex(ctx, sm4, NULL, m, iv) == 1 &&
              EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
              EVP_DecryptUpdate(ctx, pt, &l1, ct, (int)ct_len) == 1 &&
              EVP_DecryptFinal_ex(ctx, pt + l1, &l2) == 1;
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(sm4);
    return ok && l1 + l2 == (int)sizeof(msg) && !memcmp(pt, msg, sizeof(msg));
}

static long sealed_rows(void) { return inspect_store_count("SELECT count(*) FROM cmk_sealed"); }

static long stored_public_keys(void)
{
    return inspect_store_count("SELECT count(*) FROM cmk WHERE public_key_info IS NOT NULL OR "
                               "ec_point IS NOT NULL");
}

/* Backend token objects of the key: its material identity and its wrapping pairs. */
static long backend_objects_of(const char *key_id)
{
    char label[80];
    snprintf(label, sizeof(label), "cmkp11/%.36s", key_id);
    long n = inspect_backend_objects(label);
    snprintf(label, sizeof(label), "cmkp11/import/%.36s", key_id);
    return n + inspect_backend_objects(label);
}

static void expect_rotation_refused(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE now[] = {{CKA_CMK_ROTATE_NOW, &yes, 1}};
    CHECK(p11->C_SetAttributeValue(s, key, now, 1) != CKR_OK);
    CK_ATTRIBUTE automatic[] = {{CKA_CMK_ROTATION_ENABLED, &yes, 1}};
    CHECK(p11->C_SetAttributeValue(s, key, automatic, 1) != CKR_OK);
}

/* ---- Create ---------------------------------------------------------------------- */

static void test_create_external_software_secrets_wait_without_sealed_material(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE aes, sm4, hmac, key;
    CHECK_RV(make_soft_external_aes(s, "soft-byok", &aes), CKR_OK);
    CHECK_RV(make_external_sm4(s, "sm4-byok", &sm4), CKR_OK);
    CHECK_RV(make_soft_external_hmac(s, "hmac-byok", 64, &hmac), CKR_OK);
    CK_OBJECT_HANDLE keys[] = {aes, sm4, hmac};
    CK_ULONG lens[] = {32, 16, 64};
    for (int i = 0; i < 3; i++) {
        CK_ULONG v = 0;
        CHECK(state_of(s, keys[i]) == CMK_STATE_PENDING_IMPORT);
        CHECK_RV(get_ulong(s, keys[i], CKA_CMK_PROTECTION_LEVEL, &v), CKR_OK);
        CHECK(v == CMK_PROTECTION_SOFTWARE);
        CHECK_RV(get_ulong(s, keys[i], CKA_CMK_ORIGIN, &v), CKR_OK);
        CHECK(v == CMK_ORIGIN_EXTERNAL);
        CHECK_RV(get_ulong(s, keys[i], CKA_VALUE_LEN, &v), CKR_OK);
        CHECK(v == lens[i]);
        expect_rotation_refused(s, keys[i]);
    }
    CHECK(find_by_label(s, "soft-byok", CKO_SECRET_KEY, NULL) == 1);
    CHECK(find_by_label(s, "sm4-byok", CKO_SECRET_KEY, NULL) == 1);
    CHECK(find_by_label(s, "hmac-byok", CKO_SECRET_KEY, NULL) == 1);
    CHECK_RV(aes_gcm_roundtrip(s, aes), CKR_KEY_FUNCTION_NOT_PERMITTED);
    unsigned char iv[16] = {0}, zero[16] = {0}, ct[64];
    CK_ULONG ct_len = sizeof(ct);
    CK_MECHANISM cbc = {CKM_CMK_SM4_CBC, iv, sizeof(iv)};
    CK_RV rv = p11->C_EncryptInit(s, &cbc, sm4);
    if (rv == CKR_OK) rv = p11->C_Encrypt(s, zero, sizeof(zero), ct, &ct_len);
    CHECK_RV(rv, CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_MECHANISM mac = {CKM_SHA256_HMAC, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &mac, hmac), CKR_KEY_FUNCTION_NOT_PERMITTED);
    /* Over 512 bits an HMAC key is not made at level SOFTWARE, of either origin. */
    CHECK_RV(make_soft_external_hmac(s, "hmac-576", 72, &key), CKR_TEMPLATE_INCONSISTENT);
    fixture_close(s);
    CHECK(sealed_rows() == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 3);
    CHECK(inspect_log_count("HMAC_128..HMAC_512, RSA_2048/3072/4096") == 1);
    CHECK(inspect_log_count("(asked: HMAC_576, origin EXTERNAL)") == 1);
    CHECK(audits("CreateKey") == 3);
}

/* ---- Import ---------------------------------------------------------------------- */

static void test_import_oaep_sha1_into_software_aes_is_the_material_in_use(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    unsigned char m[32];
    char key_id[40];
    RAND_bytes(m, sizeof(m));
    CHECK_RV(make_soft_external_aes(s, "soft-oaep1", &key), CKR_OK);
    key_id_of(s, key, key_id);
    CHECK_RV(import_with(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, m, sizeof(m), 0), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_ENABLED);
    CHECK(aes_gcm_is_material(s, key, m));
    fixture_close(s);
    CHECK(sealed_rows() == 1);
    CHECK(backend_objects_of(key_id) == 0); /* no material object, the pair destroyed */
    CHECK(audits("ImportKeyMaterial") == 1);
    s = fixture_open(); /* another process unseals it from the store */
    CHECK(aes_gcm_is_material(s, key, m));
    fixture_close(s);
}

static void test_import_rsa_aes_key_wrap_sha256_into_software_aes_decoded_in_module(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, oaep256;
    unsigned char m[32], m2[32];
    RAND_bytes(m, sizeof(m));
    RAND_bytes(m2, sizeof(m2));
    CHECK_RV(make_soft_external_aes(s, "soft-kw256", &key), CKR_OK);
    CHECK_RV(import_with(s, key, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, m, sizeof(m), 0), CKR_OK);
    CHECK(aes_gcm_is_material(s, key, m));
    /* The module's own OAEP-SHA-256 decoding of the material itself (SoftHSMv2 lacks it). */
    CHECK_RV(make_soft_external_aes(s, "soft-oaep256", &oaep256), CKR_OK);
    CHECK_RV(import_with(s, oaep256, CMK_WRAP_RSAES_OAEP_SHA_256, m2, sizeof(m2), 0), CKR_OK);
    CHECK(aes_gcm_is_material(s, oaep256, m2));
    fixture_close(s);
    CHECK(sealed_rows() == 2);
    CHECK(audits("ImportKeyMaterial") == 2);
}

static void test_import_sm4_via_rsa_aes_key_wrap_sha1_is_the_material_in_use(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    unsigned char m[16];
    char key_id[40];
    RAND_bytes(m, sizeof(m));
    CHECK_RV(make_external_sm4(s, "sm4-kw1", &key), CKR_OK);
    key_id_of(s, key, key_id);
    CHECK_RV(import_with(s, key, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, m, sizeof(m), 0), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_ENABLED);
    CHECK(sm4_cbc_is_material(s, key, m));
    fixture_close(s);
    CHECK(sealed_rows() == 1);
    CHECK(backend_objects_of(key_id) == 0);
    s = fixture_open();
    CHECK(sm4_cbc_is_material(s, key, m));
    fixture_close(s);
}

static void test_software_import_refuses_wrong_lengths_and_changes_nothing(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE aes, sm4;
    unsigned char m[32];
    struct params pa, ps;
    struct blob b16, b24, b32, b16ok, b32ok;
    RAND_bytes(m, sizeof(m));
    CHECK_RV(make_soft_external_aes(s, "soft-short", &aes), CKR_OK);
    CHECK_RV(make_external_sm4(s, "sm4-long", &sm4), CKR_OK);
    CHECK_RV(get_params(s, aes, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 2048, &pa), CKR_OK);
    CHECK_RV(get_params(s, sm4, CMK_WRAP_RSAES_OAEP_SHA_256, 2048, &ps), CKR_OK);
    wrap_rsa_aes(&pa, false, m, 16, &b16);
    wrap_rsa_aes(&pa, false, m, 24, &b24);
    wrap_rsa_aes(&pa, false, m, 32, &b32ok);
    wrap_oaep(&ps, true, m, 32, &b32);
    wrap_oaep(&ps, true, m, 16, &b16ok);
    fixture_close(s);
    char before[8192], after[8192];
    CHECK(inspect_snapshot(before, sizeof(before)) == 0);
    s = fixture_open();
    CHECK_RV(import(s, aes, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b16, &pa, 0), CKR_KEY_SIZE_RANGE);
    CHECK_RV(import(s, aes, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b24, &pa, 0), CKR_KEY_SIZE_RANGE);
    CHECK_RV(import(s, sm4, CMK_WRAP_RSAES_OAEP_SHA_256, &b32, &ps, 0), CKR_KEY_SIZE_RANGE);
    CHECK(state_of(s, aes) == CMK_STATE_PENDING_IMPORT);
    CHECK(state_of(s, sm4) == CMK_STATE_PENDING_IMPORT);
    fixture_close(s);
    CHECK(inspect_snapshot(after, sizeof(after)) == 0);
    CHECK(strcmp(before, after) == 0);
    CHECK(sealed_rows() == 0);
    CHECK(inspect_log_count("the material is 16 bytes (0: not a multiple of 8), key") == 1);
    CHECK(inspect_log_count("(SM4) needs 16") == 1);
    s = fixture_open(); /* the same parameters still take the right lengths */
    CHECK_RV(import(s, aes, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b32ok, &pa, 0), CKR_OK);
    CHECK_RV(import(s, sm4, CMK_WRAP_RSAES_OAEP_SHA_256, &b16ok, &ps, 0), CKR_OK);
    CHECK(aes_gcm_is_material(s, aes, m));
    CHECK(sm4_cbc_is_material(s, sm4, m));
    fixture_close(s);
    CHECK(sealed_rows() == 2);
}

/* ---- Expiry, delete, re-import ---------------------------------------------------- */

static void test_software_material_expires_and_reimport_takes_only_the_same(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    unsigned char m[16], other[16];
    RAND_bytes(m, sizeof(m));
    RAND_bytes(other, sizeof(other));
    CHECK_RV(make_external_sm4(s, "sm4-expiring", &key), CKR_OK);
    CK_ULONG expires = (CK_ULONG)time(NULL) + 3600;
    CHECK_RV(import_with(s, key, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, m, 16, expires), CKR_OK);
    CHECK(sm4_cbc_is_material(s, key, m));
    set_now_offset(3601);
    CHECK(!sm4_cbc_is_material(s, key, m)); /* refused at once, before the purge */
    fixture_close(s);
    CHECK(sealed_rows() == 1);
    s = fixture_open(); /* login: the expiry step */
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    fixture_close(s);
    CHECK(sealed_rows() == 0);
    CHECK(audits("KeyMaterialExpired") == 1);
    s = fixture_open();
    CHECK_RV(import_with(s, key, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, other, 16, 0),
             CKR_CMK_INCORRECT_KEY_MATERIAL);
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    CHECK_RV(import_with(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, m, 16, 0), CKR_OK);
    CHECK(sm4_cbc_is_material(s, key, m));
    /* Into a key that has its material: the same only, nothing resealed. */
    CHECK_RV(import_with(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, other, 16, 0),
             CKR_CMK_INCORRECT_KEY_MATERIAL);
    CHECK_RV(import_with(s, key, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, m, 16, 0), CKR_OK);
    CHECK(sm4_cbc_is_material(s, key, m));
    unsetenv("CMKP11_TEST_NOW");
    fixture_close(s);
    CHECK(sealed_rows() == 1);
    CHECK(audits("ImportKeyMaterial") == 3);
}

static void test_delete_imported_software_material_and_import_it_again(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    unsigned char m[32], other[32];
    RAND_bytes(m, sizeof(m));
    RAND_bytes(other, sizeof(other));
    CHECK_RV(make_soft_external_aes(s, "soft-deleted", &key), CKR_OK);
    CK_BBOOL t = CK_TRUE;
    CK_ATTRIBUTE del[] = {{CKA_CMK_DELETE_MATERIAL, &t, 1}};
    CHECK_RV(p11->C_SetAttributeValue(s, key, del, 1), CKR_ACTION_PROHIBITED); /* none yet */
    CHECK_RV(import_with(s, key, CMK_WRAP_RSAES_OAEP_SHA_1, m, 32, 0), CKR_OK);
    CHECK(aes_gcm_is_material(s, key, m));
    CHECK_RV(p11->C_SetAttributeValue(s, key, del, 1), CKR_OK);
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
    CHECK(sealed_rows() == 0);
    CHECK(audits("DeleteImportedKeyMaterial") == 1);
    s = fixture_open();
    CHECK_RV(import_with(s, key, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, other, 32, 0),
             CKR_CMK_INCORRECT_KEY_MATERIAL);
    CHECK_RV(import_with(s, key, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, m, 32, 0), CKR_OK);
    CHECK(aes_gcm_is_material(s, key, m));
    fixture_close(s);
    CHECK(sealed_rows() == 1);
}

/* ---- Secrecy --------------------------------------------------------------------- */

/* Does the file at CMK_WORK/name hold the bytes, raw or as hex in either case? A missing
 * store or log counts as holding them: the search must have looked. */
static bool work_file_holds(const char *name, const unsigned char *m, size_t n)
{
    char path[512], hex[2][2 * 64 + 1]; /* up to 64 bytes: HMAC_512 */
    snprintf(path, sizeof(path), "%s/%s", getenv("CMK_WORK"), name);
    for (size_t i = 0; i < n; i++) {
        snprintf(hex[0] + 2 * i, 3, "%02x", m[i]);
        snprintf(hex[1] + 2 * i, 3, "%02X", m[i]);
    }
    FILE *f = fopen(path, "rb");
    if (!f) return strcmp(name, "cmk.db-wal") != 0; /* the store and the log must be there */
    static unsigned char data[1 << 22];
    size_t len = fread(data, 1, sizeof(data), f);
    fclose(f);
    return memmem(data, len, m, n) || memmem(data, len, hex[0], 2 * n) ||
           memmem(data, len, hex[1], 2 * n);
}

static void test_imported_software_material_is_in_neither_store_nor_log(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE aes, sm4;
    unsigned char m[32], k[16];
    RAND_bytes(m, sizeof(m));
    RAND_bytes(k, sizeof(k));
    CHECK_RV(make_soft_external_aes(s, "soft-secret", &aes), CKR_OK);
    CHECK_RV(make_external_sm4(s, "sm4-secret", &sm4), CKR_OK);
    CHECK_RV(import_with(s, aes, CMK_WRAP_RSAES_OAEP_SHA_256, m, 32, 0), CKR_OK);
    CHECK_RV(import_with(s, sm4, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, k, 16, 0), CKR_OK);
    CHECK_RV(import_with(s, sm4, CMK_WRAP_RSAES_OAEP_SHA_1, k, 16, 0), CKR_OK); /* re-import */
    unsigned char other[16];
    RAND_bytes(other, sizeof(other));
    CHECK_RV(import_with(s, sm4, CMK_WRAP_RSAES_OAEP_SHA_1, other, 16, 0),
             CKR_CMK_INCORRECT_KEY_MATERIAL);
    CHECK(aes_gcm_is_material(s, aes, m));
    CHECK(sm4_cbc_is_material(s, sm4, k));
    fixture_close(s);
    CHECK(sealed_rows() == 2);
    static const char *const files[] = {"cmk.db", "cmk.db-wal", "cmkp11.log"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        CHECK(!work_file_holds(files[i], m, sizeof(m)));
        CHECK(!work_file_holds(files[i], k, sizeof(k)));
        CHECK(!work_file_holds(files[i], other, sizeof(other)));
    }
    /* The log was there to search: it holds the refusal of the other material. */
    CHECK(inspect_log_count("is not the material imported first") == 1);
}

/* ---- Key pairs: PKCS#8 made by OpenSSL ------------------------------------------- */

static const unsigned char msg[] = "signed by an imported SOFTWARE key pair";

/* The DER of key's curve OID, as CKA_EC_PARAMS carries it; its length. */
static CK_ULONG curve_params(EVP_PKEY *key, unsigned char out[16])
{
    char group[64] = "";
    size_t n = 0;
    CHECK(EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                         &n) == 1);
    unsigned char *p = out;
    int len = i2d_ASN1_OBJECT(OBJ_nid2obj(OBJ_sn2nid(group)), &p);
    CHECK(len > 0 && len <= 16);
    return (CK_ULONG)len;
}

/* A pair of EXTERNAL origin of key's spec (RSA of its size, EC on its curve, SM2) at
 * protection level (CMK_PROTECTION_*); usage 0: the default. */
static CK_RV make_pair_for(CK_SESSION_HANDLE s, const char *alias, EVP_PKEY *key, CK_ULONG level,
                           CK_ULONG usage, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    bool rsa = EVP_PKEY_is_a(key, "RSA"), sm2 = EVP_PKEY_is_a(key, "SM2");
    CK_MECHANISM m = {rsa   ? CKM_RSA_PKCS_KEY_PAIR_GEN
                      : sm2 ? CKM_CMK_SM2_KEY_PAIR_GEN
                            : CKM_EC_KEY_PAIR_GEN,
                      NULL, 0};
    CK_ULONG bits = (CK_ULONG)EVP_PKEY_get_bits(key);
    unsigned char params[16];
    CK_ATTRIBUTE pt[3] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, (void *)alias, strlen(alias)}};
    CK_ULONG np = 2;
    if (rsa) pt[np++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
    if (!rsa && !sm2) pt[np++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, params, curve_params(key, params)};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &yes, 1},
                         {CKA_LABEL, (void *)alias, strlen(alias)},
                         {CKA_CMK_ORIGIN, &external, sizeof(external)},
                         {CKA_CMK_PROTECTION_LEVEL, &level, sizeof(level)},
                         {CKA_CMK_KEY_USAGE, &usage, sizeof(usage)}};
    return p11->C_GenerateKeyPair(s, &m, pt, np, vt, usage ? 5 : 4, pub, priv);
}

/* key's PKCS#8 PrivateKeyInfo (DER), as `openssl pkcs8 -topk8 -nocrypt -outform DER` writes
 * it; *len its length. Freed with OPENSSL_free. */
static unsigned char *pkcs8_of(EVP_PKEY *key, size_t *len)
{
    PKCS8_PRIV_KEY_INFO *info = EVP_PKEY2PKCS8(key);
    unsigned char *der = NULL;
    int n = info ? i2d_PKCS8_PRIV_KEY_INFO(info, &der) : -1;
    PKCS8_PRIV_KEY_INFO_free(info);
    CHECK(n > 0);
    *len = n > 0 ? (size_t)n : 0;
    return der;
}

/* Fresh parameters for priv and key's PKCS#8 imported with alg (an RSA_AES_KEY_WRAP),
 * expiring at expires (0: never). */
static CK_RV import_pair(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, EVP_PKEY *key, CK_ULONG alg,
                         CK_ULONG expires)
{
    size_t len = 0;
    unsigned char *der = pkcs8_of(key, &len);
    CK_RV rv = import_with(s, priv, alg, der, len, expires);
    OPENSSL_clear_free(der, len);
    return rv;
}

/* The CMK signs msg (RSA PKCS#1 v1.5 or ECDSA with SHA-256, SM2 with SM3 and the default
 * user id), and OpenSSL verifies the signature with the original key. */
static bool signs_for(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, EVP_PKEY *key)
{
    bool rsa = EVP_PKEY_is_a(key, "RSA"), sm2 = EVP_PKEY_is_a(key, "SM2");
    CK_MECHANISM m = {rsa   ? CKM_SHA256_RSA_PKCS
                      : sm2 ? CKM_CMK_SM2_SM3
                            : CKM_ECDSA_SHA256,
                      NULL, 0};
    unsigned char sig[512], der[160];
    CK_ULONG sig_len = sizeof(sig);
    if (p11->C_SignInit(s, &m, priv) != CKR_OK ||
        p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &sig_len) != CKR_OK)
        return false;
    const unsigned char *v = rsa ? sig : der;
    size_t v_len = rsa ? sig_len : raw_sig_to_der(sig, sig_len, der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(key, NULL);
    if (sm2) {
        EVP_PKEY_CTX_set1_id(pctx, "1234567812345678", 16);
        EVP_MD_CTX_set_pkey_ctx(md, pctx);
    }
    bool ok = EVP_DigestVerifyInit(md, NULL, EVP_get_digestbyname(sm2 ? "SM3" : "SHA256"), NULL,
                                   key) == 1 &&
              EVP_DigestVerify(md, v, v_len, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

/* Reads an attribute into buf (size bytes); its length, 0 when refused. */
static CK_ULONG attr_bytes(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t,
                           unsigned char *buf, CK_ULONG size)
{
    CK_ATTRIBUTE a = {t, buf, size};
    return p11->C_GetAttributeValue(s, h, &a, 1) == CKR_OK ? a.ulValueLen : 0;
}

/* The CMK's public values are the original key's: CKA_PUBLIC_KEY_INFO of both objects,
 * and CKA_MODULUS (RSA) or CKA_EC_POINT (EC, SM2) of the public object. */
static void check_public_values(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv,
                                EVP_PKEY *key)
{
    check_public_key_info(s, priv, key);
    check_public_key_info(s, pub, key);
    unsigned char want[1100], got[1100];
    size_t want_len = 0;
    bool rsa = EVP_PKEY_is_a(key, "RSA");
    if (rsa) {
        BIGNUM *n = NULL;
        CHECK(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) == 1);
        want_len = (size_t)BN_bn2bin(n, want);
        BN_free(n);
    } else {
        size_t point_len = 0;
        CHECK(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, want + 3,
                                              sizeof(want) - 3, &point_len) == 1);
        size_t head = point_len < 128 ? 2 : 3; /* DER OCTET STRING around the point */
        memmove(want + head, want + 3, point_len);
        want[0] = 0x04;
        want[1] = head == 3 ? 0x81 : (unsigned char)point_len;
        want[head - 1] = (unsigned char)point_len;
        want_len = head + point_len;
    }
    CK_ULONG got_len = attr_bytes(s, pub, rsa ? CKA_MODULUS : CKA_EC_POINT, got, sizeof(got));
    CHECK(got_len == want_len && memcmp(got, want, want_len) == 0);
}

static void test_import_software_pairs_of_every_spec_sign_for_the_original_key(void)
{
    EVP_PKEY *keys[] = {
        EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
        EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072),
        EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096),
        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"),
        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"),
        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1"),
        EVP_PKEY_Q_keygen(NULL, NULL, "SM2"),
    };
    static const char *const specs[] = {"RSA_2048", "RSA_3072", "RSA_4096", "EC_P256",
                                        "EC_P384",  "EC_P521",  "EC_P256K", "EC_SM2"};
    enum { N = sizeof(keys) / sizeof(keys[0]) };
    CK_OBJECT_HANDLE pub[N], priv[N];
    char key_ids[N][40];
    CK_SESSION_HANDLE s = fixture_open();
    for (size_t i = 0; i < N; i++) {
        CHECK(keys[i] != NULL);
        char alias[32], spec[16];
        snprintf(alias, sizeof(alias), "soft-pair-%zu", i);
        CHECK_RV(make_pair_for(s, alias, keys[i], software, 0, &pub[i], &priv[i]), CKR_OK);
        key_id_of(s, priv[i], key_ids[i]);
        CHECK_RV(get_text(s, priv[i], CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
        CHECK(strcmp(spec, specs[i]) == 0);
        /* No material yet: no public key to read, no signature. */
        CHECK(state_of(s, priv[i]) == CMK_STATE_PENDING_IMPORT);
        unsigned char buf[1100];
        CHECK(attr_bytes(s, pub[i], CKA_PUBLIC_KEY_INFO, buf, sizeof(buf)) == 0);
        CHECK(!signs_for(s, priv[i], keys[i]));
        /* Both wrappings; SHA-256's OAEP is decoded in the module (the tests' config). */
        CK_ULONG alg = i % 2 ? CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256 : CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1;
        CHECK_RV(import_pair(s, priv[i], keys[i], alg, 0), CKR_OK);
        CHECK(state_of(s, priv[i]) == CMK_STATE_ENABLED);
        check_public_values(s, pub[i], priv[i], keys[i]);
        CHECK(signs_for(s, priv[i], keys[i]));
        CK_BBOOL local = CK_TRUE;
        CK_ATTRIBUTE a = {CKA_LOCAL, &local, 1};
        CHECK_RV(p11->C_GetAttributeValue(s, priv[i], &a, 1), CKR_OK);
        CHECK(local == CK_FALSE); /* imported, as an HSM pair's unwrapped material says */
        CHECK(find_by_label(s, alias, CKO_PUBLIC_KEY, NULL) == 1);
        CHECK(find_by_label(s, alias, CKO_PRIVATE_KEY, NULL) == 1);
    }
    fixture_close(s);
    CHECK(sealed_rows() == N);
    CHECK(audits("ImportKeyMaterial") == N);
    for (size_t i = 0; i < N; i++)
        CHECK(backend_objects_of(key_ids[i]) == 0); /* no material object, the pairs gone */
    s = fixture_open(); /* another process unseals each from the store */
    for (size_t i = 0; i < N; i++) {
        CHECK(signs_for(s, priv[i], keys[i]));
        EVP_PKEY_free(keys[i]);
    }
    fixture_close(s);
}


/* The same material imported at both levels: a client tells the keys apart only by
 * CKA_CMK_PROTECTION_LEVEL (issue 11), CKA_LOCAL and the rest saying "imported" alike.
 * (CKA_VALUE_LEN is left out: SoftHSMv2 reads 0 on keys it unwrapped.) */
static void test_imported_software_keys_answer_as_imported_hsm_keys(void)
{
    EVP_PKEY *keys[] = {EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
                        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")};
    CK_SESSION_HANDLE s = fixture_open();
    for (size_t i = 0; i < 2; i++) {
        CK_OBJECT_HANDLE spub, spriv, hpub, hpriv;
        CK_ULONG hsm = CMK_PROTECTION_HSM;
        CHECK_RV(make_pair_for(s, i ? "cmp-ec-soft" : "cmp-rsa-soft", keys[i], software, 0, &spub,
                               &spriv),
                 CKR_OK);
        CHECK_RV(make_pair_for(s, i ? "cmp-ec-hsm" : "cmp-rsa-hsm", keys[i], hsm, 0, &hpub, &hpriv),
                 CKR_OK);
        fixture_same_answers(s, spriv, hpriv, true); /* PendingImport */
        fixture_same_answers(s, spub, hpub, true);
        CHECK_RV(import_pair(s, spriv, keys[i], CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 0), CKR_OK);
        CHECK_RV(import_pair(s, hpriv, keys[i], CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 0), CKR_OK);
        fixture_same_answers(s, spriv, hpriv, true);
        fixture_same_answers(s, spub, hpub, true);
        EVP_PKEY_free(keys[i]);
    }
    CK_OBJECT_HANDLE saes, haes;
    unsigned char m[32];
    RAND_bytes(m, sizeof(m));
    CK_ATTRIBUTE ext[] = {{CKA_CMK_ORIGIN, &external, sizeof(external)}};
    CHECK_RV(make_soft_external_aes(s, "cmp-aes-soft", &saes), CKR_OK);
    CHECK_RV(make_aes(s, "cmp-aes-hsm", ext, 1, &haes), CKR_OK);
    CHECK_RV(import_with(s, saes, CMK_WRAP_RSAES_OAEP_SHA_1, m, sizeof(m), 0), CKR_OK);
    CHECK_RV(import_with(s, haes, CMK_WRAP_RSAES_OAEP_SHA_1, m, sizeof(m), 0), CKR_OK);
    fixture_same_answers(s, saes, haes, true);
    fixture_close(s);
}

/* ---- HMAC keys ------------------------------------------------------------------- */

/* The CMK's HMAC of msg (SHA-256, or SHA-512) equals what `openssl mac` makes with the
 * original key. */
static bool hmac_is_material(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const unsigned char *m,
                             size_t n, bool sha512)
{
    CK_MECHANISM mech = {sha512 ? CKM_SHA512_HMAC : CKM_SHA256_HMAC, NULL, 0};
    unsigned char mac[64], want[64];
    CK_ULONG len = sizeof(mac);
    if (p11->C_SignInit(s, &mech, key) != CKR_OK ||
        p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), mac, &len) != CKR_OK)
        return false;
    char hex[2 * 64 + 1];
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", m[i]);
    client_write(client_path("hmac.msg"), msg, sizeof(msg));
    if (client_shell("/usr/bin/openssl mac -digest %s -macopt hexkey:%s -binary -in %s -out %s "
                     "HMAC",
                     sha512 ? "SHA512" : "SHA256", hex, client_path("hmac.msg"),
                     client_path("hmac.out")))
        return false;
    return client_read(client_path("hmac.out"), want, sizeof(want)) == len &&
           memcmp(mac, want, len) == 0;
}

static void test_import_software_hmac_keys_up_to_512_bits_mac_as_openssl_does(void)
{
    static const CK_ULONG sizes[] = {16, 32, 48, 64};
    static const CK_ULONG algs[] = {CMK_WRAP_RSAES_OAEP_SHA_1, CMK_WRAP_RSAES_OAEP_SHA_256,
                                    CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1,
                                    CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256};
    CK_OBJECT_HANDLE keys[4];
    unsigned char m[4][64], other[64];
    RAND_bytes(other, sizeof(other));
    CK_SESSION_HANDLE s = fixture_open();
    for (size_t i = 0; i < 4; i++) {
        char alias[32], spec[16], want[16];
        snprintf(alias, sizeof(alias), "soft-hmac-%lu", sizes[i] * 8);
        snprintf(want, sizeof(want), "HMAC_%lu", sizes[i] * 8);
        RAND_bytes(m[i], (int)sizes[i]);
        CHECK_RV(make_soft_external_hmac(s, alias, sizes[i], &keys[i]), CKR_OK);
        CHECK_RV(get_text(s, keys[i], CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
        CHECK(strcmp(spec, want) == 0);
        /* A length other than the spec's is refused first. */
        CHECK_RV(import_with(s, keys[i], algs[i], m[i], sizes[i] - 8, 0), CKR_KEY_SIZE_RANGE);
        CHECK_RV(import_with(s, keys[i], algs[i], m[i], sizes[i], 0), CKR_OK);
        CHECK(state_of(s, keys[i]) == CMK_STATE_ENABLED);
        CHECK(hmac_is_material(s, keys[i], m[i], sizes[i], false));
        CHECK(hmac_is_material(s, keys[i], m[i], sizes[i], true));
        /* Re-import: the same bytes only. */
        CHECK_RV(import_with(s, keys[i], algs[(i + 1) % 4], other, sizes[i], 0),
                 CKR_CMK_INCORRECT_KEY_MATERIAL);
        CHECK_RV(import_with(s, keys[i], algs[(i + 1) % 4], m[i], sizes[i], 0), CKR_OK);
    }
    fixture_close(s);
    CHECK(sealed_rows() == 4);
    CHECK(inspect_log_count("(0: not a multiple of 8), key") == 4);
    s = fixture_open(); /* another process unseals them from the store */
    for (size_t i = 0; i < 4; i++)
        CHECK(hmac_is_material(s, keys[i], m[i], sizes[i], i % 2 == 1));
    fixture_close(s);
    static const char *const files[] = {"cmk.db", "cmk.db-wal", "cmkp11.log"};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++)
        for (size_t i = 0; i < 4; i++)
            CHECK(!work_file_holds(files[f], m[i], sizes[i]));
}

/* The CMK decrypts ct (len bytes) with m to msg. */
static bool decrypts_to_msg(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, CK_MECHANISM *m,
                            unsigned char *ct, size_t len)
{
    unsigned char pt[512];
    CK_ULONG pt_len = sizeof(pt);
    return p11->C_DecryptInit(s, m, priv) == CKR_OK &&
           p11->C_Decrypt(s, ct, (CK_ULONG)len, pt, &pt_len) == CKR_OK && pt_len == sizeof(msg) &&
           memcmp(pt, msg, sizeof(msg)) == 0;
}

/* The CMK's public object encrypts msg with m into ct (size bytes); its length, 0 when
 * refused. */
static size_t encrypt_msg(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, CK_MECHANISM *m,
                          unsigned char *ct, size_t size)
{
    CK_ULONG len = (CK_ULONG)size;
    bool ok = p11->C_EncryptInit(s, m, pub) == CKR_OK &&
              p11->C_Encrypt(s, (CK_BYTE_PTR)msg, sizeof(msg), ct, &len) == CKR_OK;
    return ok ? len : 0;
}

/* The Done-when of issue 11: a known SM2 key, made and converted by the openssl command,
 * imported into an ENCRYPT_DECRYPT and a SIGN_VERIFY key; ciphertext and signatures cross
 * between the module and `openssl pkeyutl` with the original key. */
static void test_import_known_sm2_key_interoperates_with_the_openssl_command(void)
{
    /* client_path's buffers are reused: the paths kept are copied. */
    char pem[512], pub_pem[512], p8[512], text[512];
    snprintf(pem, sizeof(pem), "%s", client_path("sm2.pem"));
    snprintf(pub_pem, sizeof(pub_pem), "%s", client_path("sm2.pub"));
    snprintf(p8, sizeof(p8), "%s", client_path("sm2.p8"));
    snprintf(text, sizeof(text), "%s", client_path("sm2.msg"));
    CHECK(client_shell("/usr/bin/openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2 "
                       "-out %s",
                       pem) == 0);
    CHECK(client_shell("/usr/bin/openssl pkcs8 -topk8 -nocrypt -in %s -outform DER -out %s", pem,
                       p8) == 0);
    CHECK(client_shell("/usr/bin/openssl pkey -in %s -pubout -out %s", pem, pub_pem) == 0);
    client_write(text, msg, sizeof(msg));
    unsigned char der[512], ct[512], pt[512], sig[64], sig_der[160];
    size_t der_len = client_read(p8, der, sizeof(der));
    const unsigned char *q = der;
    EVP_PKEY *key = d2i_AutoPrivateKey(NULL, &q, (long)der_len);
    CHECK(key != NULL && EVP_PKEY_is_a(key, "SM2"));
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE epub, epriv, spub, spriv;
    CHECK_RV(
        make_pair_for(s, "sm2-known-enc", key, software, CMK_USAGE_ENCRYPT_DECRYPT, &epub, &epriv),
        CKR_OK);
    CHECK_RV(
        make_pair_for(s, "sm2-known-sign", key, software, CMK_USAGE_SIGN_VERIFY, &spub, &spriv),
        CKR_OK);
    CHECK_RV(import_with(s, epriv, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, der, der_len, 0), CKR_OK);
    CHECK_RV(import_with(s, spriv, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, der, der_len, 0), CKR_OK);
    check_public_values(s, epub, epriv, key);
    check_public_values(s, spub, spriv, key);
    /* The module encrypts (CKM_CMK_SM2_ENCRYPT); openssl decrypts with the original key. */
    CK_MECHANISM enc = {CKM_CMK_SM2_ENCRYPT, NULL, 0};
    size_t ct_len = encrypt_msg(s, epub, &enc, ct, sizeof(ct));
    CHECK(ct_len > sizeof(msg));
    client_write(client_path("sm2.ct"), ct, ct_len);
    CHECK(client_shell("/usr/bin/openssl pkeyutl -decrypt -inkey %s -in %s -out %s", pem,
                       client_path("sm2.ct"), client_path("sm2.pt")) == 0);
    CHECK(client_read(client_path("sm2.pt"), pt, sizeof(pt)) == sizeof(msg) &&
          memcmp(pt, msg, sizeof(msg)) == 0);
    /* openssl encrypts to the original public key; the module decrypts. */
    CHECK(client_shell("/usr/bin/openssl pkeyutl -encrypt -pubin -inkey %s -in %s -out %s", pub_pem,
                       text, client_path("sm2.ct2")) == 0);
    size_t n = client_read(client_path("sm2.ct2"), ct, sizeof(ct));
    CHECK(decrypts_to_msg(s, epriv, &enc, ct, n));
    /* The module signs (CKM_CMK_SM2_SM3, default user id); openssl verifies. */
    CK_MECHANISM sm3 = {CKM_CMK_SM2_SM3, NULL, 0};
    CK_ULONG sig_len = sizeof(sig);
    CHECK_RV(p11->C_SignInit(s, &sm3, spriv), CKR_OK);
    CHECK_RV(p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &sig_len), CKR_OK);
    client_write(client_path("sm2.sig"), sig_der, raw_sig_to_der(sig, sig_len, sig_der));
    static const char verify[] = "/usr/bin/openssl pkeyutl -verify -pubin -inkey %s -rawin "
                                 "-digest sm3 -pkeyopt distid:1234567812345678 -in %s -sigfile "
                                 "%s >/dev/null 2>&1";
    CHECK(client_shell(verify, pub_pem, text, client_path("sm2.sig")) == 0);
    /* The check can fail: the signature does not verify for other data. */
    CHECK(client_shell(verify, pub_pem, pem, client_path("sm2.sig")) != 0);
    fixture_close(s);
    CHECK(sealed_rows() == 2);
    EVP_PKEY_free(key);
}

static void test_import_software_rsa_decrypts_what_openssl_encrypts(void)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(
        make_pair_for(s, "soft-rsa-enc", rsa, software, CMK_USAGE_ENCRYPT_DECRYPT, &pub, &priv),
        CKR_OK);
    CHECK_RV(import_pair(s, priv, rsa, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, 0), CKR_OK);
    check_public_values(s, pub, priv, rsa);
    /* OpenSSL encrypts OAEP (SHA-256, MGF1-SHA-256) with the original key; the module
     * decrypts. */
    unsigned char ct[512], pt[512];
    size_t ct_len = sizeof(ct);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(rsa, NULL);
    CHECK(EVP_PKEY_encrypt_init(c) == 1 &&
          EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
          EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) == 1 &&
          EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1 &&
          EVP_PKEY_encrypt(c, ct, &ct_len, msg, sizeof(msg)) == 1);
    EVP_PKEY_CTX_free(c);
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    CHECK(decrypts_to_msg(s, priv, &oaep, ct, ct_len));
    /* The module encrypts PKCS#1 v1.5 with the public object; OpenSSL decrypts with the
     * original private key. */
    CK_MECHANISM pkcs1 = {CKM_RSA_PKCS, NULL, 0};
    size_t len = encrypt_msg(s, pub, &pkcs1, ct, sizeof(ct));
    CHECK(len == 384);
    size_t out_len = sizeof(pt);
    c = EVP_PKEY_CTX_new(rsa, NULL);
    CHECK(EVP_PKEY_decrypt_init(c) == 1 &&
          EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
          EVP_PKEY_decrypt(c, pt, &out_len, ct, len) == 1);
    EVP_PKEY_CTX_free(c);
    CHECK(out_len == sizeof(msg) && memcmp(pt, msg, sizeof(msg)) == 0);
    CK_MECHANISM sign = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &sign, priv), CKR_KEY_FUNCTION_NOT_PERMITTED); /* usage */
    fixture_close(s);
    EVP_PKEY_free(rsa);
}

/* A P-256 key whose public point is another key's: PKCS#8 lets it say so. */
static EVP_PKEY *mismatched_p256(EVP_PKEY *priv_of, EVP_PKEY *pub_of)
{
    BIGNUM *d = NULL;
    unsigned char point[65];
    size_t point_len = 0;
    CHECK(EVP_PKEY_get_bn_param(priv_of, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1);
    CHECK(EVP_PKEY_get_octet_string_param(pub_of, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                          &point_len) == 1);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *out = NULL;
    CHECK(EVP_PKEY_fromdata_init(ctx) == 1 &&
          EVP_PKEY_fromdata(ctx, &out, EVP_PKEY_KEYPAIR, params) == 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return out;
}

/* One refused import: material (n bytes) for key, its code and its one log line. */
struct bad_material {
    const char *what;
    CK_OBJECT_HANDLE key;
    unsigned char *m;
    size_t n;
    CK_RV want;
    const char *log;
};

static void test_software_pair_import_refuses_bad_material_and_changes_nothing(void)
{
    EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *p256b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    EVP_PKEY *sm2 = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *rsa3072 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    EVP_PKEY *mismatched = mismatched_p256(p256, p256b);
    EVP_PKEY *explicit = EVP_PKEY_dup(p256);
    CHECK(EVP_PKEY_set_utf8_string_param(explicit, OSSL_PKEY_PARAM_EC_ENCODING,
                                         OSSL_PKEY_EC_ENCODING_EXPLICIT) == 1);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE ec, ec_pub, rs, rs_pub;
    CHECK_RV(make_pair_for(s, "bad-ec", p256, software, 0, &ec_pub, &ec), CKR_OK);
    CHECK_RV(make_pair_for(s, "bad-rsa", rsa, software, 0, &rs_pub, &rs), CKR_OK);
    struct params pe, pr;
    CHECK_RV(get_params(s, ec, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 2048, &pe), CKR_OK);
    CHECK_RV(get_params(s, rs, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, 2048, &pr), CKR_OK);
    unsigned char garbage[300], *sec1 = NULL;
    RAND_bytes(garbage, sizeof(garbage));
    int sec1_len = i2d_PrivateKey(p256, &sec1); /* SEC1 ECPrivateKey: not PKCS#8 */
    size_t ok_len = 0;
    unsigned char *ok = pkcs8_of(p256, &ok_len), trailing[512];
    memcpy(trailing, ok, ok_len);
    trailing[ok_len] = 0;
    struct bad_material cases[] = {
        {"P-384 for EC_P256", ec, NULL, 0, CKR_KEY_SIZE_RANGE, "is a key on curve secp384r1"},
        {"SM2 for EC_P256", ec, NULL, 0, CKR_KEY_SIZE_RANGE, "is a key on curve SM2"},
        {"secp256k1 for EC_P256", ec, NULL, 0, CKR_KEY_SIZE_RANGE, "is a key on curve secp256k1"},
        {"RSA for EC_P256", ec, NULL, 0, CKR_CMK_INCORRECT_KEY_MATERIAL, "is a RSA private key"},
        {"explicit curve", ec, NULL, 0, CKR_CMK_INCORRECT_KEY_MATERIAL, "as explicit parameters"},
        {"mismatched halves", ec, NULL, 0, CKR_CMK_INCORRECT_KEY_MATERIAL, "do not agree"},
        {"random bytes", ec, garbage, sizeof(garbage), CKR_WRAPPED_KEY_INVALID,
         "is not one PKCS#8 structure"},
        {"SEC1", ec, sec1, (size_t)sec1_len, CKR_WRAPPED_KEY_INVALID,
         "is not one PKCS#8 structure"},
        {"trailing byte", ec, trailing, ok_len + 1, CKR_WRAPPED_KEY_INVALID,
         "is not one PKCS#8 structure"},
        {"RSA 3072 for RSA_2048", rs, NULL, 0, CKR_KEY_SIZE_RANGE, "is an RSA 3072 key"},
        {"EC for RSA_2048", rs, NULL, 0, CKR_CMK_INCORRECT_KEY_MATERIAL, "is a EC private key"},
    };
    EVP_PKEY *of[] = {p384, sm2, k1, rsa, explicit, mismatched, NULL, NULL, NULL, rsa3072, p256};
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    struct blob b[N + 1];
    for (size_t i = 0; i < N; i++) {
        size_t n = cases[i].n;
        unsigned char *m = of[i] ? pkcs8_of(of[i], &n) : cases[i].m;
        struct params *p = cases[i].key == ec ? &pe : &pr;
        wrap_rsa_aes(p, p == &pr, m, n, &b[i]);
        if (of[i]) OPENSSL_clear_free(m, n);
    }
    /* A blob damaged in its AES key wrap part. */
    wrap_rsa_aes(&pe, false, ok, ok_len, &b[N]);
    b[N].data[b[N].len - 3] ^= 0x40;
    fixture_close(s);
    static char before[1 << 16], after[1 << 16];
    import_snapshot(before, sizeof(before));
    long lines = inspect_log_count("ImportKeyMaterial");
    s = fixture_open();
    for (size_t i = 0; i < N; i++) {
        CK_ULONG alg = cases[i].key == ec ? CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1
                                          : CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256;
        CK_RV rv = import(s, cases[i].key, alg, &b[i], cases[i].key == ec ? &pe : &pr, 0);
        if (rv != cases[i].want) fprintf(stderr, "  case %s: 0x%lx\n", cases[i].what, rv);
        CHECK(rv == cases[i].want);
    }
    CHECK_RV(import(s, ec, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &b[N], &pe, 0),
             CKR_WRAPPED_KEY_INVALID);
    CHECK(state_of(s, ec) == CMK_STATE_PENDING_IMPORT);
    CHECK(state_of(s, rs) == CMK_STATE_PENDING_IMPORT);
    fixture_close(s);
    import_snapshot(after, sizeof(after));
    CHECK(strcmp(before, after) == 0);
    CHECK(inspect_log_count("ImportKeyMaterial") - lines == N + 1);
    for (size_t i = 0; i < N; i++)
        CHECK(inspect_log_count(cases[i].log) >= 1);
    CHECK(sealed_rows() == 0 && stored_public_keys() == 0);
    /* The same parameters still take the right key; then another key is refused. */
    s = fixture_open();
    struct blob good;
    wrap_rsa_aes(&pe, false, ok, ok_len, &good);
    CHECK_RV(import(s, ec, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &good, &pe, 0), CKR_OK);
    CHECK(signs_for(s, ec, p256));
    size_t other_len = 0;
    unsigned char *other = pkcs8_of(p256b, &other_len);
    struct params po;
    CHECK_RV(get_params(s, ec, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 2048, &po), CKR_OK);
    wrap_rsa_aes(&po, false, other, other_len, &good);
    fixture_close(s);
    import_snapshot(before, sizeof(before));
    s = fixture_open();
    CHECK_RV(import(s, ec, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, &good, &po, 0),
             CKR_CMK_INCORRECT_KEY_MATERIAL);
    CHECK(signs_for(s, ec, p256));
    fixture_close(s);
    import_snapshot(after, sizeof(after));
    CHECK(strcmp(before, after) == 0);
    CHECK(inspect_log_count("is not the material imported first") == 1);
    OPENSSL_clear_free(ok, ok_len);
    OPENSSL_clear_free(other, other_len);
    OPENSSL_clear_free(sec1, (size_t)sec1_len);
    EVP_PKEY *all[] = {p256, p256b, p384, k1, sm2, rsa, rsa3072, mismatched, explicit};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        EVP_PKEY_free(all[i]);
}

static void test_deleted_or_expired_software_pair_material_takes_its_public_key(void)
{
    EVP_PKEY *sm2 = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    unsigned char buf[256];
    CHECK_RV(make_pair_for(s, "sm2-goes", sm2, software, CMK_USAGE_SIGN_VERIFY, &pub, &priv),
             CKR_OK);
    CHECK_RV(import_pair(s, priv, sm2, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 0), CKR_OK);
    CHECK(signs_for(s, priv, sm2));
    CK_ATTRIBUTE del[] = {{CKA_CMK_DELETE_MATERIAL, &yes, 1}};
    CHECK_RV(p11->C_SetAttributeValue(s, priv, del, 1), CKR_OK);
    CHECK(state_of(s, priv) == CMK_STATE_PENDING_IMPORT);
    CHECK(!signs_for(s, priv, sm2));
    CHECK(attr_bytes(s, pub, CKA_PUBLIC_KEY_INFO, buf, sizeof(buf)) == 0);
    CHECK(attr_bytes(s, pub, CKA_EC_POINT, buf, sizeof(buf)) == 0);
    fixture_close(s);
    CHECK(sealed_rows() == 0 && stored_public_keys() == 0);
    CHECK(audits("DeleteImportedKeyMaterial") == 1);
    /* The fingerprint stays: only the same key comes back, here with an expiry. */
    s = fixture_open();
    CHECK_RV(import_pair(s, priv, other, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, 0),
             CKR_CMK_INCORRECT_KEY_MATERIAL);
    CK_ULONG expires = (CK_ULONG)time(NULL) + 3600;
    CHECK_RV(import_pair(s, priv, sm2, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, expires), CKR_OK);
    check_public_values(s, pub, priv, sm2);
    CHECK(signs_for(s, priv, sm2));
    set_now_offset(3601);
    CHECK(!signs_for(s, priv, sm2)); /* refused at once, before the purge */
    fixture_close(s);
    s = fixture_open(); /* login: the expiry step */
    CHECK(state_of(s, priv) == CMK_STATE_PENDING_IMPORT);
    CHECK(attr_bytes(s, pub, CKA_PUBLIC_KEY_INFO, buf, sizeof(buf)) == 0);
    fixture_close(s);
    unsetenv("CMKP11_TEST_NOW");
    CHECK(sealed_rows() == 0 && stored_public_keys() == 0);
    CHECK(audits("KeyMaterialExpired") == 1);
    s = fixture_open();
    CHECK_RV(import_pair(s, priv, sm2, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 0), CKR_OK);
    CHECK(signs_for(s, priv, sm2));
    fixture_close(s);
    CHECK(sealed_rows() == 1 && stored_public_keys() == 1);
    EVP_PKEY_free(sm2);
    EVP_PKEY_free(other);
}

/* The first 32 bytes of a private BIGNUM parameter of key, big-endian. */
static void private_head(EVP_PKEY *key, const char *name, unsigned char out[32])
{
    BIGNUM *bn = NULL;
    CHECK(EVP_PKEY_get_bn_param(key, name, &bn) == 1);
    unsigned char all[600];
    int n = BN_bn2bin(bn, all);
    CHECK(n >= 32);
    memcpy(out, all, 32);
    OPENSSL_cleanse(all, sizeof(all));
    BN_clear_free(bn);
}

static void test_imported_private_keys_are_in_neither_store_nor_log(void)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE epub, epriv, rpub, rpriv;
    CHECK_RV(make_pair_for(s, "secret-ec", ec, software, 0, &epub, &epriv), CKR_OK);
    CHECK_RV(make_pair_for(s, "secret-rsa", rsa, software, 0, &rpub, &rpriv), CKR_OK);
    CHECK_RV(import_pair(s, epriv, ec, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, 0), CKR_OK);
    CHECK_RV(import_pair(s, rpriv, rsa, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 0), CKR_OK);
    CHECK_RV(import_pair(s, epriv, other, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 0),
             CKR_CMK_INCORRECT_KEY_MATERIAL);
    CHECK(signs_for(s, epriv, ec));
    CHECK(signs_for(s, rpriv, rsa));
    fixture_close(s);
    unsigned char secrets[6][32];
    private_head(ec, OSSL_PKEY_PARAM_PRIV_KEY, secrets[0]);
    private_head(other, OSSL_PKEY_PARAM_PRIV_KEY, secrets[1]);
    private_head(rsa, OSSL_PKEY_PARAM_RSA_D, secrets[2]);
    private_head(rsa, OSSL_PKEY_PARAM_RSA_FACTOR1, secrets[3]);
    private_head(rsa, OSSL_PKEY_PARAM_RSA_FACTOR2, secrets[4]);
    private_head(rsa, OSSL_PKEY_PARAM_RSA_EXPONENT1, secrets[5]);
    static const char *const files[] = {"cmk.db", "cmk.db-wal", "cmkp11.log"};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++)
        for (size_t i = 0; i < 6; i++)
            CHECK(!work_file_holds(files[f], secrets[i], 32));
    /* The search can find: the stored public key is there. */
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(rsa, &spki);
    CHECK(spki_len > 64 && (work_file_holds("cmk.db", spki + spki_len - 64, 32) ||
                            work_file_holds("cmk.db-wal", spki + spki_len - 64, 32)));
    OPENSSL_free(spki);
    CHECK(inspect_log_count("is not the material imported first") == 1);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(other);
}

/* An imported pair's sealed row damaged in the store: signing fails with CKR_DEVICE_ERROR
 * and one log line, nothing else changes (the public key still verifies); deleting the
 * material and importing the original again seals it afresh. */
static void test_damaged_sealed_row_of_an_imported_pair_fails_cleanly_and_reimport_heals(void)
{
    EVP_PKEY *sm2 = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_pair_for(s, "sm2-damaged", sm2, software, 0, &pub, &priv), CKR_OK);
    CHECK_RV(import_pair(s, priv, sm2, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, 0), CKR_OK);
    fixture_close(s);
    CHECK(inspect_store_exec("UPDATE cmk_sealed SET blob = CAST(substr(blob, 1, 40) || "
                             "(CASE WHEN substr(blob, 41, 1) = x'00' THEN x'01' ELSE x'00' END) "
                             "|| substr(blob, 42) AS BLOB)") == 0);
    static char before[1 << 16], after[1 << 16];
    import_snapshot(before, sizeof(before));
    s = fixture_open();
    CK_MECHANISM m = {CKM_CMK_SM2_SM3, NULL, 0};
    unsigned char sig[64];
    CK_ULONG len = sizeof(sig);
    CK_RV rv = p11->C_SignInit(s, &m, priv); /* the key may be unsealed at either call */
    if (rv == CKR_OK) rv = p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &len);
    CHECK_RV(rv, CKR_DEVICE_ERROR);
    CHECK(state_of(s, priv) == CMK_STATE_ENABLED);
    check_public_values(s, pub, priv, sm2);
    fixture_close(s);
    import_snapshot(after, sizeof(after));
    CHECK(strcmp(before, after) == 0);
    CHECK(inspect_log_count("sealed SOFTWARE material fails authentication") == 1);
    s = fixture_open();
    CK_ATTRIBUTE del[] = {{CKA_CMK_DELETE_MATERIAL, &yes, 1}};
    CHECK_RV(p11->C_SetAttributeValue(s, priv, del, 1), CKR_OK);
    CHECK_RV(import_pair(s, priv, sm2, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, 0), CKR_OK);
    CHECK(signs_for(s, priv, sm2));
    len = sizeof(sig);
    CHECK_RV(p11->C_SignInit(s, &m, priv), CKR_OK);
    CHECK_RV(p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &len), CKR_OK);
    CHECK_RV(p11->C_VerifyInit(s, &m, pub), CKR_OK);
    CHECK_RV(p11->C_Verify(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, len), CKR_OK);
    fixture_close(s);
    EVP_PKEY_free(sm2);
}

/* ---- Crash safety ---------------------------------------------------------------- */

/* An importing process killed at point: the next login removes the sealed material a
 * claimed import left (and a pair's public key: none is stored before the commit), the key
 * stays PendingImport, and its parameters still import. pair: the private key for a
 * SOFTWARE pair, NULL for an AES key. */
static void crash_soft_import(const char *alias, const char *point, EVP_PKEY *pair)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, pub;
    unsigned char m[32], *der = NULL;
    size_t n = sizeof(m);
    struct params p;
    struct blob b;
    CK_ULONG alg = pair ? CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1 : CMK_WRAP_RSAES_OAEP_SHA_1;
    RAND_bytes(m, sizeof(m));
    if (pair) {
        CHECK_RV(make_pair_for(s, alias, pair, software, 0, &pub, &key), CKR_OK);
        der = pkcs8_of(pair, &n);
    } else {
        CHECK_RV(make_soft_external_aes(s, alias, &key), CKR_OK);
    }
    CHECK_RV(get_params(s, key, alg, 2048, &p), CKR_OK);
    wrap_material(alg, &p, der ? der : m, n, &b);
    OPENSSL_clear_free(der, n);
    fixture_close(s);
    long sealed = sealed_rows(), recovered = audits("RecoverImportKeyMaterial");
    long public_keys = stored_public_keys();
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
    bool sealed_first = !strcmp(point, "import:after-unwrap");
    CHECK(sealed_rows() == sealed + (sealed_first ? 1 : 0));
    s = fixture_open(); /* login: recovery */
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    if (pair)
        CHECK(!signs_for(s, key, pair));
    else
        CHECK_RV(aes_gcm_roundtrip(s, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
    CHECK(sealed_rows() == sealed);
    CHECK(stored_public_keys() == public_keys);
    CHECK(audits("RecoverImportKeyMaterial") == recovered + 1);
    s = fixture_open();
    CHECK_RV(import(s, key, alg, &b, &p, 0), CKR_OK);
    CHECK(pair ? signs_for(s, key, pair) : aes_gcm_is_material(s, key, m));
    fixture_close(s);
    CHECK(sealed_rows() == sealed + 1);
}

static void test_crash_during_software_import_leaves_the_key_pending_import(void)
{
    crash_soft_import("soft-claimed", "import:after-claim", NULL);
    crash_soft_import("soft-sealed", "import:after-unwrap", NULL);
}

static void test_crash_during_software_pair_import_leaves_it_pending_import(void)
{
    EVP_PKEY *sm2 = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    crash_soft_import("sm2-claimed", "import:after-claim", sm2);
    crash_soft_import("rsa-sealed", "import:after-unwrap", rsa);
    EVP_PKEY_free(sm2);
    EVP_PKEY_free(rsa);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_create_external_software_secrets_wait_without_sealed_material),
        T(test_import_oaep_sha1_into_software_aes_is_the_material_in_use),
        T(test_import_rsa_aes_key_wrap_sha256_into_software_aes_decoded_in_module),
        T(test_import_sm4_via_rsa_aes_key_wrap_sha1_is_the_material_in_use),
        T(test_software_import_refuses_wrong_lengths_and_changes_nothing),
        T(test_software_material_expires_and_reimport_takes_only_the_same),
        T(test_delete_imported_software_material_and_import_it_again),
        T(test_imported_software_material_is_in_neither_store_nor_log),
        T(test_crash_during_software_import_leaves_the_key_pending_import),
        T(test_crash_during_software_pair_import_leaves_it_pending_import),
        T(test_import_known_sm2_key_interoperates_with_the_openssl_command),
        T(test_import_software_rsa_decrypts_what_openssl_encrypts),
        T(test_software_pair_import_refuses_bad_material_and_changes_nothing),
        T(test_deleted_or_expired_software_pair_material_takes_its_public_key),
        T(test_imported_private_keys_are_in_neither_store_nor_log),
        T(test_damaged_sealed_row_of_an_imported_pair_fails_cleanly_and_reimport_heals),
        T(test_import_software_pairs_of_every_spec_sign_for_the_original_key),
        T(test_import_software_hmac_keys_up_to_512_bits_mac_as_openssl_does),
        T(test_imported_software_keys_answer_as_imported_hsm_keys),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
