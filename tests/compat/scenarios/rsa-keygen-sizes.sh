# RSA pairs of 1024, 2048 and 3072 bits made by pkcs11-tool, listed by size.
for bits in 1024 2048 3072; do
    run "keygen-$bits" "${PL[@]}" --keypairgen --key-type "RSA:$bits" --label "rsa$bits" --id "7${bits:0:1}"
done
run list "${PL[@]}" --list-objects --type pubkey
