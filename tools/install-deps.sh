#!/bin/bash
# install-deps.sh - installs the Debian 12 packages cmkp11 builds and tests with.
set -euo pipefail
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
packages=(
    build-essential cmake pkg-config
    libssl-dev libsqlite3-dev libp11-kit-dev libinih-dev libjson-c-dev uuid-dev
    softhsm2 opensc p11-kit gnutls-bin libnss3-tools
    libengine-pkcs11-openssl openssl sqlite3 python3-pykcs11 openjdk-17-jre-headless
    clang libclang-rt-14-dev valgrind e2fsprogs util-linux
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
