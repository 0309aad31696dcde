# Issue 17 item 11: keys asked for with CKA_EXTRACTABLE=TRUE or CKA_SENSITIVE=FALSE get
# what they asked for (or one documented refusal), and the attributes read back say so.
py flags <<'PY'
from pycompat import *
lib, s = session()
def aes(label, **extra):
    t = [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16), (CKA_TOKEN, True),
         (CKA_PRIVATE, True), (CKA_LABEL, label), (CKA_ENCRYPT, True), (CKA_DECRYPT, True)]
    t += [(getattr(PyKCS11, k), v) for k, v in extra.items()]
    return attempt('generate ' + label, s.generateKey, t, PyKCS11.Mechanism(CKM_AES_KEY_GEN))
for label, extra in (('extractable', dict(CKA_EXTRACTABLE=True, CKA_SENSITIVE=True)),
                     ('not-sensitive', dict(CKA_SENSITIVE=False, CKA_EXTRACTABLE=False)),
                     ('clear', dict(CKA_SENSITIVE=False, CKA_EXTRACTABLE=True))):
    k = aes(label, **extra)
    if k is not None:
        ext, sen = s.getAttributeValue(k, [CKA_EXTRACTABLE, CKA_SENSITIVE])
        out(label, 'CKA_EXTRACTABLE', bool(ext), 'CKA_SENSITIVE', bool(sen))
        v = attempt(label + ' read CKA_VALUE', s.getAttributeValue, k, [CKA_VALUE])
        if v is not None:
            out(label, 'value length', len(v[0]) if v[0] is not None else None)
pair = attempt('generate rsa-extractable', gen_rsa, s, 'rsa-extractable', CKA_EXTRACTABLE=True)
if pair is not None:
    out('rsa CKA_EXTRACTABLE', bool(s.getAttributeValue(pair[1], [CKA_EXTRACTABLE])[0]))
PY
