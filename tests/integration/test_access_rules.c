/* test_access_rules.c - who may change a key (issue 18, "access rules in one place"):
 * every settable CKA_CMK_* attribute, through every object that names a key (a private
 * secret key, a public one made with CKA_PRIVATE=FALSE, a pair's private and public
 * halves, a version object), from every kind of session (no login, the SO, the user in a
 * read-only session, the user in a read/write session). Key-wide changes need the user
 * logged in, in a read/write session; an object the session cannot see is invalid to it;
 * every refusal changes nothing. README: "Security model". */
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_ULONG disabled = CMK_STATE_DISABLED, seven = 7, day = 86400;

/* One change per settable vendor attribute, with a value it accepts on some key. */
static const struct {
    const char *name;
    CK_ATTRIBUTE attr;
} changes[] = {
    {"description", {CKA_CMK_DESCRIPTION, "changed", 7}},
    {"rotation enabled", {CKA_CMK_ROTATION_ENABLED, &yes, 1}},
    {"rotation interval", {CKA_CMK_ROTATION_INTERVAL, &day, sizeof(day)}},
    {"rotation period", {CKA_CMK_ROTATION_PERIOD, "90d", 3}},
    {"pending window", {CKA_CMK_PENDING_WINDOW_DAYS, &seven, sizeof(seven)}},
    {"tags", {CKA_CMK_TAGS, "team=ops", 8}},
    {"rotate now", {CKA_CMK_ROTATE_NOW, &yes, 1}},
    {"delete material", {CKA_CMK_DELETE_MATERIAL, &yes, 1}},
    {"alias", {CKA_CMK_ALIAS, "hijacked", 8}},
    {"add alias", {CKA_CMK_ADD_ALIAS, "extra", 5}},
    {"remove alias", {CKA_CMK_REMOVE_ALIAS, "secret-aes", 10}},
    {"move alias", {CKA_CMK_MOVE_ALIAS, "pair", 4}},
    {"state", {CKA_CMK_KEY_STATE, &disabled, sizeof(disabled)}}, /* last: Disabled refuses more */
};
#define N_CHANGES (sizeof(changes) / sizeof(changes[0]))

enum { SECRET, PUBLIC_SECRET, PAIR_PRIVATE, PAIR_PUBLIC, VERSION, PUBLIC_VERSION, N_OBJECTS };
static const char *const object_names[N_OBJECTS] = {
    "private secret key", "public secret key", "private half", "public half",
    "version of the private key", "version of the public key"};
/* Whether a session without the user sees the object at all. */
static const bool visible_without_user[N_OBJECTS] = {false, true, false, true, false, true};

static CK_OBJECT_HANDLE version_of(CK_SESSION_HANDLE s, const char *label)
{
    CK_ULONG one = 1;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_LABEL, (void *)label, strlen(label)},
                        {CKA_CMK_VERSION, &one, sizeof(one)}};
    CK_OBJECT_HANDLE h = 0;
    CHECK(find_count(s, t, 3, &h) == 1);
    return h;
}

static void make_objects(CK_OBJECT_HANDLE objects[N_OBJECTS])
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_ATTRIBUTE secret_alias[] = {{CKA_CMK_ALIAS, "secret-aes", 10}};
    CHECK_RV(make_aes(s, "secret", secret_alias, 1, &objects[SECRET]), CKR_OK);
    CK_ATTRIBUTE open_key[] = {{CKA_PRIVATE, &no, 1}};
    CHECK_RV(make_aes(s, "open", open_key, 1, &objects[PUBLIC_SECRET]), CKR_OK);
    CK_ATTRIBUTE pair_alias[] = {{CKA_CMK_ALIAS, "pair", 4}};
    CHECK_RV(make_ec(s, "pair", pair_alias, 1, &objects[PAIR_PUBLIC], &objects[PAIR_PRIVATE]),
             CKR_OK);
    objects[VERSION] = version_of(s, "secret");
    objects[PUBLIC_VERSION] = version_of(s, "open");
    fixture_close(s);
}

/* Every change through every object answers want (the session cannot see the object:
 * CKR_OBJECT_HANDLE_INVALID instead), and nothing changes anywhere. */
static void every_change_refused(CK_SESSION_HANDLE s, const CK_OBJECT_HANDLE objects[N_OBJECTS],
                                 bool user, CK_RV want, const char *session)
{
    char before[65536], after[65536];
    CHECK(inspect_snapshot(before, sizeof(before)) == 0);
    for (int o = 0; o < N_OBJECTS; o++) {
        CK_RV expected = user || visible_without_user[o] ? want : CKR_OBJECT_HANDLE_INVALID;
        for (size_t c = 0; c < N_CHANGES; c++) {
            CK_ATTRIBUTE a = changes[c].attr;
            CK_RV rv = p11->C_SetAttributeValue(s, objects[o], &a, 1);
            if (rv != expected)
                fprintf(stderr, "  %s, %s, %s: 0x%lx, expected 0x%lx\n", session,
                        object_names[o], changes[c].name, rv, expected);
            CHECK(rv == expected);
        }
        /* A destroy is a lifecycle change too, even of a key made public (the public
         * half's alone excepted: it takes only that object, as on the backend, and is
         * left to its own tests). */
        if (o != PAIR_PUBLIC) {
            CK_RV rv = p11->C_DestroyObject(s, objects[o]);
            bool ok = rv == expected || (o >= VERSION && rv == CKR_ACTION_PROHIBITED);
            if (!ok)
                fprintf(stderr, "  %s, %s, destroy: 0x%lx\n", session, object_names[o], rv);
            CHECK(ok);
        }
    }
    CHECK(inspect_snapshot(after, sizeof(after)) == 0);
    CHECK(strcmp(before, after) == 0);
}

static CK_RV login(CK_SESSION_HANDLE s, CK_USER_TYPE who)
{
    const char *pin = who == CKU_SO ? fixture_so_pin()
                      : getenv("CMK_PIN")  ? getenv("CMK_PIN")
                                           : "1234";
    return p11->C_Login(s, who, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

static void test_key_changes_need_the_user_in_a_read_write_session(void)
{
    CK_OBJECT_HANDLE objects[N_OBJECTS];
    make_objects(objects);
    CHECK_RV(p11->C_Initialize(NULL), CKR_OK);
    /* No login, read/write. */
    CK_SESSION_HANDLE s = fixture_session(CKF_RW_SESSION);
    every_change_refused(s, objects, false, CKR_USER_NOT_LOGGED_IN, "no login");
    /* The SO: sees public objects only, and is not the user. */
    CHECK_RV(login(s, CKU_SO), CKR_OK);
    every_change_refused(s, objects, false, CKR_USER_NOT_LOGGED_IN, "SO");
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    /* The user, in a read-only session. */
    CHECK_RV(p11->C_CloseSession(s), CKR_OK);
    CK_SESSION_HANDLE ro = fixture_session(0);
    CHECK_RV(login(ro, CKU_USER), CKR_OK);
    every_change_refused(ro, objects, true, CKR_SESSION_READ_ONLY, "user, read-only");
    /* The user, read/write: each change gets past the access rules (it may still meet a
     * rule of its own: a version object is read-only, a pair does not rotate...). */
    CK_SESSION_HANDLE rw = fixture_session(CKF_RW_SESSION);
    int accepted = 0;
    for (size_t c = 0; c < N_CHANGES; c++) {
        CK_ATTRIBUTE a = changes[c].attr;
        CK_RV rv = p11->C_SetAttributeValue(rw, objects[SECRET], &a, 1);
        CHECK(rv != CKR_USER_NOT_LOGGED_IN && rv != CKR_SESSION_READ_ONLY &&
              rv != CKR_OBJECT_HANDLE_INVALID);
        if (rv != CKR_OK) fprintf(stderr, "  user: %s: 0x%lx\n", changes[c].name, rv);
        accepted += rv == CKR_OK;
    }
    CHECK(accepted >= 8); /* not a table of refusals only */
    /* A version object is read-only to the user too: its destroy takes nothing. */
    CHECK_RV(p11->C_DestroyObject(rw, objects[VERSION]), CKR_ACTION_PROHIBITED);
    CK_ULONG state = 0;
    CHECK_RV(get_ulong(rw, objects[SECRET], CKA_CMK_KEY_STATE, &state), CKR_OK);
    CHECK(state == CMK_STATE_DISABLED); /* as the last change left it, not pending deletion */
    CHECK_RV(p11->C_CloseSession(ro), CKR_OK);
    CHECK_RV(p11->C_CloseSession(rw), CKR_OK);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
}

#define T(name) {#name, name}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
        T(test_key_changes_need_the_user_in_a_read_write_session),
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
