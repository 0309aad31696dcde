/* test_passthrough_slots.c - the backend's other slots through cmkp11 (issue 17 item 12):
 * the same slot list as the backend alone, in its order, the CMK token as slot 0; the
 * free slot initialised through cmkp11 makes a token that makes and uses keys, with every
 * call forwarded verbatim (no CMK, no store); slot ids never collide, and the CMK token's
 * raw backend slot is never reachable. */
#include <pthread.h>
#include <stdatomic.h>

#include "fixture.h"
#include "inspect.h"

static CK_BBOOL yes = CK_TRUE;
static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/* One slot as a client tells it apart: id, token label (or "" when uninitialised), and
 * whether it holds an initialised token. */
struct slot_view {
    CK_SLOT_ID id;
    char label[33];
    bool initialized;
};

static CK_ULONG list_slots(CK_FUNCTION_LIST_PTR f, CK_BBOOL present, struct slot_view *out,
                           CK_ULONG max)
{
    CK_SLOT_ID ids[16];
    CK_ULONG n = 0;
    CHECK_RV(f->C_GetSlotList(present, NULL, &n), CKR_OK);
    CHECK(n <= 16 && n <= max);
    CHECK_RV(f->C_GetSlotList(present, ids, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n && i < max; i++) {
        CK_TOKEN_INFO ti;
        out[i].id = ids[i];
        CHECK_RV(f->C_GetTokenInfo(ids[i], &ti), CKR_OK);
        out[i].initialized = (ti.flags & CKF_TOKEN_INITIALIZED) != 0;
        size_t len = 32;
        while (len > 0 && ti.label[len - 1] == ' ')
            len--;
        memcpy(out[i].label, ti.label, len);
        out[i].label[out[i].initialized ? len : 0] = '\0';
    }
    return n;
}

/* The backend alone, in this process while the module is finalised. */
static CK_ULONG backend_slots(CK_BBOOL present, struct slot_view *out, CK_ULONG max)
{
    CK_FUNCTION_LIST_PTR be = harness_load(getenv("CMK_BACKEND"));
    CHECK_RV(be->C_Initialize(NULL), CKR_OK);
    CK_ULONG n = list_slots(be, present, out, max);
    CHECK_RV(be->C_Finalize(NULL), CKR_OK);
    return n;
}

/* Both lists agree slot by slot: the CMK token's backend slot is slot 0 (labelled as the
 * CMK token), every other keeps the backend's id (0 would take the CMK token's). */
static void check_same_list(const struct slot_view *ours, CK_ULONG n, const struct slot_view *be,
                            CK_ULONG m)
{
    CHECK(n == m);
    CK_SLOT_ID cmk_backend_id = (CK_SLOT_ID)-1;
    for (CK_ULONG i = 0; i < m; i++)
        if (!strcmp(be[i].label, getenv("CMK_BACKEND_TOKEN"))) cmk_backend_id = be[i].id;
    for (CK_ULONG i = 0; i < n && i < m; i++) {
        CHECK(ours[i].initialized == be[i].initialized);
        if (be[i].id == cmk_backend_id) {
            CHECK(ours[i].id == 0);
            CHECK(!strcmp(ours[i].label, "cmkp11"));
        } else {
            CHECK(ours[i].id == (be[i].id == 0 ? cmk_backend_id : be[i].id));
            CHECK(!strcmp(ours[i].label, be[i].label));
        }
    }
}

static CK_SLOT_ID free_slot(void)
{
    struct slot_view v[16];
    CK_ULONG n = list_slots(p11, CK_FALSE, v, 16);
    for (CK_ULONG i = 0; i < n; i++)
        if (!v[i].initialized) return v[i].id;
    CHECK(!"no free slot listed");
    return (CK_SLOT_ID)-1;
}

static void init_module(void)
{
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CHECK_RV(p11->C_Initialize(&args), CKR_OK);
}

/* A new token "fresh" in the free slot, its user PIN 1111, through cmkp11; its slot id. */
static CK_SLOT_ID make_fresh_token(void)
{
    CK_SLOT_ID slot = free_slot();
    CHECK(slot != 0);
    CHECK_RV(p11->C_InitToken(slot, (CK_UTF8CHAR_PTR)fixture_so_pin(), strlen(fixture_so_pin()),
                              fixture_token_label("fresh")),
             CKR_OK);
    CK_SESSION_HANDLE s;
    CHECK_RV(p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK_RV(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)fixture_so_pin(), strlen(fixture_so_pin())),
             CKR_OK);
    CHECK_RV(p11->C_InitPIN(s, (CK_UTF8CHAR_PTR) "1111", 4), CKR_OK);
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    CHECK_RV(p11->C_CloseSession(s), CKR_OK);
    return slot;
}

static CK_SESSION_HANDLE fresh_session(CK_SLOT_ID slot)
{
    CK_SESSION_HANDLE s = 0;
    CHECK_RV(p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK_RV(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "1111", 4), CKR_OK);
    return s;
}

static CK_RV plain_ec_pair(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *pub,
                           CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                         {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
                         {CKA_VERIFY, &yes, sizeof(yes)},
                         {CKA_LABEL, (void *)label, strlen(label)}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                         {CKA_PRIVATE, &yes, sizeof(yes)},
                         {CKA_SIGN, &yes, sizeof(yes)},
                         {CKA_LABEL, (void *)label, strlen(label)}};
    return p11->C_GenerateKeyPair(s, &mech, pt, 4, vt, 4, pub, priv);
}

static void test_slot_list_is_the_backends_in_its_order_with_the_cmk_token_as_slot_0(void)
{
    struct slot_view ours[16], be[16];
    for (int present = 0; present < 2; present++) {
        init_module();
        CK_ULONG n = list_slots(p11, (CK_BBOOL)present, ours, 16);
        CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
        CK_ULONG m = backend_slots((CK_BBOOL)present, be, 16);
        check_same_list(ours, n, be, m);
        CHECK(n == 2); /* the CMK token and SoftHSMv2's free slot */
    }
    /* A buffer one short is told the length, as PKCS#11 says. */
    init_module();
    CK_SLOT_ID ids[1];
    CK_ULONG n = 1;
    CHECK_RV(p11->C_GetSlotList(CK_FALSE, ids, &n), CKR_BUFFER_TOO_SMALL);
    CHECK(n == 2);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
}

static void test_free_slot_initialised_through_cmkp11_makes_a_token_that_makes_keys(void)
{
    /* The CMK token's state beforehand, to show the pass-through work left it alone. */
    CK_SESSION_HANDLE cmk = fixture_open();
    CK_OBJECT_HANDLE aes;
    CHECK_RV(make_aes(cmk, "cmk-aes", NULL, 0, &aes), CKR_OK);
    fixture_close(cmk);
    static char before[65536], after[65536];
    CHECK(inspect_snapshot(before, sizeof(before)) == 0);

    init_module();
    CK_SLOT_ID slot = make_fresh_token();
    CK_SESSION_HANDLE s = fresh_session(slot);
    CK_SESSION_INFO si;
    CHECK_RV(p11->C_GetSessionInfo(s, &si), CKR_OK);
    CHECK(si.slotID == slot);
    CHECK(si.state == CKS_RW_USER_FUNCTIONS);
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(plain_ec_pair(s, "on-fresh", &pub, &priv), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    /* The backend's own object: no vendor attribute, the flags SoftHSMv2 gives. */
    CK_ULONG state;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_STATE, &state), CKR_ATTRIBUTE_TYPE_INVALID);
    CK_BBOOL decrypt = CK_FALSE;
    CK_ATTRIBUTE a = {CKA_DECRYPT, &decrypt, sizeof(decrypt)};
    CHECK_RV(p11->C_GetAttributeValue(s, priv, &a, 1), CKR_OK);
    CHECK(decrypt == CK_TRUE); /* SoftHSMv2's default for a flag the template leaves out */
    CHECK(find_by_label(s, "on-fresh", CKO_PRIVATE_KEY, NULL) == 1);
    CHECK(find_by_label(s, "cmk-aes", CKO_SECRET_KEY, NULL) == 0);
    /* The CMK token's session sees none of it, and the CMK slot answers as before. */
    cmk = 0;
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &cmk), CKR_OK);
    CHECK_RV(p11->C_GetSessionInfo(cmk, &si), CKR_OK);
    CHECK(si.slotID == 0);
    CHECK(si.state == CKS_RO_PUBLIC_SESSION); /* logins are per token, as on the backend */
    const char *pin = getenv("CMK_PIN") ? getenv("CMK_PIN") : "1234";
    CHECK_RV(p11->C_Login(cmk, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    CHECK(find_by_label(cmk, "on-fresh", CKO_PRIVATE_KEY, NULL) == 0);
    CHECK(find_by_label(cmk, "cmk-aes", CKO_SECRET_KEY, NULL) == 1);
    CHECK_RV(p11->C_DestroyObject(s, pub), CKR_OK);
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    CHECK_RV(p11->C_GetSessionInfo(cmk, &si), CKR_OK);
    CHECK(si.state == CKS_RO_USER_FUNCTIONS); /* the other token's logout left this one */

    /* After the initialisation SoftHSMv2 lists a new free slot: so does cmkp11. */
    struct slot_view ours[16], be[16];
    CK_ULONG n = list_slots(p11, CK_FALSE, ours, 16);
    CHECK(n == 3);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
    CHECK(inspect_snapshot(after, sizeof(after)) == 0);
    CHECK(strcmp(before, after) == 0); /* no row, no audit, no CMK object */

    /* The backend alone, started afresh, lists the same tokens in the same order. */
    CK_ULONG m = backend_slots(CK_FALSE, be, 16);
    init_module();
    n = list_slots(p11, CK_FALSE, ours, 16);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
    check_same_list(ours, n, be, m);
    bool fresh = false;
    for (CK_ULONG i = 0; i < n; i++)
        fresh |= !strcmp(ours[i].label, "fresh");
    CHECK(fresh);
}

static void test_pass_through_init_token_with_the_backend_tokens_label_is_refused(void)
{
    init_module();
    CK_SLOT_ID slot = free_slot();
    CHECK_RV(p11->C_InitToken(slot, (CK_UTF8CHAR_PTR)fixture_so_pin(), strlen(fixture_so_pin()),
                              fixture_token_label(getenv("CMK_BACKEND_TOKEN"))),
             CKR_ACTION_PROHIBITED);
    struct slot_view v[16];
    CK_ULONG n = list_slots(p11, CK_FALSE, v, 16);
    CHECK(n == 2);
    CHECK(!v[1].initialized);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
    CHECK(inspect_log_count("names the CMK token's backend token ([backend] token_label)") == 1);
}

/* Slot 0 is the CMK token; the id the CMK token has in the backend never opens its raw
 * backend slot (it would bypass every CMK rule). */
static void test_the_cmk_tokens_backend_slot_id_never_opens_the_raw_token(void)
{
    CK_FUNCTION_LIST_PTR be = harness_load(getenv("CMK_BACKEND"));
    CHECK_RV(be->C_Initialize(NULL), CKR_OK);
    CK_SLOT_ID raw = inspect_backend_slot(be, getenv("CMK_BACKEND_TOKEN"));
    CHECK_RV(be->C_Finalize(NULL), CKR_OK);
    CHECK(raw != (CK_SLOT_ID)-1 && raw != 0);
    init_module();
    CK_SESSION_HANDLE s;
    CK_TOKEN_INFO ti;
    /* SoftHSMv2 here numbers its free slot 1 and has no slot 0, which raw stands for. */
    CHECK_RV(p11->C_OpenSession(raw, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_SLOT_ID_INVALID);
    CHECK_RV(p11->C_GetTokenInfo(raw, &ti), CKR_SLOT_ID_INVALID);
    CHECK_RV(p11->C_InitToken(raw, (CK_UTF8CHAR_PTR)fixture_so_pin(), strlen(fixture_so_pin()),
                              fixture_token_label("x")),
             CKR_SLOT_ID_INVALID);
    CHECK_RV(p11->C_GetTokenInfo(0, &ti), CKR_OK);
    CHECK(!memcmp(ti.label, "cmkp11 ", 7));
    CHECK_RV(p11->C_GetTokenInfo(7, &ti), CKR_SLOT_ID_INVALID);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
}

static void test_close_all_sessions_of_one_slot_leaves_the_other_slots_sessions_open(void)
{
    init_module();
    CK_SLOT_ID slot = make_fresh_token();
    CK_SESSION_HANDLE cmk, pass;
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &cmk), CKR_OK);
    CHECK_RV(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &pass), CKR_OK);
    CHECK(cmk != pass);
    CK_SESSION_INFO si;
    CHECK_RV(p11->C_CloseAllSessions(slot), CKR_OK);
    CHECK_RV(p11->C_GetSessionInfo(pass, &si), CKR_SESSION_HANDLE_INVALID);
    CHECK_RV(p11->C_GetSessionInfo(cmk, &si), CKR_OK);
    CHECK_RV(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &pass), CKR_OK);
    CHECK_RV(p11->C_CloseAllSessions(0), CKR_OK);
    CHECK_RV(p11->C_GetSessionInfo(cmk, &si), CKR_SESSION_HANDLE_INVALID);
    CHECK_RV(p11->C_GetSessionInfo(pass, &si), CKR_OK);
    CHECK(si.slotID == slot);
    /* The CMK slot has no session left, so its token may be initialised; the other
     * slot's open session does not count (SoftHSMv2 counts per slot too). */
    CHECK_RV(p11->C_InitToken(0, (CK_UTF8CHAR_PTR)fixture_so_pin(), strlen(fixture_so_pin()),
                              fixture_token_label("cmkp11")),
             CKR_OK);
    CHECK_RV(p11->C_InitToken(slot, (CK_UTF8CHAR_PTR)fixture_so_pin(), strlen(fixture_so_pin()),
                              fixture_token_label("fresh")),
             CKR_SESSION_EXISTS);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
}

/* Threads on CMK sessions and on pass-through sessions at once, opening, using and
 * closing: each kind keeps its own rules, nothing crashes, nothing is lost. */
struct worker {
    CK_SLOT_ID slot;
    bool cmk;
    CK_OBJECT_HANDLE pub, priv;
    atomic_int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 40; i++) {
        CK_SESSION_HANDLE s;
        CK_RV rv = p11->C_OpenSession(w->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
        if (rv == CKR_OK) rv = sign_verify_ec(s, w->priv, w->pub);
        CK_SESSION_INFO si;
        if (rv == CKR_OK) rv = p11->C_GetSessionInfo(s, &si);
        if (rv == CKR_OK && si.slotID != w->slot) rv = CKR_GENERAL_ERROR;
        if (rv != CKR_OK && atomic_fetch_add(&w->failures, 1) < 3)
            fprintf(stderr, "  %s round %d: 0x%lx\n", w->cmk ? "cmk" : "pass-through", i, rv);
        p11->C_CloseSession(s);
    }
    return NULL;
}

static void test_cmk_and_pass_through_sessions_used_by_threads_at_once(void)
{
    CK_SESSION_HANDLE cmk = fixture_open();
    struct worker w[2] = {{.slot = 0, .cmk = true}, {.cmk = false}};
    CHECK_RV(make_ec(cmk, "cmk-ec", NULL, 0, &w[0].pub, &w[0].priv), CKR_OK);
    w[1].slot = make_fresh_token();
    CK_SESSION_HANDLE s = fresh_session(w[1].slot);
    CHECK_RV(plain_ec_pair(s, "pass-ec", &w[1].pub, &w[1].priv), CKR_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, work, &w[i % 2]) == 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(atomic_load(&w[0].failures) == 0);
    CHECK(atomic_load(&w[1].failures) == 0);
    CHECK_RV(p11->C_CloseSession(s), CKR_OK);
    fixture_close(cmk);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_slot_list_is_the_backends_in_its_order_with_the_cmk_token_as_slot_0),
        T(test_free_slot_initialised_through_cmkp11_makes_a_token_that_makes_keys),
        T(test_pass_through_init_token_with_the_backend_tokens_label_is_refused),
        T(test_the_cmk_tokens_backend_slot_id_never_opens_the_raw_token),
        T(test_close_all_sessions_of_one_slot_leaves_the_other_slots_sessions_open),
        T(test_cmk_and_pass_through_sessions_used_by_threads_at_once),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
