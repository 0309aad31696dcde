/* op_cancel.c - PKCS#11 3.0 lets a client cancel the active operation with an *Init whose
 * mechanism is NULL (pkcs11-provider and others do). The backend is driven through its 2.40
 * function list, and SoftHSMv2 2.6 answers that with CKR_ARGUMENTS_BAD and keeps the
 * operation, so the session stays busy (CKR_OPERATION_ACTIVE at the next Init).
 *
 * The module ends it instead: any call but a length query or one that returns
 * CKR_BUFFER_TOO_SMALL ends an operation, a failed one included (PKCS#11 5.2). So the
 * operation is run to its end into a scratch buffer, wiped afterwards (a decryption may
 * leave plaintext in it): the multi-part Final first, then, for an operation that takes
 * single-part calls only, the single-part call with no data. */
#include "op_cancel.h"

#include <openssl/crypto.h>
#include <stdlib.h>

#include "log.h"
#include "module.h"

#define SCRATCH_MAX (1UL << 24) /* more than any Final of a backend cipher gives back */

/* Runs one ending call into scratch space, growing it while the backend asks for more. */
static CK_RV run_to_end(CK_SESSION_HANDLE session, enum op_cancel_kind kind, bool final)
{
    CK_FUNCTION_LIST_PTR be = module.be.fn;
    CK_ULONG size = 4096;
    CK_RV rv = CKR_HOST_MEMORY;
    for (;;) {
        unsigned char *buf = calloc(1, size);
        if (!buf) return CKR_HOST_MEMORY;
        CK_ULONG len = size;
        static CK_BYTE none[1];
        switch (kind) {
        case OP_CANCEL_ENCRYPT:
            rv = final ? be->C_EncryptFinal(session, buf, &len)
                       : be->C_Encrypt(session, none, 0, buf, &len);
            break;
        case OP_CANCEL_DECRYPT:
            rv = final ? be->C_DecryptFinal(session, buf, &len)
                       : be->C_Decrypt(session, none, 0, buf, &len);
            break;
        case OP_CANCEL_SIGN:
            rv = final ? be->C_SignFinal(session, buf, &len)
                       : be->C_Sign(session, none, 0, buf, &len);
            break;
        case OP_CANCEL_VERIFY: /* a signature of zeros: it fails, and the failure ends it */
            rv = final ? be->C_VerifyFinal(session, buf, 64)
                       : be->C_Verify(session, none, 0, buf, 64);
            break;
        }
        OPENSSL_cleanse(buf, size);
        free(buf);
        if (rv != CKR_BUFFER_TOO_SMALL || len <= size || len > SCRATCH_MAX) return rv;
        size = len;
    }
}

CK_RV op_cancel_backend(CK_SESSION_HANDLE session, enum op_cancel_kind kind)
{
    CK_FUNCTION_LIST_PTR be = module.be.fn;
    CK_RV (*init)
    (CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE) =
        kind == OP_CANCEL_ENCRYPT   ? be->C_EncryptInit
        : kind == OP_CANCEL_DECRYPT ? be->C_DecryptInit
        : kind == OP_CANCEL_SIGN    ? be->C_SignInit
                                    : be->C_VerifyInit;
    CK_RV asked = init(session, NULL, CK_INVALID_HANDLE); /* a 3.0 backend cancels itself */
    if (asked == CKR_OK || asked == CKR_SESSION_HANDLE_INVALID ||
        asked == CKR_CRYPTOKI_NOT_INITIALIZED)
        return asked;
    CK_RV rv = run_to_end(session, kind, true);
    if (rv == CKR_OPERATION_NOT_INITIALIZED) rv = run_to_end(session, kind, false);
    if (rv == CKR_OPERATION_NOT_INITIALIZED) return asked; /* nothing was active */
    if (rv == CKR_BUFFER_TOO_SMALL) {
        log_error("cancel: the backend's operation wants more than %lu bytes to end; it stays "
                  "active",
                  SCRATCH_MAX);
        return CKR_FUNCTION_FAILED;
    }
    log_info("cancel: ended the session's backend operation (0x%lx)", rv);
    return CKR_OK;
}
