# PyKCS11: the standard attributes a client reads of each kind of token key (AES, RSA,
# EC halves): classes, types, flags, lengths; and the sensitive values refused.
py key-attributes <<'PY'
from pycompat import *
lib, s = session()
aes = s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32), (CKA_TOKEN, True), (CKA_LABEL, 'py-attrs'), (CKA_ENCRYPT, True), (CKA_DECRYPT, True), (CKA_SENSITIVE, True), (CKA_PRIVATE, True)], PyKCS11.MechanismAESGENERATEKEY)
rpub, rprv = gen_rsa(s, 'py-attrs-rsa')
epub, eprv = gen_ec(s, 'py-attrs-ec')
names = [CKA_CLASS, CKA_KEY_TYPE, CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE, CKA_LOCAL, CKA_KEY_GEN_MECHANISM]
secret = [CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_VALUE_LEN]
for label, obj, extra in (('aes', aes, secret), ('rsa public', rpub, [CKA_MODULUS_BITS]), ('rsa private', rprv, secret[:4]),
                          ('ec public', epub, [CKA_EC_PARAMS]), ('ec private', eprv, secret[:4] + [CKA_EC_PARAMS])):
    vals = s.getAttributeValue(obj, names + extra)
    out(label, [(PyKCS11.CKA[t], bytes(v).hex() if isinstance(v, (list, tuple)) else v) for t, v in zip(names + extra, vals)])
for label, obj, t in (('aes', aes, CKA_VALUE), ('rsa private', rprv, CKA_PRIVATE_EXPONENT), ('ec private', eprv, CKA_VALUE)):
    attempt(label + ' secret value', s.getAttributeValue, obj, [t])
PY
