"""GET /users/{user_id}/sessions — list (API.md "list")."""

import time

import pytest

from apitools import (SESSION_FIELDS, admin_token, assert_json, assert_problem, creates_racing,
                      make_token, no_store, q, uid)


def list_sessions(server, user, token):
    r = server.get("/users/%s/sessions" % q(user), token=token)
    body = assert_json(r, 200)
    assert set(body) == {"sessions"}, body
    assert isinstance(body["sessions"], list)
    return body["sessions"]


def test_empty_list(server, user):
    r = server.get("/users/%s/sessions" % user, token=make_token(user))
    assert assert_json(r, 200) == {"sessions": []}


def test_lists_live_sessions_newest_first(server, user):
    tok = make_token(user)
    first = server.create(tok, {"data": {"n": 1}})
    time.sleep(1.1)
    second = server.create(tok, {"data": {"n": 2}})
    third = server.create(tok, {"data": {"n": 3}})
    r = server.get("/users/%s/sessions" % user, token=tok)
    sessions = assert_json(r, 200)["sessions"]
    assert no_store(r), r.headers.get("Cache-Control")
    ids = [s["id"] for s in sessions]
    assert sorted(ids) == sorted([first["id"], second["id"], third["id"]])
    assert ids[-1] == first["id"], "oldest session must come last"
    created = [s["created_at"] for s in sessions]
    assert created == sorted(created, reverse=True)
    by_id = {s["id"]: s for s in sessions}
    for made in (first, second, third):
        item = by_id[made["id"]]
        assert set(item) == SESSION_FIELDS, item
        assert "token" not in item
        for key in ("user_id", "created_at", "expires_at", "ip", "user_agent", "data"):
            assert item[key] == made[key]


def test_ties_on_created_at_are_ordered_by_id(server, user):
    tok = make_token(user)
    for _ in range(6):
        server.create(tok)
    sessions = list_sessions(server, user, tok)
    assert len(sessions) == 6
    keys = [(s["created_at"], s["id"]) for s in sessions]
    for group in {s["created_at"] for s in sessions}:
        ids = [i for c, i in keys if c == group]
        assert ids == sorted(ids) or ids == sorted(ids, reverse=True), keys
    assert [c for c, _ in keys] == sorted((c for c, _ in keys), reverse=True)


def test_closed_sessions_are_not_listed(server, user):
    tok = make_token(user)
    a = server.create(tok)
    b = server.create(tok)
    assert server.delete("/session/%s" % a["id"], token=tok).status_code == 204
    assert [s["id"] for s in list_sessions(server, user, tok)] == [b["id"]]


def test_only_that_users_sessions(server, user):
    tok = make_token(user)
    mine = server.create(tok)
    other = uid()
    server.create(make_token(other))
    # a user whose id has ours as a prefix must not leak into our list
    server.create(make_token(user + "x"))
    server.create(make_token(user + "/x"))
    assert [s["id"] for s in list_sessions(server, user, tok)] == [mine["id"]]


def test_other_user_is_403(server, user):
    server.create(make_token(user))
    r = server.get("/users/%s/sessions" % user, token=make_token(uid()))
    assert_problem(r, 403)
    r = server.get("/users/%s/sessions" % user,
                   token=make_token(uid(), scope="session:admins session:read"))
    assert_problem(r, 403)


def test_admin_lists_any_user(server, user):
    s = server.create(make_token(user))
    sessions = list_sessions(server, user, admin_token())
    assert [x["id"] for x in sessions] == [s["id"]]
    # scope is a space-separated list
    tok = make_token(uid(), scope="openid %s profile" % "session:admin")
    assert [x["id"] for x in list_sessions(server, user, tok)] == [s["id"]]


def test_user_id_with_slash_is_percent_encoded(server):
    slashed = uid() + "/b"
    s = server.create(admin_token(), {"user_id": slashed})
    assert s["user_id"] == slashed
    assert "%2F" in "/users/%s/sessions" % q(slashed)
    assert [x["id"] for x in list_sessions(server, slashed, admin_token())] == [s["id"]]
    # the session token of "…/b" lists its own sessions
    assert [x["id"] for x in list_sessions(server, slashed, s["token"])] == [s["id"]]
    # and so does a plain token for that user
    assert [x["id"] for x in list_sessions(server, slashed, make_token(slashed))] == [s["id"]]
    # unencoded, the slash splits the path: unknown route
    r = server.get("/users/%s/sessions" % slashed, token=admin_token())
    assert_problem(r, 404)
    # the prefix is another user with nothing
    prefix = slashed[:-2]
    assert list_sessions(server, prefix, make_token(prefix)) == []


def test_user_id_with_unicode_and_space(server):
    name = uid() + " \u00fc\u2713 %"
    s = server.create(make_token(name))
    assert s["user_id"] == name
    assert [x["id"] for x in list_sessions(server, name, make_token(name))] == [s["id"]]


def test_list_survives_many_sessions(server, user):
    tok = make_token(user)
    made = {server.create(tok, {"data": {"i": i}})["id"] for i in range(40)}
    sessions = list_sessions(server, user, tok)
    assert {s["id"] for s in sessions} == made


@pytest.mark.concurrency
def test_lists_during_creates_lose_no_session(server, user):
    """A list that runs while the same user's sessions are being created
    never makes one of them disappear from later lists."""
    tok = make_token(user)
    made, orphans = creates_racing(
        server, tok, lambda: server.get("/users/%s/sessions" % q(user), token=tok))
    assert not orphans, ("%d of %d sessions created while lists ran are live but no longer "
                         "listed: %s" % (len(orphans), len(made), orphans[:5]))
    assert sorted(s["id"] for s in list_sessions(server, user, tok)) == sorted(made)
