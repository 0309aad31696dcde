# PyKCS11: a token EC key asked for derive agrees an AES session key with a peer (ECDH1,
# KDF NULL then truncated by CKA_VALUE_LEN); both sides' keys encrypt alike.
py ecdh-session-derive <<'PY'
from pycompat import *
lib, s = session()
pub, prv = gen_ec(s, 'py-ecdh', prv_extra=[(CKA_DERIVE, True)])
ppub, pprv = s.generateKeyPair([(CKA_TOKEN, False), (CKA_EC_PARAMS, P256)], [(CKA_TOKEN, False), (CKA_DERIVE, True)], mecha=PyKCS11.MechanismECGENERATEKEYPAIR)
def point(h):
    return bytes(s.getAttributeValue(h, [CKA_EC_POINT])[0])
tmpl = [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16), (CKA_TOKEN, False), (CKA_ENCRYPT, True)]
mine = attempt('derive from the token key', s.deriveKey, prv, tmpl, PyKCS11.ECDH1_DERIVE_Mechanism(point(ppub)))
theirs = attempt('derive from the peer', s.deriveKey, pprv, tmpl, PyKCS11.ECDH1_DERIVE_Mechanism(point(pub)))
if mine is not None and theirs is not None:
    ecb = PyKCS11.Mechanism(CKM_AES_ECB)
    out('same key both sides', bytes(s.encrypt(mine, bytes(16), ecb)) == bytes(s.encrypt(theirs, bytes(16), ecb)))
attempt('derive into the token', s.deriveKey, prv, tmpl[:3] + [(CKA_TOKEN, True)], PyKCS11.ECDH1_DERIVE_Mechanism(point(ppub)))
PY
