/* test_kills.c - a process doing every kind of change is killed (SIGKILL) at random
 * moments, again and again; after the next login nothing is half-made, no key lost
 * its material, no alias is lost or doubled, and the audit agrees with the store. */
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

#define KILLS 200
#define POOL 8 /* aliases k0..k7: creations collide, renames move between them */

/* Child: after its login, loops random changes on the token until killed. */
static void churn(unsigned seed, int ready)
{
    CK_SESSION_HANDLE s = fixture_open();
    if (write(ready, "r", 1) != 1) _exit(2);
    srand(seed);
    for (;;) {
        char alias[16];
        snprintf(alias, sizeof(alias), "k%d", rand() % POOL);
        CK_OBJECT_HANDLE key = 0;
        bool have = find_by_alias(s, alias, &key) == 1;
        switch (rand() % 5) {
        case 0: make_aes_alias(s, alias, alias, &key); break; /* create (or collide) */
        case 1: {                                         /* rotate now */
            CK_BBOOL yes = CK_TRUE;
            CK_ATTRIBUTE a = {CKA_CMK_ROTATE_NOW, &yes, 1};
            if (have) p11->C_SetAttributeValue(s, key, &a, 1);
            break;
        }
        case 2: { /* alias change */
            char to[16];
            snprintf(to, sizeof(to), "k%d", rand() % POOL);
            if (have) set_text(s, key, CKA_CMK_ALIAS, to);
            break;
        }
        case 3: /* schedule deletion */
            if (have) p11->C_DestroyObject(s, key);
            break;
        default: { /* cancel a deletion, and enable again */
            CK_ULONG pending = CMK_STATE_PENDING_DELETION;
            CK_ATTRIBUTE t[] = {{CKA_CMK_KEY_STATE, &pending, sizeof(pending)}};
            CK_OBJECT_HANDLE p;
            if (find_count(s, t, 1, &p) > 0) {
                set_ulong(s, p, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED);
                set_ulong(s, p, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED);
            }
        }
        }
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static unsigned next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state >> 11);
}

static void test_random_kills_leave_a_consistent_token(void)
{
    rng_state ^= (uint64_t)time(NULL);
    /* Keys made before the kills: on a loaded machine a child may finish no CreateKey of its
     * own, and these must all outlive the kills (a deletion only schedules). */
    enum { SEEDED = 3 };
    char seeded[SEEDED][40];
    CK_SESSION_HANDLE s = fixture_open();
    for (int k = 0; k < SEEDED; k++) {
        char alias[16];
        CK_OBJECT_HANDLE key = 0;
        snprintf(alias, sizeof(alias), "k%d", k);
        CHECK_RV(make_aes_alias(s, alias, alias, &key), CKR_OK);
        CK_ATTRIBUTE id = {CKA_CMK_KEY_ID, seeded[k], 36};
        CHECK_RV(p11->C_GetAttributeValue(s, key, &id, 1), CKR_OK);
        seeded[k][36] = '\0';
    }
    fixture_close(s);
    int killed = 0;
    for (int i = 0; i < KILLS; i++) {
        int ready[2];
        if (pipe(ready) != 0) return;
        pid_t pid = fork();
        if (pid == 0) {
            close(ready[0]);
            churn(next_random(), ready[1]);
        }
        close(ready[1]);
        char byte;
        bool started = read(ready[0], &byte, 1) == 1;
        close(ready[0]);
        /* 5 to 60 ms into its work: inside SQLite, the backend, or between the two */
        struct timespec t = {0, (long)(5000 + next_random() % 55000) * 1000L};
        nanosleep(&t, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (started && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            killed++;
        else
            fprintf(stderr, "  round %d: child was not killed at work (status 0x%x)\n", i, status);
    }
    printf("  %d processes killed at work\n", killed);
    CHECK(killed == KILLS);

    s = fixture_open(); /* the login recovers what the kills left */
    CK_OBJECT_HANDLE key;
    for (int k = 0; k < POOL; k++) { /* every live key works with its primary version */
        char alias[16];
        snprintf(alias, sizeof(alias), "k%d", k);
        if (find_by_alias(s, alias, &key) == 1) {
            CK_ULONG state = 0;
            CHECK_RV(get_ulong(s, key, CKA_CMK_KEY_STATE, &state), CKR_OK);
            if (state == CMK_STATE_ENABLED) CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
        }
    }
    fixture_close(s);

    long rows = inspect_store_count("SELECT count(*) FROM cmk");
    long versions = inspect_store_count("SELECT count(*) FROM cmk_version");
    printf("  %ld keys, %ld versions after recovery; audited: %ld creations, %ld rotations, "
           "%ld renames or deletions, %ld recoveries\n",
           rows, versions,
           inspect_store_count("SELECT count(*) FROM audit WHERE action = 'CreateKey'"),
           inspect_store_count("SELECT count(*) FROM audit WHERE action = 'RotateKey'"),
           inspect_store_count("SELECT count(*) FROM audit WHERE action IN "
                               "('UpdateKeyAttributes', 'ScheduleKeyDeletion')"),
           inspect_store_count("SELECT count(*) FROM audit WHERE action LIKE 'Recover%'"));
    CHECK(rows >= SEEDED);
    for (int k = 0; k < SEEDED; k++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM cmk WHERE key_id = '%.36s'", seeded[k]);
        CHECK(inspect_store_count(sql) == 1);
    }
    /* nothing half-made */
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 0 OR rotating_to != 0") == 0);
    /* every version has its material, and no material is without its version */
    CHECK(versions == inspect_store_count("SELECT sum(primary_version) FROM cmk"));
    CHECK(inspect_backend_material() == versions);
    /* aliases: unique, and never more keys holding them than the pool has names */
    CHECK(inspect_store_count("SELECT count(alias) - count(DISTINCT lower(alias)) FROM cmk_alias") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_alias") <= POOL);
    /* the audit agrees: each key has its creation, and each created key is either still
     * here or its removal was audited */
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE key_id NOT IN "
                              "(SELECT key_id FROM audit WHERE action = 'CreateKey')") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM audit a WHERE action = 'CreateKey' AND "
                              "key_id NOT IN (SELECT key_id FROM cmk) AND key_id NOT IN "
                              "(SELECT key_id FROM audit WHERE action IN ('DeleteKey', "
                              "'RecoverCreateKey'))") == 0);
    /* each version above 1 was audited as a rotation */
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'RotateKey'") ==
          versions - rows);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_random_kills_leave_a_consistent_token),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
