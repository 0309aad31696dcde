/* codec.h - base64, hex, PEM, ECDSA signature encodings, and whole-file I/O. */
#ifndef CMKCTL_CODEC_H
#define CMKCTL_CODEC_H

#include <stddef.h>

/* malloc'd, NUL-terminated; NULL when out of memory. */
char *b64_encode(const unsigned char *in, size_t len);
/* Ignores whitespace, accepts missing padding; -1 for anything else that is not base64. */
int b64_decode(const char *in, unsigned char **out, size_t *len);
char *hex_encode(const unsigned char *in, size_t len);

/* "-----BEGIN PUBLIC KEY-----" PEM of a DER SubjectPublicKeyInfo; NULL if it is not one. */
char *pem_public_key(const unsigned char *spki, size_t len);

/* PKCS#11 ECDSA signatures are r||s; the clouds and OpenSSL exchange DER
 * ECDSA-Sig-Value. coordinate = bytes of r (and of s) for the curve. */
int ecdsa_raw_to_der(const unsigned char *raw, size_t len, unsigned char **der, size_t *der_len);
int ecdsa_der_to_raw(const unsigned char *der, size_t len, size_t coordinate, unsigned char **raw);

/* Whole files; -1 with errno set on failure. */
int file_read(const char *path, unsigned char **data, size_t *len);
int file_write(const char *path, const void *data, size_t len);

#endif
