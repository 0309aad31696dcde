/* config.c - parses cmkp11.conf with inih; every error names file, line and key. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#ifndef CMKP11_DEFAULT_CONF
#define CMKP11_DEFAULT_CONF "/etc/cmkp11/cmkp11.conf"
#endif

/* A key read so far, to refuse it the second time. Every key cmkp11 knows, and its
 * section's name, is shorter than these fields; a longer one is unknown and fails the
 * load by itself, so it need not be remembered. */
struct seen_key {
    char section[32];
    char name[32];
    int line;
};

struct parse_state {
    struct config *cfg;
    char dir[PATH_MAX]; /* relative paths in the file are relative to its folder */
    char reason[200];   /* why the current entry failed */
    char error[256];    /* the first failure, as reported */
    int error_line;     /* its line */
    FILE *file;
    int line;           /* the line being parsed (counted by read_line) */
    bool line_indented; /* it starts with a blank */
    bool line_started;  /* the last read ended its line: the next read starts one */
    struct seen_key seen[64];
    size_t n_seen;
};

/* inih's reader: fgets that also counts lines, so that an error can name a line that
 * inih itself did not report (the first of two). A line longer than inih's buffer comes
 * in several reads, which count as one line. */
static char *read_line(char *str, int num, void *stream)
{
    struct parse_state *st = stream;
    if (!fgets(str, num, st->file)) return NULL;
    if (st->line_started) {
        st->line++;
        st->line_indented = str[0] == ' ' || str[0] == '\t';
    }
    st->line_started = strchr(str, '\n') != NULL;
    return str;
}

static int set_string(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
    return *field != NULL;
}

static int set_path(struct parse_state *st, char **field, const char *value)
{
    if (value[0] == '/' || st->dir[0] == '\0') return set_string(field, value);
    char joined[PATH_MAX];
    if (snprintf(joined, sizeof(joined), "%s/%s", st->dir, value) >= (int)sizeof(joined)) {
        snprintf(st->reason, sizeof(st->reason), "path too long");
        return 0;
    }
    return set_string(field, joined);
}

static int parse_bool(const char *value, bool *out)
{
    if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcmp(value, "1") ||
        !strcasecmp(value, "on")) {
        *out = true;
        return 1;
    }
    if (!strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcmp(value, "0") ||
        !strcasecmp(value, "off")) {
        *out = false;
        return 1;
    }
    return 0;
}

static int parse_ulong(const char *value, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (errno || end == value || *end != '\0' || value[0] == '-' || v < min || v > max) return 0;
    *out = v;
    return 1;
}

/* A [policy] key whose value is one of a few words, each naming an enum value. */
struct policy_choice {
    const char *key;
    size_t field; /* offsetof the enum in struct config */
    const char *words[4];
    int values[4];
    const char *reason;
};

static const struct policy_choice policy_choices[] = {
    {"usage_conflict", offsetof(struct config, usage_conflict),
     {"honour", "honor", "sign", "reject"},
     {USAGE_CONFLICT_HONOUR, USAGE_CONFLICT_HONOUR, USAGE_CONFLICT_PREFER_SIGN,
      USAGE_CONFLICT_REJECT},
     "must be 'honour', 'sign' or 'reject'"},
    {"extractable_keys", offsetof(struct config, extractable_keys),
     {"plain", "refuse"},
     {EXTRACTABLE_PLAIN, EXTRACTABLE_REFUSE},
     "must be 'plain' or 'refuse'"},
    {"non_sensitive_keys", offsetof(struct config, non_sensitive_keys),
     {"raise", "plain"},
     {NON_SENSITIVE_RAISE, NON_SENSITIVE_PLAIN},
     "must be 'raise' or 'plain'"},
    {"non_private_keys", offsetof(struct config, non_private_keys),
     {"allow", "raise"},
     {NON_PRIVATE_ALLOW, NON_PRIVATE_RAISE},
     "must be 'allow' or 'raise'"},
    {"init_token", offsetof(struct config, init_token),
     {"allow", "refuse_with_keys", "refuse"},
     {INIT_TOKEN_ALLOW, INIT_TOKEN_REFUSE_WITH_KEYS, INIT_TOKEN_REFUSE},
     "must be 'allow', 'refuse_with_keys' or 'refuse'"},
};

/* Every policy enum is an int-sized C enum, so the field is written as an int. */
_Static_assert(sizeof(enum usage_conflict_policy) == sizeof(int) &&
                   sizeof(enum extractable_policy) == sizeof(int) &&
                   sizeof(enum non_private_policy) == sizeof(int) &&
                   sizeof(enum non_sensitive_policy) == sizeof(int) &&
                   sizeof(enum init_token_policy) == sizeof(int),
               "policy enums are written through an int");
static int pick_choice(struct parse_state *st, const struct policy_choice *c, const char *value)
{
    for (size_t i = 0; i < 4 && c->words[i]; i++) {
        if (!strcasecmp(value, c->words[i])) {
            *(int *)((char *)st->cfg + c->field) = c->values[i];
            return 1;
        }
    }
    snprintf(st->reason, sizeof(st->reason), "%s", c->reason);
    return 0;
}

static int handle_policy(struct parse_state *st, const char *name, const char *value)
{
    struct config *cfg = st->cfg;
    if (!strcmp(name, "pending_window_days")) {
        if (parse_ulong(value, 7, 1096, &cfg->pending_window_days)) return 1;
        snprintf(st->reason, sizeof(st->reason), "must be a whole number of days from 7 to 1096");
        return 0;
    }
    if (!strcmp(name, "allow_immediate_destroy") || !strcmp(name, "cloud_specs_only") ||
        !strcmp(name, "refuse_clear_import") || !strcmp(name, "gm_mode") ||
        !strcmp(name, "alias_from_label")) {
        bool *field = !strcmp(name, "alias_from_label") ? &cfg->alias_from_label
                      : name[0] == 'a'                  ? &cfg->allow_immediate_destroy
                      : name[0] == 'c'                  ? &cfg->cloud_specs_only
                      : name[0] == 'g'                  ? &cfg->gm_mode
                                                        : &cfg->refuse_clear_import;
        if (parse_bool(value, field)) return 1;
        snprintf(st->reason, sizeof(st->reason), "must be true or false");
        return 0;
    }
    for (size_t i = 0; i < sizeof(policy_choices) / sizeof(policy_choices[0]); i++)
        if (!strcmp(name, policy_choices[i].key)) return pick_choice(st, &policy_choices[i], value);
    if (!strcmp(name, "max_keys")) {
        if (parse_ulong(value, 0, 100000000UL, &cfg->max_keys)) return 1;
        snprintf(st->reason, sizeof(st->reason), "must be a whole number (0 = no quota)");
        return 0;
    }
    snprintf(st->reason, sizeof(st->reason), "unknown key");
    return 0;
}

static int apply_entry(struct parse_state *st, const char *section, const char *name,
                       const char *value)
{
    struct config *cfg = st->cfg;

    if (!strcmp(section, "backend")) {
        if (!strcmp(name, "module")) return set_path(st, &cfg->backend_module, value);
        if (!strcmp(name, "token_label")) return set_string(&cfg->backend_token_label, value);
        if (!strcmp(name, "token_serial")) return set_string(&cfg->backend_token_serial, value);
    } else if (!strcmp(section, "token")) {
        if (!strcmp(name, "label")) {
            if (strlen(value) == 0 || strlen(value) > 32) {
                snprintf(st->reason, sizeof(st->reason), "must be 1 to 32 bytes");
                return 0;
            }
            return set_string(&cfg->token_label, value);
        }
        if (!strcmp(name, "store")) return set_path(st, &cfg->store_path, value);
        if (!strcmp(name, "lock_wait_seconds")) {
            if (parse_ulong(value, 1, 600, &cfg->lock_wait_seconds)) return 1;
            snprintf(st->reason, sizeof(st->reason), "must be a whole number of seconds from 1 to 600");
            return 0;
        }
        if (!strcmp(name, "foreign_objects")) {
            if (parse_bool(value, &cfg->foreign_objects)) return 1;
            snprintf(st->reason, sizeof(st->reason), "must be true or false");
            return 0;
        }
    } else if (!strcmp(section, "log")) {
        if (!strcmp(name, "level")) {
            enum log_level level;
            if (log_level_parse(value, &level) == 0) {
                cfg->log_level = level;
                return 1;
            }
            snprintf(st->reason, sizeof(st->reason), "must be error, warning, info or debug");
            return 0;
        }
        if (!strcmp(name, "file") && !strcmp(value, "syslog")) /* a destination, no path */
            return set_string(&cfg->log_file, value);
        if (!strcmp(name, "file")) return set_path(st, &cfg->log_file, value);
    } else if (!strcmp(section, "policy")) {
        return handle_policy(st, name, value);
    } else if (!strcmp(section, "gm_backend")) {
        return config_gm_entry(&cfg->gm, name, value, st->reason, sizeof(st->reason));
    } else if (!strcmp(section, "import")) {
        if (!strcmp(name, "oaep_decode_in_module")) {
            if (parse_bool(value, &cfg->import_oaep_decode_in_module)) return 1;
            snprintf(st->reason, sizeof(st->reason), "must be true or false");
            return 0;
        }
    } else {
        snprintf(st->reason, sizeof(st->reason), "unknown section [%s]", section);
        return 0;
    }
    snprintf(st->reason, sizeof(st->reason), "unknown key");
    return 0;
}

/* A key read a second time is refused, not taken: "the last wins" would let a line
 * appended at the end (a second store = ..., a second [token] section) move every
 * process to another store without a word. inih also calls back with the same key for
 * a line that starts with a blank: it reads that line as more of the value above. */
static int check_once(struct parse_state *st, const char *section, const char *name)
{
    if (strlen(section) >= sizeof(st->seen[0].section) || strlen(name) >= sizeof(st->seen[0].name))
        return 1;
    for (size_t i = 0; i < st->n_seen; i++) {
        const struct seen_key *k = &st->seen[i];
        if (strcmp(k->section, section) || strcmp(k->name, name)) continue;
        if (st->line_indented)
            snprintf(st->reason, sizeof(st->reason),
                     "a line that starts with a blank continues the value of line %d, which "
                     "cmkp11 does not take; start the line with its key",
                     k->line);
        else
            snprintf(st->reason, sizeof(st->reason),
                     "given twice (first at line %d); a key may appear once in all [%s] "
                     "sections together",
                     k->line, section);
        return 0;
    }
    if (st->n_seen < sizeof(st->seen) / sizeof(st->seen[0])) {
        struct seen_key *k = &st->seen[st->n_seen++];
        snprintf(k->section, sizeof(k->section), "%s", section);
        snprintf(k->name, sizeof(k->name), "%s", name);
        k->line = st->line;
    }
    return 1;
}

/* Only the first error is reported, so it is named once. */
static int handle_entry(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    if (check_once(st, section, name) && apply_entry(st, section, name, value)) return 1;
    if (!st->error[0]) {
        snprintf(st->error, sizeof(st->error), "[%s] %s: %s", section, name,
                 st->reason[0] ? st->reason : "invalid value");
        st->error_line = st->line;
    }
    st->reason[0] = '\0';
    return 0;
}

/* Opens path for reading if it is a regular file. /dev/zero would never end, a FIFO may
 * never answer (its open alone waits for a writer, hence O_NONBLOCK), and a directory
 * reads as empty, which would be reported as missing keys. */
static FILE *open_regular(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        log_error("config %s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb = {0};
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        const char *kind = S_ISDIR(sb.st_mode)    ? "a directory"
                           : S_ISFIFO(sb.st_mode) ? "a FIFO"
                           : S_ISCHR(sb.st_mode)  ? "a character device"
                           : S_ISBLK(sb.st_mode)  ? "a block device"
                           : S_ISSOCK(sb.st_mode) ? "a socket"
                                                  : "unreadable";
        log_error("config %s: is %s, not a regular file; CMKP11_CONF must name the "
                  "configuration file",
                  path, kind);
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        log_error("config %s: cannot open: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

static void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = LOG_LEVEL_WARNING;
    cfg->pending_window_days = 30;
    cfg->lock_wait_seconds = 10; /* as long as the store waits for its own lock */
    /* A plain template gets what the backend would give it (issue 17). */
    cfg->usage_conflict = USAGE_CONFLICT_HONOUR;
    cfg->alias_from_label = true;
}

int config_load_file(struct config *cfg, const char *path)
{
    config_defaults(cfg);
    struct parse_state st = {.cfg = cfg};
    const char *slash = strrchr(path, '/');
    if (slash && (size_t)(slash - path) < sizeof(st.dir))
        memcpy(st.dir, path, (size_t)(slash - path)), st.dir[slash - path] = '\0';
    if (!set_string(&cfg->path, path)) return -1;

    /* inih stops at no error: it reports the first failing line, and our handler
     * says why in st.error, at the line read_line counted. */
    st.file = open_regular(path);
    if (!st.file) {
        config_free(cfg);
        return -1;
    }
    st.line_started = true;
    int line = ini_parse_stream(read_line, &st, handle_entry, &st);
    fclose(st.file);
    if (line != 0) {
        log_error("config %s line %d: %s", path, st.error[0] ? st.error_line : line,
                  st.error[0] ? st.error : "syntax error (expected [section] or key = value)");
        config_free(cfg);
        return -1;
    }

    const char *missing = NULL;
    if (!cfg->backend_module)
        missing = "[backend] module";
    else if (!cfg->backend_token_label && !cfg->backend_token_serial)
        missing = "[backend] token_label (or token_serial)";
    else if (!cfg->store_path)
        missing = "[token] store";
    if (missing) {
        log_error("config %s: required key %s is missing", path, missing);
        config_free(cfg);
        return -1;
    }
    if (config_gm_check(&cfg->gm, st.reason, sizeof(st.reason)) != 0) {
        log_error("config %s: %s", path, st.reason);
        config_free(cfg);
        return -1;
    }
    if (!cfg->token_label && !set_string(&cfg->token_label, "cmkp11")) return -1;
    return 0;
}

int config_load(struct config *cfg)
{
    const char *path = getenv("CMKP11_CONF");
    if (!path || !*path) path = CMKP11_DEFAULT_CONF;
    return config_load_file(cfg, path);
}

void config_free(struct config *cfg)
{
    free(cfg->path);
    free(cfg->backend_module);
    free(cfg->backend_token_label);
    free(cfg->backend_token_serial);
    free(cfg->token_label);
    free(cfg->store_path);
    free(cfg->log_file);
    memset(cfg, 0, sizeof(*cfg));
}
