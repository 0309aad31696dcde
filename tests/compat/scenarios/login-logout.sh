# Login with the right and a wrong PIN, what each session sees, and logout.
run keygen "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label li --id d1
run wrong-pin "${P[@]}" --login --pin 9999 --list-objects
run right-pin "${PL[@]}" --list-objects
run no-login "${P[@]}" --list-objects
py states <<'PY'
from pycompat import *
lib = load()
s = lib.openSession(token_slot(lib), CKF_SERIAL_SESSION | CKF_RW_SESSION)
out('state', PyKCS11.CKS[s.getSessionInfo().state])
attempt('login wrong', s.login, '0000')
attempt('login', s.login, PIN)
out('state', PyKCS11.CKS[s.getSessionInfo().state])
attempt('login again', s.login, PIN)
attempt('logout', s.logout)
attempt('logout again', s.logout)
out('state', PyKCS11.CKS[s.getSessionInfo().state])
out('private keys after logout', count(s, [(CKA_CLASS, CKO_PRIVATE_KEY)]))
PY
