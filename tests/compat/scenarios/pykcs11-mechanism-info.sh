# PyKCS11: the mechanism details a client reads before choosing (key sizes and flags) for
# the standard mechanisms it uses most.
py mechanism-info <<'PY'
from pycompat import *
lib = load()
slot = token_slot(lib)
for m in (CKM_AES_KEY_GEN, CKM_AES_GCM, CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP, CKM_RSA_PKCS_KEY_PAIR_GEN,
          CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP, CKM_SHA256_RSA_PKCS_PSS, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA,
          CKM_ECDH1_DERIVE, CKM_SHA256_HMAC, CKM_GENERIC_SECRET_KEY_GEN, CKM_SHA256):
    i = attempt('info ' + PyKCS11.CKM[m], lib.getMechanismInfo, slot, PyKCS11.CKM[m])
    if i is not None:
        out(PyKCS11.CKM[m], i.ulMinKeySize, i.ulMaxKeySize, sorted(i.flags2text()))
PY
