#!/bin/sh
# jwks-sync.sh -- keep JWT_JWKS_FILE in step with an identity provider's JWKS.
#
#   deploy/jwks-sync.sh [--url URL] [--dest PATH] [--reload COMMAND]
#
# Downloads URL (env JWKS_URL; e.g. Keycloak's
# https://idp.example/realms/x/protocol/openid-connect/certs), installs it
# atomically at PATH (env JWT_JWKS_FILE) and, only when the content changed,
# runs COMMAND with sh -c (env JWKS_RELOAD, default `systemctl reload sessiond`).
# Exit 0: the file is current (and the service was told); 1: failed; 2: bad
# usage; a failure is one line on stderr.
# More env: JWKS_MAX_TIME (30 s), JWKS_MAX_BYTES (1048576), JWKS_FILE_MODE
# (0644), JWKS_ALLOW_HTTP=1 (also plain http://, for tests; https only otherwise).
#
# What it guarantees (docs/DEPLOY.md, "Keys"):
# - PATH is only ever replaced whole, by rename(2) of a file written in the same
#   directory: a reader sees the old content or the new one, never a part.
# - A failed download (HTTP error, timeout, too large), an empty body, or one
#   without a "keys" member or without any "kid" leaves PATH untouched, runs no
#   reload and exits 1. That check is deliberately cheap (no JSON parser): the
#   service itself validates the file on reload, and a reload that fails keeps
#   every key it had (one error line in its log), so a bad file that gets past
#   this check costs no keys either -- but watch for that line: a process
#   started with such a file refuses to start.
# - A reload command that fails exits 1 and is retried by the next run even
#   when the content did not change again (a marker .NAME.reload-pending sits
#   next to PATH meanwhile).
# Needs curl and coreutils only.
set -eu

me=jwks-sync
url=${JWKS_URL:-}
dest=${JWT_JWKS_FILE:-}
reload=${JWKS_RELOAD:-systemctl reload sessiond}
max_time=${JWKS_MAX_TIME:-30}
max_bytes=${JWKS_MAX_BYTES:-1048576}
mode=${JWKS_FILE_MODE:-0644}
allow_http=${JWKS_ALLOW_HTTP:-0}

die() { printf '%s: %s\n' "$me" "$*" >&2; exit 1; }
usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    -h|--help) usage ;;
    esac
    [ $# -ge 2 ] || usage
    case "$1" in
    --url) url=$2 ;;
    --dest) dest=$2 ;;
    --reload) reload=$2 ;;
    *) usage ;;
    esac
    shift 2
done

[ -n "$url" ] || { printf '%s: no URL (--url or JWKS_URL)\n' "$me" >&2; exit 2; }
[ -n "$dest" ] || { printf '%s: no destination (--dest or JWT_JWKS_FILE)\n' "$me" >&2; exit 2; }
[ -n "$reload" ] || { printf '%s: empty reload command (--reload or JWKS_RELOAD)\n' "$me" >&2; exit 2; }
case "$max_time" in ''|*[!0-9]*) printf '%s: JWKS_MAX_TIME: not a number of seconds: %s\n' "$me" "$max_time" >&2; exit 2 ;; esac
case "$max_bytes" in ''|*[!0-9]*) printf '%s: JWKS_MAX_BYTES: not a number: %s\n' "$me" "$max_bytes" >&2; exit 2 ;; esac
case "$mode" in ''|*[!0-7]*) printf '%s: JWKS_FILE_MODE: not an octal mode: %s\n' "$me" "$mode" >&2; exit 2 ;; esac
case "$allow_http" in
1|yes|true) protos='=https,http' ;;
*) protos='=https' ;;
esac

dir=$(dirname -- "$dest")
name=$(basename -- "$dest")
[ -d "$dir" ] || die "destination directory $dir does not exist"
[ ! -d "$dest" ] || die "destination $dest is a directory"
pending="$dir/.$name.reload-pending"

# The download goes to a temporary file next to the destination (same file
# system, so the final mv is a rename); it is removed on every way out.
tmp=$(mktemp -- "$dir/.$name.XXXXXX") || die "cannot create a temporary file in $dir"
trap 'rm -f -- "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

if ! err=$(curl --fail --silent --show-error --max-time "$max_time" \
        --proto "$protos" --proto-redir "$protos" --location --max-redirs 3 \
        --max-filesize "$max_bytes" --output "$tmp" -- "$url" 2>&1); then
    die "download of $url failed, $dest left as it was: $(printf '%s' "$err" | tr '\n' ' ')"
fi

# Cheap sanity checks; the service validates the file for real on reload.
[ -s "$tmp" ] || die "$url answered an empty body; $dest left as it was"
size=$(wc -c < "$tmp")
[ "$size" -le "$max_bytes" ] || die "$url answered $size bytes (over JWKS_MAX_BYTES=$max_bytes); $dest left as it was"
body=$(cat -- "$tmp")
case "$body" in
*'"keys"'*) ;;
*) die "$url answered a body without a \"keys\" member (not a JWKS); $dest left as it was" ;;
esac
# a key without "kid" is of no use to the service, so no "kid" at all means
# no usable key (e.g. {"keys":[]}): the service would refuse to start with it
case "$body" in
*'"kid"'*) ;;
*) die "$url answered a JWKS without any \"kid\" (no usable key); $dest left as it was" ;;
esac

if [ -f "$dest" ] && cmp -s -- "$tmp" "$dest"; then
    rm -f -- "$tmp"
    [ -e "$pending" ] || exit 0     # up to date, and the service was told
else
    chmod "$mode" "$tmp" || die "cannot chmod $mode $tmp"
    sync -- "$tmp" 2>/dev/null || true
    # the marker first: whatever happens after the mv, the reload is retried
    : > "$pending" || die "cannot write $pending; $dest left as it was"
    mv -f -- "$tmp" "$dest" || die "cannot move the new JWKS into place at $dest"
fi

status=0
out=$(sh -c "$reload" 2>&1 </dev/null) || status=$?
if [ "$status" -ne 0 ]; then
    last=$(printf '%s\n' "$out" | tail -n 1)
    die "installed $dest, but the reload command failed (status $status${last:+: $last}): $reload; retried on the next run"
fi
rm -f -- "$pending"
