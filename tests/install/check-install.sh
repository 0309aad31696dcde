#!/bin/bash
# check-install.sh SOURCE_DIR WORK_DIR - configures and builds cmkp11 with prefix /usr, as
# a distribution package would, installs it into a DESTDIR and checks what lands where:
# the module in the multiarch pkcs11 folder, the config in /etc/cmkp11 (where the module,
# cmkctl and the rotation units look), the header compiling on its own, pkg-config's
# answers, and the systemd units naming the installed paths.
set -euo pipefail
src=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
build=$work/build dest=$work/root
failures=0
check() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        echo "ok - $what"
    else
        echo "not ok - $what"
        failures=$((failures + 1))
    fi
}
cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
DESTDIR=$dest cmake --install "$build" >/dev/null
libdir=$(cd "$build" && sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' CMakeCache.txt)
check "the module is in /usr/$libdir/pkcs11" test -f "$dest/usr/$libdir/pkcs11/libcmkp11.so"
check "the config is in /etc/cmkp11 (not usr/etc)" test -f "$dest/etc/cmkp11/cmkp11.conf"
check "nothing went to usr/etc" test ! -e "$dest/usr/etc"
check "the module looks for /etc/cmkp11/cmkp11.conf" \
    grep -q /etc/cmkp11/cmkp11.conf "$dest/usr/$libdir/pkcs11/libcmkp11.so"
check "cmkctl is in /usr/bin" test -x "$dest/usr/bin/cmkctl"
check "cmkctl looks for /etc/cmkp11/cmkp11.conf" grep -q /etc/cmkp11/cmkp11.conf "$dest/usr/bin/cmkctl"
unit=$dest/usr/lib/systemd/system/cmkp11-rotate.service
[ -f "$unit" ] || unit=$dest/lib/systemd/system/cmkp11-rotate.service
[ -f "$unit" ] || unit=$dest/usr/lib/systemd/system/cmkp11-rotate.service
check "the rotation unit is installed" test -f "$unit"
check "the rotation unit names /etc/cmkp11/cmkp11.conf" grep -q "CMKP11_CONF=/etc/cmkp11/cmkp11.conf" "$unit"
check "the rotation unit runs /usr/bin/cmkctl" grep -q "/usr/bin/cmkctl" "$unit"
check "the p11-kit module file is installed" test -f "$dest/usr/share/p11-kit/modules/cmkp11.module"
# pkg-config, against a copy of the installed .pc whose prefix is moved into the DESTDIR
# (a sysroot or --define-variable would move p11-kit's system include path too).
check "cmkp11.pc is installed" test -f "$dest/usr/$libdir/pkgconfig/cmkp11.pc"
mkdir -p "$work/pc"
sed "s|^prefix=.*|prefix=$dest/usr|" "$dest/usr/$libdir/pkgconfig/cmkp11.pc" >"$work/pc/cmkp11.pc"
export PKG_CONFIG_PATH=$work/pc
pc() { pkg-config "$@"; }
check "pkg-config knows cmkp11" pc --exists cmkp11
check "pkg-config --libs cmkp11 links nothing (the module is loaded, not linked)" \
    test -z "$(pc --libs cmkp11 | tr -d ' ')"
check "pkg-config names the module path" \
    test "$(pc --variable=p11_module_path cmkp11)" = "$dest/usr/$libdir/pkcs11/libcmkp11.so"
# The header on its own, and after another PKCS#11 header.
printf '#include <cmkp11/cmkp11.h>\nint main(void) { return CKA_CMK_KEY_ID == 0; }\n' >"$work/alone.c"
printf '#include <p11-kit/pkcs11.h>\n#include <cmkp11/cmkp11.h>\nint main(void) { return CKA_CMK_ALIAS == 0; }\n' >"$work/after.c"
# shellcheck disable=SC2046 # pkg-config's flags are words
check "<cmkp11/cmkp11.h> compiles on its own" \
    cc -Wall -Werror $(pc --cflags cmkp11) -o "$work/alone" "$work/alone.c"
# shellcheck disable=SC2046
check "<cmkp11/cmkp11.h> compiles after <p11-kit/pkcs11.h>" \
    cc -Wall -Werror $(pc --cflags cmkp11) -o "$work/after" "$work/after.c"
if [ "$failures" -ne 0 ]; then
    echo "# check-install.sh: $failures checks failed"
    exit 1
fi
echo "# check-install.sh: all checks passed"
