#!/bin/bash
# build.sh -- builds ngx_http_sessiond_module.so against Debian's nginx-dev
# (the headers and configure of the very nginx Debian ships), so that
# Debian's /usr/sbin/nginx loads it with load_module. Run by
# `make nginx-module`, after it built the core library position-independent:
#
#   nginx/build.sh CORE_LIB OUT_DIR
#
# nginx-dev's files are those of the installed package when there is one;
# otherwise the package of the installed nginx's exact version is fetched
# (apt-get download, 180 kB) and unpacked into OUT_DIR/nginx-dev, without the
# fifty-odd packages installing it would pull (debhelper, libperl-dev,
# libgd-dev...), which building a module never uses. Besides nginx it needs
# a C compiler, libssl-dev, libpcre2-dev and zlib1g-dev (configure's probes;
# scripts/deps.sh test installs them).
#
# configure runs once per OUT_DIR (its probes take a while); the module is
# rebuilt by nginx's own Makefile, then its binary compatibility with the
# installed nginx is checked (the signature nginx compares at load).
set -euo pipefail
core_lib=$(realpath "$1")
out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "nginx-module: $*" >&2; exit 1; }
mkdir -p "$out"
src=/usr/share/nginx/src
if [ ! -r "$src/conf_flags" ]; then
    ver=$(dpkg-query -W -f='${Version}' nginx 2>/dev/null) ||
        die "Debian's nginx is not installed (scripts/deps.sh test installs it)"
    dev=$out/nginx-dev
    if [ "$(cat "$dev/version" 2>/dev/null)" != "$ver" ]; then
        rm -rf "$dev"
        mkdir -p "$dev"
        # apt's package lists may be gone (a container's build stage): read
        # them again once, as root
        (cd "$dev" && apt-get download "nginx-dev=$ver") > "$out/download.log" 2>&1 ||
            { [ "$(id -u)" -eq 0 ] && apt-get update -qq >> "$out/download.log" 2>&1 &&
                (cd "$dev" && apt-get download "nginx-dev=$ver") >> "$out/download.log" 2>&1; } ||
            die "cannot download nginx-dev $ver (apt-get update first?): $(tail -n 1 "$out/download.log")"
        dpkg-deb -x "$dev"/nginx-dev_*.deb "$dev"
        echo "$ver" > "$dev/version"
    fi
    src=$dev/usr/share/nginx/src
fi
[ -r "$src/conf_flags" ] || die "no nginx-dev files in $src"
# The flags Debian's nginx is built with (nginx -V), and -fPIC for the .so
cc_opt="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2"
ld_opt="-Wl,-z,relro -Wl,-z,now -fPIC"
if [ ! -f "$out/Makefile" ] || [ "$here/config" -nt "$out/Makefile" ] ||
    [ "$(cat "$out/nginx-dev.path" 2>/dev/null)" != "$src" ]; then
    (
        cd "$src"
        # shellcheck disable=SC1091
        . ./conf_flags
        SESSIOND_CORE_LIB=$core_lib ./configure --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
            "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$here" --builddir="$out"
    ) > "$out/configure.log" 2>&1 || {
        tail -20 "$out/configure.log" >&2
        echo "nginx-module: configure failed (whole log: $out/configure.log)" >&2
        exit 1
    }
    echo "$src" > "$out/nginx-dev.path"
fi
# nginx's Makefile does not know the core library: relink when it changed
if [ "$core_lib" -nt "$out/ngx_http_sessiond_module.so" ]; then
    rm -f "$out/ngx_http_sessiond_module.so"
fi
make -s -f "$out/Makefile" -C "$src" modules
sig() { strings "$1" | grep -E '^[0-9]+,[0-9]+,[0-9]+,[01]{20,}$' | head -1; }
want=$(sig /usr/sbin/nginx)
got=$(sig "$out/ngx_http_sessiond_module.so")
if [ -z "$want" ] || [ "$want" != "$got" ]; then
    echo "nginx-module: the module's signature ($got) is not nginx's ($want)" >&2
    exit 1
fi
