"""HEAD on every GET route (issue 16, RFC 9110 section 9.3.2): the same
status and headers as GET, and no body -- load balancers and monitors probe
with HEAD. Other methods keep their 405; Allow is unchanged."""

import socket

import pytest

from apitools import admin_token, make_token, uid

VOLATILE = {"Date", "Content-Length"}  # Content-Length: only for /metrics, whose counters move


def same_but_body(server, path, headers, volatile=("Date",)):
    g = server.request("GET", path, headers=headers)
    h = server.request("HEAD", path, headers=headers)
    assert h.status_code == g.status_code, (path, g.status_code, h.status_code)
    assert h.content == b"", (path, h.content[:80])
    gh = {k: v for k, v in g.headers.items() if k not in volatile}
    hh = {k: v for k, v in h.headers.items() if k not in volatile}
    assert gh == hh, (path, gh, hh)
    return g, h


def test_head_on_each_get_route(server, user):
    tok = make_token(user)
    s = server.create(tok)
    bearer = {"Authorization": "Bearer " + tok}
    for path, headers in (("/session/%s" % s["id"], bearer),
                          ("/users/%s/sessions" % user, bearer),
                          ("/validate", {"Authorization": "Bearer " + s["token"]}),
                          ("/healthz", {}), ("/readyz", {})):
        g, h = same_but_body(server, path, headers)
        assert h.status_code == 200, path
        assert int(h.headers["Content-Length"]) == len(g.content), path
    same_but_body(server, "/metrics", {}, volatile=VOLATILE)


def test_head_answers_the_errors_get_would(server, user):
    tok = make_token(user)
    for path, headers, status in (
            ("/session/AAAAAAAAAAAAAAAAAAAAAA", {"Authorization": "Bearer " + tok}, 404),
            ("/users/%s/sessions" % uid(), {"Authorization": "Bearer " + tok}, 403),
            ("/validate", {}, 401),
            ("/nope", {}, 404)):
        g, h = same_but_body(server, path, headers)
        assert h.status_code == status, (path, h.status_code)
        if status == 401:
            assert h.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_head_is_not_a_way_around_post_or_delete(server, user):
    tok = make_token(user)
    s = server.create(tok)
    r = server.request("HEAD", "/session", headers={"Authorization": "Bearer " + tok})
    assert r.status_code == 405 and r.content == b""
    assert {m.strip() for m in r.headers["Allow"].split(",")} == {"POST"}
    # a HEAD of the session leaves it live (HEAD never closes)
    assert server.request("HEAD", "/session/%s" % s["id"],
                          headers={"Authorization": "Bearer " + admin_token()}).status_code == 200
    assert server.get("/session/%s" % s["id"], token=tok).status_code == 200


def test_head_sends_no_body_bytes_on_a_kept_alive_connection(server):
    """Raw bytes: a HEAD then a GET on one connection; the GET's status line
    comes right after the HEAD's header block, so no body byte was sent."""
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        conn.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        conn.close()
    first, sep, rest = data.partition(b"\r\n\r\n")
    assert sep and first.startswith(b"HTTP/1.1 200"), data[:200]
    assert rest.startswith(b"HTTP/1.1 200"), "bytes after the HEAD's headers: %r" % rest[:80]
    length = [line for line in first.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    assert length and int(length[0].split(b":")[1]) > 0
