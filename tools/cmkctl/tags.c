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

enum tags_status tags_parse_arg(struct tag_list *l, const char *text, const char **bad)
{
    const char *p = text;
    *bad = NULL;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (klen == 0) {
            *bad = p;
            return TAGS_SYNTAX;
        }
        for (size_t i = 0; i < l->n; i++)
            if (strlen(l->items[i].key) == klen && !strncmp(l->items[i].key, p, klen)) {
                *bad = l->items[i].key;
                return TAGS_DUPLICATE;
            }
        enum tags_status s = append(l, p, klen, eq ? eq + 1 : "", eq ? len - klen - 1 : 0);
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
