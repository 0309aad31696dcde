/* cmd_datakey.c - generate-data-key, generate-data-key-without-plaintext, generate-random
 * and re-encrypt: what a symmetric CMK is mostly used for in every seed cloud. A data key
 * is drawn from the token's generator (C_GenerateRandom) and encrypted under the CMK with
 * the envelope mechanism, so `decrypt` gives it back; the caller encrypts its bulk data
 * under it (AES-GCM in OpenSSL, say) and keeps only the CiphertextBlob. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ctl.h"
#include "envelope.h"
#include "input.h"
#include "keymeta.h"
#include "output.h"

#define RANDOM_MAX 1024 /* NumberOfBytes: 1 to 1024 on AWS, Tencent and Alibaba */

/* --number-of-bytes N, or the bytes of --key-spec AES_128 | AES_256 (the default). */
static int data_key_bytes(struct ctl *ctl, size_t *bytes)
{
    const char *n = arg_str(&ctl->args, "number-of-bytes"), *spec = arg_str(&ctl->args, "key-spec");
    if (n && spec)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "give --key-spec or --number-of-bytes, not both");
    if (spec) {
        if (!strcmp(spec, "AES_256"))
            *bytes = 32;
        else if (!strcmp(spec, "AES_128"))
            *bytes = 16;
        else
            return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                            "--key-spec is AES_256 or AES_128, not '%s'", spec);
        return 0;
    }
    if (!n) {
        *bytes = 32;
        return 0;
    }
    char *end = NULL;
    unsigned long v = strtoul(n, &end, 10);
    if (!*n || *n == '-' || *end || v < 1 || v > RANDOM_MAX)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "--number-of-bytes is a whole number from 1 to %d, not '%s'", RANDOM_MAX,
                        n);
    *bytes = v;
    return 0;
}

/* len bytes from the token's generator. */
static int random_bytes(struct ctl *ctl, unsigned char *out, size_t len)
{
    struct p11 *p = &ctl->p11;
    CK_RV rv = p->fn->C_GenerateRandom(p->session, out, (CK_ULONG)len);
    return rv == CKR_OK ? 0 : ctl_fail_rv(ctl, rv, "C_GenerateRandom");
}

/* Writes bytes to the file named by --OPT, if given. */
static int write_opt_file(struct ctl *ctl, const char *opt, const unsigned char *data, size_t len)
{
    const char *file = arg_str(&ctl->args, opt);
    if (file && file_write(file, data, len))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot write %s: %m", file);
    return 0;
}

/* Adds name = base64 of data; 0, or an exit code when out of memory. */
static int add_b64(struct ctl *ctl, json_object *resp, const char *name, const unsigned char *data,
                   size_t len)
{
    char *b64 = b64_encode(data, len);
    if (!b64) return ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    out_add_str(resp, name, b64);
    explicit_bzero(b64, strlen(b64));
    free(b64);
    return 0;
}

static int generate_data_key(struct ctl *ctl, int with_plaintext)
{
    const char *what = with_plaintext ? "GenerateDataKey" : "GenerateDataKeyWithoutPlaintext";
    unsigned char key[RANDOM_MAX], *blob = NULL;
    size_t bytes = 0, blob_len = 0, aad_len = 0;
    char *aad = NULL;
    struct key_ref ref;
    struct key_meta m;
    memset(&m, 0, sizeof(m));
    json_object *resp = NULL;
    int rc = data_key_bytes(ctl, &bytes);
    if (!rc) rc = envelope_context(ctl, arg_str(&ctl->args, "encryption-context"), &aad, &aad_len);
    if (!rc) rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (!rc) rc = envelope_need_symmetric(ctl, &ref, &m, what);
    if (!rc) rc = random_bytes(ctl, key, bytes);
    if (!rc) rc = envelope_seal(ctl, &ref, &m, key, bytes, aad, aad_len, &blob, &blob_len, what);
    if (!rc) rc = write_opt_file(ctl, "out", blob, blob_len);
    if (!rc && with_plaintext) rc = write_opt_file(ctl, "plaintext-out", key, bytes);
    if (rc) goto out;
    resp = json_object_new_object();
    rc = add_b64(ctl, resp, "CiphertextBlob", blob, blob_len);
    if (!rc && with_plaintext) rc = add_b64(ctl, resp, "Plaintext", key, bytes);
    if (rc) goto out;
    char version[24];
    snprintf(version, sizeof(version), "%lu", envelope_blob_version(blob));
    out_add_str(resp, "KeyId", ref.key_id);
    out_add_str(resp, "KeyVersionId", version);
    rc = out_emit(ctl, resp, 0);
    resp = NULL;
out:
    json_object_put(resp);
    explicit_bzero(key, sizeof(key));
    free(blob);
    free(aad);
    keymeta_free(&m);
    return rc;
}

static int run_generate_data_key(struct ctl *ctl) { return generate_data_key(ctl, 1); }
static int run_generate_data_key_without_plaintext(struct ctl *ctl)
{
    return generate_data_key(ctl, 0);
}

#define DATA_KEY_OPTS(...)                                                                         \
    {"key-id", "KEY", OPT_REQUIRED,                                                                \
     "key id, alias, or pkcs11: URI of a symmetric ENCRYPT_DECRYPT key"},                          \
        {"key-spec", "SPEC", 0, "AES_256 (the default: 32 bytes) or AES_128 (16 bytes)"},          \
        {"number-of-bytes", "N", 0, "a data key of N bytes (1 to 1024) instead of --key-spec"},    \
        {"encryption-context", "CONTEXT", 0,                                                       \
         "authenticated with the data key, needed again to decrypt it (as encrypt)"},              \
        {"out", "FILE", 0, "also write the binary ciphertext blob to FILE"}, __VA_ARGS__

static const struct opt_def data_key_opts[] = {
    DATA_KEY_OPTS(
        {"plaintext-out", "FILE", 0, "also write the data key, raw, to FILE (mode 0600)"}),
    {NULL, NULL, 0, NULL},
};

static const struct opt_def data_key_without_plaintext_opts[] = {
    DATA_KEY_OPTS({NULL, NULL, 0, NULL}),
};

const struct cmd_def cmd_generate_data_key = {
    "generate-data-key",
    "Make a data key: its plaintext, and a copy encrypted under a CMK (GenerateDataKey)",
    "The data key is C_GenerateRandom from the token; CiphertextBlob is that key encrypted\n"
    "with CKM_CMK_ENVELOPE under the CMK's primary version (as encrypt), so decrypt gives the\n"
    "key back. Encrypt your data under Plaintext (AES-256-GCM, say), wipe it, keep the blob.",
    "cmkctl generate-data-key --key-id alias/payments --encryption-context '{\"app\":\"billing\"}'",
    data_key_opts,
    run_generate_data_key,
};

const struct cmd_def cmd_generate_data_key_without_plaintext = {
    "generate-data-key-without-plaintext",
    "Make a data key encrypted under a CMK, without its plaintext "
    "(GenerateDataKeyWithoutPlaintext)",
    "As generate-data-key, but only CiphertextBlob is given: a service that will need the key\n"
    "later decrypts the blob then.",
    "cmkctl generate-data-key-without-plaintext --key-id alias/payments --key-spec AES_128",
    data_key_without_plaintext_opts,
    run_generate_data_key_without_plaintext,
};

static int run_generate_random(struct ctl *ctl)
{
    unsigned char buf[RANDOM_MAX];
    const char *n = arg_str(&ctl->args, "number-of-bytes");
    char *end = NULL;
    unsigned long bytes = n ? strtoul(n, &end, 10) : 0;
    if (!n || !*n || *n == '-' || *end || bytes < 1 || bytes > RANDOM_MAX)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "--number-of-bytes is a whole number from 1 to %d, not '%s'", RANDOM_MAX,
                        n ? n : "");
    int rc = p11_open(ctl, P11_LOGIN);
    if (!rc) rc = random_bytes(ctl, buf, bytes);
    if (!rc) rc = write_opt_file(ctl, "out", buf, bytes);
    json_object *resp = rc ? NULL : json_object_new_object();
    if (!rc) rc = add_b64(ctl, resp, "Plaintext", buf, bytes);
    explicit_bzero(buf, sizeof(buf));
    if (rc) {
        json_object_put(resp);
        return rc;
    }
    return out_emit(ctl, resp, 0);
}

static const struct opt_def random_opts[] = {
    {"number-of-bytes", "N", OPT_REQUIRED, "how many random bytes (1 to 1024)"},
    {"out", "FILE", 0, "also write the bytes, raw, to FILE (mode 0600)"},
    {NULL, NULL, 0, NULL},
};

const struct cmd_def cmd_generate_random = {
    "generate-random",
    "Random bytes from the token's generator (GenerateRandom)",
    "C_GenerateRandom through cmkp11, which draws from the HSM. Plaintext is base64.",
    "cmkctl generate-random --number-of-bytes 32",
    random_opts,
    run_generate_random,
};

/* Decrypts under the key the blob names (or --source-key-id) and encrypts the plaintext
 * under --destination-key-id; the plaintext stays in this process's memory and is wiped. */
static int run_re_encrypt(struct ctl *ctl)
{
    unsigned char *blob = NULL, *plain = NULL, *out_blob = NULL;
    size_t blob_len = 0, plain_len = 0, out_len = 0, src_aad_len = 0, dst_aad_len = 0;
    char *src_aad = NULL, *dst_aad = NULL, named[37] = "";
    struct key_ref src, dst;
    struct key_meta sm, dm;
    memset(&sm, 0, sizeof(sm));
    memset(&dm, 0, sizeof(dm));
    json_object *resp = NULL;
    const char *src_name = arg_str(&ctl->args, "source-key-id");
    int rc = input_bytes(ctl, "ciphertext-blob", BLOB_MAX, &blob, &blob_len);
    if (!rc)
        rc = envelope_context(ctl, arg_str(&ctl->args, "source-encryption-context"), &src_aad,
                              &src_aad_len);
    if (!rc)
        rc = envelope_context(ctl, arg_str(&ctl->args, "destination-encryption-context"), &dst_aad,
                              &dst_aad_len);
    if (!rc) rc = envelope_blob_key(ctl, blob, blob_len, named, &src_name);
    if (!rc) rc = keymeta_open(ctl, src_name, &src, &sm);
    if (!rc) rc = envelope_need_symmetric(ctl, &src, &sm, "ReEncrypt");
    if (!rc)
        rc = envelope_open(ctl, &src, &sm, named, blob, blob_len, src_aad, src_aad_len, &plain,
                           &plain_len, "ReEncrypt");
    if (!rc) rc = keymeta_open(ctl, arg_str(&ctl->args, "destination-key-id"), &dst, &dm);
    if (!rc) rc = envelope_need_symmetric(ctl, &dst, &dm, "ReEncrypt");
    if (!rc)
        rc = envelope_seal(ctl, &dst, &dm, plain, plain_len, dst_aad, dst_aad_len, &out_blob,
                           &out_len, "ReEncrypt");
    if (!rc) rc = write_opt_file(ctl, "out", out_blob, out_len);
    if (rc) goto out;
    resp = json_object_new_object();
    rc = add_b64(ctl, resp, "CiphertextBlob", out_blob, out_len);
    if (rc) goto out;
    char sv[24], dv[24];
    snprintf(sv, sizeof(sv), "%lu", envelope_blob_version(blob));
    snprintf(dv, sizeof(dv), "%lu", envelope_blob_version(out_blob));
    out_add_str(resp, "SourceKeyId", src.key_id);
    out_add_str(resp, "SourceKeyVersionId", sv);
    out_add_str(resp, "KeyId", dst.key_id);
    out_add_str(resp, "KeyVersionId", dv);
    rc = out_emit(ctl, resp, 0);
    resp = NULL;
out:
    json_object_put(resp);
    if (plain) explicit_bzero(plain, plain_len);
    free(plain);
    free(blob);
    free(out_blob);
    free(src_aad);
    free(dst_aad);
    keymeta_free(&sm);
    keymeta_free(&dm);
    return rc;
}

static const struct opt_def re_encrypt_opts[] = {
    {"ciphertext-blob", "BASE64", 0, "the ciphertext blob, base64, as encrypt printed it"},
    {"ciphertext-blob-file", "FILE", 0, "the ciphertext blob, binary, from FILE"},
    {"source-key-id", "KEY", 0, "the key that must have made the blob (default: the one it names)"},
    {"source-encryption-context", "CONTEXT", 0, "the encryption context the blob was made with"},
    {"destination-key-id", "KEY", OPT_REQUIRED,
     "the symmetric ENCRYPT_DECRYPT key to encrypt under"},
    {"destination-encryption-context", "CONTEXT", 0, "the encryption context of the new blob"},
    {"out", "FILE", 0, "also write the new binary ciphertext blob to FILE"},
    {NULL, NULL, 0, NULL},
};

const struct cmd_def cmd_re_encrypt = {
    "re-encrypt",
    "Decrypt a blob and encrypt its plaintext under another key or context (ReEncrypt)",
    "C_Decrypt with CKM_CMK_ENVELOPE on the source key, then C_Encrypt with it on the\n"
    "destination key's primary version. The plaintext is never printed, and wiped.",
    "cmkctl re-encrypt --ciphertext-blob-file card.enc --destination-key-id alias/payments-2025",
    re_encrypt_opts,
    run_re_encrypt,
};
