#!/bin/sh
# run.sh -- `make bench`: sessiond on LMDB, on one Redis and on a Redis
# Cluster against nginx's static `return 200` on the same machine, in one
# run, with wrk (1 thread, 32 connections). Prints requests/s, p50 and p99
# and each rate as a ratio to the faster of nginx with 1 worker and with 2
# (both measured in every round) and as a share of sessiond's own
# GET /healthz, the cluster's as a ratio to the single Redis's, then the
# in-process store and token micro-benchmarks and the scale figures. Writes
# the medians to $BUILD/bench/bench.dat and charts them (bench/chart.sh) in
# $BUILD/bench/bench.svg. Every sessiond also verifies caller tokens signed
# RS256 and ES256 with the keys of a JWKS minted for the run
# (build/token_bench).
#
# Environment: BENCH_SECONDS (default 5) per measurement, BENCH_WARMUP (1),
# BENCH_ROUNDS (3), BENCH_SCALE (default 10000000) sessions for the scale
# test (0 skips it; validate over one of them and over 100,000 of them), BENCH_CLUSTER_PRIMARIES (3) and BENCH_CLUSTER_REPLICAS
# (0, replicas per primary) for the cluster, BENCH_WIDE (512) connections
# for the many-connections runs (0 skips them).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-5}
WARM=${BENCH_WARMUP:-1}
SCALE=${BENCH_SCALE:-10000000}
CONNS=32

TMP=$(mktemp -d /tmp/sessiond-bench.XXXXXX)
PIDS=""
cleanup() { # stops everything the run started (by pid), on every way out
    [ -d "$TMP" ] || return 0
    pids="$PIDS $(cat "$TMP"/*.pid 2>/dev/null || true)"
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    # wait (up to 5 s) until they are gone, then kill -9 what is left
    i=0; left=""
    while [ $i -lt 50 ]; do
        left=""
        for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
        [ -z "$left" ] && break
        sleep 0.1; i=$((i + 1))
    done
    for p in $left; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # port: wait until something answers HTTP there
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "bench: nothing on port $1" >&2; exit 1; }
        sleep 0.1
    done
}

export JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
export BENCH_DIR="$ROOT/bench"
NPROC=$(nproc)

# An identity provider's keys for every sessiond of the run (RSA-2048,
# P-256, Ed25519; the private keys stay in token_bench), and caller tokens
# signed with them for the user that creates the sessions read below.
mkdir -p "$TMP/jwks"
"$ROOT/$BUILD/token_bench" --mint "$TMP/jwks" bench-user
export JWT_JWKS_FILE="$TMP/jwks/jwks.json"
CALLER_RS256=$(cat "$TMP/jwks/rs256.tok")
CALLER_ES256=$(cat "$TMP/jwks/es256.tok")

# ---- servers ----
# nginx twice, with 1 worker and with 2: with wrk on one of 2 CPUs, 1 worker
# is often the faster, so neither is assumed; the faster median is the anchor
start_nginx() { # name workers port
    mkdir -p "$TMP/$1"
    cat > "$TMP/$1/nginx.conf" <<CONF
worker_processes $2;
pid $TMP/$1.pid;
error_log $TMP/$1/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$3;
        location / { default_type application/json; return 200 '{"status":"ok"}'; }
    }
}
CONF
    nginx -c "$TMP/$1/nginx.conf" -p "$TMP/$1" -e "$TMP/$1/error.log"
    wait_port "$3"
}
NGINX1_PORT=$(free_port)
start_nginx nginx-1w 1 "$NGINX1_PORT"
NGINX2_PORT=$(free_port)
start_nginx nginx-2w 2 "$NGINX2_PORT"

REDIS_PORT=$(free_port)
mkdir -p "$TMP/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP/redis" --save '' \
    --appendonly yes --appendfsync always --daemonize no > "$TMP/redis.log" 2>&1 &
PIDS="$PIDS $!"
i=0; until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done

# A Redis Cluster: BENCH_CLUSTER_PRIMARIES (3) primaries with
# BENCH_CLUSTER_REPLICAS (0) replicas each, every node persisting as the
# single Redis above (AOF, fsync always, no RDB), created with redis-cli.
# A node also listens on its port + 10000 (the cluster bus), so both must be
# free: the ports are taken below the kernel's ephemeral range, where no
# outgoing connection and no free_port (bind to port 0) can take them
# meanwhile (as tests/api/redistools.py's free_port_pair does).
CLUSTER_PRIMARIES=${BENCH_CLUSTER_PRIMARIES:-3}
CLUSTER_REPLICAS=${BENCH_CLUSTER_REPLICAS:-0}
CLUSTER_NODES=$((CLUSTER_PRIMARIES * (1 + CLUSTER_REPLICAS)))
free_port_pairs() { # n -> n distinct ports p, each with p and p + 10000 free
    /usr/bin/python3 - "$1" <<'PY'
import random, socket, sys
def bindable(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    lo = 32768
n, got = int(sys.argv[1]), []
bands = ([(10000, lo - 1 - 10000)] if lo - 1 - 10000 > 10000 else []) + [(1024, 55535)]
for a, b in bands:
    for _ in range(5000):
        if len(got) == n:
            break
        p = random.randint(a, b)
        if all(abs(p - q) != 0 and abs(p - q) != 10000 for q in got) and bindable(p) \
                and bindable(p + 10000):
            got.append(p)
if len(got) < n:
    sys.exit("bench: no %d free port pairs (p, p + 10000)" % n)
print(" ".join(map(str, got)))
PY
}
# cluster_ok: every node says cluster_state:ok, knows every node and sees
# all 16384 slots served (cluster_slots_ok), and all give the same CLUSTER SLOTS
# (redis-cli --cluster create returns once the nodes agree on the
# configuration; gossip may still be catching up)
cluster_ok() {
    first=""
    for p in $CLUSTER_PORTS; do
        info=$(redis-cli -p "$p" cluster info 2>/dev/null | tr -d '\r') || return 1
        echo "$info" | grep -qx 'cluster_state:ok' || return 1
        echo "$info" | grep -qx "cluster_known_nodes:$CLUSTER_NODES" || return 1
        echo "$info" | grep -qx 'cluster_slots_ok:16384' || return 1
        slots=$(redis-cli -p "$p" cluster slots 2>/dev/null | md5sum) || return 1
        [ -z "$first" ] && first=$slots
        [ "$slots" = "$first" ] || return 1
        if [ "$CLUSTER_REPLICAS" -gt 0 ] &&
            redis-cli -p "$p" info replication | tr -d '\r' | grep -qx 'role:slave'; then
            redis-cli -p "$p" info replication | tr -d '\r' | grep -qx 'master_link_status:up' ||
                return 1
        fi
    done
}
start_cluster() { # -> 0 with a healthy cluster on CLUSTER_PORTS, else 1 (its nodes stopped)
    CLUSTER_PORTS=$(free_port_pairs "$CLUSTER_NODES")
    CLUSTER_PIDS=""
    for p in $CLUSTER_PORTS; do
        mkdir -p "$TMP/cluster/$p"
        redis-server --port "$p" --bind 127.0.0.1 --dir "$TMP/cluster/$p" --save '' \
            --appendonly yes --appendfsync always --daemonize no \
            --cluster-enabled yes --cluster-config-file nodes.conf \
            > "$TMP/cluster/$p.log" 2>&1 &
        CLUSTER_PIDS="$CLUSTER_PIDS $!"
        PIDS="$PIDS $!"
    done
    ok=1
    for p in $CLUSTER_PORTS; do
        i=0
        until redis-cli -p "$p" ping >/dev/null 2>&1; do
            i=$((i + 1)); [ $i -gt 100 ] && { ok=0; break; }
            sleep 0.1
        done
    done
    if [ $ok = 1 ]; then
        # shellcheck disable=SC2046
        redis-cli --cluster create $(for p in $CLUSTER_PORTS; do echo "127.0.0.1:$p"; done) \
            --cluster-replicas "$CLUSTER_REPLICAS" --cluster-yes \
            > "$TMP/cluster/create.out" 2>&1 || ok=0
    fi
    if [ $ok = 1 ]; then
        i=0
        until cluster_ok; do
            i=$((i + 1)); [ $i -gt 300 ] && { ok=0; break; }
            sleep 0.1
        done
    fi
    [ $ok = 1 ] && return 0
    for p in $CLUSTER_PORTS; do tail -5 "$TMP/cluster/$p.log" >&2 2>/dev/null || true; done
    tail -5 "$TMP/cluster/create.out" >&2 2>/dev/null || true
    for p in $CLUSTER_PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $CLUSTER_PIDS; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP/cluster"
    return 1
}
# a port taken meanwhile (between the check and redis-server's bind) makes
# a node exit: start again on other ports
t0=$(date +%s)
attempt=1
until start_cluster; do
    attempt=$((attempt + 1))
    [ $attempt -gt 3 ] && { echo "bench: no healthy Redis Cluster after 3 attempts" >&2; exit 1; }
    echo "bench: the Redis Cluster did not start (above); again on other ports" >&2
done
CLUSTER_SEEDS=$(for p in $CLUSTER_PORTS; do printf '127.0.0.1:%s,' "$p"; done | sed 's/,$//')
CLUSTER_STARTED_S=$(( $(date +%s) - t0 ))

start_sessiond() { # name store_url -> prints port
    # (runs in a command substitution, a subshell: the pid goes to a file
    # for cleanup, not into PIDS)
    # One caller creates every session of the run: without a cap, as a
    # create would otherwise measure eviction at SESSION_MAX_PER_USER (the
    # cost at the cap is one read per session of that user, docs/BENCHMARKS.md)
    port=$(free_port)
    PORT=$port STORE_URL=$2 LOG_LEVEL=warn ENV_FILE=/dev/null SESSION_MAX_PER_USER=0 \
        "$ROOT/$BUILD/sessiond" > "$TMP/$1.log" 2>&1 &
    echo $! > "$TMP/$1.pid"
    echo "$port"
}
LMDB_PORT=$(start_sessiond lmdb "lmdb://$TMP/lmdb")
REDISD_PORT=$(start_sessiond redis "redis://127.0.0.1:$REDIS_PORT/0")
CLUSTERD_PORT=$(start_sessiond cluster "redis-cluster://$CLUSTER_SEEDS")
# the same, without waiting for the disk: what create costs in CPU alone
NOSYNC_PORT=$(LMDB_SYNC=none start_sessiond lmdb-nosync "lmdb://$TMP/lmdb-nosync")
wait_port "$LMDB_PORT"; wait_port "$REDISD_PORT"; wait_port "$NOSYNC_PORT"; wait_port "$CLUSTERD_PORT"
# the cluster's sessiond is ready once it has written on every primary
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CLUSTERD_PORT/readyz")" = 200 ]; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "bench: sessiond on the cluster not ready" >&2; exit 1; }
    sleep 0.1
done

CALLER=$(scripts/token.sh bench-user)
export BENCH_CALLER="$CALLER"

# ---- measurement ----
# wrk_run name url script [extra wrk args...] -> "rps p50 p99 failed"
wrk_run() {
    url=$1; script=$2; shift 2
    # close.lua consumes its ids: no warm-up there (create just warmed up)
    [ "$script" = close.lua ] ||
        wrk -t1 -c"$CONNS" -d"${WARM}s" -s "bench/$script" "$@" "$url" > /dev/null 2>&1 || true
    wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "bench/$script" "$@" "$url" 2>&1 |
        awk '/^RESULT/ { print $2, $3, $4, $5 }'
}

RESULTS="$TMP/results"
: > "$RESULTS"
record() { # label rps p50 p99 failed
    echo "$*" >> "$RESULTS"
}

# The anchors, in turns (each round starts one further along): nginx with
# 1 worker, with 2, and sessiond's GET /healthz (on LMDB; it reads no store)
measure_anchors() {
    case $((r % 3)) in
        0) order="1 2 h" ;;
        1) order="2 h 1" ;;
        *) order="h 1 2" ;;
    esac
    for a in $order; do
        case $a in
            1) set -- $(wrk_run "http://127.0.0.1:$NGINX1_PORT/" get.lua)
               record "nginx 1-worker" "$@" ;;
            2) set -- $(wrk_run "http://127.0.0.1:$NGINX2_PORT/" get.lua)
               record "nginx 2-workers" "$@" ;;
            *) set -- $(wrk_run "http://127.0.0.1:$LMDB_PORT/healthz" get.lua)
               record "sessiond healthz" "$@" ;;
        esac
    done
}

# A session and its token on each server, for read and validate.
prepare() { # label port
    made=$(curl -s -X POST "http://127.0.0.1:$2/session" -H "Authorization: Bearer $CALLER")
    eval "SID_$1=$(echo "$made" | sed 's/.*"id":"\([^"]*\)".*/\1/')"
    eval "STOK_$1=$(echo "$made" | sed 's/.*"token":"\([^"]*\)".*/\1/')"
}

# The token of a new session with an idle timeout of IDLE_TIMEOUT seconds,
# whose validates record the use before answering once per
# max(2, IDLE_TIMEOUT/20) s (40: every 2 s, the most often any idle timeout
# writes). A new one every round: a round lasts longer than 40 s, so the
# idle timeout would end one session between its rounds (and every later
# validate of it would be a 401).
IDLE_TIMEOUT=40
idle_session() { # base url -> prints the session token
    curl -s -X POST "$1/session" -H "Authorization: Bearer $CALLER" \
        -H "Content-Type: application/json" -d "{\"idle_timeout\":$IDLE_TIMEOUT}" |
        sed 's/.*"token":"\([^"]*\)".*/\1/'
}

measure_reads() { # label port
    eval "sid=\$SID_$1 stok=\$STOK_$1"
    base="http://127.0.0.1:$2"
    # read of the same session with the caller token signed HS256 (the
    # service's secret), RS256 and ES256 (the JWKS), in turns: each round
    # starts one further along (HS256 RS256 ES256, RS256 ES256 HS256, ...),
    # so over three rounds each comes first, second and last once
    case $((r % 3)) in
        0) algs="HS256 RS256 ES256" ;;
        1) algs="RS256 ES256 HS256" ;;
        *) algs="ES256 HS256 RS256" ;;
    esac
    for alg in $algs; do
        case $alg in
            HS256) tok=$CALLER; what=read ;;
            RS256) tok=$CALLER_RS256; what="read($alg)" ;;
            *) tok=$CALLER_ES256; what="read($alg)" ;;
        esac
        set -- $(wrk_run "$base/session/$sid" get.lua -H "Authorization: Bearer $tok")
        record "$label $what" "$@"
    done
    # validate with and without an idle timeout, in turns (first one, then
    # the other first: a machine that slows down over a round favours none)
    itok=$(idle_session "$base")
    for which in $( [ $((r % 2)) = 0 ] && echo "plain idle" || echo "idle plain"); do
        if [ "$which" = plain ]; then
            set -- $(wrk_run "$base/validate" get.lua -H "Authorization: Bearer $stok")
            record "$label validate" "$@"
        else
            set -- $(wrk_run "$base/validate" get.lua -H "Authorization: Bearer $itok")
            record "$label validate(idle)" "$@"
        fi
    done
}

measure_create() { # label port: one create run; the ids it makes are kept for close
    base="http://127.0.0.1:$2"
    BENCH_IDS="$TMP/ids-$1"; export BENCH_IDS
    set -- $(wrk_run "$base/session" create.lua -H "Authorization: Bearer $CALLER")
    record "$label create" "$@"
}

measure_writes() { # label port: close and mixed (create was measured in rounds)
    label=$1; base="http://127.0.0.1:$2"
    eval "BENCH_SID=\$SID_$1 BENCH_SESSION=\$STOK_$1"
    export BENCH_SID BENCH_SESSION
    export BENCH_IDS="$TMP/ids-$label"
    touch "$BENCH_IDS"
    # close needs a fresh id per request: top the ids the creates left up
    # (unmeasured runs) until there are enough for a close run at up to
    # 30,000 requests/s
    extra=0
    while [ "$(wc -l < "$BENCH_IDS")" -lt $((30000 * SECS)) ] && [ $extra -lt 6 ]; do
        wrk -t1 -c"$CONNS" -d"${SECS}s" -s bench/create.lua -H "Authorization: Bearer $CALLER" \
            "$base/session" > /dev/null 2>&1 || true
        extra=$((extra + 1))
    done
    set -- $(wrk_run "$base/session" close.lua -H "Authorization: Bearer $CALLER")
    record "$label close" "$@"
    set -- $(wrk_run "$base/validate" mixed.lua)
    record "$label mixed" "$@"
}

# Many connections (WIDE, 512): read and validate on LMDB and Redis and
# the 1-worker nginx, each round, for their p99 (issue 17: < 10 ms). Their
# ratio column is to the anchor measured at $CONNS connections.
WIDE=${BENCH_WIDE:-512}
measure_wide() {
    [ "$WIDE" -gt 0 ] || return 0
    saved=$CONNS; CONNS=$WIDE
    set -- $(wrk_run "http://127.0.0.1:$NGINX1_PORT/" get.lua)
    record "nginx-1w @$WIDE" "$@"
    for label in lmdb redis; do
        if [ "$label" = lmdb ]; then port=$LMDB_PORT; else port=$REDISD_PORT; fi
        eval "sid=\$SID_$label stok=\$STOK_$label"
        set -- $(wrk_run "http://127.0.0.1:$port/session/$sid" get.lua -H "Authorization: Bearer $CALLER")
        record "$label read@$WIDE" "$@"
        set -- $(wrk_run "http://127.0.0.1:$port/validate" get.lua -H "Authorization: Bearer $stok")
        record "$label validate@$WIDE" "$@"
    done
    CONNS=$saved
    measure_churn
}

# New connections under load: while wrk -c$WIDE reads one session on LMDB
# over keep-alive connections, 8 clients each open a connection per request
# (GET /healthz, "Connection: close"), as a gateway does beyond its pool of
# idle upstream connections; the same beside nginx's static answer, the two
# in turns. Their connections/s, p50, p99 and failed requests are reported
# below the table ($CHURN: target rps p50 p99 failed per round).
CHURN="$TMP/churn"
: > "$CHURN"
measure_churn() {
    [ "$WIDE" -gt 0 ] || return 0
    if [ $((r % 2)) = 0 ]; then order="nginx lmdb"; else order="lmdb nginx"; fi
    for target in $order; do
        if [ "$target" = nginx ]; then
            bg="http://127.0.0.1:$NGINX1_PORT/"; fg="http://127.0.0.1:$NGINX1_PORT/"
        else
            bg="http://127.0.0.1:$LMDB_PORT/session/$SID_lmdb"; fg="http://127.0.0.1:$LMDB_PORT/healthz"
        fi
        wrk -t1 -c"$WIDE" -d"$((SECS + 2))s" -H "Authorization: Bearer $CALLER" "$bg" > /dev/null 2>&1 &
        busy=$!
        PIDS="$PIDS $busy"
        sleep 1
        set -- $(wrk -t1 -c8 -d"${SECS}s" --latency -s bench/get.lua -H "Connection: close" "$fg" 2>&1 |
                 awk '/^RESULT/ { print $2, $3, $4, $5 }')
        wait "$busy" || true
        if [ $# -eq 4 ]; then echo "$target $*" >> "$CHURN"; fi
    done
}

ROUNDS=${BENCH_ROUNDS:-3}
echo "bench: wrk -t1 -c$CONNS -d${SECS}s (after ${WARM}s warm-up) on $NPROC CPUs;" \
    "nginx with 1 worker and with 2 (the faster median is the anchor), and sessiond's GET /healthz"
echo "bench: redis: one redis-server; cluster: Redis Cluster of $CLUSTER_PRIMARIES primaries" \
    "(replicas per primary: $CLUSTER_REPLICAS; up in ${CLUSTER_STARTED_S} s); both AOF, appendfsync always"
echo "bench: read (caller token HS256, RS256, ES256) and validate: $ROUNDS rounds, each next to the anchors' runs;" \
    "create: $ROUNDS rounds; medians below"
prepare lmdb "$LMDB_PORT"
prepare redis "$REDISD_PORT"
prepare cluster "$CLUSTERD_PORT"
r=0
while [ $r -lt "$ROUNDS" ]; do
    measure_anchors
    label=lmdb; measure_reads lmdb "$LMDB_PORT"
    # single Redis and the cluster next to each other, in turns (one
    # first, then the other), so that their ratio is of neighbouring runs
    if [ $((r % 2)) = 0 ]; then
        label=redis; measure_reads redis "$REDISD_PORT"
        label=cluster; measure_reads cluster "$CLUSTERD_PORT"
    else
        label=cluster; measure_reads cluster "$CLUSTERD_PORT"
        label=redis; measure_reads redis "$REDISD_PORT"
    fi
    measure_wide
    r=$((r + 1))
done
# create in rounds too, the three stores in turns (each round starts one
# further along), after the reads: the sessions they make would otherwise
# grow the stores (and their AOF rewrites) under the reads
r=0
while [ $r -lt "$ROUNDS" ]; do
    case $((r % 3)) in
        0) order="lmdb redis cluster" ;;
        1) order="redis cluster lmdb" ;;
        *) order="cluster lmdb redis" ;;
    esac
    for label in $order; do
        case $label in
            lmdb) measure_create lmdb "$LMDB_PORT" ;;
            redis) measure_create redis "$REDISD_PORT" ;;
            *) measure_create cluster "$CLUSTERD_PORT" ;;
        esac
    done
    r=$((r + 1))
done
measure_writes lmdb "$LMDB_PORT"
measure_writes redis "$REDISD_PORT"
measure_writes cluster "$CLUSTERD_PORT"
unset BENCH_IDS
prepare lmdb_nosync "$NOSYNC_PORT"
set -- $(wrk_run "http://127.0.0.1:$NOSYNC_PORT/session" create.lua -H "Authorization: Bearer $CALLER")
record "lmdb create(LMDB_SYNC=none)" "$@"
measure_anchors

# Every figure is the median of its runs; ratios are to the faster of the
# two nginx medians (the anchor), shares to the median of sessiond's
# /healthz. report FILE [DAT [INFO]]: DAT, when given, gets the table's
# medians for bench/chart.sh (tab-separated), under a header line INFO.
report() {
    awk -v dat="${2:-}" -v info="${3:-}" '
        function median(list, n,    i, j, t, a) {
            split(list, a, " ")
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        # the median of x[i] / y[i]: runs i of two scenarios measured in
        # the same round, so next to each other in time
        function paired(x, y,    i, m, a, b, list) {
            m = split(x, a, " "); split(y, b, " ")
            for (i = 1; i <= m; i++) list = list " " a[i] / b[i]
            return median(list, m)
        }
        {
            key = $1 " " $2
            if (!(key in n)) order[++k] = key
            n[key]++; rps[key] = rps[key] " " $3; p50[key] = p50[key] " " $4
            p99[key] = p99[key] " " $5; bad[key] += $6
        }
        END {
            n1 = "nginx 1-worker"; n2 = "nginx 2-workers"; hz = "sessiond healthz"
            ng1 = median(rps[n1], n[n1]); ng2 = median(rps[n2], n[n2])
            if (ng1 >= ng2) { anchor = n1; ng = ng1; other = n2; ngo = ng2 }
            else { anchor = n2; ng = ng2; other = n1; ngo = ng1 }
            hv = (hz in n) ? median(rps[hz], n[hz]) : 0
            printf "\nanchor: %s, the faster median of the two nginx (%.0f requests/s; %s: %.0f)\n",
                anchor, ng, other, ngo
            printf "ratio: to the anchor; healthz: to the median of sessiond GET /healthz (%.0f requests/s)\n", hv
            printf "%-27s %5s %12s %9s %9s %7s %7s %8s\n", "scenario", "runs", "requests/s", "p50 ms", "p99 ms",
                "failed", "ratio", "healthz"
            if (dat != "") {
                printf "# %s\n# anchor\t%s\t%.0f\n# other\t%s\t%.0f\n# healthz\t%.0f\n", info, anchor, ng,
                    other, ngo, (hv) > dat
                printf "# scenario\truns\trequests/s\tp50 ms\tp99 ms\tfailed\tratio\thealthz\n" > dat
            }
            for (i = 1; i <= k; i++) {
                key = order[i]; c = n[key]; v = median(rps[key], c)
                m50 = median(p50[key], c) / 1000; m99 = median(p99[key], c) / 1000
                printf "%-27s %5d %12.0f %9.2f %9.2f %7d %6.2fx %7.2fx\n", key, c, v, m50, m99, bad[key],
                    v / ng, (hv ? v / hv : 0)
                if (dat != "")
                    printf "%s\t%d\t%.0f\t%.2f\t%.2f\t%d\t%.6f\t%.6f\n", key, c, v, m50, m99, bad[key],
                        v / ng, (hv ? v / hv : 0) > dat
            }
            printf "(nginx runs, requests/s: 1 worker:%s; 2 workers:%s)\n", rps[n1], rps[n2]
            printf "(sessiond /healthz runs, requests/s:%s)\n", rps[hz]
            split("lmdb redis cluster", stores, " ")
            for (i = 1; i <= 3; i++) {
                a = stores[i] " validate(idle)"; b = stores[i] " validate"
                if ((a in n) && (b in n) && n[a] == n[b])
                    printf "%s: validate with an idle timeout / without: %.3f (medians), %.3f (median of the rounds)\n",
                        stores[i], median(rps[a], n[a]) / median(rps[b], n[b]), paired(rps[a], rps[b])
                # a caller token from the JWKS against one of the secret,
                # as the ratio of the medians and as the median of the
                # ratios within each round (less moved by a machine whose
                # speed changes from one round to the next)
                b = stores[i] " read"
                for (j = 1; j <= 2; j++) {
                    a = stores[i] (j == 1 ? " read(RS256)" : " read(ES256)")
                    if ((a in n) && (b in n) && n[a] == n[b])
                        printf "%s: %s / read (HS256): %.3f (medians), %.3f (median of the rounds)\n",
                            stores[i], substr(a, length(stores[i]) + 2),
                            median(rps[a], n[a]) / median(rps[b], n[b]), paired(rps[a], rps[b])
                }
            }
            # the cluster against the single Redis, scenario by scenario:
            # requests/s as the ratio of the medians and as the median of
            # the rounds ratios (the two runs of a round are neighbours)
            for (i = 1; i <= k; i++) {
                a = order[i]
                if (substr(a, 1, 8) != "cluster ") continue
                b = "redis " substr(a, 9)
                if (!(b in n)) continue
                printf "cluster / redis, %s: %.3f (medians)", substr(a, 9),
                    median(rps[a], n[a]) / median(rps[b], n[b])
                if (n[a] == n[b] && n[a] > 1)
                    printf ", %.3f (median of the rounds)", paired(rps[a], rps[b])
                printf "; p99 %.2f / %.2f ms\n", median(p99[a], n[a]) / 1000, median(p99[b], n[b]) / 1000
            }
        }' "$1"
}
mkdir -p "$ROOT/$BUILD/bench"
cp "$RESULTS" "$ROOT/$BUILD/bench/results"
report "$RESULTS" "$ROOT/$BUILD/bench/bench.dat" \
    "wrk -t1 -c$CONNS -d${SECS}s, $ROUNDS rounds, $NPROC CPUs, $(git describe --always --dirty 2>/dev/null || echo 'no git'), $(date -u '+%Y-%m-%d %H:%M UTC')"
if command -v gnuplot > /dev/null 2>&1; then
    bench/chart.sh "$BUILD/bench/bench.dat" "$BUILD/bench/bench.svg"
    echo "bench: chart of the table above: $BUILD/bench/bench.svg"
else
    echo "bench: no gnuplot (scripts/deps.sh bench installs it): no chart"
fi

if [ -s "$CHURN" ]; then
    awk -v wide="$WIDE" '
        function median(list, n,    i, j, t, a) {
            split(list, a, " ")
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        { n[$1]++; rps[$1] = rps[$1] " " $2; p50[$1] = p50[$1] " " $3; p99[$1] = p99[$1] " " $4; bad[$1] += $5 }
        END {
            printf "new connections under load (8 clients, a connection per request, beside %d busy keep-alive connections; medians of the rounds):\n", wide
            split("nginx lmdb", t, " ")
            for (i = 1; i <= 2; i++)
                if (t[i] in n)
                    printf "  %-6s %8.0f connections/s, p50 %.2f ms, p99 %.2f ms, %d failed (%d rounds)\n", t[i],
                        median(rps[t[i]], n[t[i]]), median(p50[t[i]], n[t[i]]) / 1000,
                        median(p99[t[i]], n[t[i]]) / 1000, bad[t[i]], n[t[i]]
        }' "$CHURN"
fi

# ---- store micro-benchmark (in process, one thread) ----
echo
"$ROOT/$BUILD/store_bench" --fsync "$TMP"
echo "store micro-benchmark (ops/s, one thread, in process; puts and deletes are durable one by one):"
"$ROOT/$BUILD/store_bench" "lmdb://$TMP/micro" 2000
"$ROOT/$BUILD/store_bench" "redis://127.0.0.1:$REDIS_PORT/1" 2000
"$ROOT/$BUILD/store_bench" "redis-cluster://$CLUSTER_SEEDS/micro" 2000
echo "store durable-create capacity without HTTP (store_batch of B new sessions, back to back, per commit-lane thread; LMDB_SYNC=full, appendfsync always):"
"$ROOT/$BUILD/store_bench" --batches "lmdb://$TMP/batches" 2 2
"$ROOT/$BUILD/store_bench" --batches "lmdb://$TMP/batches1" 1 2
"$ROOT/$BUILD/store_bench" --batches "redis://127.0.0.1:$REDIS_PORT/2" 1 2

# ---- token micro-benchmark (in process, one thread) ----
echo
"$ROOT/$BUILD/token_bench"

# ---- the gateway ----
# deploy/nginx.conf (one worker, as most gateways in front of a service on
# 2 CPUs) before the example application (here the 1-worker nginx's static
# `return 200`), with /app/ three ways: no check at all (its auth_request
# lines removed), auth_request to sessiond's /validate on LMDB, and the
# module (make nginx-module) reading the same store. A live session token on
# every request; rounds in turns; each as a ratio to the proxy without a
# check (issue 18: the module >= 0.9x).
GATEWAY_MODULE="$ROOT/$BUILD/ngx_http_sessiond_module.so"
start_gateway() { # name port [render-nginx.sh options...]
    name=$1; port=$2; shift 2
    mkdir -p "$TMP/$name"
    deploy/render-nginx.sh --listen "127.0.0.1:$port" --create "127.0.0.1:$LMDB_PORT" \
        --read "127.0.0.1:$LMDB_PORT" --close "127.0.0.1:$LMDB_PORT" \
        --app "127.0.0.1:$NGINX1_PORT" --error-log "$TMP/$name/error.log" \
        --access-log /dev/null "$@" |
        sed 's/^worker_processes auto;/worker_processes 1;/' > "$TMP/$name/nginx.conf"
    if [ "$name" = gw-proxy ]; then # the same location without its check
        sed -i '/^ *auth_request \/_sessiond_validate;/d' "$TMP/$name/nginx.conf"
    fi
    # as root, nginx's workers would be nobody, who may not open the
    # store's files (docs/DEPLOY.md 2.6): they run as this user
    as="daemon on;"; [ "$(id -u)" -eq 0 ] && as="daemon on; user $(id -un);"
    nginx -p "$TMP/$name/" -c "$TMP/$name/nginx.conf" -e "$TMP/$name/error.log" -g "$as"
    wait_port "$port"
}
measure_gateway() {
    printf 'JWT_SECRET=%s\nSTORE_URL=lmdb://%s/lmdb\n' "$JWT_SECRET" "$TMP" > "$TMP/gateway.env"
    GW_PROXY=$(free_port); start_gateway gw-proxy "$GW_PROXY"
    GW_AUTH=$(free_port); start_gateway gw-auth "$GW_AUTH"
    GW_MOD=$(free_port)
    start_gateway gw-module "$GW_MOD" --module "$GATEWAY_MODULE" --module-config "$TMP/gateway.env"
    for p in gw-proxy gw-auth gw-module; do PIDS="$PIDS $(cat "$TMP/$p/nginx.pid")"; done
    GW="$TMP/gateway"
    : > "$GW"
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        case $((r % 3)) in
            0) order="proxy auth module" ;;
            1) order="auth module proxy" ;;
            *) order="module proxy auth" ;;
        esac
        for g in $order; do
            case $g in
                proxy) port=$GW_PROXY ;;
                auth) port=$GW_AUTH ;;
                *) port=$GW_MOD ;;
            esac
            set -- $(wrk_run "http://127.0.0.1:$port/app/bench" get.lua -H "Authorization: Bearer $STOK_lmdb")
            echo "gateway $g $*" >> "$GW"
        done
        r=$((r + 1))
    done
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $STOK_lmdb" \
        "http://127.0.0.1:$GW_MOD/app/bench")
    asked=$(grep -c 'every check asks' "$TMP/gw-module/error.log" || true)
    echo "gateway: deploy/nginx.conf with 1 worker before the 1-worker nginx; /app/ with a live session" \
        "token: no check, auth_request (sessiond /validate, LMDB), the module; ratios to no check"
    awk '
        function median(list, n,    i, j, t, a) {
            split(list, a, " ")
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        { key = $2; n[key]++; rps[key] = rps[key] " " $3; p50[key] = p50[key] " " $4
          p99[key] = p99[key] " " $5; bad[key] += $6 }
        END {
            base = median(rps["proxy"], n["proxy"])
            split(rps["proxy"], pr, " ")
            printf "%-27s %5s %12s %9s %9s %7s %7s %8s\n", "scenario", "runs", "requests/s", "p50 ms",
                "p99 ms", "failed", "ratio", "paired"
            split("proxy auth module", names, " ")
            for (i = 1; i <= 3; i++) {
                key = names[i]; v = median(rps[key], n[key])
                split(rps[key], a, " "); list = ""
                for (j = 1; j <= n[key]; j++) list = list " " a[j] / pr[j]
                printf "%-27s %5d %12.0f %9.2f %9.2f %7d %6.2fx %7.2fx\n", "gateway " key, n[key], v,
                    median(p50[key], n[key]) / 1000, median(p99[key], n[key]) / 1000, bad[key],
                    v / base, median(list, n[key])
            }
        }' "$GW"
    echo "gateway: the module's answer to the session token: $code; store warnings in its log: $asked"
}
if [ -x "$GATEWAY_MODULE" ] || [ -f "$GATEWAY_MODULE" ]; then
    echo
    measure_gateway
else
    echo
    echo "bench: no $GATEWAY_MODULE (make nginx-module): no gateway figures"
fi

# ---- scale ----
if [ "$SCALE" -gt 0 ]; then
    echo
    echo "scale: $SCALE live sessions (100-byte user agent, empty data) in LMDB"
    SPORT=$(free_port)
    # and the session tokens of CYCLE of them, spread over the store
    CYCLE=$((SCALE < 100000 ? SCALE : 100000))
    "$ROOT/$BUILD/store_bench" --seed "lmdb://$TMP/scale" "$SCALE" "$TMP/cycle-tokens" "$CYCLE"
    PORT=$SPORT STORE_URL="lmdb://$TMP/scale" LOG_LEVEL=warn ENV_FILE=/dev/null \
        "$ROOT/$BUILD/sessiond" > "$TMP/scale.log" 2>&1 &
    SPID=$!
    # the cycling runs on a sessiond of their own (the same store): their
    # 100,000 tokens never pass through the one that validates one session
    CPORT=$(free_port)
    PORT=$CPORT STORE_URL="lmdb://$TMP/scale" LOG_LEVEL=warn ENV_FILE=/dev/null \
        "$ROOT/$BUILD/sessiond" > "$TMP/cycle.log" 2>&1 &
    CPID=$!
    PIDS="$PIDS $SPID $CPID"
    wait_port "$SPORT"
    wait_port "$CPORT"
    prepare scale "$SPORT"
    SCALED="$TMP/scaled"
    : > "$SCALED"
    r=0
    echo "$STOK_scale" > "$TMP/one-token"
    while [ $r -lt "$ROUNDS" ]; do # one session vs SCALE, side by side
        set -- $(wrk_run "http://127.0.0.1:$LMDB_PORT/validate" get.lua -H "Authorization: Bearer $STOK_lmdb")
        echo "validate one-session $*" >> "$SCALED"
        set -- $(wrk_run "http://127.0.0.1:$SPORT/validate" get.lua -H "Authorization: Bearer $STOK_scale")
        echo "validate $SCALE-sessions $*" >> "$SCALED"
        # over CYCLE sessions of the SCALE, each request another token and
        # session, against the same Lua path with one token (cycle.lua's
        # request() costs wrk the same time for both)
        set -- $(BENCH_TOKENS="$TMP/one-token" wrk_run "http://127.0.0.1:$CPORT/validate" cycle.lua)
        echo "validate(cycle) 1-of-$SCALE $*" >> "$SCALED"
        set -- $(BENCH_TOKENS="$TMP/cycle-tokens" wrk_run "http://127.0.0.1:$CPORT/validate" cycle.lua)
        echo "validate(cycle) $CYCLE-of-$SCALE $*" >> "$SCALED"
        r=$((r + 1))
    done
    rss=$(awk '/RssAnon/ { print $2 }' "/proc/$SPID/status")
    crss=$(awk '/RssAnon/ { print $2 }' "/proc/$CPID/status")
    kill "$SPID" "$CPID"; wait "$SPID" "$CPID" 2>/dev/null || true
    echo "validate, one session vs $SCALE (ratio and healthz columns: to the anchor's and /healthz's medians above):"
    grep '^nginx \|^sessiond healthz ' "$RESULTS" >> "$SCALED"
    report "$SCALED" | grep -v '^(\|^anchor:\|^ratio:\|^nginx \|^sessiond healthz '
    awk -v one="validate(cycle) 1-of-$SCALE" -v many="validate(cycle) $CYCLE-of-$SCALE" '
        { key = $1 " " $2; v[key] = v[key] " " $3; c[key]++ }
        function median(list, n,    i, j, t, a) {
            split(list, a, " ")
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        END { if (c[one] && c[many])
            printf "validate over %s distinct sessions / over one (both cycle.lua): %.3f (medians)\n",
                substr(many, 17, index(many, "-of-") - 17), median(v[many], c[many]) / median(v[one], c[one]) }' "$SCALED"
    bytes=$(du -b "$TMP/scale/data.mdb" | awk '{ print $1 }')
    echo "LMDB file: $bytes bytes, $(awk -v a="$bytes" -v n="$SCALE" 'BEGIN { printf "%.0f", a / n }') bytes per session"
    echo "sessiond RssAnon after serving them: $rss kB ($(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') MiB);" \
        "the cycling runs' sessiond: $crss kB"
fi
