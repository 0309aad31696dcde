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
#include "soft_key.h"
#include "cmk_create.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
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

/* 315 slots of 104 bytes (as many as at 16 KiB when a slot held 32 bytes). */
#define ARENA_SIZE 32768
#define ARENA_SLOTS (ARENA_SIZE / sizeof(struct soft_slot))

/* Shared while a call uses unsealed material (every call after a version's first in this
 * process), exclusive to map the arena, unseal, seal, fetch a cipher or wipe: concurrent
 * calls on SOFTWARE keys do not queue behind each other's key schedules. */
static pthread_rwlock_t arena_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct soft_slot *arena; /* ARENA_SIZE bytes, page-aligned, locked */
static size_t arena_next;       /* round-robin victim when full */
/* The modes cipher_locked knows: AES's (one cipher per key size) and SM4's (16 bytes). */
static const char *const cipher_modes[] = {"GCM",     "CBC",     "ECB",    "CTR",
                                           "SM4-ECB", "SM4-CBC", "SM4-CTR"};
#define CIPHER_MODES (sizeof(cipher_modes) / sizeof(cipher_modes[0]))
static EVP_CIPHER *ciphers[CIPHER_MODES][3];

/* Key pairs: one version's private key, decoded from its PKCS#8 into OpenSSL's secure
 * heap (locked, left out of core dumps). */
struct pkey_slot {
    int64_t row; /* 0 = free */
    unsigned long version;
    EVP_PKEY *pkey;
};

#define PKEY_SLOTS 32
#define SECURE_HEAP_SIZE (1 << 20) /* about 100 RSA-4096 keys with OpenSSL's own temporaries */
#define SECURE_HEAP_MIN 32

static pthread_mutex_t pkey_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pkey_slot pkeys[PKEY_SLOTS];
static size_t pkey_next;

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
    CK_RV rv = module_backend_find_by_id(s, master_id, sizeof(master_id), CKO_SECRET_KEY,
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
            module_backend_destroy_own(s, out, 1);
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

/* Lock order: the store is never called under arena_lock or pkey_lock. A transaction
 * holds the store's lock while it drops a key's material here (purge, import), and a fork
 * holds it before every table's lock (module.c), so a store call made under one of ours
 * could deadlock with either. Sealed blobs are read before, and stored after, the lock. */

/* Seals material under the master key with key id and version as AAD into a new *blob
 * (IV || ciphertext || tag, *blob_len bytes; the caller frees it). Touches no store. */
static CK_RV seal_blob(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE master, const char *key_id,
                       unsigned long version, const unsigned char *material, size_t len,
                       unsigned char **blob, size_t *blob_len)
{
    CK_ULONG body = len + SOFT_TAG_LEN;
    *blob = malloc(SOFT_IV_LEN + body);
    if (!*blob) return CKR_HOST_MEMORY;
    CK_RV rv = module.be.fn->C_GenerateRandom(s, *blob, SOFT_IV_LEN);
    unsigned char aad[40], iv[SOFT_IV_LEN];
    seal_aad(key_id, version, aad);
    memcpy(iv, *blob, SOFT_IV_LEN);
    if (rv == CKR_OK)
        rv = master_gcm(s, master, true, iv, aad, (CK_BYTE_PTR)material, len, *blob + SOFT_IV_LEN,
                        &body);
    if (rv != CKR_OK) {
        log_error("key %s version %lu: cannot seal SOFTWARE material under the master key: 0x%lx",
                  key_id, version, rv);
        free(*blob);
        *blob = NULL;
        return rv;
    }
    *blob_len = SOFT_IV_LEN + body;
    return CKR_OK;
}

/* Stores a sealed blob for (row, version) and frees it. */
static CK_RV put_sealed(int64_t row, unsigned long version, unsigned char *blob, size_t blob_len)
{
    enum store_status st = store_sealed_put(module.store, row, version, blob, blob_len);
    free(blob);
    if (st == STORE_OK) return CKR_OK;
    return st == STORE_FULL ? CKR_DEVICE_MEMORY : CKR_DEVICE_ERROR;
}

CK_RV soft_key_seal(int64_t row, const char *key_id, unsigned long version,
                    const unsigned char *material, size_t len)
{
    CK_SESSION_HANDLE s;
    CK_RV rv = open_work_session(true, &s);
    if (rv != CKR_OK) return rv;
    CK_OBJECT_HANDLE master;
    unsigned char *blob = NULL;
    size_t blob_len = 0;
    rv = master_key(s, true, &master);
    if (rv == CKR_OK) rv = seal_blob(s, master, key_id, version, material, len, &blob, &blob_len);
    module.be.fn->C_CloseSession(s);
    return rv == CKR_OK ? put_sealed(row, version, blob, blob_len) : rv;
}

/* Fills len bytes of clear material (drawn, or read from the backend) in locked memory. */
typedef CK_RV (*material_fill)(CK_SESSION_HANDLE work, unsigned char *buf, size_t len,
                               const void *arg);

/* Material made in the arena's last slot, the scratch (never a cached version), sealed for
 * (row, key_id, version) and wiped at once. */
static CK_RV seal_from_scratch(int64_t row, const char *key_id, unsigned long version, size_t len,
                               material_fill fill, const void *arg)
{
    CK_SESSION_HANDLE s;
    CK_RV rv = open_work_session(true, &s);
    if (rv != CKR_OK) return rv;
    CK_OBJECT_HANDLE master;
    unsigned char *blob = NULL;
    size_t blob_len = 0;
    rv = master_key(s, true, &master); /* may write the store: before the arena's lock */
    if (rv != CKR_OK) goto out;
    pthread_rwlock_wrlock(&arena_lock);
    struct soft_slot *a = arena_get();
    unsigned char *material = a ? a[ARENA_SLOTS - 1].key : NULL;
    if (!material || len == 0 || len > SOFT_MAX_KEY) {
        rv = material ? CKR_KEY_SIZE_RANGE : CKR_HOST_MEMORY;
    } else {
        a[ARENA_SLOTS - 1].row = 0;
        rv = fill(s, material, len, arg);
        if (rv == CKR_OK)
            rv = seal_blob(s, master, key_id, version, material, len, &blob, &blob_len);
        OPENSSL_cleanse(material, sizeof(a[ARENA_SLOTS - 1].key));
    }
    pthread_rwlock_unlock(&arena_lock);
out:
    module.be.fn->C_CloseSession(s);
    return rv == CKR_OK ? put_sealed(row, version, blob, blob_len) : rv;
}

static CK_RV fill_random(CK_SESSION_HANDLE work, unsigned char *buf, size_t len, const void *arg)
{
    (void)arg;
    return module.be.fn->C_GenerateRandom(work, buf, len);
}

CK_RV soft_key_make(CK_SESSION_HANDLE session, int64_t row, const char *key_id,
                    unsigned long version, size_t key_bytes)
{
    (void)session;
    return seal_from_scratch(row, key_id, version, key_bytes, fill_random, NULL);
}

/* The object and the session it is visible in. */
struct object_ref {
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE obj;
};

static CK_RV fill_from_object(CK_SESSION_HANDLE work, unsigned char *buf, size_t len,
                              const void *arg)
{
    (void)work;
    const struct object_ref *ref = arg;
    CK_ATTRIBUTE value = {CKA_VALUE, buf, (CK_ULONG)len};
    CK_RV rv = module.be.fn->C_GetAttributeValue(ref->session, ref->obj, &value, 1);
    if (rv == CKR_OK && value.ulValueLen != len) rv = CKR_KEY_SIZE_RANGE;
    if (rv != CKR_OK)
        log_error("imported material: its session object does not give %zu bytes: 0x%lx", len, rv);
    return rv;
}

CK_RV soft_key_seal_object(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE obj, int64_t row,
                           const char *key_id, unsigned long version, size_t len)
{
    const struct object_ref ref = {session, obj};
    return seal_from_scratch(row, key_id, version, len, fill_from_object, &ref);
}

CK_RV soft_key_seed_drbg(void)
{
    unsigned char seed[48];
    CK_SESSION_HANDLE s;
    CK_RV rv = open_work_session(false, &s);
    if (rv != CKR_OK) return rv;
    rv = module.be.fn->C_GenerateRandom(s, seed, sizeof(seed));
    module.be.fn->C_CloseSession(s);
    /* As additional input, on top of the operating system's entropy: the backend's RNG
     * adds to the seed and can never replace it. The private DRBG (key generation) is
     * reseeded itself, not left to notice its parent's reseed. */
    EVP_RAND_CTX *primary = RAND_get0_primary(pubkey_libctx());
    EVP_RAND_CTX *priv = RAND_get0_private(pubkey_libctx());
    if (rv == CKR_OK && (!primary || !priv || EVP_RAND_reseed(primary, 0, NULL, 0, seed, 24) != 1 ||
                         EVP_RAND_reseed(priv, 0, NULL, 0, seed + 24, 24) != 1)) {
        log_error("SOFTWARE keys: cannot reseed the module's OpenSSL DRBG");
        rv = CKR_FUNCTION_FAILED;
    }
    OPENSSL_cleanse(seed, sizeof(seed));
    return rv;
}

/* Opens a version's sealed material into out (cap bytes, room for the tag included);
 * *len receives its length. */
static CK_RV unseal(int64_t row, const char *key_id, unsigned long version,
                    const unsigned char *blob, size_t blob_len, unsigned char *out, size_t cap,
                    size_t *len)
{
    CK_SESSION_HANDLE s;
    CK_RV rv = open_work_session(false, &s);
    if (rv != CKR_OK) return rv;
    CK_OBJECT_HANDLE master;
    rv = master_key(s, false, &master);
    unsigned char aad[40];
    seal_aad(key_id, version, aad);
    CK_ULONG got = cap;
    if (rv == CKR_OK) {
        rv = master_gcm(s, master, false, (unsigned char *)blob, aad,
                        (CK_BYTE_PTR)blob + SOFT_IV_LEN, blob_len - SOFT_IV_LEN, out, &got);
        if (rv != CKR_OK) {
            log_error("key %s version %lu: its sealed SOFTWARE material fails authentication "
                      "under the token master key (store row damaged, or moved from another "
                      "key or version): 0x%lx",
                      key_id, version, rv);
            OPENSSL_cleanse(out, cap);
            rv = CKR_DEVICE_ERROR;
        }
    }
    module.be.fn->C_CloseSession(s);
    (void)row;
    *len = got;
    return rv;
}

/* A version's sealed blob from the store, if it can hold between 1 and max bytes. */
static CK_RV sealed_blob(int64_t row, const char *key_id, unsigned long version, size_t max,
                         unsigned char **blob, size_t *blob_len)
{
    enum store_status st = store_sealed_get(module.store, row, version, blob, blob_len);
    if (st == STORE_OK && *blob_len > SOFT_IV_LEN + SOFT_TAG_LEN &&
        *blob_len <= SOFT_IV_LEN + max + SOFT_TAG_LEN)
        return CKR_OK;
    log_error("key %s version %lu: its sealed SOFTWARE material is %s in the store", key_id,
              version, st == STORE_OK ? "malformed" : "missing");
    free(*blob);
    *blob = NULL;
    return st == STORE_BUSY ? CKR_FUNCTION_FAILED : CKR_DEVICE_ERROR;
}

/* The slot of (row, version) if this process has it unsealed; NULL otherwise. Under
 * arena_lock, either side. */
static struct soft_slot *slot_unsealed(int64_t row, unsigned long version)
{
    for (size_t i = 0; arena && i + 1 < ARENA_SLOTS; i++)
        if (arena[i].row == row && arena[i].version == version) return &arena[i];
    return NULL;
}

/* Unseals (row, version)'s blob, read from the store before the lock, into a free or the
 * oldest slot. Under arena_lock, exclusive. */
static CK_RV material_locked(int64_t row, const char *key_id, unsigned long version,
                             const unsigned char *blob, size_t blob_len, struct soft_slot **out)
{
    struct soft_slot *a = arena_get();
    if (!a) return CKR_HOST_MEMORY;
    size_t victim = arena_next;
    for (size_t i = 0; i + 1 < ARENA_SLOTS; i++)
        if (a[i].row == 0) {
            victim = i;
            break;
        }
    if (victim == arena_next) arena_next = (arena_next + 1) % (ARENA_SLOTS - 1);
    struct soft_slot *slot = &a[victim];
    OPENSSL_cleanse(slot, sizeof(*slot));
    size_t len = 0;
    CK_RV rv = unseal(row, key_id, version, blob, blob_len, slot->key, sizeof(slot->key), &len);
    if (rv != CKR_OK) return rv;
    slot->row = row;
    slot->version = version;
    slot->len = len;
    *out = slot;
    return CKR_OK;
}

/* The cipher of a mode (AES, or SM4 when the mode says so) for a key of key_bytes, fetched
 * once from the module's own library context (never the default: a host using the
 * pkcs11 provider could recurse) when fetch is set. Under arena_lock, exclusive to fetch. */
static const EVP_CIPHER *cipher_locked(const char *mode, size_t key_bytes, bool fetch)
{
    size_t m = 0;
    while (m < CIPHER_MODES && strcmp(mode, cipher_modes[m]))
        m++;
    if (m == CIPHER_MODES) return NULL;
    int k = key_bytes == 16 ? 0 : key_bytes == 24 ? 1 : 2;
    if (!ciphers[m][k] && fetch) {
        char name[24];
        if (!strncmp(mode, "SM4-", 4))
            snprintf(name, sizeof(name), "%s", mode);
        else
            snprintf(name, sizeof(name), "AES-%zu-%s", key_bytes * 8, mode);
        ciphers[m][k] = EVP_CIPHER_fetch(pubkey_libctx(), name, NULL);
    }
    return ciphers[m][k];
}

/* HMAC, fetched once from the module's library context. Written under arena_lock,
 * exclusive. */
static EVP_MAC *hmac;

static bool key_bytes_ok(size_t len) { return len == 16 || len == 24 || len == 32; }

/* What a call on slot's material needs of OpenSSL: the cipher of mode, or HMAC when mode
 * is NULL. NULL when it is not fetched yet (fetch false) or cannot be. Under arena_lock,
 * exclusive to fetch. */
static const void *algorithm_locked(const struct soft_slot *slot, const char *mode, bool fetch)
{
    if (!mode) {
        if (!hmac && fetch) hmac = EVP_MAC_fetch(pubkey_libctx(), "HMAC", NULL);
        return hmac;
    }
    return key_bytes_ok(slot->len) ? cipher_locked(mode, slot->len, fetch) : NULL;
}

/* Takes arena_lock for a call on (row, version)'s material with mode (NULL: HMAC): shared
 * when this process has it unsealed and its algorithm fetched, else exclusive, unsealed
 * and fetched now. The caller unlocks. */
static CK_RV lock_material(int64_t row, const char *key_id, unsigned long version,
                           const char *mode, struct soft_slot **out)
{
    unsigned char *blob = NULL;
    size_t blob_len = 0;
    for (;;) {
        pthread_rwlock_rdlock(&arena_lock);
        *out = slot_unsealed(row, version);
        if (*out && algorithm_locked(*out, mode, false)) break;
        bool unsealed = *out != NULL;
        pthread_rwlock_unlock(&arena_lock);
        if (!unsealed && !blob) { /* the store, outside the lock (see seal_blob) */
            CK_RV rv = sealed_blob(row, key_id, version, SOFT_MAX_KEY, &blob, &blob_len);
            if (rv != CKR_OK) {
                pthread_rwlock_wrlock(&arena_lock); /* the caller unlocks, as on success */
                return rv;
            }
        }
        pthread_rwlock_wrlock(&arena_lock);
        *out = slot_unsealed(row, version);
        if (!*out && !blob) { /* evicted since we looked: read it after all */
            pthread_rwlock_unlock(&arena_lock);
            continue;
        }
        CK_RV rv = *out ? CKR_OK : material_locked(row, key_id, version, blob, blob_len, out);
        if (rv == CKR_OK) (void)algorithm_locked(*out, mode, true);
        free(blob);
        return rv; /* held exclusive, the caller unlocks (on failure too) */
    }
    free(blob);
    return CKR_OK;
}

CK_RV soft_key_mac_init(int64_t row, const char *key_id, unsigned long version, EVP_MAC_CTX **ctx,
                        const char *digest)
{
    struct soft_slot *slot = NULL;
    CK_RV rv = lock_material(row, key_id, version, NULL, &slot);
    *ctx = rv == CKR_OK && hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0), OSSL_PARAM_END};
    /* The MAC context keeps its own copy of the key, cleansed when it is freed. */
    if (rv == CKR_OK && (!*ctx || EVP_MAC_init(*ctx, slot->key, slot->len, params) != 1)) {
        log_error("key %s version %lu: HMAC with %s cannot start", key_id, version, digest);
        EVP_MAC_CTX_free(*ctx);
        *ctx = NULL;
        rv = CKR_FUNCTION_FAILED;
    }
    pthread_rwlock_unlock(&arena_lock);
    return rv;
}

CK_RV soft_key_cipher_init(CK_SESSION_HANDLE session, int64_t row, const char *key_id,
                           unsigned long version, EVP_CIPHER_CTX *ctx, const char *mode,
                           const unsigned char *iv, size_t iv_len, bool encrypt)
{
    (void)session;
    struct soft_slot *slot = NULL;
    CK_RV rv = lock_material(row, key_id, version, mode, &slot);
    const EVP_CIPHER *cipher = rv == CKR_OK ? algorithm_locked(slot, mode, false) : NULL;
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
    pthread_rwlock_unlock(&arena_lock);
    return rv;
}

bool soft_key_secure_heap_ready(void)
{
    /* OpenSSL's initialisation of the heap is not safe against a second caller. */
    static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&heap_lock);
    int r = CRYPTO_secure_malloc_initialized() /* ours, or the host's */
                ? 1
                : CRYPTO_secure_malloc_init(SECURE_HEAP_SIZE, SECURE_HEAP_MIN);
    if (r != 1) {
        log_error("SOFTWARE keys: OpenSSL's secure heap %s; SOFTWARE key pairs are unusable "
                  "(raise RLIMIT_MEMLOCK)",
                  r == 2 ? "cannot be locked or kept out of core dumps" : "cannot be made");
        if (r == 2) CRYPTO_secure_malloc_done();
    }
    pthread_mutex_unlock(&heap_lock);
    return r == 1;
}

/* Decodes a PKCS#8 PrivateKeyInfo in the module's library context. */
static EVP_PKEY *decode_pkcs8(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    EVP_PKEY *pkey = p8 ? EVP_PKCS82PKEY_ex(p8, pubkey_libctx(), NULL) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears its copy of the private key */
    return pkey;
}

/* Unseals and decodes (row, version)'s blob, read from the store before the lock, into a
 * free or the oldest slot. Under pkey_lock. */
static CK_RV pkey_load_locked(int64_t row, const char *key_id, unsigned long version,
                              const unsigned char *blob, size_t blob_len, struct pkey_slot **out)
{
    unsigned char *der = NULL;
    size_t len = 0;
    CK_RV rv = CKR_HOST_MEMORY;
    if (!soft_key_secure_heap_ready()) goto out;
    /* The DER lives in the secure heap for the moment it is decoded, then is wiped. */
    der = OPENSSL_secure_malloc(blob_len);
    rv = der ? unseal(row, key_id, version, blob, blob_len, der, blob_len, &len) : CKR_HOST_MEMORY;
    if (rv != CKR_OK) goto out;
    EVP_PKEY *pkey = decode_pkcs8(der, len);
    if (!pkey) {
        log_error("key %s version %lu: its unsealed SOFTWARE material is not a private key "
                  "OpenSSL can decode (PKCS#8)",
                  key_id, version);
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    size_t victim = pkey_next;
    for (size_t i = 0; i < PKEY_SLOTS; i++)
        if (pkeys[i].row == 0) {
            victim = i;
            break;
        }
    if (victim == pkey_next) pkey_next = (pkey_next + 1) % PKEY_SLOTS;
    EVP_PKEY_free(pkeys[victim].pkey);
    pkeys[victim] = (struct pkey_slot){row, version, pkey};
    *out = &pkeys[victim];
out:
    if (der) OPENSSL_secure_clear_free(der, blob_len);
    return rv;
}

static struct pkey_slot *pkey_cached_locked(int64_t row, unsigned long version)
{
    for (size_t i = 0; i < PKEY_SLOTS; i++)
        if (pkeys[i].pkey && pkeys[i].row == row && pkeys[i].version == version) return &pkeys[i];
    return NULL;
}

CK_RV soft_key_pkey(int64_t row, const char *key_id, unsigned long version, EVP_PKEY **out)
{
    unsigned char *blob = NULL;
    size_t blob_len = 0;
    pthread_mutex_lock(&pkey_lock);
    struct pkey_slot *slot = pkey_cached_locked(row, version);
    CK_RV rv = CKR_OK;
    while (!slot && rv == CKR_OK) {
        if (!blob) { /* the store, outside the lock (see seal_blob) */
            pthread_mutex_unlock(&pkey_lock);
            rv = sealed_blob(row, key_id, version, SOFT_MAX_PKCS8, &blob, &blob_len);
            pthread_mutex_lock(&pkey_lock);
            if (rv == CKR_OK) slot = pkey_cached_locked(row, version); /* loaded meanwhile */
        } else {
            rv = pkey_load_locked(row, key_id, version, blob, blob_len, &slot);
        }
    }
    if (rv == CKR_OK && EVP_PKEY_up_ref(slot->pkey) != 1) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK) *out = slot->pkey;
    pthread_mutex_unlock(&pkey_lock);
    free(blob);
    return rv;
}

static void pkeys_forget(int64_t row)
{
    pthread_mutex_lock(&pkey_lock);
    for (size_t i = 0; i < PKEY_SLOTS; i++)
        if (pkeys[i].pkey && (row == 0 || pkeys[i].row == row)) {
            EVP_PKEY_free(pkeys[i].pkey); /* the secure heap clears what it frees */
            pkeys[i] = (struct pkey_slot){0, 0, NULL};
        }
    if (row == 0) pkey_next = 0;
    pthread_mutex_unlock(&pkey_lock);
}

void soft_key_forget(int64_t row)
{
    pkeys_forget(row);
    pthread_rwlock_wrlock(&arena_lock);
    if (arena)
        for (size_t i = 0; i < ARENA_SLOTS; i++)
            if (arena[i].row == row) OPENSSL_cleanse(&arena[i], sizeof(arena[i]));
    pthread_rwlock_unlock(&arena_lock);
}

void soft_key_cleanup(void)
{
    pkeys_forget(0);
    pthread_rwlock_wrlock(&arena_lock);
    if (arena) {
        OPENSSL_cleanse(arena, ARENA_SIZE);
        munlock(arena, ARENA_SIZE);
        munmap(arena, ARENA_SIZE);
        arena = NULL;
    }
    arena_next = 0;
    EVP_MAC_free(hmac);
    hmac = NULL;
    for (size_t m = 0; m < CIPHER_MODES; m++)
        for (int k = 0; k < 3; k++) {
            EVP_CIPHER_free(ciphers[m][k]);
            ciphers[m][k] = NULL;
        }
    pthread_rwlock_unlock(&arena_lock);
}

void soft_key_at_fork(enum fork_phase p)
{
    if (p == FORK_PREPARE) fork_phase_rwlock(&arena_lock, p);
    fork_phase_mutex(&pkey_lock, p);
    if (p != FORK_PREPARE) fork_phase_rwlock(&arena_lock, p);
}
