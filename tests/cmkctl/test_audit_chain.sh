#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_audit_chain.sh - the audit is a hash chain (src/audit_chain.h): doctor finds a row
# edited in the store file and a row deleted from between two others, each by its id; a
# store written before the chain is chained when cmkp11 first opens it.
. "$(dirname "$0")/lib.sh"

W=$CMK_WORK/chain
mkdir -p "$W"
create a
create b
ctl disable-key --key-id a
ctl enable-key --key-id a
ctl schedule-key-deletion --key-id b
ctl cancel-key-deletion --key-id b
# Processes writing at once each chain to the row before theirs, never two to one row.
for i in 1 2 3 4 5 6; do
    timeout 60 "$CMKCTL" create-key --alias "racer-$i" >/dev/null 2>&1 </dev/null &
done
wait
rows=$(sqlite3 "$CMK_WORK/cmk.db" "SELECT count(*) FROM audit")

ctl doctor
expect_eq "doctor: the audit chains" \
    '[(c["Status"], c["Detail"]) for c in d["Checks"] if c["Check"] == "audit"]' \
    "[('ok', '$rows rows, each chained to the one before')]"

# copy NAME SQL: a copy of the store, changed by SQL, with a configuration naming it.
copy() {
    sqlite3 "$CMK_WORK/cmk.db" ".backup $W/$1.db"
    sqlite3 "$W/$1.db" "$2"
    sed "s|^store = .*|store = $W/$1.db|" "$CMKP11_CONF" >"$W/$1.conf"
}
audit_check='[(c["Status"], c["Detail"]) for c in d["Checks"] if c["Check"] == "audit"]'

copy edited "UPDATE audit SET detail = 'nothing happened' WHERE id = 3"
CMKP11_CONF=$W/edited.conf ctl doctor
expect_eq "an edited row: unhealthy, named" "(d['Healthy'], $audit_check)" \
    "(False, [('error', 'audit row 3 no longer matches its hash (edited since it was written)')])"

copy deleted "DELETE FROM audit WHERE id = 2"
CMKP11_CONF=$W/deleted.conf ctl doctor
expect_eq "a row deleted between two: the next one does not follow" "(d['Healthy'], $audit_check)" \
    "(False, [('error', 'audit row 3 does not follow the row before it (a row between was removed, or rows were moved)')])"

copy moved "UPDATE audit SET key_id = (SELECT key_id FROM audit WHERE id = 1) WHERE id = 2"
CMKP11_CONF=$W/moved.conf ctl doctor
expect_eq "an event moved to another key: found" "$audit_check" \
    "[('error', 'audit row 2 no longer matches its hash (edited since it was written)')]"

# A store of schema 9 (no chain), as an older cmkp11 left it: chained on first open.
copy old "ALTER TABLE audit DROP COLUMN prev_hash; ALTER TABLE audit DROP COLUMN hash;
          PRAGMA user_version = 9;"
CMKP11_CONF=$W/old.conf ctl doctor
expect_eq "before cmkp11 opened it: doctor says the audit has no chain" \
    "[c['Status'] for c in d['Checks'] if c['Check'] == 'audit']" "['error']"
CMKP11_CONF=$W/old.conf ctl list-keys
expect_ok "cmkp11 opens the schema 9 store (and migrates it)"
expect_true "schema 10 now" bash -c '[ "$(sqlite3 "$1" "PRAGMA user_version")" -ge 10 ]' _ "$W/old.db"
CMKP11_CONF=$W/old.conf ctl create-key --alias after-migration
CMKP11_CONF=$W/old.conf ctl doctor
expect_eq "the old rows and a new one chain" "$audit_check" \
    "[('ok', '$((rows + 1)) rows, each chained to the one before')]"
expect_true "six racing creates were audited" \
    bash -c '[ "$(sqlite3 "$1" "SELECT count(*) FROM audit WHERE action = '"'CreateKey'"' AND key_id IN (SELECT key_id FROM cmk)")" -ge 8 ]' _ "$CMK_WORK/cmk.db"
finish
