"""Contract v2, "Tightened rules": regressions of issue 10, one test (or a
few) per defect, each of which failed on the code before its fix.

Every store where the rule concerns the store (the spawn/mspawn fixtures are
parametrized over LMDB, Redis, Sentinel and Cluster by conftest.py).
"""

import json

import jwt
import pytest

from apitools import (REDIS_KINDS, SECRET, assert_problem, assert_unauthorized, make_token, q,
                      uid)

ISS, AUD = "https://issuer.test", "sessions-api"


# ------------------------------------------ 1. JWT_AUDIENCE and session tokens

def test_session_tokens_carry_the_configured_audience(mspawn):
    srv = mspawn("sessiond", env={"JWT_ISSUER": ISS, "JWT_AUDIENCE": AUD})
    user = uid()
    s = srv.create(make_token(user, iss=ISS, aud=AUD))
    claims = jwt.decode(s["token"], SECRET, algorithms=["HS256"], audience=AUD, issuer=ISS)
    assert claims["aud"] == AUD and claims["iss"] == ISS and claims["sid"] == s["id"]
    # the service accepts its own session tokens everywhere a token goes
    r = srv.get("/validate", token=s["token"])
    assert r.status_code == 200, r.text
    assert r.headers["X-Session-Id"] == s["id"]
    r = srv.get("/session/%s" % s["id"], token=s["token"])
    assert r.status_code == 200, r.text


def test_session_tokens_carry_no_audience_when_none_is_set(mspawn):
    srv = mspawn("sessiond")
    s = srv.create(make_token(uid()))
    assert "aud" not in jwt.decode(s["token"], SECRET, algorithms=["HS256"])


# ------------------------------------------ 2. a long .env drops nothing

def test_env_file_with_many_keys_keeps_every_setting(spawn, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    lines = ["UNRELATED_%03d=value %d" % (i, i) for i in range(300)]
    lines += ["JWT_ISSUER=%s" % ISS, "JWT_AUDIENCE=%s" % AUD, "ADMIN_SCOPE=ops:all"]
    (cwd / ".env").write_text("\n".join(lines) + "\n")
    srv = spawn("sessiond", cwd=cwd)
    user = uid()
    path = "/users/%s/sessions" % q(user)
    # issuer and audience are enforced: they were read
    assert_unauthorized(srv.get(path, token=make_token(user)))
    assert_unauthorized(srv.get(path, token=make_token(user, iss=ISS)))
    assert srv.get(path, token=make_token(user, iss=ISS, aud=AUD)).status_code == 200
    # ADMIN_SCOPE counts: the default scope is no longer an administrator's
    other = uid()
    assert srv.get("/users/%s/sessions" % q(other),
                   token=make_token(user, iss=ISS, aud=AUD, scope="ops:all")).status_code == 200
    assert_problem(srv.get("/users/%s/sessions" % q(other),
                           token=make_token(user, iss=ISS, aud=AUD, scope="session:admin")), 403)


# ------------------------------------------ 8. session tokens cannot open sessions

def test_session_token_may_not_open_a_session(server, user):
    s = server.create(make_token(user))
    r = server.post("/session", token=s["token"])
    assert_problem(r, 403)
    r = server.post("/session", token=s["token"], json={"ttl": 60})
    assert_problem(r, 403)
    # nothing was written: the user still holds exactly one session
    r = server.get("/users/%s/sessions" % q(user), token=make_token(user))
    assert [x["id"] for x in r.json()["sessions"]] == [s["id"]]
    # it may still read, list and close
    assert server.get("/session/%s" % s["id"], token=s["token"]).status_code == 200
    assert server.get("/users/%s/sessions" % q(user), token=s["token"]).status_code == 200
    assert server.delete("/session/%s" % s["id"], token=s["token"]).status_code == 204


def test_a_closed_session_token_cannot_open_a_session_either(server, user):
    s = server.create(make_token(user))
    assert server.delete("/session/%s" % s["id"], token=make_token(user)).status_code == 204
    assert_unauthorized(server.post("/session", token=s["token"]))


# ------------------------------------------ 4. a failing store is 503, never 500

def assert_503(resp):
    assert_problem(resp, 503)
    assert resp.headers.get("Retry-After", "").strip().isdigit(), resp.headers


@pytest.mark.own_store
def test_redis_refusing_writes_is_503(spawn, tmp_path):
    """NOREPLICAS (min-replicas-to-write with no replica): every write is
    refused by Redis; the service answers 503 and /readyz says so."""
    from redistools import Redis
    red = Redis(tmp_path / "redis").start()
    try:
        srv = spawn("sessiond", env={"STORE_URL": red.url(0), "REDIS_TIMEOUT_MS": "300"})
        user = uid()
        tok = make_token(user)
        kept = srv.create(tok)
        assert srv.get("/readyz").status_code == 200
        cli = red.client(0)
        try:
            cli.call("CONFIG", "SET", "min-replicas-to-write", "1")
            assert_503(srv.post("/session", token=tok))
            assert_503(srv.delete("/session/%s" % kept["id"], token=tok))
            assert_503(srv.delete("/users/%s/sessions" % q(user), token=tok))
            assert_503(srv.get("/readyz"))
            # reads do not need a replica
            assert srv.get("/session/%s" % kept["id"], token=tok).status_code == 200
            cli.call("CONFIG", "SET", "min-replicas-to-write", "0")
        finally:
            cli.close()
        assert srv.get("/readyz").status_code == 200
        srv.create(tok)
        assert srv.delete("/session/%s" % kept["id"], token=tok).status_code == 204
    finally:
        red.stop()


def _script_counts(cli):
    """(EVAL calls, NOSCRIPT errors) of a redis-server so far."""
    from redistools import _info
    cmds = _info(cli.call("INFO", "commandstats"))
    errs = _info(cli.call("INFO", "errorstats"))

    def field(v, name):
        return int(dict(kv.split("=") for kv in v.split(","))[name]) if v else 0
    return (field(cmds.get("cmdstat_eval"), "calls"),
            field(errs.get("errorstat_NOSCRIPT"), "count"))


@pytest.mark.own_store
def test_redis_script_flush_is_no_error(spawn, tmp_path):
    """The store's scripts go by their SHA-1 (EVALSHA). A Redis without
    them (new, SCRIPT FLUSH, a primary new since a failover) answers
    NOSCRIPT and runs nothing; the service sends the script whole (EVAL)
    and the request succeeds. Once sent, the hash finds it: a NOSCRIPT only
    after each time Redis lost them, so the hash sent is the script's."""
    from redistools import Redis
    red = Redis(tmp_path / "redis").start()
    try:
        srv = spawn("sessiond", env={"STORE_URL": red.url(0)})
        user = uid()
        tok = make_token(user)
        cli = red.client(0)
        try:
            first = srv.create(tok)
            assert _script_counts(cli) == (1, 1)
            made = [srv.create(tok) for _ in range(3)]
            assert _script_counts(cli) == (1, 1)
            cli.call("SCRIPT", "FLUSH")
            again = srv.create(tok)
            assert _script_counts(cli) == (2, 2)
            for s in [first, again] + made:
                r = srv.get("/validate", token=s["token"])
                assert r.status_code == 200, r.text
            listed = srv.get("/users/%s/sessions" % q(user), token=tok).json()["sessions"]
            assert sorted(x["id"] for x in listed) == sorted(s["id"] for s in [first, again] + made)
        finally:
            cli.close()
    finally:
        red.stop()


@pytest.mark.lmdb_only(reason="a full disk under LMDB's file")
def test_lmdb_disk_full_is_503(tmp_path, store_kind):
    """RLIMIT_FSIZE stands for a full disk: LMDB's writes past it fail
    (EFBIG, as ENOSPC would); creates answer 503, the process lives on,
    what was acknowledged stays readable."""
    import resource
    from apitools import Server
    srv = Server("sessiond", tmp_path / "srv",
                 env={"LMDB_MAP_SIZE": str(64 << 20), "SESSION_MAX_PER_USER": "0"})
    srv.rlimits = {resource.RLIMIT_FSIZE: (256 << 10, 256 << 10)}
    srv.start()
    try:
        user = uid()
        tok = make_token(user)
        made, refused = [], None
        big = {"data": {"pad": "x" * 3000}}
        for _ in range(400):
            r = srv.post("/session", token=tok, json=big)
            if r.status_code != 201:
                refused = r
                break
            made.append(r.json())
        assert refused is not None, "the file never reached its size limit"
        assert_503(refused)
        assert srv.alive()
        assert_503(srv.post("/session", token=tok, json=big))
        assert_503(srv.get("/readyz"))
        assert srv.get("/healthz").status_code == 200
        for s in made[-3:]:
            assert srv.get("/session/%s" % s["id"], token=tok).status_code == 200
    finally:
        srv.terminate()
    assert srv.problems() == []


# ------------------------------------------ 7. one user cannot fill the store

def test_default_cap_of_1000_sessions_per_user(spawn):
    srv = spawn("sessiond", env={"LMDB_SYNC": "none"})
    user = uid()
    tok = make_token(user)
    first = srv.create(tok)
    for _ in range(999):
        srv.create(tok)
    r = srv.get("/users/%s/sessions" % q(user), token=tok)
    assert len(r.json()["sessions"]) == 1000
    s = srv.create(tok)
    assert s["evicted"] == [first["id"]]
    r = srv.get("/users/%s/sessions" % q(user), token=tok)
    ids = [x["id"] for x in r.json()["sessions"]]
    assert len(ids) == 1000 and first["id"] not in ids and s["id"] in ids
    assert_unauthorized(srv.get("/validate", token=first["token"]))


def test_cap_evicts_least_recently_used_and_refuse_policy(spawn):
    srv = spawn("sessiond", env={"SESSION_MAX_PER_USER": "3"})
    user = uid()
    tok = make_token(user)
    a, b, c = srv.create(tok), srv.create(tok), srv.create(tok)
    assert a["evicted"] == [] and c["evicted"] == []
    d = srv.create(tok)
    assert d["evicted"] == [a["id"]]
    # another user is not affected
    other = srv.create(make_token(uid()))
    assert other["evicted"] == []
    ids = {x["id"] for x in srv.get("/users/%s/sessions" % q(user), token=tok).json()["sessions"]}
    assert ids == {b["id"], c["id"], d["id"]}
    # an administrator's create for the user counts the same
    e = srv.create(make_token(uid("admin"), scope="session:admin"), {"user_id": user})
    assert e["evicted"] == [b["id"]]

    srv2 = spawn("sessiond", env={"SESSION_MAX_PER_USER": "2",
                                  "SESSION_LIMIT_POLICY": "refuse"})
    srv2.create(tok)
    srv2.create(tok)
    assert_problem(srv2.post("/session", token=tok), 409)
    assert len(srv2.get("/users/%s/sessions" % q(user), token=tok).json()["sessions"]) == 2


@pytest.mark.concurrency
def test_concurrent_creates_never_pass_the_cap(spawn):
    import threading
    srv = spawn("sessiond", env={"SESSION_MAX_PER_USER": "5"})
    user = uid()
    tok = make_token(user)
    codes = []

    def go():
        for _ in range(10):
            codes.append(srv.post("/session", token=tok).status_code)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert codes.count(201) == 80
    assert len(srv.get("/users/%s/sessions" % q(user), token=tok).json()["sessions"]) == 5


# ------------------------------------------ 10. stale LMDB reader slots

def mdb_stat(path, *flags):
    import shutil
    import subprocess
    exe = shutil.which("mdb_stat")
    assert exe, "mdb_stat (lmdb-utils) is not installed"
    return subprocess.run([exe, *flags, str(path)], capture_output=True, text=True,
                          timeout=30).stdout


def pages_used(path):
    import re
    return int(re.search(r"Number of pages used: (\d+)", mdb_stat(path, "-e")).group(1))


@pytest.mark.lmdb_only(reason="LMDB's reader table")
def test_reader_killed_mid_read_does_not_pin_the_map(spawn, tmp_path, store_kind):
    """sessionctl export holds a read transaction while it writes; blocked on
    a full pipe and killed with kill -9, it leaves its reader slot. The
    service's background thread clears it, so freed pages are reused."""
    import os
    import signal
    import subprocess
    import time
    from apitools import PASSTHROUGH_ENV, binary_path
    store = tmp_path / "store"
    srv = spawn("sessiond", store=store, env={"LMDB_SYNC": "none"})
    tok = make_token(uid())
    for _ in range(600):
        srv.create(tok, {"data": {"pad": "y" * 200}})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ})
    reader = subprocess.Popen([str(binary_path("sessionctl")), "--store", "lmdb://%s" % store,
                               "export"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=env, cwd=str(tmp_path))
    try:
        time.sleep(1.0)  # it fills the pipe (600 sessions > 64 KiB), then blocks mid-scan
        assert reader.poll() is None, "export finished: the pipe did not block it"
        assert str(reader.pid) in mdb_stat(store, "-r")
    finally:
        reader.send_signal(signal.SIGKILL)
        reader.wait(10)
        reader.stdout.close()
    deadline = time.monotonic() + 5
    while str(reader.pid) in mdb_stat(store, "-r") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert str(reader.pid) not in mdb_stat(store, "-r"), "the dead reader's slot stayed"
    before = pages_used(store)
    for _ in range(300):  # churn: every commit frees pages for the next ones
        s = srv.create(tok)
        assert srv.delete("/session/%s" % s["id"], token=tok).status_code == 204
    grown = pages_used(store) - before
    assert grown < 300, "freed pages were not reused: %d more pages" % grown


# ------------------------------------------ 5. a stalled resolver blocks nothing

class StalledDns:
    """A DNS server that takes every query and never answers."""

    def __init__(self):
        import random
        import socket
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addr = "127.%d.%d.%d" % (random.randrange(1, 250), random.randrange(1, 250),
                                      random.randrange(2, 250))
        self.sock.bind((self.addr, 53))
        self.sock.settimeout(0.2)
        self.queries = 0
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        import socket
        while not self.stop:
            try:
                self.sock.recvfrom(4096)
                self.queries += 1
            except socket.timeout:
                pass
            except OSError:
                return

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.mark.concurrency
@pytest.mark.own_store
def test_stalled_dns_blocks_no_request(tmp_path):
    """The Redis host is a name whose lookup never ends (its DNS server takes
    queries and never answers). A create answers 503 within the store's
    timeout, and /healthz never waits behind /readyz or anything else."""
    import subprocess
    import threading
    import time
    from apitools import Server
    try:
        dns = StalledDns()
    except OSError as exc:
        pytest.skip("cannot bind a DNS port on loopback: %s" % exc)
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        dns.close()
        pytest.skip("no mount namespace here (unshare -m): %s" % probe.stderr[:200])
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver %s\noptions timeout:30 attempts:1\n" % dns.addr)
    srv = Server("sessiond", tmp_path / "srv",
                 env={"STORE_URL": "redis://sessions-redis.stalled.test:6379/0",
                      "REDIS_TIMEOUT_MS": "500", "THREADS": "1",
                      "RES_OPTIONS": "timeout:30 attempts:1"})
    srv.wrapper = ["unshare", "-m", "sh", "-c",
                   'mount --bind "%s" /etc/resolv.conf && exec "$0"' % conf]
    try:
        srv.start()
        tok = make_token(uid())
        t0 = time.monotonic()
        assert_503(srv.post("/session", token=tok, timeout=15))
        took = time.monotonic() - t0
        assert took < 3, "a create waited %.1f s on the resolver" % took
        assert dns.queries > 0, "the name was never looked up: the test proves nothing"
        # /readyz in flight on the one event thread: /healthz still answers at once
        slow = []
        t = threading.Thread(target=lambda: slow.append(srv.get("/readyz", timeout=40)))
        t.start()
        time.sleep(0.05)
        t0 = time.monotonic()
        assert srv.get("/healthz", timeout=40).status_code == 200
        took = time.monotonic() - t0
        t.join(40)
        assert took < 1, "/healthz waited %.1f s behind store work" % took
        assert_503(slow[0])
    finally:
        srv.terminate()
        dns.close()
    assert srv.problems() == []


# ------------------------------------------ 6. big lists hold up nobody

def fill(srv, token, n, pad, conns=4):
    """n sessions for token's user, pipelined on a few connections."""
    import json
    import threading
    from apitools import RawConn, http_request_bytes
    body = json.dumps({"data": {"pad": "p" * pad}}).encode()
    h = {"Authorization": "Bearer %s" % token, "Content-Type": "application/json"}
    bad = []

    def go(count):
        with RawConn(srv.port, timeout=60) as conn:
            for i in range(0, count, 200):
                k = min(200, count - i)
                conn.sent = b""
                conn.send(http_request_bytes("POST", "/session", h, body) * k)
                for _ in range(k):
                    r = conn.read_response()
                    if r is None or r.status != 201:
                        bad.append(r)

    threads = [threading.Thread(target=go, args=(n // conns,)) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not bad, bad[:3]


def curl(srv, method, path, token):
    """One request by curl, in a process of its own: reading a 40 MB answer
    in Python would hold the interpreter's lock and slow the requests
    measured beside it. Returns (status, body, seconds until the answer's
    first byte)."""
    import subprocess
    out = subprocess.run(["curl", "-s", "-X", method, "-H", "Authorization: Bearer %s" % token,
                          "-w", "\n%{http_code} %{time_starttransfer}", srv.base + path],
                         capture_output=True, timeout=120)
    body, _, tail = out.stdout.rpartition(b"\n")
    status, ttfb = tail.split()
    return int(status), body, float(ttfb)


def others_meanwhile(srv, big_request):
    """Runs big_request() (curl) in a thread; meanwhile validates and creates
    of another user, one after the other. Returns the big request's answer,
    how long it took to its first byte (while the service worked on it),
    and of the other requests begun in that time, how many there were and
    the slowest. A service that works on the big request on an event thread
    makes the others wait for it: few of them, and slow."""
    import threading
    import time
    other = uid("other")
    otok = make_token(other)
    s = srv.create(otok)
    done = []
    t_launch = time.monotonic()
    t = threading.Thread(target=lambda: done.append(big_request()))
    t.start()
    timings = []
    while t.is_alive():
        for req in (lambda: srv.get("/validate", token=s["token"]),
                    lambda: srv.post("/session", token=otok)):
            t0 = time.monotonic()
            r = req()
            timings.append((t0, time.monotonic() - t0))
            assert r.status_code in (200, 201), r.text
    t.join()
    status, body, ttfb = done[0]
    within = [took for t0, took in timings if t0 < t_launch + ttfb]
    return (status, body), ttfb, max(within, default=0.0), len(within)


@pytest.fixture(scope="module")
def crowded(mspawn):
    """One user with 30,000 sessions of 1 KiB data, on one event thread."""
    srv = mspawn("sessiond", env={"SESSION_MAX_PER_USER": "0", "LMDB_SYNC": "none",
                                  "THREADS": "1", "CONNECTION_TIMEOUT": "60"})
    user = uid("crowd")
    tok = make_token(user)
    fill(srv, tok, 30000, 1024)
    return srv, user, tok


@pytest.mark.concurrency
def test_a_huge_list_holds_up_no_other_request(crowded):
    srv, user, tok = crowded
    path = "/users/%s/sessions" % q(user)
    r, took, worst, count = others_meanwhile(srv, lambda: curl(srv, "GET", path, tok))
    assert r[0] == 200 and len(json.loads(r[1])["sessions"]) == 30000
    assert count >= 3, "too few requests ran during the list (%.2f s): %d" % (took, count)
    assert worst < took / 4, "a request waited %.3f s during a %.3f s list" % (worst, took)


@pytest.mark.concurrency
def test_a_huge_close_all_holds_up_no_other_request(crowded):
    srv, user, tok = crowded
    path = "/users/%s/sessions" % q(user)
    keep = srv.get(path, token=tok, timeout=120).json()["sessions"][0]["id"]
    r, took, worst, count = others_meanwhile(
        srv, lambda: curl(srv, "DELETE", path + "?except=%s" % keep, tok))
    assert r == (200, b'{"closed":29999}'), r
    assert count >= 3, "too few requests ran during the close-all (%.2f s): %d" % (took, count)
    assert worst < took / 4, "a request waited %.3f s during a %.3f s close-all" % (worst, took)
    assert [x["id"] for x in srv.get(path, token=tok).json()["sessions"]] == [keep]


@pytest.mark.own_store
def test_every_address_of_the_redis_host_is_tried(tmp_path):
    """The Redis host name has several addresses (here an IPv6 one and an
    IPv4 one on which nothing listens, before the one Redis is bound to):
    the service does not stick to the first."""
    import subprocess
    import time
    from apitools import Server
    from redistools import Redis
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespace here (unshare -m): %s" % probe.stderr[:200])
    red = Redis(tmp_path / "redis", extra_args=["--bind", "127.0.0.1"]).start()
    hosts = tmp_path / "hosts"
    hosts.write_text("::1 redis.multi.test\n127.0.0.9 redis.multi.test\n"
                     "127.0.0.1 redis.multi.test localhost\n")
    srv = Server("sessiond", tmp_path / "srv",
                 env={"STORE_URL": "redis://redis.multi.test:%d/0" % red.port,
                      "REDIS_TIMEOUT_MS": "500"})
    srv.wrapper = ["unshare", "-m", "sh", "-c",
                   'mount --bind "%s" /etc/hosts && exec "$0"' % hosts]
    try:
        srv.start()
        deadline = time.monotonic() + 10
        while srv.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert srv.get("/readyz").status_code == 200, "never reached Redis at 127.0.0.1"
        s = srv.create(make_token(uid()))
        assert srv.get("/validate", token=s["token"]).status_code == 200
    finally:
        srv.terminate()
        red.stop()
    assert srv.problems() == []


@pytest.mark.own_store
def test_redis_out_of_memory_refuses_creates(spawn, tmp_path):
    """maxmemory reached (noeviction): the create is refused with 503 and
    nothing is written, even though it is a script."""
    from redistools import Redis
    red = Redis(tmp_path / "redis").start()
    try:
        srv = spawn("sessiond", env={"STORE_URL": red.url(0), "REDIS_TIMEOUT_MS": "300"})
        tok = make_token(uid())
        kept = srv.create(tok)
        with red.client(0) as cli:
            cli.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
            cli.call("CONFIG", "SET", "maxmemory", "1")
            try:
                before = cli.call("DBSIZE")
                assert_503(srv.post("/session", token=tok))
                assert cli.call("DBSIZE") == before, "a refused create wrote"
                assert srv.get("/session/%s" % kept["id"], token=tok).status_code == 200
            finally:
                cli.call("CONFIG", "SET", "maxmemory", "0")
        srv.create(tok)
    finally:
        red.stop()


def test_eviction_of_thousands_at_once(spawn, tmp_path):
    """The cap lowered under a user holding 9,000 sessions: the next create
    evicts all but the cap at once, and says so (no limit of the script
    language on how many)."""
    wide = spawn("sessiond", store=tmp_path / "cap", env={"SESSION_MAX_PER_USER": "0",
                                                       "LMDB_SYNC": "none"})
    user = uid()
    tok = make_token(user)
    fill(wide, tok, 9000, 10)
    narrow = spawn("sessiond", store=tmp_path / "cap", env={"SESSION_MAX_PER_USER": "5"})
    s = narrow.create(tok)
    assert len(s["evicted"]) == 8996 and len(set(s["evicted"])) == 8996
    left = narrow.get("/users/%s/sessions" % q(user), token=tok).json()["sessions"]
    assert len(left) == 5 and s["id"] in {x["id"] for x in left}
    assert not set(s["evicted"]) & {x["id"] for x in left}


@pytest.mark.parametrize("name,value", [
    ("SESSION_MAX_PER_USER", "-1"), ("SESSION_MAX_PER_USER", "many"),
    ("SESSION_MAX_PER_USER", "100000001"), ("SESSION_LIMIT_POLICY", "evict_newest"),
    ("SESSION_LIMIT_POLICY", ""),
])
def test_cap_settings_refused_at_start(tmp_path, name, value):
    from apitools import run_until_exit
    rc, out, err = run_until_exit("sessiond", {name: value}, tmp_path)
    assert rc == 2, (rc, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and name in lines[0], err


def test_a_record_that_cannot_be_read_fails_the_list(spawn, store_kind, stores, tmp_path):
    """A corrupt record in the user's list: 503, never a 200 one short."""
    srv = spawn("sessiond", store=tmp_path / "corrupt")
    user = uid()
    tok = make_token(user)
    a, b = srv.create(tok), srv.create(tok)
    path = "/users/%s/sessions" % q(user)
    if store_kind in REDIS_KINDS:
        keys = stores.keyspace(srv)  # the record's key, on the node that holds it
        key = keys.session_key(b["id"], user)
        assert keys.call(key, "EXISTS", key) == 1, key
        keys.call(key, "SET", key, "not a record", "KEEPTTL")
    else:
        # the record's version byte, rewritten in place in the data file
        data = (tmp_path / "corrupt" / "data.mdb")
        at = data.read_bytes().find(b["id"].encode() + user.encode())
        assert at > 52, "record not found in the data file"
        with open(data, "r+b") as f:  # one byte, in place: the map stays whole
            f.seek(at - 52)  # the record's header (version 2) is 52 bytes
            f.write(b"\xee")
    assert_503(srv.get(path, token=tok))
    assert_503(srv.get("/session/%s" % b["id"], token=tok))
    assert srv.get("/session/%s" % a["id"], token=tok).status_code == 200
