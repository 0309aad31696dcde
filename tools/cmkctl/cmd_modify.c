/* cmd_modify.c - changes of a key's metadata, each one C_SetAttributeValue on the key's
 * secret or private object: alias, description, state, rotation policy, tags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "keymeta.h"
#include "keyspec.h"
#include "output.h"

/* A refusal told in the clouds' terms by what the command knows of its own fields. */
typedef int (*explain_fn)(struct ctl *ctl, CK_RV rv, const struct key_meta *m);

/* explain NULL: the generic state and usage reading of keymeta_fail. */
static int set_and_report(struct ctl *ctl, const struct key_ref *ref, const struct key_meta *m,
                          struct tmpl *t, const char *what, explain_fn explain,
                          const char *const *fields)
{
    CK_RV rv = p11_set(&ctl->p11, ref->main, t->a, t->n);
    if (rv != CKR_OK) return explain ? explain(ctl, rv, m) : keymeta_fail(ctl, rv, what, m);
    return keymeta_report(ctl, ref, fields);
}

/* ---- update-alias, create-alias, delete-alias ---- */

static const struct opt_def update_alias_opts[] = {
    {"alias-name", "ALIAS", OPT_REQUIRED, "the alias; an 'alias/' prefix is accepted"},
    {"target-key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI of the key"},
    {NULL, NULL, 0, NULL},
};

static int explain_alias(struct ctl *ctl, CK_RV rv, const struct key_meta *m, const char *alias,
                         const char *what)
{
    if (rv != CKR_ATTRIBUTE_VALUE_INVALID) return keymeta_fail(ctl, rv, what, m);
    char owner[37];
    int taken = keyref_alias_taken(ctl, alias, owner);
    if (taken < 0) return err_code_exit(ctl->err.code);
    if (taken && strcmp(owner, keymeta_text(m, CKA_CMK_KEY_ID)))
        return ctl_fail(ctl, KMS_ALIAS_EXISTS, "alias '%s' is already used by key %s", alias,
                        owner);
    const char *why = keyref_alias_problem(alias);
    return ctl_fail(ctl, why ? KMS_INVALID_ALIAS : KMS_INVALID_PARAMETER,
                    "alias '%s' was refused: %s", alias,
                    why ? why
                        : "see the module log (CKR_ATTRIBUTE_VALUE_INVALID: a key of another kind "
                          "or usage, or no such alias)");
}

/* Sets one alias attribute on the key named by key_name and reports its alias. type 0:
 * UpdateAlias, which moves an alias some key has and renames the key otherwise. */
static int set_alias(struct ctl *ctl, const char *key_name, CK_ATTRIBUTE_TYPE type,
                     const char *alias, const char *what)
{
    const char *bare = !strncasecmp(alias, "alias/", 6) ? alias + 6 : alias;
    if (!*bare) return ctl_fail(ctl, KMS_INVALID_ALIAS, "the alias must not be empty");
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, key_name, &ref, &m);
    if (!rc && type == 0) {
        char owner[37];
        int taken = keyref_alias_taken(ctl, alias, owner);
        if (taken < 0) rc = err_code_exit(ctl->err.code);
        /* AWS: an existing alias moves to the target key. Tencent: the key is renamed. */
        type = taken ? CKA_CMK_MOVE_ALIAS : CKA_CMK_ALIAS;
    }
    if (!rc) {
        CK_ATTRIBUTE a = {type, (void *)alias, (CK_ULONG)strlen(alias)};
        CK_RV rv = p11_set(&ctl->p11, ref.main, &a, 1);
        static const char *const fields[] = {"Alias", NULL};
        rc = rv == CKR_OK ? keymeta_report(ctl, &ref, fields)
                          : explain_alias(ctl, rv, &m, alias, what);
    }
    keymeta_free(&m);
    return rc;
}

static int run_update_alias(struct ctl *ctl)
{
    return set_alias(ctl, arg_str(&ctl->args, "target-key-id"), 0,
                     arg_str(&ctl->args, "alias-name"), "UpdateAlias");
}

const struct cmd_def cmd_update_alias = {
    "update-alias",
    "Point an alias at a key, or rename a key (UpdateAlias)",
    "An alias another key has moves to the target key (CKA_CMK_MOVE_ALIAS), as AWS's\n"
    "UpdateAlias does: both keys must be of one kind (symmetric, asymmetric or HMAC) and one\n"
    "usage. An alias no key has replaces the target key's aliases (CKA_CMK_ALIAS), as\n"
    "Tencent's UpdateAlias renames a key. The keys' CKA_LABELs do not change.",
    "cmkctl update-alias --alias-name alias/payments-current --target-key-id alias/payments-v2",
    update_alias_opts,
    run_update_alias,
};

static int run_create_alias(struct ctl *ctl)
{
    return set_alias(ctl, arg_str(&ctl->args, "target-key-id"), CKA_CMK_ADD_ALIAS,
                     arg_str(&ctl->args, "alias-name"), "CreateAlias");
}

const struct cmd_def cmd_create_alias = {
    "create-alias",
    "Give a key one more alias (CreateAlias)",
    "Adds the alias to the key's aliases (CKA_CMK_ADD_ALIAS). Aliases are unique on the\n"
    "token ignoring case: one another key has is refused with AliasAlreadyExists.",
    "cmkctl create-alias --alias-name alias/billing --target-key-id alias/payments",
    update_alias_opts,
    run_create_alias,
};

static const struct opt_def delete_alias_opts[] = {
    {"alias-name", "ALIAS", OPT_REQUIRED, "the alias; an 'alias/' prefix is accepted"},
    {NULL, NULL, 0, NULL},
};

static int run_delete_alias(struct ctl *ctl)
{
    const char *alias = arg_str(&ctl->args, "alias-name");
    return set_alias(ctl, alias, CKA_CMK_REMOVE_ALIAS, alias, "DeleteAlias");
}

const struct cmd_def cmd_delete_alias = {
    "delete-alias",
    "Remove an alias (DeleteAlias)",
    "Takes the alias away from the key that has it (CKA_CMK_REMOVE_ALIAS); the key and its\n"
    "other aliases stay.",
    "cmkctl delete-alias --alias-name alias/billing",
    delete_alias_opts,
    run_delete_alias,
};

/* ---- update-key-description ---- */

static const struct opt_def update_description_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI"},
    {"description", "TEXT", OPT_REQUIRED, "the new description ('' clears it)"},
    {NULL, NULL, 0, NULL},
};

static int explain_description(struct ctl *ctl, CK_RV rv, const struct key_meta *m)
{
    if (rv != CKR_ATTRIBUTE_VALUE_INVALID) return keymeta_fail(ctl, rv, "UpdateKeyDescription", m);
    return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                    "the description was refused: at most 8192 characters of UTF-8, no control "
                    "characters but TAB, LF, CR (CKR_ATTRIBUTE_VALUE_INVALID)");
}

static int run_update_key_description(struct ctl *ctl)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (!rc) {
        const char *d = arg_str(&ctl->args, "description");
        struct tmpl t = {0};
        tmpl_add(&t, CKA_CMK_DESCRIPTION, d, (CK_ULONG)strlen(d));
        static const char *const fields[] = {"Description", NULL};
        rc = set_and_report(ctl, &ref, &m, &t, "UpdateKeyDescription", explain_description, fields);
    }
    keymeta_free(&m);
    return rc;
}

const struct cmd_def cmd_update_key_description = {
    "update-key-description",
    "Change a key's description (UpdateKeyDescription)",
    "Sets CKA_CMK_DESCRIPTION on the key.",
    "cmkctl update-key-description --key-id alias/payments --description 'card data, EU'",
    update_description_opts,
    run_update_key_description,
};

/* ---- enable-key, disable-key ---- */

static const struct opt_def key_only_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI"},
    {NULL, NULL, 0, NULL},
};

static int set_state(struct ctl *ctl, CK_ULONG state, const char *what)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    /* The module reads Disabled on a key pending deletion as "cancel the deletion";
     * DisableKey must not do that behind the operator's back. */
    if (!rc && keymeta_ulong(&m, CKA_CMK_KEY_STATE, 0) == CMK_STATE_PENDING_DELETION)
        rc = ctl_fail(ctl, KMS_STATE, "%s: key %s is PendingDeletion (cancel-key-deletion first)",
                      what, ref.key_id);
    if (!rc) {
        struct tmpl t = {0};
        tmpl_add(&t, CKA_CMK_KEY_STATE, &state, sizeof(state));
        static const char *const fields[] = {"KeyState", NULL};
        rc = set_and_report(ctl, &ref, &m, &t, what, NULL, fields);
    }
    keymeta_free(&m);
    return rc;
}

static int run_enable_key(struct ctl *ctl)
{
    return set_state(ctl, CMK_STATE_ENABLED, "EnableKey");
}

static int run_disable_key(struct ctl *ctl)
{
    return set_state(ctl, CMK_STATE_DISABLED, "DisableKey");
}

const struct cmd_def cmd_enable_key = {
    "enable-key",
    "Enable a disabled key (EnableKey)",
    "Sets CKA_CMK_KEY_STATE to Enabled (allowed from Disabled).",
    "cmkctl enable-key --key-id alias/payments",
    key_only_opts,
    run_enable_key,
};

const struct cmd_def cmd_disable_key = {
    "disable-key",
    "Disable a key: no cryptography until enabled again (DisableKey)",
    "Sets CKA_CMK_KEY_STATE to Disabled (allowed from Enabled); sign, verify, encrypt and\n"
    "decrypt with it then fail with ResourceUnavailable.CmkDisabled.",
    "cmkctl disable-key --key-id alias/payments",
    key_only_opts,
    run_disable_key,
};

/* ---- enable-key-rotation, disable-key-rotation ---- */

static const struct opt_def enable_rotation_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI"},
    {"rotation-interval", "PERIOD", 0,
     "365d, 8760h, 525600m, 31536000s or whole days; 7 to 2560 days (default: the key's "
     "interval, else 365 days)"},
    {NULL, NULL, 0, NULL},
};

static int explain_rotation(struct ctl *ctl, CK_RV rv, const struct key_meta *m)
{
    const char *spec = keymeta_text(m, CKA_CMK_KEY_SPEC);
    const struct key_spec *s = keyspec_by_name(spec);
    int symmetric_kms = s && keyspec_is_cipher(s) &&
                        keymeta_ulong(m, CKA_CMK_ORIGIN, CMK_ORIGIN_KMS) == CMK_ORIGIN_KMS;
    if ((rv == CKR_ACTION_PROHIBITED || rv == CKR_TEMPLATE_INCONSISTENT) && !symmetric_kms)
        return ctl_fail(ctl, KMS_UNSUPPORTED,
                        "automatic rotation is only for symmetric keys of KMS origin; key %s is "
                        "%s",
                        keymeta_text(m, CKA_CMK_KEY_ID), *spec ? spec : "not one");
    if (rv == CKR_ATTRIBUTE_VALUE_INVALID)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "the rotation interval was refused: 7 to 2560 days, written 365d, "
                        "8760h, 525600m, 31536000s or 365 (CKR_ATTRIBUTE_VALUE_INVALID)");
    return keymeta_fail(ctl, rv, "EnableKeyRotation", m);
}

static int set_rotation(struct ctl *ctl, int on)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (!rc) {
        struct tmpl t = {0};
        tmpl_add_bool(&t, CKA_CMK_ROTATION_ENABLED, on);
        const char *period = on ? arg_str(&ctl->args, "rotation-interval") : NULL;
        if (period) tmpl_add(&t, CKA_CMK_ROTATION_PERIOD, period, (CK_ULONG)strlen(period));
        static const char *const fields[] = {"AutomaticRotation", "RotationInterval",
                                             "NextRotationDate", NULL};
        rc = set_and_report(ctl, &ref, &m, &t, on ? "EnableKeyRotation" : "DisableKeyRotation",
                            explain_rotation, fields);
    }
    keymeta_free(&m);
    return rc;
}

static int run_enable_key_rotation(struct ctl *ctl) { return set_rotation(ctl, 1); }

static int run_disable_key_rotation(struct ctl *ctl) { return set_rotation(ctl, 0); }

const struct cmd_def cmd_enable_key_rotation = {
    "enable-key-rotation",
    "Turn on automatic rotation, optionally with a new interval (EnableKeyRotation)",
    "Sets CKA_CMK_ROTATION_ENABLED=TRUE and CKA_CMK_ROTATION_PERIOD. Only symmetric keys of\n"
    "KMS origin rotate: others answer UnsupportedOperation.",
    "cmkctl enable-key-rotation --key-id alias/payments --rotation-interval 180d",
    enable_rotation_opts,
    run_enable_key_rotation,
};

const struct cmd_def cmd_disable_key_rotation = {
    "disable-key-rotation",
    "Turn off automatic rotation (DisableKeyRotation)",
    "Sets CKA_CMK_ROTATION_ENABLED=FALSE; the interval is kept for a later enable.",
    "cmkctl disable-key-rotation --key-id alias/payments",
    key_only_opts,
    run_disable_key_rotation,
};

/* ---- tag-resource, untag-resource ---- */

static const struct opt_def tag_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI"},
    {"tags", "K=V[,K=V...]", OPT_REQUIRED | OPT_REPEAT, "tags to add or overwrite"},
    {NULL, NULL, 0, NULL},
};

static const struct opt_def untag_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI"},
    {"tag-keys", "K[,K...]", OPT_REQUIRED | OPT_REPEAT, "keys of the tags to remove"},
    {NULL, NULL, 0, NULL},
};

static int explain_tags(struct ctl *ctl, CK_RV rv, const struct key_meta *m)
{
    if (rv != CKR_ATTRIBUTE_VALUE_INVALID) return keymeta_fail(ctl, rv, "TagResource", m);
    return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                    "the tags were refused: at most 50; key 1-128 characters without '=', value "
                    "0-256, no control characters; key prefixes aws:, acs:, aliyun, cmk: are "
                    "reserved (CKR_ATTRIBUTE_VALUE_INVALID)");
}

/* Read CKA_CMK_TAGS, edit, write the whole set back: the module replaces, never merges. */
static int edit_tags(struct ctl *ctl, int add)
{
    const char *const *values;
    size_t nvalues = arg_list(&ctl->args, add ? "tags" : "tag-keys", &values);
    struct tag_list given = {0}, tags = {0};
    int rc = 0;
    for (size_t i = 0; i < nvalues && !rc; i++) {
        const char *bad;
        enum tags_status s = tags_parse_arg(&given, values[i], &bad);
        if (s == TAGS_DUPLICATE)
            rc = ctl_fail(ctl, KMS_TAG_KEYS_DUPLICATED, "tag key '%s' is given twice", bad);
        else if (s != TAGS_OK)
            rc = ctl_fail(ctl, KMS_INVALID_PARAMETER, "%s wants %s; bad at '%s'",
                          add ? "--tags" : "--tag-keys", add ? "KEY=VALUE,..." : "KEY,...",
                          bad ? bad : "?");
    }
    struct key_ref ref;
    struct key_meta m;
    memset(&m, 0, sizeof(m));
    if (!rc) rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (!rc && keymeta_tags(&m, &tags)) rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    for (size_t i = 0; !rc && i < given.n; i++) {
        if (add && tags_put(&tags, given.items[i].key, given.items[i].value) != TAGS_OK)
            rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        if (!add) tags_remove(&tags, given.items[i].key); /* absent keys: nothing to do */
    }
    size_t len = 0;
    char *lines = rc ? NULL : tags_to_lines(&tags, &len);
    if (!rc && !lines) rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    if (!rc) {
        struct tmpl t = {0};
        tmpl_add(&t, CKA_CMK_TAGS, lines, (CK_ULONG)len);
        static const char *const fields[] = {"Tags", NULL};
        rc = set_and_report(ctl, &ref, &m, &t, add ? "TagResource" : "UntagResource", explain_tags,
                            fields);
    }
    free(lines);
    tags_free(&given);
    tags_free(&tags);
    keymeta_free(&m);
    return rc;
}

static int run_tag_resource(struct ctl *ctl) { return edit_tags(ctl, 1); }

static int run_untag_resource(struct ctl *ctl) { return edit_tags(ctl, 0); }

const struct cmd_def cmd_tag_resource = {
    "tag-resource",
    "Add or overwrite tags on a key (TagResource)",
    "Reads CKA_CMK_TAGS, merges, and writes the whole set back.",
    "cmkctl tag-resource --key-id alias/payments --tags owner=alice,cost-center=42",
    tag_opts,
    run_tag_resource,
};

const struct cmd_def cmd_untag_resource = {
    "untag-resource",
    "Remove tags from a key by tag key (UntagResource)",
    "Reads CKA_CMK_TAGS, removes the keys named (absent ones are ignored), writes back.",
    "cmkctl untag-resource --key-id alias/payments --tag-keys owner,cost-center",
    untag_opts,
    run_untag_resource,
};
