/* test_passthrough_races.c - writes to token objects that are not CMKs (pass-through)
 * while other threads of the same process find objects. A SoftHSMv2 find re-reads from
 * its file every token object it meets whose file changed, one still being made
 * included. SoftHSMv2 makes an object by writing its default attributes one by one, each
 * with a file write of its own and outside a transaction: a re-read between two of them
 * can lose what was set, and the creation then fails (CKR_GENERAL_ERROR or
 * CKR_TEMPLATE_INCONSISTENT). cmkp11 keeps its backend finds (token lock shared) and its
 * pass-through token writes (exclusive) apart; these tests hold it to that. Before that
 * lock, the data-object and key-pair tests failed on every run. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

#define MADE 150  /* objects written per test */
#define FINDERS 2 /* threads finding beside the writer */
#define LABEL_MAX 32

static const unsigned char p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS data_class = CKO_DATA;

/* The finding threads. They report failures through counters, not CHECK, whose count
 * is not meant for several threads. */
struct finders {
    pthread_t thread[FINDERS];
    atomic_bool done;
    atomic_long finds;
    atomic_long failures;
};

static void find_failed(struct finders *f, const char *what, CK_RV rv)
{
    if (atomic_fetch_add(&f->failures, 1) < 5) fprintf(stderr, "  find: %s -> 0x%lx\n", what, rv);
}

/* Finds every data object, again and again. The first data object was made through
 * cmkp11 and recorded, so each of these finds scans the backend token (see
 * object_track_token_objects_may_match), and that object is always among the results. */
static void *find_data_objects(void *arg)
{
    struct finders *f = arg;
    CK_SESSION_HANDLE s;
    CK_RV rv = p11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        find_failed(f, "C_OpenSession", rv);
        atomic_fetch_add(&f->finds, 1); /* the writer waits for a first find */
        return NULL;
    }
    CK_ATTRIBUTE data[] = {{CKA_CLASS, &data_class, sizeof(data_class)}};
    while (!atomic_load(&f->done)) {
        CK_OBJECT_HANDLE batch[64];
        CK_ULONG got = 0, total = 0;
        if ((rv = p11->C_FindObjectsInit(s, data, 1)) != CKR_OK) {
            find_failed(f, "C_FindObjectsInit", rv);
        } else {
            while ((rv = p11->C_FindObjects(s, batch, 64, &got)) == CKR_OK && got > 0)
                total += got;
            if (rv != CKR_OK) find_failed(f, "C_FindObjects", rv);
            if ((rv = p11->C_FindObjectsFinal(s)) != CKR_OK)
                find_failed(f, "C_FindObjectsFinal", rv);
            if (total == 0) find_failed(f, "no data object found", CKR_OK);
        }
        atomic_fetch_add(&f->finds, 1);
    }
    p11->C_CloseSession(s);
    return NULL;
}

static void finders_start(struct finders *f)
{
    atomic_init(&f->done, false);
    atomic_init(&f->finds, 0);
    atomic_init(&f->failures, 0);
    for (int i = 0; i < FINDERS; i++)
        CHECK(pthread_create(&f->thread[i], NULL, find_data_objects, f) == 0);
    while (atomic_load(&f->finds) == 0)
        usleep(1000); /* the finds are running */
}

static void finders_stop(struct finders *f)
{
    atomic_store(&f->done, true);
    for (int i = 0; i < FINDERS; i++)
        pthread_join(f->thread[i], NULL);
}

/* The token objects that should exist when the writes are over, by label. */
struct ledger {
    char label[MADE + 1][LABEL_MAX];
    bool present[MADE + 1];
    int count;
};

static int ledger_add(struct ledger *l, const char *label)
{
    snprintf(l->label[l->count], LABEL_MAX, "%s", label);
    l->present[l->count] = true;
    return l->count++;
}

static long ledger_present(const struct ledger *l)
{
    long n = 0;
    for (int i = 0; i < l->count; i++)
        n += l->present[i];
    return n;
}

/* A find through cmkp11 of the token objects of class cls returns exactly the ledger's
 * present objects, each once: none lost, none left behind, no label dropped. */
static void ledger_check(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const struct ledger *l)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &yes, sizeof(yes)}};
    CK_OBJECT_HANDLE found[2 * MADE];
    CK_ULONG n = 0, got = 0;
    CHECK_RV(p11->C_FindObjectsInit(s, t, 2), CKR_OK);
    while (n < 2 * MADE && p11->C_FindObjects(s, found + n, 2 * MADE - n, &got) == CKR_OK && got)
        n += got;
    CHECK_RV(p11->C_FindObjectsFinal(s), CKR_OK);
    bool seen[MADE + 1] = {false};
    long unexpected = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        char label[LABEL_MAX] = "";
        get_text(s, found[i], CKA_LABEL, label, sizeof(label));
        int at = -1;
        for (int j = 0; j < l->count && at < 0; j++)
            if (l->present[j] && !seen[j] && strcmp(l->label[j], label) == 0) at = j;
        if (at < 0 && unexpected++ < 5) fprintf(stderr, "  unexpected object '%s'\n", label);
        if (at >= 0) seen[at] = true;
    }
    long missing = 0;
    for (int j = 0; j < l->count; j++)
        if (l->present[j] && !seen[j] && missing++ < 5)
            fprintf(stderr, "  missing object '%s'\n", l->label[j]);
    CHECK(unexpected == 0);
    CHECK(missing == 0);
    CHECK((long)n == ledger_present(l));
}

static int write_failed(const char *what, int i, CK_RV rv)
{
    fprintf(stderr, "  %s %d -> 0x%lx\n", what, i, rv);
    return 1;
}

/* A write that makes the object labelled label: into the ledger when it succeeded. */
static int made(struct ledger *l, const char *label, const char *what, int i, CK_RV rv)
{
    if (rv != CKR_OK) return write_failed(what, i, rv);
    ledger_add(l, label);
    return 0;
}

static CK_RV make_note(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *h)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, sizeof(data_class)},
                        {CKA_TOKEN, &yes, sizeof(yes)},
                        {CKA_LABEL, (void *)label, strlen(label)},
                        {CKA_VALUE, "note", 4}};
    return p11->C_CreateObject(s, t, 4, h);
}

/* The objects are checked through cmkp11 in this process, then on the token's files
 * (SoftHSMv2 loaded afresh, cmkp11 finalised), then through cmkp11 once more. On the
 * files, every object must be one of ours: a creation that failed as described above
 * left an object without its label (or class) behind. */
static void check_everywhere(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const struct ledger *l,
                             long other_objects)
{
    ledger_check(s, cls, l);
    fixture_close(s);
    CHECK(inspect_backend_objects("pt-") == ledger_present(l) + other_objects);
    CHECK(inspect_backend_objects("") == ledger_present(l) + other_objects);
    s = fixture_open();
    ledger_check(s, cls, l);
    fixture_close(s);
}

/* Opens the writer's session and makes the data object whose record makes every find
 * scan the backend (into ledger l when given), then starts the finders. */
static CK_SESSION_HANDLE start(const char *anchor, struct ledger *l, struct finders *f,
                               CK_OBJECT_HANDLE *h)
{
    CK_SESSION_HANDLE s = fixture_open();
    CHECK_RV(make_note(s, anchor, h), CKR_OK);
    if (l) ledger_add(l, anchor);
    finders_start(f);
    return s;
}

/* Stops the finders; no write and no find may have failed. */
static void finish(const char *what, int failed, struct finders *f)
{
    finders_stop(f);
    printf("  %d %s, %ld finds beside them, %d writes failed, %ld finds failed\n", MADE, what,
           atomic_load(&f->finds), failed, atomic_load(&f->failures));
    CHECK(failed == 0);
    CHECK(atomic_load(&f->failures) == 0);
}

/* C_CreateObject, C_DestroyObject and C_SetAttributeValue (a new label) of token data
 * objects. */
static void test_passthrough_token_objects_made_beside_finds_all_succeed(void)
{
    static struct ledger l;
    struct finders f;
    CK_OBJECT_HANDLE h;
    CK_SESSION_HANDLE s = start("pt-anchor", &l, &f, &h);
    int failed = 0;
    for (int i = 0; i < MADE; i++) {
        char label[LABEL_MAX];
        snprintf(label, sizeof(label), "pt-note-%d", i);
        CK_RV rv = make_note(s, label, &h);
        if (rv != CKR_OK) {
            failed += write_failed("C_CreateObject", i, rv);
            continue;
        }
        int at = ledger_add(&l, label);
        if (i % 3 == 2) {
            if ((rv = p11->C_DestroyObject(s, h)) != CKR_OK)
                failed += write_failed("C_DestroyObject", i, rv);
            else
                l.present[at] = false;
        } else if (i % 3 == 1) {
            snprintf(label, sizeof(label), "pt-renamed-%d", i);
            if ((rv = set_text(s, h, CKA_LABEL, label)) != CKR_OK)
                failed += write_failed("C_SetAttributeValue", i, rv);
            else
                snprintf(l.label[at], LABEL_MAX, "%s", label);
        }
    }
    finish("data objects made, a third destroyed, a third relabelled", failed, &f);
    check_everywhere(s, CKO_DATA, &l, 0);
}

/* C_CopyObject of a token data object, each copy under a label of its own. SoftHSMv2
 * writes a copy's attributes in one transaction, which its finds leave alone, so this
 * passed before the lock too: it shows that copies beside finds all land, and would catch
 * a backend that writes a copy attribute by attribute. */
static void test_passthrough_token_copies_made_beside_finds_all_succeed(void)
{
    static struct ledger l;
    struct finders f;
    CK_OBJECT_HANDLE source;
    CK_SESSION_HANDLE s = start("pt-source", &l, &f, &source);
    int failed = 0;
    for (int i = 0; i < MADE; i++) {
        char label[LABEL_MAX];
        snprintf(label, sizeof(label), "pt-copy-%d", i);
        CK_ATTRIBUTE t[] = {{CKA_LABEL, label, strlen(label)}};
        CK_OBJECT_HANDLE copy;
        failed += made(&l, label, "C_CopyObject", i, p11->C_CopyObject(s, source, t, 1, &copy));
    }
    finish("copies made", failed, &f);
    check_everywhere(s, CKO_DATA, &l, 0);
}

/* C_GenerateKeyPair of a session private key beside a token public key: a pass-through
 * pair (the private key is no CMK) that still writes the token. */
static void test_passthrough_token_public_keys_made_beside_finds_all_succeed(void)
{
    static struct ledger l; /* of public keys: the anchor is not among them */
    struct finders f;
    CK_OBJECT_HANDLE anchor, pub = 0, priv = 0;
    CK_SESSION_HANDLE s = start("pt-anchor", NULL, &f, &anchor);
    int failed = 0;
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    for (int i = 0; i < MADE; i++) {
        char label[LABEL_MAX];
        snprintf(label, sizeof(label), "pt-pub-%d", i);
        CK_ATTRIBUTE pub_t[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                                {CKA_LABEL, label, strlen(label)},
                                {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                                {CKA_VERIFY, &yes, sizeof(yes)}};
        CK_ATTRIBUTE priv_t[] = {{CKA_TOKEN, &no, sizeof(no)}, {CKA_SIGN, &yes, sizeof(yes)}};
        CK_RV rv = p11->C_GenerateKeyPair(s, &mech, pub_t, 4, priv_t, 2, &pub, &priv);
        failed += made(&l, label, "C_GenerateKeyPair", i, rv);
    }
    finish("pairs made (token public, session private)", failed, &f);
    if (pub && priv) CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK); /* the last pair works */
    check_everywhere(s, CKO_PUBLIC_KEY, &l, 1 /* the anchor */);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_passthrough_token_objects_made_beside_finds_all_succeed),
        T(test_passthrough_token_copies_made_beside_finds_all_succeed),
        T(test_passthrough_token_public_keys_made_beside_finds_all_succeed),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
