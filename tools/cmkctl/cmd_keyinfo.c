/* cmd_keyinfo.c - get-key-rotation-status and list-resource-tags: two views of a key's
 * metadata that scripts written for AWS (and Tencent) ask for by name, read through
 * PKCS#11 as describe-key reads them. */
#include <string.h>

#include "ctl.h"
#include "keymeta.h"
#include "output.h"

static const struct opt_def key_only_opts[] = {
    {"key-id", "KEY", OPT_REQUIRED, "key id, alias, Arn, or pkcs11: URI"},
    {NULL, NULL, 0, NULL},
};

static int run_get_key_rotation_status(struct ctl *ctl)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (rc) return rc;
    const char *status = keymeta_rotation_status(&m);
    int on = keymeta_ulong(&m, CKA_CMK_ROTATION_ENABLED, 0) != 0;
    json_object *resp = json_object_new_object();
    out_add_str(resp, "KeyId", ref.key_id);
    json_object_object_add(resp, "KeyRotationEnabled", json_object_new_boolean(on));
    out_add_str(resp, "AutomaticRotation", status);
    CK_ULONG interval = keymeta_ulong(&m, CKA_CMK_ROTATION_INTERVAL, 0);
    if (on && interval)
        json_object_object_add(resp, "RotationPeriodInDays",
                               json_object_new_int64((int64_t)(interval / 86400)));
    CK_ULONG next = keymeta_ulong(&m, CKA_CMK_NEXT_ROTATION_DATE, 0);
    if (strcmp(status, "Disabled") && next)
        json_object_object_add(resp, "NextRotationDate", out_time((int64_t)next));
    keymeta_free(&m);
    return out_emit(ctl, resp, 0);
}

static int run_list_resource_tags(struct ctl *ctl)
{
    struct key_ref ref;
    struct key_meta m;
    int rc = keymeta_open(ctl, arg_str(&ctl->args, "key-id"), &ref, &m);
    if (rc) return rc;
    struct tag_list tags = {0};
    keymeta_tags(&m, &tags);
    json_object *resp = json_object_new_object();
    out_add_str(resp, "KeyId", ref.key_id);
    json_object_object_add(resp, "Tags", tags_to_json(&tags));
    json_object_object_add(resp, "Truncated", json_object_new_boolean(0));
    tags_free(&tags);
    keymeta_free(&m);
    return out_emit(ctl, resp, 0);
}

const struct cmd_def cmd_get_key_rotation_status = {
    "get-key-rotation-status",
    "Whether a key rotates automatically, and when next (GetKeyRotationStatus)",
    "Reads CKA_CMK_ROTATION_ENABLED, CKA_CMK_ROTATION_INTERVAL and CKA_CMK_NEXT_ROTATION_DATE.\n"
    "KeyRotationEnabled is the setting; AutomaticRotation says Suspended when the key is not\n"
    "Enabled, as describe-key does.",
    "cmkctl get-key-rotation-status --key-id alias/payments",
    key_only_opts,
    run_get_key_rotation_status,
};

const struct cmd_def cmd_list_resource_tags = {
    "list-resource-tags",
    "A key's tags (ListResourceTags)",
    "Reads CKA_CMK_TAGS. A key has at most 50 tags, so the list is never truncated.",
    "cmkctl list-resource-tags --key-id alias/payments",
    key_only_opts,
    run_list_resource_tags,
};
