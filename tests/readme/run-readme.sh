#!/bin/bash
# run-readme.sh BUILD - README.md's commands, run as a newcomer runs them: tools/demo.sh
# (on the build under test rather than a build of its own), then every ```sh block of the
# README in order, each as a script that stops at its first failing command, from the top
# of a scratch tree whose ./build is BUILD and whose ./demo is the demo's. A block the
# README marks <!-- readme-test: skip (why) --> is left out, for the reason it gives.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: run-readme.sh BUILD}" && pwd)

work=$(mktemp -d /tmp/cmkp11-readme.XXXXXX)
trap 'rm -rf "$work"' EXIT
ln -s "$build" "$work/build"
export HOME=$work/home # the walk-through writes ~/.cmkp11-pin
mkdir -p "$HOME"
unset CMKP11_CONF SOFTHSM2_CONF CMKP11_MODULE CMKP11_PIN OPENSSL_CONF

if ! (cd "$work" && CMKP11_DEMO_BUILD="$build" CMKP11_DEMO_DIR="$work/demo" \
    bash "$top/tools/demo.sh") >"$work/demo.log" 2>&1; then
    echo "not ok - tools/demo.sh"
    tail -n 40 "$work/demo.log"
    exit 1
fi
echo "ok - tools/demo.sh"

# The blocks, numbered in README order, with the line each starts on.
/usr/bin/python3 - "$top/README.md" "$work/blocks" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read().split("\n")
os.makedirs(sys.argv[2])
n, i = 0, 0
while i < len(text):
    if text[i].strip() == "```sh":
        start, body = i + 1, []
        i += 1
        while text[i].strip() != "```":
            body.append(text[i])
            i += 1
        n += 1
        skip = re.match(r"<!-- readme-test: skip \((.*)\) -->", text[start - 2].strip())
        name = "%02d-line%d%s.sh" % (n, start + 1, ".skip" if skip else "")
        with open(os.path.join(sys.argv[2], name), "w") as f:
            f.write(("# skipped: %s\n" % skip.group(1) if skip else "") + "\n".join(body) + "\n")
    i += 1
PY

failed=0
for block in "$work"/blocks/*.sh; do
    name=$(basename "$block" .sh)
    if [[ $name == *.skip ]]; then
        echo "ok - ${name%.skip} # SKIP $(head -n 1 "$block" | sed 's/^# skipped: //')"
        continue
    fi
    if (cd "$work" && timeout 300 bash -eo pipefail "$block") >"$work/$name.log" 2>&1; then
        echo "ok - README block $name"
    else
        failed=1
        echo "not ok - README block $name"
        sed 's/^/#   /' "$work/$name.log" | tail -n 40
    fi
done
exit $failed
