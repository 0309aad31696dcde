/* fuzz_common.h - what every libFuzzer harness here shares: the entry points libFuzzer
 * calls, and CHECK, which turns a broken property into a crash libFuzzer records. */
#ifndef CMKP11_FUZZ_COMMON_H
#define CMKP11_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
