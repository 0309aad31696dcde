# Digests computed by the token (deterministic) and random bytes of a requested size.
printf 'hash me\n' >msg
for m in SHA-1 SHA256 SHA384 SHA512; do
    run "hash-$m" "${P[@]}" --hash --mechanism "$m" -i msg -o "h-$m"
    run "hex-$m" od -An -tx1 "h-$m"
done
run random "${P[@]}" --generate-random 48 -o rnd
run random-size stat -c %s rnd
