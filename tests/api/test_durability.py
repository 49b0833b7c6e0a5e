"""Persistence across restarts, kill -9, a full LMDB map, background purge
(API.md "The session object", "Responses and errors"; CONTRACT-NOTES "Limits").

Restart and kill -9 of the service run on both stores; the full map and its
purge are about LMDB itself (LMDB_MAP_SIZE): Redis has no map to fill, and
expires sessions natively (test_redis.py checks that)."""

import signal
import threading
import time

import pytest

from apitools import assert_json, assert_problem, make_token, wait_until


def test_sessions_survive_a_restart(pool, tmp_path, user):
    store = tmp_path / "store"
    srv = pool.start("sessiond", store=store)
    tok = make_token(user)
    s = srv.create(tok, {"ttl": 900, "data": {"keep": [1, {"me": True}]}})
    closed = srv.create(tok)
    assert srv.delete("/session/%s" % closed["id"], token=tok).status_code == 204
    rc, took = srv.terminate()
    assert rc in (0, -signal.SIGTERM, 128 + signal.SIGTERM), "exit status %s after SIGTERM" % rc
    assert srv.hung_on_sigterm is None, "did not exit within 5 s of SIGTERM"
    again = pool.start("sessiond", store=store)
    got = assert_json(again.get("/session/%s" % s["id"], token=tok), 200)
    for key in ("id", "user_id", "created_at", "expires_at", "data", "ip"):
        assert got[key] == s[key], key
    v = again.get("/validate", token=s["token"])
    assert v.status_code == 200 and v.headers.get("X-Session-Id") == s["id"]
    assert_problem(again.get("/session/%s" % closed["id"], token=tok), 404)
    assert again.get("/validate", token=closed["token"]).status_code == 401


def test_kill_9_loses_nothing_that_was_answered(pool, tmp_path, user):
    store = tmp_path / "store"
    srv = pool.start("sessiond", store=store)
    tok = make_token(user)
    made = [srv.create(tok, {"data": {"i": i}}) for i in range(50)]
    closed = made[::5] + made[1::5]          # 20 sessions
    for s in closed:
        assert srv.delete("/session/%s" % s["id"], token=tok).status_code == 204
    srv.kill()  # kill -9 right after the last answer
    assert srv.proc.returncode == -signal.SIGKILL
    again = pool.start("sessiond", store=store)
    closed_ids = {s["id"] for s in closed}
    missing, resurrected = [], []
    for s in made:
        r = again.get("/session/%s" % s["id"], token=tok)
        if s["id"] in closed_ids:
            if r.status_code != 404:
                resurrected.append(s["id"])
        elif r.status_code != 200 or r.json()["data"] != s["data"]:
            missing.append(s["id"])
    assert not missing, "answered 201 but lost after kill -9: %s" % missing
    assert not resurrected, "answered 204 but back after kill -9: %s" % resurrected
    listed = again.get("/users/%s/sessions" % user, token=tok).json()["sessions"]
    assert len(listed) == 30


FULL = "the session store is full; retry later"


@pytest.mark.concurrency
@pytest.mark.lmdb_only(reason="LMDB's map: processes on one file with different LMDB_MAP_SIZE")
def test_a_process_adopts_the_map_another_grew(pool, tmp_path, user):
    """Processes on one LMDB file may run with different LMDB_MAP_SIZE (a
    raised size rolled out one process at a time). When the larger one grows
    the data past a smaller one's map, the smaller one maps the file's size
    and serves on, without a restart: reads, validates, closes and token
    rotations succeed, requests racing as it remaps; only its creates keep
    within its own LMDB_MAP_SIZE (503, as a full map)."""
    store = tmp_path / "store"
    small_env = {"LMDB_MAP_SIZE": str(1 << 20)}
    small = pool.start("sessiond", store=store, env=small_env)
    closer = pool.start("sessiond", store=store, env=small_env)
    big = pool.start("sessiond", store=store, env={"LMDB_MAP_SIZE": str(16 << 20)})
    tok = make_token(user)
    first = small.create(tok, {"data": {"by": "small"}})
    # ~4 KB each, over 2 MiB in all: past the small processes' 1 MiB map
    made = [big.create(tok, {"data": {"x": "a" * 3900, "i": i}}) for i in range(600)]
    # closer's first request since is a close: a write transaction remaps
    assert closer.delete("/session/%s" % made[2]["id"], token=tok).status_code == 204
    # small's first requests since, from 8 clients at once
    answers, lock = [], threading.Lock()

    def go(k):
        for i in range(5):
            s = made[3 + (k * 5 + i) * 7 % (len(made) - 3)]
            if k % 4 == 0:
                r = small.post("/session", token=tok, json={"data": {"x": "b" * 3900}})
                ok = (r.status_code == 503 and r.json().get("detail") == FULL and
                      (r.headers.get("Retry-After") or "").isdigit())
            elif k % 4 == 1:
                r = small.get("/validate", token=s["token"])
                ok = r.status_code == 200
            else:
                r = small.get("/session/%s" % s["id"], token=tok)
                ok = r.status_code == 200 and r.json()["data"] == s["data"]
            with lock:
                answers.append((ok, r.status_code, r.text[:200]))

    ts = [threading.Thread(target=go, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(t.is_alive() for t in ts), "the small process stopped answering"
    bad = [a for a in answers if not a[0]]
    assert len(answers) == 40 and not bad, bad[:3]
    got = assert_json(small.get("/session/%s" % first["id"], token=tok), 200)
    assert got["data"] == first["data"]
    listed = assert_json(small.get("/users/%s/sessions" % user, token=tok), 200)["sessions"]
    assert len(listed) == len(made)  # first, and all made but the one closed
    # a rotation rewrites a session: not bounded by the process's own size
    r = small.post("/session/%s/refresh" % made[0]["id"], token=made[0]["token"])
    assert assert_json(r, 200)["token"] != made[0]["token"]
    assert small.delete("/session/%s" % made[1]["id"], token=tok).status_code == 204
    assert_problem(big.get("/session/%s" % made[1]["id"], token=tok), 404)
    assert small.get("/healthz").status_code == 200
    big.create(tok, {"data": {"x": "c" * 3900}})  # the larger process still creates
    # info lines reach stderr with the housekeeper's next flush (every second)
    grew = "another process grew the store"
    for srv in (small, closer):
        wait_until(lambda: grew in srv.stderr_text(), timeout=10)
        took = srv.stderr_text().count(grew)
        assert took == 1, "the file was mapped again %d times" % took
    # started after the growth: the same, from its first request
    late = pool.start("sessiond", store=store, env=small_env)
    assert late.delete("/session/%s" % made[3]["id"], token=tok).status_code == 204
    r = late.post("/session/%s/refresh" % made[4]["id"], token=made[4]["token"])
    assert assert_json(r, 200)["token"] != made[4]["token"]
    r = late.post("/session", token=tok, json={"data": {"x": "d" * 3900}})
    assert_problem(r, 503)
    assert r.json()["detail"] == FULL


def fill_until_full(srv, tok, ttl=None, attempts=2000):
    created = []
    payload = {"data": {"x": "a" * 3900}}
    if ttl:
        payload["ttl"] = ttl
    for _ in range(attempts):
        r = srv.post("/session", token=tok, json=payload)
        if r.status_code == 201:
            created.append(r.json())
            continue
        assert r.status_code == 503, "unexpected %d: %s" % (r.status_code, r.text[:300])
        return created, r
    pytest.fail("no 503 after %d creates of ~4 KB with LMDB_MAP_SIZE=1 MiB" % attempts)


@pytest.mark.lmdb_only(reason="fills a 1 MiB LMDB map (LMDB_MAP_SIZE)")
def test_full_store_answers_503_and_keeps_reading(spawn, user):
    srv = spawn("sessiond", env={"LMDB_MAP_SIZE": "1048576"})
    tok = make_token(user)
    created, full = fill_until_full(srv, tok)
    assert created, "the very first create already failed"
    assert_problem(full, 503)
    retry = full.headers.get("Retry-After")
    assert retry is not None and retry.strip().isdigit(), retry
    # nothing was written by the refused create
    listed = srv.get("/users/%s/sessions" % user, token=tok)
    assert assert_json(listed, 200)["sessions"].__len__() == len(created)
    for s in (created[0], created[len(created) // 2], created[-1]):
        r = srv.get("/session/%s" % s["id"], token=tok)
        assert assert_json(r, 200)["data"] == s["data"]
        assert srv.get("/validate", token=s["token"]).status_code == 200
    assert srv.get("/healthz").status_code == 200
    # a second attempt is refused the same way, not with a crash
    r = srv.post("/session", token=tok, json={"data": {"x": "a" * 3900}})
    assert_problem(r, 503)
    listed = srv.get("/users/%s/sessions" % user, token=tok)
    assert len(assert_json(listed, 200)["sessions"]) == len(created)


@pytest.mark.lmdb_only(reason="purge must free a full 1 MiB LMDB map; Redis expires "
                       "natively (test_redis.py::test_expired_sessions_vanish_natively)")
def test_expired_sessions_are_purged(spawn, user):
    """With a 1 MiB map and PURGE_INTERVAL=1, expired sessions must give their
    room back: after they expire, creates succeed again."""
    srv = spawn("sessiond", env={"LMDB_MAP_SIZE": "1048576", "PURGE_INTERVAL": "1"})
    tok = make_token(user)
    t0 = time.monotonic()
    created, full = fill_until_full(srv, tok, ttl=5)
    assert time.monotonic() - t0 < 5, "filling took longer than the sessions live"
    assert_problem(full, 503)
    deadline = time.monotonic() + 15
    ok = False
    while time.monotonic() < deadline:
        r = srv.post("/session", token=tok, json={"ttl": 600, "data": {"x": "a" * 3900}})
        if r.status_code == 201:
            ok = True
            break
        assert r.status_code == 503, r.text
        time.sleep(0.5)
    assert ok, "store still full 15 s after filling, though every session expired (no purge?)"
    assert_problem(srv.get("/session/%s" % created[0]["id"], token=tok), 404)
