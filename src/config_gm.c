/* config_gm.c - parses and checks [gm_backend] (config_gm.h). */
#include "config_gm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const keys[GM_CODE_COUNT] = {
    [GM_SM4_KEY_TYPE] = "sm4_key_type", [GM_SM4_KEY_GEN] = "sm4_key_gen",
    [GM_SM4_ECB] = "sm4_ecb",           [GM_SM4_CBC] = "sm4_cbc",
    [GM_SM4_CBC_PAD] = "sm4_cbc_pad",   [GM_SM4_CTR] = "sm4_ctr",
    [GM_SM2_KEY_TYPE] = "sm2_key_type", [GM_SM2_KEY_PAIR_GEN] = "sm2_key_pair_gen",
    [GM_SM2_SM3] = "sm2_sm3",           [GM_SM2_ENCRYPT] = "sm2_encrypt",
    [GM_SM3_HMAC] = "sm3_hmac",
};

/* cmkp11's own vendor codes (CKM_CMK_*, CKK_CMK_*): CKx_VENDOR_DEFINED | "CMK" << 8. */
#define OWN_RANGE 0xC34D4B00UL

const char *config_gm_key(enum gm_code code) { return keys[code]; }

/* "0x" and hex digits, or decimal digits; a vendor code is 32 bits in every header. */
static int parse_code(const char *value, unsigned long *out)
{
    bool hex = value[0] == '0' && (value[1] == 'x' || value[1] == 'X');
    const char *digits = hex ? value + 2 : value;
    if (!*digits || *digits == '-' || *digits == '+' || *digits == ' ') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(digits, &end, hex ? 16 : 10);
    if (errno || *end != '\0' || v > 0xFFFFFFFFULL) return 0;
    *out = (unsigned long)v;
    return 1;
}

/* Dotted OID text ("1.2.156.10197.1.301") to DER (06 len arcs): the form CKA_EC_PARAMS
 * takes for a named curve. */
static int encode_oid(const char *text, unsigned char *out, size_t cap, size_t *len)
{
    unsigned char body[GM_CURVE_MAX];
    size_t n = 0;
    unsigned long first = 0;
    int arcs = 0;
    for (const char *p = text;; p++) {
        if (*p < '0' || *p > '9') return 0;
        char *end;
        errno = 0;
        unsigned long arc = strtoul(p, &end, 10);
        if (errno || (end - p > 1 && *p == '0')) return 0;
        arcs++;
        if (arcs == 1 && arc > 2) return 0;
        if (arcs == 1) first = arc;
        if (arcs == 2 && first < 2 && arc > 39) return 0;
        if (arcs >= 2) {
            unsigned long long v = arcs == 2 ? first * 40ULL + arc : arc;
            unsigned char groups[10];
            int g = 0;
            do
                groups[g++] = (unsigned char)(v & 0x7F);
            while ((v >>= 7) != 0);
            while (g > 0) {
                if (n == sizeof(body)) return 0;
                g--;
                body[n++] = (unsigned char)(groups[g] | (g ? 0x80 : 0)); /* 0x80: more follow */
            }
        }
        if (*end == '\0') break;
        if (*end != '.') return 0;
        p = end;
    }
    if (arcs < 2 || n + 2 > cap || n > 127) return 0;
    out[0] = 0x06;
    out[1] = (unsigned char)n;
    memcpy(out + 2, body, n);
    *len = n + 2;
    return 1;
}

int config_gm_entry(struct gm_backend *gm, const char *name, const char *value, char *reason,
                    size_t size)
{
    if (!strcmp(name, "sm2_curve")) {
        if (encode_oid(value, gm->sm2_curve, sizeof(gm->sm2_curve), &gm->sm2_curve_len)) return 1;
        snprintf(reason, size,
                 "must be a curve OID in dotted form (the SM2 curve is "
                 "1.2.156.10197.1.301)");
        return 0;
    }
    for (int i = 0; i < GM_CODE_COUNT; i++) {
        if (strcmp(name, keys[i])) continue;
        unsigned long v;
        if (!parse_code(value, &v)) {
            snprintf(reason, size,
                     "must be the backend's code, 0x followed by hex digits or "
                     "a decimal number, at most 0xFFFFFFFF");
            return 0;
        }
        if ((v & 0xFFFFFF00UL) == OWN_RANGE) {
            snprintf(reason, size, "0x%lx is one of cmkp11's own codes, not the backend's", v);
            return 0;
        }
        gm->code[i] = v;
        gm->given[i] = true;
        return 1;
    }
    snprintf(reason, size, "unknown key");
    return 0;
}

int config_gm_check(const struct gm_backend *gm, char *reason, size_t size)
{
    if (gm->sm2_curve_len && !gm->given[GM_SM2_KEY_TYPE]) {
        snprintf(reason, size, "[gm_backend] sm2_curve is given without sm2_key_type");
        return -1;
    }
    return 0;
}
