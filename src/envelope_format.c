/* envelope_format.c - reading and writing the envelope header. Outside input: every
 * length is checked before a byte is read (fuzzed by tests/fuzz/fuzz_envelope.c). */
#include "envelope_format.h"

#include <string.h>

#include "log.h"

size_t envelope_tag_len(unsigned char format)
{
    return format == ENVELOPE_FORMAT       ? ENVELOPE_TAG_LEN
           : format == ENVELOPE_FORMAT_SM4 ? ENVELOPE_MAC_LEN
                                           : 0;
}

CK_RV envelope_parse(const unsigned char *in, CK_ULONG in_len, struct envelope_header *h,
                     CK_ULONG *plain_len)
{
    /* The shortest tag first: below that no format fits, whatever the first byte says. */
    if (!in || in_len < ENVELOPE_HEADER_LEN + ENVELOPE_TAG_LEN) {
        log_warning("envelope: ciphertext of %lu bytes is shorter than header and tag (%d)", in_len,
                    ENVELOPE_HEADER_LEN + ENVELOPE_TAG_LEN);
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    }
    size_t tag = envelope_tag_len(in[0]);
    if (!tag) {
        log_warning("envelope: unknown format byte 0x%02x (expected 0x%02x or 0x%02x)", in[0],
                    ENVELOPE_FORMAT, ENVELOPE_FORMAT_SM4);
        return CKR_ENCRYPTED_DATA_INVALID;
    }
    if (in_len < ENVELOPE_HEADER_LEN + tag) {
        log_warning("envelope: format 0x%02x ciphertext of %lu bytes is shorter than header and "
                    "tag (%zu)",
                    in[0], in_len, ENVELOPE_HEADER_LEN + tag);
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    }
    h->format = in[0];
    memcpy(h->key_id, in + 1, sizeof(h->key_id));
    h->version = ((unsigned long)in[17] << 24) | ((unsigned long)in[18] << 16) |
                 ((unsigned long)in[19] << 8) | in[20];
    if (h->version == 0) {
        log_warning("envelope: version 0 does not exist (versions count from 1)");
        return CKR_ENCRYPTED_DATA_INVALID;
    }
    memcpy(h->iv, in + 21, sizeof(h->iv));
    *plain_len = in_len - ENVELOPE_HEADER_LEN - tag;
    return CKR_OK;
}

void envelope_write(unsigned char *out, const struct envelope_header *h)
{
    out[0] = h->format;
    memcpy(out + 1, h->key_id, sizeof(h->key_id));
    out[17] = (unsigned char)(h->version >> 24);
    out[18] = (unsigned char)(h->version >> 16);
    out[19] = (unsigned char)(h->version >> 8);
    out[20] = (unsigned char)h->version;
    memcpy(out + 21, h->iv, sizeof(h->iv));
}
