/* keymeta.h - a key's metadata read through PKCS#11 and shaped like the clouds'
 * KeyMetadata record. */
#ifndef CMKCTL_KEYMETA_H
#define CMKCTL_KEYMETA_H

#include <json-c/json.h>

#include "keyref.h"
#include "tags.h"

#define KEYMETA_ATTRS 24

struct key_meta {
    struct attr_val a[KEYMETA_ATTRS];
};

int keymeta_read(struct ctl *ctl, const struct key_ref *ref, struct key_meta *m);
void keymeta_free(struct key_meta *m);

CK_ULONG keymeta_ulong(const struct key_meta *m, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt);
const char *keymeta_text(const struct key_meta *m, CK_ATTRIBUTE_TYPE type);
int keymeta_tags(const struct key_meta *m, struct tag_list *tags);

/* "Enabled", "Disabled" or "Suspended" (rotation on, key not Enabled). */
const char *keymeta_rotation_status(const struct key_meta *m);

/* Opens the token (logged in), resolves the key the user named and reads its metadata. */
int keymeta_open(struct ctl *ctl, const char *name, struct key_ref *ref, struct key_meta *m);

/* A refusal of an operation on this key, told in the clouds' terms: a disabled key is
 * ResourceUnavailable.CmkDisabled, another state FailedOperation.CmkStateNotSupported, a
 * use against the key's usage InvalidParameterValue.InvalidKeyUsage. */
int keymeta_fail(struct ctl *ctl, CK_RV rv, const char *what, const struct key_meta *m);

/* Prints KeyId and the named KeyMetadata fields as the module reports them now: after a
 * change this shows what took effect rather than what was asked. */
int keymeta_report(struct ctl *ctl, const struct key_ref *ref, const char *const *fields);

/* The KeyMetadata object. */
json_object *keymeta_json(struct ctl *ctl, const struct key_meta *m);

#endif
