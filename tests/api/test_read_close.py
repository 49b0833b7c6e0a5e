"""GET /session/{id} and DELETE /session/{id} (API.md "read", "close")."""

import threading
import time

import pytest

from apitools import (SESSION_FIELDS, RawConn, admin_token, assert_json, assert_problem,
                      assert_unauthorized, http_request_bytes, make_token, no_store, uid)


def headers_except_date(resp):
    return sorted((k.lower(), v) for k, v in resp.headers.items()
                  if k.lower() not in ("date",))


# ---------------------------------------------------------------- read

def test_owner_reads_session(server, user):
    tok = make_token(user)
    created = server.create(tok, {"ttl": 700, "data": {"k": [1, 2]}})
    r = server.get("/session/%s" % created["id"], token=tok)
    body = assert_json(r, 200)
    assert set(body) == SESSION_FIELDS, body
    assert "token" not in body
    for key in ("id", "user_id", "created_at", "expires_at", "ip", "user_agent", "data"):
        assert body[key] == created[key], key
    assert body["last_seen_at"] >= body["created_at"]
    assert no_store(r), r.headers.get("Cache-Control")


def test_admin_reads_any_session(server, user):
    created = server.create(make_token(user))
    r = server.get("/session/%s" % created["id"], token=admin_token())
    body = assert_json(r, 200)
    assert body["id"] == created["id"] and body["user_id"] == user
    assert "token" not in body
    assert no_store(r)


def test_other_user_gets_the_same_404_as_unknown_id(server, user):
    tok = make_token(user)
    created = server.create(tok)
    sid = created["id"]
    intruder = make_token(uid())
    foreign = server.get("/session/%s" % sid, token=intruder)
    assert_problem(foreign, 404)
    # the owner closes it: now the very same id is unknown
    assert server.delete("/session/%s" % sid, token=tok).status_code == 204
    unknown_for_intruder = server.get("/session/%s" % sid, token=intruder)
    unknown_for_owner = server.get("/session/%s" % sid, token=tok)
    for r in (unknown_for_intruder, unknown_for_owner):
        assert_problem(r, 404)
        assert r.content == foreign.content
        assert r.headers.get("Content-Type") == foreign.headers.get("Content-Type")
        assert headers_except_date(r) == headers_except_date(foreign)


def test_other_user_404_matches_never_existing_id(server, user):
    created = server.create(make_token(user))
    intruder = make_token(uid())
    foreign = server.get("/session/%s" % created["id"], token=intruder)
    # an id of the same shape that never existed
    fake = ("Z" if created["id"][0] != "Z" else "Y") + created["id"][1:]
    never = server.get("/session/%s" % fake, token=intruder)
    assert_problem(foreign, 404)
    assert_problem(never, 404)
    assert foreign.headers.get("Content-Type") == never.headers.get("Content-Type")
    assert sorted(k.lower() for k in foreign.headers) == sorted(k.lower() for k in never.headers)
    a, b = foreign.json(), never.json()
    assert (a["type"], a["title"], a["status"]) == (b["type"], b["title"], b["status"])
    # the owner still has it
    assert server.get("/session/%s" % created["id"], token=make_token(user)).status_code == 200


BAD_IDS = ["abc", "A" * 21, "A" * 65, "A" * 200, "A" * 21 + "!", "A" * 21 + "%21",
           "A" * 21 + "%2E", "A" * 22 + "%00", "A" * 21 + "%2F", "A" * 11 + "%20" + "A" * 10,
           "%2e%2e", "A" * 21 + "=", "A" * 21 + "+", "A" * 20 + "%C3%A9"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_malformed_id_is_404(server, bad):
    tok = admin_token()
    assert_problem(server.get("/session/%s" % bad, token=tok), 404)
    assert_problem(server.delete("/session/%s" % bad, token=tok), 404)


def raw_answer(server, method, path, headers):
    conn = RawConn(server.port)
    try:
        conn.send(http_request_bytes(method, path, headers))
        return conn.read_response()
    finally:
        conn.close()


@pytest.mark.parametrize("bad", ["%zz", "%", "%4", "A" * 21 + "%G0", "%%41"])
def test_malformed_escape_in_an_id_is_404(server, bad):
    """An id whose percent-encoding does not decode is outside the id
    alphabet too: 404 on every /session/{id} route, after the caller is
    known (401 without a token); a malformed user id is 400."""
    auth = {"Authorization": "Bearer %s" % admin_token()}
    own = {"Authorization": "Bearer %s" % server.create(make_token(uid()))["token"]}
    for method, path, who in (("GET", "/session/%s" % bad, auth),
                              ("DELETE", "/session/%s" % bad, auth),
                              ("POST", "/session/%s/refresh" % bad, own)):
        r = raw_answer(server, method, path, who)
        assert r is not None and r.status == 404, (method, path, r)
        assert r.header("Content-Type").startswith("application/problem+json"), r.headers
        r = raw_answer(server, method, path, {})
        assert r is not None and r.status == 401, (method, path, r)
    for method in ("GET", "DELETE"):
        r = raw_answer(server, method, "/users/%s/sessions" % bad, auth)
        assert r is not None and r.status == 400, (method, r)
        assert "percent" in r.json()["detail"], r
    r = raw_answer(server, "GET", "/session/%s/nothing" % bad, auth)
    assert r is not None and r.status == 404, r  # no such route


def test_well_formed_unknown_ids_are_404(server):
    tok = admin_token()
    for sid in ("A" * 22, "a" * 64, "-_" * 16, "0123456789abcdefghijKL"):
        assert_problem(server.get("/session/%s" % sid, token=tok), 404)
        assert_problem(server.delete("/session/%s" % sid, token=tok), 404)


# ---------------------------------------------------------------- close

def test_owner_closes_session(server, user):
    tok = make_token(user)
    s = server.create(tok)
    keep = server.create(tok)
    r = server.delete("/session/%s" % s["id"], token=tok)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_problem(server.get("/session/%s" % s["id"], token=tok), 404)
    assert_problem(server.delete("/session/%s" % s["id"], token=tok), 404)
    assert_problem(server.get("/session/%s" % s["id"], token=admin_token()), 404)
    listed = server.get("/users/%s/sessions" % user, token=tok).json()["sessions"]
    assert [x["id"] for x in listed] == [keep["id"]]
    # its own token is refused from now on
    assert_unauthorized(server.get("/validate", token=s["token"]))
    # the other session is untouched
    assert server.get("/session/%s" % keep["id"], token=tok).status_code == 200


def test_other_user_cannot_close(server, user):
    tok = make_token(user)
    s = server.create(tok)
    intruder = make_token(uid())
    r = server.delete("/session/%s" % s["id"], token=intruder)
    assert_problem(r, 404)
    unknown = server.delete("/session/%s" % ("A" * 22), token=intruder)
    assert_problem(unknown, 404)
    # the session stays
    assert server.get("/session/%s" % s["id"], token=tok).status_code == 200
    assert server.get("/validate", token=s["token"]).status_code == 200


def test_admin_closes_any_session(server, user):
    tok = make_token(user)
    s = server.create(tok)
    r = server.delete("/session/%s" % s["id"], token=admin_token())
    assert r.status_code == 204 and r.content == b""
    assert_problem(server.get("/session/%s" % s["id"], token=tok), 404)


def test_session_token_can_close_its_own_session(server, user):
    s = server.create(make_token(user))
    r = server.delete("/session/%s" % s["id"], token=s["token"])
    assert r.status_code == 204
    assert_unauthorized(server.get("/session/%s" % s["id"], token=s["token"]))


@pytest.mark.concurrency
def test_racing_closes_report_exactly_one_success(server, user):
    tok = make_token(user)
    for _ in range(5):
        s = server.create(tok)
        results = []
        barrier = threading.Barrier(2)

        def close():
            barrier.wait()
            results.append(server.delete("/session/%s" % s["id"], token=tok).status_code)

        threads = [threading.Thread(target=close) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        assert sorted(results) == [204, 404], results


# ---------------------------------------------------------------- expiry

def test_expired_session_behaves_like_closed(server, user):
    tok = make_token(user)
    short = server.create(tok, {"ttl": 1, "data": {"x": 1}})
    long_ = server.create(tok, {"ttl": 600})
    assert short["expires_at"] == short["created_at"] + 1
    time.sleep(2.2)
    assert_problem(server.get("/session/%s" % short["id"], token=tok), 404)
    assert_problem(server.get("/session/%s" % short["id"], token=admin_token()), 404)
    listed = server.get("/users/%s/sessions" % user, token=tok).json()["sessions"]
    assert [x["id"] for x in listed] == [long_["id"]]
    # its token is within JWT_LEEWAY of exp, but the session is gone
    assert_unauthorized(server.get("/validate", token=short["token"]))
    assert_unauthorized(server.get("/users/%s/sessions" % user, token=short["token"]))
    assert_problem(server.delete("/session/%s" % short["id"], token=tok), 404)
    r = server.delete("/users/%s/sessions" % user, token=tok)
    assert assert_json(r, 200) == {"closed": 1}
