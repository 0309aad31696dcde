# pkcs11-tool --test with one EC pair on the token (see pkcs11-tool-test-rsa).
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label t-ec --id a2
run test "${PL[@]}" --test
