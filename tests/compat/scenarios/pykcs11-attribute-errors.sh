# PyKCS11: what C_GetAttributeValue answers for secrets, attributes a class lacks, and
# C_SetAttributeValue on read-only and on changeable attributes.
py attrs <<'PY'
from pycompat import *
lib, s = session()
pub, prv = gen_ec(s, 'attrs', id_=b'\x71')
def get(what, obj, attr):
    try:
        v = s.getAttributeValue(obj, [attr], allAsBinary=True)[0]
        out(what, 'CKR_OK', None if v is None else len(v))
    except PyKCS11.PyKCS11Error as e:
        out(what, ckr(e))
get('private CKA_VALUE', prv, CKA_VALUE)
get('private CKA_MODULUS', prv, CKA_MODULUS)
get('public CKA_EC_POINT', pub, CKA_EC_POINT)
get('public CKA_VALUE', pub, CKA_VALUE)
get('private CKA_LABEL', prv, CKA_LABEL)
attempt('set private CKA_SENSITIVE false', s.setAttributeValue, prv, [(CKA_SENSITIVE, False)])
attempt('set private CKA_EXTRACTABLE true', s.setAttributeValue, prv, [(CKA_EXTRACTABLE, True)])
attempt('set private CKA_KEY_TYPE', s.setAttributeValue, prv, [(CKA_KEY_TYPE, CKK_RSA)])
attempt('set private CKA_SIGN false', s.setAttributeValue, prv, [(CKA_SIGN, False)])
out('private CKA_SIGN', bool(s.getAttributeValue(prv, [CKA_SIGN])[0]))
attempt('set public CKA_LABEL', s.setAttributeValue, pub, [(CKA_LABEL, 'attrs-pub')])
out('labels', labels(s, [(CKA_ID, b'\x71')]))
PY
