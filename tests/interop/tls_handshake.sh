#!/bin/bash
# tls_handshake.sh - a TLS server whose private key is a cmkp11 CMK: an EC P-256 key
# made on the token, a self-signed certificate from `openssl req -x509` through the
# libp11 pkcs11 engine, that certificate written into the token beside its key, and
# `openssl s_server` (key by PKCS#11 URI through the engine) answering `openssl
# s_client` on 127.0.0.1 with TLS 1.3 and TLS 1.2. The client verifies the chain
# against our certificate, and the certificate's key is the token's, so a completed
# handshake proves the token signed it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

require_tool openssl openssl
require_tool pkcs11-tool opensc
engine_setup

W=$CMK_WORK
P=(pkcs11-tool --module "$CMK_MODULE" --login --pin "$CMK_PIN")
KEY=tls-server
KID=21

KEY_URI="pkcs11:token=$CMK_TOKEN;object=$KEY;type=private;pin-value=$CMK_PIN"

# The module traces every call at level debug: the handshakes' signatures must show up
# in cmkp11's own log, proof that the engine used this module and no system one.
module_trace

# --- the key and its certificate ------------------------------------------------------------
ok keypairgen-ec "${P[@]}" --keypairgen --key-type EC:prime256v1 --label "$KEY" --id "$KID"
ok read-pub "${P[@]}" --read-object --type pubkey --label "$KEY" -o "$W/key.pub.der"
store store-key "select cast(label as text) || '|' || key_spec || '|' || state from cmk"
has store-key "^$KEY\|EC_P256\|1\$" "the server key is CMK $KEY (EC_P256, Enabled)"

signs_before=$(module_signs)
ok req-x509 "${E[@]}" req -new -x509 -engine pkcs11 -keyform engine -key "$KEY_URI" \
    -subj "/CN=cmkp11-tls" -addext "subjectAltName=IP:127.0.0.1" -days 1 -sha256 -out "$W/cert.pem"
signed_through_module "req-x509: the engine signed the certificate through cmkp11" "$signs_before"
openssl x509 -in "$W/cert.pem" -outform DER -out "$W/cert.der" || fail "cannot convert the certificate"
openssl x509 -in "$W/cert.pem" -noout -pubkey >"$W/cert.pub.pem" || true
pub_to_der "$W/cert.pub.pem" "$W/cert.pub.der" || true
check "the certificate's public key is the token key's" cmp "$W/key.pub.der" "$W/cert.pub.der"
check "the certificate's self-signature verifies" openssl verify -CAfile "$W/cert.pem" "$W/cert.pem"

# --- the certificate on the token, beside its key -------------------------------------------
ok write-cert "${P[@]}" --write-object "$W/cert.der" --type cert --id "$KID" --label "$KEY"
ok list-objects "${P[@]}" -O
count_is list-objects "^Certificate Object; type = X\.509 cert" 1 "one X.509 certificate object"
block list-objects "^Certificate Object" cert-obj
has cert-obj "^[[:space:]]*label:[[:space:]]+$KEY\$" "the certificate's label is $KEY"
has cert-obj "^[[:space:]]*subject:[[:space:]]+DN: CN ?= ?cmkp11-tls" "the certificate's subject is CN=cmkp11-tls"
has cert-obj "^[[:space:]]*ID:[[:space:]]+$KID\$" "the certificate has the key's id $KID"
count_is list-objects "^[[:space:]]*ID:[[:space:]]+$KID\$" 3 "id $KID on the private key, public key and certificate"
lacks list-objects "label:[[:space:]]+cmkp11/" "no backend material label (cmkp11/...) is shown"
ok read-cert "${P[@]}" --read-object --type cert --id "$KID" -o "$W/cert.back.der"
check "the certificate read back from the token is the one written" cmp "$W/cert.der" "$W/cert.back.der"

# --- s_server with the token key <-> s_client ---------------------------------------------
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
trap stop_server EXIT
trap 'exit 143' TERM INT # the EXIT trap stops the server then too

port_busy() { # something already answers on 127.0.0.1:$1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_server: s_server on the first free port of a few random ones in 20000-40000,
# bounded by timeout; it prints ACCEPT once it listens. Sets PORT and SERVER_PID.
start_server() {
    local _
    PORT=
    for _ in 1 2 3 4 5 6 7 8; do
        local p=$((20000 + RANDOM % 20000))
        port_busy "$p" && continue
        printf '$ %s\n' "${E[*]} s_server -engine pkcs11 -keyform engine -key '$KEY_URI' -cert $W/cert.pem -accept 127.0.0.1:$p -www"
        timeout --kill-after=5 "$STEP_TIMEOUT" "${E[@]}" s_server -engine pkcs11 -keyform engine \
            -key "$KEY_URI" -cert "$W/cert.pem" -accept "127.0.0.1:$p" -www \
            >"$OUT/s_server" 2>&1 </dev/null &
        SERVER_PID=$!
        for _ in $(seq 1 100); do
            if grep -q '^ACCEPT' "$OUT/s_server"; then
                PORT=$p
                return 0
            fi
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        sed 's/^/    /' "$OUT/s_server"
        stop_server
    done
    return 1
}

if start_server; then
    pass "s_server with the token key listens on 127.0.0.1:$PORT"
    signs_before=$(module_signs)
    for v in tls1_3 tls1_2; do
        proto="TLSv1\\.${v#tls1_}"
        ok "s_client-$v" openssl s_client -connect "127.0.0.1:$PORT" -"$v" -CAfile "$W/cert.pem" \
            -verify_return_error -verify_ip 127.0.0.1 -showcerts </dev/null
        has "s_client-$v" "^[[:space:]]*Verify return code: 0 \(ok\)" "$v: the client verifies the server against our certificate"
        has "s_client-$v" "^Peer signature type: ECDSA\$" "$v: the server signed the handshake with ECDSA"
        has "s_client-$v" "^New, $proto, Cipher is [A-Z]" "$v: a new $v handshake completed"
        has "s_client-$v" "^subject=CN ?= ?cmkp11-tls\$" "$v: the server's certificate subject is CN=cmkp11-tls"
        # The certificate the server sent is byte for byte ours.
        awk '/-----BEGIN CERTIFICATE-----/ {p = 1} p {print} /-----END CERTIFICATE-----/ {exit}' \
            "$OUT/s_client-$v" >"$W/peer-$v.pem"
        openssl x509 -in "$W/peer-$v.pem" -outform DER -out "$W/peer-$v.der" 2>/dev/null || true
        check "$v: the server's certificate is ours" cmp "$W/cert.der" "$W/peer-$v.der"
    done

    signed_through_module "cmkp11 made a signature for each handshake (2 more C_Sign)" "$signs_before" 2

    # Not vacuous: against another CA the same client refuses the server.
    openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/other.key" \
        -subj "/CN=cmkp11-tls" -days 1 -out "$W/other.pem" 2>/dev/null || fail "cannot make the other certificate"
    run s_client-other-ca openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$W/other.pem" \
        -verify_return_error </dev/null
    if [ "$RC" -ne 0 ] && grep -Eq "Verify return code: [1-9]|verify error" "$OUT/s_client-other-ca"; then
        pass "a client trusting another certificate refuses the server"
    else
        fail "a client trusting another certificate did not refuse the server (exit $RC)"
    fi
    server=$SERVER_PID
    stop_server
    check_not "the server is stopped" kill -0 "$server"
else
    fail "s_server did not start on any of 8 ports"
fi

finish
