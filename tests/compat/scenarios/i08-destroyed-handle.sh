# Issue 17 item 8: C_GetAttributeValue and C_SignInit on a destroyed key's handle, and
# a find after the destroy.
py destroyed <<'PY'
from pycompat import *
lib, s = session()
pub, prv = gen_ec(s, 'gone', id_=b'\x42')
attempt('destroy private', s.destroyObject, prv)
attempt('get label of destroyed private', s.getAttributeValue, prv, [CKA_LABEL])
attempt('sign with destroyed private', s.sign, prv, b'\x00' * 32, PyKCS11.Mechanism(CKM_ECDSA))
out('find gone:', labels(s, [(CKA_LABEL, 'gone')]))
attempt('destroy private again', s.destroyObject, prv)
attempt('destroy public', s.destroyObject, pub)
attempt('get label of destroyed public', s.getAttributeValue, pub, [CKA_LABEL])
out('find gone:', labels(s, [(CKA_LABEL, 'gone')]))
PY
