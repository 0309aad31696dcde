# Issue 17 item 5: a pair deleted public half first, then private half; the private
# key still signs between the two.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label del-b --id 0b
run delete-pub "${PL[@]}" --delete-object --type pubkey --id 0b
run list-between "${PL[@]}" --list-objects
printf 'x' | openssl dgst -sha256 -binary >digest
run sign-between "${PL[@]}" --sign --mechanism ECDSA --id 0b -i digest -o sig
run delete-priv "${PL[@]}" --delete-object --type privkey --id 0b
run list "${PL[@]}" --list-objects
