# PyKCS11: session keys of each kind made, used, destroyed; a second session does not see
# them and they go with their session.
py session-keys-lifecycle <<'PY'
from pycompat import *
lib, s = session()
lib2, other = session(lib, login=False)
aes = s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16), (CKA_TOKEN, False), (CKA_ENCRYPT, True), (CKA_DECRYPT, True), (CKA_LABEL, 'tmp')], PyKCS11.MechanismAESGENERATEKEY)
pub, prv = s.generateKeyPair([(CKA_TOKEN, False), (CKA_EC_PARAMS, P256), (CKA_VERIFY, True), (CKA_LABEL, 'tmp')], [(CKA_TOKEN, False), (CKA_SIGN, True), (CKA_LABEL, 'tmp')], mecha=PyKCS11.MechanismECGENERATEKEYPAIR)
out('session objects here', count(s, [(CKA_TOKEN, False)]), 'in the other session', count(other, [(CKA_TOKEN, False)]))
sig = s.sign(prv, bytes(32), PyKCS11.Mechanism(CKM_ECDSA))
out('signature verifies', s.verify(pub, bytes(32), sig, PyKCS11.Mechanism(CKM_ECDSA)))
attempt('destroy the AES key', s.destroyObject, aes)
attempt('use it after', s.encrypt, aes, bytes(16), PyKCS11.Mechanism(CKM_AES_ECB))
attempt('destroy it again', s.destroyObject, aes)
out('session objects now', count(s, [(CKA_TOKEN, False)]))
s.closeSession()
out('after its session closed, seen from the other', count(other, [(CKA_LABEL, 'tmp')]))
PY
