/* import_material.c - checks of unwrapped material against the key spec, its fingerprint
 * computed in the backend, and the public key object of an imported key pair. */
#include "import_internal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pubkey.h"

#define FINGERPRINT_LABEL "cmkp11/import/fp" /* 16 bytes: one AES block */

/* The byte length of an extractable secret the backend holds, without reading it: the
 * length of its RFC 3394 wrap under a session key made for the purpose, which cmkp11 can
 * neither read nor unwrap with. 0 when not a multiple of 8 bytes. */
static CK_RV wrap_length(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_ULONG *len)
{
    CK_ULONG kl = 32;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_ATTRIBUTE kt[] = {
        {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &aes, sizeof(aes)},
        {CKA_VALUE_LEN, &kl, sizeof(kl)},     {CKA_TOKEN, (void *)&ck_false, 1},
        {CKA_SENSITIVE, (void *)&ck_true, 1}, {CKA_EXTRACTABLE, (void *)&ck_false, 1},
        {CKA_WRAP, (void *)&ck_true, 1},
    };
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0}, kw = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_OBJECT_HANDLE kek = 0;
    unsigned char wrapped[1024];
    CK_ULONG wl = sizeof(wrapped);
    *len = 0;
    CK_RV rv = module.be.fn->C_GenerateKey(session, &gen, kt, sizeof(kt) / sizeof(kt[0]), &kek);
    if (rv != CKR_OK) return rv;
    if (module.be.fn->C_WrapKey(session, &kw, kek, h, wrapped, &wl) == CKR_OK && wl > 8)
        *len = wl - 8;
    module_backend_destroy_own(session, &kek, 1);
    return CKR_OK;
}

/* The candidate itself is never extractable. Its CKA_VALUE_LEN gives the length where the
 * HSM sets it. SoftHSMv2 2.6.1 sets none on unwrapped keys (it reads 0), refuses
 * CKA_VALUE_LEN in an unwrap template (CKR_ATTRIBUTE_READ_ONLY) and has no derivation that
 * would show a key's length (no CKM_CONCATENATE_*): there, and only there, a measuring
 * copy is unwrapped extractable from the same blob, measured and destroyed at once. */
CK_RV import_secret_length(CK_SESSION_HANDLE session, struct import_stage *st,
                           const struct tmpl_builder *cand, CK_OBJECT_HANDLE h, CK_ULONG *len)
{
    CK_ATTRIBUTE vl = {CKA_VALUE_LEN, len, sizeof(*len)};
    *len = 0;
    if (module.be.fn->C_GetAttributeValue(session, h, &vl, 1) == CKR_OK && *len > 0) return CKR_OK;
    *len = 0;
    struct tmpl_builder m;
    tmpl_init(&m);
    tmpl_copy_standard(&m, cand->attrs, cand->count);
    tmpl_set(&m, CKA_EXTRACTABLE, &ck_true, sizeof(CK_BBOOL));
    CK_OBJECT_HANDLE copy = 0;
    CK_RV rv = m.failed ? CKR_HOST_MEMORY : import_stage_unwrap(session, st, &m, &copy);
    if (rv == CKR_OK) rv = wrap_length(session, copy, len);
    module_backend_destroy_own(session, &copy, copy ? 1 : 0);
    tmpl_free(&m);
    return rv;
}

void import_facts_free(struct import_facts *mf)
{
    free(mf->fp);
    free(mf->ec_params);
    free(mf->ec_point);
    EVP_PKEY_free(mf->pkey);
    memset(mf, 0, sizeof(*mf));
}

/* A DER OCTET STRING around a point of at most PUBKEY_EC_POINT_MAX bytes. */
static unsigned char *der_octet_string(const unsigned char *p, size_t len, size_t *out_len)
{
    unsigned char *der = malloc(len + 3);
    if (!der) return NULL;
    size_t h = len < 0x80 ? 2 : 3;
    der[0] = 0x04;
    if (h == 2)
        der[1] = (unsigned char)len;
    else
        der[1] = 0x81, der[2] = (unsigned char)len;
    memcpy(der + h, p, len);
    *out_len = h + len;
    return der;
}

/* Is point (uncompressed) the public key of the signer of sig? The signature, verified in the
 * backend with a session public key object of that point, says. */
static bool ec_point_is_public_key_of(CK_SESSION_HANDLE session, const struct import_facts *mf,
                                      const unsigned char *point, size_t point_len,
                                      const unsigned char *sig, CK_ULONG sig_len,
                                      const unsigned char *digest)
{
    size_t der_len = 0;
    unsigned char *der = der_octet_string(point, point_len, &der_len);
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE type = CKK_EC;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, (void *)&ck_false, 1},
        {CKA_VERIFY, (void *)&ck_true, 1},
        {CKA_EC_PARAMS, mf->ec_params, mf->ec_params_len},
        {CKA_EC_POINT, der, (CK_ULONG)der_len},
    };
    CK_OBJECT_HANDLE pub = 0;
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    bool ok = der && module.be.fn->C_CreateObject(session, t, 6, &pub) == CKR_OK &&
              module.be.fn->C_VerifyInit(session, &m, pub) == CKR_OK &&
              module.be.fn->C_Verify(session, (CK_BYTE_PTR)digest, 32, (CK_BYTE_PTR)sig, sig_len) ==
                  CKR_OK;
    module_backend_destroy_own(session, &pub, pub ? 1 : 0);
    free(der);
    return ok;
}

/* The public point of an imported EC private key, which the HSM does not give: ECDH of the
 * key with the curve's generator yields the point's X (a public value, so the derived
 * secret may be read); of the two points with that X, the one that verifies the key's
 * signature is its public key. Also checks the curve against the spec. */
static CK_RV ec_public_point(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                             CK_OBJECT_HANDLE h, struct import_facts *mf)
{
    static const char op[] = "ImportKeyMaterial";
    mf->ec_params = cmk_create_read_attr(session, h, CKA_EC_PARAMS, &mf->ec_params_len);
    if (!mf->ec_params) return CKR_FUNCTION_FAILED;
    struct keyspec spec;
    CK_ATTRIBUTE pa = {CKA_EC_PARAMS, mf->ec_params, mf->ec_params_len};
    if (keyspec_from_request(CKM_EC_KEY_PAIR_GEN, &pa, 1, false, &spec) != CKR_OK ||
        strcmp(spec.name, rec->key_spec)) {
        log_warning("%s: the material is a key on another curve than key %s (%s)", op, rec->key_id,
                    rec->key_spec);
        return CKR_KEY_SIZE_RANGE;
    }
    unsigned char g[PUBKEY_EC_POINT_MAX], even[PUBKEY_EC_POINT_MAX], odd[PUBKEY_EC_POINT_MAX];
    unsigned char x[PUBKEY_EC_POINT_MAX], sig[2 * PUBKEY_EC_POINT_MAX];
    static const unsigned char digest[32] = "cmkp11/import/ec-public-point..";
    size_t g_len = 0, point_len = 0;
    if (pubkey_ec_generator(mf->ec_params, mf->ec_params_len, g, &g_len))
        return CKR_FUNCTION_FAILED;
    CK_ULONG x_len = (CK_ULONG)(g_len - 1) / 2, sig_len = sizeof(sig);
    CK_ECDH1_DERIVE_PARAMS dp = {CKD_NULL, 0, NULL, (CK_ULONG)g_len, g};
    CK_MECHANISM dm = {CKM_ECDH1_DERIVE, &dp, sizeof(dp)}, sm = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE dt[] = {
        {CKA_CLASS, &cls, sizeof(cls)},         {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, (void *)&ck_false, 1},      {CKA_SENSITIVE, (void *)&ck_false, 1},
        {CKA_EXTRACTABLE, (void *)&ck_true, 1}, {CKA_VALUE_LEN, &x_len, sizeof(x_len)},
    };
    CK_ATTRIBUTE xa = {CKA_VALUE, x, x_len};
    CK_OBJECT_HANDLE shared = 0;
    CK_RV rv = module.be.fn->C_DeriveKey(session, &dm, h, dt, 6, &shared);
    if (rv == CKR_OK) rv = module.be.fn->C_GetAttributeValue(session, shared, &xa, 1);
    module_backend_destroy_own(session, &shared, shared ? 1 : 0);
    if (rv == CKR_OK) rv = module.be.fn->C_SignInit(session, &sm, h);
    if (rv == CKR_OK) rv = module.be.fn->C_Sign(session, (CK_BYTE_PTR)digest, 32, sig, &sig_len);
    if (rv == CKR_OK && pubkey_ec_points_with_x(mf->ec_params, mf->ec_params_len, x, xa.ulValueLen,
                                                even, odd, &point_len))
        rv = CKR_FUNCTION_FAILED;
    const unsigned char *point = NULL;
    if (rv == CKR_OK)
        point = ec_point_is_public_key_of(session, mf, even, point_len, sig, sig_len, digest) ? even
                : ec_point_is_public_key_of(session, mf, odd, point_len, sig, sig_len, digest)
                    ? odd
                    : NULL;
    if (rv == CKR_OK && point) mf->ec_point = der_octet_string(point, point_len, &mf->ec_point_len);
    if (mf->ec_point)
        mf->fp = pubkey_spki_ec(CKK_EC, mf->ec_params, mf->ec_params_len, mf->ec_point,
                                mf->ec_point_len, &mf->fp_len);
    if (!mf->fp) {
        log_error("%s: could not work out the public key of the EC material (0x%lx)", op, rv);
        return rv != CKR_OK ? rv : CKR_FUNCTION_FAILED;
    }
    return CKR_OK;
}

/* Checks the unwrapped material fits the key's spec (secret_len: a secret's length in
 * bytes, 0 when not a multiple of 8) and computes its fingerprint in the backend: AES-ECB
 * of a fixed block, HMAC-SHA-256 of it, or the public key (RSA, EC). */
CK_RV import_check_material(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                            CK_OBJECT_HANDLE h, CK_ULONG secret_len, struct import_facts *mf)
{
    static const char op[] = "ImportKeyMaterial";
    unsigned long bits = import_spec_bits(rec->key_spec);
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE kt = {CKA_KEY_TYPE, &type, sizeof(type)};
    CK_RV rv = module.be.fn->C_GetAttributeValue(session, h, &kt, 1);
    if (rv != CKR_OK) return rv;
    CK_KEY_TYPE want = import_backend_key_type(rec);
    if (type != want) {
        log_warning("%s: the material is of key type 0x%lx, key %s is %s", op, type, rec->key_id,
                    rec->key_spec);
        return CKR_CMK_INCORRECT_KEY_MATERIAL;
    }
    if (rec->key_type == CKK_EC) return ec_public_point(session, rec, h, mf);
    if (rec->key_type == CKK_RSA) {
        CK_ULONG mod_len = 0;
        mf->fp = import_rsa_spki(session, h, &mf->fp_len, &mod_len);
        if (!mf->fp) return CKR_FUNCTION_FAILED;
        if (mod_len * 8 != bits) {
            log_warning("%s: the material is an RSA %lu key, key %s is %s", op, mod_len * 8,
                        rec->key_id, rec->key_spec);
            return CKR_KEY_SIZE_RANGE;
        }
        return CKR_OK;
    }
    CK_ULONG value_len = secret_len;
    if (value_len * 8 != bits) {
        log_warning("%s: the material is %lu bytes (0: not a multiple of 8), key %s (%s) needs %lu",
                    op, value_len, rec->key_id, rec->key_spec, bits / 8);
        return CKR_KEY_SIZE_RANGE;
    }
    bool aes = want == CKK_AES;
    /* SoftHSMv2 refuses an HMAC key shorter than the digest (CKR_KEY_SIZE_RANGE): there an
     * HMAC key under 32 bytes is fingerprinted with HMAC-SHA-1, under 20 with HMAC-MD5 (a
     * PRF still, over a fixed label). An HSM that takes the key keeps SHA-256, so a key's
     * fingerprint is the same at every import. */
    static const CK_MECHANISM_TYPE macs[] = {CKM_SHA256_HMAC, CKM_SHA_1_HMAC, CKM_MD5_HMAC};
    CK_ULONG out_len = 32;
    if (!(mf->fp = malloc(out_len))) return CKR_HOST_MEMORY;
    rv = CKR_KEY_SIZE_RANGE;
    for (size_t i = 0; rv == CKR_KEY_SIZE_RANGE && i < (aes ? 1 : 3); i++) {
        CK_MECHANISM m = {aes ? CKM_AES_ECB : macs[i], NULL, 0};
        out_len = 32;
        rv = aes ? module.be.fn->C_EncryptInit(session, &m, h)
                 : module.be.fn->C_SignInit(session, &m, h);
        if (rv == CKR_OK)
            rv = aes ? module.be.fn->C_Encrypt(session, (CK_BYTE_PTR)FINGERPRINT_LABEL, 16, mf->fp,
                                               &out_len)
                     : module.be.fn->C_Sign(session, (CK_BYTE_PTR)FINGERPRINT_LABEL, 16, mf->fp,
                                            &out_len);
    }
    mf->fp_len = out_len;
    if (rv != CKR_OK)
        log_error("%s: the backend could not fingerprint the material: 0x%lx", op, rv);
    return rv;
}

/* The public key object of an imported key pair, under the material's identity. */
CK_RV import_make_public_object(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                                CK_OBJECT_HANDLE priv, const struct import_facts *mf)
{
    CK_ULONG nl = 0, el = 0;
    bool rsa = rec->key_type == CKK_RSA;
    unsigned char *n = rsa ? cmk_create_read_attr(session, priv, CKA_MODULUS, &nl) : NULL;
    unsigned char *e = rsa ? cmk_create_read_attr(session, priv, CKA_PUBLIC_EXPONENT, &el) : NULL;
    unsigned char bid[CMK_BACKEND_ID_LEN];
    char label[80];
    cmk_backend_id(rec->key_id, 1, bid);
    cmk_backend_label(rec->key_id, 1, label);
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE type = rec->key_type;
    CK_BBOOL priv_flag = (rec->private_mask & CMK_OBJ_PUBLIC) ? CK_TRUE : CK_FALSE;
    struct tmpl_builder b;
    tmpl_init(&b);
    tmpl_set(&b, CKA_CLASS, &cls, sizeof(cls));
    tmpl_set(&b, CKA_KEY_TYPE, &type, sizeof(type));
    if (rsa) {
        tmpl_set(&b, CKA_MODULUS, n, nl);
        tmpl_set(&b, CKA_PUBLIC_EXPONENT, e, el);
    } else {
        tmpl_set(&b, CKA_EC_PARAMS, mf->ec_params, mf->ec_params_len);
        tmpl_set(&b, CKA_EC_POINT, mf->ec_point, (CK_ULONG)mf->ec_point_len);
    }
    cmk_create_backend_identity(&b, bid, label);
    tmpl_set(&b, CKA_PRIVATE, &priv_flag, sizeof(priv_flag));
    cmk_request_usage_flags(&b, rec->usage, false, true, NULL, 0);
    CK_OBJECT_HANDLE h;
    CK_RV rv = (rsa && (!n || !e)) || b.failed ? CKR_FUNCTION_FAILED : CKR_OK;
    if (rv == CKR_OK) {
        MODULE_UNDER_TOKEN_LOCK(rv, module.be.fn->C_CreateObject(session, b.attrs, b.count, &h));
    }
    if (rv != CKR_OK)
        log_error("ImportKeyMaterial: could not make the public key object: 0x%lx", rv);
    tmpl_free(&b);
    free(n);
    free(e);
    return rv;
}
