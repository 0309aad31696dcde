# PyKCS11: digests on the token (compared with Python's hashlib), multi-part
# digesting, and random bytes of the lengths asked for.
py digest <<'PY'
import hashlib
from pycompat import *
lib, s = session(login=False)
data = b'compat digest ' * 100
for mech, name in ((CKM_SHA_1, 'sha1'), (CKM_SHA256, 'sha256'), (CKM_SHA384, 'sha384'), (CKM_SHA512, 'sha512')):
    d = attempt('digest ' + name, s.digest, data, PyKCS11.Mechanism(mech))
    if d is not None:
        out(name, 'matches hashlib', bytes(d) == hashlib.new(name, data).digest())
ds = s.digestSession(PyKCS11.Mechanism(CKM_SHA256))
for i in range(0, len(data), 333):
    ds.update(data[i:i + 333])
out('multi-part sha256 matches', bytes(ds.final()) == hashlib.sha256(data).digest())
for n in (1, 32, 1000):
    r = attempt('random %d' % n, s.generateRandom, n)
    if r is not None:
        out('random length', len(r))
PY
