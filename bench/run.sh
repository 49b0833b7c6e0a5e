#!/bin/sh
# run.sh -- `make bench`: sessiond on LMDB and on Redis against nginx's static
# `return 200` on the same machine, in one run, with wrk (1 thread, 32
# connections). Prints requests/s, p50 and p99 and each rate as a ratio to
# nginx's, then the in-process store micro-benchmark and the scale figures.
#
# Environment: BENCH_SECONDS (default 5) per measurement, BENCH_WARMUP (1),
# BENCH_SCALE (default 1000000) sessions for the scale test (0 skips it).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-5}
WARM=${BENCH_WARMUP:-1}
SCALE=${BENCH_SCALE:-1000000}
CONNS=32

TMP=$(mktemp -d /tmp/sessiond-bench.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null || true
    sleep 0.3
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

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

# ---- servers ----
NGINX_PORT=$(free_port)
cat > "$TMP/nginx.conf" <<CONF
worker_processes $NPROC;
pid $TMP/nginx.pid;
error_log $TMP/nginx.err;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { default_type application/json; return 200 '{"status":"ok"}'; }
    }
}
CONF
nginx -c "$TMP/nginx.conf" -p "$TMP" -e "$TMP/nginx.err"
wait_port "$NGINX_PORT"

REDIS_PORT=$(free_port)
mkdir -p "$TMP/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP/redis" --save '' \
    --appendonly yes --appendfsync always --daemonize no > "$TMP/redis.log" 2>&1 &
PIDS="$PIDS $!"
i=0; until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done

start_sessiond() { # name store_url -> prints port
    port=$(free_port)
    PORT=$port STORE_URL=$2 LOG_LEVEL=warn ENV_FILE=/dev/null "$ROOT/$BUILD/sessiond" \
        > "$TMP/$1.log" 2>&1 &
    PIDS="$PIDS $!"
    echo "$port"
}
LMDB_PORT=$(start_sessiond lmdb "lmdb://$TMP/lmdb")
REDISD_PORT=$(start_sessiond redis "redis://127.0.0.1:$REDIS_PORT/0")
wait_port "$LMDB_PORT"; wait_port "$REDISD_PORT"

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

measure_nginx() {
    set -- $(wrk_run "http://127.0.0.1:$NGINX_PORT/" get.lua)
    record "nginx-static-200" "$@"
}

measure_store() { # label port
    label=$1; port=$2; base="http://127.0.0.1:$port"
    made=$(curl -s -X POST "$base/session" -H "Authorization: Bearer $CALLER")
    sid=$(echo "$made" | sed 's/.*"id":"\([^"]*\)".*/\1/')
    stok=$(echo "$made" | sed 's/.*"token":"\([^"]*\)".*/\1/')
    export BENCH_SID="$sid" BENCH_SESSION="$stok"
    set -- $(wrk_run "$base/session/$sid" get.lua -H "Authorization: Bearer $CALLER")
    record "$label read" "$@"
    set -- $(wrk_run "$base/validate" get.lua -H "Authorization: Bearer $stok")
    record "$label validate" "$@"
    export BENCH_IDS="$TMP/ids-$label"
    : > "$BENCH_IDS"
    set -- $(wrk_run "$base/session" create.lua -H "Authorization: Bearer $CALLER")
    record "$label create" "$@"
    # close needs a fresh id per request: top the ids up (unmeasured runs)
    # until there are enough for a close run at up to 30,000 requests/s
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

echo "bench: wrk -t1 -c$CONNS -d${SECS}s (after ${WARM}s warm-up) on $NPROC CPUs; nginx: $NPROC workers"
measure_nginx
measure_store lmdb "$LMDB_PORT"
measure_store redis "$REDISD_PORT"
measure_nginx

# nginx's figure is the median of its runs (before and after the others).
awk '
    $1 == "nginx-static-200" { n[++k] = $2; p50[k] = $3; p99[k] = $4; next }
    { rows[++r] = $0 }
    END {
        if (k == 2) ng = (n[1] + n[2]) / 2; else ng = n[1]
        printf "\n%-22s %12s %10s %10s %8s %7s\n", "scenario", "requests/s", "p50 ms", "p99 ms", "failed", "ratio"
        printf "%-22s %12.0f %10.2f %10.2f %8s %7s\n", "nginx static 200", ng, (p50[1] + p50[k]) / 2000, (p99[1] + p99[k]) / 2000, "-", "1.00x"
        for (i = 1; i <= r; i++) {
            split(rows[i], f, " ")
            printf "%-22s %12.0f %10.2f %10.2f %8d %6.2fx\n", f[1] " " f[2], f[3], f[4] / 1000, f[5] / 1000, f[6], f[3] / ng
        }
        printf "(nginx runs: %.0f and %.0f requests/s)\n", n[1], n[2]
    }' "$RESULTS"

# ---- store micro-benchmark (in process, one thread) ----
echo
echo "store micro-benchmark (ops/s, one thread, in process; puts and deletes are durable one by one):"
"$ROOT/$BUILD/store_bench" "lmdb://$TMP/micro" 2000
"$ROOT/$BUILD/store_bench" "redis://127.0.0.1:$REDIS_PORT/1" 2000

# ---- scale ----
if [ "$SCALE" -gt 0 ]; then
    echo
    echo "scale: $SCALE live sessions (100-byte user agent, empty data) in LMDB"
    SPORT=$(free_port)
    "$ROOT/$BUILD/store_bench" --seed "lmdb://$TMP/scale" "$SCALE"
    PORT=$SPORT STORE_URL="lmdb://$TMP/scale" LOG_LEVEL=warn ENV_FILE=/dev/null \
        "$ROOT/$BUILD/sessiond" > "$TMP/scale.log" 2>&1 &
    SPID=$!
    PIDS="$PIDS $SPID"
    wait_port "$SPORT"
    made=$(curl -s -X POST "http://127.0.0.1:$SPORT/session" -H "Authorization: Bearer $CALLER")
    stok=$(echo "$made" | sed 's/.*"token":"\([^"]*\)".*/\1/')
    set -- $(wrk_run "http://127.0.0.1:$SPORT/validate" get.lua -H "Authorization: Bearer $stok")
    big=$1
    rss=$(awk '/RssAnon/ { print $2 }' "/proc/$SPID/status")
    kill "$SPID"; wait "$SPID" 2>/dev/null || true
    set -- $(awk '$1 == "lmdb" && $2 == "validate" { print $3 }' "$RESULTS")
    small=$1
    bytes=$(du -b "$TMP/scale/data.mdb" | awk '{ print $1 }')
    echo "validate with $SCALE sessions: $(printf '%.0f' "$big") requests/s; with one: $(printf '%.0f' "$small") ($(awk -v a="$big" -v b="$small" 'BEGIN { printf "%.2f", a / b }')x)"
    echo "LMDB file: $bytes bytes, $(awk -v a="$bytes" -v n="$SCALE" 'BEGIN { printf "%.0f", a / n }') bytes per session"
    echo "sessiond RssAnon after serving them: $rss kB ($(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') MiB)"
fi
