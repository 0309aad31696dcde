/* doctor_objects.c - doctor and the backend objects cmkp11 keeps beside key material: the
 * token master key that seals SOFTWARE keys' material (src/soft_key.c), the MAC key of
 * import tokens (src/import_token_mac.c) and each import's wrapping pair
 * (src/import_params.c, src/import_backend.c). They carry cmkp11's label prefix but name
 * no key version, so they are judged by what makes each of them legitimate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "doctor.h"
#include "output.h"

#define PAIR_LABEL_PREFIX "cmkp11/import/"
/* src/import_backend.c: "CMKW", the key id's 16 bytes, when the pair was made (4 bytes),
 * 4 random bytes. */
#define PAIR_ID_LEN 28

/* The keys made once per token, found by cmkp11 by CKA_ID alone. */
static const struct {
    enum material_kind kind;
    const char *label;
    const char *id;
    size_t id_len;
} token_keys[] = {
    {MATERIAL_MASTER, "cmkp11/master", "CMK\0master", 10},
    {MATERIAL_IMPORT_TOKEN_KEY, "cmkp11/import-token-key", "CMKI\x01", 5},
};

static int attr_is(const struct attr_val *a, const void *value, size_t len)
{
    return a && a->len == len && !memcmp(a->value, value, len);
}

static int identify_token_key(struct material *m, const struct attr_val *label,
                              const struct attr_val *id)
{
    for (size_t i = 0; i < sizeof(token_keys) / sizeof(token_keys[0]); i++) {
        int by_label = attr_is(label, token_keys[i].label, strlen(token_keys[i].label));
        int by_id = attr_is(id, token_keys[i].id, token_keys[i].id_len);
        if (!by_label && !by_id) continue;
        m->kind = token_keys[i].kind;
        if (!by_id)
            m->fault = "CKA_LABEL names one of cmkp11's own keys, but CKA_ID does not "
                       "(cmkp11 finds them by CKA_ID)";
        return 1;
    }
    return 0;
}

static int identify_pair(struct material *m, const struct attr_val *label,
                         const struct attr_val *id)
{
    size_t prefix = strlen(PAIR_LABEL_PREFIX);
    char text[37];
    int by_label =
        label && label->len == prefix + 36 && !memcmp(label->value, PAIR_LABEL_PREFIX, prefix);
    if (by_label) {
        memcpy(text, (const char *)label->value + prefix, 36);
        text[36] = '\0';
        by_label = doctor_uuid_text_ok(text);
    }
    int by_id = id && id->len == PAIR_ID_LEN && !memcmp(id->value, "CMKW", 4);
    if (!by_label && !by_id) return 0;
    char id_key[37] = "";
    if (by_id) doctor_key_id_of_bytes(id->value + 4, id_key);
    if (by_label)
        doctor_lower_copy(m->key_id, text);
    else
        snprintf(m->key_id, sizeof(m->key_id), "%s", id_key);
    if (by_label && by_id && strcmp(m->key_id, id_key))
        m->fault = "CKA_LABEL and CKA_ID name different keys";
    m->kind = MATERIAL_IMPORT_PAIR;
    return 1;
}

int token_object_identify(struct material *m, const struct attr_val *label,
                          const struct attr_val *id)
{
    return identify_token_key(m, label, id) || identify_pair(m, label, id);
}

/* A wrapping pair serves its key while an import can use it: the key waits for material
 * or was given parameters (a re-import into a key that has material). Once the material
 * is in, or the key is gone, cmkp11 destroys the pair: one left is a leak. */
static int pair_serves(const struct key_row *r)
{
    return r && (r->state == CMK_STATE_PENDING_IMPORT || r->has_params);
}

const char *token_object_stray_reason(const struct material *m, const struct key_row *a,
                                      const struct key_row *b, size_t masters, char *buf,
                                      size_t size)
{
    if (m->fault) return m->fault;
    switch (m->kind) {
    case MATERIAL_MASTER:
        if (masters < 2) return NULL;
        snprintf(buf, size,
                 "the backend holds %zu token master keys: cmkp11 seals with one of them, "
                 "material sealed under another does not open",
                 masters);
        return buf;
    case MATERIAL_IMPORT_PAIR:
        if (!a && !b) return "no key in the store has this key id";
        return pair_serves(a) || pair_serves(b)
                   ? NULL
                   : "an import wrapping pair, but the key has no import parameters outstanding";
    default: return NULL; /* two import token keys are harmless: a token of either verifies */
    }
}

json_object *token_objects_missing(size_t masters, size_t soft_keys)
{
    json_object *list = json_object_new_array();
    if (masters || !soft_keys) return list;
    char reason[96],
        *id_hex = hex_encode((const unsigned char *)token_keys[0].id, token_keys[0].id_len);
    snprintf(reason, sizeof(reason),
             "SOFTWARE keys with material sealed under the token master key: %zu", soft_keys);
    json_object *e = json_object_new_object();
    out_add_str(e, "Label", token_keys[0].label);
    out_add_str(e, "CkaId", id_hex ? id_hex : "");
    out_add_str(e, "Object", "SecretKey");
    out_add_str(e, "Reason", reason);
    json_object_array_add(list, e);
    free(id_hex);
    return list;
}
