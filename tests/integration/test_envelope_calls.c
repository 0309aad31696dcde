/* test_envelope_calls.c - CKM_CMK_ENVELOPE as ordinary PKCS#11 clients call it: the
 * length query, then an exact or too small buffer and a retry (PKCS#11 5.2), single and
 * multi-part, at levels HSM and SOFTWARE alike; the session stays usable afterwards. */
#include "fixture.h"

static CK_ULONG software = CMK_PROTECTION_SOFTWARE;
static CK_CMK_ENVELOPE_PARAMS ctx_params = {(CK_BYTE_PTR) "ctx", 3};
static CK_MECHANISM envelope_mech = {CKM_CMK_ENVELOPE, &ctx_params, sizeof(ctx_params)};
static const unsigned char msg[] = "hello world"; /* 11 bytes without the NUL */
#define MSG_LEN (sizeof(msg) - 1)
#define SEALED_LEN (33 + MSG_LEN + 16)

/* Seals msg the two-call way: length query, one byte short, then exactly the size. */
static CK_RV seal_two_calls(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, unsigned char *ct,
                            CK_ULONG *ct_len)
{
    CK_ULONG need = 0, short_len;
    CK_RV rv = p11->C_EncryptInit(s, &envelope_mech, key);
    if (rv == CKR_OK) rv = p11->C_Encrypt(s, (CK_BYTE_PTR)msg, MSG_LEN, NULL, &need);
    CHECK(need == SEALED_LEN);
    short_len = need - 1;
    if (rv == CKR_OK)
        CHECK_RV(p11->C_Encrypt(s, (CK_BYTE_PTR)msg, MSG_LEN, ct, &short_len),
                 CKR_BUFFER_TOO_SMALL);
    CHECK(short_len == need);
    *ct_len = need;
    if (rv == CKR_OK) rv = p11->C_Encrypt(s, (CK_BYTE_PTR)msg, MSG_LEN, ct, ct_len);
    CHECK(*ct_len == SEALED_LEN);
    return rv;
}

/* An envelope round trip and a plain AES-GCM round trip in the same session: nothing
 * is left running in the module or in the backend. */
static void check_session_usable(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    unsigned char ct[128], pt[128];
    CK_ULONG ct_len = sizeof(ct), pt_len = sizeof(pt);
    CHECK_RV(p11->C_EncryptInit(s, &envelope_mech, key), CKR_OK);
    CHECK_RV(p11->C_Encrypt(s, (CK_BYTE_PTR)msg, MSG_LEN, ct, &ct_len), CKR_OK);
    CHECK_RV(p11->C_DecryptInit(s, &envelope_mech, key), CKR_OK);
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == MSG_LEN && memcmp(pt, msg, MSG_LEN) == 0);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
}

static void check_two_call_pattern(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    unsigned char ct[SEALED_LEN], pt[64];
    CK_ULONG ct_len = 0, pt_len = 0;
    CHECK_RV(seal_two_calls(s, key, ct, &ct_len), CKR_OK);
    check_session_usable(s, key);

    /* The length query's answer works as the buffer size. */
    CHECK_RV(p11->C_DecryptInit(s, &envelope_mech, key), CKR_OK);
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, NULL, &pt_len), CKR_OK);
    CHECK(pt_len == MSG_LEN);
    memset(pt, 0, sizeof(pt));
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == MSG_LEN && memcmp(pt, msg, MSG_LEN) == 0);
    check_session_usable(s, key);

    /* Too small: the needed length comes back and the operation stays for the retry. */
    CHECK_RV(p11->C_DecryptInit(s, &envelope_mech, key), CKR_OK);
    pt_len = MSG_LEN - 1;
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_BUFFER_TOO_SMALL);
    CHECK(pt_len == MSG_LEN);
    pt_len = MSG_LEN;
    memset(pt, 0, sizeof(pt));
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == MSG_LEN && memcmp(pt, msg, MSG_LEN) == 0);
    /* The operation ended with that success. */
    pt_len = sizeof(pt);
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_OPERATION_NOT_INITIALIZED);
    check_session_usable(s, key);

    /* Multi-part: everything comes out at Final, with the same conventions. */
    CK_ULONG part = sizeof(pt);
    CHECK_RV(p11->C_DecryptInit(s, &envelope_mech, key), CKR_OK);
    CHECK_RV(p11->C_DecryptUpdate(s, ct, 20, pt, &part), CKR_OK);
    part = sizeof(pt);
    CHECK_RV(p11->C_DecryptUpdate(s, ct + 20, ct_len - 20, pt, &part), CKR_OK);
    pt_len = 0;
    CHECK_RV(p11->C_DecryptFinal(s, NULL, &pt_len), CKR_OK);
    CHECK(pt_len == MSG_LEN);
    pt_len = 1;
    CHECK_RV(p11->C_DecryptFinal(s, pt, &pt_len), CKR_BUFFER_TOO_SMALL);
    CHECK(pt_len == MSG_LEN);
    memset(pt, 0, sizeof(pt));
    CHECK_RV(p11->C_DecryptFinal(s, pt, &pt_len), CKR_OK);
    CHECK(pt_len == MSG_LEN && memcmp(pt, msg, MSG_LEN) == 0);
    check_session_usable(s, key);

    /* A bad tag after a too small buffer: invalid ciphertext, the operation ends, and
     * the session is still usable. */
    ct[ct_len - 1] ^= 1;
    CHECK_RV(p11->C_DecryptInit(s, &envelope_mech, key), CKR_OK);
    pt_len = 0;
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_BUFFER_TOO_SMALL);
    pt_len = MSG_LEN;
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_ENCRYPTED_DATA_INVALID);
    pt_len = sizeof(pt);
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_OPERATION_NOT_INITIALIZED);
    ct[ct_len - 1] ^= 1;
    check_session_usable(s, key);

    /* An empty message, passed as a NULL pointer of length 0, seals and opens. */
    unsigned char empty_ct[SEALED_LEN];
    CK_ULONG empty_len = sizeof(empty_ct);
    CHECK_RV(p11->C_EncryptInit(s, &envelope_mech, key), CKR_OK);
    CHECK_RV(p11->C_Encrypt(s, NULL, 0, empty_ct, &empty_len), CKR_OK);
    CHECK(empty_len == 33 + 16);
    CHECK_RV(p11->C_DecryptInit(s, &envelope_mech, key), CKR_OK);
    pt_len = 0;
    CHECK_RV(p11->C_Decrypt(s, empty_ct, empty_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == 0);
    check_session_usable(s, key);
}

/* A fresh AES key made with the extra attributes (a protection level), put through it all. */
static void check_fresh_key(const char *alias, CK_ATTRIBUTE *extra, CK_ULONG n)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, alias, extra, n, &key), CKR_OK);
    check_two_call_pattern(s, key);
    fixture_close(s);
}

static void test_envelope_two_call_decrypt_and_retry_work_on_an_hsm_key(void)
{
    check_fresh_key("env-hsm", NULL, 0);
}

static void test_envelope_two_call_decrypt_and_retry_work_on_a_software_key(void)
{
    CK_ATTRIBUTE level = {CKA_CMK_PROTECTION_LEVEL, &software, sizeof(software)};
    check_fresh_key("env-soft", &level, 1);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_envelope_two_call_decrypt_and_retry_work_on_an_hsm_key),
        T(test_envelope_two_call_decrypt_and_retry_work_on_a_software_key),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
