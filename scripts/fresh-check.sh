#!/bin/sh
# fresh-check.sh -- the README's promise "on a fresh Debian 12 machine",
# tried for real: a bare `debootstrap --variant=minbase bookworm` root (no
# make, no curl, no perl), a clean clone of this repository copied in, and,
# as root inside it (chroot), exactly what the README prints:
#
#   1. the run command of "Two commands" (installs, builds, serves), until
#      /healthz answers;
#   2. the curl block of "Trying it with curl", each request's status checked
#      against the statuses the README's comments promise;
#   3. the test command of "Two commands".
#
#   scripts/fresh-check.sh                 (as root; CI runs it)
#
# Environment:
#   FRESH_TEST_SCOPE  smoke (default): the test command with TEST_SCOPE=smoke,
#                     every stage of `make test` on a sample (the Makefile
#                     says which), so that a package missing for any stage
#                     fails here; CI runs the full scope on the host itself.
#                     full: the whole test command (about an hour). none: skip.
#   FRESH_WORKDIR     where the root is made (default /var/tmp; 3 GiB free)
#   FRESH_RUN_TIMEOUT seconds the run command may take to serve (default 1200:
#                     it installs the build packages first)
#   MINBASE_*         see scripts/minbase.sh (the cached bootstrap)
#
# It commits nothing. The copy is `git clone` of HEAD, so uncommitted changes
# are not in it (without git: the files, less build/, data/ and .env). Logs go to
# build/fresh-check/. On any exit it kills every process left inside the root,
# unmounts what it mounted and deletes the root.
set -eu
cd "$(dirname "$0")/.."
REPO=$(pwd)
SCOPE=${FRESH_TEST_SCOPE:-smoke}
RUN_TIMEOUT=${FRESH_RUN_TIMEOUT:-1200}
LOGS=$REPO/build/fresh-check
APP=/root/sessionService        # where the clone lives inside the root

say() { echo "fresh-check: $*"; }
die() { echo "fresh-check: FAIL: $*" >&2; exit 1; }

case "$SCOPE" in smoke|full|none) ;; *) die "FRESH_TEST_SCOPE is smoke, full or none" ;; esac
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"
for t in chroot mount umount setsid tar; do
    command -v "$t" >/dev/null 2>&1 || die "needs $t"
done
if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
        >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
fi

# --- the root, its mounts, and the cleanup ---------------------------------
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log
work=$(mktemp -d "${FRESH_WORKDIR:-/var/tmp}/fresh-check.XXXXXX")
root=$work/root
mounted=""
run_pid=""

# every process whose root directory is inside $root
procs_inside() {
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        case "$r" in "$root"|"$root"/*) echo "${p#/proc/}" ;; esac
    done
}

cleanup() {
    rc=$?
    trap - EXIT INT TERM
    for sig in TERM KILL; do
        pids=$(procs_inside)
        [ -z "$pids" ] && break
        # shellcheck disable=SC2086
        kill -s "$sig" $pids 2>/dev/null || true
        i=0
        while [ -n "$(procs_inside)" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
    done
    left=$(procs_inside)
    [ -n "$left" ] && echo "fresh-check: processes still inside the root: $left" >&2
    for m in $mounted; do   # most recent first
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
            echo "fresh-check: could not unmount $m" >&2
    done
    if grep -q " $work/" /proc/self/mounts; then
        echo "fresh-check: still mounted under $work; leaving it" >&2
        rc=1
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mnt() {   # mnt TARGET mount-arguments...: mounts and records for cleanup
    target=$1; shift
    mount "$@" "$target"
    mounted="$target $mounted"
}

t0=$(date +%s)
scripts/minbase.sh "$root" || die "no minbase root (scripts/minbase.sh)"
# what a user gets: the repository as committed (a checkout without git or
# .git, e.g. an exported tree: its files, less what the build and a run make)
if command -v git >/dev/null 2>&1 && git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    git clone -q --no-local "$REPO" "$root$APP" || die "git clone of $REPO"
    copy="a clone of $(git -C "$root$APP" rev-parse --short HEAD)"
    rm -rf "$root$APP/.git"
else
    mkdir -p "$root$APP"
    tar -C "$REPO" --exclude=./.git --exclude=./build --exclude=./data --exclude=./.env -cf - . |
        tar -C "$root$APP" -xf - || die "copy of $REPO"
    copy="a copy of the files of $REPO (no git)"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"   # apt-get inside needs the host's resolver
mnt "$root/proc" -t proc proc
mnt "$root/sys" -t sysfs sysfs
mnt "$root/dev" --bind /dev
mnt "$root/dev/pts" --bind /dev/pts
mnt "$root/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev tmpfs
say "minbase root with $copy ready in $(( $(date +%s) - t0 )) s"

# --- the README's commands, read from the copy ------------------------------
# The first ```sh block after a heading, as text.
readme_block() {
    awk -v h="$1" '
        $0 == h { inside = 1; next }
        inside && /^```sh/ { code = 1; next }
        code && /^```/ { exit }
        code { print }
    ' "$root$APP/README.md"
}
two=$(readme_block "## Two commands" | sed 's/[[:space:]]*#.*$//' | grep -v '^[[:space:]]*$' || true)
[ "$(printf '%s\n' "$two" | wc -l)" -eq 2 ] ||
    die "README's \"## Two commands\" block must hold exactly two commands, found: $two"
RUN_CMD=$(printf '%s\n' "$two" | sed -n 1p)
TEST_CMD=$(printf '%s\n' "$two" | sed -n 2p)
CURL_BLOCK=$(readme_block "## Trying it with curl")
[ -n "$CURL_BLOCK" ] || die "README has no \"## Trying it with curl\" sh block"

# What each request of the curl block must answer, in order: status, method,
# path (a shell pattern; the query is left out). Keep in step with the README.
EXPECTED='201 POST /session
200 GET /session/*
200 GET /users/alice/sessions
200 GET /validate
200 GET /validate
204 DELETE /session/*
401 GET /validate
200 DELETE /users/alice/sessions
201 POST /session
200 GET /healthz
200 GET /readyz
200 GET /metrics'

for t in make curl gcc; do
    if [ -e "$root/usr/bin/$t" ]; then die "the fresh root already has $t: not a bare system"; fi
done

# inside CMD: runs CMD in the root as root, with a login-like environment
# and nothing of ours (PATH, PYTHON, CI variables) leaking in.
inside() {
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        "$@" </dev/null
}

# The README serves on 127.0.0.1:8080. The root shares the host's network:
# when 8080 is taken here, PORT (the environment wins over .env) moves it and
# the curl block is read with that port.
listening() {   # listening PORT: a socket listens on it (tcp or tcp6)
    hex=$(printf ':%04X ' "$1")
    awk -v h="$hex" 'index($2 " ", h) && $4 == "0A" { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
port=8080
if listening 8080; then
    port=18080
    while listening $port; do port=$((port + 1)); done
    say "127.0.0.1:8080 is taken on this host: serving on $port instead (PORT=$port)"
fi

# --- 1. the run command ------------------------------------------------------
say "run command: $RUN_CMD"
t0=$(date +%s)
setsid chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PORT=$port \
    sh -c "cd $APP && $RUN_CMD" </dev/null >"$LOGS/run.log" 2>&1 &
run_pid=$!
up=""
while [ $(( $(date +%s) - t0 )) -lt "$RUN_TIMEOUT" ]; do
    if ! kill -0 "$run_pid" 2>/dev/null; then
        tail -30 "$LOGS/run.log" >&2
        die "the run command exited before serving (log: $LOGS/run.log)"
    fi
    if [ -x "$root/usr/bin/curl" ] &&
       inside curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
        up=yes
        break
    fi
    sleep 2
done
[ -n "$up" ] || { tail -30 "$LOGS/run.log" >&2; die "no /healthz within $RUN_TIMEOUT s"; }
say "ok: run command serves /healthz after $(( $(date +%s) - t0 )) s (installs and build included)"

# --- 2. the curl block ---------------------------------------------------------
# curl is wrapped to write each request's status, method and URL to stderr
# (curl's own -w %{stderr}); the block itself runs as printed.
block=$(printf '%s\n' "$CURL_BLOCK" | sed "s|127\.0\.0\.1:8080|127.0.0.1:$port|g")
prelude='curl() { command curl -w "%{stderr}STATUS %{http_code} %{method} %{url_effective}\n" "$@"; }'
inside sh -euc "cd $APP && $prelude
$block" >"$LOGS/curl.out" 2>"$LOGS/curl.err" || {
    rc=$?
    tail -20 "$LOGS/curl.err" >&2
    die "the curl block stopped with exit status $rc (a command failed; statuses so far above)"
}
got=$(sed -n 's/^STATUS //p' "$LOGS/curl.err" |
      awk '{ u = $3; sub(/^[a-z]+:\/\/[^\/]*/, "", u); sub(/\?.*/, "", u); print $1, $2, u }')
n_got=$(printf '%s\n' "$got" | grep -c . || true)
n_want=$(printf '%s\n' "$EXPECTED" | grep -c .)
[ "$n_got" -eq "$n_want" ] ||
    die "the curl block made $n_got requests, the check expects $n_want:
$got"
i=1
bad=0
set -f   # the patterns below are matched with case, never expanded
while [ $i -le "$n_want" ]; do
    want=$(printf '%s\n' "$EXPECTED" | sed -n "${i}p")
    line=$(printf '%s\n' "$got" | sed -n "${i}p")
    set -- $want
    w_status=$1 w_method=$2 w_path=$3
    set -- $line
    # shellcheck disable=SC2254
    case "$3" in $w_path) path_ok=1 ;; *) path_ok="" ;; esac
    if [ "$1" = "$w_status" ] && [ "$2" = "$w_method" ] && [ -n "$path_ok" ]; then
        say "ok: curl block: $line"
    else
        echo "fresh-check: FAIL: curl block request $i: got \"$line\", README promises \"$want\"" >&2
        bad=1
    fi
    i=$((i + 1))
done
set +f
[ $bad -eq 0 ] || die "the curl block's statuses differ (output: $LOGS/curl.out)"

# stop the service as a user would (Ctrl-C reaches the whole process group)
kill -s INT -- "-$run_pid" 2>/dev/null || true
i=0
while kill -0 "$run_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$run_pid" 2>/dev/null && die "the run command did not stop on Ctrl-C within 10 s"
wait "$run_pid" 2>/dev/null || true
[ -z "$(procs_inside)" ] || die "processes left in the root after the run command stopped: $(procs_inside)"
say "ok: the service stopped on Ctrl-C; nothing left running"

# --- 3. the test command -------------------------------------------------------
if [ "$SCOPE" = none ]; then
    say "test command skipped (FRESH_TEST_SCOPE=none)"
    exit 0
fi
say "test command: $TEST_CMD   (TEST_SCOPE=$SCOPE)"
t0=$(date +%s)
if ! inside TEST_SCOPE="$SCOPE" sh -c "cd $APP && $TEST_CMD" >"$LOGS/test.log" 2>&1; then
    tail -60 "$LOGS/test.log" >&2
    die "the test command failed after $(( $(date +%s) - t0 )) s (log: $LOGS/test.log)"
fi
say "ok: test command passed in $(( $(date +%s) - t0 )) s; its stages:"
grep -E '^== |^[0-9]+ passed|^tests/unit/.* checks, |^mutate: ' "$LOGS/test.log" |
    grep -v -E '^== (build|fuzz_)' | sed 's/^/    /'
