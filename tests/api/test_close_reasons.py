"""Close reasons (contract v2, "Close reasons"): every close is counted in
sessiond_sessions_closed_total{reason} under its reason, and logged as one
JSON line at level info with the event "session.closed", the session id,
the user id and the reason, never a token."""

import json
import time

import pytest

from apitools import REDIS_KINDS, admin_token, make_token, q, uid, wait_until

CLOSED = "sessiond_sessions_closed_total"
REASONS = ("closed", "closed_all", "expired", "idle", "evicted", "token_reuse")


def closes(srv):
    """Every session.closed line srv has logged so far."""
    out = []
    for line in srv.stderr_text().splitlines():
        if not line.startswith("{"):
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "session.closed":
            out.append(e)
    return out


def close_lines(srv, sids, timeout=5.0):
    """The session.closed lines of sids, once every one is there (the log
    is flushed about once a second)."""
    want = set(sids)
    found = {}

    def all_there():
        found.clear()
        for e in closes(srv):
            if e.get("session_id") in want:
                assert e.get("session_id") not in found, "two close lines for one session: %s" % e
                found[e["session_id"]] = e
        return len(found) == len(want)

    assert wait_until(all_there, timeout=timeout), "close lines missing for %s" % (
        want - set(found))
    return found


def counted(srv, reason):
    return srv.metrics().value(CLOSED, reason=reason)


def reaches(srv, reason, target):
    wait_until(lambda: counted(srv, reason) >= target, timeout=3.0)
    return counted(srv, reason)


def check_line(e, sid, user, reason, tokens):
    assert e["level"] == "info", e
    assert e["session_id"] == sid and e["user_id"] == user and e["reason"] == reason, e
    text = json.dumps(e)
    for t in tokens:
        assert t.split(".")[2][:16] not in text, "a token in a close line: %s" % e


def test_every_reason_is_exported(server):
    exported = {ls.get("reason") for ls, _ in server.metrics().select(CLOSED)}
    assert exported == set(REASONS)


def test_a_delete_is_closed_by_owner_or_administrator(server):
    user = uid("del")
    tok = make_token(user)
    a, b = server.create(tok), server.create(tok)
    before = counted(server, "closed")
    assert server.delete("/session/%s" % a["id"], token=tok).status_code == 204
    assert server.delete("/session/%s" % b["id"], token=admin_token()).status_code == 204
    assert reaches(server, "closed", before + 2) == before + 2
    lines = close_lines(server, [a["id"], b["id"]])
    for s in (a, b):
        check_line(lines[s["id"]], s["id"], user, "closed", [tok, a["token"], b["token"]])
    # a close that closes nothing is not a close
    assert server.delete("/session/%s" % a["id"], token=tok).status_code == 404
    time.sleep(1.2)
    assert counted(server, "closed") == before + 2
    assert len([e for e in closes(server) if e["session_id"] == a["id"]]) == 1


def test_close_all_logs_each_session(server):
    user = uid("all user/with \"odd\" chars")
    tok = make_token(user)
    made = [server.create(tok) for _ in range(3)]
    before = counted(server, "closed_all")
    r = server.delete("/users/%s/sessions?except=%s" % (q(user), made[0]["id"]), token=tok)
    assert r.json() == {"closed": 2}
    assert reaches(server, "closed_all", before + 2) == before + 2
    lines = close_lines(server, [s["id"] for s in made[1:]])
    for s in made[1:]:
        check_line(lines[s["id"]], s["id"], user, "closed_all", [tok] + [x["token"] for x in made])
    assert not [e for e in closes(server) if e["session_id"] == made[0]["id"]]


def test_evictions_are_logged(spawn):
    srv = spawn("sessiond", env={"SESSION_MAX_PER_USER": "2"})
    user = uid("cap")
    tok = make_token(user)
    first = srv.create(tok)
    srv.create(tok)
    third = srv.create(tok)
    assert third["evicted"] == [first["id"]]
    assert reaches(srv, "evicted", 1) == 1
    check_line(close_lines(srv, [first["id"]])[first["id"]], first["id"], user, "evicted",
               [tok, first["token"], third["token"]])


def test_expired_sessions_are_logged_when_removed(spawn, store_kind):
    """LMDB: the background purge removes them. Redis drops an expired
    session itself; its entry in the user's index (which lives as long as
    the user's longest session) is removed, and the close told, by the
    first list, close-all or create of that user that meets it."""
    srv = spawn("sessiond", env={"PURGE_INTERVAL": "1"})
    user = uid("exp")
    tok = make_token(user)
    keep = srv.create(tok, {"ttl": 600})
    s = srv.create(tok, {"ttl": 1})
    time.sleep(2.2)
    if store_kind in REDIS_KINDS:
        listed = srv.get("/users/%s/sessions" % q(user), token=tok).json()["sessions"]
        assert [x["id"] for x in listed] == [keep["id"]]
    assert reaches(srv, "expired", 1) == 1
    check_line(close_lines(srv, [s["id"]])[s["id"]], s["id"], user, "expired",
               [tok, s["token"]])
    # removed once: a second pass tells nothing more
    srv.get("/users/%s/sessions" % q(user), token=tok)
    time.sleep(1.5)
    assert counted(srv, "expired") == 1
    assert len([e for e in closes(srv) if e["session_id"] == s["id"]]) == 1
