"""deploy/jwks-sync.sh: downloads a JWKS, installs it atomically, reloads only
on a change, and never damages the installed file on a bad download.

Runs the script with sh (dash on Debian) against a local http.server on a free
loopback port (JWKS_ALLOW_HTTP=1), a temporary destination and a reload
command that appends a line to a marker file. Needs curl; not the service.
"""

import http.server
import os
import pathlib
import subprocess
import threading

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "jwks-sync.sh"

JWKS_A = (b'{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","use":"sig",'
          b'"x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}\n')
JWKS_B = (b'{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"b","use":"sig",'
          b'"x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}\n')


class JwksServer:
    """Serves self.routes[path] = (status, body) on 127.0.0.1, in a thread."""

    def __init__(self):
        self.routes = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = routes.get(self.path, (404, b"not found\n"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    srv = JwksServer()
    yield srv
    srv.close()


class Sync:
    def __init__(self, tmp_path, server):
        self.server = server
        self.dir = tmp_path / "keys"
        self.dir.mkdir()
        self.dest = self.dir / "jwks.json"
        self.marker = tmp_path / "reloads"
        self.reload = "echo reload >> '%s'" % self.marker

    def run(self, path, extra_env=None, args=None, reload=None):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "JWKS_URL": self.server.url(path),
            "JWT_JWKS_FILE": str(self.dest),
            "JWKS_RELOAD": self.reload if reload is None else reload,
            "JWKS_ALLOW_HTTP": "1",
            "JWKS_MAX_TIME": "10",
        }
        env.update(extra_env or {})
        return subprocess.run(["sh", str(SCRIPT)] + (args or []), env=env,
                              capture_output=True, timeout=60)

    def reloads(self):
        if not self.marker.exists():
            return 0
        return len(self.marker.read_text().splitlines())

    def others(self):
        """Files in the destination's directory other than the destination."""
        return sorted(p.name for p in self.dir.iterdir() if p != self.dest)


@pytest.fixture
def sync(tmp_path, server):
    return Sync(tmp_path, server)


def one_line(stderr):
    text = stderr.decode()
    assert text.endswith("\n") and text.count("\n") == 1, text
    assert text.startswith("jwks-sync: "), text
    return text


def test_install_no_change_change(sync, server):
    server.routes["/certs"] = (200, JWKS_A)
    r = sync.run("/certs")
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    assert sync.dest.read_bytes() == JWKS_A
    assert sync.reloads() == 1
    assert oct(sync.dest.stat().st_mode & 0o777) == oct(0o644)
    assert sync.others() == []

    r = sync.run("/certs")                      # same content: no reload
    assert r.returncode == 0, r.stderr
    assert sync.dest.read_bytes() == JWKS_A
    assert sync.reloads() == 1
    assert sync.others() == []

    server.routes["/certs"] = (200, JWKS_B)     # the provider rotated
    inode = sync.dest.stat().st_ino
    r = sync.run("/certs")
    assert r.returncode == 0, r.stderr
    assert sync.dest.read_bytes() == JWKS_B
    assert sync.dest.stat().st_ino != inode     # replaced by a rename, not rewritten
    assert sync.reloads() == 2
    assert sync.others() == []


@pytest.mark.parametrize("route,status,body,why", [
    ("/missing", None, None, "download of"),
    ("/error", 500, b'{"keys":[]}', "download of"),
    ("/empty", 200, b"", "empty body"),
    ("/html", 200, b"<html><body>login</body></html>\n", '"keys"'),
    ("/other-json", 200, b'{"issuer":"https://idp.example"}\n', '"keys"'),
    ("/no-keys-in-set", 200, b'{"keys":[]}\n', '"kid"'),
])
def test_bad_answer_leaves_old_file(sync, server, route, status, body, why):
    server.routes["/certs"] = (200, JWKS_A)
    assert sync.run("/certs").returncode == 0
    assert sync.reloads() == 1
    if status is not None:
        server.routes[route] = (status, body)
    r = sync.run(route)
    assert r.returncode != 0
    assert why in one_line(r.stderr)
    assert sync.dest.read_bytes() == JWKS_A
    assert sync.reloads() == 1
    assert sync.others() == []


def test_bad_answer_before_first_install_creates_nothing(sync, server):
    server.routes["/empty"] = (200, b"")
    r = sync.run("/empty")
    assert r.returncode != 0
    one_line(r.stderr)
    assert not sync.dest.exists()
    assert sync.reloads() == 0
    assert sync.others() == []


def test_too_large_refused(sync, server):
    server.routes["/certs"] = (200, JWKS_A)
    assert sync.run("/certs").returncode == 0
    server.routes["/big"] = (200, b'{"keys":[' + b" " * 5000 + b"]}")
    r = sync.run("/big", extra_env={"JWKS_MAX_BYTES": "4096"})
    assert r.returncode != 0
    one_line(r.stderr)
    assert sync.dest.read_bytes() == JWKS_A
    assert sync.reloads() == 1
    assert sync.others() == []


def test_https_only_by_default(sync, server):
    server.routes["/certs"] = (200, JWKS_A)
    r = sync.run("/certs", extra_env={"JWKS_ALLOW_HTTP": "0"})
    assert r.returncode != 0
    assert "download of" in one_line(r.stderr)
    assert not sync.dest.exists()
    assert sync.reloads() == 0
    assert sync.others() == []


def test_arguments_override_environment(sync, server, tmp_path):
    server.routes["/certs"] = (200, JWKS_A)
    other = tmp_path / "other-marker"
    r = sync.run("/nowhere", args=["--url", server.url("/certs"),
                                   "--dest", str(sync.dest),
                                   "--reload", "echo x >> '%s'" % other])
    assert r.returncode == 0, r.stderr
    assert sync.dest.read_bytes() == JWKS_A
    assert other.read_text() == "x\n"
    assert sync.reloads() == 0


def test_usage_errors_exit_2(sync, server):
    r = sync.run("/certs", extra_env={"JWKS_URL": ""})
    assert r.returncode == 2
    assert "URL" in one_line(r.stderr)
    r = sync.run("/certs", extra_env={"JWT_JWKS_FILE": ""})
    assert r.returncode == 2
    one_line(r.stderr)
    r = sync.run("/certs", args=["--bogus", "x"])
    assert r.returncode == 2
    assert not sync.dest.exists()


def test_failed_reload_is_retried_next_run(sync, server):
    server.routes["/certs"] = (200, JWKS_A)
    r = sync.run("/certs", reload="echo 'sessiond.service is not active' >&2; exit 3")
    assert r.returncode != 0
    text = one_line(r.stderr)
    assert "reload command failed" in text and "status 3" in text
    assert sync.dest.read_bytes() == JWKS_A     # installed all the same
    r = sync.run("/certs")                      # same content, but not yet reloaded
    assert r.returncode == 0, r.stderr
    assert sync.reloads() == 1
    assert sync.others() == []
    r = sync.run("/certs")
    assert r.returncode == 0
    assert sync.reloads() == 1
