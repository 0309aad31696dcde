/* object_track.c - session-object list and the "pass-through token keys" mark. */
#include "object_track.h"

#include "log.h"
#include "module.h"
#include "session_objects.h"

#define META_PASSTHROUGH_KEYS "passthrough_token_keys"

/* Once set in the store it is never cleared, so a true answer can be kept. */
static bool known_present;

static bool is_key_class(CK_OBJECT_CLASS cls)
{
    return cls == CKO_SECRET_KEY || cls == CKO_PRIVATE_KEY || cls == CKO_PUBLIC_KEY;
}

void object_track_new(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle)
{
    CK_BBOOL token = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE a[] = {{CKA_TOKEN, &token, sizeof(token)}, {CKA_CLASS, &cls, sizeof(cls)}};
    if (module.be.fn->C_GetAttributeValue(session, handle, a, 2) != CKR_OK) {
        /* Unknown: assume the worst, a token key that finds must look for. */
        token = CK_TRUE;
        cls = CKO_SECRET_KEY;
    }
    if (!token) {
        session_objects_add(handle);
    } else if (is_key_class(cls) && !known_present) {
        if (store_meta_set(module.store, META_PASSTHROUGH_KEYS, 1) != STORE_OK)
            log_error("could not record a pass-through token key; finds may miss it");
        known_present = true;
        log_info("a token key that is not a CMK was made; key finds now also scan the backend");
    }
}

void object_track_destroyed(CK_OBJECT_HANDLE handle)
{
    session_objects_remove(handle);
}

bool object_track_foreign_token_keys(void)
{
    if (module.cfg.foreign_keys || known_present) return true;
    int64_t v = 0;
    enum store_status s = store_meta_get(module.store, META_PASSTHROUGH_KEYS, &v);
    if (s == STORE_OK && v) known_present = true;
    return known_present || (s != STORE_OK && s != STORE_NOT_FOUND);
}

void object_track_reset(void)
{
    known_present = false;
    session_objects_clear();
}
