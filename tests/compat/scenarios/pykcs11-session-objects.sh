# PyKCS11: session (CKA_TOKEN=FALSE) keys and data objects live and die with their
# session; another session does not keep them.
py session-objects <<'PY'
from pycompat import *
lib, s = session()
k = attempt('session AES key', s.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
    (CKA_VALUE_LEN, 32), (CKA_TOKEN, False), (CKA_LABEL, 'sess-aes'), (CKA_ENCRYPT, True), (CKA_DECRYPT, True)],
    PyKCS11.Mechanism(CKM_AES_KEY_GEN))
pair = attempt('session EC pair', s.generateKeyPair,
    [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_TOKEN, False), (CKA_EC_PARAMS, P256), (CKA_LABEL, 'sess-ec'), (CKA_VERIFY, True)],
    [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_TOKEN, False), (CKA_PRIVATE, True), (CKA_LABEL, 'sess-ec'), (CKA_SIGN, True)],
    PyKCS11.MechanismECGENERATEKEYPAIR)
d = attempt('session data', s.createObject, [(CKA_CLASS, CKO_DATA), (CKA_TOKEN, False), (CKA_LABEL, 'sess-data'), (CKA_VALUE, b'abc')])
out('session objects:', labels(s, [(CKA_TOKEN, False)]))
if k is not None:
    iv = bytes(16)
    c = s.encrypt(k, b'0123456789abcdef', PyKCS11.Mechanism(CKM_AES_CBC, iv))
    out('aes round trip', bytes(s.decrypt(k, c, PyKCS11.Mechanism(CKM_AES_CBC, iv))) == b'0123456789abcdef')
s2 = lib.openSession(token_slot(lib), CKF_SERIAL_SESSION | CKF_RW_SESSION)
out('seen from another session:', labels(s2, [(CKA_TOKEN, False)]))
s.closeSession()
out('after close:', labels(s2, [(CKA_TOKEN, False)]))
PY
