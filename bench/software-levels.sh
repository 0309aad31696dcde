#!/bin/bash
# software-levels.sh: the two protection levels side by side (issue 11). In one run,
# alternating, with R rounds each: the backend (SoftHSMv2) used directly, cmkp11 at
# level HSM (forwarded to that backend), and cmkp11 at level SOFTWARE (the module runs
# the cipher with OpenSSL on sealed material); also SM2 and SM4, which only the
# SOFTWARE level offers over SoftHSMv2. Prints a markdown table of median ops/s and p50,
# the SOFTWARE/backend ratio against the issue's 1.5x, and, with 1 and 2 threads, how
# the SOFTWARE level scales (performance.md: at least 1.7x with 2 threads).
set -euo pipefail
SELF_DIR=$(cd "$(dirname "$0")" && pwd)
WS_PROG=software-levels.sh
. "$SELF_DIR/workspace.sh"
usage() {
	cat <<'USAGE'
usage: software-levels.sh [--dir DIR] [--threads T[,T...]] [--rounds R]
                          [--seconds S] [--module PATH] [--results DIR]
  --dir DIR       workspace (default /tmp/cmkp11-bench/n100; made if missing)
  --threads LIST  thread counts (default 1,2)
  --rounds R      rounds of every side and workload (default 3)
  --seconds S     run time of each (default 2)
  --module PATH   cmkp11 module (default: build/libcmkp11.so of this tree)
  --results DIR   keep the JSON lines and the table (default DIR/levels/<timestamp>)
USAGE
}
die() { ws_die "$*"; }
need_arg() { [ "$#" -ge 2 ] || die "$1 needs a value"; }
dir=/tmp/cmkp11-bench/n100 threads=1,2 rounds=3 seconds=2 results=''
module=$SELF_DIR/../build/libcmkp11.so
while [ "$#" -gt 0 ]; do
	case "$1" in
	--dir) need_arg "$@"; dir=$2; shift 2 ;;
	--threads) need_arg "$@"; threads=$2; shift 2 ;;
	--rounds) need_arg "$@"; rounds=$2; shift 2 ;;
	--seconds) need_arg "$@"; seconds=$2; shift 2 ;;
	--module) need_arg "$@"; module=$2; shift 2 ;;
	--results) need_arg "$@"; results=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
done
[[ "$threads" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--threads: a comma-separated list of counts"
[[ "$rounds" =~ ^[1-9][0-9]*$ && "$seconds" =~ ^[1-9][0-9]*$ ]] || die "--rounds/--seconds: positive integers"
module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module")
ws_setup "$dir" "$module"
results=${results:-$WS_DIR/levels/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$results"
cmkbench=$(ws_cmkbench)

# side | token | workloads
RAW=(sign-ecdsa-p256 encrypt-aes-gcm-4k)
HSM=(sign-ecdsa-p256 encrypt-aes-gcm-4k)
SOFT=(sign-ecdsa-p256-software encrypt-aes-gcm-4k-software verify-ecdsa-p256-software
	sign-sm2-software encrypt-sm4-cbc-4k-software)
run() { # side module token threads round workloads...
	local side=$1 mod=$2 token=$3 t=$4 r=$5 w args=()
	shift 5
	for w in "$@"; do args+=(--workload "$w"); done
	BENCH_PIN=$WS_PIN "$cmkbench" --module "$mod" --token-label "$token" --threads "$t" \
		--seconds "$seconds" "${args[@]}" >>"$results/$side.t$t.jsonl" 2>>"$results/errors.log" ||
		die "cmkbench failed on $side (round $r, $t threads); see $results/errors.log"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
IFS=, read -r -a tlist <<<"$threads"
for t in "${tlist[@]}"; do
	for r in $(seq 1 "$rounds"); do
		echo "$WS_PROG: $t thread(s), round $r of $rounds" >&2
		run backend "$WS_BACKEND" "$WS_RAW_TOKEN" "$t" "$r" "${RAW[@]}"
		run hsm "$WS_MODULE" "$WS_CMK_TOKEN" "$t" "$r" "${HSM[@]}"
		run software "$WS_MODULE" "$WS_CMK_TOKEN" "$t" "$r" "${SOFT[@]}"
	done
done
/usr/bin/python3 - "$results" "$(ws_machine)" "$(ws_module_desc)" "$load_before" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" "$rounds" "$seconds" "${tlist[@]}" <<'PY' | tee "$results/table.md"
import json, os, statistics, sys

res, machine, moddesc, load0, load1, rounds, seconds = sys.argv[1:8]
tlist = [int(t) for t in sys.argv[8:]]


def load(side, t):
    out = {}
    p = os.path.join(res, "%s.t%d.jsonl" % (side, t))
    for line in open(p) if os.path.exists(p) else []:
        if line.startswith("{"):
            j = json.loads(line)
            out.setdefault(j["workload"], []).append((float(j["ops_per_s"]), float(j["p50_us"])))
    return {w: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
            for w, v in out.items()}


def fmt(x):
    return "%.0f" % x if x >= 100 else "%.1f" % x


print("%s; %s" % (machine, moddesc))
print("%s rounds of %s s per side and workload, alternating; median ops/s (p50 us); "
      "load average before %s, after %s" % (rounds, seconds, load0, load1))
rows = [("ECDSA P-256 sign", "sign-ecdsa-p256", "sign-ecdsa-p256-software", 1.5),
        ("AES-256-GCM 4 KiB encrypt", "encrypt-aes-gcm-4k", "encrypt-aes-gcm-4k-software", 1.5),
        ("ECDSA P-256 verify", None, "verify-ecdsa-p256-software", None),
        ("SM2 sign (SM3, Z value)", None, "sign-sm2-software", None),
        ("SM4-CBC 4 KiB encrypt", None, "encrypt-sm4-cbc-4k-software", None)]
soft_by_t = {}
for t in tlist:
    b, h, s = load("backend", t), load("hsm", t), load("software", t)
    soft_by_t[t] = s
    print()
    print("**%d thread%s**" % (t, "" if t == 1 else "s"))
    print()
    print("| operation | backend alone | cmkp11, level HSM | cmkp11, level SOFTWARE | "
          "SOFTWARE / backend | target |")
    print("|---|---:|---:|---:|---:|---|")
    for name, hw, sw, target in rows:
        cell = lambda d, w: "%s (%s)" % (fmt(d[w][0]), fmt(d[w][1])) if w in d else "-"
        ratio = "%.2f" % (s[sw][0] / b[hw][0]) if hw in b and sw in s else "-"
        tgt = "-"
        if target and hw in b and sw in s:
            tgt = "≥ %.1f: %s" % (target, "met" if s[sw][0] / b[hw][0] >= target else "**missed**")
        print("| %s | %s | %s | %s | %s | %s |" % (name, cell(b, hw) if hw else "-",
                                                  cell(h, hw) if hw else "-", cell(s, sw),
                                                  ratio, tgt))
if 1 in soft_by_t and len(tlist) > 1:
    print()
    print("**SOFTWARE level, scaling with threads** (ops/s of all threads over 1 thread; "
          "target ≥ 1.7 with 2)")
    print()
    others = [t for t in tlist if t != 1]
    print("| operation | " + " | ".join("%d threads" % t for t in others) + " |")
    print("|---|" + "---:|" * len(others))
    for name, _, sw, _ in rows:
        one = soft_by_t[1].get(sw)
        cells = []
        for t in others:
            x = soft_by_t[t].get(sw)
            cells.append("%.2f" % (x[0] / one[0]) if x and one else "-")
        print("| %s | %s |" % (name, " | ".join(cells)))
PY
echo "$WS_PROG: results in $results" >&2
