# The user changes the PIN with pkcs11-tool; the keys stay usable with the new one.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label pc --id d2
run change-pin "${P[@]}" --login --pin "$PIN" --change-pin --new-pin 1111
run old-pin "${P[@]}" --login --pin "$PIN" --list-objects --type privkey
run new-pin "${P[@]}" --login --pin 1111 --list-objects --type privkey
printf 'y' | openssl dgst -sha256 -binary >digest
run sign "${P[@]}" --login --pin 1111 --sign --mechanism ECDSA --id d2 -i digest -o sig
run change-back "${P[@]}" --login --pin 1111 --change-pin --new-pin "$PIN"
