/* harness.c - runs test functions and prints "N passed, N failed". */
#include "harness.h"

#include <dlfcn.h>

int harness_failed_checks;
static bool skipped;

void harness_skip(const char *why)
{
    printf("skip: %s\n", why);
    skipped = true;
}

CK_FUNCTION_LIST_PTR harness_load(const char *path)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
        exit(2);
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR fl = NULL;
    if (!get || get(&fl) != CKR_OK || !fl) {
        fprintf(stderr, "%s: no usable C_GetFunctionList\n", path);
        exit(2);
    }
    return fl;
}

static bool selected(const char *name, int argc, char **argv)
{
    if (argc <= 1) return true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return true;
    return false;
}

int harness_main(const struct test_case *tests, size_t count, int argc, char **argv)
{
    int passed = 0, failed = 0, skips = 0;
    for (size_t i = 0; i < count; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        int before = harness_failed_checks;
        skipped = false;
        tests[i].run();
        bool ok = harness_failed_checks == before;
        printf("%s %s\n", !ok ? "FAIL" : skipped ? "skip" : "ok  ", tests[i].name);
        fflush(stdout);
        if (!ok) failed++;
        else if (skipped) skips++;
        else passed++;
    }
    if (argc > 1 && passed + failed + skips == 0) {
        fprintf(stderr, "no test of that name\n");
        return 1;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skips);
    return failed ? 1 : skips && !passed ? HARNESS_SKIPPED : 0;
}
