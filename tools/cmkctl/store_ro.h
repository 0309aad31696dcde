/* store_ro.h - the module's configuration and SQLite store, opened read-only for the
 * commands that report on the store itself (audit-log, doctor, purge-due). */
#ifndef CMKCTL_STORE_RO_H
#define CMKCTL_STORE_RO_H

#include <limits.h>
#include <sqlite3.h>
#include <stddef.h>

struct cmk_conf {
    char path[PATH_MAX];           /* the configuration file */
    char store[PATH_MAX];          /* [token] store, made absolute */
    char token_label[64];          /* [token] label */
    char backend[PATH_MAX];        /* [backend] module, made absolute */
    char backend_token_label[64];  /* [backend] token_label */
    char backend_token_serial[64]; /* [backend] token_serial */
    int gm_mode;                   /* [policy] gm_mode: SM4 is the default symmetric spec */
};

/* Reads $CMKP11_CONF (else the installed default). Returns 0, or -1 with why filled. */
int conf_load(struct cmk_conf *c, char *why, size_t why_size);

/* SQL for a key row's first alias (the oldest of its cmk_alias rows), in a query over
 * "cmk". A key may have several aliases, or none. */
#define CMK_FIRST_ALIAS                                                                            \
    "(SELECT a.alias FROM cmk_alias a WHERE a.cmk_id = cmk.id ORDER BY a.created, a.rowid "       \
    "LIMIT 1)"

/* Opens the store read-only: cmkctl never writes it behind the module's back. */
int store_open_ro(const char *path, sqlite3 **db, char *why, size_t why_size);

#endif
