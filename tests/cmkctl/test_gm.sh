#!/bin/bash
# test_gm.sh - the GM/T vocabulary: SM4 keys by every cloud spelling (SOFTWARE level, as
# the backend has no SM4), their envelope encrypt/decrypt across rotation, an SM spec the
# token cannot serve, gm_mode making SM4 the default symmetric spec, and SM4 at level HSM
# once [gm_backend] maps the backend's own codes.
. "$(dirname "$0")/lib.sh"

n=0
for spelling in SM4 Aliyun_SM4 sm4; do
    n=$((n + 1))
    create "k-$n" --key-spec "$spelling"
    expect_eq "$spelling: an SM4 key at level SOFTWARE" \
        '(d["KeyMetadata"]["KeySpec"], d["KeyMetadata"]["KeyUsage"], d["KeyMetadata"]["ProtectionLevel"])' \
        "('SM4', 'ENCRYPT_DECRYPT', 'SOFTWARE')"
done
create sm4-soft --key-spec SM4 --protection-level SOFTWARE --enable-automatic-rotation \
    --rotation-interval 90d
sm4=$ID
expect_eq "SM4 rotates automatically" 'd["KeyMetadata"]["AutomaticRotation"]' Enabled
ctl describe-key --key-id alias/sm4-soft
expect_eq "describe-key shows ProtectionLevel SOFTWARE" 'd["KeyMetadata"]["ProtectionLevel"]' SOFTWARE

secret=$(printf 'card 4111 1111 1111 1111' | base64 -w0)
ctl encrypt --key-id alias/sm4-soft --plaintext "$secret" --encryption-context '{"a":"1"}'
expect_eq "encrypt under v1" 'd["KeyVersionId"]' 1
v1=$(j 'd["CiphertextBlob"]')
expect_eq "blob: format 0x02, 33-byte header, 32-byte HMAC-SM3 tag" \
    "(lambda b: (b[0], len(b)))(__import__('base64').b64decode('$v1'))" "(2, $((33 + 24 + 32)))"
ctl rotate-key --key-id alias/sm4-soft
expect_ok "rotate the SM4 key"
ctl encrypt --key-id alias/sm4-soft --plaintext "$secret" --encryption-context '{"a":"1"}'
expect_eq "encrypt under v2" 'd["KeyVersionId"]' 2
v2=$(j 'd["CiphertextBlob"]')
for blob in "$v1" "$v2"; do
    ctl decrypt --ciphertext-blob "$blob" --encryption-context '{"a":"1"}'
    expect_eq "decrypt (the blob names key and version)" '(d["KeyId"], d["Plaintext"])' \
        "('$sm4', '$secret')"
done
ctl decrypt --ciphertext-blob "$v2" --encryption-context '{"a":"2"}'
expect_error "another encryption context" InvalidParameterValue.InvalidCiphertext 2

ctl create-key --key-spec SM4 --protection-level HSM
expect_error "SM4 at level HSM: the backend has no SM4" \
    UnsupportedOperation.UnsupportedKeyUsageInCurrentRegion 4
ctl create-key --key-spec SM4 --key-usage SIGN_VERIFY
expect_error "SM4 cannot sign" InvalidParameterValue.InvalidKeyUsage 2
ctl create-key --key-spec SM2 --origin EXTERNAL
expect_eq "SM2 of EXTERNAL origin waits for its PKCS#8 at level SOFTWARE" \
    '(d["KeyMetadata"]["ProtectionLevel"], d["KeyMetadata"]["KeyState"])' "('SOFTWARE', 'PendingImport')"
ctl create-key --key-usage ASYMMETRIC_SIGN_VERIFY_SM2 --key-spec SM4
expect_error "an SM2 usage with the SM4 spec" InvalidParameterValue.InvalidKeyUsage 2

# Without gm_mode the default is AES_256; with it, SM4, as in the clouds' mainland regions.
ctl create-key
expect_eq "default spec" 'd["KeyMetadata"]["KeySpec"]' AES_256
printf '\n[policy]\ngm_mode = true\n' >> "$CMKP11_CONF"
ctl create-key
expect_eq "gm_mode: the default spec is SM4" \
    '(d["KeyMetadata"]["KeySpec"], d["KeyMetadata"]["ProtectionLevel"])' "('SM4', 'SOFTWARE')"
ctl create-key --key-spec AES_128
expect_eq "gm_mode: an explicit spec still wins" 'd["KeyMetadata"]["KeySpec"]' AES_128

ctl list-keys --limit 1000
expect_eq "only the keys created successfully exist" 'd["TotalCount"]' 8

# [gm_backend] maps the backend's own SM codes: SoftHSMv2 has none, so its AES codes stand
# in (CKK_AES, CKM_AES_KEY_GEN, CKM_AES_ECB, CKM_AES_CBC). SM4 keys then default to HSM.
printf '\n[gm_backend]\nsm4_key_type = 0x1f\nsm4_key_gen = 0x1080\nsm4_ecb = 0x1081\nsm4_cbc = 0x1082\n' \
    >> "$CMKP11_CONF"
create sm4-hsm --key-spec SM4
ctl describe-key --key-id alias/sm4-hsm
expect_eq "mapped: describe-key shows an SM4 key at ProtectionLevel HSM" \
    '(d["KeyMetadata"]["KeySpec"], d["KeyMetadata"]["ProtectionLevel"])' "('SM4', 'HSM')"
ctl encrypt --key-id alias/sm4-hsm --plaintext "$secret"
expect_ok "encrypt under the HSM-level SM4 key"
hsm_blob=$(j 'd["CiphertextBlob"]')
ctl decrypt --ciphertext-blob "$hsm_blob"
expect_eq "and decrypt" 'd["Plaintext"]' "$secret"
ctl create-key --key-spec SM4 --protection-level SOFTWARE
expect_eq "SOFTWARE still when asked" 'd["KeyMetadata"]["ProtectionLevel"]' SOFTWARE
finish
