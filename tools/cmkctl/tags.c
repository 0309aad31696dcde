/* tags.c - tag list editing. Validation of keys and values is the module's: cmkctl only
 * parses what it must to build the list, so the rules live in one place. */
#include "tags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct tag *tags_find(const struct tag_list *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].key, key)) return &l->items[i];
    return NULL;
}

static enum tags_status append(struct tag_list *l, const char *key, size_t klen, const char *value,
                               size_t vlen)
{
    struct tag *grown = realloc(l->items, (l->n + 1) * sizeof(*grown));
    if (!grown) return TAGS_NOMEM;
    l->items = grown;
    grown[l->n].key = strndup(key, klen);
    grown[l->n].value = strndup(value, vlen);
    if (!grown[l->n].key || !grown[l->n].value) {
        free(grown[l->n].key);
        free(grown[l->n].value);
        return TAGS_NOMEM;
    }
    l->n++;
    return TAGS_OK;
}

/* One tag, after its duplicate check. */
static enum tags_status add_checked(struct tag_list *l, const char *key, size_t klen,
                                    const char *value, size_t vlen, const char **bad)
{
    if (klen == 0) {
        *bad = key;
        return TAGS_SYNTAX;
    }
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->items[i].key) == klen && !strncmp(l->items[i].key, key, klen)) {
            *bad = l->items[i].key;
            return TAGS_DUPLICATE;
        }
    return append(l, key, klen, value, vlen);
}

/* The clouds' JSON, [{"TagKey":"k","TagValue":"v"},...] (AWS's "Key"/"Value" too). */
static enum tags_status parse_json(struct tag_list *l, const char *text, const char **bad)
{
    json_tokener *tok = json_tokener_new();
    if (!tok) return TAGS_NOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *arr = json_tokener_parse_ex(tok, text, (int)strlen(text));
    int whole = arr && json_tokener_get_error(tok) == json_tokener_success &&
                json_tokener_get_parse_end(tok) == strlen(text);
    json_tokener_free(tok);
    enum tags_status s = whole && json_object_is_type(arr, json_type_array) ? TAGS_OK : TAGS_SYNTAX;
    for (size_t i = 0; s == TAGS_OK && i < json_object_array_length(arr); i++) {
        json_object *o = json_object_array_get_idx(arr, i), *k = NULL, *v = NULL;
        if (!json_object_object_get_ex(o, "TagKey", &k)) json_object_object_get_ex(o, "Key", &k);
        if (!json_object_object_get_ex(o, "TagValue", &v)) json_object_object_get_ex(o, "Value", &v);
        if (!json_object_is_type(o, json_type_object) || !json_object_is_type(k, json_type_string) ||
            (v && !json_object_is_type(v, json_type_string))) {
            s = TAGS_SYNTAX;
            break;
        }
        const char *key = json_object_get_string(k), *value = v ? json_object_get_string(v) : "";
        s = add_checked(l, key, strlen(key), value, strlen(value), bad);
    }
    if (s != TAGS_OK) *bad = text; /* the JSON goes away: name the whole argument */
    json_object_put(arr);
    return s;
}

/* AWS's shorthand for one tag: TagKey=k,TagValue=v (or Key=k,Value=v). */
static enum tags_status parse_shorthand(struct tag_list *l, const char *text, const char **bad)
{
    const char *key = strchr(text, '=') + 1;
    const char *comma = strchr(key, ',');
    size_t klen = comma ? (size_t)(comma - key) : strlen(key);
    const char *value = "";
    if (comma) {
        const char *rest = comma + 1;
        if (!strncmp(rest, "TagValue=", 9)) value = rest + 9;
        else if (!strncmp(rest, "Value=", 6)) value = rest + 6;
        else {
            *bad = text;
            return TAGS_SYNTAX;
        }
    }
    return add_checked(l, key, klen, value, strlen(value), bad);
}

enum tags_status tags_parse_arg(struct tag_list *l, const char *text, const char **bad)
{
    const char *p = text;
    *bad = NULL;
    if (*p == '[') return parse_json(l, text, bad);
    if (!strncmp(p, "TagKey=", 7) || !strncmp(p, "Key=", 4)) return parse_shorthand(l, text, bad);
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        enum tags_status s =
            add_checked(l, p, klen, eq ? eq + 1 : "", eq ? len - klen - 1 : 0, bad);
        if (s != TAGS_OK) return s;
        p += len;
        if (*p == ',') p++;
    }
    return TAGS_OK;
}

enum tags_status tags_parse_lines(struct tag_list *l, const char *text, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n == 0) continue;
        const char *eq = memchr(line, '=', n);
        size_t klen = eq ? (size_t)(eq - line) : n;
        enum tags_status s = append(l, line, klen, eq ? eq + 1 : "", eq ? n - klen - 1 : 0);
        if (s != TAGS_OK) return s;
    }
    return TAGS_OK;
}

enum tags_status tags_put(struct tag_list *l, const char *key, const char *value)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].key, key)) {
            char *v = strdup(value);
            if (!v) return TAGS_NOMEM;
            free(l->items[i].value);
            l->items[i].value = v;
            return TAGS_OK;
        }
    return append(l, key, strlen(key), value, strlen(value));
}

int tags_remove(struct tag_list *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].key, key)) {
            free(l->items[i].key);
            free(l->items[i].value);
            memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof(l->items[0]));
            l->n--;
            return 1;
        }
    return 0;
}

char *tags_to_lines(const struct tag_list *l, size_t *len)
{
    size_t need = 1;
    for (size_t i = 0; i < l->n; i++)
        need += strlen(l->items[i].key) + strlen(l->items[i].value) + 2;
    char *s = malloc(need);
    if (!s) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += (size_t)snprintf(s + n, need - n, "%s%s=%s", i ? "\n" : "", l->items[i].key,
                              l->items[i].value);
    s[n] = '\0';
    *len = n;
    return s;
}

json_object *tags_to_json(const struct tag_list *l)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; a && i < l->n; i++) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "TagKey", json_object_new_string(l->items[i].key));
        json_object_object_add(t, "TagValue", json_object_new_string(l->items[i].value));
        json_object_array_add(a, t);
    }
    return a;
}

void tags_free(struct tag_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}
