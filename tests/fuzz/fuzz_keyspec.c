/* fuzz_keyspec.c - libFuzzer harness for keyspec_from_request (src/keyspec.c).
 *
 * Input layout (missing bytes read as zero):
 *   byte 0       flags: bit0 CKA_VALUE_LEN present, bit1 it has a wrong length (4 bytes),
 *                bit2 CKA_MODULUS_BITS present, bit3 it has a wrong length (4 bytes),
 *                bit4 CKA_EC_PARAMS present, bit5 its pointer is NULL (length kept),
 *                bit6 cloud_specs_only, bit7 unrelated attributes around them
 *   bytes 1..8   CKA_VALUE_LEN (native-endian CK_ULONG)
 *   bytes 9..16  CKA_MODULUS_BITS (native-endian CK_ULONG)
 *   bytes 17..   CKA_EC_PARAMS: the rest of the input, in place, so a read past it
 *                lands in the input's ASan redzone
 * keyspec_from_request runs for each key-generation mechanism; a returned spec must
 * be NUL-terminated inside its buffer and agree with the mechanism. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "keyspec.h"
#include "cmkp11/cmkp11.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (log_use_stream(fopen("/dev/null", "w")) != 0) abort();
    log_threshold = LOG_LEVEL_DEBUG; /* format the info lines too (they print the name) */
    return 0;
}

static const CK_MECHANISM_TYPE mechs[] = {
    CKM_AES_KEY_GEN,     CKM_GENERIC_SECRET_KEY_GEN,  CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_EC_KEY_PAIR_GEN, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_CMK_SM4_KEY_GEN,
};

static void check_spec(CK_MECHANISM_TYPE mech, bool cloud_only, const struct keyspec *ks)
{
    CHECK(memchr(ks->name, '\0', sizeof(ks->name)) != NULL);
    CHECK(ks->name[0] != '\0');
    if (cloud_only) CHECK(ks->cloud_spec);
    switch (mech) {
    case CKM_AES_KEY_GEN:
        CHECK(ks->key_type == CKK_AES && ks->symmetric && ks->cloud_spec);
        CHECK(!strcmp(ks->name, "AES_128") || !strcmp(ks->name, "AES_192") ||
              !strcmp(ks->name, "AES_256"));
        CHECK(keyspec_secret_bytes(ks->name) * 8 == strtoul(ks->name + 4, NULL, 10));
        break;
    case CKM_CMK_SM4_KEY_GEN:
        CHECK(ks->key_type == CKK_CMK_SM4 && ks->symmetric && ks->cloud_spec);
        CHECK(!strcmp(ks->name, "SM4") && keyspec_secret_bytes(ks->name) == 16);
        break;
    case CKM_GENERIC_SECRET_KEY_GEN:
        CHECK(ks->key_type == CKK_GENERIC_SECRET && ks->symmetric);
        CHECK(!strncmp(ks->name, "HMAC_", 5));
        CHECK(ks->cloud_spec == (!strcmp(ks->name, "HMAC_224") || !strcmp(ks->name, "HMAC_256") ||
                                 !strcmp(ks->name, "HMAC_384") || !strcmp(ks->name, "HMAC_512")));
        CHECK(keyspec_secret_bytes(ks->name) * 8 == strtoul(ks->name + 5, NULL, 10));
        break;
    case CKM_RSA_PKCS_KEY_PAIR_GEN:
        CHECK(ks->key_type == CKK_RSA && !ks->symmetric);
        CHECK(!strncmp(ks->name, "RSA_", 4));
        break;
    case CKM_EC_KEY_PAIR_GEN:
        /* The SM2 curve's keys have a type of their own; every other curve's are CKK_EC. */
        CHECK(ks->key_type == (!strcmp(ks->name, "EC_SM2") ? CKK_CMK_SM2 : CKK_EC));
        CHECK(!ks->symmetric);
        break;
    case CKM_EC_EDWARDS_KEY_PAIR_GEN:
        CHECK(ks->key_type == CKK_EC_EDWARDS && !ks->symmetric);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t head[17] = {0};
    memcpy(head, data, size < sizeof(head) ? size : sizeof(head));
    uint8_t flags = head[0];
    bool cloud_only = flags & 0x40;

    /* The ulong values live in exact-size heap buffers (8 bytes, or 4 when the flag
     * asks for the classic 32-bit CK_ULONG mistake). */
    CK_ULONG value_len, modulus_bits;
    memcpy(&value_len, head + 1, sizeof(CK_ULONG));
    memcpy(&modulus_bits, head + 9, sizeof(CK_ULONG));
    size_t vl_len = flags & 0x02 ? 4 : sizeof(CK_ULONG);
    size_t mb_len = flags & 0x08 ? 4 : sizeof(CK_ULONG);
    unsigned char *vl = malloc(vl_len), *mb = malloc(mb_len);
    if (!vl || !mb) abort();
    memcpy(vl, &value_len, vl_len);
    memcpy(mb, &modulus_bits, mb_len);

    const uint8_t *params = size > 17 ? data + 17 : NULL;
    size_t params_len = size > 17 ? size - 17 : 0;

    static CK_BBOOL yes = CK_TRUE;
    static CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[8];
    CK_ULONG n = 0;
    if (flags & 0x80) tmpl[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    if (flags & 0x01) tmpl[n++] = (CK_ATTRIBUTE){CKA_VALUE_LEN, vl, vl_len};
    if (flags & 0x04) tmpl[n++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, mb, mb_len};
    if (flags & 0x10)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, flags & 0x20 ? NULL : (void *)params, params_len};
    if (flags & 0x80) tmpl[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};

    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        struct keyspec ks;
        memset(&ks, 0xA5, sizeof(ks)); /* a stale buffer: the result must not rely on zero */
        CK_RV rv = keyspec_from_request(mechs[i], tmpl, n, cloud_only, &ks);
        if (rv == CKR_OK)
            check_spec(mechs[i], cloud_only, &ks);
        else
            CHECK(rv == CKR_TEMPLATE_INCOMPLETE || rv == CKR_ATTRIBUTE_VALUE_INVALID ||
                  rv == CKR_KEY_SIZE_RANGE || rv == CKR_CURVE_NOT_SUPPORTED);
    }
    /* An unknown mechanism is refused. */
    struct keyspec ks;
    CHECK(keyspec_from_request(CKM_SHA256, tmpl, n, cloud_only, &ks) == CKR_MECHANISM_INVALID);

    free(vl);
    free(mb);
    return 0;
}
