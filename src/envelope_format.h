/* envelope_format.h - the bytes of CKM_CMK_ENVELOPE ciphertext, apart from any key or
 * session: a 33-byte header (format, key id, version, IV), the GCM body, the tag. The
 * header is also the GCM additional data, so it is authenticated by the tag. */
#ifndef CMKP11_ENVELOPE_FORMAT_H
#define CMKP11_ENVELOPE_FORMAT_H

#include <p11-kit/pkcs11.h>

#define ENVELOPE_FORMAT 0x01
#define ENVELOPE_HEADER_LEN 33
#define ENVELOPE_TAG_LEN 16
#define ENVELOPE_IV_LEN 12

struct envelope_header {
    unsigned char key_id[16];
    unsigned long version;
    unsigned char iv[ENVELOPE_IV_LEN];
};

/* Reads the header of a ciphertext of in_len bytes: CKR_ENCRYPTED_DATA_LEN_RANGE when
 * shorter than header and tag, CKR_ENCRYPTED_DATA_INVALID for an unknown format or
 * version 0, each with a log line. *plain_len: the bytes the body decrypts to. */
CK_RV envelope_parse(const unsigned char *in, CK_ULONG in_len, struct envelope_header *h,
                     CK_ULONG *plain_len);
/* Writes the header (ENVELOPE_HEADER_LEN bytes) for h. */
void envelope_write(unsigned char *out, const struct envelope_header *h);

#endif
