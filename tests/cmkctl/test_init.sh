#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_init.sh - cmkctl init sets up a production token over the backend token that
# exists: configuration, store folder and PIN file for a service user, the store made;
# an application then uses it with nothing else. Refusals change nothing.
. "$(dirname "$0")/lib.sh"

R=$CMK_WORK/root # stands for /: etc/cmkp11, var/lib/cmkp11
backend=$(sed -n 's/^module = //p' "$CMKP11_CONF")
backend_token=$(sed -n 's/^token_label = //p' "$CMKP11_CONF")
user=$(id -un) # the applications below run as this user, as the service user would

init() {
    ctl init --backend-token "$backend_token" --backend-module "$backend" --token-label prod \
        --config "$R/etc/cmkp11/cmkp11.conf" --store "$R/var/lib/cmkp11/cmk.db" \
        --service-user "$user" --write-pin-file "$R/etc/cmkp11/user-pin" "$@"
}

ctl init --backend-token no-such-token --backend-module "$backend" --config "$R/etc/x.conf" \
    --store "$R/var/x/cmk.db"
expect_error "a backend token that does not exist" InvalidParameter 2
CMKP11_PIN=0000 ctl init --backend-token "$backend_token" --backend-module "$backend" \
    --config "$R/etc/x.conf" --store "$R/var/x/cmk.db"
expect_error "a PIN the backend token refuses" UnauthorizedOperation 5
expect_true "refusals wrote nothing" test ! -e "$R"

init
expect_eq "init reports what it set up" '(d["Token"], d["ServiceUser"], d["BackendToken"])' \
    "('prod', '$user', '$backend_token')"
expect_true "store folder 0700, the service user's" \
    bash -c '[ "$(stat -c "%a %U" "$1")" = "700 $2" ]' _ "$R/var/lib/cmkp11" "$user"
expect_true "store made and the service user's, 0600" \
    bash -c '[ "$(stat -c "%a %U" "$1")" = "600 $2" ]' _ "$R/var/lib/cmkp11/cmk.db" "$user"
expect_true "PIN file 0400, the service user's, holding the PIN" \
    bash -c '[ "$(stat -c "%a %U" "$1")" = "400 $2" ] && [ "$(cat "$1")" = "$3" ]' _ \
    "$R/etc/cmkp11/user-pin" "$user" "$CMK_PIN"
expect_true "configuration names backend, token and store" \
    grep -qx "store = $R/var/lib/cmkp11/cmk.db" "$R/etc/cmkp11/cmkp11.conf"

# An application uses the new token with its configuration and PIN file, nothing else.
CMKP11_CONF=$R/etc/cmkp11/cmkp11.conf CMKP11_PIN= ctl --pin-file "$R/etc/cmkp11/user-pin" \
    create-key --alias first
expect_eq "a key made on the new token" 'd["KeyMetadata"]["Pkcs11"]["Token"]' prod
CMKP11_CONF=$R/etc/cmkp11/cmkp11.conf ctl doctor
expect_eq "doctor: the new token is healthy" 'd["Healthy"]' True

cp "$R/etc/cmkp11/cmkp11.conf" "$CMK_WORK/before.conf"
init
expect_error "init again: the configuration exists" InvalidParameter 2
expect_true "... and is unchanged" cmp -s "$CMK_WORK/before.conf" "$R/etc/cmkp11/cmkp11.conf"
ln -s "$CMK_WORK/victim" "$R/etc/cmkp11/linked.conf"
ctl init --backend-token "$backend_token" --backend-module "$backend" \
    --config "$R/etc/cmkp11/linked.conf" --store "$R/var/lib/cmkp11/cmk.db" --force
expect_error "a configuration path that is a link is refused, even with --force" InvalidParameter 2
expect_true "... and nothing was written through it" test ! -e "$CMK_WORK/victim"
mkdir -p "$R/open" && chmod 0777 "$R/open"
ctl init --backend-token "$backend_token" --backend-module "$backend" --config "$R/etc/y.conf" \
    --store "$R/open/cmk.db"
expect_error "a store folder every user can write is refused" InvalidParameter 2
init --force
expect_ok "init --force replaces the configuration; the store and its key stay"
CMKP11_CONF=$R/etc/cmkp11/cmkp11.conf ctl describe-key --key-id first
expect_ok "the key made before is still there"

# As root, for a service user of its own: the store, its folder and the PIN file are that
# user's (the module then refuses to open them as root: they are another user's files).
if [ "$(id -u)" -eq 0 ]; then
    S=$CMK_WORK/svc
    ctl init --backend-token "$backend_token" --backend-module "$backend" \
        --config "$S/etc/cmkp11.conf" --store "$S/lib/cmk.db" --service-user nobody \
        --write-pin-file "$S/etc/user-pin"
    expect_ok "init for the service user nobody"
    for f in "700 $S/lib" "600 $S/lib/cmk.db" "600 $S/lib/cmk.db-token.lock" "400 $S/etc/user-pin"; do
        expect_true "${f#* }: mode ${f%% *}, owned by nobody" \
            bash -c '[ "$(stat -c "%a %U" "$2")" = "$1 nobody" ]' _ "${f%% *}" "${f#* }"
    done
fi
finish
