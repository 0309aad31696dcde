/* tags.h - tag lists: the command line's "k=v,k2=v2", the module's "k=v" lines
 * (CKA_CMK_TAGS), and the clouds' [{"TagKey","TagValue"}]. */
#ifndef CMKCTL_TAGS_H
#define CMKCTL_TAGS_H

#include <json-c/json.h>
#include <stddef.h>

struct tag {
    char *key, *value;
};

struct tag_list {
    struct tag *items;
    size_t n;
};

enum tags_status { TAGS_OK, TAGS_SYNTAX, TAGS_DUPLICATE, TAGS_NOMEM };

/* Appends "k=v,k2=v2" (a key without '=' gets an empty value), AWS's shorthand for one tag
 * "TagKey=k,TagValue=v" (or "Key=k,Value=v"), or the clouds' JSON
 * [{"TagKey":"k","TagValue":"v"},...]. A key already in the list is TAGS_DUPLICATE; *bad
 * points at the offending key (or the argument). */
enum tags_status tags_parse_arg(struct tag_list *l, const char *text, const char **bad);
/* Appends the module's LF-separated "k=v" lines. */
enum tags_status tags_parse_lines(struct tag_list *l, const char *text, size_t len);
/* Adds or replaces. */
enum tags_status tags_put(struct tag_list *l, const char *key, const char *value);
/* Returns 1 when the key was there. */
int tags_remove(struct tag_list *l, const char *key);
const struct tag *tags_find(const struct tag_list *l, const char *key);
/* LF-separated lines, malloc'd; *len excludes the NUL. */
char *tags_to_lines(const struct tag_list *l, size_t *len);
json_object *tags_to_json(const struct tag_list *l);
void tags_free(struct tag_list *l);

#endif
