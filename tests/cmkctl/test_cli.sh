#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_cli.sh - the command line itself: help for every command, and bad input refused
# with one clear error and the documented exit code.
. "$(dirname "$0")/lib.sh"

ctl --help
expect_ok "cmkctl --help"
commands="create-key describe-key list-keys list-aliases update-alias update-key-description
enable-key disable-key schedule-key-deletion cancel-key-deletion purge-due enable-key-rotation
disable-key-rotation rotate-key rotate-due list-key-versions tag-resource untag-resource
get-public-key encrypt decrypt sign verify audit-log doctor"
for c in $commands; do
    expect_true "cmkctl --help lists $c" "$PY" -c '
import sys
print_ok = any(line.split()[:1] == [sys.argv[2]] for line in open(sys.argv[1]))
sys.exit(0 if print_ok else 1)' "$OUT/out" "$c"
done
for c in $commands; do
    ctl "$c" --help
    expect_true "$c --help succeeds and shows usage" \
        bash -c '[ "$1" -eq 0 ] && head -1 "$2" | grep -q "^usage: cmkctl $3 "' _ "$RC" "$OUT/out" "$c"
done
# Every command has its section in the README, with an example.
readme=$(dirname "$0")/../../tools/cmkctl/README.md
for c in $commands; do
    expect_true "README documents $c" "$PY" -c '
import sys
heads = [l[4:].strip() for l in open(sys.argv[1]) if l.startswith("### ")]
sys.exit(0 if any(sys.argv[2] in h.split(", ") for h in heads) else 1)' "$readme" "$c"
done
# The help is generated from the option tables; spot-check that it shows them all.
ctl create-key --help
for o in alias description key-spec key-usage origin protection-level enable-automatic-rotation \
    rotation-interval tags; do
    expect_true "create-key --help documents --$o" grep -q -- "--$o" "$OUT/out"
done

ctl help sign
expect_true "cmkctl help sign" grep -q -- "--signing-algorithm" "$OUT/out"
ctl --version
expect_ok "cmkctl --version"

ctl frobnicate
expect_error "unknown command" InvalidAction 2
ctl
expect_error "no command" InvalidAction 2
ctl list-keys --frob
expect_error "unknown option" InvalidParameter 2
ctl list-keys extra
expect_error "stray argument" InvalidParameter 2
ctl describe-key
expect_error "missing required --key-id" MissingParameter 2
ctl describe-key --key-id
expect_error "option without its value" MissingParameter 2
ctl disable-key --key-id a --key-id b
expect_error "option given twice" InvalidParameter 2
ctl list-keys --output yaml
expect_error "unknown output format" InvalidParameter 2
ctl --module "$CMK_WORK/no-such-module.so" list-keys
expect_error "a module that does not load" InternalError 6
ctl describe-key --key-id 00000000-0000-4000-8000-000000000000
expect_error "a key id that does not exist" ResourceUnavailable.CmkNotFound 3
ctl describe-key --key-id no-such-alias
expect_error "an alias that does not exist" ResourceUnavailable.CmkNotFound 3
ctl describe-key --key-id 'pkcs11:object=x;bogus'
expect_error "a malformed pkcs11: URI" InvalidParameter 2

ctl --token cmkp11 list-keys
expect_ok "--token names the token by label"
ctl list-keys --token no-such-token
expect_error "--token of a token that is not there" InternalError 6

# The backend is down: the configuration names a module that is gone.
sed "s|^module = .*|module = $CMK_WORK/gone.so|" "$CMKP11_CONF" >"$CMK_WORK/down.conf"
CMKP11_CONF=$CMK_WORK/down.conf ctl list-keys
expect_error "backend down" InternalError 6
# stderr is the JSON error alone (`2> err.json; jq . err.json` works), and the module's
# reason, which it logs to stderr when it has no log file, is in the Message and ModuleLog.
json_error() {
    "$PY" -c '
import json, sys
e = json.load(open(sys.argv[1]))["Error"]
print("(module: " in e["Message"] and sys.argv[2] in e["Message"], any(sys.argv[2] in l for l in e["ModuleLog"]))
' "$OUT/err" "$1"
}
sed '/^file *=/d' "$CMK_WORK/down.conf" >"$CMK_WORK/down-stderr.conf"
CMKP11_CONF=$CMK_WORK/down-stderr.conf ctl list-keys
expect_error "backend down, the module logging to stderr" InternalError 6
expect_true "backend down: stderr is one JSON object naming the module's reason" \
    bash -c '[ "$1" = "True True" ]' _ "$(json_error gone.so)"
create dup-alias
sed '/^file *=/d' "$CMKP11_CONF" >"$CMK_WORK/stderr.conf"
CMKP11_CONF=$CMK_WORK/stderr.conf ctl create-key --alias dup-alias
expect_error "alias taken" InvalidParameterValue.AliasAlreadyExists 2
expect_true "alias taken: stderr is one JSON object with the module's warning" \
    bash -c '[ "$1" = "True True" ]' _ "$(json_error dup-alias)"

ctl create-key --alias t1 --output table
expect_true "--output table prints aligned rows" \
    bash -c '[ "$1" -eq 0 ] && grep -Eq "^KeyState +Enabled$" "$2"' _ "$RC" "$OUT/out"
ctl describe-key --key-id t1 --output table --frob
expect_true "errors in table mode are one line on stderr" \
    bash -c '[ "$1" -eq 2 ] && [ "$(wc -l <"$2")" -eq 1 ] && grep -q "^cmkctl: InvalidParameter: " "$2"' \
    _ "$RC" "$OUT/err"
ctl describe-key --key-id "$(printf 'evil\033]0;owned\007\033[2J')" --output table
expect_true "a table error shows control characters from --key-id as \\xNN, never raw" \
    bash -c '[ "$1" -eq 3 ] && ! grep -q "$(printf "\033")" "$2" && grep -qF "evil\x1b]0;owned\x07" "$2"' \
    _ "$RC" "$OUT/err"
finish
