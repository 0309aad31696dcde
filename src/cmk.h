/* cmk.h - the rules of a customer master key: CreateKey, use, change, destroy.
 * The only room that combines the store and the backend. */
#ifndef CMKP11_CMK_H
#define CMKP11_CMK_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmk_cache.h"
#include "cmk_record.h"

/* The backend identity of a version's material: CKA_ID and CKA_LABEL. */
#define CMK_BACKEND_ID_LEN 24
#define CMK_BACKEND_LABEL_PREFIX "cmkp11/"
void cmk_backend_id(const char *key_id, unsigned long version,
                    unsigned char out[CMK_BACKEND_ID_LEN]);

/* C_GenerateKey with CKA_TOKEN=TRUE. */
CK_RV cmk_generate_key(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl,
                       CK_ULONG count, CK_OBJECT_HANDLE_PTR key);
/* C_GenerateKeyPair with CKA_TOKEN=TRUE in the private template. */
CK_RV cmk_generate_key_pair(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                            CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG pub_count,
                            CK_ATTRIBUTE_PTR priv_tmpl, CK_ULONG priv_count,
                            CK_OBJECT_HANDLE_PTR pub_key, CK_OBJECT_HANDLE_PTR priv_key);

/* Is this C_CreateObject template a token secret or private key (which becomes a CMK)? */
bool cmk_adopt_wanted(const CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* C_CreateObject of a token key: an import in clear, origin EXTERNAL. */
CK_RV cmk_adopt_create(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
                       CK_OBJECT_HANDLE_PTR handle);
/* C_CopyObject of a (non-CMK) key: a copy into the token becomes a CMK (*adopted set);
 * otherwise nothing is done and the caller forwards the copy. */
CK_RV cmk_adopt_copy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE source, CK_ATTRIBUTE_PTR tmpl,
                     CK_ULONG n, CK_OBJECT_HANDLE_PTR handle, bool *adopted);

/* What an operation wants to do with a key: checked against state and usage. */
enum cmk_use {
    CMK_USE_ENCRYPT,
    CMK_USE_DECRYPT,
    CMK_USE_SIGN,
    CMK_USE_VERIFY,
    CMK_USE_WRAP,   /* the CMK wraps another key */
    CMK_USE_UNWRAP, /* the CMK unwraps another key */
    CMK_USE_DERIVE,
    CMK_USE_DIGEST, /* C_DigestKey */
};

/* Checks that the CMK object behind handle may be used now and returns the backend
 * handle to forward to. */
CK_RV cmk_resolve_for_use(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, enum cmk_use use,
                          CK_OBJECT_HANDLE *backend);
/* The same for an explicit version (0 = primary); facts (may be NULL) receives what
 * the cache knows of the key. */
CK_RV cmk_resolve_version_for_use(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                                  unsigned long version, enum cmk_use use,
                                  CK_OBJECT_HANDLE *backend, struct cmk_live *facts);
/* The checks of cmk_resolve_version_for_use (state, usage, version) without asking for
 * a backend object: for SOFTWARE keys, which have none. */
CK_RV cmk_check_use(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, unsigned long version,
                    enum cmk_use use, struct cmk_live *facts);
/* The backend handle of a CMK object whose use cmk_check_use has just allowed (facts are
 * what it returned): the second half of cmk_resolve_for_use, for callers that look at the
 * facts in between (a SOFTWARE key runs in the module instead). */
CK_RV cmk_backend_of_checked(CK_SESSION_HANDLE session, struct cmk_live *facts,
                             CK_OBJECT_HANDLE handle, CK_OBJECT_HANDLE *backend);
/* Backend handle of a CMK object for attribute access, without use checks. */
CK_RV cmk_resolve_backend(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle,
                          CK_OBJECT_HANDLE *backend);

/* C_GetObjectSize of a CMK object, from one look at the key: the backend's answer for
 * its material, CK_UNAVAILABLE_INFORMATION for a SOFTWARE key. */
CK_RV cmk_object_size(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, CK_ULONG *size);
/* CKR_OK when the object (a CMK's or the backend's) exists for this session, else why
 * not: CKR_OBJECT_HANDLE_INVALID for a handle that names nothing. */
CK_RV cmk_object_exists(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle);
CK_RV cmk_get_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, CK_ATTRIBUTE_PTR tmpl,
                         CK_ULONG count);
CK_RV cmk_set_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, CK_ATTRIBUTE_PTR tmpl,
                         CK_ULONG count);
CK_RV cmk_destroy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle);

/* Destroys every backend object of one version of a key's material; true when none is
 * left (an undo that cannot be sure keeps its claim, and is tried again). */
bool cmk_destroy_material(CK_SESSION_HANDLE session, const char *key_id, unsigned long version);

/* Destroys keys whose pending window has passed: material of every version, then the
 * row, audited. Idempotent, so a crash half-way is finished by the next run. */
void cmk_purge_due(CK_SESSION_HANDLE session);
/* Destroys a key at once (policy allow_immediate_destroy, for test tokens) that the
 * caller has made PendingDeletion and due now, in a transaction committed first. */
CK_RV cmk_destroy_now(CK_SESSION_HANDLE session, int64_t row);

/* Makes a new primary version of a symmetric CMK (on demand, or automatic when due). */
CK_RV cmk_rotate(CK_SESSION_HANDLE session, int64_t row, bool automatic);
/* Is a live process making a new version of rec now (claimed, not yet primary)? */
bool cmk_rotation_under_way(const struct cmk_record *rec);
/* Rotates every Enabled key whose next rotation date has passed, each exactly once
 * however many processes do this at the same time. */
void cmk_rotate_due(CK_SESSION_HANDLE session);
/* The token's chores (recovery, purge, due rotations): at login, and at session open
 * of a logged-in application at most once a minute. reset forgets the last run. */
void cmk_housekeeping(CK_SESSION_HANDLE session);
void cmk_housekeeping_if_due(CK_SESSION_HANDLE session);
void cmk_housekeeping_reset(void);
/* Undoes rotations whose process died half-way. */
void cmk_recover_rotations(CK_SESSION_HANDLE session);

/* Finishes or removes what crashed CreateKeys left (rows in Creating whose creator
 * process is gone). Needs a session that can see private backend objects. */
void cmk_recover(CK_SESSION_HANDLE session);

#endif
