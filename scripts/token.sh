#!/bin/sh
# token.sh -- mint a caller token (HS256) for trying the API by hand.
#
#   scripts/token.sh SUB [SCOPE] [TTL_SECONDS]
#
# Reads JWT_SECRET from the environment, or else from ./.env. In production
# your login service issues these tokens; this is for curl examples and tests.
set -eu
sub=${1:?usage: $0 SUB [SCOPE] [TTL_SECONDS]}
scope=${2:-}
ttl=${3:-3600}
secret=${JWT_SECRET:-$(sed -n 's/^JWT_SECRET=//p' .env 2>/dev/null | tail -n 1)}
[ -n "$secret" ] || { echo "token: no JWT_SECRET in the environment or ./.env" >&2; exit 1; }

b64url() { base64 | tr -d '\n=' | tr '+/' '-_'; }
json_escape() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }

now=$(date +%s)
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
claims="{\"sub\":\"$(json_escape "$sub")\",\"iat\":$now,\"exp\":$((now + ttl))"
[ -n "$scope" ] && claims="$claims,\"scope\":\"$(json_escape "$scope")\""
payload=$(printf '%s}' "$claims" | b64url)
sig=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
printf '%s.%s.%s\n' "$header" "$payload" "$sig"
