/* doctor_flags.c - doctor and the usage flags of a key's versions. The module keeps a
 * key's standard attributes the same on every version (src/cmk_material_attrs.c): a
 * change on the key reaches all of them, and a rotation copies the primary's. Versions
 * that differ were made by a build before that rule, or changed behind the module's back
 * with the backend's own tools; setting the flag on the key again makes them agree. */
#include <string.h>

#include "doctor.h"
#include "output.h"

const CK_ATTRIBUTE_TYPE doctor_flag_types[DOCTOR_FLAGS] = {
    CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY, CKA_WRAP, CKA_UNWRAP, CKA_DERIVE,
};
static const char *const flag_names[DOCTOR_FLAGS] = {
    "CKA_ENCRYPT", "CKA_DECRYPT", "CKA_SIGN", "CKA_VERIFY", "CKA_WRAP", "CKA_UNWRAP", "CKA_DERIVE",
};

void doctor_read_flags(struct material *m, const struct attr_val *a, size_t n)
{
    m->flags_known = m->kind == MATERIAL_VERSION && !m->fault &&
                     (m->cls == CKO_SECRET_KEY || m->cls == CKO_PRIVATE_KEY);
    for (size_t i = 0; m->flags_known && i < DOCTOR_FLAGS; i++) {
        const struct attr_val *v = attr_lookup(a, n, doctor_flag_types[i]);
        if (v && v->present && v->len == 1 && v->value[0]) m->flags |= 1u << i;
    }
}

static json_object *differ_json(const struct material *old, const struct material *primary)
{
    json_object *o = json_object_new_object(), *names = json_object_new_array();
    out_add_str(o, "KeyId", old->key_id);
    json_object_object_add(o, "KeyVersion", json_object_new_int64((int64_t)old->version));
    json_object_object_add(o, "PrimaryVersion", json_object_new_int64((int64_t)primary->version));
    for (size_t i = 0; i < DOCTOR_FLAGS; i++)
        if ((old->flags ^ primary->flags) & (1u << i))
            json_object_array_add(names, json_object_new_string(flag_names[i]));
    json_object_object_add(o, "Differs", names);
    return o;
}

int doctor_check_version_flags(const struct material *m, size_t n, json_object *checks,
                               json_object *facts)
{
    json_object *differ = json_object_new_array();
    /* m is sorted by key id and version: each key's newest object of a class comes last
     * among them, and is its primary version's. */
    for (size_t i = 0; i < n; i++) {
        if (!m[i].flags_known) continue;
        const struct material *primary = NULL;
        for (size_t j = i + 1; j < n && !strcmp(m[j].key_id, m[i].key_id); j++)
            if (m[j].flags_known && m[j].cls == m[i].cls) primary = &m[j];
        if (primary && primary->flags != m[i].flags)
            json_object_array_add(differ, differ_json(&m[i], primary));
    }
    size_t count = json_object_array_length(differ);
    json_object_object_add(facts, "VersionFlagsDiffer", differ);
    if (count)
        return doctor_add_check(checks, "version-flags", "warning",
                                "%zu older key versions have other usage flags than their key's "
                                "newest version (see VersionFlagsDiffer); set the flag on the key "
                                "again to make every version agree",
                                count);
    doctor_add_check(checks, "version-flags", "ok",
                     "every key's versions have the same usage flags");
    return 0;
}
