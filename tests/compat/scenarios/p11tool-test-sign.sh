# p11tool --test-sign: GnuTLS signs and verifies test data with each token key.
run gen-rsa "${PL[@]}" --keypairgen --key-type RSA:2048 --label ts-rsa --id d5
run gen-ec "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label ts-ec --id d6
run test-rsa "${T[@]}" --login --test-sign "$URI;object=ts-rsa;type=private"
run test-ec "${T[@]}" --login --test-sign "$URI;object=ts-ec;type=private"
