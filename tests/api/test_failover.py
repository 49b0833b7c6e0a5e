"""Redis high availability through Sentinel (API.md "(v2) Redis high
availability", issue 15 parts 1, 3 and 4): failover under load, and replica
acknowledgements (REDIS_WAIT_REPLICAS / REDIS_WAIT_TIMEOUT_MS).

Every test here kills, pauses or restarts Redis nodes, so each runs on a
Sentinel set of its own (1 primary, 2 replicas, 3 Sentinels, started in about
2 s in a temporary directory), never on the suite's shared one.

What is checked, under a create/close load from several client threads
while the primary is killed (kill -9) and Sentinel promotes a replica:
  * no 500, and during the failover only 201/204, or 503 with Retry-After;
  * every acknowledged create (201) is readable afterwards, and every
    acknowledged close (204) stays closed -- with REDIS_WAIT_REPLICAS=1 a
    201/204 was on a replica before it was answered;
  * successes resume by themselves within seconds of the kill.
"""

import json
import os
import subprocess
import threading
import time

import pytest

from apitools import (PASSTHROUGH_ENV, assert_problem, binary_path, dead_port, make_token, uid,
                      wait_until)
from loadtools import LoadClient, load, longest_outage, read_all
from redistools import RedisSentinelSet, require_redis_server

pytestmark = pytest.mark.own_store

CLIENTS = 4
RESUME_LIMIT_S = 10.0  # from the kill to the first success after it


@pytest.fixture
def sentinel_set(tmp_path):
    require_redis_server()
    topo = RedisSentinelSet(tmp_path / "sentinel-set")
    try:
        topo.start()
        yield topo
    finally:
        topo.stop()


@pytest.mark.concurrency
def test_failover_under_load_loses_no_acknowledged_write(spawn, sentinel_set):
    topo = sentinel_set
    srv = spawn("sessiond", env={"STORE_URL": topo.url(1), "REDIS_WAIT_REPLICAS": "1",
                                 "SESSION_MAX_PER_USER": "0"})
    assert srv.get("/readyz").status_code == 200
    clients = [LoadClient() for _ in range(CLIENTS)]
    stop = threading.Event()
    threads = [threading.Thread(target=load, args=(srv.port, cl, stop)) for cl in clients]
    for t in threads:
        t.start()
    time.sleep(1.5)
    before = sum(1 for cl in clients for _, _, s in cl.answers if s in (201, 204))
    t_kill = time.monotonic()
    old = topo.kill_primary()
    new, failover_s = topo.wait_failover(timeout=20)

    def resumed():
        return any(t > t_kill + 0.05 and s in (201, 204) and t > t_kill + failover_s
                   for cl in clients for t, _, s in list(cl.answers))

    # successes again: the service found the new primary by itself
    wait_until(resumed, timeout=RESUME_LIMIT_S + 5, interval=0.1)
    time.sleep(1.5)  # and keeps serving
    stop.set()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads), "a client hung"
    bad = [b for cl in clients for b in cl.bad]
    assert not bad, "answers the contract does not allow during a failover: %s" % bad[:10]

    answers = sorted((t, k, s) for cl in clients for t, k, s in cl.answers)
    assert any(cl.successes_after(t_kill) for cl in clients), "no success after the kill"
    # the longest stretch without a success that ends after the kill: the
    # outage the failover caused, from its last success to its first
    gap, gap_from, gap_to = longest_outage(clients, t_kill)
    resumed_after = gap_to - t_kill
    n503 = sum(1 for _, _, s in answers if s == 503)
    print("failover under load: Sentinel named %r %.2f s after the kill -9 of %r; no success "
          "from %+.2f s to %+.2f s after the kill (%.2f s); %d answers (%d before the kill), "
          "%d of them 503 with Retry-After, no other failure"
          % (new, failover_s, old, gap_from - t_kill, resumed_after, gap, len(answers), before,
             n503))
    assert before > 20, "the load made no progress before the kill"
    assert resumed_after < RESUME_LIMIT_S, "successes resumed only %.1f s after the kill" % (
        resumed_after)

    # every acknowledged write holds on the new primary
    checked = 0
    for cl in clients:
        got = read_all(srv.port, cl.token, cl.live | cl.closed)
        lost = sorted(s for s in cl.live if got[s] != 200)
        back = sorted(s for s in cl.closed if got[s] != 404)
        assert not lost, "%d acknowledged creates lost in the failover: %s" % (
            len(lost), [(s, got[s]) for s in lost[:5]])
        assert not back, "%d acknowledged closes undone by the failover: %s" % (
            len(back), [(s, got[s]) for s in back[:5]])
        checked += len(got)
        r = srv.get("/users/%s/sessions" % cl.user, token=cl.token)
        assert r.status_code == 200
        listed = {s["id"] for s in r.json()["sessions"]}
        assert cl.live <= listed and not (cl.closed & listed)
    print("acknowledged writes checked after the failover: %d" % checked)
    # the old primary back (as an operator would bring it): still serving
    topo.restart_killed()
    assert srv.create(make_token(uid("after")))["id"]


def test_wait_replicas_refuses_a_write_too_few_replicas_have(spawn, sentinel_set):
    """REDIS_WAIT_REPLICAS=2 with one of the two replicas stopped: a create
    is a 503 (with Retry-After) within REDIS_WAIT_TIMEOUT_MS, reads still
    work, and creates succeed again once the replica is back."""
    topo = sentinel_set
    srv = spawn("sessiond", env={"STORE_URL": topo.url(2), "REDIS_WAIT_REPLICAS": "2",
                                 "REDIS_WAIT_TIMEOUT_MS": "300"})
    tok = make_token(uid("wait"))
    s = srv.create(tok)
    replica = topo.replicas()[0]
    replica.pause()
    try:
        t0 = time.monotonic()
        r = srv.post("/session", token=tok, json={})
        took = time.monotonic() - t0
        assert_problem(r, 503)
        assert r.headers.get("Retry-After")
        assert 0.25 <= took < 1.5, "the 503 came after %.2f s (WAIT timeout 0.3 s)" % took
        assert srv.get("/session/%s" % s["id"], token=tok).status_code == 200  # reads need no WAIT
        r = srv.delete("/session/%s" % s["id"], token=tok)
        assert_problem(r, 503)
        assert srv.get("/readyz").status_code == 503
    finally:
        replica.resume()
    assert wait_until(lambda: srv.post("/session", token=tok, json={}).status_code == 201,
                      timeout=10), "creates did not resume once the replica was back"
    assert srv.get("/readyz").status_code == 200
    r = srv.delete("/session/%s" % s["id"], token=tok)
    assert r.status_code in (204, 404)  # the 503'd close may have happened


def test_wait_replicas_on_plain_redis_url(spawn, sentinel_set):
    """REDIS_WAIT_REPLICAS works on redis:// too (a primary with replicas and
    no Sentinel): 2 replicas acknowledge; asking for 3 is a 503."""
    topo = sentinel_set
    primary = topo.primary()
    url = "redis://127.0.0.1:%d/3" % primary.port
    ok = spawn("sessiond", env={"STORE_URL": url, "REDIS_WAIT_REPLICAS": "2"})
    tok = make_token(uid("plain"))
    s = ok.create(tok)
    assert ok.delete("/session/%s" % s["id"], token=tok).status_code == 204
    short = spawn("sessiond", env={"STORE_URL": url, "REDIS_WAIT_REPLICAS": "3",
                                   "REDIS_WAIT_TIMEOUT_MS": "100"})
    r = short.post("/session", token=tok, json={})
    assert_problem(r, 503)
    assert r.headers.get("Retry-After")
    s = ok.create(tok)
    assert short.get("/session/%s" % s["id"], token=tok).status_code == 200


def test_sentinels_down_at_start_then_back(spawn, sentinel_set):
    """The service starts while no Sentinel answers (the first one listed
    never does): /healthz 200, /readyz and the store's routes 503 with
    Retry-After (never 500); once the Sentinels are back it serves without
    a restart, and what it writes is on the primary they name."""
    topo = sentinel_set
    for sen in topo.sentinels:
        sen.stop()
    url = "redis-sentinel://127.0.0.1:%d,%s/mymaster/4" % (
        dead_port(), ",".join("127.0.0.1:%d" % x.port for x in topo.sentinels))
    srv = spawn("sessiond", env={"STORE_URL": url})
    tok = make_token(uid("down"))
    assert srv.get("/healthz").status_code == 200
    assert srv.get("/readyz").status_code == 503
    r = srv.post("/session", token=tok, json={})
    assert_problem(r, 503)
    assert r.headers.get("Retry-After")
    for sen in topo.sentinels:
        sen.start()
    assert wait_until(lambda: srv.post("/session", token=tok, json={}).status_code == 201,
                      timeout=10), "no create succeeded once the Sentinels were back"
    s = srv.create(tok)
    assert srv.get("/readyz").status_code == 200
    with topo.client(db=4) as c:
        assert c.call("EXISTS", "ss:s:%s" % s["id"]) == 1
    assert "no primary of" in srv.stderr_text()


def test_sentinel_and_data_passwords(spawn, tmp_path):
    """The URL's credentials go to the data nodes, REDIS_SENTINEL_PASSWORD to
    the Sentinels; without it (or with a wrong one) the Sentinels refuse and
    the service answers 503, saying why in its log, never the passwords.
    sessionctl takes the same settings."""
    require_redis_server()
    topo = RedisSentinelSet(tmp_path / "pw-set", password="data-pw",
                            sentinel_password="sentinel-pw")
    try:
        topo.start()
        url = topo.url(5)
        tok = make_token(uid("pw"))
        none = spawn("sessiond", env={"STORE_URL": url})
        wrong = spawn("sessiond", env={"STORE_URL": url, "REDIS_SENTINEL_PASSWORD": "nope"})
        right = spawn("sessiond", env={"STORE_URL": url,
                                       "REDIS_SENTINEL_PASSWORD": "sentinel-pw"})
        for srv in (none, wrong):
            r = srv.post("/session", token=tok, json={})
            assert_problem(r, 503)
            assert r.headers.get("Retry-After")
        s = right.create(tok)
        assert "NOAUTH" in none.stderr_text()
        assert "refused AUTH (REDIS_SENTINEL_PASSWORD)" in wrong.stderr_text()
        for srv in (none, wrong, right):
            text = srv.stderr_text()
            assert "sentinel-pw" not in text and "data-pw" not in text
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "REDIS_SENTINEL_PASSWORD": "sentinel-pw"}
        for name in PASSTHROUGH_ENV:
            if name in os.environ:
                env[name] = os.environ[name]
        p = subprocess.run([str(binary_path("sessionctl")), "--store", url, "show", s["id"]],
                           cwd=str(tmp_path), env=env, capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["id"] == s["id"]
        env.pop("REDIS_SENTINEL_PASSWORD")
        p = subprocess.run([str(binary_path("sessionctl")), "--store", url, "show", s["id"]],
                           cwd=str(tmp_path), env=env, capture_output=True, timeout=30)
        assert p.returncode != 0 and b"sentinel-pw" not in p.stderr
    finally:
        topo.stop()


def test_a_stale_primary_back_from_the_dead_gets_nothing(spawn, sentinel_set):
    """The killed primary restarted with its old configuration claims ROLE
    master (and takes writes, lost later) for some 20 s until Sentinel
    demotes it. The service only ever writes where the Sentinels point: its
    connections, cut meanwhile (CLIENT KILL), reconnect to the new primary,
    and a process started now finds it too."""
    topo = sentinel_set
    srv = spawn("sessiond", env={"STORE_URL": topo.url(6)})
    tok = make_token(uid("stale"))
    srv.create(tok)
    old = topo.kill_primary()
    new, _ = topo.wait_failover(timeout=20)
    assert wait_until(lambda: srv.post("/session", token=tok, json={}).status_code == 201,
                      timeout=10)
    topo.killed.remove(old)
    old.start()  # its own config: a primary again, of nobody
    assert old.role() == "master"
    with new.client() as c:
        c.call("CLIENT", "KILL", "TYPE", "normal")
    late = spawn("sessiond", env={"STORE_URL": topo.url(6)})
    made = {srv.port: [], late.port: []}
    deadline = time.monotonic() + 10
    while min(len(v) for v in made.values()) < 5 and time.monotonic() < deadline:
        for p in (srv, late):
            r = p.post("/session", token=tok, json={})
            if r.status_code == 201:
                made[p.port].append(r.json()["id"])
            else:  # a connection cut by the CLIENT KILL, until it reconnects
                assert_problem(r, 503)
                time.sleep(0.05)
    assert min(len(v) for v in made.values()) >= 5, made
    made = made[srv.port] + made[late.port]
    with new.client(db=6) as c:
        assert all(c.call("EXISTS", "ss:s:%s" % s) == 1 for s in made)
    if old.role() == "master":  # not demoted yet: it must hold none of them
        with old.client(db=6) as c:
            assert not any(c.call("EXISTS", "ss:s:%s" % s) for s in made)


def test_stalled_sentinels_hold_no_request(spawn, sentinel_set):
    """Sentinels that accept connections and never answer (SIGSTOP): a
    request that needs the store answers 503 within about REDIS_TIMEOUT_MS
    (the discovery as a whole is bounded by it), /healthz meanwhile answers
    at once (no event thread waits on Redis), and service resumes when they
    do."""
    topo = sentinel_set
    for sen in topo.sentinels:
        sen.pause()
    try:
        srv = spawn("sessiond", env={"STORE_URL": topo.url(7), "REDIS_TIMEOUT_MS": "300"})
        tok = make_token(uid("stalled"))
        slow = {}

        def create():
            t0 = time.monotonic()
            slow["r"] = srv.post("/session", token=tok, json={}, timeout=20)
            slow["took"] = time.monotonic() - t0

        t = threading.Thread(target=create)
        t.start()
        time.sleep(0.05)
        t0 = time.monotonic()
        assert srv.get("/healthz").status_code == 200
        assert time.monotonic() - t0 < 0.25
        t.join(20)
        assert_problem(slow["r"], 503)
        assert slow["r"].headers.get("Retry-After")
        assert slow["took"] < 1.5, "a create waited %.2f s on stalled Sentinels" % slow["took"]
    finally:
        for sen in topo.sentinels:
            sen.resume()
    assert wait_until(lambda: srv.post("/session", token=tok, json={}).status_code == 201,
                      timeout=10)
