# shellcheck shell=sh
# lib.sh -- what bench/ab.sh and bench/cpu_budget.sh share, sourced by them
# (not run): a temporary directory whose processes are stopped on exit, free
# loopback ports, a random JWT_SECRET, nginx's static answer with 1 worker,
# and a redis-server that keeps every acknowledged write (AOF, appendfsync
# always, as make bench's). BENCH_NAME names the script in its messages.

# bench_tmp: TMP, a new directory; on exit every process whose pid is in a
# TMP/*.pid file is stopped and TMP removed.
bench_tmp() {
    TMP=$(mktemp -d "/tmp/sessiond-$BENCH_NAME.XXXXXX")
    trap 'kill $(cat "$TMP"/*.pid 2>/dev/null) 2>/dev/null || true; sleep 0.5; rm -rf "$TMP"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # port: until something answers HTTP there (10 s at most)
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$1/"; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "$BENCH_NAME: nothing on port $1" >&2; exit 1; }
        sleep 0.1
    done
}

bench_secret() { # exports a random JWT_SECRET for the run
    JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
    export JWT_SECRET
}

start_static_nginx() { # port: nginx with 1 worker answering 200 {"status":"ok"}; TMP/nginx.pid
    mkdir -p "$TMP/nginx"
    cat > "$TMP/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$1;
        location / { default_type application/json; return 200 '{"status":"ok"}'; }
    }
}
CONF
    nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" -e "$TMP/nginx/error.log"
}

start_redis_aof() { # port: redis-server in TMP (AOF, appendfsync always), up; TMP/redis.pid
    redis-server --port "$1" --bind 127.0.0.1 --dir "$TMP" --save '' --appendonly yes \
        --appendfsync always --daemonize no > "$TMP/redis.log" 2>&1 &
    echo $! > "$TMP/redis.pid"
    i=0
    until redis-cli -p "$1" ping > /dev/null 2>&1; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "$BENCH_NAME: redis-server did not start" >&2; exit 1; }
        sleep 0.1
    done
}

first_session() { # name port: a session for the caller $CALLER; sets SID_<name>, TOK_<name>
    made=$(curl -s -X POST "http://127.0.0.1:$2/session" -H "Authorization: Bearer $CALLER")
    eval "SID_$1=$(echo "$made" | sed 's/.*"id":"\([^"]*\)".*/\1/')"
    eval "TOK_$1=$(echo "$made" | sed 's/.*"token":"\([^"]*\)".*/\1/')"
}
