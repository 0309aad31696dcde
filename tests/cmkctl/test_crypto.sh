#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_crypto.sh - get-public-key, sign and verify, checked against OpenSSL both ways.
. "$(dirname "$0")/lib.sh"

msg=$CMK_WORK/msg
printf 'The quick brown fox jumps over the lazy dog' >"$msg"

declare -A kid
# alias, create options, signing algorithm, openssl digest, openssl extra options
while IFS='|' read -r alias opts alg digest extra; do
    [ -z "$alias" ] && continue
    # shellcheck disable=SC2086
    create "$alias" $opts
    [ -n "$ID" ] || continue
    kid[$alias]=$ID
    ctl get-public-key --key-id "$alias" --out "$CMK_WORK/$alias.pem"
    expect_eq "$alias: get-public-key" '(d["KeyId"], d["KeyUsage"])' "('$ID', 'SIGN_VERIFY')"
    j 'd["PublicKey"]' >"$CMK_WORK/$alias.json.pem"
    expect_true "$alias: PEM read by openssl pkey -pubin" \
        quiet openssl pkey -pubin -in "$CMK_WORK/$alias.json.pem" -noout
    expect_true "$alias: --out writes the same PEM" cmp -s <(head -c -1 "$CMK_WORK/$alias.json.pem") "$CMK_WORK/$alias.pem"
    expect_eq "$alias: $alg is offered" "'$alg' in d['SigningAlgorithms']" True

    ctl sign --key-id "$alias" --message-file "$msg" --signing-algorithm "$alg" --out "$CMK_WORK/$alias.sig"
    expect_eq "$alias: sign $alg" '(d["KeyId"], d["SigningAlgorithm"])' "('$ID', '$alg')"
    sig=$(j 'd["Signature"]')
    expect_true "$alias: base64 Signature equals the --out file" \
        bash -c '[ "$(base64 -w0 "$1")" = "$2" ]' _ "$CMK_WORK/$alias.sig" "$sig"
    # shellcheck disable=SC2086
    expect_true "$alias: openssl verifies the signature" \
        quiet openssl dgst "-$digest" -verify "$CMK_WORK/$alias.pem" $extra -signature "$CMK_WORK/$alias.sig" "$msg"
    ctl verify --key-id "$alias" --message-file "$msg" --signature "$sig" --signing-algorithm "$alg"
    expect_eq "$alias: cmkctl verify" 'd["SignatureValid"]' True
    expect_ok "$alias: verify exit 0"

    # A digest computed outside (--message-type DIGEST) signs the same message.
    openssl dgst "-$digest" -binary "$msg" >"$CMK_WORK/digest"
    ctl sign --key-id "$alias" --message "$(base64 -w0 "$CMK_WORK/digest")" --message-type DIGEST \
        --signing-algorithm "$alg" --out "$CMK_WORK/$alias.dsig"
    # shellcheck disable=SC2086
    expect_true "$alias: signing a DIGEST gives a signature over the message" \
        quiet openssl dgst "-$digest" -verify "$CMK_WORK/$alias.pem" $extra -signature "$CMK_WORK/$alias.dsig" "$msg"

    printf 'tampered' >"$CMK_WORK/other"
    ctl verify --key-id "$alias" --message-file "$CMK_WORK/other" --signature "$sig" --signing-algorithm "$alg"
    expect_true "$alias: a wrong message is not valid, exit 1" \
        bash -c '[ "$1" -eq 1 ] && [ "$2" = False ]' _ "$RC" "$(j 'd["SignatureValid"]')"
done <<'KEYS'
ec256|--key-spec EC_P256|ECDSA_SHA_256|sha256|
ec384|--key-usage ASYMMETRIC_SIGN_VERIFY_ECDSA384|ECDSA_SHA_384|sha384|
ec521|--key-spec EC_P521|ECDSA_SHA_512|sha512|
k256|--key-spec EC_P256K|ECDSA_SHA_256|sha256|
rsa|--key-spec RSA_2048 --key-usage SIGN_VERIFY|RSASSA_PKCS1_V1_5_SHA_256|sha256|
rsapss|--key-usage ASYMMETRIC_SIGN_VERIFY_RSA_2048|RSASSA_PSS_SHA_256|sha256|-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
rsa384|--key-spec RSA_3072 --key-usage SIGN_VERIFY|RSASSA_PSS_SHA_384|sha384|-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
KEYS

# Defaults: the curve's hash, PKCS#1 v1.5 for RSA.
ctl sign --key-id ec384 --message-file "$msg"
expect_eq "default algorithm for EC_P384" 'd["SigningAlgorithm"]' ECDSA_SHA_384
ctl sign --key-id rsa --message "$(base64 -w0 "$msg")"
expect_eq "default algorithm for RSA, --message base64" 'd["SigningAlgorithm"]' RSASSA_PKCS1_V1_5_SHA_256
ctl verify --key-id rsa --message-file "$msg" --signature-file "$CMK_WORK/rsa.sig"
expect_eq "verify --signature-file" 'd["SignatureValid"]' True
ctl verify --key-id ec256 --message-file "$msg" --signature-file "$CMK_WORK/k256.sig"
expect_true "another key's signature is not valid" \
    bash -c '[ "$1" -eq 1 ] && [ "$2" = False ]' _ "$RC" "$(j 'd["SignatureValid"]')"
ctl verify --key-id ec256 --message-file "$msg" --signature "bm90IGEgc2lnbmF0dXJl"
expect_true "garbage is not a valid signature" \
    bash -c '[ "$1" -eq 1 ] && [ "$2" = False ]' _ "$RC" "$(j 'd["SignatureValid"]')"

ctl sign --key-id ec256 --message-file "$msg" --signing-algorithm RSASSA_PSS_SHA_256
expect_error "RSA algorithm on an EC key" InvalidParameter 2
ctl sign --key-id ec256 --message-file "$msg" --signing-algorithm SM2DSA
expect_error "unknown algorithm" InvalidParameter 2
ctl sign --key-id ec256
expect_error "no message" MissingParameter 2
ctl sign --key-id ec256 --message aGk= --message-file "$msg"
expect_error "two messages" InvalidParameter 2
ctl sign --key-id ec256 --message '!!not base64!!'
expect_error "message not base64" InvalidParameter 2
ctl sign --key-id ec256 --message aGk= --message-type DIGEST
expect_error "a DIGEST of the wrong length" InvalidParameter 2
ctl sign --key-id ec256 --message-file "$CMK_WORK/no-such-file"
expect_error "unreadable message file" InvalidParameter 2

create decrypt --key-usage ASYMMETRIC_DECRYPT_RSA_2048
ctl sign --key-id decrypt --message-file "$msg"
expect_error "sign with an ENCRYPT_DECRYPT key" InvalidParameterValue.InvalidKeyUsage 2
ctl get-public-key --key-id decrypt
expect_eq "an ENCRYPT_DECRYPT RSA key has a public key" 'd["KeyUsage"]' ENCRYPT_DECRYPT
create sym
ctl get-public-key --key-id sym
expect_error "a symmetric key has no public key" UnsupportedOperation 4
ctl sign --key-id sym --message-file "$msg"
expect_error "sign with a symmetric key" InvalidParameterValue.InvalidKeyUsage 2

# The URI in the metadata is usable by OpenSSL-side tools: p11-kit parses it back.
ctl describe-key --key-id ec256
uri=$(j 'd["KeyMetadata"]["Pkcs11"]["Uri"]')
ctl sign --key-id "$uri" --message-file "$msg"
expect_eq "sign with the key named by its URI" 'd["KeyId"]' "${kid[ec256]}"

# OpenSSL signs through the token by that same URI (libp11 engine); cmkctl verifies.
engine=$(find /usr/lib -name pkcs11.so -path '*engines-3*' 2>/dev/null | head -n 1)
if [ -z "$engine" ]; then
    fail "the OpenSSL 3 pkcs11 engine is not installed (Debian package libengine-pkcs11-openssl)"
elif can_use_client "the OpenSSL-by-URI check" openssl openssl; then
    cat >"$CMK_WORK/engine.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $engine
MODULE_PATH = $CMK_MODULE
init = 0
CNF
    openssl dgst -sha256 -binary "$msg" >"$CMK_WORK/msg.sha256"
    expect_true "openssl signs by the URI from describe-key" quiet env \
        OPENSSL_CONF="$CMK_WORK/engine.cnf" timeout 60 openssl pkeyutl -engine pkcs11 \
        -keyform engine -sign -inkey "$uri;pin-value=$CMK_PIN" -in "$CMK_WORK/msg.sha256" \
        -out "$CMK_WORK/engine.sig"
    ctl verify --key-id "$uri" --message-file "$msg" --signature-file "$CMK_WORK/engine.sig"
    expect_eq "cmkctl verifies OpenSSL's signature" 'd["SignatureValid"]' True
fi
finish
