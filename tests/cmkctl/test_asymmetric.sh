#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_asymmetric.sh - what the clouds do with asymmetric keys beside ECDSA and RSA
# signatures: SM2DSA sign/verify (checked by OpenSSL with SM3 and the default user id),
# RSAES_OAEP_SHA_1/SHA_256 and SM2PKE encryption (OpenSSL encrypts with the public key
# get-public-key gives, cmkctl decrypts in the token), and their refusals.
. "$(dirname "$0")/lib.sh"

W=$CMK_WORK/asym
mkdir -p "$W"
printf 'an order of 42 widgets' >"$W/msg"

# ---- SM2DSA ----
create sm2 --key-spec EC_SM2 --key-usage SIGN_VERIFY
sm2=$ID
ctl get-public-key --key-id sm2 --out "$W/sm2.pem"
expect_eq "get-public-key: an SM2 key signs with SM2DSA only" 'd["SigningAlgorithms"]' "['SM2DSA']"
ctl sign --key-id alias/sm2 --message-file "$W/msg" --out "$W/sm2.sig"
expect_eq "sign: SM2DSA by default for an SM2 key" '(d["KeyId"], d["SigningAlgorithm"])' "('$sm2', 'SM2DSA')"
expect_true "OpenSSL verifies the SM2DSA signature (SM3, user id 1234567812345678)" \
    quiet openssl pkeyutl -verify -pubin -inkey "$W/sm2.pem" -rawin -digest sm3 -in "$W/msg" \
    -sigfile "$W/sm2.sig" -pkeyopt distid:1234567812345678
ctl verify --key-id sm2 --message-file "$W/msg" --signature-file "$W/sm2.sig" --signing-algorithm SM2DSA
expect_eq "cmkctl verify accepts it" 'd["SignatureValid"]' True
printf 'an order of 43 widgets' >"$W/msg2"
ctl verify --key-id sm2 --message-file "$W/msg2" --signature-file "$W/sm2.sig"
expect_eq "... and refuses it for another message" 'd["SignatureValid"]' False
ctl sign --key-id sm2 --message-file "$W/msg" --message-type DIGEST
expect_error "SM2DSA of a digest: the token hashes Z || message itself" UnsupportedOperation 4
create p256 --key-spec EC_P256
ctl sign --key-id p256 --message-file "$W/msg" --signing-algorithm SM2DSA
expect_error "SM2DSA with a P-256 key is refused" InvalidParameter 2
ctl sign --key-id sm2 --message-file "$W/msg" --signing-algorithm ECDSA_SHA_256
expect_error "ECDSA with an SM2 key is refused" InvalidParameter 2

# ---- RSAES_OAEP ----
# oaep_encrypt MD PEM IN OUT: what a client does with the public key.
oaep_encrypt() {
    openssl pkeyutl -encrypt -pubin -inkey "$2" -in "$3" -out "$4" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:"$1" -pkeyopt rsa_mgf1_md:"$1"
}
for level in HSM SOFTWARE; do
    create "rsa-$level" --key-spec RSA_2048 --key-usage ENCRYPT_DECRYPT --protection-level "$level"
    rsa=$ID
    ctl get-public-key --key-id "rsa-$level" --out "$W/rsa-$level.pem"
    expect_eq "$level: an RSA ENCRYPT_DECRYPT key lists the OAEP algorithms" 'd["EncryptionAlgorithms"]' \
        "['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256']"
    oaep_encrypt sha1 "$W/rsa-$level.pem" "$W/msg" "$W/rsa-$level.sha1"
    ctl decrypt --key-id "rsa-$level" --encryption-algorithm RSAES_OAEP_SHA_1 \
        --ciphertext-blob-file "$W/rsa-$level.sha1" --out "$W/rsa-$level.out"
    expect_eq "$level: OpenSSL's RSAES_OAEP_SHA_1 ciphertext decrypts" \
        '(d["KeyId"], d["EncryptionAlgorithm"])' "('$rsa', 'RSAES_OAEP_SHA_1')"
    expect_true "$level: to the message" cmp -s "$W/msg" "$W/rsa-$level.out"
    ctl encrypt --key-id "rsa-$level" --encryption-algorithm RSAES_OAEP_SHA_1 --plaintext-file "$W/msg"
    ct=$(j 'd["CiphertextBlob"]')
    ctl decrypt --key-id "rsa-$level" --encryption-algorithm RSAES_OAEP_SHA_1 --ciphertext-blob "$ct"
    expect_eq "$level: cmkctl encrypt and decrypt with RSAES_OAEP_SHA_1" 'd["Plaintext"]' \
        "$(base64 -w0 "$W/msg")"
done
# SoftHSMv2 2.6.1 decrypts OAEP with SHA-1 only; a SOFTWARE key decrypts in cmkp11.
oaep_encrypt sha256 "$W/rsa-SOFTWARE.pem" "$W/msg" "$W/rsa.sha256"
ctl decrypt --key-id rsa-SOFTWARE --encryption-algorithm RSAES_OAEP_SHA_256 \
    --ciphertext-blob-file "$W/rsa.sha256"
expect_eq "SOFTWARE: OpenSSL's RSAES_OAEP_SHA_256 ciphertext decrypts" 'd["Plaintext"]' \
    "$(base64 -w0 "$W/msg")"
ctl decrypt --key-id rsa-SOFTWARE --encryption-algorithm RSAES_OAEP_SHA_1 \
    --ciphertext-blob-file "$W/rsa.sha256"
expect_error "a SHA-256 ciphertext under SHA-1" InvalidParameterValue.InvalidCiphertext 2
oaep_encrypt sha256 "$W/rsa-HSM.pem" "$W/msg" "$W/rsa-HSM.sha256"
ctl decrypt --key-id rsa-HSM --encryption-algorithm RSAES_OAEP_SHA_256 \
    --ciphertext-blob-file "$W/rsa-HSM.sha256"
expect_error "HSM: RSAES_OAEP_SHA_256, which SoftHSMv2 lacks, is UnsupportedOperation" UnsupportedOperation 4
head -c 215 /dev/zero >"$W/long"
ctl encrypt --key-id rsa-HSM --encryption-algorithm RSAES_OAEP_SHA_1 --plaintext-file "$W/long"
expect_error "215 bytes are too many for RSA-2048 OAEP-SHA-1" InvalidParameter 2
ctl decrypt --encryption-algorithm RSAES_OAEP_SHA_1 --ciphertext-blob-file "$W/rsa-HSM.sha1"
expect_error "an asymmetric ciphertext needs --key-id" MissingParameter 2
ctl encrypt --key-id rsa-HSM --encryption-algorithm RSAES_OAEP_SHA_1 --plaintext-file "$W/msg" \
    --encryption-context x
expect_error "an encryption context with OAEP is refused" InvalidParameter 2
ctl encrypt --key-id sm2 --encryption-algorithm RSAES_OAEP_SHA_1 --plaintext-file "$W/msg"
expect_error "OAEP with an SM2 signing key" InvalidParameterValue.InvalidKeyUsage 2
create rsa-sign --key-spec RSA_2048 --key-usage SIGN_VERIFY
ctl encrypt --key-id rsa-sign --encryption-algorithm RSAES_OAEP_SHA_1 --plaintext-file "$W/msg"
expect_error "OAEP with an RSA SIGN_VERIFY key" InvalidParameterValue.InvalidKeyUsage 2

# ---- SM2PKE ----
create sm2enc --key-spec EC_SM2 --key-usage ENCRYPT_DECRYPT
ctl get-public-key --key-id sm2enc --out "$W/sm2enc.pem"
expect_eq "an SM2 ENCRYPT_DECRYPT key lists SM2PKE" 'd["EncryptionAlgorithms"]' "['SM2PKE']"
openssl pkeyutl -encrypt -pubin -inkey "$W/sm2enc.pem" -in "$W/msg" -out "$W/sm2.ct"
ctl decrypt --key-id sm2enc --encryption-algorithm SM2PKE --ciphertext-blob-file "$W/sm2.ct"
expect_eq "OpenSSL's SM2 ciphertext decrypts with SM2PKE" 'd["Plaintext"]' "$(base64 -w0 "$W/msg")"
ctl encrypt --key-id sm2enc --encryption-algorithm SM2PKE --plaintext-file "$W/msg" --out "$W/sm2.ct2"
ctl decrypt --key-id sm2enc --encryption-algorithm SM2PKE --ciphertext-blob-file "$W/sm2.ct2"
expect_eq "cmkctl encrypt and decrypt with SM2PKE" 'd["Plaintext"]' "$(base64 -w0 "$W/msg")"

finish
