#!/bin/sh
# minbase.sh -- a fresh Debian 12 root as bare as `debootstrap --variant=minbase
# bookworm` makes it (no make, no curl, no perl), for scripts/fresh-check.sh
# (the README's commands on a bare system) and scripts/image-test.sh (the
# base image the Dockerfile's `FROM` names).
#
#   scripts/minbase.sh DIR          unpack a pristine minbase root into DIR (must not exist)
#   scripts/minbase.sh --tar        print the path of the cached root's tarball
#
# The first call on a machine runs debootstrap (about a minute) and keeps the
# finished root as a tarball in the cache; later calls unpack it (seconds).
# A cached root older than MINBASE_MAX_AGE_DAYS (default 7) is built again.
# Each copy is pristine: nothing is ever written back to the cache.
#
# Environment: MINBASE_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/sessionservice),
# MINBASE_MIRROR (default http://deb.debian.org/debian), MINBASE_MAX_AGE_DAYS.
# Needs root and debootstrap (`apt-get install debootstrap`).
set -eu

cache=${MINBASE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/sessionservice}
mirror=${MINBASE_MIRROR:-http://deb.debian.org/debian}
max_age=${MINBASE_MAX_AGE_DAYS:-7}
arch=$(dpkg --print-architecture)
tarball=$cache/minbase-bookworm-$arch.tar

die() { echo "minbase: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap and a root's file owners)"

# The cached tarball, built when missing or too old. Built beside and
# renamed into place, so an interrupted build never leaves half a root.
ensure_tarball() {
    if [ -s "$tarball" ] && [ -z "$(find "$tarball" -mtime +"$max_age" 2>/dev/null)" ]; then
        return 0
    fi
    command -v debootstrap >/dev/null 2>&1 || die "needs debootstrap (apt-get install debootstrap)"
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/build.XXXXXX")
    echo "minbase: debootstrap --variant=minbase bookworm from $mirror (cached in $tarball)" >&2
    if ! debootstrap --variant=minbase --arch="$arch" bookworm "$tmp/root" "$mirror" \
            > "$tmp/debootstrap.log" 2>&1; then
        tail -20 "$tmp/debootstrap.log" >&2
        rm -rf "$tmp"
        die "debootstrap failed"
    fi
    # apt's downloaded .debs are not part of a fresh system
    rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*_Packages 2>/dev/null || true
    tar -C "$tmp/root" --numeric-owner -cf "$tmp/root.tar" .
    mv "$tmp/root.tar" "$tarball"
    rm -rf "$tmp"
}

case "${1:-}" in
--tar)
    ensure_tarball
    echo "$tarball"
    ;;
""|-*)
    echo "usage: $0 DIR | --tar" >&2
    exit 2
    ;;
*)
    [ -e "$1" ] && die "$1 exists; give a new directory"
    ensure_tarball
    mkdir -p "$1"
    tar -C "$1" --numeric-owner -xf "$tarball"
    ;;
esac
