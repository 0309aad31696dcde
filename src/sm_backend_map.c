/* sm_backend_map.c - the translation of cmkp11's GM/T codes to the backend's
 * (sm_backend_map.h), read from the loaded configuration. */
#include "sm_backend_map.h"

#include <string.h>

#include "cmk_import.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "log.h"
#include "module.h"

static const struct sm_mech {
    CK_MECHANISM_TYPE ours;
    enum gm_code code;
    CK_KEY_TYPE key_type; /* the keys it works on */
    const char *name;
} mechs[] = {
    {CKM_CMK_SM4_KEY_GEN, GM_SM4_KEY_GEN, CKK_CMK_SM4, "CKM_CMK_SM4_KEY_GEN"},
    {CKM_CMK_SM4_ECB, GM_SM4_ECB, CKK_CMK_SM4, "CKM_CMK_SM4_ECB"},
    {CKM_CMK_SM4_CBC, GM_SM4_CBC, CKK_CMK_SM4, "CKM_CMK_SM4_CBC"},
    {CKM_CMK_SM4_CBC_PAD, GM_SM4_CBC_PAD, CKK_CMK_SM4, "CKM_CMK_SM4_CBC_PAD"},
    {CKM_CMK_SM4_CTR, GM_SM4_CTR, CKK_CMK_SM4, "CKM_CMK_SM4_CTR"},
    {CKM_CMK_SM2_KEY_PAIR_GEN, GM_SM2_KEY_PAIR_GEN, CKK_CMK_SM2, "CKM_CMK_SM2_KEY_PAIR_GEN"},
    {CKM_CMK_SM2_SM3, GM_SM2_SM3, CKK_CMK_SM2, "CKM_CMK_SM2_SM3"},
    {CKM_CMK_SM2_ENCRYPT, GM_SM2_ENCRYPT, CKK_CMK_SM2, "CKM_CMK_SM2_ENCRYPT"},
    {CKM_CMK_SM3_HMAC, GM_SM3_HMAC, CKK_GENERIC_SECRET, "CKM_CMK_SM3_HMAC"},
};
#define MECH_COUNT (sizeof(mechs) / sizeof(mechs[0]))

/* CKA_EC_PARAMS of the SM2 curve, 1.2.156.10197.1.301, for a backend given no sm2_curve. */
static const unsigned char sm2_oid[] = {0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D};
static const CK_ULONG sm4_bytes = 16;

static const struct gm_backend *gm(void) { return &module.cfg.gm; }

static const struct sm_mech *find(CK_MECHANISM_TYPE ours)
{
    for (size_t i = 0; i < MECH_COUNT; i++)
        if (mechs[i].ours == ours) return &mechs[i];
    return NULL;
}

bool sm_map_is_sm_key(CK_KEY_TYPE type) { return type == CKK_CMK_SM4 || type == CKK_CMK_SM2; }

bool sm_map_code(CK_MECHANISM_TYPE ours, CK_MECHANISM_TYPE *backend)
{
    const struct sm_mech *m = find(ours);
    if (!m || !gm()->given[m->code]) return false;
    *backend = gm()->code[m->code];
    return true;
}

static bool given(enum gm_code c) { return gm()->given[c]; }

bool sm_map_spec_served(CK_KEY_TYPE type, unsigned long usage)
{
    if (type == CKK_CMK_SM4)
        return given(GM_SM4_KEY_TYPE) && given(GM_SM4_KEY_GEN) &&
               (given(GM_SM4_ECB) || given(GM_SM4_CBC) || given(GM_SM4_CBC_PAD) ||
                given(GM_SM4_CTR));
    if (type == CKK_CMK_SM2)
        return given(GM_SM2_KEY_TYPE) && given(GM_SM2_KEY_PAIR_GEN) &&
               given(usage == CMK_USAGE_SIGN_VERIFY ? GM_SM2_SM3 : GM_SM2_ENCRYPT);
    return false;
}

bool sm_map_keygen(CK_KEY_TYPE type, CK_KEY_TYPE *backend_type, CK_MECHANISM_TYPE *gen)
{
    bool sm4 = type == CKK_CMK_SM4;
    enum gm_code key_type = sm4 ? GM_SM4_KEY_TYPE : GM_SM2_KEY_TYPE;
    enum gm_code generation = sm4 ? GM_SM4_KEY_GEN : GM_SM2_KEY_PAIR_GEN;
    if (!given(key_type) || !given(generation)) {
        log_warning("key spec %s at level HSM: [gm_backend] %s and %s must name the backend's "
                    "codes",
                    sm4 ? "SM4" : "EC_SM2", config_gm_key(key_type), config_gm_key(generation));
        return false;
    }
    *backend_type = gm()->code[key_type];
    *gen = gm()->code[generation];
    return true;
}

bool sm_map_generate(CK_KEY_TYPE type, struct tmpl_builder *main, struct tmpl_builder *pub,
                     CK_MECHANISM *gen)
{
    CK_KEY_TYPE unused;
    if (!sm_map_keygen(type, &unused, &gen->mechanism)) return false;
    gen->pParameter = NULL;
    gen->ulParameterLen = 0;
    /* The template keeps pointers: the value lives in the configuration. */
    const CK_KEY_TYPE *backend_type =
        &gm()->code[type == CKK_CMK_SM4 ? GM_SM4_KEY_TYPE : GM_SM2_KEY_TYPE];
    tmpl_set(main, CKA_KEY_TYPE, backend_type, sizeof(CK_KEY_TYPE));
    if (type == CKK_CMK_SM4) {
        tmpl_set(main, CKA_VALUE_LEN, &sm4_bytes, sizeof(sm4_bytes));
        return true;
    }
    tmpl_remove(main, CKA_EC_PARAMS); /* the curve belongs to the public template */
    tmpl_set(pub, CKA_KEY_TYPE, backend_type, sizeof(CK_KEY_TYPE));
    size_t curve_len = gm()->sm2_curve_len;
    tmpl_set(pub, CKA_EC_PARAMS, curve_len ? gm()->sm2_curve : sm2_oid,
             curve_len ? (CK_ULONG)curve_len : sizeof(sm2_oid));
    return true;
}

CK_RV sm_map_mechanism(const CK_MECHANISM *in, CK_MECHANISM *out)
{
    const struct sm_mech *m = find(in->mechanism);
    if (!m) {
        log_warning("mechanism 0x%lx: an SM key at level HSM takes only cmkp11's SM "
                    "mechanisms (CKM_CMK_SM*)",
                    in->mechanism);
        return CKR_MECHANISM_INVALID;
    }
    if (!gm()->given[m->code]) {
        log_warning("%s: not offered at level HSM: [gm_backend] %s names no backend code for it",
                    m->name, config_gm_key(m->code));
        return CKR_MECHANISM_INVALID;
    }
    *out = *in;
    out->mechanism = gm()->code[m->code];
    return CKR_OK;
}

CK_RV sm_map_for_key(CK_KEY_TYPE key_type, CK_MECHANISM_PTR *mech, CK_MECHANISM *buf)
{
    const struct sm_mech *m = find((*mech)->mechanism);
    if (!m && !sm_map_is_sm_key(key_type)) return CKR_OK;
    if (!m || m->key_type != key_type) {
        log_warning("mechanism 0x%lx does not fit the key's type 0x%lx (SM4 and SM2 keys take "
                    "their CKM_CMK_SM4_* / CKM_CMK_SM2_* mechanisms, and only they)",
                    (*mech)->mechanism, key_type);
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    CK_RV rv = sm_map_mechanism(*mech, buf);
    if (rv == CKR_OK) *mech = buf;
    return rv;
}

CK_RV sm_map_resolve(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *key, enum cmk_use use,
                     CK_MECHANISM_PTR *mech, CK_MECHANISM *buf)
{
    struct cmk_live live;
    CK_RV rv = cmk_resolve_version_for_use(session, *key, handle_version(*key), use, key, &live);
    if (rv != CKR_OK || !*mech) return rv;
    return sm_map_for_key(live.key_type, mech, buf);
}

CK_RV sm_map_answer(CK_KEY_TYPE type, CK_ATTRIBUTE *a)
{
    bool sm4 = type == CKK_CMK_SM4;
    CK_ULONG v = a->type == CKA_KEY_TYPE ? type
                 : sm4                   ? CKM_CMK_SM4_KEY_GEN
                                         : CKM_CMK_SM2_KEY_PAIR_GEN;
    if (a->type == CKA_KEY_TYPE || a->type == CKA_KEY_GEN_MECHANISM)
        return cmk_attr_put(a, &v, sizeof(v));
    if (a->type == CKA_EC_PARAMS && !sm4) return cmk_attr_put(a, sm2_oid, sizeof(sm2_oid));
    return (CK_RV)-1;
}

CK_RV sm_map_sm4_ecb(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material, const unsigned char *in,
                     CK_ULONG len, unsigned char *out)
{
    CK_MECHANISM ours = {CKM_CMK_SM4_ECB, NULL, 0}, ecb;
    CK_RV rv = sm_map_mechanism(&ours, &ecb);
    if (rv != CKR_OK) return rv;
    CK_ULONG out_len = len;
    /* The material is a CMK version's, which a purge destroys: Init to its end is one
     * shared token-lock section (module.h: the lifetime of the module's own objects). */
    rv = module_token_lock_shared();
    if (rv != CKR_OK) return rv;
    rv = module.be.fn->C_EncryptInit(session, &ecb, material);
    if (rv == CKR_OK) rv = module.be.fn->C_Encrypt(session, (CK_BYTE_PTR)in, len, out, &out_len);
    module_token_unlock();
    if (rv == CKR_OK && out_len != len) rv = CKR_DEVICE_ERROR;
    return rv;
}
