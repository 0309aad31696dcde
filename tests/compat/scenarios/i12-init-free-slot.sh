# Issue 17 item 12: a new token initialised in the free slot through the module.
run init-free "${P[@]}" --slot-index 1 --init-token --label fresh --so-pin "$SO_PIN"
run init-pin-free "${P[@]}" --token-label fresh --login --login-type so --so-pin "$SO_PIN" --init-pin --new-pin 1111
run slots "${P[@]}" --list-token-slots
run keygen-fresh "${P[@]}" --token-label fresh --login --pin 1111 --keypairgen --key-type EC:prime256v1 --label on-fresh --id 01
