/* mech_extra.c - the table of the mechanisms cmkp11 runs itself (mech_extra.h). Key
 * sizes are in bytes, as the backend (SoftHSMv2) reports AES's. */
#include "mech_extra.h"

#include "cmkp11/cmkp11.h"
#include "module.h"
#include "sm_backend_map.h"
#include "soft_sign.h"

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
_Static_assert(COUNT + 1 <= MECH_EXTRA_MAX, "MECH_EXTRA_MAX too small (the table and HMAC-SM3)");

CK_ULONG mech_extra_merge(CK_MECHANISM_TYPE *list, CK_ULONG n)
{
    CK_ULONG have = n;
    for (size_t i = 0; i < COUNT; i++) {
        CK_ULONG j = 0;
        while (j < have && list[j] != types[i])
            j++;
        if (j == have) list[n++] = types[i];
    }
    /* HMAC-SM3 runs on SOFTWARE keys too, but is listed once the backend serves it. */
    CK_MECHANISM_TYPE backend;
    bool listed = false;
    for (CK_ULONG j = 0; j < n; j++) listed |= list[j] == CKM_CMK_SM3_HMAC;
    if (!listed && sm_map_code(CKM_CMK_SM3_HMAC, &backend)) list[n++] = CKM_CMK_SM3_HMAC;
    return n;
}

bool mech_extra_mapped_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    CK_MECHANISM_TYPE backend;
    CK_MECHANISM_INFO theirs, own;
    if (!sm_map_code(type, &backend) ||
        module.be.fn->C_GetMechanismInfo(module.be.slot, backend, &theirs) != CKR_OK)
        return false;
    bool soft = mech_extra_info(type, &own) == CKR_OK || soft_sign_sm2_mechanism_info(type, &own);
    /* Sizes are the SM algorithm's where the module knows them (the backend's code may be a
     * stand-in of other sizes); wrap, unwrap and derive are not translated, so not offered. */
    *info = soft ? own : theirs;
    info->flags = (theirs.flags & ~(CK_FLAGS)(CKF_WRAP | CKF_UNWRAP | CKF_DERIVE)) |
                  (soft ? own.flags : 0);
    return true;
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
