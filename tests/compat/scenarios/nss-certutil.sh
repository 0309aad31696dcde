# Mozilla NSS: the module added to a private NSS database with modutil, the token's keys
# listed by certutil -K, a request signed by an existing key (named by hex CKA_ID), a
# key pair NSS generates on the token itself, and a self-signed certificate stored on
# the token by certutil -S.
mkdir -p nssdb
printf '%s\n' "$PIN" >nss.pw
# certutil's key generation seed; its bytes never reach the transcript.
head -c 64 /dev/urandom >nss.noise
DB=sql:$W/nssdb
C=(certutil -d "$DB" -h "$TOKEN" -f nss.pw)
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label nss-ec --id c2
run nss-init certutil -N -d "$DB" --empty-password
run modutil-add modutil -dbdir "$DB" -add compat -libfile "$MODULE" -force
run list-keys "${C[@]}" -K
run req "${C[@]}" -R -k c2 -s CN=nss-compat -o req.der
run req-verify openssl req -in req.der -inform DER -verify -noout -subject
run req-new "${C[@]}" -R -k rsa -g 2048 -z nss.noise -s CN=nss-new -o req-new.der
run req-new-verify openssl req -in req-new.der -inform DER -verify -noout -subject
run self-signed "${C[@]}" -S -x -n nss-self -k ec -q nistp256 -s CN=nss-self -t CT,, -z nss.noise -v 12
run list-certs "${C[@]}" -L
run list-keys-after "${C[@]}" -K
