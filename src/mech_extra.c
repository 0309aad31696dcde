/* mech_extra.c - the table of the mechanisms cmkp11 runs itself (mech_extra.h). Key
 * sizes are in bytes, as the backend (SoftHSMv2) reports AES's. */
#include "mech_extra.h"

#include "cmkp11/cmkp11.h"

#define CRYPT (CKF_ENCRYPT | CKF_DECRYPT)

static const CK_MECHANISM_TYPE types[] = {
    CKM_CMK_SM4_KEY_GEN, CKM_CMK_SM4_ECB, CKM_CMK_SM4_CBC, CKM_CMK_SM4_CBC_PAD,
    CKM_CMK_SM4_CTR,     CKM_CMK_SM3,     CKM_AES_CTR,
};
static const CK_MECHANISM_INFO infos[] = {
    {16, 16, CKF_GENERATE}, {16, 16, CRYPT},    {16, 16, CRYPT}, {16, 16, CRYPT},
    {16, 16, CRYPT},        {0, 0, CKF_DIGEST}, {16, 32, CRYPT},
};
#define COUNT (sizeof(types) / sizeof(types[0]))
_Static_assert(COUNT == sizeof(infos) / sizeof(infos[0]), "one info per mechanism");
_Static_assert(COUNT <= MECH_EXTRA_MAX, "MECH_EXTRA_MAX too small");

CK_ULONG mech_extra_merge(CK_MECHANISM_TYPE *list, CK_ULONG n)
{
    CK_ULONG have = n;
    for (size_t i = 0; i < COUNT; i++) {
        CK_ULONG j = 0;
        while (j < have && list[j] != types[i])
            j++;
        if (j == have) list[n++] = types[i];
    }
    return n;
}

CK_RV mech_extra_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    for (size_t i = 0; i < COUNT; i++) {
        if (types[i] != type) continue;
        *info = infos[i];
        return CKR_OK;
    }
    return CKR_MECHANISM_INVALID;
}
