/* cmd_query.c - describe-key, list-keys, list-aliases: finds and attribute reads only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "keymeta.h"
#include "keyspec.h"
#include "output.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000

/* ---- describe-key ---- */

static const struct opt_def describe_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, or pkcs11: URI"},
    {NULL, NULL, 0, NULL},
};

static int run_describe_key(struct ctl *ctl)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (!rc) {
        json_object *resp = json_object_new_object();
        json_object_object_add(resp, "KeyMetadata", keymeta_json(ctl, &m));
        rc = out_emit(ctl, resp, 0);
    }
    keymeta_free(&m);
    return rc;
}

const struct cmd_def cmd_describe_key = {
    "describe-key",
    "Show a key's metadata (DescribeKey)",
    "Finds the key by CKA_CMK_KEY_ID, or by CKA_LABEL / URI with CKA_CMK_KEY_STATE so keys\n"
    "pending deletion are found too, and reads its attributes.",
    "cmkctl describe-key --key-id alias/payments",
    describe_opts,
    run_describe_key,
};

/* ---- paging, shared by the two listings ---- */

struct page_item {
    char *sort_key; /* also the marker handed out: opaque to the user */
    json_object *entry;
};

static int item_compare(const void *a, const void *b)
{
    return strcmp(((const struct page_item *)a)->sort_key, ((const struct page_item *)b)->sort_key);
}

static int parse_limit(struct ctl *ctl, long *limit)
{
    const char *text = arg_str(&ctl->args, "limit");
    *limit = LIMIT_DEFAULT;
    if (!text) return 0;
    char *end;
    errno = 0;
    *limit = strtol(text, &end, 10);
    if (errno || *end || *limit < 1 || *limit > LIMIT_MAX)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--limit must be 1 to %d, not '%s'", LIMIT_MAX,
                        text);
    return 0;
}

static void items_free(struct page_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].sort_key);
        json_object_put(items[i].entry);
    }
    free(items);
}

/* Sorts, applies --marker and --limit, prints; consumes items. */
static int emit_page(struct ctl *ctl, const char *list_name, struct page_item *items, size_t n)
{
    long limit;
    int rc = parse_limit(ctl, &limit);
    if (rc) {
        items_free(items, n);
        return rc;
    }
    if (n) qsort(items, n, sizeof(*items), item_compare);
    const char *marker = arg_str(&ctl->args, "marker");
    size_t start = 0;
    while (marker && start < n && strcmp(items[start].sort_key, marker) <= 0)
        start++;
    size_t end = start + (size_t)limit < n ? start + (size_t)limit : n;
    json_object *resp = json_object_new_object();
    json_object *list = json_object_new_array();
    for (size_t i = start; i < end; i++) {
        json_object_array_add(list, items[i].entry);
        items[i].entry = NULL;
    }
    json_object_object_add(resp, list_name, list);
    json_object_object_add(resp, "TotalCount", json_object_new_int64((int64_t)n));
    json_object_object_add(resp, "Truncated", json_object_new_boolean(end < n));
    if (end < n) out_add_str(resp, "NextMarker", items[end - 1].sort_key);
    items_free(items, n);
    return out_emit(ctl, resp, 0);
}

static int items_add(struct page_item **items, size_t *n, char *sort_key, json_object *entry)
{
    struct page_item *grown = realloc(*items, (*n + 1) * sizeof(*grown));
    if (!grown || !sort_key || !entry) {
        free(sort_key);
        json_object_put(entry);
        if (grown) *items = grown;
        return -1;
    }
    grown[*n].sort_key = sort_key;
    grown[*n].entry = entry;
    *items = grown;
    (*n)++;
    return 0;
}

/* ---- list-keys ---- */

static const struct opt_def list_keys_opts[] = {
    {"state", "STATE", OPT_REPEAT, "Enabled, Disabled, PendingDeletion or PendingImport"},
    {"key-spec", "SPEC", 0, "only keys of this spec (synonyms accepted)"},
    {"tag", "KEY[=VALUE]", OPT_REPEAT, "only keys with this tag (any value when none given)"},
    {"limit", "N", 0, "at most N keys (1-1000, default 100)"},
    {"marker", "MARKER", 0, "continue after the NextMarker of a previous page"},
    {NULL, NULL, 0, NULL},
};

static int tag_matches(const struct tag_list *tags, const char *want)
{
    const char *eq = strchr(want, '=');
    for (size_t i = 0; i < tags->n; i++) {
        size_t klen = eq ? (size_t)(eq - want) : strlen(want);
        if (strlen(tags->items[i].key) != klen || strncmp(tags->items[i].key, want, klen)) continue;
        return !eq || !strcmp(tags->items[i].value, eq + 1);
    }
    return 0;
}

static json_object *key_entry(const struct key_meta *m)
{
    json_object *e = json_object_new_object();
    out_add_str(e, "KeyId", keymeta_text(m, CKA_CMK_KEY_ID));
    out_add_str(e, "KeyArn", keymeta_text(m, CKA_CMK_ARN));
    out_add_str(e, "Alias", keymeta_text(m, CKA_CMK_ALIAS));
    out_add_str(e, "KeySpec", keymeta_text(m, CKA_CMK_KEY_SPEC));
    out_add_str(e, "KeyUsage", keyusage_name(keymeta_ulong(m, CKA_CMK_KEY_USAGE, 0)));
    out_add_str(e, "KeyState", keystate_name(keymeta_ulong(m, CKA_CMK_KEY_STATE, (CK_ULONG)-1)));
    json_object_object_add(e, "CreationDate",
                           out_time((int64_t)keymeta_ulong(m, CKA_CMK_CREATION_DATE, 0)));
    return e;
}

static int run_list_keys(struct ctl *ctl)
{
    const char *const *state_args, *const *tag_args;
    size_t nstates = arg_list(&ctl->args, "state", &state_args);
    size_t ntags = arg_list(&ctl->args, "tag", &tag_args);
    CK_ULONG states[8];
    if (nstates > 8) return ctl_fail(ctl, KMS_INVALID_PARAMETER, "too many --state options");
    for (size_t i = 0; i < nstates; i++)
        if (keystate_parse(state_args[i], &states[i]))
            return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                            "unknown state '%s' (Enabled, Disabled, PendingDeletion, "
                            "PendingImport)",
                            state_args[i]);
    struct tmpl t = {0};
    const char *spec_text = arg_str(&ctl->args, "key-spec");
    if (spec_text) {
        const struct key_spec *spec;
        /* Keys of specs outside the clouds' list (RSA_1024...) are listed by their name. */
        if (keyspec_lookup(spec_text, &spec) == SPEC_FOUND) spec_text = spec->name;
        tmpl_add(&t, CKA_CMK_KEY_SPEC, spec_text, (CK_ULONG)strlen(spec_text));
    }
    /* The module matches one tag per find; further tags are checked here. */
    if (ntags) tmpl_add(&t, CKA_CMK_TAG, tag_args[0], (CK_ULONG)strlen(tag_args[0]));
    int rc = p11_open(ctl, P11_LOGIN);
    char(*ids)[37] = NULL;
    size_t count = 0;
    if (!rc) rc = keyref_collect(ctl, t.a, t.n, nstates ? states : NULL, nstates, &ids, &count);
    struct page_item *items = NULL;
    size_t nitems = 0;
    for (size_t i = 0; !rc && i < count; i++) {
        struct key_ref ref;
        struct key_meta m;
        memset(&m, 0, sizeof(m));
        if (keyref_resolve(ctl, ids[i], &ref)) {
            /* Gone between the find and now (purged by another process): not listed. */
            memset(&ctl->err, 0, sizeof(ctl->err));
            continue;
        }
        rc = keymeta_read(ctl, &ref, &m);
        struct tag_list tags = {0};
        int keep = !rc;
        if (keep && ntags > 1) {
            keymeta_tags(&m, &tags);
            for (size_t k = 1; k < ntags && keep; k++)
                keep = tag_matches(&tags, tag_args[k]);
        }
        if (keep) {
            char key[64];
            snprintf(key, sizeof(key), "%012lu:%s", keymeta_ulong(&m, CKA_CMK_CREATION_DATE, 0),
                     ids[i]);
            if (items_add(&items, &nitems, strdup(key), key_entry(&m)))
                rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        }
        tags_free(&tags);
        keymeta_free(&m);
    }
    free(ids);
    if (rc) {
        items_free(items, nitems);
        return rc;
    }
    return emit_page(ctl, "Keys", items, nitems);
}

const struct cmd_def cmd_list_keys = {
    "list-keys",
    "List keys, oldest first, with filters and paging (ListKeys)",
    "One find per state with CKA_CMK_KEY_STATE (and CKA_CMK_KEY_SPEC, CKA_CMK_TAG when\n"
    "filtered), then the attributes of each key. TotalCount counts every match; when\n"
    "Truncated is true, pass NextMarker to --marker for the next page.",
    "cmkctl list-keys --state Enabled --key-spec EC_P256 --tag team=pay --limit 20",
    list_keys_opts,
    run_list_keys,
};

/* ---- list-aliases ---- */

static const struct opt_def list_aliases_opts[] = {
    {"key-id", "KEY", 0, "only the aliases of this key"},
    {"limit", "N", 0, "at most N aliases (1-1000, default 100)"},
    {"marker", "MARKER", 0, "continue after the NextMarker of a previous page"},
    {NULL, NULL, 0, NULL},
};

static int run_list_aliases(struct ctl *ctl)
{
    int rc = p11_open(ctl, P11_LOGIN);
    char(*ids)[37] = NULL;
    size_t count = 0;
    const char *only = arg_str(&ctl->args, "key-id");
    if (!rc && only) {
        struct key_ref ref;
        rc = keyref_resolve(ctl, only, &ref);
        if (!rc && !(ids = malloc(sizeof(*ids)))) rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        if (!rc) {
            memcpy(ids[0], ref.key_id, sizeof(ids[0]));
            count = 1;
        }
    } else if (!rc) {
        rc = keyref_collect(ctl, NULL, 0, NULL, 0, &ids, &count);
    }
    struct page_item *items = NULL;
    size_t nitems = 0;
    for (size_t i = 0; !rc && i < count; i++) {
        struct key_ref ref;
        if (keyref_resolve(ctl, ids[i], &ref)) {
            memset(&ctl->err, 0, sizeof(ctl->err));
            continue;
        }
        char *all = keyref_aliases(ctl, ref.main);
        if (!all) continue;
        /* A key may have several aliases: one entry each, as ListAliases lists them. */
        for (char *save = NULL, *one = strtok_r(all, "\n", &save); !rc && one;
             one = strtok_r(NULL, "\n", &save)) {
            char name[310], arn[400];
            snprintf(name, sizeof(name), "alias/%s", one);
            snprintf(arn, sizeof(arn), "arn:cmkp11:%s:%s", ctl->p11.token_label, name);
            json_object *e = json_object_new_object();
            out_add_str(e, "AliasName", name);
            out_add_str(e, "AliasArn", arn);
            out_add_str(e, "KeyId", ids[i]);
            if (items_add(&items, &nitems, strdup(name), e))
                rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        }
        free(all);
    }
    free(ids);
    if (rc) {
        items_free(items, nitems);
        return rc;
    }
    return emit_page(ctl, "Aliases", items, nitems);
}

const struct cmd_def cmd_list_aliases = {
    "list-aliases",
    "List aliases and the keys they name (ListAliases)",
    "A key's aliases are its CKA_CMK_ALIASES (not its CKA_LABEL); every key in every state\n"
    "is looked at.",
    "cmkctl list-aliases --limit 50",
    list_aliases_opts,
    run_list_aliases,
};
