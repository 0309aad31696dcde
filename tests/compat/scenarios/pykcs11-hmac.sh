# Issue 17 item 10: a GENERIC secret made with CKM_GENERIC_SECRET_KEY_GEN and used for
# HMAC-SHA256 (PyKCS11), a session one and a token one.
py generic-hmac <<'PY'
from pycompat import *
lib, s = session()
for token in (False, True):
    what = 'token' if token else 'session'
    k = attempt(what + ' generic secret', s.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET),
        (CKA_VALUE_LEN, 32), (CKA_TOKEN, token), (CKA_LABEL, 'hmac-' + what), (CKA_SIGN, True), (CKA_VERIFY, True)],
        PyKCS11.Mechanism(CKM_GENERIC_SECRET_KEY_GEN))
    if k is not None:
        mac = attempt(what + ' hmac', s.sign, k, b'mac me', PyKCS11.Mechanism(CKM_SHA256_HMAC))
        if mac is not None:
            out(what, 'mac length', len(mac), 'verifies', s.verify(k, b'mac me', mac, PyKCS11.Mechanism(CKM_SHA256_HMAC)))
PY
