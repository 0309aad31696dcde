# Issue 17 item 11: a DES3 token key made with CKM_DES3_KEY_GEN (PyKCS11: pkcs11-tool
# 0.23 sends CKA_VALUE_LEN for DES3, which SoftHSMv2 refuses) and used for DES3-CBC.
py des3 <<'PY'
from pycompat import *
lib, s = session()
k = attempt('generate', s.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_DES3), (CKA_TOKEN, True),
    (CKA_PRIVATE, True), (CKA_LABEL, 'des3'), (CKA_ENCRYPT, True), (CKA_DECRYPT, True)], PyKCS11.Mechanism(CKM_DES3_KEY_GEN))
if k is not None:
    iv = bytes(8)
    c = attempt('encrypt', s.encrypt, k, b'0123456789abcdef', PyKCS11.Mechanism(CKM_DES3_CBC, iv))
    if c is not None:
        out('round trip', bytes(s.decrypt(k, c, PyKCS11.Mechanism(CKM_DES3_CBC, iv))) == b'0123456789abcdef')
out('des3 keys:', labels(s, [(CKA_KEY_TYPE, CKK_DES3)]))
PY
