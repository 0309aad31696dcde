/* object_track.h - what cmkp11 remembers of objects that are not CMKs, so that a find
 * for keys can skip the backend's full scan when no such key can exist. */
#ifndef CMKP11_OBJECT_TRACK_H
#define CMKP11_OBJECT_TRACK_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

/* After the backend made a pass-through object: session objects join the session list;
 * a token key that is not a CMK marks the store (finds for keys then scan the backend). */
void object_track_new(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle);
void object_track_destroyed(CK_OBJECT_HANDLE handle);
/* May the backend token hold keys that are not CMKs (made elsewhere or passed through)? */
bool object_track_foreign_token_keys(void);
void object_track_reset(void);

#endif
