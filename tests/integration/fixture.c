/* fixture.c - helpers shared by the integration tests. */
#include "fixture.h"

#include <fcntl.h>
#include <unistd.h>

CK_FUNCTION_LIST_PTR p11;

static CK_BBOOL yes = CK_TRUE;
static const unsigned char p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};

CK_C_INITIALIZE_ARGS *fixture_init_args;

const char *fixture_so_pin(void)
{
    return getenv("CMK_SO_PIN") ? getenv("CMK_SO_PIN") : "5678";
}

CK_UTF8CHAR *fixture_token_label(const char *text)
{
    static CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    memcpy(label, text, strlen(text) < sizeof(label) ? strlen(text) : sizeof(label));
    return label;
}

CK_SESSION_HANDLE fixture_open(void)
{
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CHECK_RV(p11->C_Initialize(fixture_init_args ? fixture_init_args : &args), CKR_OK);
    CK_SESSION_HANDLE s = 0;
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    const char *pin = getenv("CMK_PIN") ? getenv("CMK_PIN") : "1234";
    CHECK_RV(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    return s;
}

CK_RV fixture_init_capturing(char *out, size_t size)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/stderr.log", getenv("CMK_WORK"));
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    CK_RV rv = p11->C_Initialize(NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, size - 1, f) : 0;
    out[n] = '\0';
    if (f) fclose(f);
    if (rv == CKR_OK) p11->C_Finalize(NULL);
    return rv;
}

void fixture_close(CK_SESSION_HANDLE s)
{
    p11->C_CloseSession(s);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
}

/* The length of the key a "key = value" line starts with. */
static size_t key_length(const char *line)
{
    size_t n = strcspn(line, "=");
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    return n;
}

void fixture_set_conf(const char *section, const char *line)
{
    /* The module refuses a key given twice, so a key the file already sets in the
     * section has its line replaced; any other is appended in a section of its own. */
    char header[64];
    snprintf(header, sizeof(header), "[%s]", section);
    const char *path = getenv("CMKP11_CONF");
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char text[65536];
    size_t used = 0, key_len = key_length(line);
    bool in_section = false, replaced = false;
    char have[4096];
    while (fgets(have, sizeof(have), f)) {
        const char *start = have + strspn(have, " \t");
        if (*start == '[') in_section = !strncmp(start, header, strlen(header));
        bool same_key = in_section && *start != '[' && key_length(start) == key_len &&
                        !strncmp(start, line, key_len) && start[strcspn(start, "=")] == '=';
        int n = snprintf(text + used, sizeof(text) - used, "%s%s", same_key ? line : have,
                         same_key ? "\n" : "");
        CHECK(n >= 0 && (size_t)n < sizeof(text) - used);
        if (n < 0 || (size_t)n >= sizeof(text) - used) {
            fclose(f);
            return;
        }
        used += (size_t)n;
        replaced |= same_key;
    }
    fclose(f);
    if (!replaced) snprintf(text + used, sizeof(text) - used, "\n%s\n%s\n", header, line);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

void fixture_append_policy(const char *line) { fixture_set_conf("policy", line); }

static void pause_path(const char *point, const char *suffix, char *out, size_t size)
{
    snprintf(out, size, "%s/%s.%s", getenv("CMK_WORK"), point, suffix);
}

void pause_arm(const char *point)
{
    char path[4096];
    pause_path(point, "reached", path, sizeof(path));
    unlink(path);
    pause_path(point, "go", path, sizeof(path));
    unlink(path);
    setenv("CMKP11_TEST_PAUSE_DIR", getenv("CMK_WORK"), 1);
    setenv("CMKP11_TEST_PAUSE_AT", point, 1);
}

bool pause_wait_reached(const char *point)
{
    char path[4096];
    pause_path(point, "reached", path, sizeof(path));
    for (int ms = 0; ms < 30000; ms++) {
        if (access(path, F_OK) == 0) return true;
        usleep(1000);
    }
    fprintf(stderr, "  pause point %s was never reached\n", point);
    return false;
}

void pause_release(const char *point)
{
    char path[4096];
    pause_path(point, "go", path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    unsetenv("CMKP11_TEST_PAUSE_AT");
}

static CK_ULONG merge(CK_ATTRIBUTE *dst, CK_ULONG n, const CK_ATTRIBUTE *extra, CK_ULONG k)
{
    for (CK_ULONG i = 0; i < k; i++) {
        CK_ULONG j;
        for (j = 0; j < n && dst[j].type != extra[i].type; j++) {
        }
        dst[j] = extra[i];
        if (j == n) n++;
    }
    return n;
}

CK_RV make_aes(CK_SESSION_HANDLE s, const char *alias, const CK_ATTRIBUTE *extra, CK_ULONG n,
               CK_OBJECT_HANDLE *key)
{
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_ATTRIBUTE t[32] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_LABEL, (void *)alias, alias ? strlen(alias) : 0},
    };
    CK_ULONG count = merge(t, alias ? 3 : 2, extra, n);
    return p11->C_GenerateKey(s, &mech, t, count, key);
}

CK_RV make_aes_alias(CK_SESSION_HANDLE s, const char *label, const char *alias,
                     CK_OBJECT_HANDLE *key)
{
    CK_ATTRIBUTE a = {CKA_CMK_ALIAS, (void *)alias, strlen(alias)};
    return make_aes(s, label, &a, 1, key);
}

CK_ULONG find_by_alias(CK_SESSION_HANDLE s, const char *alias, CK_OBJECT_HANDLE *first)
{
    CK_ATTRIBUTE t[] = {{CKA_CMK_ALIAS, (void *)alias, strlen(alias)}};
    return find_count(s, t, 1, first);
}

CK_RV make_ec(CK_SESSION_HANDLE s, const char *alias, const CK_ATTRIBUTE *extra, CK_ULONG n,
              CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[4] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
        {CKA_LABEL, (void *)alias, alias ? strlen(alias) : 0},
    };
    CK_ATTRIBUTE vt[32] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)alias, alias ? strlen(alias) : 0},
    };
    CK_ULONG vcount = merge(vt, alias ? 2 : 1, extra, n);
    return p11->C_GenerateKeyPair(s, &mech, pt, alias ? 3 : 2, vt, vcount, pub, priv);
}

CK_ULONG find_count(CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *first)
{
    CK_OBJECT_HANDLE found[64];
    CK_ULONG count = 0;
    CHECK_RV(p11->C_FindObjectsInit(s, tmpl, n), CKR_OK);
    CHECK_RV(p11->C_FindObjects(s, found, 64, &count), CKR_OK);
    CHECK_RV(p11->C_FindObjectsFinal(s), CKR_OK);
    if (first) *first = count ? found[0] : 0;
    return count;
}

CK_ULONG find_by_label(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_CLASS cls,
                       CK_OBJECT_HANDLE *first)
{
    CK_ATTRIBUTE t[] = {
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_CLASS, &cls, sizeof(cls)},
    };
    return find_count(s, t, 2, first);
}

CK_RV get_ulong(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, CK_ULONG *out)
{
    CK_ATTRIBUTE a = {t, out, sizeof(*out)};
    return p11->C_GetAttributeValue(s, h, &a, 1);
}

/* Every standard attribute a client may ask of a key's objects. */
static const CK_ATTRIBUTE_TYPE key_attrs[] = {
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_LOCAL,
    CKA_DERIVE,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_NEVER_EXTRACTABLE,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN_RECOVER,
    CKA_VERIFY_RECOVER,
    CKA_KEY_GEN_MECHANISM,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_MODULUS,
    CKA_PUBLIC_EXPONENT,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_KEY_INFO,
    CKA_VALUE,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_ALWAYS_AUTHENTICATE,
};

/* The attributes whose value is the key's own. */
static bool of_the_material(CK_ATTRIBUTE_TYPE t)
{
    return t == CKA_EC_POINT || t == CKA_MODULUS || t == CKA_PUBLIC_EXPONENT ||
           t == CKA_PUBLIC_KEY_INFO;
}

void fixture_same_answers(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE soft, CK_OBJECT_HANDLE hsm,
                          bool same_material)
{
    CK_ULONG cls = 0;
    CHECK_RV(get_ulong(s, soft, CKA_CLASS, &cls), CKR_OK);
    for (size_t i = 0; i < sizeof(key_attrs) / sizeof(key_attrs[0]); i++) {
        if (cls == CKO_SECRET_KEY && (key_attrs[i] == CKA_WRAP || key_attrs[i] == CKA_UNWRAP))
            continue;
        unsigned char a[1100], b[1100];
        CK_ATTRIBUTE x = {key_attrs[i], a, sizeof(a)}, y = {key_attrs[i], b, sizeof(b)};
        CK_RV rx = p11->C_GetAttributeValue(s, soft, &x, 1);
        CK_RV ry = p11->C_GetAttributeValue(s, hsm, &y, 1);
        bool compare_value = rx == CKR_OK && (same_material || !of_the_material(key_attrs[i]));
        bool same = rx == ry && (!compare_value ||
                                 (x.ulValueLen == y.ulValueLen && memcmp(a, b, x.ulValueLen) == 0));
        if (!same)
            fprintf(stderr, "  attribute 0x%lx: 0x%lx (%lu bytes) vs HSM 0x%lx (%lu bytes)\n",
                    key_attrs[i], rx, x.ulValueLen, ry, y.ulValueLen);
        CHECK(same);
    }
}

CK_RV get_text(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, char *buf, size_t size)
{
    CK_ATTRIBUTE a = {t, buf, size - 1};
    CK_RV rv = p11->C_GetAttributeValue(s, h, &a, 1);
    buf[rv == CKR_OK ? a.ulValueLen : 0] = '\0';
    return rv;
}

CK_RV set_ulong(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, CK_ULONG v)
{
    CK_ATTRIBUTE a = {t, &v, sizeof(v)};
    return p11->C_SetAttributeValue(s, h, &a, 1);
}

CK_RV set_text(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, const char *v)
{
    CK_ATTRIBUTE a = {t, (void *)v, strlen(v)};
    return p11->C_SetAttributeValue(s, h, &a, 1);
}

CK_RV sign_verify_ec(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char digest[32] = {1, 2, 3}, sig[128];
    CK_ULONG sig_len = sizeof(sig);
    CK_RV rv = p11->C_SignInit(s, &mech, priv);
    if (rv == CKR_OK) rv = p11->C_Sign(s, digest, sizeof(digest), sig, &sig_len);
    if (rv == CKR_OK) rv = p11->C_VerifyInit(s, &mech, pub);
    if (rv == CKR_OK) rv = p11->C_Verify(s, digest, sizeof(digest), sig, sig_len);
    return rv;
}

CK_RV aes_gcm_roundtrip(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    unsigned char iv[12] = {9}, msg[] = "attack at dawn", ct[64], pt[64];
    CK_GCM_PARAMS gcm = {iv, sizeof(iv), 96, NULL, 0, 128};
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    CK_ULONG ct_len = sizeof(ct), pt_len = sizeof(pt);
    CK_RV rv = p11->C_EncryptInit(s, &mech, key);
    if (rv == CKR_OK) rv = p11->C_Encrypt(s, msg, sizeof(msg), ct, &ct_len);
    if (rv == CKR_OK) rv = p11->C_DecryptInit(s, &mech, key);
    if (rv == CKR_OK) rv = p11->C_Decrypt(s, ct, ct_len, pt, &pt_len);
    if (rv == CKR_OK && (pt_len != sizeof(msg) || memcmp(pt, msg, pt_len) != 0))
        rv = CKR_GENERAL_ERROR;
    return rv;
}

CK_RV envelope_call(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, bool encrypt,
                    const unsigned char *in, CK_ULONG in_len, unsigned char *out,
                    CK_ULONG *out_len)
{
    CK_MECHANISM mech = {CKM_CMK_ENVELOPE, NULL, 0};
    CK_RV rv = encrypt ? p11->C_EncryptInit(s, &mech, key) : p11->C_DecryptInit(s, &mech, key);
    if (rv != CKR_OK) return rv;
    return encrypt ? p11->C_Encrypt(s, (CK_BYTE_PTR)in, in_len, out, out_len)
                   : p11->C_Decrypt(s, (CK_BYTE_PTR)in, in_len, out, out_len);
}

CK_RV encrypt_block(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    unsigned char in[16] = {1}, out[16];
    CK_ULONG out_len = sizeof(out);
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_RV rv = p11->C_EncryptInit(s, &ecb, key);
    return rv == CKR_OK ? p11->C_Encrypt(s, in, sizeof(in), out, &out_len) : rv;
}

CK_SESSION_HANDLE fixture_session(CK_FLAGS flags)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CHECK_RV(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK); /* the CMK token's is first */
    CK_SESSION_HANDLE s = 0;
    CHECK_RV(p11->C_OpenSession(slots[0], CKF_SERIAL_SESSION | flags, NULL, NULL, &s), CKR_OK);
    return s;
}
