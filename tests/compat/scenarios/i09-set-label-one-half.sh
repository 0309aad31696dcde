# Issue 17 item 9: p11tool --set-label on the private half relabels that half only.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label before --id 09
run set-label "${T[@]}" --login --set-label after "$URI;object=before;type=private"
run list "${PL[@]}" --list-objects
run p11tool-list "${T[@]}" --login --list-all "$URI"
