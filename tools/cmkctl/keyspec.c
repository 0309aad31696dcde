/* keyspec.c - name tables. The module decides what is allowed; these tables only turn
 * the clouds' spellings into a PKCS#11 request and the module's values back into names. */
#include "keyspec.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cmkp11/cmkp11.h"

static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const unsigned char oid_k256[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
/* 1.2.156.10197.1.301, the SM2 curve (GB/T 32918.5) */
static const unsigned char oid_sm2[] = {0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d};

static const struct key_spec specs[] = {
    {"AES_128", FAMILY_AES, 16, NULL, 0, 0},
    {"AES_192", FAMILY_AES, 24, NULL, 0, 0},
    {"AES_256", FAMILY_AES, 32, NULL, 0, 0},
    {"RSA_2048", FAMILY_RSA, 2048, NULL, 0, 0},
    {"RSA_3072", FAMILY_RSA, 3072, NULL, 0, 0},
    {"RSA_4096", FAMILY_RSA, 4096, NULL, 0, 0},
    {"EC_P256", FAMILY_EC, 256, oid_p256, sizeof(oid_p256), 32},
    {"EC_P384", FAMILY_EC, 384, oid_p384, sizeof(oid_p384), 48},
    {"EC_P521", FAMILY_EC, 521, oid_p521, sizeof(oid_p521), 66},
    {"EC_P256K", FAMILY_EC, 256, oid_k256, sizeof(oid_k256), 32},
    {"HMAC_224", FAMILY_HMAC, 28, NULL, 0, 0},
    {"HMAC_256", FAMILY_HMAC, 32, NULL, 0, 0},
    {"HMAC_384", FAMILY_HMAC, 48, NULL, 0, 0},
    {"HMAC_512", FAMILY_HMAC, 64, NULL, 0, 0},
    {"SM4", FAMILY_SM4, 16, NULL, 0, 0},
    {"EC_SM2", FAMILY_SM2, 256, oid_sm2, sizeof(oid_sm2), 32},
};

static const struct {
    const char *synonym, *canonical;
} synonyms[] = {
    {"Aliyun_AES_256", "AES_256"}, {"SYMMETRIC_DEFAULT", "AES_256"},
    {"ECC_NIST_P256", "EC_P256"},  {"ECC_NIST_P384", "EC_P384"},
    {"ECC_NIST_P521", "EC_P521"},  {"ECC_SECG_P256K1", "EC_P256K"},
    {"Aliyun_SM4", "SM4"},         {"SM2", "EC_SM2"},
};

const struct key_spec *keyspec_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        if (!strcasecmp(specs[i].name, name)) return &specs[i];
    return NULL;
}

enum spec_lookup keyspec_lookup(const char *name, const struct key_spec **out)
{
    *out = NULL;
    for (size_t i = 0; i < sizeof(synonyms) / sizeof(synonyms[0]); i++)
        if (!strcasecmp(synonyms[i].synonym, name)) name = synonyms[i].canonical;
    *out = keyspec_by_name(name);
    return *out ? SPEC_FOUND : SPEC_UNKNOWN;
}

const struct key_spec *keyspec_default(int gm_mode)
{
    return keyspec_by_name(gm_mode ? "SM4" : "AES_256");
}

int keyspec_is_cipher(const struct key_spec *spec)
{
    return spec->family == FAMILY_AES || spec->family == FAMILY_SM4;
}

const char *keyspec_names(void)
{
    return "AES_128, AES_192, AES_256, RSA_2048, RSA_3072, RSA_4096, EC_P256, EC_P384, "
           "EC_P521, EC_P256K, HMAC_224, HMAC_256, HMAC_384, HMAC_512, SM4, EC_SM2 (synonyms: "
           "Aliyun_AES_256, "
           "SYMMETRIC_DEFAULT, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, "
           "Aliyun_SM4, SM2)";
}

enum spec_lookup keyusage_lookup(const char *text, CK_ULONG *usage, const struct key_spec **implied)
{
    static const struct {
        const char *name;
        CK_ULONG usage;
        const char *spec; /* Tencent's combined values fix the spec too */
    } usages[] = {
        {"ENCRYPT_DECRYPT", CMK_USAGE_ENCRYPT_DECRYPT, NULL},
        {"ENCRYPT/DECRYPT", CMK_USAGE_ENCRYPT_DECRYPT, NULL},
        {"SIGN_VERIFY", CMK_USAGE_SIGN_VERIFY, NULL},
        {"SIGN/VERIFY", CMK_USAGE_SIGN_VERIFY, NULL},
        {"GENERATE_VERIFY_MAC", CMK_USAGE_GENERATE_VERIFY_MAC, NULL},
        {"ASYMMETRIC_DECRYPT_RSA_2048", CMK_USAGE_ENCRYPT_DECRYPT, "RSA_2048"},
        {"ASYMMETRIC_SIGN_VERIFY_RSA_2048", CMK_USAGE_SIGN_VERIFY, "RSA_2048"},
        /* Tencent's English page says RSA here; the key it makes is ECC P-256. */
        {"ASYMMETRIC_SIGN_VERIFY_ECC", CMK_USAGE_SIGN_VERIFY, "EC_P256"},
        {"ASYMMETRIC_SIGN_VERIFY_ECDSA384", CMK_USAGE_SIGN_VERIFY, "EC_P384"},
        {"ASYMMETRIC_DECRYPT_SM2", CMK_USAGE_ENCRYPT_DECRYPT, "EC_SM2"},
        {"ASYMMETRIC_SIGN_VERIFY_SM2", CMK_USAGE_SIGN_VERIFY, "EC_SM2"},
    };
    *implied = NULL;
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++) {
        if (strcasecmp(usages[i].name, text)) continue;
        *usage = usages[i].usage;
        if (usages[i].spec) *implied = keyspec_by_name(usages[i].spec);
        return SPEC_FOUND;
    }
    return SPEC_UNKNOWN;
}

int keyusage_allowed(const struct key_spec *spec, CK_ULONG usage)
{
    switch (spec->family) {
    case FAMILY_AES:
    case FAMILY_SM4: return usage == CMK_USAGE_ENCRYPT_DECRYPT;
    case FAMILY_HMAC: return usage == CMK_USAGE_GENERATE_VERIFY_MAC;
    case FAMILY_EC: return usage == CMK_USAGE_SIGN_VERIFY;
    case FAMILY_RSA:
    case FAMILY_SM2: return usage == CMK_USAGE_ENCRYPT_DECRYPT || usage == CMK_USAGE_SIGN_VERIFY;
    }
    return 0;
}

/* The clouds' defaults: ENCRYPT_DECRYPT unless the spec can only sign or MAC (EC_SM2
 * does both; Alibaba's default ENCRYPT/DECRYPT applies). */
CK_ULONG keyusage_default(const struct key_spec *spec)
{
    switch (spec->family) {
    case FAMILY_HMAC: return CMK_USAGE_GENERATE_VERIFY_MAC;
    case FAMILY_EC: return CMK_USAGE_SIGN_VERIFY;
    default: return CMK_USAGE_ENCRYPT_DECRYPT;
    }
}

static const char *one_usage_name(CK_ULONG usage)
{
    switch (usage) {
    case CMK_USAGE_ENCRYPT_DECRYPT: return "ENCRYPT_DECRYPT";
    case CMK_USAGE_SIGN_VERIFY: return "SIGN_VERIFY";
    case CMK_USAGE_GENERATE_VERIFY_MAC: return "GENERATE_VERIFY_MAC";
    case CMK_USAGE_KEY_AGREEMENT: return "KEY_AGREEMENT";
    default: return "";
    }
}

/* A key made from a plain template may have several usages (cmkp11.h, CMK_USAGE_ALSO):
 * the primary one first, the others after a '+', e.g. "SIGN_VERIFY+ENCRYPT_DECRYPT". A
 * one-usage key reads as before. */
const char *keyusage_name(CK_ULONG usage)
{
    static char text[96];
    snprintf(text, sizeof(text), "%s", one_usage_name(CMK_USAGE_PRIMARY(usage)));
    for (CK_ULONG u = CMK_USAGE_ENCRYPT_DECRYPT; u <= CMK_USAGE_KEY_AGREEMENT; u++)
        if (usage & CMK_USAGE_ALSO(u))
            snprintf(text + strlen(text), sizeof(text) - strlen(text), "+%s", one_usage_name(u));
    return text;
}

static const char *const state_names[] = {
    [CMK_STATE_CREATING] = "Creating",
    [CMK_STATE_ENABLED] = "Enabled",
    [CMK_STATE_DISABLED] = "Disabled",
    [CMK_STATE_PENDING_DELETION] = "PendingDeletion",
    [CMK_STATE_PENDING_IMPORT] = "PendingImport",
};

const char *keystate_name(CK_ULONG state)
{
    return state < sizeof(state_names) / sizeof(state_names[0]) ? state_names[state] : "";
}

int keystate_parse(const char *text, CK_ULONG *state)
{
    for (CK_ULONG s = CMK_STATE_ENABLED; s < sizeof(state_names) / sizeof(state_names[0]); s++)
        if (!strcasecmp(state_names[s], text)) {
            *state = s;
            return 0;
        }
    return -1;
}

const char *origin_name(CK_ULONG origin)
{
    return origin == CMK_ORIGIN_KMS ? "KMS" : origin == CMK_ORIGIN_EXTERNAL ? "EXTERNAL" : "";
}

const char *protection_name(CK_ULONG level)
{
    return level == CMK_PROTECTION_HSM ? "HSM" : level == CMK_PROTECTION_SOFTWARE ? "SOFTWARE" : "";
}
