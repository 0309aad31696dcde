/* import_attrs.c - the attributes of an EXTERNAL key: the import vendor attributes, and
 * the standard ones of a key without material, answered from its record. */
#include "import_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static CK_RV put_ulong(CK_ATTRIBUTE *a, CK_ULONG v) { return cmk_attr_put(a, &v, sizeof(v)); }

bool cmk_import_has_material(const struct cmk_record *rec)
{
    if (rec->state == CMK_STATE_PENDING_IMPORT) return false;
    if (rec->origin != CMK_ORIGIN_EXTERNAL || rec->state != CMK_STATE_PENDING_DELETION) return true;
    /* Scheduled for deletion: it may never have had material, or lost it. Keys imported
     * in clear (C_CreateObject) have no import row and always have material. */
    struct store_import imp;
    enum store_status s = store_import_get(module.store, rec->row, &imp);
    bool has = s == STORE_NOT_FOUND || (s == STORE_OK && imp.has_material);
    store_import_free(&imp);
    return has;
}

CK_RV cmk_import_answer_vendor(const struct cmk_record *rec, CK_ATTRIBUTE *a)
{
    switch (a->type) {
    case CKA_CMK_MATERIAL_EXPIRES: return put_ulong(a, (CK_ULONG)rec->material_expires);
    case CKA_CMK_DELETE_MATERIAL: return cmk_attr_put(a, &ck_false, sizeof(CK_BBOOL));
    case CKA_CMK_IMPORT_TOKEN:
    case CKA_CMK_IMPORT_PUBLIC_KEY:
    case CKA_CMK_IMPORT_VALID_TO:
    case CKA_CMK_WRAPPING_ALGORITHM: break;
    default: return (CK_RV)-1;
    }
    struct store_import imp;
    enum store_status s = store_import_get(module.store, rec->row, &imp);
    if (s != STORE_OK && s != STORE_NOT_FOUND) return CKR_DEVICE_ERROR;
    CK_RV rv;
    if (!imp.wrap_id) {
        a->ulValueLen = CK_UNAVAILABLE_INFORMATION; /* no outstanding parameters */
        rv = CKR_ATTRIBUTE_TYPE_INVALID;
    } else if (a->type == CKA_CMK_IMPORT_TOKEN) {
        rv = cmk_attr_put(a, imp.token, (CK_ULONG)imp.token_len);
    } else if (a->type == CKA_CMK_IMPORT_PUBLIC_KEY) {
        rv = cmk_attr_put(a, imp.spki, (CK_ULONG)imp.spki_len);
    } else if (a->type == CKA_CMK_IMPORT_VALID_TO) {
        rv = put_ulong(a, (CK_ULONG)imp.valid_to);
    } else {
        rv = put_ulong(a, imp.wrap_alg);
    }
    store_import_free(&imp);
    return rv;
}

CK_RV cmk_import_answer_unwrapped(const struct cmk_record *rec, unsigned kind, CK_ATTRIBUTE *a)
{
    if (rec->origin != CMK_ORIGIN_EXTERNAL) return (CK_RV)-1;
    switch (a->type) {
    case CKA_ALWAYS_SENSITIVE:
    case CKA_NEVER_EXTRACTABLE:
        if (kind == CMK_OBJ_PUBLIC) break; /* a private or secret key's attributes */
        /* fall through */
    case CKA_LOCAL: return cmk_attr_put(a, &ck_false, sizeof(CK_BBOOL));
    case CKA_KEY_GEN_MECHANISM: return put_ulong(a, CK_UNAVAILABLE_INFORMATION);
    }
    return (CK_RV)-1;
}

CK_RV cmk_import_answer_pending(const struct cmk_record *rec, unsigned kind, CK_ATTRIBUTE *a)
{
    bool crypt = rec->usage == CMK_USAGE_ENCRYPT_DECRYPT;
    bool pub = kind == CMK_OBJ_PUBLIC, secret = kind == CMK_OBJ_SECRET;
    CK_BBOOL v;
    switch (a->type) {
    case CKA_CLASS:
        return put_ulong(a, secret ? CKO_SECRET_KEY : pub ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY);
    case CKA_KEY_TYPE: return put_ulong(a, rec->key_type);
    case CKA_VALUE_LEN:
        if (!secret) break;
        return put_ulong(a, import_spec_bits(rec->key_spec) / 8);
    case CKA_MODULUS_BITS:
        if (rec->key_type != CKK_RSA) break;
        return put_ulong(a, import_spec_bits(rec->key_spec));
    case CKA_VALUE:
    case CKA_PRIVATE_EXPONENT:
        if (pub) break;
        a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return CKR_ATTRIBUTE_SENSITIVE;
    case CKA_TOKEN:
    case CKA_MODIFIABLE: v = CK_TRUE; goto flag;
    case CKA_PRIVATE: v = (rec->private_mask & kind) != 0; goto flag;
    case CKA_SENSITIVE:
    case CKA_ALWAYS_AUTHENTICATE:
    case CKA_EXTRACTABLE:
    case CKA_LOCAL:
    case CKA_NEVER_EXTRACTABLE:
    case CKA_ALWAYS_SENSITIVE:
    case CKA_DERIVE: v = a->type == CKA_SENSITIVE && !pub; goto flag;
    case CKA_ENCRYPT: v = crypt && !(kind == CMK_OBJ_PRIVATE); goto flag;
    case CKA_DECRYPT: v = crypt && !pub; goto flag;
    case CKA_SIGN: v = !crypt && !pub; goto flag;
    case CKA_VERIFY: v = !crypt && !(kind == CMK_OBJ_PRIVATE); goto flag;
    case CKA_WRAP:
    case CKA_UNWRAP:
    case CKA_SIGN_RECOVER:
    case CKA_VERIFY_RECOVER: v = CK_FALSE; goto flag;
    }
    a->ulValueLen = CK_UNAVAILABLE_INFORMATION; /* no material yet */
    return CKR_ATTRIBUTE_TYPE_INVALID;
flag:
    return cmk_attr_put(a, &v, sizeof(v));
}
