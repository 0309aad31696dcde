/* import_soft.c - imports into SOFTWARE keys (AES, SM4): the backend unwraps the material
 * into an extractable session object, the candidate, which is checked and fingerprinted
 * in the backend as for HSM keys; the module then reads its value into locked memory only
 * to seal it under the token master key (soft_key.c), and the candidate is destroyed. */
#include "import_internal.h"

#include "soft_key.h"

bool import_is_soft(const struct cmk_record *rec)
{
    return rec->protection == CMK_PROTECTION_SOFTWARE;
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

enum store_status import_soft_drop(int64_t row)
{
    enum store_status s = store_sealed_delete(module.store, row);
    soft_key_forget(row);
    return s == STORE_NOT_FOUND ? STORE_OK : s;
}
