/* keyref.c - key resolution. cmkp11 hides keys pending deletion from every find whose
 * template names neither the key state nor the key id, so every search here names one of
 * them: that also keeps certificates and data objects sharing a label out of the answer. */
#include "keyref.h"

#include <ctype.h>
#include <p11-kit/uri.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"

static const CK_ULONG all_states[] = {CMK_STATE_ENABLED, CMK_STATE_DISABLED,
                                      CMK_STATE_PENDING_DELETION, CMK_STATE_PENDING_IMPORT};

static int looks_like_key_id(const char *s)
{
    if (strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int add_id(char (**ids)[37], size_t *count, const char *id, size_t len)
{
    if (len != 36) return 0;
    for (size_t i = 0; i < *count; i++)
        if (!strncmp((*ids)[i], id, 36)) return 0;
    char(*grown)[37] = realloc(*ids, (*count + 1) * sizeof(*grown));
    if (!grown) return -1;
    memcpy(grown[*count], id, 36);
    grown[*count][36] = '\0';
    *ids = grown;
    (*count)++;
    return 0;
}

int keyref_collect(struct ctl *ctl, const CK_ATTRIBUTE *tmpl, CK_ULONG n, const CK_ULONG *states,
                   size_t nstates, char (**ids)[37], size_t *count)
{
    *ids = NULL;
    *count = 0;
    if (!states) {
        states = all_states;
        nstates = sizeof(all_states) / sizeof(all_states[0]);
    }
    CK_ATTRIBUTE *t = calloc(n + 1, sizeof(*t));
    if (!t) return ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    if (n) memcpy(t, tmpl, n * sizeof(*t));
    int rc = 0;
    for (size_t s = 0; s < nstates && !rc; s++) {
        CK_ULONG state = states[s];
        t[n] = (CK_ATTRIBUTE){CKA_CMK_KEY_STATE, &state, sizeof(state)};
        CK_OBJECT_HANDLE *found;
        CK_ULONG nfound;
        CK_RV rv = p11_find(&ctl->p11, t, n + 1, &found, &nfound);
        if (rv != CKR_OK) {
            rc = ctl_fail_rv(ctl, rv, "C_FindObjects");
            break;
        }
        for (CK_ULONG i = 0; i < nfound && !rc; i++) {
            char id[40];
            CK_ATTRIBUTE a = {CKA_CMK_KEY_ID, id, sizeof(id)};
            if (ctl->p11.fn->C_GetAttributeValue(ctl->p11.session, found[i], &a, 1) != CKR_OK)
                continue;
            if (add_id(ids, count, id, a.ulValueLen))
                rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        }
        free(found);
    }
    free(t);
    if (rc) {
        free(*ids);
        *ids = NULL;
        *count = 0;
    }
    return rc;
}

static int by_key_id(struct ctl *ctl, const char *key_id, struct key_ref *out, int *exists)
{
    memset(out, 0, sizeof(*out));
    *exists = 0;
    CK_ATTRIBUTE t = {CKA_CMK_KEY_ID, (void *)key_id, (CK_ULONG)strlen(key_id)};
    CK_OBJECT_HANDLE *found;
    CK_ULONG n;
    CK_RV rv = p11_find(&ctl->p11, &t, 1, &found, &n);
    if (rv != CKR_OK) return ctl_fail_rv(ctl, rv, "C_FindObjects");
    for (CK_ULONG i = 0; i < n; i++) {
        CK_OBJECT_CLASS cls;
        CK_ULONG state;
        /* With a CKA_CMK_* attribute: the KMS view, which reaches a key pending deletion
         * (plain PKCS#11 no longer sees its secret or private object). */
        CK_ATTRIBUTE a[] = {{CKA_CLASS, &cls, sizeof(cls)},
                            {CKA_CMK_KEY_STATE, &state, sizeof(state)}};
        if (ctl->p11.fn->C_GetAttributeValue(ctl->p11.session, found[i], a, 2) != CKR_OK) continue;
        if (cls == CKO_PUBLIC_KEY) {
            out->pub = found[i];
        } else if (cls == CKO_SECRET_KEY || cls == CKO_PRIVATE_KEY) {
            out->main = found[i];
            out->main_class = cls;
        }
    }
    free(found);
    snprintf(out->key_id, sizeof(out->key_id), "%s", key_id);
    *exists = out->main != 0;
    return 0;
}

int keyref_exists(struct ctl *ctl, const char *key_id)
{
    struct key_ref ref;
    int exists;
    return by_key_id(ctl, key_id, &ref, &exists) ? -1 : exists;
}

/* The search template a pkcs11: URI stands for: its label and id (the token must be ours). */
static int template_from_uri(struct ctl *ctl, const char *text, P11KitUri *uri, CK_ATTRIBUTE *t,
                             CK_ULONG *n)
{
    int rc = p11_kit_uri_parse(text, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, uri);
    if (rc != P11_KIT_URI_OK)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "'%s' is not a usable pkcs11: URI: %s", text,
                        p11_kit_uri_message(rc));
    CK_TOKEN_INFO info;
    if (ctl->p11.fn->C_GetTokenInfo(ctl->p11.slot, &info) == CKR_OK &&
        !p11_kit_uri_match_token_info(uri, &info))
        return ctl_fail(ctl, KMS_NOT_FOUND, "the URI names another token than '%s'",
                        ctl->p11.token_label);
    *n = 0;
    CK_ATTRIBUTE *label = p11_kit_uri_get_attribute(uri, CKA_LABEL);
    CK_ATTRIBUTE *id = p11_kit_uri_get_attribute(uri, CKA_ID);
    if (label) t[(*n)++] = *label;
    if (id) t[(*n)++] = *id;
    if (*n == 0)
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "the URI names no key: give object=LABEL and/or id=%%XX...");
    return 0;
}

/* The Arn describe-key prints, arn:cmkp11:TOKEN:key/KEY-ID (or :alias/NAME, as list-aliases
 * prints), stands for the key id (or "alias/NAME") when TOKEN is the token open: *inner
 * points into name. 1 when name is not an Arn; 0, or an exit code. */
static int from_arn(struct ctl *ctl, const char *name, const char **inner)
{
    static const char prefix[] = "arn:cmkp11:";
    if (strncmp(name, prefix, sizeof(prefix) - 1)) return 1;
    const char *token = name + sizeof(prefix) - 1;
    const char *key = strstr(token, ":key/"), *alias = strstr(token, ":alias/");
    const char *end = key ? key : alias;
    if (!end || (key && alias))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "'%s' is not a cmkp11 Arn: arn:cmkp11:TOKEN:key/KEY-ID or "
                        "arn:cmkp11:TOKEN:alias/NAME",
                        name);
    size_t len = (size_t)(end - token);
    if (len != strlen(ctl->p11.token_label) || strncmp(token, ctl->p11.token_label, len))
        return ctl_fail(ctl, KMS_NOT_FOUND, "'%s' names token '%.*s', not the token open ('%s')",
                        name, (int)len, token, ctl->p11.token_label);
    *inner = key ? key + 5 : alias + 1;
    return 0;
}

int keyref_resolve(struct ctl *ctl, const char *name, struct key_ref *out)
{
    memset(out, 0, sizeof(*out));
    if (!name || !*name) return ctl_fail(ctl, KMS_MISSING_PARAMETER, "no key named (--key-id)");
    const char *inner = NULL;
    int arn = from_arn(ctl, name, &inner);
    if (arn == 0) return *inner ? keyref_resolve(ctl, inner, out)
                                : ctl_fail(ctl, KMS_INVALID_PARAMETER, "'%s' names no key", name);
    if (arn != 1) return arn;
    int exists;
    if (looks_like_key_id(name)) {
        char id[37];
        for (int i = 0; i < 37; i++)
            id[i] = (char)tolower((unsigned char)name[i]);
        int rc = by_key_id(ctl, id, out, &exists);
        if (rc) return rc;
        if (!exists) return ctl_fail(ctl, KMS_NOT_FOUND, "no key with id %s", id);
        return 0;
    }
    CK_ATTRIBUTE t[2];
    CK_ULONG n = 0;
    P11KitUri *uri = NULL;
    int rc = 0;
    if (!strncasecmp(name, "pkcs11:", 7)) {
        uri = p11_kit_uri_new();
        if (!uri) return ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        rc = template_from_uri(ctl, name, uri, t, &n);
    } else {
        const char *alias = !strncasecmp(name, "alias/", 6) ? name + 6 : name;
        if (!*alias) return ctl_fail(ctl, KMS_INVALID_PARAMETER, "empty alias");
        t[n++] = (CK_ATTRIBUTE){CKA_CMK_ALIAS, (void *)alias, (CK_ULONG)strlen(alias)};
    }
    char(*ids)[37] = NULL;
    size_t count = 0;
    if (!rc) rc = keyref_collect(ctl, t, n, NULL, 0, &ids, &count);
    if (!rc && count == 0) rc = ctl_fail(ctl, KMS_NOT_FOUND, "no key named '%s'", name);
    if (!rc && count > 1)
        rc = ctl_fail(ctl, KMS_INVALID_PARAMETER,
                      "'%s' names %zu keys (%s, %s%s): name one by its key id", name, count, ids[0],
                      ids[1], count > 2 ? ", ..." : "");
    if (!rc) {
        rc = by_key_id(ctl, ids[0], out, &exists);
        if (!rc && !exists) rc = ctl_fail(ctl, KMS_NOT_FOUND, "no key named '%s'", name);
    }
    free(ids);
    if (uri) p11_kit_uri_free(uri);
    return rc;
}

const char *keyref_alias_problem(const char *alias)
{
    if (!strncasecmp(alias, "alias/", 6)) alias += 6;
    size_t len = strlen(alias);
    if (len == 0) return "an alias must not be empty";
    if (len > 255) return "an alias has at most 255 characters";
    for (size_t i = 0; i < len; i++) {
        char c = alias[i];
        if (!(isalnum((unsigned char)c) || c == ':' || c == '_' || c == '-' || (i && c == '/')))
            return "an alias holds letters, digits, ':', '_', '-' and (not first) '/'";
        if (c == '/' && alias[i + 1] == '/') return "an alias must not contain '//'";
    }
    if (alias[len - 1] == '/') return "an alias must not end with '/'";
    static const char *const reserved[] = {"aws/", "acs/", "kms-", "cmk/"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (!strncasecmp(alias, reserved[i], strlen(reserved[i])))
            return "the alias prefixes aws/, acs/, kms- and cmk/ are reserved";
    if (len >= 8 && !strcasecmp(alias + len - 8, "/default"))
        return "the alias suffix /default is reserved";
    return NULL;
}

char *keyref_aliases(struct ctl *ctl, CK_OBJECT_HANDLE key)
{
    CK_ATTRIBUTE a = {CKA_CMK_ALIASES, NULL, 0};
    if (ctl->p11.fn->C_GetAttributeValue(ctl->p11.session, key, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return NULL;
    char *all = calloc(1, a.ulValueLen + 1);
    a.pValue = all;
    if (all && ctl->p11.fn->C_GetAttributeValue(ctl->p11.session, key, &a, 1) != CKR_OK) {
        free(all);
        return NULL;
    }
    return all;
}

int keyref_alias_taken(struct ctl *ctl, const char *alias, char owner[37])
{
    if (!strncasecmp(alias, "alias/", 6)) alias += 6;
    char(*ids)[37] = NULL;
    size_t count = 0;
    /* Uniqueness ignores case but finds match it exactly: look at every key's aliases. */
    int rc = keyref_collect(ctl, NULL, 0, NULL, 0, &ids, &count);
    int taken = 0;
    for (size_t i = 0; !rc && i < count && !taken; i++) {
        struct key_ref ref;
        int exists;
        if (by_key_id(ctl, ids[i], &ref, &exists) || !exists) continue;
        char *all = keyref_aliases(ctl, ref.main);
        for (char *save = NULL, *one = all ? strtok_r(all, "\n", &save) : NULL; one && !taken;
             one = strtok_r(NULL, "\n", &save))
            taken = !strcasecmp(one, alias);
        free(all);
        if (taken) memcpy(owner, ids[i], 37);
    }
    free(ids);
    return rc ? -1 : taken;
}
