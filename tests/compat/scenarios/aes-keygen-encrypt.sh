# AES keys of 128, 192 and 256 bits made by pkcs11-tool (private, after login) and
# used for AES-CBC-PAD and AES-ECB both ways.
printf 'an AES plaintext that is longer than one block\n' >plain
n=0
for bits in 16 24 32; do
    n=$((n + 1))
    run "keygen-$bits" "${PL[@]}" --keygen --key-type "AES:$bits" --private --label "aes$bits" --id "e$n"
    run "enc-$bits" "${PL[@]}" --encrypt --mechanism AES-CBC-PAD --iv 0f0e0d0c0b0a09080706050403020100 --id "e$n" -i plain -o "c$bits"
    run "dec-$bits" "${PL[@]}" --decrypt --mechanism AES-CBC-PAD --iv 0f0e0d0c0b0a09080706050403020100 --id "e$n" -i "c$bits" -o "p$bits"
    run "same-$bits" cmp plain "p$bits"
done
run list "${PL[@]}" --list-objects --type secrkey
