#!/bin/bash
# compat.sh - the differential harness of issue 17: each scenario runs twice, once on
# SoftHSMv2's module alone and once through cmkp11, each on its own fresh token, and
# the two normalised transcripts must differ exactly as documented.
#
#   compat.sh [--update] [--keep] CMKP11_MODULE SCENARIO...   (a name, a file, or "all")
#
# A scenario is tests/compat/scenarios/NAME.sh: client calls through lib.sh's `run`.
# Both sides get a token made by tests/lib/testenv.sh's cmk_testenv_setup: the backend
# side's SoftHSMv2 token carries the label cmkp11 shows for its own token, so URIs and
# listings name the same token on both sides.
#   --update  writes expected/NAME.diff and adds/drops known-differences.txt lines (new
#             ones as TODO, which fail until an issue-17 item and a reason are given)
#   --keep    keeps the scenario folders (transcripts in them) and prints their path
# Exit status: 0 when every scenario differs exactly as documented, 1 otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tests=$(cd "$here/.." && pwd)

# --- one side of one scenario (run by the loop below, in a process of its own) --------
if [ "${1:-}" = --side ]; then
    side=$2 module=$3 dir=$4 scenario=$5
    . "$tests/lib/testenv.sh"
    if [ "$side" = backend ]; then
        # The backend alone: the token has cmkp11's token label, and the scenario drives
        # SoftHSMv2's module itself.
        CMK_BACKEND_TOKEN=$CMK_TOKEN cmk_testenv_setup "$dir"
    else
        cmk_testenv_setup "$dir"
    fi
    export MODULE=$module PIN=$CMK_PIN SO_PIN=$CMK_SO_PIN TOKEN=$CMK_TOKEN W=$dir/w
    export TRANSCRIPT=$dir/transcript.raw
    mkdir -p "$W"
    : >"$TRANSCRIPT"
    cd "$W"
    . "$here/lib.sh"
    . "$scenario"
    exit 0
fi

update=0 keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --update) update=1; shift ;;
        --keep) keep=1; shift ;;
        --) shift; break ;;
        -*) echo "compat.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -lt 2 ]; then
    sed -n '2,16s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
cmk_module=$(realpath "$1")
shift
backend_module=${CMK_BACKEND:-/usr/lib/softhsm/libsofthsm2.so}
[ -r "$cmk_module" ] || { echo "compat.sh: no module $cmk_module" >&2; exit 2; }
[ -r "$backend_module" ] || { echo "compat.sh: no backend module $backend_module (softhsm2)" >&2; exit 2; }

list=()
for s in "$@"; do
    if [ "$s" = all ]; then
        for f in "$here"/scenarios/*.sh; do list+=("$f"); done
    elif [ -f "$s" ]; then
        list+=("$(realpath "$s")")
    elif [ -f "$here/scenarios/$s.sh" ]; then
        list+=("$here/scenarios/$s.sh")
    else
        echo "compat.sh: no scenario $s" >&2
        exit 2
    fi
done

SIDE_TIMEOUT=${COMPAT_SIDE_TIMEOUT:-60}
failed=()
for file in "${list[@]}"; do
    name=$(basename "$file" .sh)
    root=$(mktemp -d /tmp/cmkp11-compat.XXXXXX)
    broken=0
    for side in backend cmkp11; do
        module=$backend_module
        [ "$side" = cmkp11 ] && module=$cmk_module
        rc=0
        timeout --kill-after=5 "$SIDE_TIMEOUT" \
            bash "$0" --side "$side" "$module" "$root/$side" "$file" \
            >"$root/$side.log" 2>&1 || rc=$?
        if [ "$rc" -ne 0 ]; then
            # The harness itself failed (a typo in a scenario, a timeout): that is no
            # difference to document but a broken scenario.
            echo "compat: $name: the $side side failed (exit $rc):" >&2
            sed 's/^/    /' "$root/$side.log" >&2
            echo "[harness: side exited $rc]" >>"$root/$side/transcript.raw"
            broken=1
        fi
        /usr/bin/python3 "$here/compat.py" normalize "$root/$side/transcript.raw" \
            "$root/$side" "$module" >"$root/$side.txt"
    done
    # A program that crashes on the backend alone is a broken scenario, not a
    # difference: a transcript of two identical tracebacks would compare equal. So is
    # a step that times out (124, 137) or a client that is missing or cannot run (126,
    # 127, or timeout's own 125): two equal "command not found" prove nothing.
    if grep -Eq '^(Traceback \(most recent call last\):|\[exit (12[4-7]|137)\])$' "$root/backend.txt"; then
        echo "compat: $name: the scenario crashes, hangs or lacks a client on the backend alone:" >&2
        grep -E -B6 -A12 '^(Traceback|\[exit (12[4-7]|137)\])' "$root/backend.txt" | sed 's/^/    /' >&2
        broken=1
    fi
    # Hunk headers carry line numbers: a step added above a difference must not make it
    # a new one, so they are reduced to '@@'.
    { diff -U2 --label backend --label cmkp11 "$root/backend.txt" "$root/cmkp11.txt" || true; } \
        | sed -E 's/^@@ .* @@$/@@/' >"$root/diff"
    args=(check "$name" "$root/diff" "$here/expected" "$here/known-differences.txt")
    [ "$update" = 1 ] && args+=(--update)
    rc=0
    if [ "$broken" = 1 ]; then
        # Nothing to compare, and nothing to record with --update.
        echo "compat: $name: BROKEN scenario (see above); fix it, then compare"
        rc=1
    else
        /usr/bin/python3 "$here/compat.py" "${args[@]}" || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
        failed+=("$name")
        if [ -s "$root/cmkp11/cmkp11.log" ]; then
            echo "--- $name: cmkp11.log (last 20 lines) ---"
            tail -n 20 "$root/cmkp11/cmkp11.log"
        fi
    elif ! [ -s "$root/diff" ]; then
        echo "compat: $name: same transcript on both sides"
    fi
    if [ "$keep" = 1 ]; then echo "compat: $name: kept $root"; else rm -rf "$root"; fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "compat: FAILED: ${failed[*]}"
    exit 1
fi
echo "compat: ${#list[@]} scenario(s) as documented"
