# PyKCS11: finds by class, key type, ID and label over a token holding RSA, EC, AES
# keys, a certificate and a data object, before and after login.
run rsa "${PL[@]}" --keypairgen --key-type RSA:2048 --label ft-rsa --id 01
run ec "${PL[@]}" --keypairgen --key-type EC:prime256v1 --label ft-ec --id 02
run aes "${PL[@]}" --keygen --key-type AES:16 --private --label ft-aes --id 03
run ca-key openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.pem
run ca-cert openssl req -new -x509 -key ca.pem -subj /CN=ft-ca -days 10 -set_serial 4 -outform DER -out ca.der
run cert "${PL[@]}" --write-object ca.der --type cert --id 02 --label ft-ec
printf 'data\n' >d.bin
run data "${PL[@]}" --write-object d.bin --type data --label ft-data
py finds <<'PY'
from pycompat import *
lib, s = session(login=False)
def show(title):
    out(title)
    for name, t in (('all', []), ('private keys', [(CKA_CLASS, CKO_PRIVATE_KEY)]),
                    ('public keys', [(CKA_CLASS, CKO_PUBLIC_KEY)]), ('secret keys', [(CKA_CLASS, CKO_SECRET_KEY)]),
                    ('certificates', [(CKA_CLASS, CKO_CERTIFICATE)]), ('data', [(CKA_CLASS, CKO_DATA)]),
                    ('RSA', [(CKA_KEY_TYPE, CKK_RSA)]), ('EC', [(CKA_KEY_TYPE, CKK_EC)]),
                    ('id 02', [(CKA_ID, b'\x02')]), ('label ft-ec', [(CKA_LABEL, 'ft-ec')]),
                    ('token', [(CKA_TOKEN, True)]), ('private', [(CKA_PRIVATE, True)])):
        out(' ', name, labels(s, t))
show('before login')
s.login(PIN)
show('after login')
PY
