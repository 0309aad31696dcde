# PyKCS11: digests of each SHA size over empty, short and long input (the token's digest is
# compared with Python's).
py digest-sizes <<'PY'
from pycompat import *
lib, s = session()
import hashlib
for name, mech, fn in (('SHA1', CKM_SHA_1, hashlib.sha1), ('SHA224', CKM_SHA224, hashlib.sha224), ('SHA256', CKM_SHA256, hashlib.sha256),
                       ('SHA384', CKM_SHA384, hashlib.sha384), ('SHA512', CKM_SHA512, hashlib.sha512), ('MD5', CKM_MD5, hashlib.md5)):
    for data in (b'', b'abc', bytes(100000)):
        d = attempt('%s over %d bytes' % (name, len(data)), s.digest, data, PyKCS11.Mechanism(mech))
        if d is not None:
            out(name, len(data), 'matches', bytes(d) == fn(data).digest())
PY
