#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_rotate_due.sh - automatic rotation through rotate-due, with the module's test clock
# (CMKP11_TEST_NOW) moved past the interval: due keys rotate exactly once, others not.
. "$(dirname "$0")/lib.sh"

create weekly --enable-automatic-rotation --rotation-interval 7d
weekly=$ID
create monthly --enable-automatic-rotation --rotation-interval 30d
monthly=$ID
create off
create paused --enable-automatic-rotation --rotation-interval 7d
paused=$ID
ctl disable-key --key-id paused
create web --key-spec EC_P256

# versions KEY: the key's version ids, as list-key-versions gives them (at the real time).
versions() {
    ctl list-key-versions --key-id "$1"
    j '[v["KeyVersionId"] for v in d["KeyVersions"]]'
}
# ctl_on_terminal ARGS...: as ctl, with cmkctl's stderr a terminal (a pty); what it showed
# there goes to $OUT/err.
ctl_on_terminal() {
    RC=0
    "$PY" -c '
import os, pty, subprocess, sys
master, slave = pty.openpty()
p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL,
                     stdout=open(sys.argv[1] + "/out", "w"), stderr=slave)
os.close(slave)
shown = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    shown += chunk
open(sys.argv[1] + "/err", "wb").write(shown)
sys.exit(p.wait())' "$OUT" "$CMKCTL" "$@" || RC=$?
}
# rfc3339 SECONDS
rfc3339() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

ctl rotate-due
expect_eq "nothing is due now" '(d["RotatedKeys"], d["RotatedCount"], d["NotRotatedKeys"])' "([], 0, [])"
expect_eq "CheckTime is now" \
    "abs(__import__('calendar').timegm(__import__('time').strptime(d['CheckTime'], '%Y-%m-%dT%H:%M:%SZ')) - __import__('time').time()) < 120" True

later=$(($(date +%s) + 8 * 86400))
CMKP11_TEST_NOW=$later ctl rotate-due
expect_ok "rotate-due 8 days later"
expect_true "in a script (stderr not a terminal), rotate-due shows no progress" test ! -s "$OUT/err"
expect_eq "exactly the weekly key rotated, from 1 to 2" \
    '[(k["KeyId"], k["Alias"], k["KeySpec"], k["PreviousKeyVersionId"], k["KeyVersionId"]) for k in d["RotatedKeys"]]' \
    "[('$weekly', 'weekly', 'AES_256', '1', '2')]"
expect_eq "RotatedCount 1, nothing left behind" '(d["RotatedCount"], d["NotRotatedKeys"])' "(1, [])"
expect_eq "CheckTime follows the test clock" 'd["CheckTime"]' "$(rfc3339 "$later")"
expect_eq "rotated at the test clock's now; next rotation 7 days after it" \
    '(d["RotatedKeys"][0]["RotationDate"], d["RotatedKeys"][0]["NextRotationDate"])' \
    "('$(rfc3339 "$later")', '$(rfc3339 $((later + 7 * 86400)))')"

CMKP11_TEST_NOW=$later ctl rotate-due
expect_eq "run again at the same time: nothing" '(d["RotatedKeys"], d["RotatedCount"], d["NotRotatedKeys"])' "([], 0, [])"
CMKP11_TEST_NOW=$((later + 3600)) ctl rotate-due
expect_eq "an hour later: still nothing" 'd["RotatedCount"]' 0

expect_eq "weekly: versions 1 and 2" "$(versions weekly)" "['1', '2']"
expect_eq "weekly: the second is automatic and primary" \
    '[(v["Reason"], v["Primary"]) for v in d["KeyVersions"]]' "[('create', False), ('automatic', True)]"
expect_eq "monthly (30 days, not due): untouched" "$(versions monthly)" "['1']"
expect_eq "rotation off: untouched" "$(versions off)" "['1']"
expect_eq "disabled with rotation on: waits" "$(versions paused)" "['1']"
expect_eq "EC key: untouched" "$(versions web)" "['1']"
ctl describe-key --key-id weekly
expect_eq "describe-key after: primary 2, dates moved" \
    '(d["KeyMetadata"]["PrimaryKeyVersion"], d["KeyMetadata"]["LastRotationDate"], d["KeyMetadata"]["NextRotationDate"])' \
    "('2', '$(rfc3339 "$later")', '$(rfc3339 $((later + 7 * 86400)))')"
ctl audit-log --key-id weekly --action RotateKey
expect_eq "audit-log: one automatic RotateKey" '[(e["Action"], "automatic" in e["Detail"]) for e in d["Events"]]' \
    "[('RotateKey', True)]"

# A disabled key rotates at the first check after it is enabled again.
ctl enable-key --key-id paused
CMKP11_TEST_NOW=$later ctl rotate-due
expect_eq "re-enabled: the overdue key rotates now, only it" \
    '[(k["KeyId"], k["PreviousKeyVersionId"], k["KeyVersionId"]) for k in d["RotatedKeys"]]' "[('$paused', '1', '2')]"

# 31 days later both weekly keys and the monthly one are due: one rotation each.
month=$(($(date +%s) + 31 * 86400))
CMKP11_TEST_NOW=$month ctl_on_terminal rotate-due
expect_true "on a terminal, rotate-due shows how far it is (3 keys), then clears the line" \
    bash -c 'grep -aq "rotate-due, keys checked: 3/3" "$1" && [ "$(tail -c 4 "$1" | od -An -c | tr -d " ")" = "\\r033[K" ]' _ "$OUT/err"
expect_eq "31 days later: three keys, each one version up" \
    'sorted((k["KeyId"], k["PreviousKeyVersionId"], k["KeyVersionId"]) for k in d["RotatedKeys"])' \
    "$("$PY" -c 'import sys; print(sorted([(sys.argv[1], "2", "3"), (sys.argv[2], "1", "2"), (sys.argv[3], "2", "3")]))' "$weekly" "$monthly" "$paused")"
expect_eq "rotation off: still untouched" "$(versions off)" "['1']"

# Four processes at once: the key rotates exactly once.
create busy --enable-automatic-rotation --rotation-interval 7d
busy=$ID
soon=$(($(date +%s) + 8 * 86400))
pids=()
for i in 1 2 3 4; do
    CMKP11_TEST_NOW=$soon timeout 120 "$CMKCTL" rotate-due >"$OUT/due$i" 2>"$OUT/due$i.err" </dev/null &
    pids+=($!)
done
statuses=
for pid in "${pids[@]}"; do
    st=0
    wait "$pid" || st=$?
    statuses="$statuses$st"
done
expect_true "four concurrent rotate-due: all exit 0" [ "$statuses" = 0000 ]
expect_eq "four concurrent rotate-due: one new version" "$(versions busy)" "['1', '2']"
expect_true "every report says 1 -> 2 or not rotated, none more; at least one saw it rotate" "$PY" -c '
import json, sys
busy, seen = sys.argv[1], 0
for f in sys.argv[2:]:
    d = json.load(open(f))
    for k in d["RotatedKeys"]:
        if k["KeyId"] == busy:
            assert (k["PreviousKeyVersionId"], k["KeyVersionId"]) == ("1", "2"), k
            seen += 1
    for k in d["NotRotatedKeys"]:
        assert k["KeyId"] == busy and k["KeyVersionId"] in ("1", "2"), k
sys.exit(0 if seen >= 1 else 1)' "$busy" "$OUT/due1" "$OUT/due2" "$OUT/due3" "$OUT/due4"

# A rotation that fails for real. The store refuses to make version 2 primary (a trigger
# stands in for a full disk or a damaged store): the module destroys the new material and
# releases its claim, and the key stays due. rotate-due must say so with its exit code,
# or its systemd timer never reports a failure.
if ! command -v sqlite3 >/dev/null; then
    fail "sqlite3 is not installed (Debian package sqlite3): cannot make a rotation fail"
    finish
fi
create fragile --enable-automatic-rotation --rotation-interval 7d
fragile=$ID
refuse="CREATE TRIGGER test_refuse_rotation BEFORE UPDATE OF primary_version ON cmk
    WHEN NEW.key_id = '$fragile' AND NEW.primary_version != OLD.primary_version
    BEGIN SELECT RAISE(ABORT, 'refused by test_rotate_due.sh'); END;"
expect_true "the store gets a trigger that refuses fragile's new primary version" \
    sqlite3 "$CMK_WORK/cmk.db" "$refuse"
ctl disable-key --key-id paused # due as well at that time, but Disabled: it waits
due_at=$(($(date +%s) + 40 * 86400))
CMKP11_TEST_NOW=$due_at ctl rotate-due
expect_true "a due key whose rotation failed: exit 1" [ "$RC" -eq 1 ]
expect_eq "the report is still printed: fragile in NotRotatedKeys at version 1" \
    '[(k["KeyId"], k["KeyVersionId"]) for k in d["NotRotatedKeys"]]' "[('$fragile', '1')]"
expect_eq "the other due keys rotated (monthly is not due); the Disabled one is in neither list" \
    'sorted(k["Alias"] for k in d["RotatedKeys"]) + [k["Alias"] for k in d["NotRotatedKeys"] if k["Alias"] == "paused"]' \
    "['busy', 'weekly']"
expect_true "stderr names the failure and the exit code" grep -q "1 due key did not rotate.*exit 1" "$OUT/err"
expect_true "the module log shows the failed rotation of fragile" \
    grep -q "RotateKey: key $fragile: making version 2 failed" "$CMK_WORK/cmkp11.log"
expect_eq "fragile stays at version 1" "$(versions fragile)" "['1']"
ctl doctor
expect_eq "the failed version left no material behind" \
    '([c["Status"] for c in d["Checks"] if c["Check"] == "material"], d["StrayMaterial"])' "(['ok'], [])"

# The Disabled key alone is due: it waits, and that is no failure.
sqlite3 "$CMK_WORK/cmk.db" "DROP TRIGGER test_refuse_rotation" || fail "cannot drop the trigger"
ctl disable-key --key-id fragile
CMKP11_TEST_NOW=$due_at ctl rotate-due
expect_ok "only Disabled keys due: exit 0"
expect_eq "only Disabled keys due: nothing rotated, nothing failed" \
    '(d["RotatedKeys"], d["NotRotatedKeys"])' "([], [])"
ctl enable-key --key-id fragile
CMKP11_TEST_NOW=$due_at ctl rotate-due
expect_ok "without the trigger: exit 0"
expect_eq "without the trigger fragile rotates, 1 -> 2" \
    '([(k["KeyId"], k["PreviousKeyVersionId"], k["KeyVersionId"]) for k in d["RotatedKeys"]], d["NotRotatedKeys"])' \
    "([('$fragile', '1', '2')], [])"

# Failures: a wrong PIN, a store that cannot be read.
printf '0000\n' >"$CMK_WORK/wrong-pin"
chmod 600 "$CMK_WORK/wrong-pin"
ctl --pin-file "$CMK_WORK/wrong-pin" rotate-due
expect_error "rotate-due with a wrong PIN" UnauthorizedOperation 5
printf '[token\nstore = x\n' >"$CMK_WORK/broken.conf"
CMKP11_CONF=$CMK_WORK/broken.conf ctl rotate-due
expect_error "rotate-due without a usable config" InternalError 6
ctl rotate-due --key-id weekly
expect_error "rotate-due takes no key" InvalidParameter 2
finish
