/* object_track.c - the session-object list and the store's record of pass-through
 * token objects. SoftHSMv2 answers every find by reading all its objects, so this is
 * what keeps a find by alias independent of how many keys the token holds. */
#include "object_track.h"

#include <string.h>

#include "log.h"
#include "module.h"
#include "session_objects.h"
#include "template.h"

void object_track_identity(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                           struct object_identity *out)
{
    memset(out, 0, sizeof(*out));
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &out->cls, sizeof(out->cls)},
        {CKA_TOKEN, &out->token, sizeof(out->token)},
        {CKA_LABEL, out->label, sizeof(out->label)},
        {CKA_ID, out->id, sizeof(out->id)},
    };
    CK_RV rv = module.be.fn->C_GetAttributeValue(session, handle, a, 4);
    /* A label or id longer than we keep is recorded truncated: never matched exactly,
     * so finds naming it scan the backend (see object_track_token_objects_may_match). */
    /* Data objects have no CKA_ID (TYPE_INVALID): what matters is class and token. */
    out->known = (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
                  rv == CKR_ATTRIBUTE_SENSITIVE) &&
                 a[0].ulValueLen == sizeof(out->cls) && a[1].ulValueLen == sizeof(out->token);
    out->label_len = a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION ? 0 : a[2].ulValueLen;
    out->id_len = a[3].ulValueLen == CK_UNAVAILABLE_INFORMATION ? 0 : a[3].ulValueLen;
}

static void record(const struct object_identity *id, bool add)
{
    enum store_status s =
        add ? store_passthrough_add(module.store, id->cls, id->label, id->label_len, id->id,
                                    id->id_len)
            : store_passthrough_remove(module.store, id->cls, id->label, id->label_len, id->id,
                                       id->id_len);
    if (s != STORE_OK) log_error("could not record a pass-through token object (%s)", store_status_name(s));
}

void object_track_new(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle)
{
    struct object_identity id;
    object_track_identity(session, handle, &id);
    if (!id.known) {
        log_warning("pass-through object 0x%lx: identity unreadable; finds may miss it", handle);
        return;
    }
    if (id.token) record(&id, true);
    else session_objects_add(handle);
}

void object_track_destroyed(CK_OBJECT_HANDLE handle, const struct object_identity *was)
{
    if (!was->known) return;
    if (was->token) record(was, false);
    else session_objects_remove(handle);
}

void object_track_changed(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                          const struct object_identity *was)
{
    if (!was->known || !was->token) return;
    record(was, false);
    object_track_new(session, handle);
}

bool object_track_token_objects_may_match(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    if (module.cfg.foreign_objects) return true;
    CK_ULONG cls;
    long want_cls = attr_get_ulong(tmpl, n, CKA_CLASS, &cls) == ATTR_PRESENT ? (long)cls : -1;
    const CK_ATTRIBUTE *label = attr_find(tmpl, n, CKA_LABEL);
    const CK_ATTRIBUTE *id = attr_find(tmpl, n, CKA_ID);
    /* Values longer than what is recorded cannot be looked up exactly: search. */
    if ((label && label->ulValueLen >= 256) || (id && id->ulValueLen >= 256)) return true;
    bool any = true;
    if (store_passthrough_any(module.store, want_cls, label ? label->pValue : NULL,
                              label ? label->ulValueLen : 0, id ? id->pValue : NULL,
                              id ? id->ulValueLen : 0, &any) != STORE_OK)
        return true;
    return any;
}

void object_track_reset(void)
{
    session_objects_clear();
}
