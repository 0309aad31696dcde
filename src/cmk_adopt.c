/* cmk_adopt.c - token keys that arrive by C_CreateObject (import in clear:
 * pkcs11-tool --write-object, p11tool --write, Java KeyStore.setEntry) or by
 * C_CopyObject of a session key into the token (Java's keytool) become CMKs, like
 * generated ones: a store row, non-extractable sensitive material with cmkp11's
 * identity, the usage rules. Imported material has origin EXTERNAL; a copy of a key the
 * HSM generated (CKA_LOCAL) keeps origin KMS. Public keys stay ordinary objects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmk.h"
#include "cmk_create.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "log.h"
#include "module.h"
#include "util.h"

/* What the rules need to know of the key, read from the template or the source. */
#define ADOPT_FLAGS 8

struct key_facts {
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE type;
    CK_ULONG value_len, modulus_bits;
    unsigned char params[1024]; /* an OID, or explicit curve parameters (P-521: about 400 bytes) */
    CK_ULONG params_len;
    CK_BBOOL local, extractable;
    /* decrypt, sign, unwrap, sign_recover, encrypt, verify, wrap, derive: a copy keeps the
     * source's usages, as C_CopyObject does on the backend (an EC key's derive included). */
    CK_BBOOL flags[ADOPT_FLAGS];
    bool flag_known[ADOPT_FLAGS];
};

static const CK_ATTRIBUTE_TYPE flag_types[ADOPT_FLAGS] = {
    CKA_DECRYPT, CKA_SIGN,   CKA_UNWRAP, CKA_SIGN_RECOVER,
    CKA_ENCRYPT, CKA_VERIFY, CKA_WRAP,   CKA_DERIVE};

static bool adoptable_class(CK_OBJECT_CLASS cls)
{
    return cls == CKO_SECRET_KEY || cls == CKO_PRIVATE_KEY;
}

static CK_ULONG modulus_bits(const unsigned char *m, CK_ULONG len)
{
    while (len > 0 && m[0] == 0)
        m++, len--;
    if (len == 0) return 0;
    CK_ULONG bits = len * 8;
    for (unsigned char top = m[0]; !(top & 0x80); top <<= 1)
        bits--;
    return bits;
}

/* The generation mechanism that would have made such a key, and the spec attributes. */
static CK_RV spec_template(const struct key_facts *k, CK_MECHANISM_TYPE *mech,
                           struct tmpl_builder *b)
{
    switch (k->type) {
    case CKK_AES:
        *mech = CKM_AES_KEY_GEN;
        tmpl_set(b, CKA_VALUE_LEN, &k->value_len, sizeof(k->value_len));
        return CKR_OK;
    case CKK_GENERIC_SECRET:
        *mech = CKM_GENERIC_SECRET_KEY_GEN;
        tmpl_set(b, CKA_VALUE_LEN, &k->value_len, sizeof(k->value_len));
        return CKR_OK;
    case CKK_DES2:
    case CKK_DES3: *mech = k->type == CKK_DES2 ? CKM_DES2_KEY_GEN : CKM_DES3_KEY_GEN; return CKR_OK;
    case CKK_RSA:
        *mech = CKM_RSA_PKCS_KEY_PAIR_GEN;
        tmpl_set(b, CKA_MODULUS_BITS, &k->modulus_bits, sizeof(k->modulus_bits));
        return CKR_OK;
    case CKK_EC:
    case CKK_EC_EDWARDS:
        *mech = k->type == CKK_EC ? CKM_EC_KEY_PAIR_GEN : CKM_EC_EDWARDS_KEY_PAIR_GEN;
        tmpl_set(b, CKA_EC_PARAMS, k->params, k->params_len);
        return CKR_OK;
    }
    log_warning("import: key type 0x%lx has no CMK key spec (AES, generic secret, DES3, RSA, "
                "EC, EdDSA do)",
                k->type);
    return CKR_TEMPLATE_INCONSISTENT;
}

/* Facts of a key given in clear in a C_CreateObject template. */
static CK_RV facts_from_template(const CK_ATTRIBUTE *t, CK_ULONG n, struct key_facts *k)
{
    memset(k, 0, sizeof(*k));
    if (attr_get_ulong(t, n, CKA_CLASS, &k->cls) != ATTR_PRESENT ||
        attr_get_ulong(t, n, CKA_KEY_TYPE, &k->type) != ATTR_PRESENT) {
        log_warning("import: CKA_CLASS and CKA_KEY_TYPE are required");
        return CKR_TEMPLATE_INCOMPLETE;
    }
    const CK_ATTRIBUTE *value = attr_find(t, n, CKA_VALUE);
    const CK_ATTRIBUTE *modulus = attr_find(t, n, CKA_MODULUS);
    const CK_ATTRIBUTE *params = attr_find(t, n, CKA_EC_PARAMS);
    if (value) k->value_len = value->ulValueLen;
    if (modulus) k->modulus_bits = modulus_bits(modulus->pValue, modulus->ulValueLen);
    if (params && params->ulValueLen > sizeof(k->params)) {
        log_warning("import: CKA_EC_PARAMS of %lu bytes is longer than any curve's (%zu)",
                    params->ulValueLen, sizeof(k->params));
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (params) {
        memcpy(k->params, params->pValue, params->ulValueLen);
        k->params_len = params->ulValueLen;
    }
    return CKR_OK;
}

/* Facts of a backend key about to be copied. */
static CK_RV facts_from_object(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, struct key_facts *k,
                               CK_BBOOL *token)
{
    memset(k, 0, sizeof(*k));
    CK_ATTRIBUTE a[] = {{CKA_CLASS, &k->cls, sizeof(k->cls)}, {CKA_TOKEN, token, sizeof(*token)}};
    CK_RV rv = module.be.fn->C_GetAttributeValue(session, h, a, 2);
    if (rv != CKR_OK || !adoptable_class(k->cls)) return rv;
    CK_ATTRIBUTE b[] = {{CKA_KEY_TYPE, &k->type, sizeof(k->type)},
                        {CKA_LOCAL, &k->local, 1},
                        {CKA_EXTRACTABLE, &k->extractable, 1}};
    if ((rv = module.be.fn->C_GetAttributeValue(session, h, b, 3)) != CKR_OK) return rv;
    for (int i = 0; i < ADOPT_FLAGS; i++) {
        CK_ATTRIBUTE f = {flag_types[i], &k->flags[i], 1};
        k->flag_known[i] = module.be.fn->C_GetAttributeValue(session, h, &f, 1) == CKR_OK;
    }
    CK_ATTRIBUTE len = {CKA_VALUE_LEN, &k->value_len, sizeof(k->value_len)};
    CK_ATTRIBUTE params = {CKA_EC_PARAMS, k->params, sizeof(k->params)};
    unsigned char modulus[1024];
    CK_ATTRIBUTE mod = {CKA_MODULUS, modulus, sizeof(modulus)};
    if (k->type == CKK_AES || k->type == CKK_GENERIC_SECRET)
        rv = module.be.fn->C_GetAttributeValue(session, h, &len, 1);
    else if (k->type == CKK_RSA &&
             (rv = module.be.fn->C_GetAttributeValue(session, h, &mod, 1)) == CKR_OK)
        k->modulus_bits = modulus_bits(modulus, mod.ulValueLen);
    else if (k->type == CKK_EC || k->type == CKK_EC_EDWARDS) {
        rv = module.be.fn->C_GetAttributeValue(session, h, &params, 1);
        k->params_len = params.ulValueLen;
    }
    return rv == CKR_ATTRIBUTE_TYPE_INVALID ? CKR_OK : rv;
}

/* Makes the material through make() and turns it into a CMK, as CreateKey does. */
typedef CK_RV (*make_fn)(CK_SESSION_HANDLE session, const void *ctx, CK_ATTRIBUTE *t, CK_ULONG n,
                         CK_OBJECT_HANDLE *out);

static CK_RV adopt(CK_SESSION_HANDLE session, const struct key_facts *k, const CK_ATTRIBUTE *client,
                   CK_ULONG n, const CK_ATTRIBUTE *rules, CK_ULONG nrules, CK_ULONG origin,
                   const char *how, make_fn make, const void *ctx, CK_OBJECT_HANDLE *handle)
{
    struct tmpl_builder spec, b;
    tmpl_init(&spec);
    tmpl_init(&b);
    struct create_request req;
    memset(&req, 0, sizeof(req));
    struct cmk_record rec = {0};
    CK_MECHANISM_TYPE mech = 0;
    CK_RV rv = cmk_request_session_writable(session);
    if (rv == CKR_OK) {
        tmpl_copy_standard(&spec, rules, nrules);
        for (CK_ULONG i = 0; i < nrules; i++)
            if (attr_is_vendor(rules[i].type))
                tmpl_set(&spec, rules[i].type, rules[i].pValue, rules[i].ulValueLen);
        rv = spec_template(k, &mech, &spec);
    }
    if (rv == CKR_OK && spec.failed) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK) rv = cmk_request_parse(&req, mech, spec.attrs, spec.count, NULL, 0);
    if (rv != CKR_OK) goto out;
    req.origin = origin;
    if (origin == CMK_ORIGIN_EXTERNAL && req.rotation_enabled) {
        log_warning("import: automatic rotation is only for keys of KMS origin");
        rv = CKR_TEMPLATE_INCONSISTENT;
        goto out;
    }
    unsigned objects = k->cls == CKO_SECRET_KEY ? CMK_OBJ_SECRET : CMK_OBJ_PRIVATE;
    if ((rv = cmk_create_insert_row(&req, objects, &rec)) != CKR_OK) goto out;
    util_crash_point("import:after-insert");

    unsigned char bid[CMK_BACKEND_ID_LEN];
    char label[80];
    cmk_backend_id(rec.key_id, 1, bid);
    cmk_backend_label(rec.key_id, 1, label);
    cmk_create_material_template(&b, client, n, bid, label, k->cls, req.usage,
                                 req.flags_by_backend);
    cmk_create_material_public(&b, &req);
    CK_OBJECT_HANDLE material = 0;
    rv = b.failed ? CKR_HOST_MEMORY : CKR_OK;
    if (rv == CKR_OK) {
        MODULE_UNDER_TOKEN_LOCK(rv, make(session, ctx, b.attrs, b.count, &material));
    }
    if (rv != CKR_OK) {
        rv = cmk_create_backend_failed(
            session, rv, &rec, "import: the backend refused to make the key", req.spec.name);
        goto out;
    }
    util_crash_point("import:after-material");
    cmk_create_usage_from_material(session, &req, material, 0, &rec);
    struct public_key pk = {0};
    if (k->type == CKK_RSA) cmk_create_read_public_key(session, material, k->type, &pk);
    rv = cmk_create_commit(&rec, "ImportKey", how, &pk);
    free(pk.spki);
    free(pk.ec_point);
    if (rv != CKR_OK) {
        cmk_create_undo(session, &rec);
        goto out;
    }
    *handle = handle_for_cmk(rec.row, objects);
    log_info("ImportKey: %s %s (%s) alias '%s'", rec.key_id, req.spec.name, how,
             req.has_alias ? req.alias : "");
out:
    tmpl_free(&spec);
    tmpl_free(&b);
    cmk_tags_free(req.tags, req.tag_count);
    return rv;
}

static CK_RV make_by_create(CK_SESSION_HANDLE session, const void *ctx, CK_ATTRIBUTE *t, CK_ULONG n,
                            CK_OBJECT_HANDLE *out)
{
    (void)ctx;
    return module.be.fn->C_CreateObject(session, t, n, out);
}

/* A copy may change only some attributes: identity, sensitivity and privacy go into
 * the copy; the usage flags are set on it right after, and a copy that refuses them is
 * destroyed. CKA_EXTRACTABLE comes from the source, which must already be FALSE
 * (SoftHSMv2 lets no copy or later change touch it). */
static bool copy_may_change(CK_ATTRIBUTE_TYPE type)
{
    return type == CKA_TOKEN || type == CKA_ID || type == CKA_LABEL || type == CKA_SENSITIVE ||
           type == CKA_PRIVATE;
}

static CK_RV make_by_copy(CK_SESSION_HANDLE session, const void *ctx, CK_ATTRIBUTE *t, CK_ULONG n,
                          CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_HANDLE source = *(const CK_OBJECT_HANDLE *)ctx;
    struct tmpl_builder copy, flags;
    tmpl_init(&copy);
    tmpl_init(&flags);
    for (CK_ULONG i = 0; i < n; i++) {
        bool usage = t[i].type == CKA_DERIVE || t[i].type == CKA_ENCRYPT ||
                     t[i].type == CKA_DECRYPT || t[i].type == CKA_SIGN || t[i].type == CKA_VERIFY ||
                     t[i].type == CKA_WRAP || t[i].type == CKA_UNWRAP ||
                     t[i].type == CKA_SIGN_RECOVER || t[i].type == CKA_VERIFY_RECOVER;
        if (copy_may_change(t[i].type))
            tmpl_set(&copy, t[i].type, t[i].pValue, t[i].ulValueLen);
        else if (usage)
            tmpl_set(&flags, t[i].type, t[i].pValue, t[i].ulValueLen);
    }
    CK_RV rv = copy.failed || flags.failed
                   ? CKR_HOST_MEMORY
                   : module.be.fn->C_CopyObject(session, source, copy.attrs, copy.count, out);
    if (rv == CKR_OK && flags.count > 0) {
        rv = module.be.fn->C_SetAttributeValue(session, *out, flags.attrs, flags.count);
        if (rv != CKR_OK) module.be.fn->C_DestroyObject(session, *out);
    }
    tmpl_free(&copy);
    tmpl_free(&flags);
    return rv;
}

bool cmk_adopt_wanted(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    bool token = false;
    CK_ULONG cls;
    if (attr_get_bool(tmpl, n, CKA_TOKEN, &token) != ATTR_PRESENT || !token ||
        attr_get_ulong(tmpl, n, CKA_CLASS, &cls) != ATTR_PRESENT || !adoptable_class(cls))
        return false;
    /* An extractable key is an ordinary backend object, unless keys in clear are refused
     * altogether (cmk_adopt_create refuses it then). */
    return module.cfg.refuse_clear_import ||
           !cmk_request_plain_object(tmpl, n, NULL, 0, "C_CreateObject");
}

CK_RV cmk_adopt_create(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
                       CK_OBJECT_HANDLE_PTR handle)
{
    if (module.cfg.refuse_clear_import) {
        log_warning("import: keys in clear are refused by policy refuse_clear_import; "
                    "generate keys in the HSM");
        return CKR_TEMPLATE_INCONSISTENT;
    }
    struct key_facts k;
    CK_RV rv = facts_from_template(tmpl, n, &k);
    if (rv != CKR_OK) return rv;
    return adopt(session, &k, tmpl, n, tmpl, n, CMK_ORIGIN_EXTERNAL, "import in clear",
                 make_by_create, NULL, handle);
}

CK_RV cmk_adopt_copy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE source, CK_ATTRIBUTE_PTR tmpl,
                     CK_ULONG n, CK_OBJECT_HANDLE_PTR handle, bool *adopted)
{
    *adopted = false;
    struct key_facts k;
    CK_BBOOL source_token = CK_FALSE;
    CK_RV rv = facts_from_object(session, source, &k, &source_token);
    if (rv != CKR_OK || !adoptable_class(k.cls)) return rv;
    bool token = source_token;
    attr_get_bool(tmpl, n, CKA_TOKEN, &token);
    if (!token) return CKR_OK; /* a session copy stays a plain session object */
    *adopted = true;
    if ((rv = cmk_request_session_writable(session)) != CKR_OK) return rv;
    if (k.extractable) {
        /* Its material may exist outside the HSM: never a CMK. Under extractable_keys =
         * plain the token copy is what the backend alone would make. */
        if (module.cfg.extractable_keys == EXTRACTABLE_PLAIN && !tmpl_has_vendor(tmpl, n)) {
            log_warning("C_CopyObject: an extractable key copied to the token stays an "
                        "ordinary backend object, not a CMK ([policy] extractable_keys = plain)");
            *adopted = false;
            return CKR_OK;
        }
        log_warning("import: an extractable key cannot become a CMK by copy (its material "
                    "may exist outside the HSM); generate the key on the token instead");
        return CKR_ACTION_PROHIBITED;
    }
    /* The rules see the source's usage flags, overridden by the copy template. */
    struct tmpl_builder rules;
    tmpl_init(&rules);
    for (int i = 0; i < ADOPT_FLAGS; i++)
        if (k.flag_known[i]) tmpl_set(&rules, flag_types[i], &k.flags[i], 1);
    for (CK_ULONG i = 0; i < n; i++)
        tmpl_set(&rules, tmpl[i].type, tmpl[i].pValue, tmpl[i].ulValueLen);
    rv = rules.failed
             ? CKR_HOST_MEMORY
             : adopt(session, &k, tmpl, n, rules.attrs, rules.count,
                     k.local ? CMK_ORIGIN_KMS : CMK_ORIGIN_EXTERNAL,
                     "copy of a session key into the token", make_by_copy, &source, handle);
    tmpl_free(&rules);
    return rv;
}
