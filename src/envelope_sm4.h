/* envelope_sm4.h - the body of an SM4 envelope (format 0x02, envelope_format.h):
 * encrypt-then-MAC, since OpenSSL 3.0 has no SM4-GCM.
 *
 * Keys: the version's SM4 material is a key-generating key; it never leaves soft_key (or
 * the backend, at level HSM), which hands out only a cipher keyed with it, so the keys are
 * derived with that cipher
 * (as AES-GCM-SIV derives its keys, RFC 8452 section 4): block i = SM4-ECB(material,
 * "CMKP11-ENV-SM4" || 0x00 || i); block 1 is the SM4-CTR key, blocks 2 and 3 the 32-byte
 * HMAC-SM3 key. Distinct labels keep the two keys independent.
 * Body: SM4-CTR under the counter block IV(12) || 00000000, then
 * tag = HMAC-SM3(header || AAD length (8 bytes, big-endian) || AAD || ciphertext); the
 * length prefix makes the AAD/ciphertext split unambiguous. The tag is checked in
 * constant time before anything is decrypted. */
#ifndef CMKP11_ENVELOPE_SM4_H
#define CMKP11_ENVELOPE_SM4_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>

#include "cmk_cache.h"

/* encrypt: in is the plaintext, out gets ciphertext || tag (in_len + 32 bytes).
 * decrypt: in is ciphertext || tag, out gets the plaintext (in_len - 32 bytes);
 * CKR_ENCRYPTED_DATA_INVALID when the tag does not verify. header is the 33-byte
 * envelope header (its IV is the counter block's nonce). material: the version's backend
 * object for a key at level HSM, whose subkeys the backend's SM4-ECB derives (the
 * material stays in the backend; sm_backend_map.h); unused at level SOFTWARE. */
CK_RV envelope_sm4_run(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material,
                       const struct cmk_live *key, unsigned long version, bool encrypt, const unsigned char *header, const unsigned char *aad,
                       size_t aad_len, const unsigned char *in, size_t in_len, unsigned char *out);

#endif
