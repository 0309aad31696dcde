/* doctor.h - what cmd_store.c's doctor shares with the files that check one kind of
 * object each: the backend objects it scanned, the key rows it read, and its checks. */
#ifndef CMKCTL_DOCTOR_H
#define CMKCTL_DOCTOR_H

#include <json-c/json.h>
#include <sqlite3.h>
#include <stddef.h>

#include "p11.h"
#include "store_ro.h"

/* What a backend object carrying one of cmkp11's names is. */
enum material_kind {
    MATERIAL_VERSION,          /* a key version's material: cmkp11/<key id>/v<n> */
    MATERIAL_MASTER,           /* the token master key sealing SOFTWARE material */
    MATERIAL_IMPORT_PAIR,      /* half of an import's wrapping pair: cmkp11/import/<key id> */
    MATERIAL_IMPORT_TOKEN_KEY, /* the MAC key of import tokens */
};

/* One backend object that carries one of cmkp11's names. */
struct material {
    enum material_kind kind;
    CK_OBJECT_CLASS cls;
    char *label;       /* CKA_LABEL as text ("" when absent) */
    char *id_hex;      /* CKA_ID in hex ("" when absent) */
    char key_id[37];   /* the key it names, lower case; "" when none */
    CK_ULONG version;  /* the version it names (0: not a version's material) */
    const char *fault; /* why the names themselves are wrong; NULL when they agree */
    int flags_known;   /* a version's secret or private object: flags were read */
    unsigned flags;    /* bit i: doctor_flag_types[i] is TRUE */
};

/* One cmk row, as far as backend objects are concerned. */
struct key_row {
    char key_id[37];
    char *alias;
    CK_ULONG state, primary, rotating_to, protection;
    unsigned objects; /* src/cmk_record.h: 1 secret, 2 private, 4 public */
    int has_params;   /* import parameters outstanding (cmk_import.wrap_id set) */
};

/* The usage flags doctor compares across a key's versions (doctor_flags.c). */
#define DOCTOR_FLAGS 7
extern const CK_ATTRIBUTE_TYPE doctor_flag_types[DOCTOR_FLAGS];
/* Fills m's flags from a, the object's attributes read with doctor_flag_types. */
void doctor_read_flags(struct material *m, const struct attr_val *a, size_t n);
/* Older versions whose flags differ from the newest version's: a warning, 0 returned. */
int doctor_check_version_flags(const struct material *m, size_t n, json_object *checks,
                               json_object *facts);

int doctor_add_check(json_object *checks, const char *name, const char *status, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* Key ids as text: "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", in lower case. */
int doctor_uuid_text_ok(const char *t);
void doctor_lower_copy(char out[37], const char *in);
void doctor_key_id_of_bytes(const unsigned char b[16], char out[37]);

/* 1 when the store has this table (older schemas lack the later ones). */
int doctor_table_exists(sqlite3 *db, const char *name);

/* Fills m when the object is one of cmkp11's own keys or an import's wrapping pair, by
 * its label and id; 0 when it is neither. */
int token_object_identify(struct material *m, const struct attr_val *label,
                          const struct attr_val *id);

/* Why one of those belongs nowhere, or NULL: a and b are its key in the readings of the
 * store before and after the scan (NULL when absent), masters the master keys found;
 * buf holds a reason made up. */
const char *token_object_stray_reason(const struct material *m, const struct key_row *a,
                                      const struct key_row *b, size_t masters, char *buf,
                                      size_t size);

/* MissingTokenKeys: the master key when none was found and soft_keys SOFTWARE keys have
 * material sealed under it. */
json_object *token_objects_missing(size_t masters, size_t soft_keys);

/* Every version of every SOFTWARE key with material has its sealed row in the store
 * (MissingSealedMaterial). Returns 1 when the check failed. */
int doctor_check_sealed(sqlite3 *db, json_object *checks, json_object *facts);

/* The audit's rows chain (doctor_audit.c). Returns 1 when the check failed. */
int doctor_check_audit(sqlite3 *db, json_object *checks);

/* The backend module and token conf names, loaded with dlopen (kept mapped: cmkp11 loads
 * the same library afterwards), a read-only session logged in as the user with cmkctl's
 * PIN. 0, or -1 with why filled. */
int doctor_backend_open(struct ctl *ctl, const struct cmk_conf *conf, struct p11 *be, char *why,
                        size_t why_size);

#endif
