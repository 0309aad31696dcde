#!/bin/bash
# callgrind.sh: instructions per operation, backend alone vs through cmkp11.
#
# Runs one cmkbench workload under valgrind --tool=callgrind at two op counts
# on each side and takes the difference, so start-up, login and key lookup
# cancel out:  per_op = (total(high) - total(low)) / (high - low).
# Also splits that per-op figure by shared object (cmkp11, SoftHSMv2,
# libcrypto, libc, ...) and lists the cmkp11 functions that cost per op.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "$0")" && pwd)
WS_PROG=callgrind.sh
. "$SELF_DIR/workspace.sh"

usage() {
	cat <<'EOF'
usage: callgrind.sh [--workload W ...] [--low N] [--high N] [--dir DIR]
                    [--module PATH] [--backend PATH] [--results DIR]

  --workload W   repeatable; default sign-ecdsa-p256. Meant for
                 sign-ecdsa-p256, verify-ecdsa-p256, encrypt-aes-gcm-4k,
                 decrypt-aes-gcm-4k (any single-session workload works)
  --low N        op count of the short run (default 200)
  --high N       op count of the long run (default 1200)
  --dir DIR      workspace (default /tmp/cmkp11-bench/n100; made if missing,
                 without bench-obj-* objects, which these workloads ignore)
  --results DIR  keep the callgrind files and the summary here
                 (default DIR/callgrind/<timestamp>)
Target (issue 8): cmkp11 within 3% of the backend's instructions per op.
EOF
}

die() { ws_die "$*"; }
need_arg() { [ "$#" -ge 2 ] || die "$1 needs a value"; }

low=200 high=1200 dir=/tmp/cmkp11-bench/n100 results=''
module=$SELF_DIR/../build/libcmkp11.so
workloads=()
while [ "$#" -gt 0 ]; do
	case "$1" in
	--workload) need_arg "$@"; workloads+=("$2"); shift 2 ;;
	--low) need_arg "$@"; low=$2; shift 2 ;;
	--high) need_arg "$@"; high=$2; shift 2 ;;
	--dir) need_arg "$@"; dir=$2; shift 2 ;;
	--module) need_arg "$@"; module=$2; shift 2 ;;
	--backend) need_arg "$@"; WS_BACKEND=$2; shift 2 ;;
	--results) need_arg "$@"; results=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
done
[ "${#workloads[@]}" -gt 0 ] || workloads=(sign-ecdsa-p256)
[[ "$low" =~ ^[1-9][0-9]*$ && "$high" =~ ^[1-9][0-9]*$ ]] || die "--low/--high: positive integers"
[ "$high" -gt "$low" ] || die "--high must be greater than --low"
command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module")

ws_setup "$dir" "$module"
cmkbench=$(ws_cmkbench)
results=${results:-$WS_DIR/callgrind/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$results"

side_args() {
	case "$1" in
	backend) echo "$WS_BACKEND $WS_RAW_TOKEN" ;;
	cmkp11) echo "$WS_MODULE $WS_CMK_TOKEN" ;;
	esac
}

# One run, prints the total instruction count (Ir) of the whole process.
cg_run() {
	local side=$1 w=$2 n=$3 out mod tok
	read -r mod tok <<<"$(side_args "$side")"
	out=$results/$side.$w.$n.cg
	BENCH_PIN=$WS_PIN valgrind --tool=callgrind --callgrind-out-file="$out" \
		"$cmkbench" --module "$mod" --token-label "$tok" --workload "$w" \
		--count "$n" >"$out.json" 2>"$out.log" ||
		die "$side $w --count $n failed under valgrind; see $out.log"
	sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$out" | head -n1
}

printf '%s; %s\n' "$(ws_machine)" "$(ws_module_desc)" | tee "$results/summary.md"
{
	echo "valgrind --tool=callgrind, per op = (Ir(--count $high) - Ir(--count $low)) / $((high - low)), 1 thread"
	echo
	echo "| workload | backend Ir/op | cmkp11 Ir/op | ratio | target (≤ 1.03) |"
	echo "|---|---:|---:|---:|---|"
} | tee -a "$results/summary.md"

for w in "${workloads[@]}"; do
	# Warm-up outside valgrind: the workload's keys are made once, here,
	# so neither measured run creates anything.
	for side in backend cmkp11; do
		read -r mod tok <<<"$(side_args "$side")"
		BENCH_PIN=$WS_PIN "$cmkbench" --module "$mod" --token-label "$tok" \
			--workload "$w" --count 1 >/dev/null ||
			die "$side: $w warm-up failed"
	done
	declare -A per_op=()
	for side in backend cmkp11; do
		lo=$(cg_run "$side" "$w" "$low")
		hi=$(cg_run "$side" "$w" "$high")
		per_op[$side]=$(( (hi - lo) / (high - low) ))
		echo "$side $w: Ir($low)=$lo Ir($high)=$hi" >>"$results/totals.txt"
	done
	/usr/bin/python3 - "$w" "${per_op[backend]}" "${per_op[cmkp11]}" <<'PY' | tee -a "$results/summary.md"
import sys
w, b, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = c / b
print("| %s | %d | %d | %.4f | %s |" % (w, b, c, r, "met" if r <= 1.03 else "**missed**"))
PY
done

# Per-op cost by shared object and the cmkp11 functions, from the same files.
/usr/bin/python3 - "$results" "$low" "$high" "${workloads[@]}" <<'PY' >"$results/breakdown.md"
import collections, os, re, subprocess, sys
res, low, high, wls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]

def self_costs(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                          "--auto=no", "--show-percs=no", path],
                         capture_output=True, text=True, check=True).stdout
    fn, body = {}, False
    for line in out.splitlines():
        if "file:function" in line:
            body = True
            continue
        m = re.match(r"^\s*([\d,]+)\s+(\S.*?)\s*$", line)
        if not body or not m:
            continue
        name = m.group(2)
        fn[name] = fn.get(name, 0) + int(m.group(1).replace(",", ""))
    return fn

def obj_of(name):
    m = re.search(r"\[([^\]]+)\]\s*$", name)
    return os.path.basename(m.group(1)) if m else "(no object name)"

for w in wls:
    print("## %s: instructions per op by object\n" % w)
    per = {}
    for side in ("backend", "cmkp11"):
        a = self_costs(os.path.join(res, "%s.%s.%d.cg" % (side, w, low)))
        b = self_costs(os.path.join(res, "%s.%s.%d.cg" % (side, w, high)))
        d = {k: (b.get(k, 0) - a.get(k, 0)) / (high - low) for k in set(a) | set(b)}
        per[side] = d
    objs = collections.defaultdict(lambda: [0.0, 0.0])
    for i, side in enumerate(("backend", "cmkp11")):
        for k, v in per[side].items():
            objs[obj_of(k)][i] += v
    print("| object | backend | cmkp11 | difference |")
    print("|---|---:|---:|---:|")
    for o, (x, y) in sorted(objs.items(), key=lambda kv: -max(abs(kv[1][0]), abs(kv[1][1]))):
        if abs(x) < 1 and abs(y) < 1:
            continue
        print("| %s | %.0f | %.0f | %+.0f |" % (o, x, y, y - x))
    print()
    cm = sorted(((v, k) for k, v in per["cmkp11"].items() if "libcmkp11" in k), reverse=True)
    if cm:
        print("cmkp11's own functions, instructions per op (self cost):\n")
        for v, k in cm[:15]:
            if v >= 1:
                print("    %8.0f  %s" % (v, re.sub(r"\s*\[[^\]]*\]\s*$", "", k)))
        print()
    diff = sorted(((per["cmkp11"].get(k, 0) - per["backend"].get(k, 0), k)
                   for k in set(per["cmkp11"]) | set(per["backend"])), reverse=True)
    print("largest per-op increases, cmkp11 - backend, any object:\n")
    for v, k in diff[:12]:
        if v >= 1:
            print("    %+8.0f  %s" % (v, k))
    print()
PY
echo
echo "per-object breakdown: $results/breakdown.md; callgrind files: $results"
