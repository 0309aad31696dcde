# Issue 17 item 1: labels are not unique: two generations of a key under one label, and
# a find by that label returns every object carrying it.
run keygen-1 "${PL[@]}" --keypairgen --key-type RSA:2048 --label 'Test RSA 2048' --id 21
run keygen-2 "${PL[@]}" --keypairgen --key-type RSA:2048 --label 'Test RSA 2048' --id 22
run count-by-label "${PL[@]}" --list-objects --label 'Test RSA 2048'
py find-by-label <<'PY'
from pycompat import *
lib, s = session()
out('by label:', labels(s, [(CKA_LABEL, 'Test RSA 2048')]))
out('private by label:', count(s, [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_LABEL, 'Test RSA 2048')]))
PY
