# Issue 17 item 2 / How to know: RSA decryption (PKCS#1 v1.5 and OAEP) by the token
# key through OpenSSL's libp11 engine, as `openssl pkeyutl -decrypt` does it.
run keygen "${PL[@]}" --keypairgen --key-type RSA:2048 --label rsa-engine --id 04
run read-pub "${P[@]}" --read-object --type pubkey --id 04 -o pub.der
printf 'engine plaintext\n' >plain
run encrypt-pkcs1 openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub.der -in plain -out c1
run decrypt-pkcs1 "${E[@]}" pkeyutl -engine pkcs11 -keyform engine -decrypt -inkey "$(uri rsa-engine private)" -in c1 -out d1
run decrypted-pkcs1 cat d1
run encrypt-oaep openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub.der -pkeyopt rsa_padding_mode:oaep -in plain -out c2
run decrypt-oaep "${E[@]}" pkeyutl -engine pkcs11 -keyform engine -decrypt -inkey "$(uri rsa-engine private)" -pkeyopt rsa_padding_mode:oaep -in c2 -out d2
run decrypted-oaep cat d2
