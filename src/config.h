/* config.h - cmkp11.conf: where the backend is, which token, where the store is. */
#ifndef CMKP11_CONFIG_H
#define CMKP11_CONFIG_H

#include <stdbool.h>

#include "config_gm.h"

/* [policy] usage_conflict: what a plain template (no vendor attribute) asking for several
 * usages gets. HONOUR (default): every usage its flags ask, as on the backend alone.
 * PREFER_SIGN: the clouds' one-usage rule, a pair asking both is made SIGN_VERIFY (the
 * behaviour before HONOUR existed). REJECT: the one-usage rule, refused. */
enum usage_conflict_policy {
    USAGE_CONFLICT_PREFER_SIGN = 0,
    USAGE_CONFLICT_REJECT,
    USAGE_CONFLICT_HONOUR
};

/* [policy] init_token: C_InitToken on the CMK token. ALLOW (default): the SO re-initialises
 * it as on any token, and its CMKs go with their material. REFUSE_WITH_KEYS: refused while
 * the store holds any CMK. REFUSE: always refused (initialise with the HSM's own tools). */
enum init_token_policy { INIT_TOKEN_ALLOW = 0, INIT_TOKEN_REFUSE_WITH_KEYS, INIT_TOKEN_REFUSE };

/* [policy] extractable_keys: a plain template asking CKA_EXTRACTABLE=TRUE for a token key,
 * which a CMK never is. PLAIN (default): the key is made as an ordinary backend object,
 * exactly as the backend alone would make it (its owner wants to wrap it out). REFUSE:
 * CKR_TEMPLATE_INCONSISTENT, as for a request in the KMS vocabulary. */
enum extractable_policy { EXTRACTABLE_PLAIN = 0, EXTRACTABLE_REFUSE };

/* [policy] non_sensitive_keys: a plain template asking CKA_SENSITIVE=FALSE for a token key
 * (pkcs11-tool's default). RAISE (default): a CMK whose material is sensitive anyway (CMK
 * rule: material is never readable), with a log line. PLAIN: an ordinary backend object,
 * as the backend alone makes it. */
enum non_sensitive_policy { NON_SENSITIVE_RAISE = 0, NON_SENSITIVE_PLAIN };

/* [policy] non_private_keys: a plain template asking CKA_PRIVATE=FALSE for a token secret or
 * private key at level HSM. ALLOW (default): the key is public as on the backend alone,
 * found and used without a login (never changed in its CMK metadata without one). RAISE:
 * the key is made private, with a log line (as the KMS vocabulary always is). */
enum non_private_policy { NON_PRIVATE_ALLOW = 0, NON_PRIVATE_RAISE };

struct config {
    char *path;                /* the file read, for messages */
    char *backend_module;      /* [backend] module */
    char *backend_token_label; /* [backend] token_label */
    char *backend_token_serial;/* [backend] token_serial (alternative to the label) */
    char *token_label;         /* [token] label: what clients see */
    char *store_path;          /* [token] store */
    bool foreign_objects;      /* [token] foreign_objects: the backend holds objects made elsewhere */
    unsigned long lock_wait_seconds; /* [token] lock_wait_seconds: longest wait for the token lock */
    int log_level;             /* [log] level */
    char *log_file;            /* [log] file */
    unsigned long pending_window_days;        /* [policy] pending_window_days */
    enum usage_conflict_policy usage_conflict; /* [policy] usage_conflict */
    bool allow_immediate_destroy;             /* [policy] allow_immediate_destroy */
    bool cloud_specs_only;                    /* [policy] cloud_specs_only */
    bool refuse_clear_import;                 /* [policy] refuse_clear_import */
    bool alias_from_label; /* [policy] alias_from_label: a key made without CKA_CMK_ALIAS
                              takes its label as alias when it is a valid one and free */
    unsigned long max_keys;                   /* [policy] max_keys, 0 = no quota */
    enum init_token_policy init_token;        /* [policy] init_token */
    enum extractable_policy extractable_keys; /* [policy] extractable_keys */
    enum non_private_policy non_private_keys; /* [policy] non_private_keys */
    enum non_sensitive_policy non_sensitive_keys; /* [policy] non_sensitive_keys */
    bool import_oaep_decode_in_module;        /* [import] oaep_decode_in_module */
    bool gm_mode; /* [policy] gm_mode: SM4 is cmkctl's default symmetric spec (the module's
                     C_GenerateKey stays explicit) */
    struct gm_backend gm; /* [gm_backend]: the backend's own SM codes, if it has SM */
};

/* Reads the file named by CMKP11_CONF, else the installed default. On failure
 * logs one line naming file, line and key, and returns -1. */
int config_load(struct config *cfg);
int config_load_file(struct config *cfg, const char *path);
void config_free(struct config *cfg);

#endif
