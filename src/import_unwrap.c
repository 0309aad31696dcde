/* import_unwrap.c - where the wrapped material unwraps from: the wrapping key with OAEP,
 * or the ephemeral AES key of RSA_AES_KEY_WRAP; OAEP-SHA-256 decoded in the module where
 * the HSM cannot and the configuration allows. */
#include "import_internal.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_oaep.h"

/* A backend unwrap failure, in the terms of an import. */
static CK_RV unwrap_failure(CK_RV rv, const char *step)
{
    switch (rv) {
    case CKR_WRAPPED_KEY_LEN_RANGE:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_DATA_LEN_RANGE:
        log_warning("ImportKeyMaterial: %s: the wrapped key material has the wrong length", step);
        return CKR_WRAPPED_KEY_LEN_RANGE;
    case CKR_ARGUMENTS_BAD:
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
        log_warning("ImportKeyMaterial: %s: the HSM cannot unwrap with these parameters (0x%lx); "
                    "choose a wrapping algorithm it supports",
                    step, rv);
        return CKR_MECHANISM_PARAM_INVALID;
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_UNWRAPPING_KEY_HANDLE_INVALID:
        /* Another import used the parameters meanwhile and destroyed their wrapping pair. */
        log_warning("ImportKeyMaterial: %s: the wrapping key went meanwhile: "
                    "CKA_CMK_IMPORT_TOKEN was used by another import or replaced",
                    step);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_ERROR:
    case CKR_HOST_MEMORY:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_SESSION_READ_ONLY: return rv;
    default:
        log_warning("ImportKeyMaterial: %s: the wrapped key material does not decrypt under the "
                    "import parameters' wrapping key (0x%lx)",
                    step, rv);
        return CKR_WRAPPED_KEY_INVALID;
    }
}

/* The wrapping key belongs to the key's outstanding import parameters: any import that
 * uses them, or a GetParametersForImport that replaces them, destroys it, in this process
 * or another, and SoftHSMv2 frees an object under a call that is using it (a crash in
 * C_Decrypt or C_UnwrapKey, not an error). So each use of it below, from its first
 * backend call to its last, is one shared token-lock section, and the destroyer
 * (module_backend_destroy_own, exclusive) waits for it (module.h: the lifetime of the
 * module's own backend objects). A use that comes after the destroy fails cleanly with a
 * handle error: unwrap_failure tells it as the token used. */

/* The raw RSA step with the wrapping key: C_DecryptInit through C_Decrypt. */
static CK_RV wrapping_key_decrypt_raw(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE wrap_priv,
                                      CK_BYTE_PTR blob, CK_ULONG k, unsigned char *em,
                                      CK_ULONG *em_len)
{
    CK_MECHANISM raw = {CKM_RSA_X_509, NULL, 0};
    CK_RV rv = module_token_lock_shared();
    if (rv != CKR_OK) return rv;
    rv = module.be.fn->C_DecryptInit(session, &raw, wrap_priv);
    if (rv == CKR_OK) {
        util_pause_point("import:decrypting-with-wrapping-key");
        rv = module.be.fn->C_Decrypt(session, blob, k, em, em_len);
    }
    module_token_unlock();
    return rv;
}

/* One C_UnwrapKey of len bytes of data with the stage's key and mechanism. A token object
 * (the key's material) writes the token and holds the lock exclusively, which keeps every
 * destroyer out too; a session object holds it shared, for the wrapping key's sake (the
 * ephemeral AES key, the stage's own, would need none, and a shared one costs nothing). */
static CK_RV unwrap_once(CK_SESSION_HANDLE session, struct import_stage *st, CK_BYTE_PTR data,
                         CK_ULONG len, const CK_ATTRIBUTE *t, CK_ULONG n, bool token,
                         CK_OBJECT_HANDLE *out)
{
    CK_RV rv = module_token_lock_as(token);
    if (rv != CKR_OK) return rv;
    if (!token && st->key != st->eph) util_pause_point("import:unwrapping-with-wrapping-key");
    rv = module.be.fn->C_UnwrapKey(session, &st->mech, st->key, data, len,
                                         (CK_ATTRIBUTE_PTR)t, n, out);
    module_token_unlock();
    return rv;
}

static void stage_wipe(struct import_stage *st)
{
    import_secret_free(st->locked, st->locked_len);
    st->locked = st->msg = NULL;
}

/* The raw RSA step in the backend and the OAEP-SHA-256 decoding in the module. */
static CK_RV decode_in_module(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE wrap_priv,
                              CK_BYTE_PTR blob, CK_ULONG k, struct import_stage *st)
{
    static const char op[] = "ImportKeyMaterial";
    st->locked_len = 4 * (size_t)k; /* em (k), the decoder's scratch (2k), the message (k) */
    if (!(st->locked = import_secret_alloc(st->locked_len))) {
        log_error("%s: cannot lock memory for the OAEP decoding (raise RLIMIT_MEMLOCK)", op);
        return CKR_HOST_MEMORY;
    }
    unsigned char *em = st->locked, *work = em + k, *msg = em + 3 * (size_t)k;
    CK_ULONG em_len = k;
    size_t msg_len = 0;
    CK_RV rv = wrapping_key_decrypt_raw(session, wrap_priv, blob, k, em, &em_len);
    if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
        log_warning("%s: these import parameters were made while [import] oaep_decode_in_module "
                    "was off (the wrapping key cannot decrypt); get new parameters",
                    op);
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (rv != CKR_OK) return unwrap_failure(rv, "raw RSA of the OAEP-SHA-256 block");
    if (em_len != k || import_oaep_sha256_decode(em, k, work, msg, k, &msg_len) != 0) {
        log_warning("%s: RSA-OAEP SHA-256: the wrapped key material does not decrypt under the "
                    "import parameters' wrapping key",
                    op);
        return CKR_WRAPPED_KEY_INVALID;
    }
    OPENSSL_cleanse(em, k);
    st->msg = msg;
    st->msg_len = (CK_ULONG)msg_len;
    return CKR_OK;
}

/* Makes a backend object of tmpl holding the decoded message, and wipes the message. */
static CK_RV create_from_decoded(CK_SESSION_HANDLE session, struct import_stage *st,
                                 const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE *t = calloc(n + 1, sizeof(*t));
    CK_RV rv = t ? CKR_OK : CKR_HOST_MEMORY;
    if (t) {
        memcpy(t, tmpl, n * sizeof(*t));
        t[n] = (CK_ATTRIBUTE){CKA_VALUE, st->msg, st->msg_len};
        bool token = false;
        attr_get_bool(tmpl, n, CKA_TOKEN, &token);
        MODULE_UNDER_TOKEN_LOCK_IF(token, rv, module.be.fn->C_CreateObject(session, t, n + 1, out));
        free(t);
    }
    stage_wipe(st);
    if (rv != CKR_OK)
        log_error("ImportKeyMaterial: the backend refused the decoded material: 0x%lx", rv);
    return rv;
}

CK_RV import_stage_open(CK_SESSION_HANDLE session, const struct import_request *req,
                        CK_OBJECT_HANDLE wrap_priv, CK_ULONG modulus_len,
                        const struct store_import *imp, CK_BYTE_PTR blob, CK_ULONG len,
                        struct import_stage *st)
{
    memset(st, 0, sizeof(*st));
    st->oaep = req->oaep;
    st->oaep.source = CKZ_DATA_SPECIFIED;
    st->mech = (CK_MECHANISM){CKM_RSA_PKCS_OAEP, &st->oaep, sizeof(st->oaep)};
    st->key = wrap_priv;
    st->data = blob;
    st->len = len;
    st->step = "RSA-OAEP";
    bool key_wrap = import_alg_is_key_wrap(req->alg);
    if (!key_wrap && len != modulus_len) {
        log_warning("ImportKeyMaterial: the wrapped key material is %lu bytes; %s under RSA_%lu "
                    "gives %lu",
                    len, import_alg_name(req->alg), modulus_len * 8, modulus_len);
        return CKR_WRAPPED_KEY_LEN_RANGE;
    }
    if (key_wrap && (len < modulus_len + 16 || (len - modulus_len) % 8)) {
        log_warning("ImportKeyMaterial: the wrapped key material is %lu bytes; %s under RSA_%lu "
                    "is %lu bytes of wrapped AES key and at least 16, a multiple of 8, of "
                    "wrapped material",
                    len, import_alg_name(req->alg), modulus_len * 8, modulus_len);
        return CKR_WRAPPED_KEY_LEN_RANGE;
    }
    CK_RV probe =
        req->oaep.hash_alg == CKM_SHA256
            ? import_backend_oaep_sha256_probe(session, imp->spki, imp->spki_len, wrap_priv)
            : CKR_OK;
    if (probe == CKR_FUNCTION_FAILED) return probe; /* the module's own failure */
    if (probe != CKR_OK && probe != CKR_MECHANISM_INVALID)
        return unwrap_failure(probe, "trying RSA-OAEP SHA-256 on the wrapping key");
    bool in_module = probe == CKR_MECHANISM_INVALID;
    if (in_module && !module.cfg.import_oaep_decode_in_module) {
        log_warning("ImportKeyMaterial: the HSM cannot unwrap with RSA-OAEP SHA-256 and [import] "
                    "oaep_decode_in_module is off; use the _SHA_1 algorithm or turn it on");
        return CKR_MECHANISM_PARAM_INVALID;
    }
    CK_RV rv = in_module ? decode_in_module(session, wrap_priv, blob, modulus_len, st) : CKR_OK;
    if (rv != CKR_OK || !key_wrap) return rv;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_ATTRIBUTE et[] = {
        {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &aes, sizeof(aes)},
        {CKA_TOKEN, (void *)&ck_false, 1},    {CKA_PRIVATE, (void *)&ck_true, 1},
        {CKA_SENSITIVE, (void *)&ck_true, 1}, {CKA_EXTRACTABLE, (void *)&ck_false, 1},
        {CKA_UNWRAP, (void *)&ck_true, 1},    {CKA_ENCRYPT, (void *)&ck_false, 1},
        {CKA_DECRYPT, (void *)&ck_false, 1},  {CKA_WRAP, (void *)&ck_false, 1},
        {CKA_DERIVE, (void *)&ck_false, 1},
    };
    const CK_ULONG net = sizeof(et) / sizeof(et[0]);
    CK_ULONG eph_len = 0;
    if (in_module) {
        eph_len = st->msg_len;
        rv = eph_len * 8 == req->aes_bits ? create_from_decoded(session, st, et, net, &st->eph)
                                          : CKR_OK;
        stage_wipe(st);
        st->msg_len = 0; /* the material's length is not known: it is unwrapped below */
    } else {
        rv = unwrap_once(session, st, blob, modulus_len, et, net, false, &st->eph);
        if (rv != CKR_OK) return unwrap_failure(rv, "RSA-OAEP of the ephemeral AES key");
        /* RFC 5649 output is 8 + the material rounded up to 8: the AES sizes are exact. */
        CK_ATTRIBUTE vl = {CKA_VALUE_LEN, &eph_len, sizeof(eph_len)};
        (void)module.be.fn->C_GetAttributeValue(session, st->eph, &vl, 1);
    }
    if (rv != CKR_OK) return rv;
    if (eph_len && eph_len * 8 != req->aes_bits) {
        log_warning("ImportKeyMaterial: the ephemeral AES key is %lu bits, the mechanism says %lu",
                    eph_len * 8, req->aes_bits);
        return CKR_WRAPPED_KEY_INVALID;
    }
    st->mech = (CK_MECHANISM){CKM_AES_KEY_WRAP_PAD, NULL, 0};
    st->key = st->eph;
    st->data = blob + modulus_len;
    st->len = len - modulus_len;
    st->step = "AES key wrap with padding (RFC 5649)";
    return CKR_OK;
}

/* Unwraps the material with tmpl; for material decoded in the module, the first call makes
 * the object and later ones copy it under tmpl's token, identity and extractability. */
CK_RV import_stage_unwrap(CK_SESSION_HANDLE session, struct import_stage *st,
                          const struct tmpl_builder *t, CK_OBJECT_HANDLE *out)
{
    bool token = false;
    attr_get_bool(t->attrs, t->count, CKA_TOKEN, &token);
    if (st->msg) {
        CK_RV rv = create_from_decoded(session, st, t->attrs, t->count, out);
        if (rv == CKR_OK) st->made = *out;
        return rv;
    }
    if (st->made) {
        /* The candidate was made non-extractable: the module knew the length. */
        static const CK_ATTRIBUTE_TYPE carried[] = {CKA_TOKEN, CKA_ID, CKA_LABEL};
        CK_ATTRIBUTE ct[3];
        CK_ULONG n = 0;
        for (size_t i = 0; i < sizeof(carried) / sizeof(carried[0]); i++) {
            const CK_ATTRIBUTE *a = attr_find(t->attrs, t->count, carried[i]);
            if (a) ct[n++] = *a;
        }
        CK_RV rv;
        MODULE_UNDER_TOKEN_LOCK_IF(token, rv, module.be.fn->C_CopyObject(session, st->made, ct, n, out));
        if (rv != CKR_OK)
            log_error("ImportKeyMaterial: the backend could not copy the material into the "
                      "key's identity: 0x%lx",
                      rv);
        return rv;
    }
    CK_RV rv = unwrap_once(session, st, st->data, st->len, t->attrs, t->count, token, out);
    if (rv == CKR_TEMPLATE_INCONSISTENT || rv == CKR_FUNCTION_FAILED || rv == CKR_GENERAL_ERROR) {
        /* SoftHSMv2 has failed an unwrap with these while two imports raced (before every
         * unwrap held the token lock): once more. A blob that is really wrong fails the
         * same way again. */
        rv = unwrap_once(session, st, st->data, st->len, t->attrs, t->count, token, out);
    }
    return rv == CKR_OK ? rv : unwrap_failure(rv, st->step);
}

void import_stage_close(CK_SESSION_HANDLE session, struct import_stage *st)
{
    stage_wipe(st);
    module_backend_destroy_own(session, &st->eph, st->eph ? 1 : 0);
    st->eph = 0;
}
