#!/bin/bash
# pykcs11.sh - Python's PyKCS11 (Debian's python3-pykcs11, run by /usr/bin/python3: the
# python3 first on PATH may be another one without it) over cmkp11, through
# pykcs11_sign.py: slot found by token label, C_GenerateKeyPair making an EC CMK, the
# private key found by its alias (CKA_LABEL), an ECDSA signature over a SHA-256 digest
# verified by the token and by plain OpenSSL, and the CMK's vendor attributes read,
# searched and written.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c 'import PyKCS11' 2>/dev/null; then
    fail "$PY cannot import PyKCS11 (Debian package python3-pykcs11)"
    finish
fi
require_tool openssl openssl
require_tool sqlite3 sqlite3
note "python3-pykcs11 $(dpkg-query -W -f '${Version}' python3-pykcs11 2>/dev/null || echo '?')"

W=$CMK_WORK
ALIAS=py-ec

ok pykcs11 "$PY" "$(dirname "$0")/pykcs11_sign.py" "$CMK_MODULE" "$CMK_TOKEN" "$CMK_PIN" "$ALIAS" "$W"
has pykcs11 "^library=cmkp11 " "PyKCS11 loaded cmkp11"
has pykcs11 "^slots_with_label=1\$" "one slot has a token labelled $CMK_TOKEN"
has pykcs11 "^token_model=CMK\$" "the token is cmkp11's (model CMK)"
has pykcs11 "^generated=$ALIAS\$" "C_GenerateKeyPair made the pair"
has pykcs11 "^private_keys_by_label=1\$" "one private key found by the alias $ALIAS"
has pykcs11 "^public_keys_by_label=1\$" "one public key found by the alias $ALIAS"
has pykcs11 "^signature_length=64\$" "the CKM_ECDSA signature is 64 bytes (P-256 r||s)"
has pykcs11 "^verify_same=True\$" "the token verifies the signature with the public key"
has pykcs11 "^verify_other=False\$" "the token rejects it for another digest"
has pykcs11 "^key_spec=EC_P256\$" "CKA_CMK_KEY_SPEC of the private key is EC_P256"
has pykcs11 "^public_key_spec=EC_P256\$" "CKA_CMK_KEY_SPEC of the public key is EC_P256"
has pykcs11 "^key_state=1\$" "CKA_CMK_KEY_STATE is 1 (Enabled)"
has pykcs11 "^key_usage=2\$" "CKA_CMK_KEY_USAGE is 2 (SIGN_VERIFY)"
has pykcs11 "^key_id=[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\$" "CKA_CMK_KEY_ID is a UUID v4"
has pykcs11 "^arn=arn:cmkp11:$CMK_TOKEN:key/[0-9a-f-]{36}\$" "CKA_CMK_ARN names the token and key"
has pykcs11 "^found_by_key_spec=1\$" "a find by CKA_CMK_KEY_SPEC=EC_P256 finds one private key"
has pykcs11 "^found_by_key_spec_is_alias=True\$" "and it is the key found by the alias"
has pykcs11 "^description=signed from PyKCS11\$" "CKA_CMK_DESCRIPTION is written and read back"
has pykcs11 "^done=yes\$" "the script ran to its end"

KEY_ID=$(sed -n 's/^key_id=//p' "$OUT/pykcs11")
ok store sqlite3 "$W/cmk.db" "select cast(label as text) || '|' || key_spec || '|' || state || '|' || key_id || '|' || description from cmk"
has store "^$ALIAS\|EC_P256\|1\|${KEY_ID:-none}\|signed from PyKCS11\$" \
    "the store holds CMK $ALIAS (EC_P256, Enabled, the key id and description read through PyKCS11)"
count_is store "." 1 "exactly one CMK"

check "plain OpenSSL verifies the PyKCS11 signature with the token's public key" \
    openssl dgst -sha256 -verify "$W/py.pub.der" -keyform DER -signature "$W/py.sig.der" "$W/py.msg"
printf 'another message\n' >"$W/py.other"
check_not "plain OpenSSL rejects it over another message" \
    openssl dgst -sha256 -verify "$W/py.pub.der" -keyform DER -signature "$W/py.sig.der" "$W/py.other"

finish
