/* fuzz_envelope.c - libFuzzer harness for envelope_parse (src/envelope_format.c), the
 * reader of CKM_CMK_ENVELOPE ciphertext that arrives from outside.
 *
 * Input: the ciphertext itself, in place, so a read past it lands in ASan's redzone.
 * A header that parses must write back to the same 33 bytes, and the plaintext length
 * must be what remains after header and its format's tag (16 bytes for AES-GCM, 32 for
 * SM4's HMAC-SM3). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "envelope_format.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (log_use_stream(fopen("/dev/null", "w")) != 0) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope_header h;
    CK_ULONG plain = 0;
    CK_RV rv = envelope_parse(size ? data : NULL, (CK_ULONG)size, &h, &plain);
    if (size < ENVELOPE_HEADER_LEN + ENVELOPE_TAG_LEN) {
        CHECK(rv == CKR_ENCRYPTED_DATA_LEN_RANGE);
        return 0;
    }
    size_t tag = envelope_tag_len(data[0]);
    if (tag && size < ENVELOPE_HEADER_LEN + tag) {
        CHECK(rv == CKR_ENCRYPTED_DATA_LEN_RANGE);
        return 0;
    }
    if (rv != CKR_OK) {
        CHECK(rv == CKR_ENCRYPTED_DATA_INVALID);
        CHECK(!tag || (!data[17] && !data[18] && !data[19] && !data[20]));
        return 0;
    }
    CHECK(h.version >= 1);
    CHECK(h.format == data[0]);
    CHECK(plain == size - ENVELOPE_HEADER_LEN - tag);
    unsigned char again[ENVELOPE_HEADER_LEN];
    envelope_write(again, &h);
    CHECK(memcmp(again, data, ENVELOPE_HEADER_LEN) == 0);
    return 0;
}
