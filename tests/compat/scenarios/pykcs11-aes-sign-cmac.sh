# PyKCS11: an AES key made with the flags left to the token MACs with AES-CMAC (general
# length too) when the token's defaults allow it, as on the backend.
py aes-sign-cmac <<'PY'
from pycompat import *
lib, s = session()
k = attempt('generate', s.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16), (CKA_TOKEN, True), (CKA_LABEL, 'plain-aes')], PyKCS11.MechanismAESGENERATEKEY)
if k is not None:
    flags = s.getAttributeValue(k, [CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY, CKA_WRAP, CKA_UNWRAP, CKA_DERIVE])
    out('flags', [bool(f) for f in flags])
    mac = attempt('CMAC', s.sign, k, b'message', PyKCS11.Mechanism(CKM_AES_CMAC))
    if mac is not None:
        out('CMAC length', len(mac), 'verifies', s.verify(k, b'message', mac, PyKCS11.Mechanism(CKM_AES_CMAC)))
PY
