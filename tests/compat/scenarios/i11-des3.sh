# Issue 17 item 11: a DES3 token key made and used for DES3-CBC.
run keygen "${PL[@]}" --keygen --key-type DES3:24 --label des3 --id 62
printf '0123456789abcdef' >plain
run encrypt "${PL[@]}" --encrypt --mechanism DES3-CBC --iv 0001020304050607 --id 62 -i plain -o cipher
run decrypt "${PL[@]}" --decrypt --mechanism DES3-CBC --iv 0001020304050607 --id 62 -i cipher -o back
run same cmp plain back
