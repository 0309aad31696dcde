#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_versions.sh - rotate-key (on demand) and list-key-versions; refusals of rotation.
. "$(dirname "$0")/lib.sh"

start=$(date +%s)
create pay --enable-automatic-rotation --rotation-interval 90d
pay=$ID
create web --key-spec EC_P256
create rsa --key-usage ASYMMETRIC_DECRYPT_RSA_2048
create off

ctl list-key-versions --key-id pay
expect_eq "a new key has version 1, primary, made at create" \
    '[(v["KeyId"], v["KeyVersionId"], v["Reason"], v["Primary"]) for v in d["KeyVersions"]]' \
    "[('$pay', '1', 'create', True)]"
ctl describe-key --key-id pay
next_before=$(j 'd["KeyMetadata"]["NextRotationDate"]')

for want in 2 3 4; do
    ctl rotate-key --key-id pay
    expect_eq "rotate-key: version $want" '(d["KeyId"], d["KeyVersionId"], sorted(d))' \
        "('$pay', '$want', ['KeyId', 'KeyVersionId', 'RequestId'])"
done

ctl list-key-versions --key-id alias/pay
expect_ok "list-key-versions"
expect_eq "4 versions, oldest first" '[v["KeyVersionId"] for v in d["KeyVersions"]]' "['1', '2', '3', '4']"
expect_eq "exactly one primary: the newest" '[v["KeyVersionId"] for v in d["KeyVersions"] if v["Primary"]]' "['4']"
expect_eq "PrimaryKeyVersion and TotalCount" '(d["KeyId"], d["PrimaryKeyVersion"], d["TotalCount"])' "('$pay', '4', 4)"
expect_eq "reasons: create, then on-demand" '[v["Reason"] for v in d["KeyVersions"]]' \
    "['create', 'on-demand', 'on-demand', 'on-demand']"
expect_eq "every version names the key" '{v["KeyId"] for v in d["KeyVersions"]}' "{'$pay'}"
expect_eq "creation dates are RFC 3339, now, in order" \
    "(lambda t: t == sorted(t) and all($start - 5 <= x <= $start + 120 for x in t))([__import__('calendar').timegm(__import__('time').strptime(v['CreationDate'], '%Y-%m-%dT%H:%M:%SZ')) for v in d['KeyVersions']])" True
ctl list-key-versions --key-id pay --output table
expect_true "list-key-versions --output table: one row per version" \
    bash -c '[ "$1" -eq 0 ] && grep -q "^KeyVersions (4)$" "$2" && [ "$(grep -Ec "^[0-9a-f-]{36} +[0-9]+ " "$2")" -eq 4 ]' \
    _ "$RC" "$OUT/out"

ctl describe-key --key-id pay
expect_eq "describe-key: PrimaryKeyVersion 4" 'd["KeyMetadata"]["PrimaryKeyVersion"]' 4
expect_eq "on-demand rotation does not move the automatic schedule" \
    'd["KeyMetadata"]["NextRotationDate"]' "$next_before"

# Version objects appear only to finds naming CKA_CMK_VERSION: a plain listing shows the key.
if can_use_client "the plain listing check" pkcs11-tool opensc; then
    timeout 60 pkcs11-tool --module "$CMK_MODULE" --login --pin "$CMK_PIN" --list-objects \
        >"$CMK_WORK/objects" 2>&1 || true
    expect_true "the token lists the key once after rotations, not once per version" \
        bash -c '[ "$(grep -c "label: *pay$" "$1")" -eq 1 ]' _ "$CMK_WORK/objects"
fi

# Refusals, with nothing changed.
ctl rotate-key --key-id web
expect_error "rotate-key of an EC key" UnsupportedOperation 4
ctl rotate-key --key-id rsa
expect_error "rotate-key of an RSA key" UnsupportedOperation 4
if can_use_client "the EXTERNAL rotation check" pkcs11-tool opensc; then
    # A key imported in clear is a CMK of EXTERNAL origin: it does not rotate.
    head -c 32 /dev/urandom >"$CMK_WORK/aes.bin"
    timeout 60 pkcs11-tool --module "$CMK_MODULE" --login --pin "$CMK_PIN" --write-object \
        "$CMK_WORK/aes.bin" --type secrkey --key-type AES:32 --label imported --sensitive \
        >"$CMK_WORK/import.log" 2>&1 || true
    ctl rotate-key --key-id imported
    expect_error "rotate-key of an imported (EXTERNAL) key" UnsupportedOperation 4
fi
ctl list-key-versions --key-id web
expect_eq "an EC key has its one version" '[(v["KeyVersionId"], v["Primary"]) for v in d["KeyVersions"]]' "[('1', True)]"

ctl disable-key --key-id pay
ctl rotate-key --key-id pay
expect_error "rotate-key of a disabled key" FailedOperation.CmkStateNotSupported 4
ctl enable-key --key-id pay
ctl rotate-key --key-id off
expect_ok "rotate-key of a key without automatic rotation"
expect_eq "on demand needs no automatic rotation" 'd["KeyVersionId"]' 2
ctl schedule-key-deletion --key-id off
ctl rotate-key --key-id off
expect_error "rotate-key of a key pending deletion" FailedOperation.CmkStateNotSupported 4
ctl list-key-versions --key-id off
expect_eq "a key pending deletion still lists its versions" '[v["KeyVersionId"] for v in d["KeyVersions"]]' "['1', '2']"
ctl rotate-key --key-id 00000000-0000-4000-8000-000000000000
expect_error "rotate-key of a key that does not exist" ResourceUnavailable.CmkNotFound 3
ctl rotate-key
expect_error "rotate-key without --key-id" MissingParameter 2
ctl list-key-versions --key-id no-such-alias
expect_error "list-key-versions of a key that does not exist" ResourceUnavailable.CmkNotFound 3
ctl list-key-versions --key-id pay
expect_eq "refusals made no version" 'd["PrimaryKeyVersion"]' 4

# The audit trail has each rotation.
ctl audit-log --key-id pay --action RotateKey
expect_eq "audit-log: three RotateKey events" 'd["TotalCount"]' 3
finish
