#!/bin/bash
# test_state.sh - enable-key / disable-key, and what a disabled key may not do.
. "$(dirname "$0")/lib.sh"

create signer --key-spec EC_P256
signer=$ID
printf 'hello' >"$CMK_WORK/msg"

ctl sign --key-id signer --message-file "$CMK_WORK/msg"
expect_ok "sign while Enabled"
sig=$(j 'd["Signature"]')

ctl disable-key --key-id signer
expect_eq "disable-key answers Disabled" '(d["KeyId"], d["KeyState"])' "('$signer', 'Disabled')"
ctl describe-key --key-id signer
expect_eq "describe shows Disabled" 'd["KeyMetadata"]["KeyState"]' Disabled
ctl sign --key-id signer --message-file "$CMK_WORK/msg"
expect_error "sign while Disabled" ResourceUnavailable.CmkDisabled 4
ctl verify --key-id signer --message-file "$CMK_WORK/msg" --signature "$sig"
expect_error "verify while Disabled" ResourceUnavailable.CmkDisabled 4
ctl disable-key --key-id signer
expect_eq "disable-key twice is harmless" 'd["KeyState"]' Disabled
ctl list-keys --state Disabled
expect_eq "listed as Disabled" '[k["KeyId"] for k in d["Keys"]]' "['$signer']"

ctl enable-key --key-id signer
expect_eq "enable-key answers Enabled" 'd["KeyState"]' Enabled
ctl sign --key-id signer --message-file "$CMK_WORK/msg"
expect_ok "sign after enable-key"

ctl enable-key --key-id nobody
expect_error "enable-key of a missing key" ResourceUnavailable.CmkNotFound 3
ctl schedule-key-deletion --key-id signer
ctl enable-key --key-id signer
expect_error "enable-key while PendingDeletion" FailedOperation.CmkStateNotSupported 4
ctl disable-key --key-id signer
expect_error "disable-key while PendingDeletion" FailedOperation.CmkStateNotSupported 4
ctl sign --key-id signer --message-file "$CMK_WORK/msg"
expect_error "sign while PendingDeletion" FailedOperation.CmkStateNotSupported 4
finish
