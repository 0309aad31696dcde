/* config_gm.h - [gm_backend] of cmkp11.conf: the backend's own codes for the GM/T key
 * types and mechanisms. PKCS#11 names none of them, so a vendor HSM that has SM4 or SM2
 * publishes its own vendor-defined numbers; mapped here, SM keys can live at level HSM
 * (sm_backend_map.h uses the table). */
#ifndef CMKP11_CONFIG_GM_H
#define CMKP11_CONFIG_GM_H

#include <stdbool.h>
#include <stddef.h>

enum gm_code {
    GM_SM4_KEY_TYPE,
    GM_SM4_KEY_GEN,
    GM_SM4_ECB,
    GM_SM4_CBC,
    GM_SM4_CBC_PAD,
    GM_SM4_CTR,
    GM_SM2_KEY_TYPE,
    GM_SM2_KEY_PAIR_GEN,
    GM_SM2_SM3,
    GM_SM2_ENCRYPT,
    GM_SM3_HMAC,
    GM_CODE_COUNT
};

#define GM_CURVE_MAX 32 /* DER OID bytes: far more than any named curve needs */

struct gm_backend {
    bool given[GM_CODE_COUNT];
    unsigned long code[GM_CODE_COUNT];
    unsigned char sm2_curve[GM_CURVE_MAX]; /* sm2_curve: CKA_EC_PARAMS (DER OID) of the pair */
    size_t sm2_curve_len;                  /* 0: not given */
};

/* One "name = value" of the section: 1 when taken, else 0 with why in reason. */
int config_gm_entry(struct gm_backend *gm, const char *name, const char *value, char *reason,
                    size_t size);
/* The rules across keys, after the file is read: 0, or -1 with why in reason. */
int config_gm_check(const struct gm_backend *gm, char *reason, size_t size);
/* The key that names code in the file ("sm4_cbc"). */
const char *config_gm_key(enum gm_code code);

#endif
