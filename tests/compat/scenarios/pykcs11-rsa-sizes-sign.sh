# PyKCS11: RSA pairs of 1024, 3072 and 4096 bits (1024 is no cloud spec, accepted as on
# the backend) sign with SHA-256 and PKCS#1 v1.5 and verify.
py rsa-sizes-sign <<'PY'
from pycompat import *
lib, s = session()
for bits in (1024, 3072, 4096):
    pair = attempt('generate %d' % bits, gen_rsa, s, 'py-rsa-%d' % bits, bits=bits)
    if pair:
        pub, prv = pair
        sig = s.sign(prv, b'x', PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS))
        out(bits, 'signature length', len(sig), 'verifies', s.verify(pub, b'x', sig, PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS)))
        out(bits, 'CKA_MODULUS_BITS', s.getAttributeValue(pub, [CKA_MODULUS_BITS])[0])
PY
