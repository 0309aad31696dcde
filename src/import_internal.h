/* import_internal.h - what the import_* files (EXTERNAL origin, split by job) share; not
 * for the rest of the module, which uses cmk_import.h. */
#ifndef CMKP11_IMPORT_INTERNAL_H
#define CMKP11_IMPORT_INTERNAL_H

#include <openssl/types.h>
#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmk.h"
#include "cmk_create.h"
#include "cmk_import.h"
#include "cmkp11/cmkp11.h"
#include "handles.h"
#include "import_token.h"
#include "keyspec.h"
#include "log.h"
#include "module.h"
#include "store.h"
#include "template.h"
#include "util.h"

static const CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

/* What an import asks beyond the wrapped blob, checked against the key. */
struct import_request {
    const unsigned char *token;
    CK_ULONG token_len;
    int64_t expires;
    unsigned long alg;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_ULONG aes_bits;
    unsigned char wrap_id[IMPORT_WRAP_ID_LEN]; /* the token's wrapping pair, once checked */
};

/* Where a blob unwraps from: the wrapping key with OAEP, or for RSA_AES_KEY_WRAP the
 * ephemeral AES key (a session object, destroyed by import_stage_close) with RFC 5649 key wrap
 * with padding over the rest of the blob. Opened once, used for the checked candidate
 * and then for the material itself.
 *
 * Where the HSM cannot unwrap with OAEP-SHA-256 and [import] oaep_decode_in_module is on,
 * the RSA step runs in the backend as CKM_RSA_X_509 and the module decodes the OAEP block
 * into locked memory (import_oaep.c): for RSA_AES_KEY_WRAP only the ephemeral AES key is
 * decoded, and goes into the backend as a session object at once; for RSAES_OAEP the
 * material becomes a sensitive, non-extractable backend object at the first unwrap (the
 * candidate), the clear copy is wiped at once, and the material identity is a copy of
 * that object. */
struct import_stage {
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM mech;
    CK_OBJECT_HANDLE key, eph;
    CK_BYTE_PTR data;
    CK_ULONG len;
    const char *step;
    unsigned char *locked; /* module decoding: em, scratch, message; NULL once wiped */
    size_t locked_len;
    unsigned char *msg;    /* the decoded message, inside locked */
    CK_ULONG msg_len;      /* kept after the wipe: the material's exact length */
    CK_OBJECT_HANDLE made; /* the object the decoded material became */
};

/* What the checks learn of a candidate: its fingerprint (the SPKI for an asymmetric key)
 * and, for EC, the curve and public point the public key object needs; for a SOFTWARE
 * pair, the decoded private key (secure heap) that the import seals. */
struct import_facts {
    unsigned char *fp;
    size_t fp_len;
    unsigned char *ec_params;
    CK_ULONG ec_params_len;
    unsigned char *ec_point; /* DER OCTET STRING */
    size_t ec_point_len;
    EVP_PKEY *pkey;
};

/* cmk_import.c */
const char *import_alg_name(unsigned long alg);
bool import_alg_is_key_wrap(unsigned long alg);
unsigned long import_spec_bits(const char *spec);
CK_KEY_TYPE import_backend_key_type(const struct cmk_record *rec);
CK_OBJECT_CLASS import_material_class(const struct cmk_record *rec);
CK_RV import_check_importable(const struct cmk_record *rec, const char *op);

/* import_backend.c */
void import_wrap_label(const char *key_id, char out[80]);
CK_RV import_new_wrap_id(const char *key_id, unsigned char id[IMPORT_WRAP_ID_LEN]);
void import_clean_wrapping_pairs(CK_SESSION_HANDLE session, const char *key_id,
                                 const unsigned char *gone, const unsigned char *keep);
void import_destroy_wrapping_pair(CK_SESSION_HANDLE session, const unsigned char *wrap_id);
unsigned char *import_rsa_spki(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, size_t *len,
                               CK_ULONG *modulus_len);
CK_RV import_backend_oaep_sha256_probe(CK_SESSION_HANDLE session, const unsigned char *spki,
                                       size_t spki_len, CK_OBJECT_HANDLE wrap_priv);

/* import_token_mac.c */
CK_RV import_token_sign(CK_SESSION_HANDLE session, unsigned char token[IMPORT_TOKEN_LEN]);
bool import_token_authentic(CK_SESSION_HANDLE session, const unsigned char *token);

/* import_store.c */
CK_RV import_audit_and_commit(enum store_status s, int64_t row, const char *action,
                              const char *key_id, const char *detail);
enum store_status import_mark_material(int64_t row, bool has);
/* Records new parameters; replaced gets the wrapping id of those they replace, if any. */
CK_RV import_record_parameters(const struct cmk_record *rec, const struct import_token *f,
                               unsigned char *token, unsigned char *spki, size_t spki_len,
                               unsigned char replaced[IMPORT_WRAP_ID_LEN], bool *had);
bool import_params_current(const struct store_import *imp, const unsigned char *wrap_id);
bool import_token_used_meanwhile(const struct cmk_record *rec, const unsigned char *wrap_id);
CK_RV import_set_claim(const struct cmk_record *rec, const unsigned char *wrap_id);
CK_RV import_commit(const struct cmk_record *rec, const struct import_request *req,
                    const struct import_facts *mf, bool first);

/* import_request.c */
CK_RV import_ulong_of(const CK_ATTRIBUTE *a, const char *what, CK_ULONG *out);
CK_RV import_alg_of_mechanism(const CK_MECHANISM *m, unsigned long *alg,
                              CK_RSA_PKCS_OAEP_PARAMS *oaep, CK_ULONG *aes_bits);
CK_RV import_parse_template(const CK_ATTRIBUTE *t, CK_ULONG n, const struct cmk_record *rec,
                            struct import_request *req);
CK_RV import_check_token(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                         struct import_request *req, CK_OBJECT_HANDLE *wrap_priv,
                         CK_ULONG *modulus_len);

/* import_unwrap.c */
CK_RV import_stage_open(CK_SESSION_HANDLE session, const struct import_request *req,
                        CK_OBJECT_HANDLE wrap_priv, CK_ULONG modulus_len,
                        const struct store_import *imp, CK_BYTE_PTR blob, CK_ULONG len,
                        struct import_stage *st);
CK_RV import_stage_unwrap(CK_SESSION_HANDLE session, struct import_stage *st,
                          const struct tmpl_builder *t, CK_OBJECT_HANDLE *out);
void import_stage_close(CK_SESSION_HANDLE session, struct import_stage *st);

/* import_material.c */
void import_facts_free(struct import_facts *mf);
CK_RV import_check_material(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                            CK_OBJECT_HANDLE h, CK_ULONG secret_len, struct import_facts *mf);
CK_RV import_secret_length(CK_SESSION_HANDLE session, struct import_stage *st,
                           const struct tmpl_builder *cand, CK_OBJECT_HANDLE h, CK_ULONG *len);
CK_RV import_make_public_object(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                                CK_OBJECT_HANDLE priv, const struct import_facts *mf);

/* import_soft.c */
bool import_is_soft(const struct cmk_record *rec);
/* A SOFTWARE key pair: its material is a PKCS#8, held by the backend as a generic secret. */
bool import_is_soft_pair(const struct cmk_record *rec);
void import_soft_candidate(struct tmpl_builder *cand);
/* The candidate of a SOFTWARE pair, from scratch: an extractable generic secret session
 * object (the PKCS#8 bytes), which no key type of the backend need understand. */
void import_soft_pair_candidate(struct tmpl_builder *cand, const char *label);
CK_RV import_soft_length(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_ULONG *len);
/* Seals the checked candidate as the key's version 1 (a SOFTWARE key's material). */
CK_RV import_soft_take(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                       CK_OBJECT_HANDLE candidate, CK_ULONG len);
/* Seals a SOFTWARE pair's checked private key (mf->pkey) as the key's version 1. */
CK_RV import_soft_take_pair(const struct cmk_record *rec, const struct import_facts *mf);
/* Deletes a SOFTWARE key's sealed material (and a pair's stored public key) and wipes this
 * process's unsealed copy. */
enum store_status import_soft_drop(const struct cmk_record *rec);

/* import_pkcs8.c */
/* Reads a SOFTWARE pair's candidate (len bytes) into the secure heap, decodes it as
 * PKCS#8 and checks it against the spec; fills mf (SPKI fingerprint, EC point, pkey). */
CK_RV import_soft_check_pair(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                             CK_OBJECT_HANDLE candidate, CK_ULONG len, struct import_facts *mf);

#endif
