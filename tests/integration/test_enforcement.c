/* test_enforcement.c - the state/operation matrix: every entry point that uses a key
 * checks the CMK's state and usage before the backend sees the call. */
#include "fixture.h"
#include "inspect.h"

struct keys {
    CK_OBJECT_HANDLE aes, ec_priv, ec_pub, rsa_priv, rsa_pub;
    CK_OBJECT_HANDLE plain;         /* a session AES key, extractable: what wrap wraps */
    unsigned char gcm[64];          /* made while Enabled, for decrypt */
    CK_ULONG gcm_len;
    unsigned char sig[128];         /* ECDSA signature made while Enabled, for verify */
    CK_ULONG sig_len;
    unsigned char wrapped[64];      /* plain wrapped under aes while Enabled, for unwrap */
    CK_ULONG wrapped_len;
};

static unsigned char iv[12] = {7};
static unsigned char digest[32] = {1, 2, 3};
static unsigned char msg[16] = "sixteen bytes!!";
static CK_GCM_PARAMS gcm_params = {iv, sizeof(iv), 96, NULL, 0, 128};

static CK_RV op_encrypt(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_AES_GCM, &gcm_params, sizeof(gcm_params)};
    k->gcm_len = sizeof(k->gcm);
    CK_RV rv = p11->C_EncryptInit(s, &m, k->aes);
    if (rv == CKR_OK) rv = p11->C_Encrypt(s, msg, sizeof(msg), k->gcm, &k->gcm_len);
    return rv;
}

static CK_RV op_decrypt(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_AES_GCM, &gcm_params, sizeof(gcm_params)};
    unsigned char out[64];
    CK_ULONG out_len = sizeof(out);
    CK_RV rv = p11->C_DecryptInit(s, &m, k->aes);
    if (rv == CKR_OK) rv = p11->C_Decrypt(s, k->gcm, k->gcm_len, out, &out_len);
    return rv;
}

static CK_RV op_sign(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    k->sig_len = sizeof(k->sig);
    CK_RV rv = p11->C_SignInit(s, &m, k->ec_priv);
    if (rv == CKR_OK) rv = p11->C_Sign(s, digest, sizeof(digest), k->sig, &k->sig_len);
    return rv;
}

static CK_RV op_verify(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_RV rv = p11->C_VerifyInit(s, &m, k->ec_pub);
    if (rv == CKR_OK) rv = p11->C_Verify(s, digest, sizeof(digest), k->sig, k->sig_len);
    return rv;
}

/* SoftHSMv2 has no sign/verify-recover: while Enabled the backend's own answer comes
 * back, while not, ours comes first. */
static CK_RV op_sign_recover(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
    return p11->C_SignRecoverInit(s, &m, k->rsa_priv);
}

static CK_RV op_verify_recover(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
    return p11->C_VerifyRecoverInit(s, &m, k->rsa_pub);
}

static CK_RV op_wrap(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    k->wrapped_len = sizeof(k->wrapped);
    return p11->C_WrapKey(s, &m, k->aes, k->plain, k->wrapped, &k->wrapped_len);
}

static CK_RV op_unwrap(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &type, sizeof(type)},
                        {CKA_TOKEN, &no, sizeof(no)}};
    CK_OBJECT_HANDLE out = 0;
    CK_RV rv = p11->C_UnwrapKey(s, &m, k->aes, k->wrapped, k->wrapped_len, t, 3, &out);
    if (rv == CKR_OK) p11->C_DestroyObject(s, out);
    return rv;
}

/* Exporting a CMK's material in any form is refused whatever its state. */
static CK_RV op_wrap_the_cmk(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    unsigned char out[64];
    CK_ULONG out_len = sizeof(out);
    return p11->C_WrapKey(s, &m, k->plain, k->aes, out, &out_len);
}

static CK_RV op_digest_key(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_SHA256, NULL, 0};
    unsigned char out[32];
    CK_ULONG out_len = sizeof(out);
    CK_RV rv = p11->C_DigestInit(s, &m);
    if (rv != CKR_OK) return rv;
    rv = p11->C_DigestKey(s, k->aes);
    p11->C_DigestFinal(s, out, &out_len); /* ends the digest either way */
    return rv;
}

static CK_RV op_derive(CK_SESSION_HANDLE s, struct keys *k)
{
    unsigned char point[65] = {4};
    CK_ECDH1_DERIVE_PARAMS p = {CKD_NULL, 0, NULL, sizeof(point), point};
    CK_MECHANISM m = {CKM_ECDH1_DERIVE, &p, sizeof(p)};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &type, sizeof(type)}};
    CK_OBJECT_HANDLE out;
    return p11->C_DeriveKey(s, &m, k->ec_priv, t, 2, &out);
}

/* Against the key's usage: an AES (ENCRYPT_DECRYPT) key cannot MAC, an RSA
 * SIGN_VERIFY key cannot encrypt. */
static CK_RV op_mac_with_aes(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_AES_CMAC, NULL, 0};
    return p11->C_SignInit(s, &m, k->aes);
}

static CK_RV op_encrypt_with_signing_rsa(CK_SESSION_HANDLE s, struct keys *k)
{
    CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
    return p11->C_EncryptInit(s, &m, k->rsa_pub);
}

#define NP CKR_KEY_FUNCTION_NOT_PERMITTED
static const struct {
    const char *name;
    CK_RV (*run)(CK_SESSION_HANDLE, struct keys *);
    CK_RV enabled; /* what an Enabled key gets (CKR_OK, or the backend's own refusal) */
} ops[] = {
    {"encrypt", op_encrypt, CKR_OK},
    {"decrypt", op_decrypt, CKR_OK},
    {"sign", op_sign, CKR_OK},
    {"verify", op_verify, CKR_OK},
    {"sign-recover", op_sign_recover, CKR_FUNCTION_NOT_SUPPORTED},
    {"verify-recover", op_verify_recover, CKR_FUNCTION_NOT_SUPPORTED},
    {"wrap with the CMK", op_wrap, CKR_OK},
    {"unwrap with the CMK", op_unwrap, CKR_OK},
    {"wrap the CMK", op_wrap_the_cmk, CKR_KEY_UNEXTRACTABLE},
    {"digest the CMK", op_digest_key, NP},
    {"derive from the CMK", op_derive, NP},
    {"MAC with an encryption key", op_mac_with_aes, NP},
    {"encrypt with a signing key", op_encrypt_with_signing_rsa, NP},
};

static void make_keys(CK_SESSION_HANDLE s, struct keys *k)
{
    memset(k, 0, sizeof(*k));
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    /* One usage each, asked explicitly: the flags a template leaves out are the backend's
     * defaults, which let SoftHSMv2's keys do nearly everything. */
    CK_ATTRIBUTE crypt_only[] = {{CKA_SIGN, &no, 1}, {CKA_VERIFY, &no, 1}};
    CHECK_RV(make_aes(s, "matrix-aes", crypt_only, 2, &k->aes), CKR_OK);
    CHECK_RV(make_ec(s, "matrix-ec", NULL, 0, &k->ec_pub, &k->ec_priv), CKR_OK);
    CK_ULONG bits = 2048;
    CK_BYTE e[] = {1, 0, 1};
    CK_ATTRIBUTE pub[] = {{CKA_TOKEN, &yes, 1}, {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                          {CKA_PUBLIC_EXPONENT, e, sizeof(e)}, {CKA_VERIFY, &yes, 1},
                          {CKA_ENCRYPT, &no, 1}, {CKA_WRAP, &no, 1},
                          {CKA_LABEL, "matrix-rsa", 10}};
    CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, 1}, {CKA_SIGN, &yes, 1}, {CKA_DECRYPT, &no, 1},
                           {CKA_UNWRAP, &no, 1}, {CKA_LABEL, "matrix-rsa", 10}};
    CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CHECK_RV(p11->C_GenerateKeyPair(s, &gen, pub, 7, priv, 5, &k->rsa_pub, &k->rsa_priv), CKR_OK);
    CK_ULONG len = 16;
    CK_ATTRIBUTE plain[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_EXTRACTABLE, &yes, 1}};
    CK_MECHANISM aes_gen = {CKM_AES_KEY_GEN, NULL, 0};
    CHECK_RV(p11->C_GenerateKey(s, &aes_gen, plain, 2, &k->plain), CKR_OK);
}

static void set_state(CK_SESSION_HANDLE s, struct keys *k, CK_ULONG state)
{
    CHECK_RV(set_ulong(s, k->aes, CKA_CMK_KEY_STATE, state), CKR_OK);
    CHECK_RV(set_ulong(s, k->ec_priv, CKA_CMK_KEY_STATE, state), CKR_OK);
    CHECK_RV(set_ulong(s, k->rsa_priv, CKA_CMK_KEY_STATE, state), CKR_OK);
}

static void run_matrix(CK_SESSION_HANDLE s, struct keys *k, const char *state, bool enabled)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        CK_RV want = enabled || ops[i].enabled == CKR_KEY_UNEXTRACTABLE ? ops[i].enabled : NP;
        CK_RV got = ops[i].run(s, k);
        if (got != want) {
            fprintf(stderr, "  %s while %s: 0x%lx, expected 0x%lx\n", ops[i].name, state, got,
                    want);
            harness_failed_checks++;
        }
    }
}

static void test_every_use_follows_the_state_and_usage_matrix(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    struct keys k;
    make_keys(s, &k);
    run_matrix(s, &k, "Enabled", true); /* also makes the ciphertext, signature, blob */
    set_state(s, &k, CMK_STATE_DISABLED);
    run_matrix(s, &k, "Disabled", false);
    set_state(s, &k, CMK_STATE_PENDING_DELETION);
    run_matrix(s, &k, "PendingDeletion", false);
    set_state(s, &k, CMK_STATE_DISABLED); /* cancel */
    set_state(s, &k, CMK_STATE_ENABLED);
    run_matrix(s, &k, "Enabled again", true);
    fixture_close(s);
    /* every refusal was logged with the key and the rule */
    CHECK(inspect_log_count("cannot encrypt: key state is Disabled") >= 1);
    CHECK(inspect_log_count("cannot sign: key state is PendingDeletion") >= 1);
    CHECK(inspect_log_count("cannot sign: key usage is ENCRYPT_DECRYPT") >= 1);
}

/* What a state move may not do: the moves the clouds refuse are refused, and the
 * refused move changes nothing. */
static void test_illegal_state_moves_are_refused_and_change_nothing(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "mover", NULL, 0, &key), CKR_OK);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_PENDING_IMPORT), CKR_ACTION_PROHIBITED);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_CREATING), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, 99), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_PENDING_DELETION), CKR_OK);
    /* pending deletion: only cancelling (-> Disabled) is allowed */
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED), CKR_ACTION_PROHIBITED);
    CHECK_RV(set_text(s, key, CKA_CMK_DESCRIPTION, "late"), CKR_ACTION_PROHIBITED);
    CHECK_RV(p11->C_DestroyObject(s, key), CKR_OBJECT_HANDLE_INVALID); /* destroying twice */
    CK_ULONG state = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_KEY_STATE, &state), CKR_OK);
    CHECK(state == CMK_STATE_PENDING_DELETION);
    char description[64];
    CHECK_RV(get_text(s, key, CKA_CMK_DESCRIPTION, description, sizeof(description)), CKR_OK);
    CHECK(description[0] == '\0');
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK_RV(get_ulong(s, key, CKA_CMK_KEY_STATE, &state), CKR_OK);
    CHECK(state == CMK_STATE_DISABLED);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE key_id IS NOT NULL AND action "
                              "IN ('ScheduleKeyDeletion', 'CancelKeyDeletion')") == 2);
}

/* Every change is audited with what it was and what it became. */
static void test_audit_rows_name_old_and_new_values(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "audited", NULL, 0, &key), CKR_OK);
    CHECK_RV(set_text(s, key, CKA_CMK_DESCRIPTION, "first words"), CKR_OK);
    CHECK_RV(set_text(s, key, CKA_CMK_DESCRIPTION, "second words"), CKR_OK);
    CHECK_RV(set_text(s, key, CKA_CMK_TAGS, "env=prod\nteam=pay"), CKR_OK);
    CHECK_RV(set_text(s, key, CKA_LABEL, "renamed"), CKR_OK);
    CHECK_RV(set_text(s, key, CKA_CMK_ALIAS, "realiased"), CKR_OK);
    unsigned char id[] = {0xca, 0xfe};
    CK_ATTRIBUTE a = {CKA_ID, id, sizeof(id)};
    CHECK_RV(p11->C_SetAttributeValue(s, key, &a, 1), CKR_OK);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'UpdateKeyAttributes' "
                              "AND detail = 'description: ''first words'' -> ''second words''; '") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE detail = "
                              "'tags replaced by: env=prod team=pay; '") == 1);
    /* A label is client bytes: the audit shows it in hex ("audited" -> "renamed"). */
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE detail = "
                              "'CKA_LABEL: 61756469746564 -> 72656e616d6564; '") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE detail = "
                              "'aliases replaced by ''realiased''; '") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE detail LIKE 'CKA_ID: % -> cafe; '") == 1);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_every_use_follows_the_state_and_usage_matrix),
        T(test_illegal_state_moves_are_refused_and_change_nothing),
        T(test_audit_rows_name_old_and_new_values),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
