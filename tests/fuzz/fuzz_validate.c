/* fuzz_validate.c - libFuzzer harness for the CreateKey field rules (src/validate.c).
 *
 * Input: byte 0 selects the rule, the rest is the field's text.
 *   sel % 7 == 0  validate_alias        (checked against the README's documented rules)
 *              1  validate_description
 *              2  validate_rotation_period
 *              3  validate_pending_window (number parsed from the text)
 *              4  validate_tags (+ tags_format and a second validate_tags: same tags)
 *              5  utf8_length
 *              6  all of the above on the same text
 * Every accepted value is re-checked here against the documented rule; a mismatch
 * calls abort() so libFuzzer records the input. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"
#include "log.h"
#include "validate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_use_stream(fopen("/dev/null", "w"));
    return 0;
}

/* A fresh heap copy of exactly len bytes, so ASan sees any read past the field. */
static char *dup_exact(const uint8_t *data, size_t len)
{
    char *p = malloc(len ? len : 1);
    if (!p) abort();
    if (len) memcpy(p, data, len);
    return p;
}

/* ---- alias: ^[A-Za-z0-9:_-][A-Za-z0-9:/_-]{0,254}$, no '//', no trailing '/',
 * reserved prefixes aws/ acs/ kms- cmk/ and suffix /default (any case), after an
 * optional "alias/" prefix is stripped (README "Aliases"). */
static int doc_alias_char(unsigned char c, int first)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' ||
        c == '_' || c == '-')
        return 1;
    return !first && c == '/';
}

static int prefix_nocase(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(s, prefix, n) == 0;
}

/* The documented rule for a name (prefix already stripped). */
static int doc_alias_ok(const char *s, size_t len)
{
    if (len < 1 || len > 255) return 0;
    for (size_t i = 0; i < len; i++) {
        if (!doc_alias_char((unsigned char)s[i], i == 0)) return 0;
        if (s[i] == '/' && i + 1 < len && s[i + 1] == '/') return 0;
    }
    if (s[len - 1] == '/') return 0;
    static const char *const reserved[] = {"aws/", "acs/", "kms-", "cmk/"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (prefix_nocase(s, len, reserved[i])) return 0;
    if (len >= 8 && strncasecmp(s + len - 8, "/default", 8) == 0) return 0;
    return 1;
}

static void check_alias(const uint8_t *data, size_t len)
{
    char *text = dup_exact(data, len);
    char *out = malloc(len + 1);
    char why[VALIDATE_WHY_SIZE];
    if (!out) abort();
    memset(out, 0xAA, len + 1);
    why[0] = '\0';
    int rv = validate_alias(text, len, out, why);

    const char *name = text;
    size_t name_len = len;
    if (prefix_nocase(name, name_len, "alias/")) name += 6, name_len -= 6;
    int expected = doc_alias_ok(name, name_len);

    if (rv == 0) {
        /* Accepted: the canonical form is the name, NUL-terminated, and obeys the rule. */
        CHECK(memchr(out, '\0', len + 1) != NULL);
        size_t out_len = strlen(out);
        CHECK(out_len == name_len && memcmp(out, name, name_len) == 0);
        CHECK(doc_alias_ok(out, out_len));
    } else {
        CHECK(rv == -1);
        CHECK(memchr(why, '\0', sizeof(why)) != NULL && why[0] != '\0');
    }
    /* The converse: a name the README allows must not be refused. */
    CHECK((rv == 0) == expected);
    free(out);
    free(text);
}

/* ---- description: valid UTF-8, at most 8192 characters, no control characters but
 * TAB, LF and CR. */
static void check_description(const uint8_t *data, size_t len)
{
    char *text = dup_exact(data, len);
    char why[VALIDATE_WHY_SIZE];
    int rv = validate_description(text, len, why);
    if (rv == 0) {
        long chars = utf8_length(text, len);
        CHECK(chars >= 0 && chars <= DESCRIPTION_MAX_CHARS);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)text[i];
            CHECK(c != 0 && c != 0x7f && (c >= 0x20 || c == '\t' || c == '\n' || c == '\r'));
        }
    } else {
        CHECK(rv == -1 && why[0] != '\0');
    }
    free(text);
}

/* ---- rotation period: ^[0-9]{1,12}[dhms]?$ and 7..2560 days. */
static void check_rotation(const uint8_t *data, size_t len)
{
    char *text = dup_exact(data, len);
    char why[VALIDATE_WHY_SIZE];
    int64_t seconds = -12345;
    int rv = validate_rotation_period(text, len, &seconds, why);
    if (rv == 0) {
        CHECK(seconds >= ROTATION_MIN_SECONDS && seconds <= ROTATION_MAX_SECONDS);
        size_t digits = len;
        int64_t unit = 86400;
        switch (text[len - 1]) {
        case 'd': unit = 86400, digits--; break;
        case 'h': unit = 3600, digits--; break;
        case 'm': unit = 60, digits--; break;
        case 's': unit = 1, digits--; break;
        default: break;
        }
        CHECK(digits >= 1 && digits <= 12);
        int64_t n = 0;
        for (size_t i = 0; i < digits; i++) {
            CHECK(isdigit((unsigned char)text[i]));
            n = n * 10 + (text[i] - '0');
        }
        CHECK(n * unit == seconds);
        CHECK(validate_rotation_seconds(seconds, why) == 0);
    } else {
        CHECK(rv == -1 && why[0] != '\0');
    }
    free(text);
}

/* ---- pending window: 7..1096 days; the number comes from the text (decimal), and
 * separately from the raw bytes, to reach values the text cannot spell. */
static void check_pending(const uint8_t *data, size_t len)
{
    char why[VALIDATE_WHY_SIZE];
    char buf[32];
    size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
    memcpy(buf, data, n);
    buf[n] = '\0';
    unsigned long days = strtoul(buf, NULL, 10);
    int rv = validate_pending_window(days, why);
    CHECK((rv == 0) == (days >= PENDING_WINDOW_MIN_DAYS && days <= PENDING_WINDOW_MAX_DAYS));

    unsigned long raw = 0;
    memcpy(&raw, data, len < sizeof(raw) ? len : sizeof(raw));
    rv = validate_pending_window(raw, why);
    CHECK((rv == 0) == (raw >= PENDING_WINDOW_MIN_DAYS && raw <= PENDING_WINDOW_MAX_DAYS));
}

/* ---- tags: "k=v" lines; checked, sorted, unique; format + parse gives them back. */
static void check_tag_list(const struct cmk_tag *tags, size_t count)
{
    CHECK(count <= TAGS_MAX);
    for (size_t i = 0; i < count; i++) {
        const char *k = tags[i].key, *v = tags[i].value;
        CHECK(k && v);
        size_t kl = strlen(k), vl = strlen(v);
        long kc = utf8_length(k, kl), vc = utf8_length(v, vl);
        CHECK(kc >= 1 && kc <= 128);
        CHECK(vc >= 0 && vc <= 256);
        CHECK(strchr(k, '=') == NULL);
        for (size_t j = 0; j < kl; j++)
            CHECK((unsigned char)k[j] >= 0x20 && (unsigned char)k[j] != 0x7f);
        for (size_t j = 0; j < vl; j++)
            CHECK((unsigned char)v[j] >= 0x20 && (unsigned char)v[j] != 0x7f);
        CHECK(!prefix_nocase(k, kl, "aws:") && !prefix_nocase(k, kl, "acs:") &&
              !prefix_nocase(k, kl, "aliyun") && !prefix_nocase(k, kl, "cmk:"));
        if (i > 0) CHECK(strcmp(tags[i - 1].key, k) < 0); /* sorted, unique */
    }
}

static void check_tags(const uint8_t *data, size_t len)
{
    char *text = dup_exact(data, len);
    char why[VALIDATE_WHY_SIZE];
    struct cmk_tag *tags = (struct cmk_tag *)1;
    size_t count = 12345;
    int rv = validate_tags(text, len, &tags, &count, why);
    if (rv != 0) {
        CHECK(rv == -1 && why[0] != '\0');
        CHECK(tags == NULL && count == 0);
        free(text);
        return;
    }
    CHECK(count == 0 || tags != NULL);
    check_tag_list(tags, count);

    /* Format: the size query and the real write agree, and the text parses back. */
    size_t need = tags_format(tags, count, NULL, 0);
    char *out = malloc(need ? need : 1);
    if (!out) abort();
    size_t wrote = tags_format(tags, count, out, need);
    CHECK(wrote == need);
    CHECK(memchr(out, '\0', need) == NULL);

    struct cmk_tag *again = NULL;
    size_t count2 = 0;
    rv = validate_tags(out, need, &again, &count2, why);
    if (rv != 0) fprintf(stderr, "fuzz_validate: formatted tags refused: %s\n", why);
    CHECK(rv == 0);
    CHECK(count2 == count);
    for (size_t i = 0; i < count; i++) {
        CHECK(strcmp(tags[i].key, again[i].key) == 0);
        CHECK(strcmp(tags[i].value, again[i].value) == 0);
    }
    /* Formatting the re-parsed tags gives the same bytes (the text is canonical). */
    char *out2 = malloc(need ? need : 1);
    if (!out2) abort();
    CHECK(tags_format(again, count2, out2, need) == need);
    CHECK(memcmp(out, out2, need) == 0);

    /* A short buffer must not be written past its end. */
    if (need > 1) {
        char *small = malloc(need - 1);
        if (!small) abort();
        CHECK(tags_format(tags, count, small, need - 1) == need);
        free(small);
    }
    free(out2);
    cmk_tags_free(again, count2);
    free(out);
    cmk_tags_free(tags, count);
    free(text);
}

/* The oracle decodes each sequence to its code point and checks it the other way round
 * from the module's table: the shortest form, not a surrogate, not above U+10FFFF. */
static long reference_utf8_length(const uint8_t *t, size_t len)
{
    long chars = 0;
    for (size_t i = 0; i < len; chars++) {
        uint32_t cp;
        size_t n;
        if (t[i] < 0x80) cp = t[i], n = 1;
        else if ((t[i] & 0xE0) == 0xC0) cp = t[i] & 0x1F, n = 2;
        else if ((t[i] & 0xF0) == 0xE0) cp = t[i] & 0x0F, n = 3;
        else if ((t[i] & 0xF8) == 0xF0) cp = t[i] & 0x07, n = 4;
        else return -1;
        if (i + n > len) return -1;
        for (size_t k = 1; k < n; k++) {
            if ((t[i + k] & 0xC0) != 0x80) return -1;
            cp = (cp << 6) | (t[i + k] & 0x3F);
        }
        static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (n > 1 && cp < least[n]) return -1;
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return -1;
        i += n;
    }
    return chars;
}

/* ---- utf8_length: -1 or the number of characters, as the reference decoder says. */
static void check_utf8(const uint8_t *data, size_t len)
{
    char *text = dup_exact(data, len);
    long chars = utf8_length(text, len);
    CHECK(chars == reference_utf8_length(data, len));
    CHECK(chars >= -1 && (chars < 0 || (size_t)chars <= len));
    if (chars >= 0) {
        long starts = 0;
        for (size_t i = 0; i < len; i++)
            if (((unsigned char)text[i] & 0xC0) != 0x80) starts++;
        CHECK(starts == chars);
    }
    int ascii = 1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] >= 0x80) ascii = 0;
    if (ascii) CHECK(chars == (long)len);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned sel = data[0] % 7;
    const uint8_t *text = data + 1;
    size_t len = size - 1;
    if (sel == 0 || sel == 6) check_alias(text, len);
    if (sel == 1 || sel == 6) check_description(text, len);
    if (sel == 2 || sel == 6) check_rotation(text, len);
    if (sel == 3 || sel == 6) check_pending(text, len);
    if (sel == 4 || sel == 6) check_tags(text, len);
    if (sel == 5 || sel == 6) check_utf8(text, len);
    return 0;
}
