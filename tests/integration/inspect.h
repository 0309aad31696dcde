/* inspect.h - looking behind the module: the backend token and the SQLite store,
 * read directly, to check what the module claims. Call only while the module is
 * finalised (the backend library is shared within the process). */
#ifndef CMKP11_TEST_INSPECT_H
#define CMKP11_TEST_INSPECT_H

#include <p11-kit/pkcs11.h>
#include <stddef.h>

/* The backend's slot whose token has label, (CK_SLOT_ID)-1 when none. */
CK_SLOT_ID inspect_backend_slot(CK_FUNCTION_LIST_PTR be, const char *label);

/* Number of backend objects whose label starts with "cmkp11/" (CMK material). */
long inspect_backend_material(void);
/* Number of backend token objects whose label starts with prefix ("" for all). */
long inspect_backend_objects(const char *prefix);
/* Destroys them; returns how many went. */
long inspect_backend_destroy(const char *prefix);
/* Runs SQL that changes the store (to damage it on purpose): 0 when it changed a row. */
int inspect_store_exec(const char *sql);
/* Result of a single-number SQL query on the store, -1 on error. */
long inspect_store_count(const char *sql);
/* Lines of the module's log (CMK_WORK/cmkp11.log) that contain needle, -1 if unreadable. */
long inspect_log_count(const char *needle);
/* Everything a refused call must leave alone, as text: the store's keys, tags, versions,
 * pass-through records and audit rows, and the backend's object counts. -1 on error. */
int inspect_snapshot(char *out, size_t size);

#endif
