/* entry_object.c - objects, attributes and search. CMK handles go to cmk, all
 * other handles are the backend's and go straight through. */
#include <stdlib.h>

#include "cmk.h"
#include "cmk_copy.h"
#include "entry.h"
#include "handles.h"
#include "object_find.h"
#include "object_track.h"
#include "session.h"
#include "template.h"

CK_RV ENTRY_IMPL(C_CreateObject)(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                               CK_OBJECT_HANDLE_PTR object)
{
    ENTRY_BEGIN("C_CreateObject");
    if (!object) return CKR_ARGUMENTS_BAD;
    CK_RV rv = tmpl_check_shape(tmpl, count, "C_CreateObject");
    if (rv != CKR_OK) ENTRY_RETURN("C_CreateObject", rv);
    if (attr_find(tmpl, count, CKA_CMK_KEY_ID)) {
        log_warning("C_CreateObject: vendor attributes describe CMKs, which are made with "
                    "C_GenerateKey/C_GenerateKeyPair");
        ENTRY_RETURN("C_CreateObject", CKR_ATTRIBUTE_READ_ONLY);
    }
    for (CK_ULONG i = 0; i < count; i++) {
        if (attr_is_vendor(tmpl[i].type)) {
            log_warning("C_CreateObject: vendor attribute 0x%lx applies to generated CMKs only",
                        tmpl[i].type);
            ENTRY_RETURN("C_CreateObject", CKR_ATTRIBUTE_TYPE_INVALID);
        }
    }
    if (cmk_adopt_wanted(tmpl, count))
        ENTRY_RETURN("C_CreateObject", cmk_adopt_create(session, tmpl, count, object));
    /* Writes to the backend token's files are made under the token lock (module.h). */
    bool token = tmpl_wants_token(tmpl, count);
    rv = token ? module_token_lock() : CKR_OK;
    if (rv != CKR_OK) ENTRY_RETURN("C_CreateObject", rv);
    rv = module.be.fn->C_CreateObject(session, tmpl, count, object);
    if (rv == CKR_OK && (handle_is_cmk(*object) || handle_is_copy(*object))) {
        log_error("C_CreateObject: backend handle collides with cmkp11's range");
        module.be.fn->C_DestroyObject(session, *object);
        rv = CKR_GENERAL_ERROR;
    }
    if (token) module_token_unlock();
    if (rv == CKR_OK) object_track_new(session, *object);
    ENTRY_RETURN("C_CreateObject", rv);
}

CK_RV ENTRY_IMPL(C_CopyObject)(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                             CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR copy)
{
    ENTRY_BEGIN("C_CopyObject");
    if (!copy) ENTRY_RETURN("C_CopyObject", CKR_ARGUMENTS_BAD);
    CK_RV rv = tmpl_check_shape(tmpl, count, "C_CopyObject");
    /* Of a CMK, only a session copy, which is the key under a session handle: a token
     * copy would be a second key outside the CMK's lifecycle and policy (cmk_copy.h). */
    if (rv == CKR_OK && (handle_is_cmk(object) || handle_is_copy(object)))
        ENTRY_RETURN("C_CopyObject", cmk_copy_make(session, object, tmpl, count, copy));
    bool adopted = false;
    if (rv == CKR_OK) rv = cmk_adopt_copy(session, object, tmpl, count, copy, &adopted);
    if (rv != CKR_OK || adopted) ENTRY_RETURN("C_CopyObject", rv);
    /* The copy may be a token object, whatever the template says. */
    MODULE_UNDER_TOKEN_LOCK(rv, module.be.fn->C_CopyObject(session, object, tmpl, count, copy));
    if (rv == CKR_OK) object_track_new(session, *copy);
    ENTRY_RETURN("C_CopyObject", rv);
}

CK_RV ENTRY_IMPL(C_DestroyObject)(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
    ENTRY_BEGIN("C_DestroyObject");
    /* A session copy goes; the key stays (cmk_copy.h). */
    if (handle_is_copy(object)) ENTRY_RETURN("C_DestroyObject", cmk_copy_destroy(session, object));
    if (handle_is_cmk(object)) {
        CK_SESSION_INFO info;
        CK_RV rv = module.be.fn->C_GetSessionInfo(session, &info);
        if (rv == CKR_OK && !(info.flags & CKF_RW_SESSION)) rv = CKR_SESSION_READ_ONLY;
        if (rv == CKR_OK) rv = cmk_destroy(session, object);
        ENTRY_RETURN("C_DestroyObject", rv);
    }
    struct object_identity was;
    object_track_identity(session, object, &was);
    bool token = !was.known || was.token;
    CK_RV rv;
    MODULE_UNDER_TOKEN_LOCK_IF(token, rv, module.be.fn->C_DestroyObject(session, object));
    if (rv == CKR_OK) object_track_destroyed(object, &was);
    ENTRY_RETURN("C_DestroyObject", rv);
}

CK_RV ENTRY_IMPL(C_GetObjectSize)(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                CK_ULONG_PTR size)
{
    ENTRY_BEGIN("C_GetObjectSize");
    if (cmk_copy_resolve(session, &object) != CKR_OK)
        ENTRY_RETURN("C_GetObjectSize", CKR_OBJECT_HANDLE_INVALID);
    if (handle_is_cmk(object))
        ENTRY_RETURN("C_GetObjectSize", cmk_object_size(session, object, size));
    ENTRY_RETURN("C_GetObjectSize", module.be.fn->C_GetObjectSize(session, object, size));
}

CK_RV ENTRY_IMPL(C_GetAttributeValue)(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                    CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    ENTRY_BEGIN("C_GetAttributeValue");
    if (!tmpl && count) return CKR_ARGUMENTS_BAD;
    if (handle_is_copy(object))
        ENTRY_RETURN("C_GetAttributeValue", cmk_copy_get_attributes(session, object, tmpl, count));
    if (handle_is_cmk(object)) {
        CK_SESSION_INFO info;
        CK_RV rv = module.be.fn->C_GetSessionInfo(session, &info);
        if (rv == CKR_OK) rv = cmk_get_attributes(session, object, tmpl, count);
        ENTRY_RETURN("C_GetAttributeValue", rv);
    }
    ENTRY_RETURN("C_GetAttributeValue",
                 module.be.fn->C_GetAttributeValue(session, object, tmpl, count));
}

CK_RV ENTRY_IMPL(C_SetAttributeValue)(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                    CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    ENTRY_BEGIN("C_SetAttributeValue");
    CK_RV rv = tmpl_check_shape(tmpl, count, "C_SetAttributeValue");
    if (rv != CKR_OK) ENTRY_RETURN("C_SetAttributeValue", rv);
    if (handle_is_copy(object)) {
        /* The copy is the key under a session handle: the key is what changes. */
        rv = cmk_copy_resolve(session, &object);
        if (rv == CKR_OK) {
            log_warning("C_SetAttributeValue: a session copy of a CMK cannot be changed; "
                        "change the key's own object");
            rv = CKR_ACTION_PROHIBITED;
        }
        ENTRY_RETURN("C_SetAttributeValue", rv);
    }
    if (handle_is_cmk(object)) {
        CK_SESSION_INFO info;
        rv = module.be.fn->C_GetSessionInfo(session, &info);
        if (rv == CKR_OK && !(info.flags & CKF_RW_SESSION)) rv = CKR_SESSION_READ_ONLY;
        if (rv == CKR_OK) rv = cmk_set_attributes(session, object, tmpl, count);
        ENTRY_RETURN("C_SetAttributeValue", rv);
    }
    struct object_identity was = {.known = false};
    bool renames = attr_find(tmpl, count, CKA_LABEL) || attr_find(tmpl, count, CKA_ID);
    if (renames) object_track_identity(session, object, &was);
    /* A token object's file is rewritten. */
    MODULE_UNDER_TOKEN_LOCK(rv, module.be.fn->C_SetAttributeValue(session, object, tmpl, count));
    if (rv == CKR_OK && renames) object_track_changed(session, object, &was);
    ENTRY_RETURN("C_SetAttributeValue", rv);
}

CK_RV ENTRY_IMPL(C_FindObjectsInit)(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl,
                                  CK_ULONG count)
{
    ENTRY_BEGIN("C_FindObjectsInit");
    if (!tmpl && count) return CKR_ARGUMENTS_BAD;
    CK_SESSION_INFO info;
    CK_RV rv = module.be.fn->C_GetSessionInfo(session, &info);
    if (rv != CKR_OK) ENTRY_RETURN("C_FindObjectsInit", rv);
    if (session_find_active(session)) ENTRY_RETURN("C_FindObjectsInit", CKR_OPERATION_ACTIVE);
    CK_OBJECT_HANDLE *found = NULL;
    CK_ULONG n = 0;
    rv = object_find_all(session, tmpl, count, &found, &n);
    if (rv == CKR_OK) rv = session_find_begin(session, found, n);
    ENTRY_RETURN("C_FindObjectsInit", rv);
}

CK_RV ENTRY_IMPL(C_FindObjects)(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects,
                              CK_ULONG max, CK_ULONG_PTR count)
{
    ENTRY_BEGIN("C_FindObjects");
    if (!objects || !count) return CKR_ARGUMENTS_BAD;
    CK_RV rv = session_find_next(session, objects, max, count);
    if (rv == CKR_OPERATION_NOT_INITIALIZED) {
        CK_SESSION_INFO info;
        CK_RV srv = module.be.fn->C_GetSessionInfo(session, &info);
        if (srv != CKR_OK) rv = srv;
    }
    ENTRY_RETURN("C_FindObjects", rv);
}

CK_RV ENTRY_IMPL(C_FindObjectsFinal)(CK_SESSION_HANDLE session)
{
    ENTRY_BEGIN("C_FindObjectsFinal");
    CK_RV rv = session_find_end(session);
    if (rv == CKR_OPERATION_NOT_INITIALIZED) {
        CK_SESSION_INFO info;
        CK_RV srv = module.be.fn->C_GetSessionInfo(session, &info);
        if (srv != CKR_OK) rv = srv;
    }
    ENTRY_RETURN("C_FindObjectsFinal", rv);
}
