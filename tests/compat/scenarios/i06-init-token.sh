# Issue 17 item 6: the SO re-initialises the token through the module (C_InitToken),
# sets the user PIN (C_InitPIN) and the user changes it (C_SetPIN); the keys made
# before are gone, as on any token.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label before-init --id 31
run init-token "${P[@]}" --init-token --label "$TOKEN" --so-pin "$SO_PIN"
run init-pin "${P[@]}" --login --login-type so --so-pin "$SO_PIN" --init-pin --new-pin 4321
run change-pin "${P[@]}" --login --pin 4321 --change-pin --new-pin 8765
run login-new-pin "${P[@]}" --login --pin 8765 --list-objects
run login-old-pin "${P[@]}" --login --pin "$PIN" --list-objects
run keygen-after "${P[@]}" --login --pin 8765 --keypairgen --key-type EC:prime256v1 --label after-init --id 32
run list-after "${P[@]}" --login --pin 8765 --list-objects
