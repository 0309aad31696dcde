#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_import.sh - EXTERNAL origin the way the clouds' import guides tell users to do it:
# cmkctl gives the wrapping public key, plain openssl wraps the material, cmkctl imports it,
# and the key then encrypts (or signs) with exactly that material, proven with openssl.
. "$(dirname "$0")/lib.sh"

W=$CMK_WORK/import
mkdir -p "$W"
msg=$W/msg
printf 'imported material in use' >"$msg"
iv=000102030405060708090a0b0c0d0e0f

# params KEY ALG SPEC NAME: get-parameters-for-import; PEM in $W/NAME.pem, token in TOKEN.
params() {
    TOKEN=
    ctl get-parameters-for-import --key-id "$1" --wrapping-algorithm "$2" --wrapping-key-spec "$3" \
        --public-key-out "$W/$4.pem"
    if [ "$RC" -ne 0 ]; then
        fail "get-parameters-for-import $*"
        return
    fi
    TOKEN=$(j 'd["ImportToken"]')
}

# oaep MD PEM IN OUT: RSAES_OAEP with MD for digest and MGF1, as the guides write it.
oaep() {
    openssl pkeyutl -encrypt -pubin -inkey "$2" -in "$3" -out "$4" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:"$1" -pkeyopt rsa_mgf1_md:"$1"
}

# rsa_aes_wrap MD PEM IN OUT: RSA_AES_KEY_WRAP from openssl commands: a random AES-256 key
# wrapped with OAEP, followed by the material wrapped under it with RFC 5649.
rsa_aes_wrap() {
    openssl rand 32 >"$W/kek"
    oaep "$1" "$2" "$W/kek" "$W/kek.enc"
    openssl enc -id-aes256-wrap-pad -K "$(xxd -p -c 64 "$W/kek")" -iv A65959A6 -in "$3" \
        -out "$W/material.kwp"
    cat "$W/kek.enc" "$W/material.kwp" >"$4"
}

# encrypts_with ALIAS MATERIAL: AES-CBC-PAD through the module (pkcs11-tool, which picks
# the key by CKA_ID) decrypts with the material used directly by openssl.
encrypts_with() {
    rm -f "$W/ct"
    ctl describe-key --key-id "$1"
    timeout 60 pkcs11-tool --module "$CMK_MODULE" --login --pin "$CMK_PIN" --encrypt \
        -m AES-CBC-PAD --iv "$iv" --id "$(j 'd["KeyMetadata"]["Pkcs11"]["CkaId"]')" \
        -i "$msg" -o "$W/ct" >/dev/null 2>&1 &&
        openssl enc -d -aes-256-cbc -K "$(xxd -p -c 64 "$2")" -iv "$iv" -in "$W/ct" |
        cmp -s - "$msg"
}

# ---- create ----
create byok --origin EXTERNAL
KEY=$ID
expect_eq "EXTERNAL key waits in PendingImport" \
    '(d["KeyMetadata"]["KeyState"], d["KeyMetadata"]["Origin"])' "('PendingImport', 'EXTERNAL')"
ctl encrypt --key-id byok --plaintext aGVsbG8=
expect_error "a key without material cannot encrypt" FailedOperation.CmkStateNotSupported 4
ctl rotate-key --key-id byok
expect_error "EXTERNAL keys do not rotate" UnsupportedOperation 4

# ---- RSAES_OAEP_SHA_1 ----
params byok RSAES_OAEP_SHA_1 RSA_2048 byok
expect_eq "parameters name the key and algorithm" '(d["KeyId"], d["WrappingAlgorithm"])' \
    "('$KEY', 'RSAES_OAEP_SHA_1')"
expect_true "PublicKey is the DER of the PEM written" \
    bash -c '[ "$(openssl pkey -pubin -in "$1" -outform DER | base64 -w0)" = "$2" ]' _ \
    "$W/byok.pem" "$(j 'd["PublicKey"]')"
expect_eq "ParametersValidTo is set" '"ParametersValidTo" in d' True
openssl rand 32 >"$W/m1"
oaep sha1 "$W/byok.pem" "$W/m1" "$W/m1.enc"
ctl import-key-material --key-id byok --encrypted-key-material "$W/m1.enc" --import-token "$TOKEN"
expect_eq "import: Enabled, does not expire" '(d["KeyState"], d["ExpirationModel"])' \
    "('Enabled', 'KEY_MATERIAL_DOES_NOT_EXPIRE')"
ctl import-key-material --key-id byok --encrypted-key-material "$W/m1.enc" --import-token "$TOKEN"
expect_error "the token is used up" InvalidImportToken 2
if command -v pkcs11-tool >/dev/null && other_clients_can_load_module; then
    expect_true "pkcs11-tool's AES-CBC-PAD under the key decrypts with the material (openssl)" \
        encrypts_with byok "$W/m1"
fi
ctl encrypt --key-id byok --plaintext "$(base64 -w0 "$msg")"
expect_ok "cmkctl encrypt with the imported key"

# ---- RSAES_OAEP_SHA_256 and RSA_AES_KEY_WRAP_SHA_256, as the guides write them ----
# SoftHSMv2 2.6.1 unwraps with OAEP-SHA-1 only; the tests' configuration sets [import]
# oaep_decode_in_module = true, so the module decodes the OAEP-SHA-256 block.
create byok256 --origin EXTERNAL
params byok256 RSAES_OAEP_SHA_256 RSA_2048 byok256
openssl rand 32 >"$W/m256"
oaep sha256 "$W/byok256.pem" "$W/m256" "$W/m256.enc"
ctl import-key-material --key-id byok256 --encrypted-key-material "$W/m256.enc" \
    --import-token "$TOKEN"
expect_eq "RSAES_OAEP_SHA_256 import" 'd["KeyState"]' Enabled
if command -v pkcs11-tool >/dev/null && other_clients_can_load_module; then
    expect_true "RSAES_OAEP_SHA_256: pkcs11-tool's ciphertext decrypts with the material (openssl)" \
        encrypts_with byok256 "$W/m256"
fi
create byok-kw256 --origin EXTERNAL
params byok-kw256 RSA_AES_KEY_WRAP_SHA_256 RSA_4096 byok-kw256
openssl rand 32 >"$W/mkw256"
rsa_aes_wrap sha256 "$W/byok-kw256.pem" "$W/mkw256" "$W/mkw256.blob"
ctl import-key-material --key-id byok-kw256 --encrypted-key-material "$W/mkw256.blob" \
    --import-token "$TOKEN"
expect_eq "RSA_AES_KEY_WRAP_SHA_256 import" 'd["KeyState"]' Enabled
if command -v pkcs11-tool >/dev/null && other_clients_can_load_module; then
    expect_true "RSA_AES_KEY_WRAP_SHA_256: pkcs11-tool's ciphertext decrypts with the material" \
        encrypts_with byok-kw256 "$W/mkw256"
fi
# Bad SHA-256 blobs, decoded by the module: the same cloud error as the HSM's own.
create bad256 --origin EXTERNAL
params bad256 RSAES_OAEP_SHA_256 RSA_2048 bad256
oaep sha256 "$W/bad256.pem" "$W/m256" "$W/bad256.enc"
"$PY" -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[100]^=1; open(sys.argv[2],"wb").write(b)' \
    "$W/bad256.enc" "$W/bad256.damaged"
ctl import-key-material --key-id bad256 --encrypted-key-material "$W/bad256.damaged" --import-token "$TOKEN"
expect_error "a damaged RSAES_OAEP_SHA_256 blob" InvalidParameterValue.InvalidCiphertext 2
ctl import-key-material --key-id bad256 --encrypted-key-material "$W/m256.enc" --import-token "$TOKEN"
expect_error "a RSAES_OAEP_SHA_256 blob for another public key" InvalidParameterValue.InvalidCiphertext 2
ctl describe-key --key-id bad256
expect_eq "after both, bad256 is still PendingImport" 'd["KeyMetadata"]["KeyState"]' PendingImport
ctl import-key-material --key-id bad256 --encrypted-key-material "$W/bad256.enc" --import-token "$TOKEN"
expect_eq "and its parameters still import the right blob" 'd["KeyState"]' Enabled
# With the option off the HSM's limit shows: refused up front, in cloud words.
sed 's/^oaep_decode_in_module = true$/oaep_decode_in_module = false/' "$CMKP11_CONF" >"$W/off.conf"
create byok-off --origin EXTERNAL
CMKP11_CONF=$W/off.conf ctl get-parameters-for-import --key-id byok-off \
    --wrapping-algorithm RSAES_OAEP_SHA_256 --wrapping-key-spec RSA_2048
expect_error "RSAES_OAEP_SHA_256 refused with oaep_decode_in_module off" InvalidParameter 2
expect_true "the log names the option" grep -q "oaep_decode_in_module" "$CMK_WORK/cmkp11.log"

# ---- RSA_AES_KEY_WRAP_SHA_1, built with openssl commands ----
create byok-kw --origin EXTERNAL
params byok-kw RSA_AES_KEY_WRAP_SHA_1 RSA_3072 byok-kw
openssl rand 32 >"$W/m2"
rsa_aes_wrap sha1 "$W/byok-kw.pem" "$W/m2" "$W/m2.blob"
ctl import-key-material --key-id byok-kw --encrypted-key-material "$(base64 -w0 "$W/m2.blob")" \
    --import-token "$TOKEN" --valid-to "$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)"
expect_eq "RSA_AES_KEY_WRAP import (base64 blob), expires" '(d["KeyState"], d["ExpirationModel"])' \
    "('Enabled', 'KEY_MATERIAL_EXPIRES')"
if command -v pkcs11-tool >/dev/null && other_clients_can_load_module; then
    expect_true "RSA_AES_KEY_WRAP material is the one in use" encrypts_with byok-kw "$W/m2"
fi

# ---- private keys as PKCS#8, through the AES key wrap ----
# import_private_key ALIAS SIGNING-ALG GENPKEY-ARGS...: a key made by openssl, imported into
# the EXTERNAL key ALIAS, signs for its original public key.
import_private_key() {
    local alias=$1 alg=$2
    shift 2
    openssl genpkey "$@" -out "$W/$alias.key.pem" 2>/dev/null
    openssl pkey -in "$W/$alias.key.pem" -pubout -out "$W/$alias.pub.pem"
    openssl pkcs8 -topk8 -nocrypt -in "$W/$alias.key.pem" -outform DER -out "$W/$alias.p8"
    params "$alias" RSA_AES_KEY_WRAP_SHA_1 RSA_2048 "$alias"
    rsa_aes_wrap sha1 "$W/$alias.pem" "$W/$alias.p8" "$W/$alias.blob"
    ctl import-key-material --key-id "$alias" --encrypted-key-material "$W/$alias.blob" \
        --import-token "$TOKEN"
    expect_eq "$alias: PKCS#8 import" 'd["KeyState"]' Enabled
    ctl sign --key-id "$alias" --message-file "$msg" --signing-algorithm "$alg" --out "$W/$alias.sig"
    expect_ok "$alias: the imported key signs"
    expect_true "$alias: openssl verifies with the original public key" \
        quiet openssl dgst -sha256 -verify "$W/$alias.pub.pem" -signature "$W/$alias.sig" "$msg"
    ctl get-public-key --key-id "$alias" --out "$W/$alias.got.pem"
    expect_true "$alias: get-public-key gives the original public key" \
        cmp -s "$W/$alias.pub.pem" "$W/$alias.got.pem"
}
create byok-rsa --origin EXTERNAL --key-spec RSA_2048 --key-usage SIGN_VERIFY
import_private_key byok-rsa RSASSA_PKCS1_V1_5_SHA_256 -algorithm RSA -pkeyopt rsa_keygen_bits:2048
create byok-ec --origin EXTERNAL --key-spec EC_P256
import_private_key byok-ec ECDSA_SHA_256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
# The same at protection level SOFTWARE: the module decodes and seals the PKCS#8.
create soft-rsa --origin EXTERNAL --protection-level SOFTWARE --key-spec RSA_3072 \
    --key-usage SIGN_VERIFY
import_private_key soft-rsa RSASSA_PKCS1_V1_5_SHA_256 -algorithm RSA -pkeyopt rsa_keygen_bits:3072
create soft-k1 --origin EXTERNAL --protection-level SOFTWARE --key-spec EC_P256K
import_private_key soft-k1 ECDSA_SHA_256 -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1
ctl describe-key --key-id soft-k1
expect_eq "soft-k1: SOFTWARE, Enabled" '(d["KeyMetadata"]["ProtectionLevel"], d["KeyMetadata"]["KeyState"])' \
    "('SOFTWARE', 'Enabled')"

# ---- bad input: precise errors, nothing changes ----
create target --origin EXTERNAL
create other --origin EXTERNAL
params other RSAES_OAEP_SHA_1 RSA_2048 other
OTHER_TOKEN=$TOKEN
params target RSAES_OAEP_SHA_1 RSA_2048 target
openssl rand 32 >"$W/m3"
oaep sha1 "$W/target.pem" "$W/m3" "$W/m3.enc"
forged=$("$PY" -c 'import base64,sys; b=bytearray(base64.b64decode(sys.argv[1])); b[-1]^=1; print(base64.b64encode(b).decode())' "$TOKEN")
ctl import-key-material --key-id target --encrypted-key-material "$W/m3.enc" --import-token "$forged"
expect_error "a forged import token" InvalidImportToken 2
ctl import-key-material --key-id target --encrypted-key-material "$W/m3.enc" --import-token "$OTHER_TOKEN"
expect_error "another key's import token" InvalidImportToken 2
oaep sha1 "$W/other.pem" "$W/m3" "$W/m3.other"
ctl import-key-material --key-id target --encrypted-key-material "$W/m3.other" --import-token "$TOKEN"
expect_error "material wrapped for another public key" InvalidParameterValue.InvalidCiphertext 2
head -c 200 "$W/m3.enc" >"$W/m3.short"
ctl import-key-material --key-id target --encrypted-key-material "$W/m3.short" --import-token "$TOKEN"
expect_error "truncated material" InvalidParameterValue.InvalidCiphertext 2
head -c 16 "$W/m3" >"$W/m16"
oaep sha1 "$W/target.pem" "$W/m16" "$W/m16.enc"
ctl import-key-material --key-id target --encrypted-key-material "$W/m16.enc" --import-token "$TOKEN"
expect_error "16 bytes for an AES_256 key" IncorrectKeyMaterial 2
CMKP11_TEST_NOW=$(($(date +%s) + 25 * 3600)) ctl import-key-material --key-id target \
    --encrypted-key-material "$W/m3.enc" --import-token "$TOKEN"
expect_error "an expired import token" ExpiredImportToken 2
ctl import-key-material --key-id target --encrypted-key-material "$W/m3.enc" --import-token "$TOKEN" \
    --valid-to 2001-01-01T00:00:00Z
expect_error "--valid-to in the past" InvalidParameter 2
ctl get-parameters-for-import --key-id target --wrapping-algorithm RSAES_PKCS1_V1_5 --wrapping-key-spec RSA_2048
expect_error "an unknown wrapping algorithm" InvalidParameter 2
create kms
ctl get-parameters-for-import --key-id kms --wrapping-algorithm RSAES_OAEP_SHA_1 --wrapping-key-spec RSA_2048
expect_error "no import into a KMS-origin key" UnsupportedOperation 4
ctl import-key-material --key-id kms --encrypted-key-material "$W/m3.enc" --import-token "$TOKEN"
expect_error "no import into a KMS-origin key (import)" UnsupportedOperation 4
ctl describe-key --key-id target
expect_eq "after all that, target is still PendingImport" 'd["KeyMetadata"]["KeyState"]' PendingImport
ctl import-key-material --key-id target --encrypted-key-material "$W/m3.enc" --import-token "$TOKEN"
expect_eq "the parameters still work after the refusals" 'd["KeyState"]' Enabled

# ---- expiry, re-import, deletion ----
expires=$(($(date +%s) + 3600))
params target RSAES_OAEP_SHA_1 RSA_2048 target
oaep sha1 "$W/target.pem" "$W/m3" "$W/m3.enc"
ctl import-key-material --key-id target --encrypted-key-material "$W/m3.enc" --import-token "$TOKEN" \
    --valid-to "$expires" --expiration-model KEY_MATERIAL_EXPIRES
expect_eq "re-import of the same material sets the expiry" 'd["MaterialExpireTime"]' \
    "$(date -u -d "@$expires" +%Y-%m-%dT%H:%M:%SZ)"
CMKP11_TEST_NOW=$((expires + 1)) ctl encrypt --key-id target --plaintext aGVsbG8=
expect_error "expired material is refused at once" FailedOperation.CmkStateNotSupported 4
CMKP11_TEST_NOW=$((expires + 1)) ctl describe-key --key-id target
expect_eq "the login after expiry destroys the material" 'd["KeyMetadata"]["KeyState"]' PendingImport
params target RSAES_OAEP_SHA_1 RSA_2048 target
oaep sha1 "$W/target.pem" "$W/m1" "$W/m1.other"
ctl import-key-material --key-id target --encrypted-key-material "$W/m1.other" --import-token "$TOKEN"
expect_error "re-import of different material" IncorrectKeyMaterial 2
oaep sha1 "$W/target.pem" "$W/m3" "$W/m3.enc"
ctl import-key-material --key-id target --encrypted-key-material "$W/m3.enc" --import-token "$TOKEN"
expect_eq "re-import of the same material after expiry" '(d["KeyState"], d["ExpirationModel"])' \
    "('Enabled', 'KEY_MATERIAL_DOES_NOT_EXPIRE')"
ctl delete-imported-key-material --key-id target
expect_eq "delete-imported-key-material" 'd["KeyState"]' PendingImport
ctl delete-imported-key-material --key-id target
expect_error "nothing left to delete" FailedOperation.CmkStateNotSupported 4
ctl delete-imported-key-material --key-id kms
expect_error "a KMS-origin key has no imported material" UnsupportedOperation 4
ctl list-keys --state PendingImport
expect_eq "list-keys --state PendingImport finds the key" \
    "any(k['Alias'] == 'target' for k in d['Keys'])" True
ctl schedule-key-deletion --key-id target --pending-window-in-days 7
expect_eq "a key without material can be scheduled for deletion" 'd["KeyState"]' PendingDeletion
ctl cancel-key-deletion --key-id target
expect_eq "cancelling returns it to PendingImport, not Disabled" 'd["KeyState"]' PendingImport
ctl audit-log --key-id target
expect_true "audited: imports, expiry, deletion" bash -c \
    'grep -q ImportKeyMaterial "$1" && grep -q KeyMaterialExpired "$1" && grep -q DeleteImportedKeyMaterial "$1"' \
    _ "$OUT/out"

# ---- SM4 (SOFTWARE level: the backend has no SM4), with openssl-made blobs ----
create sm4-byok --origin EXTERNAL --key-spec SM4
expect_eq "SM4 EXTERNAL waits in PendingImport at level SOFTWARE" \
    '(d["KeyMetadata"]["KeyState"], d["KeyMetadata"]["KeySpec"], d["KeyMetadata"]["ProtectionLevel"])' \
    "('PendingImport', 'SM4', 'SOFTWARE')"
params sm4-byok RSA_AES_KEY_WRAP_SHA_1 RSA_2048 sm4-byok
openssl rand 16 >"$W/sm4"
rsa_aes_wrap sha1 "$W/sm4-byok.pem" "$W/sm4" "$W/sm4.blob"
ctl import-key-material --key-id sm4-byok --encrypted-key-material "$W/sm4.blob" \
    --import-token "$TOKEN"
expect_eq "SM4 import with RSA_AES_KEY_WRAP_SHA_1" 'd["KeyState"]' Enabled
ctl encrypt --key-id sm4-byok --plaintext "$(base64 -w0 "$msg")"
expect_ok "encrypt with the imported SM4 key"
blob=$(j 'd["CiphertextBlob"]')
ctl decrypt --ciphertext-blob "$blob"
expect_eq "and decrypt" 'd["Plaintext"]' "$(base64 -w0 "$msg")"
openssl rand 16 >"$W/sm4.other"
params sm4-byok RSAES_OAEP_SHA_256 RSA_2048 sm4-byok
oaep sha256 "$W/sm4-byok.pem" "$W/sm4.other" "$W/sm4.other.enc"
ctl import-key-material --key-id sm4-byok --encrypted-key-material "$W/sm4.other.enc" \
    --import-token "$TOKEN"
expect_error "SM4: re-import of different material" IncorrectKeyMaterial 2
oaep sha256 "$W/sm4-byok.pem" "$W/sm4" "$W/sm4.enc"
ctl import-key-material --key-id sm4-byok --encrypted-key-material "$W/sm4.enc" \
    --import-token "$TOKEN"
expect_eq "SM4: re-import of the same material (RSAES_OAEP_SHA_256)" 'd["KeyState"]' Enabled
ctl delete-imported-key-material --key-id sm4-byok
expect_eq "SM4: delete-imported-key-material" 'd["KeyState"]' PendingImport
ctl decrypt --ciphertext-blob "$blob"
expect_error "SM4: no decryption without material" FailedOperation.CmkStateNotSupported 4

finish
