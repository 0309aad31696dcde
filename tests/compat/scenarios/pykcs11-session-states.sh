# PyKCS11: session states and flags through logins and logouts in read-only and
# read/write sessions, and what each session sees.
py session-states <<'PY'
from pycompat import *
lib = load()
slot = token_slot(lib)
ro = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
rw = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
def state(tag):
    for name, s in (('ro', ro), ('rw', rw)):
        i = s.getSessionInfo()
        out(tag, name, i.state, sorted(i.flags2text()))
state('before login')
attempt('login on the read-only session', ro.login, PIN)
state('logged in')
attempt('second login', rw.login, PIN)
attempt('generate in read-only', ro.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16), (CKA_TOKEN, True)], PyKCS11.MechanismAESGENERATEKEY)
attempt('generate in read/write', rw.generateKey, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 16), (CKA_TOKEN, True), (CKA_LABEL, 'rw')], PyKCS11.MechanismAESGENERATEKEY)
out('secret keys seen by ro', count(ro, [(CKA_CLASS, CKO_SECRET_KEY)]))
attempt('logout', rw.logout)
state('logged out')
out('secret keys seen after logout', count(ro, [(CKA_CLASS, CKO_SECRET_KEY)]))
attempt('close all', lib.closeAllSessions, slot)
attempt('session info after close all', rw.getSessionInfo)
PY
