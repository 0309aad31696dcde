/* test_gm_hsm.c - SM keys at protection level HSM through the backend's own SM codes
 * ([gm_backend] of cmkp11.conf).
 *
 * SoftHSMv2 has no SM mechanism at all, so these tests map cmkp11's SM codes onto
 * SoftHSMv2's AES codes (SM4 -> AES-128: CKK_AES, CKM_AES_KEY_GEN, _ECB, _CBC, _CBC_PAD)
 * and EC codes (SM2 -> CKK_EC on P-256, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA), and HMAC-SM3
 * onto CKM_SHA256_HMAC. These are stand-ins: the ciphertexts are AES's, not SM4's. What
 * the tests prove is the translation and the HSM-level path: the material is a backend
 * object (no sealed row), the module's output equals what the backend gives for the mapped
 * mechanism on that same object used directly, states and usage hold, unmapped mechanisms
 * and specs are refused with the right code, and a bad value fails C_Initialize. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

#define GM_STAND_INS                                                                               \
    "\n[gm_backend]\n"                                                                             \
    "sm4_key_type = 0x1f\n"             /* CKK_AES */                                              \
    "sm4_key_gen = 0x1080\n"            /* CKM_AES_KEY_GEN */                                      \
    "sm4_cbc = 0x1082\n"                /* CKM_AES_CBC */                                          \
    "sm4_cbc_pad = 4229\n"              /* CKM_AES_CBC_PAD, in decimal */                          \
    "sm2_key_type = 3\n"                /* CKK_EC */                                               \
    "sm2_curve = 1.2.840.10045.3.1.7\n" /* P-256 */                                                \
    "sm2_key_pair_gen = 0x1040\n"       /* CKM_EC_KEY_PAIR_GEN */                                  \
    "sm2_sm3 = 0x1041\n"                /* CKM_ECDSA */                                            \
    "sm3_hmac = 0x251\n"                /* CKM_SHA256_HMAC */
/* SM4-ECB too: the envelope's subkeys need it. SM4-CTR and SM2 encryption stay unmapped. */
#define GM_ECB "sm4_ecb = 0x1081\n" /* CKM_AES_ECB */

static CK_BBOOL yes = CK_TRUE;

static void append_conf(const char *text)
{
    FILE *conf = fopen(getenv("CMKP11_CONF"), "a");
    CHECK(conf != NULL);
    if (conf) {
        fputs(text, conf);
        fclose(conf);
    }
}

static CK_SESSION_HANDLE open_mapped(bool with_ecb)
{
    append_conf(GM_STAND_INS);
    fixture_set_conf("log", "level = info"); /* the tests count info lines */
    if (with_ecb) append_conf("[gm_backend]\n" GM_ECB);
    return fixture_open();
}

static CK_RV make_sm4(CK_SESSION_HANDLE s, const char *alias, const CK_ATTRIBUTE *extra, CK_ULONG n,
                      CK_OBJECT_HANDLE *key)
{
    CK_ATTRIBUTE t[8] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, (void *)alias, strlen(alias)}};
    CK_ULONG count = 2;
    for (CK_ULONG i = 0; i < n && count < 8; i++)
        t[count++] = extra[i];
    CK_MECHANISM mech = {CKM_CMK_SM4_KEY_GEN, NULL, 0};
    return p11->C_GenerateKey(s, &mech, t, count, key);
}

static CK_RV make_sm2(CK_SESSION_HANDLE s, const char *alias, const CK_ATTRIBUTE *extra, CK_ULONG n,
                      CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, 1}};
    CK_ATTRIBUTE vt[8] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, (void *)alias, strlen(alias)}};
    CK_ULONG count = 2;
    for (CK_ULONG i = 0; i < n && count < 8; i++)
        vt[count++] = extra[i];
    CK_MECHANISM mech = {CKM_CMK_SM2_KEY_PAIR_GEN, NULL, 0};
    return p11->C_GenerateKeyPair(s, &mech, pt, 1, vt, count, pub, priv);
}

static CK_RV crypt_one(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                       CK_MECHANISM *mech, bool encrypt, const unsigned char *in, CK_ULONG len,
                       unsigned char *out, CK_ULONG *out_len)
{
    CK_RV rv = encrypt ? f->C_EncryptInit(s, mech, key) : f->C_DecryptInit(s, mech, key);
    if (rv != CKR_OK) return rv;
    return encrypt ? f->C_Encrypt(s, (CK_BYTE_PTR)in, len, out, out_len)
                   : f->C_Decrypt(s, (CK_BYTE_PTR)in, len, out, out_len);
}

/* Sign, or verify (sig given), through f: the module or the backend used directly. */
static CK_RV sign_one(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                      CK_MECHANISM *mech, const unsigned char *in, CK_ULONG len, unsigned char *sig,
                      CK_ULONG *sig_len, bool verify)
{
    CK_RV rv = verify ? f->C_VerifyInit(s, mech, key) : f->C_SignInit(s, mech, key);
    if (rv != CKR_OK) return rv;
    return verify ? f->C_Verify(s, (CK_BYTE_PTR)in, len, sig, *sig_len)
                  : f->C_Sign(s, (CK_BYTE_PTR)in, len, sig, sig_len);
}

/* The backend token used directly, as another application would (the module must be
 * finalised: both load the same SoftHSMv2 library). */
static CK_FUNCTION_LIST_PTR be;

static CK_SESSION_HANDLE backend_open(void)
{
    be = harness_load(getenv("CMK_BACKEND"));
    CHECK_RV(be->C_Initialize(NULL), CKR_OK);
    CK_SLOT_ID slot = inspect_backend_slot(be, getenv("CMK_BACKEND_TOKEN"));
    CK_SESSION_HANDLE s = 0;
    CHECK_RV(be->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    const char *pin = getenv("CMK_PIN") ? getenv("CMK_PIN") : "1234";
    CHECK_RV(be->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    return s;
}

static void backend_close(CK_SESSION_HANDLE s)
{
    be->C_CloseSession(s);
    CHECK_RV(be->C_Finalize(NULL), CKR_OK);
}

/* The backend object that holds version v of key_id (its label is cmkp11's identity). */
static CK_OBJECT_HANDLE backend_material(CK_SESSION_HANDLE s, const char *key_id, int v,
                                         CK_OBJECT_CLASS cls)
{
    char label[80];
    snprintf(label, sizeof(label), "cmkp11/%s/v%d", key_id, v);
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, label, strlen(label)}};
    CK_OBJECT_HANDLE h[2] = {0};
    CK_ULONG n = 0;
    CHECK_RV(be->C_FindObjectsInit(s, t, 2), CKR_OK);
    CHECK_RV(be->C_FindObjects(s, h, 2, &n), CKR_OK);
    CHECK_RV(be->C_FindObjectsFinal(s), CKR_OK);
    CHECK(n == 1);
    return h[0];
}

static void key_id_of(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, char out[40])
{
    CHECK_RV(get_text(s, key, CKA_CMK_KEY_ID, out, 40), CKR_OK);
}

static void test_sm4_without_level_goes_to_hsm_and_its_material_is_a_backend_object(void)
{
    CK_SESSION_HANDLE s = open_mapped(false);
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_sm4(s, "sm4-hsm", NULL, 0, &key), CKR_OK);
    CK_ULONG level = 0, type = 0, gen = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_PROTECTION_LEVEL, &level), CKR_OK);
    CHECK(level == CMK_PROTECTION_HSM);
    CHECK_RV(get_ulong(s, key, CKA_KEY_TYPE, &type), CKR_OK);
    CHECK(type == CKK_CMK_SM4); /* never the backend's code */
    CHECK_RV(get_ulong(s, key, CKA_KEY_GEN_MECHANISM, &gen), CKR_OK);
    CHECK(gen == CKM_CMK_SM4_KEY_GEN);
    char spec[40];
    CHECK_RV(get_text(s, key, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
    CHECK(strcmp(spec, "SM4") == 0);
    /* Asked for HSM explicitly: the same. */
    CK_ULONG hsm = CMK_PROTECTION_HSM;
    CK_ATTRIBUTE at_hsm[] = {{CKA_CMK_PROTECTION_LEVEL, &hsm, sizeof(hsm)}};
    CK_OBJECT_HANDLE key2;
    CHECK_RV(make_sm4(s, "sm4-hsm-asked", at_hsm, 1, &key2), CKR_OK);
    CK_ULONG find_hsm[] = {CMK_PROTECTION_HSM};
    CK_ATTRIBUTE by_level[] = {{CKA_CMK_PROTECTION_LEVEL, find_hsm, sizeof(CK_ULONG)}};
    CHECK(find_count(s, by_level, 1, NULL) == 2);
    CK_KEY_TYPE sm4_type = CKK_CMK_SM4, aes_type = CKK_AES;
    CK_ATTRIBUTE by_type[] = {{CKA_KEY_TYPE, &sm4_type, sizeof(sm4_type)}};
    CHECK(find_count(s, by_type, 1, NULL) == 2);
    by_type[0].pValue = &aes_type; /* the stand-in's type is never what clients see */
    CHECK(find_count(s, by_type, 1, NULL) == 0);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE protection = 1") == 2);
    CHECK(inspect_backend_material() == 2);
    CHECK(inspect_log_count("key spec SM4 with no CKA_CMK_PROTECTION_LEVEL: HSM") == 1);
}

static void test_sm4_at_hsm_gives_the_backends_own_ciphertext_and_round_trips(void)
{
    CK_SESSION_HANDLE s = open_mapped(false);
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_sm4(s, "sm4-cbc", NULL, 0, &key), CKR_OK);
    char key_id[40];
    key_id_of(s, key, key_id);
    unsigned char msg[45], iv[16] = {1, 2, 3, 4, 5};
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)(i * 7);
    CK_MECHANISM cbc = {CKM_CMK_SM4_CBC, iv, 16}, pad = {CKM_CMK_SM4_CBC_PAD, iv, 16};
    unsigned char ct[64], ct_pad[64], pt[64];
    CK_ULONG ct_len = sizeof(ct), pad_len = sizeof(ct_pad), pt_len = sizeof(pt);
    CHECK_RV(crypt_one(p11, s, key, &cbc, true, msg, 32, ct, &ct_len), CKR_OK);
    CHECK(ct_len == 32);
    CHECK_RV(crypt_one(p11, s, key, &pad, true, msg, sizeof(msg), ct_pad, &pad_len), CKR_OK);
    CHECK(pad_len == 48);
    CHECK_RV(crypt_one(p11, s, key, &cbc, false, ct, ct_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == 32 && memcmp(pt, msg, 32) == 0);
    pt_len = sizeof(pt);
    CHECK_RV(crypt_one(p11, s, key, &pad, false, ct_pad, pad_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == sizeof(msg) && memcmp(pt, msg, sizeof(msg)) == 0);
    /* Multi-part through the module: forwarded parts after a translated Init. */
    CK_ULONG part = sizeof(pt), total = 0;
    CHECK_RV(p11->C_EncryptInit(s, &pad, key), CKR_OK);
    CHECK_RV(p11->C_EncryptUpdate(s, msg, 20, pt, &part), CKR_OK);
    total = part;
    part = sizeof(pt) - total;
    CHECK_RV(p11->C_EncryptUpdate(s, msg + 20, sizeof(msg) - 20, pt + total, &part), CKR_OK);
    total += part;
    part = sizeof(pt) - total;
    CHECK_RV(p11->C_EncryptFinal(s, pt + total, &part), CKR_OK);
    total += part;
    CHECK(total == pad_len && memcmp(pt, ct_pad, pad_len) == 0);
    fixture_close(s);

    /* The same backend object, used directly with the mapped codes, gives the same bytes. */
    CK_SESSION_HANDLE b = backend_open();
    CK_OBJECT_HANDLE material = backend_material(b, key_id, 1, CKO_SECRET_KEY);
    CK_MECHANISM aes_cbc = {CKM_AES_CBC, iv, 16}, aes_pad = {CKM_AES_CBC_PAD, iv, 16};
    unsigned char direct[64];
    CK_ULONG direct_len = sizeof(direct);
    CHECK_RV(crypt_one(be, b, material, &aes_cbc, true, msg, 32, direct, &direct_len), CKR_OK);
    CHECK(direct_len == ct_len && memcmp(direct, ct, ct_len) == 0);
    direct_len = sizeof(direct);
    CHECK_RV(crypt_one(be, b, material, &aes_pad, true, msg, sizeof(msg), direct, &direct_len),
             CKR_OK);
    CHECK(direct_len == pad_len && memcmp(direct, ct_pad, pad_len) == 0);
    /* And it is sensitive and not extractable, as every CMK's material. */
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
    CK_ATTRIBUTE flags[] = {{CKA_SENSITIVE, &sensitive, 1}, {CKA_EXTRACTABLE, &extractable, 1}};
    CHECK_RV(be->C_GetAttributeValue(b, material, flags, 2), CKR_OK);
    CHECK(sensitive == CK_TRUE && extractable == CK_FALSE);
    backend_close(b);
}

static void test_sm4_at_hsm_refuses_unmapped_and_foreign_mechanisms(void)
{
    CK_SESSION_HANDLE s = open_mapped(false);
    CK_OBJECT_HANDLE key, aes;
    CHECK_RV(make_sm4(s, "sm4-refuse", NULL, 0, &key), CKR_OK);
    CHECK_RV(make_aes(s, "aes-hsm", NULL, 0, &aes), CKR_OK);
    unsigned char iv[16] = {0};
    CK_AES_CTR_PARAMS ctr = {.ulCounterBits = 32};
    CK_MECHANISM sm4_ctr = {CKM_CMK_SM4_CTR, &ctr, sizeof(ctr)}, ecb = {CKM_CMK_SM4_ECB, NULL, 0};
    CHECK_RV(p11->C_EncryptInit(s, &sm4_ctr, key), CKR_MECHANISM_INVALID);
    CHECK_RV(p11->C_DecryptInit(s, &ecb, key), CKR_MECHANISM_INVALID); /* not mapped here */
    /* The stand-in is AES in the backend, yet an SM4 key takes no AES mechanism... */
    CK_MECHANISM aes_cbc = {CKM_AES_CBC, iv, 16}, sm4_cbc = {CKM_CMK_SM4_CBC, iv, 16};
    CHECK_RV(p11->C_EncryptInit(s, &aes_cbc, key), CKR_KEY_TYPE_INCONSISTENT);
    /* ...and an AES key takes no SM4 mechanism, though the mapped code is AES's. */
    CHECK_RV(p11->C_EncryptInit(s, &sm4_cbc, aes), CKR_KEY_TYPE_INCONSISTENT);
    /* Wrapping is checked the same way: no AES key wrap with an SM4 key. */
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0}, aes_gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG sixteen = 16;
    CK_ATTRIBUTE session_key[] = {{CKA_VALUE_LEN, &sixteen, sizeof(sixteen)},
                                  {CKA_EXTRACTABLE, &yes, 1}};
    CK_OBJECT_HANDLE plain;
    unsigned char wrapped[64];
    CK_ULONG wrapped_len = sizeof(wrapped);
    CHECK_RV(p11->C_GenerateKey(s, &aes_gen, session_key, 2, &plain), CKR_OK);
    CHECK_RV(p11->C_WrapKey(s, &kw, key, plain, wrapped, &wrapped_len), CKR_KEY_TYPE_INCONSISTENT);
    /* The refusals leave the session free for a good Init. */
    unsigned char ct[16], msg[16] = "sixteen bytes!!";
    CK_ULONG ct_len = sizeof(ct);
    CHECK_RV(crypt_one(p11, s, key, &sm4_cbc, true, msg, 16, ct, &ct_len), CKR_OK);
    fixture_close(s);
    CHECK(inspect_log_count("CKM_CMK_SM4_CTR: not offered at level HSM: [gm_backend] sm4_ctr") ==
          1);
    CHECK(inspect_log_count("[gm_backend] sm4_ecb names no backend code") == 1);
    CHECK(inspect_log_count("does not fit the key's type") == 3);
}

static void test_sm4_at_hsm_follows_state_and_usage(void)
{
    CK_SESSION_HANDLE s = open_mapped(false);
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_sm4(s, "sm4-state", NULL, 0, &key), CKR_OK);
    unsigned char iv[16] = {0}, msg[16] = {0}, ct[16];
    CK_ULONG ct_len = sizeof(ct);
    CK_MECHANISM cbc = {CKM_CMK_SM4_CBC, iv, 16};
    CK_MECHANISM hmac = {CKM_CMK_SM3_HMAC, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &hmac, key), CKR_KEY_FUNCTION_NOT_PERMITTED); /* usage */
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK_RV(p11->C_EncryptInit(s, &cbc, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED), CKR_OK);
    CHECK_RV(crypt_one(p11, s, key, &cbc, true, msg, 16, ct, &ct_len), CKR_OK);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_PENDING_DELETION), CKR_OK);
    CHECK_RV(p11->C_DecryptInit(s, &cbc, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
    CHECK(inspect_log_count("cannot sign: key usage is ENCRYPT_DECRYPT") == 1);
    CHECK(inspect_log_count("cannot encrypt: key state is Disabled") == 1);
    CHECK(inspect_log_count("cannot decrypt: key state is PendingDeletion") == 1);
}

static CK_RV envelope(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, bool encrypt, const char *aad,
                      const unsigned char *in, CK_ULONG len, unsigned char *out, CK_ULONG *out_len)
{
    CK_CMK_ENVELOPE_PARAMS ep = {(CK_BYTE_PTR)aad, strlen(aad)};
    CK_MECHANISM mech = {CKM_CMK_ENVELOPE, &ep, sizeof(ep)};
    return crypt_one(p11, s, key, &mech, encrypt, in, len, out, out_len);
}

/* What the envelope (format 0x02, envelope_sm4.h) must be when its subkeys come from the
 * backend's mapped SM4-ECB under material: derived here through the backend directly,
 * then SM4-CTR and HMAC-SM3 with OpenSSL. */
static bool expected_sm4_envelope(CK_SESSION_HANDLE b, CK_OBJECT_HANDLE material,
                                  const unsigned char *header, const char *aad,
                                  const unsigned char *msg, size_t len, unsigned char *out)
{
    unsigned char blocks[48], keys[48];
    for (int i = 0; i < 3; i++) {
        memcpy(blocks + 16 * i, "CMKP11-ENV-SM4", 14);
        blocks[16 * i + 14] = 0;
        blocks[16 * i + 15] = (unsigned char)(i + 1);
    }
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_ULONG keys_len = sizeof(keys);
    if (crypt_one(be, b, material, &ecb, true, blocks, 48, keys, &keys_len) != CKR_OK) return false;
    unsigned char cb[16] = {0};
    memcpy(cb, header + 21, 12);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    bool ok = EVP_EncryptInit_ex(ctx, EVP_sm4_ctr(), NULL, keys, cb) == 1 &&
              EVP_EncryptUpdate(ctx, out, &n, msg, (int)len) == 1 &&
              EVP_EncryptFinal_ex(ctx, out + n, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    unsigned char aad_len[8] = {0};
    aad_len[7] = (unsigned char)strlen(aad);
    char digest[] = "SM3";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_END};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mctx = EVP_MAC_CTX_new(mac);
    size_t tag_len = 0;
    ok = ok && EVP_MAC_init(mctx, keys + 16, 32, params) == 1 &&
         EVP_MAC_update(mctx, header, 33) == 1 && EVP_MAC_update(mctx, aad_len, 8) == 1 &&
         EVP_MAC_update(mctx, (const unsigned char *)aad, strlen(aad)) == 1 &&
         EVP_MAC_update(mctx, out, len) == 1 && EVP_MAC_final(mctx, out + len, &tag_len, 32) == 1;
    EVP_MAC_CTX_free(mctx);
    EVP_MAC_free(mac);
    return ok && tag_len == 32;
}

static void test_sm4_envelope_at_hsm_derives_its_keys_in_the_backend_and_rotates(void)
{
    CK_SESSION_HANDLE s = open_mapped(true);
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_sm4(s, "sm4-env", NULL, 0, &key), CKR_OK);
    char key_id[40];
    key_id_of(s, key, key_id);
    static const unsigned char msg[] = "an envelope under an HSM-level SM4 key";
    CK_ULONG len = sizeof(msg) - 1;
    unsigned char ct[2][160], pt[160];
    CK_ULONG ct_len[2];
    for (int v = 0; v < 2; v++) { /* version 1, then version 2 after a rotation */
        CK_ATTRIBUTE rotate = {CKA_CMK_ROTATE_NOW, &yes, 1};
        if (v) CHECK_RV(p11->C_SetAttributeValue(s, key, &rotate, 1), CKR_OK);
        ct_len[v] = sizeof(ct[v]);
        CHECK_RV(envelope(s, key, true, "ctx", msg, len, ct[v], &ct_len[v]), CKR_OK);
        CHECK(ct_len[v] == 33 + len + 32 && ct[v][0] == 0x02 && ct[v][20] == v + 1);
    }
    for (int v = 0; v < 2; v++) { /* both open under the rotated key */
        CK_ULONG pt_len = sizeof(pt);
        CHECK_RV(envelope(s, key, false, "ctx", ct[v], ct_len[v], pt, &pt_len), CKR_OK);
        CHECK(pt_len == len && memcmp(pt, msg, len) == 0);
    }
    ct[1][ct_len[1] - 1] ^= 1;
    CK_ULONG pt_len = sizeof(pt);
    CHECK_RV(envelope(s, key, false, "ctx", ct[1], ct_len[1], pt, &pt_len),
             CKR_ENCRYPTED_DATA_INVALID);
    ct[1][ct_len[1] - 1] ^= 1;
    CK_ULONG primary = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
    CHECK(primary == 2);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed") == 0);
    CHECK(inspect_backend_material() == 2);

    /* Each version's body and tag are what that version's backend object derives. */
    CK_SESSION_HANDLE b = backend_open();
    unsigned char want[160];
    for (int v = 0; v < 2; v++) {
        CK_OBJECT_HANDLE material = backend_material(b, key_id, v + 1, CKO_SECRET_KEY);
        CHECK(expected_sm4_envelope(b, material, ct[v], "ctx", msg, len, want));
        CHECK(memcmp(want, ct[v] + 33, len + 32) == 0);
    }
    backend_close(b);
}

static void test_sm4_envelope_at_hsm_without_mapped_ecb_is_refused(void)
{
    CK_SESSION_HANDLE s = open_mapped(false);
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_sm4(s, "sm4-env-no-ecb", NULL, 0, &key), CKR_OK);
    unsigned char out[128];
    CK_ULONG out_len = sizeof(out);
    CHECK_RV(envelope(s, key, true, "", (const unsigned char *)"x", 1, out, &out_len),
             CKR_MECHANISM_INVALID);
    fixture_close(s);
    CHECK(inspect_log_count("[gm_backend] sm4_ecb is not set") == 1);
}

static void test_sm2_at_hsm_signs_through_the_mapped_mechanism(void)
{
    CK_SESSION_HANDLE s = open_mapped(false);
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_sm2(s, "sm2-hsm", NULL, 0, &pub, &priv), CKR_OK);
    CK_ULONG level = 0, type = 0, usage = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_PROTECTION_LEVEL, &level), CKR_OK);
    CHECK(level == CMK_PROTECTION_HSM);
    CHECK_RV(get_ulong(s, priv, CKA_KEY_TYPE, &type), CKR_OK);
    CHECK(type == CKK_CMK_SM2);
    CHECK_RV(get_ulong(s, pub, CKA_KEY_TYPE, &type), CKR_OK);
    CHECK(type == CKK_CMK_SM2);
    static const unsigned char sm2_oid[] = {0x06, 0x08, 0x2A, 0x81, 0x1C,
                                            0xCF, 0x55, 0x01, 0x82, 0x2D};
    unsigned char params[32];
    CK_ATTRIBUTE ec_params = {CKA_EC_PARAMS, params, sizeof(params)};
    CHECK_RV(p11->C_GetAttributeValue(s, pub, &ec_params, 1), CKR_OK);
    CHECK(ec_params.ulValueLen == sizeof(sm2_oid) && memcmp(params, sm2_oid, sizeof(sm2_oid)) == 0);
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == CMK_USAGE_SIGN_VERIFY);
    char key_id[40];
    key_id_of(s, priv, key_id);
    unsigned char msg[] = "signed by an HSM-level SM2 key", sig[128];
    CK_ULONG sig_len = sizeof(sig);
    CK_MECHANISM sm2 = {CKM_CMK_SM2_SM3, NULL, 0};
    CHECK_RV(sign_one(p11, s, priv, &sm2, msg, sizeof(msg), sig, &sig_len, false), CKR_OK);
    CHECK(sig_len == 64);
    CHECK_RV(sign_one(p11, s, pub, &sm2, msg, sizeof(msg), sig, &sig_len, true), CKR_OK);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0}, enc = {CKM_CMK_SM2_ENCRYPT, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &ecdsa, priv), CKR_KEY_TYPE_INCONSISTENT);
    CHECK_RV(p11->C_EncryptInit(s, &enc, pub), CKR_KEY_FUNCTION_NOT_PERMITTED); /* usage */
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_sealed") == 0);
    CHECK(inspect_log_count("could not encode the public key") == 0);

    /* The backend's own pair verifies the module's signature with the mapped mechanism. */
    CK_SESSION_HANDLE b = backend_open();
    CK_OBJECT_HANDLE bpub = backend_material(b, key_id, 1, CKO_PUBLIC_KEY);
    CHECK_RV(sign_one(be, b, bpub, &ecdsa, msg, sizeof(msg), sig, &sig_len, true), CKR_OK);
    sig[5] ^= 1;
    CHECK_RV(sign_one(be, b, bpub, &ecdsa, msg, sizeof(msg), sig, &sig_len, true),
             CKR_SIGNATURE_INVALID);
    backend_close(b);
}

static void test_unmapped_specs_stay_software_or_are_refused_at_hsm(void)
{
    CK_SESSION_HANDLE s = open_mapped(false);
    CK_ULONG crypt = CMK_USAGE_ENCRYPT_DECRYPT, hsm = CMK_PROTECTION_HSM, level = 0;
    CK_ULONG external = CMK_ORIGIN_EXTERNAL;
    CK_OBJECT_HANDLE pub, priv, key;
    /* SM2 encryption is not mapped: an ENCRYPT_DECRYPT pair is SOFTWARE when not asked... */
    CK_ATTRIBUTE for_crypt[] = {{CKA_CMK_KEY_USAGE, &crypt, sizeof(crypt)}};
    CHECK_RV(make_sm2(s, "sm2-crypt", for_crypt, 1, &pub, &priv), CKR_OK);
    CHECK_RV(get_ulong(s, priv, CKA_CMK_PROTECTION_LEVEL, &level), CKR_OK);
    CHECK(level == CMK_PROTECTION_SOFTWARE);
    /* ...and refused at HSM, as is an import (EXTERNAL origin) of SM4 at HSM. */
    CK_ATTRIBUTE crypt_hsm[] = {{CKA_CMK_KEY_USAGE, &crypt, sizeof(crypt)},
                                {CKA_CMK_PROTECTION_LEVEL, &hsm, sizeof(hsm)}};
    CHECK_RV(make_sm2(s, "sm2-crypt-hsm", crypt_hsm, 2, &pub, &priv), CKR_MECHANISM_INVALID);
    CK_ATTRIBUTE import_hsm[] = {{CKA_CMK_ORIGIN, &external, sizeof(external)},
                                 {CKA_CMK_PROTECTION_LEVEL, &hsm, sizeof(hsm)}};
    CHECK_RV(make_sm4(s, "sm4-import-hsm", import_hsm, 2, &key), CKR_MECHANISM_INVALID);
    /* An import with no level asked is SOFTWARE (its material gets sealed), mapping or not. */
    CHECK_RV(make_sm4(s, "sm4-import", import_hsm, 1, &key), CKR_OK);
    CHECK_RV(get_ulong(s, key, CKA_CMK_PROTECTION_LEVEL, &level), CKR_OK);
    CHECK(level == CMK_PROTECTION_SOFTWARE);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 2);
    CHECK(inspect_log_count("imported SM material is sealed in the store") == 1);
    CHECK(inspect_log_count("key spec EC_SM2 with no CKA_CMK_PROTECTION_LEVEL: SOFTWARE") == 1);
    CHECK(inspect_log_count("key spec EC_SM2 at CKA_CMK_PROTECTION_LEVEL HSM") == 1);
    CHECK(inspect_log_count("key spec SM4 at CKA_CMK_PROTECTION_LEVEL HSM") == 1);
}

static void test_hmac_sm3_on_an_hsm_hmac_key_is_the_backends_mapped_mac(void)
{
    CK_SESSION_HANDLE s = open_mapped(false);
    CK_MECHANISM gen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_ATTRIBUTE t[] = {
        {CKA_TOKEN, &yes, 1}, {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_LABEL, "hmac-hsm", 8}};
    CK_OBJECT_HANDLE key;
    CHECK_RV(p11->C_GenerateKey(s, &gen, t, 3, &key), CKR_OK);
    char key_id[40];
    key_id_of(s, key, key_id);
    unsigned char msg[] = "mac me", mac[64];
    CK_ULONG mac_len = sizeof(mac);
    CK_MECHANISM sm3_hmac = {CKM_CMK_SM3_HMAC, NULL, 0};
    CHECK_RV(sign_one(p11, s, key, &sm3_hmac, msg, sizeof(msg), mac, &mac_len, false), CKR_OK);
    CHECK(mac_len == 32);
    fixture_close(s);
    CK_SESSION_HANDLE b = backend_open();
    CK_MECHANISM sha256_hmac = {CKM_SHA256_HMAC, NULL, 0};
    unsigned char direct[64];
    CK_ULONG direct_len = sizeof(direct);
    CK_OBJECT_HANDLE material = backend_material(b, key_id, 1, CKO_SECRET_KEY);
    CHECK_RV(sign_one(be, b, material, &sha256_hmac, msg, sizeof(msg), direct, &direct_len, false),
             CKR_OK);
    CHECK(direct_len == mac_len && memcmp(direct, mac, mac_len) == 0);
    backend_close(b);
}

static void test_mapped_sm_mechanisms_are_listed_with_the_backends_flags(void)
{
    CK_SESSION_HANDLE s = fixture_open(); /* no mapping: HMAC-SM3 is not listed */
    CK_MECHANISM_TYPE list[512];
    CK_ULONG n = 512;
    CHECK_RV(p11->C_GetMechanismList(0, list, &n), CKR_OK);
    bool listed = false;
    for (CK_ULONG i = 0; i < n; i++)
        listed |= list[i] == CKM_CMK_SM3_HMAC;
    CHECK(!listed);
    CK_MECHANISM_INFO info;
    CHECK_RV(p11->C_GetMechanismInfo(0, CKM_CMK_SM3_HMAC, &info), CKR_MECHANISM_INVALID);
    fixture_close(s);

    s = open_mapped(false);
    n = 512;
    CHECK_RV(p11->C_GetMechanismList(0, list, &n), CKR_OK);
    int hmac = 0, cbc = 0;
    for (CK_ULONG i = 0; i < n; i++)
        hmac += list[i] == CKM_CMK_SM3_HMAC, cbc += list[i] == CKM_CMK_SM4_CBC;
    CHECK(hmac == 1 && cbc == 1);
    CHECK_RV(p11->C_GetMechanismInfo(0, CKM_CMK_SM4_CBC, &info), CKR_OK);
    CHECK(info.ulMinKeySize == 16 && info.ulMaxKeySize == 16); /* SM4's, not the stand-in's */
    CHECK((info.flags & (CKF_ENCRYPT | CKF_DECRYPT)) == (CKF_ENCRYPT | CKF_DECRYPT));
    CHECK(!(info.flags & (CKF_WRAP | CKF_UNWRAP))); /* not translated, so not offered */
    CK_MECHANISM_INFO mac_info, sm2_info;
    CHECK_RV(p11->C_GetMechanismInfo(0, CKM_CMK_SM3_HMAC, &mac_info), CKR_OK);
    CHECK_RV(p11->C_GetMechanismInfo(0, CKM_CMK_SM2_SM3, &sm2_info), CKR_OK);
    CHECK(sm2_info.ulMinKeySize == 256 && (sm2_info.flags & CKF_SIGN));
    fixture_close(s);
    /* The flags are the backend's for the mapped code (the backend asked directly). */
    CK_SESSION_HANDLE b = backend_open();
    CK_MECHANISM_INFO theirs, their_ecdsa;
    CK_SLOT_ID slot = inspect_backend_slot(be, getenv("CMK_BACKEND_TOKEN"));
    CHECK_RV(be->C_GetMechanismInfo(slot, CKM_SHA256_HMAC, &theirs), CKR_OK);
    CHECK_RV(be->C_GetMechanismInfo(slot, CKM_ECDSA, &their_ecdsa), CKR_OK);
    CHECK(mac_info.flags == theirs.flags && mac_info.ulMinKeySize == theirs.ulMinKeySize);
    CHECK((sm2_info.flags & their_ecdsa.flags) == their_ecdsa.flags);
    backend_close(b);
}

/* C_Initialize with lines appended to the configuration for this call only; its stderr
 * in out. */
static CK_RV init_with(const char *line, char *out, size_t size)
{
    char saved_conf[8192];
    FILE *f = fopen(getenv("CMKP11_CONF"), "r");
    size_t n = f ? fread(saved_conf, 1, sizeof(saved_conf) - 1, f) : 0;
    if (f) fclose(f);
    saved_conf[n] = '\0';
    append_conf(line);
    CK_RV rv = fixture_init_capturing(out, size);
    f = fopen(getenv("CMKP11_CONF"), "w"); /* back to the file as it was */
    if (f) {
        fputs(saved_conf, f);
        fclose(f);
    }
    return rv;
}

static void test_bad_gm_backend_values_fail_initialize_naming_key_and_rule(void)
{
    static const struct {
        const char *line, *needle;
    } cases[] = {
        {"[gm_backend]\nsm4_cbc = 0x\n", "[gm_backend] sm4_cbc: must be the backend's code"},
        {"[gm_backend]\nsm4_ecb = 12abc\n", "[gm_backend] sm4_ecb: must be the backend's code"},
        {"[gm_backend]\nsm4_key_type = 0x100000000\n", "at most 0xFFFFFFFF"},
        {"[gm_backend]\nsm2_sm3 = -1\n", "[gm_backend] sm2_sm3: must be the backend's code"},
        {"[gm_backend]\nsm4_key_gen = 0xC34D4B10\n", "is one of cmkp11's own codes"},
        {"[gm_backend]\nsm2_key_type = 3\nsm2_curve = 1.2.x\n",
         "[gm_backend] sm2_curve: must be a curve OID in dotted form"},
        {"[gm_backend]\nsm2_curve = 3.1\n", "[gm_backend] sm2_curve: must be a curve OID"},
        {"[gm_backend]\nsm9_cbc = 1\n", "[gm_backend] sm9_cbc: unknown key"},
        {"[gm_backend]\nsm2_curve = 1.2.156.10197.1.301\n",
         "sm2_curve is given without sm2_key_type"},
    };
    char log[4096];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CK_RV rv = init_with(cases[i].line, log, sizeof(log));
        if (rv != CKR_GENERAL_ERROR || !strstr(log, cases[i].needle))
            fprintf(stderr, "  %s -> 0x%lx: %s\n", cases[i].line, rv, log);
        CHECK(rv == CKR_GENERAL_ERROR);
        CHECK(strstr(log, cases[i].needle) != NULL);
    }
    /* Hex in either case, decimal, and the SM2 curve's own OID are taken. */
    CHECK_RV(init_with("[gm_backend]\nsm4_cbc = 0X1082\nsm4_ecb = 4225\nsm2_key_type = "
                       "0x80050002\nsm2_curve = 1.2.156.10197.1.301\n",
                       log, sizeof(log)),
             CKR_OK);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_sm4_without_level_goes_to_hsm_and_its_material_is_a_backend_object),
        T(test_sm4_at_hsm_gives_the_backends_own_ciphertext_and_round_trips),
        T(test_sm4_at_hsm_refuses_unmapped_and_foreign_mechanisms),
        T(test_sm4_at_hsm_follows_state_and_usage),
        T(test_sm4_envelope_at_hsm_derives_its_keys_in_the_backend_and_rotates),
        T(test_sm4_envelope_at_hsm_without_mapped_ecb_is_refused),
        T(test_sm2_at_hsm_signs_through_the_mapped_mechanism),
        T(test_unmapped_specs_stay_software_or_are_refused_at_hsm),
        T(test_hmac_sm3_on_an_hsm_hmac_key_is_the_backends_mapped_mac),
        T(test_mapped_sm_mechanisms_are_listed_with_the_backends_flags),
        T(test_bad_gm_backend_values_fail_initialize_naming_key_and_rule),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
