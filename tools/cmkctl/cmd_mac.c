/* cmd_mac.c - generate-mac and verify-mac (GenerateMac, VerifyMac) on GENERATE_VERIFY_MAC
 * keys: C_Sign and C_Verify with the HMAC mechanism of the key's size in the HSM (or in
 * cmkp11, for a SOFTWARE key). AWS ties each HMAC key spec to one algorithm (HMAC_256 keys
 * take HMAC_SHA_256 only); so does cmkctl, and the algorithm defaults to the key's. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "ctl.h"
#include "input.h"
#include "keymeta.h"
#include "keyspec.h"
#include "output.h"

#define MAC_MESSAGE_MAX 4096 /* AWS: a message of 1 to 4096 bytes */
#define MAC_MAX 64

struct mac_alg {
    const char *name, *spec;
    CK_MECHANISM_TYPE mech;
    CK_ULONG len;
};

static const struct mac_alg mac_algs[] = {
    {"HMAC_SHA_224", "HMAC_224", CKM_SHA224_HMAC, 28},
    {"HMAC_SHA_256", "HMAC_256", CKM_SHA256_HMAC, 32},
    {"HMAC_SHA_384", "HMAC_384", CKM_SHA384_HMAC, 48},
    {"HMAC_SHA_512", "HMAC_512", CKM_SHA512_HMAC, 64},
};

struct mac_job {
    struct key_ref ref;
    struct key_meta m;
    const struct mac_alg *alg;
    unsigned char *msg;
    size_t msg_len;
};

/* Message, key and algorithm: what generate-mac and verify-mac share. */
static int mac_prepare(struct ctl *ctl, struct mac_job *job, const char *what)
{
    memset(job, 0, sizeof(*job));
    int rc = input_bytes(ctl, "message", MAC_MESSAGE_MAX, &job->msg, &job->msg_len);
    if (!rc && job->msg_len == 0)
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "the message is empty: %s takes 1 to %d bytes",
                      what, MAC_MESSAGE_MAX);
    if (!rc) rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &job->ref, &job->m);
    if (rc) return rc;
    const char *spec = keymeta_text(&job->m, CKA_CMK_KEY_SPEC);
    CK_ULONG usage = keymeta_ulong(&job->m, CKA_CMK_KEY_USAGE, 0);
    const struct mac_alg *fits = NULL;
    for (size_t i = 0; i < sizeof(mac_algs) / sizeof(mac_algs[0]); i++)
        if (!strcmp(mac_algs[i].spec, spec)) fits = &mac_algs[i];
    if (!fits || !CMK_USAGE_HAS(usage, CMK_USAGE_GENERATE_VERIFY_MAC))
        return ctl_fail(ctl, KMS_INVALID_KEY_USAGE,
                        "%s: key %s is %s (%s): MACs need an HMAC_224|256|384|512 key with usage "
                        "GENERATE_VERIFY_MAC",
                        what, job->ref.key_id, spec, keyusage_name(usage));
    const char *name = arg_str(&ctl->args, "mac-algorithm");
    if (name && strcasecmp(name, fits->name))
        return ctl_fail(ctl, KMS_INVALID_KEY_USAGE,
                        "%s: key %s is %s, which takes --mac-algorithm %s, not '%s'", what,
                        job->ref.key_id, spec, fits->name, name);
    job->alg = fits;
    return 0;
}

static void mac_job_free(struct mac_job *job)
{
    free(job->msg);
    keymeta_free(&job->m);
}

static int run_generate_mac(struct ctl *ctl)
{
    struct mac_job job;
    unsigned char mac[MAC_MAX];
    CK_ULONG mac_len = sizeof(mac);
    int rc = mac_prepare(ctl, &job, "GenerateMac");
    if (rc) goto out;
    struct p11 *p = &ctl->p11;
    CK_MECHANISM mech = {job.alg->mech, NULL, 0};
    CK_RV rv = p->fn->C_SignInit(p->session, &mech, job.ref.main);
    if (rv == CKR_OK) rv = p->fn->C_Sign(p->session, job.msg, job.msg_len, mac, &mac_len);
    if (rv != CKR_OK) {
        rc = keymeta_fail(ctl, rv, "GenerateMac", &job.m);
        goto out;
    }
    const char *file = arg_str(&ctl->args, "out");
    if (file && file_write(file, mac, mac_len)) {
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot write %s: %m", file);
        goto out;
    }
    char *b64 = b64_encode(mac, mac_len);
    if (!b64) {
        rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        goto out;
    }
    json_object *resp = json_object_new_object();
    out_add_str(resp, "Mac", b64);
    out_add_str(resp, "KeyId", job.ref.key_id);
    out_add_str(resp, "MacAlgorithm", job.alg->name);
    free(b64);
    rc = out_emit(ctl, resp, 0);
out:
    mac_job_free(&job);
    return rc;
}

/* A MAC that does not match is MacValid false and exit code 1, as verify does for a
 * signature (AWS answers KMSInvalidMacException; a script reads the exit code either way). */
static int run_verify_mac(struct ctl *ctl)
{
    struct mac_job job;
    unsigned char *mac = NULL;
    size_t mac_len = 0;
    int rc = mac_prepare(ctl, &job, "VerifyMac");
    if (!rc) rc = input_bytes(ctl, "mac", MAC_MAX, &mac, &mac_len);
    if (rc) goto out;
    struct p11 *p = &ctl->p11;
    CK_MECHANISM mech = {job.alg->mech, NULL, 0};
    CK_RV rv = p->fn->C_VerifyInit(p->session, &mech, job.ref.main);
    if (rv != CKR_OK) {
        rc = keymeta_fail(ctl, rv, "VerifyMac", &job.m);
        goto out;
    }
    rv = p->fn->C_Verify(p->session, job.msg, job.msg_len, mac, mac_len);
    if (rv != CKR_OK && rv != CKR_SIGNATURE_INVALID && rv != CKR_SIGNATURE_LEN_RANGE) {
        rc = keymeta_fail(ctl, rv, "VerifyMac", &job.m);
        goto out;
    }
    json_object *resp = json_object_new_object();
    out_add_str(resp, "KeyId", job.ref.key_id);
    json_object_object_add(resp, "MacValid", json_object_new_boolean(rv == CKR_OK));
    out_add_str(resp, "MacAlgorithm", job.alg->name);
    rc = out_emit(ctl, resp, rv == CKR_OK ? EXIT_OK : EXIT_NEGATIVE);
out:
    free(mac);
    mac_job_free(&job);
    return rc;
}

static const struct opt_def generate_mac_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI of an HMAC key"},
    {"message", "BASE64", 0, "the message, base64 (1 to 4096 bytes)"},
    {"message-file", "FILE", 0, "the message, raw bytes from FILE (1 to 4096 bytes)"},
    {"mac-algorithm", "ALG", 0, "HMAC_SHA_224|256|384|512: the one of the key's spec (default)"},
    {"out", "FILE", 0, "also write the MAC, raw, to FILE"},
    {NULL, NULL, 0, NULL},
};

static const struct opt_def verify_mac_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI of an HMAC key"},
    {"message", "BASE64", 0, "the message, base64 (1 to 4096 bytes)"},
    {"message-file", "FILE", 0, "the message, raw bytes from FILE (1 to 4096 bytes)"},
    {"mac", "BASE64", 0, "the MAC, base64, as generate-mac printed it"},
    {"mac-file", "FILE", 0, "the MAC, raw, from FILE"},
    {"mac-algorithm", "ALG", 0, "HMAC_SHA_224|256|384|512: the one of the key's spec (default)"},
    {NULL, NULL, 0, NULL},
};

const struct cmd_def cmd_generate_mac = {
    "generate-mac",
    "An HMAC of a message under an HMAC key (GenerateMac)",
    "C_SignInit/C_Sign with CKM_SHA<n>_HMAC on the key, n from its spec (HMAC_256: SHA-256).\n"
    "Mac is base64.",
    "cmkctl generate-mac --key-id alias/tokens --message-file claims.json",
    generate_mac_opts,
    run_generate_mac,
};

const struct cmd_def cmd_verify_mac = {
    "verify-mac",
    "Check an HMAC made by generate-mac (VerifyMac)",
    "C_VerifyInit/C_Verify with the key's HMAC mechanism. Prints MacValid; the exit code is 1\n"
    "when the MAC does not match.",
    "cmkctl verify-mac --key-id alias/tokens --message-file claims.json --mac-file claims.mac",
    verify_mac_opts,
    run_verify_mac,
};
