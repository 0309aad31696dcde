# Issue 17 item 11: pkcs11-tool's AES key (CKA_PRIVATE=FALSE by default) is visible
# without login, and encrypts and decrypts.
run keygen "${PL[@]}" --keygen --key-type AES:16 --label aes-pub --id 61
run list-no-login "${P[@]}" --list-objects
run list-login "${PL[@]}" --list-objects
printf '0123456789abcdef0123456789abcdef' >plain
run encrypt "${PL[@]}" --encrypt --mechanism AES-CBC --iv 000102030405060708090a0b0c0d0e0f --id 61 -i plain -o cipher
run decrypt "${PL[@]}" --decrypt --mechanism AES-CBC --iv 000102030405060708090a0b0c0d0e0f --id 61 -i cipher -o back
run same cmp plain back
