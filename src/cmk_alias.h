/* cmk_alias.h - a key's aliases through C_SetAttributeValue and C_GetAttributeValue:
 * CKA_CMK_ALIAS (replace them all), CKA_CMK_ADD_ALIAS, CKA_CMK_REMOVE_ALIAS,
 * CKA_CMK_MOVE_ALIAS (the clouds' CreateAlias, DeleteAlias, UpdateAlias) and
 * CKA_CMK_ALIASES. The rows live in the store (store_alias_*). */
#ifndef CMKP11_CMK_ALIAS_H
#define CMKP11_CMK_ALIAS_H

#include <stddef.h>

#include "cmk_record.h"
#include <p11-kit/pkcs11.h>
#include <stdbool.h>

/* One template may change at most this many aliases. */
#define CMK_ALIAS_OPS_MAX 16

struct cmk_alias_ops {
    struct {
        CK_ATTRIBUTE_TYPE type; /* CKA_CMK_ALIAS, _ADD_ALIAS, _REMOVE_ALIAS, _MOVE_ALIAS */
        char alias[256];        /* without an "alias/" prefix; empty: none (CKA_CMK_ALIAS) */
    } op[CMK_ALIAS_OPS_MAX];
    size_t count;
};

/* Is this one of the attributes above that change aliases? */
bool cmk_alias_is_change(CK_ATTRIBUTE_TYPE type);
/* Checks one such attribute of a template and queues it; nothing changes yet. */
CK_RV cmk_alias_queue(struct cmk_alias_ops *ops, const CK_ATTRIBUTE *a);
/* Applies the queued changes to key rec, in order, inside the caller's store
 * transaction, and describes them for the audit after what detail already holds. */
CK_RV cmk_alias_apply(const struct cmk_record *rec, const struct cmk_alias_ops *ops,
                      char *detail, size_t size);
/* CKA_CMK_ALIASES: every alias of the key, oldest first, separated by LF. */
CK_RV cmk_alias_answer_all(const struct cmk_record *rec, CK_ATTRIBUTE *a);

#endif
