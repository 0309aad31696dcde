# RSA PKCS#1 v1.5 and PSS signatures through the engine, verified by plain OpenSSL.
run keygen "${PL[@]}" --keypairgen --key-type RSA:2048 --label eng-rsa --id b2
run engine-pub "${E[@]}" pkey -engine pkcs11 -inform engine -pubin -in "$(uri eng-rsa public)" -out pub.pem
printf 'engine rsa\n' >msg
run sign "${E[@]}" dgst -engine pkcs11 -keyform engine -sha256 -sign "$(uri eng-rsa private)" -out sig msg
run verify openssl dgst -sha256 -verify pub.pem -signature sig msg
run sign-pss "${E[@]}" dgst -engine pkcs11 -keyform engine -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sign "$(uri eng-rsa private)" -out sig2 msg
run verify-pss openssl dgst -sha256 -verify pub.pem -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -signature sig2 msg
