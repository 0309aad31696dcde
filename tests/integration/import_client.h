/* import_client.h - the client side of an import (parameters, wrapping with OpenSSL,
 * C_UnwrapKey) and the checks the import tests share. */
#ifndef CMKP11_TEST_IMPORT_CLIENT_H
#define CMKP11_TEST_IMPORT_CLIENT_H

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
/* ImportKeyMaterial: C_UnwrapKey of b into key with p's token (expires 0: never). */
CK_RV import(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_ULONG alg, struct blob *b,
             const struct params *p, CK_ULONG expires);
CK_ULONG state_of(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key);
/* The module's clock (CMKP11_TEST_NOW) set seconds from now. */
void set_now_offset(long seconds);
/* Audit rows of action. */
long audits(const char *action);

#endif
