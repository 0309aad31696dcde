# Issue 17 item 9: pkcs11-tool --set-id changes the CKA_ID of the half it names.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label halves --id 01
run set-id-priv "${PL[@]}" --set-id 02 --id 01 --type privkey
run list-1 "${PL[@]}" --list-objects
run set-id-pub "${PL[@]}" --set-id 02 --id 01 --type pubkey
run list-2 "${PL[@]}" --list-objects
