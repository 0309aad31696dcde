# PyKCS11: an EC P-256 pair, ECDSA over a digest verified by the token, attributes.
py ec <<'PY'
from pycompat import *
lib, s = session()
pair = attempt('generate', gen_ec, s, 'py-ec', id_=b'\x62')
if pair:
    pub, prv = pair
    digest = bytes(range(32))
    sig = attempt('sign', s.sign, prv, digest, PyKCS11.Mechanism(CKM_ECDSA))
    if sig is not None:
        out('length', len(sig), 'verifies', s.verify(pub, digest, sig, PyKCS11.Mechanism(CKM_ECDSA)))
        out('other verifies', s.verify(pub, bytes(32), sig, PyKCS11.Mechanism(CKM_ECDSA)))
    params, point = s.getAttributeValue(pub, [CKA_EC_PARAMS, CKA_EC_POINT])
    out('params', bytes(params).hex(), 'point bytes', len(point))
    for a in ('CKA_TOKEN', 'CKA_PRIVATE', 'CKA_SENSITIVE', 'CKA_EXTRACTABLE', 'CKA_ALWAYS_SENSITIVE',
              'CKA_NEVER_EXTRACTABLE', 'CKA_LOCAL', 'CKA_MODIFIABLE', 'CKA_SIGN', 'CKA_DERIVE'):
        v = attempt('get ' + a, s.getAttributeValue, prv, [getattr(PyKCS11, a)])
        if v is not None:
            out(a, v[0])
PY
