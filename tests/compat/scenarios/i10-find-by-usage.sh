# Issue 17 item 10: finds by CKA_SIGN=TRUE, CKA_ENCRYPT=TRUE, CKA_DECRYPT=TRUE and
# CKA_DERIVE=TRUE count the objects the templates asked for.
run rsa "${PL[@]}" --keypairgen --key-type RSA:2048 --label f-rsa --id 51
run ec "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label f-ec --id 52
run ec-derive "${PL[@]}" --keypairgen --key-type EC:prime256v1 --usage-derive --label f-ecdh --id 53
run aes "${PL[@]}" --keygen --key-type AES:32 --label f-aes --id 54
py finds <<'PY'
from pycompat import *
lib, s = session()
for attr in ('CKA_SIGN', 'CKA_VERIFY', 'CKA_ENCRYPT', 'CKA_DECRYPT', 'CKA_DERIVE', 'CKA_WRAP', 'CKA_UNWRAP'):
    out(attr, '=TRUE:', labels(s, [(getattr(PyKCS11, attr), True)]))
PY
