# pkcs11-tool --test: OpenSC's own self-test (digests, signatures, verification,
# decryption, random) with one RSA pair on the token. One key per run: the self-test
# walks the keys in the module's find order, which PKCS#11 leaves open.
run keygen "${PL[@]}" --keypairgen --key-type RSA:2048 --label t-rsa --id a1
run test "${PL[@]}" --test
