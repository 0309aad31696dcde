/* keymeta.c - KeyMetadata. Everything comes from the module's attributes, read in one
 * batch; fields the module does not answer are left out rather than invented. */
#include "keymeta.h"

#include <p11-kit/uri.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ctl.h"
#include "keyspec.h"
#include "output.h"

static const CK_ATTRIBUTE_TYPE wanted[KEYMETA_ATTRS] = {
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_LABEL,
    CKA_ID,
    CKA_CMK_KEY_ID,
    CKA_CMK_DESCRIPTION,
    CKA_CMK_KEY_SPEC,
    CKA_CMK_KEY_USAGE,
    CKA_CMK_ORIGIN,
    CKA_CMK_PROTECTION_LEVEL,
    CKA_CMK_KEY_STATE,
    CKA_CMK_CREATION_DATE,
    CKA_CMK_ROTATION_ENABLED,
    CKA_CMK_ROTATION_INTERVAL,
    CKA_CMK_LAST_ROTATION_DATE,
    CKA_CMK_NEXT_ROTATION_DATE,
    CKA_CMK_PRIMARY_VERSION,
    CKA_CMK_DELETION_DATE,
    CKA_CMK_PENDING_WINDOW_DAYS,
    CKA_CMK_TAGS,
    CKA_CMK_ARN,
    CKA_CMK_CREATOR,
    CKA_CMK_MATERIAL_EXPIRES,
    CKA_CMK_ALIAS,
};

int keymeta_read(struct ctl *ctl, const struct key_ref *ref, struct key_meta *m)
{
    for (size_t i = 0; i < KEYMETA_ATTRS; i++)
        m->a[i].type = wanted[i];
    CK_RV rv = p11_get_attrs(&ctl->p11, ref->main, m->a, KEYMETA_ATTRS);
    if (rv != CKR_OK) return ctl_fail_rv(ctl, rv, "C_GetAttributeValue");
    return 0;
}

void keymeta_free(struct key_meta *m) { p11_attrs_free(m->a, KEYMETA_ATTRS); }

CK_ULONG keymeta_ulong(const struct key_meta *m, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt)
{
    return attr_ulong(m->a, KEYMETA_ATTRS, type, dflt);
}

const char *keymeta_text(const struct key_meta *m, CK_ATTRIBUTE_TYPE type)
{
    return attr_text(m->a, KEYMETA_ATTRS, type);
}

int keymeta_tags(const struct key_meta *m, struct tag_list *tags)
{
    const struct attr_val *v = attr_lookup(m->a, KEYMETA_ATTRS, CKA_CMK_TAGS);
    if (!v) return 0;
    return tags_parse_lines(tags, (const char *)v->value, v->len) == TAGS_OK ? 0 : -1;
}

const char *keymeta_rotation_status(const struct key_meta *m)
{
    if (!keymeta_ulong(m, CKA_CMK_ROTATION_ENABLED, 0)) return "Disabled";
    return keymeta_ulong(m, CKA_CMK_KEY_STATE, 0) == CMK_STATE_ENABLED ? "Enabled" : "Suspended";
}

/* pkcs11:token=...;id=...;object=...;type=... through p11-kit, so escaping is right. */
static char *object_uri(struct ctl *ctl, const struct key_meta *m)
{
    P11KitUri *uri = p11_kit_uri_new();
    if (!uri) return NULL;
    CK_TOKEN_INFO *token = p11_kit_uri_get_token_info(uri);
    memset(token->label, ' ', sizeof(token->label));
    memcpy(token->label, ctl->p11.token_label, strlen(ctl->p11.token_label));
    const struct attr_val *v;
    if ((v = attr_lookup(m->a, KEYMETA_ATTRS, CKA_ID))) {
        CK_ATTRIBUTE a = {CKA_ID, v->value, v->len};
        p11_kit_uri_set_attribute(uri, &a);
    }
    if ((v = attr_lookup(m->a, KEYMETA_ATTRS, CKA_LABEL)) && v->len) {
        CK_ATTRIBUTE a = {CKA_LABEL, v->value, v->len};
        p11_kit_uri_set_attribute(uri, &a);
    }
    if ((v = attr_lookup(m->a, KEYMETA_ATTRS, CKA_CLASS))) {
        CK_ATTRIBUTE a = {CKA_CLASS, v->value, v->len};
        p11_kit_uri_set_attribute(uri, &a);
    }
    char *text = NULL;
    if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &text) != P11_KIT_URI_OK)
        text = NULL;
    p11_kit_uri_free(uri);
    return text;
}

static json_object *pkcs11_view(struct ctl *ctl, const struct key_meta *m)
{
    json_object *o = json_object_new_object();
    out_add_str(o, "Token", ctl->p11.token_label);
    const struct attr_val *id = attr_lookup(m->a, KEYMETA_ATTRS, CKA_ID);
    char *hex = id ? hex_encode(id->value, id->len) : NULL;
    out_add_str(o, "CkaId", hex ? hex : "");
    free(hex);
    char *uri = object_uri(ctl, m);
    out_add_str(o, "Uri", uri);
    free(uri);
    return o;
}

static int has(const struct key_meta *m, CK_ATTRIBUTE_TYPE type)
{
    return attr_lookup(m->a, KEYMETA_ATTRS, type) != NULL;
}

json_object *keymeta_json(struct ctl *ctl, const struct key_meta *m)
{
    json_object *o = json_object_new_object();
    CK_ULONG state = keymeta_ulong(m, CKA_CMK_KEY_STATE, (CK_ULONG)-1);
    CK_ULONG created = keymeta_ulong(m, CKA_CMK_CREATION_DATE, 0);
    out_add_str(o, "KeyId", keymeta_text(m, CKA_CMK_KEY_ID));
    out_add_str(o, "Alias", keymeta_text(m, CKA_CMK_ALIAS));
    if (has(m, CKA_CMK_ARN)) out_add_str(o, "Arn", keymeta_text(m, CKA_CMK_ARN));
    if (created) {
        json_object_object_add(o, "CreationDate", out_time((int64_t)created));
        json_object_object_add(o, "CreateTime", json_object_new_int64((int64_t)created));
    }
    if (has(m, CKA_CMK_CREATOR)) {
        char uid[24];
        snprintf(uid, sizeof(uid), "%lu", keymeta_ulong(m, CKA_CMK_CREATOR, 0));
        out_add_str(o, "Creator", uid);
    }
    out_add_str(o, "Description", keymeta_text(m, CKA_CMK_DESCRIPTION));
    if (has(m, CKA_CMK_KEY_SPEC)) out_add_str(o, "KeySpec", keymeta_text(m, CKA_CMK_KEY_SPEC));
    if (has(m, CKA_CMK_KEY_USAGE))
        out_add_str(o, "KeyUsage", keyusage_name(keymeta_ulong(m, CKA_CMK_KEY_USAGE, 0)));
    if (has(m, CKA_CMK_KEY_STATE)) out_add_str(o, "KeyState", keystate_name(state));
    if (has(m, CKA_CMK_ORIGIN))
        out_add_str(o, "Origin", origin_name(keymeta_ulong(m, CKA_CMK_ORIGIN, 0)));
    if (has(m, CKA_CMK_PROTECTION_LEVEL))
        out_add_str(o, "ProtectionLevel",
                    protection_name(keymeta_ulong(m, CKA_CMK_PROTECTION_LEVEL, 0)));
    if (keymeta_ulong(m, CKA_CMK_ORIGIN, 0) == CMK_ORIGIN_EXTERNAL &&
        has(m, CKA_CMK_MATERIAL_EXPIRES)) {
        CK_ULONG expires = keymeta_ulong(m, CKA_CMK_MATERIAL_EXPIRES, 0);
        out_add_str(o, "ExpirationModel",
                    expires ? "KEY_MATERIAL_EXPIRES" : "KEY_MATERIAL_DOES_NOT_EXPIRE");
        if (expires) json_object_object_add(o, "MaterialExpireTime", out_time((int64_t)expires));
    }
    if (has(m, CKA_CMK_ROTATION_ENABLED)) {
        const char *rotation = keymeta_rotation_status(m);
        out_add_str(o, "AutomaticRotation", rotation);
        CK_ULONG interval = keymeta_ulong(m, CKA_CMK_ROTATION_INTERVAL, 0);
        /* Alibaba shows the interval only while rotation is Enabled or Suspended; the key
         * keeps it for the next enable-key-rotation all the same. */
        if (interval && strcmp(rotation, "Disabled")) {
            char text[32];
            snprintf(text, sizeof(text), "%lus", interval);
            out_add_str(o, "RotationInterval", text);
        }
        /* Alibaba: a key never rotated reports the creation of its first version. */
        CK_ULONG last = keymeta_ulong(m, CKA_CMK_LAST_ROTATION_DATE, 0);
        if (last || created)
            json_object_object_add(o, "LastRotationDate",
                                   out_time((int64_t)(last ? last : created)));
        CK_ULONG next = keymeta_ulong(m, CKA_CMK_NEXT_ROTATION_DATE, 0);
        if (strcmp(rotation, "Disabled") && next)
            json_object_object_add(o, "NextRotationDate", out_time((int64_t)next));
    }
    /* Versions are a symmetric key's (Alibaba gives PrimaryKeyVersion for those only). */
    if (has(m, CKA_CMK_PRIMARY_VERSION) && keymeta_ulong(m, CKA_CLASS, 0) == CKO_SECRET_KEY) {
        char v[24];
        snprintf(v, sizeof(v), "%lu", keymeta_ulong(m, CKA_CMK_PRIMARY_VERSION, 0));
        out_add_str(o, "PrimaryKeyVersion", v);
    }
    CK_ULONG deletion = keymeta_ulong(m, CKA_CMK_DELETION_DATE, 0);
    if (state == CMK_STATE_PENDING_DELETION && deletion)
        json_object_object_add(o, "DeleteDate", out_time((int64_t)deletion));
    if (has(m, CKA_CMK_PENDING_WINDOW_DAYS))
        json_object_object_add(
            o, "PendingWindowInDays",
            json_object_new_int64((int64_t)keymeta_ulong(m, CKA_CMK_PENDING_WINDOW_DAYS, 0)));
    struct tag_list tags = {0};
    keymeta_tags(m, &tags);
    json_object_object_add(o, "Tags", tags_to_json(&tags));
    tags_free(&tags);
    json_object_object_add(o, "Pkcs11", pkcs11_view(ctl, m));
    return o;
}

int keymeta_open(struct ctl *ctl, const char *name, struct key_ref *ref, struct key_meta *m)
{
    memset(m, 0, sizeof(*m));
    int rc = p11_open(ctl, P11_LOGIN);
    if (!rc) rc = keyref_resolve(ctl, name, ref);
    if (!rc) rc = keymeta_read(ctl, ref, m);
    return rc;
}

int keymeta_fail(struct ctl *ctl, CK_RV rv, const char *what, const struct key_meta *m)
{
    char buf[32];
    const char *id = keymeta_text(m, CKA_CMK_KEY_ID);
    CK_ULONG state = keymeta_ulong(m, CKA_CMK_KEY_STATE, (CK_ULONG)-1);
    const char *state_text = keystate_name(state);
    if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
        if (state == CMK_STATE_DISABLED)
            return ctl_fail(ctl, KMS_DISABLED, "%s: key %s is Disabled (%s)", what, id,
                            ckr_name(rv, buf));
        if (state != CMK_STATE_ENABLED && *state_text)
            return ctl_fail(ctl, KMS_STATE, "%s: key %s is %s (%s)", what, id, state_text,
                            ckr_name(rv, buf));
        CK_ULONG expires = keymeta_ulong(m, CKA_CMK_MATERIAL_EXPIRES, 0);
        if (expires && (long long)expires <= out_now())
            return ctl_fail(ctl, KMS_STATE, "%s: key %s: its imported key material has expired (%s)",
                            what, id, ckr_name(rv, buf));
        return ctl_fail(ctl, KMS_INVALID_KEY_USAGE, "%s: key %s has usage %s (%s)", what, id,
                        keyusage_name(keymeta_ulong(m, CKA_CMK_KEY_USAGE, 0)), ckr_name(rv, buf));
    }
    if (rv == CKR_ACTION_PROHIBITED)
        return ctl_fail(ctl, KMS_STATE, "%s: not allowed for key %s in state %s (%s)", what, id,
                        *state_text ? state_text : "?", ckr_name(rv, buf));
    return ctl_fail(ctl, err_code_for_rv(rv), "%s: key %s: %s", what, id, ckr_name(rv, buf));
}

int keymeta_report(struct ctl *ctl, const struct key_ref *ref, const char *const *fields)
{
    struct key_meta m;
    memset(&m, 0, sizeof(m));
    int rc = keymeta_read(ctl, ref, &m);
    if (rc) {
        keymeta_free(&m);
        return rc;
    }
    json_object *all = keymeta_json(ctl, &m);
    json_object *resp = json_object_new_object();
    out_add_str(resp, "KeyId", ref->key_id);
    for (size_t i = 0; fields[i]; i++) {
        json_object *v;
        if (json_object_object_get_ex(all, fields[i], &v))
            json_object_object_add(resp, fields[i], json_object_get(v));
    }
    json_object_put(all);
    keymeta_free(&m);
    return out_emit(ctl, resp, 0);
}
