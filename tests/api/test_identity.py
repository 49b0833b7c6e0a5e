"""User ids travel in X-User-Id behind the gateway: one that an HTTP parser
would trim (" alice" vs "alice") must never be accepted (CONTRACT-NOTES,
"Authentication details")."""

import pytest

from apitools import admin_token, assert_json, assert_problem, make_token, uid


@pytest.mark.parametrize("pad", [" {}", "{} ", "\t{}", "{}\t"])
def test_token_sub_with_outer_whitespace_is_refused(server, pad):
    user = uid()
    r = server.get("/users/%s/sessions" % user, token=make_token(pad.format(user)))
    assert_problem(r, 401)
    assert 'error="invalid_token"' in r.headers.get("WWW-Authenticate", "")


@pytest.mark.parametrize("pad", [" {}", "{} "])
def test_body_user_id_with_outer_whitespace_is_400(server, pad):
    r = server.post("/session", token=admin_token(), json={"user_id": pad.format(uid())})
    assert_problem(r, 400)


def test_inner_space_is_a_user_id_like_any_other(server):
    user = "alice %s" % uid()
    created = assert_json(server.post("/session", token=make_token(user)), 201)
    assert created["user_id"] == user
    r = server.get("/validate", token=created["token"])
    assert r.status_code == 200 and r.headers["X-User-Id"] == user
