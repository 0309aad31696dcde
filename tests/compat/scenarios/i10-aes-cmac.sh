# Issue 17 item 10: an AES key with CKA_SIGN/CKA_VERIFY computes and checks AES-CMAC.
py cmac <<'PY'
from pycompat import *
lib, s = session()
key = attempt('generate', s.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
    (CKA_VALUE_LEN, 16), (CKA_TOKEN, True), (CKA_LABEL, 'cmac'), (CKA_SIGN, True), (CKA_VERIFY, True),
    (CKA_ENCRYPT, True), (CKA_DECRYPT, True)], PyKCS11.Mechanism(CKM_AES_KEY_GEN))
if key is not None:
    sign, verify = s.getAttributeValue(key, [CKA_SIGN, CKA_VERIFY])
    out('CKA_SIGN', bool(sign), 'CKA_VERIFY', bool(verify))
    mac = attempt('cmac', s.sign, key, b'message', PyKCS11.Mechanism(CKM_AES_CMAC))
    if mac is not None:
        out('mac length', len(mac))
        out('verifies:', s.verify(key, b'message', mac, PyKCS11.Mechanism(CKM_AES_CMAC)))
        out('other message verifies:', s.verify(key, b'other', mac, PyKCS11.Mechanism(CKM_AES_CMAC)))
PY
