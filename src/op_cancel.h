/* op_cancel.h - PKCS#11 3.0's cancel (an *Init with a NULL mechanism) on a backend
 * operation, for backends that do not offer it. */
#ifndef CMKP11_OP_CANCEL_H
#define CMKP11_OP_CANCEL_H

#include <p11-kit/pkcs11.h>

enum op_cancel_kind { OP_CANCEL_ENCRYPT, OP_CANCEL_DECRYPT, OP_CANCEL_SIGN, OP_CANCEL_VERIFY };

/* Ends the session's active backend operation of that kind: CKR_OK when one was ended,
 * the backend's answer to the NULL mechanism when none was active. */
CK_RV op_cancel_backend(CK_SESSION_HANDLE session, enum op_cancel_kind kind);

#endif
