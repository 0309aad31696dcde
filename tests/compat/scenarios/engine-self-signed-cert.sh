# A self-signed certificate from `openssl req -x509` with the token key through the
# engine, written back to the token next to its key, and read again.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label web --id b3
run req "${E[@]}" req -engine pkcs11 -keyform engine -key "$(uri web private)" -new -x509 -days 30 -subj /CN=compat.example -set_serial 7 -out cert.pem
run cert-subject openssl x509 -in cert.pem -noout -subject -issuer -serial
run cert-verify openssl verify -CAfile cert.pem cert.pem
run cert-der openssl x509 -in cert.pem -outform DER -out cert.der
run write-cert "${PL[@]}" --write-object cert.der --type cert --id b3 --label web
run list "${PL[@]}" --list-objects
run read-cert "${P[@]}" --read-object --type cert --id b3 -o back.der
run same cmp cert.der back.der
