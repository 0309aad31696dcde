#!/bin/bash
# demo.sh - the main job on a fresh Debian 12 machine: build cmkp11, make a SoftHSMv2
# token and a CMK store under ./demo, create CMKs with pkcs11-tool and use them.
#
# CMKP11_DEMO_BUILD=DIR uses a build that is already there instead of installing packages
# and building ./build, and CMKP11_DEMO_DIR=DIR puts the demo elsewhere than ./demo: the
# README test (tests/readme/) runs this script so, then the README's commands after it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${CMKP11_DEMO_BUILD:-}
if [ -z "$build" ]; then
    "$top/tools/install-deps.sh"
    cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMKP11_TESTING=OFF >/dev/null
    cmake --build "$top/build" -j"$(nproc)" >/dev/null
    build=$top/build
fi
module="$build/libcmkp11.so"

demo=${CMKP11_DEMO_DIR:-$top/demo}
if [ -e "$demo" ]; then
    kept="$demo.$(date +%Y%m%dT%H%M%S)"
    echo "== $demo exists: moved to $kept (its keys stay there)"
    mv "$demo" "$kept"
fi
. "$top/tests/lib/testenv.sh"
cmk_testenv_setup "$demo"
echo "== token and store under $demo (CMKP11_CONF=$CMKP11_CONF)"
p11() { pkcs11-tool --module "$module" --login --pin "$CMK_PIN" "$@"; }

echo "== CreateKey: an AES-256 CMK and an EC P-256 CMK, aliases from --label"
p11 --keygen --key-type AES:32 --label demo-aes
p11 --keypairgen --key-type EC:prime256v1 --label demo-signer --id 01

echo "== sign with the CMK through pkcs11-tool, verify with OpenSSL"
echo "hello from cmkp11" > "$demo/message.txt"
openssl dgst -sha256 -binary "$demo/message.txt" > "$demo/message.sha256"
p11 --sign --mechanism ECDSA --label demo-signer --input-file "$demo/message.sha256" \
    --output-file "$demo/message.sig" --signature-format openssl
p11 --read-object --type pubkey --label demo-signer --output-file "$demo/signer.der"
openssl pkey -pubin -inform DER -in "$demo/signer.der" -out "$demo/signer.pem"
openssl pkeyutl -verify -pubin -inkey "$demo/signer.pem" -in "$demo/message.sha256" \
    -sigfile "$demo/message.sig"

echo "== the objects the token shows (each CMK once; material stays in the HSM)"
p11 --list-objects
echo "== the same keys in the clouds' vocabulary, through cmkctl"
CMKP11_PIN=$CMK_PIN "$build/tools/cmkctl/cmkctl" --module "$module" list-keys --output table
CMKP11_PIN=$CMK_PIN "$build/tools/cmkctl/cmkctl" --module "$module" describe-key \
    --key-id alias/demo-signer

echo "== the CMK metadata kept in SQLite"
sqlite3 -header -column "$demo/cmk.db" \
    "SELECT key_id, alias, key_spec, key_usage, state FROM cmk"
