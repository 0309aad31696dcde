#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_datakey.sh - the data plane of a symmetric CMK: generate-data-key (its plaintext
# encrypts with OpenSSL, its blob decrypts back to it), the variant without plaintext,
# re-encrypt, generate-random; generate-mac and verify-mac checked against OpenSSL's HMAC
# with imported material; and the input bounds (a file larger than an operation takes is
# refused before it is read whole).
. "$(dirname "$0")/lib.sh"

W=$CMK_WORK/datakey
mkdir -p "$W"

create data
data=$ID
create data2
data2=$ID
create signer --key-spec EC_P256

# ---- generate-data-key ----
ctl generate-data-key --key-id alias/data --encryption-context '{"app":"billing"}' \
    --plaintext-out "$W/dk" --out "$W/dk.blob"
expect_eq "generate-data-key: AES_256 by default, blob and key under version 1" \
    '(sorted(d), d["KeyId"], d["KeyVersionId"], len(__import__("base64").b64decode(d["Plaintext"])))' \
    "(['CiphertextBlob', 'KeyId', 'KeyVersionId', 'Plaintext', 'RequestId'], '$data', '1', 32)"
dk=$(j 'd["Plaintext"]')
blob=$(j 'd["CiphertextBlob"]')
expect_true "--plaintext-out is the Plaintext printed, mode 0600" \
    bash -c '[ "$(base64 -w0 "$1")" = "$2" ] && [ "$(stat -c %a "$1")" = 600 ]' _ "$W/dk" "$dk"
expect_true "--out is the CiphertextBlob printed" \
    bash -c '[ "$(base64 -w0 "$1")" = "$2" ]' _ "$W/dk.blob" "$blob"
printf 'a large document, encrypted under the data key' >"$W/doc"
openssl enc -aes-256-cbc -K "$(xxd -p -c 64 "$W/dk")" -iv 000102030405060708090a0b0c0d0e0f \
    -in "$W/doc" -out "$W/doc.enc"
ctl decrypt --ciphertext-blob "$blob" --encryption-context '{"app":"billing"}' --out "$W/dk.back"
expect_eq "decrypt of the blob gives the data key back" 'd["Plaintext"]' "$dk"
expect_true "the data key from decrypt opens what OpenSSL encrypted under the first" \
    bash -c 'openssl enc -d -aes-256-cbc -K "$(xxd -p -c 64 "$1")" -iv 000102030405060708090a0b0c0d0e0f -in "$2" | cmp -s - "$3"' \
    _ "$W/dk.back" "$W/doc.enc" "$W/doc"
ctl decrypt --ciphertext-blob "$blob"
expect_error "the data key's blob needs its encryption context" InvalidParameterValue.InvalidCiphertext 2

ctl generate-data-key --key-id data --key-spec AES_128
expect_eq "--key-spec AES_128: 16 bytes" 'len(__import__("base64").b64decode(d["Plaintext"]))' 16
ctl generate-data-key --key-id data --number-of-bytes 1024
expect_eq "--number-of-bytes 1024" 'len(__import__("base64").b64decode(d["Plaintext"]))' 1024
ctl generate-data-key --key-id data --number-of-bytes 1025
expect_error "--number-of-bytes 1025 is refused" InvalidParameter 2
ctl generate-data-key --key-id data --number-of-bytes 0
expect_error "--number-of-bytes 0 is refused" InvalidParameter 2
ctl generate-data-key --key-id data --key-spec AES_128 --number-of-bytes 16
expect_error "--key-spec and --number-of-bytes together are refused" InvalidParameter 2
ctl generate-data-key --key-id data --key-spec RSA_2048
expect_error "a data key spec other than AES is refused" InvalidParameter 2
ctl generate-data-key --key-id signer
expect_error "an EC key makes no data keys" InvalidParameterValue.InvalidKeyUsage 2
ctl disable-key --key-id data2
ctl generate-data-key --key-id data2
expect_error "a Disabled key makes no data keys" ResourceUnavailable.CmkDisabled 4
ctl enable-key --key-id data2

# Two data keys are different (drawn, not derived).
ctl generate-data-key --key-id data
a=$(j 'd["Plaintext"]')
ctl generate-data-key --key-id data
expect_true "two data keys differ" bash -c '[ "$1" != "$2" ]' _ "$a" "$(j 'd["Plaintext"]')"

# ---- without plaintext ----
ctl generate-data-key-without-plaintext --key-id data --key-spec AES_128
expect_eq "generate-data-key-without-plaintext gives no Plaintext" 'sorted(d)' \
    "['CiphertextBlob', 'KeyId', 'KeyVersionId', 'RequestId']"
ctl decrypt --ciphertext-blob "$(j 'd["CiphertextBlob"]')"
expect_eq "its blob decrypts to a 16-byte key" 'len(__import__("base64").b64decode(d["Plaintext"]))' 16

# ---- re-encrypt, across a rotation ----
ctl rotate-key --key-id data2
ctl re-encrypt --ciphertext-blob-file "$W/dk.blob" --source-encryption-context '{"app":"billing"}' \
    --destination-key-id alias/data2 --destination-encryption-context moved --out "$W/dk2.blob"
expect_eq "re-encrypt names both keys and versions" \
    '(d["SourceKeyId"], d["SourceKeyVersionId"], d["KeyId"], d["KeyVersionId"], "Plaintext" in d)' \
    "('$data', '1', '$data2', '2', False)"
ctl decrypt --ciphertext-blob-file "$W/dk2.blob" --encryption-context moved
expect_eq "the re-encrypted blob decrypts under the new key to the same data key" \
    '(d["Plaintext"], d["KeyId"])' "('$dk', '$data2')"
ctl re-encrypt --ciphertext-blob-file "$W/dk.blob" --destination-key-id data2
expect_error "re-encrypt needs the source context" InvalidParameterValue.InvalidCiphertext 2
ctl re-encrypt --ciphertext-blob-file "$W/dk.blob" --source-key-id data2 \
    --source-encryption-context '{"app":"billing"}' --destination-key-id data
expect_error "re-encrypt with the wrong --source-key-id" InvalidParameterValue.InvalidCiphertext 2

# ---- generate-random ----
ctl generate-random --number-of-bytes 48 --out "$W/rand"
expect_eq "generate-random: 48 bytes" 'len(__import__("base64").b64decode(d["Plaintext"]))' 48
expect_true "--out holds the bytes printed" \
    bash -c '[ "$(base64 -w0 "$1")" = "$2" ]' _ "$W/rand" "$(j 'd["Plaintext"]')"
ctl generate-random --number-of-bytes 2000
expect_error "generate-random over 1024 bytes is refused" InvalidParameter 2

# ---- generate-mac, verify-mac: against OpenSSL, with material of our own ----
# openssl_mac DIGEST KEYFILE MSGFILE: the HMAC, base64.
openssl_mac() {
    openssl mac -digest "$1" -macopt hexkey:"$(xxd -p -c 256 "$2")" -binary -in "$3" HMAC | base64 -w0
}
printf '{"sub":"alice","exp":1767225600}' >"$W/claims"
# HMAC_224 material cannot be imported yet (the module measures a secret's length by
# wrapping it with padding, which rounds 28 bytes up to 32): a generated HMAC_224 key is
# checked by its MAC's length and its own verify-mac.
create mac224 --key-spec HMAC_224 --key-usage GENERATE_VERIFY_MAC
ctl generate-mac --key-id mac224 --message-file "$W/claims" --out "$W/mac224.mac"
expect_eq "HMAC_224: a 28-byte HMAC-SHA224" '(len(__import__("base64").b64decode(d["Mac"])), d["MacAlgorithm"])' \
    "(28, 'HMAC_SHA_224')"
ctl verify-mac --key-id mac224 --message-file "$W/claims" --mac-file "$W/mac224.mac"
expect_eq "HMAC_224: verify-mac accepts it" 'd["MacValid"]' True
for bits in 256 384 512; do
    create "mac$bits" --key-spec "HMAC_$bits" --key-usage GENERATE_VERIFY_MAC --origin EXTERNAL
    ctl get-parameters-for-import --key-id "mac$bits" --wrapping-algorithm RSAES_OAEP_SHA_1 \
        --wrapping-key-spec RSA_2048 --public-key-out "$W/mac$bits.pem"
    token=$(j 'd["ImportToken"]')
    openssl rand $((bits / 8)) >"$W/mac$bits.key"
    openssl pkeyutl -encrypt -pubin -inkey "$W/mac$bits.pem" -in "$W/mac$bits.key" \
        -out "$W/mac$bits.enc" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1
    ctl import-key-material --key-id "mac$bits" --encrypted-key-material "$W/mac$bits.enc" \
        --import-token "$token"
    expect_eq "HMAC_$bits: material imported" 'd["KeyState"]' Enabled
    ctl generate-mac --key-id "alias/mac$bits" --message-file "$W/claims" --out "$W/mac$bits.mac"
    expect_eq "HMAC_$bits: generate-mac is OpenSSL's HMAC-SHA$bits of the message" \
        '(d["Mac"], d["MacAlgorithm"])' "('$(openssl_mac "SHA$bits" "$W/mac$bits.key" "$W/claims")', 'HMAC_SHA_$bits')"
    ctl verify-mac --key-id "mac$bits" --message-file "$W/claims" --mac-file "$W/mac$bits.mac"
    expect_eq "HMAC_$bits: verify-mac accepts it" '(d["MacValid"], d["MacAlgorithm"])' \
        "(True, 'HMAC_SHA_$bits')"
done
ctl verify-mac --key-id mac256 --message "$(printf 'other' | base64 -w0)" --mac-file "$W/mac256.mac"
expect_eq "verify-mac of another message: MacValid false" 'd["MacValid"]' False
expect_true "... and exit code 1" test "$RC" -eq 1
ctl generate-mac --key-id mac256 --message-file "$W/claims" --mac-algorithm HMAC_SHA_512
expect_error "an algorithm other than the key's is refused" InvalidParameterValue.InvalidKeyUsage 2
ctl generate-mac --key-id data --message-file "$W/claims"
expect_error "an AES key makes no MACs" InvalidParameterValue.InvalidKeyUsage 2
ctl generate-mac --key-id mac256 --message ''
expect_error "an empty message is refused" InvalidParameter 2

# ---- strict base64 ----
ctl encrypt --key-id data --plaintext 'hello world'
expect_error "base64 with a space is refused, not read as 'helloworld'" InvalidParameter 2
ctl encrypt --key-id data --plaintext aGVsbG8
expect_error "base64 without its padding is refused" InvalidParameter 2
ctl encrypt --key-id data --plaintext QR==
expect_error "non-canonical base64 (pad bits set) is refused" InvalidParameter 2
head -c 200 /dev/urandom >"$W/wrapped"
ctl encrypt --key-id data --plaintext "$(base64 "$W/wrapped")"
blob=$(j 'd["CiphertextBlob"]')
ctl decrypt --ciphertext-blob "$blob"
expect_eq "base64 wrapped at 76 columns (base64's own output) is read" 'd["Plaintext"]' \
    "$(base64 -w0 "$W/wrapped")"

# The AWS CLI's fileb:// (raw bytes) and file:// (a file of base64).
ctl encrypt --key-id data --plaintext "fileb://$W/wrapped"
ctl decrypt --ciphertext-blob "$(j 'd["CiphertextBlob"]')"
expect_eq "--plaintext fileb://PATH takes the file's bytes" 'd["Plaintext"]' "$(base64 -w0 "$W/wrapped")"
base64 "$W/wrapped" >"$W/wrapped.b64"
ctl encrypt --key-id data --plaintext "file://$W/wrapped.b64" --out "$W/fromfile.blob"
ctl decrypt --ciphertext-blob "fileb://$W/fromfile.blob"
expect_eq "--plaintext file://PATH reads base64; --ciphertext-blob fileb:// the blob" 'd["Plaintext"]' \
    "$(base64 -w0 "$W/wrapped")"
ctl encrypt --key-id data --plaintext "file://$W/wrapped"
expect_error "file:// of raw bytes is not base64" InvalidParameter 2
ctl encrypt --key-id data --plaintext fileb:///dev/zero
expect_error "fileb:///dev/zero is refused at once" InvalidParameter 2

# ---- bounded input ----
head -c 5000 /dev/zero >"$W/big"
ctl encrypt --key-id data --plaintext-file "$W/big"
expect_error "encrypt of a file over 4096 bytes is refused" InvalidParameter 2
ctl encrypt --key-id data --plaintext-file /dev/zero
expect_error "encrypt of /dev/zero is refused at once" InvalidParameter 2
ctl generate-mac --key-id mac256 --message-file /dev/zero
expect_error "generate-mac of /dev/zero is refused at once" InvalidParameter 2
ctl decrypt --ciphertext-blob-file /dev/zero
expect_error "decrypt of /dev/zero is refused at once" InvalidParameter 2

finish
