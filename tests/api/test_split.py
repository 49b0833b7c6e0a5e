"""The three split processes sharing one LMDB store (API.md "Processes")."""

import pytest

from apitools import (admin_token, assert_json, assert_problem, assert_unauthorized,
                      make_token, wait_until)

ROUTES = {
    "createSession": {("POST", "/session"), ("POST", "/session/{id}/refresh")},
    "readSession": {("GET", "/session/{id}"), ("GET", "/users/{user_id}/sessions"),
                    ("GET", "/validate")},
    "closeSession": {("DELETE", "/session/{id}"), ("DELETE", "/users/{user_id}/sessions")},
}
ALL_ROUTES = set().union(*ROUTES.values())


@pytest.fixture(scope="module")
def trio(mspawn, tmp_path_factory):
    store = tmp_path_factory.mktemp("shared-store")
    return {name: mspawn(name, store=store) for name in ROUTES}


def concrete(path, sid="AAAAAAAAAAAAAAAAAAAAAA", user="someone"):
    return path.replace("{id}", sid).replace("{user_id}", user)


def test_create_read_close_across_processes(trio, user):
    c, r, d = trio["createSession"], trio["readSession"], trio["closeSession"]
    tok = make_token(user)
    s = c.create(tok, {"data": {"from": "createSession"}})
    # read, list and validate at once in another process
    got = assert_json(r.get("/session/%s" % s["id"], token=tok), 200)
    assert got["data"] == {"from": "createSession"} and got["user_id"] == user
    listed = assert_json(r.get("/users/%s/sessions" % user, token=tok), 200)["sessions"]
    assert [x["id"] for x in listed] == [s["id"]]
    v = r.get("/validate", token=s["token"])
    assert v.status_code == 200 and v.headers.get("X-Session-Id") == s["id"]
    # close in the third process
    assert d.delete("/session/%s" % s["id"], token=tok).status_code == 204
    # gone at once for the reader
    assert_problem(r.get("/session/%s" % s["id"], token=tok), 404)
    assert_unauthorized(r.get("/validate", token=s["token"]))
    assert assert_json(r.get("/users/%s/sessions" % user, token=tok), 200) == {"sessions": []}
    assert_problem(d.delete("/session/%s" % s["id"], token=tok), 404)


def test_close_all_across_processes(trio, user):
    c, r, d = trio["createSession"], trio["readSession"], trio["closeSession"]
    tok = make_token(user)
    made = [c.create(tok) for _ in range(3)]
    r2 = d.delete("/users/%s/sessions?except=%s" % (user, made[0]["id"]), token=tok)
    assert assert_json(r2, 200) == {"closed": 2}
    listed = assert_json(r.get("/users/%s/sessions" % user, token=tok), 200)["sessions"]
    assert [x["id"] for x in listed] == [made[0]["id"]]
    for s in made[1:]:
        assert_unauthorized(r.get("/validate", token=s["token"]))
        # a closed session token is refused by every process
        assert_unauthorized(c.post("/session", token=s["token"]))
        assert_unauthorized(d.delete("/users/%s/sessions" % user, token=s["token"]))
    assert r.get("/validate", token=made[0]["token"]).status_code == 200


def test_admin_across_processes(trio, user):
    c, r, d = trio["createSession"], trio["readSession"], trio["closeSession"]
    s = c.create(admin_token(), {"user_id": user})
    assert r.get("/session/%s" % s["id"], token=admin_token()).status_code == 200
    assert d.delete("/session/%s" % s["id"], token=admin_token()).status_code == 204
    assert_problem(r.get("/session/%s" % s["id"], token=make_token(user)), 404)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_foreign_routes_are_404(trio, name, user):
    srv = trio[name]
    tok = admin_token()
    real = trio["createSession"].create(make_token(user))
    for method, pattern in sorted(ALL_ROUTES - ROUTES[name]):
        for sid in ("AAAAAAAAAAAAAAAAAAAAAA", real["id"]):
            resp = srv.request(method, concrete(pattern, sid, user), token=tok)
            assert_problem(resp, 404)
    # nothing was closed by those attempts
    assert trio["readSession"].get("/session/%s" % real["id"],
                                   token=make_token(user)).status_code == 200


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_foreign_routes_are_404_for_any_method(trio, name):
    srv = trio[name]
    own_paths = {p for _, p in ROUTES[name]}
    for pattern in {p for _, p in ALL_ROUTES} - own_paths:
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            resp = srv.request(method, concrete(pattern), token=admin_token())
            assert_problem(resp, 404)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_health_ready_metrics_everywhere(trio, name):
    srv = trio[name]
    assert assert_json(srv.get("/healthz"), 200) == {"status": "ok"}
    assert assert_json(srv.get("/readyz"), 200) == {"status": "ready"}
    m = srv.get("/metrics")
    assert m.status_code == 200
    assert "version=0.0.4" in m.headers.get("Content-Type", "")
    assert "sessiond_requests_total" in m.text


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_own_routes_405_for_other_methods(trio, name):
    """On a path it serves, a method no process serves there is 405 (PATCH)."""
    srv = trio[name]
    for _, pattern in ROUTES[name]:
        resp = srv.request("PATCH", concrete(pattern), token=admin_token())
        assert_problem(resp, 405)


def test_metrics_are_per_process(trio, user):
    c = trio["createSession"]
    before = c.metrics().value("sessiond_sessions_created_total")
    c.create(make_token(user))
    assert wait_until(lambda: c.metrics().value("sessiond_sessions_created_total")
                      == before + 1, timeout=2)
    for name in ("readSession", "closeSession"):
        m = trio[name].metrics()
        assert "sessiond_sessions_created_total" in m.names()
        assert m.value("sessiond_sessions_created_total") == 0
