# Issue 17 item 2 / How to know: RSA-OAEP decryption by the token key with pkcs11-tool,
# with SHA-1 (what SoftHSMv2 2.6 implements) and SHA-256 (which it refuses: the backend
# is the oracle, so the harness shows what cmkp11 answers instead).
run keygen "${PL[@]}" --keypairgen --key-type RSA:2048 --label rsa-oaep --id 03
run read-pub "${P[@]}" --read-object --type pubkey --id 03 -o pub.der
printf 'oaep plaintext\n' >plain
run encrypt-sha1 openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub.der -pkeyopt rsa_padding_mode:oaep -in plain -out c1
run decrypt-sha1 "${PL[@]}" --decrypt --mechanism RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1 --id 03 -i c1 -o d1
run decrypted-sha1 cat d1
run encrypt-sha256 openssl pkeyutl -encrypt -pubin -keyform DER -inkey pub.der -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in plain -out c2
run decrypt-sha256 "${PL[@]}" --decrypt --mechanism RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 03 -i c2 -o d2
run decrypted-sha256 cat d2
