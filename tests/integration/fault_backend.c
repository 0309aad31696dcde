/* fault_backend.c - a PKCS#11 module that forwards to the real backend (CMK_FAULT_BACKEND)
 * and, while the file CMK_FAULT_FILE exists, answers CKR_DEVICE_ERROR to the calls that
 * make, find, read or use objects, as a failing HSM would. When the file says "late", only
 * key generation fails, and only after the key was made (an HSM that failed to answer).
 * Used by test_faults. */
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
    }
    *out = &list;
    return CKR_OK;
}
