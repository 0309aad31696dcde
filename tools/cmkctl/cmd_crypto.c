/* cmd_crypto.c - get-public-key, sign, verify, encrypt, decrypt. For signatures the message
 * is hashed by the token (C_Digest), then signed with the raw mechanism (CKM_ECDSA,
 * CKM_RSA_PKCS over a DigestInfo, CKM_RSA_PKCS_PSS): that works on every backend, including
 * those without the combined hash-and-sign mechanisms (SoftHSMv2 has no CKM_ECDSA_SHA256),
 * and also signs a digest the caller computed (--message-type DIGEST). Encrypt and decrypt
 * use cmkp11's envelope mechanism (CKM_CMK_ENVELOPE), whose blobs name key and version. */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "ctl.h"
#include "envelope.h"
#include "input.h"
#include "keymeta.h"
#include "keyspec.h"
#include "output.h"

static const unsigned char info_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x01, 0x05, 0x00, 0x04, 0x20};
static const unsigned char info_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x02, 0x05, 0x00, 0x04, 0x30};
static const unsigned char info_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x03, 0x05, 0x00, 0x04, 0x40};

/* PAD_SM2: SM2DSA (GB/T 32918.2), which hashes SM3(Z || message) itself: the token gets
 * the whole message under CKM_CMK_SM2_SM3, never a digest. */
enum padding { PAD_ECDSA, PAD_PKCS1, PAD_PSS, PAD_SM2 };

struct sign_alg {
    const char *name;
    enum padding padding;
    CK_MECHANISM_TYPE hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
    CK_ULONG hash_len;
    const unsigned char *digest_info;
    size_t digest_info_len;
};

#define INFO(x) x, sizeof(x)
static const struct sign_alg algorithms[] = {
    {"ECDSA_SHA_256", PAD_ECDSA, CKM_SHA256, 0, 32, NULL, 0},
    {"ECDSA_SHA_384", PAD_ECDSA, CKM_SHA384, 0, 48, NULL, 0},
    {"ECDSA_SHA_512", PAD_ECDSA, CKM_SHA512, 0, 64, NULL, 0},
    {"RSASSA_PKCS1_V1_5_SHA_256", PAD_PKCS1, CKM_SHA256, 0, 32, INFO(info_sha256)},
    {"RSASSA_PKCS1_V1_5_SHA_384", PAD_PKCS1, CKM_SHA384, 0, 48, INFO(info_sha384)},
    {"RSASSA_PKCS1_V1_5_SHA_512", PAD_PKCS1, CKM_SHA512, 0, 64, INFO(info_sha512)},
    {"RSASSA_PSS_SHA_256", PAD_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32, NULL, 0},
    {"RSASSA_PSS_SHA_384", PAD_PSS, CKM_SHA384, CKG_MGF1_SHA384, 48, NULL, 0},
    {"RSASSA_PSS_SHA_512", PAD_PSS, CKM_SHA512, CKG_MGF1_SHA512, 64, NULL, 0},
    {"SM2DSA", PAD_SM2, 0, 0, 0, NULL, 0},
};
#undef INFO

#define ALGORITHM_NAMES                                                                            \
    "ECDSA_SHA_256|384|512, RSASSA_PKCS1_V1_5_SHA_256|384|512, RSASSA_PSS_SHA_256|384|512, "    \
    "SM2DSA"

static const struct sign_alg *algorithm_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
        if (!strcasecmp(algorithms[i].name, name)) return &algorithms[i];
    return NULL;
}

/* Which paddings a key's type takes: RSA's two, SM2's own, ECDSA for the other curves. */
static int algorithm_fits(const struct sign_alg *a, const struct key_meta *m)
{
    CK_KEY_TYPE type = keymeta_ulong(m, CKA_KEY_TYPE, 0);
    if (type == CKK_RSA) return a->padding == PAD_PKCS1 || a->padding == PAD_PSS;
    if (type == CKK_CMK_SM2) return a->padding == PAD_SM2;
    return a->padding == PAD_ECDSA;
}

/* The clouds' usual pairing of curve and hash; RSA defaults to PKCS#1 v1.5 with SHA-256. */
static const struct sign_alg *algorithm_default(const struct key_meta *m)
{
    const char *spec = keymeta_text(m, CKA_CMK_KEY_SPEC);
    if (keymeta_ulong(m, CKA_KEY_TYPE, 0) == CKK_RSA) return &algorithms[3];
    if (keymeta_ulong(m, CKA_KEY_TYPE, 0) == CKK_CMK_SM2) return algorithm_by_name("SM2DSA");
    if (!strcmp(spec, "EC_P384")) return &algorithms[1];
    if (!strcmp(spec, "EC_P521")) return &algorithms[2];
    return &algorithms[0];
}

/* Bytes of r (and s) in a raw ECDSA signature: from the spec, else from the public key. */
static size_t ec_coordinate_bytes(const struct key_meta *m, struct ctl *ctl,
                                  const struct key_ref *ref)
{
    const struct key_spec *s = keyspec_by_name(keymeta_text(m, CKA_CMK_KEY_SPEC));
    if (s && s->ec_coordinate_bytes) return s->ec_coordinate_bytes;
    struct attr_val spki = {CKA_PUBLIC_KEY_INFO, NULL, 0, 0};
    size_t bytes = 0;
    if (p11_get_attrs(&ctl->p11, ref->main, &spki, 1) == CKR_OK && spki.present) {
        const unsigned char *p = spki.value;
        EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)spki.len);
        if (key) bytes = (size_t)(EVP_PKEY_get_bits(key) + 7) / 8;
        EVP_PKEY_free(key);
    }
    p11_attrs_free(&spki, 1);
    return bytes;
}

/* ---- asymmetric encryption: RSAES_OAEP_SHA_1/SHA_256 on RSA, SM2PKE on SM2 keys ---- */

#define ASYM_NAMES                                                                                 \
    "SYMMETRIC_DEFAULT (the envelope, the default), RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256 (RSA "    \
    "ENCRYPT_DECRYPT keys), SM2PKE (SM2 ENCRYPT_DECRYPT keys)"

struct asym_alg {
    const char *name;
    CK_KEY_TYPE key_type;
    CK_MECHANISM_TYPE mech, hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
};

static const struct asym_alg asym_algs[] = {
    {"RSAES_OAEP_SHA_1", CKK_RSA, CKM_RSA_PKCS_OAEP, CKM_SHA_1, CKG_MGF1_SHA1},
    {"RSAES_OAEP_SHA_256", CKK_RSA, CKM_RSA_PKCS_OAEP, CKM_SHA256, CKG_MGF1_SHA256},
    {"SM2PKE", CKK_CMK_SM2, CKM_CMK_SM2_ENCRYPT, 0, 0},
};

/* --encryption-algorithm: *alg NULL for SYMMETRIC_DEFAULT (or none given). */
static int asym_by_option(struct ctl *ctl, const struct asym_alg **alg)
{
    const char *name = arg_str(&ctl->args, "encryption-algorithm");
    *alg = NULL;
    if (!name || !strcasecmp(name, "SYMMETRIC_DEFAULT")) return 0;
    for (size_t i = 0; i < sizeof(asym_algs) / sizeof(asym_algs[0]); i++)
        if (!strcasecmp(asym_algs[i].name, name)) *alg = &asym_algs[i];
    return *alg ? 0
                : ctl_fail(ctl, KMS_INVALID_PARAMETER, "--encryption-algorithm is %s, not '%s'",
                           ASYM_NAMES, name);
}

/* The key must be an ENCRYPT_DECRYPT pair of the algorithm's type. */
static int asym_fits(struct ctl *ctl, const struct asym_alg *alg, const struct key_ref *ref,
                     const struct key_meta *m, const char *what)
{
    CK_ULONG usage = keymeta_ulong(m, CKA_CMK_KEY_USAGE, 0);
    if (ref->main_class == CKO_PRIVATE_KEY && keymeta_ulong(m, CKA_KEY_TYPE, 0) == alg->key_type &&
        CMK_USAGE_HAS(usage, CMK_USAGE_ENCRYPT_DECRYPT))
        return 0;
    return ctl_fail(ctl, KMS_INVALID_KEY_USAGE,
                    "%s: key %s is %s (%s): %s needs an %s key with usage ENCRYPT_DECRYPT", what,
                    ref->key_id, keymeta_text(m, CKA_CMK_KEY_SPEC), keyusage_name(usage),
                    alg->name, alg->key_type == CKK_RSA ? "RSA" : "SM2");
}

/* Encrypts (with the public key object) or decrypts (with the private key) in into a new
 * *out. A plaintext too long for the key is InvalidParameter naming the algorithm. */
static int asym_run(struct ctl *ctl, const struct asym_alg *alg, const struct key_ref *ref,
                    const struct key_meta *m, int encrypt, const unsigned char *in, size_t in_len,
                    unsigned char **out, CK_ULONG *out_len)
{
    const char *what = encrypt ? "Encrypt" : "Decrypt";
    if (encrypt && !ref->pub)
        return ctl_fail(ctl, KMS_UNSUPPORTED,
                        "the public key object of key %s was deleted; encrypt with the PEM from "
                        "get-public-key",
                        ref->key_id);
    /* OAEP takes at most k - 2 hLen - 2 bytes (RFC 8017, 7.1.1); told here, as SoftHSMv2
     * answers a longer plaintext with CKR_GENERAL_ERROR. */
    const struct key_spec *spec = keyspec_by_name(keymeta_text(m, CKA_CMK_KEY_SPEC));
    size_t hash_len = alg->hash == CKM_SHA256 ? 32 : 20;
    if (encrypt && alg->hash && spec && spec->family == FAMILY_RSA &&
        in_len + 2 * hash_len + 2 > spec->size / 8)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "the plaintext is %zu bytes: %s with %s takes at most %zu", in_len,
                        alg->name, spec->name, spec->size / 8 - 2 * hash_len - 2);
    CK_RSA_PKCS_OAEP_PARAMS oaep = {alg->hash, alg->mgf, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM mech = {alg->mech, alg->hash ? &oaep : NULL, alg->hash ? sizeof(oaep) : 0};
    struct p11 *p = &ctl->p11;
    CK_OBJECT_HANDLE key = encrypt ? ref->pub : ref->main;
    CK_RV rv = encrypt ? p->fn->C_EncryptInit(p->session, &mech, key)
                       : p->fn->C_DecryptInit(p->session, &mech, key);
    *out_len = 0;
    *out = NULL;
    if (rv == CKR_OK)
        rv = encrypt ? p->fn->C_Encrypt(p->session, (CK_BYTE_PTR)in, in_len, NULL, out_len)
                     : p->fn->C_Decrypt(p->session, (CK_BYTE_PTR)in, in_len, NULL, out_len);
    if (rv == CKR_OK && !(*out = malloc(*out_len ? *out_len : 1))) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK)
        rv = encrypt ? p->fn->C_Encrypt(p->session, (CK_BYTE_PTR)in, in_len, *out, out_len)
                     : p->fn->C_Decrypt(p->session, (CK_BYTE_PTR)in, in_len, *out, out_len);
    if (rv == CKR_OK) return 0;
    free(*out);
    *out = NULL;
    char buf[32];
    if (rv == CKR_DATA_LEN_RANGE)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "the plaintext (%zu bytes) is too long for %s with key %s (%s)", in_len,
                        alg->name, ref->key_id, ckr_name(rv, buf));
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE)
        return ctl_fail(ctl, KMS_INVALID_CIPHERTEXT,
                        "the ciphertext does not decrypt with %s under key %s (%s)", alg->name,
                        ref->key_id, ckr_name(rv, buf));
    /* The parameters are well formed by construction: SoftHSMv2 answers OAEP with SHA-256,
     * which it lacks, with CKR_ARGUMENTS_BAD. */
    if (rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD)
        return ctl_fail(ctl, KMS_UNSUPPORTED, "%s: the token does not offer %s for key %s (%s)",
                        what, alg->name, ref->key_id, ckr_name(rv, buf));
    return keymeta_fail(ctl, rv, what, m);
}

/* ---- get-public-key ---- */

static const struct opt_def public_key_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI of an asymmetric key"},
    {"out", "FILE", 0, "also write the PEM to FILE"},
    {NULL, NULL, 0, NULL},
};

static int run_get_public_key(struct ctl *ctl)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (!rc && ref.main_class != CKO_PRIVATE_KEY)
        rc = ctl_fail(ctl, KMS_UNSUPPORTED, "key %s is symmetric (%s): it has no public key",
                      ref.key_id, keymeta_text(&m, CKA_CMK_KEY_SPEC));
    struct attr_val spki = {CKA_PUBLIC_KEY_INFO, NULL, 0, 0};
    char *pem = NULL;
    if (!rc) {
        /* cmkp11 keeps the SPKI on the private key too: the public object may be gone. */
        CK_RV rv = p11_get_attrs(&ctl->p11, ref.main, &spki, 1);
        if (rv == CKR_OK && !spki.present && ref.pub)
            rv = p11_get_attrs(&ctl->p11, ref.pub, &spki, 1);
        if (rv != CKR_OK)
            rc = keymeta_fail(ctl, rv, "GetPublicKey", &m);
        else if (!spki.present || !(pem = pem_public_key(spki.value, spki.len)))
            rc = ctl_fail(ctl, KMS_INTERNAL,
                          "the module gives no usable CKA_PUBLIC_KEY_INFO for key %s", ref.key_id);
    }
    const char *out = arg_str(&ctl->args, "out");
    if (!rc && out && file_write(out, pem, strlen(pem)))
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot write %s: %m", out);
    if (!rc) {
        json_object *resp = json_object_new_object();
        out_add_str(resp, "KeyId", ref.key_id);
        out_add_str(resp, "PublicKey", pem);
        out_add_str(resp, "KeySpec", keymeta_text(&m, CKA_CMK_KEY_SPEC));
        CK_ULONG usage = keymeta_ulong(&m, CKA_CMK_KEY_USAGE, 0);
        out_add_str(resp, "KeyUsage", keyusage_name(usage));
        if (CMK_USAGE_HAS(usage, CMK_USAGE_SIGN_VERIFY)) {
            json_object *algs = json_object_new_array();
            for (size_t i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
                if (algorithm_fits(&algorithms[i], &m))
                    json_object_array_add(algs, json_object_new_string(algorithms[i].name));
            json_object_object_add(resp, "SigningAlgorithms", algs);
        }
        if (CMK_USAGE_HAS(usage, CMK_USAGE_ENCRYPT_DECRYPT)) {
            json_object *algs = json_object_new_array();
            for (size_t i = 0; i < sizeof(asym_algs) / sizeof(asym_algs[0]); i++)
                if (asym_algs[i].key_type == keymeta_ulong(&m, CKA_KEY_TYPE, 0))
                    json_object_array_add(algs, json_object_new_string(asym_algs[i].name));
            json_object_object_add(resp, "EncryptionAlgorithms", algs);
        }
        rc = out_emit(ctl, resp, 0);
    }
    free(pem);
    p11_attrs_free(&spki, 1);
    keymeta_free(&m);
    return rc;
}

const struct cmd_def cmd_get_public_key = {
    "get-public-key",
    "Export the public key of an asymmetric key as PEM (GetPublicKey)",
    "Reads CKA_PUBLIC_KEY_INFO (DER SubjectPublicKeyInfo) and writes it as PEM, which\n"
    "`openssl pkey -pubin` reads.",
    "cmkctl get-public-key --key-id alias/web --out web.pem",
    public_key_opts,
    run_get_public_key,
};

/* ---- sign, verify ---- */

static const struct opt_def sign_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI of a SIGN_VERIFY key"},
    {"message", "BASE64", 0, "the message, base64"},
    {"message-file", "FILE", 0, "the message, raw bytes from FILE"},
    {"message-type", "TYPE", 0, "RAW (default: the token hashes it) or DIGEST (already hashed)"},
    {"signing-algorithm", "ALG", 0,
     ALGORITHM_NAMES " (default: ECDSA with the curve's hash, RSASSA_PKCS1_V1_5_SHA_256, SM2DSA)"},
    {"out", "FILE", 0, "also write the binary signature (DER for ECDSA) to FILE"},
    {NULL, NULL, 0, NULL},
};

static const struct opt_def verify_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI of a SIGN_VERIFY key"},
    {"message", "BASE64", 0, "the message, base64"},
    {"message-file", "FILE", 0, "the message, raw bytes from FILE"},
    {"message-type", "TYPE", 0, "RAW (default) or DIGEST"},
    {"signature", "BASE64", 0, "the signature, base64 (DER for ECDSA; raw r||s also accepted)"},
    {"signature-file", "FILE", 0, "the signature, binary, from FILE"},
    {"signing-algorithm", "ALG", 0, ALGORITHM_NAMES " (default as for sign)"},
    {NULL, NULL, 0, NULL},
};

/* A message is hashed by the token, so it may be longer than the clouds' 4096 bytes; it is
 * still read whole, so it has a bound. A signature is at most an RSA-4096 one. */
#define MESSAGE_MAX (16u << 20)
#define SIGNATURE_MAX 1024

struct sign_job {
    struct key_ref ref;
    struct key_meta m;
    const struct sign_alg *alg;
    unsigned char digest[64];
    unsigned char to_sign[64 + 32]; /* DigestInfo || digest for PKCS#1 v1.5 */
    CK_ULONG to_sign_len;
    unsigned char *message; /* SM2DSA: the whole message, which the token hashes with Z */
    const unsigned char *data; /* what C_Sign/C_Verify take: to_sign, or message */
    CK_ULONG data_len;
    CK_MECHANISM mech;
    CK_RSA_PKCS_PSS_PARAMS pss;
};

/* Key, algorithm, digest and mechanism: everything sign and verify share. */
static int prepare(struct ctl *ctl, struct sign_job *job)
{
    memset(job, 0, sizeof(*job));
    const char *alg_name = arg_str(&ctl->args, "signing-algorithm");
    if (alg_name && !(job->alg = algorithm_by_name(alg_name)))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "unknown signing algorithm '%s' (%s)", alg_name,
                        ALGORITHM_NAMES);
    const char *type = arg_str(&ctl->args, "message-type");
    int raw = !type || !strcasecmp(type, "RAW");
    if (!raw && strcasecmp(type, "DIGEST"))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--message-type is RAW or DIGEST, not '%s'",
                        type);
    unsigned char *msg;
    size_t msg_len;
    int rc = input_bytes(ctl, "message", MESSAGE_MAX, &msg, &msg_len);
    if (!rc) rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &job->ref, &job->m);
    if (!rc && job->ref.main_class != CKO_PRIVATE_KEY)
        rc = ctl_fail(ctl, KMS_INVALID_KEY_USAGE,
                      "key %s is %s: sign and verify need an "
                      "asymmetric SIGN_VERIFY key",
                      job->ref.key_id, keymeta_text(&job->m, CKA_CMK_KEY_SPEC));
    if (rc) {
        free(msg);
        return rc;
    }
    if (!job->alg) job->alg = algorithm_default(&job->m);
    if (!algorithm_fits(job->alg, &job->m)) {
        free(msg);
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "signing algorithm %s does not fit key spec %s",
                        job->alg->name, keymeta_text(&job->m, CKA_CMK_KEY_SPEC));
    }
    if (job->alg->padding == PAD_SM2) {
        if (!raw) {
            free(msg);
            return ctl_fail(ctl, KMS_UNSUPPORTED,
                            "SM2DSA signs the message itself (the token computes SM3(Z || "
                            "message)): give --message-type RAW");
        }
        job->message = msg;
        job->data = msg;
        job->data_len = (CK_ULONG)msg_len;
        job->mech = (CK_MECHANISM){CKM_CMK_SM2_SM3, NULL, 0}; /* the default user id */
        return 0;
    }
    CK_ULONG dlen = sizeof(job->digest);
    if (raw) {
        CK_MECHANISM hash = {job->alg->hash, NULL, 0};
        CK_RV rv = ctl->p11.fn->C_DigestInit(ctl->p11.session, &hash);
        if (rv == CKR_OK)
            rv = ctl->p11.fn->C_Digest(ctl->p11.session, msg, msg_len, job->digest, &dlen);
        if (rv != CKR_OK) rc = ctl_fail_rv(ctl, rv, "C_Digest");
    } else if (msg_len != job->alg->hash_len) {
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "a %s digest is %lu bytes, not %zu",
                      job->alg->name, job->alg->hash_len, msg_len);
    } else {
        memcpy(job->digest, msg, msg_len);
        dlen = (CK_ULONG)msg_len;
    }
    free(msg);
    if (rc) return rc;
    const struct sign_alg *a = job->alg;
    job->to_sign_len = (CK_ULONG)a->digest_info_len + dlen;
    if (a->digest_info) memcpy(job->to_sign, a->digest_info, a->digest_info_len);
    memcpy(job->to_sign + a->digest_info_len, job->digest, dlen);
    if (a->padding == PAD_ECDSA) {
        job->mech = (CK_MECHANISM){CKM_ECDSA, NULL, 0};
    } else if (a->padding == PAD_PKCS1) {
        job->mech = (CK_MECHANISM){CKM_RSA_PKCS, NULL, 0};
    } else {
        /* The clouds' PSS: MGF1 with the message hash, salt as long as the hash. */
        job->pss = (CK_RSA_PKCS_PSS_PARAMS){a->hash, a->mgf, a->hash_len};
        job->mech = (CK_MECHANISM){CKM_RSA_PKCS_PSS, &job->pss, sizeof(job->pss)};
    }
    job->data = job->to_sign;
    job->data_len = job->to_sign_len;
    return 0;
}

/* ECDSA and SM2DSA signatures are r || s from the token, DER for OpenSSL and the clouds. */
static int der_signature(const struct sign_alg *a)
{
    return a->padding == PAD_ECDSA || a->padding == PAD_SM2;
}

static int run_sign(struct ctl *ctl)
{
    struct sign_job job;
    unsigned char *sig = NULL, *der = NULL;
    char *b64 = NULL;
    int rc = prepare(ctl, &job);
    if (rc) goto out;
    struct p11 *p = &ctl->p11;
    CK_ULONG sig_len = 0;
    CK_RV rv = p->fn->C_SignInit(p->session, &job.mech, job.ref.main);
    if (rv == CKR_OK)
        rv = p->fn->C_Sign(p->session, (CK_BYTE_PTR)job.data, job.data_len, NULL, &sig_len);
    if (rv == CKR_OK && !(sig = malloc(sig_len ? sig_len : 1))) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK)
        rv = p->fn->C_Sign(p->session, (CK_BYTE_PTR)job.data, job.data_len, sig, &sig_len);
    if (rv != CKR_OK) {
        rc = keymeta_fail(ctl, rv, "Sign", &job.m);
        goto out;
    }
    const unsigned char *final = sig;
    size_t final_len = sig_len;
    if (der_signature(job.alg)) {
        if (ecdsa_raw_to_der(sig, sig_len, &der, &final_len)) {
            rc = ctl_fail(ctl, KMS_INTERNAL, "the token's ECDSA signature is malformed");
            goto out;
        }
        final = der;
    }
    const char *file = arg_str(&ctl->args, "out");
    if (file && file_write(file, final, final_len)) {
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot write %s: %m", file);
        goto out;
    }
    if (!(b64 = b64_encode(final, final_len))) {
        rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        goto out;
    }
    json_object *resp = json_object_new_object();
    out_add_str(resp, "KeyId", job.ref.key_id);
    out_add_str(resp, "Signature", b64);
    out_add_str(resp, "SigningAlgorithm", job.alg->name);
    rc = out_emit(ctl, resp, 0);
out:
    free(sig);
    OPENSSL_free(der);
    free(b64);
    free(job.message);
    keymeta_free(&job.m);
    return rc;
}

const struct cmd_def cmd_sign = {
    "sign",
    "Sign a message or digest with an asymmetric key (Sign / AsymmetricSign)",
    "Hashes with C_Digest (unless --message-type DIGEST), then C_SignInit/C_Sign with\n"
    "CKM_ECDSA, CKM_RSA_PKCS over the DigestInfo, or CKM_RSA_PKCS_PSS. The signature is\n"
    "base64; ECDSA signatures are DER, as OpenSSL and the clouds expect.",
    "cmkctl sign --key-id alias/web --message-file doc.pdf --signing-algorithm ECDSA_SHA_256",
    sign_opts,
    run_sign,
};

static int run_verify(struct ctl *ctl)
{
    struct sign_job job;
    unsigned char *sig = NULL, *raw = NULL;
    size_t sig_len = 0;
    int rc = prepare(ctl, &job);
    if (!rc) rc = input_bytes(ctl, "signature", SIGNATURE_MAX, &sig, &sig_len);
    if (!rc && !job.ref.pub)
        rc = ctl_fail(ctl, KMS_UNSUPPORTED,
                      "the public key object of key %s was deleted; verify with the PEM from "
                      "get-public-key",
                      job.ref.key_id);
    if (rc) goto out;
    const unsigned char *final = sig;
    CK_ULONG final_len = (CK_ULONG)sig_len;
    if (der_signature(job.alg)) {
        size_t coord = ec_coordinate_bytes(&job.m, ctl, &job.ref);
        if (coord && !ecdsa_der_to_raw(sig, sig_len, coord, &raw)) {
            final = raw;
            final_len = (CK_ULONG)(2 * coord);
        }
        /* Otherwise the bytes go as they are: r||s is accepted, garbage fails to verify. */
    }
    struct p11 *p = &ctl->p11;
    CK_RV rv = p->fn->C_VerifyInit(p->session, &job.mech, job.ref.pub);
    if (rv != CKR_OK) {
        rc = keymeta_fail(ctl, rv, "Verify", &job.m);
        goto out;
    }
    rv = p->fn->C_Verify(p->session, (CK_BYTE_PTR)job.data, job.data_len, (CK_BYTE_PTR) final,
                         final_len);
    if (rv != CKR_OK && rv != CKR_SIGNATURE_INVALID && rv != CKR_SIGNATURE_LEN_RANGE) {
        rc = keymeta_fail(ctl, rv, "Verify", &job.m);
        goto out;
    }
    json_object *resp = json_object_new_object();
    out_add_str(resp, "KeyId", job.ref.key_id);
    json_object_object_add(resp, "SignatureValid", json_object_new_boolean(rv == CKR_OK));
    out_add_str(resp, "SigningAlgorithm", job.alg->name);
    rc = out_emit(ctl, resp, rv == CKR_OK ? EXIT_OK : EXIT_NEGATIVE);
out:
    free(sig);
    free(raw);
    free(job.message);
    keymeta_free(&job.m);
    return rc;
}

const struct cmd_def cmd_verify = {
    "verify",
    "Verify a signature with the key's public half (Verify)",
    "C_VerifyInit/C_Verify on the key's public key object, with the digest and mechanism\n"
    "of sign. Prints SignatureValid; the exit code is 1 when the signature is not valid.",
    "cmkctl verify --key-id alias/web --message-file doc.pdf --signature-file doc.sig",
    verify_opts,
    run_verify,
};

/* ---- encrypt, decrypt: the envelope mechanism ---- */

/* What made a ciphertext: the asymmetric algorithm, or the envelope blob's key version. */
static void add_how(json_object *resp, const struct asym_alg *asym, const unsigned char *blob)
{
    if (asym) {
        out_add_str(resp, "EncryptionAlgorithm", asym->name);
        return;
    }
    char version[24];
    snprintf(version, sizeof(version), "%lu", envelope_blob_version(blob));
    out_add_str(resp, "KeyVersionId", version);
}

/* cmkp11's ciphertext blob (README, "Decrypting old data"): format (1) | key id (16) |
 * version (4, big-endian) | IV (12) | ciphertext | tag: format 0x01 AES-GCM with a 16-byte
 * tag, 0x02 (SM4 keys) SM4-CTR with a 32-byte HMAC-SM3 tag. */
static const struct opt_def encrypt_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED,
     "key id, alias, or pkcs11: URI of a symmetric ENCRYPT_DECRYPT key"},
    {"plaintext", "BASE64", 0, "the data, base64 (1 to 4096 bytes)"},
    {"plaintext-file", "FILE", 0, "the data, raw bytes from FILE (1 to 4096 bytes)"},
    {"encryption-context", "CONTEXT", 0,
     "authenticated with the data, needed again to decrypt: a JSON object of strings (its keys "
     "are sorted first, so their order does not matter), AWS's k=v,k2=v2, or any other text"},
    {"encryption-algorithm", "ALG", 0, ASYM_NAMES},
    {"out", "FILE", 0, "also write the binary ciphertext blob to FILE"},
    {NULL, NULL, 0, NULL},
};

static const struct opt_def decrypt_opts[] = {
    {"ciphertext-blob", "BASE64", 0, "the ciphertext blob, base64, as encrypt printed it"},
    {"ciphertext-blob-file", "FILE", 0, "the ciphertext blob, binary, from FILE"},
    {"key-id", "KEY", 0,
     "the key that must have made the blob (default: the key the blob names, by its key id)"},
    {"encryption-context", "CONTEXT", 0, "the encryption context given to encrypt"},
    {"encryption-algorithm", "ALG", 0, ASYM_NAMES " (an asymmetric one needs --key-id)"},
    {"out", "FILE", 0, "also write the plaintext, raw, to FILE"},
    {NULL, NULL, 0, NULL},
};

static int run_encrypt(struct ctl *ctl)
{
    unsigned char *plain = NULL, *blob = NULL;
    size_t plain_len = 0, blob_len = 0;
    char *aad = NULL, *b64 = NULL;
    size_t aad_len = 0;
    struct key_ref ref;
    struct key_meta m;
    memset(&m, 0, sizeof(m));
    int rc = input_bytes(ctl, "plaintext", PLAINTEXT_MAX, &plain, &plain_len);
    if (!rc && plain_len == 0)
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER,
                      "the plaintext is empty: encrypt takes 1 to %d bytes (encrypt larger data "
                      "under a data key: generate-data-key)",
                      PLAINTEXT_MAX);
    const struct asym_alg *asym = NULL;
    if (!rc) rc = asym_by_option(ctl, &asym);
    if (!rc && asym && arg_str(&ctl->args, "encryption-context"))
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER,
                      "%s takes no --encryption-context (only SYMMETRIC_DEFAULT authenticates one)",
                      asym->name);
    if (!rc) rc = envelope_context(ctl, arg_str(&ctl->args, "encryption-context"), &aad, &aad_len);
    if (!rc) rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (!rc && asym) {
        CK_ULONG n = 0;
        rc = asym_fits(ctl, asym, &ref, &m, "Encrypt");
        if (!rc) rc = asym_run(ctl, asym, &ref, &m, 1, plain, plain_len, &blob, &n);
        blob_len = n;
    } else if (!rc) {
        rc = envelope_need_symmetric(ctl, &ref, &m, "Encrypt");
        if (!rc)
            rc = envelope_seal(ctl, &ref, &m, plain, plain_len, aad, aad_len, &blob, &blob_len,
                               "Encrypt");
    }
    if (rc) goto out;
    const char *file = arg_str(&ctl->args, "out");
    if (file && file_write(file, blob, blob_len)) {
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot write %s: %m", file);
        goto out;
    }
    if (!(b64 = b64_encode(blob, blob_len))) {
        rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        goto out;
    }
    json_object *resp = json_object_new_object();
    out_add_str(resp, "CiphertextBlob", b64);
    out_add_str(resp, "KeyId", ref.key_id);
    add_how(resp, asym, blob);
    rc = out_emit(ctl, resp, 0);
out:
    if (plain) explicit_bzero(plain, plain_len);
    free(plain);
    free(blob);
    free(aad);
    free(b64);
    keymeta_free(&m);
    return rc;
}

const struct cmd_def cmd_encrypt = {
    "encrypt",
    "Encrypt up to 4096 bytes under a key's primary version (Encrypt)",
    "C_EncryptInit/C_Encrypt with CKM_CMK_ENVELOPE and CK_CMK_ENVELOPE_PARAMS{pAAD = the\n"
    "encryption context}: AES-GCM in the HSM, giving a self-describing blob that names the key\n"
    "id and version (format | key id | version | IV | ciphertext | tag), so decrypt needs\n"
    "nothing else. CiphertextBlob is base64; KeyVersionId is the version that encrypted.",
    "cmkctl encrypt --key-id alias/payments --plaintext-file card.txt "
    "--encryption-context '{\"purpose\":\"card\"}'",
    encrypt_opts,
    run_encrypt,
};

static int run_decrypt(struct ctl *ctl)
{
    unsigned char *blob = NULL, *plain = NULL;
    size_t blob_len = 0, plain_len = 0;
    char *aad = NULL, *b64 = NULL;
    size_t aad_len = 0;
    struct key_ref ref;
    struct key_meta m;
    memset(&m, 0, sizeof(m));
    char named[37] = "";
    const char *key_name = arg_str(&ctl->args, "key-id");
    const struct asym_alg *asym = NULL;
    int rc = asym_by_option(ctl, &asym);
    if (!rc && asym && !key_name)
        rc = ctl_fail(ctl, KMS_MISSING_PARAMETER,
                      "%s: give --key-id (an asymmetric ciphertext does not name its key)",
                      asym->name);
    if (!rc) rc = input_bytes(ctl, "ciphertext-blob", BLOB_MAX, &blob, &blob_len);
    if (!rc) rc = envelope_context(ctl, arg_str(&ctl->args, "encryption-context"), &aad, &aad_len);
    if (!rc && !asym) rc = envelope_blob_key(ctl, blob, blob_len, named, &key_name);
    if (!rc) rc = keymeta_open(ctl, key_name, &ref, &m);
    if (!rc && asym) {
        CK_ULONG n = 0;
        rc = asym_fits(ctl, asym, &ref, &m, "Decrypt");
        if (!rc) rc = asym_run(ctl, asym, &ref, &m, 0, blob, blob_len, &plain, &n);
        plain_len = n;
    } else if (!rc) {
        rc = envelope_need_symmetric(ctl, &ref, &m, "Decrypt");
        if (!rc)
            rc = envelope_open(ctl, &ref, &m, named, blob, blob_len, aad, aad_len, &plain,
                               &plain_len, "Decrypt");
    }
    if (rc) goto out;
    const char *file = arg_str(&ctl->args, "out");
    if (file && file_write(file, plain, plain_len)) {
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot write %s: %m", file);
        goto out;
    }
    if (!(b64 = b64_encode(plain, plain_len))) {
        rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        goto out;
    }
    json_object *resp = json_object_new_object();
    out_add_str(resp, "Plaintext", b64);
    out_add_str(resp, "KeyId", ref.key_id);
    add_how(resp, asym, blob);
    rc = out_emit(ctl, resp, 0);
out:
    if (plain) explicit_bzero(plain, plain_len);
    if (b64) explicit_bzero(b64, strlen(b64));
    free(plain);
    free(blob);
    free(aad);
    free(b64);
    keymeta_free(&m);
    return rc;
}

const struct cmd_def cmd_decrypt = {
    "decrypt",
    "Decrypt a ciphertext blob made by encrypt, with the version it names (Decrypt)",
    "C_DecryptInit/C_Decrypt with CKM_CMK_ENVELOPE on the key the blob names (bytes 1..16, the\n"
    "key id; found by CKA_CMK_KEY_ID) or on --key-id; the module picks the version from the\n"
    "blob, so data encrypted before rotations still decrypts. A damaged blob, another key's\n"
    "blob, or another encryption context is InvalidParameterValue.InvalidCiphertext.",
    "cmkctl decrypt --ciphertext-blob-file card.enc --encryption-context '{\"purpose\":\"card\"}'",
    decrypt_opts,
    run_decrypt,
};
