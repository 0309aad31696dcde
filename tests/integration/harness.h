/* harness.h - a minimal test runner for the integration tests: each test is a
 * function; a failed check prints file:line and the expression, and marks the test. */
#ifndef CMKP11_TEST_HARNESS_H
#define CMKP11_TEST_HARNESS_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmkp11/cmkp11.h"

extern int harness_failed_checks;

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);            \
            harness_failed_checks++;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_RV(expr, want)                                                                       \
    do {                                                                                           \
        CK_RV got_ = (expr);                                                                       \
        if (got_ != (CK_RV)(want)) {                                                               \
            fprintf(stderr, "  %s:%d: %s returned 0x%lx, expected %s (0x%lx)\n", __FILE__,        \
                    __LINE__, #expr, got_, #want, (CK_RV)(want));                                 \
            harness_failed_checks++;                                                               \
        }                                                                                          \
    } while (0)

struct test_case {
    const char *name;
    void (*run)(void);
};

/* Marks the running test skipped (the environment cannot stage what it needs), with the
 * reason; a run whose every test skipped exits with HARNESS_SKIPPED. */
#define HARNESS_SKIPPED 77
void harness_skip(const char *why);

/* Loads a PKCS#11 module and returns its function list (exits on failure). */
CK_FUNCTION_LIST_PTR harness_load(const char *path);
/* Runs the named tests (all when names is empty); returns the process exit code. */
int harness_main(const struct test_case *tests, size_t count, int argc, char **argv);

#endif
