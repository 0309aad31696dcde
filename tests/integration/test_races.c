/* test_races.c - changes that meet: processes changing one key at the same time, and
 * handles that outlive their key. Nothing may be lost or land on the wrong key. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

#define ROTATIONS 12

/* Child: rotates the key ROTATIONS times; exits with the number that succeeded. */
static void rotate_repeatedly(int go)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE k = 0;
    find_by_label(s, "busy", CKO_SECRET_KEY, &k);
    char byte;
    if (read(go, &byte, 1) != 1) _exit(255);
    int done = 0;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE now[] = {{CKA_CMK_ROTATE_NOW, &yes, sizeof(yes)}};
    for (int i = 0; i < ROTATIONS; i++)
        if (p11->C_SetAttributeValue(s, k, now, 1) == CKR_OK) done++;
    fixture_close(s);
    _exit(done);
}

/* True once the parent closed its end of the stop pipe (read without blocking). */
static bool told_to_stop(int stop)
{
    char byte;
    ssize_t n = read(stop, &byte, 1);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* Child: rewrites the description until told to stop; the last one written is
 * "final". Exits 0 when every write succeeded. */
static void describe_repeatedly(int go, int stop)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE k = 0;
    find_by_label(s, "busy", CKO_SECRET_KEY, &k);
    char byte;
    if (read(go, &byte, 1) != 1) _exit(255);
    int failures = 0;
    fcntl(stop, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 2000 && !told_to_stop(stop); i++) {
        char text[32];
        snprintf(text, sizeof(text), "round %d", i);
        if (set_text(s, k, CKA_CMK_DESCRIPTION, text) != CKR_OK) failures++;
    }
    if (set_text(s, k, CKA_CMK_DESCRIPTION, "final") != CKR_OK) failures++;
    fixture_close(s);
    _exit(failures ? 1 : 0);
}

/* A description change read the row, then wrote every column back: a rotation that
 * committed in between was undone (its version orphaned). Now each change is made
 * on the row as it is when the write lock is held. */
static void test_attribute_changes_racing_rotations_lose_no_version(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "busy", NULL, 0, &key), CKR_OK);
    fixture_close(s);

    int go[2], stop[2];
    if (pipe(go) != 0 || pipe(stop) != 0) return;
    pid_t rotator = fork();
    if (rotator == 0) rotate_repeatedly(go[0]);
    pid_t describer = fork();
    if (describer == 0) {
        close(stop[1]);
        describe_repeatedly(go[0], stop[0]);
    }
    close(stop[0]);
    if (write(go[1], "gg", 2) != 2) return;
    int status;
    waitpid(rotator, &status, 0);
    CHECK(WIFEXITED(status));
    int rotated = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    close(stop[1]); /* EOF: the describer stops */
    waitpid(describer, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("  %d of %d rotations made while the description changed\n", rotated, ROTATIONS);
    CHECK(rotated == ROTATIONS);

    CHECK(inspect_store_count("SELECT primary_version FROM cmk WHERE id IN (SELECT cmk_id FROM cmk_alias WHERE alias = 'busy')") ==
          1 + rotated);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_version") == 1 + rotated);
    CHECK(inspect_store_count("SELECT rotating_to FROM cmk WHERE id IN (SELECT cmk_id FROM cmk_alias WHERE alias = 'busy')") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE description = 'final'") == 1);
    CHECK(inspect_backend_material() == 1 + rotated);

    s = fixture_open(); /* and the key still works with its newest version */
    CHECK(find_by_label(s, "busy", CKO_SECRET_KEY, &key) == 1);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    fixture_close(s);
}

/* Row ids name objects: an id freed by a purge must not come back for a newer key,
 * or an old handle would reach (and could destroy) the wrong key. */
static void test_purged_key_handle_never_names_a_newer_key(void)
{
    fixture_append_policy("allow_immediate_destroy = true");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE first, second;
    CHECK_RV(make_aes(s, "first", NULL, 0, &first), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, first), CKR_OK);
    CHECK_RV(make_aes(s, "second", NULL, 0, &second), CKR_OK);
    CHECK(second != first);
    char label[64];
    CHECK_RV(get_text(s, first, CKA_LABEL, label, sizeof(label)), CKR_OBJECT_HANDLE_INVALID);
    CHECK_RV(p11->C_DestroyObject(s, first), CKR_OBJECT_HANDLE_INVALID);
    CHECK_RV(get_text(s, second, CKA_LABEL, label, sizeof(label)), CKR_OK);
    CHECK(strcmp(label, "second") == 0);
    fixture_close(s);
    /* and across a restart, where nothing of the old process is left */
    s = fixture_open();
    CHECK_RV(get_text(s, first, CKA_LABEL, label, sizeof(label)), CKR_OBJECT_HANDLE_INVALID);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
}

/* Many disable/enable flips from two processes: every audit row's "from" state is the
 * state the previous row left, i.e. no change was made on a stale read. */
static void flip_states(int go, CK_ULONG to_first)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE k = 0;
    find_by_label(s, "flip", CKO_SECRET_KEY, &k);
    char byte;
    if (read(go, &byte, 1) != 1) _exit(255);
    int failures = 0;
    for (int i = 0; i < 150; i++) {
        CK_ULONG to = (i % 2)
                          ? (to_first == CMK_STATE_ENABLED ? CMK_STATE_DISABLED : CMK_STATE_ENABLED)
                          : to_first;
        if (set_ulong(s, k, CKA_CMK_KEY_STATE, to) != CKR_OK) failures++;
    }
    fixture_close(s);
    _exit(failures ? 1 : 0);
}

static void test_racing_enable_and_disable_audit_a_consistent_history(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "flip", NULL, 0, &key), CKR_OK);
    fixture_close(s);
    int go[2];
    if (pipe(go) != 0) return;
    pid_t a = fork();
    if (a == 0) flip_states(go[0], CMK_STATE_DISABLED);
    pid_t b = fork();
    if (b == 0) flip_states(go[0], CMK_STATE_ENABLED);
    if (write(go[1], "gg", 2) != 2) return;
    int status;
    waitpid(a, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    waitpid(b, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Each state row says "state: X -> Y"; consecutive rows must chain. */
    long changes = inspect_store_count(
        "SELECT count(*) FROM audit WHERE action IN ('EnableKey', 'DisableKey')");
    long broken = inspect_store_count(
        "SELECT count(*) FROM (SELECT detail, lag(detail) OVER (ORDER BY id) AS prev FROM audit "
        "WHERE action IN ('EnableKey', 'DisableKey')) WHERE prev IS NOT NULL AND "
        "substr(detail, 8, instr(substr(detail, 8), ' ') - 1) != "
        "rtrim(substr(prev, instr(prev, '-> ') + 3), '; ')");
    printf("  %ld state changes audited\n", changes);
    CHECK(changes > 0);
    CHECK(broken == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action IN ('EnableKey', "
                              "'DisableKey') AND detail NOT LIKE 'state: %'") == 0);
}

/* One thread makes keys while another uses each new one at once (its first use looks the
 * material up in the backend) and lists the backend's own objects. SoftHSMv2 re-reads
 * from its file every object a find meets, including one another thread is still
 * creating, and so dropped attributes that thread had just set: about one generation
 * in eight then failed (CKR_TEMPLATE_INCONSISTENT or CKR_GENERAL_ERROR), hidden by
 * CreateKey's retry, sometimes not. Now finds hold the token lock shared. */
#define RACED_KEYS 120

struct newest {
    _Atomic CK_OBJECT_HANDLE key;
    atomic_bool done;
    atomic_long uses;
    long use_failures;
};

static void use_failed(struct newest *n, const char *what, CK_RV rv)
{
    fprintf(stderr, "  use %ld: %s -> 0x%lx\n", atomic_load(&n->uses), what, rv);
    n->use_failures++;
}

static void *use_newest(void *arg)
{
    struct newest *n = arg;
    CK_SESSION_HANDLE s;
    CK_RV rv = p11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        use_failed(n, "open session", rv);
        atomic_store(&n->uses, -1); /* the creator waits for a first use */
        return NULL;
    }
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_ATTRIBUTE backend_objects[] = {{CKA_CLASS, &data, sizeof(data)}};
    while (!atomic_load(&n->done)) {
        CK_OBJECT_HANDLE k = atomic_load(&n->key);
        if (k && (rv = aes_gcm_roundtrip(s, k)) != CKR_OK) use_failed(n, "AES-GCM", rv);
        CK_ULONG found = find_count(s, backend_objects, 1, NULL);
        if (found != 1) use_failed(n, "find of the data object, count", found);
        atomic_fetch_add(&n->uses, 1);
    }
    p11->C_CloseSession(s);
    return NULL;
}

static void test_creating_while_another_thread_finds_needs_no_retry(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    /* A token data object made through cmkp11: a find for data objects then asks the
     * backend, which scans every object. */
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE note[] = {{CKA_CLASS, &data, sizeof(data)},
                           {CKA_TOKEN, &yes, sizeof(yes)},
                           {CKA_LABEL, "raced note", 10},
                           {CKA_VALUE, "x", 1}};
    CK_OBJECT_HANDLE note_h = 0;
    CHECK(p11->C_CreateObject(s, note, 4, &note_h) == CKR_OK);
    struct newest n = {0};
    pthread_t user;
    CHECK(pthread_create(&user, NULL, use_newest, &n) == 0);
    while (atomic_load(&n.uses) == 0)
        usleep(1000); /* the finds are running */
    int failed = 0;
    for (int i = 0; i < RACED_KEYS; i++) {
        char alias[32];
        snprintf(alias, sizeof(alias), "raced-%d", i);
        CK_OBJECT_HANDLE k = 0;
        CK_RV rv = make_aes(s, alias, NULL, 0, &k);
        if (rv != CKR_OK) {
            fprintf(stderr, "  CreateKey %d -> 0x%lx\n", i, rv);
            failed++;
        }
        if (k) atomic_store(&n.key, k);
    }
    atomic_store(&n.done, true);
    pthread_join(user, NULL);
    long retries = inspect_log_count("trying again");
    printf("  %d keys, %ld uses beside them, %ld CreateKey retries\n", RACED_KEYS,
           atomic_load(&n.uses), retries);
    CHECK(failed == 0);
    CHECK(n.use_failures == 0);
    CHECK(retries == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_alias WHERE alias LIKE 'raced-%'") == RACED_KEYS);
    fixture_close(s); /* the inspection loads SoftHSMv2 itself */
    CHECK(inspect_backend_material() == RACED_KEYS);
}

/* SoftHSMv2 re-reads its token's object list only when the token's generation number
 * on disk differs from the one it last saw, and its own object creation writes the disk
 * value plus one as the one it has seen. So a process that makes a key right after
 * another process made one has "seen" the other's key without listing it, and a find
 * misses it until a third change. A CMK made by another process must still work here. */
static void test_key_made_by_another_process_works_after_a_create_of_our_own(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE ours = 0, theirs = 0;
    CHECK_RV(make_aes(s, "ours-1", NULL, 0, &ours), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, ours), CKR_OK); /* this process has listed the token */
    pid_t child = fork();
    if (child == 0) {
        CK_SESSION_HANDLE cs = fixture_open();
        CK_OBJECT_HANDLE k;
        CK_RV rv = make_aes(cs, "theirs", NULL, 0, &k);
        fixture_close(cs);
        _exit(rv == CKR_OK ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_RV(make_aes(s, "ours-2", NULL, 0, &ours), CKR_OK);
    CHECK(find_by_label(s, "theirs", CKO_SECRET_KEY, &theirs) == 1);
    CHECK_RV(aes_gcm_roundtrip(s, theirs), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, ours), CKR_OK);
    fixture_close(s);
}

/* The key quota (policy max_keys) holds when processes create at once: it is counted in
 * the transaction that inserts, so no two creators take the last place. */
static void test_quota_holds_when_processes_create_at_once(void)
{
    enum { CHILDREN = 4, EACH = 3, QUOTA = 5 };
    fixture_append_policy("max_keys = 5");
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t kids[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        if ((kids[c] = fork()) == 0) {
            close(go[1]);
            CK_SESSION_HANDLE cs = fixture_open();
            char byte;
            if (read(go[0], &byte, 1) != 0) _exit(255); /* EOF: all start at once */
            int made = 0;
            for (int i = 0; i < EACH; i++) {
                char alias[24];
                CK_OBJECT_HANDLE k;
                snprintf(alias, sizeof(alias), "quota-%d-%d", c, i);
                CK_RV rv = make_aes(cs, alias, NULL, 0, &k);
                if (rv == CKR_OK)
                    made++;
                else if (rv != CKR_DEVICE_MEMORY)
                    _exit(200); /* the quota's code, or nothing */
            }
            fixture_close(cs);
            _exit(made);
        }
    }
    close(go[0]);
    usleep(300 * 1000); /* let the children log in */
    close(go[1]);
    int made = 0;
    for (int c = 0; c < CHILDREN; c++) {
        int status;
        waitpid(kids[c], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) <= EACH);
        if (WIFEXITED(status) && WEXITSTATUS(status) <= EACH) made += WEXITSTATUS(status);
    }
    printf("  %d keys made against a quota of %d\n", made, QUOTA);
    CHECK(made == QUOTA);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == QUOTA);
    CHECK(inspect_backend_material() == QUOTA);
    CHECK(inspect_log_count("the quota (policy max_keys) is 5") == CHILDREN * EACH - QUOTA);
}

/* ---- A version's material while a call is inside the backend on it ------------------ */

static const unsigned char held_msg[] = "decrypted while the key is destroyed";


/* On a session of its own: the envelope decryption of ct, or the destroy of the key. */
struct held_call {
    CK_OBJECT_HANDLE key;
    bool destroy;
    unsigned char ct[128], pt[128];
    CK_ULONG ct_len, pt_len;
    CK_RV rv;
    atomic_bool done;
};

static void *held_call_run(void *arg)
{
    struct held_call *c = arg;
    CK_SESSION_HANDLE s = 0;
    c->pt_len = sizeof(c->pt);
    c->rv = p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (c->rv == CKR_OK && c->destroy) c->rv = p11->C_DestroyObject(s, c->key);
    if (c->rv == CKR_OK && !c->destroy)
        c->rv = envelope_call(s, c->key, false, c->ct, c->ct_len, c->pt, &c->pt_len);
    if (s) p11->C_CloseSession(s);
    atomic_store(&c->done, true);
    return NULL;
}

/* Issue 16, the lifetime rule at a purge (here the immediate destroy the policy allows): an
 * envelope decryption held inside the backend's AES-GCM, between the C_DecryptInit and the
 * C_Decrypt on the version's material, keeps the destroy of that material waiting, whether
 * the destroyer is another thread or another process. Unhindered, the destroy takes a
 * fraction of a second; it is given 2 s and must not have ended. Then the decryption ends
 * with the plaintext, the destroy succeeds, and nothing of the key is left. */
static void test_a_call_inside_the_backend_on_a_version_holds_off_its_purge(void)
{
    fixture_append_policy("allow_immediate_destroy = true");
    for (int by_process = 0; by_process < 2; by_process++) {
        CK_SESSION_HANDLE s = fixture_open();
        struct held_call o = {.ct_len = sizeof(o.ct)};
        const char *alias = by_process ? "purged-by-a-process" : "purged-by-a-thread";
        CHECK_RV(make_aes(s, alias, NULL, 0, &o.key), CKR_OK);
        CHECK_RV(envelope_call(s, o.key, true, held_msg, sizeof(held_msg), o.ct, &o.ct_len),
                 CKR_OK);
        struct held_call d = {.key = o.key, .destroy = true};
        int go[2] = {-1, -1};
        pid_t child = -1;
        if (by_process) {
            /* Started before the hold (and ready, logged in), told to destroy during it;
             * its exit status is the destroy's verdict. */
            CHECK(pipe(go) == 0);
            child = fork();
            if (child == 0) {
                CK_SESSION_HANDLE c = fixture_open();
                char byte;
                CK_RV rv =
                    read(go[0], &byte, 1) == 1 ? p11->C_DestroyObject(c, o.key) : CKR_GENERAL_ERROR;
                fixture_close(c);
                _exit(rv == CKR_OK ? 0 : 1);
            }
        }
        pause_arm("backend-gcm:running");
        pthread_t ta, td;
        CHECK(pthread_create(&ta, NULL, held_call_run, &o) == 0);
        CHECK(pause_wait_reached("backend-gcm:running"));
        if (by_process)
            CHECK(write(go[1], "g", 1) == 1);
        else
            CHECK(pthread_create(&td, NULL, held_call_run, &d) == 0);
        bool ended = false;
        int status = 0;
        for (int ms = 0; ms < 2000 && !ended; ms += 10) {
            usleep(10 * 1000);
            ended = by_process ? waitpid(child, &status, WNOHANG) == child : atomic_load(&d.done);
        }
        if (ended)
            printf("  %s: the destroy ended under the held decryption\n",
                   by_process ? "another process" : "another thread");
        CHECK(!ended);
        pause_release("backend-gcm:running");
        pthread_join(ta, NULL);
        if (by_process) {
            if (!ended) waitpid(child, &status, 0);
            d.rv = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
            close(go[0]);
            close(go[1]);
        } else {
            pthread_join(td, NULL);
        }
        CHECK_RV(o.rv, CKR_OK);
        CHECK(o.pt_len == sizeof(held_msg) && memcmp(o.pt, held_msg, o.pt_len) == 0);
        CHECK_RV(d.rv, CKR_OK);
        CHECK(find_by_label(s, alias, CKO_SECRET_KEY, NULL) == 0);
        fixture_close(s);
        CHECK(inspect_backend_material() == 0);
    }
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_attribute_changes_racing_rotations_lose_no_version),
        T(test_purged_key_handle_never_names_a_newer_key),
        T(test_racing_enable_and_disable_audit_a_consistent_history),
        T(test_creating_while_another_thread_finds_needs_no_retry),
        T(test_key_made_by_another_process_works_after_a_create_of_our_own),
        T(test_quota_holds_when_processes_create_at_once),
        T(test_a_call_inside_the_backend_on_a_version_holds_off_its_purge),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
