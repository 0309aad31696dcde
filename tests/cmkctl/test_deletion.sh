#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_deletion.sh - schedule-key-deletion, cancel-key-deletion, purge-due.
. "$(dirname "$0")/lib.sh"

create old
old=$ID
create keep --key-spec EC_P256
keep=$ID

ctl schedule-key-deletion --key-id old --pending-window-in-days 7
expect_eq "scheduled: PendingDeletion, window 7" '(d["KeyId"], d["KeyState"], d["PendingWindowInDays"])' \
    "('$old', 'PendingDeletion', 7)"
ctl describe-key --key-id "$old"
expect_eq "DeleteDate is 7 days after now" \
    "abs(__import__('calendar').timegm(__import__('time').strptime(d['KeyMetadata']['DeleteDate'], '%Y-%m-%dT%H:%M:%SZ')) - 7 * 86400 - __import__('time').time()) < 120" True
ctl list-keys --state PendingDeletion
expect_eq "list-keys --state PendingDeletion shows it" '[k["KeyId"] for k in d["Keys"]]' "['$old']"
if can_use_client "the plain listing check" pkcs11-tool opensc; then
    timeout 60 pkcs11-tool --module "$CMK_MODULE" --login --pin "$CMK_PIN" --list-objects \
        >"$CMK_WORK/objects" 2>&1 || true
    expect_true "plain PKCS#11 listings no longer show it, and still show the others" \
        bash -c 'grep -q "label: *keep$" "$1" && ! grep -q "label: *old$" "$1"' _ "$CMK_WORK/objects"
fi

ctl schedule-key-deletion --key-id old
expect_error "schedule twice" FailedOperation.CmkStateNotSupported 4
ctl schedule-key-deletion --key-id keep --pending-window-in-days 3
expect_error "window under 7 days" InvalidParameter 2
ctl schedule-key-deletion --key-id keep --pending-window-in-days 1097
expect_error "window over 1096 days" InvalidParameter 2
ctl schedule-key-deletion --key-id keep --pending-window-in-days soon
expect_error "window not a number" InvalidParameter 2
ctl describe-key --key-id keep
expect_eq "refused schedules changed nothing" 'd["KeyMetadata"]["KeyState"]' Enabled

ctl cancel-key-deletion --key-id old
expect_eq "cancel: the key becomes Disabled" '(d["KeyId"], d["KeyState"])' "('$old', 'Disabled')"
ctl describe-key --key-id old
expect_eq "no DeleteDate after cancel" "'DeleteDate' in d['KeyMetadata']" False
ctl cancel-key-deletion --key-id old
expect_error "cancel a key not pending" FailedOperation.CmkStateNotSupported 4
ctl cancel-key-deletion --key-id keep
expect_error "cancel an Enabled key" FailedOperation.CmkStateNotSupported 4
ctl describe-key --key-id keep
expect_eq "cancel of an Enabled key did not disable it" 'd["KeyMetadata"]["KeyState"]' Enabled

# purge-due: with the module's test clock 8 days ahead, a 7-day window has passed.
ctl schedule-key-deletion --key-id old --pending-window-in-days 7
ctl schedule-key-deletion --key-id keep --pending-window-in-days 30
ctl purge-due
expect_eq "purge-due now: nothing due" '(d["PurgedCount"], sorted(k["KeyId"] for k in d["PendingDeletionKeys"]))' \
    "(0, $("$PY" -c 'import sys; print(sorted(sys.argv[1:]))' "$old" "$keep"))"
CMKP11_TEST_NOW=$(($(date +%s) + 8 * 86400)) ctl purge-due
expect_eq "purge-due after the window: the 7-day key is gone" \
    '[(k["KeyId"], k["Alias"], k["KeySpec"]) for k in d["PurgedKeys"]]' "[('$old', 'old', 'AES_256')]"
expect_eq "purge-due: the 30-day key remains" '[k["KeyId"] for k in d["PendingDeletionKeys"]]' "['$keep']"
ctl describe-key --key-id "$old"
expect_error "the purged key is gone" ResourceUnavailable.CmkNotFound 3
ctl cancel-key-deletion --key-id "$old"
expect_error "a purged key cannot be cancelled" ResourceUnavailable.CmkNotFound 3
ctl cancel-key-deletion --key-id keep
expect_eq "the remaining key can still be cancelled" 'd["KeyState"]' Disabled
finish
