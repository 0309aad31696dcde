# Issue 17 item 11: a public token key created in a read/write session without login
# (allowed by PKCS#11 for public objects), then found and deleted.
run genkey openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem
run pub-der openssl pkey -in key.pem -pubout -outform DER -out pub.der
run write-pub-no-login "${P[@]}" --write-object pub.der --type pubkey --id 63 --label pub-only
run list-no-login "${P[@]}" --list-objects
run delete-no-login "${P[@]}" --delete-object --type pubkey --id 63
run list-after "${P[@]}" --list-objects
