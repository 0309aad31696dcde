/* object_track.h - what cmkp11 remembers of objects that are not CMKs, so that a find
 * needs the backend's full scan only when such an object may match. */
#ifndef CMKP11_OBJECT_TRACK_H
#define CMKP11_OBJECT_TRACK_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

/* The identity finds match on: class, label, CKA_ID, token. */
struct object_identity {
    CK_OBJECT_CLASS cls;
    CK_BBOOL token;
    unsigned char label[256], id[256];
    CK_ULONG label_len, id_len;
    bool known;
};

/* After the backend made a pass-through object: session objects join this process's
 * list, token objects are recorded in the store by class, label and CKA_ID. */
void object_track_new(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle);
/* Reads the identity before a destroy or a change of label / id. */
void object_track_identity(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                           struct object_identity *out);
void object_track_destroyed(CK_OBJECT_HANDLE handle, const struct object_identity *was);
void object_track_changed(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                          const struct object_identity *was);
/* May a backend token object that is not a CMK match this find template? */
bool object_track_token_objects_may_match(const CK_ATTRIBUTE *tmpl, CK_ULONG n);
void object_track_reset(void);

#endif
