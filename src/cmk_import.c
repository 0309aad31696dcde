/* cmk_import.c - EXTERNAL origin: the clouds' GetParametersForImport, ImportKeyMaterial
 * and DeleteImportedKeyMaterial through PKCS#11.
 *
 * A key created with origin EXTERNAL has a row in state PendingImport and no material.
 * Import parameters are an RSA wrapping pair generated in the backend (private half
 * UNWRAP only) and an import token that binds key id, wrapping key, algorithm and expiry,
 * authenticated by an HMAC key that never leaves the backend. The wrapped material is
 * unwrapped by the backend straight into the key's material identity; cmkp11 never holds
 * it in clear. The first import records a fingerprint computed by the backend under the
 * material itself (AES-ECB of a fixed block, HMAC of a fixed label, or the RSA public
 * key), and every later import must match it.
 *
 * Crash safety: an import into a PendingImport key first writes a claim (the importing
 * process) into the store, then unwraps, then commits Enabled and clears the claim in one
 * transaction. A claim whose process is gone is undone at the next login: the material is
 * destroyed, the key stays PendingImport. Re-imports into a key that has its material
 * unwrap into a session object only, which dies with the process. */
#include "cmk_import.h"

#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cmk.h"
#include "cmk_create.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "import_oaep.h"
#include "keyspec.h"
#include "log.h"
#include "module.h"
#include "pubkey.h"
#include "template.h"
#include "util.h"

static const CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

#define IMPORT_VALIDITY_SECONDS (24 * 3600)
#define WRAP_ID_LEN 28 /* "CMKW", the key id's 16 bytes, 8 random bytes */
#define TOKEN_MAGIC "CMKT"
#define TOKEN_BODY_LEN (4 + 1 + 36 + 1 + WRAP_ID_LEN + 1 + 2 + 8)
#define TOKEN_MAC_LEN 32
#define TOKEN_LEN (TOKEN_BODY_LEN + TOKEN_MAC_LEN)
#define FINGERPRINT_LABEL "cmkp11/import/fp" /* 16 bytes: one AES block */
static const unsigned char mac_key_id[] = {'C', 'M', 'K', 'I', 0x01};
#define MAC_KEY_LABEL CMK_BACKEND_LABEL_PREFIX "import-token-key"

static const char *alg_name(unsigned long alg)
{
    switch (alg) {
    case CMK_WRAP_RSAES_OAEP_SHA_1: return "RSAES_OAEP_SHA_1";
    case CMK_WRAP_RSAES_OAEP_SHA_256: return "RSAES_OAEP_SHA_256";
    case CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1: return "RSA_AES_KEY_WRAP_SHA_1";
    case CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256: return "RSA_AES_KEY_WRAP_SHA_256";
    default: return "?";
    }
}

static bool alg_is_key_wrap(unsigned long alg)
{
    return alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1 || alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256;
}

/* The number at the end of a spec name: AES_256 -> 256, RSA_2048 -> 2048. */
static unsigned long spec_bits(const char *spec)
{
    const char *u = strrchr(spec, '_');
    return u ? strtoul(u + 1, NULL, 10) : 0;
}

static CK_OBJECT_CLASS material_class(const struct cmk_record *rec)
{
    return rec->objects & CMK_OBJ_SECRET ? CKO_SECRET_KEY : CKO_PRIVATE_KEY;
}

static void wrap_label(const char *key_id, char out[80])
{
    snprintf(out, 80, CMK_BACKEND_LABEL_PREFIX "import/%s", key_id);
}

static CK_RV put_ulong(CK_ATTRIBUTE *a, CK_ULONG v) { return cmk_attr_put(a, &v, sizeof(v)); }

/* ---- Create --------------------------------------------------------------------- */

CK_RV cmk_import_spec_supported(const struct keyspec *spec)
{
    if (spec->key_type == CKK_AES || spec->key_type == CKK_GENERIC_SECRET ||
        spec->key_type == CKK_RSA || spec->key_type == CKK_EC)
        return CKR_OK;
    log_warning("CreateKey: CKA_CMK_ORIGIN EXTERNAL is available for AES, HMAC, RSA and EC key "
                "specs; %s material cannot be imported in this version of cmkp11",
                spec->name);
    return CKR_TEMPLATE_INCONSISTENT;
}

static enum store_status mark_material(int64_t row, bool has);

CK_RV cmk_import_finish_create(struct cmk_record *rec)
{
    CK_RV rv = mark_material(rec->row, false) == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
    if (rv == CKR_OK)
        rv = cmk_create_commit_state(rec, CMK_STATE_PENDING_IMPORT, "CreateKey",
                                     "origin=EXTERNAL (no material yet)", NULL);
    if (rv != CKR_OK) {
        store_cmk_delete(module.store, rec->row);
        return rv;
    }
    log_info("CreateKey: %s %s origin EXTERNAL, PendingImport", rec->key_id, rec->key_spec);
    return CKR_OK;
}

/* Ends an import step's transaction: the audit row, then commit (or rollback when any
 * step failed); the cache forgets the key either way. */
static CK_RV audit_and_commit(enum store_status s, int64_t row, const char *action,
                              const char *key_id, const char *detail)
{
    if (s == STORE_OK) s = store_audit(module.store, action, key_id, detail);
    if (s == STORE_OK)
        s = store_commit(module.store);
    else
        store_rollback(module.store);
    cmk_cache_forget(row);
    return s == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

/* ---- Backend helpers ------------------------------------------------------------ */

static CK_RV find_by_label(CK_SESSION_HANDLE session, const char *label, CK_OBJECT_HANDLE *out,
                           CK_ULONG max, CK_ULONG *n)
{
    CK_BBOOL token = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
                        {CKA_TOKEN, &token, sizeof(token)}};
    *n = 0;
    CK_RV rv = module.be.fn->C_FindObjectsInit(session, t, 2);
    if (rv != CKR_OK) return rv;
    rv = module.be.fn->C_FindObjects(session, out, max, n);
    CK_RV rv2 = module.be.fn->C_FindObjectsFinal(session);
    return rv != CKR_OK ? rv : rv2;
}

static void destroy_handles(CK_SESSION_HANDLE session, const CK_OBJECT_HANDLE *h, CK_ULONG n)
{
    module_token_lock();
    for (CK_ULONG i = 0; i < n; i++)
        module.be.fn->C_DestroyObject(session, h[i]);
    module_token_unlock();
}

/* Every wrapping pair of the key, whatever parameters it belonged to. */
/* Every wrapping pair of the key, whatever parameters it belonged to, but the one whose
 * CKA_ID is keep (NULL: none kept). */
static void destroy_wrapping_pairs(CK_SESSION_HANDLE session, const char *key_id,
                                   const unsigned char *keep)
{
    char label[80];
    wrap_label(key_id, label);
    CK_OBJECT_HANDLE found[16], doomed[16];
    CK_ULONG n = 0, k = 0;
    if (find_by_label(session, label, found, 16, &n) != CKR_OK) return;
    for (CK_ULONG i = 0; i < n; i++) {
        unsigned char id[WRAP_ID_LEN];
        CK_ATTRIBUTE a = {CKA_ID, id, sizeof(id)};
        bool kept = keep && module.be.fn->C_GetAttributeValue(session, found[i], &a, 1) == CKR_OK &&
                    a.ulValueLen == WRAP_ID_LEN && !memcmp(id, keep, WRAP_ID_LEN);
        if (!kept) doomed[k++] = found[i];
    }
    destroy_handles(session, doomed, k);
}

/* One pair, by its CKA_ID. */
static void destroy_wrapping_pair(CK_SESSION_HANDLE session, const unsigned char *wrap_id)
{
    CK_OBJECT_HANDLE found[4];
    CK_ULONG n = 0;
    if (backend_find_by_id(&module.be, session, wrap_id, WRAP_ID_LEN, (CK_OBJECT_CLASS)-1, found, 4,
                           &n) == CKR_OK)
        destroy_handles(session, found, n);
}

void cmk_import_forget(CK_SESSION_HANDLE session, const char *key_id)
{
    destroy_wrapping_pairs(session, key_id, NULL);
}

/* SPKI of an RSA key from the modulus and exponent the object carries. */
static unsigned char *rsa_spki(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, size_t *len,
                               CK_ULONG *modulus_len)
{
    CK_ULONG nl = 0, el = 0;
    unsigned char *n = cmk_create_read_attr(session, h, CKA_MODULUS, &nl);
    unsigned char *e = cmk_create_read_attr(session, h, CKA_PUBLIC_EXPONENT, &el);
    unsigned char *spki = n && e ? pubkey_spki_rsa(n, nl, e, el, len) : NULL;
    if (modulus_len) *modulus_len = nl;
    free(n);
    free(e);
    return spki;
}

/* The HMAC keys that authenticate import tokens (normally one; two processes making the
 * first at once may leave two, and a token of either verifies). */
static CK_RV mac_keys(CK_SESSION_HANDLE session, bool create, CK_OBJECT_HANDLE *out, CK_ULONG *n)
{
    CK_RV rv = backend_find_by_id(&module.be, session, mac_key_id, sizeof(mac_key_id),
                                  CKO_SECRET_KEY, out, 4, n);
    if (rv != CKR_OK || *n > 0 || !create) return rv;
    const CK_ATTRIBUTE usage[] = {{CKA_SIGN, (void *)&ck_true, 1},
                                  {CKA_VERIFY, (void *)&ck_true, 1}};
    rv = cmk_create_internal_key(session, CKM_GENERIC_SECRET_KEY_GEN, CKK_GENERIC_SECRET, usage, 2,
                                 mac_key_id, sizeof(mac_key_id), MAC_KEY_LABEL, out);
    if (rv != CKR_OK) {
        log_error("GetParametersForImport: the backend cannot make the import token key: 0x%lx",
                  rv);
        return rv;
    }
    *n = 1;
    log_info("GetParametersForImport: made the import token key in the backend");
    return CKR_OK;
}

static CK_MECHANISM hmac_mech = {CKM_SHA256_HMAC, NULL, 0};

static CK_RV token_sign(CK_SESSION_HANDLE session, unsigned char token[TOKEN_LEN])
{
    CK_OBJECT_HANDLE keys[4];
    CK_ULONG n = 0, mac_len = TOKEN_MAC_LEN;
    CK_RV rv = mac_keys(session, true, keys, &n);
    if (rv == CKR_OK) rv = module.be.fn->C_SignInit(session, &hmac_mech, keys[0]);
    if (rv == CKR_OK)
        rv = module.be.fn->C_Sign(session, token, TOKEN_BODY_LEN, token + TOKEN_BODY_LEN, &mac_len);
    return rv;
}

static bool token_authentic(CK_SESSION_HANDLE session, const unsigned char *token)
{
    CK_OBJECT_HANDLE keys[4];
    CK_ULONG n = 0;
    if (mac_keys(session, false, keys, &n) != CKR_OK) return false;
    for (CK_ULONG i = 0; i < n; i++) {
        if (module.be.fn->C_VerifyInit(session, &hmac_mech, keys[i]) == CKR_OK &&
            module.be.fn->C_Verify(session, (CK_BYTE_PTR)token, TOKEN_BODY_LEN,
                                   (CK_BYTE_PTR)token + TOKEN_BODY_LEN, TOKEN_MAC_LEN) == CKR_OK)
            return true;
    }
    return false;
}

/* Token body: magic, format 1, key id, wrap id length and wrap id, algorithm, modulus
 * bits (big-endian 16), valid-to (big-endian 64); then the HMAC-SHA-256 of all that. */
struct token_fields {
    char key_id[37];
    unsigned char wrap_id[WRAP_ID_LEN];
    unsigned long alg, bits;
    int64_t valid_to;
};

static void token_encode(const struct token_fields *f, unsigned char out[TOKEN_LEN])
{
    unsigned char *p = out;
    memcpy(p, TOKEN_MAGIC, 4), p += 4;
    *p++ = 1;
    memcpy(p, f->key_id, 36), p += 36;
    *p++ = WRAP_ID_LEN;
    memcpy(p, f->wrap_id, WRAP_ID_LEN), p += WRAP_ID_LEN;
    *p++ = (unsigned char)f->alg;
    *p++ = (unsigned char)(f->bits >> 8);
    *p++ = (unsigned char)f->bits;
    for (int i = 7; i >= 0; i--)
        *p++ = (unsigned char)((uint64_t)f->valid_to >> (8 * i));
}

static bool token_decode(const unsigned char *t, CK_ULONG len, struct token_fields *f)
{
    if (len != TOKEN_LEN || memcmp(t, TOKEN_MAGIC, 4) || t[4] != 1 || t[41] != WRAP_ID_LEN)
        return false;
    memcpy(f->key_id, t + 5, 36);
    f->key_id[36] = '\0';
    memcpy(f->wrap_id, t + 42, WRAP_ID_LEN);
    const unsigned char *p = t + 42 + WRAP_ID_LEN;
    f->alg = p[0];
    f->bits = (unsigned long)p[1] << 8 | p[2];
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[3 + i];
    f->valid_to = (int64_t)v;
    return true;
}

/* ---- GetParametersForImport ----------------------------------------------------- */

static CK_RV ulong_of(const CK_ATTRIBUTE *a, const char *what, CK_ULONG *out)
{
    if (a->ulValueLen != sizeof(CK_ULONG) || !a->pValue) {
        log_warning("%s must be a CK_ULONG", what);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    memcpy(out, a->pValue, sizeof(CK_ULONG));
    return CKR_OK;
}

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

/* The rules every import step shares: EXTERNAL origin, not pending deletion. */
static CK_RV check_importable(const struct cmk_record *rec, const char *op)
{
    if (rec->origin != CMK_ORIGIN_EXTERNAL) {
        log_warning("%s: key %s is of KMS origin; only keys created with origin EXTERNAL take "
                    "imported material",
                    op, rec->key_id);
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    if (rec->state == CMK_STATE_PENDING_DELETION) {
        log_warning("%s: key %s is pending deletion; cancel the deletion first", op, rec->key_id);
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    return CKR_OK;
}

static CK_RV parse_params_request(const CK_ATTRIBUTE *pub, CK_ULONG npub, const CK_ATTRIBUTE *priv,
                                  CK_ULONG npriv, const struct cmk_record *rec,
                                  struct token_fields *f)
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
    if (a && (rv = ulong_of(a, "GetParametersForImport: CKA_CMK_WRAPPING_ALGORITHM", &f->alg)))
        return rv;
    if (a && (f->alg < CMK_WRAP_RSAES_OAEP_SHA_1 || f->alg > CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256)) {
        log_warning("%s: CKA_CMK_WRAPPING_ALGORITHM %lu is unknown (CMK_WRAP_RSAES_OAEP_SHA_1, "
                    "_SHA_256, CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1, _SHA_256)",
                    op, f->alg);
        return CKR_MECHANISM_INVALID;
    }
    if (a && material_class(rec) == CKO_PRIVATE_KEY && !alg_is_key_wrap(f->alg)) {
        log_warning("%s: key %s is %s: asymmetric material is imported as PKCS#8 with "
                    "RSA_AES_KEY_WRAP_SHA_1 or _SHA_256, not %s",
                    op, rec->key_id, rec->key_spec, alg_name(f->alg));
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if ((a = attr_find(pub, npub, CKA_MODULUS_BITS)) &&
        (rv = ulong_of(a, "GetParametersForImport: CKA_MODULUS_BITS", &f->bits)))
        return rv;
    if (f->bits != 2048 && f->bits != 3072 && f->bits != 4096) {
        log_warning("%s: CKA_MODULUS_BITS %lu: the wrapping key is RSA 2048, 3072 or 4096", op,
                    f->bits);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    return CKR_OK;
}

static CK_RV generate_wrapping_pair(CK_SESSION_HANDLE session, const char *key_id,
                                    const struct token_fields *f, CK_OBJECT_HANDLE *pub,
                                    CK_OBJECT_HANDLE *priv)
{
    char label[80];
    wrap_label(key_id, label);
    CK_ULONG bits = f->bits, label_len = (CK_ULONG)strlen(label);
    static const CK_BYTE exponent[] = {1, 0, 1};
    CK_ATTRIBUTE pt[] = {
        {CKA_TOKEN, (void *)&ck_true, 1},        {CKA_PRIVATE, (void *)&ck_false, 1},
        {CKA_MODULUS_BITS, &bits, sizeof(bits)}, {CKA_PUBLIC_EXPONENT, (void *)exponent, 3},
        {CKA_ENCRYPT, (void *)&ck_true, 1},      {CKA_WRAP, (void *)&ck_true, 1},
        {CKA_VERIFY, (void *)&ck_false, 1},      {CKA_ID, (void *)f->wrap_id, WRAP_ID_LEN},
        {CKA_LABEL, label, label_len},
    };
    CK_ATTRIBUTE st[] = {
        {CKA_TOKEN, (void *)&ck_true, 1},          {CKA_PRIVATE, (void *)&ck_true, 1},
        {CKA_SENSITIVE, (void *)&ck_true, 1},      {CKA_EXTRACTABLE, (void *)&ck_false, 1},
        {CKA_UNWRAP, (void *)&ck_true, 1},         {CKA_DECRYPT, (void *)&ck_false, 1},
        {CKA_SIGN, (void *)&ck_false, 1},          {CKA_DERIVE, (void *)&ck_false, 1},
        {CKA_ID, (void *)f->wrap_id, WRAP_ID_LEN}, {CKA_LABEL, label, label_len},
    };
    CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    module_token_lock();
    CK_RV rv = module.be.fn->C_GenerateKeyPair(session, &gen, pt, sizeof(pt) / sizeof(pt[0]), st,
                                               sizeof(st) / sizeof(st[0]), pub, priv);
    module_token_unlock();
    if (rv != CKR_OK)
        log_warning("GetParametersForImport: the backend refused to generate an RSA %lu "
                    "wrapping pair: 0x%lx",
                    f->bits, rv);
    return rv;
}

/* Records the parameters (replacing any earlier ones) and audits, at once. */
static CK_RV record_parameters(const struct cmk_record *rec, const struct token_fields *f,
                               unsigned char *token, unsigned char *spki, size_t spki_len)
{
    struct store_import imp;
    enum store_status s = store_begin(module.store);
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    s = store_import_get(module.store, rec->row, &imp);
    if (s == STORE_NOT_FOUND) s = STORE_OK;
    if (s == STORE_OK) {
        free(imp.wrap_id);
        free(imp.token);
        free(imp.spki);
        imp.wrap_id = (unsigned char *)f->wrap_id;
        imp.wrap_id_len = WRAP_ID_LEN;
        imp.token = token;
        imp.token_len = TOKEN_LEN;
        imp.spki = spki;
        imp.spki_len = spki_len;
        imp.wrap_alg = f->alg;
        imp.wrap_bits = f->bits;
        imp.valid_to = f->valid_to;
        s = store_import_put(module.store, rec->row, &imp);
        imp.wrap_id = imp.token = imp.spki = NULL;
        store_import_free(&imp);
    }
    char detail[128];
    snprintf(detail, sizeof(detail), "wrapping=%s RSA_%lu valid_to=%lld", alg_name(f->alg), f->bits,
             (long long)f->valid_to);
    return audit_and_commit(s, rec->row, "GetParametersForImport", rec->key_id, detail);
}

/* Can the backend unwrap with OAEP-SHA-256? (SoftHSMv2 2.6.1 cannot: SHA-1 only.) Tried once
 * per process with a fresh wrapping pair: a random secret encrypted to its public key is
 * unwrapped into a session object. */
static bool backend_unwraps_oaep_sha256(CK_SESSION_HANDLE session, const unsigned char *spki,
                                        size_t spki_len, CK_OBJECT_HANDLE wrap_priv)
{
    static atomic_int known = -1; /* -1: not tried yet in this process */
    int k = atomic_load(&known);
    if (k >= 0) return k;
    unsigned char secret[32], wrapped[512];
    size_t wrapped_len = sizeof(wrapped);
    if (getrandom(secret, sizeof(secret), 0) != sizeof(secret) ||
        pubkey_rsa_oaep_sha256_encrypt(spki, spki_len, secret, sizeof(secret), wrapped,
                                       &wrapped_len))
        return false;
    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep)};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &type, sizeof(type)},
                        {CKA_TOKEN, (void *)&ck_false, 1},
                        {CKA_SENSITIVE, (void *)&ck_true, 1},
                        {CKA_EXTRACTABLE, (void *)&ck_false, 1}};
    CK_OBJECT_HANDLE h = 0;
    CK_RV rv =
        module.be.fn->C_UnwrapKey(session, &m, wrap_priv, wrapped, (CK_ULONG)wrapped_len, t, 5, &h);
    if (h) module.be.fn->C_DestroyObject(session, h);
    atomic_store(&known, rv == CKR_OK);
    log_info("the HSM %s unwrap with RSA-OAEP SHA-256 (0x%lx)", rv == CKR_OK ? "can" : "cannot",
             rv);
    return rv == CKR_OK;
}

/* The wrapping algorithm: the one asked for, if the HSM can unwrap with it; by default the
 * SHA-256 one of the key's kind, or the SHA-1 one where the HSM has OAEP-SHA-1 only. */
static CK_RV resolve_algorithm(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                               const unsigned char *spki, size_t spki_len,
                               CK_OBJECT_HANDLE wrap_priv, struct token_fields *f)
{
    bool asymmetric = material_class(rec) == CKO_PRIVATE_KEY;
    bool sha256 = !f->alg || f->alg == CMK_WRAP_RSAES_OAEP_SHA_256 ||
                  f->alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256;
    bool can = !sha256 || backend_unwraps_oaep_sha256(session, spki, spki_len, wrap_priv);
    if (sha256 && !can && module.cfg.import_oaep_decode_in_module) {
        /* The RSA step stays in the backend (CKM_RSA_X_509), which needs CKA_DECRYPT on the
         * wrapping key; the OAEP decoding is done by the module at import. */
        CK_ATTRIBUTE d = {CKA_DECRYPT, (void *)&ck_true, 1};
        module_token_lock();
        CK_RV rv = module.be.fn->C_SetAttributeValue(session, wrap_priv, &d, 1);
        module_token_unlock();
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
                    alg_name(f->alg));
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
    struct token_fields f;
    memset(&f, 0, sizeof(f));
    unsigned char token[TOKEN_LEN], *spki = NULL;
    size_t spki_len = 0;
    CK_OBJECT_HANDLE wpub = 0, wpriv = 0;
    CK_RV rv = cmk_request_session_writable(session);
    if (rv != CKR_OK) return rv;
    if ((rv = key_named(priv, npriv, op, &rec)) != CKR_OK) return rv;
    if ((rv = check_importable(&rec, op)) != CKR_OK) goto out;
    if ((rv = parse_params_request(pub, npub, priv, npriv, &rec, &f)) != CKR_OK) goto out;

    memcpy(f.key_id, rec.key_id, sizeof(f.key_id));
    memcpy(f.wrap_id, "CMKW", 4);
    util_uuid_bytes(rec.key_id, f.wrap_id + 4);
    if (getrandom(f.wrap_id + 20, 8, 0) != 8) {
        rv = CKR_FUNCTION_FAILED;
        goto out;
    }
    f.valid_to = util_now() + IMPORT_VALIDITY_SECONDS;
    if ((rv = generate_wrapping_pair(session, rec.key_id, &f, &wpub, &wpriv)) != CKR_OK) goto out;
    if (!(spki = rsa_spki(session, wpub, &spki_len, NULL))) rv = CKR_FUNCTION_FAILED;
    if (rv == CKR_OK) rv = resolve_algorithm(session, &rec, spki, spki_len, wpriv, &f);
    if (rv == CKR_OK) {
        token_encode(&f, token);
        rv = token_sign(session, token);
    }
    if (rv == CKR_OK) rv = record_parameters(&rec, &f, token, spki, spki_len);
    if (rv != CKR_OK) {
        if (rv != CKR_MECHANISM_PARAM_INVALID)
            log_warning("%s: key %s: could not make the import parameters: 0x%lx", op, rec.key_id,
                        rv);
        destroy_wrapping_pair(session, f.wrap_id); /* the earlier parameters stay good */
        goto out;
    }
    /* Asking again replaces the parameters: the earlier pair goes (and any a crash left). */
    destroy_wrapping_pairs(session, rec.key_id, f.wrap_id);
    *pub_key = wpub;
    *priv_key = wpriv;
    log_info("%s: key %s: %s RSA_%lu wrapping pair, valid to %lld", op, rec.key_id, alg_name(f.alg),
             f.bits, (long long)f.valid_to);
out:
    free(spki);
    cmk_record_free(&rec);
    return rv;
}

/* ---- Attributes ------------------------------------------------------------------ */

bool cmk_import_has_material(const struct cmk_record *rec)
{
    if (rec->state == CMK_STATE_PENDING_IMPORT) return false;
    if (rec->origin != CMK_ORIGIN_EXTERNAL || rec->state != CMK_STATE_PENDING_DELETION) return true;
    /* Scheduled for deletion: it may never have had material, or lost it. Keys imported
     * in clear (C_CreateObject) have no import row and always have material. */
    struct store_import imp;
    enum store_status s = store_import_get(module.store, rec->row, &imp);
    bool has = s == STORE_NOT_FOUND || (s == STORE_OK && imp.has_material);
    store_import_free(&imp);
    return has;
}

/* Records whether the key's material is in the backend (inside the caller's transaction). */
static enum store_status mark_material(int64_t row, bool has)
{
    struct store_import imp;
    enum store_status s = store_import_get(module.store, row, &imp);
    if (s == STORE_NOT_FOUND) s = STORE_OK;
    imp.has_material = has;
    if (s == STORE_OK) s = store_import_put(module.store, row, &imp);
    store_import_free(&imp);
    return s;
}

CK_RV cmk_import_answer_vendor(const struct cmk_record *rec, CK_ATTRIBUTE *a)
{
    switch (a->type) {
    case CKA_CMK_MATERIAL_EXPIRES: return put_ulong(a, (CK_ULONG)rec->material_expires);
    case CKA_CMK_DELETE_MATERIAL: return cmk_attr_put(a, &ck_false, sizeof(CK_BBOOL));
    case CKA_CMK_IMPORT_TOKEN:
    case CKA_CMK_IMPORT_PUBLIC_KEY:
    case CKA_CMK_IMPORT_VALID_TO:
    case CKA_CMK_WRAPPING_ALGORITHM: break;
    default: return (CK_RV)-1;
    }
    struct store_import imp;
    enum store_status s = store_import_get(module.store, rec->row, &imp);
    if (s != STORE_OK && s != STORE_NOT_FOUND) return CKR_DEVICE_ERROR;
    CK_RV rv;
    if (!imp.wrap_id) {
        a->ulValueLen = CK_UNAVAILABLE_INFORMATION; /* no outstanding parameters */
        rv = CKR_ATTRIBUTE_TYPE_INVALID;
    } else if (a->type == CKA_CMK_IMPORT_TOKEN) {
        rv = cmk_attr_put(a, imp.token, (CK_ULONG)imp.token_len);
    } else if (a->type == CKA_CMK_IMPORT_PUBLIC_KEY) {
        rv = cmk_attr_put(a, imp.spki, (CK_ULONG)imp.spki_len);
    } else if (a->type == CKA_CMK_IMPORT_VALID_TO) {
        rv = put_ulong(a, (CK_ULONG)imp.valid_to);
    } else {
        rv = put_ulong(a, imp.wrap_alg);
    }
    store_import_free(&imp);
    return rv;
}

CK_RV cmk_import_answer_pending(const struct cmk_record *rec, unsigned kind, CK_ATTRIBUTE *a)
{
    bool crypt = rec->usage == CMK_USAGE_ENCRYPT_DECRYPT;
    bool pub = kind == CMK_OBJ_PUBLIC, secret = kind == CMK_OBJ_SECRET;
    CK_BBOOL v;
    switch (a->type) {
    case CKA_CLASS:
        return put_ulong(a, secret ? CKO_SECRET_KEY : pub ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY);
    case CKA_KEY_TYPE: return put_ulong(a, rec->key_type);
    case CKA_VALUE_LEN:
        if (!secret) break;
        return put_ulong(a, spec_bits(rec->key_spec) / 8);
    case CKA_MODULUS_BITS:
        if (rec->key_type != CKK_RSA) break;
        return put_ulong(a, spec_bits(rec->key_spec));
    case CKA_VALUE:
    case CKA_PRIVATE_EXPONENT:
        if (pub) break;
        a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return CKR_ATTRIBUTE_SENSITIVE;
    case CKA_TOKEN:
    case CKA_MODIFIABLE: v = CK_TRUE; goto flag;
    case CKA_PRIVATE: v = (rec->private_mask & kind) != 0; goto flag;
    case CKA_SENSITIVE:
    case CKA_ALWAYS_AUTHENTICATE:
    case CKA_EXTRACTABLE:
    case CKA_LOCAL:
    case CKA_NEVER_EXTRACTABLE:
    case CKA_ALWAYS_SENSITIVE:
    case CKA_DERIVE: v = a->type == CKA_SENSITIVE && !pub; goto flag;
    case CKA_ENCRYPT: v = crypt && !(kind == CMK_OBJ_PRIVATE); goto flag;
    case CKA_DECRYPT: v = crypt && !pub; goto flag;
    case CKA_SIGN: v = !crypt && !pub; goto flag;
    case CKA_VERIFY: v = !crypt && !(kind == CMK_OBJ_PRIVATE); goto flag;
    case CKA_WRAP:
    case CKA_UNWRAP:
    case CKA_SIGN_RECOVER:
    case CKA_VERIFY_RECOVER: v = CK_FALSE; goto flag;
    }
    a->ulValueLen = CK_UNAVAILABLE_INFORMATION; /* no material yet */
    return CKR_ATTRIBUTE_TYPE_INVALID;
flag:
    return cmk_attr_put(a, &v, sizeof(v));
}

/* ---- ImportKeyMaterial ---------------------------------------------------------- */

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
static CK_RV alg_of_mechanism(const CK_MECHANISM *m, unsigned long *alg,
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

/* What an import asks beyond the wrapped blob, checked against the key. */
struct import_request {
    const unsigned char *token;
    CK_ULONG token_len;
    int64_t expires;
    unsigned long alg;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_ULONG aes_bits;
};

static CK_RV parse_import_template(const CK_ATTRIBUTE *t, CK_ULONG n, const struct cmk_record *rec,
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
            if (ulong_of(a, "ImportKeyMaterial: CKA_CMK_MATERIAL_EXPIRES", &v))
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
            if (ulong_of(a, "ImportKeyMaterial: CKA_CLASS/CKA_KEY_TYPE", &v))
                return CKR_ATTRIBUTE_VALUE_INVALID;
            if (v != (a->type == CKA_CLASS ? material_class(rec) : rec->key_type)) {
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
static CK_RV check_token(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                         const struct import_request *req, CK_OBJECT_HANDLE *wrap_priv,
                         CK_ULONG *modulus_len)
{
    static const char op[] = "ImportKeyMaterial";
    struct token_fields f;
    if (!req->token || !token_decode(req->token, req->token_len, &f)) {
        log_warning("%s: CKA_CMK_IMPORT_TOKEN is malformed (%lu bytes; a token is %d)", op,
                    req->token ? req->token_len : 0, TOKEN_LEN);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (!token_authentic(session, req->token)) {
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
    bool current = imp.wrap_id && imp.wrap_id_len == WRAP_ID_LEN &&
                   !memcmp(imp.wrap_id, f.wrap_id, WRAP_ID_LEN);
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
                    alg_name(f.alg), alg_name(req->alg));
        return CKR_MECHANISM_PARAM_INVALID;
    }
    CK_ULONG n = 0;
    CK_RV rv = backend_find_by_id(&module.be, session, f.wrap_id, WRAP_ID_LEN, CKO_PRIVATE_KEY,
                                  wrap_priv, 1, &n);
    if (rv == CKR_OK && n == 0) {
        log_warning("%s: the wrapping key of CKA_CMK_IMPORT_TOKEN is gone from the backend", op);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    *modulus_len = f.bits / 8;
    return rv;
}

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

/* Where a blob unwraps from: the wrapping key with OAEP, or for RSA_AES_KEY_WRAP the
 * ephemeral AES key (a session object, destroyed by stage_close) with RFC 5649 key wrap
 * with padding over the rest of the blob. Opened once, used for the checked candidate
 * and then for the material itself.
 *
 * Where the HSM cannot unwrap with OAEP-SHA-256 and [import] oaep_decode_in_module is on,
 * the RSA step runs in the backend as CKM_RSA_X_509 and the module decodes the OAEP block
 * into locked memory (import_oaep.c): for RSA_AES_KEY_WRAP only the ephemeral AES key is
 * decoded, and goes into the backend as a session object at once; for RSAES_OAEP the
 * material becomes a sensitive, non-extractable backend object at the first unwrap (the
 * candidate), the clear copy is wiped at once, and the material identity is a copy of
 * that object. */
struct unwrap_stage {
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM mech;
    CK_OBJECT_HANDLE key, eph;
    CK_BYTE_PTR data;
    CK_ULONG len;
    const char *step;
    unsigned char *locked; /* module decoding: em, scratch, message; NULL once wiped */
    size_t locked_len;
    unsigned char *msg;    /* the decoded message, inside locked */
    CK_ULONG msg_len;      /* kept after the wipe: the material's exact length */
    CK_OBJECT_HANDLE made; /* the object the decoded material became */
};

static void stage_wipe(struct unwrap_stage *st)
{
    import_secret_free(st->locked, st->locked_len);
    st->locked = st->msg = NULL;
}

/* The raw RSA step in the backend and the OAEP-SHA-256 decoding in the module. */
static CK_RV decode_in_module(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE wrap_priv,
                              CK_BYTE_PTR blob, CK_ULONG k, struct unwrap_stage *st)
{
    static const char op[] = "ImportKeyMaterial";
    st->locked_len = 4 * (size_t)k; /* em (k), the decoder's scratch (2k), the message (k) */
    if (!(st->locked = import_secret_alloc(st->locked_len))) {
        log_error("%s: cannot lock memory for the OAEP decoding (raise RLIMIT_MEMLOCK)", op);
        return CKR_HOST_MEMORY;
    }
    unsigned char *em = st->locked, *work = em + k, *msg = em + 3 * (size_t)k;
    CK_MECHANISM raw = {CKM_RSA_X_509, NULL, 0};
    CK_ULONG em_len = k;
    size_t msg_len = 0;
    CK_RV rv = module.be.fn->C_DecryptInit(session, &raw, wrap_priv);
    if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
        log_warning("%s: these import parameters were made while [import] oaep_decode_in_module "
                    "was off (the wrapping key cannot decrypt); get new parameters",
                    op);
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (rv == CKR_OK) rv = module.be.fn->C_Decrypt(session, blob, k, em, &em_len);
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
static CK_RV create_from_decoded(CK_SESSION_HANDLE session, struct unwrap_stage *st,
                                 const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE *t = calloc(n + 1, sizeof(*t));
    CK_RV rv = t ? CKR_OK : CKR_HOST_MEMORY;
    if (t) {
        memcpy(t, tmpl, n * sizeof(*t));
        t[n] = (CK_ATTRIBUTE){CKA_VALUE, st->msg, st->msg_len};
        bool token = false;
        attr_get_bool(tmpl, n, CKA_TOKEN, &token);
        if (token) module_token_lock();
        rv = module.be.fn->C_CreateObject(session, t, n + 1, out);
        if (token) module_token_unlock();
        free(t);
    }
    stage_wipe(st);
    if (rv != CKR_OK)
        log_error("ImportKeyMaterial: the backend refused the decoded material: 0x%lx", rv);
    return rv;
}

static CK_RV stage_open(CK_SESSION_HANDLE session, const struct import_request *req,
                        CK_OBJECT_HANDLE wrap_priv, CK_ULONG modulus_len,
                        const struct store_import *imp, CK_BYTE_PTR blob, CK_ULONG len,
                        struct unwrap_stage *st)
{
    memset(st, 0, sizeof(*st));
    st->oaep = req->oaep;
    st->oaep.source = CKZ_DATA_SPECIFIED;
    st->mech = (CK_MECHANISM){CKM_RSA_PKCS_OAEP, &st->oaep, sizeof(st->oaep)};
    st->key = wrap_priv;
    st->data = blob;
    st->len = len;
    st->step = "RSA-OAEP";
    bool key_wrap = alg_is_key_wrap(req->alg);
    if (!key_wrap && len != modulus_len) {
        log_warning("ImportKeyMaterial: the wrapped key material is %lu bytes; %s under RSA_%lu "
                    "gives %lu",
                    len, alg_name(req->alg), modulus_len * 8, modulus_len);
        return CKR_WRAPPED_KEY_LEN_RANGE;
    }
    if (key_wrap && (len < modulus_len + 16 || (len - modulus_len) % 8)) {
        log_warning("ImportKeyMaterial: the wrapped key material is %lu bytes; %s under RSA_%lu "
                    "is %lu bytes of wrapped AES key and at least 16, a multiple of 8, of "
                    "wrapped material",
                    len, alg_name(req->alg), modulus_len * 8, modulus_len);
        return CKR_WRAPPED_KEY_LEN_RANGE;
    }
    bool in_module = req->oaep.hash_alg == CKM_SHA256 &&
                     !backend_unwraps_oaep_sha256(session, imp->spki, imp->spki_len, wrap_priv);
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
        rv = module.be.fn->C_UnwrapKey(session, &st->mech, wrap_priv, blob, modulus_len, et, net,
                                       &st->eph);
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
static CK_RV stage_unwrap(CK_SESSION_HANDLE session, struct unwrap_stage *st,
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
        if (token) module_token_lock();
        CK_RV rv = module.be.fn->C_CopyObject(session, st->made, ct, n, out);
        if (token) module_token_unlock();
        if (rv != CKR_OK)
            log_error("ImportKeyMaterial: the backend could not copy the material into the "
                      "key's identity: 0x%lx",
                      rv);
        return rv;
    }
    if (token) module_token_lock();
    CK_RV rv = module.be.fn->C_UnwrapKey(session, (CK_MECHANISM_PTR)&st->mech, st->key, st->data,
                                         st->len, t->attrs, t->count, out);
    if (token) module_token_unlock();
    return rv == CKR_OK ? rv : unwrap_failure(rv, st->step);
}

static void stage_close(CK_SESSION_HANDLE session, struct unwrap_stage *st)
{
    stage_wipe(st);
    if (st->eph) module.be.fn->C_DestroyObject(session, st->eph);
    st->eph = 0;
}

/* The byte length of a secret the backend holds, without reading it: the length of its
 * RFC 3394 wrap under a session key made for the purpose (SoftHSMv2 does not set
 * CKA_VALUE_LEN on unwrapped keys). 0 when not a multiple of 8 bytes. */
static CK_RV secret_length(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_ULONG *len)
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
    module.be.fn->C_DestroyObject(session, kek);
    return CKR_OK;
}

/* What the checks learn of a candidate: its fingerprint (the SPKI for an asymmetric key)
 * and, for EC, the curve and public point the public key object needs. */
struct material_facts {
    unsigned char *fp;
    size_t fp_len;
    unsigned char *ec_params;
    CK_ULONG ec_params_len;
    unsigned char *ec_point; /* DER OCTET STRING */
    size_t ec_point_len;
};

static void material_facts_free(struct material_facts *mf)
{
    free(mf->fp);
    free(mf->ec_params);
    free(mf->ec_point);
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
static bool ec_point_is_public_key_of(CK_SESSION_HANDLE session, const struct material_facts *mf,
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
    if (pub) module.be.fn->C_DestroyObject(session, pub);
    free(der);
    return ok;
}

/* The public point of an imported EC private key, which the HSM does not give: ECDH of the
 * key with the curve's generator yields the point's X (a public value, so the derived
 * secret may be read); of the two points with that X, the one that verifies the key's
 * signature is its public key. Also checks the curve against the spec. */
static CK_RV ec_public_point(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                             CK_OBJECT_HANDLE h, struct material_facts *mf)
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
    if (shared) module.be.fn->C_DestroyObject(session, shared);
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

/* Checks the unwrapped material fits the key's spec (known_len: a secret's length when the
 * module decoded it, else 0) and computes its fingerprint in the backend: AES-ECB of a
 * fixed block, HMAC-SHA-256 of it, or the public key (RSA, EC). */
static CK_RV check_material(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                            CK_OBJECT_HANDLE h, CK_ULONG known_len, struct material_facts *mf)
{
    static const char op[] = "ImportKeyMaterial";
    unsigned long bits = spec_bits(rec->key_spec);
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE kt = {CKA_KEY_TYPE, &type, sizeof(type)};
    CK_RV rv = module.be.fn->C_GetAttributeValue(session, h, &kt, 1);
    if (rv != CKR_OK) return rv;
    if (type != rec->key_type) {
        log_warning("%s: the material is of key type 0x%lx, key %s is %s", op, type, rec->key_id,
                    rec->key_spec);
        return CKR_CMK_INCORRECT_KEY_MATERIAL;
    }
    if (rec->key_type == CKK_EC) return ec_public_point(session, rec, h, mf);
    if (rec->key_type == CKK_RSA) {
        CK_ULONG mod_len = 0;
        mf->fp = rsa_spki(session, h, &mf->fp_len, &mod_len);
        if (!mf->fp) return CKR_FUNCTION_FAILED;
        if (mod_len * 8 != bits) {
            log_warning("%s: the material is an RSA %lu key, key %s is %s", op, mod_len * 8,
                        rec->key_id, rec->key_spec);
            return CKR_KEY_SIZE_RANGE;
        }
        return CKR_OK;
    }
    CK_ULONG value_len = known_len;
    if (!value_len && (rv = secret_length(session, h, &value_len)) != CKR_OK) return rv;
    if (value_len * 8 != bits) {
        log_warning("%s: the material is %lu bytes (0: not a multiple of 8), key %s (%s) needs %lu",
                    op, value_len, rec->key_id, rec->key_spec, bits / 8);
        return CKR_KEY_SIZE_RANGE;
    }
    bool aes = rec->key_type == CKK_AES;
    CK_MECHANISM m = {aes ? CKM_AES_ECB : CKM_SHA256_HMAC, NULL, 0};
    CK_ULONG out_len = 32;
    if (!(mf->fp = malloc(out_len))) return CKR_HOST_MEMORY;
    rv = aes ? module.be.fn->C_EncryptInit(session, &m, h)
             : module.be.fn->C_SignInit(session, &m, h);
    if (rv == CKR_OK)
        rv = aes ? module.be.fn->C_Encrypt(session, (CK_BYTE_PTR)FINGERPRINT_LABEL, 16, mf->fp,
                                           &out_len)
                 : module.be.fn->C_Sign(session, (CK_BYTE_PTR)FINGERPRINT_LABEL, 16, mf->fp,
                                        &out_len);
    mf->fp_len = out_len;
    if (rv != CKR_OK)
        log_error("%s: the backend could not fingerprint the material: 0x%lx", op, rv);
    return rv;
}

/* The public key object of an imported key pair, under the material's identity. */
static CK_RV make_public_object(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                                CK_OBJECT_HANDLE priv, const struct material_facts *mf)
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
        module_token_lock();
        rv = module.be.fn->C_CreateObject(session, b.attrs, b.count, &h);
        module_token_unlock();
    }
    if (rv != CKR_OK)
        log_error("ImportKeyMaterial: could not make the public key object: 0x%lx", rv);
    tmpl_free(&b);
    free(n);
    free(e);
    return rv;
}

/* Claims (or releases, pid 0) the key for an import into its material identity. */
static CK_RV set_claim(const struct cmk_record *rec, bool take)
{
    enum store_status s = store_begin(module.store);
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    struct cmk_record cur;
    struct store_import imp;
    CK_RV rv = CKR_OK;
    s = store_cmk_get(module.store, rec->row, &cur);
    if (s != STORE_OK) {
        store_rollback(module.store);
        return s == STORE_NOT_FOUND ? CKR_KEY_HANDLE_INVALID : CKR_DEVICE_ERROR;
    }
    s = store_import_get(module.store, rec->row, &imp);
    if (s == STORE_NOT_FOUND) s = STORE_OK;
    if (take && s == STORE_OK) {
        bool busy = imp.importing_pid &&
                    util_process_start((pid_t)imp.importing_pid) == imp.importing_start;
        if (cur.state != CMK_STATE_PENDING_IMPORT || busy) {
            log_warning("ImportKeyMaterial: key %s changed meanwhile (%s); try again", rec->key_id,
                        busy ? "another import is under way" : "state moved");
            rv = CKR_FUNCTION_FAILED;
        }
        imp.importing_pid = (long)getpid();
        imp.importing_start = util_process_start(getpid());
    } else {
        imp.importing_pid = 0;
        imp.importing_start = 0;
    }
    if (s == STORE_OK && rv == CKR_OK) s = store_import_put(module.store, rec->row, &imp);
    store_import_free(&imp);
    cmk_record_free(&cur);
    if (s != STORE_OK || rv != CKR_OK) {
        store_rollback(module.store);
        return rv != CKR_OK ? rv : CKR_DEVICE_ERROR;
    }
    return store_commit(module.store) == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

/* Makes the import permanent: state, expiry, fingerprint, public key, parameters used up,
 * claim released, audit, in one transaction. */
static CK_RV commit_import(const struct cmk_record *rec, const struct import_request *req,
                           const struct material_facts *mf, bool first)
{
    enum store_status s = store_begin(module.store);
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    struct cmk_record cur;
    struct store_import imp;
    s = store_cmk_get(module.store, rec->row, &cur);
    if (s != STORE_OK) {
        store_rollback(module.store);
        return CKR_DEVICE_ERROR;
    }
    unsigned long from = cur.state;
    if (cur.state == CMK_STATE_PENDING_IMPORT) cur.state = CMK_STATE_ENABLED;
    s = store_cmk_update(module.store, &cur);
    if (s == STORE_OK) s = store_cmk_set_material_expires(module.store, cur.row, req->expires);
    if (s == STORE_OK && !(rec->objects & CMK_OBJ_SECRET))
        s = store_cmk_set_public(module.store, cur.row, mf->fp, mf->fp_len, mf->ec_point,
                                 mf->ec_point_len);
    if (s == STORE_OK) {
        s = store_import_get(module.store, cur.row, &imp);
        if (s == STORE_OK && !imp.fingerprint) {
            imp.fingerprint = malloc(mf->fp_len);
            if (!imp.fingerprint)
                s = STORE_ERROR;
            else
                memcpy(imp.fingerprint, mf->fp, mf->fp_len), imp.fingerprint_len = mf->fp_len;
        }
        if (s == STORE_OK) {
            free(imp.wrap_id), imp.wrap_id = NULL;
            free(imp.token), imp.token = NULL;
            free(imp.spki), imp.spki = NULL;
            imp.wrap_alg = imp.wrap_bits = 0;
            imp.valid_to = 0;
            imp.importing_pid = 0;
            imp.importing_start = 0;
            imp.has_material = true;
            s = store_import_put(module.store, cur.row, &imp);
        }
        store_import_free(&imp);
    }
    char detail[160];
    snprintf(detail, sizeof(detail), "wrapping=%s %s; expires=%lld; state: %s", alg_name(req->alg),
             first ? "first import" : "same material as before", (long long)req->expires,
             from == cur.state ? "unchanged" : "PendingImport -> Enabled");
    cmk_record_free(&cur);
    return audit_and_commit(s, rec->row, "ImportKeyMaterial", rec->key_id, detail);
}

CK_RV cmk_import_material(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE cmk,
                          CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl,
                          CK_ULONG n, CK_OBJECT_HANDLE_PTR key)
{
    static const char op[] = "ImportKeyMaterial";
    struct cmk_record rec;
    struct import_request req;
    memset(&req, 0, sizeof(req));
    struct store_import imp;
    memset(&imp, 0, sizeof(imp));
    static const char candidate_label[] = CMK_BACKEND_LABEL_PREFIX "import-candidate";
    struct tmpl_builder b, cand;
    tmpl_init(&b);
    tmpl_init(&cand);
    struct unwrap_stage stage;
    memset(&stage, 0, sizeof(stage));
    struct material_facts mf;
    memset(&mf, 0, sizeof(mf));
    CK_OBJECT_HANDLE wrap_priv = 0, material = 0, candidate = 0;
    CK_ULONG modulus_len = 0;
    bool claimed = false;
    if (!mech || !key || (!wrapped && wrapped_len)) return CKR_ARGUMENTS_BAD;
    CK_RV rv = cmk_request_session_writable(session);
    if (rv != CKR_OK) return rv;
    unsigned kind = handle_kind(cmk);
    enum store_status s = store_cmk_get(module.store, handle_row(cmk), &rec);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? CKR_UNWRAPPING_KEY_HANDLE_INVALID : CKR_DEVICE_ERROR;
    if (rec.state == CMK_STATE_CREATING || !(rec.objects & kind) || kind == CMK_OBJ_PUBLIC ||
        handle_version(cmk) != 0) {
        log_warning("%s: the unwrapping key must be a CMK's secret or private key object", op);
        rv = CKR_UNWRAPPING_KEY_HANDLE_INVALID;
        goto out;
    }
    if ((rv = check_importable(&rec, op)) != CKR_OK) goto out;
    if ((rv = alg_of_mechanism(mech, &req.alg, &req.oaep, &req.aes_bits)) != CKR_OK) goto out;
    if (material_class(&rec) == CKO_PRIVATE_KEY && !alg_is_key_wrap(req.alg)) {
        log_warning("%s: asymmetric material is imported as PKCS#8 with RSA_AES_KEY_WRAP", op);
        rv = CKR_MECHANISM_INVALID;
        goto out;
    }
    if ((rv = parse_import_template(tmpl, n, &rec, &req)) != CKR_OK) goto out;
    if ((rv = check_token(session, &rec, &req, &wrap_priv, &modulus_len)) != CKR_OK) goto out;
    s = store_import_get(module.store, rec.row, &imp);
    if (s != STORE_OK) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }

    /* Every import first unwraps a session candidate and checks it (size, fingerprint);
     * only a key without material then takes it, unwrapped again under its identity. */
    bool into_identity = !cmk_import_has_material(&rec);
    unsigned char bid[CMK_BACKEND_ID_LEN];
    char label[80];
    CK_OBJECT_CLASS cls = material_class(&rec);
    CK_KEY_TYPE type = rec.key_type;
    cmk_backend_id(rec.key_id, 1, bid);
    cmk_backend_label(rec.key_id, 1, label);
    cmk_create_material_template(&b, NULL, 0, bid, label, cls, rec.usage);
    tmpl_set(&b, CKA_CLASS, &cls, sizeof(cls));
    tmpl_set(&b, CKA_KEY_TYPE, &type, sizeof(type));
    cmk_create_material_template(&cand, NULL, 0, bid, label, cls, rec.usage);
    tmpl_set(&cand, CKA_CLASS, &cls, sizeof(cls));
    tmpl_set(&cand, CKA_KEY_TYPE, &type, sizeof(type));
    tmpl_set(&cand, CKA_TOKEN, &ck_false, sizeof(CK_BBOOL));
    tmpl_set(&cand, CKA_ID, candidate_label, sizeof(candidate_label) - 1);
    tmpl_set(&cand, CKA_LABEL, candidate_label, sizeof(candidate_label) - 1);
    /* An EC key's public point is found by ECDH with the generator. */
    if (type == CKK_EC) tmpl_set(&cand, CKA_DERIVE, &ck_true, sizeof(CK_BBOOL));
    rv = stage_open(session, &req, wrap_priv, modulus_len, &imp, wrapped, wrapped_len, &stage);
    /* A secret's size, unless the module decoded it, is measured by wrapping it under a
     * session key of the backend's. */
    if (cls == CKO_SECRET_KEY && !stage.msg_len)
        tmpl_set(&cand, CKA_EXTRACTABLE, &ck_true, sizeof(CK_BBOOL));
    if (rv == CKR_OK && (b.failed || cand.failed)) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK) rv = stage_unwrap(session, &stage, &cand, &candidate);
    if (rv == CKR_OK) rv = check_material(session, &rec, candidate, stage.msg_len, &mf);
    if (rv == CKR_OK && imp.fingerprint &&
        (imp.fingerprint_len != mf.fp_len || memcmp(imp.fingerprint, mf.fp, mf.fp_len))) {
        log_warning("%s: key %s: the material is not the material imported first; a key's "
                    "material never changes",
                    op, rec.key_id);
        rv = CKR_CMK_INCORRECT_KEY_MATERIAL;
    }
    if (rv == CKR_OK && into_identity) {
        if ((rv = set_claim(&rec, true)) != CKR_OK) goto out;
        claimed = true;
        util_crash_point("import:after-claim");
        rv = stage_unwrap(session, &stage, &b, &material);
        if (rv == CKR_OK && cls == CKO_PRIVATE_KEY)
            rv = make_public_object(session, &rec, material, &mf);
        if (rv == CKR_OK) util_crash_point("import:after-unwrap");
    }
    if (rv == CKR_OK) rv = commit_import(&rec, &req, &mf, !imp.fingerprint);
    if (rv == CKR_OK) {
        claimed = false;
        destroy_wrapping_pairs(session, rec.key_id, NULL);
        *key = handle_for_cmk(rec.row, kind);
        log_info("%s: key %s: material imported (%s), expires %lld", op, rec.key_id,
                 alg_name(req.alg), (long long)req.expires);
    } else if (claimed) {
        /* Nothing of a failed import stays: the material made goes, the claim is released. */
        cmk_destroy_material(session, rec.key_id, 1);
    }
out:
    /* The candidate lives until here: material decoded in the module is copied from it. */
    if (candidate) module.be.fn->C_DestroyObject(session, candidate);
    stage_close(session, &stage);
    if (claimed) set_claim(&rec, false);
    material_facts_free(&mf);
    store_import_free(&imp);
    tmpl_free(&b);
    tmpl_free(&cand);
    cmk_record_free(&rec);
    return rv;
}

/* ---- Expiry and deletion -------------------------------------------------------- */

/* Destroys a key's material and makes it PendingImport. Material first, row after: a crash
 * between leaves the expiry due, and the next run finds no material and ends the job. */
static void remove_material(CK_SESSION_HANDLE session, int64_t row, const char *action,
                            const char *why)
{
    struct cmk_record rec;
    if (store_cmk_get(module.store, row, &rec) != STORE_OK) return;
    if (rec.origin == CMK_ORIGIN_EXTERNAL) cmk_destroy_material(session, rec.key_id, 1);
    cmk_cache_forget(row);
    util_crash_point("import:after-material-removed");
    if (store_begin(module.store) != STORE_OK) goto out;
    struct cmk_record cur;
    enum store_status s = store_cmk_get(module.store, row, &cur);
    char detail[160] = "";
    if (s == STORE_OK) {
        unsigned long from = cur.state;
        if (cur.state == CMK_STATE_ENABLED || cur.state == CMK_STATE_DISABLED)
            cur.state = CMK_STATE_PENDING_IMPORT;
        s = store_cmk_update(module.store, &cur);
        if (s == STORE_OK) s = store_cmk_set_material_expires(module.store, row, 0);
        if (s == STORE_OK) s = mark_material(row, false);
        snprintf(detail, sizeof(detail), "%s; material destroyed; state: %s", why,
                 from == cur.state ? "unchanged" : "-> PendingImport");
        cmk_record_free(&cur);
    }
    if (audit_and_commit(s, row, action, rec.key_id, detail) == CKR_OK)
        log_info("key %s: %s: imported material destroyed", rec.key_id, why);
out:
    cmk_record_free(&rec);
}

void cmk_import_expire_due(CK_SESSION_HANDLE session)
{
    int64_t *rows = NULL;
    size_t n = 0;
    if (store_import_rows(module.store, false, util_now(), &rows, &n) != STORE_OK) return;
    for (size_t i = 0; i < n; i++)
        remove_material(session, rows[i], "KeyMaterialExpired", "material expiry passed");
    free(rows);
}

CK_RV cmk_import_delete_material(CK_SESSION_HANDLE session, int64_t row)
{
    static const char op[] = "DeleteImportedKeyMaterial";
    struct cmk_record rec;
    enum store_status s = store_cmk_get(module.store, row, &rec);
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    CK_RV rv = CKR_OK;
    if (rec.origin != CMK_ORIGIN_EXTERNAL) {
        log_warning("%s: key %s is of KMS origin: it has no imported material", op, rec.key_id);
        rv = CKR_ACTION_PROHIBITED;
    } else if (rec.state != CMK_STATE_ENABLED && rec.state != CMK_STATE_DISABLED) {
        log_warning("%s: key %s has no material to delete (state PendingImport)", op, rec.key_id);
        rv = CKR_ACTION_PROHIBITED;
    } else if (store_cmk_set_material_expires(module.store, row, 1) != STORE_OK) {
        /* Expired from now on: every process refuses the key before the material goes. */
        rv = CKR_DEVICE_ERROR;
    } else {
        remove_material(session, row, op, "deleted on request");
    }
    cmk_record_free(&rec);
    return rv;
}

void cmk_import_recover(CK_SESSION_HANDLE session)
{
    int64_t *rows = NULL;
    size_t n = 0;
    if (store_import_rows(module.store, true, 0, &rows, &n) != STORE_OK) return;
    for (size_t i = 0; i < n; i++) {
        struct cmk_record rec;
        struct store_import imp;
        if (store_cmk_get(module.store, rows[i], &rec) != STORE_OK) continue;
        if (store_import_get(module.store, rows[i], &imp) == STORE_OK &&
            util_process_start((pid_t)imp.importing_pid) != imp.importing_start) {
            if (rec.state == CMK_STATE_PENDING_IMPORT) cmk_destroy_material(session, rec.key_id, 1);
            if (set_claim(&rec, false) == CKR_OK) {
                store_audit(module.store, "RecoverImportKeyMaterial", rec.key_id,
                            "importer died mid-import; its material removed");
                log_warning("recovery: undid the import into key %s left by process %ld",
                            rec.key_id, imp.importing_pid);
            }
        }
        store_import_free(&imp);
        cmk_record_free(&rec);
    }
    free(rows);
}
