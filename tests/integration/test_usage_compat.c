

/* test_usage_compat.c - a plain template's usage flags are honoured (issue 17 items 2, 3,
 * 10): what a client asks of the backend alone, it gets through cmkp11. Each test runs the
 * same calls on SoftHSMv2 alone (in a child process that loads the backend module itself,
 * on session objects of the backend token, so cmkp11 never sees them) and through cmkp11
 * (token keys, which become CMKs), and compares the return codes and the flags. The
 * [policy] usage_conflict values sign and reject, and requests in the KMS vocabulary,
 * keep the clouds' one-usage rule. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static const unsigned char p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};

/* What one side answered: the return codes of a fixed sequence of calls, flags, secrets. */
struct answers {
    CK_RV rv[24];
    CK_ULONG count[8];
    unsigned char secret[2][64];
    CK_ULONG secret_len[2];
};

typedef void (*scenario_fn)(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BBOOL token,
                            struct answers *out);

/* Runs body on SoftHSMv2 alone, in a child process (the backend module loaded twice in one
 * process would share its state with cmkp11's copy), with session objects. */
static void on_backend(scenario_fn body, struct answers *out)
{
    struct answers *shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    memset(shared, 0xff, sizeof(*shared));
    pid_t pid = fork();
    if (pid == 0) {
        CK_FUNCTION_LIST_PTR f = harness_load(getenv("CMK_BACKEND"));
        const char *want = getenv("CMK_BACKEND_TOKEN");
        if (f->C_Initialize(NULL) != CKR_OK) _exit(2);
        CK_SLOT_ID slots[16];
        CK_ULONG n = 16;
        if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) _exit(3);
        CK_SLOT_ID slot = (CK_SLOT_ID)-1;
        for (CK_ULONG i = 0; i < n; i++) {
            CK_TOKEN_INFO ti;
            if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
                !strncmp((char *)ti.label, want, strlen(want)) &&
                (strlen(want) == 32 || ti.label[strlen(want)] == ' '))
                slot = slots[i];
        }
        CK_SESSION_HANDLE s;
        if (slot == (CK_SLOT_ID)-1 ||
            f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK)
            _exit(4);
        const char *pin = getenv("CMK_PIN");
        if (f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)) != CKR_OK) _exit(5);
        body(f, s, CK_FALSE, shared);
        f->C_Finalize(NULL);
        _exit(harness_failed_checks ? 1 : 0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    memcpy(out, shared, sizeof(*out));
    munmap(shared, sizeof(*shared));
}

/* The same calls through cmkp11, on token keys (CMKs). */
static void through_cmkp11(scenario_fn body, struct answers *out)
{
    memset(out, 0xff, sizeof(*out));
    CK_SESSION_HANDLE s = fixture_open();
    body(p11, s, CK_TRUE, out);
    fixture_close(s);
}

/* Both sides answered every call alike, and (when all_ok) every call succeeded. */
static void same_answers(const struct answers *backend, const struct answers *cmk, int calls,
                         bool all_ok)
{
    for (int i = 0; i < calls; i++) {
        if (backend->rv[i] != cmk->rv[i] || (all_ok && cmk->rv[i] != CKR_OK))
            fprintf(stderr, "  call %d: backend 0x%lx, cmkp11 0x%lx\n", i, backend->rv[i],
                    cmk->rv[i]);
        CHECK(backend->rv[i] == cmk->rv[i]);
        if (all_ok) CHECK(cmk->rv[i] == CKR_OK);
    }
}

static CK_RV get_bool(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE t, CK_BBOOL *v)
{
    CK_ATTRIBUTE a = {t, v, 1};
    return f->C_GetAttributeValue(s, h, &a, 1);
}

/* Encrypts with pub and decrypts with priv under mech; CKR_OK when the text comes back. */
static CK_RV rsa_roundtrip(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM *mech,
                           CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv)
{
    unsigned char text[] = "a TLS 1.2 premaster secret, 48 bytes long......";
    unsigned char ct[512], pt[512];
    CK_ULONG ct_len = sizeof(ct), pt_len = sizeof(pt);
    CK_RV rv = f->C_EncryptInit(s, mech, pub);
    if (rv == CKR_OK) rv = f->C_Encrypt(s, text, sizeof(text), ct, &ct_len);
    if (rv != CKR_OK) return rv;
    if ((rv = f->C_DecryptInit(s, mech, priv)) != CKR_OK) return rv;
    if ((rv = f->C_Decrypt(s, ct, ct_len, pt, &pt_len)) != CKR_OK) return rv;
    return pt_len == sizeof(text) && !memcmp(pt, text, pt_len) ? CKR_OK : CKR_GENERAL_ERROR;
}

/* Signs 32 bytes with priv and verifies with pub. */
static CK_RV sign_and_verify(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM *mech,
                             CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
    unsigned char data[32] = {1, 2, 3}, sig[512];
    CK_ULONG sig_len = sizeof(sig);
    CK_RV rv = f->C_SignInit(s, mech, priv);
    if (rv == CKR_OK) rv = f->C_Sign(s, data, sizeof(data), sig, &sig_len);
    if (rv != CKR_OK) return rv;
    if ((rv = f->C_VerifyInit(s, mech, pub)) != CKR_OK) return rv;
    if ((rv = f->C_Verify(s, data, sizeof(data), sig, sig_len)) != CKR_OK) return rv;
    sig[0] ^= 1; /* a verification that cannot fail proves nothing */
    if ((rv = f->C_VerifyInit(s, mech, pub)) != CKR_OK) return rv;
    rv = f->C_Verify(s, data, sizeof(data), sig, sig_len);
    return rv == CKR_SIGNATURE_INVALID || rv == CKR_SIGNATURE_LEN_RANGE ? CKR_OK
                                                                        : CKR_GENERAL_ERROR;
}

/* pkcs11-tool's RSA pair: the public half encrypts and verifies, the private half decrypts
 * and signs (a TLS 1.2 server with RSA key exchange needs the decrypt). */
static CK_RV make_rsa_both(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BBOOL token,
                           const char *label, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 2048;
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &token, 1},          {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                         {CKA_ENCRYPT, &yes, 1},          {CKA_VERIFY, &yes, 1},
                         {CKA_LABEL, (void *)label, strlen(label)}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &token, 1},         {CKA_PRIVATE, &yes, 1},
                         {CKA_SENSITIVE, &yes, 1},       {CKA_DECRYPT, &yes, 1},
                         {CKA_SIGN, &yes, 1},            {CKA_LABEL, (void *)label, strlen(label)}};
    return f->C_GenerateKeyPair(s, &mech, pt, 5, vt, 6, pub, priv);
}

static void rsa_both_scenario(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BBOOL token,
                              struct answers *out)
{
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    out->rv[0] = make_rsa_both(f, s, token, "rsa-both", &pub, &priv);
    CK_MECHANISM pkcs1 = {CKM_RSA_PKCS, NULL, 0};
    CK_RSA_PKCS_OAEP_PARAMS oaep_params = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &oaep_params, sizeof(oaep_params)};
    CK_MECHANISM sha256_rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
    out->rv[1] = rsa_roundtrip(f, s, &pkcs1, pub, priv);
    out->rv[2] = rsa_roundtrip(f, s, &oaep, pub, priv);
    out->rv[3] = CKR_OK; /* SoftHSMv2 does OAEP with SHA-1 only */
    out->rv[4] = sign_and_verify(f, s, &sha256_rsa, priv, pub);
    /* The flags each half reports are the ones it was given. */
    CK_BBOOL v[4] = {0};
    out->rv[5] = get_bool(f, s, priv, CKA_DECRYPT, &v[0]);
    out->rv[6] = get_bool(f, s, priv, CKA_SIGN, &v[1]);
    out->rv[7] = get_bool(f, s, pub, CKA_ENCRYPT, &v[2]);
    out->rv[8] = get_bool(f, s, pub, CKA_VERIFY, &v[3]);
    out->count[0] = v[0] && v[1] && v[2] && v[3];
}

/* Item 2: pkcs11-tool's RSA pair (sign and decrypt) decrypts PKCS#1 v1.5 and OAEP and
 * signs, as on the backend; it read SIGN_VERIFY and refused C_DecryptInit before. */
static void test_rsa_pair_asking_sign_and_decrypt_does_both(void)
{
    struct answers backend, cmk;
    on_backend(rsa_both_scenario, &backend);
    through_cmkp11(rsa_both_scenario, &cmk);
    same_answers(&backend, &cmk, 9, true);
    CHECK(backend.count[0] == 1 && cmk.count[0] == 1);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE priv;
    CHECK(find_by_label(s, "rsa-both", CKO_PRIVATE_KEY, &priv) == 1);
    CK_ULONG usage = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == (CMK_USAGE_SIGN_VERIFY | CMK_USAGE_ALSO(CMK_USAGE_ENCRYPT_DECRYPT)));
    CHECK(usage == 0x102); /* the documented value (cmkp11.h, README) */
    /* Finding by the exact value finds both halves; the store holds it as read. */
    CK_ATTRIBUTE by_usage[] = {{CKA_CMK_KEY_USAGE, &usage, sizeof(usage)}};
    CHECK(find_count(s, by_usage, 1, NULL) == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE key_usage = 258") == 1);
    /* The audit names the usages the way cmkctl and the log do. */
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'CreateKey' AND "
                              "detail LIKE '%usage=SIGN_VERIFY+ENCRYPT_DECRYPT'") == 1);
    fixture_close(s);
}

/* Raw uncompressed point of an EC public key (CKA_EC_POINT is a DER OCTET STRING). */
static CK_ULONG ec_point(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub,
                         unsigned char out[65])
{
    unsigned char der[80];
    CK_ATTRIBUTE a = {CKA_EC_POINT, der, sizeof(der)};
    if (f->C_GetAttributeValue(s, pub, &a, 1) != CKR_OK || a.ulValueLen != 67 || der[0] != 0x04)
        return 0;
    memcpy(out, der + 2, 65);
    return 65;
}

/* ECDH: derives a 32-byte generic secret from priv and the peer's point, reads it out. */
static CK_RV ecdh(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
                  unsigned char *peer, CK_ULONG peer_len, unsigned char out[64], CK_ULONG *len)
{
    CK_ECDH1_DERIVE_PARAMS params = {CKD_NULL, 0, NULL, peer_len, peer};
    CK_MECHANISM mech = {CKM_ECDH1_DERIVE, &params, sizeof(params)};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_ULONG value_len = 32;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},   {CKA_KEY_TYPE, &type, sizeof(type)},
                        {CKA_VALUE_LEN, &value_len, sizeof(value_len)},
                        {CKA_TOKEN, &no, 1},              {CKA_SENSITIVE, &no, 1},
                        {CKA_EXTRACTABLE, &yes, 1}};
    CK_OBJECT_HANDLE key;
    CK_RV rv = f->C_DeriveKey(s, &mech, priv, t, 6, &key);
    if (rv != CKR_OK) return rv;
    CK_ATTRIBUTE v = {CKA_VALUE, out, 64};
    rv = f->C_GetAttributeValue(s, key, &v, 1);
    *len = v.ulValueLen;
    f->C_DestroyObject(s, key);
    return rv;
}

/* A session P-256 pair to agree with (the peer), extractable so its value can be read. */
static CK_RV make_peer(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *pub,
                       CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &no, 1}, {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &no, 1}, {CKA_DERIVE, &yes, 1}, {CKA_SENSITIVE, &no, 1},
                         {CKA_EXTRACTABLE, &yes, 1}};
    return f->C_GenerateKeyPair(s, &mech, pt, 2, vt, 4, pub, priv);
}

/* Both directions of ECDH between key (priv, pub) and a fresh peer: rv[base..base+3]; the
 * two secrets in out->secret. */
static void agree_both_ways(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub,
                            CK_OBJECT_HANDLE priv, struct answers *out, int base)
{
    CK_OBJECT_HANDLE peer_pub = 0, peer_priv = 0;
    unsigned char mine[65], theirs[65];
    out->rv[base] = make_peer(f, s, &peer_pub, &peer_priv);
    CK_ULONG ml = ec_point(f, s, pub, mine), tl = ec_point(f, s, peer_pub, theirs);
    out->rv[base + 1] = ml && tl ? CKR_OK : CKR_GENERAL_ERROR;
    out->rv[base + 2] = ecdh(f, s, priv, theirs, tl, out->secret[0], &out->secret_len[0]);
    out->rv[base + 3] = ecdh(f, s, peer_priv, mine, ml, out->secret[1], &out->secret_len[1]);
}

static void ec_derive_scenario(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BBOOL token,
                               struct answers *out)
{
    /* pkcs11-tool --usage-derive: the private key derives, nothing else asked. */
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &token, 1},
                         {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                         {CKA_LABEL, "ecdh", 4}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &token, 1}, {CKA_DERIVE, &yes, 1}, {CKA_LABEL, "ecdh", 4}};
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    out->rv[0] = f->C_GenerateKeyPair(s, &gen, pt, 3, vt, 3, &pub, &priv);
    agree_both_ways(f, s, pub, priv, out, 1);
    CK_BBOOL d = CK_FALSE;
    out->rv[5] = get_bool(f, s, priv, CKA_DERIVE, &d);
    out->count[0] = d;
    /* An EC key asked to sign and derive does both. */
    CK_ATTRIBUTE pt2[] = {{CKA_TOKEN, &token, 1},
                          {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                          {CKA_VERIFY, &yes, 1}, {CKA_LABEL, "ecdh-sign", 9}};
    CK_ATTRIBUTE vt2[] = {{CKA_TOKEN, &token, 1}, {CKA_DERIVE, &yes, 1}, {CKA_SIGN, &yes, 1},
                          {CKA_LABEL, "ecdh-sign", 9}};
    CK_OBJECT_HANDLE pub2 = 0, priv2 = 0;
    out->rv[6] = f->C_GenerateKeyPair(s, &gen, pt2, 4, vt2, 4, &pub2, &priv2);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    out->rv[7] = sign_and_verify(f, s, &ecdsa, priv2, pub2);
    struct answers second;
    agree_both_ways(f, s, pub2, priv2, &second, 0);
    for (int i = 0; i < 4; i++) out->rv[8 + i] = second.rv[i];
    out->count[1] = second.secret_len[0] == 32 && second.secret_len[1] == 32 &&
                    !memcmp(second.secret[0], second.secret[1], 32);
}

/* Item 3: an EC key made with CKA_DERIVE=TRUE agrees keys (CKM_ECDH1_DERIVE) and both
 * sides compute the same secret, as on the backend; its usage reads KEY_AGREEMENT. Before,
 * CKA_DERIVE was dropped and C_DeriveKey was CKR_KEY_FUNCTION_NOT_PERMITTED. */
static void test_ec_key_asking_derive_agrees_keys(void)
{
    struct answers backend, cmk;
    on_backend(ec_derive_scenario, &backend);
    through_cmkp11(ec_derive_scenario, &cmk);
    same_answers(&backend, &cmk, 12, true);
    CHECK(cmk.count[0] == 1 && backend.count[0] == 1);
    CHECK(cmk.secret_len[0] == 32 && cmk.secret_len[1] == 32);
    CHECK(!memcmp(cmk.secret[0], cmk.secret[1], 32));
    CHECK(cmk.count[1] == 1 && backend.count[1] == 1);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE priv, priv2;
    CHECK(find_by_label(s, "ecdh", CKO_PRIVATE_KEY, &priv) == 1);
    CHECK(find_by_label(s, "ecdh-sign", CKO_PRIVATE_KEY, &priv2) == 1);
    CK_ULONG usage = 0;
    /* The flags the template left out are the backend's defaults (SoftHSMv2 lets an EC
     * key sign unless told not to): the usage says what the flags made allow. */
    CK_BBOOL can_sign = CK_FALSE;
    CHECK_RV(get_bool(p11, s, priv, CKA_SIGN, &can_sign), CKR_OK);
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == (can_sign ? CMK_USAGE_SIGN_VERIFY | CMK_USAGE_ALSO(CMK_USAGE_KEY_AGREEMENT)
                             : CMK_USAGE_KEY_AGREEMENT));
    CHECK_RV(get_ulong(s, priv2, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == (CMK_USAGE_SIGN_VERIFY | CMK_USAGE_ALSO(CMK_USAGE_KEY_AGREEMENT)));
    /* A key told not to sign agrees keys only, and its usage and audit say so. */
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL token = CK_TRUE;
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &token, 1},
                         {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                         {CKA_VERIFY, &no, 1}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &token, 1}, {CKA_DERIVE, &yes, 1}, {CKA_SIGN, &no, 1},
                         {CKA_DECRYPT, &no, 1}, {CKA_UNWRAP, &no, 1}};
    CK_OBJECT_HANDLE pub3, priv3;
    CHECK_RV(p11->C_GenerateKeyPair(s, &gen, pt, 3, vt, 5, &pub3, &priv3), CKR_OK);
    CHECK_RV(get_ulong(s, priv3, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == CMK_USAGE_KEY_AGREEMENT);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE detail LIKE "
                              "'%usage=KEY_AGREEMENT'") == 1);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &ecdsa, priv3), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK(inspect_log_count("cannot sign: key usage is KEY_AGREEMENT") == 1);
    /* A disabled key agrees nothing: the CMK rules still apply to the new usage. */
    CHECK_RV(set_ulong(s, priv, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    unsigned char point[65] = {4}, secret[64];
    CK_ULONG len;
    CHECK_RV(ecdh(p11, s, priv, point, sizeof(point), secret, &len),
             CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
}

static CK_RV make_secret(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BBOOL token,
                         CK_MECHANISM_TYPE gen, const char *label, const CK_ATTRIBUTE *flags,
                         CK_ULONG nflags, CK_OBJECT_HANDLE *key)
{
    CK_MECHANISM mech = {gen, NULL, 0};
    CK_ULONG len = 32;
    CK_ATTRIBUTE t[16] = {{CKA_TOKEN, &token, 1},
                          {CKA_VALUE_LEN, &len, sizeof(len)},
                          {CKA_LABEL, (void *)label, strlen(label)}};
    for (CK_ULONG i = 0; i < nflags; i++) t[3 + i] = flags[i];
    return f->C_GenerateKey(s, &mech, t, 3 + nflags, key);
}

static CK_RV mac_and_check(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM_TYPE m,
                           CK_OBJECT_HANDLE key)
{
    CK_MECHANISM mech = {m, NULL, 0};
    return sign_and_verify(f, s, &mech, key, key);
}

static void secret_scenario(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BBOOL token,
                            struct answers *out)
{
    /* pkcs11-tool --keygen --key-type GENERIC:32: encrypt, decrypt, wrap, unwrap asked. */
    CK_ATTRIBUTE tool[] = {{CKA_ENCRYPT, &yes, 1}, {CKA_DECRYPT, &yes, 1},
                           {CKA_WRAP, &yes, 1},    {CKA_UNWRAP, &yes, 1}};
    CK_OBJECT_HANDLE generic = 0, hmac = 0, aes = 0;
    out->rv[0] = make_secret(f, s, token, CKM_GENERIC_SECRET_KEY_GEN, "generic", tool, 4,
                             &generic);
    /* An HMAC key as applications ask it. */
    CK_ATTRIBUTE mac[] = {{CKA_SIGN, &yes, 1}, {CKA_VERIFY, &yes, 1}};
    out->rv[1] = make_secret(f, s, token, CKM_GENERIC_SECRET_KEY_GEN, "hmac", mac, 2, &hmac);
    out->rv[2] = mac_and_check(f, s, CKM_SHA256_HMAC, hmac);
    /* AES asked to encrypt and to sign: AES-CMAC, and the encryption still works. */
    CK_ATTRIBUTE both[] = {{CKA_ENCRYPT, &yes, 1}, {CKA_DECRYPT, &yes, 1},
                           {CKA_SIGN, &yes, 1},    {CKA_VERIFY, &yes, 1}};
    out->rv[3] = make_secret(f, s, token, CKM_AES_KEY_GEN, "aes-cmac", both, 4, &aes);
    out->rv[4] = mac_and_check(f, s, CKM_AES_CMAC, aes);
    unsigned char iv[16] = {0}, text[32] = {7}, ct[64], pt[64];
    CK_ULONG ct_len = sizeof(ct), pt_len = sizeof(pt);
    CK_MECHANISM cbc = {CKM_AES_CBC, iv, sizeof(iv)};
    out->rv[5] = f->C_EncryptInit(s, &cbc, aes);
    out->rv[6] = f->C_Encrypt(s, text, sizeof(text), ct, &ct_len);
    out->rv[7] = f->C_DecryptInit(s, &cbc, aes);
    out->rv[8] = f->C_Decrypt(s, ct, ct_len, pt, &pt_len);
    out->count[0] = pt_len == sizeof(text) && !memcmp(pt, text, pt_len);
    /* The flags read back are the ones asked. */
    CK_BBOOL v[3] = {0};
    out->rv[9] = get_bool(f, s, aes, CKA_SIGN, &v[0]);
    out->rv[10] = get_bool(f, s, generic, CKA_ENCRYPT, &v[1]);
    out->rv[11] = get_bool(f, s, hmac, CKA_SIGN, &v[2]);
    out->count[1] = v[0] && v[1] && v[2];
}

/* Item 10: a generic secret from pkcs11-tool's template (CKR_TEMPLATE_INCONSISTENT before),
 * an HMAC key that MACs, an AES key asked to sign that does AES-CMAC (its CKA_SIGN was
 * refused before) and still encrypts: all as on the backend. */
static void test_secret_keys_keep_the_flags_asked(void)
{
    struct answers backend, cmk;
    on_backend(secret_scenario, &backend);
    through_cmkp11(secret_scenario, &cmk);
    same_answers(&backend, &cmk, 12, true);
    CHECK(cmk.count[0] == 1 && cmk.count[1] == 1 && backend.count[1] == 1);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE generic, aes;
    CHECK(find_by_label(s, "generic", CKO_SECRET_KEY, &generic) == 1);
    CHECK(find_by_label(s, "aes-cmac", CKO_SECRET_KEY, &aes) == 1);
    CK_ULONG usage = 0;
    CHECK_RV(get_ulong(s, generic, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    /* Its CKA_ENCRYPT reads TRUE as asked, but a generic secret encrypts nothing. */
    CHECK(usage == CMK_USAGE_GENERATE_VERIFY_MAC);
    CHECK_RV(get_ulong(s, aes, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == (CMK_USAGE_ENCRYPT_DECRYPT | CMK_USAGE_ALSO(CMK_USAGE_GENERATE_VERIFY_MAC)));
    fixture_close(s);
}

/* The nine usage flags of one object as a bit mask (bit i: flag i TRUE; a flag the class
 * lacks reads as not TRUE). */
static CK_ULONG flag_mask(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
    static const CK_ATTRIBUTE_TYPE types[] = {CKA_ENCRYPT, CKA_DECRYPT,     CKA_WRAP,
                                              CKA_UNWRAP,  CKA_SIGN,        CKA_VERIFY,
                                              CKA_DERIVE,  CKA_SIGN_RECOVER, CKA_VERIFY_RECOVER};
    CK_ULONG mask = 0;
    for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        CK_BBOOL v = CK_FALSE;
        if (get_bool(f, s, h, types[i], &v) == CKR_OK && v) mask |= 1UL << i;
    }
    return mask;
}

/* Keys made from templates that name no usage flag at all (p11tool --generate-*, many
 * test programs): the flags are whatever the backend defaults them to, and the keys do
 * what those defaults allow. */
static void defaults_scenario(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BBOOL token,
                              struct answers *out)
{
    CK_MECHANISM rsa_gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM ec_gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 2048;
    CK_ATTRIBUTE rpt[] = {{CKA_TOKEN, &token, 1}, {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                          {CKA_LABEL, "rsa-plain", 9}};
    CK_ATTRIBUTE ept[] = {{CKA_TOKEN, &token, 1},
                          {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                          {CKA_LABEL, "ec-plain", 8}};
    CK_ATTRIBUTE rvt[] = {{CKA_TOKEN, &token, 1}, {CKA_LABEL, "rsa-plain", 9}};
    CK_ATTRIBUTE evt[] = {{CKA_TOKEN, &token, 1}, {CKA_LABEL, "ec-plain", 8}};
    CK_OBJECT_HANDLE rpub = 0, rpriv = 0, epub = 0, epriv = 0, aes = 0;
    out->rv[0] = f->C_GenerateKeyPair(s, &rsa_gen, rpt, 3, rvt, 2, &rpub, &rpriv);
    out->rv[1] = f->C_GenerateKeyPair(s, &ec_gen, ept, 3, evt, 2, &epub, &epriv);
    out->rv[2] = make_secret(f, s, token, CKM_AES_KEY_GEN, "aes-plain", NULL, 0, &aes);
    out->count[0] = flag_mask(f, s, rpub);
    out->count[1] = flag_mask(f, s, rpriv);
    out->count[2] = flag_mask(f, s, epub);
    out->count[3] = flag_mask(f, s, epriv);
    out->count[4] = flag_mask(f, s, aes);
    /* What the defaults allow, used: RSA decryption and signing, ECDSA. */
    CK_MECHANISM pkcs1 = {CKM_RSA_PKCS, NULL, 0}, sha256_rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    out->rv[3] = rsa_roundtrip(f, s, &pkcs1, rpub, rpriv);
    out->rv[4] = sign_and_verify(f, s, &sha256_rsa, rpriv, rpub);
    out->rv[5] = sign_and_verify(f, s, &ecdsa, epriv, epub);
    out->rv[6] = mac_and_check(f, s, CKM_AES_CMAC, aes);
}

/* Item 10: the flags a plain template leaves out are the backend's defaults, read back
 * alike on both sides, and the key's usage records what they allow. Before, cmkp11 set
 * every flag the template left out to FALSE (an RSA key from p11tool could not decrypt). */
static void test_flags_a_template_leaves_out_are_the_backends_defaults(void)
{
    struct answers backend, cmk;
    on_backend(defaults_scenario, &backend);
    through_cmkp11(defaults_scenario, &cmk);
    same_answers(&backend, &cmk, 3, true);
    same_answers(&backend, &cmk, 7, false);
    for (int i = 0; i < 5; i++) {
        if (backend.count[i] != cmk.count[i])
            fprintf(stderr, "  object %d: backend flags 0x%lx, cmkp11 0x%lx\n", i,
                    backend.count[i], cmk.count[i]);
        CHECK(backend.count[i] == cmk.count[i]);
    }
    /* The usage is what the flags made allow, each key type's mechanisms only. */
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE rsa, ec, aes;
    CHECK(find_by_label(s, "rsa-plain", CKO_PRIVATE_KEY, &rsa) == 1);
    CHECK(find_by_label(s, "ec-plain", CKO_PRIVATE_KEY, &ec) == 1);
    CHECK(find_by_label(s, "aes-plain", CKO_SECRET_KEY, &aes) == 1);
    bool rsa_signs = cmk.count[1] & (1UL << 4), rsa_decrypts = cmk.count[1] & 0xf;
    bool ec_signs = cmk.count[3] & (1UL << 4), ec_derives = cmk.count[3] & (1UL << 6);
    bool aes_macs = cmk.count[4] & (3UL << 4);
    CK_ULONG usage = 0;
    CHECK_RV(get_ulong(s, rsa, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(CMK_USAGE_HAS(usage, CMK_USAGE_SIGN_VERIFY) == rsa_signs);
    CHECK(CMK_USAGE_HAS(usage, CMK_USAGE_ENCRYPT_DECRYPT) == rsa_decrypts);
    CHECK_RV(get_ulong(s, ec, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(CMK_USAGE_HAS(usage, CMK_USAGE_SIGN_VERIFY) == ec_signs);
    CHECK(CMK_USAGE_HAS(usage, CMK_USAGE_KEY_AGREEMENT) == ec_derives);
    CHECK(!CMK_USAGE_HAS(usage, CMK_USAGE_ENCRYPT_DECRYPT)); /* whatever CKA_DECRYPT says */
    CHECK_RV(get_ulong(s, aes, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(CMK_USAGE_PRIMARY(usage) == CMK_USAGE_ENCRYPT_DECRYPT);
    CHECK(CMK_USAGE_HAS(usage, CMK_USAGE_GENERATE_VERIFY_MAC) == aes_macs);
    /* The audit names the usage the key got, not the one the template asked. */
    char names[96];
    snprintf(names, sizeof(names), "%%usage=%s", rsa_signs && rsa_decrypts
                                                    ? "SIGN_VERIFY+ENCRYPT_DECRYPT"
                                                    : rsa_signs ? "SIGN_VERIFY" : "ENCRYPT_DECRYPT");
    char q[320];
    snprintf(q, sizeof(q), "SELECT count(*) FROM audit a JOIN cmk c ON c.key_id = a.key_id "
                           "WHERE c.key_spec = 'RSA_2048' AND a.detail LIKE '%s'", names);
    CHECK(inspect_store_count(q) == 1);
    fixture_close(s);
}

/* Every usage flag given explicitly, so the backend's own defaults play no part. */
#define FLAGS(enc, dec, sig, ver, der)                                                             \
    {CKA_ENCRYPT, (enc) ? &yes : &no, 1}, {CKA_DECRYPT, (dec) ? &yes : &no, 1},                    \
        {CKA_SIGN, (sig) ? &yes : &no, 1}, {CKA_VERIFY, (ver) ? &yes : &no, 1},                    \
        {CKA_DERIVE, (der) ? &yes : &no, 1}
#define PUB_FLAGS(enc, ver, der)                                                                   \
    {CKA_ENCRYPT, (enc) ? &yes : &no, 1}, {CKA_VERIFY, (ver) ? &yes : &no, 1},                     \
        {CKA_DERIVE, (der) ? &yes : &no, 1}
#define PRIV_FLAGS(dec, sig, der)                                                                  \
    {CKA_DECRYPT, (dec) ? &yes : &no, 1}, {CKA_SIGN, (sig) ? &yes : &no, 1},                       \
        {CKA_DERIVE, (der) ? &yes : &no, 1}

static void find_scenario(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BBOOL token,
                          struct answers *out)
{
    CK_OBJECT_HANDLE h, pub, priv;
    CK_ATTRIBUTE aes_enc[] = {FLAGS(1, 1, 0, 0, 0)}, aes_both[] = {FLAGS(1, 1, 1, 1, 0)};
    CK_ATTRIBUTE hmac[] = {FLAGS(0, 0, 1, 1, 0)};
    out->rv[0] = make_secret(f, s, token, CKM_AES_KEY_GEN, "f-aes", aes_enc, 5, &h);
    out->rv[1] = make_secret(f, s, token, CKM_AES_KEY_GEN, "f-aes-both", aes_both, 5, &h);
    out->rv[2] = make_secret(f, s, token, CKM_GENERIC_SECRET_KEY_GEN, "f-hmac", hmac, 5, &h);
    CK_MECHANISM rsa_gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 2048;
    CK_ATTRIBUTE rpt[] = {{CKA_TOKEN, &token, 1}, {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                          PUB_FLAGS(1, 1, 0)};
    CK_ATTRIBUTE rvt[] = {{CKA_TOKEN, &token, 1}, {CKA_SENSITIVE, &yes, 1}, PRIV_FLAGS(1, 1, 0)};
    out->rv[3] = f->C_GenerateKeyPair(s, &rsa_gen, rpt, 5, rvt, 5, &pub, &priv);
    CK_MECHANISM ec_gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE ept[] = {{CKA_TOKEN, &token, 1},
                          {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                          PUB_FLAGS(0, 1, 0)};
    CK_ATTRIBUTE evt[] = {{CKA_TOKEN, &token, 1}, {CKA_SENSITIVE, &yes, 1}, PRIV_FLAGS(0, 1, 0)};
    out->rv[4] = f->C_GenerateKeyPair(s, &ec_gen, ept, 5, evt, 5, &pub, &priv);
    CK_ATTRIBUTE dpt[] = {{CKA_TOKEN, &token, 1},
                          {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                          PUB_FLAGS(0, 0, 0)};
    CK_ATTRIBUTE dvt[] = {{CKA_TOKEN, &token, 1}, {CKA_SENSITIVE, &yes, 1}, PRIV_FLAGS(0, 0, 1)};
    out->rv[5] = f->C_GenerateKeyPair(s, &ec_gen, dpt, 5, dvt, 5, &pub, &priv);
    const CK_ATTRIBUTE_TYPE by[] = {CKA_SIGN, CKA_ENCRYPT, CKA_DECRYPT, CKA_VERIFY, CKA_DERIVE};
    for (int i = 0; i < 5; i++) {
        CK_ATTRIBUTE q[] = {{by[i], &yes, 1}, {CKA_TOKEN, &token, 1}};
        CK_OBJECT_HANDLE found[64];
        CK_ULONG n = 0;
        out->rv[6 + 3 * i] = f->C_FindObjectsInit(s, q, 2);
        out->rv[7 + 3 * i] = f->C_FindObjects(s, found, 64, &n);
        out->rv[8 + 3 * i] = f->C_FindObjectsFinal(s);
        out->count[i] = n;
    }
}

/* Item 10: finds by CKA_SIGN, CKA_ENCRYPT, CKA_DECRYPT, CKA_VERIFY, CKA_DERIVE = TRUE count
 * the same objects as on the backend: the flags each object reports are those it was given. */
static void test_finds_by_usage_flag_count_as_on_the_backend(void)
{
    struct answers backend, cmk;
    on_backend(find_scenario, &backend);
    through_cmkp11(find_scenario, &cmk);
    same_answers(&backend, &cmk, 21, true);
    for (int i = 0; i < 5; i++) {
        if (backend.count[i] != cmk.count[i])
            fprintf(stderr, "  find %d: backend %lu, cmkp11 %lu\n", i, backend.count[i],
                    cmk.count[i]);
        CHECK(backend.count[i] == cmk.count[i]);
    }
    /* sign: AES both, HMAC, RSA priv, EC priv; derive: the ECDH private key. */
    CHECK(cmk.count[0] == 4 && cmk.count[4] == 1);
}

/* Item 10: an EC private key imported in clear (C_CreateObject) with CKA_DERIVE=TRUE
 * becomes a CMK that derives the secret its peer computes. */
static void test_ec_key_imported_with_derive_derives(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    /* The material: a session pair of the backend, extractable, read out. */
    CK_OBJECT_HANDLE spub, spriv, peer_pub, peer_priv;
    CHECK_RV(make_peer(p11, s, &spub, &spriv), CKR_OK);
    unsigned char value[66], mine[65], theirs[65];
    CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value)};
    CHECK_RV(p11->C_GetAttributeValue(s, spriv, &v, 1), CKR_OK);
    CHECK(ec_point(p11, s, spub, mine) == 65);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE type = CKK_EC;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &type, sizeof(type)},
                        {CKA_TOKEN, &yes, 1},
                        {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                        {CKA_VALUE, value, v.ulValueLen},
                        {CKA_DERIVE, &yes, 1},
                        {CKA_LABEL, "imported-ecdh", 13}};
    CK_OBJECT_HANDLE imported;
    CHECK_RV(p11->C_CreateObject(s, t, 7, &imported), CKR_OK);
    CK_ULONG usage = 0, origin = 0;
    CHECK_RV(get_ulong(s, imported, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(CMK_USAGE_HAS(usage, CMK_USAGE_KEY_AGREEMENT));
    CHECK_RV(get_ulong(s, imported, CKA_CMK_ORIGIN, &origin), CKR_OK);
    CHECK(origin == CMK_ORIGIN_EXTERNAL);
    CHECK_RV(make_peer(p11, s, &peer_pub, &peer_priv), CKR_OK);
    CHECK(ec_point(p11, s, peer_pub, theirs) == 65);
    unsigned char a[64], b[64];
    CK_ULONG al = 0, bl = 0;
    CHECK_RV(ecdh(p11, s, imported, theirs, 65, a, &al), CKR_OK);
    CHECK_RV(ecdh(p11, s, peer_priv, mine, 65, b, &bl), CKR_OK);
    CHECK(al == 32 && bl == 32 && !memcmp(a, b, 32));
    fixture_close(s);
}

/* Item 10: an EC key copied to the token (C_CopyObject, as Java does) or unwrapped there
 * (C_UnwrapKey) with CKA_DERIVE=TRUE derives the secret its peer computes. */
static void test_ec_key_copied_or_unwrapped_with_derive_derives(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE peer_pub, peer_priv;
    CHECK_RV(make_peer(p11, s, &peer_pub, &peer_priv), CKR_OK);
    unsigned char theirs[65];
    CHECK(ec_point(p11, s, peer_pub, theirs) == 65);
    /* A session pair, not extractable (a copy of an extractable key cannot be a CMK).
     * CKA_SENSITIVE is left to the backend's default: a token copy of a source made with
     * CKA_SENSITIVE=TRUE is refused today (CKR_ATTRIBUTE_READ_ONLY from the backend during
     * the copy; not a usage matter, left to issue 17's item 7). */
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &no, 1}, {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &no, 1}, {CKA_DERIVE, &yes, 1}, {CKA_SIGN, &yes, 1},
                         {CKA_EXTRACTABLE, &no, 1}};
    CK_OBJECT_HANDLE spub, spriv, copy;
    CHECK_RV(p11->C_GenerateKeyPair(s, &gen, pt, 2, vt, 4, &spub, &spriv), CKR_OK);
    unsigned char mine[65], a[64], b[64];
    CHECK(ec_point(p11, s, spub, mine) == 65);
    CK_ATTRIBUTE to_token[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, "copied-ecdh", 11}};
    CHECK_RV(p11->C_CopyObject(s, spriv, to_token, 2, &copy), CKR_OK);
    CK_ULONG usage = 0, al = 0, bl = 0;
    CHECK_RV(get_ulong(s, copy, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(CMK_USAGE_HAS(usage, CMK_USAGE_KEY_AGREEMENT));
    CHECK_RV(ecdh(p11, s, copy, theirs, 65, a, &al), CKR_OK);
    CHECK_RV(ecdh(p11, s, peer_priv, mine, 65, b, &bl), CKR_OK);
    CHECK(al == 32 && bl == 32 && !memcmp(a, b, 32));

    /* Unwrapped: a CMK wraps an extractable session key, which comes back as a token key. */
    CK_ATTRIBUTE wrap_flags[] = {{CKA_WRAP, &yes, 1}, {CKA_UNWRAP, &yes, 1}};
    CK_OBJECT_HANDLE kek, xpub, xpriv, unwrapped;
    CHECK_RV(make_secret(p11, s, CK_TRUE, CKM_AES_KEY_GEN, "kek", wrap_flags, 2, &kek), CKR_OK);
    CHECK_RV(make_peer(p11, s, &xpub, &xpriv), CKR_OK);
    CHECK(ec_point(p11, s, xpub, mine) == 65);
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    unsigned char wrapped[512];
    CK_ULONG wrapped_len = sizeof(wrapped);
    CHECK_RV(p11->C_WrapKey(s, &kw, kek, xpriv, wrapped, &wrapped_len), CKR_OK);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE type = CKK_EC;
    CK_ATTRIBUTE ut[] = {{CKA_CLASS, &cls, sizeof(cls)},      {CKA_KEY_TYPE, &type, sizeof(type)},
                         {CKA_TOKEN, &yes, 1},                {CKA_SENSITIVE, &yes, 1},
                         {CKA_EXTRACTABLE, &no, 1},           {CKA_DERIVE, &yes, 1},
                         {CKA_LABEL, "unwrapped-ecdh", 14}};
    CHECK_RV(p11->C_UnwrapKey(s, &kw, kek, wrapped, wrapped_len, ut, 7, &unwrapped), CKR_OK);
    CHECK_RV(ecdh(p11, s, unwrapped, theirs, 65, a, &al), CKR_OK);
    CHECK_RV(ecdh(p11, s, peer_priv, mine, 65, b, &bl), CKR_OK);
    CHECK(al == 32 && bl == 32 && !memcmp(a, b, 32));
    fixture_close(s);
}

/* usage_conflict = sign and reject keep the one-usage rule for plain templates, as before:
 * sign narrows pkcs11-tool's RSA pair to SIGN_VERIFY (no decrypt) and refuses an AES key
 * asked to sign and a generic secret asked to encrypt; reject refuses the RSA pair. */
static void test_policy_sign_and_reject_keep_one_usage(void)
{
    fixture_append_policy("usage_conflict = sign");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv, key;
    CHECK_RV(make_rsa_both(p11, s, CK_TRUE, "narrowed", &pub, &priv), CKR_OK);
    CK_ULONG usage = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == CMK_USAGE_SIGN_VERIFY);
    CK_MECHANISM pkcs1 = {CKM_RSA_PKCS, NULL, 0};
    CHECK_RV(p11->C_DecryptInit(s, &pkcs1, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(p11->C_EncryptInit(s, &pkcs1, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_ATTRIBUTE aes_sign[] = {{CKA_SIGN, &yes, 1}};
    CHECK_RV(make_secret(p11, s, CK_TRUE, CKM_AES_KEY_GEN, "aes-sign", aes_sign, 1, &key),
             CKR_TEMPLATE_INCONSISTENT);
    CK_ATTRIBUTE crypt[] = {{CKA_ENCRYPT, &yes, 1}};
    CHECK_RV(make_secret(p11, s, CK_TRUE, CKM_GENERIC_SECRET_KEY_GEN, "gen-enc", crypt, 1, &key),
             CKR_TEMPLATE_INCONSISTENT);
    /* An EC key asked to derive is SIGN_VERIFY, its CKA_DERIVE dropped. */
    CK_ATTRIBUTE derive[] = {{CKA_DERIVE, &yes, 1}};
    CHECK_RV(make_ec(s, "ec-derive", derive, 1, &pub, &priv), CKR_OK);
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == CMK_USAGE_SIGN_VERIFY);
    fixture_close(s);
    CHECK(inspect_log_count("so the key is made SIGN_VERIFY with encrypt/decrypt disabled") == 1);
    CHECK(inspect_log_count("CKA_SIGN/CKA_VERIFY may not be TRUE") == 1);
    CHECK(inspect_log_count("CKA_ENCRYPT/CKA_DECRYPT may not be TRUE") == 1);

    fixture_append_policy("usage_conflict = reject");
    s = fixture_open();
    CHECK_RV(make_rsa_both(p11, s, CK_TRUE, "refused", &pub, &priv), CKR_TEMPLATE_INCONSISTENT);
    fixture_close(s);
    CHECK(inspect_log_count("usage_conflict = reject refuses it") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 2);
}

/* A request in the KMS vocabulary keeps the clouds' rules under the default (honour): a
 * vendor attribute makes pkcs11-tool's RSA pair SIGN_VERIFY; CKA_CMK_KEY_USAGE
 * KEY_AGREEMENT is an EC key's only, agrees but does not sign, and contradicts CKA_SIGN. */
static void test_kms_vocabulary_keeps_one_usage(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_MECHANISM rsa_gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 2048;
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, 1}, {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                         {CKA_ENCRYPT, &yes, 1}, {CKA_VERIFY, &yes, 1}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &yes, 1}, {CKA_DECRYPT, &yes, 1}, {CKA_SIGN, &yes, 1},
                         {CKA_CMK_DESCRIPTION, "kms", 3}};
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(p11->C_GenerateKeyPair(s, &rsa_gen, pt, 4, vt, 4, &pub, &priv), CKR_OK);
    CK_ULONG usage = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == CMK_USAGE_SIGN_VERIFY);

    CK_ULONG agree = CMK_USAGE_KEY_AGREEMENT;
    CK_ATTRIBUTE ka[] = {{CKA_CMK_KEY_USAGE, &agree, sizeof(agree)}};
    CHECK_RV(make_ec(s, "ka", ka, 1, &pub, &priv), CKR_OK);
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == CMK_USAGE_KEY_AGREEMENT);
    struct answers out;
    agree_both_ways(p11, s, pub, priv, &out, 0);
    for (int i = 0; i < 4; i++) CHECK_RV(out.rv[i], CKR_OK);
    CHECK(out.secret_len[0] == 32 && !memcmp(out.secret[0], out.secret[1], 32));
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &ecdsa, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);

    CK_ATTRIBUTE ka_sign[] = {{CKA_CMK_KEY_USAGE, &agree, sizeof(agree)}, {CKA_SIGN, &yes, 1}};
    CHECK_RV(make_ec(s, "ka-sign", ka_sign, 2, &pub, &priv), CKR_TEMPLATE_INCONSISTENT);
    CHECK(inspect_log_count("KEY_AGREEMENT contradicts") == 1);
    CK_ATTRIBUTE rvt[] = {{CKA_TOKEN, &yes, 1}, {CKA_CMK_KEY_USAGE, &agree, sizeof(agree)}};
    CHECK_RV(p11->C_GenerateKeyPair(s, &rsa_gen, pt, 2, rvt, 2, &pub, &priv),
             CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK(inspect_log_count("CKA_CMK_KEY_USAGE 4 is not allowed for key spec RSA_2048") == 1);
    fixture_close(s);
}

/* The policy value is checked: a wrong one names the key and the values it takes. */
static void test_usage_conflict_value_is_checked(void)
{
    fixture_append_policy("usage_conflict = both");
    char out[2048];
    CHECK_RV(fixture_init_capturing(out, sizeof(out)), CKR_GENERAL_ERROR);
    CHECK(strstr(out, "usage_conflict") && strstr(out, "must be 'honour', 'sign' or 'reject'"));
    fixture_append_policy("usage_conflict = honour");
    CHECK_RV(fixture_init_capturing(out, sizeof(out)), CKR_OK);
}

#define T(name) {#name, name}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
        T(test_rsa_pair_asking_sign_and_decrypt_does_both),
        T(test_ec_key_asking_derive_agrees_keys),
        T(test_secret_keys_keep_the_flags_asked),
        T(test_flags_a_template_leaves_out_are_the_backends_defaults),
        T(test_finds_by_usage_flag_count_as_on_the_backend),
        T(test_ec_key_imported_with_derive_derives),
        T(test_ec_key_copied_or_unwrapped_with_derive_derives),
        T(test_policy_sign_and_reject_keep_one_usage),
        T(test_kms_vocabulary_keeps_one_usage),
        T(test_usage_conflict_value_is_checked),
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
