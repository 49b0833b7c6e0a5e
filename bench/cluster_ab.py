"""sessiond on one Redis against sessiond on a Redis Cluster, side by side:
read, validate and create in turns (one store first, then the other), for
more rounds than `make bench` runs, with what a noisy machine moves less
than requests/s: the CPU each request cost sessiond (all its threads,
/proc/PID/task/*/schedstat) and the Redis processes (utime + stime), and the
Redis commands each request sent (INFO commandstats).

Usage (from the repository's root, after `make`):
    /usr/bin/python3 bench/cluster_ab.py [ROUNDS [SECONDS [SCENARIOS]]]
defaults 6, 4 and read,validate,create. Every Redis node as in `make bench`:
AOF, appendfsync always, no RDB; the cluster has 3 primaries, no replicas
(tests/api/redistools.py starts them, and stops them on every way out)."""
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, "tests/api")
os.environ.setdefault("SESSIOND_BIN_DIR", os.path.abspath("build"))
from apitools import Server, make_token  # noqa: E402
from redistools import Redis, RedisCluster  # noqa: E402
import requests  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 6
SECS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
SCENARIOS = (sys.argv[3] if len(sys.argv) > 3 else "read,validate,create").split(",")
BENCH = os.path.abspath("bench")
TICK = os.sysconf("SC_CLK_TCK")


def sessiond_ns(pid):
    """CPU time of every thread of pid, nanoseconds (schedstat)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that ended meanwhile
    return total


def proc_ns(pid):
    """utime + stime of pid (all its threads), nanoseconds (clock ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e9 / TICK


def commands(nodes):
    """Calls of every Redis command on nodes (CONFIG excluded)."""
    n = 0
    for node in nodes:
        with node.client() as c:
            for m in re.finditer(r"^cmdstat_([^:]+):calls=(\d+)", c.call("INFO", "commandstats"), re.M):
                if not m.group(1).startswith("config"):
                    n += int(m.group(2))
    return n


def wrk(url, token, script, secs):
    args = ["wrk", "-t1", "-c32", "-d%ds" % secs, "--latency", "-s", "%s/%s" % (BENCH, script),
            "-H", "Authorization: Bearer " + token, url]
    out = subprocess.run(args, env=dict(os.environ, BENCH_DIR=BENCH), capture_output=True,
                         text=True).stdout
    done = re.search(r"^\s*(\d+) requests in", out, re.M)
    res = re.search(r"^RESULT (\S+) (\S+) (\S+) (\S+)", out, re.M)
    if not done or not res:
        raise RuntimeError("wrk said:\n" + out)
    return int(done.group(1)), float(res.group(1)), float(res.group(3)) / 1000, int(res.group(4))


def main():
    work = tempfile.mkdtemp(prefix="cluster-ab.")
    redis = Redis(os.path.join(work, "redis"))
    cluster = RedisCluster(os.path.join(work, "cluster"), primaries=3, replicas_per_primary=0)
    servers = []
    try:
        redis.start()
        cluster.start()
        env = {"LOG_LEVEL": "warn", "SESSION_MAX_PER_USER": "0"}
        stores = {"redis": (redis.url(0), [redis]), "cluster": (cluster.url(), cluster.data_nodes)}
        srv, nodes = {}, {}
        for name, (url, ns) in stores.items():
            s = Server("sessiond", os.path.join(work, name), env=env, store_url=url)
            servers.append(s)
            srv[name] = s.start()
            nodes[name] = ns
        caller = make_token("bench-user")
        made = {}
        for name, s in srv.items():
            r = requests.post(s.base + "/session", headers={"Authorization": "Bearer " + caller})
            r.raise_for_status()
            made[name] = r.json()
        print("ab: wrk -t1 -c32 -d%ds (after 1s warm-up), %d rounds, the two stores in turns; "
              "cluster: 3 primaries on %s" % (SECS, ROUNDS, cluster.url()), flush=True)
        res = {}
        for rnd in range(ROUNDS):
            order = ["redis", "cluster"] if rnd % 2 == 0 else ["cluster", "redis"]
            for what in SCENARIOS:
                for name in order:
                    s = srv[name]
                    if what == "read":
                        url, tok, script = s.base + "/session/" + made[name]["id"], caller, "get.lua"
                    elif what == "validate":
                        url, tok, script = s.base + "/validate", made[name]["token"], "get.lua"
                    else:
                        url, tok, script = s.base + "/session", caller, "create.lua"
                    wrk(url, tok, script, 1)  # warm-up
                    for node in nodes[name]:
                        with node.client() as c:
                            c.call("CONFIG", "RESETSTAT")
                    s0 = sessiond_ns(s.proc.pid)
                    r0 = sum(proc_ns(n.proc.pid) for n in nodes[name])
                    n, rps, p99, bad = wrk(url, tok, script, SECS)
                    s1 = sessiond_ns(s.proc.pid)
                    r1 = sum(proc_ns(n.proc.pid) for n in nodes[name])
                    row = (rps, p99, (s1 - s0) / 1000 / n, (r1 - r0) / 1000 / n,
                           commands(nodes[name]) / n, bad)
                    res.setdefault((name, what), []).append(row)
                    print("round %d %-8s %-9s %8.0f req/s  p99 %6.2f ms  sessiond %5.1f us/req  "
                          "redis %5.1f us/req  %4.2f commands/req  failed %d"
                          % ((rnd, name, what) + row), flush=True)
        print()
        print("%-9s %-8s %12s %9s %16s %13s %13s" % ("scenario", "store", "requests/s", "p99 ms",
                                                    "sessiond us/req", "redis us/req", "commands/req"))
        for what in SCENARIOS:
            for name in ("redis", "cluster"):
                rows = res[(name, what)]
                med = [statistics.median(r[k] for r in rows) for k in range(5)]
                print("%-9s %-8s %12.0f %9.2f %16.1f %13.1f %13.2f" % ((what, name) + tuple(med)))
        print()
        for what in SCENARIOS:
            a, b = res[("cluster", what)], res[("redis", what)]
            ratios = [x[0] / y[0] for x, y in zip(a, b)]
            print("cluster / redis, %s: %.3f (medians), %.3f (median of the rounds: %s)" % (
                what, statistics.median(x[0] for x in a) / statistics.median(y[0] for y in b),
                statistics.median(ratios), " ".join("%.2f" % x for x in ratios)))
    finally:
        for s in servers:
            if s.proc is not None and s.proc.poll() is None:
                s.proc.terminate()
                s.proc.wait(10)
        cluster.stop()
        redis.stop()
        subprocess.run(["rm", "-rf", work])


main()
