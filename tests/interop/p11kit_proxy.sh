#!/bin/bash
# p11kit_proxy.sh - cmkp11 registered with p11-kit in a private configuration only:
# `p11-kit list-modules` shows the module and its token, and OpenSC's pkcs11-tool
# through p11-kit-proxy.so lists the token, makes an EC CMK, signs (checked by plain
# OpenSSL), lists objects without the backend material, and schedules its deletion.
#
# The private configuration and the non-root user are lib.sh's p11kit_setup. The whole
# pkcs11-tool suite also runs through the proxy: interop_pkcs11_tool_proxy.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

require_tool pkcs11-tool opensc
require_tool openssl openssl
require_tool sqlite3 sqlite3
p11kit_setup
W=$CMK_WORK
CONF_DIR=$P11KIT_CONF
check "the module file is conf/cmkp11.module with the built module's absolute path" \
    grep -qx "module: $CMK_MODULE" "$CONF_DIR/modules/cmkp11.module"
P=("${AS[@]}" pkcs11-tool --module "$PROXY")
L=(--login --pin "$CMK_PIN")
KEY=px

# --- p11-kit sees exactly our registration ---------------------------------------------
ok list-modules "${AS[@]}" env P11_KIT_DEBUG=conf p11-kit list-modules
lacks list-modules "skipping user config" "p11-kit reads the private user configuration (not skipped as root)"
has list-modules "reading config file: $CONF_DIR/pkcs11.conf\$" "p11-kit reads the test's pkcs11.conf"
has list-modules "^cmkp11: $CMK_MODULE\$" "module cmkp11 is registered with the built module's path"
has list-modules "^[[:space:]]+library-description: cmkp11 " "the module loads and describes itself as cmkp11"
has list-modules "^[[:space:]]+token: $CMK_TOKEN\$" "token $CMK_TOKEN is listed"
# The backend's free slot is listed too (a pass-through slot, as on SoftHSMv2 alone); its
# uninitialised token has no label.
count_is list-modules "^[[:space:]]+token: [^[:space:]]" 1 "exactly one labelled token in all"
lacks list-modules "^(softhsm2|opensc-pkcs11):" "the system's module registrations are not loaded"
lacks list-modules "token: $CMK_BACKEND_TOKEN\$" "the backend token is not shown"

# --- pkcs11-tool through the proxy ------------------------------------------------------
ok list-slots "${P[@]}" -L
has list-slots "^[[:space:]]*token label[[:space:]]*: ${CMK_TOKEN}[[:space:]]*\$" "token label is $CMK_TOKEN through the proxy"
has list-slots "^[[:space:]]*token model[[:space:]]*: CMK[[:space:]]*\$" "the token is cmkp11's (model CMK)"
count_is list-slots "token label" 1 "exactly one token through the proxy"
ok list-mechs "${P[@]}" -M
has list-mechs "^[[:space:]]*ECDSA," "ECDSA is listed through the proxy"
has list-mechs "^[[:space:]]*ECDSA-KEY-PAIR-GEN," "ECDSA-KEY-PAIR-GEN is listed through the proxy"

ok keypairgen-ec "${P[@]}" "${L[@]}" --keypairgen --key-type EC:prime256v1 --label "$KEY" --id 0a
# Proof that the key went through cmkp11: the CMK store has it.
ok store-after-keygen sqlite3 "$W/cmk.db" "select cast(label as text) || '|' || key_spec || '|' || state from cmk"
has store-after-keygen "^$KEY\|EC_P256\|1\$" "the store holds CMK $KEY, EC_P256, Enabled"

ok list-objects "${P[@]}" "${L[@]}" -O
count_is list-objects "^Private Key Object; EC" 1 "one EC private key"
count_is list-objects "^Public Key Object; EC" 1 "one EC public key"
count_is list-objects "^(Secret|Private|Public) Key Object" 2 "two objects in all"
count_is list-objects "^[[:space:]]*label:[[:space:]]+$KEY\$" 2 "label $KEY twice (private and public)"
count_is list-objects "^[[:space:]]*ID:[[:space:]]+0a\$" 2 "the pair shares the id 0a given"
lacks list-objects "label:[[:space:]]+cmkp11/" "no backend material label (cmkp11/...) is shown"
has list-objects "^[[:space:]]*Access:[[:space:]]+sensitive, always sensitive, never extractable" \
    "the private key is sensitive and never extractable"

ok read-pub "${P[@]}" --read-object --type pubkey --label "$KEY" -o "$W/px.pub.der"
openssl pkey -pubin -inform DER -in "$W/px.pub.der" -out "$W/px.pub.pem" || fail "cannot read the public key"
check "the public key is a P-256 SubjectPublicKeyInfo" \
    bash -c "openssl pkey -pubin -in '$W/px.pub.pem' -text -noout | grep -q 'NIST CURVE: P-256'"

printf 'cmkp11 through p11-kit-proxy\n' >"$W/msg"
cp "$W/msg" "$W/msg.bad" && printf 'x' >>"$W/msg.bad"
openssl dgst -sha256 -binary "$W/msg" >"$W/msg.sha256"
ok sign-ecdsa "${P[@]}" "${L[@]}" --sign -m ECDSA --id 0a -f openssl -i "$W/msg.sha256" -o "$W/px.sig"
check "OpenSSL verifies the ECDSA signature made through the proxy" \
    openssl dgst -sha256 -verify "$W/px.pub.pem" -signature "$W/px.sig" "$W/msg"
check_not "OpenSSL rejects it over another message" \
    openssl dgst -sha256 -verify "$W/px.pub.pem" -signature "$W/px.sig" "$W/msg.bad"

# --- scheduled deletion through the proxy -------------------------------------------------
ok delete-key "${P[@]}" "${L[@]}" --delete-object --type privkey --label "$KEY"
ok list-after-delete "${P[@]}" "${L[@]}" -O
lacks list-after-delete "^Private Key Object" "the private key is no longer listed"
lacks list-after-delete "label:[[:space:]]+cmkp11/" "still no backend material label"
ok store-after-delete sqlite3 "$W/cmk.db" "select cast(label as text) || '|' || state from cmk"
has store-after-delete "^$KEY\|3\$" "the store has $KEY PendingDeletion (3)"
# The deleted key no longer signs: pkcs11-tool no longer finds it (not some other error).
refused sign-after-delete "Private key not found" \
    "${P[@]}" "${L[@]}" --sign -m ECDSA --id 0a -i "$W/msg.sha256" -o "$W/px2.sig"

finish
