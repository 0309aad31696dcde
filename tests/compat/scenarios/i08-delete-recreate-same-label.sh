# Issue 17 item 8: a key deleted, then made again with the same label.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label again --id 08
run delete-priv "${PL[@]}" --delete-object --type privkey --id 08
run delete-pub "${PL[@]}" --delete-object --type pubkey --id 08
run keygen-again "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label again --id 08
run list "${PL[@]}" --list-objects
