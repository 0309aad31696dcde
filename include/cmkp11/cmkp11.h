/*
 * cmkp11.h - the public interface of cmkp11 beyond standard PKCS#11.
 *
 * cmkp11 is a PKCS#11 module that gives cloud-KMS customer-master-key (CMK)
 * semantics to keys held in an HSM. A token key generated with
 * C_GenerateKey / C_GenerateKeyPair (CKA_TOKEN = CK_TRUE) is a CMK: this header
 * declares the vendor attributes that carry its KMS metadata. Every one of them
 * is optional at creation; plain standard templates work unchanged.
 *
 * Include after a PKCS#11 header (p11-kit's <p11-kit/pkcs11.h> or OASIS').
 *
 * Conventions for the values below:
 *   - strings are UTF-8, not NUL-terminated (ulValueLen is the byte length);
 *   - dates are CK_ULONG seconds since the Unix epoch, UTC; 0 means "none";
 *   - "create" = may be given in the template of C_GenerateKey(Pair);
 *     "set"    = may be changed with C_SetAttributeValue;
 *     "find"   = may be used in a C_FindObjectsInit template (exact match).
 */
#ifndef CMKP11_CMKP11_H
#define CMKP11_CMKP11_H

#ifdef __cplusplus
extern "C" {
#endif

/* All cmkp11 vendor values live in one range: CKA_VENDOR_DEFINED | "CMK" << 8. */
#define CMKP11_VENDOR_BASE 0x434D4B00UL
#define CKA_CMK(n) (CKA_VENDOR_DEFINED | CMKP11_VENDOR_BASE | (CK_ULONG)(n))

/* Key id: the CMK's UUID v4 as 36 ASCII characters. Read-only, find. Never reused. */
#define CKA_CMK_KEY_ID CKA_CMK(0x01)
/* Description: UTF-8, 0..8192 characters, no control characters except TAB/LF/CR.
 * create, set, find. */
#define CKA_CMK_DESCRIPTION CKA_CMK(0x02)
/* Key spec: ASCII name such as "AES_256", "RSA_2048", "EC_P256", "EC_P256K".
 * Follows from mechanism and template; may be given at create, where it must agree
 * with them (CKR_TEMPLATE_INCONSISTENT otherwise). find. */
#define CKA_CMK_KEY_SPEC CKA_CMK(0x03)
/* Key usage: CK_ULONG, one of CMK_USAGE_*. create (must agree with CKA_ENCRYPT/
 * CKA_SIGN flags given in the same template), find. Immutable. */
#define CKA_CMK_KEY_USAGE CKA_CMK(0x04)
/* Origin: CK_ULONG, one of CMK_ORIGIN_*. create, find. */
#define CKA_CMK_ORIGIN CKA_CMK(0x05)
/* Protection level: CK_ULONG, one of CMK_PROTECTION_*. create, find. */
#define CKA_CMK_PROTECTION_LEVEL CKA_CMK(0x06)
/* Key state: CK_ULONG, one of CMK_STATE_*. find; set: Enabled <-> Disabled;
 * Enabled or Disabled -> PendingDeletion (schedules deletion after the key's pending
 * window, as C_DestroyObject does); PendingDeletion -> Disabled cancels it. Any other
 * move: CKR_ACTION_PROHIBITED (a value that is no state: CKR_ATTRIBUTE_VALUE_INVALID).
 * Naming it in a find template also finds keys pending deletion. */
#define CKA_CMK_KEY_STATE CKA_CMK(0x07)
/* Creation date (seconds). Read-only. */
#define CKA_CMK_CREATION_DATE CKA_CMK(0x08)
/* Automatic rotation enabled: CK_BBOOL. create, set, find. AES keys of KMS origin only. */
#define CKA_CMK_ROTATION_ENABLED CKA_CMK(0x09)
/* Rotation interval: CK_ULONG seconds, 7..2560 days. create, set. Default 365 days
 * when rotation is enabled without one. */
#define CKA_CMK_ROTATION_INTERVAL CKA_CMK(0x0A)
/* Last / next automatic rotation dates (seconds). Read-only. */
#define CKA_CMK_LAST_ROTATION_DATE CKA_CMK(0x0B)
#define CKA_CMK_NEXT_ROTATION_DATE CKA_CMK(0x0C)
/* Primary key version: CK_ULONG, 1 for a new key. Read-only. */
#define CKA_CMK_PRIMARY_VERSION CKA_CMK(0x0D)
/* Deletion date (seconds) of a key pending deletion, else 0. Read-only. */
#define CKA_CMK_DELETION_DATE CKA_CMK(0x0F)
/* Pending window in days for scheduled deletion: CK_ULONG 7..1096. */
#define CKA_CMK_PENDING_WINDOW_DAYS CKA_CMK(0x10)
/* Tags: UTF-8 lines "key=value" separated by LF, sorted by key. At most 50 tags;
 * key 1..128 characters without '=', LF or other control characters, value 0..256
 * characters without control characters; keys unique (case-sensitive); reserved key
 * prefixes (case-insensitive): "aws:", "acs:", "aliyun", "cmk:". create, set
 * (replaces the whole set). */
#define CKA_CMK_TAGS CKA_CMK(0x11)
/* One tag to match in a find template: "key=value", or "key" for any value. find only. */
#define CKA_CMK_TAG CKA_CMK(0x12)
/* Resource name "arn:cmkp11:<token label>:key/<key id>". Read-only. */
#define CKA_CMK_ARN CKA_CMK(0x13)
/* Rotation interval as text: "<n>d", "<n>h", "<n>m" (minutes), "<n>s", or whole
 * days "<n>"; same range as CKA_CMK_ROTATION_INTERVAL. create, set (write-only form). */
#define CKA_CMK_ROTATION_PERIOD CKA_CMK(0x14)
/* Creator: CK_ULONG uid of the process that created the key. Read-only. */
#define CKA_CMK_CREATOR CKA_CMK(0x15)
/* Version: CK_ULONG key version a version object stands for. find (a template naming it
 * finds that version as its own object). */
#define CKA_CMK_VERSION CKA_CMK(0x0E)
/* Rotate now: CK_BBOOL, write-only; writing CK_TRUE makes a new primary version
 * (on-demand rotation; the automatic schedule is not moved). set. */
#define CKA_CMK_ROTATE_NOW CKA_CMK(0x16)

/*
 * The envelope mechanism: AES-GCM under the CMK's primary version, producing a
 * self-describing ciphertext that names the key id and version, so decrypt needs only
 * the CMK handle (the way cloud KMS ciphertext blobs work). Parameter: NULL, or a
 * CK_CMK_ENVELOPE_PARAMS with additional authenticated data.
 */
#define CKM_CMK_ENVELOPE (CKM_VENDOR_DEFINED | CMKP11_VENDOR_BASE | 0x01UL)
typedef struct CK_CMK_ENVELOPE_PARAMS {
    CK_BYTE_PTR pAAD;
    CK_ULONG ulAADLen;
} CK_CMK_ENVELOPE_PARAMS;

/* CKA_CMK_KEY_USAGE values */
#define CMK_USAGE_ENCRYPT_DECRYPT 1UL
#define CMK_USAGE_SIGN_VERIFY 2UL
#define CMK_USAGE_GENERATE_VERIFY_MAC 3UL

/* CKA_CMK_ORIGIN values */
#define CMK_ORIGIN_KMS 1UL      /* material generated in the HSM */
#define CMK_ORIGIN_EXTERNAL 2UL /* material imported */

/* CKA_CMK_PROTECTION_LEVEL values */
#define CMK_PROTECTION_HSM 1UL
#define CMK_PROTECTION_SOFTWARE 2UL

/* CKA_CMK_KEY_STATE values */
#define CMK_STATE_CREATING 0UL /* internal: never visible to clients */
#define CMK_STATE_ENABLED 1UL
#define CMK_STATE_DISABLED 2UL
#define CMK_STATE_PENDING_DELETION 3UL
#define CMK_STATE_PENDING_IMPORT 4UL

/*
 * PKCS#11 3.0 interface discovery. p11-kit's header is 2.40, so the 3.0 types
 * C_GetInterfaceList / C_GetInterface need are declared here when absent.
 * cmkp11 offers one interface, "PKCS 11" version 2.40 function list.
 */
#ifndef CKF_INTERFACE_FORK_SAFE
typedef struct CK_INTERFACE {
    CK_UTF8CHAR *pInterfaceName;
    void *pFunctionList;
    CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE_PTR *CK_INTERFACE_PTR_PTR;
#define CKF_INTERFACE_FORK_SAFE 0x00000001UL
#endif

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount);
CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                     CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);

#ifdef __cplusplus
}
#endif

#endif /* CMKP11_CMKP11_H */
