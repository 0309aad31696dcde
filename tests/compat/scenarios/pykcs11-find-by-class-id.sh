# PyKCS11: objects of every class (data, certificate, secret, private, public) sharing one
# CKA_ID, found by class, by id, by both, and all at once.
py find-by-class-id <<'PY'
from pycompat import *
lib, s = session()
s.createObject([(CKA_CLASS, CKO_DATA), (CKA_TOKEN, True), (CKA_LABEL, 'data'), (CKA_APPLICATION, 'app'), (CKA_VALUE, b'v')])
s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32), (CKA_TOKEN, True), (CKA_LABEL, 'same-id'), (CKA_ENCRYPT, True), (CKA_DECRYPT, True), (CKA_ID, bytes([7]))], PyKCS11.MechanismAESGENERATEKEY)
gen_ec(s, 'same-id', id_=bytes([7]))
gen_ec(s, 'other-id', id_=bytes([8]))
for cls in (CKO_DATA, CKO_SECRET_KEY, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY):
    out(PyKCS11.CKO[cls], labels(s, [(CKA_CLASS, cls)]))
    out(PyKCS11.CKO[cls], 'id 07', labels(s, [(CKA_CLASS, cls), (CKA_ID, bytes([7]))]))
out('id 07', labels(s, [(CKA_ID, bytes([7]))]))
out('all', labels(s, []))
out('token', count(s, [(CKA_TOKEN, True)]), 'session', count(s, [(CKA_TOKEN, False)]))
PY
