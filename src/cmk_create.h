/* cmk_create.h - the steps of making a CMK, shared by generation and import:
 * a Creating row first, then the material, then one commit that makes it Enabled. */
#ifndef CMKP11_CMK_CREATE_H
#define CMKP11_CMK_CREATE_H

#include <p11-kit/pkcs11.h>

#include "cmk_record.h"
#include "cmk_request.h"
#include "store.h"
#include "template.h"

struct public_key {
    unsigned char *spki;
    size_t spki_len;
    unsigned char *ec_point;
    CK_ULONG ec_point_len;
};

/* After the backend failed to make a key's material (logged as what and spec): removes
 * whatever it made under the key's identity and the row, and returns the code for the
 * client: rv, or CKR_DEVICE_REMOVED when the token is gone. */
CK_RV cmk_create_backend_failed(CK_SESSION_HANDLE session, CK_RV rv, struct cmk_record *rec,
                                const char *what, const char *spec);
/* The code a failed store write of CreateKey answers: read-only store
 * CKR_TOKEN_WRITE_PROTECTED, full CKR_DEVICE_MEMORY, locked CKR_FUNCTION_FAILED. */
CK_RV cmk_create_store_rv(enum store_status s);
/* Writes the Creating row (the unique alias index refuses a taken alias here). */
CK_RV cmk_create_insert_row(struct create_request *req, unsigned objects, struct cmk_record *rec);
/* Makes the row Enabled with its version 1, public key and audit row, at once. */
CK_RV cmk_create_commit(struct cmk_record *rec, const char *action, const char *how,
                        const struct public_key *pk);
/* The same, to another state (PendingImport for a key of EXTERNAL origin). */
CK_RV cmk_create_commit_state(struct cmk_record *rec, unsigned long state, const char *action,
                              const char *how, const struct public_key *pk);
/* Removes the row and any material made for it. */
void cmk_create_undo(CK_SESSION_HANDLE session, struct cmk_record *rec);
/* Removes a refused CreateKey's row; one the store will not delete now (a full disk) is
 * removed by this process as soon as the store takes writes again. */
void cmk_create_drop_row(const struct cmk_record *rec);
/* The backend's own identity for a version's material: never the client's. */
void cmk_create_backend_identity(struct tmpl_builder *b, const unsigned char *bid,
                                 const char *label);
/* The material's template: the client's standard attributes, cmkp11's identity, always
 * sensitive, non-extractable, private, and the usage's flags (cmk_request_usage_flags);
 * with backend_flags (create_request.flags_by_backend) the flags the client left out are
 * left to the backend's defaults instead. */
void cmk_create_material_template(struct tmpl_builder *b, const CK_ATTRIBUTE *client,
                                  CK_ULONG n, const unsigned char *bid, const char *label,
                                  CK_OBJECT_CLASS cls, CK_ULONG usage, bool backend_flags);
/* The material of a key whose template kept it public (req->secret_private FALSE: a plain
 * template's CKA_PRIVATE=FALSE, cmk_request.c) is made public too, after the template. */
void cmk_create_material_public(struct tmpl_builder *b, const struct create_request *req);
/* When the backend chose the flags (req->flags_by_backend), the key's usage is what the
 * objects made allow: read back from main (and pub, 0 for none) into req and rec. */
void cmk_create_usage_from_material(CK_SESSION_HANDLE session, struct create_request *req,
                                    CK_OBJECT_HANDLE main, CK_OBJECT_HANDLE pub,
                                    struct cmk_record *rec);
/* Makes one of cmkp11's own 32-byte secret keys in the backend (the SOFTWARE master key,
 * the import-token MAC key): token, private, sensitive, never extractable, never
 * deriving, with the given identity; usage holds its function flags. Under the token lock. */
CK_RV cmk_create_internal_key(CK_SESSION_HANDLE session, CK_MECHANISM_TYPE mech, CK_KEY_TYPE type,
                              const CK_ATTRIBUTE *usage, CK_ULONG n_usage, const void *id,
                              CK_ULONG id_len, const char *label, CK_OBJECT_HANDLE *out);
/* How often material generation is tried before a failure is reported. */
#define CMK_CREATE_ATTEMPTS 3
/* After a failed attempt to make material: should it be tried once more? */
bool cmk_create_should_retry(CK_SESSION_HANDLE session, CK_RV rv, const char *key_id,
                             unsigned long version, int attempt);
void cmk_backend_label(const char *key_id, unsigned long version, char out[80]);
/* Reads one attribute of any length from a backend object into malloc'd memory (NULL when
 * absent or empty). */
unsigned char *cmk_create_read_attr(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h,
                                   CK_ATTRIBUTE_TYPE type, CK_ULONG *len);
/* Reads a public key's components from the backend and encodes them (either may stay
 * NULL). For an RSA private key the modulus and exponent it carries are used. */
void cmk_create_read_public_key(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE pub,
                                CK_KEY_TYPE type, struct public_key *out);

#endif
