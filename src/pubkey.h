/* pubkey.h - DER SubjectPublicKeyInfo from a public key's PKCS#11 components, so a
 * private key can carry CKA_PUBLIC_KEY_INFO (clients find the public half through it
 * after deleting the public object). Uses OpenSSL in a library context of its own. */
#ifndef CMKP11_PUBKEY_H
#define CMKP11_PUBKEY_H

#include <openssl/types.h>
#include <p11-kit/pkcs11.h>
#include <stddef.h>

int pubkey_init(void);
void pubkey_cleanup(void);
/* The module's own library context, made by pubkey_init (NULL before). */
OSSL_LIB_CTX *pubkey_libctx(void);

/* RSA: modulus and public exponent (big-endian). Returns a malloc'd DER, or NULL. */
unsigned char *pubkey_spki_rsa(const unsigned char *n, size_t n_len, const unsigned char *e,
                               size_t e_len, size_t *der_len);
/* EC / EdDSA: CKA_EC_PARAMS (named curve OID or name) and CKA_EC_POINT (a DER OCTET
 * STRING, or the raw point as some modules give it). */
unsigned char *pubkey_spki_ec(CK_KEY_TYPE type, const unsigned char *params, size_t params_len,
                              const unsigned char *point, size_t point_len, size_t *der_len);

/* EC point math on public values only, for keys whose public point the HSM does not give
 * (an imported private key): uncompressed points (0x04 || X || Y), at most
 * PUBKEY_EC_POINT_MAX bytes. The generator of the named curve in params: */
#define PUBKEY_EC_POINT_MAX 133
int pubkey_ec_generator(const unsigned char *params, size_t params_len, unsigned char *out,
                        size_t *out_len);
/* The two points with X coordinate x (even and odd Y). 0 on success. */
int pubkey_ec_points_with_x(const unsigned char *params, size_t params_len, const unsigned char *x,
                            size_t x_len, unsigned char *even, unsigned char *odd,
                            size_t *point_len);

/* RSA-OAEP (SHA-256, MGF1-SHA-256) encryption to an RSA SPKI, for probing whether the HSM
 * unwraps with it (a random value, never key material). out holds *out_len bytes. */
int pubkey_rsa_oaep_sha256_encrypt(const unsigned char *spki, size_t spki_len,
                                   const unsigned char *in, size_t in_len, unsigned char *out,
                                   size_t *out_len);

#endif
