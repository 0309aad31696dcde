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

enum padding { PAD_ECDSA, PAD_PKCS1, PAD_PSS };

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
};
#undef INFO

#define ALGORITHM_NAMES                                                                            \
    "ECDSA_SHA_256|384|512, RSASSA_PKCS1_V1_5_SHA_256|384|512, RSASSA_PSS_SHA_256|384|512"

static const struct sign_alg *algorithm_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
        if (!strcasecmp(algorithms[i].name, name)) return &algorithms[i];
    return NULL;
}

/* The clouds' usual pairing of curve and hash; RSA defaults to PKCS#1 v1.5 with SHA-256. */
static const struct sign_alg *algorithm_default(const struct key_meta *m)
{
    const char *spec = keymeta_text(m, CKA_CMK_KEY_SPEC);
    if (keymeta_ulong(m, CKA_KEY_TYPE, 0) == CKK_RSA) return &algorithms[3];
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
            int rsa = keymeta_ulong(&m, CKA_KEY_TYPE, 0) == CKK_RSA;
            json_object *algs = json_object_new_array();
            for (size_t i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
                if ((algorithms[i].padding != PAD_ECDSA) == rsa)
                    json_object_array_add(algs, json_object_new_string(algorithms[i].name));
            json_object_object_add(resp, "SigningAlgorithms", algs);
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
     ALGORITHM_NAMES " (default: ECDSA with the curve's hash, RSASSA_PKCS1_V1_5_SHA_256)"},
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

/* Bytes from --NAME (base64) or --NAME-file (raw); exactly one must be given. */
static int read_input(struct ctl *ctl, const char *name, unsigned char **data, size_t *len)
{
    char file_opt[48];
    snprintf(file_opt, sizeof(file_opt), "%s-file", name);
    const char *b64 = arg_str(&ctl->args, name), *file = arg_str(&ctl->args, file_opt);
    *data = NULL;
    if (!!b64 == !!file)
        return ctl_fail(ctl, b64 ? KMS_INVALID_PARAMETER : KMS_MISSING_PARAMETER,
                        "give exactly one of --%s BASE64 and --%s FILE", name, file_opt);
    if (b64 && b64_decode(b64, data, len))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--%s is not valid base64", name);
    if (file && file_read(file, data, len))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot read %s: %m", file);
    return 0;
}

struct sign_job {
    struct key_ref ref;
    struct key_meta m;
    const struct sign_alg *alg;
    unsigned char digest[64];
    unsigned char to_sign[64 + 32]; /* DigestInfo || digest for PKCS#1 v1.5 */
    CK_ULONG to_sign_len;
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
    int rc = read_input(ctl, "message", &msg, &msg_len);
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
    int rsa = keymeta_ulong(&job->m, CKA_KEY_TYPE, 0) == CKK_RSA;
    if ((job->alg->padding != PAD_ECDSA) != rsa) {
        free(msg);
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "signing algorithm %s does not fit key spec %s",
                        job->alg->name, keymeta_text(&job->m, CKA_CMK_KEY_SPEC));
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
    return 0;
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
    if (rv == CKR_OK) rv = p->fn->C_Sign(p->session, job.to_sign, job.to_sign_len, NULL, &sig_len);
    if (rv == CKR_OK && !(sig = malloc(sig_len ? sig_len : 1))) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK) rv = p->fn->C_Sign(p->session, job.to_sign, job.to_sign_len, sig, &sig_len);
    if (rv != CKR_OK) {
        rc = keymeta_fail(ctl, rv, "Sign", &job.m);
        goto out;
    }
    const unsigned char *final = sig;
    size_t final_len = sig_len;
    if (job.alg->padding == PAD_ECDSA) {
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
    if (!rc) rc = read_input(ctl, "signature", &sig, &sig_len);
    if (!rc && !job.ref.pub)
        rc = ctl_fail(ctl, KMS_UNSUPPORTED,
                      "the public key object of key %s was deleted; verify with the PEM from "
                      "get-public-key",
                      job.ref.key_id);
    if (rc) goto out;
    const unsigned char *final = sig;
    CK_ULONG final_len = (CK_ULONG)sig_len;
    if (job.alg->padding == PAD_ECDSA) {
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
    rv = p->fn->C_Verify(p->session, job.to_sign, job.to_sign_len, (CK_BYTE_PTR) final, final_len);
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

/* cmkp11's ciphertext blob (README, "Decrypting old data"): format (1) | key id (16) |
 * version (4, big-endian) | IV (12) | ciphertext | tag: format 0x01 AES-GCM with a 16-byte
 * tag, 0x02 (SM4 keys) SM4-CTR with a 32-byte HMAC-SM3 tag. */
#define BLOB_FORMAT 0x01
#define BLOB_FORMAT_SM4 0x02
#define BLOB_HEADER_LEN 33
#define BLOB_TAG_LEN 16
#define IS_BLOB_FORMAT(b) ((b) == BLOB_FORMAT || (b) == BLOB_FORMAT_SM4)
#define PLAINTEXT_MAX 4096 /* as the clouds: a CMK encrypts keys and small secrets */

static const struct opt_def encrypt_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED,
     "key id, alias, or pkcs11: URI of a symmetric ENCRYPT_DECRYPT key"},
    {"plaintext", "BASE64", 0, "the data, base64 (1 to 4096 bytes)"},
    {"plaintext-file", "FILE", 0, "the data, raw bytes from FILE (1 to 4096 bytes)"},
    {"encryption-context", "CONTEXT", 0,
     "authenticated with the data, needed again to decrypt: a JSON object of strings (its keys "
     "are sorted first, so their order does not matter) or any other text"},
    {"out", "FILE", 0, "also write the binary ciphertext blob to FILE"},
    {NULL, NULL, 0, NULL},
};

static const struct opt_def decrypt_opts[] = {
    {"ciphertext-blob", "BASE64", 0, "the ciphertext blob, base64, as encrypt printed it"},
    {"ciphertext-blob-file", "FILE", 0, "the ciphertext blob, binary, from FILE"},
    {"key-id", "KEY", 0,
     "the key that must have made the blob (default: the key the blob names, by its key id)"},
    {"encryption-context", "CONTEXT", 0, "the encryption context given to encrypt"},
    {"out", "FILE", 0, "also write the plaintext, raw, to FILE"},
    {NULL, NULL, 0, NULL},
};

/* The additional authenticated data an --encryption-context stands for. A JSON object
 * (text starting with '{') must be an object of string values and is canonicalised, as AWS
 * does with its context: keys sorted bytewise, no spaces. "{}" and "" are no context. Any
 * other text is used as it is. *aad is NULL (len 0) when there is no context. */
static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int context_aad(struct ctl *ctl, const char *text, char **aad, size_t *len)
{
    *aad = NULL;
    *len = 0;
    if (!text) return 0;
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p != '{') {
        if (!*text) return 0;
        *len = strlen(text);
        *aad = strdup(text);
        return *aad ? 0 : ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    }
    json_tokener *tok = json_tokener_new();
    if (!tok) return ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *obj = json_tokener_parse_ex(tok, p, (int)strlen(p));
    size_t end = json_tokener_get_parse_end(tok);
    int ok = obj && json_tokener_get_error(tok) == json_tokener_success &&
             json_object_is_type(obj, json_type_object);
    json_tokener_free(tok);
    for (const char *rest = p + end; ok && *rest; rest++)
        if (*rest != ' ' && *rest != '\t' && *rest != '\n' && *rest != '\r') ok = 0;
    if (!ok) {
        json_object_put(obj);
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "--encryption-context starts with '{' but is not a JSON object: give "
                        "{\"key\":\"value\",...} or text that does not start with '{'");
    }
    size_t n = (size_t)json_object_object_length(obj), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    int rc = keys ? 0 : ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    json_object_object_foreach(obj, key, val)
    {
        if (rc) break;
        if (!json_object_is_type(val, json_type_string))
            rc = ctl_fail(ctl, KMS_INVALID_PARAMETER,
                          "--encryption-context: the value of '%s' must be a string", key);
        else
            keys[k++] = key;
    }
    if (!rc && n) {
        qsort(keys, n, sizeof(*keys), compare_keys);
        json_object *sorted = json_object_new_object();
        for (size_t i = 0; i < n; i++) {
            json_object *v = NULL;
            json_object_object_get_ex(obj, keys[i], &v);
            json_object_object_add(sorted, keys[i], json_object_get(v));
        }
        const char *canon = json_object_to_json_string_ext(
            sorted, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        *aad = canon ? strdup(canon) : NULL;
        *len = *aad ? strlen(*aad) : 0;
        if (!*aad) rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        json_object_put(sorted);
    }
    free(keys);
    json_object_put(obj);
    return rc;
}

static void blob_key_id(const unsigned char *b, char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15], b[16]);
}

static CK_ULONG blob_version(const unsigned char *b)
{
    return ((CK_ULONG)b[17] << 24) | ((CK_ULONG)b[18] << 16) | ((CK_ULONG)b[19] << 8) | b[20];
}

/* An asymmetric key cannot take the envelope mechanism: say why in the clouds' terms. */
static int need_symmetric(struct ctl *ctl, const struct key_ref *ref, const struct key_meta *m,
                          const char *what)
{
    if (ref->main_class == CKO_SECRET_KEY) return 0;
    CK_ULONG usage = keymeta_ulong(m, CKA_CMK_KEY_USAGE, 0);
    int crypt = CMK_USAGE_HAS(usage, CMK_USAGE_ENCRYPT_DECRYPT);
    return ctl_fail(ctl, crypt ? KMS_UNSUPPORTED : KMS_INVALID_KEY_USAGE,
                    "%s: key %s is %s (%s): cmkctl encrypts with the envelope mechanism, which "
                    "needs a symmetric ENCRYPT_DECRYPT key",
                    what, ref->key_id, keymeta_text(m, CKA_CMK_KEY_SPEC), keyusage_name(usage));
}

/* Refusals of the envelope mechanism; ciphertext problems are told by the caller. */
static int envelope_fail(struct ctl *ctl, CK_RV rv, const char *what, const struct key_meta *m)
{
    char buf[32];
    const char *id = keymeta_text(m, CKA_CMK_KEY_ID);
    if (rv == CKR_KEY_TYPE_INCONSISTENT)
        return ctl_fail(ctl, KMS_INVALID_KEY_USAGE,
                        "%s: key %s is %s: the envelope mechanism needs an AES key (%s)", what, id,
                        keymeta_text(m, CKA_CMK_KEY_SPEC), ckr_name(rv, buf));
    if (rv == CKR_MECHANISM_INVALID)
        return ctl_fail(ctl, KMS_UNSUPPORTED,
                        "%s: the module does not offer CKM_CMK_ENVELOPE (is it cmkp11?) (%s)", what,
                        ckr_name(rv, buf));
    return keymeta_fail(ctl, rv, what, m);
}

static int run_encrypt(struct ctl *ctl)
{
    unsigned char *plain = NULL, *blob = NULL;
    size_t plain_len = 0;
    char *aad = NULL, *b64 = NULL;
    size_t aad_len = 0;
    struct key_ref ref;
    struct key_meta m;
    memset(&m, 0, sizeof(m));
    int rc = read_input(ctl, "plaintext", &plain, &plain_len);
    if (!rc && (plain_len == 0 || plain_len > PLAINTEXT_MAX))
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER,
                      "the plaintext is %zu bytes: encrypt takes 1 to %d (encrypt larger data "
                      "under a data key)",
                      plain_len, PLAINTEXT_MAX);
    if (!rc) rc = context_aad(ctl, arg_str(&ctl->args, "encryption-context"), &aad, &aad_len);
    if (!rc) rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (!rc) rc = need_symmetric(ctl, &ref, &m, "Encrypt");
    if (rc) goto out;
    struct p11 *p = &ctl->p11;
    CK_CMK_ENVELOPE_PARAMS params = {(CK_BYTE_PTR)aad, (CK_ULONG)aad_len};
    CK_MECHANISM mech = {CKM_CMK_ENVELOPE, &params, sizeof(params)};
    CK_ULONG blob_len = 0;
    CK_RV rv = p->fn->C_EncryptInit(p->session, &mech, ref.main);
    if (rv == CKR_OK) rv = p->fn->C_Encrypt(p->session, plain, plain_len, NULL, &blob_len);
    if (rv == CKR_OK && !(blob = malloc(blob_len ? blob_len : 1))) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK) rv = p->fn->C_Encrypt(p->session, plain, plain_len, blob, &blob_len);
    if (rv == CKR_OK && (blob_len < BLOB_HEADER_LEN + BLOB_TAG_LEN || !IS_BLOB_FORMAT(blob[0])))
        rv = CKR_GENERAL_ERROR;
    if (rv != CKR_OK) {
        rc = envelope_fail(ctl, rv, "Encrypt", &m);
        goto out;
    }
    const char *file = arg_str(&ctl->args, "out");
    if (file && file_write(file, blob, blob_len)) {
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot write %s: %m", file);
        goto out;
    }
    if (!(b64 = b64_encode(blob, blob_len))) {
        rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        goto out;
    }
    char version[24];
    snprintf(version, sizeof(version), "%lu", blob_version(blob));
    json_object *resp = json_object_new_object();
    out_add_str(resp, "CiphertextBlob", b64);
    out_add_str(resp, "KeyId", ref.key_id);
    out_add_str(resp, "KeyVersionId", version);
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
    size_t blob_len = 0;
    CK_ULONG plain_len = 0;
    char *aad = NULL, *b64 = NULL;
    size_t aad_len = 0;
    struct key_ref ref;
    struct key_meta m;
    memset(&m, 0, sizeof(m));
    char named[37] = "";
    int rc = read_input(ctl, "ciphertext-blob", &blob, &blob_len);
    if (!rc) rc = context_aad(ctl, arg_str(&ctl->args, "encryption-context"), &aad, &aad_len);
    if (rc) goto out;
    if (blob_len >= 21 && IS_BLOB_FORMAT(blob[0])) blob_key_id(blob, named); /* id, version */
    const char *key_name = arg_str(&ctl->args, "key-id");
    if (!key_name) {
        /* The blob names its key: bytes 1..16 are the key id. */
        if (!*named) {
            rc = ctl_fail(ctl, KMS_INVALID_CIPHERTEXT,
                          "the ciphertext blob (%zu bytes) is not one cmkp11 made: it does not "
                          "start with format 0x01 or 0x02 and a key id",
                          blob_len);
            goto out;
        }
        rc = p11_open(ctl, P11_LOGIN);
        int exists = rc ? -1 : keyref_exists(ctl, named);
        if (exists == 0)
            rc = ctl_fail(ctl, KMS_NOT_FOUND,
                          "the ciphertext names key %s, which does not exist (deleted, or the "
                          "blob is damaged)",
                          named);
        else if (exists < 0 && !rc)
            rc = err_code_exit(ctl->err.code);
        if (rc) goto out;
        key_name = named;
    }
    rc = keymeta_open(ctl, key_name, &ref, &m);
    if (!rc) rc = need_symmetric(ctl, &ref, &m, "Decrypt");
    if (rc) goto out;
    struct p11 *p = &ctl->p11;
    CK_CMK_ENVELOPE_PARAMS params = {(CK_BYTE_PTR)aad, (CK_ULONG)aad_len};
    CK_MECHANISM mech = {CKM_CMK_ENVELOPE, &params, sizeof(params)};
    /* The plaintext is shorter than the blob: one call with a buffer that large, no length
     * query. */
    plain_len = (CK_ULONG)blob_len;
    CK_RV rv = p->fn->C_DecryptInit(p->session, &mech, ref.main);
    if (rv == CKR_OK && !(plain = malloc(blob_len ? blob_len : 1))) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK) rv = p->fn->C_Decrypt(p->session, blob, blob_len, plain, &plain_len);
    char buf[32];
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE) {
        if (*named && strcmp(named, ref.key_id))
            rc = ctl_fail(ctl, KMS_INVALID_CIPHERTEXT,
                          "the ciphertext was made under key %s, not key %s (%s)", named,
                          ref.key_id, ckr_name(rv, buf));
        else if (rv == CKR_ENCRYPTED_DATA_LEN_RANGE)
            rc = ctl_fail(ctl, KMS_INVALID_CIPHERTEXT,
                          "the ciphertext blob is %zu bytes, shorter than header and tag (%s)",
                          blob_len, ckr_name(rv, buf));
        else
            rc = ctl_fail(ctl, KMS_INVALID_CIPHERTEXT,
                          "the ciphertext does not decrypt under key %s: it is damaged, was "
                          "encrypted with another encryption context, or names a version the key "
                          "does not have (%s)",
                          ref.key_id, ckr_name(rv, buf));
        goto out;
    }
    if (rv != CKR_OK) {
        rc = envelope_fail(ctl, rv, "Decrypt", &m);
        goto out;
    }
    const char *file = arg_str(&ctl->args, "out");
    if (file && file_write(file, plain, plain_len)) {
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot write %s: %m", file);
        goto out;
    }
    if (!(b64 = b64_encode(plain, plain_len))) {
        rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        goto out;
    }
    char version[24];
    snprintf(version, sizeof(version), "%lu", blob_version(blob));
    json_object *resp = json_object_new_object();
    out_add_str(resp, "Plaintext", b64);
    out_add_str(resp, "KeyId", ref.key_id);
    out_add_str(resp, "KeyVersionId", version);
    rc = out_emit(ctl, resp, 0);
out:
    if (plain) explicit_bzero(plain, blob_len);
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
