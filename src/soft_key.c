/* soft_key.c - SOFTWARE protection level: the token master key, sealing and unsealing,
 * and the locked arena that holds unsealed material.
 *
 * The master key (AES-256, sensitive, non-extractable, ENCRYPT/DECRYPT only) lives in
 * the backend under a fixed CKA_ID and is made once, inside the store's write
 * transaction, so two processes making their first SOFTWARE key at once make one. Each
 * version's material is drawn from the backend's RNG and sealed by the backend with
 * AES-256-GCM under it, AAD = key id || version (4 bytes, big-endian): a sealed row
 * moved to another key or version fails to open. Clear material exists only in the
 * arena (mlock'ed, MADV_DONTDUMP) and, during one operation, in OpenSSL's cipher
 * context. */
#include "cmk_create.h"
#include "soft_key.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cmkp11/cmkp11.h"
#include "log.h"
#include "module.h"
#include "pubkey.h"

static const unsigned char master_id[] = {'C', 'M', 'K', 0x00, 'm', 'a', 's', 't', 'e', 'r'};
#define MASTER_LABEL "cmkp11/master"

/* One unsealed version. */
struct soft_slot {
    int64_t row; /* 0 = free */
    unsigned long version;
    size_t len;
    unsigned char key[SOFT_MAX_KEY + SOFT_TAG_LEN]; /* the backend wants room for the tag */
};

#define ARENA_SIZE 16384
#define ARENA_SLOTS (ARENA_SIZE / sizeof(struct soft_slot))

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static struct soft_slot *arena; /* ARENA_SIZE bytes, page-aligned, locked */
static size_t arena_next;       /* round-robin victim when full */
/* The modes cipher_locked knows: AES's (one cipher per key size) and SM4's (16 bytes). */
static const char *const cipher_modes[] = {"GCM",     "CBC",     "ECB",    "CTR",
                                           "SM4-ECB", "SM4-CBC", "SM4-CTR"};
#define CIPHER_MODES (sizeof(cipher_modes) / sizeof(cipher_modes[0]))
static EVP_CIPHER *ciphers[CIPHER_MODES][3];

static const CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

/* A session of our own for the master key's work: the client's session may have an
 * operation of its own running in the backend. Login state is the application's. */
static CK_RV open_work_session(bool rw, CK_SESSION_HANDLE *out)
{
    return module.be.fn->C_OpenSession(
        module.be.slot, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0), NULL, NULL, out);
}

static CK_RV find_master(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out, CK_ULONG *n)
{
    CK_OBJECT_HANDLE found[2];
    CK_RV rv = backend_find_by_id(&module.be, s, master_id, sizeof(master_id), CKO_SECRET_KEY,
                                  found, 2, n);
    if (rv == CKR_OK && *n > 0) *out = found[0];
    if (rv == CKR_OK && *n > 1) log_error("the backend holds %lu token master keys", *n);
    return rv;
}

static CK_RV generate_master(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out)
{
    const CK_ATTRIBUTE usage[] = {
        {CKA_ENCRYPT, (void *)&ck_true, 1}, {CKA_DECRYPT, (void *)&ck_true, 1},
        {CKA_SIGN, (void *)&ck_false, 1},   {CKA_VERIFY, (void *)&ck_false, 1},
        {CKA_WRAP, (void *)&ck_false, 1},   {CKA_UNWRAP, (void *)&ck_false, 1},
    };
    return cmk_create_internal_key(s, CKM_AES_KEY_GEN, CKK_AES, usage,
                                   sizeof(usage) / sizeof(usage[0]), master_id, sizeof(master_id),
                                   MASTER_LABEL, out);
}

/* The master key, made on first need: looked up, and if absent looked up again and made
 * under the store's write lock, which serialises the processes sharing the token. */
static CK_RV master_key(CK_SESSION_HANDLE s, bool create, CK_OBJECT_HANDLE *out)
{
    CK_ULONG n = 0;
    CK_RV rv = find_master(s, out, &n);
    if (rv != CKR_OK || n > 0) return rv;
    if (!create) {
        log_error("SOFTWARE keys: the token master key (CKA_ID \"CMK\\0master\") is missing "
                  "from the backend token");
        return CKR_DEVICE_ERROR;
    }
    if (store_begin(module.store) != STORE_OK) return CKR_DEVICE_ERROR;
    rv = find_master(s, out, &n);
    if (rv == CKR_OK && n == 0) {
        rv = generate_master(s, out);
        enum store_status st = STORE_OK;
        if (rv == CKR_OK)
            st = store_audit(module.store, "CreateMasterKey", NULL,
                             "AES-256 token master key for SOFTWARE keys made in the backend");
        if (rv == CKR_OK && st != STORE_OK) {
            module_token_lock();
            module.be.fn->C_DestroyObject(s, *out);
            module_token_unlock();
            rv = CKR_DEVICE_ERROR;
        }
        if (rv == CKR_OK)
            log_info("SOFTWARE keys: made the token master key in the backend");
        else
            log_error("SOFTWARE keys: the backend cannot make the token master key: 0x%lx", rv);
    }
    if (rv == CKR_OK && store_commit(module.store) == STORE_OK) return CKR_OK;
    if (rv == CKR_OK) rv = CKR_DEVICE_ERROR;
    store_rollback(module.store);
    return rv;
}

static void seal_aad(const char *key_id, unsigned long version, unsigned char aad[40])
{
    memcpy(aad, key_id, 36);
    aad[36] = (unsigned char)(version >> 24);
    aad[37] = (unsigned char)(version >> 16);
    aad[38] = (unsigned char)(version >> 8);
    aad[39] = (unsigned char)version;
}

/* One AES-GCM call of the backend under the master key. */
static CK_RV master_gcm(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE master, bool encrypt,
                        unsigned char *iv, unsigned char aad[40], CK_BYTE_PTR in, CK_ULONG in_len,
                        CK_BYTE_PTR out, CK_ULONG *out_len)
{
    CK_GCM_PARAMS gcm = {iv, SOFT_IV_LEN, SOFT_IV_LEN * 8, aad, 40, SOFT_TAG_LEN * 8};
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    CK_RV rv = encrypt ? module.be.fn->C_EncryptInit(s, &mech, master)
                       : module.be.fn->C_DecryptInit(s, &mech, master);
    if (rv == CKR_OK)
        rv = encrypt ? module.be.fn->C_Encrypt(s, in, in_len, out, out_len)
                     : module.be.fn->C_Decrypt(s, in, in_len, out, out_len);
    return rv;
}

static struct soft_slot *arena_get(void)
{
    if (arena) return arena;
    /* Locked from the start (MAP_LOCKED) and again by mlock, which alone reports failure
     * (and which sanitizer runtimes turn into a no-op). */
    void *p = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    if (p == MAP_FAILED) {
        log_error("SOFTWARE keys: cannot map locked key memory (%s); SOFTWARE keys are "
                  "unusable (raise RLIMIT_MEMLOCK)",
                  strerror(errno));
        return NULL;
    }
    if (mlock(p, ARENA_SIZE) != 0 || madvise(p, ARENA_SIZE, MADV_DONTDUMP) != 0) {
        log_error("SOFTWARE keys: cannot lock key memory or keep it out of core dumps (%s); "
                  "SOFTWARE keys are unusable (raise RLIMIT_MEMLOCK)",
                  strerror(errno));
        munmap(p, ARENA_SIZE);
        return NULL;
    }
    arena = p;
    return arena;
}

CK_RV soft_key_make(CK_SESSION_HANDLE session, int64_t row, const char *key_id,
                    unsigned long version, size_t key_bytes)
{
    (void)session;
    CK_SESSION_HANDLE s;
    CK_RV rv = open_work_session(true, &s);
    if (rv != CKR_OK) return rv;
    CK_OBJECT_HANDLE master;
    unsigned char blob[SOFT_IV_LEN + SOFT_MAX_KEY + SOFT_TAG_LEN];
    pthread_mutex_lock(&arena_lock);
    struct soft_slot *a = arena_get();
    /* The clear material is drawn straight into locked memory. */
    unsigned char *material = a ? a[ARENA_SLOTS - 1].key : NULL;
    if (!material || key_bytes > SOFT_MAX_KEY) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    a[ARENA_SLOTS - 1].row = 0;
    rv = master_key(s, true, &master);
    if (rv == CKR_OK) rv = module.be.fn->C_GenerateRandom(s, material, key_bytes);
    if (rv == CKR_OK) rv = module.be.fn->C_GenerateRandom(s, blob, SOFT_IV_LEN);
    unsigned char aad[40];
    seal_aad(key_id, version, aad);
    CK_ULONG body = sizeof(blob) - SOFT_IV_LEN;
    unsigned char iv[SOFT_IV_LEN];
    memcpy(iv, blob, SOFT_IV_LEN);
    if (rv == CKR_OK)
        rv = master_gcm(s, master, true, iv, aad, material, key_bytes, blob + SOFT_IV_LEN, &body);
    OPENSSL_cleanse(material, sizeof(a[ARENA_SLOTS - 1].key));
    if (rv != CKR_OK) {
        log_error("key %s version %lu: cannot seal SOFTWARE material under the master key: 0x%lx",
                  key_id, version, rv);
        goto out;
    }
    enum store_status st = store_sealed_put(module.store, row, version, blob, SOFT_IV_LEN + body);
    if (st != STORE_OK) rv = st == STORE_FULL ? CKR_DEVICE_MEMORY : CKR_DEVICE_ERROR;
out:
    pthread_mutex_unlock(&arena_lock);
    module.be.fn->C_CloseSession(s);
    return rv;
}

/* The slot of (row, version), unsealed now if needed. Under arena_lock. */
static CK_RV material_locked(int64_t row, const char *key_id, unsigned long version,
                             struct soft_slot **out)
{
    struct soft_slot *a = arena_get();
    if (!a) return CKR_HOST_MEMORY;
    for (size_t i = 0; i + 1 < ARENA_SLOTS; i++) {
        if (a[i].row == row && a[i].version == version) {
            *out = &a[i];
            return CKR_OK;
        }
    }
    unsigned char *blob = NULL;
    size_t blob_len = 0;
    enum store_status st = store_sealed_get(module.store, row, version, &blob, &blob_len);
    if (st != STORE_OK || blob_len <= SOFT_IV_LEN + SOFT_TAG_LEN ||
        blob_len > SOFT_IV_LEN + SOFT_MAX_KEY + SOFT_TAG_LEN) {
        log_error("key %s version %lu: its sealed SOFTWARE material is %s in the store", key_id,
                  version, st == STORE_OK ? "malformed" : "missing");
        free(blob);
        return st == STORE_BUSY ? CKR_FUNCTION_FAILED : CKR_DEVICE_ERROR;
    }
    CK_SESSION_HANDLE s;
    CK_RV rv = open_work_session(false, &s);
    if (rv != CKR_OK) {
        free(blob);
        return rv;
    }
    CK_OBJECT_HANDLE master;
    rv = master_key(s, false, &master);
    size_t victim = arena_next;
    for (size_t i = 0; i + 1 < ARENA_SLOTS; i++)
        if (a[i].row == 0) {
            victim = i;
            break;
        }
    if (victim == arena_next) arena_next = (arena_next + 1) % (ARENA_SLOTS - 1);
    struct soft_slot *slot = &a[victim];
    OPENSSL_cleanse(slot, sizeof(*slot));
    unsigned char aad[40];
    seal_aad(key_id, version, aad);
    CK_ULONG len = sizeof(slot->key);
    if (rv == CKR_OK) {
        rv = master_gcm(s, master, false, blob, aad, blob + SOFT_IV_LEN, blob_len - SOFT_IV_LEN,
                        slot->key, &len);
        if (rv != CKR_OK) {
            log_error("key %s version %lu: its sealed SOFTWARE material fails authentication "
                      "under the token master key (store row damaged, or moved from another "
                      "key or version): 0x%lx",
                      key_id, version, rv);
            OPENSSL_cleanse(slot, sizeof(*slot));
            rv = CKR_DEVICE_ERROR;
        }
    }
    module.be.fn->C_CloseSession(s);
    free(blob);
    if (rv != CKR_OK) return rv;
    slot->row = row;
    slot->version = version;
    slot->len = len;
    *out = slot;
    return CKR_OK;
}

/* The cipher of a mode (AES, or SM4 when the mode says so) for a key of key_bytes, fetched
 * once from the module's own library context (never the default: a host using the
 * pkcs11 provider could recurse). Under arena_lock. */
static const EVP_CIPHER *cipher_locked(const char *mode, size_t key_bytes)
{
    size_t m = 0;
    while (m < CIPHER_MODES && strcmp(mode, cipher_modes[m]))
        m++;
    if (m == CIPHER_MODES) return NULL;
    int k = key_bytes == 16 ? 0 : key_bytes == 24 ? 1 : 2;
    if (!ciphers[m][k]) {
        char name[24];
        if (!strncmp(mode, "SM4-", 4))
            snprintf(name, sizeof(name), "%s", mode);
        else
            snprintf(name, sizeof(name), "AES-%zu-%s", key_bytes * 8, mode);
        ciphers[m][k] = EVP_CIPHER_fetch(pubkey_libctx(), name, NULL);
    }
    return ciphers[m][k];
}

CK_RV soft_key_cipher_init(CK_SESSION_HANDLE session, int64_t row, const char *key_id,
                           unsigned long version, EVP_CIPHER_CTX *ctx, const char *mode,
                           const unsigned char *iv, size_t iv_len, bool encrypt)
{
    (void)session;
    pthread_mutex_lock(&arena_lock);
    struct soft_slot *slot = NULL;
    CK_RV rv = material_locked(row, key_id, version, &slot);
    const EVP_CIPHER *cipher = NULL;
    if (rv == CKR_OK && (slot->len == 16 || slot->len == 24 || slot->len == 32))
        cipher = cipher_locked(mode, slot->len);
    if (rv == CKR_OK && !cipher) {
        log_error("key %s version %lu: no AES-%s cipher for %zu bytes of material", key_id, version,
                  mode, slot->len);
        rv = CKR_DEVICE_ERROR;
    }
    if (rv == CKR_OK) {
        OSSL_PARAM params[2] = {OSSL_PARAM_END, OSSL_PARAM_END};
        size_t ivl = iv_len;
        if (!strcmp(mode, "GCM")) params[0] = OSSL_PARAM_construct_size_t("ivlen", &ivl);
        if (EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, encrypt ? 1 : 0, params) != 1 ||
            EVP_CipherInit_ex2(ctx, NULL, slot->key, iv, encrypt ? 1 : 0, NULL) != 1)
            rv = CKR_FUNCTION_FAILED;
    }
    pthread_mutex_unlock(&arena_lock);
    return rv;
}

void soft_key_forget(int64_t row)
{
    pthread_mutex_lock(&arena_lock);
    if (arena)
        for (size_t i = 0; i < ARENA_SLOTS; i++)
            if (arena[i].row == row) OPENSSL_cleanse(&arena[i], sizeof(arena[i]));
    pthread_mutex_unlock(&arena_lock);
}

void soft_key_cleanup(void)
{
    pthread_mutex_lock(&arena_lock);
    if (arena) {
        OPENSSL_cleanse(arena, ARENA_SIZE);
        munlock(arena, ARENA_SIZE);
        munmap(arena, ARENA_SIZE);
        arena = NULL;
    }
    arena_next = 0;
    for (size_t m = 0; m < CIPHER_MODES; m++)
        for (int k = 0; k < 3; k++) {
            EVP_CIPHER_free(ciphers[m][k]);
            ciphers[m][k] = NULL;
        }
    pthread_mutex_unlock(&arena_lock);
}
