# Issue 17 item 6: C_InitPIN by the SO and C_SetPIN by the user and by the SO, as a
# provisioning script does them with PyKCS11.
py pins <<'PY'
from pycompat import *
lib = load()
slot = token_slot(lib)
s = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
attempt('so login', s.login, SO_PIN, user_type=CKU_SO)
attempt('init pin', s.initPin, '2468')
attempt('so set pin', s.setPin, SO_PIN, '8642')
attempt('so logout', s.logout)
attempt('user login with the new pin', s.login, '2468')
attempt('user set pin', s.setPin, '2468', '1357')
attempt('logout', s.logout)
attempt('user login with the old pin', s.login, '2468')
attempt('user login', s.login, '1357')
attempt('logout', s.logout)
attempt('so login with the new so pin', s.login, '8642', user_type=CKU_SO)
PY
