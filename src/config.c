/* config.c - parses cmkp11.conf with inih; every error names file, line and key. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#ifndef CMKP11_DEFAULT_CONF
#define CMKP11_DEFAULT_CONF "/etc/cmkp11/cmkp11.conf"
#endif

struct parse_state {
    struct config *cfg;
    char dir[PATH_MAX]; /* relative paths in the file are relative to its folder */
    char reason[200];   /* why the current entry failed */
    char error[256];    /* the first failure, as reported */
};

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

static int handle_policy(struct parse_state *st, const char *name, const char *value)
{
    struct config *cfg = st->cfg;
    if (!strcmp(name, "pending_window_days")) {
        if (parse_ulong(value, 7, 1096, &cfg->pending_window_days)) return 1;
        snprintf(st->reason, sizeof(st->reason), "must be a whole number of days from 7 to 1096");
        return 0;
    }
    if (!strcmp(name, "usage_conflict")) {
        if (!strcasecmp(value, "sign"))
            cfg->usage_conflict = USAGE_CONFLICT_PREFER_SIGN;
        else if (!strcasecmp(value, "reject"))
            cfg->usage_conflict = USAGE_CONFLICT_REJECT;
        else {
            snprintf(st->reason, sizeof(st->reason), "must be 'sign' or 'reject'");
            return 0;
        }
        return 1;
    }
    if (!strcmp(name, "allow_immediate_destroy") || !strcmp(name, "cloud_specs_only") ||
        !strcmp(name, "refuse_clear_import") || !strcmp(name, "gm_mode")) {
        bool *field = name[0] == 'a'   ? &cfg->allow_immediate_destroy
                      : name[0] == 'c' ? &cfg->cloud_specs_only
                      : name[0] == 'g' ? &cfg->gm_mode
                                       : &cfg->refuse_clear_import;
        if (parse_bool(value, field)) return 1;
        snprintf(st->reason, sizeof(st->reason), "must be true or false");
        return 0;
    }
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

/* Only the first error is reported (inih returns its line), so it is named once. */
static int handle_entry(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    if (apply_entry(st, section, name, value)) return 1;
    if (!st->error[0])
        snprintf(st->error, sizeof(st->error), "[%s] %s: %s", section, name,
                 st->reason[0] ? st->reason : "invalid value");
    st->reason[0] = '\0';
    return 0;
}

static void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = LOG_LEVEL_WARNING;
    cfg->pending_window_days = 30;
    cfg->usage_conflict = USAGE_CONFLICT_PREFER_SIGN;
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
     * says why in st.error. We also remember the section/key to name it. */
    FILE *f = fopen(path, "re");
    if (!f) {
        log_error("config %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int line = ini_parse_file(f, handle_entry, &st);
    fclose(f);
    if (line != 0) {
        log_error("config %s line %d: %s", path, line,
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
