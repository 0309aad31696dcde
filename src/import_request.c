/* import_request.c - what a C_UnwrapKey import asks: the mechanism as a cloud wrapping
 * algorithm, the template, and the import token checked against the key. */
#include "import_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CK_RV import_ulong_of(const CK_ATTRIBUTE *a, const char *what, CK_ULONG *out)
{
    if (a->ulValueLen != sizeof(CK_ULONG) || !a->pValue) {
        log_warning("%s must be a CK_ULONG", what);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    memcpy(out, a->pValue, sizeof(CK_ULONG));
    return CKR_OK;
}

bool cmk_import_wanted(CK_OBJECT_HANDLE unwrapping_key, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    return handle_is_cmk(unwrapping_key) && attr_find(tmpl, n, CKA_CMK_IMPORT_TOKEN) != NULL;
}

static CK_RV oaep_hash_of(const CK_RSA_PKCS_OAEP_PARAMS *p, bool *sha256)
{
    bool sha1 = p->hash_alg == CKM_SHA_1 && p->mgf == CKG_MGF1_SHA1;
    *sha256 = p->hash_alg == CKM_SHA256 && p->mgf == CKG_MGF1_SHA256;
    if ((!sha1 && !*sha256) || (p->source != CKZ_DATA_SPECIFIED && p->source != 0) ||
        p->source_data_len != 0) {
        log_warning("ImportKeyMaterial: the OAEP parameters must be SHA-1 with MGF1-SHA-1 or "
                    "SHA-256 with MGF1-SHA-256, and an empty label");
        return CKR_MECHANISM_PARAM_INVALID;
    }
    return CKR_OK;
}

/* The wrapping algorithm a mechanism is, and its OAEP parameters. */
CK_RV import_alg_of_mechanism(const CK_MECHANISM *m, unsigned long *alg,
                              CK_RSA_PKCS_OAEP_PARAMS *oaep, CK_ULONG *aes_bits)
{
    bool sha256 = false;
    CK_RV rv;
    if (m->mechanism == CKM_RSA_PKCS_OAEP) {
        if (!m->pParameter || m->ulParameterLen != sizeof(CK_RSA_PKCS_OAEP_PARAMS)) {
            log_warning("ImportKeyMaterial: CKM_RSA_PKCS_OAEP needs CK_RSA_PKCS_OAEP_PARAMS");
            return CKR_MECHANISM_PARAM_INVALID;
        }
        *oaep = *(const CK_RSA_PKCS_OAEP_PARAMS *)m->pParameter;
        if ((rv = oaep_hash_of(oaep, &sha256)) != CKR_OK) return rv;
        *alg = sha256 ? CMK_WRAP_RSAES_OAEP_SHA_256 : CMK_WRAP_RSAES_OAEP_SHA_1;
        return CKR_OK;
    }
    if (m->mechanism == CKM_RSA_AES_KEY_WRAP) {
        const CK_CMK_RSA_AES_KEY_WRAP_PARAMS *p = m->pParameter;
        if (!p || m->ulParameterLen != sizeof(*p) || !p->pOAEPParams ||
            (p->ulAESKeyBits != 128 && p->ulAESKeyBits != 192 && p->ulAESKeyBits != 256)) {
            log_warning("ImportKeyMaterial: CKM_RSA_AES_KEY_WRAP needs "
                        "CK_RSA_AES_KEY_WRAP_PARAMS with ulAESKeyBits 128, 192 or 256 and OAEP "
                        "parameters");
            return CKR_MECHANISM_PARAM_INVALID;
        }
        *oaep = *p->pOAEPParams;
        *aes_bits = p->ulAESKeyBits;
        if ((rv = oaep_hash_of(oaep, &sha256)) != CKR_OK) return rv;
        *alg = sha256 ? CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256 : CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1;
        return CKR_OK;
    }
    log_warning("ImportKeyMaterial: mechanism 0x%lx is no wrapping algorithm of an import "
                "(CKM_RSA_PKCS_OAEP or CKM_RSA_AES_KEY_WRAP)",
                m->mechanism);
    return CKR_MECHANISM_INVALID;
}

CK_RV import_parse_template(const CK_ATTRIBUTE *t, CK_ULONG n, const struct cmk_record *rec,
                            struct import_request *req)
{
    static const char op[] = "ImportKeyMaterial";
    for (CK_ULONG i = 0; i < n; i++) {
        const CK_ATTRIBUTE *a = &t[i];
        CK_ULONG v = 0;
        switch (a->type) {
        case CKA_CMK_IMPORT_TOKEN:
            req->token = a->pValue;
            req->token_len = a->ulValueLen;
            break;
        case CKA_CMK_MATERIAL_EXPIRES:
            if (import_ulong_of(a, "ImportKeyMaterial: CKA_CMK_MATERIAL_EXPIRES", &v))
                return CKR_ATTRIBUTE_VALUE_INVALID;
            if (v != 0 && (int64_t)v <= util_now()) {
                log_warning("%s: CKA_CMK_MATERIAL_EXPIRES %lu is not in the future (0 = never)", op,
                            v);
                return CKR_ATTRIBUTE_VALUE_INVALID;
            }
            req->expires = (int64_t)v;
            break;
        case CKA_CMK_KEY_ID:
            if (a->ulValueLen != 36 || memcmp(a->pValue, rec->key_id, 36)) {
                log_warning("%s: CKA_CMK_KEY_ID does not name the unwrapping CMK %s", op,
                            rec->key_id);
                return CKR_TEMPLATE_INCONSISTENT;
            }
            break;
        case CKA_CLASS:
        case CKA_KEY_TYPE:
            if (import_ulong_of(a, "ImportKeyMaterial: CKA_CLASS/CKA_KEY_TYPE", &v))
                return CKR_ATTRIBUTE_VALUE_INVALID;
            if (v != (a->type == CKA_CLASS ? import_material_class(rec) : rec->key_type)) {
                log_warning("%s: CKA_CLASS/CKA_KEY_TYPE 0x%lx does not match key %s (%s)", op, v,
                            rec->key_id, rec->key_spec);
                return CKR_TEMPLATE_INCONSISTENT;
            }
            break;
        case CKA_TOKEN:
            if (a->ulValueLen != 1 || !*(CK_BBOOL *)a->pValue) {
                log_warning("%s: imported material is a token object (CKA_TOKEN TRUE)", op);
                return CKR_TEMPLATE_INCONSISTENT;
            }
            break;
        default:
            log_warning("%s: attribute 0x%lx has no meaning in an import template (the key's "
                        "attributes were fixed at CreateKey)",
                        op, a->type);
            return CKR_TEMPLATE_INCONSISTENT;
        }
    }
    return CKR_OK;
}

/* Checks the token: authentic, for this key, the outstanding parameters, not expired, for
 * this algorithm. Returns the wrapping private key's backend handle and modulus length. */
CK_RV import_check_token(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                         struct import_request *req, CK_OBJECT_HANDLE *wrap_priv,
                         CK_ULONG *modulus_len)
{
    static const char op[] = "ImportKeyMaterial";
    struct import_token f;
    if (!req->token || !import_token_decode(req->token, req->token_len, &f)) {
        log_warning("%s: CKA_CMK_IMPORT_TOKEN is malformed (%lu bytes; a token is %d)", op,
                    req->token ? req->token_len : 0, IMPORT_TOKEN_LEN);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (!import_token_authentic(session, req->token)) {
        log_warning("%s: CKA_CMK_IMPORT_TOKEN is not authentic (forged or edited)", op);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (strcmp(f.key_id, rec->key_id)) {
        log_warning("%s: CKA_CMK_IMPORT_TOKEN was issued for key %s, not %s", op, f.key_id,
                    rec->key_id);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    struct store_import imp;
    enum store_status s = store_import_get(module.store, rec->row, &imp);
    if (s != STORE_OK && s != STORE_NOT_FOUND) return CKR_DEVICE_ERROR;
    bool current = import_params_current(&imp, f.wrap_id);
    store_import_free(&imp);
    if (!current) {
        log_warning("%s: CKA_CMK_IMPORT_TOKEN is not the key's outstanding import parameters "
                    "(replaced by newer ones, or already used)",
                    op);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (f.valid_to <= util_now()) {
        log_warning("%s: CKA_CMK_IMPORT_TOKEN expired at %lld; get new import parameters", op,
                    (long long)f.valid_to);
        return CKR_CMK_IMPORT_TOKEN_EXPIRED;
    }
    if (f.alg != req->alg) {
        log_warning("%s: the import parameters are for %s, the mechanism is %s", op,
                    import_alg_name(f.alg), import_alg_name(req->alg));
        return CKR_MECHANISM_PARAM_INVALID;
    }
    CK_ULONG n = 0;
    CK_RV rv = module_backend_find_by_id(session, f.wrap_id, IMPORT_WRAP_ID_LEN,
                                  CKO_PRIVATE_KEY, wrap_priv, 1, &n);
    if (rv == CKR_OK && n == 0) {
        log_warning("%s: the wrapping key of CKA_CMK_IMPORT_TOKEN is gone from the backend", op);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    *modulus_len = f.bits / 8;
    memcpy(req->wrap_id, f.wrap_id, IMPORT_WRAP_ID_LEN);
    return rv;
}
