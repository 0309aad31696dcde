/* pubkey.c - SubjectPublicKeyInfo encoding with OpenSSL 3.
 * Our own OSSL_LIB_CTX keeps us out of the host application's provider setup: an app
 * that loads the pkcs11 provider (even as its default) cannot recurse into us. */
#include "pubkey.h"

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static OSSL_LIB_CTX *libctx;

/* Run by OPENSSL_cleanup at exit, in the exiting thread, after that thread's own state was
 * let go and before OpenSSL tears itself down (see pubkey_cleanup). */
static void free_at_exit(void)
{
    OSSL_LIB_CTX_free(libctx);
    libctx = NULL;
}

int pubkey_init(void)
{
    static bool exit_handler;
    if (!libctx) libctx = OSSL_LIB_CTX_new();
    if (libctx && !exit_handler) exit_handler = OPENSSL_atexit(free_at_exit) == 1;
    return libctx ? 0 : -1;
}

OSSL_LIB_CTX *pubkey_libctx(void)
{
    return libctx;
}

/* The context outlives C_Finalize, and a later C_Initialize takes it up again. OpenSSL 3.0
 * keeps per-thread state (the DRBGs) for a context in every thread that used it, and frees
 * it only in the thread that frees the context: freed by a C_Finalize on another thread
 * (an application's closing thread), the context left the other threads' exit handlers
 * pointing at freed locks, and the process crashed in OPENSSL_cleanup at exit. It is freed
 * at exit instead (free_at_exit); the module is linked -z nodelete, so a dlclose leaves
 * that handler mapped. */
void pubkey_cleanup(void) {}

static unsigned char *encode(EVP_PKEY *pkey, size_t *der_len)
{
    unsigned char *der = NULL;
    int len = pkey ? i2d_PUBKEY(pkey, &der) : -1;
    EVP_PKEY_free(pkey);
    if (len <= 0) return NULL;
    /* Hand out malloc'd memory so callers free it without knowing OpenSSL. */
    unsigned char *copy = malloc((size_t)len);
    if (copy) memcpy(copy, der, (size_t)len);
    OPENSSL_free(der);
    *der_len = (size_t)len;
    return copy;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(libctx, type, NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) > 0)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

unsigned char *pubkey_spki_rsa(const unsigned char *n, size_t n_len, const unsigned char *e,
                               size_t e_len, size_t *der_len)
{
    if (!libctx) return NULL;
    BIGNUM *bn_n = BN_bin2bn(n, (int)n_len, NULL), *bn_e = BN_bin2bn(e, (int)e_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
        pkey = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return encode(pkey, der_len);
}

/* CKA_EC_POINT is normally a DER OCTET STRING, but some modules give the raw point, and
 * a raw point can look like DER by chance. So: the strict DER reading first (primitive
 * tag 0x04, definite length covering the rest exactly), the raw bytes if that fails. */
static bool der_octet_string(const unsigned char *p, size_t len, const unsigned char **content,
                             size_t *content_len)
{
    if (len < 2 || p[0] != 0x04) return false;
    size_t n, header;
    if (p[1] < 0x80) {
        n = p[1];
        header = 2;
    } else if (p[1] == 0x81 && len >= 3 && p[2] >= 0x80) {
        n = p[2];
        header = 3;
    } else if (p[1] == 0x82 && len >= 4 && p[2] != 0) {
        n = ((size_t)p[2] << 8) | p[3];
        header = 4;
    } else {
        return false;
    }
    if (header + n != len) return false;
    *content = p + header;
    *content_len = n;
    return true;
}

static int curve_nid(const unsigned char *params, size_t len)
{
    const unsigned char *p = params;
    if (len > 2 && params[0] == 0x06) {
        ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)len);
        int nid = oid ? OBJ_obj2nid(oid) : NID_undef;
        ASN1_OBJECT_free(oid);
        return nid;
    }
    if (len > 2 && params[0] == 0x13 && params[1] + 2UL == len) {
        char name[64];
        size_t n = params[1] < sizeof(name) - 1 ? params[1] : sizeof(name) - 1;
        memcpy(name, params + 2, n);
        name[n] = '\0';
        if (!strcmp(name, "edwards25519")) return NID_ED25519;
        if (!strcmp(name, "edwards448")) return NID_ED448;
        return OBJ_sn2nid(name);
    }
    return NID_undef;
}

static EVP_PKEY *ec_key(CK_KEY_TYPE type, int nid, const unsigned char *point, size_t point_len)
{
    if (type == CKK_EC_EDWARDS) {
        const char *name = nid == NID_ED25519 ? "ED25519" : nid == NID_ED448 ? "ED448" : NULL;
        return name ? EVP_PKEY_new_raw_public_key_ex(libctx, name, NULL, point, point_len) : NULL;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, OBJ_nid2sn(nid), 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len))
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

unsigned char *pubkey_spki_ec(CK_KEY_TYPE type, const unsigned char *params, size_t params_len,
                              const unsigned char *point, size_t point_len, size_t *der_len)
{
    if (!libctx) return NULL;
    int nid = curve_nid(params, params_len);
    if (nid == NID_undef) return NULL;
    const unsigned char *content;
    size_t content_len;
    EVP_PKEY *pkey = NULL;
    if (der_octet_string(point, point_len, &content, &content_len))
        pkey = ec_key(type, nid, content, content_len);
    if (!pkey) pkey = ec_key(type, nid, point, point_len);
    return encode(pkey, der_len);
}

/* The curve of params as an EC_GROUP of our library context (NULL when not a named one). */
static EC_GROUP *named_group(const unsigned char *params, size_t params_len)
{
    int nid = curve_nid(params, params_len);
    return nid == NID_undef || !libctx ? NULL : EC_GROUP_new_by_curve_name_ex(libctx, NULL, nid);
}

int pubkey_ec_generator(const unsigned char *params, size_t params_len, unsigned char *out,
                        size_t *out_len)
{
    EC_GROUP *g = named_group(params, params_len);
    size_t n = g ? EC_POINT_point2oct(g, EC_GROUP_get0_generator(g), POINT_CONVERSION_UNCOMPRESSED,
                                      out, PUBKEY_EC_POINT_MAX, NULL)
                 : 0;
    EC_GROUP_free(g);
    *out_len = n;
    return n ? 0 : -1;
}

int pubkey_ec_points_with_x(const unsigned char *params, size_t params_len, const unsigned char *x,
                            size_t x_len, unsigned char *even, unsigned char *odd,
                            size_t *point_len)
{
    EC_GROUP *g = named_group(params, params_len);
    EC_POINT *p = g ? EC_POINT_new(g) : NULL;
    BIGNUM *bx = BN_bin2bn(x, (int)x_len, NULL);
    BN_CTX *ctx = BN_CTX_new_ex(libctx);
    int rc = -1;
    *point_len = 0;
    if (p && bx && ctx) {
        size_t a = 0, b = 0;
        if (EC_POINT_set_compressed_coordinates(g, p, bx, 0, ctx) == 1)
            a = EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, even, PUBKEY_EC_POINT_MAX,
                                   ctx);
        if (EC_POINT_set_compressed_coordinates(g, p, bx, 1, ctx) == 1)
            b = EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, odd, PUBKEY_EC_POINT_MAX,
                                   ctx);
        if (a && a == b) {
            *point_len = a;
            rc = 0;
        }
    }
    BN_CTX_free(ctx);
    BN_free(bx);
    EC_POINT_free(p);
    EC_GROUP_free(g);
    return rc;
}

int pubkey_rsa_oaep_sha256_encrypt(const unsigned char *spki, size_t spki_len,
                                   const unsigned char *in, size_t in_len, unsigned char *out,
                                   size_t *out_len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pkey = libctx ? d2i_PUBKEY_ex(NULL, &p, (long)spki_len, libctx, NULL) : NULL;
    EVP_PKEY_CTX *ctx = pkey ? EVP_PKEY_CTX_new_from_pkey(libctx, pkey, NULL) : NULL;
    int ok = ctx && EVP_PKEY_encrypt_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL) > 0 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", NULL) > 0 &&
             EVP_PKEY_encrypt(ctx, out, out_len, in, in_len) > 0;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok ? 0 : -1;
}
