/* envelope_format.h - the bytes of CKM_CMK_ENVELOPE ciphertext, apart from any key or
 * session: a 33-byte header (format, key id, version, IV), the body, the tag. The header
 * is authenticated by the tag.
 *
 * Format 0x01 (AES keys): AES-GCM, 12-byte IV, 16-byte tag; GCM's AAD is the header
 * followed by the caller's AAD.
 * Format 0x02 (SM4 keys; OpenSSL 3.0 has no SM4-GCM): encrypt-then-MAC, SM4-CTR with the
 * counter block IV(12) || 00000000, then a 32-byte HMAC-SM3 tag over
 * header || AAD length (8 bytes, big-endian) || AAD || ciphertext (envelope_sm4.h). */
#ifndef CMKP11_ENVELOPE_FORMAT_H
#define CMKP11_ENVELOPE_FORMAT_H

#include <p11-kit/pkcs11.h>
#include <stddef.h>

#define ENVELOPE_FORMAT 0x01
#define ENVELOPE_FORMAT_SM4 0x02
#define ENVELOPE_HEADER_LEN 33
#define ENVELOPE_TAG_LEN 16
#define ENVELOPE_MAC_LEN 32
#define ENVELOPE_IV_LEN 12

struct envelope_header {
    unsigned char format; /* ENVELOPE_FORMAT or ENVELOPE_FORMAT_SM4 */
    unsigned char key_id[16];
    unsigned long version;
    unsigned char iv[ENVELOPE_IV_LEN];
};

/* The tag length of a known format, 0 for any other byte. */
size_t envelope_tag_len(unsigned char format);
/* Reads the header of a ciphertext of in_len bytes: CKR_ENCRYPTED_DATA_LEN_RANGE when
 * shorter than header and its format's tag, CKR_ENCRYPTED_DATA_INVALID for an unknown
 * format or version 0, each with a log line. *plain_len: the bytes the body decrypts to. */
CK_RV envelope_parse(const unsigned char *in, CK_ULONG in_len, struct envelope_header *h,
                     CK_ULONG *plain_len);
/* Writes the header (ENVELOPE_HEADER_LEN bytes) for h. */
void envelope_write(unsigned char *out, const struct envelope_header *h);

#endif
