#!/bin/bash
# java.sh - OpenJDK's SunPKCS11 provider (keytool) over cmkp11: the token as a PKCS11
# keystore, keytool -genkeypair making a CMK, its self-signed certificate stored on the
# token, a certificate request signed through Java, and keytool -delete scheduling the
# CMK's deletion.
#
# What SunPKCS11 (OpenJDK 17) sends, seen with pkcs11-spy:
#  - the config needs slotListIndex (an index into C_GetSlotList), not `slot` (a slot id,
#    which differs from module to module and behind p11-kit);
#  - KeyPairGenerator makes a SESSION pair (CKA_TOKEN absent) and KeyStore.setEntry turns
#    the private key into a token object with C_CopyObject {CKA_TOKEN=TRUE, CKA_ID=alias},
#    so with a plain configuration no C_GenerateKeyPair with CKA_TOKEN=TRUE happens. With
#    `attributes(generate, *, *) = { CKA_TOKEN = true }` Java generates on the token (a
#    CMK) and sets CKA_ID=alias with C_SetAttributeValue;
#  - the alias is the key's CKA_ID and the certificate's CKA_LABEL: Java sets no
#    CKA_LABEL on keys, so the CMK has no alias;
#  - the certificate is stored with C_CreateObject (CKO_CERTIFICATE, CKA_TOKEN=TRUE).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

require_tool keytool openjdk-17-jre-headless
require_tool pkcs11-tool opensc
require_tool openssl openssl
require_tool sqlite3 sqlite3

W=$CMK_WORK
P=(pkcs11-tool --module "$CMK_MODULE" --login --pin "$CMK_PIN")

cat >"$W/java-plain.cfg" <<CFG
name = cmkp11
library = $CMK_MODULE
slotListIndex = 0
CFG
cat >"$W/java-token.cfg" <<CFG
name = cmkp11
library = $CMK_MODULE
slotListIndex = 0
attributes(generate, *, *) = {
  CKA_TOKEN = true
}
CFG
# A small, quiet JVM that writes nothing outside $CMK_WORK (no /tmp/hsperfdata_*).
JVM=(-J-XX:-UsePerfData -J-Xmx256m -J-XX:TieredStopAtLevel=1 -J-Duser.home="$W")
ks() { # ks CONFIG: keytool on the token as a PKCS11 keystore
    printf '%s\n' keytool "${JVM[@]}" -keystore NONE -storetype PKCS11 \
        -providerClass sun.security.pkcs11.SunPKCS11 -providerArg "$W/java-$1.cfg" -storepass "$CMK_PIN"
}
mapfile -t KP < <(ks plain)
mapfile -t KT < <(ks token)

# --- the token as a keystore ---------------------------------------------------------------
ok list-empty "${KP[@]}" -list
has list-empty "^Keystore provider: SunPKCS11-cmkp11\$" "the SunPKCS11 provider is configured for cmkp11"
has list-empty "^Your keystore contains 0 entries\$" "the new token holds no entries"

# --- keytool -genkeypair generating on the token: a CMK ------------------------------------
JK=javakey
JK_HEX=$(hexof "$JK")
ok genkeypair "${KT[@]}" -genkeypair -alias "$JK" -keyalg EC -groupname secp256r1 -dname CN=java -validity 2
store store-genkeypair "select cast(label as text) || '|' || key_spec || '|' || state || '|' || hex(cka_id) from cmk"
has store-genkeypair "^\|EC_P256\|1\|$(hexof "$JK" | tr a-f A-F)\$" \
    "the store holds an EC_P256 CMK, Enabled, with CKA_ID \"$JK\" (set by Java after generation)"
count_is store-genkeypair "." 1 "exactly one CMK"
ok list-objects "${P[@]}" -O
block list-objects "^Private Key Object; EC" priv
has priv "^[[:space:]]*ID:[[:space:]]+$JK_HEX\$" "the private key's CKA_ID is \"$JK\""
# Flags Java leaves out are the backend's defaults, as on SoftHSMv2 alone (README, Key usage).
has priv "^[[:space:]]*Usage:.*[[:space:]]sign(,|\$)" "the private key signs (an EC CMK)"
has priv "^[[:space:]]*Access:[[:space:]]+sensitive, always sensitive, never extractable" "the private key is CMK material"
count_is list-objects "^Private Key Object" 1 "one private key on the token"
block list-objects "^Certificate Object" cert-obj
has cert-obj "^[[:space:]]*label:[[:space:]]+$JK\$" "Java stored the certificate labelled $JK"
has cert-obj "^[[:space:]]*ID:[[:space:]]+$JK_HEX\$" "with the key's CKA_ID"
lacks list-objects "label:[[:space:]]+cmkp11/" "no backend material label (cmkp11/...) is shown"

ok list-one "${KT[@]}" -list
has list-one "^Your keystore contains 1 entry\$" "the keystore holds one entry"
has list-one "^$JK, PrivateKeyEntry, ?\$" "$JK is a PrivateKeyEntry"

ok exportcert "${KT[@]}" -exportcert -alias "$JK" -rfc -file "$W/java.pem"
ok cert-text openssl x509 -in "$W/java.pem" -noout -text
has cert-text "^[[:space:]]*Subject: CN ?= ?java\$" "the certificate's subject is CN=java"
has cert-text "Signature Algorithm: ecdsa-with-SHA256" "signed with ecdsa-with-SHA256"
check "the certificate's self-signature (made by the token key) verifies" \
    openssl verify -CAfile "$W/java.pem" "$W/java.pem"
# Java gives the private key and the certificate the alias as CKA_ID; the public key
# keeps the id it was made with (each object keeps its own, as on the backend alone).
block list-objects "^Public Key Object" pub-obj
PUB_HEX=$(sed -n 's/^[[:space:]]*ID:[[:space:]]*//p' "$OUT/pub-obj" | head -n1)
ok read-pub "${P[@]}" --read-object --type pubkey --id "$PUB_HEX" -o "$W/java.pub.der"
openssl x509 -in "$W/java.pem" -noout -pubkey >"$W/java-cert.pub.pem" || true
pub_to_der "$W/java-cert.pub.pem" "$W/java-cert.pub.der" || true
check "the certificate's public key is the CMK's" cmp "$W/java.pub.der" "$W/java-cert.pub.der"

# A signature made through Java's Signature API with the token key.
ok certreq "${KT[@]}" -certreq -alias "$JK" -file "$W/java.csr"
ok csr-verify openssl req -in "$W/java.csr" -verify -noout -subject
has csr-verify "self-signature verify OK" "the certificate request Java signed with the CMK verifies"
openssl req -in "$W/java.csr" -noout -pubkey >"$W/java-csr.pub.pem" || true
pub_to_der "$W/java-csr.pub.pem" "$W/java-csr.pub.der" || true
check "the request's public key is the CMK's" cmp "$W/java.pub.der" "$W/java-csr.pub.der"

# --- keytool -delete: the CMK is scheduled for deletion ------------------------------------
ok delete "${KT[@]}" -delete -alias "$JK"
ok list-after-delete "${KT[@]}" -list
has list-after-delete "^Your keystore contains 0 entries\$" "the keystore is empty again"
store store-after-delete "select key_spec || '|' || state from cmk where cka_id = x'$JK_HEX'"
has store-after-delete "^EC_P256\|3\$" "the CMK is PendingDeletion (3), not gone"

# --- keytool -genkeypair with a plain configuration -------------------------------------------
# Java makes a session pair and copies the private key to the token (C_CopyObject with
# CKA_TOKEN=TRUE). A token key must be a CMK, and README promises what the module does:
# a copy of a key the HSM generated (CKA_LOCAL) becomes a CMK of origin KMS. A refusal, or
# a plain backend key on the token outside the store, fails.
JC=javacopy
JC_HEX=$(hexof "$JC")
ok genkeypair-plain "${KP[@]}" -genkeypair -alias "$JC" -keyalg EC -groupname secp256r1 -dname CN=javacopy -validity 2
ok list-objects-plain "${P[@]}" -O
ok list-priv-plain "${P[@]}" -O --type privkey --id "$JC_HEX"
count_is list-priv-plain "^Private Key Object" 1 "keytool left one token private key with CKA_ID \"$JC\""
store store-plain "select key_spec || '|' || state || '|' || origin from cmk where cka_id = x'$JC_HEX'"
has store-plain "^EC_P256\|1\|1\$" "the token key keytool copied from a session key is a CMK in the store (EC_P256, Enabled, origin KMS)"
# (not "always sensitive": the session key it was copied from need not have been)
has list-priv-plain "^[[:space:]]*Access:[[:space:]]+sensitive,.*never extractable" \
    "the copied token key is sensitive and never extractable, like CMK material"
# The copy keeps the usage flags of the session key it was copied from, as C_CopyObject
# does on the backend (README, "Key usage"): SunPKCS11's EC key signs.
has list-priv-plain "^[[:space:]]*Usage:[[:space:]]+.*sign" "the copied token key signs"
enabled=$(sqlite3 "$W/cmk.db" "select count(*) from cmk where state = 1" || echo -1)
count_is list-objects-plain "^Private Key Object" "$enabled" "every private key on the token is an Enabled CMK ($enabled in the store)"

finish
