# EC pairs on the NIST curves and secp256k1, each signing a digest that plain OpenSSL
# verifies with the public key read back.
printf 'curves\n' | openssl dgst -sha256 -binary >digest
n=0
for curve in prime256v1 secp384r1 secp521r1 secp256k1; do
    n=$((n + 1))
    run "keygen-$curve" "${PL[@]}" --keypairgen --key-type "EC:$curve" --label "ec-$curve" --id "8$n"
    run "read-$curve" "${P[@]}" --read-object --type pubkey --id "8$n" -o "$curve.der"
    run "sign-$curve" "${PL[@]}" --sign --mechanism ECDSA --id "8$n" -i digest -o "$curve.sig" --signature-format openssl
    run "verify-$curve" openssl pkeyutl -verify -pubin -keyform DER -inkey "$curve.der" -in digest -sigfile "$curve.sig"
done
