# RSA signatures by pkcs11-tool (PKCS#1 v1.5 and PSS over SHA-256), verified by OpenSSL.
run keygen "${PL[@]}" --keypairgen --key-type RSA:2048 --label rsa-sign --usage-sign --id 92
run read-pub "${P[@]}" --read-object --type pubkey --id 92 -o pub.der
printf 'signed by the token\n' >msg
run sign-pkcs1 "${PL[@]}" --sign --mechanism SHA256-RSA-PKCS --id 92 -i msg -o s1
run verify-pkcs1 openssl dgst -sha256 -verify pub.der -keyform DER -signature s1 msg
run sign-pss "${PL[@]}" --sign --mechanism SHA256-RSA-PKCS-PSS --id 92 -i msg -o s2
run verify-pss openssl dgst -sha256 -verify pub.der -keyform DER -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1 -signature s2 msg
run verify-token "${PL[@]}" --verify --mechanism SHA256-RSA-PKCS --id 92 -i msg --signature-file s1
