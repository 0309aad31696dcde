/* keyref.h - from what the user typed (key id, alias, pkcs11: URI) to the key's objects. */
#ifndef CMKCTL_KEYREF_H
#define CMKCTL_KEYREF_H

#include "p11.h"

struct ctl;

struct key_ref {
    char key_id[37];
    CK_OBJECT_HANDLE main; /* the secret or private key: what state and metadata hang on */
    CK_OBJECT_CLASS main_class;
    CK_OBJECT_HANDLE pub; /* the public key object of a pair, 0 when none is left */
};

/* Finds the key in any state, including PendingDeletion. Returns 0, or an exit code with
 * ctl->err set (ResourceUnavailable.CmkNotFound when nothing matches). */
int keyref_resolve(struct ctl *ctl, const char *name, struct key_ref *out);
/* 1 when a key with this id still exists, 0 when not, -1 on a module error (ctl->err set). */
int keyref_exists(struct ctl *ctl, const char *key_id);

/* Why an alias breaks the naming rules (the module's, restated to explain a refusal),
 * or NULL when it keeps them. An "alias/" prefix is ignored. */
const char *keyref_alias_problem(const char *alias);
/* Every alias of the key (CKA_CMK_ALIASES, LF between them), malloc'd; NULL when unreadable. */
char *keyref_aliases(struct ctl *ctl, CK_OBJECT_HANDLE key);
/* 1 when another key already uses this alias (ignoring case, as the module's uniqueness
 * does) and copies its id to owner; 0 when not; -1 on failure (ctl->err set). */
int keyref_alias_taken(struct ctl *ctl, const char *alias, char owner[37]);

/* Every key id whose objects match tmpl (plus a key-state filter per state asked for);
 * states NULL means all four visible states. *ids is malloc'd, 37 bytes per id. */
int keyref_collect(struct ctl *ctl, const CK_ATTRIBUTE *tmpl, CK_ULONG n, const CK_ULONG *states,
                   size_t nstates, char (**ids)[37], size_t *count);

#endif
