/* inspect.c - direct reads of the backend token and the store. */
#include "inspect.h"

#include <sqlite3.h>
#include <stdio.h>

#include "harness.h"

CK_SLOT_ID inspect_backend_slot(CK_FUNCTION_LIST_PTR be, const char *label)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    if (be->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) return (CK_SLOT_ID)-1;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (be->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
            strncmp((const char *)ti.label, label, strlen(label)) == 0 &&
            (strlen(label) == 32 || ti.label[strlen(label)] == ' '))
            return slots[i];
    }
    return (CK_SLOT_ID)-1;
}

/* Token objects whose label starts with prefix ("" for all of them), destroyed too when
 * destroy is set. */
static long backend_objects(const char *prefix, int destroy)
{
    CK_FUNCTION_LIST_PTR be = harness_load(getenv("CMK_BACKEND"));
    if (be->C_Initialize(NULL) != CKR_OK) return -1;
    long count = -1;
    CK_SLOT_ID slot = inspect_backend_slot(be, getenv("CMK_BACKEND_TOKEN"));
    CK_SESSION_HANDLE s;
    const char *pin = getenv("CMK_PIN");
    if (slot != (CK_SLOT_ID)-1 &&
        be->C_OpenSession(slot, CKF_SERIAL_SESSION | (destroy ? CKF_RW_SESSION : 0), NULL, NULL,
                          &s) == CKR_OK) {
        if (be->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)) == CKR_OK &&
            be->C_FindObjectsInit(s, NULL, 0) == CKR_OK) {
            /* All of them, however many: a fixed-size first batch undercounted big tokens. */
            CK_OBJECT_HANDLE *h = NULL;
            CK_ULONG n = 0, got = 0;
            do {
                CK_OBJECT_HANDLE *more = realloc(h, (n + 512) * sizeof(*h));
                if (!more) break;
                h = more;
                if (be->C_FindObjects(s, h + n, 512, &got) != CKR_OK) got = 0;
                n += got;
            } while (got == 512);
            be->C_FindObjectsFinal(s);
            count = 0;
            for (CK_ULONG i = 0; i < n; i++) {
                char label[80];
                CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label)};
                size_t n = strlen(prefix);
                if (!n || (be->C_GetAttributeValue(s, h[i], &a, 1) == CKR_OK &&
                           a.ulValueLen >= n && memcmp(label, prefix, n) == 0))
                    count += !destroy || be->C_DestroyObject(s, h[i]) == CKR_OK;
            }
            free(h);
        }
        be->C_CloseSession(s);
    }
    be->C_Finalize(NULL);
    return count;
}

long inspect_backend_objects(const char *prefix)
{
    return backend_objects(prefix, 0);
}

long inspect_backend_destroy(const char *prefix)
{
    return backend_objects(prefix, 1);
}

long inspect_backend_material(void)
{
    return inspect_backend_objects("cmkp11/");
}

/* Runs sql on the store; the first column of the first row as text into out. */
static int store_query(const char *sql, char *out, size_t size)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/cmk.db", getenv("CMK_WORK"));
    sqlite3 *db;
    int rc = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
            if (sqlite3_step(q) == SQLITE_ROW) {
                const unsigned char *t = sqlite3_column_text(q, 0);
                snprintf(out, size, "%s", t ? (const char *)t : "");
                rc = 0;
            }
            sqlite3_finalize(q);
        }
    }
    sqlite3_close(db);
    return rc;
}

int inspect_store_exec(const char *sql)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/cmk.db", getenv("CMK_WORK"));
    sqlite3 *db;
    int rc = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
        rc = sqlite3_changes(db) > 0 ? 0 : -1;
    sqlite3_close(db);
    return rc;
}

long inspect_store_count(const char *sql)
{
    char text[32];
    return store_query(sql, text, sizeof(text)) == 0 ? strtol(text, NULL, 10) : -1;
}

int inspect_snapshot(char *out, size_t size)
{
    static const char sql[] =
        "SELECT (SELECT group_concat(r, ';') FROM (SELECT id || '|' || key_id || '|' ||"
        " ifnull(alias, '') || '|' || hex(cka_id) || '|' || description || '|' || state || '|' ||"
        " key_usage || '|' || rotation_enabled || '|' || rotation_interval || '|' ||"
        " primary_version || '|' || deletion_date || '|' || objects AS r FROM cmk ORDER BY id))"
        " || '#tags=' || (SELECT count(*) FROM cmk_tag) || '#versions=' ||"
        " (SELECT count(*) FROM cmk_version) || '#passthrough=' || (SELECT count(*) FROM passthrough)"
        " || '#audit=' || (SELECT count(*) FROM audit)";
    int pos = 0;
    if (store_query(sql, out, size) != 0) return -1;
    pos = (int)strlen(out);
    snprintf(out + pos, size - (size_t)pos, "#backend=%ld#material=%ld", inspect_backend_objects(""),
             inspect_backend_material());
    return 0;
}

long inspect_log_count(const char *needle)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/cmkp11.log", getenv("CMK_WORK") ? getenv("CMK_WORK") : ".");
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long count = 0;
    char line[2048];
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle)) count++;
    fclose(f);
    return count;
}
