# p11tool writes a certificate and a key pair's public key, lists certificates, and
# deletes by URL.
run key openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem
run cert openssl req -new -x509 -key key.pem -subj /CN=p11tool-cert -days 10 -set_serial 5 -out cert.pem
run write-cert "${T[@]}" --login --write --load-certificate cert.pem --label p11cert --id 0c "$URI"
run list-certs "${T[@]}" --list-all-certs "$URI"
run export-cert "${T[@]}" --export "$URI;object=p11cert;type=cert" --outfile back.pem
run same-cert sh -c 'openssl x509 -in cert.pem -outform DER | cmp - <(openssl x509 -in back.pem -outform DER)'
run write-priv "${T[@]}" --login --write --load-privkey key.pem --label p11key --id 0c "$URI"
run list-all "${T[@]}" --login --list-all "$URI"
run delete-cert "${T[@]}" --login --batch --delete "$URI;object=p11cert;type=cert"
run delete-key "${T[@]}" --login --batch --delete "$URI;object=p11key;type=private"
run list-after "${T[@]}" --login --list-all "$URI"
