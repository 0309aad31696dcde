/* test_claims.c - recovery is a claim, not a guess: a process that undoes another's
 * half-made work (a creation, a rotation, an import) first takes the work over in the
 * store, so that of several recoveries one undoes it, once, and a recovery that read the
 * row before someone else finished or redid the work leaves it alone. Each interleaving
 * is forced with a pause point: one process is held right after it read the row, while
 * others act, then let go. */
#define _GNU_SOURCE /* unshare */
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "import_client.h"
#include "inspect.h"

static CK_BBOOL yes = CK_TRUE;

static CK_RV rotate_now(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CK_ATTRIBUTE a = {CKA_CMK_ROTATE_NOW, &yes, sizeof(yes)};
    return p11->C_SetAttributeValue(s, key, &a, 1);
}


struct sealed {
    unsigned char ct[512];
    CK_ULONG len;
};

static const unsigned char msg[] = "data sealed under one version of the key";

static void seal(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, struct sealed *out)
{
    out->len = sizeof(out->ct);
    CHECK_RV(envelope_call(s, key, true, msg, sizeof(msg), out->ct, &out->len), CKR_OK);
}

static bool opens(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const struct sealed *in)
{
    unsigned char pt[512];
    CK_ULONG len = sizeof(pt);
    CK_RV rv = envelope_call(s, key, false, in->ct, in->len, pt, &len);
    if (rv != CKR_OK) fprintf(stderr, "  decrypting failed: 0x%lx\n", rv);
    return rv == CKR_OK && len == sizeof(msg) && memcmp(pt, msg, len) == 0;
}

static int exit_code(pid_t pid)
{
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A process that logs in (which runs recovery) and leaves. */
static pid_t spawn_login(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE s = fixture_open();
        fixture_close(s);
        _exit(harness_failed_checks ? 1 : 0);
    }
    return pid;
}

/* A login held at point: the child reads the row and stops there until released. The
 * point is armed for the child alone; later children run free. */
static pid_t spawn_held_login(const char *point)
{
    pause_arm(point);
    pid_t pid = spawn_login();
    CHECK(pause_wait_reached(point));
    unsetenv("CMKP11_TEST_PAUSE_AT");
    return pid;
}

/* A rotation of key by a process SIGKILLed with its new version made and claimed. */
static void rotation_dies(CK_OBJECT_HANDLE key)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE s = fixture_open();
        setenv("CMKP11_TEST_CRASH_AT", "rotate:after-generate", 1);
        rotate_now(s, key);
        _exit(0);
    }
    CHECK(exit_code(pid) == 128 + SIGKILL);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE rotating_to = 2") == 1);
}

/* A CreateKey of alias "crashy" by a process SIGKILLed with the material made. */
static void creation_dies(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("CMKP11_TEST_CRASH_AT", "create:after-generate", 1);
        CK_SESSION_HANDLE s = fixture_open();
        CK_OBJECT_HANDLE k;
        make_aes_alias(s, "crashy", "crashy", &k);
        _exit(0);
    }
    CHECK(exit_code(pid) == 128 + SIGKILL);
}

/* Every version the store lists has its material in the backend, and nothing else. */
static void check_versions_have_material(void)
{
    long versions = inspect_store_count("SELECT count(*) FROM cmk_version");
    CHECK(versions == inspect_store_count("SELECT sum(primary_version) FROM cmk"));
    CHECK(inspect_backend_material() == versions);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 0 OR rotating_to != 0") == 0);
}

/* A process that rotates key and exits 0 when the rotation answers want. */
static pid_t spawn_rotation(CK_OBJECT_HANDLE key, CK_RV want)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE s = fixture_open();
        CK_RV rv = rotate_now(s, key);
        fixture_close(s);
        _exit(rv == want && !harness_failed_checks ? 0 : 1);
    }
    return pid;
}

/* The key rotated once, to version 2, and data sealed under either version opens; one
 * recovery and one rotation audited; every version has its material. */
static void check_rotated_once(CK_OBJECT_HANDLE key, const struct sealed *v1,
                               const struct sealed *v2)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_ULONG primary = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_PRIMARY_VERSION, &primary), CKR_OK);
    CHECK(primary == 2);
    CHECK(opens(s, key, v1));
    CHECK(opens(s, key, v2));
    fixture_close(s);
    CHECK(audits("RecoverRotateKey") == 1);
    CHECK(audits("RotateKey") == 1);
    check_versions_have_material();
}

/* A key with data sealed under version 1 (*v1) and a rotation that died; R1 logs in,
 * reads the dead claim and is held (its pid returned), R2 logs in and undoes it. */
static pid_t stale_rotation_recovery(CK_OBJECT_HANDLE *key, struct sealed *v1)
{
    CK_SESSION_HANDLE s = fixture_open();
    CHECK_RV(make_aes(s, "rotated", NULL, 0, key), CKR_OK);
    seal(s, *key, v1);
    fixture_close(s);
    rotation_dies(*key);
    pid_t r1 = spawn_held_login("recover-rotate:read");
    CHECK(exit_code(spawn_login()) == 0);
    CHECK(audits("RecoverRotateKey") == 1);
    return r1;
}

/* (a) R1 reads a dead rotator's claim and is held; R2 recovers it; the key rotates for
 * real to the same version number; R1 goes on. Before claims, R1 destroyed the new
 * primary's material and audited a second recovery. */
static void test_a_stale_rotation_recovery_destroys_nothing(void)
{
    CK_OBJECT_HANDLE key;
    struct sealed v1, v2;
    pid_t r1 = stale_rotation_recovery(&key, &v1);
    CK_SESSION_HANDLE s = fixture_open();
    CHECK_RV(rotate_now(s, key), CKR_OK); /* version 2 again, made for real */
    seal(s, key, &v2);
    fixture_close(s);
    pause_release("recover-rotate:read");
    CHECK(exit_code(r1) == 0);

    check_rotated_once(key, &v1, &v2);
}

/* (b) The same stale recovery meets a live rotator held inside its window (its version
 * made, not yet primary), and more processes log in and try to rotate meanwhile: the live
 * claim is never released by anyone else, no one else makes that version, and the
 * rotation ends well. Before claims, R1 destroyed the rotator's material and released its
 * claim; another rotator then took the same version, and the first one's promotion failed
 * and its clean-up destroyed the second one's material. */
static void test_b_a_live_rotators_claim_is_never_recovered(void)
{
    CK_OBJECT_HANDLE key;
    struct sealed v1, v2;
    pid_t r1 = stale_rotation_recovery(&key, &v1);
    pause_arm("rotate:before-promote");
    pid_t rotator = spawn_rotation(key, CKR_OK);
    CHECK(pause_wait_reached("rotate:before-promote"));
    unsetenv("CMKP11_TEST_PAUSE_AT");

    pause_release("recover-rotate:read"); /* R1 goes on with what it read */
    CHECK(exit_code(r1) == 0);
    pid_t others[4];
    for (int i = 0; i < 4; i++)
        others[i] = spawn_login();
    pid_t second = spawn_rotation(key, CKR_FUNCTION_FAILED); /* the live claim refuses it */
    for (int i = 0; i < 4; i++)
        CHECK(exit_code(others[i]) == 0);
    CHECK(exit_code(second) == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE rotating_to = 2") == 1);
    pause_release("rotate:before-promote");
    CHECK(exit_code(rotator) == 0);

    CK_SESSION_HANDLE s = fixture_open();
    seal(s, key, &v2);
    fixture_close(s);
    check_rotated_once(key, &v1, &v2);
}

/* An import of b into key by a process SIGKILLed with the material made and claimed. */
static void import_dies(CK_OBJECT_HANDLE key, CK_ULONG alg, struct blob *b, const struct params *p)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE s = fixture_open();
        setenv("CMKP11_TEST_CRASH_AT", "import:after-unwrap", 1);
        import(s, key, alg, b, p, 0);
        _exit(0);
    }
    CHECK(exit_code(pid) == 128 + SIGKILL);
}

/* (c) Case 7: an importer dies with its material made; R1 reads the claim and is held;
 * R2 undoes the import; the import is then made again and the key is Enabled; R1 goes
 * on. Before claims, R1 destroyed the Enabled key's material (the store said Enabled,
 * the key answered CmkNotFound). */
static void test_c_a_stale_import_recovery_keeps_a_later_import(void)
{
    static const CK_ULONG alg = CMK_WRAP_RSAES_OAEP_SHA_256;
    CK_ULONG external = CMK_ORIGIN_EXTERNAL;
    CK_ATTRIBUTE extra[] = {{CKA_CMK_ORIGIN, &external, sizeof(external)}};
    unsigned char m[32];
    RAND_bytes(m, sizeof(m));
    struct params p;
    struct blob b;
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "imported", extra, 1, &key), CKR_OK);
    CHECK_RV(get_params(s, key, alg, 2048, &p), CKR_OK);
    wrap_material(alg, &p, m, sizeof(m), &b);
    fixture_close(s);
    import_dies(key, alg, &b, &p);

    pid_t r1 = spawn_held_login("recover-import:read");
    CHECK(exit_code(spawn_login()) == 0); /* R2 undoes the dead import */
    CHECK(audits("RecoverImportKeyMaterial") == 1);
    s = fixture_open();
    CHECK(state_of(s, key) == CMK_STATE_PENDING_IMPORT);
    CHECK_RV(import(s, key, alg, &b, &p, 0), CKR_OK); /* the parameters still import */
    CHECK(state_of(s, key) == CMK_STATE_ENABLED);
    fixture_close(s);
    pause_release("recover-import:read");
    CHECK(exit_code(r1) == 0);

    s = fixture_open();
    CHECK(state_of(s, key) == CMK_STATE_ENABLED);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK); /* its material is there */
    char key_id[40], material[64];
    key_id_of(s, key, key_id);
    fixture_close(s);
    CHECK(audits("RecoverImportKeyMaterial") == 1);
    CHECK(audits("ImportKeyMaterial") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_import WHERE importing_pid != 0") == 0);
    snprintf(material, sizeof(material), "cmkp11/%s/v1", key_id);
    CHECK(inspect_backend_objects(material) == 1); /* the material, once */
}

/* (d) A creator dies with its material made; three processes recover at once, one of
 * them held after its read until the others are done and the alias is taken again.
 * Before claims, each recovery that had read the Creating row audited it (here two
 * RecoverCreateKey rows for one key). */
static void test_d_one_dead_creation_is_recovered_once(void)
{
    creation_dies();
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 0") == 1);
    CHECK(inspect_backend_material() == 1);

    pid_t r1 = spawn_held_login("recover-create:read");
    pid_t r2 = spawn_login(), r3 = spawn_login();
    CHECK(exit_code(r2) == 0);
    CHECK(exit_code(r3) == 0);
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes_alias(s, "crashy", "crashy", &key), CKR_OK); /* the alias is free again */
    fixture_close(s);
    pause_release("recover-create:read");
    CHECK(exit_code(r1) == 0);

    s = fixture_open();
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    fixture_close(s);
    CHECK(audits("RecoverCreateKey") == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
    check_versions_have_material();
}

/* A login that SIGKILLs itself at point (a recovery that took work over and died). */
static void login_dies_at(const char *point)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("CMKP11_TEST_CRASH_AT", point, 1);
        CK_SESSION_HANDLE s = fixture_open();
        fixture_close(s);
        _exit(0);
    }
    CHECK(exit_code(pid) == 128 + SIGKILL);
}

/* A recovery that dies after taking the work over leaves it to a dead owner (itself): the
 * next recovery takes it over in turn and finishes it, audited once. */
static void test_f_a_recovery_that_dies_is_finished_by_the_next(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "rotated", NULL, 0, &key), CKR_OK);
    struct sealed v1;
    seal(s, key, &v1);
    fixture_close(s);
    rotation_dies(key);
    login_dies_at("recover-rotate:taken");
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE rotating_to = 2") == 1);
    CHECK(audits("RecoverRotateKey") == 0);
    creation_dies();
    login_dies_at("recover-create:taken");
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 0") == 1);

    CHECK(exit_code(spawn_login()) == 0);
    CHECK(audits("RecoverRotateKey") == 1);
    CHECK(audits("RecoverCreateKey") == 1);
    check_versions_have_material();
    s = fixture_open();
    CHECK(opens(s, key, &v1));
    CHECK_RV(rotate_now(s, key), CKR_OK);
    struct sealed v2;
    seal(s, key, &v2);
    fixture_close(s);
    check_rotated_once(key, &v1, &v2);
}

/* An importer dies with the material made, and a process that logged in before (so its
 * recovery never saw the dead claim) imports other material with the same parameters:
 * the import claim it takes is a dead one, and what the dead import made under the key's
 * identity must go before the new material is made under it. Before, the key was left
 * with two objects under one identity, holding different material. */
static void test_h_an_import_over_a_dead_claim_leaves_one_material(void)
{
    CK_ULONG external = CMK_ORIGIN_EXTERNAL;
    CK_ATTRIBUTE extra[] = {{CKA_CMK_ORIGIN, &external, sizeof(external)}};
    unsigned char m1[32], m2[32];
    RAND_bytes(m1, sizeof(m1));
    RAND_bytes(m2, sizeof(m2));
    struct params p;
    struct blob b1, b2;
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    char key_id[40], material[64];
    CHECK_RV(make_aes(s, "imported", extra, 1, &key), CKR_OK);
    key_id_of(s, key, key_id);
    CHECK_RV(get_params(s, key, CMK_WRAP_RSAES_OAEP_SHA_256, 2048, &p), CKR_OK);
    wrap_material(CMK_WRAP_RSAES_OAEP_SHA_256, &p, m1, sizeof(m1), &b1);
    wrap_material(CMK_WRAP_RSAES_OAEP_SHA_256, &p, m2, sizeof(m2), &b2);
    fixture_close(s);

    int go[2];
    CHECK(pipe(go) == 0);
    fflush(NULL);
    pid_t later = fork(); /* logs in now, imports once the other import is dead */
    if (later == 0) {
        close(go[1]);
        CK_SESSION_HANDLE c = fixture_open();
        char byte;
        if (read(go[0], &byte, 1) != 1) _exit(2);
        CK_RV rv = import(c, key, CMK_WRAP_RSAES_OAEP_SHA_256, &b2, &p, 0);
        if (rv == CKR_OK) rv = aes_gcm_roundtrip(c, key);
        fixture_close(c);
        _exit(rv == CKR_OK && !harness_failed_checks ? 0 : 1);
    }
    close(go[0]);
    import_dies(key, CMK_WRAP_RSAES_OAEP_SHA_256, &b1, &p);
    CHECK(write(go[1], "g", 1) == 1);
    close(go[1]);
    CHECK(exit_code(later) == 0);
    snprintf(material, sizeof(material), "cmkp11/%s/v1", key_id);
    CHECK(inspect_backend_objects(material) == 1);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_import WHERE importing_pid != 0") == 0);
}

/* An immediate destroy (policy allow_immediate_destroy) killed after the material went
 * and before its transaction committed: the key was made due first, in a transaction of
 * its own, so the next login's purge ends the job. Before, the destroy's one transaction
 * rolled back and left an Enabled key whose material was gone. */
static void test_g_an_immediate_destroy_killed_half_way_is_finished(void)
{
    fixture_append_policy("allow_immediate_destroy = true");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, kept;
    CHECK_RV(make_aes(s, "doomed", NULL, 0, &key), CKR_OK);
    CHECK_RV(make_aes(s, "kept", NULL, 0, &kept), CKR_OK);
    fixture_close(s);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_HANDLE c = fixture_open();
        setenv("CMKP11_TEST_CRASH_AT", "purge:after-material", 1);
        p11->C_DestroyObject(c, key);
        _exit(0);
    }
    CHECK(exit_code(pid) == 128 + SIGKILL);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 1") == 1);
    CHECK(exit_code(spawn_login()) == 0); /* its purge ends the destruction */
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
    CHECK(audits("DeleteKey") == 1);
    check_versions_have_material();
    s = fixture_open();
    CHECK(find_by_label(s, "doomed", CKO_SECRET_KEY, NULL) == 0);
    CHECK_RV(aes_gcm_roundtrip(s, kept), CKR_OK);
    fixture_close(s);
}

/* ---- Case 10: a CreateKey refused by a full store ------------------------------- */

static const char *in_work(const char *name, char out[4096])
{
    snprintf(out, 4096, "%s/%s", getenv("CMK_WORK"), name);
    return out;
}

/* The store (and its WAL) moved onto a 2 MB tmpfs mounted in this process's own mount
 * namespace; false where that is not permitted. Before any thread starts. */
static bool store_on_tmpfs(void)
{
    char disk[4096], db[4096], link[4096];
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return false;
    in_work("small", disk);
    if (mkdir(disk, 0700) != 0 || mount("tmpfs", disk, "tmpfs", 0, "size=2m,mode=0700") != 0)
        return false;
    return symlink(in_work("small/cmk.db", db), in_work("cmk.db", link)) == 0;
}

static void fill(const char *path)
{
    static char chunk[4096];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    while (fd >= 0 && write(fd, chunk, sizeof(chunk)) > 0) {
    }
    CHECK(errno == ENOSPC);
    if (fd >= 0) close(fd);
}

static CK_SESSION_HANDLE creating_session;

static void *create_during(void *unused)
{
    (void)unused;
    CK_OBJECT_HANDLE k;
    return (void *)(uintptr_t)make_aes_alias(creating_session, "during", "during", &k);
}

/* A CreateKey whose row was written and whose disk then filled: the Enabled commit is
 * refused, and the row (with its alias) must not outlive the call, in this very process
 * (whose live creator recovery leaves alone) as soon as the store takes writes again.
 * Before, the alias stayed taken until the process ended and another one logged in. */
static void test_e_a_createkey_refused_by_a_full_store_leaves_no_row(void)
{
    if (!store_on_tmpfs()) {
        harness_skip("cannot mount a tmpfs in a private mount namespace here");
        return;
    }
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE before, key;
    CHECK_RV(make_aes(s, "before", NULL, 0, &before), CKR_OK);
    creating_session = s;
    pause_arm("create:after-insert");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, create_during, NULL) == 0);
    CHECK(pause_wait_reached("create:after-insert"));
    char filler[4096];
    fill(in_work("small/filler", filler));
    pause_release("create:after-insert");
    void *rv = NULL;
    pthread_join(t, &rv);
    CHECK((CK_RV)(uintptr_t)rv == CKR_DEVICE_MEMORY);
    CHECK(unlink(filler) == 0);
    CHECK_RV(make_aes_alias(s, "during", "during", &key), CKR_OK); /* the alias is free again */
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, before), CKR_OK);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state != 1") == 0);
    CHECK(inspect_backend_material() == 2);
}

/* ---- Chaos: rotators, importers and creators killed at random while others log in -- */

#define CHAOS_SECONDS 30
#define CHAOS_SEEDED 3
#define CHAOS_ALG CMK_WRAP_RSAES_OAEP_SHA_256

/* What a rotator sealed, appended to a file with one write: a SIGKILL leaves a record
 * whole or absent. Each must open at the end, whatever version it was sealed under. */
struct chaos_record {
    CK_OBJECT_HANDLE key;
    struct sealed data;
};

static int chaos_log(int flags)
{
    char path[4096];
    return open(in_work("sealed.bin", path), flags | O_CLOEXEC, 0600);
}

static void chaos_seal(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, int fd)
{
    struct chaos_record r = {key, {{0}, sizeof(r.data.ct)}};
    if (envelope_call(s, key, true, msg, sizeof(msg), r.data.ct, &r.data.len) == CKR_OK &&
        write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
        _exit(2);
}

/* Rotates the seeded keys and seals data under each new primary. */
static int chaos_ready_fd; /* in a worker: written once its login is done */

static CK_SESSION_HANDLE chaos_open(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    if (write(chaos_ready_fd, "r", 1) != 1) _exit(2);
    return s;
}

static void chaos_rotator(const CK_OBJECT_HANDLE *keys)
{
    CK_SESSION_HANDLE s = chaos_open();
    int fd = chaos_log(O_WRONLY | O_APPEND);
    for (;;) {
        CK_OBJECT_HANDLE key = keys[rand() % CHAOS_SEEDED];
        if (rand() % 2) rotate_now(s, key);
        chaos_seal(s, key, fd);
    }
}

/* Creates keys of a few aliases, rotates some, destroys them at once (a purge). */
static void chaos_creator(void)
{
    CK_SESSION_HANDLE s = chaos_open();
    for (;;) {
        char alias[16];
        snprintf(alias, sizeof(alias), "c%d", rand() % 4);
        CK_OBJECT_HANDLE k;
        if (make_aes(s, alias, NULL, 0, &k) == CKR_OK) {
            if (rand() % 2) rotate_now(s, k);
        } else if (find_by_label(s, alias, CKO_SECRET_KEY, &k) == 1) {
            p11->C_DestroyObject(s, k);
        }
    }
}

/* Creates EXTERNAL keys and imports material into each. */
static void chaos_importer(void)
{
    CK_SESSION_HANDLE s = chaos_open();
    CK_ULONG external = CMK_ORIGIN_EXTERNAL;
    CK_ATTRIBUTE extra[] = {{CKA_CMK_ORIGIN, &external, sizeof(external)}};
    for (;;) {
        CK_OBJECT_HANDLE key;
        struct params p;
        struct blob b;
        unsigned char m[32];
        RAND_bytes(m, sizeof(m));
        if (make_aes(s, NULL, extra, 1, &key) != CKR_OK ||
            get_params(s, key, CHAOS_ALG, 2048, &p) != CKR_OK)
            continue;
        wrap_material(CHAOS_ALG, &p, m, sizeof(m), &b);
        import(s, key, CHAOS_ALG, &b, &p, 0);
    }
}

/* Logs in (running recovery) again and again until the stop file appears. These are never
 * killed: SoftHSMv2 rewrites its token file in place at a login, and a SIGKILL in the
 * middle leaves the backend without its token (a backend fault, not cmkp11's). */
static void chaos_logins(void)
{
    char stop[4096];
    in_work("chaos.stop", stop);
    while (access(stop, F_OK) != 0)
        fixture_close(fixture_open());
}

enum { CHAOS_KILLED = 4, CHAOS_WORKERS = 6 }; /* roles 0-3 are killed, 4-5 log in */

/* Starts a worker of role; a killed one is started again after its own login (ready: its
 * login, which runs a recovery, is left whole for the reason above). */
static pid_t chaos_spawn(int role, unsigned seed, const CK_OBJECT_HANDLE *keys)
{
    int ready[2];
    if (pipe(ready) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) {
        close(ready[1]);
        char byte;
        if (role < CHAOS_KILLED) CHECK(read(ready[0], &byte, 1) == 1);
        close(ready[0]);
        return pid;
    }
    close(ready[0]);
    chaos_ready_fd = ready[1];
    srand(seed);
    switch (role) {
    case 0:
    case 1: chaos_rotator(keys); break;
    case 2: chaos_creator(); break;
    case 3: chaos_importer(); break;
    default: chaos_logins();
    }
    _exit(0);
}

/* Every secret key object that is Enabled encrypts and decrypts. */
static void check_enabled_keys_work(CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ULONG enabled = CMK_STATE_ENABLED;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_CMK_KEY_STATE, &enabled, sizeof(enabled)}};
    CK_OBJECT_HANDLE found[512];
    CK_ULONG n = 0;
    CHECK_RV(p11->C_FindObjectsInit(s, t, 2), CKR_OK);
    CHECK_RV(p11->C_FindObjects(s, found, 512, &n), CKR_OK);
    CHECK_RV(p11->C_FindObjectsFinal(s), CKR_OK);
    printf("  %lu Enabled keys\n", (unsigned long)n);
    for (CK_ULONG i = 0; i < n; i++)
        CHECK_RV(aes_gcm_roundtrip(s, found[i]), CKR_OK);
}

static void test_chaos_kills_lose_no_version_and_audit_each_undo_once(void)
{
    fixture_append_policy("allow_immediate_destroy = true");
    CK_OBJECT_HANDLE keys[CHAOS_SEEDED];
    int fd = chaos_log(O_WRONLY | O_CREAT | O_TRUNC);
    CHECK(fd >= 0);
    CK_SESSION_HANDLE s = fixture_open();
    for (int k = 0; k < CHAOS_SEEDED; k++) {
        char alias[16];
        snprintf(alias, sizeof(alias), "s%d", k);
        CHECK_RV(make_aes(s, alias, NULL, 0, &keys[k]), CKR_OK);
        chaos_seal(s, keys[k], fd);
    }
    fixture_close(s);
    close(fd);

    unsigned seed = (unsigned)time(NULL);
    printf("  seed %u\n", seed);
    srand(seed);
    pid_t workers[CHAOS_WORKERS];
    for (int i = 0; i < CHAOS_WORKERS; i++)
        workers[i] = chaos_spawn(i, (unsigned)rand(), keys);
    int kills = 0;
    for (time_t end = time(NULL) + CHAOS_SECONDS; time(NULL) < end; kills++) {
        /* 20 to 250 ms, then a random worker dies wherever it is and a new one starts */
        struct timespec t = {0, (20 + rand() % 230) * 1000000L};
        nanosleep(&t, NULL);
        int i = rand() % CHAOS_KILLED;
        kill(workers[i], SIGKILL);
        waitpid(workers[i], NULL, 0);
        workers[i] = chaos_spawn(i, (unsigned)rand(), keys);
    }
    for (int i = 0; i < CHAOS_KILLED; i++) {
        kill(workers[i], SIGKILL);
        waitpid(workers[i], NULL, 0);
    }
    char stop[4096];
    close(open(in_work("chaos.stop", stop), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    for (int i = CHAOS_KILLED; i < CHAOS_WORKERS; i++)
        CHECK(exit_code(workers[i]) == 0);
    printf("  %d processes killed at work\n", kills + CHAOS_KILLED);

    s = fixture_open(); /* recovers whatever the kills left */
    int records = 0;
    fd = chaos_log(O_RDONLY);
    struct chaos_record r;
    while (read(fd, &r, sizeof(r)) == (ssize_t)sizeof(r)) {
        records++;
        CHECK(opens(s, r.key, &r.data));
    }
    close(fd);
    check_enabled_keys_work(s);
    fixture_close(s);
    printf("  %d sealed records opened; %ld recoveries audited (%ld creations, %ld rotations, "
           "%ld imports)\n",
           records, inspect_store_count("SELECT count(*) FROM audit WHERE action LIKE 'Recover%'"),
           audits("RecoverCreateKey"), audits("RecoverRotateKey"),
           audits("RecoverImportKeyMaterial"));
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 0 OR rotating_to != 0") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_import WHERE importing_pid != 0") == 0);
    /* each undo audited once: a dead creation by its key, a dead rotation or import by the
     * dead process named in the detail */
    CHECK(inspect_store_count("SELECT count(*) FROM (SELECT 1 FROM audit WHERE action LIKE "
                              "'Recover%' GROUP BY action, key_id, detail HAVING count(*) > 1)") ==
          0);
    /* every version of a KMS key and every imported key's material is in the backend, and
     * nothing more (wrapping pairs, the import token key apart) */
    long want = inspect_store_count(
        "SELECT (SELECT coalesce(sum(primary_version), 0) FROM cmk WHERE origin = 1) + "
        "(SELECT count(*) FROM cmk_import WHERE has_material)");
    long have = inspect_backend_objects("cmkp11/") - inspect_backend_objects("cmkp11/import");
    printf("  %ld versions with material expected, %ld objects found\n", want, have);
    CHECK(want == have);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_alias WHERE alias LIKE 's%'") == CHAOS_SEEDED);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_a_stale_rotation_recovery_destroys_nothing),
        T(test_b_a_live_rotators_claim_is_never_recovered),
        T(test_c_a_stale_import_recovery_keeps_a_later_import),
        T(test_d_one_dead_creation_is_recovered_once),
        T(test_e_a_createkey_refused_by_a_full_store_leaves_no_row),
        T(test_f_a_recovery_that_dies_is_finished_by_the_next),
        T(test_g_an_immediate_destroy_killed_half_way_is_finished),
        T(test_h_an_import_over_a_dead_claim_leaves_one_material),
        T(test_chaos_kills_lose_no_version_and_audit_each_undo_once),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
