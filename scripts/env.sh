#!/bin/sh
# env.sh -- make sure ./.env exists: if not, write it from .env.example with
# a freshly generated random JWT_SECRET (never a fixed default), and say so.
set -eu
[ -f .env ] && exit 0
secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 64)
umask 077
sed "s|^JWT_SECRET=.*|JWT_SECRET=$secret|" .env.example > .env
echo "env: wrote .env with a new random JWT_SECRET (keep it secret; edit .env to change settings)"
