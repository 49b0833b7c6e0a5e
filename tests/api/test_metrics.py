"""GET /metrics — Prometheus text (API.md, CONTRACT-NOTES "Metrics")."""

import math

from apitools import make_token, parse_metrics, wait_until

REQ = "sessiond_requests_total"
DUR = "sessiond_request_duration_seconds"
CREATED = "sessiond_sessions_created_total"
CLOSED = "sessiond_sessions_closed_total"


def metric_reaches(server, name, target, **labels):
    """Counters may be bumped just after the answer went out: poll briefly."""
    last = [None]

    def check():
        last[0] = server.metrics().value(name, **labels)
        return last[0] >= target

    wait_until(check, timeout=2.0)
    return last[0]


def test_required_families_present(server, user):
    server.create(make_token(user))
    m = server.metrics()
    names = m.names()
    for name in (REQ, DUR + "_bucket", DUR + "_sum", DUR + "_count", CREATED, CLOSED):
        assert name in names, "metric %s missing; have %s" % (name, sorted(names))
    assert m.types.get(REQ) == "counter"
    assert m.types.get(DUR) == "histogram"
    assert m.types.get(CREATED) == "counter"
    assert m.types.get(CLOSED) == "counter"


def test_request_counter_labels(server, user):
    server.create(make_token(user))
    m = server.metrics()
    samples = m.select(REQ)
    assert samples
    for labels, value in samples:
        assert {"route", "method", "status"} <= set(labels), labels
        assert value >= 0 and value == int(value)
    assert m.value(REQ, route="/session", method="POST", status="201") >= 1


def test_request_counter_increases(server, user):
    tok = make_token(user)
    key = dict(route="/session", method="POST", status="201")
    before = server.metrics().value(REQ, **key)
    server.create(tok)
    server.create(tok)
    after = metric_reaches(server, REQ, before + 2, **key)
    assert after == before + 2
    key404 = dict(route="/session/{id}", method="GET", status="404")
    before = server.metrics().value(REQ, **key404)
    server.get("/session/%s" % ("Q" * 22), token=tok)
    assert metric_reaches(server, REQ, before + 1, **key404) == before + 1


def test_route_label_is_the_pattern(server, user):
    tok = make_token(user)
    s = server.create(tok)
    server.get("/session/%s" % s["id"], token=tok)
    server.get("/users/%s/sessions" % user, token=tok)
    server.get("/no/such/path/%s" % user)

    def seen():
        m = server.metrics()
        return (m.value(REQ, route="/session/{id}", method="GET", status="200") >= 1
                and m.value(REQ, route="/users/{user_id}/sessions", method="GET",
                            status="200") >= 1
                and m.value(REQ, route="other", status="404") >= 1)

    assert wait_until(seen, timeout=2.0)
    text = server.get("/metrics").text
    assert s["id"] not in text, "a session id leaked into metric labels"
    assert user not in text, "a user id leaked into metric labels"


def test_sessions_created_and_closed_counters(server, user):
    tok = make_token(user)
    m = server.metrics()
    c0, d0 = m.value(CREATED), m.value(CLOSED)
    a = server.create(tok)
    server.create(tok)
    server.create(tok)
    assert metric_reaches(server, CREATED, c0 + 3) == c0 + 3
    assert server.delete("/session/%s" % a["id"], token=tok).status_code == 204
    assert metric_reaches(server, CLOSED, d0 + 1) == d0 + 1
    # a failed close and a failed create do not count
    server.delete("/session/%s" % a["id"], token=tok)
    server.post("/session", token=tok, json={"ttl": 0})
    r = server.delete("/users/%s/sessions" % user, token=tok)
    assert r.json() == {"closed": 2}
    assert metric_reaches(server, CLOSED, d0 + 3) == d0 + 3
    assert server.metrics().value(CREATED) == c0 + 3


def test_histogram_is_consistent(server, user):
    server.create(make_token(user))
    server.get("/healthz")
    m = server.metrics()
    buckets = {}
    for labels, value in m.select(DUR + "_bucket"):
        assert "le" in labels, labels
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        le = math.inf if labels["le"] in ("+Inf", "Inf", "inf") else float(labels["le"])
        buckets.setdefault(rest, []).append((le, value))
    assert buckets, "no histogram buckets"
    counts = {tuple(sorted(ls.items())): v for ls, v in m.select(DUR + "_count")}
    sums = {tuple(sorted(ls.items())): v for ls, v in m.select(DUR + "_sum")}
    for rest, series in buckets.items():
        series.sort()
        assert series[-1][0] == math.inf, "no +Inf bucket for %s" % (rest,)
        values = [v for _, v in series]
        assert values == sorted(values), "buckets not cumulative for %s: %s" % (rest, series)
        assert rest in counts and counts[rest] == series[-1][1], (rest, counts.get(rest))
        assert rest in sums and sums[rest] >= 0


def test_metrics_parse_cleanly(server):
    text = server.get("/metrics").text
    assert text.endswith("\n")
    parse_metrics(text)  # raises on an unparsable line


def test_every_status_the_service_answers_is_counted_by_number(spawn, user):
    """A 409 (the per-user cap, SESSION_LIMIT_POLICY=refuse) is counted as
    status="409", not as "other", so a status class can be read from it."""
    srv = spawn("sessiond", env={"SESSION_MAX_PER_USER": "1", "SESSION_LIMIT_POLICY": "refuse"})
    tok = make_token(user)
    srv.create(tok)
    assert srv.post("/session", token=tok).status_code == 409
    key = dict(route="/session", method="POST")
    assert metric_reaches(srv, REQ, 1, status="409", **key) == 1
    assert srv.metrics().value(REQ, status="other") == 0
