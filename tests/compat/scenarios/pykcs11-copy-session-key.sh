# PyKCS11 (through ctypes, as PyKCS11 has no copyObject): a session AES key copied to
# another session object with a new label; the copy encrypts as the source.
py copy-session-key <<'PY'
import ctypes
from pycompat import *
class Attr(ctypes.Structure):
    _fields_ = [('type', ctypes.c_ulong), ('pValue', ctypes.c_void_p), ('ulValueLen', ctypes.c_ulong)]
lib, s = session()
key = s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16), (CKA_TOKEN, False), (CKA_ENCRYPT, True), (CKA_LABEL, 'src')], PyKCS11.MechanismAESGENERATEKEY)
raw = ctypes.CDLL(MODULE)
label = ctypes.create_string_buffer(b'copied')
tmpl = (Attr * 1)(Attr(CKA_LABEL, ctypes.cast(label, ctypes.c_void_p), 6))
new = ctypes.c_ulong(0)
rv = raw.C_CopyObject(ctypes.c_ulong(s.session.value()), ctypes.c_ulong(key.value()), tmpl, ctypes.c_ulong(1), ctypes.byref(new))
out('copy:', PyKCS11.CKR.get(rv, hex(rv)))
if rv == 0:
    copy = PyKCS11.CK_OBJECT_HANDLE(s)
    copy.assign(new.value)
    out('copy label', text(s.getAttributeValue(copy, [CKA_LABEL])[0]))
    ecb = PyKCS11.Mechanism(CKM_AES_ECB)
    out('same key', bytes(s.encrypt(key, bytes(16), ecb)) == bytes(s.encrypt(copy, bytes(16), ecb)))
out('session objects', labels(s, [(CKA_TOKEN, False)]))
PY
