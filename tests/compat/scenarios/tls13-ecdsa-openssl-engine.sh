# TLS 1.3 with an ECDSA server key on the token: openssl s_server with the libp11
# engine, plain openssl s_client verifying the self-signed certificate.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label tls-ec --id c3
run cert "${E[@]}" req -engine pkcs11 -keyform engine -key "$(uri tls-ec private)" -new -x509 -days 30 -subj /CN=localhost -set_serial 11 -out cert.pem
tls handshake '^(Protocol version|Ciphersuite|Peer certificate|Signature type|Verification|CONNECTION)' \
    "${E[@]}" s_server -engine pkcs11 -keyform engine -key "$(uri tls-ec private)" -cert cert.pem -accept 127.0.0.1:4433 -tls1_3 -quiet -- \
    openssl s_client -connect 127.0.0.1:4433 -tls1_3 -brief -CAfile cert.pem -verify_return_error -servername localhost
