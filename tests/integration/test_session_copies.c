/* test_session_copies.c - C_CopyObject of a CMK into a session object (issue 17 item 7),
 * as OpenSSL's pkcs11-provider caches keys: the copy is the key under a handle of the
 * session's own. It signs and encrypts as the key does, answers its attributes (CKA_TOKEN
 * FALSE), is found as a session object, follows every change of the key's state at once,
 * never outlives its session, and its destroy drops the handle only. A token copy, a copy
 * that would differ from the key, and changes through a copy are refused and change
 * nothing. */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static const unsigned char p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};

static CK_RV copy_to_session(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_OBJECT_HANDLE *copy)
{
    CK_ATTRIBUTE t[] = {{CKA_TOKEN, &no, 1}};
    return p11->C_CopyObject(s, h, t, 1, copy);
}

static CK_RV sign_verify(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
    unsigned char digest[32] = {9}, sig[128];
    CK_ULONG len = sizeof(sig);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CK_RV rv = p11->C_SignInit(s, &ecdsa, priv);
    if (rv == CKR_OK) rv = p11->C_Sign(s, digest, sizeof(digest), sig, &len);
    if (rv != CKR_OK) return rv;
    if ((rv = p11->C_VerifyInit(s, &ecdsa, pub)) != CKR_OK) return rv;
    return p11->C_Verify(s, digest, sizeof(digest), sig, len);
}

static void make_pair(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *pub,
                      CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, 1},
                         {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                         {CKA_LABEL, (void *)label, strlen(label)}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &yes, 1}, {CKA_SIGN, &yes, 1},
                         {CKA_LABEL, (void *)label, strlen(label)}};
    CHECK_RV(p11->C_GenerateKeyPair(s, &gen, pt, 3, vt, 3, pub, priv), CKR_OK);
}

static void test_a_session_copy_signs_and_answers_as_the_key(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv, copy, pub_copy;
    make_pair(s, "cached", &pub, &priv);
    CHECK_RV(copy_to_session(s, priv, &copy), CKR_OK);
    CHECK_RV(copy_to_session(s, pub, &pub_copy), CKR_OK);
    CHECK(copy != priv && pub_copy != pub && copy != pub_copy);
    CHECK_RV(sign_verify(s, copy, pub_copy), CKR_OK);
    CHECK_RV(sign_verify(s, priv, pub_copy), CKR_OK);
    CK_BBOOL token = CK_TRUE;
    char label[32] = {0}, key_id[40] = {0}, copy_key_id[40] = {0};
    CK_ATTRIBUTE a[] = {{CKA_TOKEN, &token, 1}, {CKA_LABEL, label, sizeof(label)}};
    CHECK_RV(p11->C_GetAttributeValue(s, copy, a, 2), CKR_OK);
    CHECK(token == CK_FALSE && a[1].ulValueLen == 6 && memcmp(label, "cached", 6) == 0);
    CHECK_RV(get_text(s, priv, CKA_CMK_KEY_ID, key_id, sizeof(key_id)), CKR_OK);
    CHECK_RV(get_text(s, copy, CKA_CMK_KEY_ID, copy_key_id, sizeof(copy_key_id)), CKR_OK);
    CHECK(strcmp(key_id, copy_key_id) == 0);
    /* Found as the backend finds session copies: by CKA_TOKEN=FALSE, and beside the key by
     * label; a find in the KMS vocabulary sees keys only. */
    CK_ATTRIBUTE session_only[] = {{CKA_TOKEN, &no, 1}};
    CHECK(find_count(s, session_only, 1, NULL) == 2);
    CHECK(find_by_label(s, "cached", CKO_PRIVATE_KEY, NULL) == 2);
    CK_ATTRIBUTE by_id[] = {{CKA_CMK_KEY_ID, key_id, strlen(key_id)}};
    CHECK(find_count(s, by_id, 1, NULL) == 2); /* the pair's two objects */
    /* Destroying a copy drops its handle, and the key goes on. */
    CHECK_RV(p11->C_DestroyObject(s, copy), CKR_OK);
    CHECK_RV(sign_verify(s, copy, pub), CKR_KEY_HANDLE_INVALID);
    CHECK_RV(p11->C_DestroyObject(s, copy), CKR_OBJECT_HANDLE_INVALID);
    CHECK_RV(sign_verify(s, priv, pub), CKR_OK);
    CK_ULONG state = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_STATE, &state), CKR_OK);
    CHECK(state == CMK_STATE_ENABLED);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
    CHECK(inspect_backend_material() == 2);
}

/* The copy is the key: a Disable stops it at once, an Enable brings it back, a destroy of
 * the key hides it. */
static void test_the_keys_state_reaches_its_copies_at_once(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, copy;
    CHECK_RV(make_aes(s, "cached aes", NULL, 0, &key), CKR_OK);
    CHECK_RV(copy_to_session(s, key, &copy), CKR_OK);
    CHECK_RV(encrypt_block(s, copy), CKR_OK);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK_RV(encrypt_block(s, copy), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED), CKR_OK);
    CHECK_RV(encrypt_block(s, copy), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, key), CKR_OK); /* scheduled deletion */
    CK_RV rv = encrypt_block(s, copy);
    CHECK(rv == CKR_KEY_HANDLE_INVALID || rv == CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
}

/* A copy belongs to its session: another session does not know it, and it goes when its
 * session closes. */
static void test_a_copy_never_outlives_its_session(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, copy;
    CHECK_RV(make_aes(s, "per session", NULL, 0, &key), CKR_OK);
    CK_SESSION_HANDLE other = fixture_session(CKF_RW_SESSION);
    CHECK_RV(copy_to_session(other, key, &copy), CKR_OK);
    CHECK_RV(encrypt_block(other, copy), CKR_OK);
    CHECK_RV(encrypt_block(s, copy), CKR_KEY_HANDLE_INVALID);
    CK_BBOOL token;
    CK_ATTRIBUTE a = {CKA_TOKEN, &token, 1};
    CHECK_RV(p11->C_GetAttributeValue(s, copy, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    CHECK_RV(p11->C_CloseSession(other), CKR_OK);
    other = fixture_session(CKF_RW_SESSION);
    CHECK_RV(encrypt_block(other, copy), CKR_KEY_HANDLE_INVALID);
    CHECK_RV(encrypt_block(s, copy), CKR_KEY_HANDLE_INVALID);
    CHECK_RV(encrypt_block(s, key), CKR_OK);
    fixture_close(s);
}

/* What a copy cannot be or do: a token copy (a second key), a copy unlike the key, a
 * change or a wrap through it. Each is refused with its code and changes nothing. */
static void test_token_copies_and_changes_through_a_copy_are_refused(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, copy, out;
    CHECK_RV(make_aes(s, "guarded", NULL, 0, &key), CKR_OK);
    CHECK_RV(copy_to_session(s, key, &copy), CKR_OK);
    char before[65536], after[65536];
    CHECK(inspect_snapshot(before, sizeof(before)) == 0);
    CK_ATTRIBUTE to_token[] = {{CKA_TOKEN, &yes, 1}};
    CHECK_RV(p11->C_CopyObject(s, key, to_token, 1, &out), CKR_ACTION_PROHIBITED);
    CHECK_RV(p11->C_CopyObject(s, key, NULL, 0, &out), CKR_ACTION_PROHIBITED); /* the source's */
    CHECK_RV(p11->C_CopyObject(s, copy, to_token, 1, &out), CKR_ACTION_PROHIBITED);
    CK_ATTRIBUTE relabel[] = {{CKA_TOKEN, &no, 1}, {CKA_LABEL, "other", 5}};
    CHECK_RV(p11->C_CopyObject(s, key, relabel, 2, &out), CKR_ATTRIBUTE_READ_ONLY);
    CHECK_RV(set_text(s, copy, CKA_LABEL, "renamed"), CKR_ACTION_PROHIBITED);
    CHECK_RV(set_ulong(s, copy, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_ACTION_PROHIBITED);
    CK_OBJECT_HANDLE kek;
    CK_ULONG len = 16;
    CK_ATTRIBUTE kt[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_WRAP, &yes, 1}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CHECK_RV(p11->C_GenerateKey(s, &gen, kt, 2, &kek), CKR_OK);
    unsigned char wrapped[64];
    CK_ULONG wrapped_len = sizeof(wrapped);
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
    CHECK_RV(p11->C_WrapKey(s, &kw, kek, copy, wrapped, &wrapped_len), CKR_KEY_UNEXTRACTABLE);
    CHECK(inspect_snapshot(after, sizeof(after)) == 0);
    CHECK(strcmp(before, after) == 0);
    /* A copy of a copy is one more copy of the key. */
    CK_OBJECT_HANDLE second;
    CHECK_RV(copy_to_session(s, copy, &second), CKR_OK);
    CHECK(second != copy);
    CHECK_RV(encrypt_block(s, second), CKR_OK);
    fixture_close(s);
}

/* A forked child starts afresh (PKCS#11: C_Initialize again): its sessions may get the
 * parent's session handle numbers, but never the parent's copies. */
static void test_a_forked_child_does_not_inherit_copies(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, copy;
    CHECK_RV(make_aes(s, "parent's", NULL, 0, &key), CKR_OK);
    CHECK_RV(copy_to_session(s, key, &copy), CKR_OK);
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE cs = fixture_open();
        int bad = encrypt_block(cs, copy) != CKR_KEY_HANDLE_INVALID;
        bad |= encrypt_block(cs, key) != CKR_OK;
        p11->C_Finalize(NULL);
        _exit(bad || harness_failed_checks ? 1 : 0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_RV(encrypt_block(s, copy), CKR_OK); /* the parent's copy is still its own */
    fixture_close(s);
}

/* Threads use a copy while another destroys it or closes the session: every call ends in
 * a clean code, never a crash (issue 16's session-lifetime rule). */
struct race {
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE copy;
    volatile int stop;
    int bad;
};

static void *use_copy(void *arg)
{
    struct race *r = arg;
    while (!r->stop) {
        CK_RV rv = encrypt_block(r->s, r->copy);
        if (rv != CKR_OK && rv != CKR_KEY_HANDLE_INVALID && rv != CKR_SESSION_HANDLE_INVALID &&
            rv != CKR_SESSION_CLOSED && rv != CKR_OPERATION_ACTIVE &&
            rv != CKR_OPERATION_NOT_INITIALIZED)
            __atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_copies_destroyed_or_closed_under_running_calls_end_cleanly(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "raced", NULL, 0, &key), CKR_OK);
    for (int round = 0; round < 40; round++) {
        struct race r = {0};
        r.s = fixture_session(0);
        CHECK_RV(copy_to_session(r.s, key, &r.copy), CKR_OK);
        pthread_t t[2];
        for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, use_copy, &r);
        struct timespec ms = {0, 2 * 1000 * 1000};
        nanosleep(&ms, NULL);
        if (round % 2)
            CHECK_RV(p11->C_DestroyObject(r.s, r.copy), CKR_OK);
        else
            CHECK_RV(p11->C_CloseSession(r.s), CKR_OK);
        nanosleep(&ms, NULL);
        r.stop = 1;
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
        if (round % 2) CHECK_RV(p11->C_CloseSession(r.s), CKR_OK);
        CHECK(r.bad == 0);
    }
    CHECK_RV(encrypt_block(s, key), CKR_OK);
    fixture_close(s);
}

#define T(name) {#name, name}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
        T(test_a_session_copy_signs_and_answers_as_the_key),
        T(test_the_keys_state_reaches_its_copies_at_once),
        T(test_a_copy_never_outlives_its_session),
        T(test_token_copies_and_changes_through_a_copy_are_refused),
        T(test_a_forked_child_does_not_inherit_copies),
        T(test_copies_destroyed_or_closed_under_running_calls_end_cleanly),
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
