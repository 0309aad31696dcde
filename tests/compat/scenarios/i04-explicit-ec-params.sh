# Issue 17 item 4: an EC private key whose DER carries explicit curve parameters,
# written to the token by pkcs11-tool, then listed and used.
run genkey openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout -out key.pem
run to-der openssl pkey -in key.pem -outform DER -out key.der
run write-priv "${PL[@]}" --write-object key.der --type privkey --id 07 --label explicit-ec
run list "${PL[@]}" --list-objects --type privkey
printf 'explicit\n' | openssl dgst -sha256 -binary >digest
run sign "${PL[@]}" --sign --mechanism ECDSA --id 07 -i digest -o sig --signature-format openssl
run verify openssl pkeyutl -verify -inkey key.pem -in digest -sigfile sig
