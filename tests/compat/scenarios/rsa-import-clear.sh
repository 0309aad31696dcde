# An RSA private key and its certificate made by OpenSSL, written in clear by
# pkcs11-tool, then used to sign; OpenSSL verifies with its own copy.
run genkey openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem
run to-der openssl pkey -in key.pem -outform DER -out key.der
run pub-der openssl pkey -in key.pem -pubout -outform DER -out pub.der
run write-priv "${PL[@]}" --write-object key.der --type privkey --id f1 --label imported-rsa
run write-pub "${PL[@]}" --write-object pub.der --type pubkey --id f1 --label imported-rsa
run list "${PL[@]}" --list-objects
printf 'imported\n' >msg
run sign "${PL[@]}" --sign --mechanism SHA256-RSA-PKCS --id f1 -i msg -o sig
run verify openssl dgst -sha256 -verify pub.der -keyform DER -signature sig msg
