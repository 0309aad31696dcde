# lib.sh - shared helpers for the interop tests, sourced by each script after
# `set -euo pipefail`. The scripts run under tests/with-token.sh, which gives them a
# private SoftHSMv2 token, cmkp11 config and store, and exports CMK_MODULE, CMK_PIN,
# CMK_TOKEN, CMK_WORK, CMK_BACKEND, CMK_BACKEND_TOKEN, SOFTHSM2_CONF, CMKP11_CONF; CTest
# also sets CMKCTL, the built cmkctl.
#
# Style: every client call goes through `run`, which bounds it with `timeout` and keeps
# its output in $CMK_WORK/out/<name>, so checks grep what the client really printed.
# A failed check is counted, not fatal: one module bug must not hide the next one.
# `finish` prints the tally and sets the exit status. A missing client, option or
# package is a failure too: nothing is skipped in silence.

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
    if ! [ -f "$OUT/$1" ]; then
        fail "$1: $3 (step $1 has no output to look at)"
    elif grep -Eq -- "$2" "$OUT/$1"; then
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

# differ WHAT A B: files A and B both hold something, and not the same thing (a missing or
# empty file is a failure, not a difference: `cmp` would call it one).
differ() {
    local rc=0
    if ! [ -s "$2" ] || ! [ -s "$3" ]; then
        fail "$1 (missing or empty: $(for f in "$2" "$3"; do [ -s "$f" ] || printf '%s ' "$f"; done))"
        return
    fi
    cmp -s "$2" "$3" || rc=$?
    if [ "$rc" -eq 1 ]; then pass "$1"; else fail "$1 (cmp exit $rc)"; fi
}

# --- proof that a client went through cmkp11 -------------------------------------------
# module_trace: cmkp11 traces every Cryptoki call at level debug ("C_Sign: out 0x0") into
# its log, $CMK_WORK/cmkp11.log. Call it before the first client loads the module.
module_trace() {
    sed -i -E 's/^level = .*/level = debug/' "$CMKP11_CONF"
    check "cmkp11 traces every call (log level debug)" grep -qx 'level = debug' "$CMKP11_CONF"
}

# module_signs: how many C_Sign calls cmkp11 has answered with CKR_OK so far.
module_signs() { grep -c 'C_Sign: out 0x0$' "$CMK_WORK/cmkp11.log" 2>/dev/null || true; }

# signed_through_module WHAT BEFORE [N]: cmkp11 answered at least N (default 1) more
# C_Sign since its log counted BEFORE (module_signs): the client signed through cmkp11,
# not through a module it found elsewhere.
signed_through_module() {
    local after
    after=$(module_signs)
    if [ -n "$after" ] && [ "$after" -ge $(($2 + ${3:-1})) ]; then
        pass "$1 (cmkp11's log: $2 -> $after C_Sign)"
    else
        fail "$1 (cmkp11's log: $2 -> ${after:-no} C_Sign, expected at least ${3:-1} more)"
    fi
}

# ctl NAME ARGS...: the built cmkctl (CTest sets CMKCTL) with this test's module and PIN,
# as step NAME. cmkctl reads cmkp11's vendor attributes, which no other module has.
ctl() {
    local name=$1
    shift
    if [ -z "${CMKCTL:-}" ] || ! [ -x "$CMKCTL" ]; then
        RC=127
        : >"$OUT/$name"
        fail "$name: no cmkctl to run (CMKCTL='${CMKCTL:-}'; CTest sets it to the built one)"
        return
    fi
    run "$name" env CMKP11_MODULE="$CMK_MODULE" CMKP11_PIN="$CMK_PIN" "$CMKCTL" "$@"
}

# json_is NAME EXPR WANT WHAT: a Python expression over the JSON step NAME printed (bound
# to d) has the value WANT (its str(); booleans True/False). The step's output mixes
# stdout and stderr: the first JSON object in it is read (cmkp11 at level debug traces
# its last C_Finalize on stderr).
json_is() {
    local got
    got=$(/usr/bin/python3 -c '
import json, sys
text = open(sys.argv[1]).read()
try:
    d = json.JSONDecoder().raw_decode(text[text.index("{"):])[0]  # stderr may follow
    print(eval(sys.argv[2]))
except Exception as e:
    print("<%s>" % type(e).__name__)' "$OUT/$1" "$2")
    if [ "$got" = "$3" ]; then pass "$1: $4"; else fail "$1: $4 ($2 is '$got', want '$3')"; fi
}

# Public keys are compared as DER SubjectPublicKeyInfo, whatever form a client wrote.
pub_to_der() { # IN OUT [DER|PEM]
    openssl pkey -pubin -inform "${3:-PEM}" -in "$1" -outform DER -out "$2"
}

# store NAME SQL: a query of the CMK store (sqlite3 on $CMK_WORK/cmk.db) as step NAME,
# to prove that what a client made went through cmkp11 and became a CMK.
store() {
    run "$1" sqlite3 "$CMK_WORK/cmk.db" "$2"
}

# hexof TEXT: TEXT's bytes in lower-case hex, the way pkcs11-tool prints a CKA_ID.
hexof() {
    printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}

# engine_setup: the libp11 pkcs11 engine for OpenSSL 3, configured in a file of its own
# with this test's module: without MODULE_PATH the engine would silently fall back to
# the system's p11-kit modules, and a test could pass against SoftHSMv2 alone. Sets E,
# the command prefix for OpenSSL with the engine (an array: `timeout` runs programs
# only); plain `openssl` (lib.sh's empty OPENSSL_CONF, no engine) checks the results.
engine_setup() {
    local so
    so=$(find /usr/lib -name pkcs11.so -path '*engines-3*' 2>/dev/null | head -n 1)
    if [ -z "$so" ]; then
        fail "the OpenSSL 3 pkcs11 engine (engines-3/pkcs11.so) is not installed (Debian package libengine-pkcs11-openssl)"
        finish
    fi
    note "engine: $so"
    # init = 0 leaves it loaded but uninitialised until -engine pkcs11 asks for it.
    cat >"$CMK_WORK/openssl-engine.cnf" <<CNF
openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
pkcs11 = pkcs11_section

[pkcs11_section]
engine_id = pkcs11
dynamic_path = $so
MODULE_PATH = $CMK_MODULE
init = 0
CNF
    # shellcheck disable=SC2034 # used by the scripts
    E=(env OPENSSL_CONF="$CMK_WORK/openssl-engine.cnf" openssl)
}

# p11kit_setup: cmkp11 registered with p11-kit in a private configuration only, for
# clients that go through p11-kit (p11-kit itself, p11-kit-proxy.so). Sets PROXY (the
# proxy module), P11KIT_CONF (the folder of the private configuration) and AS (the
# command prefix that runs a client as a non-root user with that configuration).
#
# p11-kit 0.24 (Debian 12) reads the user configuration from $XDG_CONFIG_HOME/pkcs11/
# (pkcs11.conf and modules/*.module), but never when getuid() is 0 ("skipping user
# config in program running as root"). So the clients run as a non-root user: in a user
# namespace (`unshare -U`: the process sees uid 65534 but keeps its own files), else as
# nobody with setpriv. HOME and XDG_CONFIG_HOME point into $CMK_WORK; /etc and the real
# home are never written. `user-config: only` keeps Debian's system registration of
# SoftHSMv2 (/usr/share/p11-kit/modules/softhsm2.module) out, so the backend's raw
# token cannot appear beside ours.
# shellcheck disable=SC2034 # PROXY, P11KIT_CONF and AS are used by the scripts
p11kit_setup() {
    require_tool p11-kit p11-kit
    PROXY=$(find /usr/lib -name p11-kit-proxy.so 2>/dev/null | head -n 1)
    if [ -z "$PROXY" ]; then
        fail "p11-kit-proxy.so is not installed (Debian package p11-kit-modules)"
        finish
    fi
    note "proxy: $PROXY"
    local home=$CMK_WORK/p11kit-home src
    src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    P11KIT_CONF=$home/.config/pkcs11
    mkdir -p "$P11KIT_CONF/modules"
    printf '# private p11-kit configuration of the cmkp11 interop tests\nuser-config: only\n' \
        >"$P11KIT_CONF/pkcs11.conf"
    # The shipped module file, with the absolute path of the module under test (a
    # relative path would be resolved against p11-kit's own module folder).
    sed -E "s|^module:.*|module: $CMK_MODULE|" "$src/conf/cmkp11.module" >"$P11KIT_CONF/modules/cmkp11.module"
    local envs=(env HOME="$home" XDG_CONFIG_HOME="$home/.config" CMKP11_CONF="$CMKP11_CONF"
        SOFTHSM2_CONF="$SOFTHSM2_CONF")
    if [ "$(id -u)" -ne 0 ]; then
        AS=("${envs[@]}")
        note "p11-kit clients run as $(id -un)"
    elif [ -z "${CMK_P11KIT_NO_USERNS:-}" ] && unshare -U true 2>/dev/null; then
        AS=(unshare -U "${envs[@]}")
        note "p11-kit clients run in a user namespace (unshare -U)"
    else
        # No user namespaces: nobody must reach the token, store and log in the test
        # folder (a private temporary folder, removed afterwards), through the group:
        # cmkp11 refuses files others may write, or owned by a user other than its own or
        # root (README, Security model), so its files are made here, root's, group nogroup.
        local f
        for f in cmkp11.log cmk.db cmk.db-token.lock cmk.db-signal; do
            [ -e "$CMK_WORK/$f" ] || install -m 0660 /dev/null "$CMK_WORK/$f"
        done
        chgrp -R nogroup "$CMK_WORK"
        chmod -R g+rwX,o-rwx "$CMK_WORK"
        AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups "${envs[@]}")
        note "p11-kit clients run as nobody (setpriv)"
    fi
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
