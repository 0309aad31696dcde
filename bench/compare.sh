#!/bin/bash
# compare.sh: run the same cmkbench workloads against a backend PKCS#11
# module and the layered module, alternating A,B,A,B so slow drift on the
# machine (thermal, page cache, other load) hits both sides alike, then
# print the median ops/s of each side and their ratio.
#
# The environment is passed through unchanged: the layered module finds its
# configuration through CMKP11_CONF, the SoftHSM backend through
# SOFTHSM2_CONF, and each ignores the other's variable.
set -euo pipefail

PYTHON=/usr/bin/python3
SELF_DIR=$(cd "$(dirname "$0")" && pwd)

usage() {
	cat <<'EOF'
usage: compare.sh --backend-module PATH --backend-token LABEL
                  --layered-module PATH --layered-token LABEL
                  [--pin PIN] [--objects N] [--threads N] [--rounds R]
                  [--seconds S | --count N] [--workload W ...]
                  [--markdown] [--cmkbench PATH] [--raw-dir DIR]
                  [--quiet-wait S]

  --pin PIN        user PIN of both tokens (default: $BENCH_PIN)
  --rounds R       A,B pairs to run (default 3); the median is reported
  --seconds S      per workload and thread, per run (default 2)
  --workload W     repeatable; default: all
  --markdown       print the table as markdown
  --cmkbench PATH  binary to use (default: $CMKBENCH, then
                   build/bench/cmkbench, then cmkbench on PATH)
  --raw-dir DIR    keep the JSON lines of every run in DIR
  --quiet-wait S   before each run, wait up to S seconds for the machine to
                   be nearly idle (< 10 % CPU busy over 2 s); what was seen
                   goes to DIR/quiet.log
EOF
}

die() {
	echo "compare.sh: $*" >&2
	exit 2
}

backend_module='' backend_token='' layered_module='' layered_token=''
pin=${BENCH_PIN:-} objects='' threads='' rounds=3 seconds='' count=''
markdown=0 cmkbench=${CMKBENCH:-} raw_dir= quiet_wait=0
workloads=()

need_arg() {
	[ "$#" -ge 2 ] || die "$1 needs a value"
}

while [ "$#" -gt 0 ]; do
	case "$1" in
	--backend-module) need_arg "$@"; backend_module=$2; shift 2 ;;
	--backend-token) need_arg "$@"; backend_token=$2; shift 2 ;;
	--layered-module) need_arg "$@"; layered_module=$2; shift 2 ;;
	--layered-token) need_arg "$@"; layered_token=$2; shift 2 ;;
	--pin) need_arg "$@"; pin=$2; shift 2 ;;
	--objects) need_arg "$@"; objects=$2; shift 2 ;;
	--threads) need_arg "$@"; threads=$2; shift 2 ;;
	--rounds) need_arg "$@"; rounds=$2; shift 2 ;;
	--seconds) need_arg "$@"; seconds=$2; shift 2 ;;
	--count) need_arg "$@"; count=$2; shift 2 ;;
	--workload) need_arg "$@"; workloads+=("$2"); shift 2 ;;
	--markdown) markdown=1; shift ;;
	--cmkbench) need_arg "$@"; cmkbench=$2; shift 2 ;;
	--raw-dir) need_arg "$@"; raw_dir=$2; shift 2 ;;
	--quiet-wait) need_arg "$@"; quiet_wait=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
done

[ -n "$backend_module" ] || die "--backend-module is required"
[ -n "$layered_module" ] || die "--layered-module is required"
[ -n "$backend_token" ] || die "--backend-token is required"
[ -n "$layered_token" ] || die "--layered-token is required"
[ -n "$pin" ] || die "--pin or BENCH_PIN is required"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[ -z "$seconds" ] || [ -z "$count" ] || die "--seconds and --count exclude each other"
[ -x "$PYTHON" ] || die "$PYTHON not found"

find_cmkbench() {
	local c
	for c in "$cmkbench" "$SELF_DIR/../build/bench/cmkbench" \
		"$SELF_DIR/cmkbench"; do
		if [ -n "$c" ] && [ -x "$c" ]; then
			echo "$c"
			return 0
		fi
	done
	command -v cmkbench || die "cmkbench not found; build it or pass --cmkbench"
}
cmkbench=$(find_cmkbench)

common_args=()
[ -n "$objects" ] && common_args+=(--objects "$objects")
[ -n "$threads" ] && common_args+=(--threads "$threads")
[ -n "$seconds" ] && common_args+=(--seconds "$seconds")
[ -n "$count" ] && common_args+=(--count "$count")
[ "${#workloads[@]}" -gt 0 ] || workloads=(all)
for w in "${workloads[@]}"; do
	common_args+=(--workload "$w")
done

if [ -n "$raw_dir" ]; then
	mkdir -p "$raw_dir"
	out_dir=$raw_dir
else
	out_dir=$(mktemp -d "${TMPDIR:-/tmp}/cmkcompare.XXXXXX")
	trap 'rm -rf "$out_dir"' EXIT
fi

# One run of one side; its JSON lines go to $out_dir/<side>.<round>.jsonl.
# The PIN travels in the environment so it never shows up in ps.
run_side() {
	local side=$1 round=$2 module=$3 token=$4
	local out="$out_dir/$side.$round.jsonl"

	if [ "$quiet_wait" -gt 0 ]; then
		echo "round $round $side: $(wait_quiet "$quiet_wait")% busy before start" \
			>>"$out_dir/quiet.log"
	fi
	echo "compare.sh: round $round/$rounds: $side ($module)" >&2
	if ! BENCH_PIN=$pin "$cmkbench" --module "$module" \
		--token-label "$token" "${common_args[@]}" >"$out"; then
		echo "compare.sh: $side round $round reported errors" >&2
		failed=1
	fi
}

# Busy share of all CPUs over 2 s, polled until below 10 % or $1 seconds.
cpu_busy() {
	local a b
	a=$(awk 'NR==1{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $5+$6}' /proc/stat)
	sleep 2
	b=$(awk 'NR==1{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $5+$6}' /proc/stat)
	echo "$a $b" | awk '{printf "%d", 100 * (1 - ($4 - $2) / ($3 - $1))}'
}
wait_quiet() {
	local waited=0 busy
	while :; do
		busy=$(cpu_busy)
		if [ "$busy" -lt 10 ] || [ "$waited" -ge "$1" ]; then
			echo "$busy"
			return
		fi
		waited=$((waited + 2))
	done
}

failed=0
for round in $(seq 1 "$rounds"); do
	run_side backend "$round" "$backend_module" "$backend_token"
	run_side layered "$round" "$layered_module" "$layered_token"
done

py_rc=0
"$PYTHON" - "$out_dir" "$rounds" "$markdown" \
	"$(basename "$backend_module")" "$(basename "$layered_module")" \
	"${workloads[@]}" <<'PY' || py_rc=$?
import json
import os
import statistics
import sys

out_dir, rounds, markdown = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
names = {"backend": sys.argv[4], "layered": sys.argv[5]}
# Named on the command line: listed even if neither side produced a line.
requested = [w for w in sys.argv[6:] if w != "all"]


def load(side):
    """workload -> (list of ops/s over rounds, total errors), in run order."""
    order, rates, errors = [], {}, {}
    for r in range(1, rounds + 1):
        path = os.path.join(out_dir, "%s.%d.jsonl" % (side, r))
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                rec = json.loads(line)
                w = rec["workload"]
                if w not in rates:
                    order.append(w)
                    rates[w], errors[w] = [], 0
                rates[w].append(float(rec["ops_per_s"]))
                errors[w] += int(rec.get("errors", 0))
    return order, rates, errors


def cell(rates, errors, w):
    # A workload that failed setup on one side prints no line at all.
    if w not in rates or not rates[w]:
        return None, "n/a"
    med = statistics.median(rates[w])
    mark = " (!)" if errors[w] else ""
    return med, "%.1f%s" % (med, mark)


b_order, b_rates, b_err = load("backend")
l_order, l_rates, l_err = load("layered")
order = []
for w in requested + b_order + l_order:
    if w not in order:
        order.append(w)

rows = []
any_errors = False
for w in order:
    b, b_txt = cell(b_rates, b_err, w)
    l, l_txt = cell(l_rates, l_err, w)
    ratio = "%.2f" % (l / b) if b and l is not None else "n/a"
    any_errors = any_errors or b_err.get(w, 0) or l_err.get(w, 0)
    rows.append((w, b_txt, l_txt, ratio))

head = ("workload", "backend ops/s", "layered ops/s", "ratio")
print("backend: %s   layered: %s   rounds: %d (median ops/s)"
      % (names["backend"], names["layered"], rounds))
if markdown:
    print()
    print("| %s |" % " | ".join(head))
    print("|---|---:|---:|---:|")
    for r in rows:
        print("| %s |" % " | ".join(r))
else:
    widths = [max(len(x[i]) for x in rows + [head]) for i in range(4)]
    fmt = "%-*s  %*s  %*s  %*s"
    print(fmt % (widths[0], head[0], widths[1], head[1],
                 widths[2], head[2], widths[3], head[3]))
    for r in rows:
        print(fmt % (widths[0], r[0], widths[1], r[1],
                     widths[2], r[2], widths[3], r[3]))
print()
print("ratio = layered / backend; (!) = some ops failed in a round")
sys.exit(1 if any_errors else 0)
PY
[ "$failed" -eq 0 ] || exit 1
exit "$py_rc"
