/* import_params.c - GetParametersForImport: C_GenerateKeyPair(CKM_CMK_IMPORT_PARAMS) makes
 * a wrapping pair in the backend and an authenticated import token for a key of EXTERNAL
 * origin. */
#include "import_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_VALIDITY_SECONDS (24 * 3600)

/* The CMK a template names by CKA_CMK_KEY_ID. */
static CK_RV key_named(const CK_ATTRIBUTE *t, CK_ULONG n, const char *op, struct cmk_record *rec)
{
    const CK_ATTRIBUTE *a = attr_find(t, n, CKA_CMK_KEY_ID);
    char key_id[37];
    if (!a || a->ulValueLen != 36 || !a->pValue) {
        log_warning("%s: the private template must name the key by CKA_CMK_KEY_ID (36 "
                    "characters)",
                    op);
        return a ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_TEMPLATE_INCOMPLETE;
    }
    memcpy(key_id, a->pValue, 36);
    key_id[36] = '\0';
    enum store_status s = store_cmk_get_by_key_id(module.store, key_id, rec);
    if (s == STORE_OK && rec->state == CMK_STATE_CREATING) {
        cmk_record_free(rec);
        s = STORE_NOT_FOUND;
    }
    if (s == STORE_NOT_FOUND) {
        log_warning("%s: CKA_CMK_KEY_ID %s names no key on this token", op, key_id);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    return s == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

static CK_RV parse_params_request(const CK_ATTRIBUTE *pub, CK_ULONG npub, const CK_ATTRIBUTE *priv,
                                  CK_ULONG npriv, const struct cmk_record *rec,
                                  struct import_token *f)
{
    static const char op[] = "GetParametersForImport";
    for (CK_ULONG i = 0; i < npriv; i++) {
        if (attr_is_vendor(priv[i].type) && priv[i].type != CKA_CMK_KEY_ID &&
            priv[i].type != CKA_CMK_WRAPPING_ALGORITHM) {
            log_warning("%s: vendor attribute 0x%lx has no meaning here (CKA_CMK_KEY_ID and "
                        "CKA_CMK_WRAPPING_ALGORITHM only)",
                        op, priv[i].type);
            return CKR_TEMPLATE_INCONSISTENT;
        }
    }
    CK_RV rv = CKR_OK;
    f->alg = 0; /* the default: chosen once the wrapping pair exists (resolve_algorithm) */
    f->bits = 2048;
    const CK_ATTRIBUTE *a = attr_find(priv, npriv, CKA_CMK_WRAPPING_ALGORITHM);
    if (a &&
        (rv = import_ulong_of(a, "GetParametersForImport: CKA_CMK_WRAPPING_ALGORITHM", &f->alg)))
        return rv;
    if (a && (f->alg < CMK_WRAP_RSAES_OAEP_SHA_1 || f->alg > CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256)) {
        log_warning("%s: CKA_CMK_WRAPPING_ALGORITHM %lu is unknown (CMK_WRAP_RSAES_OAEP_SHA_1, "
                    "_SHA_256, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, _SHA_256)",
                    op, f->alg);
        return CKR_MECHANISM_INVALID;
    }
    if (a && import_material_class(rec) == CKO_PRIVATE_KEY && !import_alg_is_key_wrap(f->alg)) {
        log_warning("%s: key %s is %s: asymmetric material is imported as PKCS#8 with "
                    "RSA_AES_KEY_WRAP_SHA_1 or _SHA_256, not %s",
                    op, rec->key_id, rec->key_spec, import_alg_name(f->alg));
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if ((a = attr_find(pub, npub, CKA_MODULUS_BITS)) &&
        (rv = import_ulong_of(a, "GetParametersForImport: CKA_MODULUS_BITS", &f->bits)))
        return rv;
    if (f->bits != 2048 && f->bits != 3072 && f->bits != 4096) {
        log_warning("%s: CKA_MODULUS_BITS %lu: the wrapping key is RSA 2048, 3072 or 4096", op,
                    f->bits);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    return CKR_OK;
}

static CK_RV generate_wrapping_pair(CK_SESSION_HANDLE session, const char *key_id,
                                    const struct import_token *f, CK_OBJECT_HANDLE *pub,
                                    CK_OBJECT_HANDLE *priv)
{
    char label[80];
    import_wrap_label(key_id, label);
    CK_ULONG bits = f->bits, label_len = (CK_ULONG)strlen(label);
    static const CK_BYTE exponent[] = {1, 0, 1};
    CK_ATTRIBUTE pt[] = {
        {CKA_TOKEN, (void *)&ck_true, 1},        {CKA_PRIVATE, (void *)&ck_false, 1},
        {CKA_MODULUS_BITS, &bits, sizeof(bits)}, {CKA_PUBLIC_EXPONENT, (void *)exponent, 3},
        {CKA_ENCRYPT, (void *)&ck_true, 1},      {CKA_WRAP, (void *)&ck_true, 1},
        {CKA_VERIFY, (void *)&ck_false, 1},      {CKA_ID, (void *)f->wrap_id, IMPORT_WRAP_ID_LEN},
        {CKA_LABEL, label, label_len},
    };
    CK_ATTRIBUTE st[] = {
        {CKA_TOKEN, (void *)&ck_true, 1},
        {CKA_PRIVATE, (void *)&ck_true, 1},
        {CKA_SENSITIVE, (void *)&ck_true, 1},
        {CKA_EXTRACTABLE, (void *)&ck_false, 1},
        {CKA_UNWRAP, (void *)&ck_true, 1},
        {CKA_DECRYPT, (void *)&ck_false, 1},
        {CKA_SIGN, (void *)&ck_false, 1},
        {CKA_DERIVE, (void *)&ck_false, 1},
        {CKA_ID, (void *)f->wrap_id, IMPORT_WRAP_ID_LEN},
        {CKA_LABEL, label, label_len},
    };
    CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_RV rv;
    MODULE_UNDER_TOKEN_LOCK(rv, module.be.fn->C_GenerateKeyPair(session, &gen, pt,
                                                                sizeof(pt) / sizeof(pt[0]), st,
                                                                sizeof(st) / sizeof(st[0]), pub, priv));
    if (rv != CKR_OK)
        log_warning("GetParametersForImport: the backend refused to generate an RSA %lu "
                    "wrapping pair: 0x%lx",
                    f->bits, rv);
    return rv;
}

/* The wrapping algorithm: the one asked for, if the HSM can unwrap with it; by default the
 * SHA-256 one of the key's kind, or the SHA-1 one where the HSM has OAEP-SHA-1 only. */
static CK_RV resolve_algorithm(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                               const unsigned char *spki, size_t spki_len,
                               CK_OBJECT_HANDLE wrap_priv, struct import_token *f)
{
    bool asymmetric = import_material_class(rec) == CKO_PRIVATE_KEY;
    bool sha256 = !f->alg || f->alg == CMK_WRAP_RSAES_OAEP_SHA_256 ||
                  f->alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256;
    CK_RV probe =
        sha256 ? import_backend_oaep_sha256_probe(session, spki, spki_len, wrap_priv) : CKR_OK;
    if (probe != CKR_OK && probe != CKR_MECHANISM_INVALID) return probe;
    bool can = probe == CKR_OK;
    if (sha256 && !can && module.cfg.import_oaep_decode_in_module) {
        /* The RSA step stays in the backend (CKM_RSA_X_509), which needs CKA_DECRYPT on the
         * wrapping key; the OAEP decoding is done by the module at import. */
        CK_ATTRIBUTE d = {CKA_DECRYPT, (void *)&ck_true, 1};
        CK_RV rv;
        MODULE_UNDER_TOKEN_LOCK(rv, module.be.fn->C_SetAttributeValue(session, wrap_priv, &d, 1));
        if (rv != CKR_OK) {
            log_error("GetParametersForImport: the backend refused CKA_DECRYPT on the wrapping "
                      "key (needed by [import] oaep_decode_in_module): 0x%lx",
                      rv);
            return rv;
        }
        can = true;
    }
    if (f->alg && !can) {
        log_warning("GetParametersForImport: the HSM cannot unwrap with RSA-OAEP SHA-256, so %s "
                    "is not available; use the _SHA_1 algorithm, or set [import] "
                    "oaep_decode_in_module = true",
                    import_alg_name(f->alg));
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (!f->alg)
        f->alg = asymmetric
                     ? (can ? CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256 : CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1)
                     : (can ? CMK_WRAP_RSAES_OAEP_SHA_256 : CMK_WRAP_RSAES_OAEP_SHA_1);
    return CKR_OK;
}

CK_RV cmk_import_get_parameters(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR pub, CK_ULONG npub,
                                CK_ATTRIBUTE_PTR priv, CK_ULONG npriv, CK_OBJECT_HANDLE_PTR pub_key,
                                CK_OBJECT_HANDLE_PTR priv_key)
{
    static const char op[] = "GetParametersForImport";
    struct cmk_record rec;
    struct import_token f;
    memset(&f, 0, sizeof(f));
    unsigned char token[IMPORT_TOKEN_LEN], *spki = NULL;
    size_t spki_len = 0;
    CK_OBJECT_HANDLE wpub = 0, wpriv = 0;
    CK_RV rv = cmk_request_session_writable(session);
    if (rv != CKR_OK) return rv;
    if ((rv = key_named(priv, npriv, op, &rec)) != CKR_OK) return rv;
    if ((rv = import_check_importable(&rec, op)) != CKR_OK) goto out;
    if ((rv = parse_params_request(pub, npub, priv, npriv, &rec, &f)) != CKR_OK) goto out;

    memcpy(f.key_id, rec.key_id, sizeof(f.key_id));
    if ((rv = import_new_wrap_id(rec.key_id, f.wrap_id)) != CKR_OK) goto out;
    f.valid_to = util_now() + IMPORT_VALIDITY_SECONDS;
    if ((rv = generate_wrapping_pair(session, rec.key_id, &f, &wpub, &wpriv)) != CKR_OK) goto out;
    if (!(spki = import_rsa_spki(session, wpub, &spki_len, NULL))) rv = CKR_FUNCTION_FAILED;
    if (rv == CKR_OK) rv = resolve_algorithm(session, &rec, spki, spki_len, wpriv, &f);
    if (rv == CKR_OK) {
        import_token_encode(&f, token);
        rv = import_token_sign(session, token);
    }
    unsigned char replaced[IMPORT_WRAP_ID_LEN];
    bool had = false;
    if (rv == CKR_OK)
        rv = import_record_parameters(&rec, &f, token, spki, spki_len, replaced, &had);
    if (rv != CKR_OK) {
        if (rv != CKR_MECHANISM_PARAM_INVALID)
            log_warning("%s: key %s: could not make the import parameters: 0x%lx", op, rec.key_id,
                        rv);
        import_destroy_wrapping_pair(session, f.wrap_id); /* the earlier parameters stay good */
        goto out;
    }
    /* Asking again replaces the parameters: the earlier pair goes (and any a crash left). */
    import_clean_wrapping_pairs(session, rec.key_id, had ? replaced : NULL, f.wrap_id);
    *pub_key = wpub;
    *priv_key = wpriv;
    log_info("%s: key %s: %s RSA_%lu wrapping pair, valid to %lld", op, rec.key_id,
             import_alg_name(f.alg), f.bits, (long long)f.valid_to);
out:
    free(spki);
    cmk_record_free(&rec);
    return rv;
}
