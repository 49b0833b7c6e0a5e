"""GET /healthz and /readyz (API.md "healthz, readyz, metrics", CONTRACT-NOTES)."""

import time

import pytest
import requests

from apitools import (START_TIMEOUT, assert_json, assert_problem, dead_port, make_token,
                      uid)


def test_healthz(server):
    r = server.get("/healthz")
    assert assert_json(r, 200) == {"status": "ok"}


def test_readyz(server):
    r = server.get("/readyz")
    assert assert_json(r, 200) == {"status": "ready"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_no_auth_needed_and_bad_auth_ignored(server, path):
    assert server.get(path).status_code == 200
    assert server.get(path, token="garbage").status_code == 200
    assert server.get(path, token=make_token(uid(), secret="n" * 48)).status_code == 200


def test_metrics_content_type(server):
    r = server.get("/metrics")
    assert r.status_code == 200
    ctype = r.headers.get("Content-Type", "").replace(" ", "").lower()
    assert ctype.startswith("text/plain"), ctype
    assert "version=0.0.4" in ctype, ctype


@pytest.mark.own_store
def test_unreachable_store_gives_503(spawn, tmp_path):
    """STORE_URL pointing at a Redis that is not there: the process serves,
    /readyz and store-backed routes answer 503 with Retry-After."""
    port = dead_port()  # nothing listens here
    srv = spawn("sessiond", env={"STORE_URL": "redis://127.0.0.1:%d/0" % port}, wait=False)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and srv.alive():
        try:
            if srv.get("/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.05)
    if not srv.alive():
        srv.allow_exit = True
        text = srv.stderr_text()
        pytest.fail("process exited at start (status %s): %s" % (srv.proc.returncode, text))
    r = srv.get("/healthz")
    assert assert_json(r, 200) == {"status": "ok"}
    r = srv.get("/readyz")
    assert_problem(r, 503)
    assert r.headers.get("Retry-After") == "1"
    user = uid()
    r = srv.post("/session", token=make_token(user))
    assert_problem(r, 503)
    assert r.headers.get("Retry-After", "").strip().isdigit()
    r = srv.get("/users/%s/sessions" % user, token=make_token(user))
    assert_problem(r, 503)
    assert r.headers.get("Retry-After", "").strip().isdigit()
