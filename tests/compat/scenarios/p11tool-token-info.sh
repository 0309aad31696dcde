# p11tool's view of the token: its flags, mechanisms and an empty listing.
run token-info "${T[@]}" --list-token-urls
run mechanisms-count sh -c "\"\$@\" --list-mechanisms '$URI' | wc -l" _ "${T[@]}"
run list-empty "${T[@]}" --login --list-all "$URI"
run list-no-login "${T[@]}" --list-all "$URI"
