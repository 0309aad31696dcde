#!/bin/bash
# shellcheck disable=SC2016 # conditions run as bash -c with their values as $1...
# test_doctor.sh - doctor compares the backend token's material with the store: material
# removed behind the module's back, and backend objects named like cmkp11's material that
# belong to no key version, are both reported, and doctor then exits 1. The backend objects
# cmkp11 keeps beside key material (the token master key of SOFTWARE keys, an import's
# wrapping pair, the import token key) are healthy while they serve a key; SOFTWARE keys
# have no backend material, their versions are checked for their sealed row in the store.
. "$(dirname "$0")/lib.sh"

if ! command -v pkcs11-tool >/dev/null; then
    fail "pkcs11-tool is not installed (Debian package opensc): the backend cannot be changed"
    finish
fi
# The backend token itself, as an administrator would reach it: SoftHSMv2 directly.
BE=(pkcs11-tool --module "$CMK_BACKEND" --token-label "$CMK_BACKEND_TOKEN" --login --pin "$CMK_PIN")
backend() { # backend NAME ARGS...: pkcs11-tool on the backend token, output in $OUT/NAME
    local name=$1
    shift
    RC=0
    timeout 60 "${BE[@]}" "$@" >"$OUT/$name" 2>&1 </dev/null || RC=$?
}

create aes # rotated below: versions 1 and 2
aes=$ID
create ec --key-spec EC_P256
ec=$ID
create doomed # pending deletion: its material must still be there
doomed=$ID
create off
create soft --protection-level SOFTWARE # rotated below: sealed versions 1 and 2
soft=$ID
create byok --origin EXTERNAL # with import parameters outstanding
byok=$ID
ctl rotate-key --key-id aes
expect_eq "aes is at version 2" 'd["KeyVersionId"]' 2
ctl rotate-key --key-id soft
expect_eq "soft is at version 2" 'd["KeyVersionId"]' 2
ctl get-parameters-for-import --key-id byok --wrapping-algorithm RSAES_OAEP_SHA_1 \
    --wrapping-key-spec RSA_2048
expect_ok "get-parameters-for-import on byok"
ctl schedule-key-deletion --key-id doomed --pending-window-in-days 7
ctl disable-key --key-id off

# --- consistent ---------------------------------------------------------------------------
ctl doctor
expect_ok "doctor on a consistent token: exit 0"
expect_eq "the material check is ok" '[c["Status"] for c in d["Checks"] if c["Check"] == "material"]' "['ok']"
expect_eq "nothing missing, nothing stray" \
    '(d["MissingMaterial"], d["MissingSealedMaterial"], d["StrayMaterial"])' "([], [], [])"
# aes v1 and v2, the EC pair, doomed and off: 6 objects of key versions; the master key,
# byok's wrapping pair and the import token key: 4 more objects named cmkp11/...
expect_eq "ten backend objects carry cmkp11's names" 'd["BackendObjects"]' 10

# The names cmkp11 gives material in the backend, as the test relies on them below.
backend list-before -O
expect_true "the backend labels aes's versions cmkp11/<key id>/v1 and /v2" bash -c \
    'grep -Eq "label: +cmkp11/$1/v1\$" "$2" && grep -Eq "label: +cmkp11/$1/v2\$" "$2"' _ "$aes" "$OUT/list-before"

# --- a version's usage flags changed with the backend's own tools -------------------------
# set_flag MODULE TOKEN LABEL ATTRIBUTE VALUE: PyKCS11 sets one boolean attribute on the
# secret key with that label, here SoftHSMv2's own object of a key version.
set_flag() {
    RC=0
    "$PY" - "$@" >"$OUT/set-flag" 2>&1 <<'PYEOF' || RC=$?
import os, sys, PyKCS11
module, token, label, attr, value = sys.argv[1:]
lib = PyKCS11.PyKCS11Lib()
lib.load(module)
slot = next(s for s in lib.getSlotList(tokenPresent=True)
            if lib.getTokenInfo(s).label.strip() == token)
session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
session.login(os.environ["CMK_PIN"])
key = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_LABEL, label)])
assert len(key) == 1, "found %d keys labelled %s" % (len(key), label)
session.setAttributeValue(key[0], [(getattr(PyKCS11, attr), value == "true")])
PYEOF
}
set_flag "$CMK_BACKEND" "$CMK_BACKEND_TOKEN" "cmkp11/$aes/v1" CKA_ENCRYPT false
expect_true "PyKCS11 turns CKA_ENCRYPT off on aes's version 1 in the backend" [ "$RC" -eq 0 ]
ctl doctor
expect_ok "doctor with differing version flags: a warning, exit 0"
expect_eq "the version-flags check warns" \
    '[c["Status"] for c in d["Checks"] if c["Check"] == "version-flags"]' "['warning']"
expect_eq "VersionFlagsDiffer names aes's version 1 and CKA_ENCRYPT" \
    '[(v["KeyId"], v["KeyVersion"], v["PrimaryVersion"], v["Differs"]) for v in d["VersionFlagsDiffer"]]' \
    "[('$aes', 1, 2, ['CKA_ENCRYPT'])]"
# Put back the same way. (Setting it on the key through cmkp11 reaches every version, as
# test_rotation shows; PyKCS11 cannot load the module of a sanitizer build.)
set_flag "$CMK_BACKEND" "$CMK_BACKEND_TOKEN" "cmkp11/$aes/v1" CKA_ENCRYPT true
expect_true "PyKCS11 turns CKA_ENCRYPT on again on aes's version 1" [ "$RC" -eq 0 ]
ctl doctor
expect_eq "the versions agree again" \
    '([c["Status"] for c in d["Checks"] if c["Check"] == "version-flags"], d["VersionFlagsDiffer"])' "(['ok'], [])"

# --- material removed with the backend's own tools -----------------------------------------
backend delete-aes-v2 --delete-object --type secrkey --label "cmkp11/$aes/v2"
expect_true "pkcs11-tool deletes aes's version 2 on the backend" [ "$RC" -eq 0 ]
backend delete-ec-private --delete-object --type privkey --label "cmkp11/$ec/v1"
expect_true "pkcs11-tool deletes ec's private key on the backend" [ "$RC" -eq 0 ]
backend delete-doomed --delete-object --type secrkey --label "cmkp11/$doomed/v1"
expect_true "pkcs11-tool deletes the material of the key pending deletion" [ "$RC" -eq 0 ]
ctl doctor
expect_true "doctor with material missing: exit 1" [ "$RC" -eq 1 ]
expect_eq "unhealthy, the material check fails" \
    '(d["Healthy"], [c["Status"] for c in d["Checks"] if c["Check"] == "material"])' "(False, ['error'])"
expect_eq "MissingMaterial names exactly the three objects removed" \
    'sorted((m["KeyId"], m["Alias"], m["KeyState"], m["KeyVersionId"], m["Object"]) for m in d["MissingMaterial"])' \
    "$("$PY" -c 'import sys; a, e, p = sys.argv[1:]; print(sorted([(a, "aes", "Enabled", "2", "SecretKey"), (e, "ec", "Enabled", "1", "PrivateKey"), (p, "doomed", "PendingDeletion", "1", "SecretKey")]))' "$aes" "$ec" "$doomed")"
expect_eq "nothing stray yet" 'd["StrayMaterial"]' "[]"
expect_eq "no SOFTWARE version is missing its sealed row" 'd["MissingSealedMaterial"]' "[]"
ctl doctor --output table
expect_true "doctor --output table: unhealthy, exit 1" bash -c \
    '[ "$1" -eq 1 ] && grep -Eq "^Healthy +false$" "$2"' _ "$RC" "$OUT/out"

# --- objects named like material that belong to no key version ----------------------------
ghost=$("$PY" -c 'import uuid; print(uuid.uuid4())')
backend stray-ghost --keygen --key-type AES:16 --label "cmkp11/$ghost/v1"
expect_true "a backend key labelled cmkp11/<unknown key id>/v1 is made" [ "$RC" -eq 0 ]
backend stray-v7 --keygen --key-type AES:16 --label "cmkp11/$aes/v7"
expect_true "a backend key labelled as aes's version 7 is made" [ "$RC" -eq 0 ]
backend stray-junk --keygen --key-type AES:16 --label "cmkp11/not-a-key"
expect_true "a backend key labelled cmkp11/not-a-key is made" [ "$RC" -eq 0 ]
backend unrelated --keygen --key-type AES:16 --label "someone-else"
expect_true "a backend key labelled someone-else is made" [ "$RC" -eq 0 ]
ctl doctor
expect_true "doctor with stray material: exit 1" [ "$RC" -eq 1 ]
expect_eq "StrayMaterial names the three objects, with the key and version they claim" \
    'sorted((s["Label"], s.get("KeyId"), s.get("KeyVersionId"), s["Object"]) for s in d["StrayMaterial"])' \
    "$("$PY" -c 'import sys; a, g = sys.argv[1:]; print(sorted([("cmkp11/%s/v1" % g, g, "1", "SecretKey"), ("cmkp11/%s/v7" % a, a, "7", "SecretKey"), ("cmkp11/not-a-key", None, None, "SecretKey")]))' "$aes" "$ghost")"
expect_eq "each stray object says why" \
    'sorted((s["Label"].split("/")[-1], s["Reason"]) for s in d["StrayMaterial"])' \
    "[('not-a-key', 'CKA_LABEL starts with cmkp11/ but is none of the names cmkp11 gives backend objects'), ('v1', 'no key in the store has this key id'), ('v7', 'the key has versions 1 to 2 in the store')]"
expect_eq "a backend object with another label is none of doctor's business" \
    '[s for s in d["StrayMaterial"] if "someone-else" in s["Label"]]' "[]"
expect_eq "the missing material is still reported" 'len(d["MissingMaterial"])' 3

# --- material named only by CKA_ID -----------------------------------------------------------
# cmk_backend_id: "CMK\x01", the key id's 16 bytes, the version (4 bytes, big-endian).
cmk_id=$(printf 'CMK\001' | od -An -tx1 | tr -d ' \n')$(printf '%s' "$ghost" | tr -d -)00000003
backend stray-by-id --keygen --key-type AES:16 --label "no-prefix" --id "$cmk_id"
expect_true "a backend key with that CKA_ID, labelled no-prefix, is made" [ "$RC" -eq 0 ]
ctl doctor
expect_eq "an object with cmkp11's CKA_ID form but another label is material too" \
    '[(s["Label"], s["CkaId"], s["KeyId"], s["KeyVersionId"]) for s in d["StrayMaterial"] if s["Label"] == "no-prefix"]' \
    "[('no-prefix', '$cmk_id', '$ghost', '3')]"

# --- import wrapping pairs that serve no import ----------------------------------------------
backend pair-ghost --keygen --key-type AES:16 --label "cmkp11/import/$ghost"
expect_true "a backend key labelled cmkp11/import/<unknown key id> is made" [ "$RC" -eq 0 ]
backend pair-aes --keygen --key-type AES:16 --label "cmkp11/import/$aes"
expect_true "a backend key labelled as an import pair of aes (no parameters) is made" [ "$RC" -eq 0 ]
ctl doctor
expect_eq "wrapping pairs of a gone key, or of a key without parameters, are stray" \
    'sorted((s["Label"], s.get("KeyId"), s["Reason"]) for s in d["StrayMaterial"] if "/import/" in s["Label"])' \
    "$("$PY" -c 'import sys; a, g = sys.argv[1:]; print(sorted([("cmkp11/import/%s" % g, g, "no key in the store has this key id"), ("cmkp11/import/%s" % a, a, "an import wrapping pair, but the key has no import parameters outstanding")]))' "$aes" "$ghost")"
expect_eq "byok's own wrapping pair, the master key and the import token key are not stray" \
    '[s["Label"] for s in d["StrayMaterial"] if s["Label"].endswith(("master", "import-token-key")) or s["Label"].endswith("'"$byok"'")]' "[]"

# --- a SOFTWARE version's sealed row removed from the store ----------------------------------
if ! command -v sqlite3 >/dev/null; then
    fail "sqlite3 is not installed (Debian package sqlite3): cannot remove a sealed row"
else
    sqlite3 "$CMK_WORK/cmk.db" "DELETE FROM cmk_sealed WHERE version = 2 AND cmk_id = (SELECT id FROM cmk WHERE key_id = '$soft')"
    ctl doctor
    expect_true "doctor with a sealed row missing: exit 1" [ "$RC" -eq 1 ]
    expect_eq "MissingSealedMaterial names soft's version 2" \
        '[(m["KeyId"], m["Alias"], m["KeyState"], m["KeyVersionId"]) for m in d["MissingSealedMaterial"]]' \
        "[('$soft', 'soft', 'Enabled', '2')]"
    expect_eq "a SOFTWARE key's versions are never MissingMaterial" \
        '[m for m in d["MissingMaterial"] if m["KeyId"] == "'"$soft"'"]' "[]"
fi

# --- the token master key -------------------------------------------------------------------
master_id=$(printf 'CMK\000master' | od -An -tx1 | tr -d ' \n')
backend delete-master --delete-object --type secrkey --label cmkp11/master
expect_true "pkcs11-tool deletes the token master key" [ "$RC" -eq 0 ]
ctl doctor
expect_true "doctor with the master key missing: exit 1" [ "$RC" -eq 1 ]
expect_eq "MissingTokenKeys names the master key, and why it is needed" \
    '[(m["Label"], m["CkaId"], m["Object"], m["Reason"]) for m in d["MissingTokenKeys"]]' \
    "[('cmkp11/master', '$master_id', 'SecretKey', 'SOFTWARE keys with material sealed under the token master key: 1')]"
backend master-1 --keygen --key-type AES:32 --label cmkp11/master --id "$master_id"
backend master-2 --keygen --key-type AES:32 --label cmkp11/master --id "$master_id"
expect_true "pkcs11-tool makes two master keys" [ "$RC" -eq 0 ]
ctl doctor
expect_eq "one master key is not missing" 'd["MissingTokenKeys"]' "[]"
expect_eq "two master keys are both reported" \
    '[(s["Label"], s["Reason"]) for s in d["StrayMaterial"] if s["Label"] == "cmkp11/master"]' \
    "$("$PY" -c 'print([("cmkp11/master", "the backend holds 2 token master keys: cmkp11 seals with one of them, material sealed under another does not open")] * 2)')"

# --- no PIN: the check cannot be made, and says so -------------------------------------------
RC=0
env -u CMKP11_PIN timeout 60 "$CMKCTL" doctor >"$OUT/out" 2>"$OUT/err" </dev/null || RC=$?
expect_eq "without a PIN the material check is skipped, naming what it needs" \
    '[(c["Status"], "PIN" in c["Detail"]) for c in d["Checks"] if c["Check"] == "material"]' "[('skipped', True)]"
expect_eq "and the lists are left out (not an empty answer)" \
    '[k for k in ("MissingMaterial", "MissingTokenKeys", "StrayMaterial") if k in d]' "[]"
expect_eq "the sealed rows are checked without a PIN (the store alone)" \
    '([c["Status"] for c in d["Checks"] if c["Check"] == "sealed"], len(d["MissingSealedMaterial"]))' "(['error'], 1)"
printf '0000\n' >"$CMK_WORK/wrong-pin"
chmod 600 "$CMK_WORK/wrong-pin"
ctl --pin-file "$CMK_WORK/wrong-pin" doctor
expect_true "a wrong PIN: exit 1" [ "$RC" -eq 1 ]
expect_eq "a wrong PIN: the material check fails naming the login" \
    '[(c["Status"], "CKR_PIN_INCORRECT" in c["Detail"]) for c in d["Checks"] if c["Check"] == "material"]' \
    "[('error', True)]"
finish
