# Issue 17 item 1: a test program that generates in setUp with a label like a
# sentence, logs out in tearDown, and runs twice: a failed generation must not leave
# the next setUp in CKR_USER_ALREADY_LOGGED_IN.
py setup-teardown <<'PY'
from pycompat import *
lib = load()
slot = token_slot(lib)
for n in range(2):
    s = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
    attempt('round %d login' % n, s.login, PIN)
    attempt('round %d generate' % n, gen_ec, s, 'My Test Key %d' % n)
    attempt('round %d logout' % n, s.logout)
    s.closeSession()
PY
