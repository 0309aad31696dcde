/* import_client.h - the client side of an import (parameters, wrapping with OpenSSL,
 * C_UnwrapKey) and the checks the import tests share. */
#ifndef CMKP11_TEST_IMPORT_CLIENT_H
#define CMKP11_TEST_IMPORT_CLIENT_H

#include <openssl/types.h>
#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>

#include "cmkp11/cmkp11.h"

struct params {
    unsigned char token[256];
    CK_ULONG token_len;
    unsigned char spki[1024];
    CK_ULONG spki_len;
};

struct blob {
    unsigned char data[4096];
    size_t len;
};

void key_id_of(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, char out[40]);
/* GetParametersForImport for key (alg 0: the module's choice); token and SPKI into p. */
CK_RV get_params(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_ULONG alg, CK_ULONG bits,
                 struct params *p);
/* RSAES_OAEP_SHA_1/_256 of m for p's public key, as `openssl pkeyutl` does. */
void wrap_oaep(const struct params *p, bool sha256, const unsigned char *m, size_t n,
               struct blob *b);
/* RSA_AES_KEY_WRAP_SHA_1/_256: OAEP of a random AES-256 key, then RFC 5649 wrap of m. */
void wrap_rsa_aes(const struct params *p, bool sha256, const unsigned char *m, size_t n,
                  struct blob *b);
/* m wrapped with alg: RSAES_OAEP_* alone, or RSA_AES_KEY_WRAP_*. */
void wrap_material(CK_ULONG alg, const struct params *p, const unsigned char *m, size_t n,
                   struct blob *b);
/* PKCS#8 of key, wrapped for new parameters of priv with alg (an RSA_AES_KEY_WRAP
 * algorithm, or 0 for the module's default). */
void wrap_private_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, EVP_PKEY *key, CK_ULONG alg,
                      struct params *p, struct blob *b);
/* Checks that the CKA_PUBLIC_KEY_INFO of h is the SPKI of key. */
void check_public_key_info(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, EVP_PKEY *key);
/* r || s -> DER ECDSA-Sig-Value (EC and SM2 signatures as OpenSSL verifies them); its
 * length. */
size_t raw_sig_to_der(const unsigned char *raw, size_t len, unsigned char der[160]);
/* ImportKeyMaterial: C_UnwrapKey of b into key with p's token (expires 0: never). */
CK_RV import(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_ULONG alg, struct blob *b,
             const struct params *p, CK_ULONG expires);
CK_ULONG state_of(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key);
/* The module's clock (CMKP11_TEST_NOW) set seconds from now. */
void set_now_offset(long seconds);
/* Audit rows of action. */
long audits(const char *action);
/* Everything a refused import must leave alone, as text: inspect_snapshot and the import
 * rows (parameters, claim, fingerprint, material, expiry). */
void import_snapshot(char *out, size_t size);

/* The openssl command beside the module: a file in the test's directory (CMK_WORK), a
 * command line run by the shell (0 when it exits 0; a failure is printed), a file
 * written whole, a file read whole into buf (its length, 0 when absent). */
const char *client_path(const char *name);
int client_shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void client_write(const char *path, const void *data, size_t len);
size_t client_read(const char *path, unsigned char *buf, size_t size);

#endif
