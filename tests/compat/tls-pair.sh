#!/bin/bash
# tls-pair.sh DIR SHOW SERVER... -- CLIENT...: one TLS handshake for a compat scenario,
# run by lib.sh's `tls` inside `unshare --net`: a network namespace of its own with
# only loopback, so the server listens where nothing else can reach it and the two
# sides of the harness (or two harness runs) never fight over the port.
# Prints the client's lines (stdout, then stderr) that match the ERE SHOW (the deterministic ones: protocol,
# cipher suite, verification; not session ids or tickets) and exits with its status.
set -u
dir=$1 show=$2
shift 2
server=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do server+=("$1"); shift; done
shift
ip link set lo up
"${server[@]}" >"$dir/tls-server.log" 2>&1 </dev/null &
pid=$!
# Wait (at most 10 s) until the server listens; a probe that only connects and closes
# is harmless to s_server and gnutls-serv, which both keep accepting.
for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/4433) 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
rc=0
# The client's stdout and stderr apart: interleaved, their order would hang on buffering.
timeout 15 "$@" </dev/null >"$dir/tls-client.out" 2>"$dir/tls-client.err" || rc=$?
grep -E -- "$show" "$dir/tls-client.out"
grep -E -- "$show" "$dir/tls-client.err" >&2
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
exit $rc
