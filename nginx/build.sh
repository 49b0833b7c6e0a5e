#!/bin/bash
# build.sh -- builds ngx_http_sessiond_module.so against Debian's nginx-dev
# (the headers and configure of the very nginx Debian ships), so that
# Debian's /usr/sbin/nginx loads it with load_module. Run by
# `make nginx-module`, after it built the core library position-independent:
#
#   nginx/build.sh CORE_LIB OUT_DIR
#
# configure runs once per OUT_DIR (its probes take a while); the module is
# rebuilt by nginx's own Makefile, then its binary compatibility with the
# installed nginx is checked (the signature nginx compares at load).
set -euo pipefail
core_lib=$(realpath "$1")
out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
src=/usr/share/nginx/src
[ -r "$src/conf_flags" ] || {
    echo "nginx-module: $src is missing: install nginx-dev (scripts/deps.sh test)" >&2
    exit 1
}
mkdir -p "$out"
# The flags Debian's nginx is built with (nginx -V), and -fPIC for the .so
cc_opt="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2"
ld_opt="-Wl,-z,relro -Wl,-z,now -fPIC"
if [ ! -f "$out/Makefile" ] || [ "$here/config" -nt "$out/Makefile" ]; then
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
