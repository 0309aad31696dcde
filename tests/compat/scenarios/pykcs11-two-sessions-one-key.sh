# PyKCS11: one token key used from two sessions at once (a signing service with a pool of
# sessions): each finds the key, signs and verifies; closing one leaves the other working.
py two-sessions <<'PY'
from pycompat import *
lib, s1 = session()
s2 = lib.openSession(token_slot(lib), PyKCS11.CKF_SERIAL_SESSION)
gen_ec(s1, 'pooled', id_=b'\x33')
keys = []
for name, s in (('first', s1), ('second', s2)):
    prv = s.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_ID, b'\x33')])
    pub = s.findObjects([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_ID, b'\x33')])
    out(name, 'finds', len(prv), len(pub))
    sig = s.sign(prv[0], bytes(32), PyKCS11.Mechanism(CKM_ECDSA))
    out(name, 'verifies', s.verify(pub[0], bytes(32), sig, PyKCS11.Mechanism(CKM_ECDSA)))
    keys.append((prv[0], pub[0]))
s1.closeSession()
sig = attempt('sign in the second after the first closed', s2.sign, keys[1][0], bytes(32), PyKCS11.Mechanism(CKM_ECDSA))
out('verifies', sig is not None and s2.verify(keys[1][1], bytes(32), sig, PyKCS11.Mechanism(CKM_ECDSA)))
PY
