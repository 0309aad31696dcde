# Issue 17 item 1: labels are free text (spaces, dots, UTF-8), as clients write them.
run keygen-space "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label 'My Public Key' --id 11
run keygen-dots "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label 'www.example.com' --id 12
run keygen-utf8 "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label 'clé ñ 鍵' --id 13
run keygen-long "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label "$(printf 'L%.0s' $(seq 1 100))" --id 14
run list "${PL[@]}" --list-objects
