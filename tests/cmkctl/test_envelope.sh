#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_envelope.sh - encrypt and decrypt with the envelope mechanism, across rotations;
# damaged blobs, other keys' blobs and wrong encryption contexts refused.
. "$(dirname "$0")/lib.sh"

create pay
pay=$ID
create other
other=$ID
create web --key-spec EC_P256
create mac --key-spec HMAC_256

# blob B64 EXPR: a Python expression over the blob's bytes b.
blob() {
    "$PY" -c 'import base64, sys; b = base64.b64decode(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}
# expect_blob DESC B64 EXPR WANT: a fact about a blob's bytes.
expect_blob() {
    local got
    got=$(blob "$2" "$3")
    if [ "$got" = "$4" ]; then pass "$1"; else fail "$1: $3 is '$got', want '$4'"; fi
}
# edit B64 EXPR: the blob with the expression applied to its bytearray b, base64 again.
edit() {
    "$PY" -c '
import base64, sys
b = bytearray(base64.b64decode(sys.argv[1]))
exec(sys.argv[2])
print(base64.b64encode(bytes(b)).decode())' "$1" "$2"
}

secret=$(printf 'card 4111 1111 1111 1111' | base64 -w0)
ctl encrypt --key-id alias/pay --plaintext "$secret" --encryption-context '{"b":"2","a":"1"}'
expect_eq "encrypt under v1" '(d["KeyId"], d["KeyVersionId"], sorted(d))' \
    "('$pay', '1', ['CiphertextBlob', 'KeyId', 'KeyVersionId', 'RequestId'])"
v1=$(j 'd["CiphertextBlob"]')
expect_blob "blob layout: format 1, key id, version 1 (big-endian), 33-byte header + tag" "$v1" \
    '(b[0], str(__import__("uuid").UUID(bytes=b[1:17])), int.from_bytes(b[17:21], "big"), len(b))' \
    "(1, '$pay', 1, $((33 + 24 + 16)))"

ctl rotate-key --key-id pay
expect_eq "rotate-key" 'd["KeyVersionId"]' 2
printf 'second secret' >"$CMK_WORK/plain2"
ctl encrypt --key-id pay --plaintext-file "$CMK_WORK/plain2" --encryption-context order-42 \
    --out "$CMK_WORK/v2.bin"
expect_eq "encrypt under v2 (--plaintext-file, text context)" '(d["KeyId"], d["KeyVersionId"])' "('$pay', '2')"
v2=$(j 'd["CiphertextBlob"]')
expect_true "--out writes the blob printed" bash -c '[ "$(base64 -w0 "$1")" = "$2" ]' _ "$CMK_WORK/v2.bin" "$v2"
expect_blob "the v2 blob says version 2" "$v2" 'int.from_bytes(b[17:21], "big")' 2

# Both decrypt: the module picks the version the blob names.
ctl decrypt --ciphertext-blob "$v1" --key-id pay --encryption-context '{"a":"1","b":"2"}'
expect_eq "decrypt v1 with --key-id (context keys in another order)" \
    '(d["Plaintext"], d["KeyId"], d["KeyVersionId"])' "('$secret', '$pay', '1')"
ctl decrypt --ciphertext-blob "$v1" --encryption-context ' { "a" : "1", "b" : "2" } '
expect_eq "decrypt v1 without --key-id: the blob names the key" \
    '(d["Plaintext"], d["KeyId"], d["KeyVersionId"])' "('$secret', '$pay', '1')"
ctl decrypt --ciphertext-blob-file "$CMK_WORK/v2.bin" --encryption-context order-42 --out "$CMK_WORK/plain2.out"
expect_eq "decrypt v2 from a file, without --key-id" '(d["KeyId"], d["KeyVersionId"])' "('$pay', '2')"
expect_true "decrypt --out writes the plaintext" cmp -s "$CMK_WORK/plain2" "$CMK_WORK/plain2.out"
ctl decrypt --ciphertext-blob "$v2" --key-id "$pay" --encryption-context order-42
expect_eq "decrypt v2 with --key-id" "__import__('base64').b64decode(d['Plaintext'])" "b'second secret'"

# AWS's rule: an empty context is no context.
ctl encrypt --key-id pay --plaintext "$secret"
plain=$(j 'd["CiphertextBlob"]')
ctl decrypt --ciphertext-blob "$plain" --encryption-context '{}'
expect_eq "no context and {} are the same" 'd["Plaintext"]' "$secret"

# Wrong context, tampering, truncation, another key: InvalidCiphertext, exit 2.
ctl decrypt --ciphertext-blob "$v1"
expect_error "decrypt without the context" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$v1" --encryption-context '{"a":"1","b":"3"}'
expect_error "decrypt with another context value" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$v1" --encryption-context '{"a":"1"}'
expect_error "decrypt with a context key missing" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$v2" --encryption-context order-43
expect_error "decrypt with another text context" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$plain" --encryption-context x
expect_error "decrypt with a context the blob was not made with" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$(edit "$v2" 'b[40] ^= 1')" --encryption-context order-42
expect_error "a flipped ciphertext bit" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$(edit "$v2" 'b[-1] ^= 0x80')" --encryption-context order-42
expect_error "a flipped tag bit" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$(edit "$v2" 'b[25] ^= 1')" --encryption-context order-42
expect_error "a flipped IV bit" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$(edit "$v2" 'b[17:21] = (1).to_bytes(4, "big")')" --encryption-context order-42
expect_error "the version field changed to another existing version" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$(edit "$v2" 'b[17:21] = (9).to_bytes(4, "big")')" --encryption-context order-42
expect_error "a version the key does not have" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$(edit "$v2" 'b[0] = 2')" --encryption-context order-42
expect_error "an unknown format byte" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$(edit "$v2" 'del b[40:]')" --encryption-context order-42
expect_error "a blob shorter than header and tag" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$(edit "$v2" 'del b[40:]')" --key-id pay --encryption-context order-42
expect_error "a short blob with --key-id" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$(edit "$v2" 'del b[-1]')" --encryption-context order-42
expect_error "a blob missing its last byte" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob AQID
expect_error "3 bytes are no blob" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$v2" --key-id other --encryption-context order-42
expect_error "another key's blob with --key-id" InvalidParameterValue.InvalidCiphertext 2
expect_true "the message names both keys" bash -c 'grep -q "$1" "$3" && grep -q "$2" "$3"' _ "$pay" "$other" "$OUT/err"
ctl decrypt --ciphertext-blob "$(edit "$v2" 'b[1:17] = __import__("uuid").UUID("'"$other"'").bytes')" \
    --encryption-context order-42
expect_error "a blob whose key id was changed to another key" InvalidParameterValue.InvalidCiphertext 2
ctl decrypt --ciphertext-blob "$(edit "$v2" 'b[1:17] = bytes(16)')" --encryption-context order-42
expect_error "a blob naming a key that does not exist" ResourceUnavailable.CmkNotFound 3
ctl decrypt --ciphertext-blob '!!not base64!!'
expect_error "a blob that is not base64" InvalidParameter 2

# Keys that cannot do it, and keys whose state forbids it.
ctl encrypt --key-id web --plaintext "$secret"
expect_error "encrypt with an EC signing key" InvalidParameterValue.InvalidKeyUsage 2
ctl encrypt --key-id mac --plaintext "$secret"
expect_error "encrypt with an HMAC key" InvalidParameterValue.InvalidKeyUsage 2
ctl decrypt --ciphertext-blob "$v2" --key-id web --encryption-context order-42
expect_error "decrypt with an EC key" InvalidParameterValue.InvalidKeyUsage 2
ctl disable-key --key-id pay
ctl encrypt --key-id pay --plaintext "$secret"
expect_error "encrypt with a disabled key" ResourceUnavailable.CmkDisabled 4
ctl decrypt --ciphertext-blob "$v2" --encryption-context order-42
expect_error "decrypt with a disabled key" ResourceUnavailable.CmkDisabled 4
ctl enable-key --key-id pay
ctl decrypt --ciphertext-blob "$v2" --encryption-context order-42
expect_ok "enabled again: decrypts"
ctl schedule-key-deletion --key-id other
ctl encrypt --key-id other --plaintext "$secret"
expect_error "encrypt with a key pending deletion" FailedOperation.CmkStateNotSupported 4

# Bad input, refused before the token is asked.
ctl encrypt --key-id pay
expect_error "encrypt without plaintext" MissingParameter 2
ctl encrypt --key-id pay --plaintext "$secret" --plaintext-file "$CMK_WORK/plain2"
expect_error "two plaintexts" InvalidParameter 2
ctl encrypt --key-id pay --plaintext ''
expect_error "an empty plaintext" InvalidParameter 2
head -c 4097 /dev/zero >"$CMK_WORK/big"
ctl encrypt --key-id pay --plaintext-file "$CMK_WORK/big"
expect_error "4097 bytes are too many" InvalidParameter 2
head -c 4096 /dev/zero >"$CMK_WORK/max"
ctl encrypt --key-id pay --plaintext-file "$CMK_WORK/max"
expect_eq "4096 bytes are fine" 'd["KeyVersionId"]' 2
ctl encrypt --key-id pay --plaintext "$secret" --encryption-context '{"a":'
expect_error "a context that starts like JSON but is not" InvalidParameter 2
ctl encrypt --key-id pay --plaintext "$secret" --encryption-context '{"n":1}'
expect_error "a context value that is not a string" InvalidParameter 2
ctl decrypt
expect_error "decrypt without a blob" MissingParameter 2

# The round trip survives many rotations, in a new process each time.
for _ in 1 2 3; do ctl rotate-key --key-id pay; done
ctl decrypt --ciphertext-blob "$v1" --encryption-context '{"a":"1","b":"2"}'
expect_eq "v1 still decrypts after more rotations" '(d["Plaintext"], d["KeyVersionId"])' "('$secret', '1')"
ctl encrypt --key-id pay --plaintext "$secret"
expect_eq "encrypt uses the new primary" 'd["KeyVersionId"]' 5
# AWS's shorthand for a context is the JSON object it stands for, in any order.
ctl encrypt --key-id pay --plaintext "$secret" --encryption-context purpose=card,tenant=42
sh=$(j 'd["CiphertextBlob"]')
ctl decrypt --ciphertext-blob "$sh" --encryption-context '{"tenant":"42","purpose":"card"}'
expect_eq "k=v,k2=v2 is the JSON object {k:v,k2:v2}" 'd["Plaintext"]' "$secret"
ctl decrypt --ciphertext-blob "$sh" --encryption-context tenant=42,purpose=card
expect_eq "... in any order" 'd["Plaintext"]' "$secret"
ctl decrypt --ciphertext-blob "$sh" --encryption-context purpose=card
expect_error "a context with a pair missing does not decrypt" InvalidParameterValue.InvalidCiphertext 2
finish
