/* cmk_create.c - CreateKey: C_GenerateKey(Pair) of a token key makes a CMK.
 *
 * Creation is one unit across two stores that share no transaction: the row is
 * written first in state Creating, the material is generated in the backend under
 * an identity derived from the key id, then the row turns Enabled. A crash between
 * the steps leaves a Creating row whose creator is dead: cmk_recover removes it and
 * any material carrying its identity. Clients never see Creating rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmk.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "keyspec.h"
#include "log.h"
#include "module.h"
#include "pubkey.h"
#include "template.h"
#include "util.h"
#include "validate.h"

static const CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

void cmk_backend_id(const char *key_id, unsigned long version, unsigned char out[CMK_BACKEND_ID_LEN])
{
    memcpy(out, "CMK\x01", 4);
    util_uuid_bytes(key_id, out + 4);
    out[20] = (unsigned char)(version >> 24);
    out[21] = (unsigned char)(version >> 16);
    out[22] = (unsigned char)(version >> 8);
    out[23] = (unsigned char)version;
}

/* Everything the client asked for, validated, before anything is written. */
struct create_request {
    struct keyspec spec;
    char alias[256];
    bool has_alias;
    const void *cka_id;
    CK_ULONG cka_id_len;
    bool has_cka_id;
    const char *description;
    CK_ULONG description_len;
    CK_ULONG usage, origin, protection;
    bool rotation_enabled;
    int64_t rotation_interval;
    struct cmk_tag *tags;
    size_t tag_count;
    bool secret_private; /* CKA_PRIVATE of the secret or private key */
    bool public_private; /* CKA_PRIVATE of the public key */
};

/* A vendor attribute may sit in either template of a pair; if in both, they must agree. */
static const CK_ATTRIBUTE *find_either(const CK_ATTRIBUTE *a, CK_ULONG na, const CK_ATTRIBUTE *b,
                                       CK_ULONG nb, CK_ATTRIBUTE_TYPE type, CK_RV *rv)
{
    const CK_ATTRIBUTE *x = attr_find(a, na, type), *y = b ? attr_find(b, nb, type) : NULL;
    if (x && y && (x->ulValueLen != y->ulValueLen ||
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
    return t == CKA_CMK_DESCRIPTION || t == CKA_CMK_KEY_SPEC || t == CKA_CMK_KEY_USAGE ||
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

static CK_RV parse_alias_and_id(struct create_request *req, const CK_ATTRIBUTE *a, CK_ULONG na,
                                const CK_ATTRIBUTE *b, CK_ULONG nb)
{
    CK_RV rv = CKR_OK;
    const CK_ATTRIBUTE *label = find_either(a, na, b, nb, CKA_LABEL, &rv);
    if (rv != CKR_OK) return rv;
    if (label && label->ulValueLen > 0) {
        char why[VALIDATE_WHY_SIZE];
        char text[300];
        if (label->ulValueLen >= sizeof(text)) {
            log_warning("CreateKey: CKA_LABEL (alias) must be at most 255 characters");
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        memcpy(text, label->pValue, label->ulValueLen);
        text[label->ulValueLen] = '\0';
        if (strlen(text) != label->ulValueLen ||
            validate_alias(text, label->ulValueLen, req->alias, why) != 0) {
            log_warning("CreateKey: CKA_LABEL (alias) invalid: %s",
                        strlen(text) != label->ulValueLen ? "contains NUL" : why);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        req->has_alias = true;
    }
    const CK_ATTRIBUTE *id = find_either(a, na, b, nb, CKA_ID, &rv);
    if (rv != CKR_OK) return rv;
    if (id) {
        req->cka_id = id->pValue;
        req->cka_id_len = id->ulValueLen;
        req->has_cka_id = id->ulValueLen > 0;
    }
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
        if (req->origin == CMK_ORIGIN_EXTERNAL) {
            log_warning("CreateKey: CKA_CMK_ORIGIN EXTERNAL (material import) is not available "
                        "in this version of cmkp11");
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
    }
    if (rv != CKR_OK) return rv;
    if ((x = find_either(a, na, b, nb, CKA_CMK_PROTECTION_LEVEL, &rv)) &&
        (rv = read_ulong_attr(x, "CKA_CMK_PROTECTION_LEVEL", &req->protection)) == CKR_OK) {
        if (req->protection != CMK_PROTECTION_HSM) {
            log_warning("CreateKey: CKA_CMK_PROTECTION_LEVEL must be CMK_PROTECTION_HSM "
                        "(SOFTWARE is not available in this version of cmkp11)");
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

/* Decides the key usage from the spec, the flags asked for and the vendor usage. */
static CK_RV resolve_usage(struct create_request *req, const CK_ATTRIBUTE *a, CK_ULONG na,
                           const CK_ATTRIBUTE *b, CK_ULONG nb)
{
    bool crypt = any_true(a, na, crypt_flags, 4) || (b && any_true(b, nb, crypt_flags, 4));
    bool sign = any_true(a, na, sign_flags, 4) || (b && any_true(b, nb, sign_flags, 4));
    CK_RV rv = CKR_OK;
    const CK_ATTRIBUTE *u = find_either(a, na, b, nb, CKA_CMK_KEY_USAGE, &rv);
    if (rv != CKR_OK) return rv;
    const struct keyspec *spec = &req->spec;
    bool hmac = spec->key_type == CKK_GENERIC_SECRET;
    bool rsa = spec->key_type == CKK_RSA;
    bool symmetric_crypt = spec->symmetric && !hmac;

    if (u) {
        if ((rv = read_ulong_attr(u, "CKA_CMK_KEY_USAGE", &req->usage)) != CKR_OK) return rv;
        bool allowed = (req->usage == CMK_USAGE_ENCRYPT_DECRYPT && (symmetric_crypt || rsa)) ||
                       (req->usage == CMK_USAGE_SIGN_VERIFY && !spec->symmetric) ||
                       (req->usage == CMK_USAGE_GENERATE_VERIFY_MAC && hmac);
        if (!allowed) {
            log_warning("CreateKey: CKA_CMK_KEY_USAGE %lu is not allowed for key spec %s "
                        "(AES: ENCRYPT_DECRYPT; EC: SIGN_VERIFY; RSA: one of the two; HMAC: "
                        "GENERATE_VERIFY_MAC)",
                        req->usage, spec->name);
            return CKR_ATTRIBUTE_VALUE_INVALID;
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
            log_warning("CreateKey: key spec %s is ENCRYPT_DECRYPT only; CKA_SIGN/CKA_VERIFY "
                        "may not be TRUE",
                        spec->name);
            return CKR_TEMPLATE_INCONSISTENT;
        }
        req->usage = CMK_USAGE_ENCRYPT_DECRYPT;
        return CKR_OK;
    }
    if (hmac) {
        if (crypt) {
            log_warning("CreateKey: key spec %s is GENERATE_VERIFY_MAC only; CKA_ENCRYPT/"
                        "CKA_DECRYPT may not be TRUE",
                        spec->name);
            return CKR_TEMPLATE_INCONSISTENT;
        }
        req->usage = CMK_USAGE_GENERATE_VERIFY_MAC;
        return CKR_OK;
    }
    if (crypt && !sign) {
        if (!rsa) {
            log_warning("CreateKey: key spec %s is SIGN_VERIFY only; CKA_ENCRYPT/CKA_DECRYPT "
                        "may not be TRUE",
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

/* Sets the usage flags the backend material gets; the rest is FALSE. */
static void set_usage_flags(struct tmpl_builder *b, CK_ULONG usage, bool private_half,
                            bool public_half, const CK_ATTRIBUTE *client, CK_ULONG n)
{
    bool crypt = usage == CMK_USAGE_ENCRYPT_DECRYPT;
    if (private_half) {
        tmpl_set(b, CKA_DECRYPT, crypt ? &ck_true : &ck_false, sizeof(CK_BBOOL));
        tmpl_set(b, CKA_SIGN, crypt ? &ck_false : &ck_true, sizeof(CK_BBOOL));
        /* Unwrap and recover are kept only where the client asked and usage allows. */
        if (!crypt || flag_of(client, n, CKA_UNWRAP) != 1) tmpl_set(b, CKA_UNWRAP, &ck_false, 1);
        if (crypt || flag_of(client, n, CKA_SIGN_RECOVER) != 1)
            tmpl_set(b, CKA_SIGN_RECOVER, &ck_false, 1);
    }
    if (public_half) {
        tmpl_set(b, CKA_ENCRYPT, crypt ? &ck_true : &ck_false, sizeof(CK_BBOOL));
        tmpl_set(b, CKA_VERIFY, crypt ? &ck_false : &ck_true, sizeof(CK_BBOOL));
        if (!crypt || flag_of(client, n, CKA_WRAP) != 1) tmpl_set(b, CKA_WRAP, &ck_false, 1);
        if (crypt || flag_of(client, n, CKA_VERIFY_RECOVER) != 1)
            tmpl_set(b, CKA_VERIFY_RECOVER, &ck_false, 1);
    }
}

/* CMK material never leaves the backend. Asking for extractable material is refused;
 * CKA_SENSITIVE=FALSE and CKA_PRIVATE=FALSE are what plain tools send by default
 * (pkcs11-tool --keygen), so they are raised to TRUE with a log line instead. */
static CK_RV check_export_policy(const CK_ATTRIBUTE *t, CK_ULONG n)
{
    if (flag_of(t, n, CKA_EXTRACTABLE) == 1) {
        log_warning("CreateKey: CKA_EXTRACTABLE=TRUE is refused: CMK material never leaves "
                    "the HSM");
        return CKR_TEMPLATE_INCONSISTENT;
    }
    if (flag_of(t, n, CKA_SENSITIVE) == 0)
        log_warning("CreateKey: CKA_SENSITIVE=FALSE ignored: CMK material is always sensitive");
    if (flag_of(t, n, CKA_PRIVATE) == 0)
        log_info("CreateKey: CKA_PRIVATE=FALSE ignored: CMK material is always private");
    if (flag_of(t, n, CKA_DERIVE) == 1)
        log_warning("CreateKey: CKA_DERIVE=TRUE ignored: no CMK key usage includes derivation");
    return CKR_OK;
}

static CK_RV check_rotation_allowed(struct create_request *req)
{
    if (req->rotation_interval && !req->rotation_enabled) {
        /* An interval alone is a policy to keep for later enabling: allowed. */
        return CKR_OK;
    }
    if (!req->rotation_enabled) return CKR_OK;
    if (!req->spec.symmetric || req->origin != CMK_ORIGIN_KMS) {
        log_warning("CreateKey: automatic rotation is only for symmetric keys of KMS origin; "
                    "key spec %s cannot rotate",
                    req->spec.name);
        return CKR_TEMPLATE_INCONSISTENT;
    }
    if (!req->rotation_interval) req->rotation_interval = ROTATION_DEFAULT_SECONDS;
    return CKR_OK;
}

static CK_RV check_quota(void)
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

static CK_RV check_session_writable(CK_SESSION_HANDLE session)
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

static CK_RV parse_request(struct create_request *req, CK_MECHANISM_PTR mech,
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
    rv = keyspec_from_request(mech->mechanism, spec_t, spec_n, module.cfg.cloud_specs_only,
                              &req->spec);
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
    if ((rv = resolve_usage(req, main, nmain, pub, npub)) != CKR_OK) return rv;
    if ((rv = check_export_policy(main, nmain)) != CKR_OK) return rv;
    if ((rv = check_rotation_allowed(req)) != CKR_OK) return rv;
    bool v;
    req->secret_private = true;
    req->public_private = pub && attr_get_bool(pub, npub, CKA_PRIVATE, &v) == ATTR_PRESENT && v;
    return CKR_OK;
}

/* Writes the Creating row. The unique alias index makes concurrent creates of one
 * alias fail here, before any material exists. */
static CK_RV insert_creating_row(struct create_request *req, bool pair, struct cmk_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    unsigned char id_bytes[16];
    if (util_uuid4(rec->key_id, id_bytes) != 0) return CKR_FUNCTION_FAILED;
    rec->alias = req->has_alias ? req->alias : NULL;
    rec->cka_id = req->has_cka_id ? (unsigned char *)req->cka_id : id_bytes;
    rec->cka_id_len = req->has_cka_id ? req->cka_id_len : 16;
    char description[1] = "";
    rec->description = description;
    char *desc_copy = NULL;
    if (req->description_len) {
        desc_copy = strndup(req->description, req->description_len);
        if (!desc_copy) return CKR_HOST_MEMORY;
        rec->description = desc_copy;
    }
    snprintf(rec->key_spec, sizeof(rec->key_spec), "%s", req->spec.name);
    rec->key_type = req->spec.key_type;
    rec->usage = req->usage;
    rec->origin = req->origin;
    rec->protection = req->protection;
    rec->state = CMK_STATE_CREATING;
    rec->created = util_now();
    rec->creator_uid = (long)getuid();
    rec->creator_pid = (long)getpid();
    rec->creator_start = util_process_start(getpid());
    rec->rotation_enabled = req->rotation_enabled;
    rec->rotation_interval = req->rotation_interval;
    rec->next_rotation = req->rotation_enabled ? rec->created + req->rotation_interval : 0;
    rec->primary_version = 1;
    rec->objects = pair ? (CMK_OBJ_PRIVATE | CMK_OBJ_PUBLIC) : CMK_OBJ_SECRET;
    rec->private_mask = (req->secret_private ? (pair ? CMK_OBJ_PRIVATE : CMK_OBJ_SECRET) : 0) |
                        (pair && req->public_private ? CMK_OBJ_PUBLIC : 0);
    rec->tags = req->tags;
    rec->tag_count = req->tag_count;

    enum store_status s = store_cmk_insert(module.store, rec);
    free(desc_copy);
    rec->alias = NULL;
    rec->cka_id = NULL;
    rec->description = NULL;
    rec->tags = NULL;
    rec->tag_count = 0;
    if (s == STORE_ALIAS_EXISTS) {
        log_warning("CreateKey: CKA_LABEL (alias) '%s' already exists on this token (aliases "
                    "are unique ignoring case)",
                    req->alias);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (s == STORE_READ_ONLY || s == STORE_FULL) return CKR_DEVICE_MEMORY;
    return s == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

/* The public half as the store keeps it: SPKI for every asymmetric key, and the EC
 * point, so the private object still answers both once the public object is gone. */
struct public_key {
    unsigned char *spki;
    size_t spki_len;
    unsigned char *ec_point;
    CK_ULONG ec_point_len;
};

/* Reads one attribute of any length from a backend object into malloc'd memory. */
static unsigned char *read_attr(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h,
                                CK_ATTRIBUTE_TYPE type, CK_ULONG *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    if (module.be.fn->C_GetAttributeValue(session, h, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0)
        return NULL;
    a.pValue = malloc(a.ulValueLen);
    if (a.pValue && module.be.fn->C_GetAttributeValue(session, h, &a, 1) != CKR_OK) {
        free(a.pValue);
        return NULL;
    }
    *len = a.ulValueLen;
    return a.pValue;
}

static void read_public_key(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE pub, CK_KEY_TYPE type,
                            struct public_key *out)
{
    memset(out, 0, sizeof(*out));
    CK_ULONG a_len = 0, b_len = 0;
    if (type == CKK_RSA) {
        unsigned char *n = read_attr(session, pub, CKA_MODULUS, &a_len);
        unsigned char *e = read_attr(session, pub, CKA_PUBLIC_EXPONENT, &b_len);
        if (n && e) out->spki = pubkey_spki_rsa(n, a_len, e, b_len, &out->spki_len);
        free(n);
        free(e);
    } else {
        unsigned char *params = read_attr(session, pub, CKA_EC_PARAMS, &a_len);
        out->ec_point = read_attr(session, pub, CKA_EC_POINT, &out->ec_point_len);
        if (params && out->ec_point)
            out->spki = pubkey_spki_ec(type, params, a_len, out->ec_point, out->ec_point_len,
                                       &out->spki_len);
        free(params);
    }
    if (!out->spki) log_warning("CreateKey: could not encode the public key as SPKI");
}

/* Turns the row Enabled and audits, in one transaction. */
static CK_RV commit_enabled(struct cmk_record *rec, const char *mech_name,
                            const struct public_key *pk)
{
    enum store_status s = store_begin(module.store);
    if (s == STORE_OK) {
        struct cmk_record cur;
        s = store_cmk_get(module.store, rec->row, &cur);
        if (s == STORE_OK) {
            cur.state = CMK_STATE_ENABLED;
            s = store_cmk_update(module.store, &cur);
            if (s == STORE_OK)
                s = store_version_insert(module.store, cur.row, 1, cur.created, "create");
            if (s == STORE_OK && pk)
                s = store_cmk_set_public(module.store, cur.row, pk->spki, pk->spki_len,
                                         pk->ec_point, pk->ec_point_len);
            char detail[128];
            snprintf(detail, sizeof(detail), "spec=%s mechanism=%s", cur.key_spec, mech_name);
            if (s == STORE_OK) s = store_audit(module.store, "CreateKey", cur.key_id, detail);
            cmk_record_free(&cur);
        }
        if (s == STORE_OK) s = store_commit(module.store);
        else store_rollback(module.store);
    }
    return s == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

void cmk_destroy_material(CK_SESSION_HANDLE session, const char *key_id, unsigned long version)
{
    unsigned char bid[CMK_BACKEND_ID_LEN];
    cmk_backend_id(key_id, version, bid);
    CK_OBJECT_HANDLE found[8];
    CK_ULONG n = 0;
    if (backend_find_by_id(&module.be, session, bid, sizeof(bid), (CK_OBJECT_CLASS)-1, found, 8,
                           &n) != CKR_OK)
        return;
    module_token_lock();
    for (CK_ULONG i = 0; i < n; i++) module.be.fn->C_DestroyObject(session, found[i]);
    module_token_unlock();
}

static void undo_creating_row(CK_SESSION_HANDLE session, struct cmk_record *rec)
{
    cmk_destroy_material(session, rec->key_id, 1);
    store_cmk_delete(module.store, rec->row);
}

/* The backend's own identity for the material: never the client's label or id. */
static void set_backend_identity(struct tmpl_builder *b, const unsigned char *bid,
                                 const char *label)
{
    tmpl_set(b, CKA_TOKEN, &ck_true, sizeof(CK_BBOOL));
    tmpl_set(b, CKA_ID, bid, CMK_BACKEND_ID_LEN);
    tmpl_set(b, CKA_LABEL, label, (CK_ULONG)strlen(label));
}

static void backend_label(const char *key_id, unsigned long version, char out[80])
{
    snprintf(out, 80, CMK_BACKEND_LABEL_PREFIX "%s/v%lu", key_id, version);
}

static void mech_name(CK_MECHANISM_TYPE m, char out[24])
{
    snprintf(out, 24, "0x%lx", m);
}

CK_RV cmk_generate_key(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl,
                       CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    struct create_request req;
    memset(&req, 0, sizeof(req));
    struct cmk_record rec = {0};
    struct tmpl_builder b;
    tmpl_init(&b);
    CK_RV rv = check_session_writable(session);
    if (rv == CKR_OK) rv = parse_request(&req, mech, tmpl, count, NULL, 0);
    if (rv == CKR_OK) rv = check_quota();
    if (rv != CKR_OK) goto out;
    rv = insert_creating_row(&req, false, &rec);
    if (rv != CKR_OK) goto out;
    util_crash_point("create:after-insert");

    unsigned char bid[CMK_BACKEND_ID_LEN];
    char label[80];
    cmk_backend_id(rec.key_id, 1, bid);
    backend_label(rec.key_id, 1, label);
    tmpl_copy_standard(&b, tmpl, count);
    set_backend_identity(&b, bid, label);
    tmpl_set(&b, CKA_SENSITIVE, &ck_true, sizeof(CK_BBOOL));
    tmpl_set(&b, CKA_EXTRACTABLE, &ck_false, sizeof(CK_BBOOL));
    tmpl_set(&b, CKA_PRIVATE, req.secret_private ? &ck_true : &ck_false, sizeof(CK_BBOOL));
    bool crypt = req.usage == CMK_USAGE_ENCRYPT_DECRYPT;
    tmpl_set(&b, CKA_ENCRYPT, crypt ? &ck_true : &ck_false, sizeof(CK_BBOOL));
    tmpl_set(&b, CKA_DECRYPT, crypt ? &ck_true : &ck_false, sizeof(CK_BBOOL));
    tmpl_set(&b, CKA_SIGN, crypt ? &ck_false : &ck_true, sizeof(CK_BBOOL));
    tmpl_set(&b, CKA_VERIFY, crypt ? &ck_false : &ck_true, sizeof(CK_BBOOL));
    tmpl_set(&b, CKA_DERIVE, &ck_false, sizeof(CK_BBOOL));
    if (b.failed) {
        rv = CKR_HOST_MEMORY;
        store_cmk_delete(module.store, rec.row);
        goto out;
    }

    CK_OBJECT_HANDLE material = 0;
    module_token_lock();
    rv = module.be.fn->C_GenerateKey(session, mech, b.attrs, b.count, &material);
    module_token_unlock();
    if (rv != CKR_OK) {
        log_warning("CreateKey: the backend refused to generate %s: 0x%lx", req.spec.name, rv);
        store_cmk_delete(module.store, rec.row);
        goto out;
    }
    util_crash_point("create:after-generate");
    char mn[24];
    mech_name(mech->mechanism, mn);
    rv = commit_enabled(&rec, mn, NULL);
    if (rv != CKR_OK) {
        undo_creating_row(session, &rec);
        goto out;
    }
    util_crash_point("create:after-commit");
    *key = handle_for_cmk(rec.row, CMK_OBJ_SECRET);
    log_info("CreateKey: %s %s alias '%s'", rec.key_id, req.spec.name,
             req.has_alias ? req.alias : "");
out:
    tmpl_free(&b);
    cmk_tags_free(req.tags, req.tag_count);
    return rv;
}

CK_RV cmk_generate_key_pair(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                            CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG pub_count,
                            CK_ATTRIBUTE_PTR priv_tmpl, CK_ULONG priv_count,
                            CK_OBJECT_HANDLE_PTR pub_key, CK_OBJECT_HANDLE_PTR priv_key)
{
    struct create_request req;
    memset(&req, 0, sizeof(req));
    struct cmk_record rec = {0};
    struct tmpl_builder bpub, bpriv;
    tmpl_init(&bpub);
    tmpl_init(&bpriv);
    CK_RV rv = check_session_writable(session);
    if (rv == CKR_OK)
        rv = parse_request(&req, mech, priv_tmpl, priv_count, pub_tmpl ? pub_tmpl : priv_tmpl,
                           pub_tmpl ? pub_count : 0);
    if (rv == CKR_OK) rv = check_quota();
    if (rv != CKR_OK) goto out;
    rv = insert_creating_row(&req, true, &rec);
    if (rv != CKR_OK) goto out;
    util_crash_point("create:after-insert");

    unsigned char bid[CMK_BACKEND_ID_LEN];
    char label[80];
    cmk_backend_id(rec.key_id, 1, bid);
    backend_label(rec.key_id, 1, label);
    tmpl_copy_standard(&bpub, pub_tmpl, pub_count);
    set_backend_identity(&bpub, bid, label);
    tmpl_set(&bpub, CKA_PRIVATE, req.public_private ? &ck_true : &ck_false, sizeof(CK_BBOOL));
    set_usage_flags(&bpub, req.usage, false, true, pub_tmpl, pub_count);
    tmpl_set(&bpub, CKA_DERIVE, &ck_false, sizeof(CK_BBOOL));
    tmpl_copy_standard(&bpriv, priv_tmpl, priv_count);
    set_backend_identity(&bpriv, bid, label);
    tmpl_set(&bpriv, CKA_SENSITIVE, &ck_true, sizeof(CK_BBOOL));
    tmpl_set(&bpriv, CKA_EXTRACTABLE, &ck_false, sizeof(CK_BBOOL));
    tmpl_set(&bpriv, CKA_PRIVATE, req.secret_private ? &ck_true : &ck_false, sizeof(CK_BBOOL));
    set_usage_flags(&bpriv, req.usage, true, false, priv_tmpl, priv_count);
    tmpl_set(&bpriv, CKA_DERIVE, &ck_false, sizeof(CK_BBOOL));
    if (bpub.failed || bpriv.failed) {
        rv = CKR_HOST_MEMORY;
        store_cmk_delete(module.store, rec.row);
        goto out;
    }

    CK_OBJECT_HANDLE mpub = 0, mpriv = 0;
    module_token_lock();
    rv = module.be.fn->C_GenerateKeyPair(session, mech, bpub.attrs, bpub.count, bpriv.attrs,
                                         bpriv.count, &mpub, &mpriv);
    module_token_unlock();
    if (rv != CKR_OK) {
        log_warning("CreateKey: the backend refused to generate %s: 0x%lx", req.spec.name, rv);
        store_cmk_delete(module.store, rec.row);
        goto out;
    }
    util_crash_point("create:after-generate");
    char mn[24];
    mech_name(mech->mechanism, mn);
    struct public_key pk;
    read_public_key(session, mpub, req.spec.key_type, &pk);
    rv = commit_enabled(&rec, mn, &pk);
    free(pk.spki);
    free(pk.ec_point);
    if (rv != CKR_OK) {
        undo_creating_row(session, &rec);
        goto out;
    }
    util_crash_point("create:after-commit");
    *pub_key = handle_for_cmk(rec.row, CMK_OBJ_PUBLIC);
    *priv_key = handle_for_cmk(rec.row, CMK_OBJ_PRIVATE);
    log_info("CreateKey: %s %s alias '%s'", rec.key_id, req.spec.name,
             req.has_alias ? req.alias : "");
out:
    tmpl_free(&bpub);
    tmpl_free(&bpriv);
    cmk_tags_free(req.tags, req.tag_count);
    return rv;
}

/* A Creating row belongs to a live CreateKey unless its creator process is gone. */
static bool creator_is_gone(const struct cmk_record *rec)
{
    int64_t start = util_process_start((pid_t)rec->creator_pid);
    return start == 0 || start != rec->creator_start;
}

void cmk_recover(CK_SESSION_HANDLE session)
{
    struct store_filter f;
    store_filter_init(&f);
    f.state = CMK_STATE_CREATING;
    f.include_creating = true;
    struct store_match *m = NULL;
    size_t n = 0;
    if (store_cmk_find(module.store, &f, &m, &n) != STORE_OK) return;
    for (size_t i = 0; i < n; i++) {
        struct cmk_record rec;
        if (store_cmk_get(module.store, m[i].row, &rec) != STORE_OK) continue;
        if (rec.state == CMK_STATE_CREATING && creator_is_gone(&rec)) {
            /* The client never got a handle: roll back rather than finish. */
            cmk_destroy_material(session, rec.key_id, 1);
            if (store_cmk_delete(module.store, rec.row) == STORE_OK) {
                store_audit(module.store, "RecoverCreateKey", rec.key_id,
                            "creator died mid-CreateKey; row and material removed");
                log_warning("recovery: removed key %s left half-created by process %ld",
                            rec.key_id, rec.creator_pid);
            }
        }
        cmk_record_free(&rec);
    }
    free(m);
}
