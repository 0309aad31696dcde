/* import_soft.c - imports into SOFTWARE keys: the backend unwraps the material into an
 * extractable session object, the candidate. A secret's (AES, SM4, HMAC) is checked and
 * fingerprinted in the backend as for HSM keys, then read into locked memory only to be
 * sealed under the token master key (soft_key.c). A key pair's is a PKCS#8 held as a
 * generic secret (the backend may not know the key type: SM2), which the module decodes
 * and checks itself (import_pkcs8.c) and seals re-encoded. The candidate is destroyed
 * either way. */
#include "import_internal.h"

#include <string.h>

#include "soft_key.h"
#include "soft_pkey.h"

bool import_is_soft(const struct cmk_record *rec)
{
    return rec->protection == CMK_PROTECTION_SOFTWARE;
}

bool import_is_soft_pair(const struct cmk_record *rec)
{
    return import_is_soft(rec) && import_material_class(rec) == CKO_PRIVATE_KEY;
}

void import_soft_pair_candidate(struct tmpl_builder *cand, const char *label)
{
    /* The builder keeps pointers: the values must outlive it. */
    static const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    static const CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    tmpl_set(cand, CKA_CLASS, &cls, sizeof(cls));
    tmpl_set(cand, CKA_KEY_TYPE, &type, sizeof(type));
    tmpl_set(cand, CKA_PRIVATE, &ck_true, sizeof(CK_BBOOL));
    tmpl_set(cand, CKA_ID, label, strlen(label));
    tmpl_set(cand, CKA_LABEL, label, strlen(label));
    import_soft_candidate(cand);
}

/* The module must read the candidate once, to seal it: a session object that may be
 * read, never a token object. */
void import_soft_candidate(struct tmpl_builder *cand)
{
    tmpl_set(cand, CKA_TOKEN, &ck_false, sizeof(CK_BBOOL));
    tmpl_set(cand, CKA_SENSITIVE, &ck_false, sizeof(CK_BBOOL));
    tmpl_set(cand, CKA_EXTRACTABLE, &ck_true, sizeof(CK_BBOOL));
}

/* The candidate's length, from the length of its value (nothing of the value is read). */
CK_RV import_soft_length(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_ULONG *len)
{
    CK_ATTRIBUTE value = {CKA_VALUE, NULL, 0};
    CK_RV rv = module.be.fn->C_GetAttributeValue(session, h, &value, 1);
    *len = rv == CKR_OK && value.ulValueLen != CK_UNAVAILABLE_INFORMATION ? value.ulValueLen : 0;
    if (rv != CKR_OK)
        log_error("ImportKeyMaterial: the backend does not give the length of the unwrapped "
                  "material: 0x%lx",
                  rv);
    return rv;
}

CK_RV import_soft_take(CK_SESSION_HANDLE session, const struct cmk_record *rec,
                       CK_OBJECT_HANDLE candidate, CK_ULONG len)
{
    CK_RV rv = soft_key_seal_object(session, candidate, rec->row, rec->key_id, 1, len);
    if (rv != CKR_OK)
        log_error("ImportKeyMaterial: key %s: the material could not be sealed: 0x%lx", rec->key_id,
                  rv);
    return rv;
}

CK_RV import_soft_take_pair(const struct cmk_record *rec, const struct import_facts *mf)
{
    CK_RV rv = soft_pkey_seal(mf->pkey, rec->row, rec->key_id, 1);
    if (rv != CKR_OK)
        log_error("ImportKeyMaterial: key %s: the private key could not be sealed: 0x%lx",
                  rec->key_id, rv);
    return rv;
}

enum store_status import_soft_drop(const struct cmk_record *rec)
{
    enum store_status s = store_sealed_delete(module.store, rec->row);
    if (s == STORE_NOT_FOUND) s = STORE_OK;
    /* A pair's public key goes with its material: PendingImport answers from the spec. */
    if (s == STORE_OK && import_is_soft_pair(rec))
        s = store_cmk_set_public(module.store, rec->row, NULL, 0, NULL, 0);
    soft_key_forget(rec->row);
    return s;
}
