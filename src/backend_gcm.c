/* backend_gcm.c - a single-part AES-GCM call in the backend that never leaves its
 * operation running: the backend session is the application's, so an operation left
 * active there would refuse every later Init in that session (CKR_OPERATION_ACTIVE). */
#include "backend_gcm.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "module.h"
#include "util.h"

/* Room beyond input plus tag: a backend may ask up to a block more than it will write. */
#define SLACK 16
/* A backend asking for more than this beyond the input is not answered: it is broken. */
#define MOST_EXTRA 1024

/* The codes that say what failed outside the ciphertext, kept for the application. */
static bool code_is_telling(CK_RV rv)
{
    switch (rv) {
    case CKR_HOST_MEMORY:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_REMOVED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_OPERATION_ACTIVE:
    case CKR_FUNCTION_CANCELED:
    case CKR_DATA_LEN_RANGE:
    case CKR_ENCRYPTED_DATA_LEN_RANGE: return true;
    default: return false;
    }
}

static CK_RV call(CK_SESSION_HANDLE session, bool encrypt, const unsigned char *in, CK_ULONG in_len,
                  unsigned char *buf, CK_ULONG_PTR len)
{
    /* A NULL input is refused before the backend looks at its operation, which would
     * then stay active: give an empty one a real address. */
    CK_BYTE_PTR src = in ? (CK_BYTE_PTR)in : (CK_BYTE_PTR) "";
    return encrypt ? module.be.fn->C_Encrypt(session, src, in_len, buf, len)
                   : module.be.fn->C_Decrypt(session, src, in_len, buf, len);
}

/* Ends an operation the backend still holds: a 3.0 backend cancels on a NULL mechanism;
 * an older one refuses, and the log says the session may stay busy. */
static void cancel(CK_SESSION_HANDLE session, bool encrypt)
{
    CK_RV rv = encrypt ? module.be.fn->C_EncryptInit(session, NULL, CK_INVALID_HANDLE)
                       : module.be.fn->C_DecryptInit(session, NULL, CK_INVALID_HANDLE);
    if (rv != CKR_OK)
        log_error("backend AES-GCM: cannot cancel the backend's %s operation (0x%lx); its "
                  "session may refuse new operations",
                  encrypt ? "encrypt" : "decrypt", rv);
}

/* The material is a CMK version's, which a purge or a deletion of imported material
 * destroys: the whole operation, Init to its end, is one shared token-lock section
 * (module.h: the lifetime of the module's own backend objects). */
CK_RV backend_gcm_run(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material,
                      const CK_GCM_PARAMS *gcm, bool encrypt, const unsigned char *in,
                      CK_ULONG in_len, unsigned char *out, CK_ULONG_PTR out_len)
{
    const char *what = encrypt ? "encrypt" : "decrypt";
    CK_MECHANISM mech = {CKM_AES_GCM, (void *)gcm, sizeof(*gcm)};
    CK_ULONG cap = in_len + gcm->ulTagBits / 8 + SLACK, got = cap;
    unsigned char *buf = NULL;
    CK_RV rv = module_token_lock_shared();
    if (rv != CKR_OK) return rv;
    rv = encrypt ? module.be.fn->C_EncryptInit(session, &mech, material)
                       : module.be.fn->C_DecryptInit(session, &mech, material);
    if (rv != CKR_OK) {
        log_warning("backend AES-GCM %s: the backend refused to start (0x%lx)", what, rv);
        if (!code_is_telling(rv)) rv = CKR_DEVICE_ERROR;
        goto out;
    }
    util_pause_point("backend-gcm:running");
    buf = malloc(cap);
    if (buf) rv = call(session, encrypt, in, in_len, buf, &got);
    if (buf && rv == CKR_BUFFER_TOO_SMALL && got > cap && got - in_len <= MOST_EXTRA) {
        /* Still running: answer what it asks, so that the operation ends. */
        unsigned char *bigger = malloc(got);
        OPENSSL_cleanse(buf, cap);
        free(buf);
        buf = bigger;
        cap = got;
        if (buf) rv = call(session, encrypt, in, in_len, buf, &got);
    }
    if (!buf || rv == CKR_BUFFER_TOO_SMALL) {
        log_error("backend AES-GCM %s of %lu bytes: %s", what, in_len,
                  buf ? "the backend wants an unreasonable output buffer" : "out of memory");
        cancel(session, encrypt);
        rv = buf ? CKR_DEVICE_ERROR : CKR_HOST_MEMORY;
        goto out;
    }
    /* SoftHSMv2 reports a tag that does not verify as CKR_GENERAL_ERROR. */
    if (!encrypt && (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_GENERAL_ERROR)) {
        rv = CKR_ENCRYPTED_DATA_INVALID;
        goto out;
    }
    if (rv != CKR_OK) {
        log_warning("backend AES-GCM %s of %lu bytes failed (0x%lx)", what, in_len, rv);
        if (!code_is_telling(rv)) rv = CKR_DEVICE_ERROR;
        goto out;
    }
    if (got > *out_len) {
        log_error("backend AES-GCM %s of %lu bytes gave %lu bytes, more than the %lu expected",
                  what, in_len, got, *out_len);
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    memcpy(out, buf, got);
    *out_len = got;
out:
    module_token_unlock();
    if (buf) {
        OPENSSL_cleanse(buf, cap);
        free(buf);
    }
    return rv;
}
