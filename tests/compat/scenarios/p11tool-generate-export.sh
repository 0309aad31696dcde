# p11tool makes RSA and ECDSA pairs, exports their public keys, and lists them.
run gen-rsa "${T[@]}" --login --generate-privkey rsa --bits 2048 --label p11-rsa "$URI"
run gen-ec "${T[@]}" --login --generate-privkey ecdsa --curve secp256r1 --label p11-ec "$URI"
run export-rsa "${T[@]}" --login --export-pubkey "$URI;object=p11-rsa;type=private" --outfile rsa.pub.pem
run export-ec "${T[@]}" --login --export-pubkey "$URI;object=p11-ec;type=private" --outfile ec.pub.pem
run rsa-bits sh -c 'openssl pkey -pubin -in rsa.pub.pem -noout -text_pub | head -n 1'
run ec-curve sh -c 'openssl pkey -pubin -in ec.pub.pem -noout -text_pub | grep -E "ASN1 OID|Public-Key"'
run list-privkeys "${T[@]}" --login --list-privkeys "$URI"
run list-all "${T[@]}" --login --list-all "$URI"
