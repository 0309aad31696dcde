# PyKCS11: RSA-PSS with SHA-1/384/512 and raw PSS over a digest, OAEP with SHA-256 and a
# label, and raw RSA (X.509), on one pair.
py rsa-pss-oaep-variants <<'PY'
from pycompat import *
lib, s = session()
pair = attempt('generate', gen_rsa, s, 'py-rsa-variants')
if pair:
    pub, prv = pair
    import hashlib
    for hname, mech, h, mgf, slen in (('SHA1', CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1, 20),
                                      ('SHA384', CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384, 48),
                                      ('SHA512', CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, 64)):
        m = PyKCS11.RSA_PSS_Mechanism(mech, h, mgf, slen)
        sig = attempt('PSS ' + hname, s.sign, prv, b'data', m)
        if sig is not None:
            out('PSS', hname, 'verifies', s.verify(pub, b'data', sig, PyKCS11.RSA_PSS_Mechanism(mech, h, mgf, slen)))
    d = hashlib.sha256(b'data').digest()
    m = PyKCS11.RSA_PSS_Mechanism(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32)
    sig = attempt('raw PSS over a SHA-256 digest', s.sign, prv, d, m)
    if sig is not None:
        out('raw PSS verifies', s.verify(pub, d, sig, PyKCS11.RSA_PSS_Mechanism(CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32)))
    for label in (None, b'context'):
        m = PyKCS11.RSAOAEPMechanism(CKM_SHA256, CKG_MGF1_SHA256, label)
        c = attempt('OAEP SHA-256 label %r' % label, s.encrypt, pub, b'secret', m)
        if c is not None:
            p = attempt('OAEP SHA-256 decrypt', s.decrypt, prv, c, PyKCS11.RSAOAEPMechanism(CKM_SHA256, CKG_MGF1_SHA256, label))
            out('OAEP round trip', p is not None and bytes(p) == b'secret')
    block = bytes([0]) + bytes(range(1, 256))
    c = attempt('X.509 encrypt', s.encrypt, pub, block, PyKCS11.Mechanism(CKM_RSA_X_509))
    if c is not None:
        p = attempt('X.509 decrypt', s.decrypt, prv, c, PyKCS11.Mechanism(CKM_RSA_X_509))
        out('X.509 round trip', p is not None and bytes(p)[-255:] == block[-255:])
PY
