"""Contract v2, "Tightened rules": regressions of issue 10, one test (or a
few) per defect, each of which failed on the code before its fix.

Both stores where the rule concerns the store (the spawn/mspawn fixtures are
parametrized over LMDB and Redis by conftest.py).
"""

import jwt
import pytest

from apitools import (SECRET, assert_problem, assert_unauthorized, make_token, q, uid)

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
