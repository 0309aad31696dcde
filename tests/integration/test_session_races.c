/* test_session_races.c - a session closed, every session closed, a logout or a finalise in
 * one thread while another thread is inside a call on the session, on HSM and SOFTWARE
 * keys. The backend alone frees a session's operation under the call (SoftHSMv2 crashes in
 * C_Sign), and so did the module's own records of SOFTWARE operations (a heap
 * use-after-free). Now the call runs to its end first, and calls after answer
 * CKR_SESSION_HANDLE_INVALID (or CKR_CRYPTOKI_NOT_INITIALIZED after C_Finalize).
 *
 * The forced tests hold the first thread inside the call with a pause point (each session
 * function has one named after it in test builds) and check the closer waits for it; the
 * stress tests run the same races freely for a bounded time. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

static CK_ULONG software = CMK_PROTECTION_SOFTWARE;
static CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
static const unsigned char digest[32] = {7, 7, 7};

enum closer { CLOSE_ONE, CLOSE_ALL, LOGOUT, FINALIZE };
static const char *const closer_name[] = {"C_CloseSession", "C_CloseAllSessions", "C_Logout",
                                          "C_Finalize"};

/* An EC pair signs single-part; an AES key (aes) encrypts multi-part. */
struct pair {
    CK_OBJECT_HANDLE pub, priv, aes;
};

static CK_RV login(CK_SESSION_HANDLE s)
{
    const char *pin = getenv("CMK_PIN") ? getenv("CMK_PIN") : "1234";
    return p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

static CK_SESSION_HANDLE open_rw(void)
{
    CK_SESSION_HANDLE s = 0;
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    return s;
}

/* Aliases are unique: each key of a test gets a name of its own. */
static struct pair make_pair(CK_SESSION_HANDLE s, const char *prefix, bool soft)
{
    static int made;
    char alias[64];
    snprintf(alias, sizeof(alias), "%s-%d", prefix, made++);
    struct pair p = {0, 0, 0};
    CK_ATTRIBUTE level[] = {{CKA_CMK_PROTECTION_LEVEL, &software, sizeof(software)}};
    CHECK_RV(make_ec(s, alias, level, soft ? 1 : 0, &p.pub, &p.priv), CKR_OK);
    strcat(alias, "-aes");
    CHECK_RV(make_aes(s, alias, level, soft ? 1 : 0, &p.aes), CKR_OK);
    return p;
}

static unsigned char iv[16] = {3};
static CK_MECHANISM cbc_pad = {CKM_AES_CBC_PAD, iv, sizeof(iv)};

/* Checks what sign_once made: an ECDSA signature of the digest, or the digest encrypted
 * with AES-CBC-PAD (decrypted back). */
static CK_RV verify(CK_SESSION_HANDLE s, const struct pair *key, bool multipart,
                    const unsigned char *out, CK_ULONG len)
{
    if (!multipart) {
        CK_RV rv = p11->C_VerifyInit(s, &ecdsa, key->pub);
        return rv == CKR_OK ? p11->C_Verify(s, (CK_BYTE_PTR)digest, 32, (CK_BYTE_PTR)out, len) : rv;
    }
    unsigned char pt[64];
    CK_ULONG pt_len = sizeof(pt);
    CK_RV rv = p11->C_DecryptInit(s, &cbc_pad, key->aes);
    if (rv == CKR_OK) rv = p11->C_Decrypt(s, (CK_BYTE_PTR)out, len, pt, &pt_len);
    if (rv == CKR_OK && (pt_len != 32 || memcmp(pt, digest, 32) != 0)) rv = CKR_GENERAL_ERROR;
    return rv;
}

/* The thread held inside a call: an ECDSA signature (single-part), or an AES-CBC-PAD
 * encryption in parts (multipart). */
struct signer {
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE priv, aes;
    bool multipart;
    unsigned char sig[128];
    CK_ULONG sig_len;
    CK_RV rv;
};

static void *sign_once(void *arg)
{
    struct signer *w = arg;
    w->sig_len = sizeof(w->sig);
    if (w->multipart) {
        CK_ULONG part = sizeof(w->sig);
        w->rv = p11->C_EncryptInit(w->session, &cbc_pad, w->aes);
        if (w->rv == CKR_OK)
            w->rv = p11->C_EncryptUpdate(w->session, (CK_BYTE_PTR)digest, 32, w->sig, &part);
        CK_ULONG rest = sizeof(w->sig) - (w->rv == CKR_OK ? part : 0);
        if (w->rv == CKR_OK) w->rv = p11->C_EncryptFinal(w->session, w->sig + part, &rest);
        w->sig_len = w->rv == CKR_OK ? part + rest : 0;
    } else {
        w->rv = p11->C_SignInit(w->session, &ecdsa, w->priv);
        if (w->rv == CKR_OK)
            w->rv = p11->C_Sign(w->session, (CK_BYTE_PTR)digest, 32, w->sig, &w->sig_len);
    }
    return NULL;
}

struct closing {
    enum closer how;
    CK_SESSION_HANDLE session;
    atomic_bool returned;
    CK_RV rv;
};

static void *close_it(void *arg)
{
    struct closing *c = arg;
    switch (c->how) {
    case CLOSE_ONE: c->rv = p11->C_CloseSession(c->session); break;
    case CLOSE_ALL: c->rv = p11->C_CloseAllSessions(0); break;
    case LOGOUT: c->rv = p11->C_Logout(c->session); break;
    case FINALIZE: c->rv = p11->C_Finalize(NULL); break;
    }
    atomic_store(&c->returned, true);
    return NULL;
}

/* One round: the signer is held inside its last call (point) on session `work` while
 * another thread closes; the close must wait for it, the signature must be whole, and the
 * closed session must then refuse calls cleanly. */
static void held_call_outlives_close(bool soft, bool multipart, enum closer how)
{
    fprintf(stderr, "  %s key, %s, closed by %s\n", soft ? "SOFTWARE" : "HSM",
            multipart ? "C_EncryptFinal" : "C_Sign", closer_name[how]);
    CK_SESSION_HANDLE s = fixture_open();
    struct pair key = make_pair(s, soft ? "held-soft" : "held-hsm", soft);
    CK_SESSION_HANDLE work = open_rw();
    const char *point = multipart ? "C_EncryptFinal" : "C_Sign";
    struct signer w = {.session = work, .priv = key.priv, .aes = key.aes, .multipart = multipart};
    struct closing c = {.how = how, .session = how == LOGOUT ? s : work};
    atomic_init(&c.returned, false);
    pthread_t signer, closer;
    pause_arm(point);
    CHECK(pthread_create(&signer, NULL, sign_once, &w) == 0);
    bool held = pause_wait_reached(point);
    CHECK(held);
    CHECK(pthread_create(&closer, NULL, close_it, &c) == 0);
    /* A close that does not wait returns at once; one that waits cannot return. */
    usleep(200 * 1000);
    if (held) CHECK(!atomic_load(&c.returned));
    pause_release(point);
    pthread_join(signer, NULL);
    pthread_join(closer, NULL);
    CHECK_RV(w.rv, CKR_OK);
    CHECK_RV(c.rv, CKR_OK);
    CK_RV after = p11->C_SignInit(work, &ecdsa, key.priv);
    if (how == FINALIZE) {
        CHECK_RV(after, CKR_CRYPTOKI_NOT_INITIALIZED);
        s = fixture_open();
    } else if (how == LOGOUT) {
        /* The session lives on, logged out: the private key is out of sight. */
        CHECK(after != CKR_OK && after != CKR_GENERAL_ERROR && after != CKR_OPERATION_ACTIVE);
        CHECK_RV(login(s), CKR_OK);
    } else {
        CHECK_RV(after, CKR_SESSION_HANDLE_INVALID);
        if (how == CLOSE_ALL) {
            s = open_rw();
            CHECK_RV(login(s), CKR_OK);
        }
    }
    /* What was made while the close waited is whole. */
    CHECK_RV(verify(s, &key, multipart, w.sig, w.sig_len), CKR_OK);
    if (how == LOGOUT) CHECK_RV(sign_verify_ec(work, key.priv, key.pub), CKR_OK);
    fixture_close(s);
}

static void test_a_close_waits_for_the_call_inside_the_session_on_hsm_and_software_keys(void)
{
    for (int soft = 0; soft < 2; soft++)
        for (int multipart = 0; multipart < 2; multipart++)
            for (int how = CLOSE_ONE; how <= FINALIZE; how++)
                held_call_outlives_close(soft, multipart, (enum closer)how);
}

/* The thread held inside an *Init: the Init alone. */
static void *sign_init_only(void *arg)
{
    struct signer *w = arg;
    w->rv = p11->C_SignInit(w->session, &ecdsa, w->priv);
    return NULL;
}

/* A logout while an *Init is between its look at the key and the backend's use of it: the
 * Init ends first and succeeds, the session is never left with an operation it cannot
 * end (before: CKR_GENERAL_ERROR, then CKR_OPERATION_ACTIVE at every C_SignInit). The
 * signature asked for after the logout either completes the operation begun while logged
 * in (SoftHSMv2 does, for HSM keys) or is refused with CKR_USER_NOT_LOGGED_IN (the module,
 * for SOFTWARE keys); either way the operation has ended. */
static void test_a_logout_waits_for_an_init_inside_and_leaves_the_session_usable(void)
{
    for (int soft = 0; soft < 2; soft++) {
        fprintf(stderr, "  %s key\n", soft ? "SOFTWARE" : "HSM");
        CK_SESSION_HANDLE s = fixture_open();
        struct pair key = make_pair(s, soft ? "init-soft" : "init-hsm", soft);
        CK_SESSION_HANDLE work = open_rw();
        struct closing c = {.how = LOGOUT, .session = s};
        atomic_init(&c.returned, false);
        pause_arm("C_SignInit");
        pthread_t closer, t;
        struct signer w = {.session = work, .priv = key.priv};
        CHECK(pthread_create(&t, NULL, sign_init_only, &w) == 0);
        bool held = pause_wait_reached("C_SignInit");
        CHECK(held);
        CHECK(pthread_create(&closer, NULL, close_it, &c) == 0);
        usleep(200 * 1000);
        if (held) CHECK(!atomic_load(&c.returned));
        pause_release("C_SignInit");
        pthread_join(t, NULL);
        pthread_join(closer, NULL);
        CHECK_RV(w.rv, CKR_OK); /* the Init ran before the logout */
        CHECK_RV(c.rv, CKR_OK);
        unsigned char sig[128];
        CK_ULONG sig_len = sizeof(sig);
        CK_RV after = p11->C_Sign(work, (CK_BYTE_PTR)digest, 32, sig, &sig_len);
        CHECK(after == (soft ? CKR_USER_NOT_LOGGED_IN : CKR_OK));
        CHECK_RV(login(s), CKR_OK);
        CHECK_RV(sign_verify_ec(work, key.priv, key.pub), CKR_OK);
        fixture_close(s);
    }
}

/* Free races, bounded in time: workers sign on their own sessions with HSM and SOFTWARE
 * keys, single and multi-part, and open a new session when theirs is closed; a closer
 * closes their sessions, all sessions, or logs out and in again. No answer may be a crash
 * or CKR_GENERAL_ERROR, and signing works afterwards. */
#define WORKERS 3
#define STRESS_MS 1500

struct stress {
    struct pair hsm, soft;
    atomic_bool done;
    _Atomic CK_SESSION_HANDLE sessions[WORKERS];
    atomic_long signatures, refusals, bad;
    enum closer how;
};

static bool clean_refusal(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_KEY_HANDLE_INVALID ||
           rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_OPERATION_NOT_INITIALIZED ||
           rv == CKR_USER_ALREADY_LOGGED_IN || rv == CKR_OPERATION_ACTIVE;
}

static void note(struct stress *st, const char *what, CK_RV rv)
{
    if (rv == CKR_OK) return;
    if (clean_refusal(rv)) {
        atomic_fetch_add(&st->refusals, 1);
    } else if (atomic_fetch_add(&st->bad, 1) < 5) {
        fprintf(stderr, "  %s -> 0x%lx\n", what, rv);
    }
}

struct worker_arg {
    struct stress *st;
    int index;
};

static void *stress_worker(void *arg)
{
    struct worker_arg *a = arg;
    struct stress *st = a->st;
    for (unsigned round = 0; !atomic_load(&st->done); round++) {
        CK_SESSION_HANDLE s = atomic_load(&st->sessions[a->index]);
        if (s == 0) {
            CK_RV rv = p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
            note(st, "C_OpenSession", rv);
            if (rv != CKR_OK) continue;
            rv = login(s);
            if (rv != CKR_USER_ALREADY_LOGGED_IN) note(st, "C_Login", rv);
            atomic_store(&st->sessions[a->index], s);
        }
        const struct pair *key = (round & 1) ? &st->soft : &st->hsm;
        struct signer w = {.session = s, .priv = key->priv, .aes = key->aes,
                           .multipart = (round & 2) != 0};
        sign_once(&w);
        if (w.rv == CKR_OK) atomic_fetch_add(&st->signatures, 1);
        note(st, "sign", w.rv);
        if (w.rv == CKR_SESSION_HANDLE_INVALID || w.rv == CKR_SESSION_CLOSED) {
            /* Ended by the closer: whatever the next call meets, start afresh. */
            CK_SESSION_HANDLE expected = s;
            atomic_compare_exchange_strong(&st->sessions[a->index], &expected, 0);
        } else if (w.rv != CKR_OK) {
            /* A refused Init leaves no operation; a refused Sign ended its own. Cancel
             * whatever a reused handle may hold, so the next round starts clean. */
            p11->C_SignInit(s, NULL, 0);
            p11->C_EncryptInit(s, NULL, 0);
        }
    }
    return NULL;
}

static void *stress_closer(void *arg)
{
    struct stress *st = arg;
    CK_SESSION_HANDLE own = 0;
    while (!atomic_load(&st->done)) {
        usleep(2000);
        int i = rand() % WORKERS;
        CK_SESSION_HANDLE victim = atomic_load(&st->sessions[i]);
        CK_RV rv = CKR_OK;
        switch (st->how) {
        case CLOSE_ONE:
            if (victim) rv = p11->C_CloseSession(victim);
            if (rv == CKR_OK && victim) atomic_compare_exchange_strong(&st->sessions[i], &victim, 0);
            if (rv == CKR_SESSION_HANDLE_INVALID) rv = CKR_OK; /* closed by its worker's race */
            break;
        case CLOSE_ALL:
            rv = p11->C_CloseAllSessions(0);
            for (int k = 0; k < WORKERS; k++) atomic_store(&st->sessions[k], 0);
            break;
        case LOGOUT:
            if (!own) own = open_rw();
            rv = p11->C_Logout(own);
            if (rv == CKR_USER_NOT_LOGGED_IN) rv = CKR_OK;
            if (rv == CKR_OK) rv = login(own);
            break;
        case FINALIZE: break;
        }
        note(st, closer_name[st->how], rv);
    }
    if (own) p11->C_CloseSession(own);
    return NULL;
}

static void stress_round(enum closer how)
{
    fprintf(stderr, "  closer: %s\n", closer_name[how]);
    struct stress st = {.how = how};
    CK_SESSION_HANDLE s = fixture_open();
    st.hsm = make_pair(s, "stress-hsm", false);
    st.soft = make_pair(s, "stress-soft", true);
    atomic_init(&st.done, false);
    pthread_t workers[WORKERS], closer;
    struct worker_arg args[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        args[i] = (struct worker_arg){&st, i};
        atomic_init(&st.sessions[i], 0);
        CHECK(pthread_create(&workers[i], NULL, stress_worker, &args[i]) == 0);
    }
    CHECK(pthread_create(&closer, NULL, stress_closer, &st) == 0);
    usleep(STRESS_MS * 1000);
    atomic_store(&st.done, true);
    for (int i = 0; i < WORKERS; i++) pthread_join(workers[i], NULL);
    pthread_join(closer, NULL);
    fprintf(stderr, "  %ld signatures, %ld clean refusals\n", atomic_load(&st.signatures),
            atomic_load(&st.refusals));
    CHECK(atomic_load(&st.bad) == 0);
    CHECK(atomic_load(&st.signatures) > 0);
    /* Whatever the closer left, a new session signs with both keys. */
    CK_SESSION_HANDLE after = open_rw();
    CK_RV rv = login(after);
    CHECK(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
    CHECK_RV(sign_verify_ec(after, st.hsm.priv, st.hsm.pub), CKR_OK);
    CHECK_RV(sign_verify_ec(after, st.soft.priv, st.soft.pub), CKR_OK);
    p11->C_CloseSession(after);
    fixture_close(s);
}

static void test_sessions_closed_under_signing_threads_never_crash(void)
{
    stress_round(CLOSE_ONE);
    stress_round(CLOSE_ALL);
}

static void test_logouts_under_signing_threads_never_leave_a_session_stuck(void)
{
    stress_round(LOGOUT);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    srand((unsigned)time(NULL));
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_a_close_waits_for_the_call_inside_the_session_on_hsm_and_software_keys),
        T(test_a_logout_waits_for_an_init_inside_and_leaves_the_session_usable),
        T(test_sessions_closed_under_signing_threads_never_crash),
        T(test_logouts_under_signing_threads_never_leave_a_session_stuck),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
