# shellcheck shell=bash
# lib.sh - helpers for the cmkctl tests, sourced by each test_*.sh.
#
# The scripts run under tests/with-token.sh, which gives them a private SoftHSMv2 token,
# cmkp11 configuration and store, and exports CMK_MODULE, CMK_PIN, CMK_WORK, SOFTHSM2_CONF,
# CMKP11_CONF. The cmkctl binary is the script's first argument.
#
# Every cmkctl call goes through `ctl`, which keeps stdout, stderr and the exit code;
# outputs are JSON and are read with Python's json module, never grepped. A failed check
# is counted, not fatal, so one bug does not hide the next; `finish` sets the status.

set -euo pipefail

CMKCTL=${1:?usage: tests/with-token.sh MODULE bash test_x.sh CMKCTL}
: "${CMK_MODULE:?run under tests/with-token.sh}" "${CMK_WORK:?}" "${CMK_PIN:?}"

export CMKP11_MODULE=$CMK_MODULE
export CMKP11_PIN=$CMK_PIN
PY=/usr/bin/python3
OUT=$CMK_WORK/cmkctl
mkdir -p "$OUT"

# OpenSSL must not read the machine's configuration (engines, providers).
printf '# empty\n' >"$CMK_WORK/openssl-none.cnf"
export OPENSSL_CONF=$CMK_WORK/openssl-none.cnf

checks=0
failures=0
RC=0

note() { printf '# %s\n' "$*"; }

pass() {
    checks=$((checks + 1))
    printf 'ok %d - %s\n' "$checks" "$*"
}

fail() {
    checks=$((checks + 1))
    failures=$((failures + 1))
    printf 'not ok %d - %s\n' "$checks" "$*"
    printf '#   exit %s; stdout: %s\n' "$RC" "$(head -c 600 "$OUT/out" 2>/dev/null | tr '\n' ' ')"
    printf '#   stderr: %s\n' "$(head -c 600 "$OUT/err" 2>/dev/null | tr '\n' ' ')"
}

# ctl ARGS...: runs cmkctl (bounded), stdout -> $OUT/out, stderr -> $OUT/err, status -> RC.
ctl() {
    RC=0
    timeout 60 "$CMKCTL" "$@" >"$OUT/out" 2>"$OUT/err" </dev/null || RC=$?
}

# j EXPR: a Python expression over the JSON on stdout, bound to d; prints its value
# (True/False for booleans, '' when the expression fails).
j() {
    "$PY" -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2])
except Exception as e:
    v = "<" + type(e).__name__ + ">"
print(v)
' "$OUT/out" "$1"
}

# The error object cmkctl wrote on stderr (other lines, like warnings, are skipped).
err_code() {
    "$PY" -c '
import json, sys
text = open(sys.argv[1]).read()
start = text.find("{")
try:
    print(json.loads(text[start:])["Error"]["Code"] if start >= 0 else "<none>")
except Exception as e:
    print("<" + type(e).__name__ + ">")
' "$OUT/err"
}

# expect_ok DESC: the last call succeeded.
expect_ok() {
    if [ "$RC" -eq 0 ]; then pass "$1"; else fail "$1 (exit $RC)"; fi
}

# expect_eq DESC EXPR WANT: the JSON expression has the wanted value.
expect_eq() {
    local got
    got=$(j "$2")
    if [ "$got" = "$3" ]; then pass "$1"; else fail "$1: $2 is '$got', want '$3'"; fi
}

# expect_error DESC CODE EXIT: the last call failed with this error code and exit code.
expect_error() {
    local code
    code=$(err_code)
    if [ "$code" = "$2" ] && [ "$RC" -eq "$3" ]; then
        pass "$1"
    else
        fail "$1: got $code exit $RC, want $2 exit $3"
    fi
}

# expect_true DESC COMMAND...: any shell condition.
expect_true() {
    local desc=$1
    shift
    if "$@"; then pass "$desc"; else fail "$desc"; fi
}

# Other clients (pkcs11-tool, OpenSSL's engine) cannot load a module built with
# AddressSanitizer: they lack its runtime. Their checks are skipped then; cmkctl's own
# checks still run, sanitized too.
# (ldd's output is read whole first: `ldd | grep -q` under pipefail fails whenever grep
# stops reading early and ldd dies of SIGPIPE, which made the answer random.)
other_clients_can_load_module() {
    local libs
    libs=$(ldd "$CMK_MODULE" 2>/dev/null) || true
    [[ "$libs" != *libasan* ]]
}

# can_use_client WHAT COMMAND PACKAGE: 0 when another client (COMMAND) can load the module.
# A sanitized module leaves WHAT to the plain build's run of the test, with a note; a
# missing client is a failure, never a silent skip.
can_use_client() {
    if ! other_clients_can_load_module; then
        note "the module is sanitized, $2 cannot load it: $1 left to the plain build"
        return 1
    fi
    if ! command -v "$2" >/dev/null; then
        fail "$2 is not installed (Debian package $3): $1 cannot be checked"
        return 1
    fi
}

# quiet COMMAND...: a command whose output would only clutter the test log.
quiet() { "$@" >/dev/null 2>&1; }

# create ALIAS ARGS...: creates a key; its key id is left in ID (empty on failure).
# shellcheck disable=SC2034 # ID is for the calling script
create() {
    local alias=$1
    shift
    ID=
    ctl create-key --alias "$alias" "$@"
    if [ "$RC" -eq 0 ]; then
        ID=$(j 'd["KeyMetadata"]["KeyId"]')
    else
        fail "create-key --alias $alias $*"
    fi
}

finish() {
    printf '1..%d\n' "$checks"
    if [ "$failures" -ne 0 ]; then
        printf '# %d of %d checks failed\n' "$failures" "$checks"
        exit 1
    fi
    exit 0
}
