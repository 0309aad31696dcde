#!/bin/bash
# test_create_specs.sh - create-key for every key spec kind and its synonyms; the
# metadata comes back shaped like the clouds' KeyMetadata.
. "$(dirname "$0")/lib.sh"

# spec-or-usage option, value, expected KeySpec, expected KeyUsage
while read -r opt value spec usage; do
    [ -z "$opt" ] && continue
    create "k-$value" "--$opt" "$value"
    [ -n "$ID" ] || continue
    expect_eq "$value: KeySpec" 'd["KeyMetadata"]["KeySpec"]' "$spec"
    expect_eq "$value: KeyUsage" 'd["KeyMetadata"]["KeyUsage"]' "$usage"
    expect_eq "$value: Enabled" 'd["KeyMetadata"]["KeyState"]' Enabled
done <<'SPECS'
key-spec AES_128 AES_128 ENCRYPT_DECRYPT
key-spec AES_192 AES_192 ENCRYPT_DECRYPT
key-spec AES_256 AES_256 ENCRYPT_DECRYPT
key-spec Aliyun_AES_256 AES_256 ENCRYPT_DECRYPT
key-spec SYMMETRIC_DEFAULT AES_256 ENCRYPT_DECRYPT
key-spec RSA_2048 RSA_2048 ENCRYPT_DECRYPT
key-spec RSA_3072 RSA_3072 ENCRYPT_DECRYPT
key-spec RSA_4096 RSA_4096 ENCRYPT_DECRYPT
key-spec EC_P256 EC_P256 SIGN_VERIFY
key-spec ECC_NIST_P256 EC_P256 SIGN_VERIFY
key-spec EC_P384 EC_P384 SIGN_VERIFY
key-spec EC_P521 EC_P521 SIGN_VERIFY
key-spec EC_P256K EC_P256K SIGN_VERIFY
key-spec ECC_SECG_P256K1 EC_P256K SIGN_VERIFY
key-spec HMAC_256 HMAC_256 GENERATE_VERIFY_MAC
key-usage ASYMMETRIC_DECRYPT_RSA_2048 RSA_2048 ENCRYPT_DECRYPT
key-usage ASYMMETRIC_SIGN_VERIFY_RSA_2048 RSA_2048 SIGN_VERIFY
key-usage ASYMMETRIC_SIGN_VERIFY_ECC EC_P256 SIGN_VERIFY
key-usage ASYMMETRIC_SIGN_VERIFY_ECDSA384 EC_P384 SIGN_VERIFY
SPECS

# The default: a symmetric AES_256 key, as Tencent and Alibaba make.
ctl create-key
expect_eq "no options: AES_256" 'd["KeyMetadata"]["KeySpec"]' AES_256
expect_eq "no options: no alias" 'd["KeyMetadata"]["Alias"]' ""

create full --description "card data: 4111 1111" --key-spec AES_256 --key-usage ENCRYPT_DECRYPT \
    --origin Aliyun_KMS --protection-level HSM --enable-automatic-rotation \
    --rotation-interval 365d --tags team=pay,env=prod --tags tier=1
m='d["KeyMetadata"]'
expect_true "KeyId is a UUID" "$PY" -c 'import sys,uuid; uuid.UUID(sys.argv[1])' "$ID"
expect_eq "Alias" "${m}[\"Alias\"]" full
expect_eq "Arn" "${m}[\"Arn\"]" "arn:cmkp11:cmkp11:key/$ID"
expect_eq "Description" "${m}[\"Description\"]" "card data: 4111 1111"
expect_eq "Origin" "${m}[\"Origin\"]" KMS
expect_eq "ProtectionLevel" "${m}[\"ProtectionLevel\"]" HSM
expect_eq "AutomaticRotation" "${m}[\"AutomaticRotation\"]" Enabled
expect_eq "RotationInterval in seconds" "${m}[\"RotationInterval\"]" 31536000s
expect_eq "NextRotationDate = CreateTime + interval" \
    "__import__('calendar').timegm(__import__('time').strptime(${m}['NextRotationDate'], '%Y-%m-%dT%H:%M:%SZ')) - ${m}['CreateTime']" 31536000
expect_eq "CreationDate is RFC 3339 of CreateTime" \
    "__import__('time').strftime('%Y-%m-%dT%H:%M:%SZ', __import__('time').gmtime(${m}['CreateTime'])) == ${m}['CreationDate']" True
expect_eq "Creator is our uid" "${m}[\"Creator\"]" "$(id -u)"
expect_eq "PrimaryKeyVersion" "${m}[\"PrimaryKeyVersion\"]" 1
expect_eq "no DeleteDate while Enabled" "'DeleteDate' in ${m}" False
expect_eq "PendingWindowInDays (policy default)" "${m}[\"PendingWindowInDays\"]" 30
expect_eq "Tags sorted" "[(t['TagKey'], t['TagValue']) for t in ${m}['Tags']]" \
    "[('env', 'prod'), ('team', 'pay'), ('tier', '1')]"
expect_eq "Pkcs11.Token" "${m}[\"Pkcs11\"][\"Token\"]" cmkp11
expect_eq "Pkcs11.CkaId is the key id's 16 bytes" "${m}[\"Pkcs11\"][\"CkaId\"]" "${ID//-/}"
expect_eq "Pkcs11.Uri names token, object and type" \
    "${m}['Pkcs11']['Uri'].startswith('pkcs11:token=cmkp11;') and 'object=full' in ${m}['Pkcs11']['Uri'] and 'type=secret-key' in ${m}['Pkcs11']['Uri']" True
expect_eq "RequestId is a UUID" "str(__import__('uuid').UUID(d['RequestId']))" "$(j 'd["RequestId"]')"

create alias/prefixed --key-spec EC_P256
expect_eq "alias/ prefix stripped" 'd["KeyMetadata"]["Alias"]' prefixed
expect_eq "a pair's URI names the private key" \
    "'type=private' in d['KeyMetadata']['Pkcs11']['Uri']" True

# The GM/T specs (SM4, EC_SM2) have their own test: test_gm.sh.
ctl create-key --key-spec DES3
expect_error "unknown spec" InvalidParameter 2
ctl create-key --key-usage WRAP_UNWRAP
expect_error "unknown usage" InvalidParameterValue.InvalidKeyUsage 2
ctl create-key --key-spec EC_P256 --key-usage ENCRYPT_DECRYPT
expect_error "EC cannot encrypt (the module refuses)" InvalidParameterValue.InvalidKeyUsage 2
ctl create-key --key-spec AES_256 --key-usage SIGN_VERIFY
expect_error "AES cannot sign (the module refuses)" InvalidParameterValue.InvalidKeyUsage 2
ctl create-key --key-spec RSA_2048 --key-usage ASYMMETRIC_SIGN_VERIFY_ECC
expect_error "combined usage contradicting the spec" InvalidParameterValue.InvalidKeyUsage 2
ctl create-key --origin EXTERNAL
expect_eq "EXTERNAL origin: a key waiting for its material" \
    '(d["KeyMetadata"]["Origin"], d["KeyMetadata"]["KeyState"])' "('EXTERNAL', 'PendingImport')"
ctl create-key --origin 2 --key-spec EC_P256
expect_eq "Tencent Type=2 is EXTERNAL, for EC keys too" \
    '(d["KeyMetadata"]["Origin"], d["KeyMetadata"]["KeyState"])' "('EXTERNAL', 'PendingImport')"
ctl create-key --origin CLOUD
expect_error "unknown origin" InvalidParameterValue.InvalidType 2
ctl create-key --protection-level SOFTWARE
expect_eq "SOFTWARE: an AES_256 key whose material the module seals" \
    '(d["KeyMetadata"]["KeySpec"], d["KeyMetadata"]["ProtectionLevel"])' "('AES_256', 'SOFTWARE')"
soft=$(j 'd["KeyMetadata"]["KeyId"]')
ctl describe-key --key-id "$soft"
expect_eq "describe-key shows ProtectionLevel SOFTWARE" 'd["KeyMetadata"]["ProtectionLevel"]' SOFTWARE
ctl encrypt --key-id "$soft" --plaintext "$(printf 'soft secret' | base64 -w0)"
expect_ok "encrypt with the SOFTWARE key"
blob=$(j 'd["CiphertextBlob"]')
ctl decrypt --ciphertext-blob "$blob"
expect_eq "decrypt with the SOFTWARE key" 'd["Plaintext"]' "$(printf 'soft secret' | base64 -w0)"
ctl create-key --protection-level SOFTWARE --key-spec EC_P256
expect_eq "SOFTWARE key pairs too (issue 11)" 'd["KeyMetadata"]["ProtectionLevel"]' SOFTWARE
ctl create-key --protection-level software --origin EXTERNAL
expect_eq "SOFTWARE with EXTERNAL origin: AES waits for its material" \
    '(d["KeyMetadata"]["ProtectionLevel"], d["KeyMetadata"]["KeyState"])' "('SOFTWARE', 'PendingImport')"
ctl create-key --protection-level software --origin EXTERNAL --key-spec HMAC_256 \
    --key-usage GENERATE_VERIFY_MAC
expect_eq "SOFTWARE with EXTERNAL origin: HMAC waits for its material too" \
    '(d["KeyMetadata"]["ProtectionLevel"], d["KeyMetadata"]["KeyState"])' "('SOFTWARE', 'PendingImport')"
ctl create-key --protection-level CLOUD
expect_error "unknown protection level" InvalidParameter 2
ctl create-key --description "$(printf 'bell\a')"
expect_error "control character in the description" InvalidParameter 2
ctl create-key --tags a=1,b=2,a=3
expect_error "duplicate tag keys" InvalidParameterValue.TagKeysDuplicated 2
ctl create-key --rotation-interval 3d --enable-automatic-rotation
expect_error "rotation interval under 7 days" InvalidParameter 2
ctl create-key --key-spec EC_P256 --enable-automatic-rotation
expect_error "rotation of an EC key" UnsupportedOperation 4
ctl create-key --origin EXTERNAL --enable-automatic-rotation
expect_error "rotation of a key of EXTERNAL origin" UnsupportedOperation 4

# Nothing refused above left a key behind.
ctl list-keys --limit 1000
expect_eq "only the keys created successfully exist" 'd["TotalCount"]' 28
finish
