# An EC P-256 pair made, listed, used to sign and read back by pkcs11-tool.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label ec256 --id 01
run list "${PL[@]}" --list-objects
printf 'compat harness\n' >msg
run sign "${PL[@]}" --sign --mechanism ECDSA-SHA256 --id 01 -i msg -o sig
run verify "${PL[@]}" --verify --mechanism ECDSA-SHA256 --id 01 -i msg --signature-file sig
run read-pub "${P[@]}" --read-object --type pubkey --id 01 -o pub.der
run pub-info openssl pkey -pubin -inform DER -in pub.der -noout -text_pub
