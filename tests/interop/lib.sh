# lib.sh - shared helpers for the interop tests, sourced by each script after
# `set -euo pipefail`. The scripts run under tests/with-token.sh, which gives them a
# private SoftHSMv2 token, cmkp11 config and store, and exports CMK_MODULE, CMK_PIN,
# CMK_TOKEN, CMK_WORK, CMK_BACKEND, CMK_BACKEND_TOKEN, SOFTHSM2_CONF, CMKP11_CONF.
#
# Style: every client call goes through `run`, which bounds it with `timeout` and keeps
# its output in $CMK_WORK/out/<name>, so checks grep what the client really printed.
# A failed check is counted, not fatal: one module bug must not hide the next one.
# `finish` prints the tally and sets the exit status.

: "${CMK_MODULE:?run this through tests/with-token.sh MODULE SCRIPT}"
: "${CMK_WORK:?run this through tests/with-token.sh MODULE SCRIPT}"
: "${CMK_PIN:?}" "${CMK_TOKEN:?}"

# Bound the whole script even when it is run by hand, not only under CTest. The bound
# is below the CTest TIMEOUT (120 s) so that with-token.sh still prints the module log
# and removes the temporary folder.
if [ -z "${CMK_INTEROP_BOUNDED:-}" ]; then
    export CMK_INTEROP_BOUNDED=1
    exec timeout --kill-after=5 "${CMK_INTEROP_TIMEOUT:-100}" bash "$0" "$@"
fi

# p11-kit (behind p11tool) resolves a relative module path against its own module
# folder, not the working directory; every client gets the absolute path.
CMK_MODULE=$(realpath "$CMK_MODULE")
export CMK_MODULE

STEP_TIMEOUT=${CMK_INTEROP_STEP_TIMEOUT:-60}
OUT=$CMK_WORK/out
mkdir -p "$OUT"

# OpenSSL must not read the machine's /etc/ssl/openssl.cnf (it could load engines or
# providers of its own). Scripts that need the pkcs11 engine write their own file.
printf '# empty: interop tests use no global OpenSSL configuration\n' >"$CMK_WORK/openssl-none.cnf"
export OPENSSL_CONF=$CMK_WORK/openssl-none.cnf

checks=0
failures=0
failed=()
RC=0

note() { printf '# %s\n' "$*"; }

pass() {
    checks=$((checks + 1))
    printf 'ok %d - %s\n' "$checks" "$*"
}

fail() {
    checks=$((checks + 1))
    failures=$((failures + 1))
    failed+=("$checks - $*")
    printf 'not ok %d - %s\n' "$checks" "$*"
}

# require_tool COMMAND PACKAGE: a missing client is an error of the machine, named with
# the Debian package that provides it; nothing else in the script can run without it.
require_tool() {
    if ! command -v "$1" >/dev/null 2>&1; then
        fail "$1 is not installed (Debian package $2)"
        finish
    fi
}

# run NAME COMMAND...: runs COMMAND bounded by STEP_TIMEOUT with stdout and stderr in
# $OUT/NAME and its status in RC; prints both so a failing test shows its evidence.
run() {
    local name=$1
    shift
    # Shell-quoted, so a failing step can be pasted as its reproduction.
    printf '$'
    printf ' %q' "$@"
    printf '\n'
    RC=0
    timeout --kill-after=5 "$STEP_TIMEOUT" "$@" >"$OUT/$name" 2>&1 || RC=$?
    sed 's/^/    /' "$OUT/$name"
    if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
        fail "$name: timed out after ${STEP_TIMEOUT}s"
    fi
}

# ok NAME COMMAND...: run, and check that it exits 0.
ok() {
    local name=$1
    run "$@"
    if [ "$RC" -eq 0 ]; then
        pass "$name exits 0"
    elif [ "$RC" -ne 124 ] && [ "$RC" -ne 137 ]; then # a timeout is already reported
        fail "$name exits $RC, expected 0"
    fi
}

# refused NAME CKR_CODE COMMAND...: run, and check that it fails naming CKR_CODE.
refused() {
    local name=$1 code=$2
    shift 2
    run "$name" "$@"
    if [ "$RC" -ne 0 ] && grep -q -- "$code" "$OUT/$name"; then
        pass "$name is refused with $code"
    else
        fail "$name: expected a refusal with $code, got exit $RC"
    fi
}

# has NAME ERE WHAT / lacks NAME ERE WHAT: the output of step NAME does / does not
# contain a line matching ERE.
has() {
    if grep -Eq -- "$2" "$OUT/$1"; then pass "$1: $3"; else fail "$1: $3 (no line matches /$2/)"; fi
}

lacks() {
    if grep -Eq -- "$2" "$OUT/$1"; then
        fail "$1: $3 (unexpected: $(grep -E -m1 -- "$2" "$OUT/$1"))"
    else
        pass "$1: $3"
    fi
}

# count_is NAME ERE N WHAT: exactly N lines of step NAME's output match ERE.
count_is() {
    local n
    n=$(grep -Ec -- "$2" "$OUT/$1" || true)
    if [ "$n" -eq "$3" ]; then pass "$1: $4"; else fail "$1: $4 (found $n lines matching /$2/, expected $3)"; fi
}

# block NAME ERE NEW: copies into step NEW the first object of step NAME's listing
# whose header line matches ERE, up to the next unindented line (pkcs11-tool -O and
# p11tool print one indented block per object).
block() {
    awk -v re="$2" 'found && /^[^[:space:]]/ {exit} $0 ~ re {found = 1} found' "$OUT/$1" >"$OUT/$3"
}

# check WHAT COMMAND...: a bounded command that must succeed (file comparisons,
# plain-OpenSSL verifications of what the token produced).
check() {
    local what=$1 rc=0
    shift
    timeout --kill-after=5 "$STEP_TIMEOUT" "$@" >"$OUT/check.last" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "$what"
    else
        sed 's/^/    /' "$OUT/check.last"
        fail "$what (exit $rc: $*)"
    fi
}

# check_not WHAT COMMAND...: a bounded command that must fail (a tampered message
# must not verify; proves the positive verification is not vacuous).
check_not() {
    local what=$1 rc=0
    shift
    timeout --kill-after=5 "$STEP_TIMEOUT" "$@" >"$OUT/check.last" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ]; then
        pass "$what"
    else
        fail "$what (exit $rc: $*)"
    fi
}

# Public keys are compared as DER SubjectPublicKeyInfo, whatever form a client wrote.
pub_to_der() { # IN OUT [DER|PEM]
    openssl pkey -pubin -inform "${3:-PEM}" -in "$1" -outform DER -out "$2"
}

# finish: the tally, repeated failures, and the exit status (a script that checked
# nothing fails too).
finish() {
    local me
    me=$(basename "$0")
    if [ "$checks" -eq 0 ]; then
        printf '# %s: no checks ran\n' "$me"
        exit 1
    fi
    if [ "$failures" -eq 0 ]; then
        printf '# %s: all %d checks passed\n' "$me" "$checks"
        exit 0
    fi
    printf '# %s: %d of %d checks failed:\n' "$me" "$failures" "$checks"
    printf '#   not ok %s\n' "${failed[@]}"
    exit 1
}
