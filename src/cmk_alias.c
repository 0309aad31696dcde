/* cmk_alias.c - changing and reading a key's aliases (see cmk_alias.h). */
#include "cmk_alias.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmk_import.h"
#include "cmkp11/cmkp11.h"
#include "log.h"
#include "module.h"
#include "store.h"
#include "util.h"
#include "validate.h"

bool cmk_alias_is_change(CK_ATTRIBUTE_TYPE type)
{
    return type == CKA_CMK_ALIAS || type == CKA_CMK_ADD_ALIAS || type == CKA_CMK_REMOVE_ALIAS ||
           type == CKA_CMK_MOVE_ALIAS;
}

static const char *attr_name(CK_ATTRIBUTE_TYPE type)
{
    return type == CKA_CMK_ALIAS        ? "CKA_CMK_ALIAS"
           : type == CKA_CMK_ADD_ALIAS  ? "CKA_CMK_ADD_ALIAS"
           : type == CKA_CMK_MOVE_ALIAS ? "CKA_CMK_MOVE_ALIAS"
                                        : "CKA_CMK_REMOVE_ALIAS";
}

CK_RV cmk_alias_queue(struct cmk_alias_ops *ops, const CK_ATTRIBUTE *a)
{
    if (ops->count == CMK_ALIAS_OPS_MAX) {
        log_warning("SetAttributeValue: at most %d alias changes in one template",
                    CMK_ALIAS_OPS_MAX);
        return CKR_TEMPLATE_INCONSISTENT;
    }
    char *out = ops->op[ops->count].alias;
    out[0] = '\0';
    /* Only CKA_CMK_ALIAS may be empty: it then removes every alias. */
    if (a->ulValueLen == 0 && a->type == CKA_CMK_ALIAS) {
        ops->op[ops->count++].type = a->type;
        return CKR_OK;
    }
    char why[VALIDATE_WHY_SIZE];
    if (validate_alias(a->pValue, a->ulValueLen, out, why) != 0) {
        log_warning("SetAttributeValue: %s invalid: %s", attr_name(a->type), why);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    ops->op[ops->count++].type = a->type;
    return CKR_OK;
}

/* UpdateAlias moves an alias only between keys that answer the same calls: one kind
 * (symmetric, asymmetric, HMAC) and one usage, as AWS requires. */
static bool same_kind(const struct cmk_record *a, const struct cmk_record *b)
{
    bool a_secret = (a->objects & CMK_OBJ_SECRET) || !(a->objects & CMK_OBJ_PRIVATE);
    bool b_secret = (b->objects & CMK_OBJ_SECRET) || !(b->objects & CMK_OBJ_PRIVATE);
    return a_secret == b_secret && a->usage == b->usage;
}

static CK_RV check_move(const struct cmk_record *rec, const char *alias, char from_key[37])
{
    int64_t from_row = 0;
    snprintf(from_key, 37, "%s", rec->key_id);
    enum store_status s = store_alias_owner(module.store, alias, &from_row);
    if (s == STORE_NOT_FOUND) {
        log_warning("SetAttributeValue: CKA_CMK_MOVE_ALIAS: no key has the alias '%s'", alias);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    if (from_row == rec->row) return CKR_OK;
    struct cmk_record owner;
    s = store_cmk_get(module.store, from_row, &owner);
    if (s != STORE_OK) return CKR_DEVICE_ERROR;
    bool same = same_kind(rec, &owner);
    snprintf(from_key, 37, "%s", owner.key_id);
    cmk_record_free(&owner);
    if (!same) {
        log_warning("SetAttributeValue: CKA_CMK_MOVE_ALIAS: alias '%s' names a key of another "
                    "kind or usage than key %s (both must be symmetric, asymmetric or HMAC, "
                    "with one usage)",
                    alias, rec->key_id);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    return CKR_OK;
}

static CK_RV apply_one(const struct cmk_record *rec, CK_ATTRIBUTE_TYPE type, const char *alias,
                       int64_t now, char *detail, size_t size)
{
    size_t n = strlen(detail);
    enum store_status s = STORE_OK;
    char from[37];
    CK_RV rv;
    switch (type) {
    case CKA_CMK_ALIAS:
        s = store_alias_remove_all(module.store, rec->row);
        if (s == STORE_OK && alias[0]) s = store_alias_add(module.store, rec->row, alias, now);
        snprintf(detail + n, size - n, "aliases replaced by '%.80s'; ", alias);
        break;
    case CKA_CMK_ADD_ALIAS:
        s = store_alias_add(module.store, rec->row, alias, now);
        snprintf(detail + n, size - n, "alias added: '%.80s'; ", alias);
        break;
    case CKA_CMK_REMOVE_ALIAS:
        s = store_alias_remove(module.store, rec->row, alias);
        if (s == STORE_NOT_FOUND) {
            log_warning("SetAttributeValue: CKA_CMK_REMOVE_ALIAS: key %s has no alias '%s'",
                        rec->key_id, alias);
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        snprintf(detail + n, size - n, "alias removed: '%.80s'; ", alias);
        break;
    case CKA_CMK_MOVE_ALIAS:
        if ((rv = check_move(rec, alias, from)) != CKR_OK) return rv;
        s = store_alias_move(module.store, rec->row, alias, now);
        snprintf(detail + n, size - n, "alias '%.80s' moved here from key %s; ", alias, from);
        break;
    }
    if (s == STORE_ALIAS_EXISTS) {
        log_warning("SetAttributeValue: %s: alias '%s' already exists on this token (aliases "
                    "are unique ignoring case; CKA_CMK_MOVE_ALIAS moves one)",
                    attr_name(type), alias);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    return s == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

CK_RV cmk_alias_apply(const struct cmk_record *rec, const struct cmk_alias_ops *ops,
                      char *detail, size_t size)
{
    int64_t now = util_now();
    for (size_t i = 0; i < ops->count; i++) {
        CK_RV rv = apply_one(rec, ops->op[i].type, ops->op[i].alias, now, detail, size);
        if (rv != CKR_OK) return rv;
    }
    return CKR_OK;
}

CK_RV cmk_alias_answer_all(const struct cmk_record *rec, CK_ATTRIBUTE *a)
{
    char **aliases;
    size_t count;
    if (store_alias_list(module.store, rec->row, &aliases, &count) != STORE_OK)
        return CKR_DEVICE_ERROR;
    size_t len = 0;
    for (size_t i = 0; i < count; i++)
        len += strlen(aliases[i]) + 1;
    char *text = malloc(len + 1);
    CK_RV rv = CKR_HOST_MEMORY;
    if (text) {
        size_t n = 0;
        for (size_t i = 0; i < count; i++)
            n += (size_t)sprintf(text + n, "%s%s", i ? "\n" : "", aliases[i]);
        rv = cmk_attr_put(a, text, (CK_ULONG)n);
        free(text);
    }
    store_alias_list_free(aliases, count);
    return rv;
}
