"""JWT_SECRET_PREVIOUS (contract v2, "Keys"): a second HS256 key, accepted
for caller and session tokens and never used to sign, so that JWT_SECRET is
rotated without logging anyone out. The processes below share one store, as
the hosts of a deployment do during a rotation."""

import secrets

import jwt

from apitools import SECRET, assert_unauthorized, make_token, uid

NEW = secrets.token_urlsafe(36)


def signed_with(token, key):
    try:
        jwt.decode(token, key, algorithms=["HS256"], options={"verify_aud": False})
        return True
    except jwt.InvalidSignatureError:
        return False


def test_rotation_in_three_steps_logs_nobody_out(spawn, tmp_path):
    store = tmp_path / "shared"
    user = uid()
    # before: every process has the old secret only
    before = spawn("sessiond", store=store)
    old_session = before.create(make_token(user))
    # step 1: the new secret is accepted everywhere, the old one still signs
    step1 = spawn("sessiond", env={"JWT_SECRET_PREVIOUS": NEW}, store=store)
    # step 2: the new secret signs, the old one is still accepted
    step2 = spawn("sessiond", env={"JWT_SECRET": NEW, "JWT_SECRET_PREVIOUS": SECRET},
                  store=store)
    new_session = step2.create(make_token(user, secret=NEW))
    assert signed_with(new_session["token"], NEW)
    assert not signed_with(new_session["token"], SECRET)
    assert signed_with(old_session["token"], SECRET)
    # a caller token of either secret, and a session token of either, pass on
    # every process of steps 1 and 2
    for srv in (step1, step2):
        for key in (SECRET, NEW):
            assert srv.get("/users/%s/sessions" % user,
                           token=make_token(user, secret=key)).status_code == 200
        for s in (old_session, new_session):
            r = srv.get("/validate", token=s["token"])
            assert r.status_code == 200 and r.headers["X-Session-Id"] == s["id"], r.text
    # step 3: the old secret is dropped once its tokens have expired
    step3 = spawn("sessiond", env={"JWT_SECRET": NEW}, store=store)
    assert step3.get("/validate", token=new_session["token"]).status_code == 200
    assert_unauthorized(step3.get("/validate", token=old_session["token"]))
    assert_unauthorized(step3.get("/users/%s/sessions" % user, token=make_token(user)))


def test_previous_secret_never_signs(spawn):
    srv = spawn("sessiond", env={"JWT_SECRET_PREVIOUS": NEW})
    user = uid()
    s = srv.create(make_token(user, secret=NEW))
    assert signed_with(s["token"], SECRET)
    assert not signed_with(s["token"], NEW)
    r = srv.post("/session/%s/refresh" % s["id"], token=s["token"])
    assert r.status_code == 200, r.text
    assert signed_with(r.json()["token"], SECRET)


def test_a_token_of_neither_secret_is_refused(spawn):
    srv = spawn("sessiond", env={"JWT_SECRET_PREVIOUS": NEW})
    third = secrets.token_urlsafe(36)
    assert_unauthorized(srv.get("/users/x/sessions", token=make_token("x", secret=third)))
