#!/bin/bash
# with-token.sh MODULE COMMAND... - runs COMMAND with a fresh SoftHSMv2 token, cmkp11
# config and store in a temporary folder, removed afterwards (kept on failure when
# CMK_KEEP_FAILED=1). Exports CMK_MODULE for the command.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CMK_MODULE=$1
shift
work=$(mktemp -d /tmp/cmkp11-test.XXXXXX)
. "$here/lib/testenv.sh"
cmk_testenv_setup "$work"
export CMK_WORK=$work
status=0
"$@" || status=$?
if [ $status -ne 0 ] && [ -s "$work/cmkp11.log" ]; then
    echo "--- cmkp11.log ---" >&2
    tail -n 40 "$work/cmkp11.log" >&2
fi
if [ $status -eq 0 ] || [ "${CMK_KEEP_FAILED:-0}" != 1 ]; then rm -rf "$work"; fi
exit $status
