# PyKCS11: AES-CBC-PAD of lengths around the block, AES-CBC and AES-ECB on whole blocks,
# and the length errors the spec names for partial blocks.
py aes-cbc-ecb <<'PY'
from pycompat import *
lib, s = session()
k = attempt('generate', s.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32), (CKA_TOKEN, True), (CKA_LABEL, 'py-cbc'), (CKA_ENCRYPT, True), (CKA_DECRYPT, True)], PyKCS11.MechanismAESGENERATEKEY)
if k is not None:
    iv = bytes(16)
    for n in (0, 1, 15, 16, 17, 100):
        data = bytes(range(n))
        c = attempt('CBC_PAD encrypt %d' % n, s.encrypt, k, data, PyKCS11.Mechanism(CKM_AES_CBC_PAD, iv))
        if c is not None:
            p = attempt('CBC_PAD decrypt %d' % n, s.decrypt, k, c, PyKCS11.Mechanism(CKM_AES_CBC_PAD, iv))
            out(n, 'bytes ->', len(c), 'round trip', p is not None and bytes(p) == data)
    for name, mech in (('CBC', PyKCS11.Mechanism(CKM_AES_CBC, iv)), ('ECB', PyKCS11.Mechanism(CKM_AES_ECB))):
        c = attempt(name + ' encrypt 32', s.encrypt, k, bytes(32), mech)
        if c is not None:
            out(name, 'length', len(c), 'decrypts', bytes(s.decrypt(k, c, mech)) == bytes(32))
        attempt(name + ' encrypt 20', s.encrypt, k, bytes(20), mech)
PY
