#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_packaging.sh - what ships around the binary: bash completion and man page agree with
# the option tables (`cmkctl COMMAND --help`), and the systemd units verify and run
# `cmkctl rotate-due` the way the service does.
. "$(dirname "$0")/lib.sh"

src=$(cd "$(dirname "$0")/../.." && pwd)
completion=$src/tools/cmkctl/cmkctl.bash-completion
manpage=$src/tools/cmkctl/cmkctl.1
service=$src/conf/cmkp11-rotate.service
timer=$src/conf/cmkp11-rotate.timer

ctl --help
# The command list stops at the blank line before the global options.
commands=$("$PY" -c '
import sys
out, lines = [], open(sys.argv[1]).read().split("\n")
for l in lines[lines.index("Commands:") + 1:]:
    if not l.strip():
        break
    out.append(l.split()[0])
print(" ".join(out))' "$OUT/out")
expect_true "cmkctl --help lists the new commands" bash -c \
    'for c in rotate-key rotate-due list-key-versions encrypt decrypt; do [[ " $1 " == *" $c "* ]] || exit 1; done' _ "$commands"

# complete WORDS...: what the bash completion offers for the last word.
complete_words() {
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _cmkctl; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$completion" "$@"
}
# help_options COMMAND: the options `cmkctl COMMAND --help` documents.
help_options() {
    timeout 60 "$CMKCTL" "$1" --help | "$PY" -c '
import re, sys
text = sys.stdin.read()
part = text.split("\nOptions:\n", 1)[1].split("\n\n", 1)[0] if "\nOptions:\n" in text else ""
print(" ".join(sorted(m.group(1) for m in re.finditer(r"^  (--[a-z0-9-]+)", part, re.M))))'
}

expect_true "completion script passes bash -n" bash -n "$completion"
offered=$(complete_words cmkctl '' | sort | tr '\n' ' ')
expect_true "completion offers every command (and help)" bash -c \
    '[ "$1" = "$(printf "%s\n" $2 help | sort | tr "\n" " ")" ]' _ "$offered" "$commands"
missing=
for c in $commands; do
    want=$(help_options "$c")
    got=$(complete_words cmkctl "$c" -- | grep -vxE -- '--(module|token|pin-file|pin|output|help|version)' |
        sort | tr '\n' ' ' | sed 's/ $//' || true)
    [ "$got" = "$want" ] || missing="$missing $c: completion '$got' vs help '$want';"
done
expect_true "completion offers exactly each command's options ${missing:+($missing)}" [ -z "$missing" ]
globals=$(complete_words cmkctl rotate-due -- | sort | tr '\n' ' ')
expect_true "completion offers the global options after a command" \
    [ "$globals" = "--help --module --output --pin --pin-file --token --version " ]
expect_true "completion of a command prefix" bash -c '[ "$(printf "%s " $1)" = "rotate-key rotate-due " ]' _ \
    "$(complete_words cmkctl ro)"
expect_true "completion of values: --key-spec, --output=, after a flag" bash -c \
    '[ "$1" = "EC_P256 EC_P384 EC_P521 EC_P256K EC_SM2" ] && [ "$2" = table ] && [ "$3" = "--key-id" ]' _ \
    "$(complete_words cmkctl create-key --key-spec EC | tr '\n' ' ' | sed 's/ $//')" \
    "$(complete_words cmkctl --output = t)" \
    "$(complete_words cmkctl --output table encrypt --plaintext x --key)"
expect_true "completion of a file option offers files" bash -c '[ "$1" = "$2" ]' _ \
    "$(complete_words cmkctl decrypt --ciphertext-blob-file "$src/tools/cmkctl/cmkctl.bash-comp")" \
    "$completion"

# The man page: renders without warnings, names every command and option.
if command -v groff >/dev/null; then
    expect_true "man page renders without groff warnings" \
        bash -c '[ -z "$(groff -man -Tutf8 -ww -z "$1" 2>&1)" ]' _ "$manpage"
    groff -man -Tascii -P-c -P-b -P-u "$manpage" 2>/dev/null >"$CMK_WORK/man.txt"
    absent=
    for c in $commands; do
        grep -q -- "$c" "$CMK_WORK/man.txt" || absent="$absent $c"
        for o in $(help_options "$c"); do
            grep -q -- "$o" "$CMK_WORK/man.txt" || absent="$absent $c$o"
        done
    done
    expect_true "man page names every command and option ${absent:+(missing:$absent)}" [ -z "$absent" ]
else
    note "groff missing: man page rendering not checked"
fi

# The systemd units: as systemd reads them, then the service's command line for real.
expect_true "service: oneshot, rotate-due with the PIN from a credential file, hardened" "$PY" -c '
import sys
keys = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line and not line.startswith("#") and "=" in line:
        k, v = line.split("=", 1)
        keys.setdefault(k, []).append(v)
assert keys["Type"] == ["oneshot"], keys["Type"]
assert keys["ExecStart"][0].endswith("cmkctl --pin-file %d/pin rotate-due")
assert keys["LoadCredential"] == ["pin:/etc/cmkp11/pin"]
assert "CMKP11_CONF=/etc/cmkp11/cmkp11.conf" in keys["Environment"]
for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes")):
    assert keys[k] == [v], k
assert "/var/lib/cmkp11" in keys["ReadWritePaths"][0].split()
assert "-/var/lib/softhsm/tokens" in keys["ReadWritePaths"][0].split()
' "$service"
expect_true "timer: hourly, persistent, randomized" "$PY" -c '
import sys
keys = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l and not l.startswith("#"))
assert keys["OnCalendar"] == "hourly" and keys["Persistent"] == "true"
assert keys["RandomizedDelaySec"] and keys["Unit"] == "cmkp11-rotate.service"
assert keys["WantedBy"] == "timers.target"
' "$timer"
if command -v systemd-analyze >/dev/null; then
    # ExecStart must name an executable and the man page must be found: use the built ones.
    mkdir -p "$CMK_WORK/units" "$CMK_WORK/man/man1"
    sed "s|/usr/bin/cmkctl|$CMKCTL|" "$service" >"$CMK_WORK/units/cmkp11-rotate.service"
    cp "$timer" "$CMK_WORK/units/"
    cp "$manpage" "$CMK_WORK/man/man1/"
    RC=0
    MANPATH=$CMK_WORK/man: timeout 60 systemd-analyze verify "$CMK_WORK/units/cmkp11-rotate.service" \
        "$CMK_WORK/units/cmkp11-rotate.timer" >"$OUT/out" 2>"$OUT/err" || RC=$?
    expect_true "systemd-analyze verify accepts both units" bash -c '[ "$1" -eq 0 ] && [ ! -s "$2" ]' \
        _ "$RC" "$OUT/err"
else
    note "systemd-analyze missing: units not verified"
fi

# What the service runs: the PIN file in the credentials folder (a wrong $CMKP11_PIN shows
# the file is what counts).
create due --enable-automatic-rotation --rotation-interval 7d
due=$ID
mkdir -p "$CMK_WORK/credentials"
printf '%s\n' "$CMK_PIN" >"$CMK_WORK/credentials/pin"
chmod 400 "$CMK_WORK/credentials/pin"
exec_start=$(sed -n 's/^ExecStart=[^ ]* //p' "$service" | sed "s|%d|$CMK_WORK/credentials|")
# shellcheck disable=SC2086 # the command line is split as systemd splits it (no quotes)
CMKP11_PIN=9999 CMKP11_TEST_NOW=$(($(date +%s) + 8 * 86400)) ctl $exec_start
expect_eq "the service's command rotates the due key" \
    '[(k["KeyId"], k["KeyVersionId"]) for k in d["RotatedKeys"]]' "[('$due', '2')]"
expect_true "and warns about nothing (the credential is private)" [ ! -s "$OUT/err" ]
finish
