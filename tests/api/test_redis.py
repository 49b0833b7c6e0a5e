"""STORE_URL=redis://… (API.md "Configuration", "Processes": processes given the
same Redis share one set of sessions; "503 with Retry-After while the store is
unreachable").  Needs Debian's redis-server; skipped when it is not installed."""

import os
import shutil
import socket
import subprocess
import time

import pytest

from apitools import (admin_token, assert_json, assert_problem, assert_unauthorized,
                      free_port, make_token, uid, wait_until)

REDIS = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                         if os.path.exists("/usr/bin/redis-server") else None)
pytestmark = pytest.mark.skipif(REDIS is None,
                                reason="redis-server not installed (apt-get install redis-server)")


class Redis:
    def __init__(self, workdir, password=None):
        self.workdir = workdir
        self.port = free_port()
        self.password = password
        self.proc = None

    def start(self):
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.log = open(self.workdir / ("redis-%d.log" % self.port), "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        assert wait_until(self.ping, timeout=10), "redis-server did not start"
        return self

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
                return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")
        except OSError:
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "log", None):
            self.log.close()

    def url(self, db=0):
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%s127.0.0.1:%d/%d" % (auth, self.port, db)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    r = Redis(tmp_path_factory.mktemp("redis")).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def rserver(mspawn, redis):
    return mspawn("sessiond", env={"STORE_URL": redis.url(0)})


def test_readyz(rserver):
    assert assert_json(rserver.get("/readyz"), 200) == {"status": "ready"}


def test_lifecycle(rserver, user):
    tok = make_token(user)
    s = rserver.create(tok, {"ttl": 300, "data": {"a": [1, {"b": None}]}})
    got = assert_json(rserver.get("/session/%s" % s["id"], token=tok), 200)
    assert got["data"] == {"a": [1, {"b": None}]}
    assert got["expires_at"] == s["expires_at"]
    assert rserver.get("/validate", token=s["token"]).status_code == 200
    listed = assert_json(rserver.get("/users/%s/sessions" % user, token=tok), 200)["sessions"]
    assert [x["id"] for x in listed] == [s["id"]]
    assert_problem(rserver.get("/session/%s" % s["id"], token=make_token(uid())), 404)
    assert rserver.delete("/session/%s" % s["id"], token=tok).status_code == 204
    assert_problem(rserver.get("/session/%s" % s["id"], token=tok), 404)
    assert_unauthorized(rserver.get("/validate", token=s["token"]))
    assert_problem(rserver.delete("/session/%s" % s["id"], token=tok), 404)


def test_list_order_and_close_all(rserver, user):
    tok = make_token(user)
    first = rserver.create(tok)
    time.sleep(1.1)
    others = [rserver.create(tok) for _ in range(3)]
    ids = [x["id"] for x in rserver.get("/users/%s/sessions" % user, token=tok)
           .json()["sessions"]]
    assert sorted(ids) == sorted([first["id"]] + [o["id"] for o in others])
    assert ids[-1] == first["id"]
    r = rserver.delete("/users/%s/sessions?except=%s" % (user, first["id"]), token=tok)
    assert assert_json(r, 200) == {"closed": 3}
    ids = [x["id"] for x in rserver.get("/users/%s/sessions" % user, token=tok)
           .json()["sessions"]]
    assert ids == [first["id"]]
    for o in others:
        assert_unauthorized(rserver.get("/validate", token=o["token"]))


def test_expiry(rserver, user):
    tok = make_token(user)
    s = rserver.create(tok, {"ttl": 1})
    keep = rserver.create(tok, {"ttl": 600})
    time.sleep(2.2)
    assert_problem(rserver.get("/session/%s" % s["id"], token=tok), 404)
    assert_unauthorized(rserver.get("/validate", token=s["token"]))
    ids = [x["id"] for x in rserver.get("/users/%s/sessions" % user, token=tok)
           .json()["sessions"]]
    assert ids == [keep["id"]]
    r = rserver.delete("/users/%s/sessions" % user, token=tok)
    assert r.json() == {"closed": 1}


def test_slash_user(rserver):
    name = uid() + "/r"
    s = rserver.create(admin_token(), {"user_id": name})
    r = rserver.get("/users/%s/sessions" % name.replace("/", "%2F"), token=s["token"])
    assert [x["id"] for x in assert_json(r, 200)["sessions"]] == [s["id"]]


def test_split_processes_share_redis(mspawn, redis, user):
    url = redis.url(0)
    c = mspawn("createSession", env={"STORE_URL": url})
    r = mspawn("readSession", env={"STORE_URL": url})
    d = mspawn("closeSession", env={"STORE_URL": url})
    tok = make_token(user)
    s = c.create(tok)
    assert r.get("/session/%s" % s["id"], token=tok).status_code == 200
    assert r.get("/validate", token=s["token"]).status_code == 200
    assert d.delete("/session/%s" % s["id"], token=tok).status_code == 204
    assert_problem(r.get("/session/%s" % s["id"], token=tok), 404)
    assert_unauthorized(r.get("/validate", token=s["token"]))


def test_database_number_separates_stores(mspawn, redis, user):
    a = mspawn("sessiond", env={"STORE_URL": redis.url(3)})
    b = mspawn("sessiond", env={"STORE_URL": redis.url(4)})
    tok = make_token(user)
    s = a.create(tok)
    assert a.get("/session/%s" % s["id"], token=tok).status_code == 200
    assert_problem(b.get("/session/%s" % s["id"], token=tok), 404)
    assert_unauthorized(b.get("/validate", token=s["token"]))


def test_restart_of_service_keeps_sessions(pool, redis, user):
    srv = pool.start("sessiond", env={"STORE_URL": redis.url(5)})
    tok = make_token(user)
    s = srv.create(tok)
    srv.terminate()
    again = pool.start("sessiond", env={"STORE_URL": redis.url(5)})
    assert again.get("/session/%s" % s["id"], token=tok).status_code == 200
    assert again.get("/validate", token=s["token"]).status_code == 200


def test_password(spawn, tmp_path, user):
    red = Redis(tmp_path, password="s3cret-pw").start()
    try:
        srv = spawn("sessiond", env={"STORE_URL": red.url(0)})
        assert srv.get("/readyz").status_code == 200
        tok = make_token(user)
        s = srv.create(tok)
        assert srv.get("/session/%s" % s["id"], token=tok).status_code == 200
    finally:
        red.stop()


def test_redis_outage_gives_503_then_recovers(spawn, tmp_path, user):
    red = Redis(tmp_path).start()
    try:
        srv = spawn("sessiond", env={"STORE_URL": red.url(0)})
        tok = make_token(user)
        s = srv.create(tok)
        red.stop()
        r = srv.get("/readyz")
        assert_problem(r, 503)
        assert r.headers.get("Retry-After") == "1"
        for resp in (srv.post("/session", token=tok),
                     srv.get("/session/%s" % s["id"], token=tok),
                     srv.get("/users/%s/sessions" % user, token=tok),
                     srv.delete("/session/%s" % s["id"], token=tok),
                     srv.get("/validate", token=s["token"])):
            assert_problem(resp, 503)
            assert resp.headers.get("Retry-After", "").strip().isdigit(), resp.headers
        assert srv.get("/healthz").status_code == 200
        # same port again: the service reconnects by itself
        red2 = Redis(tmp_path)
        red2.port = red.port
        red2.start()
        try:
            assert wait_until(lambda: srv.get("/readyz").status_code == 200, timeout=10), \
                "readyz did not recover after Redis came back"
            r = srv.post("/session", token=tok)
            assert r.status_code == 201, r.text
        finally:
            red2.stop()
    finally:
        red.stop()
