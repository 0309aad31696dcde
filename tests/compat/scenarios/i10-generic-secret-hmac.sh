# Issue 17 item 10: a GENERIC secret (an HMAC key) made by pkcs11-tool and used for
# HMAC-SHA256, checked against the token's own verification.
run keygen "${PL[@]}" --keygen --key-type GENERIC:32 --label hmac-key --id 10
run list "${PL[@]}" --list-objects --type secrkey
printf 'mac me\n' >msg
run mac "${PL[@]}" --sign --mechanism SHA256-HMAC --id 10 -i msg -o mac
run mac-size stat -c %s mac
