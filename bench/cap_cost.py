"""The cost of a create at SESSION_MAX_PER_USER, side by side with one below
no cap, on LMDB: one pipelined connection, 1000 sessions first, then five
rounds of 500 creates; medians. Usage (from the repository's root, after
`make`): /usr/bin/python3 bench/cap_cost.py [full|meta|none]"""
import os, sys, time, statistics
sys.path.insert(0, "tests/api")
os.environ.setdefault("SESSIOND_BIN_DIR", os.path.abspath("build"))
from apitools import Server, make_token, RawConn, http_request_bytes
import tempfile, pathlib

def run(cap, n_pre, label, sync="full"):
    d = pathlib.Path(tempfile.mkdtemp())
    srv = Server("sessiond", d, env={"SESSION_MAX_PER_USER": str(cap), "LMDB_SYNC": sync, "LOG_LEVEL": "warn"})
    srv.start()
    tok = make_token("capuser")
    h = {"Authorization": "Bearer %s" % tok}
    with RawConn(srv.port, timeout=120) as c:
        for i in range(0, n_pre, 200):
            k = min(200, n_pre - i)
            c.sent = b""
            c.send(http_request_bytes("POST", "/session", h) * k)
            for _ in range(k): c.read_response()
        rates = []
        for rnd in range(5):
            t0 = time.monotonic()
            c.sent = b""
            c.send(http_request_bytes("POST", "/session", h) * 500)
            for _ in range(500):
                r = c.read_response(); assert r.status == 201, r
            rates.append(500 / (time.monotonic() - t0))
    srv.terminate()
    print("%-40s median %.0f creates/s (rounds %s)" % (label, statistics.median(rates), [int(x) for x in rates]))
    return statistics.median(rates)

for sync in (sys.argv[1] if len(sys.argv) > 1 else "full",):
    a = run(0, 1000, "no cap, user holds 1000 (LMDB_SYNC=%s)" % sync, sync)
    b = run(1000, 1000, "cap 1000, user at the cap (LMDB_SYNC=%s)" % sync, sync)
    print("ratio at-cap / no-cap: %.2f" % (b / a))
