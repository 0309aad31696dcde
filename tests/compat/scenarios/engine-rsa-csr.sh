# A certificate request (CSR) signed by an RSA token key through the engine, checked
# by plain OpenSSL.
run keygen "${PL[@]}" --keypairgen --key-type RSA:2048 --label csr-rsa --id b4
run csr "${E[@]}" req -engine pkcs11 -keyform engine -key "$(uri csr-rsa private)" -new -subj /CN=csr.example/O=compat -sha256 -out req.pem
run csr-verify openssl req -in req.pem -noout -verify -subject
