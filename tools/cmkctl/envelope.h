/* envelope.h - cmkp11's envelope mechanism (CKM_CMK_ENVELOPE) as encrypt, decrypt, the
 * data-key commands and re-encrypt use it: the encryption context, the blob's layout
 * (format | key id | version | IV | ciphertext | tag), and the calls with their refusals
 * told in the clouds' terms. */
#ifndef CMKCTL_ENVELOPE_H
#define CMKCTL_ENVELOPE_H

#include <stddef.h>

#include "keymeta.h"
#include "keyref.h"

#define BLOB_FORMAT 0x01
#define BLOB_FORMAT_SM4 0x02
#define BLOB_HEADER_LEN 33
#define BLOB_TAG_LEN 16
#define IS_BLOB_FORMAT(b) ((b) == BLOB_FORMAT || (b) == BLOB_FORMAT_SM4)
#define PLAINTEXT_MAX 4096 /* as the clouds: a CMK encrypts keys and small secrets */
#define BLOB_MAX (BLOB_HEADER_LEN + PLAINTEXT_MAX + BLOB_TAG_LEN)

/* The additional authenticated data an --encryption-context stands for. A JSON object
 * (text starting with '{') must be an object of string values and is canonicalised, as AWS
 * does with its context: keys sorted bytewise, no spaces. AWS's shorthand k=v,k2=v2 is the
 * same object. "{}" and "" are no context. Any other text is used as it is. *aad is NULL
 * (len 0) when there is no context. */
int envelope_context(struct ctl *ctl, const char *text, char **aad, size_t *len);

/* The key id (bytes 1..16, as text) and version (bytes 17..20) a blob names. */
void envelope_blob_key_id(const unsigned char *b, char out[37]);
CK_ULONG envelope_blob_version(const unsigned char *b);

/* An asymmetric key cannot take the envelope mechanism: says why in the clouds' terms. */
int envelope_need_symmetric(struct ctl *ctl, const struct key_ref *ref, const struct key_meta *m,
                            const char *what);
/* Refusals of the envelope mechanism; ciphertext problems are told by the caller. */
int envelope_fail(struct ctl *ctl, CK_RV rv, const char *what, const struct key_meta *m);

/* Encrypts plain under the key's primary version into a new *blob (*blob_len bytes). */
int envelope_seal(struct ctl *ctl, const struct key_ref *ref, const struct key_meta *m,
                  const unsigned char *plain, size_t plain_len, const char *aad, size_t aad_len,
                  unsigned char **blob, size_t *blob_len, const char *what);

/* Opens the token and names the key that must decrypt blob: key_name when given, else the
 * key the blob names (NotFound when it does not exist). *key_name then points into named. */
int envelope_blob_key(struct ctl *ctl, const unsigned char *blob, size_t blob_len, char named[37],
                      const char **key_name);

/* Decrypts blob with the key into a new *plain (*plain_len bytes; wiped and freed by the
 * caller). named is the key id the blob names ("" when it names none). */
int envelope_open(struct ctl *ctl, const struct key_ref *ref, const struct key_meta *m,
                  const char *named, const unsigned char *blob, size_t blob_len, const char *aad,
                  size_t aad_len, unsigned char **plain, size_t *plain_len, const char *what);

#endif
