# PyKCS11: an AES key wrapped by an AES wrapping key (CKM_AES_KEY_WRAP) and unwrapped
# back into a key that decrypts what the original encrypted.
py wrap <<'PY'
from pycompat import *
lib, s = session()
def aes(label, **flags):
    t = [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32), (CKA_TOKEN, True),
         (CKA_PRIVATE, True), (CKA_LABEL, label)] + [(getattr(PyKCS11, k), v) for k, v in flags.items()]
    return attempt('generate ' + label, s.generateKey, t, PyKCS11.Mechanism(CKM_AES_KEY_GEN))
kek = aes('kek', CKA_WRAP=True, CKA_UNWRAP=True)
target = aes('target', CKA_EXTRACTABLE=True, CKA_ENCRYPT=True, CKA_DECRYPT=True)
if kek is not None and target is not None:
    wrapped = attempt('wrap', s.wrapKey, kek, target, PyKCS11.Mechanism(CKM_AES_KEY_WRAP))
    if wrapped is not None:
        out('wrapped length', len(wrapped))
        new = attempt('unwrap', s.unwrapKey, kek, wrapped, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
            (CKA_TOKEN, False), (CKA_DECRYPT, True), (CKA_LABEL, 'unwrapped')], PyKCS11.Mechanism(CKM_AES_KEY_WRAP))
        if new is not None:
            iv = bytes(16)
            c = s.encrypt(target, b'fedcba9876543210', PyKCS11.Mechanism(CKM_AES_CBC, iv))
            out('unwrapped decrypts', bytes(s.decrypt(new, c, PyKCS11.Mechanism(CKM_AES_CBC, iv))) == b'fedcba9876543210')
PY
