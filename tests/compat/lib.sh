# lib.sh - sourced by compat.sh for each side of a scenario, before the scenario file.
# A scenario sees MODULE (the PKCS#11 module of this side), PIN, SO_PIN, TOKEN (the
# token label, the same on both sides), W (this side's private folder) and the helpers
# below. Every client call goes through `run`, which writes one block of the transcript:
#
#   ### NAME
#   $ the command, with the module path and folder replaced by MODULE and WORK
#   [stdout] / [stderr] and their lines, then [exit N]
#
# stdout and stderr are kept apart: merged into one pipe, their interleaving would
# depend on the client's buffering, and the transcripts must be byte-stable.
# Nothing here checks a result: the other side is the oracle. Steps that print random
# bytes (signatures, ciphertexts) write them to files; a later step shows what is
# deterministic about them (a plain-OpenSSL verification, a decrypted plaintext, a size).

COMPAT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${MODULE:?}" "${PIN:?}" "${SO_PIN:?}" "${TOKEN:?}" "${W:?}" "${TRANSCRIPT:?}"

STEP_TIMEOUT=${COMPAT_STEP_TIMEOUT:-20}
PY=/usr/bin/python3 # Debian's, the one with python3-pykcs11 (not the first on PATH)
# The same PIN prompts never appear: every client gets its PIN on the command line.
P=(pkcs11-tool --module "$MODULE")
PL=(pkcs11-tool --module "$MODULE" --login --pin "$PIN")
# p11tool reads the PIN from GNUTLS_PIN / GNUTLS_SO_PIN and its module from --provider
# (no p11-kit configuration is involved).
T=(env GNUTLS_PIN="$PIN" GNUTLS_SO_PIN="$SO_PIN" p11tool --provider "$MODULE")
URI="pkcs11:token=$TOKEN"

# OpenSSL reads no machine configuration; `E` is OpenSSL with the libp11 engine bound to
# this side's module (without MODULE_PATH the engine would fall back to p11-kit's
# modules, and both sides would silently run the same one).
printf '# empty: the compat harness uses no global OpenSSL configuration\n' >"$W/openssl-none.cnf"
export OPENSSL_CONF=$W/openssl-none.cnf
ENGINE_SO=$(find /usr/lib -name pkcs11.so -path '*engines-3*' 2>/dev/null | head -n 1)
if [ -z "$ENGINE_SO" ]; then
    # Both sides would fail alike and compare equal: a missing client is a broken
    # machine, never a pass.
    echo "compat: the OpenSSL 3 pkcs11 engine is not installed (libengine-pkcs11-openssl)" >&2
    exit 1
fi
cat >"$W/openssl-engine.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $MODULE
init = 0
CNF
E=(env OPENSSL_CONF="$W/openssl-engine.cnf" openssl)

# uri LABEL TYPE: a PKCS#11 URI of an object of this side's token, with the PIN.
uri() { printf 'pkcs11:token=%s;object=%s;type=%s;pin-value=%s' "$TOKEN" "$1" "$2" "$PIN"; }

_section() { # _section TAG FILE: the file's lines under TAG, if it has any
    if [ -s "$2" ]; then
        printf '[%s]\n' "$1"
        cat "$2"
        # A last line without its newline would glue itself to the next tag.
        [ -z "$(tail -c 1 "$2")" ] || printf '\n'
    fi
}

# run NAME COMMAND...: one transcript block. The exit status is recorded, never fatal:
# a refusal on one side is exactly what the harness exists to show.
run() {
    local name=$1 rc=0
    shift
    {
        printf '### %s\n$' "$name"
        printf ' %q' "$@"
        printf '\n'
    } >>"$TRANSCRIPT"
    timeout --kill-after=2 "$STEP_TIMEOUT" "$@" >"$W/.out" 2>"$W/.err" </dev/null || rc=$?
    {
        _section stdout "$W/.out"
        _section stderr "$W/.err"
        printf '[exit %d]\n' "$rc"
    } >>"$TRANSCRIPT"
    return 0
}

# py NAME < SCRIPT: a PyKCS11 program (read from stdin) as one step. It gets the
# module, PIN, SO PIN and token label as argv[1..4], and the folder as argv[5].
py() {
    local name=$1
    cat >"$W/$name.py"
    run "$name" env PYTHONPATH="$COMPAT_DIR" "$PY" "$W/$name.py" "$MODULE" "$PIN" "$SO_PIN" "$TOKEN" "$W"
}

# note TEXT: a line of the scenario's own in the transcript (what a step means).
note() { printf '# %s\n' "$*" >>"$TRANSCRIPT"; }

# tls NAME SHOW SERVER... -- CLIENT...: a TLS handshake between SERVER (using this
# side's token key) and CLIENT on 127.0.0.1:4433 in a network namespace of its own;
# the step shows the client's lines matching the ERE SHOW and its exit status.
tls() {
    local name=$1 show=$2
    shift 2
    run "$name" unshare --net bash "$COMPAT_DIR/tls-pair.sh" "$W" "$show" "$@"
}
