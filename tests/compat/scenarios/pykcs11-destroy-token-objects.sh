# PyKCS11: token objects of each kind destroyed one by one (a data object, an AES key, each
# half of a pair), each answering as on the backend, and the listing after each.
py destroy-token-objects <<'PY'
from pycompat import *
lib, s = session()
s.createObject([(CKA_CLASS, CKO_DATA), (CKA_TOKEN, True), (CKA_LABEL, 'note'), (CKA_VALUE, b'v')])
s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32), (CKA_TOKEN, True), (CKA_LABEL, 'gone-aes'), (CKA_ENCRYPT, True), (CKA_DECRYPT, True)], PyKCS11.MechanismAESGENERATEKEY)
gen_ec(s, 'gone-ec', id_=b'\x05')
out('start', labels(s, []))
for cls, label in ((CKO_DATA, 'note'), (CKO_SECRET_KEY, 'gone-aes'), (CKO_PUBLIC_KEY, 'gone-ec'), (CKO_PRIVATE_KEY, 'gone-ec')):
    objs = s.findObjects([(CKA_CLASS, cls), (CKA_LABEL, label)])
    attempt('destroy %s %s' % (PyKCS11.CKO[cls], label), s.destroyObject, objs[0])
    out('now', labels(s, []))
PY
