#!/bin/bash
# run-fuzz.sh [BUILD_DIR] - builds the libFuzzer harnesses with clang in a build folder
# of their own (default: build-fuzz at the top of the tree) and runs each one over a
# copy of its checked-in seed corpus for a bounded time (ctest -L fuzz).
# Environment: JOBS (build parallelism, default nproc), CMKP11_FUZZ_SECONDS (per
# harness, default 15). Installs clang and its fuzzer runtime when missing.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-fuzz}
jobs=${JOBS:-$(nproc)}
seconds=${CMKP11_FUZZ_SECONDS:-15}

# -fsanitize=fuzzer needs clang's compiler-rt (libclang-rt-14-dev on Debian 12, only
# a recommendation of clang there).
missing=()
for p in clang libclang-rt-14-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang -DCMKP11_FUZZ=ON \
    -DCMKP11_WITH_CMKCTL=OFF -DCMKP11_FUZZ_SECONDS="$seconds"
cmake --build "$build" --target fuzz_harnesses -j"$jobs"
cd "$build"
ctest -L fuzz --output-on-failure --no-tests=error
