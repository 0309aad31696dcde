/* backend.h - the HSM vendor's PKCS#11 module that holds every key's material.
 * Knows nothing of CMKs or of the store: it loads, initialises and finds. */
#ifndef CMKP11_BACKEND_H
#define CMKP11_BACKEND_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

struct backend {
    void *dl;
    CK_FUNCTION_LIST_PTR fn; /* the backend's function list: forward through this */
    CK_SLOT_ID slot;         /* the backend slot holding the configured token */
    int owns_init;           /* we initialised it, so we finalise it */
};

/* Loads and initialises the module at path, then finds the token by label or serial
 * (either may be NULL). Logs one clear line on failure and returns its CKR code. */
CK_RV backend_open(struct backend *be, const char *path, const char *token_label,
                   const char *token_serial);
void backend_close(struct backend *be);
/* In a forked child: resets the inherited backend without touching the parent's. */
void backend_reset_after_fork(struct backend *be);

/* Is the token still in its slot? When it is not (an HSM unplugged, SoftHSMv2's token
 * folder gone), logs one line naming it and returns false: callers then answer
 * CKR_DEVICE_REMOVED. */
bool backend_token_present(struct backend *be);

/* The first max objects matching tmpl (a whole find: Init, one C_FindObjects, Final);
 * their count in *count. */
CK_RV backend_find(struct backend *be, CK_SESSION_HANDLE session, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                   CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count);
/* Finds the token objects whose CKA_ID is id (of len bytes) and, when cls is not
 * (CK_ULONG)-1, whose class is cls. Returns up to max handles in out and the count. */
CK_RV backend_find_by_id(struct backend *be, CK_SESSION_HANDLE session, const void *id,
                         CK_ULONG len, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *out, CK_ULONG max,
                         CK_ULONG *count);

/* True when the object's attributes equal every attribute of tmpl (a find's rule). */
CK_RV backend_object_matches(struct backend *be, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h,
                             const CK_ATTRIBUTE *tmpl, CK_ULONG n, int *matches);

/* Copies a blank-padded PKCS#11 text field into a NUL-terminated string. */
void backend_field_to_string(const CK_UTF8CHAR *field, size_t len, char *out, size_t out_size);

/* Is the application logged in as user on the backend token (seen through session)? */
bool backend_session_logged_in(const struct backend *be, CK_SESSION_HANDLE session);

#endif
