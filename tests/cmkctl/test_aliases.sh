#!/bin/bash
# test_aliases.sh - aliases (create, update, uniqueness, reserved names) and descriptions.
. "$(dirname "$0")/lib.sh"

create payments
pay=$ID
create web --key-spec EC_P256

ctl create-key --alias payments
expect_error "duplicate alias at create" InvalidParameterValue.AliasAlreadyExists 2
ctl create-key --alias PayMents
expect_error "duplicate alias ignoring case" InvalidParameterValue.AliasAlreadyExists 2
ctl create-key --alias alias/payments --key-spec EC_P256
expect_error "duplicate alias with alias/ prefix, key pair" InvalidParameterValue.AliasAlreadyExists 2
for bad in aws/x acs/x KMS-x cmk/x team/default 'a//b' 'trailing/' '/lead' 'sp ace' \
    "$(printf 'x%.0s' $(seq 1 256))"; do
    ctl create-key --alias "$bad"
    expect_error "invalid alias '${bad:0:20}'" InvalidParameterValue.InvalidAlias 2
done

ctl update-alias --alias-name payments-v2 --target-key-id payments
expect_eq "update-alias answers the new alias" '(d["KeyId"], d["Alias"])' "('$pay', 'payments-v2')"
ctl describe-key --key-id payments-v2
expect_eq "the key answers to the new alias" 'd["KeyMetadata"]["KeyId"]' "$pay"
ctl describe-key --key-id payments
expect_error "the old alias is released" ResourceUnavailable.CmkNotFound 3
create payments
expect_true "the released alias can be used again" [ -n "$ID" ]
ctl update-alias --alias-name alias/web --target-key-id "$pay"
expect_error "update-alias to another key's alias" InvalidParameterValue.AliasAlreadyExists 2
ctl update-alias --alias-name WEB --target-key-id "$pay"
expect_error "update-alias to another key's alias, other case" InvalidParameterValue.AliasAlreadyExists 2
ctl update-alias --alias-name kms-pay --target-key-id "$pay"
expect_error "update-alias to a reserved prefix" InvalidParameterValue.InvalidAlias 2
ctl update-alias --alias-name alias/ --target-key-id "$pay"
expect_error "update-alias to nothing" InvalidParameterValue.InvalidAlias 2
ctl update-alias --alias-name Web-Server --target-key-id web
expect_eq "a key pair can be renamed" 'd["Alias"]' Web-Server
ctl update-alias --alias-name x --target-key-id nobody
expect_error "update-alias of a missing key" ResourceUnavailable.CmkNotFound 3
ctl describe-key --key-id payments-v2
expect_eq "refused updates changed nothing" 'd["KeyMetadata"]["Alias"]' payments-v2

ctl update-key-description --key-id payments-v2 --description "cards, EU; ünïcødé"
expect_eq "update-key-description" 'd["Description"]' "cards, EU; ünïcødé"
ctl describe-key --key-id payments-v2
expect_eq "description stored" 'd["KeyMetadata"]["Description"]' "cards, EU; ünïcødé"
ctl update-key-description --key-id payments-v2 --description ""
expect_eq "description cleared" 'd["Description"]' ""
ctl update-key-description --key-id payments-v2 --description "$(head -c 8193 /dev/zero | tr '\0' x)"
expect_error "description over 8192 characters" InvalidParameter 2
ctl update-key-description --key-id payments-v2
expect_error "update-key-description needs --description" MissingParameter 2

ctl schedule-key-deletion --key-id payments-v2
ctl update-alias --alias-name other --target-key-id payments-v2
expect_error "no alias change while pending deletion" FailedOperation.CmkStateNotSupported 4
ctl update-key-description --key-id payments-v2 --description x
expect_error "no description change while pending deletion" FailedOperation.CmkStateNotSupported 4

ctl create-key --alias ''
expect_error "an empty --alias is refused (Tencent: cannot be empty)" InvalidParameterValue.InvalidAlias 2
ctl create-key --alias alias/
expect_error "'alias/' alone is empty too" InvalidParameterValue.InvalidAlias 2

# Four processes create one alias at once: one key, and each loser told AliasAlreadyExists
# (the winner's key is still being made when a loser asks who has the alias).
for round in 1 2 3; do
    for i in 1 2 3 4; do
        timeout 60 "$CMKCTL" create-key --alias "race-$round" --description "racer $i" \
            >"$OUT/race.$i.out" 2>"$OUT/race.$i.err" </dev/null &
    done
    wait
    codes=$("$PY" -c '
import json, sys
out = []
for i in "1234":
    err = open(sys.argv[1] + "/race.%s.err" % i).read()
    out.append(json.loads(err)["Error"]["Code"] if err.strip() else "ok")
print(" ".join(sorted(out)))' "$OUT")
    want="InvalidParameterValue.AliasAlreadyExists InvalidParameterValue.AliasAlreadyExists"
    want="$want InvalidParameterValue.AliasAlreadyExists ok"
    if [ "$codes" = "$want" ]; then
        pass "round $round: one create wins, three are AliasAlreadyExists"
    else
        fail "round $round: one create wins, three are AliasAlreadyExists: got '$codes'"
    fi
done
finish
