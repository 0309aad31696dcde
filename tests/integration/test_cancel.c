/* test_cancel.c - PKCS#11 3.0's cancel, an *Init with a NULL mechanism, as clients such as
 * pkcs11-provider use it: the active operation ends, on HSM keys (whose operations run in
 * SoftHSMv2, which cannot cancel) and on SOFTWARE keys alike, and the session takes the
 * next operation at once. With nothing active the call is refused as before. */
#include "fixture.h"

static CK_ULONG software = CMK_PROTECTION_SOFTWARE;
static unsigned char iv[16] = {9};

/* Starts a multi-part AES-CBC operation (encrypt or decrypt) that has taken one block. */
static void start_cbc(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, bool encrypt)
{
    CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
    unsigned char in[16] = {1}, out[64];
    CK_ULONG out_len = sizeof(out);
    CHECK_RV(encrypt ? p11->C_EncryptInit(s, &cbc, key) : p11->C_DecryptInit(s, &cbc, key), CKR_OK);
    CHECK_RV(encrypt ? p11->C_EncryptUpdate(s, in, sizeof(in), out, &out_len)
                     : p11->C_DecryptUpdate(s, in, sizeof(in), out, &out_len),
             CKR_OK);
}

/* On a new AES key (extra: its vendor attributes), made by a session of its own. */
static void cancel_cipher_operations(const char *alias, const CK_ATTRIBUTE *extra, CK_ULONG n)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, alias, extra, n, &key), CKR_OK);
    for (int encrypt = 1; encrypt >= 0; encrypt--) {
        CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
        start_cbc(s, key, encrypt);
        /* Busy: a second Init is refused until the cancel. */
        CHECK_RV(encrypt ? p11->C_EncryptInit(s, &cbc, key) : p11->C_DecryptInit(s, &cbc, key),
                 CKR_OPERATION_ACTIVE);
        CHECK_RV(encrypt ? p11->C_EncryptInit(s, NULL, key) : p11->C_DecryptInit(s, NULL, key),
                 CKR_OK);
        /* Ended: its Final is not there any more, and a new operation starts. */
        unsigned char out[64];
        CK_ULONG out_len = sizeof(out);
        CHECK_RV(encrypt ? p11->C_EncryptFinal(s, out, &out_len)
                         : p11->C_DecryptFinal(s, out, &out_len),
                 CKR_OPERATION_NOT_INITIALIZED);
        /* Nothing active: a NULL mechanism is refused, as before. */
        CHECK_RV(encrypt ? p11->C_EncryptInit(s, NULL, key) : p11->C_DecryptInit(s, NULL, key),
                 CKR_ARGUMENTS_BAD);
    }
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    fixture_close(s);
}

static void test_null_mechanism_cancels_cipher_operations_on_hsm_keys(void)
{
    cancel_cipher_operations("cancel-hsm", NULL, 0);
}

static void test_null_mechanism_cancels_cipher_operations_on_software_keys(void)
{
    CK_ATTRIBUTE soft[] = {{CKA_CMK_PROTECTION_LEVEL, &software, sizeof(software)}};
    cancel_cipher_operations("cancel-soft", soft, 1);
}

/* GCM decrypt under a rotated key runs in the backend and in the module (which tries the
 * older versions if the tag fails): a cancel ends both. */
static void test_null_mechanism_cancels_gcm_decrypt_under_a_rotated_key(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "cancel-rotated", NULL, 0, &key), CKR_OK);
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE rotate = {CKA_CMK_ROTATE_NOW, &yes, sizeof(yes)};
    CHECK_RV(p11->C_SetAttributeValue(s, key, &rotate, 1), CKR_OK);
    unsigned char gcm_iv[12] = {3};
    CK_GCM_PARAMS gp = {gcm_iv, sizeof(gcm_iv), 96, NULL, 0, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};
    CHECK_RV(p11->C_DecryptInit(s, &gcm, key), CKR_OK);
    CHECK_RV(p11->C_DecryptInit(s, &gcm, key), CKR_OPERATION_ACTIVE);
    CHECK_RV(p11->C_DecryptInit(s, NULL, key), CKR_OK);
    CHECK_RV(p11->C_DecryptInit(s, &gcm, key), CKR_OK);
    CHECK_RV(p11->C_DecryptInit(s, NULL, key), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    fixture_close(s);
}

/* Single-part-only (raw ECDSA) and multi-part (SHA-256 RSA PKCS#1) signatures, and a
 * verification, at level HSM. */
static void test_null_mechanism_cancels_sign_and_verify_on_hsm_keys(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE ec_pub, ec_priv, pub, priv;
    CHECK_RV(make_ec(s, "cancel-ec", NULL, 0, &ec_pub, &ec_priv), CKR_OK);
    CK_BBOOL yes = CK_TRUE;
    CK_ULONG bits = 2048;
    CK_BYTE e[] = {1, 0, 1};
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, 1},
                         {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                         {CKA_PUBLIC_EXPONENT, e, sizeof(e)},
                         {CKA_VERIFY, &yes, 1},
                         {CKA_LABEL, "cancel-rsa", 10}};
    CK_ATTRIBUTE st[] = {{CKA_TOKEN, &yes, 1}, {CKA_SIGN, &yes, 1}, {CKA_LABEL, "cancel-rsa", 10}};
    CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CHECK_RV(p11->C_GenerateKeyPair(s, &gen, pt, 5, st, 3, &pub, &priv), CKR_OK);
    CK_MECHANISM raw = {CKM_ECDSA, NULL, 0}, hashing = {CKM_SHA256_RSA_PKCS, NULL, 0};
    unsigned char part[32] = {1}, sig[512];
    CK_ULONG sig_len = sizeof(sig);
    CHECK_RV(p11->C_SignInit(s, &raw, ec_priv), CKR_OK); /* CKM_ECDSA: single-part only */
    CHECK_RV(p11->C_SignInit(s, &raw, ec_priv), CKR_OPERATION_ACTIVE);
    CHECK_RV(p11->C_SignInit(s, NULL, ec_priv), CKR_OK);
    CHECK_RV(p11->C_SignInit(s, &hashing, priv), CKR_OK);
    CHECK_RV(p11->C_SignUpdate(s, part, sizeof(part)), CKR_OK);
    CHECK_RV(p11->C_SignInit(s, NULL, priv), CKR_OK);
    CHECK_RV(p11->C_SignFinal(s, sig, &sig_len), CKR_OPERATION_NOT_INITIALIZED);
    CHECK_RV(p11->C_VerifyInit(s, &hashing, pub), CKR_OK);
    CHECK_RV(p11->C_VerifyUpdate(s, part, sizeof(part)), CKR_OK);
    CHECK_RV(p11->C_VerifyInit(s, NULL, pub), CKR_OK);
    CHECK_RV(p11->C_VerifyInit(s, NULL, pub), CKR_ARGUMENTS_BAD);
    /* The session signs and verifies at once afterwards. */
    sig_len = sizeof(sig);
    CHECK_RV(p11->C_SignInit(s, &hashing, priv), CKR_OK);
    CHECK_RV(p11->C_Sign(s, part, sizeof(part), sig, &sig_len), CKR_OK);
    CHECK_RV(p11->C_VerifyInit(s, &hashing, pub), CKR_OK);
    CHECK_RV(p11->C_Verify(s, part, sizeof(part), sig, sig_len), CKR_OK);
    sig_len = sizeof(sig);
    CHECK_RV(p11->C_SignInit(s, &raw, ec_priv), CKR_OK);
    CHECK_RV(p11->C_Sign(s, part, sizeof(part), sig, &sig_len), CKR_OK);
    fixture_close(s);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_null_mechanism_cancels_cipher_operations_on_hsm_keys),
        T(test_null_mechanism_cancels_cipher_operations_on_software_keys),
        T(test_null_mechanism_cancels_gcm_decrypt_under_a_rotated_key),
        T(test_null_mechanism_cancels_sign_and_verify_on_hsm_keys),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
