"""Token rotation (contract v2, "Session lifecycle"): POST /session/{id}/refresh
answers the session object and a new session token (same sid, sub and exp,
a new jti); the previous token keeps working for SESSION_REFRESH_GRACE
seconds, and a refresh presented with it inside that window answers the
current token again and rotates nothing; any use of the previous token
after its window, or of an older one at any time, on any route and through
any process, closes the session at once (reason token_reuse)."""

import threading
import time

import jwt
import pytest

from apitools import (BINARIES, SESSION_FIELDS, admin_token, allow_set, assert_json,
                      assert_problem, assert_unauthorized, decode_token, make_token, no_store,
                      q, run_until_exit, uid, wait_until)
from test_close_reasons import check_line, closes, counted
from test_config import assert_refused

OBJECT_FIELDS = SESSION_FIELDS | {"idle_timeout", "idle_expires_at"}
UNCHANGED = ("id", "user_id", "created_at", "expires_at", "ip", "user_agent", "data",
             "idle_timeout")
REUSE = "token_reuse"


def refresh(srv, sid, token=None, cookie=None, cookie_name="session"):
    headers = {}
    if cookie is not None:
        headers["Cookie"] = "%s=%s" % (cookie_name, cookie)
    return srv.post("/session/%s/refresh" % sid, token=token, headers=headers)


def claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def check_refreshed(r, s, presented):
    """A refresh answer for session s (as created) to a request presenting
    `presented`: 200, no-store, the session object plus a new token with the
    sid, sub and exp of the presented one and another jti, signed HS256 with
    the suite's secret.  Answers the new token."""
    body = assert_json(r, 200)
    assert no_store(r), r.headers.get("Cache-Control")
    assert set(body) == OBJECT_FIELDS | {"token"}, sorted(body)
    for key in UNCHANGED:
        assert body[key] == s[key], (key, body[key], s[key])
    assert s["created_at"] <= body["last_seen_at"] <= int(time.time()) + 1, body
    if body["idle_timeout"]:
        assert body["idle_expires_at"] == min(body["expires_at"],
                                              body["last_seen_at"] + body["idle_timeout"])
    else:
        assert body["idle_expires_at"] is None
    new = body["token"]
    assert isinstance(new, str) and new.count(".") == 2 and new != presented
    assert jwt.get_unverified_header(new).get("alg") == "HS256"
    decode_token(new)  # the signature verifies with the suite's secret
    old_c, new_c = claims(presented), claims(new)
    assert new_c["sid"] == old_c["sid"] == s["id"], (old_c, new_c)
    assert new_c["sub"] == old_c["sub"] == s["user_id"], (old_c, new_c)
    assert new_c["exp"] == old_c["exp"] == s["expires_at"], (old_c, new_c)
    assert isinstance(new_c.get("jti"), str) and new_c["jti"], new_c
    assert new_c["jti"] != old_c.get("jti"), (old_c, new_c)
    return new


def rotate(srv, s, token):
    """Refresh s with token; answers the new token."""
    return check_refreshed(refresh(srv, s["id"], token=token), s, token)


def validates(srv, s, token):
    r = srv.get("/validate", token=token)
    if r.status_code != 200:
        return False
    return r.headers.get("X-Session-Id") == s["id"]


def read(srv, sid, tok):
    return srv.get("/session/%s" % sid, token=tok)


def live(procs, s, tok):
    return all(read(p, s["id"], tok).status_code == 200 for p in procs)


def reuse_total(procs):
    return sum(counted(p, REUSE) for p in procs)


def assert_closed_everywhere(procs, s, user, tok, tokens):
    """After a reuse: every token of the session is refused by every
    process, the session is gone for its owner."""
    sid = s["id"]
    for p in procs:
        for t in tokens:
            assert_unauthorized(p.get("/validate", token=t))
            assert_unauthorized(read(p, sid, t))
            assert_unauthorized(p.get("/users/%s/sessions" % q(user), token=t))
        assert_problem(read(p, sid, tok), 404)
        assert_problem(read(p, sid, admin_token()), 404)
        r = p.get("/users/%s/sessions" % q(user), token=tok)
        assert sid not in [x["id"] for x in assert_json(r, 200)["sessions"]]
        assert_problem(p.delete("/session/%s" % sid, token=tok), 404)


def assert_reuse_counted_once(procs, s, user, tokens, where=None):
    """token_reuse counted once over procs, one session.closed line (in
    procs[where] when given)."""
    assert wait_until(lambda: reuse_total(procs) >= 1, timeout=5.0), "token_reuse not counted"
    time.sleep(1.2)
    assert reuse_total(procs) == 1
    if where is not None:
        assert counted(procs[where], REUSE) == 1

    def lines():
        return [(i, e) for i, p in enumerate(procs) for e in closes(p)
                if e.get("session_id") == s["id"]]

    wait_until(lambda: lines(), timeout=3.0)
    found = lines()
    assert len(found) == 1, found
    i, e = found[0]
    if where is not None:
        assert i == where, found
    check_line(e, s["id"], user, REUSE, tokens)


def refresh_at_once(procs, sid, token, n=24):
    """n refreshes of sid with the same token, released together, spread
    over procs; answers every response."""
    barrier = threading.Barrier(n)
    answers = [None] * n
    errors = []

    def go(k):
        try:
            barrier.wait(30)
            answers[k] = refresh(procs[k % len(procs)], sid, token=token)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return answers


# ---------------------------------------------------------------- settings

GRACE_REFUSALS = ["301", "-1", "abc", "2.5", "10s", "99999999999999999999"]


@pytest.mark.parametrize("value", GRACE_REFUSALS)
def test_bad_grace_refused_at_start(tmp_path, value):
    rc, out, err = run_until_exit("sessiond", {"SESSION_REFRESH_GRACE": value}, tmp_path)
    assert_refused(rc, err, "SESSION_REFRESH_GRACE")


@pytest.mark.parametrize("binary", BINARIES)
def test_every_binary_refuses_a_bad_grace(tmp_path, binary):
    rc, out, err = run_until_exit(binary, {"SESSION_REFRESH_GRACE": "301"}, tmp_path)
    assert_refused(rc, err, "SESSION_REFRESH_GRACE")


@pytest.mark.parametrize("grace", ["0", "300"])
def test_grace_bounds_are_accepted(spawn, user, grace):
    srv = spawn("sessiond", env={"SESSION_REFRESH_GRACE": grace})
    s = srv.create(make_token(user))
    t1 = rotate(srv, s, s["token"])
    assert validates(srv, s, t1)


# ---------------------------------------------------------------- the answer

def test_refresh_rotates_the_token(server, user):
    tok = make_token(user)
    s = server.create(tok, {"ttl": 900, "data": {"device": "laptop"}},
                      headers={"User-Agent": "refresh-test/1"})
    t1 = rotate(server, s, s["token"])
    # the new token is a session token of the same session
    assert validates(server, s, t1)
    got = assert_json(read(server, s["id"], t1), 200)
    assert got["expires_at"] == s["expires_at"] and got["data"] == {"device": "laptop"}
    r = server.get("/users/%s/sessions" % q(user), token=t1)
    assert [x["id"] for x in assert_json(r, 200)["sessions"]] == [s["id"]]
    # ... which may not open sessions, like any session token
    assert_problem(server.post("/session", token=t1), 403)
    # the session itself is unchanged
    got = assert_json(read(server, s["id"], tok), 200)
    for key in UNCHANGED:
        assert got[key] == s[key], key


def test_previous_token_works_within_grace(server, user):
    tok = make_token(user)
    s = server.create(tok)
    t0 = s["token"]
    before = counted(server, REUSE)
    t1 = rotate(server, s, t0)
    for _ in range(3):
        assert validates(server, s, t0)
        assert validates(server, s, t1)
        assert read(server, s["id"], t0).status_code == 200
        r = server.get("/validate", headers={"Cookie": "session=%s" % t0})
        assert r.status_code == 200
        time.sleep(0.5)
    assert live([server], s, tok)
    time.sleep(1.2)
    assert counted(server, REUSE) == before


def test_refresh_with_previous_token_in_grace_returns_the_same_token(server, user):
    tok = make_token(user)
    s = server.create(tok)
    t0 = s["token"]
    t1 = rotate(server, s, t0)
    for _ in range(3):
        assert rotate(server, s, t0) == t1
    r = refresh(server, s["id"], cookie=t0)
    assert check_refreshed(r, s, t0) == t1
    # nothing rotated: both still work, and the next rotation starts from t1
    assert validates(server, s, t0) and validates(server, s, t1)
    t2 = rotate(server, s, t1)
    assert t2 not in (t0, t1)
    assert validates(server, s, t2) and validates(server, s, t1)


def test_older_token_is_reuse_even_within_grace(spawn, user):
    """Two refreshes in a row (the second with the newest token): the
    first token, two generations old, closes the session at once, however
    large the grace."""
    srv = spawn("sessiond", env={"SESSION_REFRESH_GRACE": "300"})
    tok = make_token(user)
    s = srv.create(tok)
    t0 = s["token"]
    t1 = rotate(srv, s, t0)
    t2 = rotate(srv, s, t1)
    assert len({t0, t1, t2}) == 3
    assert len({claims(t)["jti"] for t in (t0, t1, t2)}) == 3
    # t1 is the previous token: still good, and a refresh with it answers t2
    assert rotate(srv, s, t1) == t2
    assert validates(srv, s, t1) and validates(srv, s, t2)
    assert live([srv], s, tok)
    time.sleep(1.2)
    assert counted(srv, REUSE) == 0
    # t0 is theft
    assert_unauthorized(srv.get("/validate", token=t0))
    assert_unauthorized(refresh(srv, s["id"], token=t2))
    assert_closed_everywhere([srv], s, user, tok, [t2, t1, t0])
    assert_reuse_counted_once([srv], s, user, [tok, t0, t1, t2])


def use_validate(srv, s, t):
    return srv.get("/validate", token=t)


def use_validate_cookie(srv, s, t):
    return srv.get("/validate", headers={"Cookie": "session=%s" % t})


def use_read(srv, s, t):
    return srv.get("/session/%s" % s["id"], token=t)


def use_list(srv, s, t):
    return srv.get("/users/%s/sessions" % q(s["user_id"]), token=t)


def use_refresh(srv, s, t):
    return refresh(srv, s["id"], token=t)


REUSES = {"validate": use_validate, "validate_cookie": use_validate_cookie, "read": use_read,
          "list": use_list, "refresh": use_refresh}


@pytest.mark.parametrize("how", sorted(REUSES))
def test_previous_token_after_grace_is_reuse(spawn, user, how):
    srv = spawn("sessiond", env={"SESSION_REFRESH_GRACE": "1"})
    tok = make_token(user)
    s = srv.create(tok)
    other = srv.create(tok)
    t0 = s["token"]
    t1 = rotate(srv, s, t0)
    # grace 1, judged to the second, may end up to 1 s late
    time.sleep(3.5)
    assert live([srv], s, tok)
    r = REUSES[how](srv, s, t0)
    assert_problem(r, 401)
    assert_closed_everywhere([srv], s, user, tok, [t1, t0])
    assert_unauthorized(refresh(srv, s["id"], token=t1))
    assert_reuse_counted_once([srv], s, user, [tok, t0, t1])
    # nothing else of the user was touched
    assert validates(srv, other, other["token"])


def test_grace_zero(spawn, user):
    srv = spawn("sessiond", env={"SESSION_REFRESH_GRACE": "0"})
    tok = make_token(user)
    s = srv.create(tok)
    t0 = s["token"]
    t1 = rotate(srv, s, t0)
    time.sleep(2.5)
    assert live([srv], s, tok)
    assert_unauthorized(refresh(srv, s["id"], token=t0))
    assert_closed_everywhere([srv], s, user, tok, [t1, t0])
    assert_reuse_counted_once([srv], s, user, [tok, t0, t1])


def test_tokens_never_refreshed_are_not_reuse(spawn, user):
    """With no grace at all, a session never refreshed keeps its one token
    as in v1: used again and again, on every route, long after creation."""
    srv = spawn("sessiond", env={"SESSION_REFRESH_GRACE": "0"})
    tok = make_token(user)
    s = srv.create(tok)
    t0 = s["token"]
    for _ in range(3):
        time.sleep(1.1)
        assert validates(srv, s, t0)
        assert read(srv, s["id"], t0).status_code == 200
        assert use_list(srv, s, t0).status_code == 200
    assert live([srv], s, tok)
    time.sleep(1.2)
    assert counted(srv, REUSE) == 0
    # and it is the current token: a refresh with it rotates
    t1 = rotate(srv, s, t0)
    assert validates(srv, s, t1)


# ---------------------------------------------------------------- who may refresh

def test_caller_token_is_403(server, user):
    tok = make_token(user)
    s = server.create(tok)
    assert_problem(refresh(server, s["id"], token=tok), 403)
    assert_problem(refresh(server, s["id"], token=admin_token()), 403)
    # nothing changed: the token is still the current one
    assert validates(server, s, s["token"])
    t1 = rotate(server, s, s["token"])
    assert validates(server, s, t1) and validates(server, s, s["token"])


def test_another_sessions_token_is_404(server, user):
    tok = make_token(user)
    a, b = server.create(tok), server.create(tok)
    c = server.create(make_token(uid("other")))
    for t in (b["token"], c["token"]):
        assert_problem(refresh(server, a["id"], token=t), 404)
        assert_problem(refresh(server, a["id"], cookie=t), 404)
    for x in (a, b, c):
        assert validates(server, x, x["token"])
    # a's token was not rotated by those attempts; b's was not either
    t1 = rotate(server, a, a["token"])
    assert validates(server, a, t1) and validates(server, b, b["token"])


def test_no_live_session_is_404(server, user):
    tok = make_token(user)
    s = server.create(tok)
    gone = server.create(tok)
    assert server.delete("/session/%s" % gone["id"], token=tok).status_code == 204
    for sid in (gone["id"], "A" * 22, "B" * 31):
        assert_problem(refresh(server, sid, token=s["token"]), 404)
    for bad in ("x", "a" * 65, "%21%21%21%21%21%21%21%21%21%21%21%21%21%21%21%21%21%21%21%21%21%21"):
        assert_problem(refresh(server, bad, token=s["token"]), 404)
    # the route is there: the session's own id refreshes
    assert validates(server, s, s["token"])
    t1 = rotate(server, s, s["token"])
    assert validates(server, s, t1)


def test_closed_sessions_token_is_401(server, user):
    tok = make_token(user)
    before = counted(server, REUSE)
    one = server.create(tok)
    assert server.delete("/session/%s" % one["id"], token=tok).status_code == 204
    assert_unauthorized(refresh(server, one["id"], token=one["token"]))
    # a refreshed session, then closed: its tokens are all refused
    two = server.create(tok)
    t1 = rotate(server, two, two["token"])
    three = server.create(tok)
    r = server.delete("/users/%s/sessions" % q(user), token=tok)
    assert assert_json(r, 200) == {"closed": 2}
    for s, t in ((two, t1), (two, two["token"]), (three, three["token"])):
        assert_unauthorized(refresh(server, s["id"], token=t))
        r = refresh(server, s["id"], cookie=t)
        assert_problem(r, 401)
    time.sleep(1.2)
    assert counted(server, REUSE) == before


def test_no_credentials_is_401(server, user):
    s = server.create(make_token(user))
    assert_unauthorized(refresh(server, s["id"]), token_presented=False)
    assert_unauthorized(refresh(server, s["id"], token=make_token(user, secret="w" * 48)))
    assert_unauthorized(refresh(server, s["id"], token="garbage.token.here"))
    assert validates(server, s, s["token"])


def test_cookie(server, spawn, user):
    tok = make_token(user)
    s = server.create(tok)
    t1 = check_refreshed(refresh(server, s["id"], cookie=s["token"]), s, s["token"])
    assert validates(server, s, t1)
    # a cookie named by SESSION_COOKIE
    srv = spawn("sessiond", env={"SESSION_COOKIE": "sid_cookie"})
    s2 = srv.create(tok)
    assert_problem(refresh(srv, s2["id"], cookie=s2["token"]), 401)  # "session" is not read
    r = refresh(srv, s2["id"], cookie=s2["token"], cookie_name="sid_cookie")
    t2 = check_refreshed(r, s2, s2["token"])
    assert validates(srv, s2, t2)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_only_post(server, user, method):
    tok = make_token(user)
    s = server.create(tok)
    for t in (s["token"], tok):
        r = server.request(method, "/session/%s/refresh" % s["id"], token=t)
        assert_problem(r, 405)
        assert allow_set(r) == {"POST"}, r.headers.get("Allow")
    # nothing rotated
    assert validates(server, s, s["token"])
    assert live([server], s, tok)


def test_refresh_in_the_split_processes(spawn, tmp_path, user):
    """createSession serves the refresh, readSession and closeSession answer
    404 for it; an old token used through readSession closes the session
    for all three."""
    store = tmp_path / "shared"
    c, r, d = (spawn(name, store=store) for name in ("createSession", "readSession",
                                                      "closeSession"))
    procs = [c, r, d]
    tok = make_token(user)
    s = c.create(tok)
    t0 = s["token"]
    for other in (r, d):
        for method in ("POST", "GET"):
            resp = other.request(method, "/session/%s/refresh" % s["id"], token=t0)
            assert_problem(resp, 404)
    resp = c.get("/session/%s/refresh" % s["id"], token=t0)
    assert_problem(resp, 405)
    assert allow_set(resp) == {"POST"}
    t1 = rotate(c, s, t0)
    assert validates(r, s, t1) and validates(r, s, t0)
    t2 = rotate(c, s, t1)
    assert validates(r, s, t2) and validates(r, s, t1)
    assert rotate(c, s, t1) == t2
    time.sleep(1.2)
    assert reuse_total(procs) == 0
    # t0 (two generations old) through readSession: theft
    assert_unauthorized(read(r, s["id"], t0))
    assert_unauthorized(refresh(c, s["id"], token=t2))
    assert_unauthorized(d.delete("/session/%s" % s["id"], token=t2))
    assert_closed_everywhere([r], s, user, tok, [t2, t1, t0])
    assert_problem(d.delete("/session/%s" % s["id"], token=tok), 404)
    assert_reuse_counted_once(procs, s, user, [tok, t0, t1, t2], where=1)


# ---------------------------------------------------------------- use

def test_refresh_counts_as_use(server, user):
    """idle_timeout 3, refreshed every 1.5 s for 7.5 s (and nothing else):
    it stays live."""
    tok = make_token(user)
    s = server.create(tok, {"idle_timeout": 3})
    t = s["token"]
    end = time.time() + 7.5
    n = 0
    while time.time() < end:
        time.sleep(1.5)
        r = refresh(server, s["id"], token=t)
        assert r.status_code == 200, "refresh %d refused: %s" % (n, r.text[:200])
        t = check_refreshed(r, s, t)
        n += 1
    assert n >= 4
    assert validates(server, s, t)
    assert live([server], s, tok)


def test_refresh_of_an_idle_ended_session_is_401(server, user):
    tok = make_token(user)
    before = time.time()
    s = server.create(tok, {"idle_timeout": 2})
    deadline = before + 2 + 2 + 2.5
    assert wait_until(lambda: read(server, s["id"], tok).status_code == 404,
                      timeout=deadline - time.time(), interval=0.25), \
        "idle session not gone %.1f s after creation" % (time.time() - before)
    assert_unauthorized(refresh(server, s["id"], token=s["token"]))


# ---------------------------------------------------------------- concurrency

def rounds_of_concurrent_refreshes(procs, s, tok, checkers, rounds=3):
    """Each round: 24 refreshes at once through procs with the newest token;
    every one answers 200 with one and the same new token, and the token of
    the round before stays good through each of checkers (it is only the
    previous one: rotated once). Answers every token, oldest first."""
    tokens = [s["token"]]
    for k in range(rounds):
        answers = refresh_at_once(procs, s["id"], tokens[-1])
        assert sorted({a.status_code for a in answers}) == [200], \
            [(a.status_code, a.text[:120]) for a in answers if a.status_code != 200][:5]
        got = {a.json()["token"] for a in answers}
        assert len(got) == 1, "round %d: %d different tokens" % (k, len(got))
        new = check_refreshed(answers[0], s, tokens[-1])
        assert new not in tokens
        for a in answers:
            assert no_store(a)
        tokens.append(new)
        for p in checkers:
            assert validates(p, s, tokens[-2]), "round %d: the presented token " \
                "stopped working (rotated more than once?)" % k
            assert validates(p, s, tokens[-1])
        assert live(checkers, s, tok)
    time.sleep(1.2)
    assert reuse_total(procs) == 0
    return tokens


@pytest.mark.concurrency
def test_concurrent_refreshes_rotate_once(spawn, user):
    srv = spawn("sessiond", env={"SESSION_REFRESH_GRACE": "300"})
    tok = make_token(user)
    s = srv.create(tok)
    tokens = rounds_of_concurrent_refreshes([srv], s, tok, [srv])
    # the first token is now several generations old: theft
    assert_unauthorized(srv.get("/validate", token=tokens[0]))
    assert_closed_everywhere([srv], s, s["user_id"], tok, tokens[::-1])
    assert_reuse_counted_once([srv], s, s["user_id"], [tok] + tokens)


@pytest.mark.concurrency
def test_concurrent_refreshes_across_processes_rotate_once(spawn, tmp_path, user):
    store = tmp_path / "shared"
    env = {"SESSION_REFRESH_GRACE": "300"}
    procs = [spawn("sessiond", env=env, store=store),
             spawn("createSession", env=env, store=store)]
    tok = make_token(user)
    s = procs[1].create(tok)
    # createSession cannot validate: the tokens are checked through sessiond
    tokens = rounds_of_concurrent_refreshes(procs, s, tok, procs[:1])
    # a refresh through createSession with the first token: theft
    assert_unauthorized(refresh(procs[1], s["id"], token=tokens[0]))
    assert_unauthorized(refresh(procs[1], s["id"], token=tokens[-1]))
    assert_closed_everywhere(procs[:1], s, user, tok, tokens[::-1])
    assert_reuse_counted_once(procs, s, user, [tok] + tokens, where=1)
