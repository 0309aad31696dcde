#!/bin/bash
# test_describe.sh - describe-key finds a key by key id, alias, alias/ prefix and pkcs11:
# URI, in any state, and never confuses it with other objects sharing its label.
. "$(dirname "$0")/lib.sh"

create web --key-spec EC_P256 --description "web server"
web=$ID
ctl describe-key --key-id web
uri=$(j 'd["KeyMetadata"]["Pkcs11"]["Uri"]')
cka_id=$(j 'd["KeyMetadata"]["Pkcs11"]["CkaId"]')
id_uri=pkcs11:id=$("$PY" -c 'import sys; h = sys.argv[1]; print("".join("%" + h[i:i + 2] for i in range(0, len(h), 2)))' "$cka_id")

for name in "$web" "${web^^}" web alias/web "pkcs11:object=web" "$uri" \
    "pkcs11:token=cmkp11;object=web;type=public" \
    "$id_uri"; do
    ctl describe-key --key-id "$name"
    expect_eq "describe-key --key-id $name" 'd["KeyMetadata"]["KeyId"]' "$web"
done
expect_eq "describe shows the description" 'd["KeyMetadata"]["Description"]' "web server"

ctl describe-key --key-id "pkcs11:token=elsewhere;object=web"
expect_error "a URI for another token" ResourceUnavailable.CmkNotFound 3
ctl describe-key --key-id "pkcs11:token=cmkp11"
expect_error "a URI that names no object" InvalidParameter 2
ctl describe-key --key-id WEB
expect_error "aliases are looked up exactly" ResourceUnavailable.CmkNotFound 3

# A data object with the key's label (clients pair objects by label) is not a key.
if can_use_client "the shared-label check" pkcs11-tool opensc; then
    printf 'not a key' >"$CMK_WORK/data.bin"
    expect_true "pkcs11-tool writes a data object labelled like the key" \
        quiet timeout 60 pkcs11-tool --module "$CMK_MODULE" --login --pin "$CMK_PIN" --write-object \
        "$CMK_WORK/data.bin" --type data --label web
    ctl describe-key --key-id web
    expect_eq "a data object sharing the label is ignored" 'd["KeyMetadata"]["KeyId"]' "$web"
fi

# The Arn describe-key prints names the key again (and an alias Arn names its key); an Arn
# of another token names nothing here.
ctl describe-key --key-id web
arn=$(j 'd["KeyMetadata"]["Arn"]')
ctl describe-key --key-id "$arn"
expect_eq "describe-key takes the Arn it printed" '(d["KeyMetadata"]["KeyId"], d["KeyMetadata"]["Arn"])' \
    "('$web', '$arn')"
ctl describe-key --key-id "${arn%%:key/*}:alias/web"
expect_eq "an alias Arn names the alias's key" 'd["KeyMetadata"]["KeyId"]' "$web"
ctl describe-key --key-id "arn:cmkp11:another-token:key/$web"
expect_error "an Arn of another token" ResourceUnavailable.CmkNotFound 3
ctl describe-key --key-id "arn:cmkp11:nothing-here"
expect_error "a malformed Arn" InvalidParameter 2

# Keys pending deletion are hidden from plain finds; describe-key still finds them.
ctl schedule-key-deletion --key-id web
ctl describe-key --key-id web
expect_eq "pending key found by alias" 'd["KeyMetadata"]["KeyState"]' PendingDeletion
ctl describe-key --key-id "$web"
expect_eq "pending key found by id" 'd["KeyMetadata"]["KeyState"]' PendingDeletion
ctl describe-key --key-id "$uri"
expect_eq "pending key found by URI" 'd["KeyMetadata"]["KeyState"]' PendingDeletion
finish
