/* test_hostile.c - hostile input through every v2.40 entry point, called through the
 * function list: NULL pointers, zero and short lengths, invalid and stale handles, calls
 * before C_Initialize and after C_Finalize, wrong session states and malformed templates.
 * Each call answers the spec's code; afterwards the store and the backend are as they
 * were and the process that made the calls did not crash. */
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "inspect.h"

/* The arguments of any one call. A row starts from good arguments and spoils some. */
struct call {
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE obj;  /* the object, or the key of an operation */
    CK_OBJECT_HANDLE obj2; /* the key wrapped, or the authentication key of a state */
    CK_MECHANISM_PTR mech;
    CK_MECHANISM_TYPE type;
    CK_ATTRIBUTE_PTR tmpl, tmpl2; /* tmpl2: the public template of a pair */
    CK_ULONG count, count2;
    CK_BYTE_PTR in;
    CK_ULONG in_len;
    CK_BYTE_PTR out; /* output buffer (also slot, mechanism and object lists) */
    CK_ULONG_PTR out_len;
    CK_ULONG sig_len; /* length of the signature given to C_Verify(Final) in out */
    void *info;
    CK_UTF8CHAR_PTR pin;
    CK_ULONG pin_len;
    CK_OBJECT_HANDLE_PTR h, h2;
    CK_ULONG max;
    CK_SESSION_HANDLE_PTR sp;
    CK_USER_TYPE user;
    CK_FLAGS flags;
    void *reserved;
};

#define FN(f, ...)                                                                                 \
    static CK_RV call_##f(struct call *c)                                                          \
    {                                                                                              \
        return p11->f(__VA_ARGS__);                                                                \
    }
#define IN_OUT c->s, c->in, c->in_len, c->out, c->out_len
FN(C_Initialize, c->reserved)
FN(C_Finalize, c->reserved)
FN(C_GetInfo, c->info)
FN(C_GetFunctionList, c->info)
FN(C_GetSlotList, CK_TRUE, (CK_SLOT_ID_PTR)c->out, c->out_len)
FN(C_GetSlotInfo, c->slot, c->info)
FN(C_GetTokenInfo, c->slot, c->info)
FN(C_GetMechanismList, c->slot, (CK_MECHANISM_TYPE_PTR)c->out, c->out_len)
FN(C_GetMechanismInfo, c->slot, c->type, c->info)
FN(C_InitToken, c->slot, c->pin, c->pin_len, c->out)
FN(C_InitPIN, c->s, c->pin, c->pin_len)
FN(C_SetPIN, c->s, c->pin, c->pin_len, c->pin, c->pin_len)
FN(C_OpenSession, c->slot, c->flags, NULL, NULL, c->sp)
FN(C_CloseSession, c->s)
FN(C_CloseAllSessions, c->slot)
FN(C_GetSessionInfo, c->s, c->info)
FN(C_GetOperationState, c->s, c->out, c->out_len)
FN(C_SetOperationState, c->s, c->in, c->in_len, c->obj, c->obj2)
FN(C_Login, c->s, c->user, c->pin, c->pin_len)
FN(C_Logout, c->s)
FN(C_CreateObject, c->s, c->tmpl, c->count, c->h)
FN(C_CopyObject, c->s, c->obj, c->tmpl, c->count, c->h)
FN(C_DestroyObject, c->s, c->obj)
FN(C_GetObjectSize, c->s, c->obj, c->out_len)
FN(C_GetAttributeValue, c->s, c->obj, c->tmpl, c->count)
FN(C_SetAttributeValue, c->s, c->obj, c->tmpl, c->count)
FN(C_FindObjectsInit, c->s, c->tmpl, c->count)
FN(C_FindObjects, c->s, c->h, c->max, c->out_len)
FN(C_FindObjectsFinal, c->s)
FN(C_EncryptInit, c->s, c->mech, c->obj)
FN(C_Encrypt, IN_OUT)
FN(C_EncryptUpdate, IN_OUT)
FN(C_EncryptFinal, c->s, c->out, c->out_len)
FN(C_DecryptInit, c->s, c->mech, c->obj)
FN(C_Decrypt, IN_OUT)
FN(C_DecryptUpdate, IN_OUT)
FN(C_DecryptFinal, c->s, c->out, c->out_len)
FN(C_DigestInit, c->s, c->mech)
FN(C_Digest, IN_OUT)
FN(C_DigestUpdate, c->s, c->in, c->in_len)
FN(C_DigestKey, c->s, c->obj)
FN(C_DigestFinal, c->s, c->out, c->out_len)
FN(C_SignInit, c->s, c->mech, c->obj)
FN(C_Sign, IN_OUT)
FN(C_SignUpdate, c->s, c->in, c->in_len)
FN(C_SignFinal, c->s, c->out, c->out_len)
FN(C_SignRecoverInit, c->s, c->mech, c->obj)
FN(C_SignRecover, IN_OUT)
FN(C_VerifyInit, c->s, c->mech, c->obj)
FN(C_Verify, c->s, c->in, c->in_len, c->out, c->sig_len)
FN(C_VerifyUpdate, c->s, c->in, c->in_len)
FN(C_VerifyFinal, c->s, c->out, c->sig_len)
FN(C_VerifyRecoverInit, c->s, c->mech, c->obj)
FN(C_VerifyRecover, IN_OUT)
FN(C_DigestEncryptUpdate, IN_OUT)
FN(C_DecryptDigestUpdate, IN_OUT)
FN(C_SignEncryptUpdate, IN_OUT)
FN(C_DecryptVerifyUpdate, IN_OUT)
FN(C_GenerateKey, c->s, c->mech, c->tmpl, c->count, c->h)
FN(C_GenerateKeyPair, c->s, c->mech, c->tmpl2, c->count2, c->tmpl, c->count, c->h2, c->h)
FN(C_WrapKey, c->s, c->mech, c->obj, c->obj2, c->out, c->out_len)
FN(C_UnwrapKey, c->s, c->mech, c->obj, c->in, c->in_len, c->tmpl, c->count, c->h)
FN(C_DeriveKey, c->s, c->mech, c->obj, c->tmpl, c->count, c->h)
FN(C_SeedRandom, c->s, c->in, c->in_len)
FN(C_GenerateRandom, c->s, c->out, c->in_len)
FN(C_GetFunctionStatus, c->s)
FN(C_CancelFunction, c->s)
FN(C_WaitForSlotEvent, c->flags, (CK_SLOT_ID_PTR)c->out, c->reserved)
#undef IN_OUT
#undef FN

struct fn {
    const char *name;
    CK_RV (*call)(struct call *c);
    size_t offset; /* of the function in CK_FUNCTION_LIST */
};

#define F(f) {#f, call_##f, offsetof(CK_FUNCTION_LIST, f)}
/* Every function of the v2.40 list, in its order. */
static const struct fn functions[] = {
    F(C_Initialize), F(C_Finalize), F(C_GetInfo), F(C_GetFunctionList), F(C_GetSlotList),
    F(C_GetSlotInfo), F(C_GetTokenInfo), F(C_GetMechanismList), F(C_GetMechanismInfo),
    F(C_InitToken), F(C_InitPIN), F(C_SetPIN), F(C_OpenSession), F(C_CloseSession),
    F(C_CloseAllSessions), F(C_GetSessionInfo), F(C_GetOperationState), F(C_SetOperationState),
    F(C_Login), F(C_Logout), F(C_CreateObject), F(C_CopyObject), F(C_DestroyObject),
    F(C_GetObjectSize), F(C_GetAttributeValue), F(C_SetAttributeValue), F(C_FindObjectsInit),
    F(C_FindObjects), F(C_FindObjectsFinal), F(C_EncryptInit), F(C_Encrypt), F(C_EncryptUpdate),
    F(C_EncryptFinal), F(C_DecryptInit), F(C_Decrypt), F(C_DecryptUpdate), F(C_DecryptFinal),
    F(C_DigestInit), F(C_Digest), F(C_DigestUpdate), F(C_DigestKey), F(C_DigestFinal),
    F(C_SignInit), F(C_Sign), F(C_SignUpdate), F(C_SignFinal), F(C_SignRecoverInit),
    F(C_SignRecover), F(C_VerifyInit), F(C_Verify), F(C_VerifyUpdate), F(C_VerifyFinal),
    F(C_VerifyRecoverInit), F(C_VerifyRecover), F(C_DigestEncryptUpdate),
    F(C_DecryptDigestUpdate), F(C_SignEncryptUpdate), F(C_DecryptVerifyUpdate),
    F(C_GenerateKey), F(C_GenerateKeyPair), F(C_WrapKey), F(C_UnwrapKey), F(C_DeriveKey),
    F(C_SeedRandom), F(C_GenerateRandom), F(C_GetFunctionStatus), F(C_CancelFunction),
    F(C_WaitForSlotEvent),
};
#undef F
#define NFUNCTIONS (sizeof(functions) / sizeof(functions[0]))

/* The functions that take no session handle. */
static bool takes_session(const struct fn *f)
{
    static const char *const sessionless[] = {
        "C_Initialize",   "C_Finalize",         "C_GetInfo",          "C_GetFunctionList",
        "C_GetSlotList",  "C_GetSlotInfo",      "C_GetTokenInfo",     "C_GetMechanismList",
        "C_GetMechanismInfo", "C_InitToken",    "C_OpenSession",      "C_CloseAllSessions",
        "C_WaitForSlotEvent"};
    for (size_t i = 0; i < sizeof(sessionless) / sizeof(sessionless[0]); i++)
        if (strcmp(f->name, sessionless[i]) == 0) return false;
    return true;
}

static const struct fn *function_named(const char *name)
{
    for (size_t i = 0; i < NFUNCTIONS; i++)
        if (strcmp(functions[i].name, name) == 0) return &functions[i];
    fprintf(stderr, "  no function %s in the table\n", name);
    abort();
}

/* ---- the objects the rows refer to ---- */

enum obj {
    O_AES = 0,    /* a CMK: AES-256, ENCRYPT_DECRYPT */
    O_EC_PRIV,    /* a CMK pair: EC P-256, SIGN_VERIFY */
    O_EC_PUB,
    O_SESSION,    /* a session AES key (a backend handle), extractable, may derive */
    O_SESSION_NX, /* a session AES key made on the token, not extractable */
    O_BOGUS_CMK,  /* a handle in the CMK range naming no row */
    O_BOGUS,      /* a backend-range handle naming nothing */
    O_STALE_CMK,  /* the public key of a pair, destroyed */
    O_STALE,      /* a session data object, destroyed */
    O_PENDING,    /* a CMK scheduled for deletion: destroyed as far as PKCS#11 goes */
    O_NONE,       /* handle 0 */
    O_COUNT
};

enum sess {
    S_RW = 0, /* a fresh read/write session of the logged-in user */
    S_RO,     /* a fresh read-only session of the logged-in user */
    S_BOGUS,  /* a handle never opened */
    S_CLOSED, /* a session opened and closed just before the call */
};

enum prep {
    P_NONE = 0,
    P_ENCRYPT, /* AES-GCM encryption with the AES CMK */
    P_DECRYPT,
    P_ENVELOPE, /* CKM_CMK_ENVELOPE encryption with the AES CMK */
    P_ENVELOPE_DECRYPT,
    P_DIGEST,   /* SHA-256 */
    P_SIGN,     /* ECDSA with the EC CMK */
    P_VERIFY,
    P_FIND,
    P_LOGOUT, /* every session logged out; logged in again after the call */
};

/* Pointers a row makes NULL. */
enum {
    N_MECH = 1 << 0,
    N_TMPL = 1 << 1,
    N_TMPL2 = 1 << 2,
    N_IN = 1 << 3,
    N_OUT = 1 << 4,
    N_LEN = 1 << 5,
    N_INFO = 1 << 6,
    N_PIN = 1 << 7,
    N_H = 1 << 8,
    N_H2 = 1 << 9,
    N_SP = 1 << 10,
};

#define MAX_WANT 3
struct row {
    const char *fn;
    const char *what;
    enum prep prep;
    enum sess sess;
    enum obj obj, obj2;
    CK_MECHANISM_PTR mech;
    CK_ATTRIBUTE_PTR tmpl, tmpl2;
    CK_ULONG count, count2;
    unsigned nulls;
    CK_SLOT_ID slot;     /* 0 is ours */
    CK_ULONG out_len;    /* 0: the whole buffer; else this many bytes (SHORT for none) */
    CK_ULONG in_len;     /* 0: 32 bytes; ZERO for none */
    enum { U_USER = 0, U_SO, U_UNKNOWN } user;
    CK_ULONG pin_len;    /* 0: the PIN's length */
    CK_RV want[MAX_WANT]; /* the codes the spec allows; CKR_OK only first, else it ends the list */
    CK_ULONG want_len;   /* when set: *out_len after the call */
};
#define SHORT 0x10000UL /* out_len: a zero-byte buffer */
#define ZERO 0x10000UL  /* in_len: no input */

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_ULONG len32 = 32, len16 = 16;
static CK_OBJECT_CLASS secret = CKO_SECRET_KEY, data_class = CKO_DATA, private_class = CKO_PRIVATE_KEY;
static CK_KEY_TYPE aes_type = CKK_AES;
static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static CK_BYTE iv[12] = {1, 2, 3};
static CK_GCM_PARAMS gcm_params = {iv, sizeof(iv), 96, NULL, 0, 128};
static CK_MECHANISM m_gcm = {CKM_AES_GCM, &gcm_params, sizeof(gcm_params)};
static CK_MECHANISM m_envelope = {CKM_CMK_ENVELOPE, NULL, 0};
static CK_MECHANISM m_sha256 = {CKM_SHA256, NULL, 0};
static CK_MECHANISM m_ecdsa = {CKM_ECDSA, NULL, 0};
static CK_MECHANISM m_aes_gen = {CKM_AES_KEY_GEN, NULL, 0};
static CK_MECHANISM m_ec_gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
static CK_MECHANISM m_wrap = {CKM_AES_KEY_WRAP, NULL, 0};
static CK_BYTE derive_data[16] = {7};
static CK_KEY_DERIVATION_STRING_DATA derive_params = {derive_data, sizeof(derive_data)};
static CK_MECHANISM m_derive = {CKM_AES_ECB_ENCRYPT_DATA, &derive_params, sizeof(derive_params)};

#define TMPL(...)                                                                                  \
    .tmpl = (CK_ATTRIBUTE[]){__VA_ARGS__},                                                         \
    .count = sizeof((CK_ATTRIBUTE[]){__VA_ARGS__}) / sizeof(CK_ATTRIBUTE)
#define TMPL2(...)                                                                                 \
    .tmpl2 = (CK_ATTRIBUTE[]){__VA_ARGS__},                                                        \
    .count2 = sizeof((CK_ATTRIBUTE[]){__VA_ARGS__}) / sizeof(CK_ATTRIBUTE)
#define WANT(...) .want = {__VA_ARGS__}

/* Attributes the template rows are made of. */
#define TOKEN {CKA_TOKEN, &yes, sizeof(yes)}
#define SESSION {CKA_TOKEN, &no, sizeof(no)}
#define NOT_PRIVATE {CKA_PRIVATE, &no, sizeof(no)}
#define VALUE_LEN {CKA_VALUE_LEN, &len32, sizeof(len32)}
#define VALUE_LEN_16 {CKA_VALUE_LEN, &len16, sizeof(len16)}
#define SHORT_VALUE_LEN {CKA_VALUE_LEN, &len32, 2}
#define EMPTY_VALUE_LEN {CKA_VALUE_LEN, &len32, 0}
#define LONG_TOKEN {CKA_TOKEN, &len32, sizeof(len32)}
#define SHORT_CLASS {CKA_CLASS, &secret, 1}
#define SECRET_CLASS {CKA_CLASS, &secret, sizeof(secret)}
#define AES_TYPE {CKA_KEY_TYPE, &aes_type, sizeof(aes_type)}
#define DATA_CLASS {CKA_CLASS, &data_class, sizeof(data_class)}
#define UNKNOWN {0x0fff0001UL, &yes, sizeof(yes)}
#define UNKNOWN_VENDOR {CKA_CMK(0x7f), &yes, sizeof(yes)}
#define LABEL(x) {CKA_LABEL, x, sizeof(x) - 1}
#define DESCRIPTION {CKA_CMK_DESCRIPTION, "d", 1}
#define EC_PARAMS {CKA_EC_PARAMS, p256, sizeof(p256)}
#define NULL_VALUE {CKA_LABEL, NULL, 4}

/* ---- the table ---- */

static const struct row rows[] = {
    /* NULL where the spec requires a pointer: CKR_ARGUMENTS_BAD. */
    {"C_Initialize", "reserved pointer set", WANT(CKR_ARGUMENTS_BAD)},
    {"C_Finalize", "reserved pointer set", WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetInfo", "NULL info", .nulls = N_INFO, WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetFunctionList", "NULL list", .nulls = N_INFO, WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetSlotList", "NULL count", .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetSlotInfo", "NULL info", .nulls = N_INFO, WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetTokenInfo", "NULL info", .nulls = N_INFO, WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetMechanismList", "NULL count", .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetMechanismInfo", "NULL info", .nulls = N_INFO, WANT(CKR_ARGUMENTS_BAD)},
    {"C_OpenSession", "NULL session pointer", .nulls = N_SP, WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetSessionInfo", "NULL info", .nulls = N_INFO, WANT(CKR_ARGUMENTS_BAD)},
    /* The backend may not save states at all: the spec lets it say so for any call. */
    {"C_GetOperationState", "NULL length", .nulls = N_LEN,
     WANT(CKR_ARGUMENTS_BAD, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_SetOperationState", "NULL state", .nulls = N_IN, .obj = O_NONE, .obj2 = O_NONE,
     WANT(CKR_ARGUMENTS_BAD, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_SetPIN", "NULL old PIN", .nulls = N_PIN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Login", "NULL PIN", .prep = P_LOGOUT, .nulls = N_PIN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_CreateObject", "NULL template", .nulls = N_TMPL, TMPL(SESSION, DATA_CLASS),
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_CreateObject", "NULL handle pointer", .nulls = N_H, TMPL(SESSION, DATA_CLASS),
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_CopyObject", "NULL handle pointer", .obj = O_SESSION, .nulls = N_H, TMPL(SESSION),
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_CopyObject", "NULL handle pointer, CMK", .obj = O_AES, .nulls = N_H, TMPL(SESSION),
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_CopyObject", "NULL template", .obj = O_SESSION, .nulls = N_TMPL, TMPL(SESSION),
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetObjectSize", "NULL size, CMK", .obj = O_AES, .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetObjectSize", "NULL size", .obj = O_SESSION, .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetAttributeValue", "NULL template, CMK", .obj = O_AES, .nulls = N_TMPL,
     TMPL(LABEL("x")), WANT(CKR_ARGUMENTS_BAD)},
    {"C_GetAttributeValue", "NULL template", .obj = O_SESSION, .nulls = N_TMPL,
     TMPL(LABEL("x")), WANT(CKR_ARGUMENTS_BAD)},
    {"C_SetAttributeValue", "NULL template, CMK", .obj = O_AES, .nulls = N_TMPL,
     TMPL(LABEL("x")), WANT(CKR_ARGUMENTS_BAD)},
    {"C_SetAttributeValue", "NULL template", .obj = O_SESSION, .nulls = N_TMPL,
     TMPL(LABEL("x")), WANT(CKR_ARGUMENTS_BAD)},
    {"C_FindObjectsInit", "NULL template", .nulls = N_TMPL, TMPL(LABEL("x")),
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_FindObjects", "NULL handles", .prep = P_FIND, .nulls = N_H, WANT(CKR_ARGUMENTS_BAD)},
    {"C_FindObjects", "NULL count", .prep = P_FIND, .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_EncryptInit", "NULL mechanism", .nulls = N_MECH, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Encrypt", "NULL length", .prep = P_ENCRYPT, .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Encrypt", "NULL data", .prep = P_ENCRYPT, .nulls = N_IN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Encrypt", "NULL length, envelope", .prep = P_ENVELOPE, .nulls = N_LEN,
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_Encrypt", "NULL data, envelope", .prep = P_ENVELOPE, .nulls = N_IN,
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_EncryptUpdate", "NULL length", .prep = P_ENCRYPT, .nulls = N_LEN,
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_EncryptUpdate", "NULL data, envelope", .prep = P_ENVELOPE, .nulls = N_IN,
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_EncryptFinal", "NULL length", .prep = P_ENCRYPT, .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_EncryptFinal", "NULL length, envelope", .prep = P_ENVELOPE, .nulls = N_LEN,
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_DecryptInit", "NULL mechanism", .nulls = N_MECH, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Decrypt", "NULL length", .prep = P_DECRYPT, .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Decrypt", "NULL data", .prep = P_DECRYPT, .nulls = N_IN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_DecryptUpdate", "NULL length", .prep = P_DECRYPT, .nulls = N_LEN,
     WANT(CKR_ARGUMENTS_BAD)},
    {"C_DecryptFinal", "NULL length", .prep = P_DECRYPT, .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_DigestInit", "NULL mechanism", .nulls = N_MECH, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Digest", "NULL length", .prep = P_DIGEST, .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Digest", "NULL data", .prep = P_DIGEST, .nulls = N_IN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_DigestUpdate", "NULL data", .prep = P_DIGEST, .nulls = N_IN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_DigestFinal", "NULL length", .prep = P_DIGEST, .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_SignInit", "NULL mechanism", .obj = O_EC_PRIV, .nulls = N_MECH, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Sign", "NULL length", .prep = P_SIGN, .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Sign", "NULL data", .prep = P_SIGN, .nulls = N_IN, WANT(CKR_ARGUMENTS_BAD)},
    /* Rows of functions the backend may lack accept CKR_FUNCTION_NOT_SUPPORTED as well: the
     * spec lets a module answer it to any call of a function it does not offer. */
    {"C_SignRecoverInit", "NULL mechanism", .obj = O_EC_PRIV, .nulls = N_MECH,
     WANT(CKR_ARGUMENTS_BAD, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_VerifyInit", "NULL mechanism", .obj = O_EC_PUB, .nulls = N_MECH, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Verify", "NULL signature", .prep = P_VERIFY, .nulls = N_OUT, WANT(CKR_ARGUMENTS_BAD)},
    {"C_Verify", "NULL data", .prep = P_VERIFY, .nulls = N_IN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_VerifyRecoverInit", "NULL mechanism", .obj = O_EC_PUB, .nulls = N_MECH,
     WANT(CKR_ARGUMENTS_BAD, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_GenerateKey", "NULL mechanism", .mech = &m_aes_gen, .nulls = N_MECH,
     TMPL(TOKEN, VALUE_LEN), WANT(CKR_ARGUMENTS_BAD)},
    {"C_GenerateKey", "NULL template", .mech = &m_aes_gen, .nulls = N_TMPL,
     TMPL(TOKEN, VALUE_LEN), WANT(CKR_ARGUMENTS_BAD)},
    {"C_GenerateKey", "NULL handle pointer", .mech = &m_aes_gen, .nulls = N_H,
     TMPL(TOKEN, VALUE_LEN), WANT(CKR_ARGUMENTS_BAD)},
    {"C_GenerateKeyPair", "NULL mechanism", .mech = &m_ec_gen, .nulls = N_MECH, TMPL(TOKEN),
     TMPL2(TOKEN, EC_PARAMS), WANT(CKR_ARGUMENTS_BAD)},
    {"C_GenerateKeyPair", "NULL public template", .mech = &m_ec_gen, .nulls = N_TMPL2,
     TMPL(TOKEN), TMPL2(TOKEN, EC_PARAMS), WANT(CKR_ARGUMENTS_BAD)},
    {"C_GenerateKeyPair", "NULL private template", .mech = &m_ec_gen, .nulls = N_TMPL,
     TMPL(TOKEN), TMPL2(TOKEN, EC_PARAMS), WANT(CKR_ARGUMENTS_BAD)},
    {"C_GenerateKeyPair", "NULL private handle pointer", .mech = &m_ec_gen, .nulls = N_H,
     TMPL(TOKEN), TMPL2(TOKEN, EC_PARAMS), WANT(CKR_ARGUMENTS_BAD)},
    {"C_GenerateKeyPair", "NULL public handle pointer", .mech = &m_ec_gen, .nulls = N_H2,
     TMPL(TOKEN), TMPL2(TOKEN, EC_PARAMS), WANT(CKR_ARGUMENTS_BAD)},
    {"C_WrapKey", "NULL mechanism", .mech = &m_wrap, .obj = O_AES, .obj2 = O_SESSION,
     .nulls = N_MECH, WANT(CKR_ARGUMENTS_BAD)},
    {"C_WrapKey", "NULL length", .mech = &m_wrap, .obj = O_AES, .obj2 = O_SESSION,
     .nulls = N_LEN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_UnwrapKey", "NULL mechanism", .mech = &m_wrap, .obj = O_AES, .nulls = N_MECH,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE), WANT(CKR_ARGUMENTS_BAD)},
    {"C_UnwrapKey", "NULL wrapped key", .mech = &m_wrap, .obj = O_AES, .nulls = N_IN,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE), WANT(CKR_ARGUMENTS_BAD)},
    {"C_UnwrapKey", "NULL handle pointer", .mech = &m_wrap, .obj = O_AES, .nulls = N_H,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE), WANT(CKR_ARGUMENTS_BAD)},
    {"C_DeriveKey", "NULL mechanism", .mech = &m_derive, .obj = O_SESSION, .nulls = N_MECH,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, VALUE_LEN_16), WANT(CKR_ARGUMENTS_BAD)},
    {"C_DeriveKey", "NULL handle pointer", .mech = &m_derive, .obj = O_SESSION, .nulls = N_H,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, VALUE_LEN_16), WANT(CKR_ARGUMENTS_BAD)},
    {"C_SeedRandom", "NULL seed", .nulls = N_IN, WANT(CKR_ARGUMENTS_BAD)},
    {"C_GenerateRandom", "NULL buffer", .nulls = N_OUT, WANT(CKR_ARGUMENTS_BAD)},

    /* Zero and short buffers: CKR_BUFFER_TOO_SMALL and the length needed. */
    {"C_GetSlotList", "zero-length list", .out_len = SHORT, WANT(CKR_BUFFER_TOO_SMALL),
     .want_len = 2}, /* the CMK slot and SoftHSMv2's free slot */
    {"C_GetMechanismList", "zero-length list", .out_len = SHORT, WANT(CKR_BUFFER_TOO_SMALL)},
    {"C_Encrypt", "zero-length output", .prep = P_ENCRYPT, .out_len = SHORT,
     WANT(CKR_BUFFER_TOO_SMALL), .want_len = 32 + 16},
    {"C_Encrypt", "short output", .prep = P_ENCRYPT, .out_len = 47, WANT(CKR_BUFFER_TOO_SMALL),
     .want_len = 32 + 16},
    {"C_Encrypt", "short output, envelope", .prep = P_ENVELOPE, .out_len = 10,
     WANT(CKR_BUFFER_TOO_SMALL), .want_len = 33 + 32 + 16},
    {"C_EncryptFinal", "zero-length output, envelope", .prep = P_ENVELOPE, .out_len = SHORT,
     WANT(CKR_BUFFER_TOO_SMALL), .want_len = 33 + 16},
    {"C_Digest", "short output", .prep = P_DIGEST, .out_len = 31, WANT(CKR_BUFFER_TOO_SMALL),
     .want_len = 32},
    {"C_Sign", "zero-length output", .prep = P_SIGN, .out_len = SHORT,
     WANT(CKR_BUFFER_TOO_SMALL), .want_len = 64},
    {"C_WrapKey", "short output", .mech = &m_wrap, .obj = O_AES, .obj2 = O_SESSION,
     .out_len = 8, WANT(CKR_BUFFER_TOO_SMALL), .want_len = 40},
    {"C_GetOperationState", "zero-length state", .prep = P_DIGEST, .out_len = SHORT,
     WANT(CKR_BUFFER_TOO_SMALL, CKR_FUNCTION_NOT_SUPPORTED)},
    /* Zero-length input: shorter than any envelope ciphertext, or any wrapped key. */
    {"C_Decrypt", "zero-length ciphertext, envelope", .prep = P_ENVELOPE_DECRYPT,
     .in_len = ZERO, WANT(CKR_ENCRYPTED_DATA_LEN_RANGE)},
    {"C_Decrypt", "short ciphertext, envelope", .prep = P_ENVELOPE_DECRYPT, .in_len = 48,
     WANT(CKR_ENCRYPTED_DATA_LEN_RANGE)},
    {"C_UnwrapKey", "zero-length wrapped key", .mech = &m_wrap, .obj = O_AES, .in_len = ZERO,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE), WANT(CKR_WRAPPED_KEY_LEN_RANGE)},
    /* A zero-length PIN is wrong or out of range, the spec says either. */
    {"C_Login", "zero-length PIN", .prep = P_LOGOUT, .pin_len = ZERO,
     WANT(CKR_PIN_INCORRECT, CKR_PIN_LEN_RANGE)},

    /* Invalid and stale sessions on the paths cmkp11 answers itself, for CMKs (every
     * session function meets both with plain objects in sessions_invalid below). */
    {"C_GetAttributeValue", "CMK, closed session", .sess = S_CLOSED, .obj = O_AES,
     TMPL(LABEL("x")), WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_SetAttributeValue", "CMK, closed session", .sess = S_CLOSED, .obj = O_AES,
     TMPL(LABEL("x")), WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_DestroyObject", "CMK, unknown session", .sess = S_BOGUS, .obj = O_AES,
     WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_CopyObject", "CMK, closed session", .sess = S_CLOSED, .obj = O_AES, TMPL(SESSION),
     WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_GetObjectSize", "CMK, closed session", .sess = S_CLOSED, .obj = O_EC_PUB,
     WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_GenerateKey", "CMK, closed session", .sess = S_CLOSED, .mech = &m_aes_gen,
     TMPL(TOKEN, VALUE_LEN, LABEL("closed")), WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_GenerateKeyPair", "CMK, unknown session", .sess = S_BOGUS, .mech = &m_ec_gen,
     TMPL(TOKEN, LABEL("closed")), TMPL2(TOKEN, EC_PARAMS), WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_CreateObject", "token key import, closed session", .sess = S_CLOSED,
     TMPL(TOKEN, SECRET_CLASS, AES_TYPE, {CKA_VALUE, derive_data, 16}),
     WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_FindObjectsInit", "closed session", .sess = S_CLOSED, TMPL(LABEL("hostile-aes")),
     WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_EncryptInit", "envelope, closed session", .sess = S_CLOSED, .mech = &m_envelope,
     .obj = O_AES, WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_DecryptInit", "CMK, unknown session", .sess = S_BOGUS, .mech = &m_gcm, .obj = O_AES,
     WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_SignInit", "CMK, closed session", .sess = S_CLOSED, .mech = &m_ecdsa, .obj = O_EC_PRIV,
     WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_WrapKey", "CMK wrapping, closed session", .sess = S_CLOSED, .mech = &m_wrap,
     .obj = O_AES, .obj2 = O_SESSION, WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_DeriveKey", "CMK base key, closed session", .sess = S_CLOSED, .mech = &m_derive,
     .obj = O_AES, TMPL(SESSION, SECRET_CLASS, AES_TYPE, VALUE_LEN_16),
     WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_SetOperationState", "CMK key, closed session", .sess = S_CLOSED, .obj = O_AES,
     .obj2 = O_NONE, WANT(CKR_SESSION_HANDLE_INVALID, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_Login", "closed session", .sess = S_CLOSED, WANT(CKR_SESSION_HANDLE_INVALID)},
    {"C_Logout", "unknown session", .sess = S_BOGUS, WANT(CKR_SESSION_HANDLE_INVALID)},

    /* Invalid and stale object handles. */
    {"C_DestroyObject", "unknown CMK handle", .obj = O_BOGUS_CMK, WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_DestroyObject", "unknown handle", .obj = O_BOGUS, WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_DestroyObject", "destroyed CMK object", .obj = O_STALE_CMK,
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_DestroyObject", "destroyed object", .obj = O_STALE, WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_DestroyObject", "CMK pending deletion", .obj = O_PENDING, WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_DestroyObject", "handle 0", .obj = O_NONE, WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_GetObjectSize", "unknown CMK handle", .obj = O_BOGUS_CMK, WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_GetObjectSize", "destroyed CMK object", .obj = O_STALE_CMK,
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_GetObjectSize", "destroyed object", .obj = O_STALE, WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_GetAttributeValue", "unknown CMK handle", .obj = O_BOGUS_CMK, TMPL(LABEL("x")),
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_GetAttributeValue", "destroyed CMK object", .obj = O_STALE_CMK, TMPL(LABEL("x")),
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_GetAttributeValue", "destroyed object", .obj = O_STALE, TMPL(LABEL("x")),
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_SetAttributeValue", "unknown CMK handle", .obj = O_BOGUS_CMK, TMPL(LABEL("x")),
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_SetAttributeValue", "destroyed CMK object", .obj = O_STALE_CMK, TMPL(LABEL("x")),
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_SetAttributeValue", "destroyed object", .obj = O_STALE, TMPL(LABEL("x")),
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_CopyObject", "unknown CMK handle", .obj = O_BOGUS_CMK, TMPL(SESSION),
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_CopyObject", "destroyed CMK object", .obj = O_STALE_CMK, TMPL(SESSION),
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    {"C_CopyObject", "destroyed object", .obj = O_STALE, TMPL(SESSION),
     WANT(CKR_OBJECT_HANDLE_INVALID)},
    /* A backend handle naming nothing: the backend's answer (SoftHSMv2:
     * CKR_OBJECT_HANDLE_INVALID), or the spec's where cmkp11 answers itself. */
    {"C_EncryptInit", "unknown CMK handle", .mech = &m_gcm, .obj = O_BOGUS_CMK,
     WANT(CKR_KEY_HANDLE_INVALID)},
    {"C_EncryptInit", "unknown handle", .mech = &m_gcm, .obj = O_BOGUS,
     WANT(CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID)},
    {"C_EncryptInit", "envelope, unknown CMK handle", .mech = &m_envelope, .obj = O_BOGUS_CMK,
     WANT(CKR_KEY_HANDLE_INVALID)},
    {"C_EncryptInit", "envelope, destroyed object", .mech = &m_envelope, .obj = O_STALE,
     WANT(CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID)},
    {"C_DecryptInit", "destroyed object", .mech = &m_gcm, .obj = O_STALE,
     WANT(CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID)},
    {"C_DecryptInit", "envelope, handle 0", .mech = &m_envelope, .obj = O_NONE,
     WANT(CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID)},
    {"C_SignInit", "destroyed CMK object", .mech = &m_ecdsa, .obj = O_STALE_CMK,
     WANT(CKR_KEY_HANDLE_INVALID)},
    {"C_SignInit", "unknown handle", .mech = &m_ecdsa, .obj = O_BOGUS,
     WANT(CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID)},
    {"C_SignRecoverInit", "unknown CMK handle", .mech = &m_ecdsa, .obj = O_BOGUS_CMK,
     WANT(CKR_KEY_HANDLE_INVALID)},
    {"C_VerifyInit", "destroyed CMK object", .mech = &m_ecdsa, .obj = O_STALE_CMK,
     WANT(CKR_KEY_HANDLE_INVALID)},
    {"C_VerifyInit", "destroyed object", .mech = &m_ecdsa, .obj = O_STALE,
     WANT(CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID)},
    {"C_VerifyRecoverInit", "unknown handle", .mech = &m_ecdsa, .obj = O_BOGUS,
     WANT(CKR_KEY_HANDLE_INVALID, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_DigestKey", "unknown CMK handle", .prep = P_DIGEST, .obj = O_BOGUS_CMK,
     WANT(CKR_KEY_HANDLE_INVALID)},
    {"C_DigestKey", "destroyed object", .prep = P_DIGEST, .obj = O_STALE,
     WANT(CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID)},
    {"C_WrapKey", "unknown wrapping CMK", .mech = &m_wrap, .obj = O_BOGUS_CMK, .obj2 = O_SESSION,
     WANT(CKR_WRAPPING_KEY_HANDLE_INVALID)},
    {"C_WrapKey", "destroyed wrapping key", .mech = &m_wrap, .obj = O_STALE, .obj2 = O_SESSION,
     WANT(CKR_WRAPPING_KEY_HANDLE_INVALID)},
    {"C_WrapKey", "destroyed key to wrap", .mech = &m_wrap, .obj = O_AES, .obj2 = O_STALE,
     WANT(CKR_KEY_HANDLE_INVALID)},
    {"C_UnwrapKey", "destroyed unwrapping key", .mech = &m_wrap, .obj = O_STALE,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE), WANT(CKR_UNWRAPPING_KEY_HANDLE_INVALID)},
    {"C_DeriveKey", "unknown CMK base key", .mech = &m_derive, .obj = O_BOGUS_CMK,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, VALUE_LEN_16), WANT(CKR_KEY_HANDLE_INVALID)},
    {"C_DeriveKey", "destroyed base key", .mech = &m_derive, .obj = O_STALE,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, VALUE_LEN_16),
     WANT(CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID)},
    {"C_SetOperationState", "unknown CMK key", .prep = P_DIGEST, .obj = O_BOGUS_CMK,
     .obj2 = O_NONE, WANT(CKR_KEY_HANDLE_INVALID, CKR_FUNCTION_NOT_SUPPORTED)},

    /* Invalid slots. */
    {"C_GetSlotInfo", "slot 7", .slot = 7, WANT(CKR_SLOT_ID_INVALID)},
    {"C_GetTokenInfo", "slot 7", .slot = 7, WANT(CKR_SLOT_ID_INVALID)},
    {"C_GetMechanismList", "slot 7", .slot = 7, WANT(CKR_SLOT_ID_INVALID)},
    {"C_GetMechanismInfo", "slot 7", .slot = 7, WANT(CKR_SLOT_ID_INVALID)},
    {"C_InitToken", "slot 7", .slot = 7, WANT(CKR_SLOT_ID_INVALID)},
    {"C_OpenSession", "slot 7", .slot = 7, WANT(CKR_SLOT_ID_INVALID)},
    {"C_CloseAllSessions", "slot 7", .slot = 7, WANT(CKR_SLOT_ID_INVALID)},

    /* Operations not initialised. */
    {"C_Encrypt", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_EncryptUpdate", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_EncryptFinal", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_Decrypt", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_DecryptUpdate", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_DecryptFinal", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_Digest", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_DigestUpdate", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_DigestKey", "no operation", .obj = O_SESSION, WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_DigestFinal", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_Sign", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_SignUpdate", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_SignFinal", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_SignRecover", "no operation",
     WANT(CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_Verify", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_VerifyUpdate", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_VerifyFinal", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_VerifyRecover", "no operation",
     WANT(CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_DigestEncryptUpdate", "no operation",
     WANT(CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_DecryptDigestUpdate", "no operation",
     WANT(CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_SignEncryptUpdate", "no operation",
     WANT(CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_DecryptVerifyUpdate", "no operation",
     WANT(CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED)},
    {"C_FindObjects", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    {"C_FindObjectsFinal", "no operation", WANT(CKR_OPERATION_NOT_INITIALIZED)},
    /* An operation already active. */
    {"C_EncryptInit", "encryption active", .prep = P_ENCRYPT, .mech = &m_gcm,
     WANT(CKR_OPERATION_ACTIVE)},
    {"C_EncryptInit", "envelope encryption active", .prep = P_ENVELOPE, .mech = &m_envelope,
     WANT(CKR_OPERATION_ACTIVE)},
    {"C_DigestInit", "digest active", .prep = P_DIGEST, WANT(CKR_OPERATION_ACTIVE)},
    {"C_SignInit", "signature active", .prep = P_SIGN, .mech = &m_ecdsa, .obj = O_EC_PRIV,
     WANT(CKR_OPERATION_ACTIVE)},
    {"C_FindObjectsInit", "find active", .prep = P_FIND, WANT(CKR_OPERATION_ACTIVE)},

    /* Writes in a read-only session. */
    {"C_GenerateKey", "CMK, read-only session", .sess = S_RO, .mech = &m_aes_gen,
     TMPL(TOKEN, VALUE_LEN, LABEL("ro")), WANT(CKR_SESSION_READ_ONLY)},
    {"C_GenerateKeyPair", "CMK, read-only session", .sess = S_RO, .mech = &m_ec_gen,
     TMPL(TOKEN, LABEL("ro")), TMPL2(TOKEN, EC_PARAMS), WANT(CKR_SESSION_READ_ONLY)},
    {"C_CreateObject", "token data object, read-only session", .sess = S_RO,
     TMPL(TOKEN, DATA_CLASS, LABEL("ro")), WANT(CKR_SESSION_READ_ONLY)},
    {"C_CreateObject", "token key import, read-only session", .sess = S_RO,
     TMPL(TOKEN, SECRET_CLASS, AES_TYPE, {CKA_VALUE, derive_data, 16}),
     WANT(CKR_SESSION_READ_ONLY)},
    {"C_CopyObject", "into the token, read-only session", .sess = S_RO, .obj = O_SESSION_NX,
     TMPL(TOKEN), WANT(CKR_SESSION_READ_ONLY)},
    {"C_DestroyObject", "CMK, read-only session", .sess = S_RO, .obj = O_AES,
     WANT(CKR_SESSION_READ_ONLY)},
    {"C_SetAttributeValue", "CMK, read-only session", .sess = S_RO, .obj = O_AES,
     TMPL(LABEL("renamed")), WANT(CKR_SESSION_READ_ONLY)},
    {"C_SetPIN", "read-only session", .sess = S_RO, WANT(CKR_SESSION_READ_ONLY)},
    {"C_UnwrapKey", "token key, read-only session", .sess = S_RO, .mech = &m_wrap, .obj = O_AES,
     TMPL(TOKEN, SECRET_CLASS, AES_TYPE), WANT(CKR_SESSION_READ_ONLY)},
    {"C_DeriveKey", "token key, read-only session", .sess = S_RO, .mech = &m_derive,
     .obj = O_SESSION, TMPL(TOKEN, SECRET_CLASS, AES_TYPE, VALUE_LEN_16),
     WANT(CKR_SESSION_READ_ONLY)},
    /* An SO login while a read-only session exists. */
    {"C_Login", "SO with a read-only session open", .prep = P_LOGOUT, .sess = S_RO,
     .user = U_SO, WANT(CKR_SESSION_READ_ONLY_EXISTS)},

    /* Logins. */
    {"C_Login", "user twice", WANT(CKR_USER_ALREADY_LOGGED_IN)},
    {"C_Login", "SO while the user is logged in", .user = U_SO,
     WANT(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)},
    {"C_Login", "unknown user type", .prep = P_LOGOUT, .user = U_UNKNOWN, WANT(CKR_USER_TYPE_INVALID)},
    /* The backend's answer: the spec's code, or SoftHSMv2's CKR_OK. */
    {"C_Logout", "not logged in", .prep = P_LOGOUT, WANT(CKR_OK, CKR_USER_NOT_LOGGED_IN)},
    {"C_InitPIN", "user session", WANT(CKR_USER_NOT_LOGGED_IN)},
    {"C_GenerateKey", "CMK, not logged in", .prep = P_LOGOUT, .mech = &m_aes_gen,
     TMPL(TOKEN, VALUE_LEN, LABEL("out")), WANT(CKR_USER_NOT_LOGGED_IN)},
    {"C_GenerateKeyPair", "CMK, not logged in", .prep = P_LOGOUT, .mech = &m_ec_gen,
     TMPL(TOKEN, LABEL("out")), TMPL2(TOKEN, EC_PARAMS), WANT(CKR_USER_NOT_LOGGED_IN)},
    {"C_CreateObject", "private object, not logged in", .prep = P_LOGOUT,
     TMPL(SESSION, DATA_CLASS, {CKA_PRIVATE, &yes, 1}), WANT(CKR_USER_NOT_LOGGED_IN)},
    {"C_SignInit", "CMK, not logged in", .prep = P_LOGOUT, .mech = &m_ecdsa, .obj = O_EC_PRIV,
     WANT(CKR_USER_NOT_LOGGED_IN)},
    {"C_EncryptInit", "envelope CMK, not logged in", .prep = P_LOGOUT, .mech = &m_envelope,
     WANT(CKR_USER_NOT_LOGGED_IN)},

    /* Templates: wrong sizes, unknown types, duplicates. A duplicate with another value is
     * inconsistent; with the same value the spec lets the call succeed as if given once or
     * fail with CKR_TEMPLATE_INCONSISTENT (such rows make session objects only). */
    {"C_GenerateKey", "CMK, 2-byte CKA_VALUE_LEN", .mech = &m_aes_gen,
     TMPL(TOKEN, SHORT_VALUE_LEN), WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_GenerateKey", "CMK, empty CKA_VALUE_LEN", .mech = &m_aes_gen,
     TMPL(TOKEN, EMPTY_VALUE_LEN), WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_GenerateKey", "8-byte CKA_TOKEN", .mech = &m_aes_gen, TMPL(LONG_TOKEN, VALUE_LEN),
     WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_GenerateKey", "session key, 2-byte CKA_VALUE_LEN", .mech = &m_aes_gen,
     TMPL(SESSION, SHORT_VALUE_LEN), WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_GenerateKey", "CMK, unknown attribute", .mech = &m_aes_gen, TMPL(TOKEN, VALUE_LEN, UNKNOWN),
     WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_GenerateKey", "CMK, unknown vendor attribute", .mech = &m_aes_gen,
     TMPL(TOKEN, VALUE_LEN, UNKNOWN_VENDOR), WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_GenerateKey", "session key, unknown attribute", .mech = &m_aes_gen,
     TMPL(SESSION, VALUE_LEN, UNKNOWN), WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_GenerateKey", "session key, unknown vendor attribute", .mech = &m_aes_gen,
     TMPL(SESSION, VALUE_LEN, UNKNOWN_VENDOR), WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_GenerateKey", "CMK, label twice", .mech = &m_aes_gen,
     TMPL(TOKEN, VALUE_LEN, LABEL("a"), LABEL("b")), WANT(CKR_TEMPLATE_INCONSISTENT)},
    {"C_GenerateKey", "session key, length twice alike", .mech = &m_aes_gen,
     TMPL(SESSION, VALUE_LEN, VALUE_LEN), WANT(CKR_OK, CKR_TEMPLATE_INCONSISTENT)},
    {"C_GenerateKey", "CMK, label without value", .mech = &m_aes_gen,
     TMPL(TOKEN, VALUE_LEN, NULL_VALUE), WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_GenerateKeyPair", "CMK, 1-byte CKA_CLASS", .mech = &m_ec_gen,
     TMPL(TOKEN, {CKA_CLASS, &private_class, 1}), TMPL2(TOKEN, EC_PARAMS),
     WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_GenerateKeyPair", "CMK, unknown attribute", .mech = &m_ec_gen, TMPL(TOKEN, UNKNOWN),
     TMPL2(TOKEN, EC_PARAMS), WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_GenerateKeyPair", "CMK, unknown attribute in the public template", .mech = &m_ec_gen,
     TMPL(TOKEN), TMPL2(TOKEN, EC_PARAMS, UNKNOWN), WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_GenerateKeyPair", "CMK, label twice", .mech = &m_ec_gen,
     TMPL(TOKEN, LABEL("a"), LABEL("b")), TMPL2(TOKEN, EC_PARAMS),
     WANT(CKR_TEMPLATE_INCONSISTENT)},
    {"C_GenerateKeyPair", "CMK, curve twice", .mech = &m_ec_gen, TMPL(TOKEN),
     TMPL2(TOKEN, EC_PARAMS, {CKA_EC_PARAMS, p256, 4}), WANT(CKR_TEMPLATE_INCONSISTENT)},
    {"C_CreateObject", "token key import, 2-byte CKA_VALUE_LEN", 
     TMPL(TOKEN, SECRET_CLASS, AES_TYPE, {CKA_VALUE, derive_data, 16}, SHORT_VALUE_LEN),
     WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_CreateObject", "token key import, unknown attribute",
     TMPL(TOKEN, SECRET_CLASS, AES_TYPE, {CKA_VALUE, derive_data, 16}, UNKNOWN),
     WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_CreateObject", "token key import, value twice",
     TMPL(TOKEN, SECRET_CLASS, AES_TYPE, {CKA_VALUE, derive_data, 16}, {CKA_VALUE, iv, 12}),
     WANT(CKR_TEMPLATE_INCONSISTENT)},
    {"C_CreateObject", "token data object, 1-byte CKA_CLASS", TMPL(TOKEN, {CKA_CLASS, &data_class, 1}),
     WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_CreateObject", "token data object, unknown attribute", TMPL(TOKEN, DATA_CLASS, UNKNOWN),
     WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_CreateObject", "token data object, label twice",
     TMPL(TOKEN, DATA_CLASS, LABEL("a"), LABEL("b")), WANT(CKR_TEMPLATE_INCONSISTENT)},
    {"C_CreateObject", "session data object, class twice alike",
     TMPL(SESSION, DATA_CLASS, DATA_CLASS), WANT(CKR_OK, CKR_TEMPLATE_INCONSISTENT)},
    {"C_SetAttributeValue", "CMK, 2-byte CKA_CMK_KEY_STATE", .obj = O_AES,
     TMPL({CKA_CMK_KEY_STATE, &len32, 2}), WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_SetAttributeValue", "CMK, unknown attribute", .obj = O_AES, TMPL(UNKNOWN),
     WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_SetAttributeValue", "CMK, unknown vendor attribute", .obj = O_AES, TMPL(UNKNOWN_VENDOR),
     WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_SetAttributeValue", "CMK, label twice", .obj = O_AES, TMPL(LABEL("a"), LABEL("b")),
     WANT(CKR_TEMPLATE_INCONSISTENT)},
    {"C_SetAttributeValue", "CMK, label without value", .obj = O_AES, TMPL(NULL_VALUE),
     WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_SetAttributeValue", "session key, 8-byte CKA_SENSITIVE", .obj = O_SESSION,
     TMPL({CKA_SENSITIVE, &len32, sizeof(len32)}), WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_SetAttributeValue", "session key, unknown attribute", .obj = O_SESSION, TMPL(UNKNOWN),
     WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_SetAttributeValue", "session key, label twice", .obj = O_SESSION,
     TMPL(LABEL("a"), LABEL("b")), WANT(CKR_TEMPLATE_INCONSISTENT)},
    /* A find matches objects that have every attribute as given: a value of the wrong
     * size or a type nothing has matches nothing, or the spec lets the call refuse it. */
    {"C_FindObjectsInit", "1-byte CKA_CLASS", TMPL(SHORT_CLASS),
     WANT(CKR_OK, CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_FindObjectsInit", "unknown attribute", TMPL(UNKNOWN),
     WANT(CKR_OK, CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_FindObjectsInit", "unknown vendor attribute", TMPL(UNKNOWN_VENDOR),
     WANT(CKR_OK, CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_FindObjectsInit", "class twice, differently", TMPL(SECRET_CLASS, DATA_CLASS),
     WANT(CKR_OK, CKR_TEMPLATE_INCONSISTENT)},
    {"C_FindObjectsInit", "label without value", TMPL(NULL_VALUE),
     WANT(CKR_OK, CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_CopyObject", "8-byte CKA_TOKEN", .obj = O_SESSION, TMPL(LONG_TOKEN),
     WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_CopyObject", "unknown attribute", .obj = O_SESSION, TMPL(SESSION, UNKNOWN),
     WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_CopyObject", "into the token, unknown attribute", .obj = O_SESSION_NX,
     TMPL(TOKEN, UNKNOWN), WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    /* (A plain copy of it is an ordinary backend object: [policy] extractable_keys.) */
    {"C_CopyObject", "into the token, extractable key, KMS vocabulary", .obj = O_SESSION,
     TMPL(TOKEN, DESCRIPTION), WANT(CKR_ACTION_PROHIBITED)},
    {"C_CopyObject", "into the token, label twice", .obj = O_SESSION_NX,
     TMPL(TOKEN, LABEL("a"), LABEL("b")), WANT(CKR_TEMPLATE_INCONSISTENT)},
    {"C_UnwrapKey", "2-byte CKA_VALUE_LEN", .mech = &m_wrap, .obj = O_AES,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, SHORT_VALUE_LEN), WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_UnwrapKey", "unknown attribute", .mech = &m_wrap, .obj = O_AES,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, UNKNOWN), WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_UnwrapKey", "class twice, differently", .mech = &m_wrap, .obj = O_AES,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, DATA_CLASS), WANT(CKR_TEMPLATE_INCONSISTENT)},
    {"C_DeriveKey", "2-byte CKA_VALUE_LEN", .mech = &m_derive, .obj = O_SESSION,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, SHORT_VALUE_LEN), WANT(CKR_ATTRIBUTE_VALUE_INVALID)},
    {"C_DeriveKey", "unknown attribute", .mech = &m_derive, .obj = O_SESSION,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, VALUE_LEN_16, UNKNOWN),
     WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_DeriveKey", "unknown vendor attribute", .mech = &m_derive, .obj = O_SESSION,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, VALUE_LEN_16, UNKNOWN_VENDOR),
     WANT(CKR_ATTRIBUTE_TYPE_INVALID)},
    {"C_DeriveKey", "class twice, differently", .mech = &m_derive, .obj = O_SESSION,
     TMPL(SESSION, SECRET_CLASS, AES_TYPE, VALUE_LEN_16, DATA_CLASS),
     WANT(CKR_TEMPLATE_INCONSISTENT)},
    {"C_DeriveKey", "token key, label twice", .mech = &m_derive, .obj = O_SESSION,
     TMPL(TOKEN, SECRET_CLASS, AES_TYPE, VALUE_LEN_16, LABEL("a"), LABEL("b")),
     WANT(CKR_TEMPLATE_INCONSISTENT)},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* ---- running rows ---- */

static CK_OBJECT_HANDLE objects[O_COUNT];
static CK_SESSION_HANDLE main_session;
static unsigned char wrapped[40];
static CK_ULONG wrapped_len;

static const char *pin(void)
{
    return getenv("CMK_PIN") ? getenv("CMK_PIN") : "1234";
}

static void login(CK_SESSION_HANDLE s)
{
    CHECK_RV(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin(), strlen(pin())), CKR_OK);
}

/* Buffers every call points into. */
struct buffers {
    CK_ULONG out[512]; /* aligned for slot, mechanism and handle lists */
    CK_ULONG out_len;
    CK_BYTE in[64];
    CK_BYTE info[1024];
    CK_OBJECT_HANDLE h, h2;
    CK_SESSION_HANDLE sp;
    CK_C_INITIALIZE_ARGS init_args;
};

/* Good arguments for session s: a caller that made no mistake. */
static void call_defaults(struct call *c, struct buffers *b, CK_SESSION_HANDLE s)
{
    memset(b, 0, sizeof(*b));
    memset(c, 0, sizeof(*c));
    memset(b->in, 0x5a, sizeof(b->in));
    c->slot = 0;
    c->s = s;
    c->obj = objects[O_AES];
    c->mech = &m_gcm;
    c->type = CKM_AES_GCM;
    c->in = b->in;
    c->in_len = 32;
    c->out = (CK_BYTE_PTR)b->out;
    b->out_len = sizeof(b->out);
    c->out_len = &b->out_len;
    c->sig_len = 64;
    c->info = b->info;
    c->pin = (CK_UTF8CHAR_PTR)pin();
    c->pin_len = strlen(pin());
    c->h = &b->h;
    c->h2 = &b->h2;
    c->max = 16;
    c->sp = &b->sp;
    c->user = CKU_USER;
    c->flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
}

static CK_SESSION_HANDLE open_session(CK_FLAGS flags)
{
    CK_SESSION_HANDLE s = 0;
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION | flags, NULL, NULL, &s), CKR_OK);
    return s;
}

static CK_RV prepare(enum prep prep, CK_SESSION_HANDLE s)
{
    static CK_BYTE digest[32] = {1};
    CK_ULONG n;
    switch (prep) {
    case P_NONE: return CKR_OK;
    case P_ENCRYPT: return p11->C_EncryptInit(s, &m_gcm, objects[O_AES]);
    case P_DECRYPT: return p11->C_DecryptInit(s, &m_gcm, objects[O_AES]);
    case P_ENVELOPE: return p11->C_EncryptInit(s, &m_envelope, objects[O_AES]);
    case P_ENVELOPE_DECRYPT: return p11->C_DecryptInit(s, &m_envelope, objects[O_AES]);
    case P_DIGEST: return p11->C_DigestInit(s, &m_sha256);
    case P_SIGN: return p11->C_SignInit(s, &m_ecdsa, objects[O_EC_PRIV]);
    case P_VERIFY: {
        CK_BYTE sig[64];
        n = sizeof(sig);
        CK_RV rv = p11->C_SignInit(s, &m_ecdsa, objects[O_EC_PRIV]);
        if (rv == CKR_OK) rv = p11->C_Sign(s, digest, sizeof(digest), sig, &n);
        return rv == CKR_OK ? p11->C_VerifyInit(s, &m_ecdsa, objects[O_EC_PUB]) : rv;
    }
    case P_FIND: return p11->C_FindObjectsInit(s, NULL, 0);
    case P_LOGOUT: return p11->C_Logout(main_session);
    }
    return CKR_GENERAL_ERROR;
}

static bool wanted(const struct row *r, CK_RV rv)
{
    for (int i = 0; i < MAX_WANT && (i == 0 || r->want[i] != CKR_OK); i++)
        if (r->want[i] == rv) return true;
    return false;
}

static void run_row(const struct row *r)
{
    const struct fn *f = function_named(r->fn);
    CK_SESSION_HANDLE s = 0;
    if (r->sess == S_RW || r->sess == S_RO)
        s = open_session(r->sess == S_RO ? 0 : CKF_RW_SESSION);
    CK_RV prv = prepare(r->prep, s);
    if (prv != CKR_OK) {
        fprintf(stderr, "  row %s (%s): preparation failed: 0x%lx\n", r->fn, r->what, prv);
        harness_failed_checks++;
    }
    struct call c;
    struct buffers b;
    call_defaults(&c, &b, s);
    if (r->sess == S_BOGUS) c.s = 0x7777;
    if (r->sess == S_CLOSED) {
        c.s = open_session(CKF_RW_SESSION);
        p11->C_CloseSession(c.s);
    }
    c.slot = r->slot;
    c.obj = objects[r->obj];
    c.obj2 = objects[r->obj2 ? r->obj2 : O_NONE];
    if (strcmp(r->fn, "C_WrapKey") != 0 && strcmp(r->fn, "C_SetOperationState") != 0)
        c.obj2 = 0;
    if (r->mech) c.mech = r->mech;
    else if (r->obj == O_EC_PRIV || r->obj == O_EC_PUB || r->prep == P_SIGN) c.mech = &m_ecdsa;
    else if (r->prep == P_DIGEST || strcmp(r->fn, "C_DigestInit") == 0) c.mech = &m_sha256;
    c.tmpl = r->tmpl;
    c.count = r->count;
    c.tmpl2 = r->tmpl2;
    c.count2 = r->count2;
    if (r->out_len) b.out_len = r->out_len == SHORT ? 0 : r->out_len;
    if (r->in_len) c.in_len = r->in_len == ZERO ? 0 : r->in_len;
    c.user = r->user == U_SO ? CKU_SO : r->user == U_UNKNOWN ? 77 : CKU_USER;
    if (r->pin_len) c.pin_len = r->pin_len == ZERO ? 0 : r->pin_len;
    if (strcmp(r->fn, "C_Initialize") == 0) {
        b.init_args.pReserved = &b; /* must be NULL */
        c.reserved = &b.init_args;
    } else if (strcmp(r->fn, "C_Finalize") == 0) {
        c.reserved = &b; /* must be NULL */
    } else if (strcmp(r->fn, "C_UnwrapKey") == 0) {
        c.in = wrapped;
        if (!r->in_len) c.in_len = wrapped_len;
    }
    unsigned nulls = r->nulls;
    if (nulls & N_MECH) c.mech = NULL;
    if (nulls & N_TMPL) c.tmpl = NULL;
    if (nulls & N_TMPL2) c.tmpl2 = NULL;
    if (nulls & N_IN) c.in = NULL;
    if (nulls & N_OUT) c.out = NULL;
    if (nulls & N_LEN) c.out_len = NULL;
    if (nulls & N_INFO) c.info = NULL;
    if (nulls & N_PIN) c.pin = NULL;
    if (nulls & N_H) c.h = NULL;
    if (nulls & N_H2) c.h2 = NULL;
    if (nulls & N_SP) c.sp = NULL;

    CK_RV rv = f->call(&c);
    if (!wanted(r, rv)) {
        fprintf(stderr, "  row %s (%s): returned 0x%lx, expected 0x%lx", r->fn, r->what, rv,
                r->want[0]);
        for (int i = 1; i < MAX_WANT && r->want[i]; i++) fprintf(stderr, " or 0x%lx", r->want[i]);
        fprintf(stderr, "\n");
        harness_failed_checks++;
    } else if (r->want_len && b.out_len != r->want_len) {
        fprintf(stderr, "  row %s (%s): length %lu, expected %lu\n", r->fn, r->what, b.out_len,
                r->want_len);
        harness_failed_checks++;
    }
    if (rv == CKR_OK && strcmp(r->fn, "C_FindObjectsInit") == 0) {
        CK_OBJECT_HANDLE found[4];
        CK_ULONG n = 99;
        CHECK_RV(p11->C_FindObjects(s, found, 4, &n), CKR_OK);
        if (n != 0) fprintf(stderr, "  row %s (%s): found %lu objects\n", r->fn, r->what, n);
        CHECK(n == 0);
    }
    if (r->prep == P_LOGOUT) {
        p11->C_Logout(main_session);
        login(main_session);
    }
    if (s) CHECK_RV(p11->C_CloseSession(s), CKR_OK);
}

/* The CMKs and objects the rows use, made while the test is set up. */
static void make_token_objects(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CHECK_RV(make_aes(s, "hostile-aes", NULL, 0, &objects[O_AES]), CKR_OK);
    CHECK_RV(make_ec(s, "hostile-ec", NULL, 0, &objects[O_EC_PUB], &objects[O_EC_PRIV]), CKR_OK);
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_ec(s, "hostile-stale", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, pub), CKR_OK);
    objects[O_STALE_CMK] = pub;
    CHECK_RV(make_aes(s, "hostile-pending", NULL, 0, &objects[O_PENDING]), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, objects[O_PENDING]), CKR_OK);
    /* A row number far beyond any made, with the secret key's kind bits. */
    objects[O_BOGUS_CMK] = (objects[O_AES] & ~0x3FFFFFFCUL) | (4242UL << 2);
    objects[O_BOGUS] = 0x00badbadUL;
    objects[O_NONE] = 0;
    CK_ATTRIBUTE data[] = {TOKEN, DATA_CLASS, LABEL("hostile-data")};
    CK_OBJECT_HANDLE h;
    CHECK_RV(p11->C_CreateObject(s, data, 3, &h), CKR_OK);
    fixture_close(s);
}

/* Session objects live with the session that made them, so each process makes its own. */
static void make_session_objects(CK_SESSION_HANDLE s)
{
    CK_ATTRIBUTE key[] = {SESSION, VALUE_LEN, NOT_PRIVATE, {CKA_EXTRACTABLE, &yes, 1},
                          {CKA_DERIVE, &yes, 1}, {CKA_SENSITIVE, &no, 1}};
    CHECK_RV(p11->C_GenerateKey(s, &m_aes_gen, key, 6, &objects[O_SESSION]), CKR_OK);
    CK_ATTRIBUTE nx[] = {SESSION, VALUE_LEN, NOT_PRIVATE, {CKA_EXTRACTABLE, &no, 1}};
    CHECK_RV(p11->C_GenerateKey(s, &m_aes_gen, nx, 4, &objects[O_SESSION_NX]), CKR_OK);
    CK_ATTRIBUTE data[] = {SESSION, DATA_CLASS, NOT_PRIVATE};
    CHECK_RV(p11->C_CreateObject(s, data, 3, &objects[O_STALE]), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, objects[O_STALE]), CKR_OK);
    wrapped_len = sizeof(wrapped);
    CHECK_RV(p11->C_WrapKey(s, &m_wrap, objects[O_AES], objects[O_SESSION], wrapped, &wrapped_len),
             CKR_OK);
}

static bool quiet; /* the child's complaints were heard once already */

/* Runs body in a child process with the module initialised and the user logged in;
 * true when the child finished without a crash and without failed checks. */
static bool in_child(void (*body)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (quiet) freopen("/dev/null", "w", stderr);
        main_session = fixture_open();
        make_session_objects(main_session);
        body();
        fixture_close(main_session);
        fflush(NULL);
        _exit(harness_failed_checks ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) fprintf(stderr, "  the child died of signal %d\n", WTERMSIG(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static size_t first_row, end_row = NROWS;

static void run_table(void)
{
    for (size_t i = first_row; i < end_row; i++) run_row(&rows[i]);
}

/* Runs the rows one at a time and names those after which store or backend differ. */
static void name_rows_that_change_things(void)
{
    char before[8192], after[8192];
    for (size_t i = 0; i < NROWS; i++) {
        first_row = i;
        end_row = i + 1;
        inspect_snapshot(before, sizeof(before));
        quiet = true;
        in_child(run_table);
        quiet = false;
        inspect_snapshot(after, sizeof(after));
        if (strcmp(before, after) != 0)
            fprintf(stderr, "  row %s (%s) changed the token: %s\n", rows[i].fn, rows[i].what,
                    strrchr(after, '#') ? strstr(after, "#tags") : after);
    }
}

/* Runs body over the test's objects in a child; true when store and backend are as
 * they were and the child neither crashed nor failed a check. */
static bool changes_nothing(void (*body)(void))
{
    make_token_objects();
    char before[8192], after[8192];
    bool ok = inspect_snapshot(before, sizeof(before)) == 0;
    CHECK(in_child(body));
    ok = ok && inspect_snapshot(after, sizeof(after)) == 0 && strcmp(before, after) == 0;
    CHECK(ok);
    return ok;
}

static void test_every_row_answers_the_spec_and_changes_nothing(void)
{
    if (!changes_nothing(run_table)) name_rows_that_change_things();
    /* The keys still work: nothing the table did reached them. */
    CK_SESSION_HANDLE s = fixture_open();
    CHECK_RV(aes_gcm_roundtrip(s, objects[O_AES]), CKR_OK);
    CHECK_RV(sign_verify_ec(s, objects[O_EC_PRIV], objects[O_EC_PUB]), CKR_OK);
    fixture_close(s);
}

/* Arguments good enough that only the missing initialisation is wrong. */
static void expect_not_initialized(CK_SESSION_HANDLE stale)
{
    for (size_t i = 0; i < NFUNCTIONS; i++) {
        const struct fn *f = &functions[i];
        if (!strcmp(f->name, "C_Initialize") || !strcmp(f->name, "C_GetFunctionList")) continue;
        struct call c;
        struct buffers b;
        call_defaults(&c, &b, stale);
        c.obj = objects[O_AES];
        CK_RV rv = f->call(&c);
        if (rv != CKR_CRYPTOKI_NOT_INITIALIZED) {
            fprintf(stderr, "  %s uninitialised: returned 0x%lx\n", f->name, rv);
            harness_failed_checks++;
        }
    }
}

static void test_every_function_refuses_before_initialize_and_after_finalize(void)
{
    expect_not_initialized(1);
    CK_SESSION_HANDLE s = fixture_open();
    CHECK_RV(make_aes(s, "hostile-aes", NULL, 0, &objects[O_AES]), CKR_OK);
    CHECK_RV(p11->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
    expect_not_initialized(s);
    CHECK_RV(p11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* The function list is the same whatever the state, and is every v2.40 function. */
    CK_FUNCTION_LIST_PTR list = NULL;
    CHECK_RV(p11->C_GetFunctionList(&list), CKR_OK);
    CHECK(list == p11 && list->version.major == 2 && list->version.minor == 40);
    for (size_t i = 0; i < NFUNCTIONS; i++)
        CHECK(*(void **)((char *)list + functions[i].offset) != NULL);
    /* A session of the earlier initialisation means nothing to the next one. */
    CHECK_RV(p11->C_Initialize(NULL), CKR_OK);
    CK_SESSION_INFO info;
    CHECK_RV(p11->C_GetSessionInfo(s, &info), CKR_SESSION_HANDLE_INVALID);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
    CHECK(inspect_backend_material() == 1);
}

/* Every function that takes a session, given one never opened or one just closed. */
static void sessions_invalid(void)
{
    for (size_t i = 0; i < NFUNCTIONS; i++) {
        const struct fn *f = &functions[i];
        if (!takes_session(f)) continue;
        for (int closed = 0; closed < 2; closed++) {
            struct call c;
            struct buffers b;
            CK_SESSION_HANDLE s = 0x7777;
            if (closed) {
                s = open_session(CKF_RW_SESSION);
                CHECK_RV(p11->C_CloseSession(s), CKR_OK);
            }
            call_defaults(&c, &b, s);
            CK_ATTRIBUTE data[] = {SESSION, DATA_CLASS, NOT_PRIVATE};
            c.tmpl = data;
            c.count = 3;
            c.obj = objects[O_SESSION];
            CK_RV rv = f->call(&c);
            if (rv != CKR_SESSION_HANDLE_INVALID) {
                fprintf(stderr, "  %s with a %s session: returned 0x%lx\n", f->name,
                        closed ? "closed" : "never opened", rv);
                harness_failed_checks++;
            }
        }
    }
}

static void test_every_session_function_refuses_invalid_and_closed_sessions(void)
{
    changes_nothing(sessions_invalid);
}

/* After a short buffer the operation goes on: the same call with room succeeds. */
static void test_short_buffers_keep_the_operation(void)
{
    main_session = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(main_session, "short", NULL, 0, &key), CKR_OK);
    CK_MECHANISM *mechs[] = {&m_gcm, &m_envelope};
    for (int m = 0; m < 2; m++) {
        CK_BYTE msg[20] = {3}, ct[128], pt[128];
        CK_ULONG n = 0;
        CHECK_RV(p11->C_EncryptInit(main_session, mechs[m], key), CKR_OK);
        CHECK_RV(p11->C_Encrypt(main_session, msg, sizeof(msg), ct, &n), CKR_BUFFER_TOO_SMALL);
        CK_ULONG need = n;
        CHECK(need >= sizeof(msg) + 16);
        n = need - 1;
        CHECK_RV(p11->C_Encrypt(main_session, msg, sizeof(msg), ct, &n), CKR_BUFFER_TOO_SMALL);
        CHECK(n == need);
        CHECK_RV(p11->C_Encrypt(main_session, msg, sizeof(msg), ct, &n), CKR_OK);
        CHECK(n == need);
        CK_ULONG ct_len = n;
        CHECK_RV(p11->C_DecryptInit(main_session, mechs[m], key), CKR_OK);
        n = 0;
        CHECK_RV(p11->C_Decrypt(main_session, ct, ct_len, pt, &n), CKR_BUFFER_TOO_SMALL);
        CHECK(n >= sizeof(msg));
        n = sizeof(pt);
        CHECK_RV(p11->C_Decrypt(main_session, ct, ct_len, pt, &n), CKR_OK);
        CHECK(n == sizeof(msg) && memcmp(pt, msg, n) == 0);
    }
    /* A short attribute buffer: CKR_BUFFER_TOO_SMALL, that attribute's length unavailable,
     * the others still answered. */
    CK_BYTE label[2], key_id[64];
    CK_ATTRIBUTE t[] = {{CKA_LABEL, label, sizeof(label)}, {CKA_CMK_KEY_ID, key_id, sizeof(key_id)}};
    CHECK_RV(p11->C_GetAttributeValue(main_session, key, t, 2), CKR_BUFFER_TOO_SMALL);
    CHECK(t[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    CHECK(t[1].ulValueLen == 36);
    /* An unknown attribute: CKR_ATTRIBUTE_TYPE_INVALID, the others still answered. */
    CK_ATTRIBUTE u[] = {UNKNOWN, {CKA_CMK_KEY_ID, key_id, sizeof(key_id)}};
    CHECK_RV(p11->C_GetAttributeValue(main_session, key, u, 2), CKR_ATTRIBUTE_TYPE_INVALID);
    CHECK(u[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    CHECK(u[1].ulValueLen == 36);
    /* A sensitive attribute: CKR_ATTRIBUTE_SENSITIVE. */
    CK_ATTRIBUTE v[] = {{CKA_VALUE, key_id, sizeof(key_id)}};
    CHECK_RV(p11->C_GetAttributeValue(main_session, key, v, 1), CKR_ATTRIBUTE_SENSITIVE);
    CHECK(v[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    fixture_close(main_session);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_every_row_answers_the_spec_and_changes_nothing),
        T(test_every_function_refuses_before_initialize_and_after_finalize),
        T(test_every_session_function_refuses_invalid_and_closed_sessions),
        T(test_short_buffers_keep_the_operation),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
