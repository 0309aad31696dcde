# Issue 17 item 2: an RSA key asked for with encrypt and sign (pkcs11-tool's default)
# signs and decrypts.
run keygen "${PL[@]}" --keypairgen --key-type RSA:2048 --label rsa-both --id 02
run read-pub "${P[@]}" --read-object --type pubkey --id 02 -o pub.der
printf 'secret for the token\n' >plain
run encrypt openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub.der -in plain -out cipher
run decrypt "${PL[@]}" --decrypt --mechanism RSA-PKCS --id 02 -i cipher -o decrypted
run decrypted cat decrypted
run sign "${PL[@]}" --sign --mechanism SHA256-RSA-PKCS --id 02 -i plain -o sig
run verify openssl dgst -sha256 -verify pub.der -keyform DER -signature sig plain
