/* envelope.c - see envelope.h. */
#include "envelope.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "keyspec.h"

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* AWS's shorthand for a context, k=v,k2=v2 (keys non-empty, no '=' or ',' in either): the
 * same object as {"k":"v","k2":"v2"}; NULL for any other text, which stays text. A key
 * given twice is not shorthand either. */
static json_object *shorthand_context(const char *text)
{
    if (!strchr(text, '=')) return NULL;
    json_object *obj = json_object_new_object();
    const char *p = text;
    while (obj) {
        const char *eq = strchr(p, '='), *comma = strchr(p, ',');
        if (!eq || eq == p || (comma && comma < eq)) break;
        size_t vlen = comma ? (size_t)(comma - eq - 1) : strlen(eq + 1);
        if (memchr(eq + 1, '=', vlen)) break;
        char *key = strndup(p, (size_t)(eq - p)), *value = strndup(eq + 1, vlen);
        int fresh = key && value && !json_object_object_get_ex(obj, key, NULL);
        if (fresh) json_object_object_add(obj, key, json_object_new_string(value));
        free(key);
        free(value);
        if (!fresh) break;
        if (!comma) return obj;
        p = comma + 1;
    }
    json_object_put(obj);
    return NULL;
}

int envelope_context(struct ctl *ctl, const char *text, char **aad, size_t *len)
{
    *aad = NULL;
    *len = 0;
    if (!text) return 0;
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    json_object *obj = *p == '{' ? NULL : shorthand_context(text);
    if (*p != '{' && !obj) {
        if (!*text) return 0;
        *len = strlen(text);
        *aad = strdup(text);
        return *aad ? 0 : ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    }
    int ok = obj != NULL;
    if (!obj) {
        json_tokener *tok = json_tokener_new();
        if (!tok) return ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        obj = json_tokener_parse_ex(tok, p, (int)strlen(p));
        size_t end = json_tokener_get_parse_end(tok);
        ok = obj && json_tokener_get_error(tok) == json_tokener_success &&
             json_object_is_type(obj, json_type_object);
        json_tokener_free(tok);
        for (const char *rest = p + end; ok && *rest; rest++)
            if (*rest != ' ' && *rest != '\t' && *rest != '\n' && *rest != '\r') ok = 0;
    }
    if (!ok) {
        json_object_put(obj);
        return ctl_fail(ctl, KMS_INVALID_PARAMETER,
                        "--encryption-context starts with '{' but is not a JSON object: give "
                        "{\"key\":\"value\",...} or text that does not start with '{'");
    }
    size_t n = (size_t)json_object_object_length(obj), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    int rc = keys ? 0 : ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    json_object_object_foreach(obj, key, val)
    {
        if (rc) break;
        if (!json_object_is_type(val, json_type_string))
            rc = ctl_fail(ctl, KMS_INVALID_PARAMETER,
                          "--encryption-context: the value of '%s' must be a string", key);
        else
            keys[k++] = key;
    }
    if (!rc && n) {
        qsort(keys, n, sizeof(*keys), compare_keys);
        json_object *sorted = json_object_new_object();
        for (size_t i = 0; i < n; i++) {
            json_object *v = NULL;
            json_object_object_get_ex(obj, keys[i], &v);
            json_object_object_add(sorted, keys[i], json_object_get(v));
        }
        const char *canon = json_object_to_json_string_ext(
            sorted, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        *aad = canon ? strdup(canon) : NULL;
        *len = *aad ? strlen(*aad) : 0;
        if (!*aad) rc = ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        json_object_put(sorted);
    }
    free(keys);
    json_object_put(obj);
    return rc;
}

void envelope_blob_key_id(const unsigned char *b, char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15], b[16]);
}

CK_ULONG envelope_blob_version(const unsigned char *b)
{
    return ((CK_ULONG)b[17] << 24) | ((CK_ULONG)b[18] << 16) | ((CK_ULONG)b[19] << 8) | b[20];
}

int envelope_need_symmetric(struct ctl *ctl, const struct key_ref *ref, const struct key_meta *m,
                            const char *what)
{
    if (ref->main_class == CKO_SECRET_KEY) return 0;
    CK_ULONG usage = keymeta_ulong(m, CKA_CMK_KEY_USAGE, 0);
    int crypt = CMK_USAGE_HAS(usage, CMK_USAGE_ENCRYPT_DECRYPT);
    return ctl_fail(ctl, crypt ? KMS_UNSUPPORTED : KMS_INVALID_KEY_USAGE,
                    "%s: key %s is %s (%s): cmkctl encrypts with the envelope mechanism, which "
                    "needs a symmetric ENCRYPT_DECRYPT key",
                    what, ref->key_id, keymeta_text(m, CKA_CMK_KEY_SPEC), keyusage_name(usage));
}

int envelope_fail(struct ctl *ctl, CK_RV rv, const char *what, const struct key_meta *m)
{
    char buf[32];
    const char *id = keymeta_text(m, CKA_CMK_KEY_ID);
    if (rv == CKR_KEY_TYPE_INCONSISTENT)
        return ctl_fail(ctl, KMS_INVALID_KEY_USAGE,
                        "%s: key %s is %s: the envelope mechanism needs an AES key (%s)", what, id,
                        keymeta_text(m, CKA_CMK_KEY_SPEC), ckr_name(rv, buf));
    if (rv == CKR_MECHANISM_INVALID)
        return ctl_fail(ctl, KMS_UNSUPPORTED,
                        "%s: the module does not offer CKM_CMK_ENVELOPE (is it cmkp11?) (%s)", what,
                        ckr_name(rv, buf));
    return keymeta_fail(ctl, rv, what, m);
}

int envelope_seal(struct ctl *ctl, const struct key_ref *ref, const struct key_meta *m,
                  const unsigned char *plain, size_t plain_len, const char *aad, size_t aad_len,
                  unsigned char **blob, size_t *blob_len, const char *what)
{
    struct p11 *p = &ctl->p11;
    CK_CMK_ENVELOPE_PARAMS params = {(CK_BYTE_PTR)aad, (CK_ULONG)aad_len};
    CK_MECHANISM mech = {CKM_CMK_ENVELOPE, &params, sizeof(params)};
    CK_ULONG len = 0;
    *blob = NULL;
    CK_RV rv = p->fn->C_EncryptInit(p->session, &mech, ref->main);
    if (rv == CKR_OK) rv = p->fn->C_Encrypt(p->session, (CK_BYTE_PTR)plain, plain_len, NULL, &len);
    if (rv == CKR_OK && !(*blob = malloc(len ? len : 1))) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK) rv = p->fn->C_Encrypt(p->session, (CK_BYTE_PTR)plain, plain_len, *blob, &len);
    if (rv == CKR_OK && (len < BLOB_HEADER_LEN + BLOB_TAG_LEN || !IS_BLOB_FORMAT((*blob)[0])))
        rv = CKR_GENERAL_ERROR;
    if (rv != CKR_OK) {
        free(*blob);
        *blob = NULL;
        return envelope_fail(ctl, rv, what, m);
    }
    *blob_len = len;
    return 0;
}

int envelope_blob_key(struct ctl *ctl, const unsigned char *blob, size_t blob_len, char named[37],
                      const char **key_name)
{
    named[0] = '\0';
    if (blob_len >= 21 && IS_BLOB_FORMAT(blob[0])) envelope_blob_key_id(blob, named);
    if (*key_name) return 0;
    /* The blob names its key: bytes 1..16 are the key id. */
    if (!*named)
        return ctl_fail(ctl, KMS_INVALID_CIPHERTEXT,
                        "the ciphertext blob (%zu bytes) is not one cmkp11 made: it does not "
                        "start with format 0x01 or 0x02 and a key id",
                        blob_len);
    int rc = p11_open(ctl, P11_LOGIN);
    int exists = rc ? -1 : keyref_exists(ctl, named);
    if (exists == 0)
        return ctl_fail(ctl, KMS_NOT_FOUND,
                        "the ciphertext names key %s, which does not exist (deleted, or the "
                        "blob is damaged)",
                        named);
    if (exists < 0) return rc ? rc : (int)err_code_exit(ctl->err.code);
    *key_name = named;
    return 0;
}

int envelope_open(struct ctl *ctl, const struct key_ref *ref, const struct key_meta *m,
                  const char *named, const unsigned char *blob, size_t blob_len, const char *aad,
                  size_t aad_len, unsigned char **plain, size_t *plain_len, const char *what)
{
    struct p11 *p = &ctl->p11;
    CK_CMK_ENVELOPE_PARAMS params = {(CK_BYTE_PTR)aad, (CK_ULONG)aad_len};
    CK_MECHANISM mech = {CKM_CMK_ENVELOPE, &params, sizeof(params)};
    /* The plaintext is shorter than the blob: one call with a buffer that large, no length
     * query. */
    CK_ULONG len = (CK_ULONG)blob_len;
    *plain = NULL;
    CK_RV rv = p->fn->C_DecryptInit(p->session, &mech, ref->main);
    if (rv == CKR_OK && !(*plain = malloc(blob_len ? blob_len : 1))) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK) rv = p->fn->C_Decrypt(p->session, (CK_BYTE_PTR)blob, blob_len, *plain, &len);
    if (rv != CKR_OK) {
        if (*plain) explicit_bzero(*plain, blob_len);
        free(*plain);
        *plain = NULL;
    }
    char buf[32];
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE) {
        if (*named && strcmp(named, ref->key_id))
            return ctl_fail(ctl, KMS_INVALID_CIPHERTEXT,
                            "the ciphertext was made under key %s, not key %s (%s)", named,
                            ref->key_id, ckr_name(rv, buf));
        if (rv == CKR_ENCRYPTED_DATA_LEN_RANGE)
            return ctl_fail(ctl, KMS_INVALID_CIPHERTEXT,
                            "the ciphertext blob is %zu bytes, shorter than header and tag (%s)",
                            blob_len, ckr_name(rv, buf));
        return ctl_fail(ctl, KMS_INVALID_CIPHERTEXT,
                        "the ciphertext does not decrypt under key %s: it is damaged, was "
                        "encrypted with another encryption context, or names a version the key "
                        "does not have (%s)",
                        ref->key_id, ckr_name(rv, buf));
    }
    if (rv != CKR_OK) return envelope_fail(ctl, rv, what, m);
    *plain_len = len;
    return 0;
}
