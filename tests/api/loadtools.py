"""A create/close load whose every acknowledged write is remembered, for the
tests that break the store under it (test_failover.py: Sentinel failover;
test_cluster.py: cluster failover and resharding).

One LoadClient per load thread: one user, its acknowledged creates (201)
not closed since, its acknowledged closes (204), the closes whose outcome
is unknown (503 or no answer: either way is right), and every answer with
its time.  After the scene, read_all() reads every remembered id back.
"""

import time

from apitools import RawConn, http_request_bytes, make_token, uid


class LoadClient:
    """One load thread's user, its acknowledged writes, and every answer."""

    def __init__(self, user=None, prefix="fo"):
        self.user = user or uid(prefix)
        self.token = make_token(self.user, exp_in=3600)
        self.live = set()      # acknowledged creates, not closed since
        self.closed = set()    # acknowledged closes
        self.unknown = set()   # a 503 (or no answer) to a close: either way
        self.answers = []      # (monotonic time, kind, status)
        self.bad = []          # answers the contract does not allow here

    def successes_after(self, t):
        """Times of this client's 201/204 answers after monotonic time t."""
        return [a for a, _, s in list(self.answers) if a > t and s in (201, 204)]


def load(port, cl, stop, pause_after_503=0.02):
    """Until stop is set: POST /session, and every third request (when the
    client has a live session) DELETE /session/{its oldest}, on one kept-alive
    connection.  201/204, or 503 with Retry-After: anything else (and a
    dropped connection) goes to cl.bad."""
    auth = {"Authorization": "Bearer %s" % cl.token}
    conn = None
    n = 0
    while not stop.is_set():
        n += 1
        if conn is None:
            try:
                conn = RawConn(port, timeout=10)
            except OSError as exc:
                cl.bad.append("connect: %r" % exc)
                return
        if cl.live and n % 3 == 0:
            sid = sorted(cl.live)[0]
            kind = "close"
            req = http_request_bytes("DELETE", "/session/%s" % sid, auth)
        else:
            sid = None
            kind = "create"
            req = http_request_bytes("POST", "/session", dict(
                auth, **{"Content-Type": "application/json"}), b'{"ttl": 3600}')
        try:
            conn.sent = b""
            conn.send(req)
            resp = conn.read_response()
            if resp is None:
                raise EOFError("connection closed without an answer")
        except Exception as exc:  # noqa: BLE001 - the service must not drop us
            cl.bad.append("%s: no answer: %r" % (kind, exc))
            conn.close()
            conn = None
            if kind == "close":
                cl.live.discard(sid)
                cl.unknown.add(sid)
            continue
        cl.answers.append((time.monotonic(), kind, resp.status))
        if resp.status == 503:
            if not resp.header("Retry-After"):
                cl.bad.append("%s: 503 without Retry-After" % kind)
            if kind == "close":  # it may or may not have closed it
                cl.live.discard(sid)
                cl.unknown.add(sid)
            time.sleep(pause_after_503)
        elif kind == "create" and resp.status == 201:
            cl.live.add(resp.json()["id"])
        elif kind == "close" and resp.status == 204:
            cl.live.discard(sid)
            cl.closed.add(sid)
        else:
            cl.bad.append("%s answered %d: %r" % (kind, resp.status, resp.body[:200]))
            if kind == "close":
                cl.live.discard(sid)
                cl.unknown.add(sid)
    if conn is not None:
        conn.close()


def read_all(port, token, ids):
    """GET /session/{id} for every id, pipelined on one connection:
    {id: status}."""
    out = {}
    ids = list(ids)
    h = {"Authorization": "Bearer %s" % token}
    with RawConn(port, timeout=20) as conn:
        for i in range(0, len(ids), 200):
            part = ids[i:i + 200]
            conn.sent = b""
            conn.send(b"".join(http_request_bytes("GET", "/session/%s" % s, h) for s in part))
            for s in part:
                out[s] = conn.read_response().status
    return out


def longest_outage(clients, t_from):
    """(seconds, from, to): the longest stretch without any success (201,
    204) among all clients' answers that ends after t_from."""
    ok_times = sorted(t for cl in clients for t, _, s in list(cl.answers) if s in (201, 204))
    gap, gap_from, gap_to = 0.0, t_from, t_from
    for a, b in zip(ok_times, ok_times[1:]):
        if b > t_from and b - a > gap:
            gap, gap_from, gap_to = b - a, a, b
    return gap, gap_from, gap_to
