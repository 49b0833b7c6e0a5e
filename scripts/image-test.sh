#!/bin/sh
# image-test.sh -- build the images as docs/DEPLOY.md says and run the Compose
# stack with podman, then check it through the gateway (issue 16).
#
#   sh scripts/image-test.sh          (as root; CI runs it; 2.5 to 4 minutes)
#
# Needs root, Debian 12 and the network to Debian's mirror (the images' apt-get
# and, once, debootstrap). Installs what is missing: podman, podman-compose,
# runc, netavark, aardvark-dns, iptables, debootstrap, curl, openssl, python3.
# No registry is needed: the Dockerfile's base `debian:12-slim` is imported
# from a debootstrap minbase root (scripts/minbase.sh, cached), and Redis
# (`redis:7-bookworm` in docker-compose.yml) is a stand-in built on that base
# with Debian's redis-server. Everything podman keeps (images, containers,
# volumes, networks, its configuration) lives in one temporary directory, and
# podman runs in a mount namespace of its own (see "a private podman" below):
# all is removed at the end, also on failure, Ctrl-C or SIGTERM, and the
# host's own podman state (/etc/containers, /var/lib/containers,
# /run/containers, /run/netns, /run/runc) is never written to.
#
# Checks, each printed as `image-test: ok: ...` or `image-test: FAIL: ...`,
# then a summary line:
#   build     the images, with DEPLOY.md's commands (podman build --format docker)
#   slim      the runtime image: the five executables and the libraries they
#             link, no compiler, no apt lists or caches (the gateway's too)
#   module    the gateway image's nginx loads the session check module
#   stack     docker-compose.yml (as is) up with podman-compose, every
#             container healthy, in the order its depends_on asks
#   readyz, lifecycle, auth_request    through the gateway only
#   drain     requests in flight when createSession gets SIGTERM all succeed;
#             it exits 0 well within its grace period, then comes back
#   redis     sessions survive a restart and a re-creation of the Redis
#             container: the AOF is on the named volume
#   secret    JWT_SECRET in no container's or running process's command
#             line, in no output or log
#   cleanup   nothing left running or mounted
# Exits 1 when any check failed, 2 when it could not run at all.
#
# Environment: IMAGE_TEST_DIR (default /tmp; where the temporary directory is
# made), IMAGE_TEST_STORAGE_DRIVER (default: overlay when the kernel mounts it
# there, else vfs), MINBASE_CACHE (scripts/minbase.sh).
set -eu
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/.."
repo=$(pwd)
started=${IMAGE_TEST_STARTED:-$(date +%s)}

# every line is also kept in $logs/output.log, which the secret check reads
say() {
    printf 'image-test: %s\n' "$*"
    if [ -d "${logs:-/nonexistent}" ]; then printf 'image-test: %s\n' "$*" >> "$logs/output.log"; fi
}
die() { say "cannot run: $*" >&2; exit 2; }
passed=0 failed=0 failures=""
ok() { say "ok: $*"; passed=$((passed + 1)); }
fail() {
    say "FAIL: $*"
    failed=$((failed + 1))
    failures="$failures${failures:+, }${1%%:*}"
}

[ "$(id -u)" -eq 0 ] || die "needs root (podman as root, debootstrap)"

# --- packages -----------------------------------------------------------------
want="podman podman-compose runc netavark aardvark-dns iptables debootstrap curl openssl python3"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    say "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --- a private podman -----------------------------------------------------------
# Rootful podman also keeps state outside its storage, in fixed places: the
# blob cache in /var/lib/containers, netavark's in /run/containers, network
# namespaces in /run/netns, runc's in /run/runc. The run happens in a mount
# namespace of its own where each of these is an empty tmpfs, so the host's
# are never touched, and every mount of the run ends with it. A directory
# missing on the host is made as a mount point, and removed at the end.
host_state="/var/lib/containers /run/containers /run/netns /run/runc"
if [ "${IMAGE_TEST_NS:-}" != private ]; then
    made=""
    for d in $host_state; do
        [ -e "$d" ] || { mkdir -p "$d" && made="$made $d"; }
    done
    IMAGE_TEST_NS=private IMAGE_TEST_MADE=$made IMAGE_TEST_STARTED=$started \
        exec unshare --mount --propagation private sh "$self" "$@"
fi
for d in $host_state; do
    mount -t tmpfs -o mode=0755 image-test "$d" || die "cannot mount a tmpfs on $d"
done
my_ns=$(readlink /proc/self/ns/mnt)
# netavark's firewall chains and podman's parent cgroups, when the host has none yet
had_chains=$( (iptables -S; iptables -t nat -S) 2>/dev/null | grep -c '^-N NETAVARK' || true)
had_cgroups=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -name libpod_parent 2>/dev/null | wc -l)

T=$(mktemp -d "${IMAGE_TEST_DIR:-/tmp}/image-test.XXXXXX")
P=imagetest$$                   # the compose project
logs=$T/logs
mkdir -p "$logs" "$T/conf" "$T/project" "$T/app" "$T/vartmp"
export TMPDIR="$T/vartmp"       # podman's large temporary files
# The secret of this run; grep reads it from a file (-f), never from its
# arguments.
secret=$(openssl rand -hex 32)
(umask 077 && printf '%s\n' "$secret" > "$T/secret")
bg_pids=""

driver=${IMAGE_TEST_STORAGE_DRIVER:-}
if [ -z "$driver" ]; then
    mkdir -p "$T/probe/l" "$T/probe/u" "$T/probe/w" "$T/probe/m"
    if mount -t overlay overlay -o "lowerdir=$T/probe/l,upperdir=$T/probe/u,workdir=$T/probe/w" \
            "$T/probe/m" 2>/dev/null; then
        umount "$T/probe/m"
        driver=overlay
    else
        driver=vfs
    fi
    rm -rf "$T/probe"
fi
# runc: crun fails in some sandboxes; cgroupfs and the file event log: no
# systemd needed (health checks are then run by this script, see wait_healthy)
cat > "$T/conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$T/tmp"
[network]
network_config_dir = "$T/networks"
EOF
cat > "$T/conf/storage.conf" <<EOF
[storage]
driver = "$driver"
graphroot = "$T/graph"
runroot = "$T/run"
EOF
export CONTAINERS_CONF="$T/conf/containers.conf" CONTAINERS_STORAGE_CONF="$T/conf/storage.conf"

# Processes in this run's mount namespace outside this script's session:
# what podman left running on its own (conmon, aardvark-dns).
session_of() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $4 }'; }
my_session=$(session_of $$)
strays() {
    for d in /proc/[0-9]*; do
        [ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$my_ns" ] || continue
        s=$(session_of "${d#/proc/}")
        [ -n "$s" ] && [ "$s" != "$my_session" ] && echo "${d#/proc/}"
    done
}

# Removes everything this run made; safe to call twice.
cleanup() {
    set +e
    [ -d "$T" ] || return 0
    for pid in $bg_pids; do kill "$pid" 2>/dev/null; done
    wait
    if [ -f "$T/project/.env" ]; then
        (cd "$T/project" && podman-compose -p "$P" down -v) >> "$logs/compose.log" 2>&1
    fi
    {
        podman rm -af -t 0
        podman volume rm -af
        podman network rm -f "${P}_default"
        podman rmi -af
    } >> "$logs/cleanup.log" 2>&1
    for pid in $(strays); do kill "$pid" 2>/dev/null; done
    sleep 0.5
    for pid in $(strays); do kill -9 "$pid" 2>/dev/null; done
    awk -v t="$T/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
    rm -rf "$T"
    if [ "$had_chains" -eq 0 ]; then
        for t in filter nat; do
            iptables -t $t -S 2>/dev/null | grep '^-A .*-j NETAVARK' | sed 's/^-A/-D/' |
                while read -r rule; do eval "iptables -t $t $rule"; done
            chains=$(iptables -t $t -S 2>/dev/null | sed -n 's/^-N \(NETAVARK[^ ]*\)$/\1/p')
            for c in $chains; do iptables -t $t -F "$c"; done
            for c in $chains; do iptables -t $t -X "$c"; done
        done
    fi
    if [ "$had_cgroups" -eq 0 ]; then
        for d in /sys/fs/cgroup/*/libpod_parent; do
            [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
        done
    fi
    for d in $host_state; do umount -R "$d" 2>/dev/null || umount -R -l "$d"; done
    for d in ${IMAGE_TEST_MADE:-}; do rmdir "$d"; done
}
trap cleanup EXIT
trap 'say "interrupted (SIGINT): removing what this run made"; exit 130' INT
trap 'say "interrupted (SIGTERM): removing what this run made"; exit 143' TERM

# --- helpers ----------------------------------------------------------------------
# http METHOD PATH [curl args]: status code on stdout; body in $T/body, headers in $T/head
http() {
    m=$1 p=$2
    shift 2
    : > "$T/body"
    : > "$T/head"
    curl -s -o "$T/body" -D "$T/head" -w '%{http_code}' --max-time 10 -X "$m" "$G$p" "$@" || true
}
header() { sed -n "s/^$1: *//Ip" "$T/head" | tr -d '\r' | head -n 1; }
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$2"; }
# a caller token from the project's .env (scripts/token.sh gives the secret
# to `openssl dgst -hmac` as an argument while it signs: the one command line
# that holds it, for a moment, outside podman)
token() { (cd "$T/project" && sh "$repo/scripts/token.sh" "$@"); }
# podman-compose with the secret in its environment (never in an argument):
# docker-compose.yml lists JWT_SECRET without a value, and podman takes such
# a variable from its own environment
compose() {
    (cd "$T/project" && JWT_SECRET=$secret podman-compose -p "$P" "$@") >> "$logs/compose.log" 2>&1
}
# Compose's depends_on condition service_healthy, which podman-compose 1.0.3
# ignores, and podman's timers, which need systemd: the health check is run
# here until it passes.
wait_healthy() { # container seconds
    n=0
    while [ "$n" -lt $(($2 * 4)) ]; do
        podman healthcheck run "$1" > /dev/null 2>&1 && return 0
        sleep 0.25
        n=$((n + 1))
    done
    return 1
}
bytes_mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
log_tail() { # file: its last lines, unless the secret is in it
    [ -f "$1" ] || return 0
    if grep -qF -f "$T/secret" "$1"; then echo "  ($1 holds the secret: not shown)"; else tail -n 15 "$1" | sed 's/^/  | /'; fi
}

# --- 1. the images ------------------------------------------------------------------
say "podman $(podman version -f '{{.Client.Version}}' 2>/dev/null), storage $driver in $T"

# The base: a minbase root without apt's lists and downloaded packages (as
# debian:12-slim has none), imported under the name the Dockerfile's FROM uses.
# It lacks debian:12-slim's apt hook that cleans after each install, so the
# images' own cleanup is what the slim check sees.
sh scripts/minbase.sh "$T/root" > "$logs/minbase.log" 2>&1 || { log_tail "$logs/minbase.log"; die "scripts/minbase.sh failed"; }
rm -rf "$T/root/var/lib/apt/lists/"* "$T/root/var/cache/apt/archives/"*.deb "$T/root/var/cache/apt/"*.bin
tar -C "$T/root" --numeric-owner -c . | podman import -q - docker.io/library/debian:12-slim > "$logs/import.log" 2>&1 ||
    die "podman import of the base failed"
rm -rf "$T/root"

# The Redis stand-in: what docker-compose.yml uses of redis:7-bookworm --
# redis-server with arguments, /data as the working directory and volume,
# redis-cli, not root. Upstream's redis-server is built with protected mode
# off (the default config would refuse the other containers); the entrypoint
# does the same. policy-rc.d: the package's postinst must not start it.
mkdir -p "$T/redis"
cat > "$T/redis/Containerfile" <<'EOF'
FROM docker.io/library/debian:12-slim
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update && apt-get install -y --no-install-recommends redis-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && mkdir /data && chown redis:redis /data
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
cat > "$T/redis/entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1:-}" = redis-server ]; then
    shift
    case ${1:-} in
    ""|-*) exec redis-server --protected-mode no "$@" ;;
    *) conf=$1; shift; exec redis-server "$conf" --protected-mode no "$@" ;;
    esac
fi
exec "$@"
EOF
chmod 755 "$T/redis/entrypoint.sh"

# The three builds run side by side; the first two are DEPLOY.md's commands.
t0=$(date +%s)
podman build --format docker -t sessionservice . > "$logs/build-runtime.log" 2>&1 &
b1=$!
podman build --format docker --target gateway -t sessionservice-gateway . > "$logs/build-gateway.log" 2>&1 &
b2=$!
podman build --format docker -t docker.io/library/redis:7-bookworm "$T/redis" > "$logs/build-redis.log" 2>&1 &
b3=$!
bg_pids="$b1 $b2 $b3"
built=1
for b in "runtime:$b1" "gateway:$b2" "redis:$b3"; do
    if ! wait "${b#*:}"; then
        fail "build: podman build of the ${b%%:*} image failed"
        log_tail "$logs/build-${b%%:*}.log"
        built=0
    fi
done
bg_pids=""
[ "$built" -eq 0 ] || ok "build: sessionservice, sessionservice-gateway (podman build --format docker, DEPLOY.md 1.6) and the Redis stand-in in $(($(date +%s) - t0)) s"

# --- 2. slim ------------------------------------------------------------------------
# Inside each shipped image, as it runs: no compiler or make, none of apt's
# lists or caches; for the service image also every executable, finding
# every library it links.
image_problems() { # image check-executables(0|1): a line per problem
    podman run --rm -e "CHECK_BINS=$2" --entrypoint /bin/sh "$1" -c '
        if [ "$CHECK_BINS" = 1 ]; then
            for b in sessiond createSession readSession closeSession sessionctl; do
                p=$(command -v "$b") || { echo "no executable $b"; continue; }
                ldd "$p" | grep "not found" | sed "s|^[[:space:]]*|$b lacks |"
            done
        fi
        for c in gcc cc c++ g++ cpp make ld as clang; do
            command -v "$c" > /dev/null && echo "build tool $c"
        done
        find /var/lib/apt/lists -mindepth 1 | head -n 3 | sed "s/^/apt list /"
        find /var/cache/apt -name "*.bin" | sed "s/^/apt cache /"
        find /var/cache/apt/archives -name "*.deb" | head -n 3 | sed "s/^/downloaded package /"
        exit 0' 2>> "$logs/slim.log" || echo "the image does not run"
}
size_of() { podman image inspect -f '{{.Size}}' "$1"; }
base_size=$(size_of docker.io/library/debian:12-slim)
images="sessionservice sessionservice-gateway"
[ "$built" -eq 1 ] || images=""
for img in $images; do
    case $img in
    sessionservice) bins=1 what="the five executables, every library they link; " ;;
    *) bins=0 what="" ;;
    esac
    size=$(size_of "$img")
    case $img in sessionservice) runtime_size=$size ;; *) gateway_size=$size ;; esac
    problems=$(image_problems "$img" "$bins" | tr '\n' ';' | sed 's/;$//; s/;/; /g')
    sizes="$(bytes_mb "$size"), $(bytes_mb $((size - base_size))) over the base's $(bytes_mb "$base_size")"
    if [ -z "$problems" ]; then
        ok "slim: $img: ${what}no compiler or make, no apt lists, no apt caches; $sizes"
    else
        fail "slim: $img: $problems ($sizes)"
    fi
done

# The session check inside nginx, as the gateway image carries it: every
# library the module links is there, and the image's nginx loads it with
# deploy/nginx.conf rendered for it (nginx -t reads the settings through it).
if [ "$built" -eq 1 ]; then
    if mout=$(podman run --rm --entrypoint /bin/sh sessionservice-gateway -c '
        set -e
        so=/usr/lib/nginx/modules/ngx_http_sessiond_module.so
        if ldd "$so" | grep "not found"; then exit 1; fi
        mkdir -p /tmp/g
        printf "JWT_SECRET=image-test-module-check-0123456789abcdef\nSTORE_URL=lmdb:///tmp/g/store\n" > /tmp/g/s.env
        sh /etc/sessiond-gateway/render-nginx.sh --template /etc/sessiond-gateway/nginx.conf \
            --module "$so" --module-config /tmp/g/s.env --error-log stderr > /tmp/g/nginx.conf
        nginx -t -p /tmp/g/ -c /tmp/g/nginx.conf -e stderr 2>&1' 2>> "$logs/slim.log"); then
        ok "module: sessionservice-gateway carries ngx_http_sessiond_module, every library it links, and its nginx loads it (nginx -t with render-nginx.sh --module)"
    else
        fail "module: the gateway image's nginx does not load the module: $(echo "$mout" | tail -n 3 | tr '\n' ' ')"
    fi
fi

# --- 3. the Compose stack ----------------------------------------------------------
# A project directory of its own: docker-compose.yml and deploy/ as they are,
# and a .env (mode 0600) with a random secret, a free loopback port, and the
# application behind /app/ (an echo of what the gateway passes it).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
G=http://127.0.0.1:$port
cp docker-compose.yml "$T/project/"
cp -R deploy "$T/project/deploy"
(umask 077 && printf 'JWT_SECRET=%s\nGATEWAY_BIND=127.0.0.1\nGATEWAY_PORT=%s\nAPP_UPSTREAM=app:8090\n' \
    "$secret" "$port" > "$T/project/.env")

# The application: busybox nc (in the service image, built on the same base)
# runs this for each connection; it answers with the request line and the
# identity headers it got, and logs the request line to the container's log.
cat > "$T/app/echo.sh" <<'EOF'
#!/bin/sh
cr=$(printf '\r')
IFS= read -r request || exit 0
request=${request%"$cr"}
user=- session=-
while IFS= read -r line; do
    line=${line%"$cr"}
    [ -n "$line" ] || break
    case $line in
    X-User-Id:*) user=${line#X-User-Id:} ;;
    X-Session-Id:*) session=${line#X-Session-Id:} ;;
    esac
done
body=$(printf '{"request":"%s","x_user_id":"%s","x_session_id":"%s"}' "$request" "${user# }" "${session# }")
{ printf 'app: %s\n' "$request" > /proc/1/fd/1; } 2> /dev/null
printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
    "${#body}" "$body"
EOF
chmod 755 "$T/app" "$T/app/echo.sh"

c_redis=${P}_redis_1 c_create=${P}_createsession_1 c_read=${P}_readsession_1
c_close=${P}_closesession_1 c_gateway=${P}_gateway_1 c_app=${P}_app

# podman-compose creates every container as the file says; they are started
# in the order depends_on asks, each once the one before is healthy.
stack_up() {
    compose up --no-start || { why="podman-compose up --no-start failed"; return 1; }
    podman start "$c_redis" > /dev/null 2>> "$logs/podman.log" || { why="podman start $c_redis failed"; return 1; }
    wait_healthy "$c_redis" 30 || { why="redis is not healthy after 30 s"; return 1; }
    for c in "$c_create" "$c_read" "$c_close"; do
        podman start "$c" > /dev/null 2>> "$logs/podman.log" || { why="podman start $c failed"; return 1; }
    done
    for c in "$c_create" "$c_read" "$c_close"; do
        wait_healthy "$c" 30 || { why="$c is not healthy after 30 s"; return 1; }
    done
    podman run -d --name "$c_app" --network "${P}_default" --network-alias app --read-only \
        --cap-drop ALL -v "$T/app:/app:ro" --entrypoint busybox sessionservice \
        nc -ll -p 8090 -e /app/echo.sh > /dev/null 2>> "$logs/app.log" ||
        { why="the application container did not start"; return 1; }
    podman start "$c_gateway" > /dev/null 2>> "$logs/podman.log" || { why="podman start $c_gateway failed"; return 1; }
    wait_healthy "$c_gateway" 30 || { why="the gateway is not healthy after 30 s"; return 1; }
}
t0=$(date +%s)
why="not started: the images were not built"
if [ "$built" -eq 1 ] && stack_up; then
    stack=1
    ok "stack: docker-compose.yml up with podman-compose $(podman-compose version 2>/dev/null | sed -n 's/^podman-composer* version *//p' | head -n 1): redis, createsession, readsession, closesession, gateway healthy, in depends_on order, in $(($(date +%s) - t0)) s; gateway on 127.0.0.1:$port"
else
    stack=0
    fail "stack: $why"
    if [ "$built" -eq 1 ]; then
        for c in "$c_redis" "$c_create" "$c_read" "$c_close" "$c_gateway"; do
            podman logs "$c" > "$logs/$c.log" 2>&1
            log_tail "$logs/$c.log"
        done
    fi
fi

# --- 4. through the gateway ----------------------------------------------------------
app_seen() { podman logs "$c_app" 2>/dev/null | grep -c '^app: ' || true; }

if [ "$stack" -eq 1 ]; then
    # /readyz: readSession's store (Redis) answers
    code=$(http GET /readyz)
    if [ "$code" = 200 ] && grep -q '"ready"' "$T/body"; then
        ok "readyz: GET /readyz through the gateway: 200 $(cat "$T/body")"
    else
        fail "readyz: GET /readyz through the gateway: $code"
    fi

    # the README's create, read, validate, close, with its caller token
    user=alice-$P
    TOKEN=$(token "$user")
    auth="Authorization: Bearer $TOKEN"
    bad=""
    code=$(http POST /session -H "$auth" -H 'Content-Type: application/json' \
        -d '{"ttl": 600, "data": {"device": "laptop"}}')
    SID=$(json_field id "$T/body")
    STOKEN=$(json_field token "$T/body")
    [ "$code" = 201 ] && [ -n "$SID" ] && [ -n "$STOKEN" ] || bad="$bad; create $code"
    [ "$(header Location)" = "/session/$SID" ] || bad="$bad; create without Location /session/{id}"
    code=$(http GET "/session/$SID" -H "$auth")
    { [ "$code" = 200 ] && grep -q '"device":"laptop"' "$T/body" &&
        grep -q "\"user_id\":\"$user\"" "$T/body"; } || bad="$bad; read $code"
    code=$(http GET /validate -H "Authorization: Bearer $STOKEN")
    { [ "$code" = 200 ] && [ "$(header X-User-Id)" = "$user" ] &&
        [ "$(header X-Session-Id)" = "$SID" ]; } || bad="$bad; validate $code"
    code=$(http GET /validate --cookie "session=$STOKEN")
    [ "$code" = 200 ] || bad="$bad; validate by cookie $code"

    # auth_request: the application gets the identity of a live session only
    abad=""
    seen=$(app_seen)
    code=$(http GET '/app/page?x=1' -H "Authorization: Bearer $STOKEN")
    { [ "$code" = 200 ] && grep -q '"request":"GET /app/page?x=1 HTTP/1.1"' "$T/body" &&
        grep -q "\"x_user_id\":\"$user\",\"x_session_id\":\"$SID\"" "$T/body"; } ||
        abad="$abad; live token $code $(head -c 200 "$T/body")"
    code=$(http GET /app/page --cookie "session=$STOKEN")
    { [ "$code" = 200 ] && grep -q "\"x_user_id\":\"$user\"" "$T/body"; } || abad="$abad; live cookie $code"
    [ "$(app_seen)" -eq $((seen + 2)) ] || abad="$abad; the application saw $(($(app_seen) - seen)) of 2 requests"
    seen=$(app_seen)
    code=$(http GET /app/page)
    [ "$code" = 401 ] || abad="$abad; no token $code"
    code=$(http GET /app/page -H "Authorization: Bearer $TOKEN" -H "X-User-Id: $user")
    [ "$code" = 401 ] || abad="$abad; caller token (not a session token) $code"

    code=$(http DELETE "/session/$SID" -H "$auth")
    [ "$code" = 204 ] || bad="$bad; close $code"
    code=$(http GET /validate -H "Authorization: Bearer $STOKEN")
    [ "$code" = 401 ] || bad="$bad; validate after close $code"
    code=$(http GET "/session/$SID" -H "$auth")
    [ "$code" = 404 ] || bad="$bad; read after close $code"
    code=$(http GET /app/page -H "Authorization: Bearer $STOKEN")
    [ "$code" = 401 ] || abad="$abad; closed session $code"
    [ "$(app_seen)" -eq "$seen" ] || abad="$abad; the application was reached without a live session"

    if [ -z "$bad" ]; then
        ok "lifecycle: create 201 (Location /session/{id}), read 200, validate 200 with X-User-Id and X-Session-Id (Bearer and cookie), close 204; then validate 401, read 404"
    else
        fail "lifecycle:${bad#;}"
    fi
    if [ -z "$abad" ]; then
        ok "auth_request: /app/ with a live session token (Bearer, cookie): 200 from the application with X-User-Id and X-Session-Id; without a token, with a caller token, after close: 401, the application never reached"
    else
        fail "auth_request:${abad#;}"
    fi
fi

# --- 5. SIGTERM drains --------------------------------------------------------------
# Redis holds writes for 800 ms (CLIENT PAUSE WRITE, within the services'
# 1000 ms REDIS_TIMEOUT_MS), 8 creates go in through the gateway, and
# createSession is stopped (SIGTERM, compose's 15 s grace period) while they
# wait. Each must answer 201. "In flight at the signal" is read from the
# service's own log: a request that started before its shutdown line and
# ended after it.
ms_of() { date -d "$1" +%s%3N; }
in_flight_at_signal() { # log file: requests answered 201 that spanned the signal
    sig=$(grep '"msg":"signal 15: shutting down' "$1" | tail -n 1 | sed -n 's/^{"time":"\([^"]*\)".*/\1/p')
    [ -n "$sig" ] || { echo 0; return; }
    sig_ms=$(ms_of "$sig")
    grep '"method":"POST","route":"/session","status":201' "$1" |
        sed -n 's/^{"time":"\([^"]*\)".*"duration_ms":\([0-9.]*\).*/\1 \2/p' |
        while read -r t d; do
            end=$(ms_of "$t")
            start=$(awk -v e="$end" -v d="$d" 'BEGIN { printf "%d", e - d }')
            [ "$start" -lt "$sig_ms" ] && [ "$end" -ge "$sig_ms" ] && echo x
        done | wc -l
}
drain_try() { # sets dmsg; returns 0 when drained
    dtok=$(token "drain-$P")
    rm -f "$T"/drain.*
    podman exec "$c_redis" redis-cli CLIENT PAUSE 800 WRITE > /dev/null 2>> "$logs/drain.log" ||
        { dmsg="CLIENT PAUSE failed"; return 1; }
    pids=""
    for i in 1 2 3 4 5 6 7 8; do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 20 -X POST "$G/session" \
            -H "Authorization: Bearer $dtok" > "$T/drain.$i" 2> /dev/null &
        pids="$pids $!"
    done
    bg_pids=$pids
    sleep 0.2
    ts=$(date +%s%N)
    podman stop -t 15 "$c_create" > /dev/null 2>> "$logs/drain.log"
    te=$(date +%s%N)
    for p in $pids; do wait "$p" || true; done
    bg_pids=""
    codes=$(cat "$T"/drain.* | sort | uniq -c | awk '{ printf "%s%s x %s", (NR > 1 ? ", " : ""), $1, $2 }')
    exit_code=$(podman inspect -f '{{.State.ExitCode}}' "$c_create")
    podman logs "$c_create" > "$logs/createsession.log" 2>&1
    n=$(in_flight_at_signal "$logs/createsession.log")
    secs=$(awk -v a="$ts" -v b="$te" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    dmsg="8 creates through the gateway: $codes; $n of them in flight at SIGTERM (by the service's log); exit status $exit_code after $secs s of its 15 s grace period"
    [ "$codes" = "8 x 201" ] && [ "$exit_code" = 0 ] && [ "$n" -ge 1 ] &&
        awk -v s="$secs" 'BEGIN { exit !(s < 5) }'      # well within the 15 s
}
bring_back() { # the stopped createSession, and the gateway reloaded (DEPLOY.md 1.5)
    podman start "$c_create" > /dev/null 2>> "$logs/drain.log" && wait_healthy "$c_create" 30 || return 1
    podman kill --signal HUP "$c_gateway" > /dev/null 2>> "$logs/drain.log" || return 1
    btok=$(token "back-$P")
    n=0
    while [ "$n" -lt 40 ]; do
        [ "$(http POST /session -H "Authorization: Bearer $btok")" = 201 ] && return 0
        sleep 0.25
        n=$((n + 1))
    done
    return 1
}
if [ "$stack" -eq 1 ]; then
    tries=0
    while :; do
        tries=$((tries + 1))
        if drain_try; then drained=1; else drained=0; fi
        if bring_back; then back=1; else back=0; fi
        # a try where no request was in flight yet says nothing: again
        case $dmsg in *" 0 of them in flight"*) [ "$tries" -lt 3 ] && [ "$back" -eq 1 ] && continue ;; esac
        break
    done
    if [ "$drained" -eq 1 ] && [ "$back" -eq 1 ]; then
        ok "drain: $dmsg; back: healthy, a create through the gateway 201"
    elif [ "$drained" -eq 1 ]; then
        fail "drain: $dmsg; but createsession did not come back (healthy, then 201 through the gateway)"
    else
        fail "drain: $dmsg"
    fi
fi

# --- 6. Redis keeps sessions ---------------------------------------------------------
validate_all() { # session tokens: 0 when every one validates (allows 15 s to reconnect)
    for st in "$@"; do
        n=0
        until [ "$(http GET /validate -H "Authorization: Bearer $st")" = 200 ]; do
            n=$((n + 1))
            [ "$n" -lt 60 ] || return 1
            sleep 0.25
        done
    done
}
if [ "$stack" -eq 1 ]; then
    rtok=$(token "redis-$P")
    sids="" stoks="" rbad=""
    for i in 1 2 3; do
        code=$(http POST /session -H "Authorization: Bearer $rtok")
        [ "$code" = 201 ] || rbad="$rbad; create $code"
        sids="$sids $(json_field id "$T/body")"
        stoks="$stoks $(json_field token "$T/body")"
    done
    # shellcheck disable=SC2086
    set -- $stoks
    podman restart "$c_redis" > /dev/null 2>> "$logs/redis.log" && wait_healthy "$c_redis" 30 ||
        rbad="$rbad; redis not healthy after podman restart"
    validate_all "$@" || rbad="$rbad; a session created before podman restart does not validate after it"

    # where the AOF is: the named volume, mounted at /data
    vol=${P}_redis-data
    mounts=$(podman inspect -f '{{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}} {{end}}' "$c_redis")
    case " $mounts" in
    *" volume:$vol:/data "*) ;;
    *) rbad="$rbad; /data is not the named volume $vol (mounts: $mounts)" ;;
    esac
    mp=$(podman volume inspect -f '{{.Mountpoint}}' "$vol" 2>/dev/null || true)
    aof=$(find "$mp/appendonlydir" -type f -printf '%f ' 2>/dev/null | sed 's/ $//')
    in_aof=0
    for sid in $sids; do
        grep -rqF "ss:s:$sid" "$mp/appendonlydir/" 2>/dev/null && in_aof=$((in_aof + 1))
    done
    [ "$in_aof" -eq 3 ] || rbad="$rbad; $in_aof of 3 sessions in an AOF on $vol"

    # the container removed (its anonymous volumes too) and created again
    # from docker-compose.yml: only the named volume carries the sessions
    podman stop "$c_redis" > /dev/null 2>> "$logs/redis.log"
    podman rm -v "$c_redis" > /dev/null 2>> "$logs/redis.log"
    compose up --no-start redis
    podman start "$c_redis" > /dev/null 2>> "$logs/redis.log" && wait_healthy "$c_redis" 30 ||
        rbad="$rbad; redis not healthy after it was created again"
    validate_all "$@" || rbad="$rbad; a session does not validate after Redis was created again"

    if [ -z "$rbad" ]; then
        ok "redis: 3 sessions validate after podman restart and after the container was removed and created again; the AOF is on the named volume $vol, mounted at /data (appendonlydir: $aof; every session in it)"
    else
        fail "redis:${rbad#;}"
    fi
fi

# --- 7. the secret ----------------------------------------------------------------------
# On no command line (podman keeps each container's as CreateCommand, and the
# running processes'), in no log: the builds, podman-compose's output, every
# container's log, podman's events, this script's own lines.
sbad=""
for c in $(podman ps -aq); do
    podman inspect -f '{{.Name}} {{.Config.CreateCommand}}' "$c" | grep -qF -f "$T/secret" &&
        sbad="$sbad; in the command line of $(podman inspect -f '{{.Name}}' "$c")"
    podman logs "$c" > "$logs/container-$(podman inspect -f '{{.Name}}' "$c").log" 2>&1
done
# shellcheck disable=SC2009 # every process's arguments, not a name
ps -eo args= | grep -qF -f "$T/secret" && sbad="$sbad; in a running process's command line"
leaks=$(grep -rlF -f "$T/secret" "$logs" "$T/tmp/events" 2>/dev/null | sed "s|^$T/||" | tr '\n' ' ' || true)
[ -z "$leaks" ] || sbad="$sbad; in $leaks"
if [ -z "$sbad" ]; then
    ok "secret: JWT_SECRET (from .env) in the command line of none of $(podman ps -aq | wc -l) containers (podman's CreateCommand) or running processes, in none of $(find "$logs" -type f | wc -l) logs (builds, podman-compose, containers, podman's events, this output)"
else
    fail "secret:${sbad#;}"
fi

# --- 8. cleanup ---------------------------------------------------------------------------
cleanup
cbad=""
left=$(strays | tr '\n' ' ')
[ -z "$left" ] || cbad="$cbad; processes left: $(for p in $left; do cat "/proc/$p/comm" 2>/dev/null; done | tr '\n' ' ')"
grep -qF "$T/" /proc/self/mounts && cbad="$cbad; mounts left under $T"
for d in $host_state; do
    awk -v d="$d" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts &&
        cbad="$cbad; $d still mounted"
done
[ ! -e "$T" ] || cbad="$cbad; $T left"
for d in ${IMAGE_TEST_MADE:-}; do [ ! -e "$d" ] || cbad="$cbad; $d left"; done
[ "$had_chains" -ne 0 ] || ! (iptables -S; iptables -t nat -S) 2>/dev/null | grep -q NETAVARK ||
    cbad="$cbad; netavark's iptables chains left"
[ "$had_cgroups" -ne 0 ] || ! ls -d /sys/fs/cgroup/*/libpod_parent > /dev/null 2>&1 ||
    cbad="$cbad; cgroups libpod_parent left"
if [ -z "$cbad" ]; then
    ok "cleanup: containers, volumes, network, images, podman's storage and state removed; no process (conmon, aardvark-dns), mount, iptables chain or cgroup left"
else
    fail "cleanup:${cbad#;}"
fi

elapsed=$(($(date +%s) - started))
sizes=""
if [ -n "${runtime_size:-}" ] && [ -n "${gateway_size:-}" ]; then
    sizes="; runtime image $(bytes_mb "$runtime_size") ($(bytes_mb $((runtime_size - base_size))) over the base's $(bytes_mb "$base_size")), gateway image $(bytes_mb "$gateway_size") ($(bytes_mb $((gateway_size - base_size))) over it)"
fi
if [ "$failed" -eq 0 ]; then
    say "summary: all $passed checks ok in $elapsed s$sizes"
    exit 0
fi
say "summary: $failed of $((passed + failed)) checks FAILED ($failures) in $elapsed s$sizes"
exit 1
