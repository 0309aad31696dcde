#!/bin/bash
# run-comparison.sh: cmkp11 against its backend (SoftHSMv2) used directly, on
# tokens of the same size, in one run, alternating; prints a markdown table
# with the ratio of each workload next to its issue-8 target.
#
# The two sides never share a token (cmkp11 keeps its keys' material on its
# backend token under labels of its own, and raw bench-obj-* keys made on the
# same token would be found twice): the workspace holds one SoftHSMv2 token
# directory with two tokens, "raw" and "cmk-backend" (presented by cmkp11 as
# "cmkp11"). See bench/README.md.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "$0")" && pwd)
WS_PROG=run-comparison.sh
. "$SELF_DIR/workspace.sh"

usage() {
	cat <<'EOF'
usage: run-comparison.sh [--objects N] [--dir DIR] [--threads T[,T...]]
                         [--rounds R] [--seconds S | --count N]
                         [--workload W ...] [--module PATH] [--backend PATH]
                         [--results DIR] [--quiet-wait S] [--prepare-only]

  --objects N     bench-obj-* keys on each side (default 100): plain AES
                  token keys on "raw", CMKs on "cmkp11"
  --dir DIR       workspace (default /tmp/cmkp11-bench/n<N>); reused when it
                  exists, missing objects are added
  --threads LIST  thread counts, comma separated (default 1); with 1 and
                  more, a scaling table follows
  --rounds R      backend/cmkp11 pairs per thread count (default 3)
  --seconds S     run time per workload, side and round (default 2)
  --workload W    repeatable (default: all)
  --module PATH   cmkp11 module (default: build/libcmkp11.so of this tree)
  --backend PATH  SoftHSMv2 module (default /usr/lib/softhsm/libsofthsm2.so)
  --results DIR   keep raw JSON lines and the table here
                  (default DIR/results/<timestamp>)
  --quiet-wait S  before each single run, wait up to S seconds (default 60,
                  0: never) for the machine to be nearly idle; the busy share
                  seen is reported (the machine may be shared)
  --prepare-only  make the workspace and its objects, measure nothing
EOF
}

die() { ws_die "$*"; }
need_arg() { [ "$#" -ge 2 ] || die "$1 needs a value"; }

objects=100 dir='' threads=1 rounds=3 seconds='' count='' results=''
module=$SELF_DIR/../build/libcmkp11.so prepare_only=0 quiet_wait=60
workloads=()
while [ "$#" -gt 0 ]; do
	case "$1" in
	--objects) need_arg "$@"; objects=$2; shift 2 ;;
	--dir) need_arg "$@"; dir=$2; shift 2 ;;
	--threads) need_arg "$@"; threads=$2; shift 2 ;;
	--rounds) need_arg "$@"; rounds=$2; shift 2 ;;
	--seconds) need_arg "$@"; seconds=$2; shift 2 ;;
	--count) need_arg "$@"; count=$2; shift 2 ;;
	--workload) need_arg "$@"; workloads+=("$2"); shift 2 ;;
	--module) need_arg "$@"; module=$2; shift 2 ;;
	--backend) need_arg "$@"; WS_BACKEND=$2; shift 2 ;;
	--results) need_arg "$@"; results=$2; shift 2 ;;
	--quiet-wait) need_arg "$@"; quiet_wait=$2; shift 2 ;;
	--prepare-only) prepare_only=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
done
[[ "$objects" =~ ^[1-9][0-9]*$ ]] || die "--objects must be a positive integer"
[[ "$threads" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--threads: a comma-separated list of counts"
[ -z "$seconds" ] || [ -z "$count" ] || die "--seconds and --count exclude each other"
[ -n "$seconds" ] || [ -n "$count" ] || seconds=2
[ "${#workloads[@]}" -gt 0 ] || workloads=(all)
dir=${dir:-/tmp/cmkp11-bench/n$objects}
module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module")

# A workspace belongs to one object count: more objects than asked for would
# silently measure a bigger token.
if [ -f "$dir/objects" ] && [ "$(cat "$dir/objects")" != "$objects" ]; then
	die "$dir was made for $(cat "$dir/objects") objects, not $objects; use another --dir"
fi
ws_setup "$dir" "$module"
echo "$objects" >"$WS_DIR/objects"

# Population goes through each side's own module (cmkbench --objects); both
# sides at once, as they are separate tokens and separate processes.
if [ ! -f "$WS_DIR/ready" ]; then
	echo "$WS_PROG: making $objects objects on each side in $WS_DIR (progress in populate-*.log)" >&2
	rc_raw=0 rc_cmk=0
	ws_populate raw "$objects" 2>>"$WS_DIR/populate-raw.log" & pid_raw=$!
	ws_populate cmkp11 "$objects" 2>>"$WS_DIR/populate-cmkp11.log" & pid_cmk=$!
	wait "$pid_raw" || rc_raw=$?
	wait "$pid_cmk" || rc_cmk=$?
	[ "$rc_raw" -eq 0 ] || die "populating raw failed; see $WS_DIR/populate-raw.log"
	[ "$rc_cmk" -eq 0 ] || die "populating cmkp11 failed; see $WS_DIR/populate-cmkp11.log"
	touch "$WS_DIR/ready"
fi
[ "$prepare_only" -eq 0 ] || { echo "$WS_DIR ready ($objects objects per side)"; exit 0; }

results=${results:-$WS_DIR/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$results"
machine=$(ws_machine)
moddesc=$(ws_module_desc)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

compare_args=(--backend-module "$WS_BACKEND" --backend-token "$WS_RAW_TOKEN"
	--layered-module "$WS_MODULE" --layered-token "$WS_CMK_TOKEN"
	--pin "$WS_PIN" --objects "$objects" --rounds "$rounds"
	--cmkbench "$(ws_cmkbench)" --quiet-wait "$quiet_wait")
[ -n "$seconds" ] && compare_args+=(--seconds "$seconds")
[ -n "$count" ] && compare_args+=(--count "$count")
for w in "${workloads[@]}"; do compare_args+=(--workload "$w"); done

status=0
IFS=, read -r -a tlist <<<"$threads"
for t in "${tlist[@]}"; do
	echo "$WS_PROG: $objects objects, $t thread(s), $rounds rounds" >&2
	mkdir -p "$results/t$t"
	"$SELF_DIR/compare.sh" "${compare_args[@]}" --threads "$t" \
		--raw-dir "$results/t$t" >"$results/t$t/compare.txt" 2>"$results/t$t/compare.err" ||
		status=1
done

/usr/bin/python3 - "$results" "$objects" "$rounds" "${seconds:-}" "${count:-}" \
	"$machine" "$moddesc" "$load_before" "${tlist[@]}" <<'PY' | tee "$results/table.md"
import json, os, statistics, sys

res, objects, rounds, seconds, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
machine, moddesc, loadavg = sys.argv[6], sys.argv[7], sys.argv[8]
tlist = [int(t) for t in sys.argv[9:]]

CRYPTO = ("sign-ecdsa-p256", "sign-rsa-2048", "verify-ecdsa-p256",
          "encrypt-aes-gcm-4k", "decrypt-aes-gcm-4k")


def load(t, side):
    rates, errs, order = {}, {}, []
    for r in range(1, rounds + 1):
        p = os.path.join(res, "t%d" % t, "%s.%d.jsonl" % (side, r))
        if not os.path.exists(p):
            continue
        for line in open(p):
            if not line.startswith("{"):
                continue
            j = json.loads(line)
            w = j["workload"]
            if w not in rates:
                order.append(w)
                rates[w], errs[w] = [], 0
            rates[w].append(float(j["ops_per_s"]))
            errs[w] += int(j.get("errors", 0))
    return order, {w: statistics.median(v) for w, v in rates.items()}, errs


def verdict(ok):
    return "met" if ok else "**missed**"


def target(w, b, l, t):
    """(target text, met or None) for workload w; b, l: median ops/s."""
    r = l / b
    if w in CRYPTO:
        return "≥ 0.97: " + verdict(r >= 0.97)
    if w.startswith("keygen-"):
        return "≥ 0.80: " + verdict(r >= 0.80)
    if w == "find-by-label":
        if objects >= 10000:
            return "≥ 1000: " + verdict(r >= 1000)
        return "(≥ 1000 at 10,000)"
    if w == "find-first-sign":
        # time at most 1.05x the backend's, i.e. ops/s ratio >= 1/1.05
        return "time ≤ 1.05x (ratio ≥ 0.952): " + verdict(r >= 1 / 1.05)
    if w == "init-login-finalize":
        d = 1000.0 / l - 1000.0 / b
        return "within 10 ms: %+.1f ms, %s" % (d, verdict(d <= 10.0))
    return "-"


def fmt(x):
    return "%.1f" % x if x < 100 else "%.0f" % x


run = "%s s" % seconds if seconds else "%s ops" % count
print("%s; %s" % (machine, moddesc))
print("%d objects per side (raw: AES token keys; cmkp11: CMKs), %d rounds of %s per side, "
      "alternating backend/cmkp11, median ops/s; load average before: %s"
      % (objects, rounds, run, loadavg))
per_t = {}
for t in tlist:
    bo, b, be = load(t, "backend")
    lo, l, le = load(t, "layered")
    per_t[t] = (b, l)
    print()
    print("**%d thread%s**" % (t, "" if t == 1 else "s"))
    print()
    print("| workload | backend ops/s | cmkp11 ops/s | ratio | target |")
    print("|---|---:|---:|---:|---|")
    for w in bo + [x for x in lo if x not in bo]:
        if w not in b or w not in l:
            print("| %s | %s | %s | n/a | |" % (w, fmt(b[w]) if w in b else "n/a",
                                              fmt(l[w]) if w in l else "n/a"))
            continue
        mark_b = " (!)" if be.get(w) else ""
        mark_l = " (!)" if le.get(w) else ""
        wn = w + (" (1 thread)" if w == "init-login-finalize" and t > 1 else "")
        print("| %s | %s%s | %s%s | %.3f | %s |" % (wn, fmt(b[w]), mark_b, fmt(l[w]), mark_l,
                                                   l[w] / b[w], target(w, b[w], l[w], t)))
if 1 in per_t and len(per_t) > 1:
    b1, l1 = per_t[1]
    for t in tlist:
        if t == 1:
            continue
        bt, lt = per_t[t]
        print()
        print("**scaling, %d threads / 1 thread**" % t)
        print()
        print("| workload | backend | cmkp11 | target |")
        print("|---|---:|---:|---|")
        for w in bt:
            if w not in b1 or w not in l1 or w not in lt or w == "init-login-finalize":
                continue
            tgt = "-"
            if w.startswith("sign-"):
                tgt = "≥ 1.7 (issue 8): " + verdict(lt[w] / l1[w] >= 1.7)
            print("| %s | %.2f | %.2f | %s |" % (w, bt[w] / b1[w], lt[w] / l1[w], tgt))
busy = []
for t in tlist:
    q = os.path.join(res, "t%d" % t, "quiet.log")
    if os.path.exists(q):
        busy += [int(l.split()[3].rstrip("%")) for l in open(q) if l.strip()]
if busy:
    print()
    print("CPU busy in the 2 s before each run: %d-%d %% (median %d %%)"
          % (min(busy), max(busy), statistics.median(busy)))
print()
print("(!) = some ops failed in some round; raw JSON lines: %s" % res)
PY
exit "$status"
