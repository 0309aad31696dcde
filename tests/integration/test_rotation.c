/* test_rotation.c - key versions: rotation on demand and on schedule, decrypting what
 * older versions encrypted (envelope and plain AES-GCM), version objects, crashes. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

static CK_BBOOL yes = CK_TRUE;

static CK_RV rotate_now(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CK_ATTRIBUTE a = {CKA_CMK_ROTATE_NOW, &yes, sizeof(yes)};
    return p11->C_SetAttributeValue(s, key, &a, 1);
}

static CK_RV envelope(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, bool encrypt, const char *aad,
                      const unsigned char *in, CK_ULONG in_len, unsigned char *out,
                      CK_ULONG *out_len)
{
    CK_CMK_ENVELOPE_PARAMS params = {(CK_BYTE_PTR)aad, aad ? strlen(aad) : 0};
    CK_MECHANISM mech = {CKM_CMK_ENVELOPE, aad ? &params : NULL, aad ? sizeof(params) : 0};
    CK_RV rv = encrypt ? p11->C_EncryptInit(s, &mech, key) : p11->C_DecryptInit(s, &mech, key);
    if (rv != CKR_OK) return rv;
    return encrypt ? p11->C_Encrypt(s, (CK_BYTE_PTR)in, in_len, out, out_len)
                   : p11->C_Decrypt(s, (CK_BYTE_PTR)in, in_len, out, out_len);
}

static CK_RV gcm(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, bool encrypt, const unsigned char *in,
                 CK_ULONG in_len, unsigned char *out, CK_ULONG *out_len)
{
    unsigned char iv[12] = {7, 7, 7};
    CK_GCM_PARAMS p = {iv, sizeof(iv), 96, NULL, 0, 128};
    CK_MECHANISM mech = {CKM_AES_GCM, &p, sizeof(p)};
    CK_RV rv = encrypt ? p11->C_EncryptInit(s, &mech, key) : p11->C_DecryptInit(s, &mech, key);
    if (rv != CKR_OK) return rv;
    return encrypt ? p11->C_Encrypt(s, (CK_BYTE_PTR)in, in_len, out, out_len)
                   : p11->C_Decrypt(s, (CK_BYTE_PTR)in, in_len, out, out_len);
}

static const unsigned char secret_msg[] = "the quarterly numbers";

struct sealed {
    unsigned char env[128], gcm[128];
    CK_ULONG env_len, gcm_len;
};

static void test_rotate_three_times_and_decrypt_every_version_in_a_new_process(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "rotating", NULL, 0, &key), CKR_OK);
    struct sealed sealed[4];
    for (int v = 0; v < 4; v++) {
        if (v > 0) CHECK_RV(rotate_now(s, key), CKR_OK);
        CK_ULONG primary = 0;
        CHECK_RV(get_ulong(s, key, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
        CHECK(primary == (CK_ULONG)v + 1);
        sealed[v].env_len = sizeof(sealed[v].env);
        CHECK_RV(envelope(s, key, true, NULL, secret_msg, sizeof(secret_msg), sealed[v].env,
                          &sealed[v].env_len),
                 CKR_OK);
        CHECK(sealed[v].env_len == 33 + sizeof(secret_msg) + 16);
        CHECK(sealed[v].env[20] == v + 1); /* the header names the version */
        sealed[v].gcm_len = sizeof(sealed[v].gcm);
        CHECK_RV(
            gcm(s, key, true, secret_msg, sizeof(secret_msg), sealed[v].gcm, &sealed[v].gcm_len),
            CKR_OK);
    }
    fixture_close(s);
    CHECK(inspect_backend_material() == 4);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_version") == 4);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'RotateKey'") == 3);

    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE c = fixture_open();
        CK_OBJECT_HANDLE k = 0;
        CHECK(find_by_label(c, "rotating", CKO_SECRET_KEY, &k) == 1);
        for (int v = 0; v < 4; v++) {
            unsigned char plain[128];
            CK_ULONG plain_len = sizeof(plain);
            CHECK_RV(
                envelope(c, k, false, NULL, sealed[v].env, sealed[v].env_len, plain, &plain_len),
                CKR_OK);
            CHECK(plain_len == sizeof(secret_msg) && memcmp(plain, secret_msg, plain_len) == 0);
            plain_len = sizeof(plain);
            CHECK_RV(gcm(c, k, false, sealed[v].gcm, sealed[v].gcm_len, plain, &plain_len), CKR_OK);
            CHECK(plain_len == sizeof(secret_msg) && memcmp(plain, secret_msg, plain_len) == 0);
        }
        fixture_close(c);
        _exit(harness_failed_checks ? 1 : 0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_envelope_refuses_tampered_truncated_and_foreign_ciphertext(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, other;
    CHECK_RV(make_aes(s, "env", NULL, 0, &key), CKR_OK);
    CHECK_RV(make_aes(s, "env-other", NULL, 0, &other), CKR_OK);
    unsigned char ct[128], pt[128];
    CK_ULONG ct_len = sizeof(ct), pt_len;
    /* A size query first, as PKCS#11 clients do. */
    CK_CMK_ENVELOPE_PARAMS params = {(CK_BYTE_PTR) "ctx", 3};
    CK_MECHANISM mech = {CKM_CMK_ENVELOPE, &params, sizeof(params)};
    CHECK_RV(p11->C_EncryptInit(s, &mech, key), CKR_OK);
    CK_ULONG need = 0;
    CHECK_RV(p11->C_Encrypt(s, (CK_BYTE_PTR)secret_msg, sizeof(secret_msg), NULL, &need), CKR_OK);
    CHECK(need == 33 + sizeof(secret_msg) + 16);
    CHECK_RV(p11->C_Encrypt(s, (CK_BYTE_PTR)secret_msg, sizeof(secret_msg), ct, &ct_len), CKR_OK);

    pt_len = sizeof(pt);
    CHECK_RV(envelope(s, key, false, "ctx", ct, ct_len, pt, &pt_len), CKR_OK);
    pt_len = sizeof(pt);
    CHECK_RV(envelope(s, key, false, "other", ct, ct_len, pt, &pt_len), CKR_ENCRYPTED_DATA_INVALID);
    pt_len = sizeof(pt);
    CHECK_RV(envelope(s, key, false, NULL, ct, ct_len, pt, &pt_len), CKR_ENCRYPTED_DATA_INVALID);
    pt_len = sizeof(pt);
    CHECK_RV(envelope(s, other, false, "ctx", ct, ct_len, pt, &pt_len), CKR_ENCRYPTED_DATA_INVALID);
    pt_len = sizeof(pt);
    CHECK_RV(envelope(s, key, false, "ctx", ct, 40, pt, &pt_len), CKR_ENCRYPTED_DATA_LEN_RANGE);
    unsigned char bad[128];
    memcpy(bad, ct, ct_len);
    bad[20] = 9; /* a version the key does not have */
    pt_len = sizeof(pt);
    CHECK_RV(envelope(s, key, false, "ctx", bad, ct_len, pt, &pt_len), CKR_ENCRYPTED_DATA_INVALID);
    memcpy(bad, ct, ct_len);
    bad[ct_len - 1] ^= 1; /* the tag */
    pt_len = sizeof(pt);
    CHECK_RV(envelope(s, key, false, "ctx", bad, ct_len, pt, &pt_len), CKR_ENCRYPTED_DATA_INVALID);
    memcpy(bad, ct, ct_len);
    bad[0] = 2; /* the format */
    pt_len = sizeof(pt);
    CHECK_RV(envelope(s, key, false, "ctx", bad, ct_len, pt, &pt_len), CKR_ENCRYPTED_DATA_INVALID);

    /* A failed call ends the operation, even as a length query. */
    CK_MECHANISM plain_env = {CKM_CMK_ENVELOPE, &params, sizeof(params)};
    CHECK_RV(p11->C_DecryptInit(s, &plain_env, key), CKR_OK);
    pt_len = 0;
    CHECK_RV(p11->C_Decrypt(s, ct, 10, NULL, &pt_len), CKR_ENCRYPTED_DATA_LEN_RANGE);
    pt_len = sizeof(pt);
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_OPERATION_NOT_INITIALIZED);

    /* Multi-part: parts are gathered and sealed at Final. */
    CHECK_RV(p11->C_EncryptInit(s, &mech, key), CKR_OK);
    CK_ULONG part_len = sizeof(ct);
    CHECK_RV(p11->C_EncryptUpdate(s, (CK_BYTE_PTR)secret_msg, 5, ct, &part_len), CKR_OK);
    CHECK(part_len == 0);
    part_len = sizeof(ct);
    CHECK_RV(
        p11->C_EncryptUpdate(s, (CK_BYTE_PTR)secret_msg + 5, sizeof(secret_msg) - 5, ct, &part_len),
        CKR_OK);
    ct_len = sizeof(ct);
    CHECK_RV(p11->C_EncryptFinal(s, ct, &ct_len), CKR_OK);
    pt_len = sizeof(pt);
    CHECK_RV(envelope(s, key, false, "ctx", ct, ct_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == sizeof(secret_msg) && memcmp(pt, secret_msg, pt_len) == 0);

    /* Disabled keys neither seal nor open. */
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    pt_len = sizeof(pt);
    CHECK_RV(envelope(s, key, false, "ctx", ct, ct_len, pt, &pt_len),
             CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
}

static void test_version_objects_are_found_only_when_asked(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "versions", NULL, 0, &key), CKR_OK);
    unsigned char ct[128], pt[128];
    CK_ULONG ct_len = sizeof(ct), pt_len = sizeof(pt);
    CHECK_RV(gcm(s, key, true, secret_msg, sizeof(secret_msg), ct, &ct_len), CKR_OK);
    CHECK_RV(rotate_now(s, key), CKR_OK);
    CHECK(find_by_label(s, "versions", CKO_SECRET_KEY, NULL) == 1);
    CK_ULONG v1 = 1;
    CK_ATTRIBUTE by_version[] = {{CKA_LABEL, "versions", 8}, {CKA_CMK_VERSION, &v1, sizeof(v1)}};
    CK_OBJECT_HANDLE old = 0;
    CHECK(find_count(s, by_version, 2, &old) == 1);
    CHECK(old != key);
    CK_ULONG got = 0;
    CHECK_RV(get_ulong(s, old, CKA_CMK_VERSION, &got), CKR_OK);
    CHECK(got == 1);
    CHECK_RV(get_ulong(s, key, CKA_CMK_VERSION, &got), CKR_OK);
    CHECK(got == 2);
    CHECK_RV(gcm(s, old, false, ct, ct_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == sizeof(secret_msg));
    ct_len = sizeof(ct);
    CHECK_RV(gcm(s, old, true, secret_msg, sizeof(secret_msg), ct, &ct_len),
             CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_ULONG v3 = 3;
    CK_ATTRIBUTE no_such[] = {{CKA_LABEL, "versions", 8}, {CKA_CMK_VERSION, &v3, sizeof(v3)}};
    CHECK(find_count(s, no_such, 2, NULL) == 0);
    fixture_close(s);
}

static CK_RV get_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, CK_BBOOL *out)
{
    CK_ATTRIBUTE a = {t, out, sizeof(*out)};
    return p11->C_GetAttributeValue(s, h, &a, 1);
}

static CK_RV set_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, CK_BBOOL v)
{
    CK_ATTRIBUTE a = {t, &v, sizeof(v)};
    return p11->C_SetAttributeValue(s, h, &a, 1);
}

/* CKA_VALUE of t on every version object of the key with this alias, 1..versions. */
static bool every_version_has(CK_SESSION_HANDLE s, const char *alias, CK_ULONG versions,
                              CK_ATTRIBUTE_TYPE t, CK_BBOOL want)
{
    bool all = true;
    for (CK_ULONG v = 1; v <= versions; v++) {
        CK_ATTRIBUTE q[] = {{CKA_LABEL, (void *)alias, (CK_ULONG)strlen(alias)},
                            {CKA_CMK_VERSION, &v, sizeof(v)}};
        CK_OBJECT_HANDLE h = 0;
        CK_BBOOL got = !want;
        if (find_count(s, q, 2, &h) != 1 || get_bool(s, h, t, &got) != CKR_OK || got != want) {
            printf("  version %lu: attribute 0x%lx is not %d\n", v, t, want);
            all = false;
        }
    }
    return all;
}

/* Usage flags are the key's, not one version's: set at CreateKey or later, they hold on
 * every version and on the versions rotations make afterwards. */
static void test_usage_flags_hold_on_every_version_and_after_rotation(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CK_BBOOL no = CK_FALSE; /* SoftHSMv2's default for CKA_WRAP is CK_TRUE */
    CK_ATTRIBUTE wrap[] = {{CKA_WRAP, &no, sizeof(no)}};
    CHECK_RV(make_aes(s, "flags", wrap, 1, &key), CKR_OK);
    unsigned char ct1[128], pt[128], ct[128];
    CK_ULONG ct1_len = sizeof(ct1), pt_len, ct_len;
    CHECK_RV(gcm(s, key, true, secret_msg, sizeof(secret_msg), ct1, &ct1_len), CKR_OK);
    CHECK_RV(rotate_now(s, key), CKR_OK);
    /* CreateKey's CKA_WRAP carried over to version 2. */
    CHECK(every_version_has(s, "flags", 2, CKA_WRAP, CK_FALSE));

    CHECK_RV(set_bool(s, key, CKA_ENCRYPT, CK_FALSE), CKR_OK);
    CHECK(every_version_has(s, "flags", 2, CKA_ENCRYPT, CK_FALSE));
    ct_len = sizeof(ct);
    CHECK_RV(gcm(s, key, true, secret_msg, sizeof(secret_msg), ct, &ct_len),
             CKR_KEY_FUNCTION_NOT_PERMITTED);
    pt_len = sizeof(pt);
    CHECK_RV(gcm(s, key, false, ct1, ct1_len, pt, &pt_len), CKR_OK);

    /* The next version is made with the key's flags, not the defaults. */
    CHECK_RV(rotate_now(s, key), CKR_OK);
    CK_ULONG primary = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
    CHECK(primary == 3);
    CHECK(every_version_has(s, "flags", 3, CKA_ENCRYPT, CK_FALSE));
    CHECK(every_version_has(s, "flags", 3, CKA_WRAP, CK_FALSE));
    CHECK(every_version_has(s, "flags", 3, CKA_DECRYPT, CK_TRUE));
    ct_len = sizeof(ct);
    CHECK_RV(gcm(s, key, true, secret_msg, sizeof(secret_msg), ct, &ct_len),
             CKR_KEY_FUNCTION_NOT_PERMITTED);

    /* Turning decryption off reaches version 1 too: its ciphertext no longer decrypts. */
    CHECK_RV(set_bool(s, key, CKA_DECRYPT, CK_FALSE), CKR_OK);
    CHECK(every_version_has(s, "flags", 3, CKA_DECRYPT, CK_FALSE));
    pt_len = sizeof(pt);
    CHECK(gcm(s, key, false, ct1, ct1_len, pt, &pt_len) != CKR_OK);
    /* A version object is read-only: its flags are the key's. */
    CK_ULONG v1 = 1;
    CK_ATTRIBUTE q[] = {{CKA_LABEL, "flags", 5}, {CKA_CMK_VERSION, &v1, sizeof(v1)}};
    CK_OBJECT_HANDLE old = 0;
    CHECK(find_count(s, q, 2, &old) == 1);
    CHECK_RV(set_bool(s, old, CKA_DECRYPT, CK_TRUE), CKR_ACTION_PROHIBITED);
    CHECK(every_version_has(s, "flags", 3, CKA_DECRYPT, CK_FALSE));
    /* Back on, for every version at once. */
    CHECK_RV(set_bool(s, key, CKA_DECRYPT, CK_TRUE), CKR_OK);
    CHECK(every_version_has(s, "flags", 3, CKA_DECRYPT, CK_TRUE));
    pt_len = sizeof(pt);
    CHECK_RV(gcm(s, key, false, ct1, ct1_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == sizeof(secret_msg) && memcmp(pt, secret_msg, pt_len) == 0);
    /* Flags and metadata change together or not at all: an alias another key holds takes
     * the flag change back. */
    CK_OBJECT_HANDLE taken;
    CHECK_RV(make_aes(s, "flags-taken", NULL, 0, &taken), CKR_OK);
    CK_BBOOL off = CK_FALSE;
    CK_ATTRIBUTE both[] = {{CKA_DECRYPT, &off, sizeof(off)}, {CKA_CMK_ALIAS, "flags-taken", 11}};
    CHECK_RV(p11->C_SetAttributeValue(s, key, both, 2), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK(every_version_has(s, "flags", 3, CKA_DECRYPT, CK_TRUE));
    /* A change the backend refuses changes no version. */
    CHECK_RV(set_bool(s, key, CKA_SENSITIVE, CK_FALSE), CKR_ATTRIBUTE_READ_ONLY);
    CHECK(every_version_has(s, "flags", 3, CKA_SENSITIVE, CK_TRUE));
    fixture_close(s);

    /* Another process sees the same. */
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE c = fixture_open();
        CHECK(every_version_has(c, "flags", 3, CKA_ENCRYPT, CK_FALSE));
        CHECK(every_version_has(c, "flags", 3, CKA_WRAP, CK_FALSE));
        fixture_close(c);
        _exit(harness_failed_checks ? 1 : 0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Sets the state of the key labelled alias from another process. */
static void set_state_in_another_process(const char *alias, CK_ULONG state)
{
    pid_t pid = fork();
    if (pid == 0) {
        int before = harness_failed_checks; /* the parent's, inherited */
        CK_SESSION_HANDLE c = fixture_open();
        CK_OBJECT_HANDLE k = 0;
        CHECK(find_by_label(c, alias, CKO_SECRET_KEY, &k) == 1);
        CHECK_RV(set_ulong(c, k, CKA_CMK_KEY_STATE, state), CKR_OK);
        fixture_close(c);
        _exit(harness_failed_checks > before ? 1 : 0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Issue 16, case 9: plain AES-GCM under a rotated key, where a ciphertext of an older
 * version needs the fallback past the primary's failed tag. A key disabled by another
 * process between the C_DecryptInit and the C_Decrypt answers what a Disabled key's use
 * answers, CKR_KEY_FUNCTION_NOT_PERMITTED; a ciphertext no version verifies answers
 * CKR_ENCRYPTED_DATA_INVALID (both were SoftHSMv2's CKR_GENERAL_ERROR). */
static void test_gcm_fallback_answers_a_disabled_key_and_a_tampered_ciphertext_precisely(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "gcm-fallback", NULL, 0, &key), CKR_OK);
    unsigned char ct1[128], ct2[128], pt[128];
    CK_ULONG ct1_len = sizeof(ct1), ct2_len = sizeof(ct2), pt_len;
    CHECK_RV(gcm(s, key, true, secret_msg, sizeof(secret_msg), ct1, &ct1_len), CKR_OK);
    CHECK_RV(rotate_now(s, key), CKR_OK);
    CHECK_RV(rotate_now(s, key), CKR_OK);
    CHECK_RV(gcm(s, key, true, secret_msg, sizeof(secret_msg), ct2, &ct2_len), CKR_OK);
    pt_len = sizeof(pt);
    CHECK_RV(gcm(s, key, false, ct1, ct1_len, pt, &pt_len), CKR_OK); /* version 1 verifies */
    CHECK(pt_len == sizeof(secret_msg) && memcmp(pt, secret_msg, pt_len) == 0);

    /* Tampered: the body, then the tag; no version verifies it. */
    for (CK_ULONG at = 0; at < ct1_len; at += ct1_len - 1) {
        unsigned char bad[128];
        memcpy(bad, ct1, ct1_len);
        bad[at] ^= 0x01;
        pt_len = sizeof(pt);
        CHECK_RV(gcm(s, key, false, bad, ct1_len, pt, &pt_len), CKR_ENCRYPTED_DATA_INVALID);
    }

    /* Disabled between the Init and the call: version 1's ciphertext is refused as any use
     * of a Disabled key is, and the session can start a decryption again. */
    unsigned char iv[12] = {7, 7, 7};
    CK_GCM_PARAMS p = {iv, sizeof(iv), 96, NULL, 0, 128};
    CK_MECHANISM mech = {CKM_AES_GCM, &p, sizeof(p)};
    CHECK_RV(p11->C_DecryptInit(s, &mech, key), CKR_OK);
    set_state_in_another_process("gcm-fallback", CMK_STATE_DISABLED);
    pt_len = sizeof(pt);
    CHECK_RV(p11->C_Decrypt(s, ct1, ct1_len, pt, &pt_len), CKR_KEY_FUNCTION_NOT_PERMITTED);
    pt_len = sizeof(pt);
    CHECK_RV(gcm(s, key, false, ct2, ct2_len, pt, &pt_len), CKR_KEY_FUNCTION_NOT_PERMITTED);
    /* The primary's own ciphertext needs no fallback: the Init's check stands for it, as
     * the backend's does for any operation begun before a change. */
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED), CKR_OK);
    CHECK_RV(p11->C_DecryptInit(s, &mech, key), CKR_OK);
    set_state_in_another_process("gcm-fallback", CMK_STATE_DISABLED);
    pt_len = sizeof(pt);
    CHECK_RV(p11->C_Decrypt(s, ct2, ct2_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == sizeof(secret_msg) && memcmp(pt, secret_msg, pt_len) == 0);

    /* Enabled again, everything decrypts as before. */
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED), CKR_OK);
    pt_len = sizeof(pt);
    CHECK_RV(gcm(s, key, false, ct1, ct1_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == sizeof(secret_msg) && memcmp(pt, secret_msg, pt_len) == 0);
    fixture_close(s);
}

/* A version whose material is gone from the backend: a change of flags reaches no version,
 * and a rotation that cannot read the primary's flags makes no version with defaults. */
static void test_flag_changes_and_rotations_fail_closed_when_material_is_missing(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, lone;
    CHECK_RV(make_aes(s, "holes", NULL, 0, &key), CKR_OK);
    CHECK_RV(make_aes(s, "lone", NULL, 0, &lone), CKR_OK);
    CHECK_RV(rotate_now(s, key), CKR_OK);
    CHECK_RV(rotate_now(s, key), CKR_OK);
    CHECK_RV(set_bool(s, key, CKA_ENCRYPT, CK_FALSE), CKR_OK);
    char id[40], lone_id[40], prefix[80];
    CK_ATTRIBUTE a = {CKA_CMK_KEY_ID, id, 36}, b = {CKA_CMK_KEY_ID, lone_id, 36};
    CHECK_RV(p11->C_GetAttributeValue(s, key, &a, 1), CKR_OK);
    CHECK_RV(p11->C_GetAttributeValue(s, lone, &b, 1), CKR_OK);
    id[36] = lone_id[36] = '\0';
    fixture_close(s);
    snprintf(prefix, sizeof(prefix), "cmkp11/%s/v1", id);
    CHECK(inspect_backend_destroy(prefix) == 1);
    snprintf(prefix, sizeof(prefix), "cmkp11/%s/v1", lone_id);
    CHECK(inspect_backend_destroy(prefix) == 1);

    s = fixture_open();
    /* Versions 3 and 2 are there, version 1 is not: neither of them changes. */
    CHECK_RV(set_bool(s, key, CKA_ENCRYPT, CK_TRUE), CKR_FUNCTION_FAILED);
    CK_BBOOL got = CK_TRUE;
    CHECK_RV(get_bool(s, key, CKA_ENCRYPT, &got), CKR_OK);
    CHECK(got == CK_FALSE);
    CK_ULONG v2 = 2;
    CK_ATTRIBUTE q[] = {{CKA_LABEL, "holes", 5}, {CKA_CMK_VERSION, &v2, sizeof(v2)}};
    CK_OBJECT_HANDLE second = 0;
    CHECK(find_count(s, q, 2, &second) == 1);
    got = CK_TRUE;
    CHECK_RV(get_bool(s, second, CKA_ENCRYPT, &got), CKR_OK);
    CHECK(got == CK_FALSE);
    /* The primary's material gone: no version 2 with default flags. */
    CHECK(rotate_now(s, lone) != CKR_OK);
    CK_ULONG primary = 0;
    CHECK_RV(get_ulong(s, lone, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
    CHECK(primary == 1);
    fixture_close(s);
    snprintf(prefix, sizeof(prefix), "cmkp11/%s/", lone_id);
    CHECK(inspect_backend_objects(prefix) == 0);
}

/* An extractable session AES key, wrapped under the CMK with AES key wrap (RFC 5649). */
static CK_OBJECT_HANDLE session_aes(CK_SESSION_HANDLE s)
{
    CK_ULONG len = 32;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
                        {CKA_TOKEN, &no, sizeof(no)},
                        {CKA_EXTRACTABLE, &yes, sizeof(yes)},
                        {CKA_SENSITIVE, &no, sizeof(no)},
                        {CKA_ENCRYPT, &yes, sizeof(yes)}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE h = 0;
    CHECK_RV(p11->C_GenerateKey(s, &gen, t, 5, &h), CKR_OK);
    return h;
}

static CK_RV unwrap_aes(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE cmk, const unsigned char *blob,
                        CK_ULONG len, CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &type, sizeof(type)},
                        {CKA_TOKEN, &no, sizeof(no)},
                        {CKA_EXTRACTABLE, &yes, sizeof(yes)},
                        {CKA_SENSITIVE, &no, sizeof(no)}};
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    *out = 0;
    return p11->C_UnwrapKey(s, &kw, cmk, (CK_BYTE_PTR)blob, len, t, 5, out);
}

static bool same_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE a, CK_OBJECT_HANDLE b)
{
    unsigned char va[32], vb[32];
    CK_ATTRIBUTE x = {CKA_VALUE, va, sizeof(va)}, y = {CKA_VALUE, vb, sizeof(vb)};
    return a && b && p11->C_GetAttributeValue(s, a, &x, 1) == CKR_OK &&
           p11->C_GetAttributeValue(s, b, &y, 1) == CKR_OK && x.ulValueLen == 32 &&
           y.ulValueLen == 32 && memcmp(va, vb, 32) == 0;
}

/* A key wrapped before a rotation unwraps with the key, as old ciphertext decrypts; a blob
 * no version wrapped is CKR_WRAPPED_KEY_INVALID. */
static void test_keys_wrapped_before_a_rotation_unwrap_with_the_key(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, other;
    CHECK_RV(make_aes(s, "wrapper", NULL, 0, &key), CKR_OK);
    CHECK_RV(make_aes(s, "wrapper-other", NULL, 0, &other), CKR_OK);
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_OBJECT_HANDLE dek[3];
    unsigned char blob[3][64];
    CK_ULONG blob_len[3];
    for (int v = 0; v < 3; v++) {
        if (v > 0) CHECK_RV(rotate_now(s, key), CKR_OK);
        dek[v] = session_aes(s);
        blob_len[v] = sizeof(blob[v]);
        CHECK_RV(p11->C_WrapKey(s, &kw, key, dek[v], blob[v], &blob_len[v]), CKR_OK);
    }
    for (int v = 0; v < 3; v++) {
        CK_OBJECT_HANDLE back = 0;
        CHECK_RV(unwrap_aes(s, key, blob[v], blob_len[v], &back), CKR_OK);
        CHECK(same_value(s, back, dek[v]));
    }
    /* A version object unwraps only what it wrapped. */
    CK_ULONG v1 = 1;
    CK_ATTRIBUTE q[] = {{CKA_LABEL, "wrapper", 7}, {CKA_CMK_VERSION, &v1, sizeof(v1)}};
    CK_OBJECT_HANDLE first = 0, back = 0;
    CHECK(find_count(s, q, 2, &first) == 1);
    CHECK_RV(unwrap_aes(s, first, blob[0], blob_len[0], &back), CKR_OK);
    CHECK(same_value(s, back, dek[0]));
    CHECK_RV(unwrap_aes(s, first, blob[2], blob_len[2], &back), CKR_WRAPPED_KEY_INVALID);
    /* The key's CKA_UNWRAP turned off holds for every version's blob. */
    CHECK_RV(set_bool(s, key, CKA_UNWRAP, CK_FALSE), CKR_OK);
    CHECK_RV(unwrap_aes(s, key, blob[0], blob_len[0], &back), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(set_bool(s, key, CKA_UNWRAP, CK_TRUE), CKR_OK);
    /* Another key's blob, or a changed one, unwraps under no version. */
    CHECK_RV(unwrap_aes(s, other, blob[0], blob_len[0], &back), CKR_WRAPPED_KEY_INVALID);
    blob[1][9] ^= 1;
    CHECK_RV(unwrap_aes(s, key, blob[1], blob_len[1], &back), CKR_WRAPPED_KEY_INVALID);
    /* A disabled key unwraps nothing, whatever version wrapped it. */
    CK_ULONG disabled = CMK_STATE_DISABLED;
    CK_ATTRIBUTE st = {CKA_CMK_KEY_STATE, &disabled, sizeof(disabled)};
    CHECK_RV(p11->C_SetAttributeValue(s, key, &st, 1), CKR_OK);
    CHECK_RV(unwrap_aes(s, key, blob[0], blob_len[0], &back), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
}

static void test_rotation_is_refused_where_the_clouds_refuse_it(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, pub, priv;
    CHECK_RV(make_ec(s, "ec", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(rotate_now(s, priv), CKR_ACTION_PROHIBITED);
    CK_ATTRIBUTE on = {CKA_CMK_ROTATION_ENABLED, &yes, 1};
    CHECK_RV(p11->C_SetAttributeValue(s, priv, &on, 1), CKR_ACTION_PROHIBITED);
    CHECK_RV(make_aes(s, "off", NULL, 0, &key), CKR_OK);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK_RV(rotate_now(s, key), CKR_ACTION_PROHIBITED);
    CHECK_RV(p11->C_DestroyObject(s, key), CKR_OK);
    CHECK_RV(rotate_now(s, key), CKR_ACTION_PROHIBITED);
    /* HMAC keys: neither on demand, nor automatically, at create or later */
    CK_MECHANISM hmac_gen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_ATTRIBUTE hmac[] = {{CKA_TOKEN, &yes, 1},
                           {CKA_VALUE_LEN, &len, sizeof(len)},
                           {CKA_SIGN, &yes, 1},
                           {CKA_VERIFY, &yes, 1},
                           {CKA_CMK_ROTATION_ENABLED, &yes, 1}};
    CK_OBJECT_HANDLE mac;
    CHECK_RV(p11->C_GenerateKey(s, &hmac_gen, hmac, 5, &mac), CKR_TEMPLATE_INCONSISTENT);
    CHECK_RV(p11->C_GenerateKey(s, &hmac_gen, hmac, 4, &mac), CKR_OK);
    CHECK_RV(rotate_now(s, mac), CKR_ACTION_PROHIBITED);
    CHECK_RV(p11->C_SetAttributeValue(s, mac, &on, 1), CKR_ACTION_PROHIBITED);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_version") == 3);
}

static void set_now_offset_days(long days)
{
    char now[32];
    snprintf(now, sizeof(now), "%ld", (long)time(NULL) + days * 86400L);
    setenv("CMKP11_TEST_NOW", now, 1);
}

static void test_due_key_rotates_exactly_once_across_four_processes(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CK_ATTRIBUTE weekly[] = {{CKA_CMK_ROTATION_ENABLED, &yes, 1},
                             {CKA_CMK_ROTATION_PERIOD, "7d", 2}};
    CHECK_RV(make_aes(s, "weekly", weekly, 2, &key), CKR_OK);
    fixture_close(s);
    set_now_offset_days(8);
    pid_t pids[4];
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            CK_SESSION_HANDLE c = fixture_open(); /* login checks for due rotations */
            fixture_close(c);
            _exit(harness_failed_checks ? 1 : 0);
        }
    }
    for (int i = 0; i < 4; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CHECK(inspect_store_count("SELECT primary_version FROM cmk") == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_version WHERE reason = 'automatic'") == 1);
    CHECK(inspect_backend_material() == 2);
    long now = (long)time(NULL) + 8 * 86400L;
    long next = inspect_store_count("SELECT next_rotation FROM cmk");
    CHECK(next >= now + 7 * 86400L - 5 && next <= now + 7 * 86400L + 60);
    unsetenv("CMKP11_TEST_NOW");
}

static void test_disabled_key_rotation_is_suspended_until_enabled(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CK_ATTRIBUTE weekly[] = {{CKA_CMK_ROTATION_ENABLED, &yes, 1},
                             {CKA_CMK_ROTATION_INTERVAL, &(CK_ULONG){604800}, sizeof(CK_ULONG)}};
    CHECK_RV(make_aes(s, "paused", weekly, 2, &key), CKR_OK);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    fixture_close(s);
    set_now_offset_days(30);
    s = fixture_open();
    CK_ULONG primary = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
    CHECK(primary == 1);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED), CKR_OK);
    fixture_close(s);
    s = fixture_open(); /* the first check after enabling rotates the overdue key */
    CHECK_RV(get_ulong(s, key, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
    CHECK(primary == 2);
    fixture_close(s);
    unsetenv("CMKP11_TEST_NOW");
}

static void test_changing_the_interval_keeps_the_anchor(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CK_ATTRIBUTE on[] = {{CKA_CMK_ROTATION_ENABLED, &yes, 1}, {CKA_CMK_ROTATION_PERIOD, "30d", 3}};
    CHECK_RV(make_aes(s, "anchor", on, 2, &key), CKR_OK);
    CK_ULONG created = 0, next = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_CREATION_DATE, &created), CKR_OK);
    CHECK_RV(set_text(s, key, CKA_CMK_ROTATION_PERIOD, "90d"), CKR_OK);
    CHECK_RV(get_ulong(s, key, CKA_CMK_NEXT_ROTATION_DATE, &next), CKR_OK);
    CHECK(next == created + 90 * 86400UL);
    /* On-demand rotation does not move the schedule. */
    CHECK_RV(rotate_now(s, key), CKR_OK);
    CHECK_RV(get_ulong(s, key, CKA_CMK_NEXT_ROTATION_DATE, &next), CKR_OK);
    CHECK(next == created + 90 * 86400UL);
    fixture_close(s);
}

static void crash_rotation_at(const char *point)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "crash-rotate", NULL, 0, &key), CKR_OK);
    fixture_close(s);
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE c = fixture_open();
        setenv("CMKP11_TEST_CRASH_AT", point, 1);
        rotate_now(c, key);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    s = fixture_open(); /* recovery at login */
    CK_ULONG primary = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
    CHECK(primary == 1);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    CHECK_RV(rotate_now(s, key), CKR_OK); /* not blocked by the dead claim */
    CHECK_RV(get_ulong(s, key, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
    CHECK(primary == 2);
    fixture_close(s);
    CHECK(inspect_backend_material() == 2);
}

static void test_crash_after_claim_leaves_one_consistent_primary(void)
{
    crash_rotation_at("rotate:after-claim");
}

static void test_crash_after_new_material_leaves_one_consistent_primary(void)
{
    crash_rotation_at("rotate:after-generate");
}

/* A server logs in once and keeps its sessions: due keys still rotate, at the next
 * C_OpenSession once the housekeeping interval has passed. */
static void test_logged_in_application_rotates_due_keys_at_session_open(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CK_ATTRIBUTE weekly[] = {{CKA_CMK_ROTATION_ENABLED, &yes, 1},
                             {CKA_CMK_ROTATION_PERIOD, "7d", 2}};
    CHECK_RV(make_aes(s, "served", weekly, 2, &key), CKR_OK);
    CK_SESSION_HANDLE other;
    set_now_offset_days(8);
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &other), CKR_OK);
    CK_ULONG primary = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
    CHECK(primary == 2);
    CHECK_RV(p11->C_CloseSession(other), CKR_OK);
    /* a minute later, nothing more is due: no second rotation */
    set_now_offset_days(9);
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &other), CKR_OK);
    CHECK_RV(get_ulong(s, key, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
    CHECK(primary == 2);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    fixture_close(s);
    unsetenv("CMKP11_TEST_NOW");
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_rotate_three_times_and_decrypt_every_version_in_a_new_process),
        T(test_envelope_refuses_tampered_truncated_and_foreign_ciphertext),
        T(test_version_objects_are_found_only_when_asked),
        T(test_usage_flags_hold_on_every_version_and_after_rotation),
        T(test_keys_wrapped_before_a_rotation_unwrap_with_the_key),
        T(test_flag_changes_and_rotations_fail_closed_when_material_is_missing),
        T(test_gcm_fallback_answers_a_disabled_key_and_a_tampered_ciphertext_precisely),
        T(test_rotation_is_refused_where_the_clouds_refuse_it),
        T(test_logged_in_application_rotates_due_keys_at_session_open),
        T(test_due_key_rotates_exactly_once_across_four_processes),
        T(test_disabled_key_rotation_is_suspended_until_enabled),
        T(test_changing_the_interval_keeps_the_anchor),
        T(test_crash_after_claim_leaves_one_consistent_primary),
        T(test_crash_after_new_material_leaves_one_consistent_primary),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
