#!/bin/sh
# ab.sh -- two builds of sessiond side by side, in paired rounds: is a change
# to the hot path worth keeping? (issue 17: a change is kept only when the
# measurements show it.)
#
#   bench/ab.sh OLD_DIR NEW_DIR [ROUNDS [SECONDS]]
#
# OLD_DIR and NEW_DIR each hold a built sessiond (e.g. a copy of build/ before
# and after the change). Starts both on LMDB (LOG_LEVEL=warn, no cap) and
# nginx with 1 worker (`return 200`), then per round: nginx, and for healthz,
# read and validate the two builds one right after the other (which goes
# first alternates), wrk -t1 -c$AB_CONNS (32) for SECONDS (3) after a 1 s
# warm-up. Prints each scenario's median and its ratio to nginx, and per
# scenario the median over the rounds of new/old: runs next to each other
# in time, which a shared machine whose speed drifts moves the least.
# AB_NEW_ENV (e.g. "THREADS=2") is set for the new build only. AB_ROUTES
# (default "healthz read validate") may also name create (POST /session,
# bench/create.lua) and mixed (bench/mixed.lua: per 20 requests 17
# validate, 2 read, 1 create). AB_REDIS=1:
# both on one redis-server (as in run.sh: AOF, fsync always), databases 1
# and 2, instead of LMDB.
set -eu
[ $# -ge 2 ] || { echo "usage: bench/ab.sh OLD_DIR NEW_DIR [ROUNDS [SECONDS]]" >&2; exit 2; }
cd "$(dirname "$0")/.."
OLD=$(cd "$1" && pwd); NEW=$(cd "$2" && pwd)
ROUNDS=${3:-5}; SECS=${4:-3}; CONNS=${AB_CONNS:-32}
BENCH_DIR="$(pwd)/bench"
export BENCH_DIR
BENCH_NAME=ab
. bench/lib.sh
bench_tmp
bench_secret
NGINX=$(free_port)
start_static_nginx "$NGINX"

if [ "${AB_REDIS:-0}" = 1 ]; then
    REDIS=$(free_port)
    start_redis_aof "$REDIS"
fi
store_url() { # name -> the STORE_URL of build name (old: db 1, new: db 2)
    if [ -n "${REDIS:-}" ]; then
        if [ "$1" = old ]; then echo "redis://127.0.0.1:$REDIS/1"; else echo "redis://127.0.0.1:$REDIS/2"; fi
    else
        echo "lmdb://$TMP/$1"
    fi
}

start() { # name dir [VAR=value] -> port
    port=$(free_port)
    # shellcheck disable=SC2086 # ${3:-}: zero or more VAR=value words
    env ${3:-} PORT="$port" STORE_URL="$(store_url "$1")" LOG_LEVEL=warn ENV_FILE=/dev/null \
        SESSION_MAX_PER_USER=0 "$2/sessiond" > "$TMP/$1.log" 2>&1 &
    echo $! > "$TMP/$1.pid"
    echo "$port"
}
PORT_old=$(start old "$OLD")
PORT_new=$(start new "$NEW" "${AB_NEW_ENV:-}")
wait_port "$NGINX"; wait_port "$PORT_old"; wait_port "$PORT_new"

CALLER=$(scripts/token.sh bench-user)
for b in old new; do
    eval "first_session $b \$PORT_$b"
done

run() { # label url [wrk args...]: one measured run, "label rps p99_us"
    label=$1; url=$2; shift 2
    script=get.lua
    case $label in *-create) script=create.lua ;; *-mixed) script=mixed.lua ;; esac
    wrk -t1 -c"$CONNS" -d1s -s "bench/$script" "$@" "$url" > /dev/null 2>&1 || true
    wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "bench/$script" "$@" "$url" 2>&1 |
        awk -v l="$label" -v r="$r" '/^RESULT/ { print r, l, $2, $4 }'
}

RES="$TMP/results"
: > "$RES"
r=1; port=""; sid=""; tok=""
while [ $r -le "$ROUNDS" ]; do
    run nginx "http://127.0.0.1:$NGINX/" >> "$RES"
    for what in ${AB_ROUTES:-healthz read validate}; do
        if [ $((r % 2)) = 0 ]; then order="old new"; else order="new old"; fi
        for b in $order; do
            eval "port=\$PORT_$b sid=\$SID_$b tok=\$TOK_$b"
            case $what in
                healthz) run "$b-healthz" "http://127.0.0.1:$port/healthz" >> "$RES" ;;
                read) run "$b-read" "http://127.0.0.1:$port/session/$sid" \
                          -H "Authorization: Bearer $CALLER" >> "$RES" ;;
                create) run "$b-create" "http://127.0.0.1:$port/session" \
                            -H "Authorization: Bearer $CALLER" >> "$RES" ;;
                mixed) BENCH_CALLER=$CALLER BENCH_SESSION=$tok BENCH_SID=$sid \
                           run "$b-mixed" "http://127.0.0.1:$port/validate" >> "$RES" ;;
                *) run "$b-validate" "http://127.0.0.1:$port/validate" \
                       -H "Authorization: Bearer $tok" >> "$RES" ;;
            esac
        done
    done
    r=$((r + 1))
done

echo "ab: wrk -t1 -c$CONNS -d${SECS}s, $ROUNDS rounds, store $(store_url old | cut -d: -f1); old: $OLD; new: $NEW ${AB_NEW_ENV:-}"
/usr/bin/python3 - "$RES" <<'PY'
import collections, statistics as st, sys
rps = collections.defaultdict(dict); p99 = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    r, label, v, q = line.split()
    rps[label][r] = float(v); p99[label][r] = float(q)
ng = st.median(rps["nginx"].values())
print("%-14s %10s %7s %8s" % ("scenario", "req/s", "ratio", "p99 ms"))
for label in ["nginx"] + ["%s-%s" % (b, w) for w in ("healthz", "read", "validate", "create", "mixed") for b in ("old", "new")]:
    if label in rps:
        v = st.median(rps[label].values())
        print("%-14s %10.0f %6.3fx %8.2f" % (label, v, v / ng, st.median(p99[label].values()) / 1000))
for w in ("healthz", "read", "validate", "create", "mixed"):
    old, new = rps["old-" + w], rps["new-" + w]
    pairs = [new[r] / old[r] for r in old if r in new]
    if not pairs:
        continue
    print("new/old %-9s median of the rounds %.3f  (%s)" % (w, st.median(pairs),
          " ".join("%.2f" % x for x in pairs)))
PY
