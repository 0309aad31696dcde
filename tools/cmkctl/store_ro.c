/* store_ro.c - the configuration file as cmkp11 reads it (inih), and read-only SQLite. */
#include "store_ro.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Relative paths in the configuration are relative to its folder, as in the module. */
static void resolve(const char *conf_path, const char *value, char out[PATH_MAX])
{
    if (value[0] == '/') {
        snprintf(out, PATH_MAX, "%s", value);
        return;
    }
    const char *slash = strrchr(conf_path, '/');
    if (!slash)
        snprintf(out, PATH_MAX, "%s", value);
    else
        snprintf(out, PATH_MAX, "%.*s/%s", (int)(slash - conf_path), conf_path, value);
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct cmk_conf *c = user;
    if (!strcmp(section, "token") && !strcmp(name, "store"))
        resolve(c->path, value, c->store);
    else if (!strcmp(section, "token") && !strcmp(name, "label"))
        snprintf(c->token_label, sizeof(c->token_label), "%s", value);
    else if (!strcmp(section, "backend") && !strcmp(name, "module"))
        resolve(c->path, value, c->backend);
    else if (!strcmp(section, "backend") && !strcmp(name, "token_label"))
        snprintf(c->backend_token_label, sizeof(c->backend_token_label), "%s", value);
    else if (!strcmp(section, "backend") && !strcmp(name, "token_serial"))
        snprintf(c->backend_token_serial, sizeof(c->backend_token_serial), "%s", value);
    else if (!strcmp(section, "policy") && !strcmp(name, "gm_mode"))
        c->gm_mode = !strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
                     !strcmp(value, "1") || !strcasecmp(value, "on");
    return 1; /* other keys are the module's business */
}

int conf_load(struct cmk_conf *c, char *why, size_t why_size)
{
    memset(c, 0, sizeof(*c));
    const char *path = getenv("CMKP11_CONF");
    if (!path || !*path) path = CMKCTL_DEFAULT_CONF;
    snprintf(c->path, sizeof(c->path), "%s", path);
    int rc = ini_parse(c->path, on_entry, c);
    if (rc == -1) {
        snprintf(why, why_size, "cannot read %s: %s", c->path, strerror(errno));
        return -1;
    }
    if (rc != 0) {
        if (rc > 0)
            snprintf(why, why_size, "%s: syntax error on line %d", c->path, rc);
        else
            snprintf(why, why_size, "%s: cannot be parsed", c->path);
        return -1;
    }
    if (!c->store[0]) {
        snprintf(why, why_size, "%s: no [token] store = PATH", c->path);
        return -1;
    }
    return 0;
}

int store_open_ro(const char *path, sqlite3 **db, char *why, size_t why_size)
{
    *db = NULL;
    if (access(path, R_OK) != 0) {
        snprintf(why, why_size, "cannot read store %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        snprintf(why, why_size, "cannot open store %s: %s", path,
                 *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    /* The module may be writing: wait for it rather than fail. */
    sqlite3_busy_timeout(*db, 5000);
    return 0;
}
