/* validate.c - alias, description, rotation, pending window and tag rules.
 * The rules are the union of Tencent KMS, Huawei DEW, Alibaba KMS and AWS KMS, so a
 * name that any of them would refuse is refused here too. */
#include "validate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WHY(...) (snprintf(why, VALIDATE_WHY_SIZE, __VA_ARGS__), -1)

static bool alias_char_ok(char c, bool first)
{
    if (isalnum((unsigned char)c) || c == ':' || c == '_' || c == '-') return true;
    return !first && c == '/';
}

static bool has_prefix_nocase(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(s, prefix, n) == 0;
}

int validate_alias(const char *alias, size_t len, char *out, char why[VALIDATE_WHY_SIZE])
{
    if (!alias && len) return WHY("alias has a length but no value");
    /* AWS and Alibaba spell aliases "alias/name"; the name is what we store. */
    if (has_prefix_nocase(alias, len, "alias/")) alias += 6, len -= 6;
    if (len == 0) return WHY("alias must not be empty");
    if (len > 255) return WHY("alias must be at most 255 characters (got %zu)", len);
    for (size_t i = 0; i < len; i++) {
        if (!alias_char_ok(alias[i], i == 0))
            return WHY("alias may hold only letters, digits, ':', '_', '-' and (not first) '/'; "
                       "character %zu is not allowed",
                       i + 1);
        if (alias[i] == '/' && i + 1 < len && alias[i + 1] == '/')
            return WHY("alias must not contain '//'");
    }
    if (alias[len - 1] == '/') return WHY("alias must not end with '/'");
    static const char *const reserved[] = {"aws/", "acs/", "kms-", "cmk/"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (has_prefix_nocase(alias, len, reserved[i]))
            return WHY("alias prefix '%s' is reserved", reserved[i]);
    if (len >= 8 && strncasecmp(alias + len - 8, "/default", 8) == 0)
        return WHY("alias suffix '/default' is reserved");
    memcpy(out, alias, len);
    out[len] = '\0';
    return 0;
}

/* Well-formed UTF-8 as RFC 3629 defines it: no overlong forms, no UTF-16 surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. Each lead byte allows its own range for the
 * second byte; the later ones are any continuation byte. */
long utf8_length(const char *text, size_t len)
{
    long chars = 0;
    for (size_t i = 0; i < len; chars++) {
        unsigned char c = (unsigned char)text[i];
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
        if (c < 0x80) n = 1;
        else if (c >= 0xC2 && c <= 0xDF) n = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0) lo = 0xA0;      /* else overlong */
            else if (c == 0xED) hi = 0x9F; /* else a surrogate */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0) lo = 0x90;      /* else overlong */
            else if (c == 0xF4) hi = 0x8F; /* else above U+10FFFF */
        } else
            return -1; /* a continuation byte, C0/C1 (overlong) or F5..FF */
        if (i + n > len) return -1;
        if (n > 1) {
            unsigned char second = (unsigned char)text[i + 1];
            if (second < lo || second > hi) return -1;
            for (size_t k = 2; k < n; k++)
                if (((unsigned char)text[i + k] >> 6) != 2) return -1;
        }
        i += n;
    }
    return chars;
}

static int check_controls(const char *text, size_t len, bool allow_whitespace, const char *field,
                          char why[VALIDATE_WHY_SIZE])
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        /* C0 and DEL; and C1 (U+0080..U+009F), which UTF-8 writes as C2 80..C2 9F. */
        bool c1 = c == 0xc2 && i + 1 < len && (unsigned char)text[i + 1] >= 0x80 &&
                  (unsigned char)text[i + 1] <= 0x9f;
        if (c == '\0' ||
            (c < 0x20 && !(allow_whitespace && (c == '\t' || c == '\n' || c == '\r'))) ||
            c == 0x7f || c1)
            return WHY("%s must not contain control characters (byte %zu)", field, i + 1);
    }
    return 0;
}

int validate_description(const char *text, size_t len, char why[VALIDATE_WHY_SIZE])
{
    long chars = utf8_length(text, len);
    if (chars < 0) return WHY("description must be valid UTF-8");
    if (chars > DESCRIPTION_MAX_CHARS)
        return WHY("description must be at most %d characters (got %ld)", DESCRIPTION_MAX_CHARS,
                   chars);
    return check_controls(text, len, true, "description", why);
}

int validate_rotation_seconds(int64_t seconds, char why[VALIDATE_WHY_SIZE])
{
    if (seconds < ROTATION_MIN_SECONDS || seconds > ROTATION_MAX_SECONDS)
        return WHY("rotation interval must be 7 to 2560 days (604800..221184000 s), got %lld s",
                   (long long)seconds);
    return 0;
}

int validate_rotation_period(const char *text, size_t len, int64_t *seconds,
                             char why[VALIDATE_WHY_SIZE])
{
    char buf[32];
    if (len == 0 || len >= sizeof(buf))
        return WHY("rotation period must look like 365d, 8760h, 525600m, 31536000s or 365");
    memcpy(buf, text, len);
    buf[len] = '\0';
    int64_t unit = 86400;
    char last = buf[len - 1];
    if (!isdigit((unsigned char)last)) {
        switch (last) {
        case 'd': unit = 86400; break;
        case 'h': unit = 3600; break;
        case 'm': unit = 60; break;
        case 's': unit = 1; break;
        default: return WHY("rotation period unit must be d, h, m or s");
        }
        buf[--len] = '\0';
    }
    if (len == 0 || len > 12) return WHY("rotation period must be a whole number with a unit");
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)buf[i]))
            return WHY("rotation period must be a whole number with a unit");
    *seconds = strtoll(buf, NULL, 10) * unit;
    return validate_rotation_seconds(*seconds, why);
}

int validate_pending_window(unsigned long days, char why[VALIDATE_WHY_SIZE])
{
    if (days < PENDING_WINDOW_MIN_DAYS || days > PENDING_WINDOW_MAX_DAYS)
        return WHY("pending window must be 7 to 1096 days, got %lu", days);
    return 0;
}

static int tag_compare(const void *a, const void *b)
{
    return strcmp(((const struct cmk_tag *)a)->key, ((const struct cmk_tag *)b)->key);
}

static int check_tag(const char *key, size_t key_len, const char *value, size_t value_len,
                     char why[VALIDATE_WHY_SIZE])
{
    long kc = utf8_length(key, key_len), vc = utf8_length(value, value_len);
    if (kc < 1 || kc > 128) return WHY("tag key must be 1 to 128 UTF-8 characters");
    if (vc < 0 || vc > 256) return WHY("tag value must be 0 to 256 UTF-8 characters");
    if (check_controls(key, key_len, false, "tag key", why) ||
        check_controls(value, value_len, false, "tag value", why))
        return -1;
    static const char *const reserved[] = {"aws:", "acs:", "aliyun", "cmk:"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (has_prefix_nocase(key, key_len, reserved[i]))
            return WHY("tag key prefix '%s' is reserved", reserved[i]);
    return 0;
}

int validate_tags(const char *text, size_t len, struct cmk_tag **tags, size_t *count,
                  char why[VALIDATE_WHY_SIZE])
{
    *tags = NULL;
    *count = 0;
    struct cmk_tag *list = NULL;
    size_t n = 0;
    size_t pos = 0;
    int rv = 0;
    while (pos < len && rv == 0) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - line) : len - pos;
        pos += line_len + (nl ? 1 : 0);
        if (line_len == 0) continue; /* tolerate a trailing LF */
        const char *eq = memchr(line, '=', line_len);
        size_t key_len = eq ? (size_t)(eq - line) : line_len;
        const char *value = eq ? eq + 1 : "";
        size_t value_len = eq ? line_len - key_len - 1 : 0;
        if (n == TAGS_MAX) {
            rv = WHY("at most %d tags are allowed", TAGS_MAX);
            break;
        }
        if (check_tag(line, key_len, value, value_len, why)) {
            rv = -1;
            break;
        }
        struct cmk_tag *grown = realloc(list, (n + 1) * sizeof(*grown));
        if (!grown) {
            rv = WHY("out of memory");
            break;
        }
        list = grown;
        list[n].key = strndup(line, key_len);
        list[n].value = strndup(value, value_len);
        n++;
        if (!list[n - 1].key || !list[n - 1].value) rv = WHY("out of memory");
    }
    if (rv == 0 && n > 1) {
        qsort(list, n, sizeof(*list), tag_compare);
        for (size_t i = 1; i < n; i++)
            if (strcmp(list[i - 1].key, list[i].key) == 0) {
                rv = WHY("tag key '%.64s' is duplicated", list[i].key);
                break;
            }
    }
    if (rv != 0) {
        cmk_tags_free(list, n);
        return -1;
    }
    *tags = list;
    *count = n;
    return 0;
}

size_t tags_format(const struct cmk_tag *tags, size_t count, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        size_t k = strlen(tags[i].key), v = strlen(tags[i].value);
        size_t need = k + 1 + v + (i + 1 < count ? 1 : 0);
        if (out && n + need <= size) {
            memcpy(out + n, tags[i].key, k);
            out[n + k] = '=';
            memcpy(out + n + k + 1, tags[i].value, v);
            if (i + 1 < count) out[n + need - 1] = '\n';
        }
        n += need;
    }
    return n;
}
