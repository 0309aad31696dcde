/* fuzz_pubkey.c - libFuzzer harness for the SubjectPublicKeyInfo encoder (src/pubkey.c).
 *
 * Input layout: bytes 0..1 = L (big-endian), then the first part (min(L, rest) bytes),
 * then the second part (everything after it). Each part is copied into a heap buffer
 * of exactly its size, so ASan sees any read past either.
 *   pubkey_spki_ec(CKK_EC, first = CKA_EC_PARAMS, second = CKA_EC_POINT)
 *   pubkey_spki_ec(CKK_EC_EDWARDS, same)
 *   pubkey_spki_rsa(first = modulus, second = public exponent)
 * A DER result must parse back as a public key; the RSA key's n and e must be the ones
 * given; an EC/EdDSA SPKI must be the one its point makes read either as the raw point
 * or as a DER OCTET STRING. */
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "pubkey.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (pubkey_init() != 0) abort();
    return 0;
}

static unsigned char *dup_exact(const uint8_t *data, size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    if (!p) abort();
    if (len) memcpy(p, data, len);
    return p;
}

/* Parses the DER back; returns the key (caller frees) and checks it was all consumed. */
static EVP_PKEY *parse_back(const unsigned char *der, size_t der_len)
{
    CHECK(der_len > 0);
    const unsigned char *p = der;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)der_len);
    CHECK(pkey != NULL);
    CHECK(p == der + der_len);
    return pkey;
}

/* The DER OCTET STRING around v: the one unambiguous spelling of "v is the point". */
static unsigned char *wrap(const unsigned char *v, size_t len, size_t *out_len)
{
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    unsigned char *der = NULL;
    int n = -1;
    if (os && ASN1_OCTET_STRING_set(os, v, (int)len)) n = i2d_ASN1_OCTET_STRING(os, &der);
    ASN1_OCTET_STRING_free(os);
    if (n <= 0) abort();
    unsigned char *copy = dup_exact(der, (size_t)n);
    OPENSSL_free(der);
    *out_len = (size_t)n;
    return copy;
}

static unsigned char *spki_of_point(CK_KEY_TYPE type, const unsigned char *params,
                                    size_t params_len, const unsigned char *v, size_t len,
                                    size_t *der_len)
{
    size_t wlen;
    unsigned char *w = wrap(v, len, &wlen);
    unsigned char *der = pubkey_spki_ec(type, params, params_len, w, wlen, der_len);
    free(w);
    return der;
}

static int same(const unsigned char *a, size_t a_len, const unsigned char *b, size_t b_len)
{
    return a && b && a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* CKA_EC_POINT is "a DER OCTET STRING, or the raw point as some modules give it"
 * (pubkey.h). So the SPKI made from it must be the one made from one of its two
 * readings, and when either reading is a valid key there must be an SPKI. */
static void run_ec_type(CK_KEY_TYPE type, const unsigned char *params, size_t params_len,
                        const unsigned char *point, size_t point_len)
{
    size_t der_len = 0;
    unsigned char *der = pubkey_spki_ec(type, params, params_len, point, point_len, &der_len);
    if (der) {
        EVP_PKEY *pkey = parse_back(der, der_len);
        if (type == CKK_EC)
            CHECK(EVP_PKEY_is_a(pkey, "EC"));
        else
            CHECK(EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448"));
        EVP_PKEY_free(pkey);
    }

    /* Reading 1: the value is the raw point. */
    size_t raw_len = 0;
    unsigned char *raw = spki_of_point(type, params, params_len, point, point_len, &raw_len);
    /* Reading 2: the value is a DER OCTET STRING holding the point. PKCS#11 says DER;
     * a BER form (constructed, indefinite length) is not taken as one, so it must
     * re-encode to exactly the input. */
    size_t os_len = 0;
    unsigned char *os_spki = NULL;
    const unsigned char *p = point;
    ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)point_len);
    unsigned char *reencoded = NULL;
    int reencoded_len = os ? i2d_ASN1_OCTET_STRING(os, &reencoded) : -1;
    bool is_der = os && p == point + point_len && reencoded_len == (int)point_len &&
                  memcmp(reencoded, point, point_len) == 0;
    OPENSSL_free(reencoded);
    if (is_der)
        os_spki = spki_of_point(type, params, params_len, ASN1_STRING_get0_data(os),
                                (size_t)ASN1_STRING_length(os), &os_len);
    ASN1_OCTET_STRING_free(os);

    if (der && !same(der, der_len, raw, raw_len) && !same(der, der_len, os_spki, os_len)) {
        fprintf(stderr,
                "fuzz_pubkey: the %s key in the SPKI is neither the CKA_EC_POINT "
                "value nor the OCTET STRING's content\n",
                type == CKK_EC ? "EC" : "EdDSA");
        abort();
    }
    /* No completeness check: a raw 32-byte value is a valid Ed25519 key whatever it
     * holds, so "some reading is a valid key" cannot tell which reading was meant. */
    free(os_spki);
    free(raw);
    free(der);
}

static void run_ec(const unsigned char *params, size_t params_len, const unsigned char *point,
                   size_t point_len)
{
    run_ec_type(CKK_EC, params, params_len, point, point_len);
    run_ec_type(CKK_EC_EDWARDS, params, params_len, point, point_len);
}

static void run_rsa(const unsigned char *n, size_t n_len, const unsigned char *e, size_t e_len)
{
    size_t der_len = 0;
    unsigned char *der = pubkey_spki_rsa(n, n_len, e, e_len, &der_len);
    if (!der) return;
    EVP_PKEY *pkey = parse_back(der, der_len);
    CHECK(EVP_PKEY_is_a(pkey, "RSA"));
    BIGNUM *got_n = NULL, *got_e = NULL;
    BIGNUM *want_n = BN_bin2bn(n, (int)n_len, NULL), *want_e = BN_bin2bn(e, (int)e_len, NULL);
    CHECK(want_n && want_e);
    CHECK(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &got_n) == 1);
    CHECK(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &got_e) == 1);
    CHECK(BN_cmp(got_n, want_n) == 0);
    CHECK(BN_cmp(got_e, want_e) == 0);
    BN_free(got_n);
    BN_free(got_e);
    BN_free(want_n);
    BN_free(want_e);
    EVP_PKEY_free(pkey);
    free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t want = (size_t)data[0] << 8 | data[1];
    size_t rest = size - 2;
    size_t first_len = want < rest ? want : rest;
    unsigned char *first = dup_exact(data + 2, first_len);
    unsigned char *second = dup_exact(data + 2 + first_len, rest - first_len);
    size_t second_len = rest - first_len;

    run_ec(first, first_len, second, second_len);
    run_rsa(first, first_len, second, second_len);

    free(first);
    free(second);
    return 0;
}
