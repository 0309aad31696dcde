/* cmd_create.c - create-key: CreateKey as C_GenerateKey / C_GenerateKeyPair of a token key
 * with cmkp11's vendor attributes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ctl.h"
#include "keymeta.h"
#include "keyspec.h"
#include "output.h"
#include "store_ro.h"

static const struct opt_def create_opts[] = {
    {"alias", "ALIAS", 0, "alias (CKA_CMK_ALIAS, and the objects' CKA_LABEL); an 'alias/' prefix is accepted"},
    {"description", "TEXT", 0, "description, up to 8192 characters"},
    {"key-spec", "SPEC", 0,
     "AES_128, AES_192, AES_256, RSA_2048, RSA_3072, RSA_4096, EC_P256, EC_P384, EC_P521, "
     "EC_P256K, HMAC_224|256|384|512, SM4 or EC_SM2; synonyms Aliyun_AES_256, SYMMETRIC_DEFAULT, "
     "ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, Aliyun_SM4, SM2 (default "
     "AES_256, or SM4 when the configuration sets [policy] gm_mode = true)"},
    {"key-usage", "USAGE", 0,
     "ENCRYPT_DECRYPT, SIGN_VERIFY or GENERATE_VERIFY_MAC, or Tencent's combined "
     "ASYMMETRIC_DECRYPT_RSA_2048, ASYMMETRIC_SIGN_VERIFY_RSA_2048, ASYMMETRIC_SIGN_VERIFY_ECC "
     "(EC_P256), ASYMMETRIC_SIGN_VERIFY_ECDSA384 (EC_P384), ASYMMETRIC_DECRYPT_SM2, "
     "ASYMMETRIC_SIGN_VERIFY_SM2 (EC_SM2); default ENCRYPT_DECRYPT for AES, SM4, RSA and SM2, "
     "SIGN_VERIFY for EC, GENERATE_VERIFY_MAC for HMAC"},
    {"origin", "ORIGIN", 0,
     "KMS (also Aliyun_KMS, AWS_KMS, kms, 1), or EXTERNAL (2): the key has no material and "
     "waits in PendingImport for import-key-material (AES, SM4, HMAC, RSA, EC and SM2 specs)"},
    {"protection-level", "LEVEL", 0,
     "HSM (the default: material in the backend) or SOFTWARE (AES, SM4, HMAC up to 512 bits, "
     "RSA 2048/3072/4096, EC P256/P384/P521/P256K and SM2 specs of KMS or EXTERNAL origin: "
     "material sealed in the store under the token's master key, used "
     "in-process; "
     "SM4 is SOFTWARE unless HSM is asked, which a backend without SM4 refuses)"},
    {"enable-automatic-rotation", NULL, 0, "rotate automatically (symmetric keys only)"},
    {"rotation-interval", "PERIOD", 0,
     "rotation interval: 365d, 8760h, 525600m, 31536000s or whole days; 7 to 2560 days"},
    {"tags", "K=V[,K=V...]", OPT_REPEAT, "tags"},
    {NULL, NULL, 0, NULL},
};

struct create_req {
    const struct key_spec *spec;
    CK_ULONG usage;
    int has_origin, has_protection;
    CK_ULONG origin, protection;
    const char *alias, *description, *period;
    int rotation;
    char *tag_lines;
    size_t tag_lines_len;
    int has_tags;
};

/* [policy] gm_mode of the module's configuration; off when it cannot be read (the module
 * then says why at C_Initialize). */
static int gm_mode_configured(void)
{
    static struct cmk_conf conf;
    char why[256];
    return conf_load(&conf, why, sizeof(why)) == 0 && conf.gm_mode;
}

static int parse_spec_and_usage(struct ctl *ctl, struct create_req *r)
{
    const char *spec_text = arg_str(&ctl->args, "key-spec");
    const char *usage_text = arg_str(&ctl->args, "key-usage");
    const struct key_spec *implied = NULL, *given = NULL;
    if (usage_text) {
        enum spec_lookup u = keyusage_lookup(usage_text, &r->usage, &implied);
        if (u == SPEC_UNKNOWN)
            return ctl_fail(ctl, KMS_INVALID_KEY_USAGE,
                            "unknown key usage '%s' (ENCRYPT_DECRYPT, SIGN_VERIFY, "
                            "GENERATE_VERIFY_MAC, ASYMMETRIC_DECRYPT_RSA_2048, "
                            "ASYMMETRIC_SIGN_VERIFY_RSA_2048, ASYMMETRIC_SIGN_VERIFY_ECC, "
                            "ASYMMETRIC_SIGN_VERIFY_ECDSA384, ASYMMETRIC_DECRYPT_SM2, "
                            "ASYMMETRIC_SIGN_VERIFY_SM2)",
                            usage_text);
    }
    if (spec_text) {
        enum spec_lookup s = keyspec_lookup(spec_text, &given);
        if (s == SPEC_UNKNOWN)
            return ctl_fail(ctl, KMS_INVALID_PARAMETER, "unknown key spec '%s' (one of %s)",
                            spec_text, keyspec_names());
    }
    if (given && implied && given != implied)
        return ctl_fail(ctl, KMS_INVALID_KEY_USAGE, "--key-usage %s makes a %s key, not %s",
                        usage_text, implied->name, given->name);
    r->spec = given ? given : implied ? implied : keyspec_default(gm_mode_configured());
    if (!usage_text) r->usage = keyusage_default(r->spec);
    return 0;
}

static int parse_origin_and_level(struct ctl *ctl, struct create_req *r)
{
    const char *origin = arg_str(&ctl->args, "origin");
    if (origin) {
        if (!strcasecmp(origin, "KMS") || !strcasecmp(origin, "Aliyun_KMS") ||
            !strcasecmp(origin, "AWS_KMS") || !strcmp(origin, "1")) {
            r->has_origin = 1;
            r->origin = CMK_ORIGIN_KMS;
        } else if (!strcasecmp(origin, "EXTERNAL") || !strcmp(origin, "2")) {
            r->has_origin = 1;
            r->origin = CMK_ORIGIN_EXTERNAL;
        } else {
            return ctl_fail(ctl, KMS_INVALID_TYPE, "unknown origin '%s' (KMS or EXTERNAL)", origin);
        }
    }
    const char *level = arg_str(&ctl->args, "protection-level");
    if (level) {
        if (!strcasecmp(level, "HSM")) {
            r->has_protection = 1;
            r->protection = CMK_PROTECTION_HSM;
        } else if (!strcasecmp(level, "SOFTWARE")) {
            r->has_protection = 1;
            r->protection = CMK_PROTECTION_SOFTWARE;
        } else {
            return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                            "unknown protection level '%s' (HSM or SOFTWARE)", level);
        }
    }
    return 0;
}

static int parse_tags(struct ctl *ctl, struct create_req *r)
{
    const char *const *values;
    size_t n = arg_list(&ctl->args, "tags", &values);
    if (n == 0) return 0;
    struct tag_list tags = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *bad;
        enum tags_status s = tags_parse_arg(&tags, values[i], &bad);
        if (s == TAGS_DUPLICATE)
            rc = ctl_fail(ctl, KMS_TAG_KEYS_DUPLICATED, "tag key '%s' is given twice", bad);
        else if (s == TAGS_SYNTAX)
            rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "--tags wants KEY=VALUE,...; bad at '%s'",
                          bad);
        else if (s != TAGS_OK)
            rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    }
    if (!rc) {
        r->tag_lines = tags_to_lines(&tags, &r->tag_lines_len);
        r->has_tags = 1;
        if (!r->tag_lines) rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    }
    tags_free(&tags);
    return rc;
}

/* The alias without the clouds' "alias/" prefix: the key's objects take it as label too,
 * so pkcs11: URIs (object=NAME) find them by it. */
static const char *bare_alias(const char *alias)
{
    return alias && !strncasecmp(alias, "alias/", 6) ? alias + 6 : alias;
}

static void add_metadata(struct tmpl *t, const struct create_req *r, const char *alias)
{
    if (alias) {
        tmpl_add(t, CKA_CMK_ALIAS, alias, (CK_ULONG)strlen(alias));
        tmpl_add(t, CKA_LABEL, bare_alias(alias), (CK_ULONG)strlen(bare_alias(alias)));
    }
    tmpl_add(t, CKA_CMK_KEY_SPEC, r->spec->name, (CK_ULONG)strlen(r->spec->name));
    tmpl_add(t, CKA_CMK_KEY_USAGE, &r->usage, sizeof(r->usage));
    if (r->has_origin) tmpl_add(t, CKA_CMK_ORIGIN, &r->origin, sizeof(r->origin));
    if (r->has_protection)
        tmpl_add(t, CKA_CMK_PROTECTION_LEVEL, &r->protection, sizeof(r->protection));
    if (r->description)
        tmpl_add(t, CKA_CMK_DESCRIPTION, r->description, (CK_ULONG)strlen(r->description));
    if (r->rotation) tmpl_add_bool(t, CKA_CMK_ROTATION_ENABLED, 1);
    if (r->period) tmpl_add(t, CKA_CMK_ROTATION_PERIOD, r->period, (CK_ULONG)strlen(r->period));
    if (r->has_tags) tmpl_add(t, CKA_CMK_TAGS, r->tag_lines, (CK_ULONG)r->tag_lines_len);
}

static CK_RV generate(struct ctl *ctl, const struct create_req *r, struct key_ref *ref)
{
    static const CK_BYTE f4[] = {0x01, 0x00, 0x01};
    const struct key_spec *spec = r->spec;
    int crypt = r->usage == CMK_USAGE_ENCRYPT_DECRYPT;
    struct tmpl main = {0}, pub = {0};
    CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY, priv_class = CKO_PRIVATE_KEY,
                    pub_class = CKO_PUBLIC_KEY;
    static const CK_KEY_TYPE types[] = {
        [FAMILY_AES] = CKK_AES, [FAMILY_SM4] = CKK_CMK_SM4, [FAMILY_HMAC] = CKK_GENERIC_SECRET,
        [FAMILY_RSA] = CKK_RSA, [FAMILY_EC] = CKK_EC,       [FAMILY_SM2] = CKK_CMK_SM2};
    static const CK_MECHANISM_TYPE mechs[] = {[FAMILY_AES] = CKM_AES_KEY_GEN,
                                              [FAMILY_SM4] = CKM_CMK_SM4_KEY_GEN,
                                              [FAMILY_HMAC] = CKM_GENERIC_SECRET_KEY_GEN,
                                              [FAMILY_RSA] = CKM_RSA_PKCS_KEY_PAIR_GEN,
                                              [FAMILY_EC] = CKM_EC_KEY_PAIR_GEN,
                                              [FAMILY_SM2] = CKM_CMK_SM2_KEY_PAIR_GEN};
    CK_KEY_TYPE type = types[spec->family];
    CK_ULONG size = spec->size;
    int pair =
        spec->family == FAMILY_RSA || spec->family == FAMILY_EC || spec->family == FAMILY_SM2;
    tmpl_add(&main, CKA_CLASS, pair ? &priv_class : &secret_class, sizeof(CK_OBJECT_CLASS));
    tmpl_add(&main, CKA_KEY_TYPE, &type, sizeof(type));
    tmpl_add_bool(&main, CKA_TOKEN, 1);
    tmpl_add_bool(&main, CKA_PRIVATE, 1);
    tmpl_add_bool(&main, CKA_SENSITIVE, 1);
    tmpl_add_bool(&main, CKA_EXTRACTABLE, 0);
    tmpl_add_bool(&main, crypt ? CKA_DECRYPT : CKA_SIGN, 1);
    if (!pair) tmpl_add_bool(&main, crypt ? CKA_ENCRYPT : CKA_VERIFY, 1);
    add_metadata(&main, r, r->alias);
    CK_MECHANISM mech = {mechs[spec->family], NULL, 0};
    CK_RV rv;
    if (!pair) {
        tmpl_add(&main, CKA_VALUE_LEN, &size, sizeof(size));
        rv = ctl->p11.fn->C_GenerateKey(ctl->p11.session, &mech, main.a, main.n, &ref->main);
        ref->main_class = CKO_SECRET_KEY;
        return rv;
    }
    tmpl_add(&pub, CKA_CLASS, &pub_class, sizeof(pub_class));
    tmpl_add(&pub, CKA_KEY_TYPE, &type, sizeof(type));
    tmpl_add_bool(&pub, CKA_TOKEN, 1);
    /* A public half readable without login is what OpenSSL and p11tool expect. */
    tmpl_add_bool(&pub, CKA_PRIVATE, 0);
    tmpl_add_bool(&pub, crypt ? CKA_ENCRYPT : CKA_VERIFY, 1);
    if (r->alias)
        tmpl_add(&pub, CKA_LABEL, bare_alias(r->alias), (CK_ULONG)strlen(bare_alias(r->alias)));
    if (spec->family == FAMILY_RSA) {
        tmpl_add(&pub, CKA_MODULUS_BITS, &size, sizeof(size));
        tmpl_add(&pub, CKA_PUBLIC_EXPONENT, f4, sizeof(f4));
    } else {
        tmpl_add(&pub, CKA_EC_PARAMS, spec->ec_oid, (CK_ULONG)spec->ec_oid_len);
    }
    rv = ctl->p11.fn->C_GenerateKeyPair(ctl->p11.session, &mech, pub.a, pub.n, main.a, main.n,
                                        &ref->pub, &ref->main);
    ref->main_class = CKO_PRIVATE_KEY;
    return rv;
}

/* The module says only "a value is invalid" or "the template contradicts itself"; its log
 * names the field. Ask the token and the rules which field it was, most specific first. */
static int explain_refusal(struct ctl *ctl, CK_RV rv, const struct create_req *r)
{
    char buf[32], owner[37];
    const char *rvname = ckr_name(rv, buf);
    if (r->alias) {
        const char *why = keyref_alias_problem(r->alias);
        /* A key another process is creating holds its alias from the start, but finds show
         * it only once made: a well-formed alias that no key shows yet is looked for again,
         * for as long as a CreateKey takes, before the refusal is put down to another field
         * (four creates of one alias at once gave the losers InvalidParameter). */
        for (int tries = 0;; tries++) {
            int taken = keyref_alias_taken(ctl, r->alias, owner);
            if (taken < 0) return (int)err_code_exit(ctl->err.code);
            if (taken)
                return ctl_fail(ctl, KMS_ALIAS_EXISTS, "alias '%s' is already used by key %s",
                                r->alias, owner);
            if (why || tries == 15) break;
            struct timespec pause = {0, 100 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
        if (why)
            return ctl_fail(ctl, KMS_INVALID_ALIAS, "alias '%s' is invalid: %s (%s)", r->alias, why,
                            rvname);
    }
    if (!keyusage_allowed(r->spec, r->usage))
        return ctl_fail(ctl, KMS_INVALID_KEY_USAGE,
                        "key spec %s cannot have usage %s (AES, SM4: ENCRYPT_DECRYPT; EC: "
                        "SIGN_VERIFY; RSA, SM2: either; HMAC: GENERATE_VERIFY_MAC) (%s)",
                        r->spec->name, keyusage_name(r->usage), rvname);
    if (r->rotation && !keyspec_is_cipher(r->spec))
        return ctl_fail(ctl, KMS_UNSUPPORTED,
                        "automatic rotation is only for symmetric keys; %s cannot rotate (%s)",
                        r->spec->name, rvname);
    if (r->rotation && r->has_origin && r->origin == CMK_ORIGIN_EXTERNAL)
        return ctl_fail(ctl, KMS_UNSUPPORTED,
                        "automatic rotation is only for keys of origin TENCENT_KMS/KMS: imported "
                        "material cannot be made anew (%s)",
                        rvname);
    return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                    "the module refused the request (%s): check --description (at most 8192 "
                    "characters, no control characters), --tags (at most 50; key 1-128, value "
                    "0-256 characters; prefixes aws:, acs:, aliyun, cmk: reserved) and "
                    "--rotation-interval (7 to 2560 days); the module log names the field",
                    rvname);
}

static int run_create_key(struct ctl *ctl)
{
    struct create_req r;
    memset(&r, 0, sizeof(r));
    r.alias = arg_str(&ctl->args, "alias");
    if (r.alias && !*bare_alias(r.alias)) /* Tencent: "cannot be empty"; omit it for none */
        return ctl_fail(ctl, KMS_INVALID_ALIAS, "--alias is empty: give a name, or no --alias");
    r.description = arg_str(&ctl->args, "description");
    r.period = arg_str(&ctl->args, "rotation-interval");
    r.rotation = arg_flag(&ctl->args, "enable-automatic-rotation");
    int rc = parse_spec_and_usage(ctl, &r);
    if (!rc) rc = parse_origin_and_level(ctl, &r);
    if (!rc) rc = parse_tags(ctl, &r);
    if (!rc) rc = p11_open(ctl, P11_LOGIN);
    if (rc) goto out;
    struct key_ref ref;
    memset(&ref, 0, sizeof(ref));
    CK_RV rv = generate(ctl, &r, &ref);
    switch (rv) {
    case CKR_OK: break;
    case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_TEMPLATE_INCONSISTENT: rc = explain_refusal(ctl, rv, &r); goto out;
    case CKR_MECHANISM_INVALID:
    case CKR_CURVE_NOT_SUPPORTED:
    case CKR_KEY_SIZE_RANGE: {
        char buf[32];
        rc = ctl_fail(ctl, KMS_UNSUPPORTED_SPEC, "this token's backend cannot make %s keys (%s)",
                      r.spec->name, ckr_name(rv, buf));
        goto out;
    }
    case CKR_DEVICE_MEMORY:
        /* The module says this for its key quota and for a full store disk alike; its log
         * line tells which. */
        rc = ctl_fail(ctl, KMS_LIMIT,
                      "the token has no room for another key: its key quota (max_keys) is "
                      "reached, or its store's disk is full (CKR_DEVICE_MEMORY; the module's log "
                      "says which)");
        goto out;
    default: rc = ctl_fail_rv(ctl, rv, "CreateKey"); goto out;
    }
    struct key_meta m;
    memset(&m, 0, sizeof(m));
    rc = keymeta_read(ctl, &ref, &m);
    if (!rc) {
        json_object *resp = json_object_new_object();
        json_object_object_add(resp, "KeyMetadata", keymeta_json(ctl, &m));
        if (r.tag_lines) {
            /* Tencent answers a create with tags with how the tagging went: 0 is success
             * (the tags are written with the key, in one step, or the create fails). */
            json_object_object_add(resp, "TagCode", json_object_new_int(0));
            out_add_str(resp, "TagMsg", "");
        }
        rc = out_emit(ctl, resp, 0);
    }
    keymeta_free(&m);
out:
    free(r.tag_lines);
    return rc;
}

const struct cmd_def cmd_create_key = {
    "create-key",
    "Create a customer master key (CreateKey)",
    "Generates the key in the token with C_GenerateKey (AES, HMAC) or C_GenerateKeyPair\n"
    "(RSA, EC), CKA_TOKEN=TRUE, CKA_CMK_ALIAS and CKA_LABEL = the alias, and cmkp11's vendor attributes for the\n"
    "description, spec, usage, origin, protection level, rotation policy and tags.",
    "cmkctl create-key --alias payments --description 'card data' --key-spec AES_256 "
    "--enable-automatic-rotation --rotation-interval 90d --tags team=pay,env=prod",
    create_opts,
    run_create_key,
};
