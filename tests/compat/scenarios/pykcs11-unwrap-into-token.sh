# PyKCS11: a key unwrapped under a token AES key into the token itself (a client storing a
# received key) is found there and encrypts as the original.
py unwrap-into-token <<'PY'
from pycompat import *
lib, s = session()
kek = s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32), (CKA_TOKEN, True), (CKA_LABEL, 'py-kek2'), (CKA_ENCRYPT, True), (CKA_DECRYPT, True), (CKA_WRAP, True), (CKA_UNWRAP, True)], PyKCS11.MechanismAESGENERATEKEY)
key = s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16), (CKA_TOKEN, False), (CKA_EXTRACTABLE, True), (CKA_ENCRYPT, True)], PyKCS11.MechanismAESGENERATEKEY)
w = s.wrapKey(kek, key, PyKCS11.Mechanism(CKM_AES_KEY_WRAP))
got = attempt('unwrap into the token', s.unwrapKey, kek, w, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, True), (CKA_LABEL, 'received'), (CKA_ENCRYPT, True)], PyKCS11.Mechanism(CKM_AES_KEY_WRAP))
out('found', labels(s, [(CKA_LABEL, 'received')]))
if got is not None:
    ecb = PyKCS11.Mechanism(CKM_AES_ECB)
    out('same key', bytes(s.encrypt(key, bytes(16), ecb)) == bytes(s.encrypt(got, bytes(16), ecb)))
PY
