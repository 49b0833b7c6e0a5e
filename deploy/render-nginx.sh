#!/bin/sh
# render-nginx.sh -- print deploy/nginx.conf with its placeholders replaced.
#
#   deploy/render-nginx.sh [--listen ADDR] [--create ADDR] [--read ADDR]
#                          [--close ADDR] [--app ADDR] [--error-log PATH]
#                          [--access-log PATH] [--template FILE]
#                          [--module SO --module-config ENV] > nginx.conf
#
# ADDR is what nginx accepts after `listen` or an upstream `server`: PORT,
# HOST:PORT, IP:PORT or [IPv6]:PORT. Options not given keep the template's
# values (listen 8080; 127.0.0.1:8081/8082/8083 for createSession,
# readSession, closeSession; 127.0.0.1:8090 for the example application;
# errors to stderr, access log to /dev/stdout). Used by docker-compose.yml (the
# gateway container renders its configuration at start) and by
# tests/api/test_gateway.py, so both run the same file.
#
# --module and --module-config (both or neither) turn on the session check
# inside nginx (ngx_http_sessiond_module, built by `make nginx-module`):
# SO is the module's path, ENV the services' settings file; the template's
# "THE SESSION CHECK IN NGINX" says which lines change.
#
# Each placeholder must occur exactly once in the template, and every value is
# checked to be a single word of safe characters (no spaces, `;`, quotes or
# braces that could smuggle directives in); anything else exits with status 2.
set -eu

template="$(dirname "$0")/nginx.conf"
listen="" create="" read="" close="" app="" error_log="" access_log="" module="" module_config=""

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case "$1" in
    --listen) listen=$2 ;;
    --create) create=$2 ;;
    --read) read=$2 ;;
    --close) close=$2 ;;
    --app) app=$2 ;;
    --error-log) error_log=$2 ;;
    --access-log) access_log=$2 ;;
    --template) template=$2 ;;
    --module) module=$2 ;;
    --module-config) module_config=$2 ;;
    *) usage ;;
    esac
    shift 2
done

[ -r "$template" ] || { echo "render-nginx: cannot read $template" >&2; exit 2; }

check() { # option value
    case "$2" in
    "") return 0 ;;
    *[!A-Za-z0-9._:/@\[\]-]*)
        echo "render-nginx: $1: unsafe value: $2" >&2
        exit 2 ;;
    esac
}
check --listen "$listen"; check --create "$create"; check --read "$read"
check --close "$close"; check --app "$app"; check --error-log "$error_log"
check --access-log "$access_log"; check --module "$module"
check --module-config "$module_config"
case "$module:$module_config" in
?*:) echo "render-nginx: --module needs --module-config" >&2; exit 2 ;;
:?*) echo "render-nginx: --module-config needs --module" >&2; exit 2 ;;
esac

# Each placeholder is a whole line of the template, compared without its
# indentation: a directive, or for the module's two main-context lines a
# commented-out directive (a line of a comment block never equals one); awk
# replaces it, keeping its indentation, and fails unless every placeholder
# occurs exactly once.
awk \
    -v r1="${listen:+listen $listen;}" \
    -v r2="${create:+server $create;}" \
    -v r3="${read:+server $read;}" \
    -v r4="${close:+server $close;}" \
    -v r5="${app:+server $app;}" \
    -v r6="${error_log:+error_log $error_log warn;}" \
    -v r7="${access_log:+access_log $access_log gateway;}" \
    -v r8="${module:+load_module $module;}" \
    -v r9="${module_config:+sessiond_config $module_config;}" \
    -v r10="${module:+sessiond_auth on; sessiond_auth_fallback /_sessiond_validate;}" \
    -v r11="${module:+# \$sessiond_user_id: set by the module}" \
    -v r12="${module:+# \$sessiond_session_id: set by the module}" \
    -v tmpl="$template" '
BEGIN {
    key[1] = "listen 8080;"
    key[2] = "server 127.0.0.1:8081;"
    key[3] = "server 127.0.0.1:8082;"
    key[4] = "server 127.0.0.1:8083;"
    key[5] = "server 127.0.0.1:8090;"
    key[6] = "error_log stderr warn;"
    key[7] = "access_log /dev/stdout gateway;"
    key[8] = "# load_module ngx_http_sessiond_module.so;"
    key[9] = "# sessiond_config /etc/sessionservice/.env;"
    key[10] = "auth_request /_sessiond_validate;"
    key[11] = "auth_request_set $sessiond_user_id $upstream_http_x_user_id;"
    key[12] = "auth_request_set $sessiond_session_id $upstream_http_x_session_id;"
    rep[1] = r1; rep[2] = r2; rep[3] = r3; rep[4] = r4
    rep[5] = r5; rep[6] = r6; rep[7] = r7; rep[8] = r8
    rep[9] = r9; rep[10] = r10; rep[11] = r11; rep[12] = r12
    nkeys = 12
}
{
    line = $0
    indent = line; sub(/[^ \t].*$/, "", indent)
    text = line; sub(/^[ \t]+/, "", text); sub(/[ \t]+$/, "", text)
    for (i = 1; i <= nkeys; i++) {
        if (text == key[i]) {
            seen[i]++
            if (rep[i] != "")
                line = indent rep[i]
        }
    }
    out[NR] = line
}
END {
    bad = 0
    for (i = 1; i <= nkeys; i++) {
        if (seen[i] != 1) {
            printf "render-nginx: the line \"%s\" occurs %d times in %s (must be once)\n", \
                key[i], seen[i] + 0, tmpl > "/dev/stderr"
            bad = 1
        }
    }
    if (bad)
        exit 2
    for (i = 1; i <= NR; i++)
        print out[i]
}' "$template"
