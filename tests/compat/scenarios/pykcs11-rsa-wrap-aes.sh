# PyKCS11: a token RSA pair wraps an extractable session AES key with RSA-OAEP and
# PKCS#1 v1.5 and unwraps it as a session key (what a client does to move a data key);
# both keys encrypt alike.
py rsa-wrap <<'PY'
from pycompat import *
lib, s = session()
pub, prv = gen_rsa(s, 'py-rsa-wrap', CKA_UNWRAP=True)
attempt('allow wrapping with the public key', s.setAttributeValue, pub, [(CKA_WRAP, True)])
key = s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32), (CKA_TOKEN, False), (CKA_EXTRACTABLE, True), (CKA_ENCRYPT, True)], PyKCS11.MechanismAESGENERATEKEY)
ecb = PyKCS11.Mechanism(CKM_AES_ECB)
for name, mech in (('OAEP', PyKCS11.RSAOAEPMechanism(CKM_SHA_1, CKG_MGF1_SHA1)), ('PKCS1', PyKCS11.Mechanism(CKM_RSA_PKCS))):
    w = attempt('wrap ' + name, s.wrapKey, pub, key, mech)
    if w is None:
        continue
    out(name, 'wrapped length', len(w))
    back = attempt('unwrap ' + name, s.unwrapKey, prv, w, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, False), (CKA_ENCRYPT, True)], mech)
    if back is not None:
        out(name, 'same key', bytes(s.encrypt(key, bytes(16), ecb)) == bytes(s.encrypt(back, bytes(16), ecb)))
PY
