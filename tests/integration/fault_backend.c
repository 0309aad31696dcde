/* fault_backend.c - a PKCS#11 module that forwards to the real backend (CMK_FAULT_BACKEND)
 * and, while the file CMK_FAULT_FILE exists, answers CKR_DEVICE_ERROR to the calls that
 * make, find, read or use objects, as a failing HSM would. When the file says "late", only
 * key generation fails, and only after the key was made (an HSM that failed to answer).
 * Used by test_faults.
 *
 * It also stands for a broken or hostile backend (test_config): CMK_FAULT_NULL_ENTRY names
 * an entry its function list leaves NULL, CMK_FAULT_VERSION_MAJOR sets the list's major
 * version, and its C_Initialize forwards (a proxy's does too), so with CMK_FAULT_BACKEND
 * naming cmkp11 it is a proxy that lists cmkp11. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <p11-kit/pkcs11.h>
#include <stdlib.h>
#include <unistd.h>

static CK_FUNCTION_LIST real_copy, list;
static CK_FUNCTION_LIST_PTR real;

/* 0: no fault; 1: every wrapped call fails; 2: generation fails after the fact. */
static int fault(void)
{
    const char *flag = getenv("CMK_FAULT_FILE");
    FILE *f = flag ? fopen(flag, "r") : NULL;
    if (!f) return 0;
    char mode[16] = "";
    if (!fgets(mode, sizeof(mode), f)) mode[0] = '\0';
    fclose(f);
    return strncmp(mode, "late", 4) == 0 ? 2 : 1;
}

#define FAULTY(name, params, args)                                                                 \
    static CK_RV faulty_##name params                                                              \
    {                                                                                              \
        int f = fault();                                                                           \
        bool generates = !strncmp(#name, "C_Generate", 10);                                        \
        if (f == 1) return CKR_DEVICE_ERROR;                                                       \
        CK_RV rv = real->name args;                                                                \
        return f == 2 && generates && rv == CKR_OK ? CKR_DEVICE_ERROR : rv;                        \
    }
FAULTY(C_GenerateKey, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                       CK_OBJECT_HANDLE_PTR h), (s, m, t, n, h))
FAULTY(C_GenerateKeyPair, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt,
                           CK_ULONG pn, CK_ATTRIBUTE_PTR vt, CK_ULONG vn, CK_OBJECT_HANDLE_PTR ph,
                           CK_OBJECT_HANDLE_PTR vh), (s, m, pt, pn, vt, vn, ph, vh))
FAULTY(C_CreateObject, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                        CK_OBJECT_HANDLE_PTR h), (s, t, n, h))
FAULTY(C_DestroyObject, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h), (s, h))
FAULTY(C_FindObjectsInit, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n), (s, t, n))
FAULTY(C_GetAttributeValue, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t,
                             CK_ULONG n), (s, h, t, n))
FAULTY(C_EncryptInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (s, m, k))
FAULTY(C_DecryptInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (s, m, k))
FAULTY(C_SignInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (s, m, k))
FAULTY(C_VerifyInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (s, m, k))
#undef FAULTY

/* Not wrapped by FAULTY: a proxy's C_Initialize is its own function, not the module's. */
static CK_RV forward_C_Initialize(CK_VOID_PTR args) { return real->C_Initialize(args); }

static CK_FUNCTION_LIST given; /* list, as changed by CMK_FAULT_NULL_ENTRY and _VERSION_MAJOR */

/* The entries CMK_FAULT_NULL_ENTRY may name: one that cmkp11 calls while it looks for the
 * token, one it only forwards, the first and one of the last. */
static const struct {
    const char *name;
    size_t offset;
} nullable[] = {
    {"C_Initialize", offsetof(CK_FUNCTION_LIST, C_Initialize)},
    {"C_GetSlotList", offsetof(CK_FUNCTION_LIST, C_GetSlotList)},
    {"C_SignRecover", offsetof(CK_FUNCTION_LIST, C_SignRecover)},
    {"C_CancelFunction", offsetof(CK_FUNCTION_LIST, C_CancelFunction)},
};

static void change_given(void)
{
    given = list;
    const char *name = getenv("CMK_FAULT_NULL_ENTRY");
    for (size_t i = 0; name && i < sizeof(nullable) / sizeof(nullable[0]); i++)
        if (!strcmp(name, nullable[i].name))
            memset((char *)&given + nullable[i].offset, 0, sizeof(CK_C_Initialize));
    const char *major = getenv("CMK_FAULT_VERSION_MAJOR");
    if (major) given.version.major = (CK_BYTE)atoi(major);
}

__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (!out) return CKR_ARGUMENTS_BAD;
    if (!real) {
        const char *path = getenv("CMK_FAULT_BACKEND");
        void *dl = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        CK_C_GetFunctionList get = dl ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
        CK_FUNCTION_LIST_PTR fl = NULL;
        if (!get || get(&fl) != CKR_OK || !fl) return CKR_GENERAL_ERROR;
        real_copy = *fl;
        real = &real_copy;
        list = *fl;
        list.C_GenerateKey = faulty_C_GenerateKey;
        list.C_GenerateKeyPair = faulty_C_GenerateKeyPair;
        list.C_CreateObject = faulty_C_CreateObject;
        list.C_DestroyObject = faulty_C_DestroyObject;
        list.C_FindObjectsInit = faulty_C_FindObjectsInit;
        list.C_GetAttributeValue = faulty_C_GetAttributeValue;
        list.C_EncryptInit = faulty_C_EncryptInit;
        list.C_DecryptInit = faulty_C_DecryptInit;
        list.C_SignInit = faulty_C_SignInit;
        list.C_VerifyInit = faulty_C_VerifyInit;
        list.C_Initialize = forward_C_Initialize;
    }
    change_given();
    *out = &given;
    return CKR_OK;
}
