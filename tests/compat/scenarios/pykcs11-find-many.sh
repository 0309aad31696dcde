# PyKCS11: forty data objects and ten AES keys on the token, found by class, by label
# prefix groups and all at once (the find runs over several C_FindObjects batches).
py find-many <<'PY'
from pycompat import *
lib, s = session()
for i in range(40):
    s.createObject([(CKA_CLASS, CKO_DATA), (CKA_TOKEN, True), (CKA_LABEL, 'note-%02d' % i), (CKA_VALUE, b'%d' % i)])
for i in range(10):
    s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16), (CKA_TOKEN, True), (CKA_LABEL, 'key-%d' % (i % 3))], PyKCS11.MechanismAESGENERATEKEY)
out('data objects', count(s, [(CKA_CLASS, CKO_DATA)]))
out('secret keys', count(s, [(CKA_CLASS, CKO_SECRET_KEY)]))
for label in ('key-0', 'key-1', 'key-2', 'note-07', 'absent'):
    out(label, count(s, [(CKA_LABEL, label)]))
out('all token objects', count(s, [(CKA_TOKEN, True)]))
out('everything', count(s, []))
PY
