/* codec.c - encodings through OpenSSL, which already gets them right. */
#include "codec.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *b64_encode(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out) EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

/* Strict RFC 4648 base64: the alphabet, padded to whole quanta, and canonical (the bits
 * padding leaves over are zero: the text is what encoding the bytes gives back). Line
 * breaks are skipped, as `base64` wraps its output at 76 columns; any other character,
 * a space included, is an error, so "hello world" is not read as "helloworld". */
int b64_decode(const char *in, unsigned char **out, size_t *len)
{
    size_t n = strlen(in);
    char *clean = malloc(n + 1);
    if (!clean) return -1;
    size_t k = 0, pad = 0;
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\n' || c == '\r') continue;
        if (c == '=')
            pad++;
        else if (pad || !(isalnum(c) || c == '+' || c == '/'))
            bad = 1;
        clean[k++] = (char)c;
    }
    clean[k] = '\0';
    *out = NULL;
    if (bad || k % 4 || pad > 2) {
        free(clean);
        return -1;
    }
    *out = malloc(k / 4 * 3 + 1);
    int got = *out ? EVP_DecodeBlock(*out, (unsigned char *)clean, (int)k) : -1;
    char *again = got >= 0 ? b64_encode(*out, (size_t)got - pad) : NULL;
    int canonical = again && !strcmp(again, clean);
    free(again);
    free(clean);
    if (!canonical) {
        free(*out);
        *out = NULL;
        return -1;
    }
    *len = (size_t)got - pad; /* DecodeBlock counts the padding as zero bytes */
    return 0;
}

char *hex_encode(const unsigned char *in, size_t len)
{
    char *out = malloc(2 * len + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
    out[2 * len] = '\0';
    return out;
}

char *pem_public_key(const unsigned char *spki, size_t len)
{
    /* Parsing first proves the module handed us a real SubjectPublicKeyInfo. */
    const unsigned char *p = spki;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)len);
    if (!key) return NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (bio && PEM_write_bio_PUBKEY(bio, key)) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        pem = malloc((size_t)n + 1);
        if (pem) {
            memcpy(pem, data, (size_t)n);
            pem[n] = '\0';
        }
    }
    BIO_free(bio);
    EVP_PKEY_free(key);
    return pem;
}

int ecdsa_raw_to_der(const unsigned char *raw, size_t len, unsigned char **der, size_t *der_len)
{
    if (len == 0 || len % 2) return -1;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(len / 2), NULL),
           *s = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL);
    if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return -1;
    }
    *der = NULL;
    int n = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    if (n <= 0) return -1;
    *der_len = (size_t)n;
    return 0;
}

int ecdsa_der_to_raw(const unsigned char *der, size_t len, size_t coordinate, unsigned char **raw)
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!sig || p != der + len) {
        ECDSA_SIG_free(sig);
        return -1;
    }
    *raw = calloc(1, 2 * coordinate);
    int ok = *raw && BN_bn2binpad(ECDSA_SIG_get0_r(sig), *raw, (int)coordinate) > 0 &&
             BN_bn2binpad(ECDSA_SIG_get0_s(sig), *raw + coordinate, (int)coordinate) > 0;
    ECDSA_SIG_free(sig);
    if (!ok) {
        free(*raw);
        *raw = NULL;
        return -1;
    }
    return 0;
}

int file_read(const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *grown = realloc(buf, cap *= 2);
            if (!grown) {
                free(buf);
                buf = NULL;
            }
            buf = grown;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        errno = err ? EIO : ENOMEM;
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

int file_write(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd);
}
