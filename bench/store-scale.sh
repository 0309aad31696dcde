#!/bin/bash
# store-scale.sh: many CMKs in one store (issue 8, item 4).
#
# Creates CMKs through cmkp11 in steps (cmkbench --objects, i.e. plain
# C_GenerateKey of AES-256 token keys labelled bench-obj-<i>), and after each
# step reports: the creation rate of that step, the size of the store
# (cmk.db + its WAL) per CMK, the backend token's size per CMK, and
# find-by-label (= find by alias) through cmkp11 at that size.  The first
# line is the baseline at --base CMKs.  Stops at --total, or when --limit
# seconds have passed (then reports what it reached).  Resumable: the CMKs
# already in the workspace are kept and counted.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "$0")" && pwd)
WS_PROG=store-scale.sh
. "$SELF_DIR/workspace.sh"

usage() {
	cat <<'EOF'
usage: store-scale.sh [--total N] [--step N] [--base N] [--limit SECONDS]
                      [--level hsm|software] [--dir DIR] [--module PATH]
                      [--results DIR]
  defaults: --total 20000 --step 5000 --base 100 --limit 2400
            --dir /tmp/cmkp11-bench/scale
  --level software: the CMKs are of protection level SOFTWARE, whose material
            is sealed in the store, so the backend holds one object (the master
            key) however many CMKs there are: the store's own scaling, past
            what SoftHSMv2's file store (one file per object, scanned on every
            find) can hold in reasonable time. Use its own --dir.
EOF
}
die() { ws_die "$*"; }
need_arg() { [ "$#" -ge 2 ] || die "$1 needs a value"; }

total=20000 step=5000 base=100 limit=2400 dir=/tmp/cmkp11-bench/scale results='' level=''
module=$SELF_DIR/../build/libcmkp11.so
while [ "$#" -gt 0 ]; do
	case "$1" in
	--total) need_arg "$@"; total=$2; shift 2 ;;
	--step) need_arg "$@"; step=$2; shift 2 ;;
	--base) need_arg "$@"; base=$2; shift 2 ;;
	--limit) need_arg "$@"; limit=$2; shift 2 ;;
	--dir) need_arg "$@"; dir=$2; shift 2 ;;
	--module) need_arg "$@"; module=$2; shift 2 ;;
	--results) need_arg "$@"; results=$2; shift 2 ;;
	--level) need_arg "$@"; level=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
done
module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module")
ws_setup "$dir" "$module"
cmkbench=$(ws_cmkbench)
results=${results:-$WS_DIR/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$results"
start=$(date +%s)

db_bytes() {
	local f s=0
	for f in "$WS_DIR/cmk.db" "$WS_DIR/cmk.db-wal"; do
		[ -f "$f" ] && s=$((s + $(stat -c %s "$f")))
	done
	echo "$s"
}
token_bytes() {
	local t
	t=$(grep -l "$WS_CMK_BACKEND_TOKEN" "$WS_DIR"/tokens/*/token.object 2>/dev/null | head -n1)
	du -sb "$(dirname "$t")" | cut -f1
}
cmk_count() {
	sqlite3 -readonly "$WS_DIR/cmk.db" "SELECT count(*) FROM cmk WHERE state != 0" 2>/dev/null || echo 0
}

# step TARGET: make sure bench-obj-0..TARGET-1 exist, then time finds.
run_step() {
	local target=$1 left=$2 log=$results/step.$1.log rc=0
	BENCH_PIN=$WS_PIN timeout "$left" "$cmkbench" --module "$WS_MODULE" \
		--token-label "$WS_CMK_TOKEN" --objects "$target" \
		${level:+--objects-level "$level"} \
		--workload find-by-label --seconds 2 >"$results/find.$target.jsonl" 2>"$log" || rc=$?
	echo "$rc"
}

{
	echo "$(ws_machine); $(ws_module_desc)"
	echo
	echo "| CMKs | made in step | step time s | CMKs/s (step) | cmk.db+wal bytes | bytes/CMK | backend token bytes/CMK | find-by-label ops/s | p50 us |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} | tee "$results/table.md"

target=$base
while :; do
	left=$((limit - ($(date +%s) - start)))
	[ "$left" -gt 5 ] || { echo "time limit reached" | tee -a "$results/table.md"; break; }
	t0=$(date +%s.%N)
	rc=$(run_step "$target" "$left")
	t1=$(date +%s.%N)
	n=$(cmk_count)
	made=$(sed -n 's/^cmkbench: created \([0-9]*\) of .* in \([0-9.]*\) s$/\1 \2/p' \
		"$results/step.$target.log" | tail -n1)
	read -r made_n made_s <<<"${made:-0 0}"
	if [ "$rc" -ne 0 ]; then
		# Killed by the time limit (124) or failed: count what is there.
		made_s=$(echo "$t1 - $t0" | bc)
		made_n='?'
	fi
	/usr/bin/python3 - "$n" "$made_n" "$made_s" "$(db_bytes)" "$(token_bytes)" \
		"$results/find.$target.jsonl" <<'PY' | tee -a "$results/table.md"
import json, sys
n, made, secs, db, tok, fj = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
rate = "%.1f" % (int(made) / secs) if made not in ("?", "0") and secs > 0 else "-"
ops = p50 = "-"
try:
    for line in open(fj):
        if line.startswith("{"):
            j = json.loads(line)
            ops, p50 = "%.0f" % j["ops_per_s"], "%.1f" % j["p50_us"]
except OSError:
    pass
print("| %d | %s | %.1f | %s | %d | %.0f | %.0f | %s | %s |" % (
    n, made, secs, rate, db, db / max(n, 1), tok / max(n, 1), ops, p50))
PY
	[ "$rc" -eq 0 ] || { echo "step to $target stopped (rc $rc): $n CMKs reached" | tee -a "$results/table.md"; break; }
	[ "$target" -lt "$total" ] || break
	if [ "$target" -lt "$step" ]; then target=$step; else target=$((target + step)); fi
	[ "$target" -le "$total" ] || target=$total
done
echo "per-1000 creation progress: $results/step.*.log" | tee -a "$results/table.md"
ls -l "$WS_DIR"/cmk.db* | tee "$results/ls-l.txt"
