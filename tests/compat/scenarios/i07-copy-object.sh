# Issue 17 item 7: C_CopyObject of a key into a session object (as OpenSSL's
# pkcs11-provider caches keys), and the copy used to sign. PyKCS11 1.5 has no
# copyObject: the call goes through ctypes to the same loaded module.
py copy <<'PY'
import ctypes
from pycompat import *

class Attr(ctypes.Structure):
    _fields_ = [('type', ctypes.c_ulong), ('pValue', ctypes.c_void_p), ('ulValueLen', ctypes.c_ulong)]

lib, s = session()
pub, prv = gen_ec(s, 'copy-me', id_=b'\x41')
raw = ctypes.CDLL(MODULE)  # the same module PyKCS11 loaded: one instance, one state
false = ctypes.c_ubyte(0)
tmpl = (Attr * 1)(Attr(CKA_TOKEN, ctypes.cast(ctypes.byref(false), ctypes.c_void_p), 1))
for name, obj in (('private', prv), ('public', pub)):
    new = ctypes.c_ulong(0)
    rv = raw.C_CopyObject(ctypes.c_ulong(s.session.value()), ctypes.c_ulong(obj.value()), tmpl, ctypes.c_ulong(1), ctypes.byref(new))
    out('copy %s: %s' % (name, PyKCS11.CKR.get(rv, hex(rv))))
    if rv == 0:
        copy = PyKCS11.CK_OBJECT_HANDLE(s)
        copy.assign(new.value)
        tok, lab = s.getAttributeValue(copy, [CKA_TOKEN, CKA_LABEL])
        out('copy %s: token=%s label=%s' % (name, bool(tok), text(lab)))
        if name == 'private':
            sig = attempt('sign with the copy', s.sign, copy, b'\x01' * 32, PyKCS11.Mechanism(CKM_ECDSA))
            if sig is not None:
                out('verify with the token public key:', s.verify(pub, b'\x01' * 32, sig, PyKCS11.Mechanism(CKM_ECDSA)))
out('session objects:', count(s, [(CKA_TOKEN, False)]))
out('token objects labelled copy-me:', count(s, [(CKA_TOKEN, True), (CKA_LABEL, 'copy-me')]))
PY
