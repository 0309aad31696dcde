#!/usr/bin/python3
"""pykcs11_sign.py MODULE TOKEN PIN ALIAS OUTDIR - PyKCS11 (Debian's python3-pykcs11)
against cmkp11, run by pykcs11.sh: find the slot by token label, log in, create an EC
P-256 CMK with C_GenerateKeyPair, find its private key by CKA_LABEL (the alias), sign a
SHA-256 digest with CKM_ECDSA, verify with the public key found by the same label, and
read the CMK's vendor attributes.

Prints one `name=value` line per fact for the shell to check, and writes the message,
the DER signature and the DER public key to OUTDIR so that plain OpenSSL can check the
signature. A PKCS#11 error ends the script with its CKR_ name and a non-zero status.
"""
import hashlib
import os
import sys

import PyKCS11

CKA_VENDOR_DEFINED = 0x80000000
CMK_BASE = 0x434D4B00


def cka_cmk(n):
    return CKA_VENDOR_DEFINED | CMK_BASE | n


CKA_CMK_KEY_ID = cka_cmk(0x01)
CKA_CMK_DESCRIPTION = cka_cmk(0x02)
CKA_CMK_KEY_SPEC = cka_cmk(0x03)
CKA_CMK_KEY_USAGE = cka_cmk(0x04)
CKA_CMK_KEY_STATE = cka_cmk(0x07)
CKA_CMK_ARN = cka_cmk(0x13)

P256_OID = bytes.fromhex("06082a8648ce3d030107")  # DER OID prime256v1
SPKI_P256_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


def out(name, value):
    print("%s=%s" % (name, value), flush=True)


def ulong(raw):
    """A CK_ULONG read as bytes (PyKCS11 returns unknown attributes as bytes)."""
    return int.from_bytes(bytes(raw), sys.byteorder)


def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b


def ecdsa_der(raw):
    """PKCS#11 ECDSA signature r||s -> DER ECDSA-Sig-Value, as OpenSSL reads it."""
    half = len(raw) // 2
    body = der_int(raw[:half]) + der_int(raw[half:])
    return b"\x30" + bytes([len(body)]) + body


def main():
    module, token, pin, alias, outdir = sys.argv[1:6]
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)

    info = lib.getInfo()
    out("library", info.libraryDescription.strip())

    slots = [s for s in lib.getSlotList(tokenPresent=True)
             if lib.getTokenInfo(s).label.strip() == token]
    out("slots_with_label", len(slots))
    if len(slots) != 1:
        return 1
    slot = slots[0]
    tinfo = lib.getTokenInfo(slot)
    out("token_label", tinfo.label.strip())
    out("token_model", tinfo.model.strip())

    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    session.login(pin)

    # C_GenerateKeyPair with a plain template: a CMK whose alias is the label.
    pub_tmpl = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
        (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
        (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_VERIFY, True),
        (PyKCS11.CKA_EC_PARAMS, P256_OID),
        (PyKCS11.CKA_LABEL, alias),
    ]
    priv_tmpl = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
        (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
        (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_PRIVATE, True),
        (PyKCS11.CKA_SENSITIVE, True),
        (PyKCS11.CKA_SIGN, True),
        (PyKCS11.CKA_LABEL, alias),
    ]
    session.generateKeyPair(pub_tmpl, priv_tmpl, mecha=PyKCS11.MechanismECGENERATEKEYPAIR)
    out("generated", alias)
    session.logout()
    session.closeSession()

    # A new session: everything below is found again by the alias, not kept handles.
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    session.login(pin)
    privs = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
                                 (PyKCS11.CKA_LABEL, alias)])
    pubs = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
                                (PyKCS11.CKA_LABEL, alias)])
    out("private_keys_by_label", len(privs))
    out("public_keys_by_label", len(pubs))
    if len(privs) != 1 or len(pubs) != 1:
        return 1
    priv, pub = privs[0], pubs[0]

    message = b"cmkp11 PyKCS11 interop\n"
    digest = hashlib.sha256(message).digest()
    mech = PyKCS11.Mechanism(PyKCS11.CKM_ECDSA, None)
    sig = bytes(session.sign(priv, digest, mech))
    out("signature_length", len(sig))
    out("verify_same", session.verify(pub, digest, sig, mech))
    other = hashlib.sha256(message + b"x").digest()
    out("verify_other", session.verify(pub, other, sig, mech))

    # Vendor attributes, read as bytes (PyKCS11 does not know their types).
    spec, state, usage, key_id, arn = session.getAttributeValue(
        priv, [CKA_CMK_KEY_SPEC, CKA_CMK_KEY_STATE, CKA_CMK_KEY_USAGE, CKA_CMK_KEY_ID, CKA_CMK_ARN],
        allAsBinary=True)
    out("key_spec", bytes(spec).decode())
    out("key_state", ulong(state))
    out("key_usage", ulong(usage))
    out("key_id", bytes(key_id).decode())
    out("arn", bytes(arn).decode())
    pub_spec = session.getAttributeValue(pub, [CKA_CMK_KEY_SPEC], allAsBinary=True)[0]
    out("public_key_spec", bytes(pub_spec).decode())

    # Find by a vendor attribute, and write one.
    by_spec = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
                                   (CKA_CMK_KEY_SPEC, b"EC_P256")])
    out("found_by_key_spec", len(by_spec))
    out("found_by_key_spec_is_alias", len(by_spec) == 1 and by_spec[0].value() == priv.value())
    desc = "signed from PyKCS11"
    session.setAttributeValue(priv, [(CKA_CMK_DESCRIPTION, desc.encode())])
    back = session.getAttributeValue(priv, [CKA_CMK_DESCRIPTION], allAsBinary=True)[0]
    out("description", bytes(back).decode())

    # For plain OpenSSL: the message, the signature (DER) and the public key (DER SPKI).
    ec_point = bytes(session.getAttributeValue(pub, [PyKCS11.CKA_EC_POINT], allAsBinary=True)[0])
    if ec_point[:2] == b"\x04\x41":  # DER OCTET STRING around the 65-byte point
        ec_point = ec_point[2:]
    with open(os.path.join(outdir, "py.msg"), "wb") as f:
        f.write(message)
    with open(os.path.join(outdir, "py.sig.der"), "wb") as f:
        f.write(ecdsa_der(sig))
    with open(os.path.join(outdir, "py.pub.der"), "wb") as f:
        f.write(SPKI_P256_PREFIX + ec_point)

    session.logout()
    session.closeSession()
    out("done", "yes")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PyKCS11.PyKCS11Error as e:
        print("PyKCS11 error: %s (%s)" % (e, PyKCS11.CKR.get(e.value, hex(e.value))), flush=True)
        sys.exit(2)
