# PyKCS11: token data objects and certificates created with C_CreateObject, their
# attributes read and changed with C_SetAttributeValue, then destroyed.
run key openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem
run cert openssl req -new -x509 -key key.pem -subj /CN=py-cert -days 10 -set_serial 9 -outform DER -out cert.der
py objects <<'PY'
from pycompat import *
lib, s = session()
cert = open(WORK + '/cert.der', 'rb').read()
d = attempt('create data', s.createObject, [(CKA_CLASS, CKO_DATA), (CKA_TOKEN, True), (CKA_PRIVATE, False),
    (CKA_LABEL, 'py data'), (CKA_APPLICATION, 'compat'), (CKA_VALUE, b'payload')])
c = attempt('create cert', s.createObject, [(CKA_CLASS, CKO_CERTIFICATE), (CKA_CERTIFICATE_TYPE, CKC_X_509),
    (CKA_TOKEN, True), (CKA_LABEL, 'py cert'), (CKA_ID, b'\x63'), (CKA_VALUE, cert),
    (CKA_SUBJECT, b'\x30\x00')])
if d is not None:
    out('data value', bytes(s.getAttributeValue(d, [CKA_VALUE])[0]))
    attempt('relabel data', s.setAttributeValue, d, [(CKA_LABEL, 'py data 2')])
    out('data label', s.getAttributeValue(d, [CKA_LABEL])[0])
if c is not None:
    out('cert value same', bytes(s.getAttributeValue(c, [CKA_VALUE])[0]) == cert)
    attempt('set cert id', s.setAttributeValue, c, [(CKA_ID, b'\x64')])
    out('cert id', bytes(s.getAttributeValue(c, [CKA_ID])[0]).hex())
out('token objects:', labels(s, [(CKA_TOKEN, True)]))
for o in (d, c):
    if o is not None:
        attempt('destroy', s.destroyObject, o)
out('token objects:', labels(s, [(CKA_TOKEN, True)]))
PY
