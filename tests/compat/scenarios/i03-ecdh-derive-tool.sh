# Issue 17 item 3: an EC key made with CKA_DERIVE derives an ECDH secret
# (CKM_ECDH1_DERIVE) that equals the peer's.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --usage-derive --label ecdh --id 05
run read-pub "${P[@]}" --read-object --type pubkey --id 05 -o tok.pub.der
run peer-key openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out peer.pem
run peer-pub openssl pkey -in peer.pem -pubout -outform DER -out peer.pub.der
run derive "${PL[@]}" --derive --mechanism ECDH1-DERIVE --id 05 -i peer.pub.der -o tok.secret
run peer-derive openssl pkeyutl -derive -inkey peer.pem -peerkey tok.pub.der -peerform DER -out peer.secret
run same-secret cmp tok.secret peer.secret
