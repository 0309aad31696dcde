#!/bin/bash
# pkcs11_tool.sh - OpenSC's pkcs11-tool against cmkp11: token and mechanism listing,
# CreateKey through --keygen/--keypairgen, listing without the backend material,
# ECDSA and RSA signatures checked by plain OpenSSL, AES round trips, the one-usage
# rule, scheduled deletion, and pkcs11-tool's own self test.
#
# Note on pkcs11-tool 0.23 (Debian 12): --sign, --verify, --encrypt, --decrypt and
# --derive pick the key by --id only and ignore --label (they take the first key of
# the class), so those steps name keys by id. --read-object and --delete-object do
# honour --label.
#
# With CMK_INTEROP_PROXY=1 (CTest interop_pkcs11_tool_proxy) every call to cmkp11 goes
# through p11-kit-proxy.so with cmkp11 registered in a private p11-kit configuration
# (lib.sh's p11kit_setup); the backend checks still load SoftHSMv2 directly.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

require_tool pkcs11-tool opensc
require_tool openssl openssl

if [ -n "${CMK_INTEROP_PROXY:-}" ]; then
    p11kit_setup
    P=("${AS[@]}" pkcs11-tool --module "$PROXY")
else
    P=(pkcs11-tool --module "$CMK_MODULE")
fi
L=(--login --pin "$CMK_PIN")
W=$CMK_WORK
AES=interop-aes
EC=interop-ec
RSA=interop-rsa

# --- token and mechanisms ---------------------------------------------------------
ok list-slots "${P[@]}" -L
has list-slots "^[[:space:]]*token label[[:space:]]*: ${CMK_TOKEN}[[:space:]]*\$" "token label is $CMK_TOKEN"
count_is list-slots "token label" 1 "exactly one token (the backend token is not shown beside it)"

ok list-mechs "${P[@]}" -M
has list-mechs "^[[:space:]]*AES-GCM," "AES-GCM is listed"
has list-mechs "^[[:space:]]*ECDSA," "ECDSA is listed"
has list-mechs "^[[:space:]]*SHA256-RSA-PKCS," "SHA256-RSA-PKCS is listed"
has list-mechs "^[[:space:]]*AES-KEY-GEN," "AES-KEY-GEN is listed"
has list-mechs "^[[:space:]]*ECDSA-KEY-PAIR-GEN," "ECDSA-KEY-PAIR-GEN is listed"

# --- CreateKey through pkcs11-tool's default templates ----------------------------
ok keygen-aes "${P[@]}" "${L[@]}" --keygen --key-type AES:32 --label "$AES"
has keygen-aes "^[[:space:]]*label:[[:space:]]+$AES\$" "the AES key has label $AES"
ok keypairgen-ec "${P[@]}" "${L[@]}" --keypairgen --key-type EC:prime256v1 --label "$EC" --id 01
ok keypairgen-rsa "${P[@]}" "${L[@]}" --keypairgen --key-type RSA:2048 --label "$RSA" --id 02
# pkcs11-tool asks an RSA pair for both decrypt and sign: under the default
# usage_conflict = honour the key gets both, as on the backend (README, "Key usage").
check_not "no usage conflict is logged for the RSA pair" \
    grep -q "the template asks both encrypt and sign" "$W/cmkp11.log"

# --- listing: each key once, no backend material ----------------------------------
ok list-objects "${P[@]}" "${L[@]}" -O
count_is list-objects "^Secret Key Object; AES length 32" 1 "one AES secret key"
count_is list-objects "^Private Key Object; EC" 1 "one EC private key"
count_is list-objects "^Public Key Object; EC" 1 "one EC public key"
count_is list-objects "^Private Key Object; RSA" 1 "one RSA private key"
count_is list-objects "^Public Key Object; RSA 2048 bits" 1 "one RSA-2048 public key"
count_is list-objects "^(Secret|Private|Public) Key Object" 5 "five objects in all"
count_is list-objects "^[[:space:]]*label:[[:space:]]+$AES\$" 1 "label $AES once"
count_is list-objects "^[[:space:]]*label:[[:space:]]+$EC\$" 2 "label $EC twice (private and public)"
count_is list-objects "^[[:space:]]*label:[[:space:]]+$RSA\$" 2 "label $RSA twice (private and public)"
lacks list-objects "label:[[:space:]]+cmkp11/" "no backend material label (cmkp11/...) is shown"
count_is list-objects "^[[:space:]]*ID:[[:space:]]+01\$" 2 "the EC pair shares the id 01 given"
count_is list-objects "^[[:space:]]*ID:[[:space:]]+02\$" 2 "the RSA pair shares the id 02 given"
# Without --id the CKA_ID is the 16 bytes of the key id, a UUID v4.
has list-objects "^[[:space:]]*ID:[[:space:]]+[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}\$" \
    "the AES key's default id is 16 bytes of a UUID v4"
has list-objects "^[[:space:]]*Access:[[:space:]]+sensitive, always sensitive, never extractable" \
    "material is sensitive and never extractable"
lacks list-objects "Access:[[:space:]]+(.*, )?extractable(,|\$)" "no key is extractable"
AES_ID=$(awk -v l="$AES" '/^Secret Key Object/ {s = 1} s && $1 == "label:" && $2 != l {s = 0}
    s && $1 == "ID:" {print $2; exit}' "$OUT/list-objects")
note "AES key id: ${AES_ID:-none}"
[ -n "$AES_ID" ] || fail "could not read the AES key's ID from the listing"

# The backend material exists (with its internal labels) on the backend token itself:
# proof that the check above is about hiding, not about absence.
ok backend-objects pkcs11-tool --module "$CMK_BACKEND" --token-label "$CMK_BACKEND_TOKEN" "${L[@]}" -O
count_is backend-objects "^[[:space:]]*label:[[:space:]]+cmkp11/" 5 "the backend holds 5 material objects labelled cmkp11/..."

# Private keys are CKA_PRIVATE: before login they are not visible. pkcs11-tool makes its
# AES key with CKA_PRIVATE=FALSE (its default), which cmkp11 keeps as the backend does
# ([policy] non_private_keys = allow): that key shows beside the two public keys.
ok list-public "${P[@]}" -O
count_is list-public "^Public Key Object" 2 "two public keys without login"
count_is list-public "^Secret Key Object" 1 "the AES key pkcs11-tool made public, without login"
lacks list-public "^Private Key Object" "no private key without login"

# --- public keys read out, for plain OpenSSL --------------------------------------
ok read-ec-pub "${P[@]}" --read-object --type pubkey --label "$EC" -o "$W/ec.pub.der"
check "the EC public key is a P-256 SubjectPublicKeyInfo" \
    bash -c "openssl pkey -pubin -inform DER -in '$W/ec.pub.der' -text -noout | grep -q 'NIST CURVE: P-256'"
ok read-rsa-pub "${P[@]}" --read-object --type pubkey --label "$RSA" -o "$W/rsa.pub.der"
check "the RSA public key is 2048 bits" \
    bash -c "openssl pkey -pubin -inform DER -in '$W/rsa.pub.der' -text -noout | grep -Eq 'Public-Key: \\(2048 bit\\)'"
openssl pkey -pubin -inform DER -in "$W/ec.pub.der" -out "$W/ec.pub.pem" || fail "cannot convert the EC public key"
openssl pkey -pubin -inform DER -in "$W/rsa.pub.der" -out "$W/rsa.pub.pem" || fail "cannot convert the RSA public key"

# --- ECDSA ----------------------------------------------------------------------------
# SoftHSMv2 2.6 has no ECDSA-SHA256, so the token signs a SHA-256 digest with ECDSA.
printf 'cmkp11 interop message\n' >"$W/msg"
cp "$W/msg" "$W/msg.bad" && printf 'x' >>"$W/msg.bad"
openssl dgst -sha256 -binary "$W/msg" >"$W/msg.sha256"
ok sign-ecdsa "${P[@]}" "${L[@]}" --sign -m ECDSA --id 01 -f openssl -i "$W/msg.sha256" -o "$W/ec.sig"
check "OpenSSL verifies the token's ECDSA signature" \
    openssl dgst -sha256 -verify "$W/ec.pub.pem" -signature "$W/ec.sig" "$W/msg"
check_not "OpenSSL rejects that signature over another message" \
    openssl dgst -sha256 -verify "$W/ec.pub.pem" -signature "$W/ec.sig" "$W/msg.bad"
ok verify-ecdsa "${P[@]}" "${L[@]}" --verify -m ECDSA --id 01 -f openssl \
    -i "$W/msg.sha256" --signature-file "$W/ec.sig"
has verify-ecdsa "^Signature is valid" "the token verifies its ECDSA signature"
openssl dgst -sha256 -binary "$W/msg.bad" >"$W/msg.bad.sha256"
run verify-ecdsa-bad "${P[@]}" "${L[@]}" --verify -m ECDSA --id 01 -f openssl \
    -i "$W/msg.bad.sha256" --signature-file "$W/ec.sig"
has verify-ecdsa-bad "^Invalid signature" "the token rejects it over another digest"

# --- RSA PKCS#1 v1.5 with SHA-256 -------------------------------------------------
# A short input goes through C_Sign; one over pkcs11-tool's 1025-byte buffer through
# C_SignUpdate/C_SignFinal.
ok sign-rsa "${P[@]}" "${L[@]}" --sign -m SHA256-RSA-PKCS --id 02 -i "$W/msg" -o "$W/rsa.sig"
check "OpenSSL verifies the token's SHA256-RSA-PKCS signature" \
    openssl dgst -sha256 -verify "$W/rsa.pub.pem" -signature "$W/rsa.sig" "$W/msg"
check_not "OpenSSL rejects it over another message" \
    openssl dgst -sha256 -verify "$W/rsa.pub.pem" -signature "$W/rsa.sig" "$W/msg.bad"
head -c 3000 /dev/urandom >"$W/big"
ok sign-rsa-multipart "${P[@]}" "${L[@]}" --sign -m SHA256-RSA-PKCS --id 02 -i "$W/big" -o "$W/rsa-big.sig"
check "OpenSSL verifies the multi-part SHA256-RSA-PKCS signature" \
    openssl dgst -sha256 -verify "$W/rsa.pub.pem" -signature "$W/rsa-big.sig" "$W/big"
ok verify-rsa "${P[@]}" "${L[@]}" --verify -m SHA256-RSA-PKCS --id 02 -i "$W/msg" --signature-file "$W/rsa.sig"
has verify-rsa "^Signature is valid" "the token verifies its RSA signature"

# --- AES-CBC-PAD round trips ----------------------------------------------------------
# pkcs11-tool has --iv since OpenSC 0.22 (Debian 12 ships 0.23): without it the round trip
# cannot be made, which is a failure of the machine, not a reason to skip. (--help exits
# non-zero, so it is run, not piped, under pipefail.)
run tool-help pkcs11-tool --help
has tool-help "--iv " "this pkcs11-tool has --iv (OpenSC 0.22 or later)"
IV=000102030405060708090a0b0c0d0e0f
head -c 100 /dev/urandom >"$W/plain.small"
head -c 3000 /dev/urandom >"$W/plain.big" # over 1024 bytes: C_EncryptUpdate/Final
for size in small big; do
    ok "encrypt-$size" "${P[@]}" "${L[@]}" --encrypt -m AES-CBC-PAD --iv "$IV" --id "$AES_ID" \
        -i "$W/plain.$size" -o "$W/ct.$size"
    ok "decrypt-$size" "${P[@]}" "${L[@]}" --decrypt -m AES-CBC-PAD --iv "$IV" --id "$AES_ID" \
        -i "$W/ct.$size" -o "$W/back.$size"
    check "AES-CBC-PAD round trip ($size) gives the plaintext back" cmp "$W/plain.$size" "$W/back.$size"
    differ "the ciphertext ($size) is not the plaintext" "$W/plain.$size" "$W/ct.$size"
done
check "100 bytes encrypt to 112 (PKCS#7 padding)" test "$(stat -c %s "$W/ct.small" 2>/dev/null || echo 0)" -eq 112
check "3000 bytes encrypt to 3008" test "$(stat -c %s "$W/ct.big" 2>/dev/null || echo 0)" -eq 3008
# Not vacuous: the same plaintext under another IV gives another ciphertext.
ok encrypt-other-iv "${P[@]}" "${L[@]}" --encrypt -m AES-CBC-PAD --iv 0f0e0d0c0b0a09080706050403020100 \
    --id "$AES_ID" -i "$W/plain.small" -o "$W/ct.small.iv2"
differ "another IV gives another ciphertext (the IV is used)" "$W/ct.small" "$W/ct.small.iv2"

# --- the usages pkcs11-tool asks for (issue 17 items 2, 3) ----------------------------
# The RSA pair decrypts what OpenSSL encrypts to its public key (PKCS#1 v1.5 and OAEP).
head -c 32 /dev/urandom >"$W/rand32"
check "OpenSSL encrypts to the RSA public key (PKCS#1)" openssl pkeyutl -encrypt -pubin \
    -keyform DER -inkey "$W/rsa.pub.der" -in "$W/rand32" -out "$W/rsa.ct"
ok decrypt-rsa "${P[@]}" "${L[@]}" --decrypt -m RSA-PKCS --id 02 -i "$W/rsa.ct" -o "$W/rsa.dec"
check "the token key decrypts it (PKCS#1)" cmp "$W/rand32" "$W/rsa.dec"
check "OpenSSL encrypts to the RSA public key (OAEP)" openssl pkeyutl -encrypt -pubin \
    -keyform DER -inkey "$W/rsa.pub.der" -pkeyopt rsa_padding_mode:oaep -in "$W/rand32" \
    -out "$W/rsa.oaep"
ok decrypt-rsa-oaep "${P[@]}" "${L[@]}" --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA-1 \
    --mgf MGF1-SHA1 --id 02 -i "$W/rsa.oaep" -o "$W/rsa.oaep.dec"
check "the token key decrypts it (OAEP)" cmp "$W/rand32" "$W/rsa.oaep.dec"
block list-objects "^Private Key Object; RSA" rsa-priv
# (Flags pkcs11-tool leaves out are SoftHSMv2's defaults, as on the backend alone: unwrap.)
has rsa-priv "^[[:space:]]*Usage:[[:space:]]+decrypt, sign(,|\$)" "the RSA private key decrypts and signs"
# pkcs11-tool asks EC keys for CKA_DERIVE too: ECDH gives the secret OpenSSL computes.
block list-objects "^Private Key Object; EC" ec-priv
has ec-priv "^[[:space:]]*Usage:.*[[:space:]]sign,.*[[:space:]]derive\$" "the EC private key signs and derives"
openssl ecparam -name prime256v1 -genkey -noout -out "$W/peer.key"
openssl pkey -in "$W/peer.key" -pubout -outform DER -out "$W/peer.pub.der"
ok derive-ecdh "${P[@]}" "${L[@]}" --derive -m ECDH1-DERIVE --id 01 -i "$W/peer.pub.der" \
    -o "$W/shared"
check "OpenSSL derives from the peer's side" openssl pkeyutl -derive -inkey "$W/peer.key" \
    -peerkey "$W/ec.pub.der" -keyform PEM -peerform DER -out "$W/shared.openssl"
check "both sides hold the same shared secret" cmp "$W/shared" "$W/shared.openssl"
# cmkctl reads the usages as the primary one, then the others (README, "Key usage").
# (The run through p11-kit-proxy.so has no CMKCTL: cmkctl talks to cmkp11 itself.)
if [ -n "${CMKCTL:-}" ]; then
    ctl describe-rsa describe-key --key-id "$RSA"
    json_is describe-rsa 'd["KeyMetadata"]["KeyUsage"]' SIGN_VERIFY+ENCRYPT_DECRYPT \
        "cmkctl describes the RSA pair as SIGN_VERIFY+ENCRYPT_DECRYPT"
    ctl describe-ec describe-key --key-id "$EC"
    json_is describe-ec 'd["KeyMetadata"]["KeyUsage"]' SIGN_VERIFY+KEY_AGREEMENT \
        "cmkctl describes the EC pair as SIGN_VERIFY+KEY_AGREEMENT"
fi

# --- scheduled deletion ---------------------------------------------------------------
ok delete-ec "${P[@]}" "${L[@]}" --delete-object --type privkey --label "$EC"
ok list-after-delete "${P[@]}" "${L[@]}" -O
lacks list-after-delete "^Private Key Object; EC" "the EC private key is no longer listed"
count_is list-after-delete "^Secret Key Object; AES" 1 "the AES key is still listed"
count_is list-after-delete "^[[:space:]]*label:[[:space:]]+$RSA\$" 2 "the RSA pair is still listed"
lacks list-after-delete "label:[[:space:]]+cmkp11/" "still no backend material label"
# The deleted EC key no longer signs: pkcs11-tool no longer finds it (not some other error).
refused sign-after-delete "Private key not found" \
    "${P[@]}" "${L[@]}" --sign -m ECDSA --id 01 -i "$W/msg.sha256" -o "$W/ec2.sig"
# The module schedules deletion: the material stays on the backend for the window.
ok backend-after-delete pkcs11-tool --module "$CMK_BACKEND" --token-label "$CMK_BACKEND_TOKEN" "${L[@]}" -O
count_is backend-after-delete "^[[:space:]]*label:[[:space:]]+cmkp11/" 5 "the material is kept during the pending window"

# --- pkcs11-tool's own test -------------------------------------------------------------
# The RSA key now decrypts, so the self-test tries decryption too, and its OAEP
# parameters are refused by SoftHSMv2 itself (CKR_ARGUMENTS_BAD at C_DecryptInit): the
# same test on the backend token directly, whose keys are the CMKs' material, must report
# the same errors and no other.
run self-test "${P[@]}" --test --login --pin "$CMK_PIN"
run self-test-backend pkcs11-tool --module "$CMK_BACKEND" --token-label "$CMK_BACKEND_TOKEN" \
    --test --login --pin "$CMK_PIN"
grep '^error:' "$OUT/self-test" | sort -u >"$W/self-test.errors"
grep '^error:' "$OUT/self-test-backend" | sort -u >"$W/self-test-backend.errors"
check "pkcs11-tool --test reports the errors it reports on SoftHSMv2 alone" \
    cmp "$W/self-test.errors" "$W/self-test-backend.errors"
lacks self-test "^error: .*(KEY_FUNCTION_NOT_PERMITTED|TEMPLATE_INCONSISTENT)" \
    "pkcs11-tool --test meets no usage refusal of cmkp11's"

finish
