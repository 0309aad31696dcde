/* store.h - SQLite persistence of CMKs, versions, tags and the audit log.
 * Knows nothing of PKCS#11 sessions or of the backend. */
#ifndef CMKP11_STORE_H
#define CMKP11_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmk_record.h"
#include "fork_phase.h"

struct store;

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND,
    STORE_ALIAS_EXISTS, /* the alias is taken (ignoring case) */
    STORE_READ_ONLY,    /* the file cannot be written */
    STORE_FULL,         /* disk or size limit reached */
    STORE_BUSY,         /* another process held the lock past the busy timeout */
    STORE_ERROR,
};

/* Opens (creating 0600 if absent) and migrates the store at path. */
enum store_status store_open(const char *path, struct store **out);
void store_close(struct store *st);
/* fork_phase.h: the connection's lock across fork(), so that no thread is inside SQLite or
 * a transaction at the instant of a fork. It comes before every other lock of the module
 * but init_lock: a transaction takes the others while it holds it, and no one calls the
 * store while holding one of them. */
void store_at_fork(struct store *st, enum fork_phase p);
/* A number that changes whenever another process commits a change (see store_signal.c:
 * without a system call while the shared signal is quiet). */
enum store_status store_data_version(struct store *st, int64_t *version);

/* Transactions group several calls; they nest by counting and take the store's lock,
 * so one thread's transaction never sees another thread's half-done work. */
enum store_status store_begin(struct store *st);
enum store_status store_commit(struct store *st);
void store_rollback(struct store *st);

/* Inserts rec (row assigned into rec->row). Tags in rec are inserted too. */
enum store_status store_cmk_insert(struct store *st, struct cmk_record *rec);
enum store_status store_cmk_get(struct store *st, int64_t row, struct cmk_record *rec);
enum store_status store_cmk_get_by_key_id(struct store *st, const char *key_id,
                                          struct cmk_record *rec);
/* Writes every mutable column of rec (not tags). */
enum store_status store_cmk_update(struct store *st, const struct cmk_record *rec);
/* Records the public key of an asymmetric CMK (either may be NULL). */
enum store_status store_cmk_set_public(struct store *st, int64_t row, const unsigned char *spki,
                                       size_t spki_len, const unsigned char *ec_point,
                                       size_t ec_point_len);
/* Versions: a row per version, written in the transaction that makes it primary. */
enum store_status store_version_insert(struct store *st, int64_t row, unsigned long version,
                                       int64_t created, const char *reason);
enum store_status store_version_created(struct store *st, int64_t row, unsigned long version,
                                        int64_t *created);
enum store_status store_cmk_delete(struct store *st, int64_t row);
enum store_status store_tags_load(struct store *st, struct cmk_record *rec);
enum store_status store_tags_replace(struct store *st, int64_t row, const struct cmk_tag *tags,
                                     size_t count);
/* Every key row, those still being created too (the quota counts them). */
enum store_status store_cmk_count(struct store *st, int64_t *count);
/* The token was initialised: every key row (with its versions, tags, sealed material and
 * import state) and every pass-through record go; how many of each in *keys, *objects.
 * Audit rows stay; row ids are still never handed out again. */
enum store_status store_token_reset(struct store *st, int64_t *keys, int64_t *objects);

/* A find: every field left at its "any" value matches everything. */
struct store_filter {
    const char *alias; /* exact */
    const char *key_id;
    /* A label or CKA_ID matches the objects that carry it (store_match.objects). */
    const unsigned char *label;
    size_t label_len;
    bool has_label;
    const unsigned char *cka_id;
    size_t cka_id_len;
    bool has_cka_id;
    const char *key_spec;
    const char *description;
    long key_type, usage, origin, protection, state; /* -1 = any */
    int rotation_enabled;                            /* -1 = any */
    const char *tag_key, *tag_value;                 /* tag_value NULL = any value */
    bool include_pending_deletion;
    bool include_creating; /* recovery only */
    unsigned long min_version; /* keys that have this version (0 = any) */
    bool rotating;             /* keys with a rotation claim */
    int64_t due_before;        /* rotation enabled and next rotation <= this (0 = any) */
};
void store_filter_init(struct store_filter *f);

struct store_match {
    int64_t row;
    unsigned objects; /* the key's objects that match (label, CKA_ID) */
    unsigned private_mask;
    unsigned long state;
};
/* Appends the matches to *out (realloc'd), count in *count, ordered by row. */
enum store_status store_cmk_find(struct store *st, const struct store_filter *f,
                                 struct store_match **out, size_t *count);

/* Aliases: unique on the token ignoring case; a key has any number of them (the first,
 * its oldest, comes with the record). STORE_ALIAS_EXISTS when another key has it. */
enum store_status store_alias_add(struct store *st, int64_t row, const char *alias,
                                  int64_t now);
/* Adds it only if no key has it yet; *added says whether it did. */
enum store_status store_alias_add_if_free(struct store *st, int64_t row, const char *alias,
                                          int64_t now, bool *added);
/* STORE_NOT_FOUND when the key has no such alias. */
enum store_status store_alias_remove(struct store *st, int64_t row, const char *alias);
enum store_status store_alias_remove_all(struct store *st, int64_t row);
/* The key that has the alias (STORE_NOT_FOUND: none). */
enum store_status store_alias_owner(struct store *st, const char *alias, int64_t *row);
/* Gives an existing alias to another key (UpdateAlias); STORE_NOT_FOUND when no key has it. */
enum store_status store_alias_move(struct store *st, int64_t row, const char *alias,
                                   int64_t now);
/* Every alias of a key, oldest first: a malloc'd array of malloc'd strings. */
enum store_status store_alias_list(struct store *st, int64_t row, char ***aliases,
                                   size_t *count);
void store_alias_list_free(char **aliases, size_t count);

/* Appends an audit row: who (pid, uid) is taken from the process. */
enum store_status store_audit(struct store *st, const char *action, const char *key_id,
                              const char *detail);

/* Token objects made through cmkp11 that are not CMKs, by class, label and CKA_ID. */
enum store_status store_passthrough_add(struct store *st, unsigned long cls, const void *label,
                                        size_t label_len, const void *cka_id, size_t id_len);
enum store_status store_passthrough_remove(struct store *st, unsigned long cls, const void *label,
                                           size_t label_len, const void *cka_id, size_t id_len);
/* Is there one matching the given class (-1 any), label and id (NULL = any)? */
enum store_status store_passthrough_any(struct store *st, long cls, const void *label,
                                        size_t label_len, const void *cka_id, size_t id_len,
                                        bool *any);

/* Imported material (EXTERNAL origin): per key, the fingerprint of the first import,
 * the outstanding import parameters (wrap_id NULL when none) and an import in progress
 * (the importing process, with its start time). */
struct store_import {
    unsigned char *fingerprint;
    size_t fingerprint_len;
    unsigned char *wrap_id;
    size_t wrap_id_len;
    unsigned long wrap_alg, wrap_bits;
    int64_t valid_to;
    unsigned char *token;
    size_t token_len;
    unsigned char *spki;
    size_t spki_len;
    long importing_pid;
    int64_t importing_start;
    bool has_material; /* the key's material is in the backend now */
};
/* Zeroes out and answers STORE_NOT_FOUND when the key has no import row yet. */
enum store_status store_import_get(struct store *st, int64_t row, struct store_import *out);
enum store_status store_import_put(struct store *st, int64_t row, const struct store_import *in);
void store_import_free(struct store_import *imp);
enum store_status store_cmk_set_material_expires(struct store *st, int64_t row, int64_t when);
/* Rows with an import claim (claimed), or whose material expired at or before expired_by. */
enum store_status store_import_rows(struct store *st, bool claimed, int64_t expired_by,
                                    int64_t **rows, size_t *count);

/* The claims a process holds on half-made work: a key being created (creator_pid and
 * _start while the row is Creating), a version being made (rotating_to with rotating_pid
 * and _start) and an import under way (importing_pid and _start). */
enum store_claim { STORE_CLAIM_CREATION, STORE_CLAIM_ROTATION, STORE_CLAIM_IMPORT };
/* Moves a claim from one owner (pid and start time) to another, in one statement that
 * matches the claim as the caller last saw it: STORE_OK when it moved, STORE_NOT_FOUND
 * when the claim is no longer that owner's (someone else took, ended or released it).
 * For a rotation, version must be the version claimed; to_pid 0 releases it. A write
 * transaction of its own (or part of the caller's). This is how recovery takes over a
 * dead process's work before it undoes any of it. */
enum store_status store_claim_move(struct store *st, enum store_claim which, int64_t row,
                                   unsigned long version, long from_pid, int64_t from_start,
                                   long to_pid, int64_t to_start);

/* SOFTWARE protection level: a version's sealed material (IV || ciphertext || tag).
 * get: malloc'd copy, STORE_NOT_FOUND when the version has none. */
enum store_status store_sealed_put(struct store *st, int64_t row, unsigned long version,
                                   const unsigned char *blob, size_t len);
enum store_status store_sealed_get(struct store *st, int64_t row, unsigned long version,
                                   unsigned char **blob, size_t *len);
enum store_status store_sealed_delete(struct store *st, int64_t row);

const char *store_status_name(enum store_status s);

#endif
