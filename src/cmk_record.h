/* cmk_record.h - one CMK as the store keeps it. Plain data shared by cmk and store. */
#ifndef CMKP11_CMK_RECORD_H
#define CMKP11_CMK_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which objects a CMK presents to clients (bits of cmk_record.objects). */
enum cmk_object_kind { CMK_OBJ_SECRET = 1, CMK_OBJ_PRIVATE = 2, CMK_OBJ_PUBLIC = 4 };

struct cmk_tag {
    char *key;
    char *value;
};

struct cmk_record {
    int64_t row;
    char key_id[37];
    /* The key's first alias (cmk_alias rows; a key may have several, or none). Reading
     * a key gives the oldest; an insert adds this one. */
    char *alias;
    bool alias_if_free; /* insert only: the alias came from the label; none if taken */
    /* Each object keeps its own label and CKA_ID, as on any token: the secret or private
     * object's here, the public object's in pub_*. */
    unsigned char *label;
    size_t label_len;
    unsigned char *cka_id;
    size_t cka_id_len;
    unsigned char *pub_label;
    size_t pub_label_len;
    unsigned char *pub_cka_id;
    size_t pub_cka_id_len;
    char *description;
    char key_spec[40];
    unsigned long key_type; /* CKK_* */
    unsigned long usage, origin, protection, state;
    int64_t created;
    long creator_uid;
    long creator_pid;
    int64_t creator_start; /* with the pid, tells a live creator from a dead one */
    bool rotation_enabled;
    int64_t rotation_interval, last_rotation, next_rotation;
    unsigned long primary_version;
    int64_t deletion_date;
    unsigned long pending_window;
    unsigned objects;      /* enum cmk_object_kind bits */
    unsigned private_mask; /* which of those objects are CKA_PRIVATE */
    unsigned char *public_key_info; /* DER SPKI of an asymmetric key, else NULL */
    size_t public_key_info_len;
    unsigned char *ec_point; /* CKA_EC_POINT of an EC key, kept for its private object */
    size_t ec_point_len;
    unsigned long rotating_to; /* version being made by a rotation in progress, else 0 */
    long rotating_pid;         /* the process making it, with its start time */
    int64_t rotating_start;
    int64_t material_expires; /* imported material expires then (0 = never) */
    struct cmk_tag *tags;  /* loaded only when asked for */
    size_t tag_count;
    bool tags_loaded;
};

void cmk_record_free(struct cmk_record *rec);
void cmk_tags_free(struct cmk_tag *tags, size_t count);
/* Replaces a byte field (label, CKA_ID) with a copy of value; -1 when out of memory. */
int cmk_record_set_bytes(unsigned char **field, size_t *len, const void *value, size_t n);

#endif
