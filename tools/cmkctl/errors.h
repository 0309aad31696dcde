/* errors.h - cloud-style error codes, their exit codes, and PKCS#11 return-code names. */
#ifndef CMKCTL_ERRORS_H
#define CMKCTL_ERRORS_H

#include <p11-kit/pkcs11.h>

/* Exit codes: one per class of failure, so scripts can branch without parsing JSON. */
enum ctl_exit {
    EXIT_OK = 0,
    EXIT_NEGATIVE = 1,  /* the command ran and the answer is "no" (bad signature, unhealthy) */
    EXIT_USAGE = 2,     /* bad command line or parameter value */
    EXIT_NOT_FOUND = 3, /* the key does not exist */
    EXIT_STATE = 4,     /* the key's state, spec or the module does not allow it */
    EXIT_AUTH = 5,      /* login failed or no PIN */
    EXIT_BACKEND = 6,   /* module, token or store failure */
    EXIT_LIMIT = 7,     /* a quota was reached */
};

enum err_code {
    KMS_INVALID_ACTION,
    KMS_INVALID_PARAMETER,
    KMS_MISSING_PARAMETER,
    KMS_INVALID_ALIAS,
    KMS_ALIAS_EXISTS,
    KMS_INVALID_KEY_USAGE,
    KMS_INVALID_TYPE,
    KMS_TAG_KEYS_DUPLICATED,
    KMS_INVALID_CIPHERTEXT,
    KMS_NOT_FOUND,
    KMS_DISABLED,
    KMS_STATE,
    KMS_UNSUPPORTED,
    KMS_UNSUPPORTED_SPEC,
    KMS_UNAUTHORIZED,
    KMS_INTERNAL,
    KMS_LIMIT,
    KMS_INVALID_IMPORT_TOKEN,
    KMS_EXPIRED_IMPORT_TOKEN,
    KMS_INCORRECT_KEY_MATERIAL,
    KMS_CODE_COUNT
};

struct ctl_error {
    int set;
    enum err_code code;
    char message[1024];
};

const char *err_code_name(enum err_code code);
enum ctl_exit err_code_exit(enum err_code code);

/* Records the first error only: later ones are consequences. Returns the exit code. */
int err_set(struct ctl_error *e, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The code a return value means when the caller knows nothing more specific. */
enum err_code err_code_for_rv(CK_RV rv);

/* "CKR_PIN_INCORRECT", or "CKR_0x..." for values without a name here. */
const char *ckr_name(CK_RV rv, char buf[32]);

#endif
