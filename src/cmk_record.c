/* cmk_record.c - freeing what the store hands out. */
#include "cmk_record.h"

#include <stdlib.h>
#include <string.h>

void cmk_tags_free(struct cmk_tag *tags, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(tags[i].key);
        free(tags[i].value);
    }
    free(tags);
}

void cmk_record_free(struct cmk_record *rec)
{
    free(rec->alias);
    free(rec->label);
    free(rec->cka_id);
    free(rec->pub_label);
    free(rec->pub_cka_id);
    free(rec->description);
    free(rec->public_key_info);
    free(rec->ec_point);
    cmk_tags_free(rec->tags, rec->tag_count);
    memset(rec, 0, sizeof(*rec));
}

int cmk_record_set_bytes(unsigned char **field, size_t *len, const void *value, size_t n)
{
    unsigned char *copy = malloc(n ? n : 1);
    if (!copy) return -1;
    if (n) memcpy(copy, value, n);
    free(*field);
    *field = copy;
    *len = n;
    return 0;
}
