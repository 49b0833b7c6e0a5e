"""GET /validate — for NGINX auth_request (API.md "validate", CONTRACT-NOTES)."""

import time

import pytest

from apitools import (admin_token, assert_json, assert_unauthorized, make_token, no_store,
                      uid)


@pytest.fixture(scope="module")
def cookie_server(mspawn):
    return mspawn("sessiond", env={"SESSION_COOKIE": "sid_cookie"})


def check_ok(r, user, sid, expires_at):
    body = assert_json(r, 200)
    assert r.headers.get("X-User-Id") == user
    assert r.headers.get("X-Session-Id") == sid
    assert body == {"user_id": user, "session_id": sid, "expires_at": expires_at}
    assert no_store(r), r.headers.get("Cache-Control")


def test_bearer_session_token(server, user):
    s = server.create(make_token(user))
    check_ok(server.get("/validate", token=s["token"]), user, s["id"], s["expires_at"])


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_bearer_scheme_any_case(server, user, scheme):
    s = server.create(make_token(user))
    r = server.get("/validate", headers={"Authorization": "%s %s" % (scheme, s["token"])})
    check_ok(r, user, s["id"], s["expires_at"])


def test_default_cookie(server, user):
    s = server.create(make_token(user))
    r = server.get("/validate", headers={"Cookie": "session=%s" % s["token"]})
    check_ok(r, user, s["id"], s["expires_at"])
    r = server.get("/validate",
                   headers={"Cookie": "theme=dark; session=%s; lang=en" % s["token"]})
    check_ok(r, user, s["id"], s["expires_at"])


def test_custom_cookie_name(cookie_server, user):
    s = cookie_server.create(make_token(user))
    r = cookie_server.get("/validate", headers={"Cookie": "sid_cookie=%s" % s["token"]})
    check_ok(r, user, s["id"], s["expires_at"])
    # the default name is not read any more
    r = cookie_server.get("/validate", headers={"Cookie": "session=%s" % s["token"]})
    assert_unauthorized(r, token_presented=False)


def test_bearer_wins_over_cookie(server, user):
    a = server.create(make_token(user))
    b = server.create(make_token(user))
    r = server.get("/validate", token=a["token"],
                   headers={"Cookie": "session=%s" % b["token"]})
    check_ok(r, user, a["id"], a["expires_at"])
    # a refused Bearer token is not rescued by a good cookie
    r = server.get("/validate", token=make_token(user, secret="w" * 48),
                   headers={"Cookie": "session=%s" % b["token"]})
    assert_unauthorized(r)


def test_closed_session_is_401(server, user):
    tok = make_token(user)
    s = server.create(tok)
    assert server.delete("/session/%s" % s["id"], token=tok).status_code == 204
    assert_unauthorized(server.get("/validate", token=s["token"]))
    r = server.get("/validate", headers={"Cookie": "session=%s" % s["token"]})
    assert r.status_code == 401
    assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer")


def test_plain_token_is_401(server, user):
    server.create(make_token(user))
    assert_unauthorized(server.get("/validate", token=make_token(user)))
    assert_unauthorized(server.get("/validate", token=admin_token()))
    r = server.get("/validate", headers={"Cookie": "session=%s" % make_token(user)})
    assert r.status_code == 401


def test_no_token_is_401(server):
    assert_unauthorized(server.get("/validate"), token_presented=False)
    assert_unauthorized(server.get("/validate", headers={"Cookie": "other=1"}),
                        token_presented=False)


@pytest.mark.parametrize("value", ["garbage", "a.b.c", "", "Bearer x"])
def test_bad_cookie_is_401(server, value):
    r = server.get("/validate", headers={"Cookie": "session=%s" % value})
    assert r.status_code == 401
    assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer")


def test_forged_sid_is_401(server, user):
    """A correctly signed token naming a session of another user is refused."""
    victim = server.create(make_token(uid()))
    forged = make_token(user, sid=victim["id"], jti="x")
    assert_unauthorized(server.get("/validate", token=forged))
    unknown = make_token(user, sid="A" * 22, jti="y")
    assert_unauthorized(server.get("/validate", token=unknown))
    bad_type = make_token(user, sid=12345)
    assert_unauthorized(server.get("/validate", token=bad_type))


def test_validate_records_last_seen(server, user):
    tok = make_token(user)
    s = server.create(tok)
    assert server.get("/validate", token=s["token"]).status_code == 200
    read = server.get("/session/%s" % s["id"], token=tok).json()
    assert read["created_at"] <= read["last_seen_at"] <= int(time.time()) + 1
    assert read["last_seen_at"] <= read["expires_at"]


def import_session(srv, sid, user, created, expires, last_seen):
    """Writes a session straight into srv's store with sessionctl (so that
    its times can lie in the past)."""
    import json
    import os
    import subprocess
    from apitools import PASSTHROUGH_ENV, binary_path
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ})
    line = json.dumps({"id": sid, "user_id": user, "created_at": created, "expires_at": expires,
                       "last_seen_at": last_seen, "ip": "192.0.2.7", "user_agent": None,
                       "data": {}})
    out = subprocess.run([str(binary_path("sessionctl")), "--store", srv.store_url, "import"],
                         input=line.encode() + b"\n", capture_output=True, env=env, timeout=30,
                         cwd="/")
    assert out.returncode == 0 and b"imported 1," in out.stderr, out


def exported_last_seen(srv, sid):
    """last_seen_at of sid as another process reads it from srv's store
    (sessionctl export), or None."""
    import json
    import os
    import subprocess
    from apitools import PASSTHROUGH_ENV, binary_path
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ})
    out = subprocess.run([str(binary_path("sessionctl")), "--store", srv.store_url, "export"],
                         capture_output=True, env=env, timeout=30, cwd="/")
    assert out.returncode == 0, out
    for line in out.stdout.decode().splitlines():
        obj = json.loads(line)
        if obj["id"] == sid:
            return obj["last_seen_at"]
    return None


def test_validate_moves_last_seen_of_a_session_unused_for_minutes(server, user):
    """A session last used 5 minutes ago: the use is shown at once by a read
    and a list right after the validate (last_seen_at lags the last use by
    at most 60 s), and written to the store for every other process (the
    writer is woken at once; polled here, not timed); reading with a caller
    token changes nothing (it is not a use)."""
    t = int(time.time())
    sid = "LastSeen" + uid("")[-14:].replace("-", "x")
    import_session(server, sid, user, t - 600, t + 600, t - 300)
    stok = make_token(user, sid=sid, exp=t + 600)
    tok = make_token(user)
    assert server.get("/session/%s" % sid, token=tok).json()["last_seen_at"] == t - 300
    assert server.get("/validate", token=stok).status_code == 200
    seen = server.get("/session/%s" % sid, token=tok).json()["last_seen_at"]
    assert t <= seen <= int(time.time()) + 1, "last_seen_at not recorded: %d" % seen
    listed = server.get("/users/%s/sessions" % user, token=tok).json()["sessions"]
    assert [x["last_seen_at"] for x in listed if x["id"] == sid] == [seen]
    deadline = time.time() + 20
    while (stored := exported_last_seen(server, sid)) == t - 300 and time.time() < deadline:
        time.sleep(0.2)
    assert stored is not None and t <= stored <= int(time.time()) + 1, stored
    # reading with a caller token is not use
    time.sleep(1.2)
    assert server.get("/session/%s" % sid, token=tok).json()["last_seen_at"] == seen


def test_validate_does_not_extend_or_change_session(server, user):
    tok = make_token(user)
    s = server.create(tok, {"ttl": 500, "data": {"a": 1}})
    for _ in range(3):
        assert server.get("/validate", token=s["token"]).status_code == 200
    read = server.get("/session/%s" % s["id"], token=tok).json()
    assert read["expires_at"] == s["expires_at"]
    assert read["data"] == {"a": 1}
