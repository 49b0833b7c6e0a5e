"""Errors, routing, limits and HTTP framing (API.md "Responses and errors",
CONTRACT-NOTES "Routes" and "Limits").  Framing tests use raw sockets."""

import socket
import time

import pytest
import apitools

import requests

from apitools import (RawConn, admin_token, allow_set, assert_problem, http_request_bytes,
                      make_token, raw_request, uid)

ALLOW = {
    "/session": {"POST"},
    "/session/{id}": {"GET", "DELETE"},
    "/users/{user_id}/sessions": {"GET", "DELETE"},
    "/validate": {"GET"},
    "/healthz": {"GET"},
    "/readyz": {"GET"},
    "/metrics": {"GET"},
}
CONCRETE = {
    "/session": "/session",
    "/session/{id}": "/session/AAAAAAAAAAAAAAAAAAAAAA",
    "/users/{user_id}/sessions": "/users/alice/sessions",
    "/validate": "/validate",
    "/healthz": "/healthz",
    "/readyz": "/readyz",
    "/metrics": "/metrics",
}


@pytest.fixture(scope="module")
def quick_server(mspawn):
    """Short idle timeout and a single worker thread."""
    return mspawn("sessiond", env={"CONNECTION_TIMEOUT": "2", "THREADS": "1"})


def auth_header():
    return "Authorization: Bearer %s\r\n" % admin_token()


# ---------------------------------------------------------------- problem+json, 404, 405

@pytest.mark.parametrize("path", ["/", "/nope", "/sessions", "/session/", "/users",
                                  "/users/alice", "/users/alice/", "/users/alice/session",
                                  "/users//sessions", "/users/alice/sessions/extra",
                                  "/session/AAAAAAAAAAAAAAAAAAAAAA/extra", "/validate/x",
                                  "/healthz/x", "/metricsx", "/SESSION", "//session"])
def test_unknown_path_is_404(server, path):
    r = server.get(path, token=admin_token())
    body = assert_problem(r, 404)
    if body["type"] == "about:blank":
        assert body["title"] == "Not Found"


def test_unknown_path_without_token_is_404(server):
    assert_problem(server.get("/definitely/not/here"), 404)


@pytest.mark.parametrize("pattern", sorted(ALLOW))
def test_405_with_allow(server, pattern):
    path = CONCRETE[pattern]
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        if method in ALLOW[pattern]:
            continue
        r = server.request(method, path, token=admin_token())
        assert_problem(r, 405)
        assert allow_set(r) == ALLOW[pattern], (method, path, r.headers.get("Allow"))


def test_problem_fields_on_common_errors(server, user):
    tok = make_token(user)
    cases = [
        (server.get("/users/%s/sessions" % user), 401),
        (server.get("/users/%s/sessions" % uid(), token=tok), 403),
        (server.get("/session/AAAAAAAAAAAAAAAAAAAAAA", token=tok), 404),
        (server.post("/session", token=tok, json={"ttl": 0}), 400),
        (server.post("/session", token=tok, data=b"{}", headers={"Content-Type": "text/plain"}),
         415),
        (server.request("PUT", "/session", token=tok), 405),
    ]
    for r, status in cases:
        body = assert_problem(r, status)
        assert set(body) >= {"type", "title", "status", "detail"}


# ---------------------------------------------------------------- body limits

def _create_bytes(body, extra_headers=""):
    return ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
            "Content-Length: %d\r\n%s\r\n" % (auth_header(), len(body), extra_headers)
            ).encode() + body


def test_body_of_exactly_16_kib_is_accepted(server):
    body = b"{}" + b" " * (16384 - 2)
    resp = raw_request(server.port, _create_bytes(body))
    assert resp is not None and resp.status == 201, resp


def test_body_over_16_kib_content_length_is_413(server):
    body = b"{}" + b" " * (16385 - 2)
    resp = raw_request(server.port, _create_bytes(body))
    assert resp is not None, "connection closed without an answer"
    assert resp.status == 413, resp
    body = b'{"data":{"x":"' + b"a" * 40000 + b'"}}'
    resp = raw_request(server.port, _create_bytes(body))
    assert resp is not None and resp.status == 413, resp


def test_huge_content_length_is_413_without_waiting_for_the_body(server):
    head = ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
            "Content-Length: 1000000000\r\n\r\n" % auth_header()).encode()
    t0 = time.monotonic()
    resp = raw_request(server.port, head + b"{", timeout=5)
    assert resp is not None and resp.status == 413, resp
    assert time.monotonic() - t0 < 4


def test_chunked_body_over_16_kib_is_413(server):
    head = ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n" % auth_header()).encode()
    chunks = b'%x\r\n{"data":{"x":"\r\n' % len(b'{"data":{"x":"')
    for _ in range(5):
        chunks += b"%x\r\n%s\r\n" % (4000, b"a" * 4000)
    chunks += b'%x\r\n"}}\r\n0\r\n\r\n' % len(b'"}}')
    with RawConn(server.port) as conn:
        conn.try_send(head + chunks)
        resp = conn.read_response()
    assert resp is not None and resp.status == 413, resp


def test_chunked_body_under_limit_is_accepted(server):
    head = ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n" % auth_header()).encode()
    body = b'{"ttl": 77, "data": {"k": "chunked"}}'
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                      for i in range(0, len(body), 7)) + b"0\r\n\r\n"
    resp = raw_request(server.port, head + chunks)
    assert resp is not None and resp.status == 201, resp
    doc = resp.json()
    assert doc["data"] == {"k": "chunked"}
    assert doc["expires_at"] == doc["created_at"] + 77


def test_requests_library_large_body_is_413(server, user):
    r = server.post("/session", token=make_token(user),
                    data=b'{"data":{"x":"' + b"a" * 20000 + b'"}}',
                    headers={"Content-Type": "application/json"})
    assert_problem(r, 413)


# ---------------------------------------------------------------- header limits

def test_headers_over_8_kib(server):
    req = ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n" % ("p" * 9000)).encode()
    resp = raw_request(server.port, req)
    assert resp is not None, "connection closed without an answer"
    assert resp.status in (431, 400), resp
    many = "".join("X-H%03d: %s\r\n" % (i, "v" * 100) for i in range(100))
    resp = raw_request(server.port, ("GET /healthz HTTP/1.1\r\nHost: x\r\n%s\r\n" % many).encode())
    assert resp is not None and resp.status in (431, 400), resp
    assert server.get("/healthz").status_code == 200


# Request headers over 8 KiB in the shapes a client (or a test) is likely to
# send, up to what fits in the connection's memory (HTTP_POOL_SIZE, 32 KiB):
# each gets the service's own problem+json 431, never a closed connection
# or the library's page (the teardown's contract check sees the body too).
@pytest.mark.parametrize("count,size", [(1, 8193), (1, 16384), (1, 20000), (1, 30000),
                                        (1, 32000), (128, 100), (150, 100), (64, 256),
                                        (80, 256), (250, 50)])
def test_oversized_headers_get_a_problem(server, count, size):
    if count == 1:
        head = "X-Pad: %s\r\n" % ("p" * size)
    else:
        head = "".join("X-H%03d: %s\r\n" % (i, "v" * size) for i in range(count))
    resp = raw_request(server.port, ("GET /healthz HTTP/1.1\r\nHost: x\r\n%s\r\n" % head).encode())
    assert resp is not None, "connection closed without an answer"
    assert resp.status == 431, resp
    assert resp.header("content-type") == "application/problem+json", resp
    assert resp.json()["status"] == 431


def pad_request(size):
    return ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n" % ("p" * size)).encode()


# Larger than the connection's memory: the library answers 431 itself, with
# its own page (a documented limit, CONTRACT-NOTES), but still 431.
@pytest.mark.parametrize("size", [32768, 40000, 65536])
def test_headers_beyond_the_pool_still_get_431(server, size, library_pages):
    resp = raw_request(server.port, pad_request(size))
    assert resp is not None, "connection closed without an answer"
    assert resp.status == 431, resp
    assert server.get("/healthz").status_code == 200


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="libmicrohttpd 0.9.75: request headers that fill the connection's "
                   "memory to within the answer's own headers (one header of about 32.4-32.6 KB "
                   "with the 32 KiB pool) leave no room to answer: the connection is closed")
def test_headers_at_the_pools_edge_get_an_answer(server, library_pages):
    resp = raw_request(server.port, pad_request(32500))
    assert resp is not None, "connection closed without an answer"
    assert resp.status == 431, resp


def test_headers_under_8_kib_are_fine(server):
    req = ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n" % ("p" * 6000)).encode()
    resp = raw_request(server.port, req)
    assert resp is not None and resp.status == 200, resp


# ---------------------------------------------------------------- framing

def test_content_length_with_transfer_encoding_is_400(server):
    body = b'{"ttl": 60}'
    req = ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
           "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
           % (auth_header(), len(body))).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    resp = raw_request(server.port, req)
    assert resp is not None, "connection closed without an answer"
    assert resp.status == 400, resp


@pytest.fixture
def library_pages():
    """For requests libmicrohttpd refuses before the service sees them."""
    apitools.LIBRARY_PAGES_ALLOWED = True
    yield
    apitools.LIBRARY_PAGES_ALLOWED = False


# raises=AssertionError: only the test's own assertions are the expected
# failure; a contract check failing in teardown (pytest.fail) is not absorbed
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="libmicrohttpd 0.9.75 answers an unparseable "
                   "Content-Length itself, with an HTML page (and its header block twice)")
def test_framing_errors_answered_by_the_library(server, library_pages):
    # library_pages: the library's own page is the known limitation this test
    # keeps visible; any other contract violation still fails in teardown
    req = ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
           "Content-Length: abc\r\n\r\n{}" % auth_header()).encode()
    resp = raw_request(server.port, req)
    assert resp is not None and resp.status == 400
    assert resp.header("content-type") == "application/problem+json"


@pytest.mark.parametrize("cl", ["abc", "-1", "1, 2", "+5", "0x10", "99999999999999999999999"])
def test_invalid_content_length_is_rejected(server, cl, library_pages):
    req = ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
           "Content-Length: %s\r\n\r\n{}" % (auth_header(), cl)).encode()
    resp = raw_request(server.port, req)
    assert resp is None or resp.status in (400, 413), resp
    assert server.get("/healthz").status_code == 200


def test_conflicting_content_lengths_are_400(server):
    req = ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
           "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} " % auth_header()).encode()
    resp = raw_request(server.port, req)
    assert resp is not None and resp.status == 400, resp  # ours: problem+json, then close
    assert resp.header("content-type") == "application/problem+json"


def test_keep_alive_serves_several_requests(server, user):
    tok = make_token(user)
    with RawConn(server.port) as conn:
        for _ in range(3):
            conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = conn.read_response()
            assert resp is not None and resp.status == 200 and resp.json() == {"status": "ok"}
        body = b'{"data": {"n": 1}}'
        conn.send(http_request_bytes("POST", "/session", {
            "Authorization": "Bearer %s" % tok, "Content-Type": "application/json"}, body))
        created = conn.read_response()
        assert created is not None and created.status == 201, created
        sid = created.json()["id"]
        conn.send(http_request_bytes("GET", "/session/%s" % sid,
                                     {"Authorization": "Bearer %s" % tok}))
        read = conn.read_response()
        assert read.status == 200 and read.json()["data"] == {"n": 1}
        conn.send(http_request_bytes("GET", "/nope"))
        assert conn.read_response().status == 404
        conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.read_response().status == 200


def test_pipelined_requests_answered_in_order(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        statuses = []
        bodies = []
        for _ in range(4):
            resp = conn.read_response()
            assert resp is not None
            statuses.append(resp.status)
            bodies.append(resp.json())
    assert statuses == [200, 200, 404, 200]
    assert bodies[0] == {"status": "ok"} and bodies[1] == {"status": "ready"}


def test_connection_close_is_honoured(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resp = conn.read_response()
        assert resp is not None and resp.status == 200
        assert conn.wait_closed(3), "server kept the connection open after Connection: close"


def test_http_1_0_request(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        resp = conn.read_response()
        assert resp is not None and resp.status == 200
        assert conn.wait_closed(3)


def test_requests_session_reuses_connection(server, user):
    tok = make_token(user)
    with requests.Session() as s:
        s.headers["Authorization"] = "Bearer %s" % tok
        for _ in range(5):
            r = s.post(server.base + "/session", timeout=10)
            assert r.status_code == 201
        r = s.get(server.base + "/users/%s/sessions" % user, timeout=10)
        assert len(r.json()["sessions"]) == 5


# ---------------------------------------------------------------- garbage

GARBAGE = [
    b"GARBAGE\r\n\r\n",
    b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /healthz\r\n\r\n",
    b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nName : v\r\n\r\n",
    b"\r\n\r\n\r\n\r\nGARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /session HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"G" * 20000 + b"\r\n\r\n",
]
GARBAGE_IDS = ["word", "binary", "method-only", "http-0.9", "extra-token-in-request-line",
               "header-without-colon", "obs-fold", "space-before-colon", "leading-crlfs",
               "bad-chunk-size", "non-ascii-target", "20k-request-line"]
assert len(GARBAGE_IDS) == len(GARBAGE)


@pytest.mark.parametrize("raw", GARBAGE, ids=GARBAGE_IDS)
def test_garbage_gets_400_or_close_and_server_keeps_serving(quick_server, raw, library_pages):
    """Runs on the CONNECTION_TIMEOUT=2 server: closing the connection at the
    idle timeout instead of answering is acceptable."""
    try:
        resp = raw_request(quick_server.port, raw, timeout=5)
    except (socket.timeout, TimeoutError):
        pytest.fail("server neither answered nor closed the connection within 5 s")
    assert resp is None or 400 <= resp.status < 500, resp
    r = quick_server.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


# ---------------------------------------------------------------- timeouts

def test_idle_and_slow_connections_are_closed(quick_server):
    port = quick_server.port
    conns = {
        "idle, nothing sent": RawConn(port, timeout=8),
        "half a request line": RawConn(port, timeout=8),
        "headers without end": RawConn(port, timeout=8),
        "body never sent": RawConn(port, timeout=8),
        "idle after a response": RawConn(port, timeout=8),
    }
    try:
        conns["half a request line"].send(b"GET /hea")
        conns["headers without end"].send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        conns["body never sent"].send(
            ("POST /session HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
             "Content-Length: 100\r\n\r\n{" % auth_header()).encode())
        c = conns["idle after a response"]
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
        # not closed too early: still usable after a short pause
        time.sleep(0.8)
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
        t0 = time.monotonic()
        still_open = []
        for name, conn in conns.items():
            left = max(0.1, 5.5 - (time.monotonic() - t0))
            if not conn.wait_closed(left):
                still_open.append(name)
        assert not still_open, "not closed within ~5 s with CONNECTION_TIMEOUT=2: %s" % still_open
    finally:
        for conn in conns.values():
            conn.close()
    assert quick_server.get("/healthz").status_code == 200


def test_trickling_client_is_disconnected(quick_server):
    """A client that sends one header byte every 0.4 s never finishes its request;
    the server must not keep it forever (slowloris)."""
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
    with RawConn(quick_server.port, timeout=1) as conn:
        t0 = time.monotonic()
        closed = False
        for byte in req:
            if time.monotonic() - t0 > 10:
                break
            if not conn.try_send(bytes([byte])):
                closed = True
                break
            if conn.wait_closed(0.4):
                closed = True
                break
        assert closed, "a trickling client was still connected after %.0f s " \
                       "(CONNECTION_TIMEOUT=2)" % (time.monotonic() - t0)


def test_idle_connections_hold_no_worker(quick_server):
    """THREADS=1: several stalled clients must not block other requests."""
    stalled = []
    try:
        for i in range(6):
            c = RawConn(quick_server.port, timeout=5)
            if i % 2:
                c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            stalled.append(c)
        time.sleep(0.2)
        t0 = time.monotonic()
        r = quick_server.get("/healthz", timeout=1.5)
        assert r.status_code == 200
        assert time.monotonic() - t0 < 1.5
    finally:
        for c in stalled:
            c.close()
