# PyKCS11: random bytes of several lengths, and seeding the generator.
py random-lengths <<'PY'
from pycompat import *
lib, s = session()
for n in (1, 16, 32, 1024, 4096):
    r = attempt('random %d' % n, s.generateRandom, n)
    if r is not None:
        out(n, 'bytes:', len(r))
attempt('seed', s.seedRandom, b'entropy from the client')
PY
