#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_list.sh - list-keys filters (state, spec, tag) and paging; list-aliases.
. "$(dirname "$0")/lib.sh"

declare -A ids
for i in 1 2 3 4 5 6 7; do
    case $i in
    1 | 2 | 3) spec=AES_256 ;;
    4 | 5) spec=EC_P256 ;;
    *) spec=HMAC_256 ;;
    esac
    tags="n=$i"
    [ $((i % 2)) -eq 1 ] && tags="$tags,odd=yes"
    create "key-$i" --key-spec $spec --tags "$tags"
    ids[$i]=$ID
done
ctl create-key --key-spec AES_128 # no alias
ctl disable-key --key-id key-2
ctl schedule-key-deletion --key-id key-3

ctl list-keys
expect_eq "plain listing: every key, Truncated false" '(d["TotalCount"], len(d["Keys"]), d["Truncated"])' "(8, 8, False)"
expect_eq "listing entries carry id, arn, alias, spec, state" \
    'sorted(d["Keys"][0].keys())' "['Alias', 'CreationDate', 'KeyArn', 'KeyId', 'KeySpec', 'KeyState', 'KeyUsage']"
expect_eq "pending key listed with its state" \
    "[k['KeyState'] for k in d['Keys'] if k['KeyId'] == '${ids[3]}']" "['PendingDeletion']"

ctl list-keys --state PendingDeletion
expect_eq "--state PendingDeletion" '[k["KeyId"] for k in d["Keys"]]' "['${ids[3]}']"
ctl list-keys --state disabled
expect_eq "--state is case-insensitive" '[k["Alias"] for k in d["Keys"]]' "['key-2']"
ctl list-keys --state Enabled --state Disabled
expect_eq "--state twice" 'd["TotalCount"]' 7
ctl list-keys --state Gone
expect_error "unknown state" InvalidParameter 2

ctl list-keys --key-spec EC_P256
expect_eq "--key-spec" 'sorted(k["Alias"] for k in d["Keys"])' "['key-4', 'key-5']"
ctl list-keys --key-spec ECC_NIST_P256
expect_eq "--key-spec synonym" 'd["TotalCount"]' 2
ctl list-keys --key-spec SYMMETRIC_DEFAULT --state Enabled
expect_eq "--key-spec with --state" '[k["Alias"] for k in d["Keys"]]' "['key-1']"

ctl list-keys --tag odd
expect_eq "--tag KEY" 'sorted(k["Alias"] for k in d["Keys"])' "['key-1', 'key-3', 'key-5', 'key-7']"
ctl list-keys --tag n=4
expect_eq "--tag KEY=VALUE" '[k["Alias"] for k in d["Keys"]]' "['key-4']"
ctl list-keys --tag odd=yes --tag n=5
expect_eq "two --tag filters" '[k["Alias"] for k in d["Keys"]]' "['key-5']"
ctl list-keys --tag odd --key-spec HMAC_256
expect_eq "--tag with --key-spec" '[k["Alias"] for k in d["Keys"]]' "['key-7']"
ctl list-keys --tag nobody
expect_eq "a tag nobody has" '(d["TotalCount"], d["Keys"])' "(0, [])"

# Paging: walk with --limit 3 and the markers; every key exactly once, oldest first.
seen=()
marker=
pages=0
while :; do
    ctl list-keys --limit 3 ${marker:+--marker "$marker"}
    [ "$RC" -eq 0 ] || { fail "list-keys page $pages"; break; }
    pages=$((pages + 1))
    mapfile -t page < <(j '"\n".join(k["KeyId"] for k in d["Keys"])')
    seen+=("${page[@]}")
    marker=$(j 'd.get("NextMarker", "")')
    truncated=$(j 'd["Truncated"]')
    [ "$truncated" = True ] || break
    [ $pages -lt 10 ] || { fail "paging does not end"; break; }
done
expect_true "3 pages of at most 3" [ "$pages" -eq 3 ]
expect_true "paging returns all 8 keys once" \
    bash -c '[ "$(printf "%s\n" "${@}" | sort -u | wc -l)" -eq 8 ] && [ $# -eq 8 ]' _ "${seen[@]}"
ctl list-keys --limit 1000
all=$(j '[k["KeyId"] for k in d["Keys"]]')
expect_true "pages come in the listing's order" \
    [ "$all" = "$("$PY" -c 'import sys; print(sys.argv[1:])' "${seen[@]}")" ]
expect_eq "listing is oldest first" \
    '[k["CreationDate"] for k in d["Keys"]] == sorted(k["CreationDate"] for k in d["Keys"])' True
ctl list-keys --limit 0
expect_error "--limit 0" InvalidParameter 2
ctl list-keys --limit 1001
expect_error "--limit over 1000" InvalidParameter 2

ctl list-aliases
expect_eq "list-aliases: every alias, keys pending deletion included" \
    '[a["AliasName"] for a in d["Aliases"]]' \
    "['alias/key-1', 'alias/key-2', 'alias/key-3', 'alias/key-4', 'alias/key-5', 'alias/key-6', 'alias/key-7']"
expect_eq "alias entries name their key" \
    "[a['KeyId'] for a in d['Aliases'] if a['AliasName'] == 'alias/key-4']" "['${ids[4]}']"
expect_eq "alias ARN" 'd["Aliases"][0]["AliasArn"]' "arn:cmkp11:cmkp11:alias/key-1"
ctl list-aliases --key-id "${ids[6]}"
expect_eq "list-aliases --key-id" '[a["AliasName"] for a in d["Aliases"]]' "['alias/key-6']"
ctl list-aliases --limit 4
expect_eq "list-aliases paging" '(len(d["Aliases"]), d["Truncated"], d["NextMarker"])' \
    "(4, True, 'alias/key-4')"
ctl list-aliases --limit 4 --marker alias/key-4
expect_eq "list-aliases second page" '[a["AliasName"] for a in d["Aliases"]]' \
    "['alias/key-5', 'alias/key-6', 'alias/key-7']"
finish
