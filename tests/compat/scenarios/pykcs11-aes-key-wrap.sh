# PyKCS11: a token AES key wraps an extractable session AES key (RFC 3394 and RFC 5649)
# and unwraps it again as a session key; both copies encrypt alike.
py aes-key-wrap <<'PY'
from pycompat import *
lib, s = session()
kek = attempt('generate wrapping key', s.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32), (CKA_TOKEN, True), (CKA_LABEL, 'py-kek'), (CKA_ENCRYPT, True), (CKA_DECRYPT, True), (CKA_WRAP, True), (CKA_UNWRAP, True)], PyKCS11.MechanismAESGENERATEKEY)
key = attempt('generate session key', s.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16), (CKA_TOKEN, False), (CKA_EXTRACTABLE, True), (CKA_ENCRYPT, True), (CKA_DECRYPT, True)], PyKCS11.MechanismAESGENERATEKEY)
if kek is not None and key is not None:
    for name, mech in (('AES_KEY_WRAP', CKM_AES_KEY_WRAP), ('AES_KEY_WRAP_PAD', CKM_AES_KEY_WRAP_PAD)):
        w = attempt('wrap ' + name, s.wrapKey, kek, key, PyKCS11.Mechanism(mech))
        if w is None:
            continue
        out(name, 'wrapped length', len(w))
        back = attempt('unwrap ' + name, s.unwrapKey, kek, w, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, False), (CKA_ENCRYPT, True), (CKA_DECRYPT, True)], PyKCS11.Mechanism(mech))
        if back is not None:
            ecb = PyKCS11.Mechanism(CKM_AES_ECB)
            out(name, 'same key', bytes(s.encrypt(key, bytes(16), ecb)) == bytes(s.encrypt(back, bytes(16), ecb)))
PY
