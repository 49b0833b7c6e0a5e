"""The gateway: Debian's nginx running deploy/nginx.conf in front of the three
split processes (API.md "Processes"), and an application behind auth_request.

The configuration is the repository's own deploy/nginx.conf, rendered by
deploy/render-nginx.sh (the same script the compose gateway runs) with free
loopback ports and paths in a temporary directory.  The processes come from
the harness (SESSIOND_BIN_DIR, sanitizer and secret checks at teardown, both
stores); the application is a small http.server in a thread that answers with
the identity headers it received.  A missing nginx fails these tests (CI
installs nginx-light with scripts/deps.sh test); it never skips them.
"""

import http.client
import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from apitools import (REPO, Client, SECRET, admin_token, assert_json, assert_problem,
                      assert_unauthorized, dead_port, free_port, make_token, q, uid, wait_until)

RENDER = REPO / "deploy" / "render-nginx.sh"
TEMPLATE = REPO / "deploy" / "nginx.conf"
SPLIT = ("createSession", "readSession", "closeSession")


def nginx_binary():
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.fail("nginx is not installed, so the gateway cannot be tested "
                    "(Debian: apt-get install nginx-light, or scripts/deps.sh test)",
                    pytrace=False)
    return found


def render(**options):
    """deploy/render-nginx.sh with --name value for each option (a_b -> --a-b)."""
    args = ["/bin/sh", str(RENDER)]
    for name, value in options.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert out.returncode == 0, "render-nginx.sh failed: %s" % out.stderr.decode()
    return out.stdout.decode()


# --------------------------------------------------------------------------
# the application behind auth_request
# --------------------------------------------------------------------------

class EchoApp:
    """Answers every request with JSON: the path and the identity headers it
    got (never the Authorization or Cookie values, so no token is echoed)."""

    def __init__(self):
        self.seen = []
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                doc = {
                    "method": self.command,
                    "path": self.path,
                    "x_user_id": self.headers.get_all("X-User-Id"),
                    "x_session_id": self.headers.get_all("X-Session-Id"),
                    "x_forwarded_for": self.headers.get_all("X-Forwarded-For"),
                    "header_names": sorted(k.lower() for k in self.headers.keys()),
                }
                app.seen.append(doc)
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------
# nginx
# --------------------------------------------------------------------------

class Nginx(Client):
    """nginx in the foreground with the rendered deploy/nginx.conf, every file
    it writes in its own prefix directory."""

    def __init__(self, prefix, create, read, close, app, allowed_errors=(), module=None,
                 module_config=None, directives=""):
        """module, module_config: render-nginx.sh's --module and
        --module-config (the session check inside nginx); directives: more
        of the main context, given with -g."""
        self.prefix = Path(prefix)
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.error_log = self.prefix / "error.log"
        self.access_log = self.prefix / "access.log"
        self.conf = self.prefix / "nginx.conf"
        extra = {"module": module, "module_config": module_config} if module else {}
        self.conf.write_text(render(
            listen="127.0.0.1:%d" % self.port, create=create, read=read, close=close,
            app=app, error_log=self.error_log, access_log=self.access_log, **extra))
        self.directives = directives
        self.allowed_errors = tuple(allowed_errors)
        self.base = "http://127.0.0.1:%d" % self.port
        self.proc = None

    def start(self, timeout=10.0):
        self._stderr = open(self.prefix / "nginx.stderr", "wb")
        self.proc = subprocess.Popen(
            [nginx_binary(), "-p", str(self.prefix) + "/", "-c", str(self.conf),
             "-e", str(self.error_log), "-g", "daemon off;" + self.directives],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("nginx exited with status %s at start:\n%s"
                            % (self.proc.returncode, self.log_text()), pytrace=False)
            try:
                with requests.Session() as s:
                    if s.get(self.base + "/healthz", timeout=1).status_code == 200:
                        return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail("nginx did not answer /healthz within %.0f s:\n%s"
                    % (timeout, self.log_text()), pytrace=False)

    def log_text(self):
        text = ""
        for path in (self.error_log, self.prefix / "nginx.stderr"):
            try:
                text += path.read_text("utf-8", "replace")
            except FileNotFoundError:
                pass
        return text

    def stop(self):
        """Graceful stop (SIGQUIT); answers the problems found."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                problems.append("nginx did not stop within 10 s of SIGQUIT")
        if self.proc is not None and self.proc.returncode not in (0, None):
            problems.append("nginx exited with status %s" % self.proc.returncode)
        f = getattr(self, "_stderr", None)
        if f is not None:
            f.close()
        for line in self.log_text().splitlines():
            if any(lvl in line for lvl in ("[emerg]", "[alert]", "[crit]")) or (
                    "[error]" in line and not any(a in line for a in self.allowed_errors)):
                problems.append("nginx logged: " + line)
        return problems


def start_gateway(prefix, **kw):
    gw = Nginx(prefix, **kw).start()
    return gw


def stop_gateway(gw):
    problems = gw.stop()
    if problems:
        pytest.fail("gateway problems:\n" + "\n".join(problems[:30]), pytrace=False)


@pytest.fixture(scope="module")
def trio(mspawn, tmp_path_factory):
    """createSession, readSession, closeSession sharing one store, trusting
    the gateway's X-Forwarded-For as they would in production."""
    store = tmp_path_factory.mktemp("gateway-store")
    return {name: mspawn(name, store=store, env={"TRUST_PROXY": "1"}) for name in SPLIT}


@pytest.fixture(scope="module")
def app():
    a = EchoApp()
    yield a
    a.close()


@pytest.fixture(scope="module")
def gateway(trio, app, tmp_path_factory):
    nginx_binary()
    gw = start_gateway(
        tmp_path_factory.mktemp("nginx"),
        create="127.0.0.1:%d" % trio["createSession"].port,
        read="127.0.0.1:%d" % trio["readSession"].port,
        close="127.0.0.1:%d" % trio["closeSession"].port,
        app="127.0.0.1:%d" % app.port,
        # nginx logs its own 413 at [error]
        allowed_errors=("client intended to send too large body",))
    yield gw
    stop_gateway(gw)


# --------------------------------------------------------------------------
# which process answered: the service's own request counters
# --------------------------------------------------------------------------

def counters(trio):
    out = {}
    for name, srv in trio.items():
        m = srv.metrics()
        out[name] = {(ls["route"], ls["method"], ls["status"]): v
                     for ls, v in m.select("sessiond_requests_total")
                     if ls.get("route") != "/metrics"}
    return out


def counted(trio, before, expected):
    """True once the processes' counters grew by exactly `expected`:
    {process: {(route, method, status): n}}, nothing else on any process."""
    now = counters(trio)
    for name in trio:
        grown = {k: v - before[name].get(k, 0) for k, v in now[name].items()
                 if v != before[name].get(k, 0)}
        if grown != expected.get(name, {}):
            counted.last = (name, grown, expected.get(name, {}))
            return False
    return True


def assert_routed(trio, action, expected):
    """Run action(); the request counters must show it on the expected process."""
    before = counters(trio)
    result = action()
    ok = wait_until(lambda: counted(trio, before, expected), timeout=3)
    assert ok, "process %s counted %r, expected %r" % counted.last
    return result


# --------------------------------------------------------------------------
# the lifecycle through the gateway
# --------------------------------------------------------------------------

def test_lifecycle_through_the_gateway(gateway, trio, app):
    user = uid()
    tok = make_token(user)
    s = assert_routed(trio, lambda: gateway.create(tok, {"data": {"via": "gateway"}}),
                      {"createSession": {("/session", "POST", "201"): 1}})
    sid, stok = s["id"], s["token"]

    got = assert_routed(trio, lambda: gateway.get("/session/%s" % sid, token=tok),
                        {"readSession": {("/session/{id}", "GET", "200"): 1}})
    assert assert_json(got, 200)["data"] == {"via": "gateway"}

    listed = assert_routed(trio, lambda: gateway.get("/users/%s/sessions" % q(user), token=tok),
                           {"readSession": {("/users/{user_id}/sessions", "GET", "200"): 1}})
    assert [x["id"] for x in assert_json(listed, 200)["sessions"]] == [sid]

    v = assert_routed(trio, lambda: gateway.get("/validate", token=stok),
                      {"readSession": {("/validate", "GET", "200"): 1}})
    assert v.status_code == 200
    assert v.headers.get("X-User-Id") == user and v.headers.get("X-Session-Id") == sid

    # the protected application: Bearer, then the cookie
    for how in ({"Authorization": "Bearer %s" % stok}, {"Cookie": "theme=dark; session=%s" % stok}):
        r = assert_routed(trio, lambda: gateway.get("/app/page?x=1", headers=how),
                          {"readSession": {("/validate", "GET", "200"): 1}})
        seen = assert_json(r, 200)
        assert seen["path"] == "/app/page?x=1"
        assert seen["x_user_id"] == [user] and seen["x_session_id"] == [sid]

    # close through the gateway: closeSession did it, and the token is dead at once
    closed = assert_routed(trio, lambda: gateway.delete("/session/%s" % sid, token=tok),
                           {"closeSession": {("/session/{id}", "DELETE", "204"): 1}})
    assert closed.status_code == 204
    before = len(app.seen)
    assert_unauthorized(gateway.get("/app/page", token=stok))
    assert_unauthorized(gateway.get("/app/page", headers={"Cookie": "session=%s" % stok}))
    assert len(app.seen) == before, "the application was reached with a closed session"
    assert_problem(gateway.get("/session/%s" % sid, token=tok), 404)
    assert_unauthorized(gateway.get("/validate", token=stok))

    # no token ever reaches the gateway's access log
    log = gateway.access_log.read_text()
    assert "/session/%s" % sid in log
    for secret in (stok, tok, SECRET):
        assert secret not in log


def test_protected_location_without_a_live_session(gateway, trio, app):
    before = len(app.seen)
    # nothing at all: 401 Bearer, no invalid_token
    r = assert_routed(trio, lambda: gateway.get("/app/"),
                      {"readSession": {("/validate", "GET", "401"): 1}})
    assert_unauthorized(r, token_presented=False)
    assert r.headers.get("Cache-Control") == "no-store"
    # a caller token is not a session token; a forged one is nothing
    user = uid()
    assert_unauthorized(gateway.get("/app/", token=make_token(user)))
    assert_unauthorized(gateway.get("/app/", token=make_token(user, secret="x" * 48)))
    # the client's own identity headers never pass for a session
    assert_unauthorized(gateway.get("/app/", headers={"X-User-Id": user,
                                                      "X-Session-Id": "A" * 22}),
                        token_presented=False)
    assert len(app.seen) == before, "the application was reached without a session"


def test_client_identity_headers_are_replaced(gateway, trio, app):
    user, other = uid(), uid()
    s = gateway.create(make_token(user))
    r = gateway.get("/app/x", token=s["token"],
                    headers={"X-User-Id": other, "X-Session-Id": "B" * 22,
                             "X-Forwarded-For": "203.0.113.9"})
    seen = assert_json(r, 200)
    assert seen["x_user_id"] == [user] and seen["x_session_id"] == [s["id"]]
    assert seen["x_forwarded_for"] == ["127.0.0.1"]
    # the service's /validate saw the client's Authorization; the body is never passed
    r = gateway.request("POST", "/app/form", token=s["token"], data=b"a=1")
    assert assert_json(r, 200)["x_user_id"] == [user]


def test_client_address_comes_from_the_gateway(gateway, trio):
    """TRUST_PROXY=1 behind the gateway: the recorded ip is the address nginx
    saw (here 127.0.0.5), and a client's own X-Forwarded-For is replaced."""
    user = uid()
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10,
                                      source_address=("127.0.0.5", 0))
    try:
        conn.request("POST", "/session", headers={
            "Authorization": "Bearer %s" % make_token(user),
            "X-Forwarded-For": "203.0.113.9, 198.51.100.7"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 201, body[:300]
    assert json.loads(body)["ip"] == "127.0.0.5"


def test_user_id_with_slash_keeps_its_percent_2f(gateway, trio):
    user = "%s/with/slash" % uid()
    tok = make_token(user)
    made = [gateway.create(admin_token(), {"user_id": user}) for _ in range(3)]
    r = assert_routed(trio, lambda: gateway.get("/users/%s/sessions" % q(user), token=tok),
                      {"readSession": {("/users/{user_id}/sessions", "GET", "200"): 1}})
    assert {x["id"] for x in assert_json(r, 200)["sessions"]} == {m["id"] for m in made}
    assert all(x["user_id"] == user for x in r.json()["sessions"])
    # the session tokens work at the protected location, with the user id as it is
    seen = assert_json(gateway.get("/app/", token=made[0]["token"]), 200)
    assert seen["x_user_id"] == [user]

    # close all but one, through closeSession
    r = assert_routed(
        trio, lambda: gateway.delete("/users/%s/sessions?except=%s" % (q(user), made[0]["id"]),
                                     token=tok),
        {"closeSession": {("/users/{user_id}/sessions", "DELETE", "200"): 1}})
    assert assert_json(r, 200) == {"closed": 2}
    for m in made[1:]:
        assert_unauthorized(gateway.get("/app/", token=m["token"]))
    assert gateway.get("/app/", token=made[0]["token"]).status_code == 200
    # and the last one
    r = gateway.delete("/users/%s/sessions" % q(user), token=tok)
    assert assert_json(r, 200) == {"closed": 1}
    assert_unauthorized(gateway.get("/app/", token=made[0]["token"]))
    assert assert_json(gateway.get("/users/%s/sessions" % q(user), token=tok), 200) == {
        "sessions": []}


def test_close_all_through_the_gateway(gateway, trio):
    user = uid()
    tok = make_token(user)
    made = [gateway.create(tok) for _ in range(3)]
    r = gateway.delete("/users/%s/sessions" % q(user), token=tok)
    assert assert_json(r, 200) == {"closed": 3}
    for m in made:
        assert_unauthorized(gateway.get("/app/", token=m["token"]))
        assert_problem(trio["readSession"].get("/session/%s" % m["id"], token=tok), 404)


# --------------------------------------------------------------------------
# routing details
# --------------------------------------------------------------------------

def test_other_methods_get_405_with_the_gateways_allow(gateway, trio):
    tok = admin_token()
    for path in ("/session/%s" % ("A" * 22), "/users/someone/sessions"):
        for method in ("PATCH", "PUT", "POST"):
            r = gateway.request(method, path, token=tok)
            assert_problem(r, 405)
            assert {m.strip() for m in r.headers["Allow"].split(",")} == {"GET", "DELETE"}
    r = gateway.request("GET", "/session", token=tok)
    assert_problem(r, 405)
    assert r.headers["Allow"] == "POST"
    # answers without Allow get none from the gateway
    r = gateway.get("/session/%s" % ("A" * 22), token=tok)
    assert_problem(r, 404)
    assert "Allow" not in r.headers


def test_gateway_health_ready_and_unknown_routes(gateway, trio):
    assert assert_json(gateway.get("/healthz"), 200) == {"status": "ok"}
    r = assert_routed(trio, lambda: gateway.get("/readyz"),
                      {"readSession": {("/readyz", "GET", "200"): 1}})
    assert assert_json(r, 200) == {"status": "ready"}
    for path in ("/metrics", "/", "/nope", "/_sessiond_validate", "/sessions"):
        assert_routed(trio, lambda: assert_problem(gateway.get(path, token=admin_token()), 404),
                      {})


def test_gateway_limits_are_problem_json(gateway, trio):
    tok = make_token(uid())
    # over the service's 16 KiB: the service's own 413
    r = gateway.request("POST", "/session", token=tok, data=b"{" + b" " * 20000 + b"}",
                        headers={"Content-Type": "application/json"})
    assert_problem(r, 413)
    # over the gateway's 32 KiB: nginx's 413, problem+json too, the service never sees it
    r = assert_routed(trio, lambda: gateway.request(
        "POST", "/session", token=tok, data=b"{" + b" " * 40000 + b"}",
        headers={"Content-Type": "application/json"}), {})
    assert_problem(r, 413)
    # one header line over nginx's 8 KiB buffer
    r = gateway.get("/validate", headers={"Cookie": "c=" + "a" * 9000})
    assert r.status_code in (400, 431)
    assert_problem(r, r.status_code)


# --------------------------------------------------------------------------
# when a process or the store does not answer
# --------------------------------------------------------------------------

def test_unavailable_upstreams_are_503_problem_json(tmp_path, spawn):
    """Nothing listens behind the gateway: 503 problem+json with Retry-After,
    never nginx's HTML 502; a session token at the protected location
    whose /validate finds the store unreachable: 503 too."""
    dead = "127.0.0.1:%d" % dead_port()
    # readSession whose Redis does not answer: /validate is 503, not 401
    reader = spawn("readSession", env={"STORE_URL": "redis://127.0.0.1:%d/0" % dead_port(),
                                       "REDIS_TIMEOUT_MS": "100"})
    gw = start_gateway(tmp_path / "nginx", create=dead, read="127.0.0.1:%d" % reader.port,
                       close=dead, app=dead,
                       allowed_errors=("connect() failed",
                                       "auth request unexpected status: 503"))
    try:
        user = uid()
        for method, path in (("POST", "/session"), ("DELETE", "/session/%s" % ("A" * 22))):
            r = gw.request(method, path, token=make_token(user))
            assert_problem(r, 503)
            assert r.headers.get("Retry-After") == "1"
        session_token = make_token(user, sid="A" * 22)
        r = gw.get("/app/", token=session_token)
        assert_problem(r, 503)
        assert r.headers.get("Retry-After") == "1"
        r = gw.get("/readyz")
        assert_problem(r, 503)
        # no token at all is still 401 (decided before the store is asked)
        assert_unauthorized(gw.get("/app/"), token_presented=False)
    finally:
        stop_gateway(gw)


# --------------------------------------------------------------------------
# the renderer
# --------------------------------------------------------------------------

def test_render_without_options_is_the_template():
    assert render() == TEMPLATE.read_text()


@pytest.mark.parametrize("value", ["8080; include /etc/passwd", "a b", "x{", "'q'", ""])
def test_render_refuses_unsafe_values(value):
    out = subprocess.run(["/bin/sh", str(RENDER), "--read", value], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=10)
    if value == "":
        # empty keeps the template's value
        assert out.returncode == 0 and out.stdout.decode() == TEMPLATE.read_text()
    else:
        assert out.returncode == 2 and out.stdout == b"", out


def test_render_replaces_every_placeholder_once():
    text = render(listen="9999", create="c:1", read="r:2", close="d:3", app="a:4",
                  error_log="/e", access_log="/a")
    lines = [ln.strip() for ln in text.splitlines() if not ln.strip().startswith("#")]
    for want in ("listen 9999;", "server c:1;", "server r:2;", "server d:3;", "server a:4;",
                 "error_log /e warn;", "access_log /a gateway;"):
        assert lines.count(want) == 1, want
    for gone in ("listen 8080;", "server 127.0.0.1:8081;", "server 127.0.0.1:8090;"):
        assert gone not in lines
