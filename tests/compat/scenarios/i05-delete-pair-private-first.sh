# Issue 17 item 5: a pair deleted private half first, then public half.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label del-a --id 0a
run delete-priv "${PL[@]}" --delete-object --type privkey --id 0a
run delete-pub "${PL[@]}" --delete-object --type pubkey --id 0a
run list "${PL[@]}" --list-objects
