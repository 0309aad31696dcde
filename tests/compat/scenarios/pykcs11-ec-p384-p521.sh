# PyKCS11: ECDSA on P-384 and P-521 token keys with the hash-and-sign mechanisms and raw
# digests of each size, verified by the token.
py ec-p384-p521 <<'PY'
from pycompat import *
lib, s = session()
curves = (('P-384', bytes.fromhex('06052b81040022')), ('P-521', bytes.fromhex('06052b81040023')))
for name, params in curves:
    pair = attempt('generate ' + name, gen_ec, s, 'py-' + name, params=params)
    if pair is None:
        continue
    pub, prv = pair
    for mname, mech in (('ECDSA_SHA256', CKM_ECDSA_SHA256), ('ECDSA_SHA384', CKM_ECDSA_SHA384), ('ECDSA_SHA512', CKM_ECDSA_SHA512)):
        sig = attempt(name + ' sign ' + mname, s.sign, prv, b'message', PyKCS11.Mechanism(mech))
        if sig is not None:
            out(name, mname, 'length', len(sig), 'verifies', s.verify(pub, b'message', sig, PyKCS11.Mechanism(mech)))
    for n in (20, 32, 48, 64):
        sig = attempt(name + ' raw ECDSA over %d bytes' % n, s.sign, prv, bytes(range(n)), PyKCS11.Mechanism(CKM_ECDSA))
        if sig is not None:
            out(name, 'raw', n, 'verifies', s.verify(pub, bytes(range(n)), sig, PyKCS11.Mechanism(CKM_ECDSA)))
PY
