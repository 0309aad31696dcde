/* reseal.c - known material under the token master key, written over a sealed row
 * (see reseal.h). Uses the backend directly, as an operator holding the PIN could. */
#include "reseal.h"

#include <sqlite3.h>

#include "harness.h"
#include "inspect.h"

static const unsigned char master_id[] = {'C', 'M', 'K', 0x00, 'm', 'a', 's', 't', 'e', 'r'};

/* The key's store row and key id. */
static int key_row(sqlite3 *db, const char *alias, long long *row, char key_id[37])
{
    sqlite3_stmt *q;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT id, key_id FROM cmk WHERE id IN (SELECT cmk_id FROM cmk_alias WHERE alias = ?)", -1, &q, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(q, 1, alias, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 1) == 36) {
        *row = sqlite3_column_int64(q, 0);
        memcpy(key_id, sqlite3_column_text(q, 1), 37);
        rc = 0;
    }
    sqlite3_finalize(q);
    return rc;
}

/* IV || GCM(material) || tag into blob by the backend's master key. */
static int backend_seal(const char *key_id, unsigned long version, const unsigned char *material,
                        size_t len, unsigned char *blob, CK_ULONG *blob_len)
{
    CK_FUNCTION_LIST_PTR be = harness_load(getenv("CMK_BACKEND"));
    if (be->C_Initialize(NULL) != CKR_OK) return -1;
    CK_SLOT_ID slot = inspect_backend_slot(be, getenv("CMK_BACKEND_TOKEN"));
    const char *pin = getenv("CMK_PIN");
    CK_SESSION_HANDLE s;
    int rc = -1;
    if (slot == (CK_SLOT_ID)-1 || be->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s))
        goto fin;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_ID, (void *)master_id, sizeof(master_id)}};
    CK_OBJECT_HANDLE master;
    CK_ULONG n = 0;
    unsigned char aad[40];
    memcpy(aad, key_id, 36);
    for (int i = 0; i < 4; i++)
        aad[36 + i] = (unsigned char)(version >> (24 - 8 * i));
    CK_GCM_PARAMS gcm = {blob, 12, 96, aad, sizeof(aad), 128};
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    CK_ULONG body = *blob_len - 12;
    if (be->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)) == CKR_OK &&
        be->C_FindObjectsInit(s, find, 2) == CKR_OK &&
        be->C_FindObjects(s, &master, 1, &n) == CKR_OK && be->C_FindObjectsFinal(s) == CKR_OK &&
        n == 1 && be->C_GenerateRandom(s, blob, 12) == CKR_OK &&
        be->C_EncryptInit(s, &mech, master) == CKR_OK &&
        be->C_Encrypt(s, (CK_BYTE_PTR)material, len, blob + 12, &body) == CKR_OK) {
        *blob_len = 12 + body;
        rc = 0;
    }
    be->C_CloseSession(s);
fin:
    be->C_Finalize(NULL);
    return rc;
}

int reseal_known_material(const char *alias, unsigned long version, const unsigned char *material,
                          size_t len)
{
    char path[4096], key_id[37];
    snprintf(path, sizeof(path), "%s/cmk.db", getenv("CMK_WORK"));
    sqlite3 *db;
    long long row = 0;
    unsigned char blob[12 + 64 + 16];
    CK_ULONG blob_len = sizeof(blob);
    sqlite3_stmt *q = NULL;
    int rc = -1;
    if (len > 64 || sqlite3_open(path, &db) != SQLITE_OK) return -1;
    if (key_row(db, alias, &row, key_id) != 0 ||
        backend_seal(key_id, version, material, len, blob, &blob_len) != 0 ||
        sqlite3_prepare_v2(db, "UPDATE cmk_sealed SET blob = ? WHERE cmk_id = ? AND version = ?",
                           -1, &q, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_blob(q, 1, blob, (int)blob_len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, row);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)version);
    if (sqlite3_step(q) == SQLITE_DONE && sqlite3_changes(db) == 1) rc = 0;
out:
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc;
}
