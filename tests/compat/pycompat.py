"""pycompat.py - what every PyKCS11 scenario of the compat harness shares.

A scenario prints only what is deterministic on a correct module: return-code names,
counts, attribute values it chose, lengths; never handles or random bytes. A call that
fails prints its CKR_ name and the scenario goes on, as a client's test suite would
report it.
"""
import sys

import PyKCS11
from PyKCS11 import LowLevel as LL  # noqa: F401 (scenarios use the constants)
from PyKCS11.LowLevel import *  # noqa: F401,F403

MODULE, PIN, SO_PIN, TOKEN, WORK = sys.argv[1:6]


def out(*parts):
    print(*parts, flush=True)


def load():
    lib = PyKCS11.PyKCS11Lib()
    lib.load(MODULE)
    return lib


def token_slot(lib, label=None):
    label = TOKEN if label is None else label
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.strip() == label:
            return slot
    raise SystemExit('no token labelled %r' % label)


def session(lib=None, login=True, rw=True):
    lib = lib or load()
    flags = PyKCS11.CKF_SERIAL_SESSION | (PyKCS11.CKF_RW_SESSION if rw else 0)
    s = lib.openSession(token_slot(lib), flags)
    if login:
        s.login(PIN)
    return lib, s


def ckr(e):
    """The CKR_ name of a PyKCS11Error."""
    return PyKCS11.CKR.get(e.value, hex(e.value)) if isinstance(e, PyKCS11.PyKCS11Error) else type(e).__name__


def attempt(what, fn, *args, **kw):
    """Calls fn, prints 'what: CKR_OK' or its error's name, returns its value or None."""
    try:
        value = fn(*args, **kw)
    except PyKCS11.PyKCS11Error as e:
        out('%s: %s' % (what, ckr(e)))
        return None
    out('%s: CKR_OK' % what)
    return value


def count(s, template):
    return len(s.findObjects(template))


def text(value):
    """A CKA_LABEL as text: PyKCS11 gives a str, or a byte list for odd encodings."""
    if value is None or isinstance(value, str):
        return value
    return bytes(value).decode('utf-8', 'replace')


def labels(s, template):
    """Sorted (class, label) of what a find returns: the view a client gets."""
    got = []
    for o in s.findObjects(template):
        cls, label = s.getAttributeValue(o, [PyKCS11.CKA_CLASS, PyKCS11.CKA_LABEL])
        got.append((PyKCS11.CKO[cls], text(label)))
    return sorted(got, key=repr)


def gen_rsa(s, label, bits=2048, id_=None, **flags):
    pub = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_TOKEN, True),
           (PyKCS11.CKA_MODULUS_BITS, bits), (PyKCS11.CKA_PUBLIC_EXPONENT, (1, 0, 1)),
           (PyKCS11.CKA_LABEL, label), (PyKCS11.CKA_VERIFY, True), (PyKCS11.CKA_ENCRYPT, True)]
    prv = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_TOKEN, True),
           (PyKCS11.CKA_PRIVATE, True), (PyKCS11.CKA_SENSITIVE, True),
           (PyKCS11.CKA_LABEL, label), (PyKCS11.CKA_SIGN, True), (PyKCS11.CKA_DECRYPT, True)]
    if id_ is not None:
        pub.append((PyKCS11.CKA_ID, id_))
        prv.append((PyKCS11.CKA_ID, id_))
    for k, v in flags.items():
        prv.append((getattr(PyKCS11, k), v))
    return s.generateKeyPair(pub, prv, mecha=PyKCS11.MechanismRSAGENERATEKEYPAIR)


P256 = bytes.fromhex('06082a8648ce3d030107')


def gen_ec(s, label, params=P256, id_=None, pub_extra=(), prv_extra=()):
    pub = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_TOKEN, True),
           (PyKCS11.CKA_EC_PARAMS, params), (PyKCS11.CKA_LABEL, label),
           (PyKCS11.CKA_VERIFY, True)] + list(pub_extra)
    prv = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_TOKEN, True),
           (PyKCS11.CKA_PRIVATE, True), (PyKCS11.CKA_SENSITIVE, True),
           (PyKCS11.CKA_LABEL, label), (PyKCS11.CKA_SIGN, True)] + list(prv_extra)
    if id_ is not None:
        pub.append((PyKCS11.CKA_ID, id_))
        prv.append((PyKCS11.CKA_ID, id_))
    return s.generateKeyPair(pub, prv, mecha=PyKCS11.MechanismECGENERATEKEYPAIR)
