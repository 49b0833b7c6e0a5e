"""Hostile clients all at once (API.md "Responses and errors": "A slow or idle
client is disconnected after a timeout and holds no worker"; CONTRACT-NOTES
"Limits": each whole request within CONNECTION_TIMEOUT).

A server with CONNECTION_TIMEOUT=3 and CONNECTION_LIMIT=2000 faces, at once:
  * 500 slowloris connections, each sending one header byte every 2 s and
    replaced as soon as the server drops it (so 500 stay open all along);
  * 5 slow request bodies (Content-Length 1000 announced, one byte every 0.5 s);
  * 10 clients that pipeline GET /metrics requests into a small receive
    buffer and never read an answer (the server's send buffer fills).
Meanwhile 500 normal requests (GET /validate with a live session token, and
POST /session on a connection of its own) are timed one by one: every one
answered correctly, with p99 under 50 ms.  Every slowloris and slow-body
connection sees EOF within CONNECTION_TIMEOUT + 3 s of connecting (and not
before CONNECTION_TIMEOUT - 0.5 s), and the non-readers are dropped by the
server (their sockets read EOF/reset long before every answer was sent).

The hostile clients run in a separate Python process, so the timed client
does not wait for the GIL behind 500 sockets; the p99 is taken on a warmed
server over the whole sample.  Runs on both stores (~18 s each).

test_connection_closed_mid_request_is_released_at_once: a connection whose
client sent part of a request and closed is released at once, not held until
CONNECTION_TIMEOUT (the watcher in src/http.c shuts down such sockets).
"""

import json
import math
import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apitools import RawConn, http_request_bytes, make_token, uid

TIMEOUT = 3
SLOWLORIS = 500
SLOW_BODIES = 5
NON_READERS = 10
SAMPLES = 500
# 50 ms is the limit; tests/tsan.sh raises it (ThreadSanitizer's
# slowdown is not what that run measures).
P99_LIMIT_MS = float(os.environ.get("HARDENING_P99_LIMIT_MS", "50"))
HOSTILE_SECONDS = 11.0


def raise_nofile(want=8192):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


# ---------------------------------------------------------------- the hostile process

def hostile_main(port, token, seconds, out=sys.stdout):
    """Runs in a child process: the slow and non-reading clients.  Prints
    READY once all are connected, then one JSON line with what it saw."""
    raise_nofile()
    sel = selectors.DefaultSelector()
    t_start = time.monotonic()
    slow_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    body_head = ("POST /session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" % token).encode()
    lives = {"slowloris": [], "slow body": []}   # (seconds open, how it ended)
    conns = {}                                   # socket -> [kind, opened, next_send, sent]
    stopping = False

    def open_one(kind):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        now = time.monotonic()
        if kind == "slow body":
            s.send(body_head)
            conns[s] = [kind, now, now + 0.5, 0]
        else:
            s.send(slow_head[:1])
            conns[s] = [kind, now, now + 2.0, 1]
        sel.register(s, selectors.EVENT_READ)

    def ended(s, how):
        kind, opened = conns[s][0], conns[s][1]
        lives[kind].append((time.monotonic() - opened, how))
        sel.unregister(s)
        s.close()
        del conns[s]
        if not stopping:
            open_one(kind)

    # non-readers: small receive buffer, pipeline until the socket takes no more
    readers_out = []
    req = http_request_bytes("GET", "/metrics")
    for _ in range(NON_READERS):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        sent = 0
        try:
            while sent < 4000:
                s.send(req)
                sent += 1
        except BlockingIOError:
            pass
        readers_out.append([s, sent, time.monotonic()])
    for _ in range(SLOW_BODIES):
        open_one("slow body")
    opened = 0
    while opened < SLOWLORIS:   # ramp: ~250 a second, so their timeouts are spread
        open_one("slowloris")
        opened += 1
        time.sleep(max(0.0, (t_start + 2.0 * opened / SLOWLORIS) - time.monotonic()))
    print("READY", flush=True, file=out)
    deadline = t_start + seconds
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except (ConnectionResetError, OSError):
                ended(s, "reset")
                continue
            if not data:
                ended(s, "eof")
            else:
                ended(s, "answered %r" % data[:40])
        now = time.monotonic()
        for s, st in list(conns.items()):
            if now >= st[2]:
                kind = st[0]
                chunk = b"a" if kind == "slow body" else (
                    slow_head[st[3]:st[3] + 1] if st[3] < len(slow_head) else b"s")
                try:
                    s.send(chunk)
                    st[3] += 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    ended(s, "send failed")
                    continue
                st[2] = now + (0.5 if kind == "slow body" else 2.0)
    stopping = True
    still_open = [(time.monotonic() - st[1], st[0]) for st in conns.values()]
    for s in list(conns):
        sel.unregister(s)
        s.close()
    # the non-readers: has the server given up on them?  Read what is there.
    readers = []
    for s, sent, t0 in readers_out:
        s.setblocking(True)
        s.settimeout(3.0)
        got, how = b"", "open"
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    how = "eof"
                    break
                got += chunk
        except socket.timeout:
            how = "open"
        except OSError:
            how = "reset"
        readers.append({"sent": sent, "answers": got.count(b"HTTP/1.1 200"), "end": how,
                        "age": time.monotonic() - t0})
        s.close()
    print(json.dumps({"lives": lives, "still_open": still_open, "readers": readers}),
          flush=True, file=out)


# ---------------------------------------------------------------- the test

def timed(fn):
    t0 = time.perf_counter()
    ok = fn()
    return (time.perf_counter() - t0) * 1000.0, ok


def assert_cut_off_in_time(report):
    """The hostile clients' report: every slow connection was cut off by the
    timeout, neither late nor early, and the non-readers were dropped."""
    limit = TIMEOUT + 3.0
    for kind in ("slowloris", "slow body"):
        lives = report["lives"][kind]
        assert lives, "no %s connection was ever closed by the server" % kind
        late = [x for x in lives if x[0] > limit]
        assert not late, "%d %s connections closed later than %.0f s: %s" % (
            len(late), kind, limit, late[:5])
        early = [x for x in lives if x[0] < TIMEOUT - 0.5]
        assert not early, "%s connections closed before CONNECTION_TIMEOUT: %s" % (kind, early[:5])
        answered = [x for x in lives if x[1].startswith("answered")]
        assert not answered, "%s connections got an answer: %s" % (kind, answered[:3])
    assert len(report["lives"]["slowloris"]) >= SLOWLORIS, \
        "only %d slowloris connections were closed in %.0f s" % (
            len(report["lives"]["slowloris"]), HOSTILE_SECONDS)
    overdue = [x for x in report["still_open"] if x[0] > limit]
    assert not overdue, "connections still open after %.0f s: %s" % (limit, overdue[:5])
    # the non-readers were dropped: not every answer was sent, and the socket is closed
    for r in report["readers"]:
        assert r["end"] in ("eof", "reset"), "a non-reading client is still connected: %r" % r
        assert r["answers"] < r["sent"], "a non-reader got every answer (never blocked?): %r" % r


@pytest.mark.concurrency
def test_normal_traffic_fast_while_hostile_clients_are_cut_off(spawn, store_kind):
    raise_nofile()
    srv = spawn("sessiond", env={"CONNECTION_TIMEOUT": str(TIMEOUT), "CONNECTION_LIMIT": "2000"})
    user = uid("calm")
    tok = make_token(user)
    live = srv.create(tok)
    validate = http_request_bytes("GET", "/validate",
                                  {"Authorization": "Bearer %s" % live["token"]})
    create = http_request_bytes("POST", "/session", {"Authorization": "Bearer %s" % tok,
                                                     "Content-Type": "application/json"},
                                b'{"ttl": 300}')
    keep = {"conn": None, "used": 0.0}

    def do_validate():
        if keep["conn"] is None or time.monotonic() - keep["used"] > 1.0:
            if keep["conn"] is not None:
                keep["conn"].close()
            keep["conn"] = RawConn(srv.port, timeout=10)
        keep["conn"].sent = b""
        keep["conn"].send(validate)
        r = keep["conn"].read_response()
        keep["used"] = time.monotonic()
        return r is not None and r.status == 200 and r.header("X-Session-Id") == live["id"]

    def do_create():
        with RawConn(srv.port, timeout=10) as cn:
            cn.send(create)
            r = cn.read_response()
        return r is not None and r.status == 201

    for i in range(120):  # warm-up
        do_create() if i % 4 == 3 else do_validate()

    here = Path(__file__).resolve().parent
    code = ("import sys; sys.path.insert(0, %r); import test_hostile as t; "
            "t.hostile_main(%d, %r, %r)" % (str(here), srv.port, tok, HOSTILE_SECONDS))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=str(here))
    try:
        first = child.stdout.readline()
        assert first.strip() == "READY", "hostile clients did not start: %r %s" % (
            first, child.stderr.read() if child.poll() is not None else "")
        old_switch = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        samples, failures = [], []
        try:
            for i in range(SAMPLES):
                kind = "create" if i % 4 == 3 else "validate"
                try:
                    ms, ok = timed(do_create if kind == "create" else do_validate)
                except Exception as exc:  # noqa: BLE001
                    ms, ok = float("inf"), False
                    failures.append("%s: %r" % (kind, exc))
                    keep["conn"] = None
                if not ok and len(failures) < 20:
                    failures.append("%s answered wrongly" % kind)
                samples.append((ms, kind))
                time.sleep(0.01)
        finally:
            sys.setswitchinterval(old_switch)
        out, err = child.communicate(timeout=HOSTILE_SECONDS + 40)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    if keep["conn"] is not None:
        keep["conn"].close()
    assert child.returncode == 0, "hostile client process failed: %s" % err[-2000:]
    report = json.loads(out.strip().splitlines()[-1])

    lat = sorted(ms for ms, _ in samples)
    p50 = lat[len(lat) // 2]
    p99 = lat[math.ceil(0.99 * len(lat)) - 1]
    worst = sorted(samples, reverse=True)[:5]
    summary = ("%s: %d normal requests under attack, p50 %.1f ms, p99 %.1f ms, worst %s; "
               "slowloris closed %d, slow bodies closed %d" % (
                   store_kind, len(lat), p50, p99, [("%.1f" % m, k) for m, k in worst],
                   len(report["lives"]["slowloris"]), len(report["lives"]["slow body"])))
    print(summary)
    assert not failures, "normal requests failed under attack: %s" % failures[:10]
    assert p99 < P99_LIMIT_MS, summary

    assert_cut_off_in_time(report)
    # and the server serves as before
    assert srv.get("/healthz").status_code == 200
    assert srv.get("/validate", token=live["token"]).status_code == 200


# ---------------------------------------------------------------- half-closed clients

def server_fds(srv):
    return len(os.listdir("/proc/%d/fd" % srv.proc.pid))


def corked_partial_request(port, data):
    """Connects, sends part of a request and closes: TCP_CORK puts the bytes and
    the FIN in one segment, so they reach the server together."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    s.sendall(data)
    s.close()


def test_connection_closed_mid_request_is_released_at_once(spawn):
    srv = spawn("sessiond", env={"CONNECTION_TIMEOUT": "10", "CONNECTION_LIMIT": "40"})
    time.sleep(0.2)
    base = server_fds(srv)
    for i in range(60):
        corked_partial_request(srv.port, (b"GET /vali", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-",
                                          b"POST /session HTTP/1.1\r\nHost: x\r\n"
                                          b"Content-Length: 50\r\n\r\n{\"da")[i % 3])
    time.sleep(1.0)
    held = server_fds(srv) - base
    # the client holds nothing, so the server must serve it as before
    try:
        ok = RawConn(srv.port, timeout=3)
        ok.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = ok.read_response()
        ok.close()
    except OSError as exc:
        resp = exc
    assert held <= 2, "%d connections the client had closed still held 1 s later" % held
    assert resp is not None and getattr(resp, "status", None) == 200, resp


def test_connections_beyond_the_limit_wait_their_turn(spawn):
    """CONNECTION_LIMIT=3: a fourth connection is not served while three are
    open (it waits in the kernel's queue), not even while the three keep
    the loop busy (a busy loop takes waiting connections in itself, never
    beyond the limit), and is served, on the same connection, as soon as
    one of the three closes."""
    srv = spawn("sessiond", env={"CONNECTION_LIMIT": "3", "CONNECTION_TIMEOUT": "30",
                                 "THREADS": "1"})
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    held = [RawConn(srv.port, timeout=10) for _ in range(3)]
    try:
        for cn in held:
            cn.send(req)
            assert cn.read_response().status == 200
        late = RawConn(srv.port, timeout=1.0)  # the kernel completes the handshake
        late.send(req)
        # requests completing more than a millisecond apart, none of them
        # accepted by the loop itself: each may sweep the queue
        for _ in range(20):
            for cn in held:
                cn.send(req)
                assert cn.read_response().status == 200
            time.sleep(0.003)
        try:
            early = late.read_response()
        except (socket.timeout, TimeoutError):
            early = None
        assert early is None, "a fourth connection was served at CONNECTION_LIMIT=3"
        held.pop().close()
        late.sock.settimeout(10)
        assert late.read_response().status == 200
        late.close()
        for cn in held:  # the others still served
            cn.send(req)
            assert cn.read_response().status == 200
    finally:
        for cn in held:
            cn.close()


def test_new_connections_beside_busy_ones_are_all_served(spawn):
    """100 keep-alive connections send pipelined requests without pause
    while 40 clients open, ask once and close, 3 times each;
    CONNECTION_LIMIT=110, so that the server runs at its limit and some of
    those wait their turn in the kernel's queue. Busy loops hand waiting connections to
    themselves (http.c, "accepting under load"), never beyond the limit:
    every request is answered, nothing is reset, and the server then stops
    cleanly (a loop handed more than it may take would hang)."""
    import threading
    srv = spawn("sessiond", env={"CONNECTION_LIMIT": "110", "CONNECTION_TIMEOUT": "30",
                                 "THREADS": "1"})
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    stop = threading.Event()
    errors, served = [], []

    def busy():
        try:
            with RawConn(srv.port, timeout=30) as cn:
                while not stop.is_set():
                    cn.send(req * 20)
                    for _ in range(20):
                        assert cn.read_response().status == 200
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(("busy", repr(exc)))

    def churn():
        for _ in range(3):
            try:
                with RawConn(srv.port, timeout=30) as cn:
                    cn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    served.append(cn.read_response().status)
            except Exception as exc:  # noqa: BLE001 -- reported below
                errors.append(("churn", repr(exc)))

    busy_threads = [threading.Thread(target=busy) for _ in range(100)]
    for t in busy_threads:
        t.start()
    time.sleep(0.5)
    churners = [threading.Thread(target=churn) for _ in range(40)]
    for t in churners:
        t.start()
    for t in churners:
        t.join(60)
    stop.set()
    for t in busy_threads:
        t.join(60)
    assert not errors, errors[:5]
    assert served == [200] * 120, served
    r = RawConn(srv.port, timeout=10)
    r.send(req)
    assert r.read_response().status == 200
    r.close()
