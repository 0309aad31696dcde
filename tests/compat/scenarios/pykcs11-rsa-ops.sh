# PyKCS11: an RSA pair with sign+decrypt made by C_GenerateKeyPair, PKCS#1 and PSS
# signatures verified by the token, PKCS#1 and OAEP encryption round trips.
py rsa <<'PY'
from pycompat import *
lib, s = session()
pair = attempt('generate', gen_rsa, s, 'py-rsa', id_=b'\x61')
if pair:
    pub, prv = pair
    data = b'pykcs11 rsa'
    for name, mech in (('SHA256_RSA_PKCS', PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS)),
                       ('SHA256_RSA_PKCS_PSS', PyKCS11.RSA_PSS_Mechanism(CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32))):
        sig = attempt('sign ' + name, s.sign, prv, data, mech)
        if sig is not None:
            out(name, 'length', len(sig), 'verifies', s.verify(pub, data, sig, mech))
    for name, mech in (('RSA_PKCS', PyKCS11.Mechanism(CKM_RSA_PKCS)),
                       ('RSA_PKCS_OAEP', PyKCS11.RSAOAEPMechanism(CKM_SHA_1, CKG_MGF1_SHA1))):
        c = attempt('encrypt ' + name, s.encrypt, pub, data, mech)
        if c is not None:
            p = attempt('decrypt ' + name, s.decrypt, prv, c, mech)
            out(name, 'round trip', p is not None and bytes(p) == data)
    mod, exp, bits = s.getAttributeValue(pub, [CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_MODULUS_BITS])
    out('modulus bytes', len(mod), 'exponent', bytes(exp).hex(), 'bits', bits)
    attempt('read private exponent', s.getAttributeValue, prv, [CKA_PRIVATE_EXPONENT])
PY
