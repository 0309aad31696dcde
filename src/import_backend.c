/* import_backend.c - the import's dealings with the backend's objects: wrapping pairs
 * found and destroyed by label or id, an RSA key's SPKI, and whether the HSM unwraps with
 * OAEP-SHA-256. */
#include "import_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "pubkey.h"

void import_wrap_label(const char *key_id, char out[80])
{
    snprintf(out, 80, CMK_BACKEND_LABEL_PREFIX "import/%s", key_id);
}

static CK_RV find_by_label(CK_SESSION_HANDLE session, const char *label, CK_OBJECT_HANDLE *out,
                           CK_ULONG max, CK_ULONG *n)
{
    CK_BBOOL token = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
                        {CKA_TOKEN, &token, sizeof(token)}};
    return module_backend_find(session, t, 2, out, max, n);
}

/* Pairs go only through module_backend_destroy_own, which waits for every import still
 * inside a backend call on them (module.h: the lifetime of the module's own objects). */
static void destroy_handles(CK_SESSION_HANDLE session, const CK_OBJECT_HANDLE *h, CK_ULONG n)
{
    module_backend_destroy_own(session, h, n);
}

/* A wrapping pair's CKA_ID is "CMKW", the key's UUID, when the pair was made (seconds
 * since the epoch, 4 bytes big-endian) and 4 random bytes. The time tells a pair a crash
 * left from one a GetParametersForImport in flight elsewhere has made and not yet
 * recorded. */
#define WRAP_ID_TIME 20
#define IMPORT_PAIR_IN_FLIGHT_SECONDS 600

CK_RV import_new_wrap_id(const char *key_id, unsigned char id[IMPORT_WRAP_ID_LEN])
{
    memcpy(id, "CMKW", 4);
    util_uuid_bytes(key_id, id + 4);
    uint32_t now = (uint32_t)time(NULL);
    for (int i = 0; i < 4; i++)
        id[WRAP_ID_TIME + i] = (unsigned char)(now >> (24 - 8 * i));
    return getrandom(id + WRAP_ID_TIME + 4, 4, 0) == 4 ? CKR_OK : CKR_FUNCTION_FAILED;
}

static bool made_long_ago(const unsigned char id[IMPORT_WRAP_ID_LEN])
{
    uint32_t made = 0;
    for (int i = 0; i < 4; i++)
        made = made << 8 | id[WRAP_ID_TIME + i];
    uint32_t now = (uint32_t)time(NULL);
    return made <= now && now - made > IMPORT_PAIR_IN_FLIGHT_SECONDS;
}

/* Every wrapping pair of the key, whatever parameters it belonged to. */
void cmk_import_forget(CK_SESSION_HANDLE session, const char *key_id)
{
    char label[80];
    import_wrap_label(key_id, label);
    CK_OBJECT_HANDLE found[16];
    CK_ULONG n = 0;
    if (find_by_label(session, label, found, 16, &n) == CKR_OK) destroy_handles(session, found, n);
}

/* The key's wrapping pairs no request can use any more: the one gone names (replaced or
 * used up), and any other but keep made long ago (a crash left it). A younger pair may be
 * another request's, made and not yet recorded: that request records it, replacing (and
 * destroying) the one before, or destroys it when it fails. So of requests at once, the
 * one recorded last keeps its pair, and no request destroys a pair that is outstanding. */
void import_clean_wrapping_pairs(CK_SESSION_HANDLE session, const char *key_id,
                                 const unsigned char *gone, const unsigned char *keep)
{
    char label[80];
    import_wrap_label(key_id, label);
    CK_OBJECT_HANDLE found[16], doomed[16];
    CK_ULONG n = 0, k = 0;
    if (find_by_label(session, label, found, 16, &n) != CKR_OK) return;
    for (CK_ULONG i = 0; i < n; i++) {
        unsigned char id[IMPORT_WRAP_ID_LEN];
        CK_ATTRIBUTE a = {CKA_ID, id, sizeof(id)};
        if (module.be.fn->C_GetAttributeValue(session, found[i], &a, 1) != CKR_OK ||
            a.ulValueLen != IMPORT_WRAP_ID_LEN)
            continue;
        bool named = gone && !memcmp(id, gone, IMPORT_WRAP_ID_LEN);
        bool kept = keep && !memcmp(id, keep, IMPORT_WRAP_ID_LEN);
        if (!kept && (named || made_long_ago(id))) doomed[k++] = found[i];
    }
    destroy_handles(session, doomed, k);
}

/* One pair, by its CKA_ID. */
void import_destroy_wrapping_pair(CK_SESSION_HANDLE session, const unsigned char *wrap_id)
{
    CK_OBJECT_HANDLE found[4];
    CK_ULONG n = 0;
    if (module_backend_find_by_id(session, wrap_id, IMPORT_WRAP_ID_LEN, (CK_OBJECT_CLASS)-1, found,
                                  4, &n) == CKR_OK)
        destroy_handles(session, found, n);
}

/* SPKI of an RSA key from the modulus and exponent the object carries. */
unsigned char *import_rsa_spki(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, size_t *len,
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

/* Can the backend unwrap with OAEP-SHA-256? (SoftHSMv2 2.6.1 cannot: SHA-1 only.) Tried once
 * per process with a wrapping pair: a random secret encrypted to its public key is
 * unwrapped into a session object. CKR_OK: it can; CKR_MECHANISM_INVALID: it cannot, kept
 * for the process whatever code the HSM said it with. Two failures are no answer and are
 * not kept: CKR_KEY_HANDLE_INVALID, the wrapping key went meanwhile (a concurrent import
 * won and destroyed it), and CKR_FUNCTION_FAILED, the module's own encryption failed. */
CK_RV import_backend_oaep_sha256_probe(CK_SESSION_HANDLE session, const unsigned char *spki,
                                       size_t spki_len, CK_OBJECT_HANDLE wrap_priv)
{
    static atomic_int known = -1; /* -1: no answer yet in this process */
    int k = atomic_load(&known);
    if (k >= 0) return k ? CKR_OK : CKR_MECHANISM_INVALID;
    unsigned char secret[32], wrapped[512];
    size_t wrapped_len = sizeof(wrapped);
    if (getrandom(secret, sizeof(secret), 0) != sizeof(secret) ||
        pubkey_rsa_oaep_sha256_encrypt(spki, spki_len, secret, sizeof(secret), wrapped,
                                       &wrapped_len)) {
        log_error("could not encrypt a test secret to the wrapping key (RSA-OAEP SHA-256)");
        return CKR_FUNCTION_FAILED;
    }
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
    /* The wrapping key may be another request's outstanding pair: used under the shared
     * token lock, so that no import or GetParametersForImport destroys it meanwhile. */
    CK_OBJECT_CLASS c;
    CK_ATTRIBUTE a = {CKA_CLASS, &c, sizeof(c)};
    CK_RV still = CKR_OK;
    CK_RV rv = module_token_lock_shared();
    if (rv != CKR_OK) return rv;
    rv = module.be.fn->C_UnwrapKey(session, &m, wrap_priv, wrapped, (CK_ULONG)wrapped_len, t, 5, &h);
    if (rv != CKR_OK) still = module.be.fn->C_GetAttributeValue(session, wrap_priv, &a, 1);
    module_token_unlock();
    module_backend_destroy_own(session, &h, h ? 1 : 0);
    if (rv != CKR_OK) {
        if (still == CKR_OBJECT_HANDLE_INVALID || still == CKR_KEY_HANDLE_INVALID) {
            log_warning("the wrapping key went while trying RSA-OAEP SHA-256 on it (0x%lx)", rv);
            return CKR_KEY_HANDLE_INVALID;
        }
    }
    atomic_store(&known, rv == CKR_OK);
    log_info("the HSM %s unwrap with RSA-OAEP SHA-256 (0x%lx)", rv == CKR_OK ? "can" : "cannot",
             rv);
    return rv == CKR_OK ? CKR_OK : CKR_MECHANISM_INVALID;
}
