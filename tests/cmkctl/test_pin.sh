#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_pin.sh - where the PIN comes from, what a wrong one gives, and that it is never shown.
. "$(dirname "$0")/lib.sh"

unset CMKP11_PIN
secret=Wrong-PIN-7x9q
printf '%s\n' "$CMK_PIN" >"$CMK_WORK/pin"
chmod 600 "$CMK_WORK/pin"

ctl --pin-file "$CMK_WORK/pin" create-key --alias from-file
expect_ok "PIN from --pin-file (with a trailing newline)"
expect_true "a private PIN file gives no warning" bash -c '[ ! -s "$1" ]' _ "$OUT/err"
CMKP11_PIN=$CMK_PIN ctl describe-key --key-id from-file
expect_ok "PIN from CMKP11_PIN"
ctl describe-key --key-id from-file --pin "$CMK_PIN"
expect_ok "--pin works"
expect_true "--pin warns that ps shows it" grep -q "process list" "$OUT/err"
chmod 644 "$CMK_WORK/pin"
ctl describe-key --key-id from-file --pin-file "$CMK_WORK/pin"
expect_true "a PIN file others can read gives a warning" \
    bash -c '[ "$1" -eq 0 ] && grep -q "readable by other users" "$2"' _ "$RC" "$OUT/err"
printf '%s\n' "$secret" >"$CMK_WORK/wrong"
CMKP11_PIN=$secret ctl --pin-file "$CMK_WORK/pin" describe-key --key-id from-file
expect_ok "--pin-file wins over CMKP11_PIN"

CMKP11_PIN=$secret ctl describe-key --key-id from-file
expect_error "wrong PIN from CMKP11_PIN" UnauthorizedOperation 5
expect_true "the wrong PIN is not printed" bash -c '! grep -q "$1" "$2" "$3"' _ "$secret" "$OUT/out" "$OUT/err"
ctl describe-key --key-id from-file --pin-file "$CMK_WORK/wrong"
expect_error "wrong PIN from --pin-file" UnauthorizedOperation 5
ctl describe-key --key-id from-file --pin "$secret"
expect_error "wrong PIN from --pin" UnauthorizedOperation 5
expect_true "--pin is not echoed either" bash -c '! grep -q "$1" "$2" "$3"' _ "$secret" "$OUT/out" "$OUT/err"
ctl describe-key --key-id from-file --pin-file "$CMK_WORK/no-such-pin"
expect_error "unreadable PIN file" UnauthorizedOperation 5
: >"$CMK_WORK/empty"
ctl describe-key --key-id from-file --pin-file "$CMK_WORK/empty"
expect_error "empty PIN file" UnauthorizedOperation 5
ctl describe-key --key-id from-file
expect_error "no PIN and no terminal" UnauthorizedOperation 5

CMKP11_PIN=$CMK_PIN ctl describe-key --key-id from-file
expect_ok "the right PIN still works after wrong ones"

# On a terminal cmkctl asks, without echo. A pseudo-terminal plays the user: it waits for
# the prompt, types, and records everything the terminal showed.
on_terminal() {
    RC=0
    timeout 60 "$PY" -c '
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:2] + ["describe-key", "--key-id", "from-file"])
seen = b""
while b"PIN for token" not in seen:
    seen += os.read(fd, 1024)
os.write(fd, sys.argv[2].encode() + b"\n")
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
open(sys.argv[3], "wb").write(seen)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
' "$CMKCTL" "$1" "$OUT/tty" || RC=$?
}
on_terminal "$CMK_PIN"
expect_true "PIN typed at the terminal prompt" [ "$RC" -eq 0 ]
on_terminal "$secret"
expect_true "a wrong PIN typed at the prompt: UnauthorizedOperation, exit 5" \
    bash -c '[ "$1" -eq 5 ] && grep -q UnauthorizedOperation "$2"' _ "$RC" "$OUT/tty"
expect_true "the typed PIN is not echoed" bash -c '! grep -q "$1" "$2"' _ "$secret" "$OUT/tty"
finish
