"""What only the Redis store has (API.md "Processes", "Configuration",
"503 with Retry-After while the store is unreachable"; docs/REDIS.md).

The rest of the suite already runs every route on Redis ([redis] ids); this
module covers what needs Redis itself: many processes on one Redis, races
between instances, Redis going away and coming back, Redis crashing (AOF),
the key schema's index hygiene, and the forms of a redis:// STORE_URL.

These tests choose their STORE_URL themselves (own_store).  They use the
suite's redis-server (a fresh database number each) unless they need to
stop, pause or crash Redis, or configure it differently; then they start
their own.  No redis-server installed: every test here fails, saying so.
"""

import os
import re
import threading
import time
from urllib.parse import quote

import pytest

from apitools import (BINARIES, RawConn, admin_token, answered_despite_resets, assert_json,
                      assert_problem, assert_unauthorized, free_port, http_request_bytes, make_token,
                      run_until_exit, uid, wait_until)
from redistools import Redis

pytestmark = pytest.mark.own_store

FAST = {"REDIS_TIMEOUT_MS": "300"}
VIEW = ("id", "user_id", "created_at", "expires_at", "last_seen_at", "ip", "user_agent",
        "data")



def run_on_each(conns, go):
    """Runs go(i) for every connection in its own thread, then closes them."""
    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for c in conns:
        c.close()

def view(s):
    return {k: s[k] for k in VIEW}


def ids_listed(srv, user, token):
    r = srv.get("/users/%s/sessions" % quote(user, safe=""), token=token)
    return [x["id"] for x in assert_json(r, 200)["sessions"]]


def assert_503(resp, what=""):
    assert_problem(resp, 503)
    retry = resp.headers.get("Retry-After", "")
    assert retry.strip().isdigit(), "%s: 503 without a Retry-After in seconds: %r" % (
        what, resp.headers)


@pytest.fixture
def fresh_url(suite_redis):
    """A database of the suite's Redis that nobody else uses."""
    return suite_redis.url(suite_redis.new_db())


# ==========================================================================
# many processes on one Redis
# ==========================================================================

@pytest.fixture(scope="module")
def fleet(mspawn, suite_redis):
    """Two sessiond and the three split processes, on one Redis database."""
    db = suite_redis.new_db()
    env = {"STORE_URL": suite_redis.url(db)}
    return {
        "db": db,
        "A": mspawn("sessiond", env=env),
        "B": mspawn("sessiond", env=env),
        "create": mspawn("createSession", env=env),
        "read": mspawn("readSession", env=env),
        "close": mspawn("closeSession", env=env),
    }


def readers(fleet):
    return [("sessiond A", fleet["A"]), ("sessiond B", fleet["B"]),
            ("readSession", fleet["read"])]


def assert_refused_everywhere(fleet, user, s, other_id):
    """After s was closed: read 404, validate 401 and s's token refused as a
    caller token, by every process."""
    tok = make_token(user)
    for name, srv in readers(fleet):
        assert_problem(srv.get("/session/%s" % s["id"], token=tok), 404)
        assert_problem(srv.get("/session/%s" % s["id"], token=admin_token()), 404)
        assert_unauthorized(srv.get("/validate", token=s["token"]))
        assert_unauthorized(srv.get("/validate", headers={"Cookie": "session=%s" % s["token"]}))
        assert s["id"] not in ids_listed(srv, user, tok), name
    t = s["token"]
    u = quote(user, safe="")
    for srv, method, path in ((fleet["A"], "GET", "/users/%s/sessions" % u),
                              (fleet["A"], "POST", "/session"),
                              (fleet["B"], "GET", "/session/%s" % other_id),
                              (fleet["B"], "DELETE", "/users/%s/sessions" % u),
                              (fleet["create"], "POST", "/session"),
                              (fleet["read"], "GET", "/users/%s/sessions" % u),
                              (fleet["read"], "GET", "/session/%s" % other_id),
                              (fleet["close"], "DELETE", "/session/%s" % other_id),
                              (fleet["close"], "DELETE", "/users/%s/sessions" % u)):
        assert_unauthorized(srv.request(method, path, token=t))


@pytest.mark.parametrize("creator", ["A", "B", "create"])
def test_created_anywhere_read_validated_closed_everywhere(fleet, creator):
    user = uid()
    tok = make_token(user)
    keeper = fleet["create"].create(tok)   # stays open: closing s must not touch it
    for closer in ("A", "B", "close"):
        s = fleet[creator].create(tok, {"ttl": 900, "data": {"by": creator, "n": [1, 2]}},
                                  headers={"User-Agent": "fleet/1"})
        for name, srv in readers(fleet):
            got = assert_json(srv.get("/session/%s" % s["id"], token=tok), 200)
            assert view(got) == view(s), name
            assert s["id"] in ids_listed(srv, user, tok), name
            v = srv.get("/validate", token=s["token"])
            assert v.status_code == 200, (name, v.text)
            assert v.headers.get("X-Session-Id") == s["id"]
            assert v.headers.get("X-User-Id") == user
            # its session token is a caller token everywhere while it is live
            assert srv.get("/users/%s/sessions" % user, token=s["token"]).status_code == 200
        assert fleet["create"].post("/session", token=s["token"]).status_code == 403  # v2
        r = fleet[closer].delete("/session/%s" % s["id"], token=tok)
        assert r.status_code == 204, (closer, r.text)
        assert_refused_everywhere(fleet, user, s, keeper["id"])
        for c in ("A", "B", "close"):
            assert_problem(fleet[c].delete("/session/%s" % s["id"], token=tok), 404)
    for _, srv in readers(fleet):
        assert srv.get("/validate", token=keeper["token"]).status_code == 200


def test_close_all_through_one_is_seen_by_all(fleet):
    user = uid()
    tok = make_token(user)
    made = [fleet[name].create(tok) for name in ("A", "B", "create", "A", "B")]
    keep = made[2]
    r = fleet["close"].delete("/users/%s/sessions?except=%s" % (user, keep["id"]), token=tok)
    assert assert_json(r, 200) == {"closed": 4}
    for name, srv in readers(fleet):
        assert ids_listed(srv, user, tok) == [keep["id"]], name
    for s in made:
        if s is not keep:
            assert_refused_everywhere(fleet, user, s, keep["id"])
    assert assert_json(fleet["B"].delete("/users/%s/sessions" % user, token=tok), 200) == \
        {"closed": 1}
    for name, srv in readers(fleet):
        assert ids_listed(srv, user, tok) == [], name


# ==========================================================================
# races between instances
# ==========================================================================

def race(requests_by_port, rounds=1):
    """Sends every (port, raw request) at the same moment, each on its own
    connection opened beforehand; answers the statuses, in order."""
    conns = [RawConn(port, timeout=10) for port, _ in requests_by_port]
    barrier = threading.Barrier(len(conns))
    statuses = [None] * len(conns)

    def go(i):
        try:
            barrier.wait(10)
            conns[i].send(requests_by_port[i][1])
            resp = conns[i].read_response()
            statuses[i] = resp.status if resp is not None else "closed"
        except Exception as exc:  # noqa: BLE001 - reported through statuses
            statuses[i] = repr(exc)

    run_on_each(conns, go)
    return statuses


def delete_bytes(path, token):
    return http_request_bytes("DELETE", path, {"Authorization": "Bearer %s" % token,
                                               "Connection": "close"})


@pytest.mark.concurrency
def test_two_instances_closing_one_session_at_once(fleet):
    user = uid()
    tok = make_token(user)
    a, b = fleet["A"], fleet["B"]
    outcomes = []
    for _ in range(20):
        s = fleet["create"].create(tok)
        req = delete_bytes("/session/%s" % s["id"], tok)
        statuses = race([(a.port, req), (b.port, req)])
        outcomes.append(statuses)
        assert sorted(statuses, key=str) == [204, 404], \
            "A and B closing %s at once answered %s (want one 204 and one 404)" % (
                s["id"], statuses)
        assert_problem(fleet["read"].get("/session/%s" % s["id"], token=tok), 404)
    assert ids_listed(fleet["read"], user, tok) == []


@pytest.mark.concurrency
def test_fifty_concurrent_closes_across_instances(fleet):
    user = uid()
    tok = make_token(user)
    targets = [fleet["A"], fleet["B"], fleet["close"]]
    for _ in range(3):
        s = fleet["create"].create(tok)
        reqs = []
        for i in range(50):
            t = tok if i % 2 else admin_token()  # the owner and administrators
            reqs.append((targets[i % 3].port, delete_bytes("/session/%s" % s["id"], t)))
        statuses = race(reqs)
        assert statuses.count(204) == 1 and statuses.count(404) == 49, \
            "50 concurrent closes of one session: %s" % sorted(statuses, key=str)


@pytest.mark.concurrency
def test_concurrent_close_all_counts_each_session_once(fleet, suite_redis):
    user = uid()
    tok = make_token(user)
    path = "/users/%s/sessions" % user
    for closers in (("A", "B"), ("A", "B", "close"), ("close", "close")):
        n = 30
        made = {fleet["A" if i % 2 else "create"].create(tok)["id"] for i in range(n)}
        reqs = [(fleet[c].port, delete_bytes(path, tok)) for c in closers]
        conns = [RawConn(port, timeout=10) for port, _ in reqs]
        barrier = threading.Barrier(len(conns))
        answers = [None] * len(conns)

        def go(i):
            barrier.wait(10)
            conns[i].send(reqs[i][1])
            answers[i] = conns[i].read_response()

        run_on_each(conns, go)
        assert all(a is not None and a.status == 200 for a in answers), answers
        counts = [a.json()["closed"] for a in answers]
        assert sum(counts) == n, "close-all from %s at once: closed %s, sum %d != %d" % (
            closers, counts, sum(counts), n)
        assert ids_listed(fleet["read"], user, tok) == []
        for sid in list(made)[:5]:
            assert_problem(fleet["B"].get("/session/%s" % sid, token=tok), 404)
        with suite_redis.client(fleet["db"]) as r:
            assert r.call("ZCARD", "ss:u:" + user) == 0


# ==========================================================================
# Redis unreachable
# ==========================================================================

@pytest.fixture
def own_redis(tmp_path):
    red = Redis(tmp_path / "redis").start()
    yield red
    if red.alive():
        red.resume()  # in case a test left it paused
    red.stop()


def timed(fn):
    t0 = time.monotonic()
    resp = fn()
    return resp, time.monotonic() - t0


def store_requests(user, tok, s):
    """Every route that needs the store, as (name, callable(srv))."""
    u = quote(user, safe="")
    return [
        ("create", lambda srv: srv.post("/session", token=tok)),
        ("create for another user", lambda srv: srv.post(
            "/session", token=admin_token(), json={"user_id": user, "ttl": 60})),
        ("read", lambda srv: srv.get("/session/%s" % s["id"], token=tok)),
        ("read as admin", lambda srv: srv.get("/session/%s" % s["id"], token=admin_token())),
        ("list", lambda srv: srv.get("/users/%s/sessions" % u, token=tok)),
        ("close", lambda srv: srv.delete("/session/%s" % s["id"], token=tok)),
        ("close all", lambda srv: srv.delete("/users/%s/sessions" % u, token=tok)),
        ("validate", lambda srv: srv.get("/validate", token=s["token"])),
        ("validate by cookie", lambda srv: srv.get(
            "/validate", headers={"Cookie": "session=%s" % s["token"]})),
        ("session token as caller", lambda srv: srv.get("/users/%s/sessions" % u,
                                                        token=s["token"])),
    ]


def assert_unavailable(srv, user, tok, s, rounds=2, limit=2.0):
    """Every store route 503 + Retry-After (never 401/404/500), each within
    `limit` seconds; /readyz 503; /healthz and /metrics 200; still alive."""
    for _ in range(rounds):  # twice: each worker thread has its own connection
        for name, call in store_requests(user, tok, s):
            resp, took = timed(lambda: call(srv))
            assert resp.status_code == 503, "%s while Redis is unreachable: %d %s" % (
                name, resp.status_code, resp.text[:200])
            assert_503(resp, name)
            assert took < limit, "%s took %.2f s while Redis is unreachable" % (name, took)
        resp, took = timed(lambda: srv.get("/readyz"))
        assert_problem(resp, 503)
        assert resp.headers.get("Retry-After") == "1"
        assert took < limit, "/readyz took %.2f s" % took
        resp, took = timed(lambda: srv.get("/healthz"))
        assert assert_json(resp, 200) == {"status": "ok"}
        assert took < 1.0, "/healthz took %.2f s" % took
        assert srv.get("/metrics").status_code == 200
    assert srv.alive(), "the service died while Redis was unreachable"


def wait_serving(srv, timeout=5.0):
    """Until /readyz is 200, then the reconnect back-off (200 ms, REDIS.md
    "Connections and faults") for the other worker threads' connections."""
    assert wait_until(lambda: srv.get("/readyz").status_code == 200, timeout=timeout), \
        "/readyz did not come back after Redis did"
    time.sleep(0.5)


def assert_serving_again(srv, user, tok, kept, closable, ghosts_allowed=False):
    """ghosts_allowed: Redis hung rather than refused, so a create answered
    503 may still have reached it and take effect when it resumes (the
    service cannot know; no token was issued for such a session)."""
    wait_serving(srv)
    got = assert_json(srv.get("/session/%s" % kept["id"], token=tok), 200)
    assert view(got) == view(kept)
    assert srv.get("/validate", token=kept["token"]).status_code == 200
    fresh = srv.create(tok, {"data": {"after": "outage"}})
    # answers belong to their own requests (no reply left over from the outage)
    assert assert_json(srv.get("/session/%s" % fresh["id"], token=tok), 200)["data"] == \
        {"after": "outage"}
    assert view(assert_json(srv.get("/session/%s" % kept["id"], token=tok), 200)) == view(kept)
    assert srv.delete("/session/%s" % closable["id"], token=tok).status_code == 204
    now_listed = ids_listed(srv, user, tok)
    if ghosts_allowed:
        assert {kept["id"], fresh["id"]} <= set(now_listed), now_listed
        assert closable["id"] not in now_listed
    else:
        assert sorted(now_listed) == sorted([kept["id"], fresh["id"]])


def test_redis_stopped_then_back_on_the_same_port(spawn, own_redis):
    srv = spawn("sessiond", env=dict(FAST, STORE_URL=own_redis.url(0), THREADS="2"))
    user = uid()
    tok = make_token(user)
    kept = srv.create(tok, {"data": {"k": 1}})
    closable = srv.create(tok)
    pid = srv.proc.pid
    own_redis.stop()
    assert_unavailable(srv, user, tok, kept)
    own_redis.start()  # same port, same directory (its AOF has both sessions)
    assert_serving_again(srv, user, tok, kept, closable)
    assert srv.proc.pid == pid and srv.alive()


def test_redis_hanging_answers_503_within_the_timeout(spawn, own_redis):
    """SIGSTOP: connections open, nothing answers; REDIS_TIMEOUT_MS bounds it."""
    srv = spawn("sessiond", env=dict(FAST, STORE_URL=own_redis.url(0), THREADS="2"))
    user = uid()
    tok = make_token(user)
    kept = srv.create(tok, {"data": {"k": 2}})
    closable = srv.create(tok)
    own_redis.pause()
    try:
        assert_unavailable(srv, user, tok, kept, rounds=1)
    finally:
        own_redis.resume()
    assert_serving_again(srv, user, tok, kept, closable, ghosts_allowed=True)


def test_clients_gone_while_redis_stalls_hold_up_no_one(spawn, own_redis):
    """The requests of one store batch are resumed together, by the event
    thread of the one completed last (http.c, "waking a batch"). Redis is
    stopped while 16 clients send, so every request waits in a batch; some
    clients then reset their connections (among them the last to send, or
    all but one), so that the one that wakes the rest is likely among them;
    Redis resumes, and every client still connected gets its answer (test_hardening.py has the same
    race without the stall)."""
    srv = spawn("sessiond", env={"STORE_URL": own_redis.url(0), "REDIS_TIMEOUT_MS": "5000",
                                 "SESSION_MAX_PER_USER": "0"})
    tok = make_token(uid())
    s = srv.create(tok)
    create = http_request_bytes("POST", "/session", {"Authorization": "Bearer %s" % tok})
    validate = http_request_bytes("GET", "/validate", {"Authorization": "Bearer %s" % s["token"]})
    # which request wakes a batch depends on the order the event threads
    # hand them over, so some rounds reset all but one client
    gone_patterns = (range(1, 16, 2), range(15, 16), range(8, 16), range(0, 16, 3))
    for rnd in range(12):
        reqs = [create if (rnd + i) % 3 == 0 else validate for i in range(16)]
        if rnd < 8:
            gone = gone_patterns[rnd % len(gone_patterns)]
        else:
            gone = [j for j in range(16) if j != 5 * (rnd - 8)]
        answers = answered_despite_resets(srv.port, reqs, gone, stall=own_redis.paused())
        for i, r in answers.items():
            assert r is not None and r.status in (200, 201), (rnd, i, r and r.status)
    assert srv.get("/validate", token=s["token"]).status_code == 200


def test_sessiond_starts_while_redis_is_down(spawn, tmp_path):
    port = free_port()  # nothing listens here yet
    url = "redis://127.0.0.1:%d/0" % port
    srv = spawn("sessiond", env=dict(FAST, STORE_URL=url))  # waits for /healthz 200
    user = uid()
    tok = make_token(user)
    assert wait_until(lambda: "does not answer" in srv.stderr_text(), timeout=2), \
        "no warning that Redis is down: %s" % srv.stderr_text()
    fake = {"id": "A" * 22, "token": make_token(user, sid="A" * 22)}
    assert_unavailable(srv, user, tok, fake, rounds=1)
    red = Redis(tmp_path / "late-redis", port=port).start()
    try:
        wait_serving(srv)
        s = srv.create(tok)
        assert srv.get("/session/%s" % s["id"], token=tok).status_code == 200
        assert srv.get("/validate", token=s["token"]).status_code == 200
    finally:
        red.stop()


def test_split_processes_ride_out_an_outage(spawn, own_redis):
    env = dict(FAST, STORE_URL=own_redis.url(0))
    c, r, d = (spawn(n, env=env) for n in ("createSession", "readSession", "closeSession"))
    user = uid()
    tok = make_token(user)
    s = c.create(tok)
    own_redis.stop()
    for resp in (c.post("/session", token=tok), r.get("/session/%s" % s["id"], token=tok),
                 r.get("/validate", token=s["token"]),
                 d.delete("/session/%s" % s["id"], token=tok)):
        assert_503(resp)
    for p in (c, r, d):
        assert_problem(p.get("/readyz"), 503)
        assert p.get("/healthz").status_code == 200
    own_redis.start()
    for p in (c, r, d):
        wait_serving(p)
    assert r.get("/validate", token=s["token"]).status_code == 200
    assert d.delete("/session/%s" % s["id"], token=tok).status_code == 204
    assert_unauthorized(r.get("/validate", token=s["token"]))


# ==========================================================================
# durability: kill -9 of redis-server, restart from its AOF
# ==========================================================================

def test_acknowledged_writes_survive_kill_9_of_redis(spawn, own_redis):
    assert own_redis.appendonly and own_redis.appendfsync == "always"
    srv = spawn("sessiond", env=dict(FAST, STORE_URL=own_redis.url(0), THREADS="4"))
    u1, u2 = uid(), uid()
    t1, t2 = make_token(u1), make_token(u2)
    made = [None] * 60
    errors = []

    def creator(k):
        try:
            for i in range(k, 60, 4):
                made[i] = srv.create(t1, {"data": {"i": i, "s": "x" * (i * 10)}})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=creator, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    others = [srv.create(t2) for _ in range(6)]
    closed = made[::3]                                   # 20 sessions of u1
    for s in closed:
        assert srv.delete("/session/%s" % s["id"], token=t1).status_code == 204
    r = srv.delete("/users/%s/sessions?except=%s" % (u2, others[0]["id"]), token=t2)
    assert assert_json(r, 200) == {"closed": 5}
    own_redis.kill()  # kill -9 right after the last acknowledged answer
    assert own_redis.proc.returncode == -9
    own_redis.start()  # same port, same directory: loads the AOF
    wait_serving(srv)
    closed_ids = {s["id"] for s in closed} | {s["id"] for s in others[1:]}
    lost, back = [], []
    for s in made + others:
        r = srv.get("/session/%s" % s["id"], token=admin_token())
        if s["id"] in closed_ids:
            if r.status_code != 404:
                back.append(s["id"])
            assert_unauthorized(srv.get("/validate", token=s["token"]))
        elif r.status_code != 200 or view(r.json()) != view(s):
            lost.append((s["id"], r.status_code))
    assert not lost, "answered 201, lost after kill -9 of redis-server: %s" % lost
    assert not back, "answered 204/closed, back after kill -9 of redis-server: %s" % back
    live = {s["id"] for s in made} - closed_ids
    assert sorted(ids_listed(srv, u1, t1)) == sorted(live)
    assert ids_listed(srv, u2, t2) == [others[0]["id"]]


# ==========================================================================
# the key schema: indexes never keep closed ids; expiry is native
# ==========================================================================

def unpruned(shorts):
    """Of sessions created in this order by one user, the ones no later create
    of the list pruned from the index: a create prunes its user's entries
    already expired, and a short session created just before a second
    boundary counts as expired to a create just after it (a slow machine
    spreads the creates over seconds)."""
    return [s for i, s in enumerate(shorts)
            if not any(t["created_at"] >= s["expires_at"] for t in shorts[i + 1:])]


@pytest.fixture(scope="module")
def expiry_scene(mspawn, suite_redis):
    """One sessiond on a database of its own, with three users whose
    sessions include ttl=1 ones, set up before a single 2.2 s wait (so the
    tests below share it):
      hyg:   30 long sessions (10 of them then closed) and 5 short ones;
      prune: 4 short and 3 long sessions;
      short: 3 short sessions only (and `long`, one long session)."""
    db = suite_redis.new_db()
    srv = mspawn("sessiond", env={"STORE_URL": suite_redis.url(db)})
    scene = {"srv": srv, "db": db}
    users = {k: uid(k) for k in ("hyg", "prune", "short", "long")}
    toks = {k: make_token(u) for k, u in users.items()}
    scene["users"], scene["toks"] = users, toks
    scene["hyg_long"] = [srv.create(toks["hyg"], {"ttl": 600}) for _ in range(30)]
    scene["hyg_short"] = [srv.create(toks["hyg"], {"ttl": 1}) for _ in range(5)]
    # long ones first: a create prunes its user's expired index entries, and
    # a short one created just before a second boundary may already count
    # as expired to a create just after it
    scene["prune_long"] = [srv.create(toks["prune"], {"ttl": 600}) for _ in range(3)]
    scene["prune_short"] = [srv.create(toks["prune"], {"ttl": 1}) for _ in range(4)]
    scene["short"] = [srv.create(toks["short"], {"ttl": 1}) for _ in range(3)]
    scene["long"] = srv.create(toks["long"], {"ttl": 600})
    key = "ss:u:" + users["hyg"]
    # the short ones a later create of theirs did not prune already
    scene["hyg_kept"] = unpruned(scene["hyg_short"])
    with suite_redis.client(db) as r:
        scene["hyg_zcard_before"] = r.call("ZCARD", key)
        scene["hyg_scores"] = {s["id"]: int(r.call("ZSCORE", key, s["id"]))
                               for s in scene["hyg_long"][:3] + scene["hyg_kept"][:1]}
        scene["hyg_ttl"] = r.call("TTL", key)
        scene["session_pttl"] = r.call("PTTL", "ss:s:" + scene["hyg_long"][0]["id"])
        for s in scene["hyg_long"][:10]:
            assert srv.delete("/session/%s" % s["id"], token=toks["hyg"]).status_code == 204
        # close removes its id from the index at once
        scene["hyg_after_close"] = r.call("ZRANGE", key, 0, -1)
    time.sleep(2.2)  # every ttl=1 session expires (Redis drops them itself)
    return scene


def test_index_holds_no_closed_ids(expiry_scene, suite_redis):
    sc = expiry_scene
    srv, user, tok = sc["srv"], sc["users"]["hyg"], sc["toks"]["hyg"]
    key = "ss:u:" + user
    long_, short, kept = sc["hyg_long"], sc["hyg_short"], sc["hyg_kept"]
    assert sc["hyg_zcard_before"] == 30 + len(kept)
    # scores are expires_at; the index key expires, no earlier than its
    # longest session
    assert sc["hyg_scores"] == {s["id"]: s["expires_at"] for s in long_[:3] + kept[:1]}
    assert 0 < sc["hyg_ttl"] <= 600
    assert 0 < sc["session_pttl"] <= 600 * 1000
    assert sorted(sc["hyg_after_close"]) == sorted(s["id"] for s in long_[10:] + kept)
    with suite_redis.client(sc["db"]) as r:
        for s in short:
            assert r.call("EXISTS", "ss:s:" + s["id"]) == 0
        # list prunes the dead ids it meets
        assert sorted(ids_listed(srv, user, tok)) == sorted(s["id"] for s in long_[10:])
        assert sorted(r.call("ZRANGE", key, 0, -1)) == sorted(s["id"] for s in long_[10:])
        # close-all leaves only the kept id; closing that one leaves nothing
        keep = long_[-1]
        resp = srv.delete("/users/%s/sessions?except=%s" % (user, keep["id"]), token=tok)
        assert assert_json(resp, 200) == {"closed": 19}
        assert r.call("ZRANGE", key, 0, -1) == [keep["id"]]
        assert srv.delete("/session/%s" % keep["id"], token=tok).status_code == 204
        assert r.call("EXISTS", key) == 0
        for s in long_ + short:
            assert r.call("EXISTS", "ss:s:" + s["id"]) == 0


def test_close_all_prunes_expired_ids(expiry_scene, suite_redis):
    sc = expiry_scene
    srv, user, tok = sc["srv"], sc["users"]["prune"], sc["toks"]["prune"]
    with suite_redis.client(sc["db"]) as r:
        # nothing read the index since, but a create prunes its user's entries
        # already expired
        kept = unpruned(sc["prune_short"])
        assert r.call("ZCARD", "ss:u:" + user) == 3 + len(kept)
        resp = srv.delete("/users/%s/sessions" % user, token=tok)
        assert assert_json(resp, 200) == {"closed": 3}
        assert r.call("EXISTS", "ss:u:" + user) == 0
        for s in sc["prune_short"] + sc["prune_long"]:
            assert r.call("EXISTS", "ss:s:" + s["id"]) == 0
    for s in sc["prune_long"]:
        assert_unauthorized(srv.get("/validate", token=s["token"]))


def test_expired_sessions_vanish_natively(expiry_scene, suite_redis):
    sc = expiry_scene
    srv = sc["srv"]
    with suite_redis.client(sc["db"]) as r:
        # without the service touching anything: sessions, and the index of a
        # user whose sessions all expired, are gone
        for s in sc["short"]:
            assert r.call("EXISTS", "ss:s:" + s["id"]) == 0
        assert r.call("EXISTS", "ss:u:" + sc["users"]["short"]) == 0
        assert r.call("EXISTS", "ss:s:" + sc["long"]["id"]) == 1
        assert r.call("ZRANGE", "ss:u:" + sc["users"]["long"], 0, -1) == [sc["long"]["id"]]
    for s in sc["short"]:
        assert_problem(srv.get("/session/%s" % s["id"], token=sc["toks"]["short"]), 404)
        assert_unauthorized(srv.get("/validate", token=s["token"]))


def test_index_expiry_only_ever_extends(spawn, suite_redis):
    db = suite_redis.new_db()
    srv = spawn("sessiond", env={"STORE_URL": suite_redis.url(db)})
    user = uid()
    tok = make_token(user)
    with suite_redis.client(db) as r:
        srv.create(tok, {"ttl": 600})
        assert 590 < r.call("TTL", "ss:u:" + user) <= 600
        srv.create(tok, {"ttl": 60})           # shorter: the index keeps 600
        assert 590 < r.call("TTL", "ss:u:" + user) <= 600
        srv.create(tok, {"ttl": 1200})         # longer: extended
        assert 1190 < r.call("TTL", "ss:u:" + user) <= 1200


# ==========================================================================
# STORE_URL forms
# ==========================================================================

PASSWORD = "p@ss:w/rd%x+\u00e9"
ACL_USER, ACL_PASSWORD = "svc", "acl:pw@1"


@pytest.fixture
def locked_redis(tmp_path):
    red = Redis(tmp_path / "redis", password=PASSWORD,
                extra_args=["--user", ACL_USER, "on", ">" + ACL_PASSWORD, "~*", "&*",
                            "+@all"]).start()
    yield red
    red.stop()


def test_password_and_acl_user(spawn, locked_redis):
    port = locked_redis.port
    good = {
        "password": "redis://:%s@127.0.0.1:%d/0" % (quote(PASSWORD, safe=""), port),
        "default user": "redis://default:%s@127.0.0.1:%d" % (quote(PASSWORD, safe=""), port),
        "ACL user": "redis://%s:%s@127.0.0.1:%d/2" % (ACL_USER, quote(ACL_PASSWORD, safe=""),
                                                      port),
    }
    for name, url in good.items():
        srv = spawn("sessiond", env={"STORE_URL": url})
        assert srv.get("/readyz").status_code == 200, name
        user = uid()
        tok = make_token(user)
        s = srv.create(tok)
        assert srv.get("/session/%s" % s["id"], token=tok).status_code == 200, name
        assert srv.get("/validate", token=s["token"]).status_code == 200, name
        assert srv.delete("/session/%s" % s["id"], token=tok).status_code == 204, name
    bad = {
        "no password": "redis://127.0.0.1:%d/0" % port,
        "wrong password": "redis://:wrong@127.0.0.1:%d/0" % port,
        "password not percent-encoded": "redis://:%s@127.0.0.1:%d" % (PASSWORD, port),
        "wrong ACL user": "redis://nobody:%s@127.0.0.1:%d" % (quote(ACL_PASSWORD, safe=""),
                                                              port),
    }
    for name, url in bad.items():
        srv = spawn("sessiond", env=dict(FAST, STORE_URL=url), wait=False)
        assert wait_until(lambda: not srv.alive() or _healthy(srv), timeout=10), \
            "%s: neither serving nor refused: %s" % (name, srv.stderr_text())
        if not srv.alive():
            srv.allow_exit = True
            assert srv.proc.returncode == 2 and "STORE_URL" in srv.stderr_text(), \
                "%s: exited with %s: %s" % (name, srv.proc.returncode, srv.stderr_text())
            continue  # refused at start (a URL that does not parse): also fine
        user = uid()
        resp = srv.post("/session", token=make_token(user))
        assert resp.status_code == 503, "%s: %d %s" % (name, resp.status_code, resp.text)
        assert_503(resp, name)
        assert_problem(srv.get("/readyz"), 503)


def _healthy(srv):
    try:
        return srv.get("/healthz", timeout=1).status_code == 200
    except Exception:  # noqa: BLE001
        return False


def test_database_number_isolates_services(spawn, suite_redis):
    da, db_ = suite_redis.new_db(), suite_redis.new_db()
    a = spawn("sessiond", env={"STORE_URL": suite_redis.url(da)})
    b = spawn("sessiond", env={"STORE_URL": suite_redis.url(db_)})
    user = uid()
    tok = make_token(user)
    s = a.create(tok)
    t = b.create(tok)
    assert a.get("/session/%s" % s["id"], token=tok).status_code == 200
    assert_problem(b.get("/session/%s" % s["id"], token=admin_token()), 404)
    assert_unauthorized(b.get("/validate", token=s["token"]))
    assert_unauthorized(a.get("/validate", token=t["token"]))
    assert ids_listed(a, user, tok) == [s["id"]]
    assert ids_listed(b, user, tok) == [t["id"]]
    assert_problem(b.delete("/session/%s" % s["id"], token=tok), 404)
    assert assert_json(b.delete("/users/%s/sessions" % user, token=tok), 200) == {"closed": 1}
    assert a.get("/validate", token=s["token"]).status_code == 200
    with suite_redis.client(da) as r:
        assert r.call("EXISTS", "ss:s:" + s["id"]) == 1
    with suite_redis.client(db_) as r:
        assert r.call("EXISTS", "ss:s:" + s["id"]) == 0


def test_database_that_redis_does_not_have(spawn, suite_redis):
    """A /db beyond Redis's `databases`: SELECT fails; the service answers
    503 like any unusable store, never 500 or 401."""
    url = suite_redis.url(suite_redis.databases)  # one past the last
    srv = spawn("sessiond", env=dict(FAST, STORE_URL=url), wait=False)
    assert wait_until(lambda: not srv.alive() or _healthy(srv), timeout=10)
    if not srv.alive():
        srv.allow_exit = True
        assert srv.proc.returncode == 2 and "STORE_URL" in srv.stderr_text()
        return
    assert_503(srv.post("/session", token=make_token(uid())))
    assert_problem(srv.get("/readyz"), 503)


def test_ipv6_loopback(spawn, tmp_path):
    red = Redis(tmp_path / "redis6", extra_args=["--bind", "127.0.0.1", "::1"]).start()
    try:
        srv = spawn("sessiond", env={"STORE_URL": "redis://[::1]:%d/1" % red.port})
        assert srv.get("/readyz").status_code == 200
        user = uid()
        tok = make_token(user)
        s = srv.create(tok)
        assert srv.get("/validate", token=s["token"]).status_code == 200
        with red.client(1) as r:
            assert r.call("EXISTS", "ss:s:" + s["id"]) == 1
    finally:
        red.stop()


BAD_URLS = [
    "redis://",
    "redis:///0",
    "redis://:6379",
    "redis://:pw@",
    "redis://127.0.0.1:0",
    "redis://127.0.0.1:65536",
    "redis://host:99999",
    "redis://127.0.0.1:",
    "redis://127.0.0.1:abc",
    "redis://127.0.0.1:-1",
    "redis://host/abc",
    "redis://127.0.0.1:6379/1x",
    "redis://127.0.0.1/-1",
    "redis://127.0.0.1/65536",
    "redis://[::1",
    "redis://[]:6379",
    "redis://[::1]x",
    "redis://[::1]:",
    "redis://[a b]:6379",
    "redis://[zz!]",
    "redis://[127.0.0.1]",
    "redis://ho st",
    "redis://host!",
    "redis://user@host",
    "redis://:%zz@host",
    "redis://:%00@host",
    "redis:/host",
    "redis:host",
    "rediss://host",
]


def refused_at_start(binary, url, tmp_path, timeout=5.0):
    rc, out, err = run_until_exit(binary, {"STORE_URL": url}, tmp_path, timeout=timeout)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, "STORE_URL=%r: exit status %s (want 2); stderr:\n%s" % (url, rc, err)
    assert len(lines) == 1, "want one stderr line for %r, got:\n%s" % (url, err)
    assert re.search(r"\bSTORE_URL\b", lines[0]), "does not name STORE_URL: %r" % lines[0]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_url_refused_at_start(tmp_path, url):
    refused_at_start("sessiond", url, tmp_path)


@pytest.mark.parametrize("binary", BINARIES)
def test_every_binary_refuses_a_bad_redis_url(tmp_path, binary):
    refused_at_start(binary, "redis://127.0.0.1:70000", tmp_path)


def test_a_use_never_leaves_the_key_expiring_before_the_session(spawn, suite_redis):
    """A session with a long idle timeout (3600 s: slack 180 s) used 100 s
    after its recorded use, then 200 s after: whatever the service records
    of each use, the key must not expire before the session would end by
    what is recorded (last_seen_at + idle_timeout + slack), or Redis drops
    a session in steady use early. (A background write of last_seen_at
    kept the key's old expiry: the key outlived the recorded use by 100 s
    less than the session.)"""
    import json
    import subprocess
    from apitools import PASSTHROUGH_ENV, binary_path
    db = suite_redis.new_db()
    srv = spawn("sessiond", env={"STORE_URL": suite_redis.url(db)})
    user = uid()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ})
    for age in (100, 200):
        t = int(time.time())
        sid = "IdleLong" + uid("")[-14:].replace("-", "x")
        line = json.dumps({"id": sid, "user_id": user, "created_at": t - 1000,
                           "expires_at": t + 7200, "last_seen_at": t - age,
                           "idle_timeout": 3600, "ip": "192.0.2.7", "user_agent": None,
                           "data": {}})
        out = subprocess.run([str(binary_path("sessionctl")), "--store", srv.store_url, "import"],
                             input=line.encode() + b"\n", capture_output=True, env=env,
                             timeout=30, cwd="/")
        assert out.returncode == 0 and b"imported 1," in out.stderr, out
        assert srv.get("/validate", token=make_token(user, sid=sid, exp=t + 7200)).status_code == 200
        time.sleep(2.5)  # past the background writer's second, whatever it does
        with suite_redis.client(db) as r:
            raw = r.raw("GETRANGE", "ss:s:" + sid, 20, 27)
            seen = int.from_bytes(raw, "little")
            ends = r.call("EXPIRETIME", "ss:s:" + sid)
        assert t - age <= seen <= int(time.time()), (age, seen)
        assert ends >= seen + 3600 + 180, (age, seen, ends)
