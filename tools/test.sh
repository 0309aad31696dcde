#!/bin/bash
# test.sh - sets up a fresh Debian 12 machine and runs the whole test suite: the normal
# build (all tests, real clients included), then an AddressSanitizer + UBSan build (the
# module's own tests; real clients do not load the sanitizer runtime).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/install-deps.sh"
jobs=$(nproc)

# build-test, not build: ./build is the production build tools/demo.sh makes and the
# README's commands use (a test build would answer to the test hooks' variables).
cmake -S "$top" -B "$top/build-test" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMKP11_TESTING=ON
cmake --build "$top/build-test" -j"$jobs"
(cd "$top/build-test" && ctest --output-on-failure -j"$jobs")
# Stress stage: the races between threads and processes (label race) run again and again,
# each up to ${CMKP11_RACE_REPEAT:-5} times in all, so a race that fails one run in ten
# shows here rather than in one submission of ten.
(cd "$top/build-test" && ctest --output-on-failure -j"$jobs" -L race --repeat until-fail:"${CMKP11_RACE_REPEAT:-5}")

cmake -S "$top" -B "$top/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCMKP11_SANITIZE=ON -DCMKP11_TESTING=ON
cmake --build "$top/build-asan" -j"$jobs"
(cd "$top/build-asan" && ctest --output-on-failure -j"$jobs" -LE interop)

# libFuzzer harnesses (clang), a short bounded run of each over its checked-in corpus.
"$top/tests/fuzz/run-fuzz.sh" "$top/build-fuzz"
