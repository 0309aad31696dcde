/* fuzz_import_token.c - libFuzzer harness for import_token_decode (src/import_token.c), the
 * reader of CKA_CMK_IMPORT_TOKEN, which arrives from outside before its MAC is checked.
 *
 * Input: the token itself, in place, so a read past it lands in ASan's redzone. Only a
 * token of exactly IMPORT_TOKEN_LEN bytes with the magic, format 1 and the wrap id length
 * decodes, and what decodes must encode back to the same body bytes. */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "import_token.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct import_token f;
    bool ok = import_token_decode(size ? data : NULL, size, &f);
    if (size != IMPORT_TOKEN_LEN) {
        CHECK(!ok);
        return 0;
    }
    bool well_formed = !memcmp(data, "CMKT", 4) && data[4] == 1 && data[41] == IMPORT_WRAP_ID_LEN;
    CHECK(ok == well_formed);
    if (!ok) return 0;
    CHECK(strlen(f.key_id) <= 36);
    CHECK(f.alg <= 0xff && f.bits <= 0xffff);
    unsigned char again[IMPORT_TOKEN_LEN];
    import_token_encode(&f, again);
    CHECK(memcmp(again, data, IMPORT_TOKEN_BODY_LEN) == 0);
    return 0;
}
