#!/bin/sh
# cpu_budget.sh -- where the machine's CPUs go, per request: for nginx's
# static `return 200` (1 worker), and sessiond's healthz, read, validate
# and create on LMDB and on Redis, the CPU time (user + system, from /proc) that wrk,
# the server and redis-server each spend per request, under the load of
# `make bench` (wrk -t1 -c32). On a machine whose CPUs the three share, a
# rate is bounded by CPUs / (the sum of their CPU per request): the
# column *bound* is that quotient; a run that reaches it is CPU-bound.
# Issue 17 asks Redis read and validate for 0.6x of nginx: this shows what
# that rate leaves sessiond per request once wrk and redis-server took
# theirs (docs/BENCHMARKS.md, "Fifth pass").
#
#   bench/cpu_budget.sh              # 3 rounds of 5 s per scenario
#   CPU_ROUNDS=5 CPU_SECONDS=5 bench/cpu_budget.sh
#
# Starts on free loopback ports: nginx (1 worker, access_log off),
# redis-server (AOF, appendfsync always, as make bench), sessiond on LMDB
# (LMDB_SYNC=full) and sessiond on that Redis, both LOG_LEVEL=warn and no
# per-user cap; one session on each. Every round runs the scenarios in
# turns, each a 1 s warm-up then CPU_SECONDS measured; the table gives the
# medians over the rounds. CPU time is read from /proc/<pid>/stat (utime +
# stime, every thread; nginx: master and worker) before and after the run;
# wrk's own from `/usr/bin/time`.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${CPU_ROUNDS:-3}
SECS=${CPU_SECONDS:-5}
BENCH_DIR="$(pwd)/bench"
export BENCH_DIR
[ -x "$BUILD/sessiond" ] || { echo "cpu_budget: no $BUILD/sessiond (make all)" >&2; exit 1; }
for t in wrk nginx redis-server redis-cli curl; do
    command -v $t > /dev/null || { echo "cpu_budget: $t is not installed (scripts/deps.sh bench)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "cpu_budget: /usr/bin/time is not installed (scripts/deps.sh bench)" >&2; exit 1; }
BENCH_NAME=cpu_budget
. bench/lib.sh
bench_tmp
bench_secret
NGINX=$(free_port)
start_static_nginx "$NGINX"

REDIS=$(free_port)
start_redis_aof "$REDIS"

start() { # name STORE_URL -> port
    port=$(free_port)
    env PORT="$port" STORE_URL="$2" LOG_LEVEL=warn ENV_FILE=/dev/null SESSION_MAX_PER_USER=0 \
        "$BUILD/sessiond" > "$TMP/$1.log" 2>&1 &
    echo $! > "$TMP/$1.pid"
    echo "$port"
}
PORT_lmdb=$(start sd-lmdb "lmdb://$TMP/lmdb")
PORT_redis=$(start sd-redis "redis://127.0.0.1:$REDIS/0")
wait_port "$NGINX"; wait_port "$PORT_lmdb"; wait_port "$PORT_redis"

CALLER=$(scripts/token.sh bench-user)
for s in lmdb redis; do
    eval "first_session $s \$PORT_$s"
done

ticks() { # pid... -> their CPU time in clock ticks (utime + stime, all threads)
    for p in "$@"; do cat "/proc/$p/stat"; done | awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t }'
}
HZ=$(getconf CLK_TCK)
NGINX_MASTER=$(cat "$TMP/nginx.pid")
NGINX_PIDS="$NGINX_MASTER $(cat /proc/"$NGINX_MASTER"/task/*/children)" # master and worker
REDIS_PID=$(cat "$TMP/redis.pid")

measure() { # label "server pids" url [wrk args...] -> "label rps wrk_us server_us redis_us"
    label=$1; pids=$2; url=$3; shift 3
    script=get.lua
    case $label in *-create) script=create.lua ;; esac
    wrk -t1 -c32 -d1s -s "bench/$script" "$@" "$url" > /dev/null 2>&1 || true
    # shellcheck disable=SC2086 # $pids: several pids
    s0=$(ticks $pids); r0=$(ticks "$REDIS_PID")
    out=$(/usr/bin/time -f "WRKCPU %U %S" wrk -t1 -c32 -d"${SECS}s" -s "bench/$script" "$@" "$url" 2>&1)
    # shellcheck disable=SC2086
    s1=$(ticks $pids); r1=$(ticks "$REDIS_PID")
    echo "$out" | awk -v l="$label" -v s="$((s1 - s0))" -v r="$((r1 - r0))" -v hz="$HZ" -v d="$SECS" '
        /^RESULT/ { rps = $2 }
        /^WRKCPU/ { w = $2 + $3 }
        END { n = rps * d; if (n > 0) printf "%s %.1f %.2f %.2f %.2f\n", l, rps, w * 1e6 / n, s * 1e6 / hz / n, r * 1e6 / hz / n }'
}

RES="$TMP/results"
: > "$RES"
r=1; port=""; sid=""; tok=""; pid=""
while [ $r -le "$ROUNDS" ]; do
    measure nginx "$NGINX_PIDS" "http://127.0.0.1:$NGINX/" >> "$RES"
    for s in lmdb redis; do
        eval "port=\$PORT_$s sid=\$SID_$s tok=\$TOK_$s pid=\$(cat $TMP/sd-$s.pid)"
        {
            measure "$s-healthz" "$pid" "http://127.0.0.1:$port/healthz"
            measure "$s-read" "$pid" "http://127.0.0.1:$port/session/$sid" \
                -H "Authorization: Bearer $CALLER"
            measure "$s-validate" "$pid" "http://127.0.0.1:$port/validate" \
                -H "Authorization: Bearer $tok"
            measure "$s-create" "$pid" "http://127.0.0.1:$port/session" \
                -H "Authorization: Bearer $CALLER"
        } >> "$RES"
    done
    r=$((r + 1))
done

echo "cpu_budget: wrk -t1 -c32 -d${SECS}s, $ROUNDS rounds, $(getconf _NPROCESSORS_ONLN) CPUs; CPU microseconds per request (user + system), medians"
/usr/bin/python3 - "$RES" "$(getconf _NPROCESSORS_ONLN)" <<'PY'
import collections, statistics as st, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, *v = line.split()
    rows[label].append([float(x) for x in v])
cpus = int(sys.argv[2])
med = {l: [st.median(c) for c in zip(*v)] for l, v in rows.items()}
ng = med["nginx"][0]
print("%-15s %9s %6s %7s %8s %7s %7s %9s %6s" %
      ("scenario", "req/s", "ratio", "wrk", "server", "redis", "sum", "bound/s", "used"))
for l, (rps, w, s, r) in med.items():
    tot = w + s + r
    print("%-15s %9.0f %5.3fx %7.2f %8.2f %7.2f %7.2f %9.0f %5.0f%%" %
          (l, rps, rps / ng, w, s, r, tot, cpus * 1e6 / tot, 100 * rps * tot / 1e6 / cpus))
for l in ("redis-read", "redis-validate"):
    if l not in med:
        continue
    rps, w, s, r = med[l]
    want = 0.6 * ng
    # wrk's cost per request as in its cheapest run (it falls as the rate rises)
    wmin = min(v[1] for v in med.values())
    left = cpus * 1e6 / want - wmin - r
    print("%s at 0.6x (%.0f/s): %.2f us of CPU per request for everything; %.2f left to "
          "sessiond once wrk (%.2f, its cheapest) and redis-server (%.2f) took theirs. "
          "It spends %.2f (on LMDB %.2f)" %
          (l, want, cpus * 1e6 / want, left, wmin, r, s, med[l.replace("redis", "lmdb")][2]))
PY
