/* entry_general.c - library, slot and token functions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmk_token.h"
#include "entry.h"
#include "mech_extra.h"
#include "session_gate.h"
#include "soft_sign.h"

#define LIBRARY_DESCRIPTION "cmkp11 cloud-KMS CMK layer"
#define MANUFACTURER "cmkp11"

static void pad_copy(CK_UTF8CHAR *field, size_t size, const char *text)
{
    memset(field, ' ', size);
    size_t n = strlen(text);
    memcpy(field, text, n < size ? n : size);
}

CK_EXPORT CK_RV C_Initialize(CK_VOID_PTR init_args)
{
    log_debug("C_Initialize: in");
    ENTRY_RETURN("C_Initialize", module_initialize(init_args));
}

CK_EXPORT CK_RV C_Finalize(CK_VOID_PTR reserved)
{
    ENTRY_BEGIN("C_Finalize");
    if (reserved) return CKR_ARGUMENTS_BAD;
    /* Traced before, not after: finalising closes the log file, and an "out" line
     * would land on the application's stderr. */
    log_debug("C_Finalize: finalising");
    /* Calls still running on any session end first, and none starts meanwhile: the
     * spec leaves C_Finalize during other threads' calls undefined, and undefined here
     * must not mean a crash. */
    session_gate_hold_all();
    CK_RV rv = module_finalize();
    if (rv == CKR_OK)
        session_gate_release_all_forget();
    else
        session_gate_release_all();
    return rv;
}

CK_EXPORT CK_RV C_GetInfo(CK_INFO_PTR info)
{
    ENTRY_BEGIN("C_GetInfo");
    if (!info) return CKR_ARGUMENTS_BAD;
    memset(info, 0, sizeof(*info));
    info->cryptokiVersion.major = 2;
    info->cryptokiVersion.minor = 40;
    pad_copy(info->manufacturerID, sizeof(info->manufacturerID), MANUFACTURER);
    pad_copy(info->libraryDescription, sizeof(info->libraryDescription), LIBRARY_DESCRIPTION);
    info->libraryVersion.major = CMKP11_VERSION_MAJOR;
    info->libraryVersion.minor = CMKP11_VERSION_MINOR;
    ENTRY_RETURN("C_GetInfo", CKR_OK);
}

CK_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (!list) return CKR_ARGUMENTS_BAD;
    *list = &entry_function_list;
    return CKR_OK;
}

static CK_INTERFACE interfaces[] = {
    {(CK_UTF8CHAR *)"PKCS 11", &entry_function_list, 0},
};

CK_EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count)
{
    if (!count) return CKR_ARGUMENTS_BAD;
    CK_ULONG n = sizeof(interfaces) / sizeof(interfaces[0]);
    if (!list) {
        *count = n;
        return CKR_OK;
    }
    if (*count < n) {
        *count = n;
        return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(list, interfaces, sizeof(interfaces));
    *count = n;
    return CKR_OK;
}

CK_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                               CK_INTERFACE_PTR_PTR iface, CK_FLAGS flags)
{
    if (!iface) return CKR_ARGUMENTS_BAD;
    if (name && strcmp((const char *)name, "PKCS 11") != 0) return CKR_ARGUMENTS_BAD;
    if (version && (version->major != 2 || version->minor != 40)) return CKR_ARGUMENTS_BAD;
    if (flags & ~interfaces[0].flags) return CKR_ARGUMENTS_BAD;
    *iface = &interfaces[0];
    return CKR_OK;
}

/* The backend's slot list (token_present as asked), as the client sees it: in the
 * backend's order, the CMK token's slot as MODULE_SLOT_ID (first when the backend does
 * not list it), the others under their pass-through ids. Asked for its length first
 * every time: SoftHSMv2 adds a new free slot then, once its free slot was initialised. */
static CK_RV slot_list(CK_BBOOL token_present, CK_SLOT_ID **out, CK_ULONG *count)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    CK_RV rv = CKR_BUFFER_TOO_SMALL;
    for (int tries = 0; rv == CKR_BUFFER_TOO_SMALL && tries < 4; tries++) {
        rv = module.be.fn->C_GetSlotList(token_present, NULL, &n);
        if (rv != CKR_OK) break;
        free(slots);
        slots = malloc((n + 1) * sizeof(*slots)); /* + 1: room for the CMK slot */
        if (!slots) return CKR_HOST_MEMORY;
        rv = module.be.fn->C_GetSlotList(token_present, slots + 1, &n);
    }
    if (rv != CKR_OK) {
        free(slots);
        return rv;
    }
    bool cmk_listed = false;
    for (CK_ULONG i = 1; i <= n; i++) {
        cmk_listed |= slots[i] == module.be.slot;
        slots[i] = module_slot_of_backend(slots[i]);
    }
    slots[0] = MODULE_SLOT_ID;
    *out = slots;
    *count = n + !cmk_listed;
    if (cmk_listed) memmove(slots, slots + 1, n * sizeof(*slots));
    return CKR_OK;
}

CK_EXPORT CK_RV C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    ENTRY_BEGIN("C_GetSlotList");
    if (!count) return CKR_ARGUMENTS_BAD;
    CK_SLOT_ID *slots;
    CK_ULONG n;
    CK_RV rv = slot_list(token_present, &slots, &n);
    if (rv != CKR_OK) ENTRY_RETURN("C_GetSlotList", rv);
    if (list && *count < n)
        rv = CKR_BUFFER_TOO_SMALL;
    else if (list)
        memcpy(list, slots, n * sizeof(*slots));
    *count = n;
    free(slots);
    ENTRY_RETURN("C_GetSlotList", rv);
}

CK_EXPORT CK_RV C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    ENTRY_BEGIN("C_GetSlotInfo");
    if (slot != MODULE_SLOT_ID)
        ENTRY_RETURN("C_GetSlotInfo",
                     module.be.fn->C_GetSlotInfo(module_passthrough_backend_slot(slot), info));
    if (!info) return CKR_ARGUMENTS_BAD;
    CK_RV rv = module.be.fn->C_GetSlotInfo(module.be.slot, info);
    if (rv == CKR_OK) {
        char desc[64];
        snprintf(desc, sizeof(desc), "cmkp11 slot for %s", module.cfg.token_label);
        pad_copy(info->slotDescription, sizeof(info->slotDescription), desc);
        pad_copy(info->manufacturerID, sizeof(info->manufacturerID), MANUFACTURER);
        info->flags |= CKF_TOKEN_PRESENT;
    }
    ENTRY_RETURN("C_GetSlotInfo", rv);
}

CK_EXPORT CK_RV C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    ENTRY_BEGIN("C_GetTokenInfo");
    if (slot != MODULE_SLOT_ID)
        ENTRY_RETURN("C_GetTokenInfo",
                     module.be.fn->C_GetTokenInfo(module_passthrough_backend_slot(slot), info));
    if (!info) return CKR_ARGUMENTS_BAD;
    /* SoftHSMv2 reads its token file here; another process may be rewriting it. */
    CK_RV rv;
    MODULE_UNDER_TOKEN_LOCK_SHARED(rv, module.be.fn->C_GetTokenInfo(module.be.slot, info));
    if (rv == CKR_OK) {
        /* URIs match on these: token=<label>;manufacturer=cmkp11;model=CMK */
        pad_copy(info->label, sizeof(info->label), module.cfg.token_label);
        pad_copy(info->manufacturerID, sizeof(info->manufacturerID), MANUFACTURER);
        pad_copy(info->model, sizeof(info->model), "CMK");
    }
    ENTRY_RETURN("C_GetTokenInfo", rv);
}

CK_EXPORT CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
    ENTRY_BEGIN("C_WaitForSlotEvent");
    (void)flags;
    (void)slot;
    (void)reserved;
    /* The CMK token never leaves its slot, and the pass-through slots' events are not
     * watched (SoftHSMv2 alone answers CKR_FUNCTION_NOT_SUPPORTED too). */
    ENTRY_RETURN("C_WaitForSlotEvent", CKR_FUNCTION_NOT_SUPPORTED);
}

/* The envelope mechanism is built on the backend's AES-GCM, so it is offered when that is. */
static bool backend_has_gcm(void)
{
    CK_MECHANISM_INFO info;
    return module.be.fn->C_GetMechanismInfo(module.be.slot, CKM_AES_GCM, &info) == CKR_OK;
}

CK_EXPORT CK_RV C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    ENTRY_BEGIN("C_GetMechanismList");
    if (slot != MODULE_SLOT_ID)
        ENTRY_RETURN("C_GetMechanismList",
                     module.be.fn->C_GetMechanismList(module_passthrough_backend_slot(slot), list,
                                                      count));
    if (!count) return CKR_ARGUMENTS_BAD;
    CK_ULONG n = 0;
    CK_RV rv = module.be.fn->C_GetMechanismList(module.be.slot, NULL, &n);
    if (rv != CKR_OK) ENTRY_RETURN("C_GetMechanismList", rv);
    /* The backend's list, then ours that it lacks: gathered first, so the count is
     * exact before the client's buffer is judged. */
    CK_MECHANISM_TYPE *all =
        malloc((n + MECH_EXTRA_MAX + SOFT_SIGN_SM2_MECHANISMS + 1) * sizeof(*all));
    if (!all) ENTRY_RETURN("C_GetMechanismList", CKR_HOST_MEMORY);
    rv = module.be.fn->C_GetMechanismList(module.be.slot, all, &n);
    if (rv == CKR_OK) {
        if (backend_has_gcm()) all[n++] = CKM_CMK_ENVELOPE;
        n = mech_extra_merge(all, n);
        soft_sign_sm2_mechanisms(all + n);
        n += SOFT_SIGN_SM2_MECHANISMS;
        if (list && *count < n)
            rv = CKR_BUFFER_TOO_SMALL;
        else if (list)
            memcpy(list, all, n * sizeof(*all));
        *count = n;
    }
    free(all);
    ENTRY_RETURN("C_GetMechanismList", rv);
}

CK_EXPORT CK_RV C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                   CK_MECHANISM_INFO_PTR info)
{
    ENTRY_BEGIN("C_GetMechanismInfo");
    if (slot != MODULE_SLOT_ID)
        ENTRY_RETURN("C_GetMechanismInfo",
                     module.be.fn->C_GetMechanismInfo(module_passthrough_backend_slot(slot), type,
                                                      info));
    if (type == CKM_CMK_ENVELOPE) {
        if (!info) return CKR_ARGUMENTS_BAD;
        if (!backend_has_gcm()) ENTRY_RETURN("C_GetMechanismInfo", CKR_MECHANISM_INVALID);
        info->ulMinKeySize = 16;
        info->ulMaxKeySize = 32;
        info->flags = CKF_ENCRYPT | CKF_DECRYPT;
        ENTRY_RETURN("C_GetMechanismInfo", CKR_OK);
    }
    if (!info) ENTRY_RETURN("C_GetMechanismInfo", CKR_ARGUMENTS_BAD);
    if (mech_extra_mapped_info(type, info)) ENTRY_RETURN("C_GetMechanismInfo", CKR_OK);
    if (soft_sign_sm2_mechanism_info(type, info)) ENTRY_RETURN("C_GetMechanismInfo", CKR_OK);
    /* The backend's answer where it has one (AES-CTR on HSM keys), else ours. */
    CK_RV rv = module.be.fn->C_GetMechanismInfo(module.be.slot, type, info);
    if (rv == CKR_MECHANISM_INVALID) rv = mech_extra_info(type, info);
    ENTRY_RETURN("C_GetMechanismInfo", rv);
}

/* On the CMK slot, the SO's re-initialisation of the token and the end of its CMKs
 * (cmk_token_init). On a pass-through slot, the backend's own C_InitToken, verbatim, but
 * for one label: a second backend token labelled as the CMK token's would leave the next
 * C_Initialize to pick one of the two. */
CK_EXPORT CK_RV C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,
                            CK_UTF8CHAR_PTR label)
{
    ENTRY_BEGIN("C_InitToken");
    CK_RV rv;
    if (slot == MODULE_SLOT_ID) {
        rv = cmk_token_init(pin, pin_len, label);
    } else if (label && cmk_token_label_is_backend_token(label)) {
        log_error("C_InitToken: slot %lu: label: '%s' names the CMK token's backend token "
                  "([backend] token_label); a second token with that label would make the "
                  "CMK token ambiguous; refused",
                  slot, module.cfg.backend_token_label);
        rv = CKR_ACTION_PROHIBITED;
    } else if (!module.be.fn->C_InitToken) {
        rv = CKR_FUNCTION_NOT_SUPPORTED; /* as the backend itself says by its NULL entry */
    } else {
        rv = module.be.fn->C_InitToken(module_passthrough_backend_slot(slot), pin, pin_len,
                                       label);
    }
    ENTRY_RETURN("C_InitToken", rv);
}

CK_RV ENTRY_IMPL(C_InitPIN)(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    FORWARD_WRITING_TOKEN(C_InitPIN, session, pin, len); /* SoftHSMv2 rewrites token.object */
}

CK_RV ENTRY_IMPL(C_SetPIN)(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                         CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
    FORWARD_WRITING_TOKEN(C_SetPIN, session, old_pin, old_len, new_pin, new_len);
}
