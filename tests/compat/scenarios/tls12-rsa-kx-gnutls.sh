# TLS 1.2 with RSA key exchange: gnutls-serv decrypts the premaster secret with the
# token's RSA key (libp11's engine cannot do this on OpenSSL 3.0, GnuTLS can).
run keygen "${PL[@]}" --keypairgen --key-type RSA:2048 --label tls-rsa --id c4
run cert "${E[@]}" req -engine pkcs11 -keyform engine -key "$(uri tls-rsa private)" -new -x509 -days 30 -subj /CN=localhost -set_serial 12 -out cert.pem
tls handshake '^- (Description|Handshake was completed|Status|Key Exchange)|\*\*\* |rror' \
    gnutls-serv --provider "$MODULE" --x509keyfile "$(uri tls-rsa private)" --x509certfile cert.pem -p 4433 \
        --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA' -- \
    gnutls-cli 127.0.0.1 -p 4433 --x509cafile cert.pem --verify-hostname localhost --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA'
