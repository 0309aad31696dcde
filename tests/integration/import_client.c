/* import_client.c - what a client of the import does, as the clouds' guides tell it: ask
 * for parameters, wrap material with OpenSSL (OAEP, or OAEP + RFC 5649), import it with
 * C_UnwrapKey; and the clock, state and audit checks the import tests share. */
#include "import_client.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "inspect.h"

void key_id_of(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, char out[40])
{
    CHECK_RV(get_text(s, h, CKA_CMK_KEY_ID, out, 40), CKR_OK);
}

CK_RV get_params(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_ULONG alg, CK_ULONG bits,
                 struct params *p)
{
    char key_id[40];
    key_id_of(s, key, key_id);
    CK_MECHANISM mech = {CKM_CMK_IMPORT_PARAMS, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_MODULUS_BITS, &bits, sizeof(bits)}};
    CK_ATTRIBUTE vt[] = {{CKA_CMK_KEY_ID, key_id, 36},
                         {CKA_CMK_WRAPPING_ALGORITHM, &alg, sizeof(alg)}};
    CK_OBJECT_HANDLE wpub, wpriv;
    /* alg 0: let the module choose (CKA_CMK_WRAPPING_ALGORITHM left out) */
    CK_RV rv = p11->C_GenerateKeyPair(s, &mech, pt, 1, vt, alg ? 2 : 1, &wpub, &wpriv);
    if (rv != CKR_OK) return rv;
    CK_ATTRIBUTE a[] = {{CKA_CMK_IMPORT_TOKEN, p->token, sizeof(p->token)},
                        {CKA_CMK_IMPORT_PUBLIC_KEY, p->spki, sizeof(p->spki)}};
    rv = p11->C_GetAttributeValue(s, key, a, 2);
    p->token_len = a[0].ulValueLen;
    p->spki_len = a[1].ulValueLen;
    return rv;
}

/* OAEP with the hash for both digest and MGF1, as `openssl pkeyutl -pkeyopt
 * rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:H -pkeyopt rsa_mgf1_md:H` does. */
static size_t oaep(const struct params *p, bool sha256, const unsigned char *in, size_t in_len,
                   unsigned char *out)
{
    const unsigned char *der = p->spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &der, (long)p->spki_len);
    EVP_PKEY_CTX *ctx = pk ? EVP_PKEY_CTX_new(pk, NULL) : NULL;
    const EVP_MD *md = sha256 ? EVP_sha256() : EVP_sha1();
    size_t len = 1024;
    if (!ctx || EVP_PKEY_encrypt_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) <= 0 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) <= 0 ||
        EVP_PKEY_encrypt(ctx, out, &len, in, in_len) <= 0)
        len = 0;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return len;
}

void wrap_oaep(const struct params *p, bool sha256, const unsigned char *m, size_t n,
               struct blob *b)
{
    b->len = oaep(p, sha256, m, n, b->data);
    CHECK(b->len > 0);
}

/* RSA_AES_KEY_WRAP: OAEP of a random AES-256 key, then RFC 5649 wrap of the material. */
void wrap_rsa_aes(const struct params *p, bool sha256, const unsigned char *m, size_t n,
                  struct blob *b)
{
    unsigned char kek[32];
    RAND_bytes(kek, sizeof(kek));
    size_t head = oaep(p, sha256, kek, sizeof(kek), b->data);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    int l1 = 0, l2 = 0;
    CHECK(EVP_EncryptInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL) == 1);
    CHECK(EVP_EncryptUpdate(ctx, b->data + head, &l1, m, (int)n) == 1);
    CHECK(EVP_EncryptFinal_ex(ctx, b->data + head + l1, &l2) == 1);
    EVP_CIPHER_CTX_free(ctx);
    b->len = head + (size_t)l1 + (size_t)l2;
    CHECK(head > 0);
}

/* m wrapped for p with alg, as the clouds' guides tell a client to. */
void wrap_material(CK_ULONG alg, const struct params *p, const unsigned char *m, size_t n,
                   struct blob *b)
{
    bool sha256 = alg == CMK_WRAP_RSAES_OAEP_SHA_256 || alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256;
    if (alg == CMK_WRAP_RSAES_OAEP_SHA_1 || alg == CMK_WRAP_RSAES_OAEP_SHA_256)
        wrap_oaep(p, sha256, m, n, b);
    else
        wrap_rsa_aes(p, sha256, m, n, b);
}

/* PKCS#8 of a private key, wrapped for new parameters of priv with alg (an RSA_AES_KEY_WRAP
 * algorithm, or 0 for the module's default). */
void wrap_private_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, EVP_PKEY *key, CK_ULONG alg,
                      struct params *p, struct blob *b)
{
    unsigned char *p8 = NULL;
    PKCS8_PRIV_KEY_INFO *info = EVP_PKEY2PKCS8(key);
    int p8_len = i2d_PKCS8_PRIV_KEY_INFO(info, &p8);
    PKCS8_PRIV_KEY_INFO_free(info);
    CHECK_RV(get_params(s, priv, alg, 2048, p), CKR_OK);
    CHECK_RV(get_ulong(s, priv, CKA_CMK_WRAPPING_ALGORITHM, &alg), CKR_OK);
    wrap_rsa_aes(p, alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256, p8, (size_t)p8_len, b);
    OPENSSL_free(p8);
}

/* The key's CKA_PUBLIC_KEY_INFO is the SPKI of the key OpenSSL made. */
void check_public_key_info(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, EVP_PKEY *key)
{
    unsigned char spki[1024], *want = NULL;
    int want_len = i2d_PUBKEY(key, &want);
    CK_ATTRIBUTE a = {CKA_PUBLIC_KEY_INFO, spki, sizeof(spki)};
    CHECK_RV(p11->C_GetAttributeValue(s, priv, &a, 1), CKR_OK);
    CHECK(a.ulValueLen == (CK_ULONG)want_len && memcmp(spki, want, a.ulValueLen) == 0);
    OPENSSL_free(want);
}

CK_RV import(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_ULONG alg, struct blob *b,
             const struct params *p, CK_ULONG expires)
{
    CK_RSA_PKCS_OAEP_PARAMS op = {0};
    bool sha256 = alg == CMK_WRAP_RSAES_OAEP_SHA_256 || alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256;
    op.hash_alg = sha256 ? CKM_SHA256 : CKM_SHA_1;
    op.mgf = sha256 ? CKG_MGF1_SHA256 : CKG_MGF1_SHA1;
    op.source = CKZ_DATA_SPECIFIED;
    CK_CMK_RSA_AES_KEY_WRAP_PARAMS kw = {256, &op};
    bool key_wrap =
        alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1 || alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256;
    CK_MECHANISM mech = {key_wrap ? CKM_RSA_AES_KEY_WRAP : CKM_RSA_PKCS_OAEP,
                         key_wrap ? (void *)&kw : (void *)&op, key_wrap ? sizeof(kw) : sizeof(op)};
    CK_ATTRIBUTE t[] = {{CKA_CMK_IMPORT_TOKEN, (void *)p->token, p->token_len},
                        {CKA_CMK_MATERIAL_EXPIRES, &expires, sizeof(expires)}};
    CK_OBJECT_HANDLE out = 0;
    CK_RV rv = p11->C_UnwrapKey(s, &mech, key, b->data, (CK_ULONG)b->len, t, 2, &out);
    if (rv == CKR_OK) CHECK(out == key);
    return rv;
}

CK_ULONG state_of(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CK_ULONG state = 99;
    CHECK_RV(get_ulong(s, key, CKA_CMK_KEY_STATE, &state), CKR_OK);
    return state;
}

void set_now_offset(long seconds)
{
    char now[32];
    snprintf(now, sizeof(now), "%ld", (long)time(NULL) + seconds);
    setenv("CMKP11_TEST_NOW", now, 1);
}

long audits(const char *action)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit WHERE action = '%s'", action);
    return inspect_store_count(sql);
}

/* Everything a refused import must leave alone: inspect_snapshot (keys, audit rows, backend
 * objects), the import rows (parameters, claim, fingerprint, material, expiry), the stored
 * public key and the sealed material. */
void import_snapshot(char *out, size_t size)
{
    CHECK(inspect_snapshot(out, size) == 0);
    char path[4096];
    snprintf(path, sizeof(path), "%s/cmk.db", getenv("CMK_WORK"));
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db,
                             "SELECT group_concat(r, ';') FROM (SELECT i.cmk_id || '|' || "
                             "hex(ifnull(i.wrap_id, '')) || '|' || hex(ifnull(i.fingerprint, '')) "
                             "|| '|' || i.importing_pid || '|' || i.has_material || '|' || "
                             "c.material_expires || '|' || hex(ifnull(c.public_key_info, '')) "
                             "|| '|' || hex(ifnull(c.ec_point, '')) || '|' || (SELECT "
                             "group_concat(hex(s.blob)) FROM cmk_sealed s WHERE s.cmk_id = c.id) "
                             "AS r FROM cmk_import i JOIN cmk c ON c.id = i.cmk_id ORDER BY "
                             "i.cmk_id)",
                             -1, &q, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(q) == SQLITE_ROW);
    size_t pos = strlen(out);
    const unsigned char *rows = sqlite3_column_text(q, 0);
    snprintf(out + pos, size - pos, "#import=%s", rows ? (const char *)rows : "");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* r || s -> DER ECDSA-Sig-Value (EC and SM2 signatures), its length. */
size_t raw_sig_to_der(const unsigned char *raw, size_t len, unsigned char der[160])
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(raw, (int)len / 2, NULL),
                   BN_bin2bn(raw + len / 2, (int)len / 2, NULL));
    unsigned char *d = der;
    int n = i2d_ECDSA_SIG(es, &d);
    ECDSA_SIG_free(es);
    return n > 0 ? (size_t)n : 0;
}

const char *client_path(const char *name)
{
    static char paths[8][4096];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 4096, "%s/%s", getenv("CMK_WORK"), name);
    return p;
}

int client_shell(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st != 0) fprintf(stderr, "  command failed (%d): %s\n", st, cmd);
    return st;
}

void client_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, len, f) == len);
    if (f) fclose(f);
}

size_t client_read(const char *path, unsigned char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, size, f) : 0;
    if (f) fclose(f);
    return n;
}
