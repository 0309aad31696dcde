/* errors.c - the error vocabulary of the clouds (Tencent first, where it has a code) and
 * the exit code of each. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

#include "cmkp11/cmkp11.h"

static const struct {
    const char *name;
    enum ctl_exit exit;
} codes[KMS_CODE_COUNT] = {
    [KMS_INVALID_ACTION] = {"InvalidAction", EXIT_USAGE},
    [KMS_INVALID_PARAMETER] = {"InvalidParameter", EXIT_USAGE},
    [KMS_MISSING_PARAMETER] = {"MissingParameter", EXIT_USAGE},
    [KMS_INVALID_ALIAS] = {"InvalidParameterValue.InvalidAlias", EXIT_USAGE},
    [KMS_ALIAS_EXISTS] = {"InvalidParameterValue.AliasAlreadyExists", EXIT_USAGE},
    [KMS_INVALID_KEY_USAGE] = {"InvalidParameterValue.InvalidKeyUsage", EXIT_USAGE},
    [KMS_INVALID_TYPE] = {"InvalidParameterValue.InvalidType", EXIT_USAGE},
    [KMS_TAG_KEYS_DUPLICATED] = {"InvalidParameterValue.TagKeysDuplicated", EXIT_USAGE},
    [KMS_INVALID_CIPHERTEXT] = {"InvalidParameterValue.InvalidCiphertext", EXIT_USAGE},
    [KMS_NOT_FOUND] = {"ResourceUnavailable.CmkNotFound", EXIT_NOT_FOUND},
    [KMS_DISABLED] = {"ResourceUnavailable.CmkDisabled", EXIT_STATE},
    [KMS_STATE] = {"FailedOperation.CmkStateNotSupported", EXIT_STATE},
    [KMS_UNSUPPORTED] = {"UnsupportedOperation", EXIT_STATE},
    [KMS_UNSUPPORTED_SPEC] = {"UnsupportedOperation.UnsupportedKeyUsageInCurrentRegion",
                              EXIT_STATE},
    [KMS_UNAUTHORIZED] = {"UnauthorizedOperation", EXIT_AUTH},
    [KMS_INTERNAL] = {"InternalError", EXIT_BACKEND},
    [KMS_LIMIT] = {"LimitExceeded.CmkLimitExceeded", EXIT_LIMIT},
    [KMS_INVALID_IMPORT_TOKEN] = {"InvalidImportToken", EXIT_USAGE},
    [KMS_EXPIRED_IMPORT_TOKEN] = {"ExpiredImportToken", EXIT_USAGE},
    [KMS_INCORRECT_KEY_MATERIAL] = {"IncorrectKeyMaterial", EXIT_USAGE},
};

const char *err_code_name(enum err_code code) { return codes[code].name; }

enum ctl_exit err_code_exit(enum err_code code) { return codes[code].exit; }

int err_set(struct ctl_error *e, enum err_code code, const char *fmt, ...)
{
    if (!e->set) {
        e->set = 1;
        e->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
    }
    return (int)codes[e->code].exit;
}

enum err_code err_code_for_rv(CK_RV rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_USER_PIN_NOT_INITIALIZED:
    case CKR_USER_TYPE_INVALID: return KMS_UNAUTHORIZED;
    case CKR_DEVICE_MEMORY: return KMS_LIMIT;
    case CKR_MECHANISM_INVALID:
    case CKR_CURVE_NOT_SUPPORTED:
    case CKR_KEY_SIZE_RANGE: return KMS_UNSUPPORTED_SPEC;
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_ACTION_PROHIBITED: return KMS_STATE;
    case CKR_ATTRIBUTE_READ_ONLY:
    case CKR_ATTRIBUTE_TYPE_INVALID:
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_UNEXTRACTABLE: return KMS_UNSUPPORTED;
    case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_TEMPLATE_INCONSISTENT:
    case CKR_TEMPLATE_INCOMPLETE:
    case CKR_DATA_INVALID:
    case CKR_DATA_LEN_RANGE:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_ARGUMENTS_BAD: return KMS_INVALID_PARAMETER;
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_WRAPPED_KEY_INVALID:
    case CKR_WRAPPED_KEY_LEN_RANGE: return KMS_INVALID_CIPHERTEXT;
    case CKR_CMK_IMPORT_TOKEN_EXPIRED: return KMS_EXPIRED_IMPORT_TOKEN;
    case CKR_CMK_INCORRECT_KEY_MATERIAL: return KMS_INCORRECT_KEY_MATERIAL;
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID: return KMS_NOT_FOUND;
    default: return KMS_INTERNAL;
    }
}

const char *ckr_name(CK_RV rv, char buf[32])
{
    switch (rv) {
#define NAME(x)                                                                                    \
    case x: return #x;
        NAME(CKR_OK)
        NAME(CKR_HOST_MEMORY)
        NAME(CKR_SLOT_ID_INVALID)
        NAME(CKR_GENERAL_ERROR)
        NAME(CKR_FUNCTION_FAILED)
        NAME(CKR_ARGUMENTS_BAD)
        NAME(CKR_ATTRIBUTE_READ_ONLY)
        NAME(CKR_ATTRIBUTE_SENSITIVE)
        NAME(CKR_ATTRIBUTE_TYPE_INVALID)
        NAME(CKR_ATTRIBUTE_VALUE_INVALID)
        NAME(CKR_ACTION_PROHIBITED)
        NAME(CKR_DATA_INVALID)
        NAME(CKR_DATA_LEN_RANGE)
        NAME(CKR_ENCRYPTED_DATA_INVALID)
        NAME(CKR_ENCRYPTED_DATA_LEN_RANGE)
        NAME(CKR_DEVICE_ERROR)
        NAME(CKR_DEVICE_MEMORY)
        NAME(CKR_DEVICE_REMOVED)
        NAME(CKR_FUNCTION_NOT_SUPPORTED)
        NAME(CKR_KEY_HANDLE_INVALID)
        NAME(CKR_KEY_SIZE_RANGE)
        NAME(CKR_KEY_TYPE_INCONSISTENT)
        NAME(CKR_KEY_FUNCTION_NOT_PERMITTED)
        NAME(CKR_KEY_UNEXTRACTABLE)
        NAME(CKR_MECHANISM_INVALID)
        NAME(CKR_MECHANISM_PARAM_INVALID)
        NAME(CKR_OBJECT_HANDLE_INVALID)
        NAME(CKR_OPERATION_ACTIVE)
        NAME(CKR_OPERATION_NOT_INITIALIZED)
        NAME(CKR_PIN_INCORRECT)
        NAME(CKR_PIN_INVALID)
        NAME(CKR_PIN_LEN_RANGE)
        NAME(CKR_PIN_EXPIRED)
        NAME(CKR_PIN_LOCKED)
        NAME(CKR_SESSION_HANDLE_INVALID)
        NAME(CKR_SESSION_READ_ONLY)
        NAME(CKR_SIGNATURE_INVALID)
        NAME(CKR_SIGNATURE_LEN_RANGE)
        NAME(CKR_TEMPLATE_INCOMPLETE)
        NAME(CKR_TEMPLATE_INCONSISTENT)
        NAME(CKR_TOKEN_NOT_PRESENT)
        NAME(CKR_TOKEN_NOT_RECOGNIZED)
        NAME(CKR_USER_ALREADY_LOGGED_IN)
        NAME(CKR_USER_NOT_LOGGED_IN)
        NAME(CKR_USER_PIN_NOT_INITIALIZED)
        NAME(CKR_USER_TYPE_INVALID)
        NAME(CKR_BUFFER_TOO_SMALL)
        NAME(CKR_CRYPTOKI_NOT_INITIALIZED)
        NAME(CKR_CRYPTOKI_ALREADY_INITIALIZED)
        NAME(CKR_CURVE_NOT_SUPPORTED)
        NAME(CKR_WRAPPED_KEY_INVALID)
        NAME(CKR_WRAPPED_KEY_LEN_RANGE)
        NAME(CKR_UNWRAPPING_KEY_HANDLE_INVALID)
        NAME(CKR_CMK_IMPORT_TOKEN_EXPIRED)
        NAME(CKR_CMK_INCORRECT_KEY_MATERIAL)
#undef NAME
    }
    snprintf(buf, 32, "CKR_0x%lx", (unsigned long)rv);
    return buf;
}
