#!/bin/bash
# test_rotation.sh - the automatic rotation policy: on, interval, off; only symmetric keys.
. "$(dirname "$0")/lib.sh"

create sym
sym=$ID
create ec --key-spec EC_P256

ctl describe-key --key-id sym
expect_eq "a new key does not rotate" 'd["KeyMetadata"]["AutomaticRotation"]' Disabled
expect_eq "no NextRotationDate while off" "'NextRotationDate' in d['KeyMetadata']" False

ctl enable-key-rotation --key-id sym
expect_eq "enable-key-rotation: default interval 365 days" \
    '(d["KeyId"], d["AutomaticRotation"], d["RotationInterval"])' "('$sym', 'Enabled', '31536000s')"
expect_eq "NextRotationDate about a year ahead" \
    "abs(__import__('calendar').timegm(__import__('time').strptime(d['NextRotationDate'], '%Y-%m-%dT%H:%M:%SZ')) - 31536000 - __import__('time').time()) < 120" True

for period in 90d:7776000s 2160h:7776000s 129600m:7776000s 604800s:604800s 30:2592000s; do
    ctl enable-key-rotation --key-id sym --rotation-interval "${period%%:*}"
    expect_eq "--rotation-interval ${period%%:*}" 'd["RotationInterval"]' "${period#*:}"
done
for bad in 6d 2561d 1w -5d x; do
    ctl enable-key-rotation --key-id sym --rotation-interval "$bad"
    expect_error "--rotation-interval $bad refused" InvalidParameter 2
done
ctl describe-key --key-id sym
expect_eq "refused intervals changed nothing" 'd["KeyMetadata"]["RotationInterval"]' 2592000s

ctl get-key-rotation-status --key-id sym
expect_eq "get-key-rotation-status while on" \
    '(d["KeyId"], d["KeyRotationEnabled"], d["AutomaticRotation"], d["RotationPeriodInDays"], "NextRotationDate" in d)' \
    "('$sym', True, 'Enabled', 30, True)"
ctl disable-key-rotation --key-id sym
expect_eq "disable-key-rotation" 'd["AutomaticRotation"]' Disabled
ctl get-key-rotation-status --key-id sym
expect_eq "get-key-rotation-status while off" \
    '(d["KeyRotationEnabled"], d["AutomaticRotation"], "RotationPeriodInDays" in d, "NextRotationDate" in d)' \
    "(False, 'Disabled', False, False)"
ctl describe-key --key-id sym
expect_eq "off: no NextRotationDate" "'NextRotationDate' in d['KeyMetadata']" False
expect_eq "off: no RotationInterval (Alibaba shows it when Enabled or Suspended only)" \
    "'RotationInterval' in d['KeyMetadata']" False
ctl enable-key-rotation --key-id sym
ctl describe-key --key-id sym
expect_eq "on again: the interval was kept" 'd["KeyMetadata"]["RotationInterval"]' 2592000s
ctl disable-key-rotation --key-id sym

ctl enable-key-rotation --key-id ec
expect_error "rotation of an EC key refused" UnsupportedOperation 4
ctl enable-key-rotation --key-id ec --rotation-interval 90d
expect_error "rotation of an EC key refused, with interval" UnsupportedOperation 4
ctl describe-key --key-id ec
expect_eq "the EC key still does not rotate" 'd["KeyMetadata"]["AutomaticRotation"]' Disabled
expect_eq "an asymmetric key shows no PrimaryKeyVersion (Alibaba: symmetric keys only)" \
    "'PrimaryKeyVersion' in d['KeyMetadata']" False
ctl create-key --key-spec RSA_2048 --enable-automatic-rotation
expect_error "create-key: rotation of an RSA key refused" UnsupportedOperation 4

create rot --enable-automatic-rotation --rotation-interval 8760h
expect_eq "create-key with rotation" \
    '(d["KeyMetadata"]["AutomaticRotation"], d["KeyMetadata"]["RotationInterval"])' "('Enabled', '31536000s')"
ctl disable-key --key-id rot
ctl describe-key --key-id rot
expect_eq "rotation of a disabled key is Suspended" 'd["KeyMetadata"]["AutomaticRotation"]' Suspended
ctl get-key-rotation-status --key-id rot
expect_eq "get-key-rotation-status of a disabled key: enabled, Suspended" \
    '(d["KeyRotationEnabled"], d["AutomaticRotation"], d["RotationPeriodInDays"])' "(True, 'Suspended', 365)"

ctl schedule-key-deletion --key-id sym
ctl enable-key-rotation --key-id sym
expect_error "no policy change while pending deletion" FailedOperation.CmkStateNotSupported 4
finish
