# PyKCS11: generic secrets of 32 and 64 bytes MAC with HMAC-SHA256/384/512 and verify;
# a wrong MAC is refused as on the backend.
py hmac-sizes <<'PY'
from pycompat import *
lib, s = session()
for n in (32, 64):
    k = attempt('generate %d' % n, s.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET), (CKA_VALUE_LEN, n), (CKA_TOKEN, True), (CKA_LABEL, 'py-mac-%d' % n), (CKA_SIGN, True), (CKA_VERIFY, True)], PyKCS11.Mechanism(CKM_GENERIC_SECRET_KEY_GEN))
    if k is None:
        continue
    for name, mech in (('SHA256', CKM_SHA256_HMAC), ('SHA384', CKM_SHA384_HMAC), ('SHA512', CKM_SHA512_HMAC)):
        mac = attempt('HMAC ' + name, s.sign, k, b'payload', PyKCS11.Mechanism(mech))
        if mac is not None:
            out(n, name, 'length', len(mac), 'verifies', s.verify(k, b'payload', mac, PyKCS11.Mechanism(mech)))
            out(n, name, 'wrong MAC verifies', s.verify(k, b'payload', bytes(len(mac)), PyKCS11.Mechanism(mech)))
PY
