# ECDSA signatures through OpenSSL's libp11 engine by PKCS#11 URI, verified by plain
# OpenSSL.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label eng-ec --id b1
run engine-pub "${E[@]}" pkey -engine pkcs11 -inform engine -pubin -in "$(uri eng-ec public)" -out pub.pem
printf 'engine ecdsa\n' >msg
run sign-dgst "${E[@]}" dgst -engine pkcs11 -keyform engine -sha256 -sign "$(uri eng-ec private)" -out sig msg
run verify openssl dgst -sha256 -verify pub.pem -signature sig msg
openssl dgst -sha256 -binary msg >digest
run sign-pkeyutl "${E[@]}" pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$(uri eng-ec private)" -in digest -out sig2
run verify-pkeyutl openssl pkeyutl -verify -pubin -inkey pub.pem -in digest -sigfile sig2
