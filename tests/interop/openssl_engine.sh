#!/bin/bash
# openssl_engine.sh - OpenSSL 3 with the libp11 pkcs11 engine over cmkp11: ECDSA and
# RSA (PKCS#1 v1.5 and PSS) signatures made through the engine by PKCS#11 URI and
# verified by plain OpenSSL, and self-signed certificates from `openssl req -x509`
# whose public key is the token's.
#
# The engine falls back to the system's modules when it is not given one, so the test
# proves that every signature came through cmkp11: cmkp11's own log (level debug) shows a
# C_Sign for each engine step, cmkctl reads the CMK's vendor attributes through the very
# URI the engine signs with, and the signatures verify with the public key cmkctl exports
# from the CMK.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

require_tool openssl openssl
require_tool pkcs11-tool opensc
require_tool sqlite3 sqlite3
engine_setup

W=$CMK_WORK
P=(pkcs11-tool --module "$CMK_MODULE" --login --pin "$CMK_PIN")
module_trace

uri() { # uri LABEL TYPE
    printf 'pkcs11:token=%s;object=%s;type=%s;pin-value=%s' "$CMK_TOKEN" "$1" "$2" "$CMK_PIN"
}

ok engine-test "${E[@]}" engine -t pkcs11
has engine-test "^[[:space:]]*\[ available \]" "the pkcs11 engine loads through the test's OPENSSL_CONF"

# --- CMKs made with pkcs11-tool -------------------------------------------------------
ok keypairgen-ec "${P[@]}" --keypairgen --key-type EC:prime256v1 --label tls-key --id 11
ok keypairgen-rsa "${P[@]}" --keypairgen --key-type RSA:2048 --label tls-rsa --id 12
ok read-ec-pub "${P[@]}" --read-object --type pubkey --label tls-key -o "$W/ec.pub.der"
ok read-rsa-pub "${P[@]}" --read-object --type pubkey --label tls-rsa -o "$W/rsa.pub.der"
openssl pkey -pubin -inform DER -in "$W/ec.pub.der" -out "$W/ec.pub.pem" || fail "cannot read the EC public key"
openssl pkey -pubin -inform DER -in "$W/rsa.pub.der" -out "$W/rsa.pub.pem" || fail "cannot read the RSA public key"

# The URIs the engine signs with name CMKs of this module: cmkctl reads their vendor
# attributes through them, and exports their public keys from the CMK.
store store-keys "select cast(label as text) || '|' || key_id from cmk order by label"
for k in tls-key tls-rsa; do
    # pkcs11-tool's templates ask EC keys to sign and derive, RSA keys to sign and
    # decrypt; the key has every usage asked, the primary one first (README, "Key usage").
    spec=EC_P256 usage=SIGN_VERIFY+KEY_AGREEMENT
    [ "$k" = tls-rsa ] && spec=RSA_2048 usage=SIGN_VERIFY+ENCRYPT_DECRYPT
    key_id=$(sed -n "s/^$k|//p" "$OUT/store-keys")
    ctl "describe-$k" describe-key --key-id "pkcs11:token=$CMK_TOKEN;object=$k;type=private"
    json_is "describe-$k" \
        'tuple(d["KeyMetadata"][f] for f in ("Alias", "KeyId", "KeySpec", "KeyUsage", "KeyState", "Origin")) + (d["KeyMetadata"]["Pkcs11"]["Token"],)' \
        "('$k', '${key_id:-?}', '$spec', '$usage', 'Enabled', 'KMS', '$CMK_TOKEN')" \
        "the engine's URI for $k is CMK ${key_id:-?} ($spec, $usage, Enabled, KMS) on token $CMK_TOKEN"
    ctl "public-$k" get-public-key --key-id "pkcs11:token=$CMK_TOKEN;object=$k;type=private" --out "$W/$k.cmkctl.pem"
    pub_to_der "$W/$k.cmkctl.pem" "$W/$k.cmkctl.der" || fail "cannot read the public key cmkctl exported for $k"
done
check "cmkctl exports the EC CMK's public key that pkcs11-tool reads" cmp "$W/ec.pub.der" "$W/tls-key.cmkctl.der"
check "cmkctl exports the RSA CMK's public key that pkcs11-tool reads" cmp "$W/rsa.pub.der" "$W/tls-rsa.cmkctl.der"

# The engine finds the same public key by URI.
ok engine-ec-pub "${E[@]}" pkey -engine pkcs11 -inform engine -pubin -in "$(uri tls-key public)" -out "$W/ec.engine.pem"
pub_to_der "$W/ec.engine.pem" "$W/ec.engine.der" || true
check "the engine's public key for tls-key is the token's" cmp "$W/ec.pub.der" "$W/ec.engine.der"

printf 'cmkp11 engine interop\n' >"$W/msg"
openssl dgst -sha256 -binary "$W/msg" >"$W/msg.sha256"
printf 'cmkp11 engine interop, altered\n' | openssl dgst -sha256 -binary >"$W/other.sha256"

# engine_sign NAME ARGS...: an OpenSSL command with the engine that must sign through
# cmkp11 (its log counts one more C_Sign at least).
engine_sign() {
    local name=$1 before
    shift
    before=$(module_signs)
    ok "$name" "${E[@]}" "$@"
    signed_through_module "$name: the engine signed through cmkp11" "$before"
}

# --- ECDSA over a SHA-256 digest -------------------------------------------------------
engine_sign sign-ec pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$(uri tls-key private)" \
    -in "$W/msg.sha256" -out "$W/ec.sig"
check "plain OpenSSL verifies the engine's ECDSA signature" \
    openssl pkeyutl -verify -pubin -inkey "$W/ec.pub.pem" -in "$W/msg.sha256" -sigfile "$W/ec.sig"
check "and so does the public key cmkctl exported from the CMK" \
    openssl pkeyutl -verify -pubin -inkey "$W/tls-key.cmkctl.pem" -in "$W/msg.sha256" -sigfile "$W/ec.sig"
check_not "plain OpenSSL rejects it for another digest" \
    openssl pkeyutl -verify -pubin -inkey "$W/ec.pub.pem" -in "$W/other.sha256" -sigfile "$W/ec.sig"
# A second signature: ECDSA is randomised, so equal signatures would mean a replay.
engine_sign sign-ec-again pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$(uri tls-key private)" \
    -in "$W/msg.sha256" -out "$W/ec2.sig"
differ "two ECDSA signatures of one digest differ" "$W/ec.sig" "$W/ec2.sig"

# --- RSA-2048: PKCS#1 v1.5 and PSS -----------------------------------------------------
engine_sign sign-rsa pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$(uri tls-rsa private)" \
    -pkeyopt digest:sha256 -in "$W/msg.sha256" -out "$W/rsa.sig"
check "plain OpenSSL verifies the engine's RSA PKCS#1 v1.5 signature" \
    openssl pkeyutl -verify -pubin -inkey "$W/rsa.pub.pem" -pkeyopt digest:sha256 \
    -in "$W/msg.sha256" -sigfile "$W/rsa.sig"
check "and so does the public key cmkctl exported from the CMK" \
    openssl pkeyutl -verify -pubin -inkey "$W/tls-rsa.cmkctl.pem" -pkeyopt digest:sha256 \
    -in "$W/msg.sha256" -sigfile "$W/rsa.sig"
check_not "plain OpenSSL rejects it for another digest" \
    openssl pkeyutl -verify -pubin -inkey "$W/rsa.pub.pem" -pkeyopt digest:sha256 \
    -in "$W/other.sha256" -sigfile "$W/rsa.sig"
engine_sign sign-rsa-pss pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$(uri tls-rsa private)" \
    -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 \
    -in "$W/msg.sha256" -out "$W/rsa-pss.sig"
check "plain OpenSSL verifies the engine's RSA-PSS signature" \
    openssl pkeyutl -verify -pubin -inkey "$W/rsa.pub.pem" -pkeyopt digest:sha256 \
    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 -in "$W/msg.sha256" -sigfile "$W/rsa-pss.sig"
# Whole-message signing through the engine (openssl dgst hashes, the token signs).
engine_sign dgst-sign-rsa dgst -sha256 -engine pkcs11 -keyform engine -sign "$(uri tls-rsa private)" \
    -out "$W/rsa-dgst.sig" "$W/msg"
check "plain OpenSSL verifies the dgst -sign signature" \
    openssl dgst -sha256 -verify "$W/rsa.pub.pem" -signature "$W/rsa-dgst.sig" "$W/msg"

# --- self-signed certificates -------------------------------------------------------------
for k in tls-key tls-rsa; do
    pubder=$W/ec.pub.der
    [ "$k" = tls-rsa ] && pubder=$W/rsa.pub.der
    engine_sign "req-$k" req -new -x509 -engine pkcs11 -keyform engine -key "$(uri "$k" private)" \
        -subj /CN=cmkp11-test -days 1 -sha256 -out "$W/$k.crt"
    ok "x509-$k" openssl x509 -in "$W/$k.crt" -noout -text
    has "x509-$k" "^[[:space:]]*Subject: CN ?= ?cmkp11-test\$" "the $k certificate's subject is CN=cmkp11-test"
    has "x509-$k" "^[[:space:]]*Issuer: CN ?= ?cmkp11-test\$" "the $k certificate is self-issued"
    openssl x509 -in "$W/$k.crt" -noout -pubkey >"$W/$k.crt.pub.pem" || true
    pub_to_der "$W/$k.crt.pub.pem" "$W/$k.crt.pub.der" || true
    check "the $k certificate's public key is the token's" cmp "$pubder" "$W/$k.crt.pub.der"
    check "the $k certificate's self-signature verifies" \
        openssl verify -CAfile "$W/$k.crt" "$W/$k.crt"
done
has x509-tls-key "Signature Algorithm: ecdsa-with-SHA256" "the EC certificate is signed with ecdsa-with-SHA256"
has x509-tls-key "NIST CURVE: P-256" "the EC certificate's key is P-256"
has x509-tls-rsa "Signature Algorithm: sha256WithRSAEncryption" "the RSA certificate is signed with sha256WithRSAEncryption"
has x509-tls-rsa "Public-Key: \(2048 bit\)" "the RSA certificate's key is 2048 bits"

finish
