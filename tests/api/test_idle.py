"""Idle timeout (contract v2, "Session lifecycle"): SESSION_IDLE_TIMEOUT and
the idle_timeout field of POST /session; idle_timeout and idle_expires_at in
the session object; a session unused for longer than its idle timeout ends
(within max(2, idle_timeout/20) seconds, for every process sharing the
store) and then behaves like a closed one; what counts as use (a validate,
any request authenticated by the session token) and what does not (reads
and lists with a plain caller token); the idle close event."""

import threading
import time

import pytest

from apitools import (BINARIES, REDIS_KINDS, SESSION_FIELDS, admin_token, assert_json,
                      assert_problem, assert_unauthorized, make_token, q, run_until_exit, uid,
                      wait_until)
from test_close_reasons import check_line, close_lines, closes, counted
from test_config import assert_refused

MAX_TTL = 2592000  # SESSION_MAX_TTL's default
OBJECT_FIELDS = SESSION_FIELDS | {"idle_timeout", "idle_expires_at"}
# Time allowed on top of the contract's bounds, for a slow and noisy machine.
MARGIN = 2.0


@pytest.fixture(scope="module")
def idle_server(mspawn):
    """New sessions get an idle timeout of 30 s unless they ask otherwise."""
    return mspawn("sessiond", env={"SESSION_IDLE_TIMEOUT": "30"})


def pair(spawn, tmp_path, env=None):
    """Two sessiond processes sharing one store."""
    store = tmp_path / "shared"
    return [spawn("sessiond", env=env, store=store) for _ in range(2)]


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_idle_fields(s, idle):
    """idle_timeout as asked; idle_expires_at null without one, else
    min(expires_at, last_seen_at + idle_timeout)."""
    assert is_int(s.get("idle_timeout")) and s["idle_timeout"] == idle, s
    if idle == 0:
        assert "idle_expires_at" in s and s["idle_expires_at"] is None, s
    else:
        assert is_int(s.get("idle_expires_at")), s
        assert s["idle_expires_at"] == min(s["expires_at"], s["last_seen_at"] + idle), s
        assert s["idle_expires_at"] <= s["expires_at"], s


def read(srv, sid, tok):
    return srv.get("/session/%s" % sid, token=tok)


def listed(srv, user, tok):
    r = srv.get("/users/%s/sessions" % q(user), token=tok)
    return assert_json(r, 200)["sessions"]


def create_timed(srv, tok, body):
    """(session, time before the request, time after it): its creation is
    its first use, somewhere in between."""
    before = time.time()
    s = srv.create(tok, body)
    return s, before, time.time()


def watch_until_gone(procs, sid, tok, deadline, interval=0.25):
    """Reads sid through every process with the plain caller token tok (never
    a use) until each has answered 404 or time.time() passes deadline.
    Answers {process index: time just after its first 404}.  Once a process
    said 404 it must keep saying so."""
    gone = {}
    while True:
        for i, p in enumerate(procs):
            r = read(p, sid, tok)
            t = time.time()
            if r.status_code == 404:
                assert_problem(r, 404)
                gone.setdefault(i, t)
            else:
                assert r.status_code == 200, r.text[:300]
                assert i not in gone, "process %d read the session again after a 404" % i
        if len(gone) == len(procs) or time.time() > deadline:
            return gone
        time.sleep(interval)


def wait_idle_end(procs, s, tok, used_from, used_to, idle):
    """The session, last used between used_from and used_to, must stay live
    through used_from + idle and be gone for every process by used_to +
    idle + max(2, idle/20) (+ MARGIN)."""
    slack = max(2.0, idle / 20.0)
    gone = watch_until_gone(procs, s["id"], tok, used_to + idle + slack + MARGIN)
    late = [i for i in range(len(procs)) if i not in gone]
    assert not late, "processes %s still read the session %.1f s after its last use " \
        "(idle_timeout %d)" % (late, time.time() - used_to, idle)
    for i, t in sorted(gone.items()):
        assert t > used_from + idle, \
            "process %d: the session ended %.2f s after its last use, before its " \
            "idle_timeout of %d s" % (i, t - used_from, idle)


def assert_behaves_closed(procs, s, user, tok):
    """An idle-ended session behaves exactly like a closed one, everywhere."""
    sid = s["id"]
    for p in procs:
        assert_problem(read(p, sid, tok), 404)
        assert_problem(read(p, sid, admin_token()), 404)
        assert_unauthorized(p.get("/validate", token=s["token"]))
        r = p.get("/validate", headers={"Cookie": "session=%s" % s["token"]})
        assert_problem(r, 401)
        assert_unauthorized(read(p, sid, s["token"]))
        assert sid not in [x["id"] for x in listed(p, user, tok)]
    for p in procs:
        assert_problem(p.delete("/session/%s" % sid, token=tok), 404)


# ---------------------------------------------------------------- settings

IDLE_REFUSALS = [
    {"SESSION_IDLE_TIMEOUT": "abc"},
    {"SESSION_IDLE_TIMEOUT": "-1"},
    {"SESSION_IDLE_TIMEOUT": "2.5"},
    {"SESSION_IDLE_TIMEOUT": "30s"},
    {"SESSION_IDLE_TIMEOUT": str(MAX_TTL + 1)},  # above the default SESSION_MAX_TTL
    {"SESSION_MAX_TTL": "100", "SESSION_TTL": "50", "SESSION_IDLE_TIMEOUT": "101"},
]


@pytest.mark.parametrize("env", IDLE_REFUSALS,
                         ids=["%s" % ",".join("%s=%s" % kv for kv in sorted(e.items()))
                              for e in IDLE_REFUSALS])
def test_bad_idle_setting_refused_at_start(tmp_path, env):
    rc, out, err = run_until_exit("sessiond", env, tmp_path)
    assert_refused(rc, err, "SESSION_IDLE_TIMEOUT")


@pytest.mark.parametrize("binary", BINARIES)
def test_every_binary_refuses_a_bad_idle_setting(tmp_path, binary):
    rc, out, err = run_until_exit(binary, {"SESSION_IDLE_TIMEOUT": "-5"}, tmp_path)
    assert_refused(rc, err, "SESSION_IDLE_TIMEOUT")


def test_idle_setting_equal_to_max_ttl_is_the_default(spawn, user):
    srv = spawn("sessiond", env={"SESSION_MAX_TTL": "100", "SESSION_TTL": "50",
                                 "SESSION_IDLE_TIMEOUT": "100"})
    tok = make_token(user)
    s = srv.create(tok)
    check_idle_fields(s, 100)
    assert s["idle_expires_at"] == s["expires_at"] == s["created_at"] + 50
    # the field is bounded by SESSION_MAX_TTL too
    assert_problem(srv.post("/session", token=tok, json={"idle_timeout": 101}), 400)
    check_idle_fields(srv.create(tok, {"idle_timeout": 0}), 0)


# ---------------------------------------------------------------- the field

BAD_IDLE_BODIES = [
    '{"idle_timeout": -1}',
    '{"idle_timeout": 1.5}',
    '{"idle_timeout": 5.0}',     # an integer literal, as for ttl (60.0 is refused there)
    '{"idle_timeout": 1e1}',
    '{"idle_timeout": "5"}',
    '{"idle_timeout": true}',
    '{"idle_timeout": false}',
    '{"idle_timeout": null}',
    '{"idle_timeout": []}',
    '{"idle_timeout": {}}',
    '{"idle_timeout": %d}' % (MAX_TTL + 1),
    '{"idle_timeout": 99999999999999999999999}',
    '{"idle_timeout": 5, "idle_timeout": 5}',
]


@pytest.mark.parametrize("body", BAD_IDLE_BODIES)
def test_bad_idle_timeout_is_400(server, body):
    user = uid("bad-idle")
    tok = make_token(user)
    r = server.post("/session", token=tok, data=body.encode(),
                    headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    assert listed(server, user, tok) == [], "a refused create stored a session"


@pytest.mark.parametrize("idle", [0, 1, 2, 3600, MAX_TTL])
def test_idle_timeout_accepted_up_to_max_ttl(server, user, idle):
    tok = make_token(user)
    s = server.create(tok, {"idle_timeout": idle, "ttl": 60})
    assert set(s) == OBJECT_FIELDS | {"token", "evicted"}
    check_idle_fields(s, idle)
    if idle >= 60:
        assert s["idle_expires_at"] == s["expires_at"]
    elif idle:
        assert s["idle_expires_at"] == s["created_at"] + idle


def test_no_idle_timeout_by_default(server, user):
    tok = make_token(user)
    s = server.create(tok)
    assert set(s) == OBJECT_FIELDS | {"token", "evicted"}
    check_idle_fields(s, 0)
    got = assert_json(read(server, s["id"], tok), 200)
    assert set(got) == OBJECT_FIELDS
    check_idle_fields(got, 0)
    [entry] = listed(server, user, tok)
    assert set(entry) == OBJECT_FIELDS
    check_idle_fields(entry, 0)


def test_default_comes_from_the_setting(idle_server, user):
    tok = make_token(user)
    dflt = idle_server.create(tok)
    check_idle_fields(dflt, 30)
    assert dflt["idle_expires_at"] == dflt["last_seen_at"] + 30
    none = idle_server.create(tok, {"idle_timeout": 0})
    check_idle_fields(none, 0)
    other = idle_server.create(tok, {"idle_timeout": 45})
    check_idle_fields(other, 45)
    short = idle_server.create(tok, {"ttl": 10})
    check_idle_fields(short, 30)
    assert short["idle_expires_at"] == short["expires_at"]
    by_admin = idle_server.create(admin_token(), {"user_id": user})
    check_idle_fields(by_admin, 30)
    # as read and listed
    want = {x["id"]: x["idle_timeout"] for x in (dflt, none, other, short, by_admin)}
    for sid, idle in want.items():
        check_idle_fields(assert_json(read(idle_server, sid, tok), 200), idle)
    entries = listed(idle_server, user, tok)
    assert {x["id"]: x["idle_timeout"] for x in entries} == want
    for x in entries:
        check_idle_fields(x, want[x["id"]])


def test_fields_in_create_read_and_list(server, user):
    tok = make_token(user)
    made = [
        server.create(tok, {"idle_timeout": 20, "ttl": 600, "data": {"k": 1}}),
        server.create(tok, {"idle_timeout": 100, "ttl": 5}),  # the idle end is past expires_at
        server.create(tok, {"idle_timeout": 0, "ttl": 600}),
    ]
    idles = [20, 100, 0]
    check_idle_fields(made[0], 20)
    assert made[0]["idle_expires_at"] == made[0]["last_seen_at"] + 20 < made[0]["expires_at"]
    check_idle_fields(made[1], 100)
    assert made[1]["idle_expires_at"] == made[1]["expires_at"]
    check_idle_fields(made[2], 0)
    entries = {x["id"]: x for x in listed(server, user, tok)}
    assert set(entries) == {s["id"] for s in made}
    for s, idle in zip(made, idles):
        plain = {k: v for k, v in s.items() if k not in ("token", "evicted")}
        got = assert_json(read(server, s["id"], tok), 200)
        assert set(got) == OBJECT_FIELDS
        check_idle_fields(got, idle)
        # reading is no use: the same object as created
        assert got == plain
        assert set(entries[s["id"]]) == OBJECT_FIELDS
        check_idle_fields(entries[s["id"]], idle)
        assert entries[s["id"]] == plain


# ---------------------------------------------------------------- liveness

def test_setting_ends_unused_sessions(spawn, user):
    srv = spawn("sessiond", env={"SESSION_IDLE_TIMEOUT": "2"})
    tok = make_token(user)
    s, t0, t1 = create_timed(srv, tok, None)
    check_idle_fields(s, 2)
    none = srv.create(tok, {"idle_timeout": 0})
    longer = srv.create(tok, {"idle_timeout": 600})
    wait_idle_end([srv], s, tok, t0, t1, 2)
    for other in (none, longer):
        assert read(srv, other["id"], tok).status_code == 200
        assert srv.get("/validate", token=other["token"]).status_code == 200
    assert {x["id"] for x in listed(srv, user, tok)} == {none["id"], longer["id"]}


def test_unused_session_ends_and_behaves_closed(server, user):
    tok = make_token(user)
    s, t0, t1 = create_timed(server, tok, {"idle_timeout": 2})
    keep = server.create(tok, {"idle_timeout": 0})
    # still live about a second after its creation (a 404 is wrong unless
    # it came after t0 + 2 on a stalled machine)
    time.sleep(max(0.0, t1 + 1.0 - time.time()))
    r = read(server, s["id"], tok)
    assert r.status_code == 200 or (r.status_code == 404 and time.time() > t0 + 2), \
        "gone %.2f s after its creation, idle_timeout 2" % (time.time() - t0)
    wait_idle_end([server], s, tok, t0, t1, 2)
    assert_behaves_closed([server], s, user, tok)
    assert [x["id"] for x in listed(server, user, tok)] == [keep["id"]]
    assert server.get("/validate", token=keep["token"]).status_code == 200


def use_validate(srv, s):
    return srv.get("/validate", token=s["token"])


def use_cookie(srv, s):
    return srv.get("/validate", headers={"Cookie": "session=%s" % s["token"]})


def use_own_read(srv, s):
    return srv.get("/session/%s" % s["id"], token=s["token"])


USES = {"validate": use_validate, "validate_cookie": use_cookie,
        "read_with_session_token": use_own_read}


def keep_using(user_srv, watch_srvs, s, tok, use, seconds, every=1.0):
    """Uses s through user_srv every `every` seconds for `seconds`; every use
    must succeed, and every process in watch_srvs must read it (caller
    token) each time.  Answers (before, after) the last use."""
    end = time.time() + seconds
    while True:
        before = time.time()
        r = use(user_srv, s)
        after = time.time()
        assert r.status_code == 200, "use at +%.1f s refused: %d %s" % (
            after - (end - seconds), r.status_code, r.text[:200])
        for w in watch_srvs:
            assert read(w, s["id"], tok).status_code == 200
        if after >= end:
            return before, after
        time.sleep(max(0.0, before + every - time.time()))


def test_use_keeps_it_alive(server, user):
    """idle_timeout 3, used every second for 7 s: live all along; then,
    unused, it ends within 3 + 2 s of the last use. Each way of using it
    (USES) on a session of its own, the three at once (the test waits)."""
    tok = make_token(user)
    failed = {}

    def one(how):
        try:
            s = server.create(tok, {"idle_timeout": 3})
            last_from, last_to = keep_using(server, [server], s, tok, USES[how], 7.0)
            wait_idle_end([server], s, tok, last_from, last_to, 3)
            assert_behaves_closed([server], s, user, tok)
        except Exception as exc:  # noqa: BLE001 -- reported below, by way of use
            failed[how] = exc

    threads = [threading.Thread(target=one, args=(how,)) for how in sorted(USES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a way of use never finished"
    assert not failed, "; ".join("%s: %r" % (how, exc) for how, exc in sorted(failed.items()))


def test_reads_with_a_caller_token_are_no_use(server, user):
    tok, adm = make_token(user), admin_token()
    s, t0, t1 = create_timed(server, tok, {"idle_timeout": 3})
    deadline = t1 + 3 + 2 + MARGIN
    gone_at = None
    while gone_at is None and time.time() < deadline:
        for caller in (tok, adm):
            r = read(server, s["id"], caller)
            ids = [x["id"] for x in listed(server, user, caller)]
            if r.status_code == 404:
                gone_at = time.time()
                assert s["id"] not in ids
                break
            assert r.status_code == 200, r.text[:300]
            assert r.json()["last_seen_at"] == s["last_seen_at"], "a read moved last_seen_at"
        time.sleep(0.25)
    assert gone_at is not None, "reads and lists with caller tokens kept the session alive"
    assert gone_at > t0 + 3, "ended %.2f s after creation, idle_timeout 3" % (gone_at - t0)
    assert_unauthorized(server.get("/validate", token=s["token"]))


def test_last_seen_follows_use_within_two_seconds(spawn, tmp_path, user):
    """idle_timeout 30: last_seen_at, read through either process, lags
    the last use by at most max(2, 30/20) = 2 s, and caller reads do not
    move it."""
    a, b = pair(spawn, tmp_path)
    tok = make_token(user)
    s = a.create(tok, {"idle_timeout": 30})
    created = s["created_at"]
    assert s["last_seen_at"] == created
    end = time.time() + 3.5
    while time.time() < end:
        for p in (a, b):
            got = assert_json(read(p, s["id"], tok), 200)
            assert got["last_seen_at"] == created, got
            check_idle_fields(got, 30)
        time.sleep(0.3)
    vb = time.time()
    assert a.get("/validate", token=s["token"]).status_code == 200
    va = time.time()
    assert int(vb) - 2 > created  # the use is distinguishable from the creation

    def seen():
        out = []
        for p in (a, b):
            got = assert_json(read(p, s["id"], tok), 200)
            check_idle_fields(got, 30)
            out.append(got["last_seen_at"])
        return out

    # by the end of the lag allowed, both show the use
    floor = int(vb) - 2
    time.sleep(max(0.0, va + 2.0 - time.time()))
    values = seen()
    deadline = time.monotonic() + 1.5
    while not all(v >= floor for v in values) and time.monotonic() < deadline:
        time.sleep(0.2)
        values = seen()
    for v in values:
        assert int(vb) - 2 <= v <= int(va) + 1, \
            "last_seen_at %d for a use at %.1f (created %d)" % (v, vb, created)


def test_use_through_one_process_keeps_it_alive_for_another(spawn, tmp_path, user):
    a, b = pair(spawn, tmp_path)
    tok = make_token(user)
    s = a.create(tok, {"idle_timeout": 3})
    # validated through a, read through both
    last_from, last_to = keep_using(a, [a, b], s, tok, use_validate, 7.0)
    # b sees the uses: last_seen_at lags by at most max(2, 3/20) = 2 s (plus
    # a second for a write still under way and whole-second rounding)
    got = assert_json(read(b, s["id"], tok), 200)
    check_idle_fields(got, 3)
    assert got["last_seen_at"] >= int(last_from) - 3, (got, last_from)
    # the end, once neither is used, is seen by both within the bounds
    wait_idle_end([a, b], s, tok, last_from, last_to, 3)
    assert_behaves_closed([b, a], s, user, tok)


# ---------------------------------------------------------------- close events

def test_idle_close_is_counted_and_logged(spawn, store_kind):
    """LMDB: the background purge removes the idle session.  Redis drops it
    itself; the close is told when a list meets its index entry."""
    srv = spawn("sessiond", env={"PURGE_INTERVAL": "1"})
    user = uid("idle")
    tok = make_token(user)
    keep = srv.create(tok, {"ttl": 600})
    s, t0, t1 = create_timed(srv, tok, {"idle_timeout": 2, "ttl": 600})
    wait_idle_end([srv], s, tok, t0, t1, 2)
    if store_kind in REDIS_KINDS:
        assert [x["id"] for x in listed(srv, user, tok)] == [keep["id"]]
    assert wait_until(lambda: counted(srv, "idle") >= 1, timeout=5.0), "idle close not counted"
    check_line(close_lines(srv, [s["id"]])[s["id"]], s["id"], user, "idle", [tok, s["token"]])
    # told once, and as nothing else
    listed(srv, user, tok)
    time.sleep(1.5)
    listed(srv, user, tok)
    assert counted(srv, "idle") == 1
    assert counted(srv, "expired") == 0
    assert len([e for e in closes(srv) if e.get("session_id") == s["id"]]) == 1
    assert srv.get("/validate", token=keep["token"]).status_code == 200


def test_idle_close_counted_once_across_processes(spawn, tmp_path, store_kind):
    procs = pair(spawn, tmp_path, env={"PURGE_INTERVAL": "1"})
    user = uid("idle2")
    tok = make_token(user)
    keep = procs[0].create(tok, {"ttl": 600})
    made = []
    for i in range(3):
        made.append(create_timed(procs[i % 2], tok, {"idle_timeout": 2, "ttl": 600}))
    for s, t0, t1 in made:
        wait_idle_end(procs, s, tok, t0, t1, 2)
    sids = {s["id"] for s, _, _ in made}

    def total():
        if store_kind in REDIS_KINDS:
            for p in procs:
                assert [x["id"] for x in listed(p, user, tok)] == [keep["id"]]
        return sum(counted(p, "idle") for p in procs)

    assert wait_until(lambda: total() >= 3, timeout=6.0, interval=0.3), \
        "idle closes counted: %s" % total()
    time.sleep(1.5)
    assert total() == 3
    lines = [e for p in procs for e in closes(p) if e.get("session_id") in sids]
    assert sorted(e["session_id"] for e in lines) == sorted(sids), lines
    for e in lines:
        check_line(e, e["session_id"], user, "idle", [tok] + [s["token"] for s, _, _ in made])
