# Certificates and data objects written, listed, read and deleted by pkcs11-tool.
run ca-key openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.pem
run ca-cert openssl req -new -x509 -key ca.pem -subj /CN=compat-ca -days 10 -set_serial 3 -outform DER -out ca.der
run write-cert "${PL[@]}" --write-object ca.der --type cert --id c1 --label 'Compat CA'
printf 'some application data\n' >data.bin
run write-data "${PL[@]}" --write-object data.bin --type data --label app-data --application-label compat-app
run write-data-public "${P[@]}" --login --pin "$PIN" --write-object data.bin --type data --label public-data --application-label compat-app
run list "${P[@]}" --list-objects
run read-cert "${P[@]}" --read-object --type cert --id c1 -o ca.back
run same-cert cmp ca.der ca.back
run read-data "${PL[@]}" --read-object --type data --label app-data -o data.back
run same-data cmp data.bin data.back
run delete-cert "${PL[@]}" --delete-object --type cert --id c1
run delete-data "${PL[@]}" --delete-object --type data --label app-data
run list-after "${PL[@]}" --list-objects
