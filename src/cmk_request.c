/* cmk_request.c - the CreateKey rules: alias, id, description, tags, rotation policy,
 * origin, protection level, key usage against key spec, export policy, quota. */
#include "cmk_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmk_import.h"
#include "cmkp11/cmkp11.h"
#include "log.h"
#include "module.h"
#include "sm_backend_map.h"
#include "soft_key.h"
#include "soft_pkey.h"
#include "validate.h"

static const CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

/* A vendor attribute may sit in either template of a pair; if in both, they must agree. */
static const CK_ATTRIBUTE *find_either(const CK_ATTRIBUTE *a, CK_ULONG na, const CK_ATTRIBUTE *b,
                                       CK_ULONG nb, CK_ATTRIBUTE_TYPE type, CK_RV *rv)
{
    const CK_ATTRIBUTE *x = attr_find(a, na, type), *y = b ? attr_find(b, nb, type) : NULL;
    if (x && y &&
        (x->ulValueLen != y->ulValueLen ||
         (x->ulValueLen && memcmp(x->pValue, y->pValue, x->ulValueLen)))) {
        log_warning("CreateKey: attribute 0x%lx differs between the public and private "
                    "templates",
                    type);
        *rv = CKR_TEMPLATE_INCONSISTENT;
    }
    return x ? x : y;
}

static CK_RV read_ulong_attr(const CK_ATTRIBUTE *a, const char *field, CK_ULONG *out)
{
    if (!a->pValue || a->ulValueLen != sizeof(CK_ULONG)) {
        log_warning("CreateKey: %s must be a CK_ULONG", field);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    memcpy(out, a->pValue, sizeof(CK_ULONG));
    return CKR_OK;
}

static CK_RV read_bool_attr(const CK_ATTRIBUTE *a, const char *field, bool *out)
{
    if (!a->pValue || a->ulValueLen != sizeof(CK_BBOOL)) {
        log_warning("CreateKey: %s must be a CK_BBOOL", field);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    *out = *(const CK_BBOOL *)a->pValue != CK_FALSE;
    return CKR_OK;
}

/* The vendor attributes known at create; anything else in our range is refused. */
static bool vendor_attr_allowed_at_create(CK_ATTRIBUTE_TYPE t)
{
    return t == CKA_CMK_ALIAS || t == CKA_CMK_DESCRIPTION || t == CKA_CMK_KEY_SPEC ||
           t == CKA_CMK_KEY_USAGE ||
           t == CKA_CMK_ORIGIN || t == CKA_CMK_PROTECTION_LEVEL || t == CKA_CMK_ROTATION_ENABLED ||
           t == CKA_CMK_ROTATION_INTERVAL || t == CKA_CMK_ROTATION_PERIOD || t == CKA_CMK_TAGS;
}

static CK_RV check_vendor_attrs(const CK_ATTRIBUTE *t, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        if (attr_is_vendor(t[i].type) && !vendor_attr_allowed_at_create(t[i].type)) {
            log_warning("CreateKey: vendor attribute 0x%lx cannot be given at creation "
                        "(read-only or unknown)",
                        t[i].type);
            return t[i].type <= CKA_CMK_CREATOR ? CKR_ATTRIBUTE_READ_ONLY
                                                : CKR_ATTRIBUTE_TYPE_INVALID;
        }
    }
    return CKR_OK;
}

/* An explicit CKA_CMK_ALIAS follows the clouds' rules; an empty one means none. */
static CK_RV parse_explicit_alias(struct create_request *req, const CK_ATTRIBUTE *a)
{
    char why[VALIDATE_WHY_SIZE];
    if (a->ulValueLen == 0) return CKR_OK;
    if (validate_alias(a->pValue, a->ulValueLen, req->alias, why) != 0) {
        log_warning("CreateKey: CKA_CMK_ALIAS invalid: %s", why);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    req->has_alias = true;
    return CKR_OK;
}

/* The label as an alias, when it is shaped like one ([policy] alias_from_label). */
static void alias_from_label(struct create_request *req, const CK_ATTRIBUTE *label)
{
    char why[VALIDATE_WHY_SIZE];
    if (!module.cfg.alias_from_label || !label ||
        validate_alias(label->pValue, label->ulValueLen, req->alias, why) != 0)
        return;
    req->has_alias = true;
    req->alias_from_label = true;
}

/* Labels and CKA_IDs stay each object's own, as the backend keeps them. A CKA_ID is
 * what clients pair the halves of a key by: a half whose template gives none takes the
 * other's, and a key whose templates give none at all gets a random one shared by its
 * objects (set in cmk_create_insert_row). */
static CK_RV parse_alias_and_id(struct create_request *req, const CK_ATTRIBUTE *a, CK_ULONG na,
                                const CK_ATTRIBUTE *b, CK_ULONG nb)
{
    CK_RV rv = CKR_OK;
    const CK_ATTRIBUTE *alias = find_either(a, na, b, nb, CKA_CMK_ALIAS, &rv);
    if (rv != CKR_OK) return rv;
    const CK_ATTRIBUTE *label = attr_find(a, na, CKA_LABEL);
    const CK_ATTRIBUTE *pub_label = b ? attr_find(b, nb, CKA_LABEL) : NULL;
    if (alias)
        rv = parse_explicit_alias(req, alias);
    else
        alias_from_label(req, label ? label : pub_label);
    if (rv != CKR_OK) return rv;
    if (label) req->label = label->pValue, req->label_len = label->ulValueLen;
    if (pub_label) req->pub_label = pub_label->pValue, req->pub_label_len = pub_label->ulValueLen;
    const CK_ATTRIBUTE *id = attr_find(a, na, CKA_ID);
    const CK_ATTRIBUTE *pub_id = b ? attr_find(b, nb, CKA_ID) : NULL;
    if (!id) id = pub_id;
    if (!pub_id) pub_id = id;
    if (id) req->cka_id = id->pValue, req->cka_id_len = id->ulValueLen;
    if (pub_id) req->pub_cka_id = pub_id->pValue, req->pub_cka_id_len = pub_id->ulValueLen;
    req->has_cka_id = id || pub_id;
    return CKR_OK;
}

static CK_RV parse_metadata(struct create_request *req, const CK_ATTRIBUTE *a, CK_ULONG na,
                            const CK_ATTRIBUTE *b, CK_ULONG nb)
{
    CK_RV rv = CKR_OK;
    char why[VALIDATE_WHY_SIZE];
    const CK_ATTRIBUTE *x;

    if ((x = find_either(a, na, b, nb, CKA_CMK_DESCRIPTION, &rv))) {
        if (x->ulValueLen && validate_description(x->pValue, x->ulValueLen, why) != 0) {
            log_warning("CreateKey: CKA_CMK_DESCRIPTION invalid: %s", why);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        req->description = x->pValue;
        req->description_len = x->ulValueLen;
    }
    if ((x = find_either(a, na, b, nb, CKA_CMK_ORIGIN, &rv)) &&
        (rv = read_ulong_attr(x, "CKA_CMK_ORIGIN", &req->origin)) == CKR_OK) {
        if (req->origin != CMK_ORIGIN_KMS && req->origin != CMK_ORIGIN_EXTERNAL) {
            log_warning("CreateKey: CKA_CMK_ORIGIN must be CMK_ORIGIN_KMS or CMK_ORIGIN_EXTERNAL");
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
    }
    if (rv != CKR_OK) return rv;
    if ((x = find_either(a, na, b, nb, CKA_CMK_PROTECTION_LEVEL, &rv)) &&
        (rv = read_ulong_attr(x, "CKA_CMK_PROTECTION_LEVEL", &req->protection)) == CKR_OK) {
        req->protection_given = true;
        if (req->protection != CMK_PROTECTION_HSM && req->protection != CMK_PROTECTION_SOFTWARE) {
            log_warning("CreateKey: CKA_CMK_PROTECTION_LEVEL must be CMK_PROTECTION_HSM or "
                        "CMK_PROTECTION_SOFTWARE");
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
    }
    if (rv != CKR_OK) return rv;
    if ((x = find_either(a, na, b, nb, CKA_CMK_ROTATION_ENABLED, &rv)))
        rv = read_bool_attr(x, "CKA_CMK_ROTATION_ENABLED", &req->rotation_enabled);
    if (rv != CKR_OK) return rv;
    const CK_ATTRIBUTE *secs = find_either(a, na, b, nb, CKA_CMK_ROTATION_INTERVAL, &rv);
    const CK_ATTRIBUTE *text = find_either(a, na, b, nb, CKA_CMK_ROTATION_PERIOD, &rv);
    if (rv != CKR_OK) return rv;
    if (secs && text) {
        log_warning("CreateKey: give CKA_CMK_ROTATION_INTERVAL or CKA_CMK_ROTATION_PERIOD, "
                    "not both");
        return CKR_TEMPLATE_INCONSISTENT;
    }
    if (secs) {
        CK_ULONG v;
        if ((rv = read_ulong_attr(secs, "CKA_CMK_ROTATION_INTERVAL", &v)) != CKR_OK) return rv;
        req->rotation_interval = (int64_t)v;
        if (validate_rotation_seconds(req->rotation_interval, why) != 0) {
            log_warning("CreateKey: CKA_CMK_ROTATION_INTERVAL invalid: %s", why);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
    } else if (text) {
        if (validate_rotation_period(text->pValue, text->ulValueLen, &req->rotation_interval,
                                     why) != 0) {
            log_warning("CreateKey: CKA_CMK_ROTATION_PERIOD invalid: %s", why);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
    }
    if ((x = find_either(a, na, b, nb, CKA_CMK_TAGS, &rv)) && rv == CKR_OK) {
        if (validate_tags(x->pValue, x->ulValueLen, &req->tags, &req->tag_count, why) != 0) {
            log_warning("CreateKey: CKA_CMK_TAGS invalid: %s", why);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
    }
    return rv;
}

/* Flag values a template asks for: -1 absent, 0 FALSE, 1 TRUE. */
static int flag_of(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
    bool v;
    enum attr_read r = attr_get_bool(t, n, type, &v);
    return r == ATTR_PRESENT ? (int)v : -1;
}

static bool any_true(const CK_ATTRIBUTE *t, CK_ULONG n, const CK_ATTRIBUTE_TYPE *types, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (flag_of(t, n, types[i]) == 1) return true;
    return false;
}

static const CK_ATTRIBUTE_TYPE crypt_flags[] = {CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP};
static const CK_ATTRIBUTE_TYPE sign_flags[] = {CKA_SIGN, CKA_VERIFY, CKA_SIGN_RECOVER,
                                               CKA_VERIFY_RECOVER};

/* A request speaks the KMS vocabulary when it names one of our vendor attributes in either
 * template or a key type only cmkp11 has (SM2, SM4): it then gets the clouds' CreateKey
 * rules, one usage per key (cmkctl always sends CKA_CMK_KEY_USAGE). A plain template is
 * what a PKCS#11 client sends that knows nothing of CMKs; it gets what the backend would
 * give it unless the operator chose the one-usage rule for it too (usage_conflict). */
static bool speaks_kms(const CK_ATTRIBUTE *a, CK_ULONG na, const CK_ATTRIBUTE *b, CK_ULONG nb,
                       const struct keyspec *spec)
{
    for (CK_ULONG i = 0; i < na; i++)
        if (attr_is_vendor(a[i].type)) return true;
    for (CK_ULONG i = 0; b && i < nb; i++)
        if (attr_is_vendor(b[i].type)) return true;
    return sm_map_is_sm_key(spec->key_type);
}

/* Only an EC key has a standard key agreement (CKM_ECDH1_DERIVE) usable on a CMK: deriving
 * from a secret key would make new key material outside the CMK's lifecycle, and RSA and
 * EdDSA keys derive nothing. */
static bool derive_is_agreement(const struct keyspec *spec)
{
    return spec->key_type == CKK_EC;
}

/* Whether the key type has any encryption mechanism: an EC, EdDSA or generic secret key
 * whose CKA_DECRYPT is TRUE (SoftHSMv2 defaults it so) still decrypts nothing. */
static bool type_encrypts(const struct keyspec *spec)
{
    return spec->key_type == CKK_RSA || spec->key_type == CKK_CMK_SM2 ||
           (spec->symmetric && spec->key_type != CKK_GENERIC_SECRET);
}

/* usage_conflict = honour, plain template: every usage the flags allow is the key's, as on
 * the backend; flags that allow none give the usage the clouds default to for the spec.
 * The primary one is the clouds' reading of the key: SIGN_VERIFY for a pair that signs,
 * ENCRYPT_DECRYPT for AES, GENERATE_VERIFY_MAC for a generic secret (CMK_USAGE_ALSO in
 * cmkp11.h). */
static CK_ULONG honour_usage(const struct keyspec *spec, const struct cmk_usage_flags *f)
{
    bool crypt = f->crypt && type_encrypts(spec);
    CK_ULONG primary, also = 0;
    if (spec->key_type == CKK_GENERIC_SECRET) {
        primary = CMK_USAGE_GENERATE_VERIFY_MAC;
    } else if (spec->symmetric) {
        primary = CMK_USAGE_ENCRYPT_DECRYPT;
        if (f->sign) also |= CMK_USAGE_ALSO(CMK_USAGE_GENERATE_VERIFY_MAC); /* AES-CMAC */
    } else {
        bool agree = f->derive && derive_is_agreement(spec);
        primary = f->sign || (!crypt && !agree) ? CMK_USAGE_SIGN_VERIFY
                  : crypt                       ? CMK_USAGE_ENCRYPT_DECRYPT
                                                : CMK_USAGE_KEY_AGREEMENT;
        if (crypt && primary != CMK_USAGE_ENCRYPT_DECRYPT)
            also |= CMK_USAGE_ALSO(CMK_USAGE_ENCRYPT_DECRYPT);
        if (agree && primary != CMK_USAGE_KEY_AGREEMENT)
            also |= CMK_USAGE_ALSO(CMK_USAGE_KEY_AGREEMENT);
    }
    return primary | also;
}

void cmk_request_usage_of_flags(struct create_request *req, const struct cmk_usage_flags *f)
{
    req->usage = honour_usage(&req->spec, f);
    if (req->usage & ~0xffUL) {
        char names[CMK_USAGE_NAME_SIZE];
        log_info("CreateKey: the key's flags allow several usages; usage_conflict = honour "
                 "gives it all of them (%s)",
                 cmk_request_usage_name(req->usage, names));
    }
}

/* Decides the key usage from the spec, the flags asked for and the vendor usage. */
static CK_RV resolve_usage(struct create_request *req, const CK_ATTRIBUTE *a, CK_ULONG na,
                           const CK_ATTRIBUTE *b, CK_ULONG nb)
{
    bool crypt = any_true(a, na, crypt_flags, 4) || (b && any_true(b, nb, crypt_flags, 4));
    bool sign = any_true(a, na, sign_flags, 4) || (b && any_true(b, nb, sign_flags, 4));
    bool derive = flag_of(a, na, CKA_DERIVE) == 1 || (b && flag_of(b, nb, CKA_DERIVE) == 1);
    CK_RV rv = CKR_OK;
    const CK_ATTRIBUTE *u = find_either(a, na, b, nb, CKA_CMK_KEY_USAGE, &rv);
    if (rv != CKR_OK) return rv;
    const struct keyspec *spec = &req->spec;
    bool hmac = spec->key_type == CKK_GENERIC_SECRET;
    bool rsa = spec->key_type == CKK_RSA || spec->key_type == CKK_CMK_SM2; /* either usage */
    bool symmetric_crypt = spec->symmetric && !hmac;

    bool one_usage = speaks_kms(a, na, b, nb, spec) ||
                     module.cfg.usage_conflict != USAGE_CONFLICT_HONOUR;
    if (!one_usage) {
        /* What the template asks, until the material made says what it allows. */
        struct cmk_usage_flags asked = {crypt, sign, derive};
        req->usage = honour_usage(spec, &asked);
        req->flags_by_backend = true;
        return CKR_OK;
    }
    if (u) {
        if ((rv = read_ulong_attr(u, "CKA_CMK_KEY_USAGE", &req->usage)) != CKR_OK) return rv;
        bool allowed = (req->usage == CMK_USAGE_ENCRYPT_DECRYPT && (symmetric_crypt || rsa)) ||
                       (req->usage == CMK_USAGE_SIGN_VERIFY && !spec->symmetric) ||
                       (req->usage == CMK_USAGE_GENERATE_VERIFY_MAC && hmac) ||
                       (req->usage == CMK_USAGE_KEY_AGREEMENT && derive_is_agreement(spec));
        if (!allowed) {
            log_warning("CreateKey: CKA_CMK_KEY_USAGE %lu is not allowed for key spec %s "
                        "(AES, SM4: ENCRYPT_DECRYPT; EC: SIGN_VERIFY or KEY_AGREEMENT; RSA: "
                        "ENCRYPT_DECRYPT or SIGN_VERIFY; HMAC: GENERATE_VERIFY_MAC)",
                        req->usage, spec->name);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        if (req->usage == CMK_USAGE_KEY_AGREEMENT) {
            if (crypt || sign || flag_of(a, na, CKA_DERIVE) == 0) {
                log_warning("CreateKey: CKA_CMK_KEY_USAGE KEY_AGREEMENT contradicts the "
                            "CKA_ENCRYPT/CKA_SIGN/CKA_DERIVE flags of the template");
                return CKR_TEMPLATE_INCONSISTENT;
            }
            return CKR_OK;
        }
        bool wants_sign = req->usage != CMK_USAGE_ENCRYPT_DECRYPT;
        if ((wants_sign && crypt) || (!wants_sign && sign)) {
            log_warning("CreateKey: CKA_CMK_KEY_USAGE contradicts the CKA_ENCRYPT/CKA_SIGN "
                        "flags of the template");
            return CKR_TEMPLATE_INCONSISTENT;
        }
        return CKR_OK;
    }
    if (symmetric_crypt) {
        if (sign) {
            log_warning("CreateKey: key spec %s is ENCRYPT_DECRYPT only under the one-usage "
                        "rule (a vendor attribute or usage_conflict = sign/reject); "
                        "CKA_SIGN/CKA_VERIFY may not be TRUE",
                        spec->name);
            return CKR_TEMPLATE_INCONSISTENT;
        }
        req->usage = CMK_USAGE_ENCRYPT_DECRYPT;
        return CKR_OK;
    }
    if (hmac) {
        if (crypt) {
            log_warning("CreateKey: key spec %s is GENERATE_VERIFY_MAC only under the one-usage "
                        "rule (a vendor attribute or usage_conflict = sign/reject); CKA_ENCRYPT/"
                        "CKA_DECRYPT may not be TRUE",
                        spec->name);
            return CKR_TEMPLATE_INCONSISTENT;
        }
        req->usage = CMK_USAGE_GENERATE_VERIFY_MAC;
        return CKR_OK;
    }
    /* Under the one-usage rule an EC key agrees keys only when CKA_CMK_KEY_USAGE says
     * KEY_AGREEMENT, as the clouds' CreateKey defaults EC keys to SIGN_VERIFY; CKA_DERIVE
     * alone is ignored there, as it always was (check_export_policy logs it). */
    if (crypt && !sign) {
        if (!rsa) {
            log_warning("CreateKey: key spec %s is SIGN_VERIFY or KEY_AGREEMENT under the "
                        "one-usage rule; CKA_ENCRYPT/CKA_DECRYPT may not be TRUE",
                        spec->name);
            return CKR_TEMPLATE_INCONSISTENT;
        }
        req->usage = CMK_USAGE_ENCRYPT_DECRYPT;
        return CKR_OK;
    }
    if (crypt && sign) {
        if (module.cfg.usage_conflict == USAGE_CONFLICT_REJECT) {
            log_warning("CreateKey: a CMK has one usage; the template asks both encrypt and "
                        "sign, and policy usage_conflict = reject refuses it");
            return CKR_TEMPLATE_INCONSISTENT;
        }
        log_warning("CreateKey: a CMK has one usage; the template asks both encrypt and sign, "
                    "so the key is made SIGN_VERIFY with encrypt/decrypt disabled");
    }
    req->usage = CMK_USAGE_SIGN_VERIFY;
    return CKR_OK;
}

static const char *usage_word(unsigned long u)
{
    return u == CMK_USAGE_ENCRYPT_DECRYPT       ? "ENCRYPT_DECRYPT"
           : u == CMK_USAGE_SIGN_VERIFY         ? "SIGN_VERIFY"
           : u == CMK_USAGE_GENERATE_VERIFY_MAC ? "GENERATE_VERIFY_MAC"
           : u == CMK_USAGE_KEY_AGREEMENT       ? "KEY_AGREEMENT"
                                                : "unknown";
}

const char *cmk_request_usage_name(unsigned long usage, char out[CMK_USAGE_NAME_SIZE])
{
    snprintf(out, CMK_USAGE_NAME_SIZE, "%s", usage_word(CMK_USAGE_PRIMARY(usage)));
    for (unsigned long u = CMK_USAGE_ENCRYPT_DECRYPT; u <= CMK_USAGE_KEY_AGREEMENT; u++)
        if (usage & CMK_USAGE_ALSO(u))
            snprintf(out + strlen(out), CMK_USAGE_NAME_SIZE - strlen(out), "+%s", usage_word(u));
    return out;
}

/* One flag of the material: TRUE when the key's usage allows it and the client did not
 * ask it FALSE (an explicit FALSE is honoured in every mode); optional flags (wrap, unwrap,
 * recover, a public key's derive) only when the client asked them TRUE. */
static void put_flag(struct tmpl_builder *b, CK_ATTRIBUTE_TYPE type, bool allowed, bool optional,
                     const CK_ATTRIBUTE *client, CK_ULONG n)
{
    int asked = flag_of(client, n, type);
    bool on = allowed && (optional ? asked == 1 : asked != 0);
    tmpl_set(b, type, on ? &ck_true : &ck_false, sizeof(CK_BBOOL));
}

/* Sets the usage flags the backend material gets; the rest is FALSE. */
void cmk_request_usage_flags(struct tmpl_builder *b, CK_ULONG usage, bool private_half,
                             bool public_half, const CK_ATTRIBUTE *client, CK_ULONG n)
{
    bool crypt = CMK_USAGE_HAS(usage, CMK_USAGE_ENCRYPT_DECRYPT);
    bool sign = CMK_USAGE_HAS(usage, CMK_USAGE_SIGN_VERIFY);
    bool agree = CMK_USAGE_HAS(usage, CMK_USAGE_KEY_AGREEMENT);
    if (private_half) {
        put_flag(b, CKA_DECRYPT, crypt, false, client, n);
        put_flag(b, CKA_SIGN, sign, false, client, n);
        put_flag(b, CKA_UNWRAP, crypt, true, client, n);
        put_flag(b, CKA_SIGN_RECOVER, sign, true, client, n);
        put_flag(b, CKA_DERIVE, agree, false, client, n);
    }
    if (public_half) {
        put_flag(b, CKA_ENCRYPT, crypt, false, client, n);
        put_flag(b, CKA_VERIFY, sign, false, client, n);
        put_flag(b, CKA_WRAP, crypt, true, client, n);
        put_flag(b, CKA_VERIFY_RECOVER, sign, true, client, n);
        /* ECDH needs only the private key's flag; a public key has it when asked. */
        put_flag(b, CKA_DERIVE, agree, true, client, n);
    }
}

void cmk_request_secret_flags(struct tmpl_builder *b, CK_ULONG usage, const CK_ATTRIBUTE *client,
                              CK_ULONG n)
{
    bool crypt = CMK_USAGE_HAS(usage, CMK_USAGE_ENCRYPT_DECRYPT);
    bool mac = CMK_USAGE_HAS(usage, CMK_USAGE_GENERATE_VERIFY_MAC);
    put_flag(b, CKA_ENCRYPT, crypt, false, client, n);
    put_flag(b, CKA_DECRYPT, crypt, false, client, n);
    put_flag(b, CKA_SIGN, mac, false, client, n);
    put_flag(b, CKA_VERIFY, mac, false, client, n);
    tmpl_set(b, CKA_DERIVE, &ck_false, sizeof(CK_BBOOL)); /* see derive_is_agreement */
}

bool cmk_request_plain_object(const CK_ATTRIBUTE *main, CK_ULONG nmain, const CK_ATTRIBUTE *pub,
                              CK_ULONG npub, const char *op)
{
    /* Extractable decides first: under extractable_keys = refuse it is refused whatever
     * CKA_SENSITIVE says. */
    bool extractable = flag_of(main, nmain, CKA_EXTRACTABLE) == 1;
    bool plain = extractable ? module.cfg.extractable_keys == EXTRACTABLE_PLAIN
                             : flag_of(main, nmain, CKA_SENSITIVE) == 0 &&
                                   module.cfg.non_sensitive_keys == NON_SENSITIVE_PLAIN;
    /* The KMS vocabulary is refused instead (check_export_policy). */
    if (!plain || tmpl_has_vendor(main, nmain) || (pub && tmpl_has_vendor(pub, npub)))
        return false;
    log_warning("%s: the key asks %s, which a CMK never is: made as an ordinary backend "
                "object, not a CMK ([policy] %s = plain)",
                op, extractable ? "CKA_EXTRACTABLE=TRUE" : "CKA_SENSITIVE=FALSE",
                extractable ? "extractable_keys" : "non_sensitive_keys");
    return true;
}

/* CMK material never leaves the backend. Asking for extractable material is refused here
 * (a plain template under extractable_keys = plain never gets here: it is an ordinary
 * backend object); CKA_SENSITIVE=FALSE, what plain tools send by default (pkcs11-tool
 * --keygen), is raised to TRUE with a log line instead: the material is never readable. */
static CK_RV check_export_policy(const struct create_request *req, const CK_ATTRIBUTE *t,
                                 CK_ULONG n)
{
    if (flag_of(t, n, CKA_EXTRACTABLE) == 1) {
        log_warning("CreateKey: CKA_EXTRACTABLE=TRUE is refused: CMK material never leaves "
                    "the HSM (a plain template is an ordinary backend object unless [policy] "
                    "extractable_keys = refuse)");
        return CKR_TEMPLATE_INCONSISTENT;
    }
    if (flag_of(t, n, CKA_SENSITIVE) == 0)
        log_warning("CreateKey: CKA_SENSITIVE=FALSE raised to TRUE: CMK material is never "
                    "readable ([policy] non_sensitive_keys = plain makes such keys ordinary "
                    "backend objects)");
    if (flag_of(t, n, CKA_DERIVE) == 1 && !CMK_USAGE_HAS(req->usage, CMK_USAGE_KEY_AGREEMENT))
        log_warning("CreateKey: CKA_DERIVE=TRUE ignored: derivation is a CMK usage only as key "
                    "agreement (KEY_AGREEMENT) of an EC key");
    return CKR_OK;
}

static CK_RV check_rotation_allowed(struct create_request *req)
{
    if (req->rotation_interval && !req->rotation_enabled) {
        /* An interval alone is a policy to keep for later enabling: allowed. */
        return CKR_OK;
    }
    if (!req->rotation_enabled) return CKR_OK;
    if (!keyspec_is_cipher_key(req->spec.key_type) || req->origin != CMK_ORIGIN_KMS) {
        log_warning("CreateKey: automatic rotation is only for symmetric encryption keys of "
                    "KMS origin; "
                    "key spec %s cannot rotate",
                    req->spec.name);
        return CKR_TEMPLATE_INCONSISTENT;
    }
    if (!req->rotation_interval) req->rotation_interval = ROTATION_DEFAULT_SECONDS;
    return CKR_OK;
}

CK_RV cmk_request_check_quota(void)
{
    if (!module.cfg.max_keys) return CKR_OK;
    int64_t count = 0;
    if (store_cmk_count(module.store, &count) != STORE_OK) return CKR_DEVICE_ERROR;
    if ((unsigned long)count >= module.cfg.max_keys) {
        log_warning("CreateKey: the token holds %lld keys, the quota (policy max_keys) is %lu",
                    (long long)count, module.cfg.max_keys);
        return CKR_DEVICE_MEMORY;
    }
    return CKR_OK;
}

/* SOFTWARE keys: AES, SM4, HMAC up to 512 bits (SOFT_MAX_KEY) and the pairs soft_pkey
 * makes, of KMS or EXTERNAL origin (the import seals the material, as creation does; a
 * pair's PKCS#8 is decoded and checked in the module, so EC_SM2 too). An SM spec (SM4,
 * EC_SM2) is at level HSM only when [gm_backend] maps the backend's own codes for it
 * (sm_backend_map.h), and for KMS origin; when no level is asked it goes where it can be
 * served, else it is refused at level HSM, as the clouds refuse a spec a region cannot
 * serve. */
static CK_RV check_protection_allowed(struct create_request *req)
{
    bool sm = sm_map_is_sm_key(req->spec.key_type);
    bool mapped = sm && req->origin == CMK_ORIGIN_KMS &&
                  sm_map_spec_served(req->spec.key_type, req->usage);
    if (sm && !req->protection_given) {
        req->protection = mapped ? CMK_PROTECTION_HSM : CMK_PROTECTION_SOFTWARE;
        log_info("CreateKey: key spec %s with no CKA_CMK_PROTECTION_LEVEL: %s", req->spec.name,
                 mapped ? "HSM (the backend's own SM codes, [gm_backend])"
                 : req->origin != CMK_ORIGIN_KMS
                     ? "SOFTWARE (imported SM material is sealed in the store)"
                     : "SOFTWARE ([gm_backend] does not map its key type, generation and a "
                       "mechanism of its usage)");
    }
    if (sm && req->protection == CMK_PROTECTION_HSM && !mapped) {
        log_warning("CreateKey: key spec %s at CKA_CMK_PROTECTION_LEVEL HSM: the backend has "
                    "no SM mechanisms mapped for it ([gm_backend] needs its key type, its "
                    "generation and a mechanism of its usage; KMS origin only); SM keys need "
                    "CMK_PROTECTION_SOFTWARE otherwise",
                    req->spec.name);
        return CKR_MECHANISM_INVALID;
    }
    if (req->protection != CMK_PROTECTION_SOFTWARE) return CKR_OK;
    bool mac = req->spec.key_type == CKK_GENERIC_SECRET &&
               keyspec_secret_bytes(req->spec.name) <= SOFT_MAX_KEY;
    bool cipher = keyspec_is_cipher_key(req->spec.key_type);
    bool pair = soft_pkey_spec_supported(req->spec.name);
    if (!cipher && !mac && !pair) {
        log_warning("CreateKey: protection level SOFTWARE is offered for key specs AES_*, SM4, "
                    "HMAC_128..HMAC_512, RSA_2048/3072/4096, EC_P256/P384/P521/P256K and EC_SM2, "
                    "of KMS or EXTERNAL origin (asked: %s, origin %s)",
                    req->spec.name, req->origin == CMK_ORIGIN_KMS ? "KMS" : "EXTERNAL");
        return CKR_TEMPLATE_INCONSISTENT;
    }
    return CKR_OK;
}

/* CKA_PRIVATE=FALSE on the secret or private key. A plain template at level HSM gets it,
 * as on the backend alone: the key is found and used before login, as its owner asked
 * (pkcs11-tool's AES default); its CMK metadata still changes only after a login. The KMS
 * vocabulary, a SOFTWARE key (its sealing key is private material) and [policy]
 * non_private_keys = raise get a private key, with a log line. Absent, a key is private. */
static bool keeps_public(const struct create_request *req, const CK_ATTRIBUTE *main,
                         CK_ULONG nmain, const CK_ATTRIBUTE *pub, CK_ULONG npub)
{
    if (flag_of(main, nmain, CKA_PRIVATE) != 0) return false;
    if (module.cfg.non_private_keys == NON_PRIVATE_ALLOW &&
        req->protection == CMK_PROTECTION_HSM && !speaks_kms(main, nmain, pub, npub, &req->spec))
        return true;
    log_warning("CreateKey: CKA_PRIVATE=FALSE raised to TRUE: %s",
                module.cfg.non_private_keys == NON_PRIVATE_RAISE
                    ? "[policy] non_private_keys = raise"
                : req->protection == CMK_PROTECTION_SOFTWARE
                    ? "a SOFTWARE key is private (its sealing key is)"
                    : "a request in the KMS vocabulary makes a private key");
    return false;
}

CK_RV cmk_request_session_writable(CK_SESSION_HANDLE session)
{
    CK_SESSION_INFO info;
    CK_RV rv = module.be.fn->C_GetSessionInfo(session, &info);
    if (rv != CKR_OK) return rv;
    if (!(info.flags & CKF_RW_SESSION)) {
        log_warning("CreateKey: a token key needs a read/write session");
        return CKR_SESSION_READ_ONLY;
    }
    return CKR_OK;
}

CK_RV cmk_request_parse(struct create_request *req, CK_MECHANISM_TYPE mech,
                        const CK_ATTRIBUTE *main, CK_ULONG nmain, const CK_ATTRIBUTE *pub,
                        CK_ULONG npub)
{
    memset(req, 0, sizeof(*req));
    req->origin = CMK_ORIGIN_KMS;
    req->protection = CMK_PROTECTION_HSM;
    CK_RV rv;
    if ((rv = check_vendor_attrs(main, nmain)) != CKR_OK) return rv;
    if (pub && (rv = check_vendor_attrs(pub, npub)) != CKR_OK) return rv;
    /* The spec follows from the public template for pairs (modulus bits, EC params). */
    const CK_ATTRIBUTE *spec_t = pub ? pub : main;
    CK_ULONG spec_n = pub ? npub : nmain;
    if (pub && !attr_find(pub, npub, CKA_EC_PARAMS) && attr_find(main, nmain, CKA_EC_PARAMS))
        spec_t = main, spec_n = nmain;
    rv = keyspec_from_request(mech, spec_t, spec_n, module.cfg.cloud_specs_only, &req->spec);
    if (rv != CKR_OK) return rv;
    const CK_ATTRIBUTE *given_spec = find_either(main, nmain, pub, npub, CKA_CMK_KEY_SPEC, &rv);
    if (rv != CKR_OK) return rv;
    if (given_spec && (given_spec->ulValueLen != strlen(req->spec.name) ||
                       memcmp(given_spec->pValue, req->spec.name, given_spec->ulValueLen))) {
        log_warning("CreateKey: CKA_CMK_KEY_SPEC does not match the mechanism and template, "
                    "which make %s",
                    req->spec.name);
        return CKR_TEMPLATE_INCONSISTENT;
    }
    if ((rv = parse_alias_and_id(req, main, nmain, pub, npub)) != CKR_OK) return rv;
    if ((rv = parse_metadata(req, main, nmain, pub, npub)) != CKR_OK) return rv;
    if (req->origin == CMK_ORIGIN_EXTERNAL && (rv = cmk_import_spec_supported(&req->spec)))
        return rv;
    if ((rv = resolve_usage(req, main, nmain, pub, npub)) != CKR_OK) return rv;
    if ((rv = check_export_policy(req, main, nmain)) != CKR_OK) return rv;
    if ((rv = check_rotation_allowed(req)) != CKR_OK) return rv;
    if ((rv = check_protection_allowed(req)) != CKR_OK) return rv;
    bool v;
    req->secret_private = !keeps_public(req, main, nmain, pub, npub);
    req->public_private = pub && attr_get_bool(pub, npub, CKA_PRIVATE, &v) == ATTR_PRESENT && v;
    return CKR_OK;
}
