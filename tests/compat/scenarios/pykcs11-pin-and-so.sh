# PyKCS11: the SO logs in, sets the user PIN; the user logs in with it, changes it, and a
# wrong PIN is refused.
py pin-and-so <<'PY'
from pycompat import *
lib, s = session(login=False)
attempt('SO login', s.login, SO_PIN, user_type=PyKCS11.CKU_SO)
attempt('init user PIN', s.initPin, '4321')
attempt('SO logout', s.logout)
attempt('old PIN', s.login, PIN)
attempt('new PIN', s.login, '4321')
attempt('change PIN', s.setPin, '4321', '9876')
attempt('logout', s.logout)
attempt('wrong PIN', s.login, '0000')
attempt('changed PIN', s.login, '9876')
out('user functions', s.getSessionInfo().state)
PY
