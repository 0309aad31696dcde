# The mechanisms the token lists (pkcs11-tool -M), and the module and token info.
run mechanisms "${P[@]}" --list-mechanisms
run info "${P[@]}" --show-info
run token-slots "${P[@]}" --list-token-slots
