"""sessionctl (src/admin.c; docs/REDIS.md "Moving between stores"): the
operator's tool, talking to the store directly with the service's STORE_URL.

Tests that take a server through spawn run on every store ([lmdb], [redis],
[sentinel], [cluster]) against sessions created through sessiond; the
migrations between stores (copy lmdb -> redis -> lmdb here, redis -> cluster
in test_cluster.py) pick their STORE_URLs themselves (own_store).
The binary is $SESSIOND_BIN_DIR/sessionctl, like the service's binaries.
"""

import json
import os
import re
import subprocess
import time
from urllib.parse import quote

import pytest

from apitools import (PASSTHROUGH_ENV, REDIS_KINDS, SANITIZER_PATTERNS, SECRET, SESSION_FIELDS,
                      admin_token, assert_json, assert_problem, assert_unauthorized,
                      binary_path, dead_port, http_request_bytes, make_token, raw_request,
                      uid)

VIEW = ("id", "user_id", "created_at", "expires_at", "last_seen_at", "idle_timeout",
        "idle_expires_at", "ip", "user_agent", "data")
# what an export line adds to the session object: the token rotation's state
EXPORT_ONLY = {"token_generation": 0, "rotated_at": 0}
SUMMARY_RE = re.compile(r"imported (\d+), already present (\d+), expired (\d+), refused (\d+)")
COPY_RE = re.compile(r"copied (\d+), already present (\d+)")
BIG = 12345678901234567890  # more than 64 bits: must travel as the same digits


class Ctl:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def lines(self):
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def __repr__(self):
        return "<sessionctl rc=%s out=%r err=%r>" % (self.rc, self.out[:300], self.err[:300])


@pytest.fixture
def ctl(tmp_path):
    """ctl(*args, store=URL, stdin=str, env={...}) runs sessionctl in a
    temporary working directory with a clean environment."""
    cwd = tmp_path / "ctl-cwd"
    cwd.mkdir()

    def run(*args, store=None, stdin=None, env=None, timeout=30):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for name in PASSTHROUGH_ENV:
            if name in os.environ:
                e[name] = os.environ[name]
        e.update(env or {})
        argv = [str(binary_path("sessionctl"))]
        if store is not None:
            argv += ["--store", store]
        argv += list(args)
        proc = subprocess.run(argv, input=(stdin or "").encode("utf-8"), cwd=str(cwd), env=e,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        res = Ctl(proc.returncode, proc.stdout.decode("utf-8"),
                  proc.stderr.decode("utf-8", "replace"))
        for pat in SANITIZER_PATTERNS:
            assert pat not in res.err, "sessionctl %s: %s\n%s" % (args, pat, res.err)
        assert SECRET not in res.out + res.err
        return res

    run.cwd = cwd
    return run


def view(s):
    return {k: s[k] for k in VIEW}


def listed(srv, user, token=None):
    r = srv.get("/users/%s/sessions" % quote(user, safe=""), token=token or admin_token())
    return assert_json(r, 200)["sessions"]


def make_variety(srv, user):
    """Sessions with everything a record holds: data with a big integer,
    unicode, nesting and exact number spellings; an IPv6 and an IPv4 client
    address (TRUST_PROXY=1); a user agent and none."""
    adm = admin_token()
    made = []
    bodies = [
        (b'{"user_id":%s,"ttl":900,"data":{"big":%d,"u":"\\u00e9\\ud83d\\ude00 \xe2\x82\xac",'
         b'"n":[1.50,-0.0,1E+2,{"deep":[null,true,false]}],"s":"q\\"b\\\\s\\n"}}'
         % (json.dumps(user).encode(), BIG),
         {"User-Agent": "ctl-test/1.0 (x11)", "X-Forwarded-For": "2001:db8::7, 10.0.0.1"}),
        (b'{"user_id":%s,"data":{"k":"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"}}'
         % json.dumps(user).encode(),
         {"User-Agent": None, "X-Forwarded-For": "198.51.100.23"}),
        (b'{"user_id":%s,"ttl":60}' % json.dumps(user).encode(), {}),
    ]
    for raw, headers in bodies:
        h = {"Content-Type": "application/json", "Authorization": "Bearer %s" % adm}
        h.update(headers)
        if h.get("User-Agent", "") is None:  # requests always sends one: go raw
            del h["User-Agent"]
            resp = raw_request(srv.port, http_request_bytes("POST", "/session", h, raw))
            assert resp is not None and resp.status == 201, resp
            made.append(resp.json())
            continue
        r = srv.post("/session", data=raw, headers=h)
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert made[1]["user_agent"] is None and made[0]["ip"] == "2001:db8::7"
    assert made[0]["data"]["big"] == BIG
    return made


# ==========================================================================
# list / show / close / close-user / stats, against a running service
# ==========================================================================

def test_list_and_show_match_the_service(spawn, ctl):
    srv = spawn("sessiond", env={"TRUST_PROXY": "1"})
    user = uid() + "/\u00fc"
    made = make_variety(srv, user)
    res = ctl("list", user, store=srv.store_url)
    assert res.rc == 0, res
    lines = res.lines()
    assert lines == listed(srv, user), "sessionctl list != GET /users/{id}/sessions"
    assert sorted(x["id"] for x in lines) == sorted(s["id"] for s in made)
    for line in lines:
        assert set(line) == SESSION_FIELDS, line
    for s in made:
        res = ctl("show", s["id"], store=srv.store_url)
        assert res.rc == 0, res
        got = res.lines()
        assert len(got) == 1
        assert got[0] == view(s)
        assert got[0] == assert_json(srv.get("/session/%s" % s["id"], token=admin_token()), 200)
    assert str(BIG) in ctl("show", made[0]["id"], store=srv.store_url).out
    # nothing to show: exit 1, a reason, no output
    for bad in ("A" * 22, "not an id", "x" * 65):
        res = ctl("show", bad, store=srv.store_url)
        assert res.rc == 1 and res.out == "", res
        assert "not_found" in res.err or "not found" in res.err, res
    res = ctl("list", uid(), store=srv.store_url)
    assert res.rc == 0 and res.out == "", res


def test_close_and_close_user(spawn, ctl):
    srv = spawn("sessiond")
    user, other = uid(), uid()
    tok = make_token(user)
    made = [srv.create(tok) for _ in range(4)]
    theirs = srv.create(make_token(other))

    res = ctl("close", made[0]["id"], store=srv.store_url)
    assert res.rc == 0 and res.out.strip() == "closed 1", res
    assert_problem(srv.get("/session/%s" % made[0]["id"], token=tok), 404)
    assert_unauthorized(srv.get("/validate", token=made[0]["token"]))
    assert_unauthorized(srv.get("/users/%s/sessions" % user, token=made[0]["token"]))
    res = ctl("close", made[0]["id"], store=srv.store_url)
    assert res.rc == 1 and "not_found" in res.err, res

    res = ctl("close-user", user, made[3]["id"], store=srv.store_url)
    assert res.rc == 0 and res.out.strip() == "closed 2", res
    assert [s["id"] for s in listed(srv, user)] == [made[3]["id"]]
    for s in made[1:3]:
        assert_unauthorized(srv.get("/validate", token=s["token"]))
    assert srv.get("/validate", token=made[3]["token"]).status_code == 200

    res = ctl("close-user", user, store=srv.store_url)
    assert res.rc == 0 and res.out.strip() == "closed 1", res
    assert listed(srv, user) == []
    res = ctl("close-user", user, store=srv.store_url)
    assert res.rc == 0 and res.out.strip() == "closed 0", res
    # another user's session was never touched
    assert srv.get("/validate", token=theirs["token"]).status_code == 200
    assert [s["id"] for s in listed(srv, other)] == [theirs["id"]]


def test_stats_and_export_skip_closed_and_expired(spawn, ctl, store_kind):
    srv = spawn("sessiond")
    res = ctl("stats", store=srv.store_url)
    assert res.rc == 0, res
    scheme = srv.store_url.split("://")[0]  # lmdb, redis, redis-sentinel, redis-cluster
    assert scheme == {"sentinel": "redis-sentinel", "cluster": "redis-cluster"}.get(
        store_kind, store_kind)
    assert json.loads(res.out) == {"store": scheme, "live_sessions": 0}
    user = uid()
    tok = make_token(user)
    t0 = time.monotonic()
    short = srv.create(tok, {"ttl": 1})
    made = [srv.create(tok) for _ in range(4)] + [srv.create(make_token(uid()))]
    assert srv.delete("/session/%s" % made[0]["id"], token=tok).status_code == 204
    res = ctl("stats", store=srv.store_url)
    assert json.loads(res.out)["live_sessions"] in (4, 5), res  # the ttl=1 one may be gone
    time.sleep(max(0.0, 2.2 - (time.monotonic() - t0)))
    res = ctl("stats", store=srv.store_url)
    assert res.rc == 0 and json.loads(res.out) == {"store": scheme, "live_sessions": 4}, res
    res = ctl("export", store=srv.store_url)
    assert res.rc == 0, res
    assert sorted(x["id"] for x in res.lines()) == sorted(s["id"] for s in made[1:])
    assert "exported 4" in res.err, res
    assert ctl("show", short["id"], store=srv.store_url).rc == 1
    assert short["id"] not in ctl("list", user, store=srv.store_url).out


def test_store_from_environment_and_option(spawn, ctl):
    srv = spawn("sessiond")
    s = srv.create(make_token(uid()))
    res = ctl("show", s["id"], env={"STORE_URL": srv.store_url})
    assert res.rc == 0 and res.lines()[0]["id"] == s["id"], res
    # --store wins over STORE_URL
    empty = ctl.cwd / "empty-store"
    res = ctl("show", s["id"], store="lmdb://%s" % empty, env={"STORE_URL": srv.store_url})
    assert res.rc == 1, res
    # neither: lmdb://./data in the working directory
    res = ctl("stats")
    assert res.rc == 0 and json.loads(res.out) == {"store": "lmdb", "live_sessions": 0}, res
    assert (ctl.cwd / "data").is_dir()


def test_settings_come_from_dotenv_through_the_config_table(spawn, ctl):
    """sessionctl reads the service's settings as the service does: the
    .env of its working directory (the environment still wins), and every
    value checked, so a setting the service would refuse stops it too."""
    srv = spawn("sessiond")
    s = srv.create(make_token(uid()))
    (ctl.cwd / ".env").write_text("STORE_URL=%s\nLMDB_SYNC=meta\n" % srv.store_url)
    res = ctl("show", s["id"])
    assert res.rc == 0 and res.lines()[0]["id"] == s["id"], res
    empty = ctl.cwd / "other-store"
    res = ctl("show", s["id"], env={"STORE_URL": "lmdb://%s" % empty})
    assert res.rc == 1, res  # the environment wins over .env
    (ctl.cwd / ".env").unlink()


@pytest.mark.own_store
@pytest.mark.parametrize("name,value", [("LMDB_SYNC", "sometimes"), ("LMDB_MAP_SIZE", "12"),
                                        ("REDIS_TIMEOUT_MS", "0"), ("JWT_SECRET", "short")])
def test_a_setting_the_service_refuses_stops_sessionctl(ctl, name, value):
    res = ctl("stats", env={name: value})
    assert res.rc == 2, res
    assert res.err.startswith("sessionctl: config: %s:" % name), res
    assert res.out == ""
    assert not (ctl.cwd / "data").exists(), "a refused setting still opened the store"


# ==========================================================================
# export / import
# ==========================================================================

def test_export_import_round_trip(spawn, ctl):
    src = spawn("sessiond", env={"TRUST_PROXY": "1"})
    users = [uid(), uid() + "/\u00e9\u00e8 \u65e5"]
    made = make_variety(src, users[0]) + make_variety(src, users[1])
    exp = ctl("export", store=src.store_url)
    assert exp.rc == 0 and "exported 6" in exp.err, exp
    lines = sorted(exp.out.splitlines())
    assert len(lines) == 6
    assert str(BIG) in exp.out and "1.50" in exp.out and "-0.0" in exp.out
    by_id = {json.loads(line)["id"]: json.loads(line) for line in lines}
    assert by_id == {s["id"]: dict(view(s), **EXPORT_ONLY) for s in made}

    dst = spawn("sessiond")  # a fresh, empty store of the same kind
    imp = ctl("import", store=dst.store_url, stdin=exp.out)
    assert imp.rc == 0, imp
    assert SUMMARY_RE.search(imp.err).groups() == ("6", "0", "0", "0"), imp.err
    again = ctl("export", store=dst.store_url)
    assert sorted(again.out.splitlines()) == lines, "export after import differs"
    # the service on the new store: same sessions, the old tokens still work
    for s in made:
        got = assert_json(dst.get("/session/%s" % s["id"], token=admin_token()), 200)
        assert got == view(s)
        v = dst.get("/validate", token=s["token"])
        assert v.status_code == 200 and v.headers.get("X-Session-Id") == s["id"], v.text
    for user in users:
        assert [x["id"] for x in listed(dst, user)] == [x["id"] for x in listed(src, user)]
    assert dst.delete("/session/%s" % made[0]["id"], token=made[0]["token"]).status_code == 204
    assert_unauthorized(dst.get("/validate", token=made[0]["token"]))
    assert src.get("/validate", token=made[0]["token"]).status_code == 200  # other store
    # importing the same lines again adds nothing (and does not bring back the closed one)
    imp = ctl("import", store=dst.store_url, stdin=exp.out)
    assert imp.rc == 0, imp
    assert SUMMARY_RE.search(imp.err).groups() == ("1", "5", "0", "0"), imp.err


def session_line(sid, user, created, expires, **over):
    d = {"id": sid, "user_id": user, "created_at": created, "expires_at": expires,
         "last_seen_at": created, "ip": "192.0.2.1", "user_agent": None, "data": {}}
    d.update(over)
    return json.dumps(d)


def test_import_refuses_garbage_lines(spawn, ctl):
    srv = spawn("sessiond")
    user = uid()
    t = int(time.time())
    good1 = srv.create(make_token(user), {"data": {"n": 1}})
    exported = ctl("export", store=srv.store_url).out.strip()
    ctl("close", good1["id"], store=srv.store_url)
    good2 = "Q" * 21 + "x"
    text = "\n".join([
        exported,                                                    # 1 ok
        "garbage",                                                   # 2 refused
        "{}",                                                        # 3 refused
        session_line("bad id!" + "A" * 20, user, t, t + 600),        # 4 refused
        session_line(good2, user, t, t + 600, data={"k": [1, 2]}),   # 5 ok
        "",                                                          # blank: skipped
        session_line("E" * 22, user, t - 100, t - 10),               # 7 expired
        session_line("D" * 22, user, t, t + 600, data=[1]),          # 8 refused
        session_line("F" * 22, user, t, t + 600)[:-1],               # 9 refused (cut)
    ]) + "\n"
    res = ctl("import", store=srv.store_url, stdin=text)
    assert res.rc != 0, res
    for n in (2, 3, 4, 8, 9):
        assert re.search(r"\bline %d\b" % n, res.err), "line %d not reported: %s" % (n, res.err)
    for n in (1, 5, 6, 7):
        assert not re.search(r"\bline %d\b" % n, res.err), res.err
    assert SUMMARY_RE.search(res.err).groups() == ("2", "0", "1", "5"), res.err
    # the good lines were imported all the same, the others were not
    tok = make_token(user)
    assert srv.get("/session/%s" % good1["id"], token=tok).json()["data"] == {"n": 1}
    assert srv.get("/session/%s" % good1["id"], token=tok).status_code == 200
    assert assert_json(srv.get("/session/%s" % good2, token=tok), 200)["data"] == {"k": [1, 2]}
    assert srv.get("/validate", token=good1["token"]).status_code == 200
    for bad in ("E" * 22, "D" * 22, "F" * 22):
        assert_problem(srv.get("/session/%s" % bad, token=tok), 404)
    assert sorted(x["id"] for x in listed(srv, user)) == sorted([good1["id"], good2])


# ==========================================================================
# copy between stores (migration)
# ==========================================================================

@pytest.mark.own_store
def test_copy_lmdb_to_redis_and_back(spawn, ctl, suite_redis, tmp_path):
    lmdb1 = "lmdb://%s" % (tmp_path / "lmdb-1")
    redis_url = suite_redis.url(suite_redis.new_db())
    lmdb2 = "lmdb://%s" % (tmp_path / "lmdb-2")

    old = spawn("sessiond", env={"STORE_URL": lmdb1, "TRUST_PROXY": "1"})
    u1, u2 = uid(), uid() + "/\u00fc"
    made = make_variety(old, u1) + make_variety(old, u2)
    gone = old.create(make_token(u1))
    assert old.delete("/session/%s" % gone["id"], token=gone["token"]).status_code == 204

    res = ctl("copy", lmdb1, redis_url)
    assert res.rc == 0, res
    assert COPY_RE.search(res.err).groups() == ("6", "0"), res.err
    res = ctl("copy", lmdb1, redis_url)
    assert res.rc == 0 and COPY_RE.search(res.err).groups() == ("0", "6"), res
    assert "already present 6" in res.err

    new = spawn("sessiond", env={"STORE_URL": redis_url})
    for s in made:
        assert assert_json(new.get("/session/%s" % s["id"], token=admin_token()), 200) == view(s)
        v = new.get("/validate", token=s["token"])   # the original session tokens
        assert v.status_code == 200, v.text
        assert v.headers.get("X-Session-Id") == s["id"]
        # header values travel as raw octets (UTF-8); requests reads them as latin-1
        assert v.headers.get("X-User-Id").encode("latin-1").decode("utf-8") == s["user_id"]
    for user in (u1, u2):
        assert [x["id"] for x in listed(new, user)] == [x["id"] for x in listed(old, user)]
    assert_problem(new.get("/session/%s" % gone["id"], token=admin_token()), 404)
    assert_unauthorized(new.get("/validate", token=gone["token"]))
    # a copied session token is a caller token on the new store
    assert new.get("/users/%s/sessions" % u1, token=made[0]["token"]).status_code == 200
    # closing on the new store works and is final there
    assert new.delete("/session/%s" % made[0]["id"], token=made[0]["token"]).status_code == 204
    assert_unauthorized(new.get("/validate", token=made[0]["token"]))
    r = new.delete("/users/%s/sessions" % quote(u2, safe=""), token=admin_token())
    assert assert_json(r, 200) == {"closed": 3}
    res = ctl("stats", store=redis_url)
    assert json.loads(res.out) == {"store": "redis", "live_sessions": 2}, res

    # and back, to a fresh LMDB
    res = ctl("copy", redis_url, lmdb2)
    assert res.rc == 0 and COPY_RE.search(res.err).groups() == ("2", "0"), res
    back = spawn("sessiond", env={"STORE_URL": lmdb2})
    for s in made[1:3]:
        assert assert_json(back.get("/session/%s" % s["id"], token=admin_token()), 200) == \
            view(s)
        assert back.get("/validate", token=s["token"]).status_code == 200
    for s in [made[0]] + made[3:]:
        assert_problem(back.get("/session/%s" % s["id"], token=admin_token()), 404)
    assert [x["id"] for x in listed(back, u1)] == [x["id"] for x in listed(new, u1)]
    res = ctl("copy", redis_url, lmdb2)
    assert res.rc == 0 and COPY_RE.search(res.err).groups() == ("0", "2"), res
    assert back.delete("/session/%s" % made[1]["id"], token=made[1]["token"]).status_code == 204
    assert_unauthorized(back.get("/validate", token=made[1]["token"]))


@pytest.mark.own_store
def test_copy_from_an_unreachable_store_fails(ctl, tmp_path):
    dead = "redis://127.0.0.1:%d/0" % dead_port()
    t0 = time.monotonic()
    res = ctl("copy", dead, "lmdb://%s" % (tmp_path / "to"), env={"REDIS_TIMEOUT_MS": "300"})
    assert res.rc != 0, res
    assert "unavailable" in res.err, res
    assert time.monotonic() - t0 < 10
    res = ctl("copy", "lmdb://%s" % (tmp_path / "from"), dead, env={"REDIS_TIMEOUT_MS": "300"})
    assert res.rc == 0 and COPY_RE.search(res.err).groups() == ("0", "0"), \
        "an empty source copies nothing, wherever to: %r" % res


# ==========================================================================
# errors
# ==========================================================================

USAGE_ERRORS = [
    [], ["nope"], ["list"], ["list", "a", "b"], ["show"], ["show", "a", "b"], ["close"],
    ["close", "a", "b"], ["close-user"], ["close-user", "a", "b", "c"], ["stats", "x"],
    ["export", "x"], ["import", "x"], ["copy"], ["copy", "lmdb:///tmp/x"],
    ["copy", "a", "b", "c"], ["--store"], ["--store", "lmdb:///nonexistent/x"],
    ["stats", "--store", "lmdb:///tmp/x"], ["LIST", "a"], ["--help"],
]


@pytest.mark.own_store
@pytest.mark.parametrize("args", USAGE_ERRORS, ids=[" ".join(a) or "(none)" for a in USAGE_ERRORS])
def test_usage_errors_exit_2(ctl, args):
    res = ctl(*args)
    assert res.rc == 2, res
    assert res.err.startswith("usage: sessionctl"), res
    assert res.out == "", res
    assert not (ctl.cwd / "data").exists(), "a usage error opened the default store"


@pytest.mark.own_store
@pytest.mark.parametrize("url", ["ftp://x", "nonsense", "redis://", "redis://h:99999",
                                 "redis://h/abc"])
def test_bad_store_url(ctl, url):
    res = ctl("stats", store=url)
    assert res.rc == 1, res
    assert "STORE_URL" in res.err, res
    assert res.out == ""


@pytest.mark.own_store
def test_unreachable_redis(ctl):
    dead = "redis://127.0.0.1:%d/0" % dead_port()
    for args in (("stats",), ("list", "bob"), ("show", "A" * 22), ("close", "A" * 22),
                 ("close-user", "bob"), ("export",)):
        t0 = time.monotonic()
        res = ctl(*args, store=dead, env={"REDIS_TIMEOUT_MS": "300"})
        assert res.rc == 1 and "unavailable" in res.err, (args, res)
        assert res.out == "", (args, res)
        assert time.monotonic() - t0 < 5, args
    res = ctl("import", store=dead, stdin=session_line("A" * 22, "bob", int(time.time()),
                                                        int(time.time()) + 60) + "\n",
              env={"REDIS_TIMEOUT_MS": "300"})
    assert res.rc == 1 and "unavailable" in res.err, res


# --------------------------------------------------------------------------
# issue 10, point 3: an import that reuses another user's id
# --------------------------------------------------------------------------

def test_import_of_a_taken_id_never_reaches_another_users_sessions(spawn, ctl, store_kind,
                                                                   stores):
    """A line whose id is already another user's session is "already present";
    the importing line's user must not see, list or close that session."""
    srv = spawn("sessiond")
    alice, mallory = uid("alice"), uid("mallory")
    a_tok, m_tok = make_token(alice), make_token(mallory)
    s = srv.create(a_tok, {"data": {"owner": "alice"}})
    t = int(time.time())
    res = ctl("import", store=srv.store_url,
              stdin=session_line(s["id"], mallory, t, t + 600) + "\n")
    counts = SUMMARY_RE.search(res.err).groups()
    if store_kind == "cluster":
        # alice's id ends with alice's placement tag, not mallory's: a cluster
        # cannot place it in mallory's slot and refuses the line (docs/REDIS.md
        # "Cluster"); found "already present" first would do as well
        assert counts in (("0", "1", "0", "0"), ("0", "0", "0", "1")), res.err
    else:
        assert counts == ("0", "1", "0", "0"), res.err
    r = srv.get("/users/%s/sessions" % quote(mallory, safe=""), token=m_tok)
    assert assert_json(r, 200)["sessions"] == []
    r = srv.delete("/users/%s/sessions" % quote(mallory, safe=""), token=m_tok)
    assert assert_json(r, 200) == {"closed": 0}
    # alice's session is untouched
    r = srv.get("/session/%s" % s["id"], token=a_tok)
    assert assert_json(r, 200)["data"] == {"owner": "alice"}
    assert srv.get("/validate", token=s["token"]).status_code == 200
    if store_kind in REDIS_KINDS:
        keys = stores.keyspace(srv)  # on a cluster, each index on its own node
        assert keys.call(keys.index_key(mallory), "ZRANGE", keys.index_key(mallory),
                         "0", "-1") == [], "a refused SET NX left the id in the other user's index"
        assert keys.call(keys.index_key(alice), "ZRANGE", keys.index_key(alice),
                         "0", "-1") == [s["id"]]
        if keys.cluster:  # the id is alice's (her tag): no alias, no record in mallory's slot
            assert keys.call(keys.alias_key(s["id"]), "EXISTS", keys.alias_key(s["id"])) == 0
            other = keys.user_slot_session_key(s["id"], mallory)
            assert keys.call(other, "EXISTS", other) == 0


def test_list_and_close_all_check_each_records_owner(spawn, store_kind, stores):
    """Redis: an index entry that points at another user's session (left by
    an older version, or a crash) is neither listed nor closed."""
    if store_kind not in REDIS_KINDS:
        pytest.skip("the index is a Redis structure; LMDB indexes in the same transaction")
    srv = spawn("sessiond")
    alice, mallory = uid("alice"), uid("mallory")
    s = srv.create(make_token(alice))
    keys = stores.keyspace(srv)  # on a cluster: mallory's index, in mallory's slot
    keys.call(keys.index_key(mallory), "ZADD", keys.index_key(mallory), str(s["expires_at"]),
              s["id"])
    m_tok = make_token(mallory)
    r = srv.get("/users/%s/sessions" % quote(mallory, safe=""), token=m_tok)
    assert assert_json(r, 200)["sessions"] == []
    r = srv.delete("/users/%s/sessions" % quote(mallory, safe=""), token=m_tok)
    assert assert_json(r, 200) == {"closed": 0}
    assert srv.get("/validate", token=s["token"]).status_code == 200
