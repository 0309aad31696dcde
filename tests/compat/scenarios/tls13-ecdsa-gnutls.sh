# TLS 1.3 with the token's ECDSA P-256 key in gnutls-serv (PKCS#11 URI via --provider).
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label tls-ec --id c6
run cert "${E[@]}" req -engine pkcs11 -keyform engine -key "$(uri tls-ec private)" -new -x509 -days 30 -subj /CN=localhost -set_serial 14 -out cert.pem
tls handshake '^- (Description|Handshake was completed|Status)|\*\*\* |rror' \
    gnutls-serv --provider "$MODULE" --x509keyfile "$(uri tls-ec private)" --x509certfile cert.pem -p 4433 \
        --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.3' -- \
    gnutls-cli 127.0.0.1 -p 4433 --x509cafile cert.pem --verify-hostname localhost --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.3'
