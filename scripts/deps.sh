#!/bin/sh
# deps.sh -- install the Debian 12 packages sessionService needs, if missing.
#
#   scripts/deps.sh run    what building and serving needs
#   scripts/deps.sh test   that, plus what the test suites need
#   scripts/deps.sh bench  that, plus what `make bench` needs
#
# Called by `make run` and `make test`; safe to run again (it installs only
# what is missing). Uses apt-get as root, or through sudo otherwise.
set -eu

mode=${1:-run}
# run: building, serving, and the README's curl block (curl; scripts/token.sh
# needs openssl, scripts/env.sh only coreutils and sed, both in every Debian)
build_pkgs="gcc make pkg-config libc6-dev openssl curl libmicrohttpd-dev libjansson-dev libjwt-dev libssl-dev liblmdb-dev libhiredis-dev"
# test: scan-build is a perl script (perl is pulled in by git, but a bare
# system has neither)
# libpcre2-dev, zlib1g-dev: what nginx-dev's configure probes for, to build
# the session check inside nginx (make nginx-module: nginx/build.sh fetches
# nginx-dev's own files), which the gateway tests load
test_pkgs="python3 python3-pytest python3-requests python3-jwt python3-cryptography python3-yaml redis-server redis-tools nginx-light libpcre2-dev zlib1g-dev lmdb-utils clang libclang-rt-14-dev clang-tools clang-tidy cppcheck perl"

# time: /usr/bin/time, for wrk's own CPU time in bench/cpu_budget.sh
bench_pkgs="python3 curl wrk nginx-light libpcre2-dev zlib1g-dev redis-server redis-tools gnuplot-nox time"

case "$mode" in
run) want=$build_pkgs ;;
test) want="$build_pkgs $test_pkgs" ;;
bench) want="$build_pkgs $bench_pkgs" ;;
*) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "deps: need root (or sudo) to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
