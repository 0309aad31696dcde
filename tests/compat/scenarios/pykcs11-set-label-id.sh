# PyKCS11: a client renames keys (label and id of an AES key and of each half of an EC
# pair) and finds them by the new values, the old ones gone.
py set-label-id <<'PY'
from pycompat import *
lib, s = session()
aes = s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32), (CKA_TOKEN, True), (CKA_LABEL, 'old-aes'), (CKA_ENCRYPT, True), (CKA_DECRYPT, True)], PyKCS11.MechanismAESGENERATEKEY)
pub, prv = gen_ec(s, 'old-ec', id_=b'\x01')
attempt('relabel aes', s.setAttributeValue, aes, [(CKA_LABEL, 'new-aes'), (CKA_ID, b'\x0a')])
attempt('relabel private', s.setAttributeValue, prv, [(CKA_LABEL, 'new-ec'), (CKA_ID, b'\x02')])
attempt('relabel public', s.setAttributeValue, pub, [(CKA_LABEL, 'new-ec'), (CKA_ID, b'\x02')])
for label in ('old-aes', 'new-aes', 'old-ec', 'new-ec'):
    out(label, labels(s, [(CKA_LABEL, label)]))
for id_ in (b'\x01', b'\x02', b'\x0a'):
    out('id', id_.hex(), labels(s, [(CKA_ID, id_)]))
PY
