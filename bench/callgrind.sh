#!/bin/sh
# callgrind.sh -- the per-request budget of sessiond in instructions: how
# many instructions (callgrind's Ir) one request of each route costs, and
# how they split between libmicrohttpd, our HTTP layer, authentication, the
# executor, the store, rendering, metrics, logging and malloc/free.
# Instruction counts do not depend on how busy the machine is, so a run on
# a shared 2-CPU machine gives the same figures as one on a quiet machine
# (to within a few tenths of a percent); they are not time (a `rep stosb`
# of 32 KiB counts 32,768, a cache miss counts 1, the kernel counts 0).
#
#   bench/callgrind.sh                 # 2000 requests per route
#   CG_REQUESTS=500 bench/callgrind.sh # quicker
#
# What it does: starts build/sessiond under `valgrind --tool=callgrind`
# with THREADS=1 (one libmicrohttpd event thread), a temporary LMDB store
# (LMDB_SYNC=none by default, CG_SYNC=full to keep the fsyncs: they cost
# the CPU nothing in user space, only waiting), a random JWT_SECRET and a
# free port; warms every route up; then, for each route, zeroes the counters
# (callgrind_control -z), sends CG_REQUESTS requests over one keep-alive
# connection (/usr/bin/python3, http.client), and dumps the counters
# (callgrind_control -d). The phases, in order:
#   healthz       GET /healthz
#   read          GET /session/{id} with a caller token (HS256)
#   validate      GET /validate with the session token
#   create        POST /session {"ttl": 3600} (the user below the cap)
#   create@cap    POST /session at SESSION_MAX_PER_USER (each create evicts
#                 the user's oldest session: what `make bench`'s creates do
#                 after their first 1000, the default cap)
#   close         DELETE /session/{id}, the ids the create@cap phase made
# The counts are of all of sessiond's threads together (callgrind's
# default): the event thread, the commit lane's two threads (creates and
# closes run their store work there), the bulk lane (idle here), the
# housekeeper (last-seen writes, purge) and the deadline watcher (wakes 4
# times a second: a few thousand instructions per phase). Each phase's
# dump is divided by its number of requests. The client's own work is not
# counted (another process).
#
# Output: build/callgrind/callgrind.out.<phase> (open with kcachegrind or
# callgrind_annotate), build/callgrind/<phase>.{inclusive,self,callers}.txt
# (callgrind_annotate --inclusive=yes, --inclusive=no, --tree=caller), and
# on stdout the per-request table (the phases are inclusive costs of
# disjoint subtrees, named by the functions of src/http.c, api.c, exec.c,
# store.c and routes.c: docs/BENCHMARKS.md, "Per-request budget"), the
# self cost per shared object, and the 10 hottest functions (self) per route.
# Environment: CG_REQUESTS (2000), CG_WARMUP (100 requests of each route),
# CG_SYNC (none), CG_LOG_LEVEL (warn, as make bench), CG_OUT, BUILD.
# CG_STRACE=1 also runs the same phases without valgrind under `strace -c
# -f` and prints system calls per request per route.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
N=${CG_REQUESTS:-2000}
WARM=${CG_WARMUP:-100}
OUT=${CG_OUT:-$ROOT/$BUILD/callgrind}
SYNC=${CG_SYNC:-none}
[ -x "$ROOT/$BUILD/sessiond" ] || { echo "callgrind: no $BUILD/sessiond (make all)" >&2; exit 1; }
command -v valgrind > /dev/null || { echo "callgrind: valgrind is not installed" >&2; exit 1; }

TMP=$(mktemp -d /tmp/sessiond-cg.XXXXXX)
SPID=""
cleanup() {
    if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
        kill "$SPID" 2>/dev/null || true
        i=0
        while kill -0 "$SPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$SPID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

mkdir -p "$OUT"
rm -f "$OUT"/callgrind.out* "$OUT"/*.txt
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
export JWT_SECRET
# below the cap for the create phase, at it for create@cap
CAP=$((WARM + N + 10))

# The client: warm-up, then the phases; between phases it runs $HOOK
# (zero and dump the counters). Prints nothing but errors.
cat > "$TMP/client.py" <<'PY'
import base64, hashlib, hmac, http.client, json, os, subprocess, sys, time
port, n, warm, hook = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
secret = os.environ["JWT_SECRET"].encode()
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def mint(sub):
    now = int(time.time())
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    p = b64(json.dumps({"sub": sub, "iat": now, "exp": now + 7200}, separators=(",", ":")).encode())
    s = b64(hmac.new(secret, (h + "." + p).encode(), hashlib.sha256).digest())
    return h + "." + p + "." + s
caller = "Bearer " + mint("bench-user")
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
def req(method, path, auth=None, body=None, want=200):
    hdrs = {}
    if auth: hdrs["Authorization"] = auth
    if body is not None: hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    if r.status != want:
        sys.exit("callgrind: %s %s: %d %s" % (method, path, r.status, data[:200]))
    return data
def create():
    return json.loads(req("POST", "/session", caller, '{"ttl": 3600}', 201))
first = create()
sid, stok = first["id"], "Bearer " + first["token"]
ids = []
for _ in range(warm):  # every route once warm: token caches, LMDB readers, pools
    req("GET", "/healthz"); req("GET", "/session/" + sid, caller)
    req("GET", "/validate", stok)
    req("DELETE", "/session/" + create()["id"], caller, want=204)
def phase(name, fn):
    subprocess.run([hook, "zero"], check=True)
    for i in range(n): fn(i)
    subprocess.run([hook, "dump", name], check=True)
phase("healthz", lambda i: req("GET", "/healthz"))
phase("read", lambda i: req("GET", "/session/" + sid, caller))
phase("validate", lambda i: req("GET", "/validate", stok))
phase("create", lambda i: create())
phase("create@cap", lambda i: ids.append(create()["id"]))
phase("close", lambda i: req("DELETE", "/session/" + ids[i], caller, want=204))
conn.close()
PY

start() { # wrapper...: sessiond on $PORT with a fresh store, waits until it answers
    rm -rf "$TMP/store"
    PORT=$PORT STORE_URL="lmdb://$TMP/store" LMDB_SYNC=$SYNC THREADS=1 LOG_LEVEL=${CG_LOG_LEVEL:-warn} \
        SESSION_MAX_PER_USER=$CAP ENV_FILE=/dev/null "$@" "$ROOT/$BUILD/sessiond" \
        > "$TMP/sessiond.log" 2>&1 &
    SPID=$!
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! kill -0 "$SPID" 2>/dev/null; then
            echo "callgrind: sessiond did not start:" >&2; cat "$TMP/sessiond.log" >&2; exit 1
        fi
        sleep 0.1
    done
}
stop() {
    kill "$SPID"
    wait "$SPID" 2>/dev/null || true
    SPID=""
}

# ---- the callgrind run ----
cat > "$TMP/hook" <<HOOK
#!/bin/sh
# zero | dump NAME: the counters of the sessiond under callgrind
set -eu
case \$1 in
    zero) callgrind_control -z "\$(cat $TMP/pid)" > /dev/null 2>&1 ;;
    dump) callgrind_control -d "\$2" "\$(cat $TMP/pid)" > /dev/null 2>&1
          echo "\$2" >> "$TMP/phases" ;;
esac
HOOK
chmod +x "$TMP/hook"
start valgrind --tool=callgrind --dump-instr=no --dump-line=no \
    --callgrind-out-file="$TMP/cg.out" --log-file="$TMP/valgrind.log"
echo "$SPID" > "$TMP/pid"
/usr/bin/python3 "$TMP/client.py" "$PORT" "$N" "$WARM" "$TMP/hook"
stop
# dumps are cg.out.1, cg.out.2, ... in the order of the phases (the last
# file, at exit, is the shutdown's)
k=1
while read -r name; do
    cp "$TMP/cg.out.$k" "$OUT/callgrind.out.$name"
    callgrind_annotate --inclusive=yes --threshold=100 "$OUT/callgrind.out.$name" > "$OUT/$name.inclusive.txt"
    callgrind_annotate --inclusive=no --threshold=100 "$OUT/callgrind.out.$name" > "$OUT/$name.self.txt"
    callgrind_annotate --tree=caller --threshold=100 "$OUT/callgrind.out.$name" > "$OUT/$name.callers.txt"
    k=$((k + 1))
done < "$TMP/phases"

# ---- the report ----
/usr/bin/python3 - "$OUT" "$N" "$SYNC" <<'PY'
import re, sys
out, n, sync = sys.argv[1], int(sys.argv[2]), sys.argv[3]
phases = ["healthz", "read", "validate", "create", "create@cap", "close"]
line_re = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?):(\S+)\s+\[(.*)\]\s*$")
caller_re = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+<\s+(\S.*?):(\S+)\s+\(([\d,]+)x\)\s*(\[.*\])?\s*$")
def objects(path):
    t = {}
    for l in open(path):
        m = line_re.match(l)
        if m and m.group(3) not in ("clone", "start_thread"):
            o = m.group(4).rsplit("/", 1)[-1].split(".so")[0]
            t[o] = t.get(o, 0) + int(m.group(1).replace(",", ""))
    return t
def table(path):
    t, total = {}, 0
    for l in open(path):
        if "PROGRAM TOTALS" in l:
            total = int(l.split()[0].replace(",", ""))
            continue
        m = line_re.match(l)
        if m:
            fn = m.group(3)
            t[fn] = t.get(fn, 0) + int(m.group(1).replace(",", ""))
    return total, t
def callers(path):
    # --tree=caller: the callers of F ("Ir (pct) < file:caller (Nx) [obj]"),
    # then "Ir (pct) *  file:F [obj]": {F: [(caller, obj, Ir, calls)]}
    out, pending = {}, []
    for l in open(path):
        m = caller_re.match(l)
        if m:
            pending.append((m.group(3), m.group(5) or "", int(m.group(1).replace(",", "")),
                            int(m.group(4).replace(",", ""))))
            continue
        if "*  " in l:
            m = line_re.match(l.replace("*", " ", 1))
            if m:
                out.setdefault(m.group(3), []).extend(pending)
        pending = []
    return out
def ncalls(cl, fns):
    # calls from outside libc's malloc.c (calloc calling malloc is one call)
    return sum(c for f in fns for (caller, obj, ir, c) in cl.get(f, [])
               if caller not in ("malloc", "calloc", "realloc", "free", "_int_malloc", "_int_free"))
rows = []
for p in phases:
    total, inc = table("%s/%s.inclusive.txt" % (out, p))
    _, self_ = table("%s/%s.self.txt" % (out, p))
    g = lambda *names: sum(inc.get(x, 0) for x in names)
    s = lambda pred: sum(v for k, v in self_.items() if pred(k))
    cl = callers("%s/%s.callers.txt" % (out, p))
    mhd_memset = sum(ir for f in cl if "memset" in f for (caller, obj, ir, c) in cl[f]
                     if "libmicrohttpd" in obj)
    ours_http = g("on_request", "on_completed", "on_connection")
    serve = g("serve", "resume")
    answer = g("send_answer")
    auth = g("authenticate")
    render = g("finish")
    lanes = g("lane_loop")
    store = g("store_batch")
    metrics = g("metrics_request", "metrics_store")
    log = g("log_request", "log_msg")
    r = {
        "total": total,
        # everything but our callbacks, the lanes, the housekeeper and the
        # watcher: libmicrohttpd's reading, parsing, pool, writing (and libc under it)
        "mhd": total - ours_http - lanes - g("housekeeping", "watch_loop"),
        "http": ours_http - serve - answer - g("metrics_request", "log_request"),
        "answer": answer,
        "auth": g("token_verify", "cred_bearer", "cred_cookie", "route_policy"),
        "build": g("decode_create", "build_create", "build_read", "build_close",
                   "build_validate", "build_nothing"),
        "exec": g("exec_submit", "lane_loop") - store,
        "store": store,
        "render": render,
        "api": serve - g("token_verify", "cred_bearer", "cred_cookie", "route_policy")
               - render - g("exec_submit")
               - g("decode_create", "build_create", "build_read", "build_close",
                   "build_validate", "build_nothing"),
        "metrics": metrics,
        "log": log,
        "malloc": g("malloc", "free", "calloc", "realloc"),
        "mcalls": ncalls(cl, ("malloc", "calloc", "realloc")),
        "fcalls": ncalls(cl, ("free",)),
        "pool": mhd_memset,
        "nopool": total - mhd_memset,
        "json": s(lambda k: k.startswith("json_") or k.startswith("jsonp_") or k.startswith("hashtable_")),
        "mdb": s(lambda k: k.startswith("mdb_")),
        "hmac": g("EVP_MAC_init", "EVP_MAC_update", "EVP_MAC_final", "HMAC"),
        "memset": s(lambda k: "memset" in k),
        "bg": g("housekeeping", "watch_loop"),
    }
    r["obj"] = objects("%s/%s.self.txt" % (out, p))
    rows.append((p, r, self_))
cols = [("total", "total"), ("nopool", "without pool memset"), ("mhd", "MHD"), ("pool", "of which pool memset"), ("http", "http.c"), ("auth", "auth"),
        ("build", "build"), ("exec", "exec"), ("store", "store"), ("render", "render"),
        ("answer", "answer"), ("api", "api.c"), ("metrics", "metrics"), ("log", "log"), ("bg", "bg")]
print("callgrind: %d requests per route, one keep-alive connection, THREADS=1, LMDB_SYNC=%s; "
      "instructions (Ir) per request, all threads" % (n, sync))
print("| route | " + " | ".join(c[1] for c in cols) + " | malloc+free Ir | malloc calls | free calls |")
print("| --- " * (len(cols) + 4) + "|")
for p, r, _ in rows:
    print("| %s | " % p + " | ".join("{:,}".format(round(r[c[0]] / n)) for c in cols)
          + " | {:,} | {:.1f} | {:.1f} |".format(round(r["malloc"] / n), r["mcalls"] / n, r["fcalls"] / n))
print()
print("cross-cutting, Ir per request: self cost by shared object (stripped libraries show no "
      "function names), HMAC (EVP_MAC_*, inclusive), memset (self, all callers)")
objs = ["sessiond", "libmicrohttpd", "libc", "liblmdb", "libcrypto", "libjansson"]
print("| route | " + " | ".join(objs) + " | other | HMAC | memset |")
print("| --- " * (len(objs) + 4) + "|")
for p, r, _ in rows:
    o = r["obj"]
    other = sum(v for k, v in o.items() if k not in objs)
    print("| %s | %s |" % (p, " | ".join("{:,}".format(round(x / n)) for x in
          [o.get(k, 0) for k in objs] + [other, r["hmac"], r["memset"]])))
for p, r, self_ in rows:
    print()
    print("hottest (self), %s, Ir per request:" % p)
    # clone and start_thread are the roots of the threads running when the
    # counters were zeroed: callgrind gives them the whole phase as "self"
    for k, v in sorted(((k, v) for k, v in self_.items() if k not in ("clone", "start_thread")),
                       key=lambda kv: -kv[1])[:10]:
        print("  {:>8,}  {}".format(round(v / n), k))
PY
echo "callgrind: files in $OUT"

# ---- system calls (CG_STRACE=1; no valgrind) ----
# The same client against a plain sessiond; for each phase `strace -c -f -p`
# attaches to all its threads and is stopped (SIGINT) after the phase.
if [ "${CG_STRACE:-0}" = 1 ]; then
    command -v strace > /dev/null || { echo "callgrind: no strace" >&2; exit 1; }
    cat > "$TMP/hook" <<HOOK
#!/bin/sh
set -eu
case \$1 in
    zero) strace -c -f -p "\$(cat $TMP/pid)" -o "$TMP/strace.cur" 2> /dev/null &
          echo \$! > "$TMP/strace.pid"; sleep 1 ;;
    dump) sleep 0.2; kill -INT "\$(cat $TMP/strace.pid)"
          while kill -0 "\$(cat $TMP/strace.pid)" 2> /dev/null; do sleep 0.1; done
          mv "$TMP/strace.cur" "$OUT/strace.\$2.txt" ;;
esac
HOOK
    start
    echo "$SPID" > "$TMP/pid"
    /usr/bin/python3 "$TMP/client.py" "$PORT" "$N" "$WARM" "$TMP/hook"
    stop
    echo
    echo "system calls per request (strace -c -f, all threads; $N requests per route):"
    for p in healthz read validate create create@cap close; do
        awk -v n="$N" -v p="$p" '
            $NF != "total" && $1 ~ /^[0-9.]+$/ && NF >= 5 { c = ($4 ~ /^[0-9]+$/) ? $4 : 0
                name = $NF; if (c / n >= 0.05) list = list sprintf(" %s %.2f", name, c / n); all += c }
            END { printf "  %-10s %.2f:%s\n", p, all / n, list }' "$OUT/strace.$p.txt"
    done
fi
