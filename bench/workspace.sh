# workspace.sh - sourced by run-comparison.sh, callgrind.sh and store-scale.sh.
#
# A benchmark workspace is one folder holding ONE SoftHSMv2 token directory
# with TWO tokens, so that the two sides never share a token:
#   raw          used by the backend module directly (plain AES token keys)
#   cmk-backend  behind cmkp11, which presents it as the token "cmkp11"
# plus the cmkp11 configuration, its store and log, and a copy of the module
# under test (so a rebuild by someone else in the middle of a run cannot
# change what is measured).
#
#   ws_setup DIR MODULE   create (or reuse) the workspace; exports
#                         SOFTHSM2_CONF, CMKP11_CONF, WS_DIR, WS_MODULE
#                         (the copy of MODULE), WS_BACKEND, WS_PIN
#   ws_machine            one line: cores, CPU, Debian, SoftHSMv2, OpenSSL
#   ws_module_desc        one line: git revision of the module's tree + hash

WS_BACKEND=${WS_BACKEND:-/usr/lib/softhsm/libsofthsm2.so}
WS_PIN=${WS_PIN:-1234}
WS_SO_PIN=${WS_SO_PIN:-5678}
WS_RAW_TOKEN=raw
WS_CMK_BACKEND_TOKEN=cmk-backend
WS_CMK_TOKEN=cmkp11

ws_die() {
	echo "${WS_PROG:-workspace}: $*" >&2
	exit 2
}

ws_token_exists() {
	softhsm2-util --show-slots 2>/dev/null |
		grep -Eq "^[[:space:]]*Label:[[:space:]]+$1[[:space:]]*\$"
}

ws_setup() {
	local dir=$1 module=$2
	[ -f "$module" ] || ws_die "module $module not found (build first)"
	mkdir -p "$dir/tokens" || ws_die "cannot create $dir"
	dir=$(cd "$dir" && pwd)
	cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
	export SOFTHSM2_CONF="$dir/softhsm2.conf"
	local t
	for t in "$WS_RAW_TOKEN" "$WS_CMK_BACKEND_TOKEN"; do
		ws_token_exists "$t" && continue
		softhsm2-util --init-token --free --label "$t" \
			--pin "$WS_PIN" --so-pin "$WS_SO_PIN" >/dev/null ||
			ws_die "cannot initialise token $t"
	done
	# allow_immediate_destroy: the keygen workloads destroy what they made;
	# without it each run would leave its CMKs (and their backend material)
	# pending deletion, and the token would grow from run to run.
	cat >"$dir/cmkp11.conf" <<CONF
[backend]
module = $WS_BACKEND
token_label = $WS_CMK_BACKEND_TOKEN

[token]
label = $WS_CMK_TOKEN
store = $dir/cmk.db

[log]
level = error
file = $dir/cmkp11.log

[policy]
allow_immediate_destroy = true
CONF
	export CMKP11_CONF="$dir/cmkp11.conf"
	# A private copy, replaced atomically, never rewritten under a run.
	cp "$module" "$dir/.libcmkp11.so.tmp" && mv -f "$dir/.libcmkp11.so.tmp" "$dir/libcmkp11.so" ||
		ws_die "cannot copy $module"
	WS_DIR=$dir
	WS_MODULE=$dir/libcmkp11.so
	WS_MODULE_SRC=$module
	export WS_DIR WS_MODULE WS_MODULE_SRC WS_BACKEND WS_PIN
}

ws_machine() {
	local cpu deb hsm ssl
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
	deb=$(cat /etc/debian_version 2>/dev/null || echo '?')
	hsm=$(dpkg-query -W -f '${Version}' libsofthsm2 2>/dev/null || softhsm2-util --version)
	ssl=$(openssl version 2>/dev/null | awk '{print $2}')
	echo "machine: nproc $(nproc), ${cpu:-unknown CPU}, Debian $deb, SoftHSMv2 $hsm (file store), OpenSSL ${ssl:-?}"
}

ws_module_desc() {
	local src=${WS_MODULE_SRC:-} rev='' dirty='' top
	top=$(cd "$(dirname "$src")/.." 2>/dev/null && git rev-parse --show-toplevel 2>/dev/null) || top=
	if [ -n "$top" ]; then
		rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null)
		git -C "$top" diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null ||
			dirty=' + uncommitted src changes'
	fi
	local bt=''
	[ -n "$top" ] && [ -f "$top/build/CMakeCache.txt" ] &&
		bt=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$top/build/CMakeCache.txt")
	echo "cmkp11 ${rev:-?}$dirty, ${bt:-unknown build type}, sha256 $(sha256sum "$WS_MODULE" | cut -c1-12)"
}

# Finds cmkbench: $CMKBENCH, then the main build, then next to this file.
ws_cmkbench() {
	local here c
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	for c in "${CMKBENCH:-}" "$here/../build/bench/cmkbench" "$here/cmkbench"; do
		if [ -n "$c" ] && [ -x "$c" ]; then
			echo "$c"
			return 0
		fi
	done
	ws_die "cmkbench not found; build the project or set CMKBENCH"
}

# ws_populate SIDE N: makes sure bench-obj-0..N-1 exist on one side, through
# cmkbench's own --objects preparation (resumes where an earlier run stopped).
ws_populate() {
	local side=$1 n=$2 module token cmkbench
	cmkbench=$(ws_cmkbench)
	case "$side" in
	raw) module=$WS_BACKEND token=$WS_RAW_TOKEN ;;
	cmkp11) module=$WS_MODULE token=$WS_CMK_TOKEN ;;
	*) ws_die "unknown side $side" ;;
	esac
	BENCH_PIN=$WS_PIN "$cmkbench" --module "$module" --token-label "$token" \
		--objects "$n" --workload find-by-label --count 1 >/dev/null
}

