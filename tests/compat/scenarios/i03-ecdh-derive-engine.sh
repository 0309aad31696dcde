# Issue 17 item 3: `openssl pkeyutl -derive` with the token's EC key through the engine.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --usage-derive --label ecdh-e --id 06
run read-pub "${P[@]}" --read-object --type pubkey --id 06 -o tok.pub.der
run peer-key openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out peer.pem
run peer-pub openssl pkey -in peer.pem -pubout -out peer.pub.pem
run derive "${E[@]}" pkeyutl -engine pkcs11 -keyform engine -derive -inkey "$(uri ecdh-e private)" -peerkey peer.pub.pem -out tok.secret
run peer-derive openssl pkeyutl -derive -inkey peer.pem -peerkey tok.pub.der -peerform DER -out peer.secret
run same-secret cmp tok.secret peer.secret
