# PyKCS11: an AES-256 token key encrypts and decrypts with GCM (AAD, 96-bit IV, 128-bit
# tag); a changed tag or AAD is refused as on the backend.
py aes-gcm <<'PY'
from pycompat import *
lib, s = session()
k = attempt('generate', s.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32), (CKA_TOKEN, True), (CKA_LABEL, 'py-gcm'), (CKA_ENCRYPT, True), (CKA_DECRYPT, True)], PyKCS11.MechanismAESGENERATEKEY)
if k is not None:
    iv = bytes(range(12))
    for n in (0, 1, 16, 1000):
        data = bytes(n)
        m = PyKCS11.AES_GCM_Mechanism(iv, b'header', 128)
        c = attempt('encrypt %d bytes' % n, s.encrypt, k, data, m)
        if c is not None:
            out('ciphertext length', len(c))
            p = attempt('decrypt %d bytes' % n, s.decrypt, k, c, PyKCS11.AES_GCM_Mechanism(iv, b'header', 128))
            out('round trip', p is not None and bytes(p) == data)
            bad = bytes(c[:-1]) + bytes([c[-1] ^ 1])
            attempt('decrypt with a changed tag', s.decrypt, k, bad, PyKCS11.AES_GCM_Mechanism(iv, b'header', 128))
            attempt('decrypt with other AAD', s.decrypt, k, c, PyKCS11.AES_GCM_Mechanism(iv, b'other', 128))
PY
