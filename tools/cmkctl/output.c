/* output.c - one place turns every response into text: JSON by default, or a table
 * derived from the same JSON, so both formats always carry the same facts. */
#define _GNU_SOURCE /* timegm, strptime */
#include "output.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>
#include <time.h>

#include "ctl.h"
#include "modlog.h"
#include "progress.h"

void out_uuid4(char out[37])
{
    uuid_t b;
    uuid_generate_random(b);
    uuid_unparse_lower(b, out);
}

void out_rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm)) out[0] = '\0';
}

json_object *out_time(int64_t t)
{
    char buf[32];
    out_rfc3339(t, buf);
    return json_object_new_string(buf);
}

void out_add_str(json_object *o, const char *key, const char *value)
{
    if (value) json_object_object_add(o, key, json_object_new_string(value));
}

/* ---- table rendering ---- */

struct rows {
    char **left, **right;
    size_t n;
};

static char *scalar_text(json_object *v)
{
    if (!v) return strdup("");
    switch (json_object_get_type(v)) {
    case json_type_string: return strdup(json_object_get_string(v));
    case json_type_array: {
        /* Lists of pairs (tags) read best as k=v; other lists as comma-separated values. */
        size_t n = json_object_array_length(v), cap = 1, len = 0;
        char *s = calloc(1, cap);
        for (size_t i = 0; s && i < n; i++) {
            json_object *e = json_object_array_get_idx(v, i);
            char *part;
            if (json_object_is_type(e, json_type_object) && json_object_object_length(e) == 2) {
                const char *kv[2] = {"", ""};
                int k = 0;
                json_object_object_foreach(e, key, val)
                {
                    (void)key;
                    kv[k++] = json_object_get_string(val);
                }
                size_t need = strlen(kv[0]) + strlen(kv[1]) + 2;
                part = malloc(need);
                if (part) snprintf(part, need, "%s=%s", kv[0], kv[1]);
            } else {
                part = scalar_text(e);
            }
            if (!part) break;
            size_t need = len + strlen(part) + 3;
            char *grown = realloc(s, need);
            if (grown) {
                s = grown;
                len += (size_t)snprintf(s + len, need - len, "%s%s", i ? ", " : "", part);
            }
            free(part);
        }
        return s;
    }
    default: return strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    }
}

static void rows_add(struct rows *r, const char *left, char *right)
{
    char **l = realloc(r->left, (r->n + 1) * sizeof(*l));
    if (l) r->left = l;
    char **rr = realloc(r->right, (r->n + 1) * sizeof(*rr));
    if (rr) r->right = rr;
    if (!l || !rr) {
        free(right);
        return;
    }
    r->left[r->n] = strdup(left);
    r->right[r->n++] = right;
}

/* Nested objects become dotted names: Pkcs11.Uri. */
static void rows_from_object(struct rows *r, json_object *o, const char *prefix)
{
    json_object_object_foreach(o, key, val)
    {
        if (!strcmp(key, "RequestId")) continue;
        char name[128];
        snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", key);
        if (json_object_is_type(val, json_type_object))
            rows_from_object(r, val, name);
        else
            rows_add(r, name, scalar_text(val));
    }
}

static void rows_print(FILE *out, struct rows *r)
{
    size_t width = 0;
    for (size_t i = 0; i < r->n; i++)
        if (strlen(r->left[i]) > width) width = strlen(r->left[i]);
    for (size_t i = 0; i < r->n; i++) {
        fprintf(out, "%-*s  %s\n", (int)width, r->left[i], r->right[i]);
        free(r->left[i]);
        free(r->right[i]);
    }
    free(r->left);
    free(r->right);
    memset(r, 0, sizeof(*r));
}

static int is_list_of_objects(json_object *v)
{
    return json_object_is_type(v, json_type_array) &&
           (json_object_array_length(v) == 0 ||
            json_object_is_type(json_object_array_get_idx(v, 0), json_type_object));
}

/* A list of records (Keys, Aliases, Events) as columns, headers from the records' fields. */
static void grid_print(FILE *out, const char *title, json_object *list)
{
    size_t n = json_object_array_length(list);
    fprintf(out, "%s (%zu)\n", title, n);
    if (n == 0) return;
    const char *cols[32];
    size_t ncols = 0;
    for (size_t i = 0; i < n; i++) {
        json_object_object_foreach(json_object_array_get_idx(list, i), key, val)
        {
            (void)val;
            size_t c = 0;
            while (c < ncols && strcmp(cols[c], key))
                c++;
            if (c == ncols && ncols < 32) cols[ncols++] = key;
        }
    }
    char **cells = calloc(n * ncols, sizeof(*cells));
    size_t width[32];
    if (!cells) return;
    for (size_t c = 0; c < ncols; c++)
        width[c] = strlen(cols[c]);
    for (size_t i = 0; i < n; i++) {
        json_object *rec = json_object_array_get_idx(list, i);
        for (size_t c = 0; c < ncols; c++) {
            json_object *v = NULL;
            json_object_object_get_ex(rec, cols[c], &v);
            cells[i * ncols + c] = scalar_text(v);
            if (cells[i * ncols + c] && strlen(cells[i * ncols + c]) > width[c])
                width[c] = strlen(cells[i * ncols + c]);
        }
    }
    for (size_t c = 0; c < ncols; c++) {
        if (c + 1 < ncols)
            fprintf(out, "%-*s  ", (int)width[c], cols[c]);
        else
            fprintf(out, "%s\n", cols[c]);
    }
    for (size_t c = 0; c < ncols; c++) {
        for (size_t k = 0; k < width[c]; k++)
            fputc('-', out);
        fputs(c + 1 < ncols ? "  " : "\n", out);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < ncols; c++) {
            const char *s = cells[i * ncols + c] ? cells[i * ncols + c] : "";
            if (c + 1 < ncols)
                fprintf(out, "%-*s  ", (int)width[c], s);
            else
                fprintf(out, "%s\n", s);
        }
    for (size_t i = 0; i < n * ncols; i++)
        free(cells[i]);
    free(cells);
}

static void table_print(FILE *out, json_object *resp)
{
    struct rows r = {0};
    json_object_object_foreach(resp, key, val)
    {
        if (!strcmp(key, "RequestId")) continue;
        if (json_object_is_type(val, json_type_object)) {
            rows_from_object(&r, val, "");
        } else if (is_list_of_objects(val) && strcmp(key, "Tags")) {
            rows_print(out, &r);
            grid_print(out, key, val);
        } else {
            rows_add(&r, key, scalar_text(val));
        }
    }
    rows_print(out, &r);
}

int out_emit(struct ctl *ctl, json_object *resp, int rc)
{
    progress_clear(); /* the answer starts on a clean terminal line */
    if (!resp) return rc ? rc : ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    json_object_object_add(resp, "RequestId", json_object_new_string(ctl->request_id));
    if (ctl->output == OUTPUT_TABLE) {
        table_print(stdout, resp);
    } else {
        fputs(json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_SPACED |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE),
              stdout);
        fputc('\n', stdout);
    }
    fflush(stdout);
    json_object_put(resp);
    return rc;
}

void out_error(struct ctl *ctl)
{
    const char *code = err_code_name(ctl->err.code);
    if (ctl->output == OUTPUT_TABLE) {
        /* A message echoes what the user gave (--key-id, say): control characters are
         * shown as \xNN, never sent to the terminal as escape sequences. */
        fprintf(ctl_stderr, "cmkctl: %s: ", code);
        for (const unsigned char *c = (const unsigned char *)ctl->err.message; *c; c++)
            if (*c < 0x20 || *c == 0x7f)
                fprintf(ctl_stderr, "\\x%02x", *c);
            else
                fputc(*c, ctl_stderr);
        fputc('\n', ctl_stderr);
        return;
    }
    json_object *err = json_object_new_object();
    json_object_object_add(err, "Code", json_object_new_string(code));
    json_object_object_add(err, "Message", json_object_new_string(ctl->err.message));
    json_object *top = json_object_new_object();
    if (ctl->module_log) json_object_object_add(err, "ModuleLog", ctl->module_log);
    ctl->module_log = NULL; /* the error object owns it now */
    json_object_object_add(top, "Error", err);
    json_object_object_add(top, "RequestId", json_object_new_string(ctl->request_id));
    fputs(json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                  JSON_C_TO_STRING_NOSLASHESCAPE),
          ctl_stderr);
    fputc('\n', ctl_stderr);
    json_object_put(top);
}

/* cmkp11's test builds follow CMKP11_TEST_NOW (seconds), so cmkctl's test builds do
 * too: what it calls due or expired must agree with the module. Production builds of
 * both read the system clock only. */
long long out_now(void)
{
#ifdef CMKP11_TESTING
    const char *fake = getenv("CMKP11_TEST_NOW");
    if (fake && *fake) {
        char *end;
        errno = 0;
        long long v = strtoll(fake, &end, 10);
        if (!errno && end != fake) return v;
    }
#endif
    return (long long)time(NULL);
}

int out_parse_time(const char *text, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!errno && !*end && *text) {
        *out = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest) rest = strptime(text, "%Y-%m-%d", &tm);
    if (!rest || (*rest && strcmp(rest, "Z"))) return -1;
    *out = (long long)timegm(&tm);
    return 0;
}
