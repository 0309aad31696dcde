/* cmk_request.h - a CreateKey request: what the client asked for, checked against
 * every rule before anything is written to the store or the backend. */
#ifndef CMKP11_CMK_REQUEST_H
#define CMKP11_CMK_REQUEST_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmk_record.h"
#include "keyspec.h"
#include "template.h"

struct create_request {
    struct keyspec spec;
    char alias[256];
    bool has_alias;
    bool alias_from_label; /* the alias is the label's: taken only if no key has it */
    /* Each object's own label and CKA_ID (the public object's in pub_*), as the templates
     * give them; has_cka_id false when neither template gives a CKA_ID. */
    const void *label, *pub_label;
    CK_ULONG label_len, pub_label_len;
    const void *cka_id, *pub_cka_id;
    CK_ULONG cka_id_len, pub_cka_id_len;
    bool has_cka_id;
    const char *description;
    CK_ULONG description_len;
    CK_ULONG usage, origin, protection;
    bool protection_given; /* CKA_CMK_PROTECTION_LEVEL was in the template */
    bool rotation_enabled;
    int64_t rotation_interval;
    struct cmk_tag *tags;
    size_t tag_count;
    bool secret_private; /* CKA_PRIVATE of the secret or private key */
    bool public_private; /* CKA_PRIVATE of the public key */
    /* A plain template under usage_conflict = honour: the flags it leaves out are the
     * backend's to default, as on the backend alone, and the usage is read back from the
     * material made (cmk_create_usage_from_material). */
    bool flags_by_backend;
};

/* What a key's flags allow, over both objects of a pair: any of encrypt, decrypt, wrap,
 * unwrap; any of sign, verify and their recover forms; derive (the private key's). */
struct cmk_usage_flags {
    bool crypt, sign, derive;
};

/* The usage of a key whose flags allow f, under usage_conflict = honour: each usage the
 * flags allow and the key type has a mechanism for. */
void cmk_request_usage_of_flags(struct create_request *req, const struct cmk_usage_flags *f);

/* Parses and validates a request. mech is the key-generation mechanism (or the one
 * that would have made the key, for imports); main is the secret or private key's
 * template, pub the public key's (NULL for a secret key). */
CK_RV cmk_request_parse(struct create_request *req, CK_MECHANISM_TYPE mech,
                        const CK_ATTRIBUTE *main, CK_ULONG nmain, const CK_ATTRIBUTE *pub,
                        CK_ULONG npub);
/* A plain template (no vendor attribute in either) asking CKA_EXTRACTABLE=TRUE for the
 * secret or private key under [policy] extractable_keys = plain, or CKA_SENSITIVE=FALSE
 * under non_sensitive_keys = plain: the key is to be made as an ordinary backend object,
 * not a CMK (one log line naming op). */
bool cmk_request_plain_object(const CK_ATTRIBUTE *main, CK_ULONG nmain, const CK_ATTRIBUTE *pub,
                              CK_ULONG npub, const char *op);
CK_RV cmk_request_check_quota(void);
CK_RV cmk_request_session_writable(CK_SESSION_HANDLE session);
/* A usage as log lines, the audit and cmkctl name it: the primary usage, then the others
 * after '+' ("SIGN_VERIFY+ENCRYPT_DECRYPT"; cmkp11.h, CMK_USAGE_ALSO). */
#define CMK_USAGE_NAME_SIZE 80
const char *cmk_request_usage_name(unsigned long usage, char out[CMK_USAGE_NAME_SIZE]);
/* Sets the usage flags a pair's backend material gets (CMK_USAGE_HAS of each usage, an
 * explicit FALSE in client kept; wrap, unwrap, recover and a public key's derive only when
 * client asks them); the rest is FALSE. */
void cmk_request_usage_flags(struct tmpl_builder *b, CK_ULONG usage, bool private_half,
                             bool public_half, const CK_ATTRIBUTE *client, CK_ULONG n);
/* The same for a secret key: encrypt/decrypt, sign/verify (MAC), never derive. Wrap and
 * unwrap are left as the client's template gives them. */
void cmk_request_secret_flags(struct tmpl_builder *b, CK_ULONG usage, const CK_ATTRIBUTE *client,
                              CK_ULONG n);

#endif
