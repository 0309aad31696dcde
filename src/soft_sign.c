/* soft_sign.c - public-key operations on SOFTWARE key pairs with OpenSSL EVP in the
 * module's own library context. Private operations use the key soft_key keeps in the
 * secure heap; public ones (verify, encrypt) the SPKI in the store, so they need neither
 * the master key nor the sealed material, as an HSM's public key object would not.
 * Signatures are PKCS#11's: RSA as is, ECDSA and SM2 as r || s of fixed width. */
#include "soft_sign.h"

#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "cmk.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "log.h"
#include "module.h"
#include "pubkey.h"
#include "soft_key.h"
#include "soft_pubcache.h"

#define SM2_DEFAULT_ID "1234567812345678"
#define SM2_MAX_ID 1023 /* 8191 bits: the Z value's ENTL is 16 bits of bit length */
#define OP_SIGN 1
#define OP_CRYPT 2

struct mech_info {
    CK_MECHANISM_TYPE mech;
    CK_KEY_TYPE key_type;
    const char *md; /* the digest the mechanism hashes with; NULL: the input is signed as is */
    int ops;
    int pad; /* RSA padding */
};

static const struct mech_info mechs[] = {
    {CKM_ECDSA, CKK_EC, NULL, OP_SIGN, 0},
    {CKM_ECDSA_SHA1, CKK_EC, "SHA1", OP_SIGN, 0},
    {CKM_ECDSA_SHA224, CKK_EC, "SHA224", OP_SIGN, 0},
    {CKM_ECDSA_SHA256, CKK_EC, "SHA256", OP_SIGN, 0},
    {CKM_ECDSA_SHA384, CKK_EC, "SHA384", OP_SIGN, 0},
    {CKM_ECDSA_SHA512, CKK_EC, "SHA512", OP_SIGN, 0},
    {CKM_RSA_PKCS, CKK_RSA, NULL, OP_SIGN | OP_CRYPT, RSA_PKCS1_PADDING},
    {CKM_SHA1_RSA_PKCS, CKK_RSA, "SHA1", OP_SIGN, RSA_PKCS1_PADDING},
    {CKM_SHA224_RSA_PKCS, CKK_RSA, "SHA224", OP_SIGN, RSA_PKCS1_PADDING},
    {CKM_SHA256_RSA_PKCS, CKK_RSA, "SHA256", OP_SIGN, RSA_PKCS1_PADDING},
    {CKM_SHA384_RSA_PKCS, CKK_RSA, "SHA384", OP_SIGN, RSA_PKCS1_PADDING},
    {CKM_SHA512_RSA_PKCS, CKK_RSA, "SHA512", OP_SIGN, RSA_PKCS1_PADDING},
    {CKM_RSA_PKCS_PSS, CKK_RSA, NULL, OP_SIGN, RSA_PKCS1_PSS_PADDING},
    {CKM_SHA1_RSA_PKCS_PSS, CKK_RSA, "SHA1", OP_SIGN, RSA_PKCS1_PSS_PADDING},
    {CKM_SHA224_RSA_PKCS_PSS, CKK_RSA, "SHA224", OP_SIGN, RSA_PKCS1_PSS_PADDING},
    {CKM_SHA256_RSA_PKCS_PSS, CKK_RSA, "SHA256", OP_SIGN, RSA_PKCS1_PSS_PADDING},
    {CKM_SHA384_RSA_PKCS_PSS, CKK_RSA, "SHA384", OP_SIGN, RSA_PKCS1_PSS_PADDING},
    {CKM_SHA512_RSA_PKCS_PSS, CKK_RSA, "SHA512", OP_SIGN, RSA_PKCS1_PSS_PADDING},
    {CKM_RSA_PKCS_OAEP, CKK_RSA, NULL, OP_CRYPT, RSA_PKCS1_OAEP_PADDING},
    {CKM_CMK_SM2_SM3, CKK_CMK_SM2, "SM3", OP_SIGN, 0},
    {CKM_CMK_SM2_ENCRYPT, CKK_CMK_SM2, NULL, OP_CRYPT, 0},
};

static const struct mech_info *mech_info_of(CK_MECHANISM_TYPE m)
{
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
        if (mechs[i].mech == m) return &mechs[i];
    return NULL;
}

/* PKCS#11 hash and MGF1 codes, with the digest's OpenSSL name and size. */
static const struct {
    CK_MECHANISM_TYPE hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
    const char *md;
    size_t len;
} hashes[] = {
    {CKM_SHA_1, CKG_MGF1_SHA1, "SHA1", 20},      {CKM_SHA224, CKG_MGF1_SHA224, "SHA224", 28},
    {CKM_SHA256, CKG_MGF1_SHA256, "SHA256", 32}, {CKM_SHA384, CKG_MGF1_SHA384, "SHA384", 48},
    {CKM_SHA512, CKG_MGF1_SHA512, "SHA512", 64},
};

static int hash_index(CK_MECHANISM_TYPE hash)
{
    for (int i = 0; i < (int)(sizeof(hashes) / sizeof(hashes[0])); i++)
        if (hashes[i].hash == hash) return i;
    return -1;
}

static enum cmk_use use_of(enum vendor_op_kind kind)
{
    return kind == VOP_PKEY_SIGN      ? CMK_USE_SIGN
           : kind == VOP_PKEY_VERIFY  ? CMK_USE_VERIFY
           : kind == VOP_PKEY_ENCRYPT ? CMK_USE_ENCRYPT
                                      : CMK_USE_DECRYPT;
}

static bool is_private_op(enum vendor_op_kind kind)
{
    return kind == VOP_PKEY_SIGN || kind == VOP_PKEY_DECRYPT;
}

/* PSS: the hash and MGF1 must agree with each other and with a hashing mechanism's own
 * digest; the salt is at most the hash's length twice over (what every HSM accepts). */
static const char *parse_pss(const CK_MECHANISM *mech, const struct mech_info *mi,
                             struct vendor_op *op)
{
    const CK_RSA_PKCS_PSS_PARAMS *p = mech->pParameter;
    if (!p || mech->ulParameterLen != sizeof(*p)) return "needs a CK_RSA_PKCS_PSS_PARAMS";
    int h = hash_index(p->hashAlg);
    if (h < 0) return "hashAlg is not SHA-1/224/256/384/512";
    if (hashes[h].mgf != p->mgf) return "mgf must be MGF1 with hashAlg's hash";
    if (mi->md && strcmp(mi->md, hashes[h].md)) return "hashAlg must be the mechanism's hash";
    if (p->sLen > 1024) return "sLen is out of range";
    op->hash = p->hashAlg;
    op->mgf = p->mgf;
    op->salt_len = p->sLen;
    return NULL;
}

static const char *parse_oaep(const CK_MECHANISM *mech, struct vendor_op *op)
{
    const CK_RSA_PKCS_OAEP_PARAMS *p = mech->pParameter;
    if (!p || mech->ulParameterLen != sizeof(*p)) return "needs a CK_RSA_PKCS_OAEP_PARAMS";
    int h = hash_index(p->hashAlg);
    if (h < 0) return "hashAlg is not SHA-1/224/256/384/512";
    if (hashes[h].mgf != p->mgf) return "mgf must be MGF1 with hashAlg's hash";
    if (p->ulSourceDataLen && (p->source != CKZ_DATA_SPECIFIED || !p->pSourceData))
        return "a label needs source CKZ_DATA_SPECIFIED and pSourceData";
    if (p->ulSourceDataLen > 65536) return "the label is over 64 KiB";
    op->hash = p->hashAlg;
    op->mgf = p->mgf;
    op->aad_len = p->ulSourceDataLen;
    op->aad = malloc(op->aad_len ? op->aad_len : 1);
    if (op->aad && op->aad_len) memcpy(op->aad, p->pSourceData, op->aad_len);
    return op->aad ? NULL : "out of memory";
}

static const char *parse_sm2(const CK_MECHANISM *mech, struct vendor_op *op)
{
    const CK_CMK_SM2_PARAMS *p = mech->pParameter;
    const unsigned char *id = (const unsigned char *)SM2_DEFAULT_ID;
    size_t len = strlen(SM2_DEFAULT_ID);
    if (p) {
        if (mech->ulParameterLen != sizeof(*p)) return "needs a CK_CMK_SM2_PARAMS or none";
        if (p->ulUserIdLen > SM2_MAX_ID) return "the user id is over 8191 bits (1023 bytes)";
        if (p->ulUserIdLen && !p->pUserId) return "pUserId is NULL";
        id = p->pUserId;
        len = p->ulUserIdLen;
    } else if (mech->ulParameterLen) {
        return "ulParameterLen without a parameter";
    }
    op->aad = malloc(len ? len : 1);
    op->aad_len = len;
    if (op->aad && len) memcpy(op->aad, id, len);
    return op->aad ? NULL : "out of memory";
}

static const char *parse_parameter(const CK_MECHANISM *mech, const struct mech_info *mi,
                                   struct vendor_op *op)
{
    if (mi->pad == RSA_PKCS1_PSS_PADDING) return parse_pss(mech, mi, op);
    if (mi->pad == RSA_PKCS1_OAEP_PADDING) return parse_oaep(mech, op);
    if (mi->mech == CKM_CMK_SM2_SM3) return parse_sm2(mech, op);
    return mech->pParameter || mech->ulParameterLen ? "takes no parameter" : NULL;
}

/* The public key of row (soft_pubcache: decoded once per process). */
static CK_RV public_pkey(const struct cmk_live *live, EVP_PKEY **out)
{
    return soft_pubcache_get(live, out);
}

/* PSS: the salt must fit the key (RFC 8017: emLen >= hLen + sLen + 2). */
static const char *check_salt(const struct cmk_live *live, const struct vendor_op *op)
{
    EVP_PKEY *pkey = NULL;
    if (public_pkey(live, &pkey) != CKR_OK) return NULL; /* logged; the call will fail */
    size_t em_len = ((size_t)EVP_PKEY_get_bits(pkey) - 1 + 7) / 8;
    EVP_PKEY_free(pkey);
    size_t h_len = hashes[hash_index(op->hash)].len;
    return op->salt_len + h_len + 2 > em_len ? "sLen is too long for the key" : NULL;
}

CK_RV soft_sign_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                     const struct cmk_live *live, enum vendor_op_kind kind)
{
    bool private_op = is_private_op(kind);
    if (handle_kind(key) != (private_op ? CMK_OBJ_PRIVATE : CMK_OBJ_PUBLIC)) {
        log_warning("key %s: this operation needs its %s key object", live->key_id,
                    private_op ? "private" : "public");
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    const struct mech_info *mi = mech_info_of(mech->mechanism);
    bool sign = kind == VOP_PKEY_SIGN || kind == VOP_PKEY_VERIFY;
    if (!mi || !(mi->ops & (sign ? OP_SIGN : OP_CRYPT))) {
        log_warning("key %s: mechanism 0x%lx is not offered for %s on SOFTWARE key pairs",
                    live->key_id, mech->mechanism, sign ? "signatures" : "encryption");
        return CKR_MECHANISM_INVALID;
    }
    if (mi->key_type != live->key_type) {
        log_warning("key %s: mechanism 0x%lx is for another key type than 0x%lx", live->key_id,
                    mech->mechanism, live->key_type);
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    struct vendor_op op = {
        .kind = kind, .key = key, .mechanism = mech->mechanism, .version = handle_version(key)};
    const char *why = parse_parameter(mech, mi, &op);
    if (!why && mi->pad == RSA_PKCS1_PSS_PADDING) why = check_salt(live, &op);
    if (why) {
        log_warning("key %s: mechanism 0x%lx: parameter invalid: %s", live->key_id, mech->mechanism,
                    why);
        free(op.aad);
        return CKR_MECHANISM_PARAM_INVALID;
    }
    return vendor_op_begin(session, &op);
}

static CK_RV key_for(const struct vendor_op *op, const struct cmk_live *live, EVP_PKEY **out)
{
    if (!is_private_op(op->kind)) return public_pkey(live, out);
    unsigned long version = op->version ? op->version : live->primary_version;
    return soft_key_pkey(live->row, live->key_id, version, out);
}

/* ECDSA / SM2 signatures are r || s, each as wide as the group order. */
static size_t order_bytes(EVP_PKEY *pkey) { return ((size_t)EVP_PKEY_get_bits(pkey) + 7) / 8; }

static bool is_ec_like(const struct mech_info *mi) { return mi->key_type != CKK_RSA; }

static const char *md_of(CK_MECHANISM_TYPE hash)
{
    int h = hash_index(hash);
    return h < 0 ? NULL : hashes[h].md;
}

/* RSA padding and its parameters on a context already initialised for the operation. */
static bool set_rsa_params(EVP_PKEY_CTX *pctx, const struct mech_info *mi,
                           const struct vendor_op *op)
{
    if (mi->key_type != CKK_RSA) return true;
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, mi->pad) <= 0) return false;
    if (mi->pad == RSA_PKCS1_PSS_PADDING) {
        /* Fetched from the module's own library context, as everything it runs. */
        EVP_MD *md = EVP_MD_fetch(pubkey_libctx(), md_of(op->hash), NULL);
        bool ok = md && (mi->md || EVP_PKEY_CTX_set_signature_md(pctx, md) > 0) &&
                  EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, md_of(op->hash), NULL) > 0 &&
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, (int)op->salt_len) > 0;
        EVP_MD_free(md);
        return ok;
    }
    if (mi->pad == RSA_PKCS1_OAEP_PADDING) {
        unsigned char *label = op->aad_len ? OPENSSL_memdup(op->aad, op->aad_len) : NULL;
        bool ok = EVP_PKEY_CTX_set_rsa_oaep_md_name(pctx, md_of(op->hash), NULL) > 0 &&
                  EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, md_of(op->hash), NULL) > 0 &&
                  (!op->aad_len ||
                   (label && EVP_PKEY_CTX_set0_rsa_oaep_label(pctx, label, (int)op->aad_len) > 0));
        if (!ok) OPENSSL_free(label);
        return ok;
    }
    return true;
}

/* A digest-and-sign (or verify) context: the hashing mechanisms and SM2 (whose user id
 * goes into the Z value). */
static EVP_MD_CTX *digest_ctx(const struct mech_info *mi, const struct vendor_op *op,
                              EVP_PKEY *pkey, bool sign)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL; /* owned by mctx */
    bool ok = mctx &&
              (sign ? EVP_DigestSignInit_ex(mctx, &pctx, mi->md, pubkey_libctx(), NULL, pkey, NULL)
                    : EVP_DigestVerifyInit_ex(mctx, &pctx, mi->md, pubkey_libctx(), NULL, pkey,
                                              NULL)) == 1;
    /* SM2's distinguishing id, before any data: the Z value is hashed first. */
    if (ok && mi->key_type == CKK_CMK_SM2)
        ok = EVP_PKEY_CTX_set1_id(pctx, op->aad, (int)op->aad_len) > 0;
    if (ok) ok = set_rsa_params(pctx, mi, op);
    if (!ok) {
        EVP_MD_CTX_free(mctx);
        mctx = NULL;
    }
    return mctx;
}

static EVP_PKEY_CTX *pkey_ctx(const struct mech_info *mi, const struct vendor_op *op,
                              EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(pubkey_libctx(), pkey, NULL);
    int init = !pctx                          ? 0
               : op->kind == VOP_PKEY_SIGN    ? EVP_PKEY_sign_init(pctx)
               : op->kind == VOP_PKEY_VERIFY  ? EVP_PKEY_verify_init(pctx)
               : op->kind == VOP_PKEY_ENCRYPT ? EVP_PKEY_encrypt_init(pctx)
                                              : EVP_PKEY_decrypt_init(pctx);
    if (init == 1 && set_rsa_params(pctx, mi, op)) return pctx;
    EVP_PKEY_CTX_free(pctx);
    return NULL;
}

/* DER ECDSA-Sig-Value <-> r || s. */
static bool der_to_raw(const unsigned char *der, size_t der_len, unsigned char *raw, size_t half)
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    const BIGNUM *r = NULL, *s = NULL;
    if (sig) ECDSA_SIG_get0(sig, &r, &s);
    bool ok = sig && BN_bn2binpad(r, raw, (int)half) == (int)half &&
              BN_bn2binpad(s, raw + half, (int)half) == (int)half;
    ECDSA_SIG_free(sig);
    return ok;
}

static unsigned char *raw_to_der(const unsigned char *raw, size_t half, int *der_len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)half, NULL), *s = BN_bin2bn(raw + half, (int)half, NULL);
    unsigned char *der = NULL;
    if (sig && r && s && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = NULL; /* the signature owns them */
        *der_len = i2d_ECDSA_SIG(sig, &der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return der;
}

/* The output length an operation needs: exact for signatures, an upper bound for
 * encryption and decryption (what EVP reports). */
static CK_RV output_length(const struct mech_info *mi, const struct vendor_op *op, EVP_PKEY *pkey,
                           const unsigned char *in, size_t in_len, size_t *need)
{
    if (op->kind == VOP_PKEY_SIGN || mi->key_type == CKK_RSA) {
        *need = is_ec_like(mi) ? 2 * order_bytes(pkey) : (size_t)EVP_PKEY_get_size(pkey);
        return CKR_OK;
    }
    EVP_PKEY_CTX *pctx = pkey_ctx(mi, op, pkey);
    /* SM2: the length follows from the input (a decrypt reads its DER to tell). */
    int ok = !pctx                          ? 0
             : op->kind == VOP_PKEY_ENCRYPT ? EVP_PKEY_encrypt(pctx, NULL, need, in, in_len)
                                            : EVP_PKEY_decrypt(pctx, NULL, need, in, in_len);
    EVP_PKEY_CTX_free(pctx);
    if (ok == 1) return CKR_OK;
    return op->kind == VOP_PKEY_DECRYPT ? CKR_ENCRYPTED_DATA_INVALID : CKR_DATA_LEN_RANGE;
}

/* Sign, encrypt or decrypt into out (room for need bytes); *written set. */
static CK_RV evp_produce(const struct mech_info *mi, const struct vendor_op *op, EVP_PKEY *pkey,
                         const unsigned char *in, size_t in_len, unsigned char *out,
                         size_t *written)
{
    bool ec_sig = op->kind == VOP_PKEY_SIGN && is_ec_like(mi);
    unsigned char der[160];
    unsigned char *dst = ec_sig ? der : out;
    size_t len = ec_sig ? sizeof(der) : *written;
    int ok = 0;
    if (op->kind == VOP_PKEY_SIGN && mi->md) {
        EVP_MD_CTX *mctx = digest_ctx(mi, op, pkey, true);
        ok = mctx && EVP_DigestSign(mctx, dst, &len, in, in_len) == 1;
        EVP_MD_CTX_free(mctx);
    } else {
        EVP_PKEY_CTX *pctx = pkey_ctx(mi, op, pkey);
        ok = pctx &&
             (op->kind == VOP_PKEY_SIGN      ? EVP_PKEY_sign(pctx, dst, &len, in, in_len)
              : op->kind == VOP_PKEY_ENCRYPT ? EVP_PKEY_encrypt(pctx, dst, &len, in, in_len)
                                             : EVP_PKEY_decrypt(pctx, dst, &len, in, in_len)) == 1;
        EVP_PKEY_CTX_free(pctx);
    }
    if (!ok)
        return op->kind == VOP_PKEY_DECRYPT   ? CKR_ENCRYPTED_DATA_INVALID
               : op->kind == VOP_PKEY_ENCRYPT ? CKR_DATA_LEN_RANGE
                                              : CKR_FUNCTION_FAILED;
    if (ec_sig) {
        size_t half = order_bytes(pkey);
        if (!der_to_raw(der, len, out, half)) return CKR_FUNCTION_FAILED;
        len = 2 * half;
    }
    *written = len;
    return CKR_OK;
}

/* Input lengths the mechanism cannot take, refused before OpenSSL is asked. */
static CK_RV check_input(const struct mech_info *mi, const struct vendor_op *op, EVP_PKEY *pkey,
                         size_t in_len)
{
    size_t k = (size_t)EVP_PKEY_get_size(pkey);
    if (in_len > INT_MAX) return CKR_DATA_LEN_RANGE;
    if (op->kind == VOP_PKEY_DECRYPT && mi->key_type == CKK_RSA && in_len != k)
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    if (mi->md || mi->key_type != CKK_RSA) return CKR_OK;
    if (mi->pad == RSA_PKCS1_PSS_PADDING) {
        int h = hash_index(op->hash);
        return in_len == hashes[h].len ? CKR_OK : CKR_DATA_LEN_RANGE;
    }
    if (op->kind != VOP_PKEY_DECRYPT && mi->pad == RSA_PKCS1_PADDING && in_len + 11 > k)
        return CKR_DATA_LEN_RANGE;
    return CKR_OK;
}

static bool continues(CK_RV rv, CK_BYTE_PTR out)
{
    return rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && !out);
}

static enum vendor_op_slot slot_of(const struct vendor_op *op)
{
    return op->kind == VOP_PKEY_SIGN      ? VOP_SLOT_SIGN
           : op->kind == VOP_PKEY_VERIFY  ? VOP_SLOT_VERIFY
           : op->kind == VOP_PKEY_ENCRYPT ? VOP_SLOT_ENCRYPT
                                          : VOP_SLOT_DECRYPT;
}

/* What every call does first: the input (in, or at Final the op's buffer), state and
 * usage asked again (they may have changed since the Init), the key, the input's length. */
static CK_RV begin_call(CK_SESSION_HANDLE session, const struct vendor_op *op,
                        const struct mech_info *mi, const unsigned char **in, size_t *in_len,
                        struct cmk_live *live, EVP_PKEY **pkey)
{
    if (!*in) {
        *in = op->buffer ? op->buffer : (const unsigned char *)"";
        *in_len = op->buffer_len;
    }
    CK_RV rv = cmk_check_use(session, op->key, op->version, use_of(op->kind), live);
    if (rv == CKR_OK) rv = key_for(op, live, pkey);
    if (rv == CKR_OK) rv = check_input(mi, op, *pkey, *in_len);
    return rv;
}

CK_RV soft_sign_run(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                    size_t in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    const struct mech_info *mi = mech_info_of(op->mechanism);
    struct cmk_live live;
    EVP_PKEY *pkey = NULL;
    size_t need = 0;
    CK_RV rv = begin_call(session, op, mi, &in, &in_len, &live, &pkey);
    if (rv == CKR_OK) rv = output_length(mi, op, pkey, in, in_len, &need);
    if (rv != CKR_OK) goto out;
    if (!out || *out_len < need) {
        rv = out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
        *out_len = need;
        goto out;
    }
    size_t written = need;
    rv = evp_produce(mi, op, pkey, in, in_len, out, &written);
    if (rv == CKR_OK)
        *out_len = written;
    else if (rv == CKR_ENCRYPTED_DATA_INVALID)
        log_warning("key %s: decrypt failed: the ciphertext does not open under mechanism 0x%lx",
                    live.key_id, op->mechanism);
    else if (rv == CKR_DATA_LEN_RANGE)
        log_warning("key %s: encrypt failed: %zu bytes are too long for mechanism 0x%lx",
                    live.key_id, in_len, op->mechanism);
out:
    EVP_PKEY_free(pkey);
    if (!continues(rv, out)) vendor_op_end_slot(session, slot_of(op));
    return rv;
}

CK_RV soft_sign_verify(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                       size_t in_len, const unsigned char *sig, size_t sig_len)
{
    const struct mech_info *mi = mech_info_of(op->mechanism);
    struct cmk_live live;
    EVP_PKEY *pkey = NULL;
    unsigned char *der = NULL;
    int der_len = 0;
    CK_RV rv = begin_call(session, op, mi, &in, &in_len, &live, &pkey);
    if (rv != CKR_OK) goto out;
    size_t want = is_ec_like(mi) ? 2 * order_bytes(pkey) : (size_t)EVP_PKEY_get_size(pkey);
    if (sig_len != want) {
        log_warning("key %s: verify: the signature is %zu bytes, mechanism 0x%lx makes %zu",
                    live.key_id, sig_len, op->mechanism, want);
        rv = CKR_SIGNATURE_LEN_RANGE;
        goto out;
    }
    if (is_ec_like(mi) && !(der = raw_to_der(sig, want / 2, &der_len))) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    const unsigned char *s = der ? der : sig;
    size_t s_len = der ? (size_t)der_len : sig_len;
    int ok;
    if (mi->md) {
        EVP_MD_CTX *mctx = digest_ctx(mi, op, pkey, false);
        ok = mctx ? EVP_DigestVerify(mctx, s, s_len, in, in_len) : -1;
        EVP_MD_CTX_free(mctx);
    } else {
        EVP_PKEY_CTX *pctx = pkey_ctx(mi, op, pkey);
        ok = pctx ? EVP_PKEY_verify(pctx, s, s_len, in, in_len) : -1;
        EVP_PKEY_CTX_free(pctx);
    }
    rv = ok == 1 ? CKR_OK : CKR_SIGNATURE_INVALID;
    if (rv != CKR_OK) log_info("key %s: verify: the signature does not verify", live.key_id);
out:
    OPENSSL_free(der);
    EVP_PKEY_free(pkey);
    vendor_op_end_slot(session, VOP_SLOT_VERIFY);
    return rv;
}

static const struct {
    CK_MECHANISM_TYPE type;
    CK_FLAGS flags;
} sm2_mechanisms[SOFT_SIGN_SM2_MECHANISMS] = {
    {CKM_CMK_SM2_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR},
    {CKM_CMK_SM2_SM3, CKF_SIGN | CKF_VERIFY},
    {CKM_CMK_SM2_ENCRYPT, CKF_ENCRYPT | CKF_DECRYPT},
};

void soft_sign_sm2_mechanisms(CK_MECHANISM_TYPE *out)
{
    for (size_t i = 0; i < SOFT_SIGN_SM2_MECHANISMS; i++)
        out[i] = sm2_mechanisms[i].type;
}

bool soft_sign_sm2_mechanism_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    for (size_t i = 0; i < SOFT_SIGN_SM2_MECHANISMS; i++)
        if (sm2_mechanisms[i].type == type) {
            *info = (CK_MECHANISM_INFO){256, 256, sm2_mechanisms[i].flags};
            return true;
        }
    return false;
}

CK_RV soft_sign_update(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *part,
                       size_t len)
{
    CK_RV rv = vendor_op_buffer(op, part, len);
    if (rv != CKR_OK) vendor_op_end_slot(session, slot_of(op));
    return rv;
}
