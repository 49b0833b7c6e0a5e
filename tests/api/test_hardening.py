"""Hardening against hostile clients: framing errors that must stop a
connection, attacks on other users' sessions and on session ids, and
secrets in logs (API.md "Responses and errors", "Authentication",
"GET /session/{id}", "DELETE /session/{id}"; CONTRACT-NOTES "Limits").

What the rest of the suite already covers is not repeated here: the statuses
of most framing errors (test_errors_http.py), pipelined GETs in order
(test_errors_http.py), two racing closes (test_read_close.py), 50 racing
closes across Redis instances (test_redis.py), the `{"id": ...}` body field
(test_create.py).  This module adds what an attacker would try next: bytes
sent after a bad request in the same write, 100 closes at once on both
stores and across processes, 1,000 creates at once, ids offered by the
client in every other place, and every 16-character piece of every token
looked for in debug logs and answers.
"""

import hashlib
import json
import re
import socket
import threading
import time

import pytest

import apitools
from apitools import (ID_RE, SECRET, RawConn, admin_token, answered_despite_resets,
                      assert_json, assert_problem, assert_unauthorized, decode_token, hand_token, http_request_bytes,
                      make_token, q, std_claims, uid)


@pytest.fixture
def library_pages():
    """For requests libmicrohttpd refuses itself with its HTML page (CONTRACT-NOTES
    "Limits": right status, closed connection, not problem+json)."""
    apitools.LIBRARY_PAGES_ALLOWED = True
    yield
    apitools.LIBRARY_PAGES_ALLOWED = False


def bearer(token):
    return "Authorization: Bearer %s\r\n" % token


def created_total(srv):
    return srv.metrics().value("sessiond_sessions_created_total")


def listed_ids(srv, user, token):
    r = srv.get("/users/%s/sessions" % q(user), token=token)
    return [s["id"] for s in assert_json(r, 200)["sessions"]]


def fake_id():
    """A well-formed id (22 characters of the id alphabet) that was never issued."""
    return ("Zz9-" + uid("x").replace("-", "_") + "Q" * 22)[:22]


# ==========================================================================
# framing: a bad request stops the connection; nothing sent after it runs
# ==========================================================================

# (name, head of a bad request, expected status).  Each is sent together
# with a valid request in the same write; the valid request must not run.
# Heads that libmicrohttpd answers itself (with its own HTML page) are
# marked; all must close the connection.
BAD_HEADS = [
    ("bad-chunk-size",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
     "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ("negative-chunk-size",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
     "Transfer-Encoding: chunked\r\n\r\n-2\r\n{{}}\r\n0\r\n\r\n", 400),
    ("chunk-data-longer-than-its-size",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
     "Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}xyz\r\n0\r\n\r\n", 400),
    ("space-before-colon",
     "GET /healthz HTTP/1.1\r\nHost: x\r\nName : v\r\n\r\n", 400),
    ("space-before-colon-in-content-length",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Content-Length : 2\r\n\r\n{{}}", 400),
    ("space-before-colon-in-transfer-encoding",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding : chunked\r\n\r\n"
     "0\r\n\r\n", 400),
    ("obs-fold-as-first-header-line",
     "GET /healthz HTTP/1.1\r\n folded: y\r\nHost: x\r\n\r\n", 400),
    ("missing-host",
     "GET /healthz HTTP/1.1\r\n\r\n", 400),
    ("missing-host-on-a-write",
     "POST /session HTTP/1.1\r\n{auth}Content-Length: 0\r\n\r\n", 400),
    ("two-hosts",
     "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("header-without-colon",
     "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400),
    ("content-length-not-a-number",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 1x\r\n\r\n", 400),
    ("two-content-lengths",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
     "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{{}}", 400),
    ("content-length-and-chunked",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
     "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ("transfer-encoding-list",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked, identity\r\n"
     "\r\n0\r\n\r\n", 400),
    ("transfer-encoding-gzip",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: gzip\r\n\r\n", 400),
    ("bad-request-line",
     "GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    ("body-over-16-kib-announced",
     "POST /session HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
     "Content-Length: 99999\r\n\r\n{{}}", 413),
    ("headers-over-8-kib",
     "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + "p" * 9000 + "\r\n\r\n", 431),
]


def read_until_closed(conn, timeout):
    """Every byte the server sends until it closes (None if still open at timeout)."""
    return conn.buf if conn.wait_closed(timeout) else None


def bad_then(port, head, follow, status):
    """Sends head + follow in one write.  Asserts: exactly one answer (the
    expected status), then the connection is closed with no second answer."""
    with RawConn(port, timeout=5) as conn:
        conn.try_send(head + follow)
        first = conn.read_response()
        assert first is not None, "closed without answering the bad request"
        assert first.status == status, "expected %d, got %r" % (status, first)
        rest = read_until_closed(conn, 4.0)
        assert rest is not None, ("connection still open 4 s after answering %d to a "
                                  "framing error (it must close)" % status)
        # libmicrohttpd 0.9.75 may repeat its own page's header block (known,
        # test_errors_http.py::test_framing_errors_answered_by_the_library);
        # no other answer may follow.
        for m in re.finditer(rb"HTTP/1\.[01] (\d{3})", rest):
            assert m.group(1) == b"%d" % status, \
                "a second answer followed the bad request: %r" % rest[:300]


@pytest.mark.parametrize("name,head,status", BAD_HEADS, ids=[c[0] for c in BAD_HEADS])
def test_nothing_after_a_bad_request_runs_create(server, user, library_pages, name, head,
                                                 status):
    tok = make_token(user)
    before = created_total(server)
    follow = http_request_bytes("POST", "/session", {
        "Authorization": "Bearer %s" % tok, "Content-Type": "application/json"},
        b'{"data": {"smuggled": true}}')
    bad_then(server.port, head.format(auth=bearer(tok)).encode("latin-1"), follow, status)
    time.sleep(0.1)
    assert listed_ids(server, user, tok) == [], "the request after a %s ran" % name
    assert created_total(server) == before


@pytest.mark.parametrize("name,head,status", BAD_HEADS, ids=[c[0] for c in BAD_HEADS])
def test_nothing_after_a_bad_request_runs_close(server, user, library_pages, name, head,
                                                status):
    tok = make_token(user)
    victim = server.create(tok)
    follow = http_request_bytes("DELETE", "/session/%s" % victim["id"],
                                {"Authorization": "Bearer %s" % tok})
    bad_then(server.port, head.format(auth=bearer(tok)).encode("latin-1"), follow, status)
    time.sleep(0.1)
    assert assert_json(server.get("/session/%s" % victim["id"], token=tok), 200)["id"] == \
        victim["id"], "the DELETE after a %s ran" % name
    assert server.get("/validate", token=victim["token"]).status_code == 200


# libmicrohttpd 0.9.75 appends an obs-fold continuation line to a copy of the
# header NAME ("User-Agent: abc" CRLF SP "def" becomes a field named
# "User-Agentdef" with value "abc"); the service detects that (the value no
# longer follows its name, http.c folded_line) and refuses the request.


@pytest.mark.parametrize("fold", ["User-Agent: abc\r\n def\r\n", "X-Note: abc\r\n\tdef\r\n",
                                  "X-Note: a\r\n b\r\n c\r\n", "X-Empty:\r\n def\r\n"],
                         ids=["space", "tab", "two-lines", "empty-first-line"])
def test_obs_fold_is_refused(server, user, fold):
    """RFC 9112 5.2: a server may refuse a folded line with 400 (the
    service does, on any header) -- and nothing is created."""
    tok = make_token(user)
    before = listed_ids(server, user, tok)
    req = ("POST /session HTTP/1.1\r\nHost: x\r\n%s%s\r\n" % (bearer(tok), fold)).encode()
    with RawConn(server.port) as conn:
        conn.send(req)
        resp = conn.read_response()
        assert resp is not None and resp.status == 400, resp
        assert resp.header("content-type") == "application/problem+json"
        assert "obs-fold" in resp.json()["detail"]
        assert conn.wait_closed(3)
    assert listed_ids(server, user, tok) == before


def test_obs_fold_cannot_hide_content_length(server, user):
    """Content-Length: N CRLF SP x is, joined, the invalid value 'N x' (400);
    refused, 400 as well.  Either way the bytes of the announced body must
    never run as a request of their own.  (libmicrohttpd 0.9.75 makes the
    header 'Content-Lengthx', see test_obs_fold_is_refused.)"""
    tok = make_token(user)
    victim = server.create(tok)
    inner = http_request_bytes("DELETE", "/session/%s" % victim["id"],
                               {"Authorization": "Bearer %s" % tok})
    req = ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
           "Content-Length: %d\r\n x\r\n\r\n" % (bearer(tok), len(inner))).encode() + inner
    with RawConn(server.port, timeout=3) as conn:
        conn.try_send(req)
        try:
            first = conn.read_response()
        except (socket.timeout, TimeoutError):
            first = None
    time.sleep(0.1)
    still = server.get("/session/%s" % victim["id"], token=tok).status_code
    assert still == 200, "the bytes of a folded Content-Length's body ran as a request: " \
                         "victim session closed (first answer %r)" % (first,)
    assert first is not None and first.status == 400, first
    assert listed_ids(server, user, tok) == [victim["id"]]


@pytest.mark.concurrency
def test_pipelined_writes_and_reads_run_in_order(server, user):
    """One write holding creates, a list, a close and reads of the closed
    session: answered in order, each seeing the effects of the ones before
    (writes wait in the commit queue while the connection is suspended)."""
    tok = make_token(user)
    old = server.create(tok)
    h = {"Authorization": "Bearer %s" % tok}
    hj = dict(h, **{"Content-Type": "application/json"})
    reqs = [
        http_request_bytes("POST", "/session", hj, b'{"data": {"n": 1}}'),
        http_request_bytes("POST", "/session", hj, b'{"data": {"n": 2}}'),
        http_request_bytes("GET", "/users/%s/sessions" % q(user), h),
        http_request_bytes("DELETE", "/session/%s" % old["id"], h),
        http_request_bytes("GET", "/session/%s" % old["id"], h),
        http_request_bytes("GET", "/validate", {"Authorization": "Bearer %s" % old["token"]}),
        http_request_bytes("POST", "/session", hj, b'{"data": {"n": 3}}'),
        http_request_bytes("GET", "/users/%s/sessions" % q(user), h),
    ]
    with RawConn(server.port, timeout=10) as conn:
        conn.send(b"".join(reqs))
        answers = [conn.read_response() for _ in reqs]
    assert [a.status for a in answers] == [201, 201, 200, 204, 404, 401, 201, 200], answers
    one, two, three = answers[0].json(), answers[1].json(), answers[6].json()
    assert (one["data"], two["data"], three["data"]) == ({"n": 1}, {"n": 2}, {"n": 3})
    first_list = {s["id"] for s in answers[2].json()["sessions"]}
    assert first_list == {old["id"], one["id"], two["id"]}
    last_list = {s["id"] for s in answers[7].json()["sessions"]}
    assert last_list == {one["id"], two["id"], three["id"]}


# ==========================================================================
# other users' sessions, closed tokens, races, ids
# ==========================================================================

def _without_date(resp):
    return sorted((k.lower(), v) for k, v in resp.headers.items() if k.lower() != "date")


def test_foreign_session_404_is_byte_identical_to_unknown_ids(server, user):
    """Reading or closing another user's live session answers exactly what an
    id that never existed, a closed id or a malformed id answers."""
    tok = make_token(user)
    mine = server.create(tok)
    gone = server.create(tok)
    assert server.delete("/session/%s" % gone["id"], token=tok).status_code == 204
    intruder_user = uid()
    intruder_session = server.create(make_token(intruder_user))
    for intruder in (make_token(intruder_user), intruder_session["token"]):
        for method in ("GET", "DELETE"):
            answers = {}
            for what, sid in (("foreign live", mine["id"]), ("never issued", fake_id()),
                              ("closed", gone["id"]), ("malformed", "abc"),
                              ("too long", "A" * 65)):
                r = server.request(method, "/session/%s" % sid, token=intruder)
                assert_problem(r, 404)
                answers[what] = (r.status_code, r.content, _without_date(r))
            ref = answers["foreign live"]
            for what, ans in answers.items():
                assert ans == ref, "%s %s (%s) differs from a foreign session's 404:\n%r\n%r" % (
                    method, what, "session token" if intruder is intruder_session["token"]
                    else "caller token", ans, ref)
    # the intruder's attempts changed nothing
    assert assert_json(server.get("/session/%s" % mine["id"], token=tok), 200)["id"] == mine["id"]
    assert server.get("/validate", token=mine["token"]).status_code == 200


SPLIT = ("createSession", "readSession", "closeSession")


@pytest.fixture
def quartet(spawn, tmp_path):
    """sessiond and the three split processes on one store."""
    store = tmp_path / "shared"
    procs = {"sessiond": spawn("sessiond", store=store)}
    for name in SPLIT:
        procs[name] = spawn(name, store=store)
    return procs


def _routes_of(name, user, other_id):
    u = q(user)
    create = [("POST", "/session")]
    read = [("GET", "/session/%s" % other_id), ("GET", "/users/%s/sessions" % u),
            ("GET", "/validate")]
    close = [("DELETE", "/session/%s" % other_id), ("DELETE", "/users/%s/sessions" % u)]
    return {"sessiond": create + read + close, "createSession": create,
            "readSession": read, "closeSession": close}[name]


@pytest.mark.concurrency
def test_closed_session_token_refused_by_every_process(quartet, user):
    tok = make_token(user)
    c = quartet["createSession"]
    keep = c.create(tok)
    by_close = c.create(tok, {"data": {"closed_by": "closeSession"}})
    by_sessiond = c.create(tok, {"data": {"closed_by": "sessiond"}})
    by_close_all = c.create(tok)
    for s in (by_close, by_sessiond, by_close_all):
        assert quartet["readSession"].get("/validate", token=s["token"]).status_code == 200
    assert quartet["closeSession"].delete("/session/%s" % by_close["id"],
                                          token=tok).status_code == 204
    assert quartet["sessiond"].delete("/session/%s" % by_sessiond["id"],
                                      token=tok).status_code == 204
    r = quartet["closeSession"].delete("/users/%s/sessions?except=%s" % (q(user), keep["id"]),
                                       token=tok)
    assert assert_json(r, 200) == {"closed": 1}
    # at once (no waiting): every process, every route it serves
    for s in (by_close, by_sessiond, by_close_all):
        for name, srv in quartet.items():
            for method, path in _routes_of(name, user, keep["id"]):
                assert_unauthorized(srv.request(method, path, token=s["token"]))
            if name in ("sessiond", "readSession"):
                assert_unauthorized(srv.get("/validate",
                                            headers={"Cookie": "session=%s" % s["token"]}))
                assert_problem(srv.get("/session/%s" % s["id"], token=tok), 404)
    # and nothing was changed by the refused attempts
    for name in ("sessiond", "readSession"):
        assert listed_ids(quartet[name], user, tok) == [keep["id"]]
        assert quartet[name].get("/validate", token=keep["token"]).status_code == 200


def _fire_together(reqs, timeout=20):
    """Each (port, bytes) on its own connection, opened beforehand, sent at one
    moment (a barrier); the answers' statuses in order ("closed" when none)."""
    conns = [RawConn(port, timeout=timeout) for port, _ in reqs]
    barrier = threading.Barrier(len(conns))
    out = [None] * len(conns)

    def go(i):
        try:
            barrier.wait(timeout)
            conns[i].send(reqs[i][1])
            resp = conns[i].read_response()
            out[i] = resp.status if resp is not None else "closed"
        except Exception as exc:  # noqa: BLE001 - reported through the statuses
            out[i] = repr(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 10)
    for cn in conns:
        cn.close()
    return out


@pytest.mark.concurrency
def test_100_concurrent_closes_give_exactly_one_204(spawn, tmp_path, user):
    """100 DELETEs of one session at one moment, spread over sessiond and
    closeSession on one store, from the owner and administrators: one 204,
    99 404s, and the session is closed exactly once (counters)."""
    store = tmp_path / "shared"
    a = spawn("sessiond", store=store)
    b = spawn("closeSession", store=store)
    tok = make_token(user)
    for _ in range(2):
        s = a.create(tok)
        closed_before = sum(x.metrics().value("sessiond_sessions_closed_total") for x in (a, b))
        reqs = []
        for i in range(100):
            caller = tok if i % 2 else admin_token()
            reqs.append(((a, b)[i % 2].port, http_request_bytes(
                "DELETE", "/session/%s" % s["id"],
                {"Authorization": "Bearer %s" % caller, "Connection": "close"})))
        statuses = _fire_together(reqs)
        assert statuses.count(204) == 1 and statuses.count(404) == 99, \
            "100 concurrent closes of one session: %s" % sorted(map(str, statuses))
        closed_after = sum(x.metrics().value("sessiond_sessions_closed_total") for x in (a, b))
        assert closed_after - closed_before == 1
        assert_problem(a.get("/session/%s" % s["id"], token=tok), 404)
        assert_unauthorized(a.get("/validate", token=s["token"]))
    assert listed_ids(a, user, tok) == []


@pytest.mark.concurrency
def test_1000_concurrent_creates_give_1000_distinct_readable_ids(spawn):
    """1,000 creates in flight at once (one connection each): 1,000 distinct,
    well-formed ids, every one readable, listed and validating."""
    srv = spawn("sessiond", env={"CONNECTION_LIMIT": "2000"})
    users = [uid() for _ in range(10)]
    toks = {u: make_token(u) for u in users}
    conns = []
    try:
        for i in range(1000):
            conns.append((users[i % 10], RawConn(srv.port, timeout=30)))
        payloads = [http_request_bytes(
            "POST", "/session", {"Authorization": "Bearer %s" % toks[u],
                                 "Content-Type": "application/json"},
            json.dumps({"data": {"i": i}}).encode()) for i, (u, _) in enumerate(conns)]
        for (u, cn), p in zip(conns, payloads):
            cn.send(p)
        answers = [(u, cn.read_response()) for u, cn in conns]
    finally:
        for _, cn in conns:
            cn.close()
    bad = [(i, a) for i, (_, a) in enumerate(answers) if a is None or a.status != 201]
    assert not bad, "%d of 1000 creates failed, e.g. %r" % (len(bad), bad[:3])
    docs = [(u, a.json()) for u, a in answers]
    ids = [d["id"] for _, d in docs]
    assert len(set(ids)) == 1000, "only %d distinct ids" % len(set(ids))
    assert all(ID_RE.match(i) for i in ids)
    assert [d["data"]["i"] for _, d in docs] == list(range(1000))
    assert len({decode_token(d["token"])["jti"] for _, d in docs}) == 1000
    for (u, d), (_, a) in zip(docs, answers):
        assert d["user_id"] == u and a.header("Location") == "/session/%s" % d["id"]
    # every one readable and validating (pipelined on one connection per user)
    for u in users:
        mine = [d for uu, d in docs if uu == u]
        h = {"Authorization": "Bearer %s" % toks[u]}
        with RawConn(srv.port, timeout=30) as cn:
            cn.send(b"".join(http_request_bytes("GET", "/session/%s" % d["id"], h)
                             for d in mine))
            got = [cn.read_response() for _ in mine]
            cn.send(b"".join(http_request_bytes(
                "GET", "/validate", {"Authorization": "Bearer %s" % d["token"]}) for d in mine))
            valid = [cn.read_response() for _ in mine]
        assert [g.status for g in got] == [200] * len(mine)
        assert [g.json()["data"] for g in got] == [d["data"] for d in mine]
        assert [v.header("X-Session-Id") for v in valid] == [d["id"] for d in mine]
        assert sorted(listed_ids(srv, u, toks[u])) == sorted(d["id"] for d in mine)


def test_client_supplied_id_is_never_adopted(server, user):
    tok = make_token(user)
    offered = fake_id()
    seen = set()

    def fresh(r):
        doc = assert_json(r, 201)
        assert doc["id"] != offered and ID_RE.match(doc["id"])
        assert doc["id"] not in seen
        seen.add(doc["id"])
        assert decode_token(doc["token"])["sid"] == doc["id"]
        assert r.headers.get("Location") == "/session/%s" % doc["id"]
        return doc

    # in the body: an unknown field (400), or plain data
    for field in ("id", "sid", "session_id", "Id"):
        assert_problem(server.post("/session", token=tok, json={field: offered}), 400)
    doc = fresh(server.post("/session", token=tok, json={"data": {"id": offered}}))
    assert doc["data"] == {"id": offered}
    # in headers and cookies
    for headers in ({"X-Session-Id": offered}, {"Session-Id": offered},
                    {"X-Request-Id": offered}, {"Location": "/session/%s" % offered},
                    {"Cookie": "session=%s; sid=%s; id=%s" % (offered, offered, offered)},
                    {"If-Match": '"%s"' % offered}):
        fresh(server.post("/session", token=tok, headers=headers))
    # in the query string
    for query in ("id", "sid", "session_id", "session", "except"):
        r = server.post("/session?%s=%s" % (query, offered), token=tok)
        if r.status_code != 201:
            assert 400 <= r.status_code < 500, r.status_code
            continue
        fresh(r)
    # in the path: a write to /session/{id} is not a create
    r = server.request("POST", "/session/%s" % offered, token=tok)
    assert_problem(r, 405)
    r = server.request("PUT", "/session/%s" % offered, token=tok,
                       json={"data": {}}, headers={"Content-Type": "application/json"})
    assert_problem(r, 405)
    # as the caller: a session token (sid = an existing session), and a
    # correctly signed token whose sid names the offered id
    base = fresh(server.post("/session", token=tok))
    assert_problem(server.post("/session", token=base["token"]), 403)  # v2: never a child
    assert_unauthorized(server.post("/session", token=make_token(user, sid=offered)))
    # the offered id never became a session, and no session was made twice
    assert_problem(server.get("/session/%s" % offered, token=tok), 404)
    assert_problem(server.get("/session/%s" % offered, token=admin_token()), 404)
    assert sorted(listed_ids(server, user, tok)) == sorted(seen)


# ==========================================================================
# secrets: no token fragment or secret in debug logs or answers
# ==========================================================================

FRAGMENT = 16


def windows(text, n=FRAGMENT):
    return {text[i:i + n] for i in range(len(text) - n + 1)} if len(text) >= n else set()


def token_fragments(token, segments=(0, 1, 2)):
    out = set()
    parts = token.split(".")
    for i, seg in enumerate(parts):
        if i in segments or i >= 3:
            out |= windows(seg)
    if len(parts) < 3:
        out |= windows(token)
    return out


class Recorder:
    """Sends raw requests, keeps (presented tokens, answer bytes) for the scan."""

    def __init__(self, srv):
        self.srv = srv
        self.presented = []       # every token a request carried, in order
        self.answers = []         # (index into presented at that time, answer bytes)

    def send(self, raw, tokens, keep_open=False):
        self.presented.extend(t for t in tokens if t)
        with RawConn(self.srv.port, timeout=5) as cn:
            cn.try_send(raw)
            try:
                resp = cn.read_response()
            except (socket.timeout, TimeoutError, AssertionError):
                resp = None
            if resp is not None:
                cn.wait_closed(0.05)
                blob = b"%d %s\r\n" % (resp.status, resp.reason.encode("latin-1"))
                blob += "\r\n".join("%s: %s" % hv for hv in resp.headers).encode("latin-1")
                blob += b"\r\n\r\n" + resp.body + cn.buf
                self.answers.append((len(self.presented), blob))
        return resp

    def req(self, method, path, token=None, cookie=None, headers=None, body=b"",
            auth_value=None, tokens=()):
        h = dict(headers or {})
        if auth_value is not None:
            h["Authorization"] = auth_value
        elif token is not None:
            h["Authorization"] = "Bearer %s" % token
        if cookie is not None:
            h["Cookie"] = cookie
        if body and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        return self.send(http_request_bytes(method, path, h, body),
                         [token] + list(tokens))


def drive_every_route(rec, user):
    """Every route with each kind of answer (and of refusal) through rec,
    each answer's status checked. Returns every token used."""
    tok = make_token(user)
    other_user = uid()
    other = make_token(other_user)
    adm = admin_token()
    bad = {
        "wrong secret": make_token(user, secret="w" * 48),
        "expired": make_token(user, exp_in=-3600),
        "alg none": hand_token({"alg": "none", "typ": "JWT"}, std_claims(user), sig=""),
        "alg HS384": hand_token({"alg": "HS384", "typ": "JWT"}, std_claims(user),
                                digest=hashlib.sha384),
        "tampered signature": tok[:-6] + ("AAAAAA" if not tok.endswith("AAAAAA") else "BBBBBB"),
        "forged sid": make_token(user, sid=fake_id()),
        "garbage": "Q" * 30 + ".R" + "r" * 30 + ".S" + "s" * 40,
    }
    u = q(user)

    def created(r):
        assert r is not None and r.status == 201, r
        return r.json()

    s1 = created(rec.req("POST", "/session", tok))
    s2 = created(rec.req("POST", "/session", tok, body=b'{"ttl": 600, "data": {"k": "v"}}'))
    s3 = created(rec.req("POST", "/session", adm, body=json.dumps({"user_id": user}).encode()))
    s4 = created(rec.req("POST", "/session", tok))
    expect_s1 = (rec.req("POST", "/session", s1["token"]), 403)  # a session token: v2
    closed = created(rec.req("POST", "/session", tok))
    expect = [
        expect_s1,
        # create: every error
        (rec.req("POST", "/session", tok, body=b'{"ttl": '), 400),
        (rec.req("POST", "/session", tok, body=b'{"nope": 1}'), 400),
        (rec.req("POST", "/session", tok, body=json.dumps({"user_id": other_user}).encode()),
         403),
        (rec.req("POST", "/session", tok, body=b"{}", headers={"Content-Type": "text/plain"}),
         415),
        (rec.req("POST", "/session", tok, body=b'{"data":{"x":"' + b"a" * 17000 + b'"}}'), 413),
        (rec.req("POST", "/session"), 401),
        (rec.req("PUT", "/session", tok), 405),
        # read / close
        (rec.req("GET", "/session/%s" % s1["id"], tok), 200),
        (rec.req("GET", "/session/%s" % s1["id"], s2["token"]), 200),
        (rec.req("GET", "/session/%s" % s1["id"], other), 404),
        (rec.req("GET", "/session/abc", tok), 404),
        (rec.req("DELETE", "/session/%s" % s1["id"], other), 404),
        (rec.req("DELETE", "/session/%s" % closed["id"], tok), 204),
        (rec.req("DELETE", "/session/%s" % closed["id"], tok), 404),
        (rec.req("PATCH", "/session/%s" % s1["id"], tok), 405),
        # list / close all
        (rec.req("GET", "/users/%s/sessions" % u, tok), 200),
        (rec.req("GET", "/users/%s/sessions" % u, adm), 200),
        (rec.req("GET", "/users/%s/sessions" % u, other), 403),
        (rec.req("DELETE", "/users/%s/sessions" % u, other), 403),
        (rec.req("DELETE", "/users/%s/sessions?except=%s" % (q(other_user), s1["id"]), other),
         200),
        # validate: bearer, cookie, every refusal
        (rec.req("GET", "/validate", s2["token"]), 200),
        (rec.req("GET", "/validate", cookie="a=b; session=%s; c=d" % s3["token"],
                 tokens=[s3["token"]]), 200),
        (rec.req("GET", "/validate", tok), 401),
        (rec.req("GET", "/validate", closed["token"]), 401),
        (rec.req("GET", "/validate", cookie="session=%s" % closed["token"],
                 tokens=[closed["token"]]), 401),
        (rec.req("GET", "/validate", cookie="session=%s" % bad["garbage"],
                 tokens=[bad["garbage"]]), 401),
        (rec.req("GET", "/validate"), 401),
        # unauthenticated routes, also when a token is (needlessly) presented
        (rec.req("GET", "/healthz", tok), 200),
        (rec.req("GET", "/readyz", s2["token"]), 200),
        (rec.req("GET", "/metrics", adm), 200),
        (rec.req("GET", "/no/such/path", tok), 404),
        (rec.req("DELETE", "/validate", s2["token"]), 405),
        # malformed Authorization values
        (rec.req("GET", "/users/%s/sessions" % u, auth_value="Bearer %s extra" % tok,
                 tokens=[tok]), 401),
        (rec.req("GET", "/users/%s/sessions" % u, auth_value="Basic %s" % tok,
                 tokens=[tok]), 401),
        (rec.req("GET", "/users/%s/sessions" % u, auth_value="Bearer %s," % tok,
                 tokens=[tok]), 401),
        (rec.req("GET", "/users/%s/sessions" % u, auth_value="Bearer %s" % tok[:-1],
                 tokens=[tok[:-1]]), 401),
    ]
    for name, t in bad.items():
        expect.append((rec.req("GET", "/users/%s/sessions" % u, t), 401))
        expect.append((rec.req("POST", "/session", t), 401))
        expect.append((rec.req("GET", "/validate", t), 401))
    # framing errors and oversized headers that carry a token
    auth = bearer(s4["token"])
    for raw, status in (
            ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Length: 2\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % auth, 400),
            ("GET /validate HTTP/1.1\r\n%s\r\n" % auth, 400),
            ("GET /validate HTTP/1.1\r\nHost: x\r\n%sX-Pad: %s\r\n\r\n" % (auth, "p" * 9000),
             431),
            ("POST /session HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\nzz\r\n"
             % auth, 400),
            ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Length: x%s\r\n\r\n"
             % (auth, s4["token"]), 400),
            ("GET /validate HTTP/1.1\r\nHost: x\r\nCookie : session=%s\r\n\r\n" % s4["token"],
             400)):
        expect.append((rec.send(raw.encode("latin-1"), [s4["token"]]), status))
    for i, (resp, status) in enumerate(expect):
        assert resp is not None and resp.status == status, (i, status, resp)
    return [tok, other, adm] + list(bad.values()) + [s["token"] for s in (s1, s2, s3, s4, closed)]


def test_no_token_fragment_or_secret_in_debug_logs_or_answers(spawn, user, library_pages):
    srv = spawn("sessiond", env={"LOG_LEVEL": "debug"})
    rec = Recorder(srv)
    every = drive_every_route(rec, user)
    time.sleep(0.3)
    srv.terminate()
    log = srv.stderr_text()
    logged = [json.loads(l) for l in log.splitlines() if l.startswith("{")]
    routes = {(e.get("method"), e.get("route"), e.get("status")) for e in logged}
    for want in (("POST", "/session", 201), ("POST", "/session", 400),
                 ("GET", "/users/{user_id}/sessions", 401)):
        assert want in routes, "no request log line %r: LOG_LEVEL=debug logged %d lines" % (
            want, len(logged))

    every += [t for t in rec.presented if t]
    leaks = []
    for t in set(every):
        for frag in token_fragments(t):
            if frag in log:
                leaks.append(frag)
                break
    for frag in windows(SECRET):
        if frag in log:
            leaks.append("secret:" + frag)
            break
    assert not leaks, "stderr (LOG_LEVEL=debug) holds pieces of tokens or the secret: %s\n%s" % (
        leaks[:5], log[-3000:])

    # answers: no signature piece of any token presented so far (a 201 carries
    # its own new token, whose header segment is the same for every HS256
    # token, hence the signature), and no piece of the secret
    secret_frags = windows(SECRET)
    for upto, blob in rec.answers:
        text = blob.decode("latin-1")
        for t in set(rec.presented[:upto]):
            sig = t.split(".")[2] if t.count(".") >= 2 else t
            hit = [f for f in windows(sig) if f in text]
            assert not hit, "an answer holds a piece of a presented token: %r in %r" % (
                hit[0], text[:400])
        assert not [f for f in secret_frags if f in text], "an answer holds a piece of the secret"


@pytest.mark.concurrency
def test_clients_gone_mid_batch_hold_up_no_one(spawn):
    """Requests queued together are resumed together, by the event thread of
    one of them (http.c, "waking a batch"): when that one's client hangs up
    (a reset) while its request is queued, the others are still answered.
    Whether a reset lands while a request waits depends on the store's speed;
    test_redis.py's clients_gone_while_redis_stalls makes it certain."""
    srv = spawn("sessiond", env={"SESSION_MAX_PER_USER": "0"})
    tok = make_token(uid())
    create = http_request_bytes("POST", "/session", {"Authorization": "Bearer %s" % tok})
    s = srv.create(tok)
    validate = http_request_bytes("GET", "/validate", {"Authorization": "Bearer %s" % s["token"]})
    for rnd in range(12):
        reqs = [create if (rnd + i) % 3 == 0 else validate for i in range(16)]
        # every other client resets its connection at once
        answers = answered_despite_resets(srv.port, reqs, range(1, 16, 2))
        for i, r in answers.items():
            assert r is not None and r.status in (200, 201), (rnd, i, r and r.status)
    assert srv.get("/validate", token=s["token"]).status_code == 200
