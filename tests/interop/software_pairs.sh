#!/bin/bash
# software_pairs.sh - SOFTWARE key pairs (protection level SOFTWARE: the private key is
# sealed in cmkp11's store and used in-process) seen by plain clients: pkcs11-tool and
# p11tool list them as any key pair, pkcs11-tool reads their public keys and signs with
# them, and plain OpenSSL verifies the signatures (ECDSA P-256, RSA PKCS#1 v1.5 and PSS).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

require_tool pkcs11-tool opensc
require_tool p11tool gnutls-bin
require_tool openssl openssl

P=(pkcs11-tool --module "$CMK_MODULE")
L=(--login --pin "$CMK_PIN")
W=$CMK_WORK
printf 'software pairs sign this\n' >"$W/msg"

# --- CreateKey with protection level SOFTWARE (cmkctl sets the vendor attribute) -----
ctl create-ec create-key --alias soft-ec --key-spec EC_P256 --key-usage SIGN_VERIFY \
    --protection-level SOFTWARE
[ "$RC" -eq 0 ] && pass "cmkctl makes a SOFTWARE EC_P256 pair" || fail "cmkctl create-key EC_P256 SOFTWARE exits $RC"
ctl create-rsa create-key --alias soft-rsa --key-spec RSA_2048 --key-usage SIGN_VERIFY \
    --protection-level SOFTWARE
[ "$RC" -eq 0 ] && pass "cmkctl makes a SOFTWARE RSA_2048 pair" || fail "cmkctl create-key RSA_2048 SOFTWARE exits $RC"

# --- listings -------------------------------------------------------------------------
ok list "${P[@]}" "${L[@]}" -O
block list "^Private Key Object; EC" priv-ec
has priv-ec "label:[[:space:]]+soft-ec" "pkcs11-tool lists the SOFTWARE EC private key"
has priv-ec "Usage:[[:space:]]+sign" "its usage shows sign"
block list "^Public Key Object; EC" pub-ec
has pub-ec "EC_POINT:[[:space:]]+[0-9a-f]{130}" "the EC public key shows its point"
block list "^Public Key Object; RSA 2048 bits" pub-rsa
has pub-rsa "label:[[:space:]]+soft-rsa" "the RSA public key is listed with 2048 bits"
lacks list "cmkp11/master" "the token master key is not listed"
ok p11tool-list env GNUTLS_PIN="$CMK_PIN" p11tool --provider "$CMK_MODULE" --login --list-all \
    "pkcs11:token=$CMK_TOKEN"
has p11tool-list "Label: soft-ec" "p11tool lists the SOFTWARE EC keys"
count_is p11tool-list "Label: soft-rsa" 2 "p11tool lists both halves of the SOFTWARE RSA pair"

# pkcs11-tool --sign picks keys by id: each pair's CKA_ID as listed.
EC_ID=$(awk '/^Private Key Object; EC/ {f=1} f && /ID:/ {print $2; exit}' "$OUT/list")
RSA_ID=$(awk '/^Private Key Object; RSA/ {f=1} f && /ID:/ {print $2; exit}' "$OUT/list")

# --- ECDSA P-256 -------------------------------------------------------------------
ok read-ec "${P[@]}" "${L[@]}" --read-object --type pubkey --label soft-ec -o "$W/ec.der"
check "OpenSSL reads the EC public key" openssl pkey -pubin -inform DER -in "$W/ec.der" -out "$W/ec.pem"
ok sign-ec "${P[@]}" "${L[@]}" --sign --id "$EC_ID" -m ECDSA-SHA256 --signature-format openssl \
    -i "$W/msg" -o "$W/ec.sig"
check "OpenSSL verifies the SOFTWARE ECDSA signature" \
    openssl dgst -sha256 -verify "$W/ec.pem" -signature "$W/ec.sig" "$W/msg"
check_not "a signature over other data does not verify" \
    openssl dgst -sha256 -verify "$W/ec.pem" -signature "$W/ec.sig" "$W/ec.der"

# --- RSA PKCS#1 v1.5 and PSS ------------------------------------------------------
ok read-rsa "${P[@]}" "${L[@]}" --read-object --type pubkey --label soft-rsa -o "$W/rsa.der"
check "OpenSSL reads the RSA public key" openssl pkey -pubin -inform DER -in "$W/rsa.der" -out "$W/rsa.pem"
ok sign-rsa "${P[@]}" "${L[@]}" --sign --id "$RSA_ID" -m SHA256-RSA-PKCS -i "$W/msg" -o "$W/rsa.sig"
check "OpenSSL verifies the SOFTWARE RSA PKCS#1 signature" \
    openssl dgst -sha256 -verify "$W/rsa.pem" -signature "$W/rsa.sig" "$W/msg"
ok sign-pss "${P[@]}" "${L[@]}" --sign --id "$RSA_ID" -m SHA256-RSA-PKCS-PSS --mgf MGF1-SHA256 \
    --salt-len 32 -i "$W/msg" -o "$W/pss.sig"
check "OpenSSL verifies the SOFTWARE RSA-PSS signature" \
    openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
    -verify "$W/rsa.pem" -signature "$W/pss.sig" "$W/msg"
check_not "the PSS signature is not a PKCS#1 v1.5 one" \
    openssl dgst -sha256 -verify "$W/rsa.pem" -signature "$W/pss.sig" "$W/msg"

finish
