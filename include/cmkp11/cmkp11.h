/*
 * cmkp11.h - the public interface of cmkp11 beyond standard PKCS#11.
 *
 * cmkp11 is a PKCS#11 module that gives cloud-KMS customer-master-key (CMK)
 * semantics to keys held in an HSM. A token key generated with
 * C_GenerateKey / C_GenerateKeyPair (CKA_TOKEN = CK_TRUE) is a CMK: this header
 * declares the vendor attributes that carry its KMS metadata. Every one of them
 * is optional at creation; plain standard templates work unchanged.
 *
 * Includes p11-kit's <p11-kit/pkcs11.h> unless a PKCS#11 header came first.
 *
 * Conventions for the values below:
 *   - strings are UTF-8, not NUL-terminated (ulValueLen is the byte length);
 *   - dates are CK_ULONG seconds since the Unix epoch, UTC; 0 means "none";
 *   - "create" = may be given in the template of C_GenerateKey(Pair);
 *     "set"    = may be changed with C_SetAttributeValue;
 *     "find"   = may be used in a C_FindObjectsInit template (exact match).
 *
 * Who may change a key (README, "Security model"): every "set" attribute below, and
 * C_DestroyObject of a key's secret or private object (a scheduled deletion), change the
 * key itself, through whichever object names it (either half of a pair, a version
 * object): they need the user logged in, in a read/write session. Otherwise the answer
 * is CKR_USER_NOT_LOGGED_IN (no login, or the SO), CKR_SESSION_READ_ONLY (a read-only
 * session), or CKR_OBJECT_HANDLE_INVALID (an object the session cannot see: a private
 * one before the user's login), and nothing changes. A public object's own standard
 * attributes (CKA_LABEL, CKA_ID) and the destroy of a pair's public object alone follow
 * PKCS#11 as on the backend; a key made with CKA_PRIVATE=FALSE is used without a login.
 */
#ifndef CMKP11_CMKP11_H
#define CMKP11_CMKP11_H

/* The PKCS#11 types: an application's own header included first is kept (p11-kit's
 * defines PKCS11_H, OASIS' _PKCS11_H_, NSS' and most vendors' CK_PTR); else p11-kit's. */
#if !defined(PKCS11_H) && !defined(_PKCS11_H_) && !defined(CK_PTR)
#include <p11-kit/pkcs11.h>
#endif

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
/* Key usage: CK_ULONG. create (one of CMK_USAGE_*, the clouds' one-usage rule: must agree
 * with the CKA_ENCRYPT/CKA_SIGN/CKA_DERIVE flags given in the same template), find (the
 * exact value), read. Immutable. A key made from a plain template (no vendor attribute)
 * may do what its flags ask, so it may have several usages: see CMK_USAGE_ALSO below. */
#define CKA_CMK_KEY_USAGE CKA_CMK(0x04)
/* Origin: CK_ULONG, one of CMK_ORIGIN_*. create, find. A key created with
 * CMK_ORIGIN_EXTERNAL (specs AES, SM4, HMAC, RSA, EC, EC_SM2; at either protection level
 * where the spec has it) has no material: state PendingImport until material is imported.
 * Key pairs import a PKCS#8 PrivateKeyInfo with CMK_WRAP_RSA_AES_KEY_WRAP_*. */
#define CKA_CMK_ORIGIN CKA_CMK(0x05)
/* Protection level: CK_ULONG, one of CMK_PROTECTION_*. create (default HSM), find.
 * SOFTWARE: AES, SM4, HMAC_128..HMAC_512, RSA_2048/3072/4096, EC_P256/P384/P521/P256K
 * and EC_SM2 specs of KMS or EXTERNAL origin (imported material is sealed as generated
 * material is); else CKR_TEMPLATE_INCONSISTENT; see below. SM4 and EC_SM2 are SOFTWARE
 * when the template gives no level, or HSM when [gm_backend] in cmkp11.conf maps the
 * backend's own codes for the spec (KMS origin; see the GM/T values below). */
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
 * Importing key material (EXTERNAL origin: the clouds' GetParametersForImport,
 * ImportKeyMaterial and DeleteImportedKeyMaterial). See README "Importing key material".
 */
/* Material expiry: CK_ULONG seconds, 0 = never. Read on a CMK of EXTERNAL origin; given
 * in the C_UnwrapKey template of an import. After it, the key refuses all crypto at once
 * and the next login's housekeeping destroys the material (state PendingImport). */
#define CKA_CMK_MATERIAL_EXPIRES CKA_CMK(0x17)
/* Import token: bytes. Read on the CMK while import parameters are outstanding (else
 * CKR_ATTRIBUTE_TYPE_INVALID); required in the C_UnwrapKey template of an import. It binds
 * the key id, the wrapping key, the wrapping algorithm and the expiry, and is
 * authenticated by a key held in the HSM: any change makes it invalid. */
#define CKA_CMK_IMPORT_TOKEN CKA_CMK(0x18)
/* The wrapping public key of the outstanding import parameters: DER SubjectPublicKeyInfo.
 * Read-only. */
#define CKA_CMK_IMPORT_PUBLIC_KEY CKA_CMK(0x19)
/* End of validity of the outstanding import parameters (seconds). Read-only. */
#define CKA_CMK_IMPORT_VALID_TO CKA_CMK(0x1A)
/* Wrapping algorithm: CK_ULONG, one of CMK_WRAP_*. Given in the private template of
 * C_GenerateKeyPair(CKM_CMK_IMPORT_PARAMS); read on the CMK while parameters are
 * outstanding. */
#define CKA_CMK_WRAPPING_ALGORITHM CKA_CMK(0x1B)
/* Delete imported material: CK_BBOOL, write-only; writing CK_TRUE on an Enabled or
 * Disabled CMK of EXTERNAL origin destroys its material at once (state PendingImport). set. */
#define CKA_CMK_DELETE_MATERIAL CKA_CMK(0x1C)

/*
 * Aliases: a key's names in the clouds' sense, unique on the token ignoring case, each
 * 1..255 characters of letters, digits, ':', '_', '-' and (not first) '/'; an "alias/"
 * prefix is accepted and dropped; the prefixes aws/, acs/, kms-, cmk/ and the suffix
 * /default are reserved. An alias is not a CKA_LABEL: a label is free text of one object,
 * which any number of objects may share. A key made without CKA_CMK_ALIAS takes its label
 * as its alias when the label is a valid alias that no key has yet ([policy]
 * alias_from_label, default true); a key pending deletion keeps its aliases until it is
 * purged. Finding by CKA_LABEL finds labels; finding by CKA_CMK_ALIAS finds aliases.
 */
/* The key's first (oldest) alias, empty when it has none. create (the alias; empty: none,
 * and the label is not taken), find (the key that has it), set (replaces every alias of
 * the key with this one; empty removes them all). */
#define CKA_CMK_ALIAS CKA_CMK(0x1D)
/* Every alias of the key, oldest first, separated by LF. Read-only. */
#define CKA_CMK_ALIASES CKA_CMK(0x1E)
/* Actions, write-only (they read empty). set: CKA_CMK_ADD_ALIAS gives the key one more
 * alias (CreateAlias); CKA_CMK_REMOVE_ALIAS takes one of its aliases away (DeleteAlias);
 * CKA_CMK_MOVE_ALIAS moves an alias another key has to this key (UpdateAlias: both keys
 * of one kind - symmetric, asymmetric or HMAC - and one usage). */
#define CKA_CMK_ADD_ALIAS CKA_CMK(0x1F)
#define CKA_CMK_REMOVE_ALIAS CKA_CMK(0x20)
#define CKA_CMK_MOVE_ALIAS CKA_CMK(0x21)

/* CKA_CMK_WRAPPING_ALGORITHM values, named as the clouds name them. */
#define CMK_WRAP_RSAES_OAEP_SHA_1 1UL        /* CKM_RSA_PKCS_OAEP, SHA-1, MGF1-SHA-1 */
#define CMK_WRAP_RSAES_OAEP_SHA_256 2UL      /* CKM_RSA_PKCS_OAEP, SHA-256, MGF1-SHA-256 */
#define CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1 3UL  /* CKM_RSA_AES_KEY_WRAP, OAEP SHA-1 */
#define CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256 4UL /* CKM_RSA_AES_KEY_WRAP, OAEP SHA-256 */

/*
 * GetParametersForImport: C_GenerateKeyPair with this mechanism (no parameter). The
 * private template names the CMK (CKA_CMK_KEY_ID, a key in state PendingImport, or one
 * whose imported material is to be imported again) and may give
 * CKA_CMK_WRAPPING_ALGORITHM (default RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_256 for
 * asymmetric keys, or their _SHA_1 forms where the HSM unwraps with OAEP-SHA-1 only; a
 * _SHA_256 algorithm the HSM cannot unwrap with is refused with
 * CKR_MECHANISM_PARAM_INVALID); the public template may give
 * CKA_MODULUS_BITS 2048/3072/4096 (default 2048). An RSA wrapping pair is generated in
 * the HSM (private half UNWRAP only, sensitive, non-extractable) and replaces any earlier
 * one of the key; it is valid 24 hours. The handles returned are the wrapping pair's; the
 * CMK then answers CKA_CMK_IMPORT_TOKEN, CKA_CMK_IMPORT_PUBLIC_KEY,
 * CKA_CMK_IMPORT_VALID_TO and CKA_CMK_WRAPPING_ALGORITHM.
 *
 * ImportKeyMaterial: C_UnwrapKey whose unwrapping key is the CMK's own handle (secret or
 * private key object) and whose template holds CKA_CMK_IMPORT_TOKEN (and optionally
 * CKA_CMK_MATERIAL_EXPIRES, CKA_CLASS, CKA_KEY_TYPE, CKA_CMK_KEY_ID, which must agree with
 * the key). The mechanism is the wrapping algorithm the token names:
 * CKM_RSA_PKCS_OAEP (CK_RSA_PKCS_OAEP_PARAMS: hash and MGF1 matching, empty label) for
 * symmetric material, or CKM_RSA_AES_KEY_WRAP (CK_CMK_RSA_AES_KEY_WRAP_PARAMS) for any
 * material; asymmetric material is a PKCS#8 PrivateKeyInfo. The handle returned is the
 * CMK's. Codes: see README "Importing key material".
 */
#define CKM_CMK_IMPORT_PARAMS (CKM_VENDOR_DEFINED | CMKP11_VENDOR_BASE | 0x02UL)

/* The layout of PKCS#11 2.40's CK_RSA_AES_KEY_WRAP_PARAMS, which p11-kit's header lacks. */
typedef struct CK_CMK_RSA_AES_KEY_WRAP_PARAMS {
    CK_ULONG ulAESKeyBits;
    CK_RSA_PKCS_OAEP_PARAMS *pOAEPParams;
} CK_CMK_RSA_AES_KEY_WRAP_PARAMS;

/* Vendor return codes of an import. */
#define CKR_CMK_IMPORT_TOKEN_EXPIRED (CKR_VENDOR_DEFINED | CMKP11_VENDOR_BASE | 0x01UL)
#define CKR_CMK_INCORRECT_KEY_MATERIAL (CKR_VENDOR_DEFINED | CMKP11_VENDOR_BASE | 0x02UL)

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

/*
 * GM/T (Chinese national) algorithms: SM4 (GB/T 32907), SM2 (GB/T 32918), SM3 (GB/T 32905).
 * PKCS#11 2.40 names none of them, so their key types and mechanisms are cmkp11 vendor
 * values. On a backend without SM mechanisms these keys need protection level SOFTWARE
 * (given, or implied when the template gives none); asked at level HSM, CreateKey refuses
 * them with CKR_MECHANISM_INVALID. When [gm_backend] in cmkp11.conf maps the backend's own
 * SM codes for a spec, its keys are made and used in the backend at level HSM (also the
 * default then); clients keep using these codes, which the module translates.
 */
#define CKK_CMK(n) (CKK_VENDOR_DEFINED | CMKP11_VENDOR_BASE | (CK_ULONG)(n))
#define CKM_CMK(n) (CKM_VENDOR_DEFINED | CMKP11_VENDOR_BASE | (CK_ULONG)(n))
/* Key types. */
#define CKK_CMK_SM4 CKK_CMK(0x01) /* secret key, CKA_VALUE_LEN 16; key spec "SM4" */
#define CKK_CMK_SM2 CKK_CMK(0x02) /* SM2 key pair (curve SM2, OID 1.2.156.10197.1.301);
                                    key spec "EC_SM2" */
/* SM4. */
#define CKM_CMK_SM4_KEY_GEN CKM_CMK(0x10)
#define CKM_CMK_SM4_ECB CKM_CMK(0x11)     /* no parameter; data a multiple of 16 bytes */
#define CKM_CMK_SM4_CBC CKM_CMK(0x12)     /* parameter: 16-byte IV */
#define CKM_CMK_SM4_CBC_PAD CKM_CMK(0x13) /* parameter: 16-byte IV; PKCS#7 padding */
#define CKM_CMK_SM4_CTR CKM_CMK(0x14)     /* parameter: CK_AES_CTR_PARAMS (16-byte block) */
/* SM2. */
#define CKM_CMK_SM2_KEY_PAIR_GEN CKM_CMK(0x20)
#define CKM_CMK_SM2_SM3 CKM_CMK(0x21) /* SM2 signature over SM3(Z || message); parameter:
                                         NULL (user id "1234567812345678") or
                                         CK_CMK_SM2_PARAMS; signature r || s, 64 bytes
                                         (as CKM_ECDSA's; DER is what OpenSSL reads) */
#define CKM_CMK_SM2_ENCRYPT CKM_CMK(0x22) /* SM2 encryption (GM/T 0003.4), ciphertext in
                                             the DER form OpenSSL writes (C1, C3, C2) */
/* SM3. */
#define CKM_CMK_SM3 CKM_CMK(0x30)      /* digest, 32 bytes */
#define CKM_CMK_SM3_HMAC CKM_CMK(0x31) /* HMAC-SM3, 32-byte MAC */

/* Parameter of CKM_CMK_SM2_SM3: the signer's user id (the Z value's ID_A), at most 8191
 * bits (1023 bytes); CKR_MECHANISM_PARAM_INVALID beyond. */
typedef struct CK_CMK_SM2_PARAMS {
    CK_BYTE_PTR pUserId;
    CK_ULONG ulUserIdLen;
} CK_CMK_SM2_PARAMS;

/* CKA_CMK_KEY_USAGE values */
#define CMK_USAGE_ENCRYPT_DECRYPT 1UL
#define CMK_USAGE_SIGN_VERIFY 2UL
#define CMK_USAGE_GENERATE_VERIFY_MAC 3UL
#define CMK_USAGE_KEY_AGREEMENT 4UL /* EC with CKA_DERIVE: CKM_ECDH1_DERIVE (AWS's usage) */
/* A key with several usages reads as its primary usage (low byte, one of the values
 * above) plus one CMK_USAGE_ALSO bit for each other usage, so a one-usage key reads
 * exactly as before and a reader that knows only the values above still sees the primary
 * one. The primary usage is SIGN_VERIFY for a pair that signs, else ENCRYPT_DECRYPT, else
 * KEY_AGREEMENT; ENCRYPT_DECRYPT for an AES key, GENERATE_VERIFY_MAC for a generic secret.
 * Example: pkcs11-tool's RSA pair (sign and decrypt) reads
 * CMK_USAGE_SIGN_VERIFY | CMK_USAGE_ALSO(CMK_USAGE_ENCRYPT_DECRYPT) = 0x102. The key's
 * CKA_SIGN, CKA_DECRYPT, CKA_DERIVE... flags say the same, object by object. */
#define CMK_USAGE_PRIMARY(v) ((v)&0xffUL)
#define CMK_USAGE_ALSO(u) (1UL << (7 + (u)))
#define CMK_USAGE_HAS(v, u) (CMK_USAGE_PRIMARY(v) == (u) || ((v)&CMK_USAGE_ALSO(u)) != 0)

/* CKA_CMK_ORIGIN values */
#define CMK_ORIGIN_KMS 1UL      /* material generated in the HSM */
#define CMK_ORIGIN_EXTERNAL 2UL /* material imported */

/* CKA_CMK_PROTECTION_LEVEL values */
#define CMK_PROTECTION_HSM 1UL /* material in the backend HSM, used there */
/* Material sealed in the store (AES-256-GCM under the backend's token master key, key id
 * and version bound as AAD), unsealed into locked, non-dumpable memory and used
 * in-process: CKM_AES_GCM, CKM_AES_CBC_PAD, CKM_AES_CBC, CKM_AES_ECB, CKM_AES_CTR,
 * CKM_CMK_ENVELOPE; SM4 keys (SOFTWARE unless [gm_backend] maps them) CKM_CMK_SM4_ECB,
 * _CBC, _CBC_PAD, _CTR and CKM_CMK_ENVELOPE (format 0x02: SM4-CTR then HMAC-SM3).
 * Standard attributes as for a sensitive, non-extractable AES key (and fixed: a change is
 * CKR_ATTRIBUTE_READ_ONLY); sign, wrap and unwrap: CKR_KEY_FUNCTION_NOT_PERMITTED.
 * Generic secrets HMAC_128..HMAC_512 (GENERATE_VERIFY_MAC): CKM_SHA_1_HMAC,
 * CKM_SHA224/256/384/512_HMAC and CKM_CMK_SM3_HMAC sign/verify in-process.
 * Key pairs (C_GenerateKeyPair, the level in the private template): RSA_2048/3072/4096,
 * EC_P256/P384/P521/P256K and EC_SM2, generated in-process; the private key sealed as
 * PKCS#8 and held unsealed in OpenSSL's secure heap, the public key kept in the store (its
 * attributes read as for an HSM pair without unsealing). Mechanisms: CKM_ECDSA and
 * CKM_ECDSA_SHA1..SHA512; CKM_RSA_PKCS, CKM_SHA1..SHA512_RSA_PKCS, CKM_RSA_PKCS_PSS,
 * CKM_SHA1..SHA512_RSA_PKCS_PSS (sign/verify); CKM_RSA_PKCS and CKM_RSA_PKCS_OAEP
 * (encrypt with the public object, decrypt with the private); the CKM_CMK_SM2_* ones.
 * Sealed material missing, damaged or moved, or master key missing: CKR_DEVICE_ERROR. */
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
