#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_store.sh - audit-log and doctor, which read the module's store read-only.
. "$(dirname "$0")/lib.sh"

start=$(date +%s)
create audited
audited=$ID
create other --key-spec EC_P256
other=$ID
ctl disable-key --key-id audited
ctl enable-key --key-id audited
ctl disable-key --key-id audited

ctl audit-log
expect_ok "audit-log"
expect_eq "events are in time order" '[e["Id"] for e in d["Events"]] == sorted(e["Id"] for e in d["Events"])' True
expect_eq "CreateKey rows for both keys" \
    "sorted(e['KeyId'] for e in d['Events'] if e['Action'] == 'CreateKey')" \
    "$("$PY" -c 'import sys; print(sorted(sys.argv[1:]))' "$audited" "$other")"
expect_eq "DisableKey rows" "[e['KeyId'] for e in d['Events'] if e['Action'] == 'DisableKey']" \
    "['$audited', '$audited']"
expect_eq "rows name who and when" \
    "all(e['Uid'] == $(id -u) and e['Pid'] > 0 and e['Timestamp'] >= $start - 5 for e in d['Events'])" True
expect_eq "Time is RFC 3339 of Timestamp" \
    "all(__import__('time').strftime('%Y-%m-%dT%H:%M:%SZ', __import__('time').gmtime(e['Timestamp'])) == e['Time'] for e in d['Events'])" True

ctl audit-log --key-id audited
expect_eq "--key-id by alias" "sorted(set(e['KeyId'] for e in d['Events']))" "['$audited']"
expect_eq "--key-id: create, disable, enable, disable" '[e["Action"] for e in d["Events"]]' \
    "['CreateKey', 'DisableKey', 'EnableKey', 'DisableKey']"
ctl audit-log --key-id "$audited" --action DisableKey
expect_eq "--action filter" '(d["TotalCount"], sorted(set(e["Action"] for e in d["Events"])))' \
    "(2, ['DisableKey'])"
ctl audit-log --action CreateKey --action EnableKey
expect_eq "--action twice" 'sorted(e["Action"] for e in d["Events"])' "['CreateKey', 'CreateKey', 'EnableKey']"
ctl audit-log --limit 2
expect_eq "--limit keeps the newest" '[e["Action"] for e in d["Events"]]' "['EnableKey', 'DisableKey']"
ctl audit-log --since "$(date -u -d @$((start + 3600)) +%Y-%m-%dT%H:%M:%SZ)"
expect_eq "--since in the future: nothing" 'd["Events"]' "[]"
ctl audit-log --until $((start - 3600))
expect_eq "--until in the past (unix time): nothing" 'd["TotalCount"]' 0
ctl audit-log --since yesterday
expect_error "--since not a time" InvalidParameter 2
ctl audit-log --key-id no-such-alias
expect_error "--key-id of an unknown alias" ResourceUnavailable.CmkNotFound 3

# A deleted key's history stays and is found by its id.
ctl schedule-key-deletion --key-id other --pending-window-in-days 7
CMKP11_TEST_NOW=$(($(date +%s) + 8 * 86400)) ctl purge-due
ctl audit-log --key-id "$other"
expect_eq "a purged key's history: created, scheduled, deleted" \
    '(d["Events"][0]["Action"], "ScheduleKeyDeletion" in [e["Action"] for e in d["Events"]], d["Events"][-1]["Action"])' \
    "('CreateKey', True, 'DeleteKey')"

ctl doctor
expect_ok "doctor exit 0"
expect_eq "doctor: healthy" 'd["Healthy"]' True
expect_eq "doctor: every check ok" '[(c["Check"], c["Status"]) for c in d["Checks"] if c["Status"] != "ok"]' "[]"
expect_eq "doctor: the checks" '[c["Check"] for c in d["Checks"]]' \
    "['config', 'store', 'integrity', 'schema', 'keys', 'audit', 'sealed', 'material', 'version-flags', 'module', 'token']"
expect_eq "doctor: keys per state" '(d["KeysByState"]["Enabled"], d["KeysByState"]["Disabled"], d["KeysByState"]["PendingDeletion"])' "(0, 1, 0)"
expect_eq "doctor: schema version" 'd["SchemaVersion"] >= 1' True
ctl doctor --output table
expect_true "doctor --output table" bash -c '[ "$1" -eq 0 ] && grep -Eq "^Healthy +true$" "$2"' _ "$RC" "$OUT/out"

# Broken: a store path that does not exist, and a config that does not parse.
sed "s|^store = .*|store = $CMK_WORK/missing.db|" "$CMKP11_CONF" >"$CMK_WORK/nostore.conf"
CMKP11_CONF=$CMK_WORK/nostore.conf ctl doctor
expect_true "doctor with a missing store: exit 1" [ "$RC" -eq 1 ]
expect_eq "doctor with a missing store: unhealthy, store check fails" \
    '(d["Healthy"], [c["Status"] for c in d["Checks"] if c["Check"] == "store"])' "(False, ['error'])"
expect_eq "doctor with a missing store: the material is not compared" \
    '[c["Status"] for c in d["Checks"] if c["Check"] == "material"]' "['skipped']"
printf '[token\nstore = x\n' >"$CMK_WORK/broken.conf"
CMKP11_CONF=$CMK_WORK/broken.conf ctl doctor
expect_eq "doctor with an unparsable config" \
    '[(c["Check"], c["Status"]) for c in d["Checks"]]' \
    "[('config', 'error'), ('store', 'skipped'), ('material', 'skipped'), ('module', 'error'), ('token', 'skipped')]"
CMKP11_CONF=$CMK_WORK/broken.conf ctl audit-log
expect_error "audit-log without a usable config" InternalError 6
finish
