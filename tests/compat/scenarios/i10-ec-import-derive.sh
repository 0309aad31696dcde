# Issue 17 item 10: an EC key imported in clear with CKA_DERIVE=TRUE derives.
run genkey openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem
run to-der openssl pkey -in key.pem -outform DER -out key.der
run write "${PL[@]}" --write-object key.der --type privkey --usage-derive --id 55 --label imp-ecdh
run peer openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out peer.pem
run peer-pub openssl pkey -in peer.pem -pubout -outform DER -out peer.pub.der
run derive "${PL[@]}" --derive --mechanism ECDH1-DERIVE --id 55 -i peer.pub.der -o tok.secret
run ref-derive openssl pkeyutl -derive -inkey key.pem -peerkey peer.pub.der -peerform DER -out ref.secret
run same-secret cmp tok.secret ref.secret
