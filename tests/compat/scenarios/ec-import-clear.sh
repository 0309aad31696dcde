# An EC P-384 key written in clear (named curve) and used for ECDSA.
run genkey openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out key.pem
run to-der openssl pkey -in key.pem -outform DER -out key.der
run write-priv "${PL[@]}" --write-object key.der --type privkey --id f2 --label imported-ec
run list "${PL[@]}" --list-objects --type privkey
printf 'imported ec\n' | openssl dgst -sha384 -binary >digest
run sign "${PL[@]}" --sign --mechanism ECDSA --id f2 -i digest -o sig --signature-format openssl
run verify openssl pkeyutl -verify -inkey key.pem -in digest -sigfile sig
