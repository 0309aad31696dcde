/* test_concurrency.c - processes x threads hammering one store and token: creates with
 * colliding and unique aliases, finds, crypto, state changes and rotations. Afterwards
 * the store and backend must agree with what the workers report. */
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

#define PROCESSES 4
#define THREADS 4
#define SECONDS 4

static int run_number; /* unique aliases stay unique over several runs in one test */

struct worker {
    int process, thread;
    long created, collisions, unexpected, ops, backend_failures;
};

static CK_RV open_session(CK_SESSION_HANDLE *s)
{
    return p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
}

static void note_unexpected(struct worker *w, const char *what, CK_RV rv)
{
    fprintf(stderr, "  process %d thread %d: %s -> 0x%lx\n", w->process, w->thread, what, rv);
    w->unexpected++;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    CK_SESSION_HANDLE s;
    if (open_session(&s) != CKR_OK) {
        w->unexpected++;
        return NULL;
    }
    time_t end = time(NULL) + SECONDS;
    CK_OBJECT_HANDLE mine = 0;
    for (long i = 0; time(NULL) < end; i++) {
        char alias[64];
        bool colliding = i % 3 == 0;
        if (colliding) snprintf(alias, sizeof(alias), "shared-%ld", i % 6);
        else snprintf(alias, sizeof(alias), "r%d-p%d-t%d-%ld", run_number, w->process, w->thread, i);
        CK_OBJECT_HANDLE key;
        CK_RV rv = make_aes_alias(s, alias, alias, &key);
        if (rv == CKR_OK) {
            w->created++;
            mine = key;
            /* Our own new key is findable by its alias at once, from every thread. */
            CK_OBJECT_HANDLE found = 0;
            if (find_by_label(s, alias, CKO_SECRET_KEY, &found) != 1 || found != key)
                note_unexpected(w, "find", 0);
        } else if (colliding && rv == CKR_ATTRIBUTE_VALUE_INVALID) {
            w->collisions++; /* taken, possibly by a creation still in progress */
        } else if (rv == CKR_GENERAL_ERROR) {
            /* A backend failure that outlived CreateKey's retries: it must leave nothing
             * behind (checked below). SoftHSMv2 had them while a find of another thread
             * re-read an object being generated; the token lock keeps them apart now. */
            w->backend_failures++;
        } else {
            note_unexpected(w, "create", rv);
        }
        if (!mine) continue;
        rv = aes_gcm_roundtrip(s, mine);
        if (rv != CKR_OK && rv != CKR_KEY_FUNCTION_NOT_PERMITTED) note_unexpected(w, "gcm", rv);
        switch (i % 4) {
        case 1: rv = set_ulong(s, mine, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED); break;
        case 2: rv = set_ulong(s, mine, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED); break;
        case 3: {
            CK_BBOOL yes = CK_TRUE;
            CK_ATTRIBUTE a = {CKA_CMK_ROTATE_NOW, &yes, 1};
            rv = p11->C_SetAttributeValue(s, mine, &a, 1);
            if (rv == CKR_ACTION_PROHIBITED) rv = CKR_OK; /* disabled at that moment */
            break;
        }
        default: rv = CKR_OK;
        }
        if (rv != CKR_OK) note_unexpected(w, "change", rv);
        w->ops++;
    }
    p11->C_CloseSession(s);
    return NULL;
}

/* One process: THREADS workers; writes its totals to fd. */
static void run_process(int process, int fd)
{
    CK_SESSION_HANDLE s = fixture_open();
    struct worker workers[THREADS] = {0};
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t].process = process;
        workers[t].thread = t;
        pthread_create(&threads[t], NULL, work, &workers[t]);
    }
    long totals[4] = {0, 0, 0, 0};
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        totals[0] += workers[t].created;
        totals[1] += workers[t].unexpected;
        totals[2] += workers[t].ops;
        totals[3] += workers[t].backend_failures;
    }
    fixture_close(s);
    if (write(fd, totals, sizeof(totals)) != sizeof(totals)) _exit(3);
    _exit(harness_failed_checks ? 1 : 0);
}

/* The application's own mutexes (PKCS#11 case 3: callbacks, no CKF_OS_LOCKING_OK). */
static CK_RV app_create_mutex(CK_VOID_PTR_PTR out)
{
    pthread_mutex_t *m = malloc(sizeof(*m));
    if (!m) return CKR_HOST_MEMORY;
    pthread_mutex_init(m, NULL);
    *out = m;
    return CKR_OK;
}

static CK_RV app_destroy_mutex(CK_VOID_PTR m)
{
    pthread_mutex_destroy(m);
    free(m);
    return CKR_OK;
}

static CK_RV app_lock_mutex(CK_VOID_PTR m)
{
    return pthread_mutex_lock(m) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

static CK_RV app_unlock_mutex(CK_VOID_PTR m)
{
    return pthread_mutex_unlock(m) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

static void run_all(void);

static void test_processes_and_threads_keep_the_store_consistent(void)
{
    run_all();
}

/* The same with the application's mutex callbacks, with and without the OS-locking
 * flag: cmkp11 locks with the OS's primitives in every case (they are the same pthread
 * mutexes an application would give on this platform), so the result must not differ. */
static void test_mutex_callbacks_with_and_without_os_locking_keep_the_store_consistent(void)
{
    static CK_C_INITIALIZE_ARGS callbacks = {app_create_mutex, app_destroy_mutex, app_lock_mutex,
                                             app_unlock_mutex, 0, NULL};
    fixture_init_args = &callbacks;
    run_all();
    callbacks.flags = CKF_OS_LOCKING_OK;
    run_all();
    fixture_init_args = NULL;
}

static void run_all(void)
{
    long before = inspect_store_count("SELECT count(*) FROM cmk WHERE state != 0");
    if (before < 0) before = 0; /* no store yet */
    run_number++;
    int pipes[PROCESSES][2];
    pid_t pids[PROCESSES];
    for (int p = 0; p < PROCESSES; p++) {
        if (pipe(pipes[p]) != 0) return;
        pids[p] = fork();
        if (pids[p] == 0) run_process(p, pipes[p][1]);
        close(pipes[p][1]);
    }
    long created = 0, unexpected = 0, ops = 0, backend_failures = 0;
    for (int p = 0; p < PROCESSES; p++) {
        long totals[4] = {0, 0, 0, 0};
        CHECK(read(pipes[p][0], totals, sizeof(totals)) == sizeof(totals));
        close(pipes[p][0]);
        int status;
        waitpid(pids[p], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        created += totals[0];
        unexpected += totals[1];
        ops += totals[2];
        backend_failures += totals[3];
    }
    printf("  %ld keys created, %ld operations rounds, %ld unexpected errors, %ld backend "
           "failures\n", created, ops, unexpected, backend_failures);
    CHECK(unexpected == 0);
    CHECK(backend_failures == 0);
    /* Nor were any hidden by a retry (logged as warnings). */
    long retries = inspect_log_count("trying again");
    if (retries) printf("  %ld CreateKey retries\n", retries);
    CHECK(retries == 0);
    CHECK(created > 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state != 0") == before + created);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 0 OR rotating_to != 0") == 0);
    CHECK(inspect_store_count("SELECT count(*) - count(DISTINCT lower(alias)) FROM cmk_alias") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk_alias WHERE alias LIKE 'shared-%'") <= 6);
    long versions = inspect_store_count("SELECT count(*) FROM cmk_version");
    CHECK(versions == inspect_store_count("SELECT sum(primary_version) FROM cmk"));
    long material = inspect_backend_material();
    if (material != versions) printf("  backend material %ld, versions %ld\n", material, versions);
    CHECK(material == versions);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_processes_and_threads_keep_the_store_consistent),
        T(test_mutex_callbacks_with_and_without_os_locking_keep_the_store_consistent),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
