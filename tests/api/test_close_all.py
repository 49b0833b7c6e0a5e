"""DELETE /users/{user_id}/sessions — close all (API.md "close all")."""

import pytest

from apitools import (RawConn, admin_token, assert_json, assert_problem, assert_unauthorized,
                      creates_racing, http_request_bytes, make_token, q, uid)


def ids_of(server, user, token):
    r = server.get("/users/%s/sessions" % q(user), token=token)
    return [s["id"] for s in assert_json(r, 200)["sessions"]]


def close_all(server, user, token, query=""):
    return server.delete("/users/%s/sessions%s" % (q(user), query), token=token)


def test_closes_all_and_counts(server, user):
    tok = make_token(user)
    made = [server.create(tok) for _ in range(3)]
    r = close_all(server, user, tok)
    assert assert_json(r, 200) == {"closed": 3}
    assert ids_of(server, user, tok) == []
    for s in made:
        assert_problem(server.get("/session/%s" % s["id"], token=tok), 404)


def test_closed_tokens_are_refused_everywhere(server, user):
    tok = make_token(user)
    made = [server.create(tok) for _ in range(2)]
    assert assert_json(close_all(server, user, tok), 200) == {"closed": 2}
    for s in made:
        t = s["token"]
        assert_unauthorized(server.get("/validate", token=t))
        assert_unauthorized(server.get("/session/%s" % s["id"], token=t))
        assert_unauthorized(server.delete("/session/%s" % s["id"], token=t))
        assert_unauthorized(server.get("/users/%s/sessions" % user, token=t))
        assert_unauthorized(server.delete("/users/%s/sessions" % user, token=t))
        assert_unauthorized(server.post("/session", token=t))
        assert_unauthorized(server.get("/validate", headers={"Cookie": "session=%s" % t}))


def test_except_keeps_one_session(server, user):
    tok = make_token(user)
    a, b, c = (server.create(tok) for _ in range(3))
    r = close_all(server, user, tok, "?except=%s" % b["id"])
    assert assert_json(r, 200) == {"closed": 2}
    assert ids_of(server, user, tok) == [b["id"]]
    assert server.get("/validate", token=b["token"]).status_code == 200
    assert_unauthorized(server.get("/validate", token=a["token"]))
    assert_unauthorized(server.get("/validate", token=c["token"]))


def test_session_token_closes_its_other_sessions(server, user):
    """The usual "log out everywhere else": the caller's own session stays."""
    tok = make_token(user)
    mine = server.create(tok)
    others = [server.create(tok) for _ in range(2)]
    r = close_all(server, user, mine["token"], "?except=%s" % mine["id"])
    assert assert_json(r, 200) == {"closed": 2}
    assert ids_of(server, user, mine["token"]) == [mine["id"]]
    for s in others:
        assert_unauthorized(server.get("/validate", token=s["token"]))


def raw_close_all(server, user, tok, except_):
    """DELETE with ?except= exactly as given (requests would re-encode a
    malformed escape)."""
    conn = RawConn(server.port)
    try:
        conn.send(http_request_bytes("DELETE", "/users/%s/sessions?except=%s" % (q(user), except_),
                                     {"Authorization": "Bearer %s" % tok}))
        return conn.read_response()
    finally:
        conn.close()


def pct_all(s):
    return "".join("%%%02X" % b for b in s.encode())


@pytest.mark.parametrize("except_", ["AAAAAAAAAAAAAAAAAAAAAA", "not-an-id!", "", "A" * 66,
                                     "A" * 300, "A" * 600, "%41" * 70, "A" * 22 + "%00"])
def test_except_naming_no_live_session_is_ignored(server, user, except_):
    """Any value that names none of the user's live sessions, even one that
    decodes to no string an id could be (too long, a NUL byte), is ignored."""
    tok = make_token(user)
    for _ in range(2):
        server.create(tok)
    r = raw_close_all(server, user, tok, except_)
    assert r is not None and r.status == 200, r and (r.status, r.body)
    assert r.json() == {"closed": 2}
    assert ids_of(server, user, tok) == []


@pytest.mark.parametrize("how", ["plain", "encoded", "nul"])
def test_except_is_compared_decoded(server, user, how):
    """A percent-encoded except names its session however long the encoding
    (every byte as %XX); one with a NUL byte after a live id names none."""
    tok = make_token(user)
    keep = server.create(tok)
    server.create(tok)
    value = {"plain": keep["id"], "encoded": pct_all(keep["id"]),
             "nul": keep["id"] + "%00x"}[how]
    r = raw_close_all(server, user, tok, value)
    assert r is not None and r.status == 200, r and (r.status, r.body)
    if how == "nul":
        assert r.json() == {"closed": 2}
        assert ids_of(server, user, tok) == []
    else:
        assert r.json() == {"closed": 1}
        assert ids_of(server, user, tok) == [keep["id"]]


@pytest.mark.parametrize("except_", ["%zz", "%", "A" * 21 + "%4", "%G1" + "A" * 20])
def test_malformed_except_is_400_and_closes_nothing(server, user, except_):
    """Closing all but a session named in a broken encoding would close the
    one the caller meant to keep: refused."""
    tok = make_token(user)
    made = [server.create(tok)["id"] for _ in range(2)]
    r = raw_close_all(server, user, tok, except_)
    assert r is not None and r.status == 400, r and (r.status, r.body)
    assert r.header("Content-Type").startswith("application/problem+json"), r.headers
    assert "except" in r.json()["detail"], r.body
    assert sorted(ids_of(server, user, tok)) == sorted(made)


def test_except_naming_another_users_session_is_ignored(server, user):
    tok = make_token(user)
    for _ in range(2):
        server.create(tok)
    other = uid()
    foreign = server.create(make_token(other))
    r = close_all(server, user, tok, "?except=%s" % foreign["id"])
    assert assert_json(r, 200) == {"closed": 2}
    assert ids_of(server, other, make_token(other)) == [foreign["id"]]


def test_counts_only_sessions_actually_closed(server, user):
    tok = make_token(user)
    a = server.create(tok)
    server.create(tok)
    assert server.delete("/session/%s" % a["id"], token=tok).status_code == 204
    assert assert_json(close_all(server, user, tok), 200) == {"closed": 1}
    assert assert_json(close_all(server, user, tok), 200) == {"closed": 0}


def test_nothing_to_close(server, user):
    assert assert_json(close_all(server, user, make_token(user)), 200) == {"closed": 0}


def test_other_users_sessions_untouched(server, user):
    tok = make_token(user)
    server.create(tok)
    other = uid()
    kept = server.create(make_token(other))
    prefixed = server.create(make_token(user + "x"))
    assert assert_json(close_all(server, user, tok), 200) == {"closed": 1}
    assert ids_of(server, other, make_token(other)) == [kept["id"]]
    assert ids_of(server, user + "x", make_token(user + "x")) == [prefixed["id"]]


def test_other_user_is_403(server, user):
    tok = make_token(user)
    s = server.create(tok)
    assert_problem(close_all(server, user, make_token(uid())), 403)
    assert ids_of(server, user, tok) == [s["id"]]


def test_admin_closes_all(server, user):
    tok = make_token(user)
    for _ in range(2):
        server.create(tok)
    assert assert_json(close_all(server, user, admin_token()), 200) == {"closed": 2}
    assert ids_of(server, user, tok) == []


def test_user_with_slash(server):
    slashed = uid() + "/x"
    adm = admin_token()
    a = server.create(adm, {"user_id": slashed})
    b = server.create(adm, {"user_id": slashed})
    r = close_all(server, slashed, a["token"], "?except=%s" % a["id"])
    assert assert_json(r, 200) == {"closed": 1}
    assert ids_of(server, slashed, adm) == [a["id"]]
    assert_unauthorized(server.get("/validate", token=b["token"]))


@pytest.mark.concurrency
def test_close_all_during_creates_orphans_nothing(server, user):
    """Close-alls racing with creates may leave the newest sessions open, but
    every session left open is listed, and one more close-all closes it."""
    tok = make_token(user)
    made, orphans = creates_racing(server, tok, lambda: close_all(server, user, tok))
    assert not orphans, ("%d sessions created while close-alls ran are live but not "
                         "listed (close-all cannot reach them): %s" % (len(orphans),
                                                                       orphans[:5]))
    left = ids_of(server, user, tok)
    assert assert_json(close_all(server, user, tok), 200) == {"closed": len(left)}
    live = [i for i in made if server.get("/session/%s" % i, token=tok).status_code == 200]
    assert live == [], "live after a final close-all: %s" % live[:5]
