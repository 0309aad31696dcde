/* store.c - the SQLite store: schema, migrations, and every SQL statement of cmkp11. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "audit_chain.h"
#include "pubkey.h"
#include "store_signal.h"
#include "util.h"

/* Processes wait this long for each other's write transactions before giving up. */
#define STORE_BUSY_TIMEOUT_MS 10000
/* How long a quiet change signal is believed before SQLite is asked (see store_signal.c). */
#define STORE_SIGNAL_RECHECK_NS 200000000LL

enum stmt_id {
    STMT_GET_BY_ROW,
    STMT_GET_BY_KEY_ID,
    STMT_INSERT,
    STMT_UPDATE,
    STMT_DELETE,
    STMT_TAGS_LOAD,
    STMT_TAGS_DELETE,
    STMT_TAG_INSERT,
    STMT_AUDIT,
    STMT_AUDIT_LAST,
    STMT_DATA_VERSION,
    STMT_COUNT,
    STMT_SET_PUBLIC,
    STMT_VERSION_INSERT,
    STMT_VERSION_CREATED,
    STMT_PASSTHROUGH_ADD,
    STMT_PASSTHROUGH_REMOVE,
    STMT_ALIAS_ADD,
    STMT_ALIAS_ADD_IF_FREE,
    STMT_ALIAS_REMOVE,
    STMT_ALIAS_REMOVE_ALL,
    STMT_ALIAS_OWNER,
    STMT_ALIAS_MOVE,
    STMT_ALIAS_LIST,
    STMT_MAX
};

/* The first alias of a key is its oldest row in cmk_alias. */
#define CMK_COLUMNS                                                                                \
    "id, key_id, (SELECT alias FROM cmk_alias WHERE cmk_id = cmk.id ORDER BY created, rowid "     \
    "LIMIT 1), cka_id, description, key_spec, key_type, key_usage, origin, "                       \
    "protection, state, created, creator_uid, creator_pid, creator_start, rotation_enabled, "      \
    "rotation_interval, last_rotation, next_rotation, primary_version, deletion_date, "            \
    "pending_window, objects, private_mask, public_key_info, ec_point, rotating_to, "             \
    "rotating_pid, rotating_start, material_expires, label, pub_label, pub_cka_id"

static const char *const stmt_sql[STMT_MAX] = {
    [STMT_GET_BY_ROW] = "SELECT " CMK_COLUMNS " FROM cmk WHERE id = ?1",
    [STMT_GET_BY_KEY_ID] = "SELECT " CMK_COLUMNS " FROM cmk WHERE key_id = ?1",
    [STMT_INSERT] = "INSERT INTO cmk (key_id, label, cka_id, description, key_spec, "
                    "key_type, key_usage, origin, protection, state, created, creator_uid, "
                    "creator_pid, creator_start, rotation_enabled, rotation_interval, "
                    "last_rotation, next_rotation, primary_version, deletion_date, "
                    "pending_window, objects, private_mask, pub_label, pub_cka_id) VALUES (?1, "
                    "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
                    "?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
    [STMT_UPDATE] = "UPDATE cmk SET label = ?2, cka_id = ?3, "
                    "description = ?4, state = ?5, rotation_enabled = ?6, rotation_interval = ?7, "
                    "last_rotation = ?8, next_rotation = ?9, primary_version = ?10, "
                    "deletion_date = ?11, pending_window = ?12, objects = ?13, "
                    "private_mask = ?14, rotating_to = ?15, rotating_pid = ?16, "
                    "rotating_start = ?17, pub_label = ?18, pub_cka_id = ?19, key_usage = ?20 "
                    "WHERE id = ?1",
    [STMT_DELETE] = "DELETE FROM cmk WHERE id = ?1",
    [STMT_TAGS_LOAD] = "SELECT key, value FROM cmk_tag WHERE cmk_id = ?1 ORDER BY key",
    [STMT_TAGS_DELETE] = "DELETE FROM cmk_tag WHERE cmk_id = ?1",
    [STMT_TAG_INSERT] = "INSERT INTO cmk_tag (cmk_id, key, value) VALUES (?1, ?2, ?3)",
    [STMT_AUDIT] = "INSERT INTO audit (time, pid, uid, action, key_id, detail, prev_hash, hash) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [STMT_AUDIT_LAST] = "SELECT hash FROM audit ORDER BY id DESC LIMIT 1",
    [STMT_DATA_VERSION] = "PRAGMA data_version",
    /* Keys being created count: they take their place the moment their row exists. */
    [STMT_COUNT] = "SELECT count(*) FROM cmk",
    [STMT_SET_PUBLIC] = "UPDATE cmk SET public_key_info = ?2, ec_point = ?3 WHERE id = ?1",
    [STMT_VERSION_INSERT] = "INSERT INTO cmk_version (cmk_id, version, created, reason) "
                            "VALUES (?1, ?2, ?3, ?4)",
    [STMT_PASSTHROUGH_ADD] = "INSERT INTO passthrough (class, label, cka_id) VALUES (?1, ?2, ?3)",
    [STMT_PASSTHROUGH_REMOVE] = "DELETE FROM passthrough WHERE id = (SELECT id FROM passthrough "
                                "WHERE class = ?1 AND label = ?2 AND cka_id = ?3 LIMIT 1)",
    [STMT_VERSION_CREATED] = "SELECT created FROM cmk_version WHERE cmk_id = ?1 AND version = ?2",
    /* Aliases are unique ignoring case (alias_norm), and found by their exact spelling. */
    [STMT_ALIAS_ADD] = "INSERT INTO cmk_alias (alias_norm, alias, cmk_id, created) "
                       "VALUES (lower(?2), ?2, ?1, ?3)",
    [STMT_ALIAS_ADD_IF_FREE] = "INSERT OR IGNORE INTO cmk_alias (alias_norm, alias, cmk_id, "
                               "created) VALUES (lower(?2), ?2, ?1, ?3)",
    [STMT_ALIAS_REMOVE] = "DELETE FROM cmk_alias WHERE cmk_id = ?1 AND alias_norm = lower(?2)",
    [STMT_ALIAS_REMOVE_ALL] = "DELETE FROM cmk_alias WHERE cmk_id = ?1",
    [STMT_ALIAS_OWNER] = "SELECT cmk_id FROM cmk_alias WHERE alias_norm = lower(?1)",
    [STMT_ALIAS_MOVE] = "UPDATE cmk_alias SET cmk_id = ?1, alias = ?2, created = ?3 "
                        "WHERE alias_norm = lower(?2)",
    [STMT_ALIAS_LIST] = "SELECT alias FROM cmk_alias WHERE cmk_id = ?1 ORDER BY created, rowid",
};

/* Each entry moves the schema one version forward; user_version counts them. */
static const char *const migrations[] = {
    "CREATE TABLE cmk ("
    " id INTEGER PRIMARY KEY,"
    " key_id TEXT NOT NULL UNIQUE,"
    " alias TEXT,"
    " alias_norm TEXT UNIQUE,"
    " cka_id BLOB NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " key_spec TEXT NOT NULL,"
    " key_type INTEGER NOT NULL,"
    " key_usage INTEGER NOT NULL,"
    " origin INTEGER NOT NULL,"
    " protection INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " created INTEGER NOT NULL,"
    " creator_uid INTEGER NOT NULL,"
    " creator_pid INTEGER NOT NULL,"
    " creator_start INTEGER NOT NULL,"
    " rotation_enabled INTEGER NOT NULL DEFAULT 0,"
    " rotation_interval INTEGER NOT NULL DEFAULT 0,"
    " last_rotation INTEGER NOT NULL DEFAULT 0,"
    " next_rotation INTEGER NOT NULL DEFAULT 0,"
    " primary_version INTEGER NOT NULL DEFAULT 1,"
    " deletion_date INTEGER NOT NULL DEFAULT 0,"
    " pending_window INTEGER NOT NULL DEFAULT 0,"
    " objects INTEGER NOT NULL,"
    " private_mask INTEGER NOT NULL);"
    "CREATE INDEX cmk_by_cka_id ON cmk(cka_id);"
    "CREATE INDEX cmk_by_state ON cmk(state);"
    "CREATE INDEX cmk_by_next_rotation ON cmk(next_rotation) WHERE rotation_enabled;"
    "CREATE TABLE cmk_tag ("
    " cmk_id INTEGER NOT NULL REFERENCES cmk(id) ON DELETE CASCADE,"
    " key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (cmk_id, key));"
    "CREATE INDEX cmk_tag_by_key ON cmk_tag(key, value);"
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY, time INTEGER NOT NULL, pid INTEGER NOT NULL,"
    " uid INTEGER NOT NULL, action TEXT NOT NULL, key_id TEXT, detail TEXT);"
    "CREATE INDEX audit_by_key ON audit(key_id, time);",
    /* 2: the public key of asymmetric keys, for CKA_PUBLIC_KEY_INFO on private keys */
    "ALTER TABLE cmk ADD COLUMN public_key_info BLOB;"
    "ALTER TABLE cmk ADD COLUMN ec_point BLOB;",
    /* 3: key versions, and the claim a process holds while it makes a new one */
    "CREATE TABLE cmk_version ("
    " cmk_id INTEGER NOT NULL REFERENCES cmk(id) ON DELETE CASCADE,"
    " version INTEGER NOT NULL, created INTEGER NOT NULL, reason TEXT NOT NULL,"
    " PRIMARY KEY (cmk_id, version));"
    "INSERT INTO cmk_version SELECT id, 1, created, 'create' FROM cmk WHERE state != 0;"
    "ALTER TABLE cmk ADD COLUMN rotating_to INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE cmk ADD COLUMN rotating_pid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE cmk ADD COLUMN rotating_start INTEGER NOT NULL DEFAULT 0;",
    /* 4: token objects made through cmkp11 that are not CMKs (certificates, data objects,
     * keys passed through), so finds know when the backend must be searched */
    "CREATE TABLE passthrough (id INTEGER PRIMARY KEY, class INTEGER NOT NULL,"
    " label BLOB NOT NULL, cka_id BLOB NOT NULL);"
    "CREATE INDEX passthrough_by_label ON passthrough(label);"
    "CREATE INDEX passthrough_by_id ON passthrough(cka_id);",
    /* 5: row ids are never reused. Object handles carry the row id, so a handle kept by
     * an application after its key was purged must never name a newer key; plain
     * INTEGER PRIMARY KEY hands the id of a deleted last row out again, AUTOINCREMENT
     * does not. SQLite cannot add AUTOINCREMENT to a table: it is rebuilt (foreign keys
     * are off during migrations, so the drop does not cascade). */
    "CREATE TABLE cmk_new ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " key_id TEXT NOT NULL UNIQUE,"
    " alias TEXT,"
    " alias_norm TEXT UNIQUE,"
    " cka_id BLOB NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " key_spec TEXT NOT NULL,"
    " key_type INTEGER NOT NULL,"
    " key_usage INTEGER NOT NULL,"
    " origin INTEGER NOT NULL,"
    " protection INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " created INTEGER NOT NULL,"
    " creator_uid INTEGER NOT NULL,"
    " creator_pid INTEGER NOT NULL,"
    " creator_start INTEGER NOT NULL,"
    " rotation_enabled INTEGER NOT NULL DEFAULT 0,"
    " rotation_interval INTEGER NOT NULL DEFAULT 0,"
    " last_rotation INTEGER NOT NULL DEFAULT 0,"
    " next_rotation INTEGER NOT NULL DEFAULT 0,"
    " primary_version INTEGER NOT NULL DEFAULT 1,"
    " deletion_date INTEGER NOT NULL DEFAULT 0,"
    " pending_window INTEGER NOT NULL DEFAULT 0,"
    " objects INTEGER NOT NULL,"
    " private_mask INTEGER NOT NULL,"
    " public_key_info BLOB,"
    " ec_point BLOB,"
    " rotating_to INTEGER NOT NULL DEFAULT 0,"
    " rotating_pid INTEGER NOT NULL DEFAULT 0,"
    " rotating_start INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO cmk_new SELECT * FROM cmk;"
    "DROP TABLE cmk;"
    "ALTER TABLE cmk_new RENAME TO cmk;"
    "CREATE INDEX cmk_by_cka_id ON cmk(cka_id);"
    "CREATE INDEX cmk_by_state ON cmk(state);"
    "CREATE INDEX cmk_by_next_rotation ON cmk(next_rotation) WHERE rotation_enabled;",
    /* 6: imported material (EXTERNAL origin): its expiry, and per key the fingerprint of
     * the first import, the outstanding import parameters and an import in progress */
    "ALTER TABLE cmk ADD COLUMN material_expires INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX cmk_by_material_expires ON cmk(material_expires) WHERE material_expires;"
    "CREATE TABLE cmk_import ("
    " cmk_id INTEGER PRIMARY KEY REFERENCES cmk(id) ON DELETE CASCADE,"
    " fingerprint BLOB, wrap_id BLOB, wrap_alg INTEGER NOT NULL DEFAULT 0,"
    " wrap_bits INTEGER NOT NULL DEFAULT 0, valid_to INTEGER NOT NULL DEFAULT 0,"
    " token BLOB, spki BLOB, importing_pid INTEGER NOT NULL DEFAULT 0,"
    " importing_start INTEGER NOT NULL DEFAULT 0, has_material INTEGER NOT NULL DEFAULT 0);",
    /* 7: SOFTWARE protection level: each version's material sealed (AES-256-GCM under the
     * backend's token master key, IV || ciphertext || tag); never in clear */
    "CREATE TABLE cmk_sealed ("
    " cmk_id INTEGER NOT NULL REFERENCES cmk(id) ON DELETE CASCADE,"
    " version INTEGER NOT NULL, blob BLOB NOT NULL, PRIMARY KEY (cmk_id, version));",
    /* 8: login's housekeeping looks for claimed rotations; without this index that was a
     * scan of every key at every login (30 M instructions at 10,000 keys) */
    "CREATE INDEX cmk_by_rotating ON cmk(rotating_to) WHERE rotating_to;",
    /* 9: the alias is no longer the CKA_LABEL. Aliases are rows of their own (a key may
     * have several, as on AWS and Alibaba, or none), and each object of a pair has its own
     * label and CKA_ID, as on any token. A key's label was its alias until now: both
     * halves keep that text as their label. The old columns stay, emptied: SQLite cannot
     * drop a UNIQUE column. */
    "CREATE TABLE cmk_alias ("
    " alias_norm TEXT PRIMARY KEY, alias TEXT NOT NULL,"
    " cmk_id INTEGER NOT NULL REFERENCES cmk(id) ON DELETE CASCADE, created INTEGER NOT NULL);"
    "CREATE INDEX cmk_alias_by_key ON cmk_alias(cmk_id);"
    "INSERT INTO cmk_alias SELECT alias_norm, alias, id, created FROM cmk WHERE alias IS NOT NULL;"
    "ALTER TABLE cmk ADD COLUMN label BLOB NOT NULL DEFAULT x'';"
    "ALTER TABLE cmk ADD COLUMN pub_label BLOB NOT NULL DEFAULT x'';"
    "ALTER TABLE cmk ADD COLUMN pub_cka_id BLOB NOT NULL DEFAULT x'';"
    "UPDATE cmk SET label = CAST(coalesce(alias, '') AS BLOB),"
    " pub_label = CAST(coalesce(alias, '') AS BLOB), pub_cka_id = cka_id,"
    " alias = NULL, alias_norm = NULL;"
    "CREATE INDEX cmk_by_label ON cmk(label);"
    "CREATE INDEX cmk_by_pub_label ON cmk(pub_label);"
    "CREATE INDEX cmk_by_pub_cka_id ON cmk(pub_cka_id);",
    /* 10: the audit as a hash chain (audit_chain.h); the rows already there are chained
     * in id order by audit_chain_fill, in the same transaction */
    "ALTER TABLE audit ADD COLUMN prev_hash BLOB;"
    "ALTER TABLE audit ADD COLUMN hash BLOB;",
};

/* The schema version whose migration adds the audit chain's columns. */
#define AUDIT_CHAIN_SCHEMA 10

struct store {
    sqlite3 *db;
    pthread_mutex_t lock; /* recursive: transactions call the other functions */
    int depth;            /* transaction nesting */
    struct store_signal *signal; /* NULL: ask SQLite at every store_data_version */
    int64_t checked_ns;          /* atomic: when SQLite's data_version was last read */
    uint64_t sqlite_epoch;       /* atomic: times it was seen to change */
    int64_t sqlite_version;      /* the last data_version read; under lock */
    sqlite3_stmt *stmt[STMT_MAX];
};

const char *store_status_name(enum store_status s)
{
    switch (s) {
    case STORE_OK: return "ok";
    case STORE_NOT_FOUND: return "not found";
    case STORE_ALIAS_EXISTS: return "alias exists";
    case STORE_READ_ONLY: return "store is read-only";
    case STORE_FULL: return "store is full";
    case STORE_BUSY: return "store is locked";
    default: return "store error";
    }
}

/* Can the store's files still be written? errno says why not. */
static bool store_file_writable(struct store *st)
{
    const char *db = sqlite3_db_filename(st->db, "main");
    const char *wal = db ? sqlite3_filename_wal(db) : NULL;
    return db && access(db, W_OK) == 0 && (!wal || access(wal, W_OK) == 0 || errno == ENOENT);
}

static enum store_status status_of(struct store *st, int rc, const char *what)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return STORE_OK;
    case SQLITE_CONSTRAINT:
        if (strstr(sqlite3_errmsg(st->db), "alias_norm")) return STORE_ALIAS_EXISTS;
        if (strstr(sqlite3_errmsg(st->db), "FOREIGN KEY")) return STORE_NOT_FOUND;
        break;
    case SQLITE_READONLY: log_error("store: %s: read-only: %s", what, sqlite3_errmsg(st->db));
        return STORE_READ_ONLY;
    case SQLITE_FULL: log_error("store: %s: full: %s", what, sqlite3_errmsg(st->db));
        return STORE_FULL;
    case SQLITE_BUSY:
        log_error("store: %s: locked by another process for longer than %d s", what,
                  STORE_BUSY_TIMEOUT_MS / 1000);
        return STORE_BUSY;
    case SQLITE_IOERR: {
        /* A file made immutable or a file system gone read-only fails the write itself. */
        int e = sqlite3_system_errno(st->db);
        if (e != EPERM && e != EACCES && e != EROFS && e != ENOSPC && e != EDQUOT)
            e = store_file_writable(st) ? 0 : errno;
        if (e == EPERM || e == EACCES || e == EROFS) {
            log_error("store: %s: read-only: %s", what, strerror(e));
            return STORE_READ_ONLY;
        }
        if (e == ENOSPC || e == EDQUOT) {
            log_error("store: %s: full: %s", what, strerror(e));
            return STORE_FULL;
        }
        break;
    }
    }
    log_error("store: %s failed: %s (%d)", what, sqlite3_errmsg(st->db), rc);
    return STORE_ERROR;
}

static sqlite3_stmt *stmt_get(struct store *st, enum stmt_id id)
{
    if (!st->stmt[id] && sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &st->stmt[id], NULL) != SQLITE_OK) {
        log_error("store: cannot prepare statement %d: %s", id, sqlite3_errmsg(st->db));
        return NULL;
    }
    return st->stmt[id];
}

static void stmt_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *text)
{
    if (text) sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(s, i);
}

/* The rows of an audit written before the chain, chained in id order (migration 10). */
static enum store_status audit_chain_fill(struct store *st)
{
    sqlite3_stmt *q = NULL, *u = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, time, pid, uid, action, key_id, detail FROM audit "
                           "ORDER BY id",
                           -1, &q, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db, "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE id = ?3", -1,
                           &u, NULL) != SQLITE_OK) {
        sqlite3_finalize(q);
        return STORE_ERROR;
    }
    unsigned char prev[AUDIT_HASH_LEN] = {0}, hash[AUDIT_HASH_LEN];
    int rc = SQLITE_DONE;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (audit_chain_hash(pubkey_libctx(), prev, sqlite3_column_int64(q, 1),
                             sqlite3_column_int64(q, 2), sqlite3_column_int64(q, 3),
                             (const char *)sqlite3_column_text(q, 4),
                             (const char *)sqlite3_column_text(q, 5),
                             (const char *)sqlite3_column_text(q, 6), hash) != 0)
            break;
        sqlite3_bind_blob(u, 1, prev, AUDIT_HASH_LEN, SQLITE_TRANSIENT);
        sqlite3_bind_blob(u, 2, hash, AUDIT_HASH_LEN, SQLITE_TRANSIENT);
        sqlite3_bind_int64(u, 3, sqlite3_column_int64(q, 0));
        if (sqlite3_step(u) != SQLITE_DONE) break;
        sqlite3_reset(u);
        memcpy(prev, hash, AUDIT_HASH_LEN);
    }
    sqlite3_finalize(q);
    sqlite3_finalize(u);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static enum store_status store_migrate(struct store *st)
{
    int version = 0;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return status_of(st, sqlite3_errcode(st->db), "read schema version");
    if (sqlite3_step(s) == SQLITE_ROW) version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);

    int target = (int)(sizeof(migrations) / sizeof(migrations[0]));
    if (version > target) {
        log_error("store: schema version %d is newer than this cmkp11 (%d)", version, target);
        return STORE_ERROR;
    }
    if (version == target) return STORE_OK;

    enum store_status rv = store_begin(st);
    if (rv != STORE_OK) return rv;
    /* Re-read under the write lock: another process may have migrated meanwhile. */
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) version = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    for (int v = version; v < target; v++) {
        char *err = NULL;
        if (sqlite3_exec(st->db, migrations[v], NULL, NULL, &err) != SQLITE_OK) {
            log_error("store: migration to schema %d failed: %s", v + 1, err ? err : "?");
            sqlite3_free(err);
            store_rollback(st);
            return STORE_ERROR;
        }
        if (v + 1 == AUDIT_CHAIN_SCHEMA && audit_chain_fill(st) != STORE_OK) {
            log_error("store: migration to schema %d failed: cannot chain the audit rows",
                      v + 1);
            store_rollback(st);
            return STORE_ERROR;
        }
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
        sqlite3_exec(st->db, pragma, NULL, NULL, NULL);
        log_info("store: migrated schema to version %d", v + 1);
    }
    return store_commit(st);
}

/* Pages damaged on disk show only when read: look at every one at start, so that a
 * damaged store fails C_Initialize rather than some later call. A full check grows with
 * the store (about 90 ms at 10,000 keys and their audit), so it is made once per state
 * of the file: a process that checked records it in the shared signal page, and later
 * starts skip it while no commit was made and the file is the same. */
static enum store_status store_verify(struct store *st, const char *path)
{
    struct stat file;
    if (stat(path, &file) == 0 && store_signal_verified(st->signal, &file)) return STORE_OK;
    uint64_t counter = st->signal ? store_signal_read(st->signal) : 0;
    enum store_status rv = STORE_ERROR;
    sqlite3_stmt *check;
    if (sqlite3_prepare_v2(st->db, "PRAGMA quick_check(1)", -1, &check, NULL) == SQLITE_OK) {
        int step = sqlite3_step(check);
        const unsigned char *verdict = step == SQLITE_ROW ? sqlite3_column_text(check, 0) : NULL;
        const char *why = verdict ? (const char *)verdict : sqlite3_errmsg(st->db);
        const char *last_line = strrchr(why, '\n'); /* one log line: the last of the report */
        if (verdict && strcmp(why, "ok") == 0) rv = STORE_OK;
        else log_error("store %s: damaged: %.200s", path, last_line ? last_line + 1 : why);
        sqlite3_finalize(check);
    } else {
        log_error("store %s: damaged: %s", path, sqlite3_errmsg(st->db));
    }
    if (rv == STORE_OK && stat(path, &file) == 0) store_signal_mark_verified(st->signal, counter, &file);
    return rv;
}

enum store_status store_open(const char *path, struct store **out)
{
    *out = NULL;
    struct store *st = calloc(1, sizeof(*st));
    if (!st) return STORE_ERROR;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&st->lock, &attr);
    pthread_mutexattr_destroy(&attr);

    /* Create the file ourselves so it is 0600 from the first byte on. The store itself may
     * be a link (an operator's choice of where it lives); the files beside it may not
     * (private_file.h). */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("store %s: cannot open for writing: %s", path, strerror(errno));
        pthread_mutex_destroy(&st->lock);
        free(st);
        return errno == EROFS || errno == EACCES ? STORE_READ_ONLY : STORE_ERROR;
    }
    close(fd);

    /* NOMUTEX: our own lock serialises use of the connection. */
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
    enum store_status rv = STORE_ERROR;
    if (rc != SQLITE_OK) {
        log_error("store %s: cannot open: %s", path, st->db ? sqlite3_errmsg(st->db) : "?");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    char *err = NULL;
    /* Switching to WAL while another process opens the same new store can answer
     * SQLITE_BUSY at once, without the busy handler (SQLite avoids a deadlock there): the
     * switch is tried again for as long as the busy timeout. */
    int wal_rc = SQLITE_BUSY;
    for (int waited_ms = 0; waited_ms <= STORE_BUSY_TIMEOUT_MS; waited_ms += 10) {
        sqlite3_free(err);
        err = NULL;
        wal_rc = sqlite3_exec(st->db,
                              "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                              "PRAGMA foreign_keys = ON;",
                              NULL, NULL, &err);
        if (wal_rc != SQLITE_BUSY && wal_rc != SQLITE_LOCKED) break;
        sqlite3_sleep(10);
    }
    if (wal_rc != SQLITE_OK) {
        /* A damaged file can fail as early as here; say so as the integrity check would. */
        if ((wal_rc & 0xff) == SQLITE_CORRUPT)
            log_error("store %s: damaged: %s", path, err ? err : "?");
        else
            log_error("store %s: cannot set WAL mode: %s", path, err ? err : "?");
        rv = status_of(st, sqlite3_errcode(st->db), "set WAL mode");
        sqlite3_free(err);
        goto fail;
    }
    /* Migrations rebuild tables; with foreign keys on, dropping the old table would
     * cascade into its children. The pragma is a no-op inside a transaction. */
    sqlite3_exec(st->db, "PRAGMA foreign_keys = OFF;", NULL, NULL, NULL);
    rv = store_migrate(st);
    sqlite3_exec(st->db, "PRAGMA foreign_keys = ON;", NULL, NULL, NULL);
    if (rv != STORE_OK) goto fail;
    st->signal = store_signal_open(path);
    rv = store_verify(st, path);
    if (rv != STORE_OK) goto fail;
    *out = st;
    return STORE_OK;

fail:
    store_close(st);
    return rv == STORE_OK ? STORE_ERROR : rv;
}

void store_close(struct store *st)
{
    if (!st) return;
    store_signal_close(st->signal);
    for (int i = 0; i < STMT_MAX; i++) sqlite3_finalize(st->stmt[i]);
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* SQLite keeps process-wide state of its own: mutexes (its allocator's, its file table's)
 * that a thread inside any sqlite3_* call may hold, and per-file lock records that an open
 * transaction marks held. A child forked at such an instant hung in its first store_open,
 * or waited for ever on the parent's write lock in its first transaction. Every call on
 * the connection is made under st->lock, and a transaction holds it from begin to end, so
 * the forking thread holding it means no thread is inside SQLite or a transaction then.
 * The child drops the parent's connection (module.c), so its copy of the lock need only be
 * usable: glibc's recursive mutex names its owner by the parent thread's id. */
void store_at_fork(struct store *st, enum fork_phase p)
{
    if (p == FORK_PREPARE) {
        pthread_mutex_lock(&st->lock);
    } else if (p == FORK_PARENT) {
        pthread_mutex_unlock(&st->lock);
    } else {
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&st->lock, &attr);
        pthread_mutexattr_destroy(&attr);
    }
}

enum store_status store_begin(struct store *st)
{
    pthread_mutex_lock(&st->lock);
    util_pause_point("store:in-transaction"); /* a test forks while a thread is here */
    if (st->depth++ > 0) return STORE_OK;
    /* IMMEDIATE takes the write lock now, so a later write in the same transaction
     * cannot fail with SQLITE_BUSY after we have read (no deadlock between processes). */
    int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        st->depth--;
        enum store_status s = status_of(st, rc, "begin transaction");
        pthread_mutex_unlock(&st->lock);
        return s;
    }
    return STORE_OK;
}

enum store_status store_commit(struct store *st)
{
    enum store_status s = STORE_OK;
    if (--st->depth == 0) {
        int rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            s = status_of(st, rc, "commit");
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        } else {
            store_signal_raise(st->signal); /* after the commit: readers then see it */
        }
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

void store_rollback(struct store *st)
{
    if (--st->depth == 0) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->lock);
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The two sources folded into one number that grows whenever either changes: the
 * shared counter (every cmkp11 commit, at once) and the times SQLite's own
 * data_version was seen to move (any writer, within STORE_SIGNAL_RECHECK_NS). */
static int64_t combined_version(struct store *st)
{
    uint64_t epoch = __atomic_load_n(&st->sqlite_epoch, __ATOMIC_ACQUIRE);
    return (int64_t)(store_signal_read(st->signal) + (epoch << 40));
}

enum store_status store_data_version(struct store *st, int64_t *version)
{
    int64_t now = monotonic_ns();
    if (st->signal && now - __atomic_load_n(&st->checked_ns, __ATOMIC_ACQUIRE) <
                          STORE_SIGNAL_RECHECK_NS) {
        *version = combined_version(st); /* the hot path: no lock, no system call */
        return STORE_OK;
    }
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, STMT_DATA_VERSION);
    if (q) {
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            int64_t v = sqlite3_column_int64(q, 0);
            if (v != st->sqlite_version) {
                st->sqlite_version = v;
                __atomic_fetch_add(&st->sqlite_epoch, 1, __ATOMIC_RELEASE);
            }
            __atomic_store_n(&st->checked_ns, now, __ATOMIC_RELEASE);
            *version = st->signal ? combined_version(st) : v;
            s = STORE_OK;
        } else {
            s = status_of(st, rc, "read data version");
        }
        stmt_done(q);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

static char *column_strdup(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? strdup((const char *)t) : NULL;
}

/* Copies a BLOB column; NULL stays NULL. Returns -1 when out of memory. */
static int column_blob_dup(sqlite3_stmt *q, int i, unsigned char **out, size_t *len)
{
    *len = (size_t)sqlite3_column_bytes(q, i);
    *out = NULL;
    if (sqlite3_column_type(q, i) == SQLITE_NULL || *len == 0) return 0;
    *out = malloc(*len);
    if (!*out) return -1;
    memcpy(*out, sqlite3_column_blob(q, i), *len);
    return 0;
}

/* Copies a BLOB column that may be empty but is never missing (a label, a CKA_ID): the
 * copy is never NULL. Returns -1 when out of memory. */
static int column_bytes_dup(sqlite3_stmt *q, int i, unsigned char **out, size_t *len)
{
    const void *v = sqlite3_column_blob(q, i);
    *len = (size_t)sqlite3_column_bytes(q, i);
    *out = malloc(*len ? *len : 1);
    if (!*out) return -1;
    if (*len) memcpy(*out, v, *len);
    return 0;
}

/* SQLite binds a zero-length blob given a NULL pointer as NULL: an empty label or
 * CKA_ID is bound from "". */
static void bind_bytes(sqlite3_stmt *q, int i, const void *v, size_t len)
{
    sqlite3_bind_blob(q, i, len ? v : "", (int)len, SQLITE_STATIC);
}

static int record_from_row(sqlite3_stmt *q, struct cmk_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->row = sqlite3_column_int64(q, 0);
    snprintf(rec->key_id, sizeof(rec->key_id), "%s", (const char *)sqlite3_column_text(q, 1));
    rec->alias = column_strdup(q, 2);
    rec->description = column_strdup(q, 4);
    snprintf(rec->key_spec, sizeof(rec->key_spec), "%s", (const char *)sqlite3_column_text(q, 5));
    rec->key_type = (unsigned long)sqlite3_column_int64(q, 6);
    rec->usage = (unsigned long)sqlite3_column_int64(q, 7);
    rec->origin = (unsigned long)sqlite3_column_int64(q, 8);
    rec->protection = (unsigned long)sqlite3_column_int64(q, 9);
    rec->state = (unsigned long)sqlite3_column_int64(q, 10);
    rec->created = sqlite3_column_int64(q, 11);
    rec->creator_uid = (long)sqlite3_column_int64(q, 12);
    rec->creator_pid = (long)sqlite3_column_int64(q, 13);
    rec->creator_start = sqlite3_column_int64(q, 14);
    rec->rotation_enabled = sqlite3_column_int(q, 15) != 0;
    rec->rotation_interval = sqlite3_column_int64(q, 16);
    rec->last_rotation = sqlite3_column_int64(q, 17);
    rec->next_rotation = sqlite3_column_int64(q, 18);
    rec->primary_version = (unsigned long)sqlite3_column_int64(q, 19);
    rec->deletion_date = sqlite3_column_int64(q, 20);
    rec->pending_window = (unsigned long)sqlite3_column_int64(q, 21);
    rec->objects = (unsigned)sqlite3_column_int(q, 22);
    rec->private_mask = (unsigned)sqlite3_column_int(q, 23);
    rec->rotating_to = (unsigned long)sqlite3_column_int64(q, 26);
    rec->rotating_pid = (long)sqlite3_column_int64(q, 27);
    rec->rotating_start = sqlite3_column_int64(q, 28);
    rec->material_expires = sqlite3_column_int64(q, 29);
    if (column_blob_dup(q, 24, &rec->public_key_info, &rec->public_key_info_len) ||
        column_blob_dup(q, 25, &rec->ec_point, &rec->ec_point_len) ||
        column_bytes_dup(q, 3, &rec->cka_id, &rec->cka_id_len) ||
        column_bytes_dup(q, 30, &rec->label, &rec->label_len) ||
        column_bytes_dup(q, 31, &rec->pub_label, &rec->pub_label_len) ||
        column_bytes_dup(q, 32, &rec->pub_cka_id, &rec->pub_cka_id_len)) {
        cmk_record_free(rec);
        return -1;
    }
    if (!rec->description) {
        cmk_record_free(rec);
        return -1;
    }
    return 0;
}

static enum store_status get_one(struct store *st, enum stmt_id id, int64_t row,
                                 const char *key_id, struct cmk_record *rec)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, id);
    if (q) {
        if (key_id) sqlite3_bind_text(q, 1, key_id, -1, SQLITE_STATIC);
        else sqlite3_bind_int64(q, 1, row);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) s = record_from_row(q, rec) == 0 ? STORE_OK : STORE_ERROR;
        else if (rc == SQLITE_DONE) s = STORE_NOT_FOUND;
        else s = status_of(st, rc, "read key");
        stmt_done(q);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_cmk_get(struct store *st, int64_t row, struct cmk_record *rec)
{
    return get_one(st, STMT_GET_BY_ROW, row, NULL, rec);
}

enum store_status store_cmk_get_by_key_id(struct store *st, const char *key_id,
                                          struct cmk_record *rec)
{
    return get_one(st, STMT_GET_BY_KEY_ID, 0, key_id, rec);
}

/* Runs a prepared write statement to completion. Caller holds the lock. */
static enum store_status step_write(struct store *st, sqlite3_stmt *q, const char *what)
{
    int rc = sqlite3_step(q);
    enum store_status s = rc == SQLITE_DONE ? STORE_OK : status_of(st, rc, what);
    stmt_done(q);
    return s;
}

static enum store_status insert_tags(struct store *st, int64_t row, const struct cmk_tag *tags,
                                     size_t count)
{
    for (size_t i = 0; i < count; i++) {
        sqlite3_stmt *q = stmt_get(st, STMT_TAG_INSERT);
        if (!q) return STORE_ERROR;
        sqlite3_bind_int64(q, 1, row);
        sqlite3_bind_text(q, 2, tags[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, tags[i].value, -1, SQLITE_STATIC);
        enum store_status s = step_write(st, q, "insert tag");
        if (s != STORE_OK) return s;
    }
    return STORE_OK;
}

enum store_status store_cmk_insert(struct store *st, struct cmk_record *rec)
{
    enum store_status s = store_begin(st);
    if (s != STORE_OK) return s;
    sqlite3_stmt *q = stmt_get(st, STMT_INSERT);
    if (!q) {
        store_rollback(st);
        return STORE_ERROR;
    }
    sqlite3_bind_text(q, 1, rec->key_id, -1, SQLITE_STATIC);
    bind_bytes(q, 2, rec->label, rec->label_len);
    bind_bytes(q, 3, rec->cka_id, rec->cka_id_len);
    sqlite3_bind_text(q, 4, rec->description ? rec->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, rec->key_spec, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 6, (sqlite3_int64)rec->key_type);
    sqlite3_bind_int64(q, 7, (sqlite3_int64)rec->usage);
    sqlite3_bind_int64(q, 8, (sqlite3_int64)rec->origin);
    sqlite3_bind_int64(q, 9, (sqlite3_int64)rec->protection);
    sqlite3_bind_int64(q, 10, (sqlite3_int64)rec->state);
    sqlite3_bind_int64(q, 11, rec->created);
    sqlite3_bind_int64(q, 12, rec->creator_uid);
    sqlite3_bind_int64(q, 13, rec->creator_pid);
    sqlite3_bind_int64(q, 14, rec->creator_start);
    sqlite3_bind_int(q, 15, rec->rotation_enabled);
    sqlite3_bind_int64(q, 16, rec->rotation_interval);
    sqlite3_bind_int64(q, 17, rec->last_rotation);
    sqlite3_bind_int64(q, 18, rec->next_rotation);
    sqlite3_bind_int64(q, 19, (sqlite3_int64)rec->primary_version);
    sqlite3_bind_int64(q, 20, rec->deletion_date);
    sqlite3_bind_int64(q, 21, (sqlite3_int64)rec->pending_window);
    sqlite3_bind_int(q, 22, (int)rec->objects);
    sqlite3_bind_int(q, 23, (int)rec->private_mask);
    bind_bytes(q, 24, rec->pub_label, rec->pub_label_len);
    bind_bytes(q, 25, rec->pub_cka_id, rec->pub_cka_id_len);
    s = step_write(st, q, "insert key");
    if (s == STORE_OK) {
        rec->row = sqlite3_last_insert_rowid(st->db);
        s = insert_tags(st, rec->row, rec->tags, rec->tag_count);
    }
    if (s == STORE_OK && rec->alias) {
        bool added = true;
        s = rec->alias_if_free ? store_alias_add_if_free(st, rec->row, rec->alias, rec->created,
                                                         &added)
                               : store_alias_add(st, rec->row, rec->alias, rec->created);
        if (s == STORE_OK && !added) rec->alias = NULL; /* the caller's: not freed here */
    }
    if (s != STORE_OK) {
        store_rollback(st);
        return s;
    }
    return store_commit(st);
}

enum store_status store_cmk_update(struct store *st, const struct cmk_record *rec)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, STMT_UPDATE);
    if (q) {
        sqlite3_bind_int64(q, 1, rec->row);
        bind_bytes(q, 2, rec->label, rec->label_len);
        bind_bytes(q, 3, rec->cka_id, rec->cka_id_len);
        sqlite3_bind_text(q, 4, rec->description ? rec->description : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 5, (sqlite3_int64)rec->state);
        sqlite3_bind_int(q, 6, rec->rotation_enabled);
        sqlite3_bind_int64(q, 7, rec->rotation_interval);
        sqlite3_bind_int64(q, 8, rec->last_rotation);
        sqlite3_bind_int64(q, 9, rec->next_rotation);
        sqlite3_bind_int64(q, 10, (sqlite3_int64)rec->primary_version);
        sqlite3_bind_int64(q, 11, rec->deletion_date);
        sqlite3_bind_int64(q, 12, (sqlite3_int64)rec->pending_window);
        sqlite3_bind_int(q, 13, (int)rec->objects);
        sqlite3_bind_int(q, 14, (int)rec->private_mask);
        sqlite3_bind_int64(q, 15, (sqlite3_int64)rec->rotating_to);
        sqlite3_bind_int64(q, 16, rec->rotating_pid);
        sqlite3_bind_int64(q, 17, rec->rotating_start);
        bind_bytes(q, 18, rec->pub_label, rec->pub_label_len);
        bind_bytes(q, 19, rec->pub_cka_id, rec->pub_cka_id_len);
        /* Set once, when CreateKey reads back what the material made allows. */
        sqlite3_bind_int64(q, 20, (sqlite3_int64)rec->usage);
        s = step_write(st, q, "update key");
        if (s == STORE_OK && sqlite3_changes(st->db) == 0) s = STORE_NOT_FOUND;
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_cmk_set_public(struct store *st, int64_t row, const unsigned char *spki,
                                       size_t spki_len, const unsigned char *ec_point,
                                       size_t ec_point_len)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, STMT_SET_PUBLIC);
    if (q) {
        sqlite3_bind_int64(q, 1, row);
        if (spki) sqlite3_bind_blob(q, 2, spki, (int)spki_len, SQLITE_STATIC);
        if (ec_point) sqlite3_bind_blob(q, 3, ec_point, (int)ec_point_len, SQLITE_STATIC);
        s = step_write(st, q, "store public key");
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_version_insert(struct store *st, int64_t row, unsigned long version,
                                       int64_t created, const char *reason)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, STMT_VERSION_INSERT);
    if (q) {
        sqlite3_bind_int64(q, 1, row);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)version);
        sqlite3_bind_int64(q, 3, created);
        sqlite3_bind_text(q, 4, reason, -1, SQLITE_STATIC);
        s = step_write(st, q, "insert key version");
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_version_created(struct store *st, int64_t row, unsigned long version,
                                        int64_t *created)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, STMT_VERSION_CREATED);
    if (q) {
        sqlite3_bind_int64(q, 1, row);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)version);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            *created = sqlite3_column_int64(q, 0);
            s = STORE_OK;
        } else {
            s = rc == SQLITE_DONE ? STORE_NOT_FOUND : status_of(st, rc, "read key version");
        }
        stmt_done(q);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_cmk_delete(struct store *st, int64_t row)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, STMT_DELETE);
    if (q) {
        sqlite3_bind_int64(q, 1, row);
        s = step_write(st, q, "delete key");
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_tags_load(struct store *st, struct cmk_record *rec)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, STMT_TAGS_LOAD);
    cmk_tags_free(rec->tags, rec->tag_count);
    rec->tags = NULL;
    rec->tag_count = 0;
    if (q) {
        sqlite3_bind_int64(q, 1, rec->row);
        int rc;
        s = STORE_OK;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            struct cmk_tag *grown = realloc(rec->tags, (rec->tag_count + 1) * sizeof(*grown));
            if (!grown) {
                s = STORE_ERROR;
                break;
            }
            rec->tags = grown;
            grown[rec->tag_count].key = column_strdup(q, 0);
            grown[rec->tag_count].value = column_strdup(q, 1);
            rec->tag_count++;
        }
        if (s == STORE_OK && rc != SQLITE_DONE) s = status_of(st, rc, "read tags");
        stmt_done(q);
    }
    rec->tags_loaded = s == STORE_OK;
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_tags_replace(struct store *st, int64_t row, const struct cmk_tag *tags,
                                     size_t count)
{
    enum store_status s = store_begin(st);
    if (s != STORE_OK) return s;
    sqlite3_stmt *q = stmt_get(st, STMT_TAGS_DELETE);
    if (!q) s = STORE_ERROR;
    else {
        sqlite3_bind_int64(q, 1, row);
        s = step_write(st, q, "delete tags");
    }
    if (s == STORE_OK) s = insert_tags(st, row, tags, count);
    if (s != STORE_OK) {
        store_rollback(st);
        return s;
    }
    return store_commit(st);
}

/* Runs one alias statement (?1 row, ?2 alias, ?3 time, as the statement has them). */
static enum store_status alias_write(struct store *st, enum stmt_id id, int64_t row,
                                     const char *alias, int64_t now, const char *what)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, id);
    if (q) {
        sqlite3_bind_int64(q, 1, row);
        if (alias) sqlite3_bind_text(q, 2, alias, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, now);
        s = step_write(st, q, what);
        if (s == STORE_OK && sqlite3_changes(st->db) == 0) s = STORE_NOT_FOUND;
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_alias_add(struct store *st, int64_t row, const char *alias, int64_t now)
{
    return alias_write(st, STMT_ALIAS_ADD, row, alias, now, "add alias");
}

enum store_status store_alias_add_if_free(struct store *st, int64_t row, const char *alias,
                                          int64_t now, bool *added)
{
    enum store_status s = alias_write(st, STMT_ALIAS_ADD_IF_FREE, row, alias, now, "add alias");
    *added = s == STORE_OK;
    return s == STORE_NOT_FOUND ? STORE_OK : s;
}

enum store_status store_alias_remove(struct store *st, int64_t row, const char *alias)
{
    return alias_write(st, STMT_ALIAS_REMOVE, row, alias, 0, "remove alias");
}

enum store_status store_alias_remove_all(struct store *st, int64_t row)
{
    enum store_status s = alias_write(st, STMT_ALIAS_REMOVE_ALL, row, NULL, 0, "remove aliases");
    return s == STORE_NOT_FOUND ? STORE_OK : s;
}

enum store_status store_alias_move(struct store *st, int64_t row, const char *alias, int64_t now)
{
    return alias_write(st, STMT_ALIAS_MOVE, row, alias, now, "move alias");
}

enum store_status store_alias_owner(struct store *st, const char *alias, int64_t *row)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, STMT_ALIAS_OWNER);
    if (q) {
        sqlite3_bind_text(q, 1, alias, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            *row = sqlite3_column_int64(q, 0);
            s = STORE_OK;
        } else {
            s = rc == SQLITE_DONE ? STORE_NOT_FOUND : status_of(st, rc, "find alias");
        }
        stmt_done(q);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

void store_alias_list_free(char **aliases, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(aliases[i]);
    free(aliases);
}

enum store_status store_alias_list(struct store *st, int64_t row, char ***aliases, size_t *count)
{
    *aliases = NULL;
    *count = 0;
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, STMT_ALIAS_LIST);
    if (q) {
        sqlite3_bind_int64(q, 1, row);
        int rc;
        s = STORE_OK;
        while (s == STORE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
            char **grown = realloc(*aliases, (*count + 1) * sizeof(*grown));
            char *copy = column_strdup(q, 0);
            if (!grown || !copy) {
                free(copy);
                if (grown) *aliases = grown;
                s = STORE_ERROR;
                break;
            }
            *aliases = grown;
            grown[(*count)++] = copy;
        }
        if (s == STORE_OK && rc != SQLITE_DONE) s = status_of(st, rc, "list aliases");
        stmt_done(q);
    }
    pthread_mutex_unlock(&st->lock);
    if (s != STORE_OK) {
        store_alias_list_free(*aliases, *count);
        *aliases = NULL;
        *count = 0;
    }
    return s;
}

enum store_status store_cmk_count(struct store *st, int64_t *count)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, STMT_COUNT);
    if (q) {
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            *count = sqlite3_column_int64(q, 0);
            s = STORE_OK;
        } else {
            s = status_of(st, rc, "count keys");
        }
        stmt_done(q);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

void store_filter_init(struct store_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->key_type = f->usage = f->origin = f->protection = f->state = -1;
    f->rotation_enabled = -1;
}

/* Builds the WHERE clause from the filter; every value goes through a bound parameter. */
static void filter_sql(const struct store_filter *f, char *sql, size_t size)
{
    /* A label or CKA_ID belongs to one object of a pair: the objects column answered is
     * narrowed to the objects that carry it (3: the secret or private one, 4: the public). */
    const char *by_label = f->has_label ? "(CASE WHEN label = :label THEN 3 ELSE 0 END | "
                                          "CASE WHEN pub_label = :label THEN 4 ELSE 0 END)"
                                        : "7";
    const char *by_id = f->has_cka_id ? "(CASE WHEN cka_id = :cka_id THEN 3 ELSE 0 END | "
                                        "CASE WHEN pub_cka_id = :cka_id THEN 4 ELSE 0 END)"
                                      : "7";
    size_t n = (size_t)snprintf(sql, size,
                                "SELECT id, objects & %s & %s, private_mask, state FROM cmk "
                                "WHERE 1",
                                by_label, by_id);
#define ADD(cond) n += (size_t)snprintf(sql + n, size - n, " AND " cond)
    if (f->alias)
        ADD("id IN (SELECT cmk_id FROM cmk_alias WHERE alias_norm = lower(:alias) AND "
            "alias = :alias)");
    if (f->key_id) ADD("key_id = :key_id");
    if (f->has_label) ADD("(label = :label OR pub_label = :label)");
    if (f->has_cka_id) ADD("(cka_id = :cka_id OR pub_cka_id = :cka_id)");
    if (f->key_spec) ADD("key_spec = :key_spec");
    if (f->description) ADD("description = :description");
    if (f->key_type >= 0) ADD("key_type = :key_type");
    if (f->usage >= 0) ADD("key_usage = :usage");
    if (f->origin >= 0) ADD("origin = :origin");
    if (f->protection >= 0) ADD("protection = :protection");
    /* With a due date, "+state": keep the planner off the state index (nearly every key
     * is Enabled) and on the next-rotation one. */
    if (f->state >= 0 && f->due_before > 0) ADD("+state = :state");
    else if (f->state >= 0) ADD("state = :state");
    if (f->rotation_enabled >= 0) ADD("rotation_enabled = :rotation");
    if (f->tag_key && f->tag_value)
        ADD("id IN (SELECT cmk_id FROM cmk_tag WHERE key = :tag_key AND value = :tag_value)");
    else if (f->tag_key) ADD("id IN (SELECT cmk_id FROM cmk_tag WHERE key = :tag_key)");
    if (f->min_version > 0) ADD("primary_version >= :min_version");
    /* The next two repeat the WHERE of their partial indexes word for word (SQLite uses a
     * partial index only then) and add a range the index can serve. Housekeeping runs
     * them at every login; without an index each is a scan of every key. */
    if (f->rotating) ADD("rotating_to AND rotating_to > 0");
    if (f->due_before > 0)
        ADD("rotation_enabled AND next_rotation <= :due_before AND next_rotation > 0");
    if (!f->include_creating) ADD("state != 0");
    /* A key pending deletion is out of plain finds but for a public object not yet
     * destroyed itself (object_find keeps only that one). */
    if (!f->include_pending_deletion && f->state < 0 && !f->key_id)
        ADD("(state != 3 OR objects & 4)");
#undef ADD
    /* "+id" for the housekeeping shapes: ordering by the bare rowid makes the planner
     * prefer a scan of the whole table to the few rows their index gives. */
    snprintf(sql + n, size - n,
             f->rotating || f->due_before > 0 ? " ORDER BY +id" : " ORDER BY id");
}

static void bind_named_text(sqlite3_stmt *q, const char *name, const char *value)
{
    int i = sqlite3_bind_parameter_index(q, name);
    if (i > 0) sqlite3_bind_text(q, i, value, -1, SQLITE_STATIC);
}

static void bind_named_long(sqlite3_stmt *q, const char *name, long value)
{
    int i = sqlite3_bind_parameter_index(q, name);
    if (i > 0) sqlite3_bind_int64(q, i, value);
}

enum store_status store_cmk_find(struct store *st, const struct store_filter *f,
                                 struct store_match **out, size_t *count)
{
    char sql[2048];
    filter_sql(f, sql, sizeof(sql));
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *q;
    /* Few distinct filter shapes occur, and SQLite plans them in microseconds. */
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK) {
        enum store_status s = status_of(st, rc, "prepare find");
        pthread_mutex_unlock(&st->lock);
        return s;
    }
    if (f->alias) bind_named_text(q, ":alias", f->alias);
    if (f->key_id) bind_named_text(q, ":key_id", f->key_id);
    if (f->has_cka_id) bind_bytes(q, sqlite3_bind_parameter_index(q, ":cka_id"), f->cka_id,
                                  f->cka_id_len);
    if (f->has_label) bind_bytes(q, sqlite3_bind_parameter_index(q, ":label"), f->label,
                                 f->label_len);
    if (f->key_spec) bind_named_text(q, ":key_spec", f->key_spec);
    if (f->description) bind_named_text(q, ":description", f->description);
    bind_named_long(q, ":key_type", f->key_type);
    bind_named_long(q, ":usage", f->usage);
    bind_named_long(q, ":origin", f->origin);
    bind_named_long(q, ":protection", f->protection);
    bind_named_long(q, ":state", f->state);
    bind_named_long(q, ":rotation", f->rotation_enabled);
    bind_named_long(q, ":min_version", (long)f->min_version);
    bind_named_long(q, ":due_before", (long)f->due_before);
    if (f->tag_key) bind_named_text(q, ":tag_key", f->tag_key);
    if (f->tag_value) bind_named_text(q, ":tag_value", f->tag_value);

    enum store_status s = STORE_OK;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_int(q, 1) == 0) continue; /* its label is on a deleted object */
        struct store_match *grown = realloc(*out, (*count + 1) * sizeof(*grown));
        if (!grown) {
            s = STORE_ERROR;
            break;
        }
        *out = grown;
        grown[*count] = (struct store_match){
            .row = sqlite3_column_int64(q, 0),
            .objects = (unsigned)sqlite3_column_int(q, 1),
            .private_mask = (unsigned)sqlite3_column_int(q, 2),
            .state = (unsigned long)sqlite3_column_int64(q, 3),
        };
        (*count)++;
    }
    if (s == STORE_OK && rc != SQLITE_DONE) s = status_of(st, rc, "find keys");
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->lock);
    return s;
}

/* One statement each, run once (not worth a prepared statement); foreign keys cascade. */
static enum store_status delete_counted(struct store *st, const char *sql, const char *what,
                                        int64_t *count)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    *count = rc == SQLITE_OK ? sqlite3_changes64(st->db) : 0;
    return status_of(st, rc, what);
}

enum store_status store_token_reset(struct store *st, int64_t *keys, int64_t *objects)
{
    pthread_mutex_lock(&st->lock);
    *objects = 0;
    enum store_status s = delete_counted(st, "DELETE FROM cmk", "forget keys", keys);
    if (s == STORE_OK)
        s = delete_counted(st, "DELETE FROM passthrough", "forget object records", objects);
    pthread_mutex_unlock(&st->lock);
    return s;
}

/* The last row's hash (32 zero bytes when there is none). Inside a transaction. */
static enum store_status audit_last_hash(struct store *st, unsigned char out[AUDIT_HASH_LEN])
{
    memset(out, 0, AUDIT_HASH_LEN);
    sqlite3_stmt *q = stmt_get(st, STMT_AUDIT_LAST);
    if (!q) return STORE_ERROR;
    int rc = sqlite3_step(q);
    enum store_status s = STORE_OK;
    if (rc == SQLITE_ROW && sqlite3_column_bytes(q, 0) == AUDIT_HASH_LEN)
        memcpy(out, sqlite3_column_blob(q, 0), AUDIT_HASH_LEN);
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        s = status_of(st, rc, "read the audit's last row");
    stmt_done(q);
    return s;
}

/* The row and its place in the chain are one transaction (its own, or the caller's):
 * two writers never chain to the same last row. */
enum store_status store_audit(struct store *st, const char *action, const char *key_id,
                              const char *detail)
{
    enum store_status s = store_begin(st);
    if (s != STORE_OK) return s;
    unsigned char prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN];
    int64_t now = (int64_t)time(NULL), pid = getpid(), uid = getuid();
    s = audit_last_hash(st, prev);
    if (s == STORE_OK &&
        audit_chain_hash(pubkey_libctx(), prev, now, pid, uid, action, key_id, detail, hash) != 0)
        s = STORE_ERROR;
    sqlite3_stmt *q = s == STORE_OK ? stmt_get(st, STMT_AUDIT) : NULL;
    if (q) {
        sqlite3_bind_int64(q, 1, (sqlite3_int64)now);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)pid);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)uid);
        sqlite3_bind_text(q, 4, action, -1, SQLITE_STATIC);
        bind_text_or_null(q, 5, key_id);
        bind_text_or_null(q, 6, detail);
        sqlite3_bind_blob(q, 7, prev, AUDIT_HASH_LEN, SQLITE_TRANSIENT);
        sqlite3_bind_blob(q, 8, hash, AUDIT_HASH_LEN, SQLITE_TRANSIENT);
        s = step_write(st, q, "write audit");
    } else if (s == STORE_OK) {
        s = STORE_ERROR;
    }
    if (s == STORE_OK) return store_commit(st);
    store_rollback(st);
    return s;
}

static void bind_blob(sqlite3_stmt *q, int i, const void *p, size_t len)
{
    sqlite3_bind_blob(q, i, len ? p : "", (int)len, SQLITE_STATIC);
}

static enum store_status passthrough_write(struct store *st, enum stmt_id id, unsigned long cls,
                                           const void *label, size_t label_len, const void *cka_id,
                                           size_t id_len)
{
    pthread_mutex_lock(&st->lock);
    enum store_status s = STORE_ERROR;
    sqlite3_stmt *q = stmt_get(st, id);
    if (q) {
        sqlite3_bind_int64(q, 1, (sqlite3_int64)cls);
        bind_blob(q, 2, label, label_len);
        bind_blob(q, 3, cka_id, id_len);
        s = step_write(st, q, "record pass-through object");
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_passthrough_add(struct store *st, unsigned long cls, const void *label,
                                        size_t label_len, const void *cka_id, size_t id_len)
{
    return passthrough_write(st, STMT_PASSTHROUGH_ADD, cls, label, label_len, cka_id, id_len);
}

enum store_status store_passthrough_remove(struct store *st, unsigned long cls, const void *label,
                                           size_t label_len, const void *cka_id, size_t id_len)
{
    return passthrough_write(st, STMT_PASSTHROUGH_REMOVE, cls, label, label_len, cka_id, id_len);
}

enum store_status store_passthrough_any(struct store *st, long cls, const void *label,
                                        size_t label_len, const void *cka_id, size_t id_len,
                                        bool *any)
{
    char sql[256] = "SELECT EXISTS (SELECT 1 FROM passthrough WHERE 1";
    if (cls >= 0) strcat(sql, " AND class = :class");
    if (label) strcat(sql, " AND label = :label");
    if (cka_id) strcat(sql, " AND cka_id = :id");
    strcat(sql, ")");
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &q, NULL);
    enum store_status s = STORE_ERROR;
    if (rc == SQLITE_OK) {
        bind_named_long(q, ":class", cls);
        int i = sqlite3_bind_parameter_index(q, ":label");
        if (i > 0) bind_blob(q, i, label, label_len);
        i = sqlite3_bind_parameter_index(q, ":id");
        if (i > 0) bind_blob(q, i, cka_id, id_len);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            *any = sqlite3_column_int(q, 0) != 0;
            s = STORE_OK;
        } else {
            s = status_of(st, rc, "look up pass-through objects");
        }
        sqlite3_finalize(q);
    } else {
        s = status_of(st, rc, "prepare pass-through lookup");
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

/* ---- Imported material (EXTERNAL origin) ----------------------------------------- */

void store_import_free(struct store_import *imp)
{
    free(imp->fingerprint);
    free(imp->wrap_id);
    free(imp->token);
    free(imp->spki);
    memset(imp, 0, sizeof(*imp));
}

enum store_status store_import_get(struct store *st, int64_t row, struct store_import *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT fingerprint, wrap_id, wrap_alg, wrap_bits, valid_to, token, "
                                "spki, importing_pid, importing_start, has_material FROM cmk_import "
                                "WHERE cmk_id = ?1",
                                -1, &q, NULL);
    enum store_status s = STORE_ERROR;
    if (rc != SQLITE_OK) {
        s = status_of(st, rc, "prepare import read");
        goto out;
    }
    sqlite3_bind_int64(q, 1, row);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        out->wrap_alg = (unsigned long)sqlite3_column_int64(q, 2);
        out->wrap_bits = (unsigned long)sqlite3_column_int64(q, 3);
        out->valid_to = sqlite3_column_int64(q, 4);
        out->importing_pid = (long)sqlite3_column_int64(q, 7);
        out->importing_start = sqlite3_column_int64(q, 8);
        out->has_material = sqlite3_column_int(q, 9) != 0;
        s = column_blob_dup(q, 0, &out->fingerprint, &out->fingerprint_len) ||
                    column_blob_dup(q, 1, &out->wrap_id, &out->wrap_id_len) ||
                    column_blob_dup(q, 5, &out->token, &out->token_len) ||
                    column_blob_dup(q, 6, &out->spki, &out->spki_len)
                ? STORE_ERROR
                : STORE_OK;
        if (s != STORE_OK) store_import_free(out);
    } else {
        s = rc == SQLITE_DONE ? STORE_NOT_FOUND : status_of(st, rc, "read import");
    }
    sqlite3_finalize(q);
out:
    pthread_mutex_unlock(&st->lock);
    return s;
}

static void bind_blob_or_null(sqlite3_stmt *q, int i, const void *p, size_t len)
{
    if (p) sqlite3_bind_blob(q, i, p, (int)len, SQLITE_STATIC);
    else sqlite3_bind_null(q, i);
}

enum store_status store_import_put(struct store *st, int64_t row, const struct store_import *in)
{
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db,
                                "INSERT OR REPLACE INTO cmk_import (cmk_id, fingerprint, wrap_id, "
                                "wrap_alg, wrap_bits, valid_to, token, spki, importing_pid, "
                                "importing_start, has_material) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                -1, &q, NULL);
    enum store_status s;
    if (rc != SQLITE_OK) {
        s = status_of(st, rc, "prepare import write");
    } else {
        sqlite3_bind_int64(q, 1, row);
        bind_blob_or_null(q, 2, in->fingerprint, in->fingerprint_len);
        bind_blob_or_null(q, 3, in->wrap_id, in->wrap_id_len);
        sqlite3_bind_int64(q, 4, (sqlite3_int64)in->wrap_alg);
        sqlite3_bind_int64(q, 5, (sqlite3_int64)in->wrap_bits);
        sqlite3_bind_int64(q, 6, in->valid_to);
        bind_blob_or_null(q, 7, in->token, in->token_len);
        bind_blob_or_null(q, 8, in->spki, in->spki_len);
        sqlite3_bind_int64(q, 9, in->importing_pid);
        sqlite3_bind_int64(q, 10, in->importing_start);
        sqlite3_bind_int(q, 11, in->has_material);
        rc = sqlite3_step(q);
        s = rc == SQLITE_DONE ? STORE_OK : status_of(st, rc, "write import");
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_cmk_set_material_expires(struct store *st, int64_t row, int64_t when)
{
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db, "UPDATE cmk SET material_expires = ?2 WHERE id = ?1", -1,
                                &q, NULL);
    enum store_status s;
    if (rc != SQLITE_OK) {
        s = status_of(st, rc, "prepare material expiry write");
    } else {
        sqlite3_bind_int64(q, 1, row);
        sqlite3_bind_int64(q, 2, when);
        rc = sqlite3_step(q);
        s = rc == SQLITE_DONE ? STORE_OK : status_of(st, rc, "write material expiry");
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_import_rows(struct store *st, bool claimed, int64_t expired_by,
                                    int64_t **rows, size_t *count)
{
    *rows = NULL;
    *count = 0;
    const char *sql = claimed ? "SELECT cmk_id FROM cmk_import WHERE importing_pid != 0"
                              /* the partial index's WHERE, word for word; "+id" as in
                               * filter_sql */
                              : "SELECT id FROM cmk WHERE material_expires AND "
                                "material_expires <= ?1 ORDER BY +id";
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &q, NULL);
    enum store_status s = STORE_OK;
    if (rc != SQLITE_OK) {
        s = status_of(st, rc, "prepare import rows");
        goto out;
    }
    if (!claimed) sqlite3_bind_int64(q, 1, expired_by);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t *grown = realloc(*rows, (*count + 1) * sizeof(*grown));
        if (!grown) {
            s = STORE_ERROR;
            break;
        }
        *rows = grown;
        grown[(*count)++] = sqlite3_column_int64(q, 0);
    }
    if (s == STORE_OK && rc != SQLITE_DONE) s = status_of(st, rc, "read import rows");
    sqlite3_finalize(q);
out:
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_claim_move(struct store *st, enum store_claim which, int64_t row,
                                   unsigned long version, long from_pid, int64_t from_start,
                                   long to_pid, int64_t to_start)
{
    /* The owner (and for a rotation the version) is matched in the WHERE clause, so the
     * read and the write are one step no other process can come between. */
    static const char *const sql[] = {
        [STORE_CLAIM_CREATION] = "UPDATE cmk SET creator_pid = ?4, creator_start = ?5 "
                                 "WHERE id = ?1 AND state = 0 AND creator_pid = ?2 AND "
                                 "creator_start = ?3",
        [STORE_CLAIM_ROTATION] = "UPDATE cmk SET rotating_pid = ?4, rotating_start = ?5, "
                                 "rotating_to = CASE WHEN ?4 = 0 THEN 0 ELSE rotating_to END "
                                 "WHERE id = ?1 AND rotating_to = ?6 AND rotating_to != 0 AND "
                                 "rotating_pid = ?2 AND rotating_start = ?3",
        [STORE_CLAIM_IMPORT] = "UPDATE cmk_import SET importing_pid = ?4, importing_start = ?5 "
                               "WHERE cmk_id = ?1 AND importing_pid = ?2 AND "
                               "importing_start = ?3 AND importing_pid != 0",
    };
    /* Its own write transaction (BEGIN IMMEDIATE; nested in the caller's, if any). */
    enum store_status s = store_begin(st);
    if (s != STORE_OK) return s;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db, sql[which], -1, &q, NULL);
    if (rc != SQLITE_OK) {
        s = status_of(st, rc, "prepare claim move");
    } else {
        sqlite3_bind_int64(q, 1, row);
        sqlite3_bind_int64(q, 2, from_pid);
        sqlite3_bind_int64(q, 3, from_start);
        sqlite3_bind_int64(q, 4, to_pid);
        sqlite3_bind_int64(q, 5, to_start);
        if (which == STORE_CLAIM_ROTATION) sqlite3_bind_int64(q, 6, (sqlite3_int64)version);
        rc = sqlite3_step(q);
        if (rc != SQLITE_DONE)
            s = status_of(st, rc, "move a claim");
        else
            s = sqlite3_changes(st->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
        sqlite3_finalize(q);
    }
    if (s == STORE_OK) return store_commit(st);
    store_rollback(st);
    return s;
}

enum store_status store_sealed_put(struct store *st, int64_t row, unsigned long version,
                                   const unsigned char *blob, size_t len)
{
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db,
                                "INSERT OR REPLACE INTO cmk_sealed (cmk_id, version, blob) "
                                "VALUES (?1, ?2, ?3)",
                                -1, &q, NULL);
    enum store_status s;
    if (rc != SQLITE_OK) {
        s = status_of(st, rc, "prepare sealed write");
    } else {
        sqlite3_bind_int64(q, 1, row);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)version);
        sqlite3_bind_blob(q, 3, blob, (int)len, SQLITE_TRANSIENT);
        rc = sqlite3_step(q);
        s = rc == SQLITE_DONE ? STORE_OK : status_of(st, rc, "write sealed material");
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_sealed_get(struct store *st, int64_t row, unsigned long version,
                                   unsigned char **blob, size_t *len)
{
    *blob = NULL;
    *len = 0;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT blob FROM cmk_sealed WHERE cmk_id = ?1 AND version = ?2",
                                -1, &q, NULL);
    enum store_status s;
    if (rc != SQLITE_OK) {
        s = status_of(st, rc, "prepare sealed read");
    } else {
        sqlite3_bind_int64(q, 1, row);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)version);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            s = column_blob_dup(q, 0, blob, len) ? STORE_ERROR : STORE_OK;
        else
            s = rc == SQLITE_DONE ? STORE_NOT_FOUND : status_of(st, rc, "read sealed material");
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

enum store_status store_sealed_delete(struct store *st, int64_t row)
{
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db, "DELETE FROM cmk_sealed WHERE cmk_id = ?1", -1, &q, NULL);
    enum store_status s;
    if (rc != SQLITE_OK) {
        s = status_of(st, rc, "prepare sealed delete");
    } else {
        sqlite3_bind_int64(q, 1, row);
        rc = sqlite3_step(q);
        s = rc == SQLITE_DONE ? STORE_OK : status_of(st, rc, "delete sealed material");
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}
