#!/bin/bash
# test_tags.sh - tag-resource and untag-resource edit CKA_CMK_TAGS.
. "$(dirname "$0")/lib.sh"

create tagged --tags team=pay
tagged_id=$ID
tags='sorted((t["TagKey"], t["TagValue"]) for t in d["Tags"])'

ctl tag-resource --key-id tagged --tags owner=alice,env=prod
expect_eq "tag-resource adds" "$tags" "[('env', 'prod'), ('owner', 'alice'), ('team', 'pay')]"
ctl tag-resource --key-id tagged --tags owner=bob --tags empty=
expect_eq "tag-resource overwrites, repeatable, empty values" "$tags" \
    "[('empty', ''), ('env', 'prod'), ('owner', 'bob'), ('team', 'pay')]"
ctl describe-key --key-id tagged
expect_eq "tags stored" 'sorted((t["TagKey"], t["TagValue"]) for t in d["KeyMetadata"]["Tags"])' \
    "[('empty', ''), ('env', 'prod'), ('owner', 'bob'), ('team', 'pay')]"
ctl list-keys --tag owner=bob
expect_eq "the new tag is searchable" '[k["Alias"] for k in d["Keys"]]' "['tagged']"

ctl untag-resource --key-id tagged --tag-keys owner,empty
expect_eq "untag-resource removes" "$tags" "[('env', 'prod'), ('team', 'pay')]"
ctl untag-resource --key-id tagged --tag-keys nothere
expect_eq "untagging an absent key is harmless" "$tags" "[('env', 'prod'), ('team', 'pay')]"
ctl untag-resource --key-id tagged --tag-keys env --tag-keys team
expect_eq "untag everything" 'd["Tags"]' "[]"

ctl tag-resource --key-id tagged --tags a=1,a=2
expect_error "duplicate keys in one call" InvalidParameterValue.TagKeysDuplicated 2
ctl tag-resource --key-id tagged --tags aws:owner=x
expect_error "reserved tag prefix" InvalidParameter 2
ctl tag-resource --key-id tagged --tags "$(printf 'k%.0s' $(seq 1 129))=v"
expect_error "tag key over 128 characters" InvalidParameter 2
ctl tag-resource --key-id tagged --tags =v
expect_error "empty tag key" InvalidParameter 2
ctl tag-resource --key-id tagged
expect_error "tag-resource needs --tags" MissingParameter 2
ctl tag-resource --key-id nobody --tags a=b
expect_error "tag a missing key" ResourceUnavailable.CmkNotFound 3
many=$(seq -s, -f 'k%g=v' 1 51)
ctl tag-resource --key-id tagged --tags "$many"
expect_error "more than 50 tags" InvalidParameter 2
ctl tag-resource --key-id tagged --tags '[{"TagKey":"a","TagValue":'
expect_error "malformed JSON tags" InvalidParameter 2
ctl tag-resource --key-id tagged --tags '[{"TagKey":"a","TagValue":"1"},{"TagKey":"a","TagValue":"2"}]'
expect_error "duplicate keys in JSON tags" InvalidParameterValue.TagKeysDuplicated 2
ctl tag-resource --key-id tagged --tags TagKey=a,Colour=b
expect_error "shorthand with a field that is not TagValue" InvalidParameter 2
ctl describe-key --key-id tagged
expect_eq "refused tag changes changed nothing" 'd["KeyMetadata"]["Tags"]' "[]"

# The clouds' shapes: AWS's shorthand (one tag per argument) and the JSON of every cloud.
ctl tag-resource --key-id tagged --tags TagKey=project,TagValue=apollo --tags Key=stage,Value=beta \
    --tags TagKey=solo
expect_eq "AWS shorthand: TagKey=k,TagValue=v and Key=k,Value=v, one tag each" "$tags" \
    "[('project', 'apollo'), ('solo', ''), ('stage', 'beta')]"
ctl tag-resource --key-id tagged --tags '[{"TagKey":"cost","TagValue":"42"},{"Key":"zone","Value":"a=b,c"}]'
expect_eq "JSON tags, values with '=' and ','" "$tags" \
    "[('cost', '42'), ('project', 'apollo'), ('solo', ''), ('stage', 'beta'), ('zone', 'a=b,c')]"
ctl list-resource-tags --key-id tagged
expect_eq "list-resource-tags" '(d["KeyId"], d["Truncated"], len(d["Tags"]))' "('$tagged_id', False, 5)"
ctl create-key --alias untagged
expect_eq "a create without tags has no TagCode" '"TagCode" in d' False
create json-tagged --tags '[{"TagKey":"team","TagValue":"pay"}]'
expect_eq "a create with tags says TagCode 0, TagMsg '' (Tencent)" '(d["TagCode"], d["TagMsg"])' "(0, '')"
expect_eq "create-key takes JSON tags" \
    'sorted((t["TagKey"], t["TagValue"]) for t in d["KeyMetadata"]["Tags"])' "[('team', 'pay')]"
finish
