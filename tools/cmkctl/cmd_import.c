/* cmd_import.c - importing key material into keys of EXTERNAL origin:
 * get-parameters-for-import (C_GenerateKeyPair(CKM_CMK_IMPORT_PARAMS), then the key's
 * CKA_CMK_IMPORT_* attributes), import-key-material (C_UnwrapKey with the key's own handle
 * and CKA_CMK_IMPORT_TOKEN) and delete-imported-key-material (CKA_CMK_DELETE_MATERIAL). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "codec.h"
#include "ctl.h"
#include "keymeta.h"
#include "keyspec.h"
#include "output.h"

static const struct {
    const char *name;
    CK_ULONG value;
} wrapping_algorithms[] = {
    {"RSAES_OAEP_SHA_1", CMK_WRAP_RSAES_OAEP_SHA_1},
    {"RSAES_OAEP_SHA_256", CMK_WRAP_RSAES_OAEP_SHA_256},
    {"RSA_AES_KEY_WRAP_SHA_1", CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1},
    {"RSA_AES_KEY_WRAP_SHA_256", CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256},
};
#define N_ALGS (sizeof(wrapping_algorithms) / sizeof(wrapping_algorithms[0]))

static const char *algorithm_name(CK_ULONG v)
{
    for (size_t i = 0; i < N_ALGS; i++)
        if (wrapping_algorithms[i].value == v) return wrapping_algorithms[i].name;
    return "";
}

/* A refusal of an import step, in the clouds' words. */
static int explain(struct ctl *ctl, CK_RV rv, const char *what, const struct key_meta *m)
{
    char buf[32];
    const char *id = keymeta_text(m, CKA_CMK_KEY_ID);
    int external = keymeta_ulong(m, CKA_CMK_ORIGIN, 0) == CMK_ORIGIN_EXTERNAL;
    if (!external && (rv == CKR_KEY_FUNCTION_NOT_PERMITTED || rv == CKR_ACTION_PROHIBITED))
        return ctl_fail(ctl, KMS_UNSUPPORTED,
                        "%s: key %s is of KMS origin; only keys created with --origin EXTERNAL "
                        "take imported material (%s)",
                        what, id, ckr_name(rv, buf));
    switch (rv) {
    case CKR_ATTRIBUTE_VALUE_INVALID:
        return ctl_fail(ctl, KMS_INVALID_IMPORT_TOKEN,
                        "%s: the import token is not valid for key %s: forged, edited, issued for "
                        "another key, or replaced by newer parameters (%s)",
                        what, id, ckr_name(rv, buf));
    case CKR_CMK_IMPORT_TOKEN_EXPIRED:
        return ctl_fail(ctl, KMS_EXPIRED_IMPORT_TOKEN,
                        "%s: the import token has expired; run get-parameters-for-import again "
                        "(%s)",
                        what, ckr_name(rv, buf));
    case CKR_WRAPPED_KEY_INVALID:
    case CKR_WRAPPED_KEY_LEN_RANGE:
        return ctl_fail(ctl, KMS_INVALID_CIPHERTEXT,
                        "%s: the encrypted key material does not decrypt under the import "
                        "parameters' public key, or is truncated (%s)",
                        what, ckr_name(rv, buf));
    case CKR_CMK_INCORRECT_KEY_MATERIAL:
    case CKR_KEY_SIZE_RANGE:
        return ctl_fail(ctl, KMS_INCORRECT_KEY_MATERIAL, "%s: the key material %s key %s (%s)",
                        what,
                        rv == CKR_KEY_SIZE_RANGE ? "has the wrong size or type for"
                                                 : "is not the material first imported into",
                        id, ckr_name(rv, buf));
    case CKR_MECHANISM_PARAM_INVALID:
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "%s: the HSM cannot unwrap with this wrapping algorithm, or it is not the "
                        "one of the import parameters; see the module log (%s)",
                        what, ckr_name(rv, buf));
    }
    return keymeta_fail(ctl, rv, what, m);
}

/* ---- get-parameters-for-import ---- */

static const struct opt_def params_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI of a key of EXTERNAL origin"},
    {"wrapping-algorithm", "ALG", OPT_REQUIRED,
     "RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256 (symmetric material), RSA_AES_KEY_WRAP_SHA_1 or "
     "RSA_AES_KEY_WRAP_SHA_256 (any material; asymmetric keys as PKCS#8)"},
    {"wrapping-key-spec", "SPEC", OPT_REQUIRED, "RSA_2048, RSA_3072 or RSA_4096"},
    {"public-key-out", "FILE", 0, "also write the wrapping public key to FILE as PEM"},
    {NULL, NULL, 0, NULL},
};

static int run_get_parameters(struct ctl *ctl)
{
    const char *alg_text = arg_str(&ctl->args, "wrapping-algorithm");
    const char *spec_text = arg_str(&ctl->args, "wrapping-key-spec");
    CK_ULONG alg = 0, bits = 0;
    for (size_t i = 0; i < N_ALGS; i++)
        if (!strcasecmp(alg_text, wrapping_algorithms[i].name)) alg = wrapping_algorithms[i].value;
    if (!alg)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "unknown --wrapping-algorithm '%s' (RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, "
                        "RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256)",
                        alg_text);
    if (!strcasecmp(spec_text, "RSA_2048"))
        bits = 2048;
    else if (!strcasecmp(spec_text, "RSA_3072"))
        bits = 3072;
    else if (!strcasecmp(spec_text, "RSA_4096"))
        bits = 4096;
    else
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "unknown --wrapping-key-spec '%s' (RSA_2048, RSA_3072, RSA_4096)",
                        spec_text);
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    struct attr_val a[3] = {{CKA_CMK_IMPORT_TOKEN, NULL, 0, 0},
                            {CKA_CMK_IMPORT_PUBLIC_KEY, NULL, 0, 0},
                            {CKA_CMK_IMPORT_VALID_TO, NULL, 0, 0}};
    char *token = NULL, *der = NULL, *pem = NULL;
    if (!rc) {
        CK_MECHANISM mech = {CKM_CMK_IMPORT_PARAMS, NULL, 0};
        CK_ATTRIBUTE pt[] = {{CKA_MODULUS_BITS, &bits, sizeof(bits)}};
        CK_ATTRIBUTE vt[] = {{CKA_CMK_KEY_ID, ref.key_id, 36},
                             {CKA_CMK_WRAPPING_ALGORITHM, &alg, sizeof(alg)}};
        CK_OBJECT_HANDLE wpub, wpriv;
        CK_RV rv =
            ctl->p11.fn->C_GenerateKeyPair(ctl->p11.session, &mech, pt, 1, vt, 2, &wpub, &wpriv);
        if (rv == CKR_OK) rv = p11_get_attrs(&ctl->p11, ref.main, a, 3);
        if (rv != CKR_OK)
            rc = explain(ctl, rv, "GetParametersForImport", &m);
        else if (!a[0].present || !a[1].present || !a[2].present)
            rc = ctl_fail(ctl, KMS_INTERNAL, "the module gave no import parameters for key %s",
                          ref.key_id);
    }
    if (!rc &&
        (!(token = b64_encode(a[0].value, a[0].len)) || !(der = b64_encode(a[1].value, a[1].len)) ||
         !(pem = pem_public_key(a[1].value, a[1].len))))
        rc = ctl_fail(ctl, KMS_INTERNAL, "cannot encode the import parameters");
    const char *out = arg_str(&ctl->args, "public-key-out");
    if (!rc && out && file_write(out, pem, strlen(pem)))
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot write %s: %m", out);
    if (!rc) {
        json_object *resp = json_object_new_object();
        out_add_str(resp, "KeyId", ref.key_id);
        out_add_str(resp, "ImportToken", token);
        out_add_str(resp, "PublicKey", der);
        json_object_object_add(resp, "ParametersValidTo",
                               out_time((int64_t)attr_ulong(a, 3, CKA_CMK_IMPORT_VALID_TO, 0)));
        out_add_str(resp, "WrappingAlgorithm", algorithm_name(alg));
        rc = out_emit(ctl, resp, 0);
    }
    free(token);
    free(der);
    free(pem);
    p11_attrs_free(a, 3);
    keymeta_free(&m);
    return rc;
}

const struct cmd_def cmd_get_parameters_for_import = {
    "get-parameters-for-import",
    "Get a wrapping public key and an import token for a key of EXTERNAL origin",
    "C_GenerateKeyPair(CKM_CMK_IMPORT_PARAMS) makes an RSA wrapping pair in the HSM (private\n"
    "half UNWRAP only, never extractable) valid 24 hours, replacing any earlier one; the key\n"
    "then answers CKA_CMK_IMPORT_TOKEN, CKA_CMK_IMPORT_PUBLIC_KEY and CKA_CMK_IMPORT_VALID_TO.\n"
    "PublicKey is the DER SubjectPublicKeyInfo in base64 (--public-key-out writes PEM).",
    "cmkctl get-parameters-for-import --key-id alias/byok --wrapping-algorithm "
    "RSAES_OAEP_SHA_1 --wrapping-key-spec RSA_2048 --public-key-out wrap.pem",
    params_opts,
    run_get_parameters,
};

/* ---- import-key-material ---- */

static const struct opt_def import_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI of a key of EXTERNAL origin"},
    {"encrypted-key-material", "FILE|BASE64", OPT_REQUIRED,
     "the wrapped material: a file (raw bytes; fileb:// accepted) or base64"},
    {"import-token", "TOKEN|FILE", OPT_REQUIRED,
     "ImportToken of get-parameters-for-import: base64, or a file of raw bytes"},
    {"valid-to", "TIME", 0, "material expiry: RFC 3339 UTC or Unix seconds"},
    {"expiration-model", "MODEL", 0,
     "KEY_MATERIAL_EXPIRES (needs --valid-to) or KEY_MATERIAL_DOES_NOT_EXPIRE (the default "
     "without --valid-to)"},
    {NULL, NULL, 0, NULL},
};

/* A file when one of that name exists (or fileb://PATH), else base64. */
static int read_bytes(struct ctl *ctl, const char *opt, const char *value, unsigned char **data,
                      size_t *len)
{
    const char *path = !strncmp(value, "fileb://", 8) ? value + 8 : value;
    if (path != value || access(path, R_OK) == 0) {
        if (file_read(path, data, len))
            return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--%s: cannot read %s: %m", opt, path);
        return 0;
    }
    if (b64_decode(value, data, len) || *len == 0)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "--%s is neither a readable file nor valid base64", opt);
    return 0;
}

static int parse_expiry(struct ctl *ctl, CK_ULONG *expires)
{
    const char *model = arg_str(&ctl->args, "expiration-model");
    const char *valid_to = arg_str(&ctl->args, "valid-to");
    int never = model && !strcasecmp(model, "KEY_MATERIAL_DOES_NOT_EXPIRE");
    if (model && !never && strcasecmp(model, "KEY_MATERIAL_EXPIRES"))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "unknown --expiration-model '%s' (KEY_MATERIAL_EXPIRES, "
                        "KEY_MATERIAL_DOES_NOT_EXPIRE)",
                        model);
    if (never && valid_to)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "--valid-to contradicts --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE");
    if (model && !never && !valid_to)
        return ctl_fail(ctl, KMS_MISSING_PARAMETER,
                        "--expiration-model KEY_MATERIAL_EXPIRES needs --valid-to");
    *expires = 0;
    if (!valid_to) return 0;
    long long t;
    if (out_parse_time(valid_to, &t) || t <= 0)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "--valid-to '%s' is neither RFC 3339 (UTC) nor Unix seconds", valid_to);
    if (t <= out_now())
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--valid-to '%s' is not in the future",
                        valid_to);
    *expires = (CK_ULONG)t;
    return 0;
}

static const char *const import_fields[] = {"KeyState", "Origin", "ExpirationModel",
                                            "MaterialExpireTime", NULL};

static int run_import_key_material(struct ctl *ctl)
{
    unsigned char *blob = NULL, *token = NULL;
    size_t blob_len = 0, token_len = 0;
    CK_ULONG expires = 0;
    int rc = parse_expiry(ctl, &expires);
    if (!rc)
        rc = read_bytes(ctl, "encrypted-key-material",
                        arg_str(&ctl->args, "encrypted-key-material"), &blob, &blob_len);
    if (!rc)
        rc = read_bytes(ctl, "import-token", arg_str(&ctl->args, "import-token"), &token,
                        &token_len);
    struct key_ref ref;
    struct key_meta m;
    memset(&m, 0, sizeof(m));
    if (!rc) rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    /* The mechanism is the algorithm of the key's outstanding parameters. */
    struct attr_val alg = {CKA_CMK_WRAPPING_ALGORITHM, NULL, 0, 0};
    if (!rc) {
        CK_RV rv = p11_get_attrs(&ctl->p11, ref.main, &alg, 1);
        if (rv != CKR_OK)
            rc = explain(ctl, rv, "ImportKeyMaterial", &m);
        else if (!alg.present && keymeta_ulong(&m, CKA_CMK_ORIGIN, 0) != CMK_ORIGIN_EXTERNAL)
            rc = explain(ctl, CKR_KEY_FUNCTION_NOT_PERMITTED, "ImportKeyMaterial", &m);
        else if (!alg.present)
            rc = ctl_fail(ctl, KMS_INVALID_IMPORT_TOKEN,
                          "ImportKeyMaterial: key %s has no outstanding import parameters (used "
                          "or never asked for); run get-parameters-for-import",
                          ref.key_id);
    }
    if (!rc) {
        CK_ULONG a = attr_ulong(&alg, 1, CKA_CMK_WRAPPING_ALGORITHM, 0);
        int sha256 = a == CMK_WRAP_RSAES_OAEP_SHA_256 || a == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256;
        int key_wrap =
            a == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1 || a == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256;
        CK_RSA_PKCS_OAEP_PARAMS oaep = {sha256 ? CKM_SHA256 : CKM_SHA_1,
                                        sha256 ? CKG_MGF1_SHA256 : CKG_MGF1_SHA1,
                                        CKZ_DATA_SPECIFIED, NULL, 0};
        CK_CMK_RSA_AES_KEY_WRAP_PARAMS kw = {256, &oaep};
        CK_MECHANISM mech = {key_wrap ? CKM_RSA_AES_KEY_WRAP : CKM_RSA_PKCS_OAEP,
                             key_wrap ? (void *)&kw : (void *)&oaep,
                             key_wrap ? sizeof(kw) : sizeof(oaep)};
        CK_ATTRIBUTE t[] = {{CKA_CMK_IMPORT_TOKEN, token, (CK_ULONG)token_len},
                            {CKA_CMK_MATERIAL_EXPIRES, &expires, sizeof(expires)}};
        CK_OBJECT_HANDLE out = 0;
        CK_RV rv = ctl->p11.fn->C_UnwrapKey(ctl->p11.session, &mech, ref.main, blob,
                                            (CK_ULONG)blob_len, t, 2, &out);
        if (rv != CKR_OK) rc = explain(ctl, rv, "ImportKeyMaterial", &m);
    }
    if (!rc) rc = keymeta_report(ctl, &ref, import_fields);
    p11_attrs_free(&alg, 1);
    keymeta_free(&m);
    free(blob);
    free(token);
    return rc;
}

const struct cmd_def cmd_import_key_material = {
    "import-key-material",
    "Import wrapped key material into a key of EXTERNAL origin",
    "C_UnwrapKey with the key's own handle as unwrapping key, the mechanism of the import\n"
    "parameters (CKM_RSA_PKCS_OAEP, or CKM_RSA_AES_KEY_WRAP with an AES-256 ephemeral key)\n"
    "and CKA_CMK_IMPORT_TOKEN (+ CKA_CMK_MATERIAL_EXPIRES) in the template. The material is\n"
    "unwrapped inside the HSM; the key turns Enabled. Importing again takes only the same\n"
    "material (it may change the expiry). Errors: InvalidImportToken, ExpiredImportToken,\n"
    "InvalidCiphertext (does not decrypt, truncated), IncorrectKeyMaterial (wrong size, or\n"
    "not the material first imported).",
    "cmkctl import-key-material --key-id alias/byok --encrypted-key-material material.bin "
    "--import-token \"$TOKEN\" --valid-to 2027-01-01T00:00:00Z",
    import_opts,
    run_import_key_material,
};

/* ---- delete-imported-key-material ---- */

static const struct opt_def delete_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI of a key of EXTERNAL origin"},
    {NULL, NULL, 0, NULL},
};

static int run_delete_material(struct ctl *ctl)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (!rc) {
        struct tmpl t = {0};
        tmpl_add_bool(&t, CKA_CMK_DELETE_MATERIAL, 1);
        CK_RV rv = p11_set(&ctl->p11, ref.main, t.a, t.n);
        if (rv != CKR_OK) rc = explain(ctl, rv, "DeleteImportedKeyMaterial", &m);
    }
    if (!rc) rc = keymeta_report(ctl, &ref, import_fields);
    keymeta_free(&m);
    return rc;
}

const struct cmd_def cmd_delete_imported_key_material = {
    "delete-imported-key-material",
    "Destroy a key's imported material at once (the key waits in PendingImport)",
    "Sets CKA_CMK_DELETE_MATERIAL=TRUE: the material is destroyed in the HSM now and the key\n"
    "is PendingImport; import-key-material with the same material brings it back.",
    "cmkctl delete-imported-key-material --key-id alias/byok",
    delete_opts,
    run_delete_material,
};
