"""Redis Cluster (issue 15: STORE_URL redis-cluster://[auth@]h:p,h:p,...[/prefix];
docs/REDIS.md): what only the cluster has.  Every route already runs on a
cluster through the suite's [cluster] store parameter (conftest.py); this
module checks

  * the key schema: a user's index and each of the user's sessions share one
    hash slot (checked with CLUSTER KEYSLOT on the keys actually found on
    the primaries), the prefix keeps stores apart, and list, close-all and
    the per-user cap stay exact;
  * a move from a plain redis:// store (old schema: ss:s:<id>, ss:u:<user>)
    with `sessionctl copy`, including sessions whose ids older versions made
    (31 and 22 characters, a version 1 record): each is read, validated,
    listed, closed, closed-all and evicted at the cap as before;
  * under a create/close load from several threads (one user each,
    SESSION_MAX_PER_USER=0, REDIS_WAIT_REPLICAS=1), a kill -9 of a primary
    and a live `redis-cli --cluster reshard` of 3000 slots: no acknowledged
    create lost, no acknowledged close undone, no 500, every 503 with
    Retry-After, and successes for every user again within seconds.

The key names (apitools.ClusterKeySpace): P:{T}:s:<id> for an id of 34
characters (T: its last 3, the user's tag), P:{U}:u:<user> (U: the user's
tag), and for a "foreign" id (any other length) its record at P:{U}:s:<id>
with an alias P:{T}:a:<id> holding U.

What kills nodes or moves slots runs on a cluster of its own (about 2 s to
start); the rest shares the suite's cluster, each test in a key prefix of
its own.
"""

import json
import os
import random
import re
import struct
import subprocess
import threading
import time

import pytest

from apitools import (PASSTHROUGH_ENV, SANITIZER_PATTERNS, SECRET, TAG_LEN, TAGGED_ID_LEN,
                      ClusterKeySpace, RedisKeySpace, admin_token, assert_json, assert_problem,
                      assert_unauthorized, binary_path, make_token, new_cluster_prefix, q, uid,
                      user_tag, wait_until)
from loadtools import LoadClient, load, longest_outage, read_all
from redistools import RedisCluster, require_redis_cli, require_redis_server, slot_of

pytestmark = pytest.mark.own_store

WAIT = {"REDIS_WAIT_REPLICAS": "1", "SESSION_MAX_PER_USER": "0"}
RESUME_S = 5.0        # from the failover's (the reshard's) end to each user's next success
KEY_RE = re.compile(r"^(?P<prefix>[A-Za-z0-9._-]+):\{(?P<tag>[^}]*)\}:(?P<kind>[sua]):(?P<rest>.*)$",
                    re.S)
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
COPY_RE = re.compile(r"copied (\d+), already present (\d+)")
VIEW = ("id", "user_id", "created_at", "expires_at", "last_seen_at", "idle_timeout",
        "idle_expires_at", "ip", "user_agent", "data")


def view(s):
    return {k: s.get(k) for k in VIEW}


@pytest.fixture
def own_cluster(tmp_path):
    """own_cluster(**RedisCluster kwargs): a cluster of this test's own,
    stopped at the end."""
    require_redis_server()
    require_redis_cli()
    made = []

    def start(**kw):
        topo = RedisCluster(tmp_path / ("cluster%d" % len(made)), **kw)
        made.append(topo)
        topo.start()
        print("cluster of %d nodes started in %.2f s" % (len(topo.data_nodes),
                                                          topo.start_seconds))
        return topo

    yield start
    for topo in made:
        topo.stop()


def run_ctl(tmp_path, *args, stdin=None, env=None, timeout=60):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for name in PASSTHROUGH_ENV:
        if name in os.environ:
            e[name] = os.environ[name]
    e.update(env or {})
    cwd = tmp_path / "ctl-cwd"
    cwd.mkdir(exist_ok=True)
    p = subprocess.run([str(binary_path("sessionctl"))] + list(args),
                       input=(stdin or "").encode("utf-8"), cwd=str(cwd), env=e,
                       capture_output=True, timeout=timeout)
    out, err = p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")
    for pat in SANITIZER_PATTERNS:
        assert pat not in err, "sessionctl %s: %s\n%s" % (args, pat, err)
    assert SECRET not in out + err
    return p.returncode, out, err


def listed(srv, user):
    r = srv.get("/users/%s/sessions" % q(user), token=admin_token())
    return [s["id"] for s in assert_json(r, 200)["sessions"]]


def tag_slot(sid):
    """The slot of a tagged id's record: its last 3 characters' hash tag."""
    return slot_of("{%s}" % sid[-TAG_LEN:])


def keyslot(cluster, key):
    with cluster.client() as c:
        return c.call("CLUSTER", "KEYSLOT", key)


def store_keys(keys):
    """Every key of the store's prefix, found by SCAN on each primary:
    {key: the primary it was found on}."""
    found = {}
    for node in keys.redis.primaries():
        with node.client() as c:
            cursor = "0"
            while True:
                cursor, part = c.call("SCAN", cursor, "MATCH", "%s:*" % keys.prefix,
                                      "COUNT", 1000)
                for k in part:  # SCAN may answer a key twice
                    assert found.setdefault(k, node) is node, "%r on two primaries" % k
                if cursor == "0":
                    break
    return found


# ==========================================================================
# the key schema
# ==========================================================================

def test_key_schema_puts_each_user_in_one_slot(spawn, suite_cluster):
    cl = suite_cluster
    prefix = new_cluster_prefix()
    env = {"STORE_URL": cl.url(prefix=prefix), "SESSION_MAX_PER_USER": "4"}
    a, b = spawn("sessiond", env=env), spawn("sessiond", env=env)
    keys = ClusterKeySpace(cl, prefix)
    # braces, colons, slashes and non-ASCII in user ids: the user's tag, never
    # a brace of the user id, decides the slot
    users = [uid("ks") for _ in range(9)] + ["{brace}", "a}{b", "x:{y}/z", "\u00e9t\u00e9 {\u65e5}"]
    made = {}
    for i, user in enumerate(users):
        tok = make_token(user)
        made[user] = [(a, b)[(i + k) % 2].create(tok, {"ttl": 600 + k}) for k in range(3)]
    # new ids: 34 characters ending with the user's tag (apitools.user_tag
    # mirrors the service's; the tests below compute keys with it)
    for user, ss in made.items():
        for s in ss:
            assert len(s["id"]) == TAGGED_ID_LEN, s["id"]
            assert s["id"][-TAG_LEN:] == user_tag(user), (user, s["id"], user_tag(user))

    assert a.get("/readyz").status_code == 200  # a probe write on every primary
    found = store_keys(keys)
    kinds = {"s": set(), "u": set(), "a": set()}
    other = []
    for k, node in found.items():
        m = KEY_RE.match(k)
        if m is None or m.group("prefix") != prefix:
            other.append(k)
            continue
        kinds[m.group("kind")].add(k)
        # the key is where the cluster keeps its slot, and its slot is its tag's
        slot = keyslot(cl, k)
        assert slot == slot_of(k) == slot_of("{%s}" % m.group("tag")), k
        assert cl.primary_for_slot(slot) is node, (k, slot, node)
    probe = re.compile(r"^%s:\{[^}]{3}\}:ready$" % re.escape(prefix))
    assert all(probe.match(k) for k in other), \
        "keys of the store that are neither a session, an index nor a readiness probe: %r" % (
            [k for k in other if not probe.match(k)][:10])
    assert sorted(found[k].port for k in other) == sorted(p.port for p in cl.primaries()), \
        "readiness probes: %r" % {k: found[k] for k in other}
    want_s = {keys.session_key(s["id"]) for ss in made.values() for s in ss}
    want_u = {keys.index_key(u) for u in users}
    assert kinds["s"] == want_s, "session keys: missing %r, unexpected %r" % (
        sorted(want_s - kinds["s"])[:5], sorted(kinds["s"] - want_s)[:5])
    assert kinds["u"] == want_u, "index keys: missing %r, unexpected %r" % (
        sorted(want_u - kinds["u"])[:5], sorted(kinds["u"] - want_u)[:5])
    assert kinds["a"] == set(), "aliases for ids that need none: %r" % sorted(kinds["a"])[:5]

    nodes = set()
    for user, ss in made.items():
        ix = keys.index_key(user)
        ix_slot = keyslot(cl, ix)
        nodes.add(cl.primary_for_slot(ix_slot).port)
        with keys.client(ix) as c:
            assert c.call("TYPE", ix) == "zset"
            assert c.call("TTL", ix) > 0
            for s in ss:
                sk = keys.session_key(s["id"])
                assert keyslot(cl, sk) == ix_slot, "%s and its index %s: different slots" % (
                    sk, ix)
                # one node serves both: no MOVED here
                assert c.call("TYPE", sk) == "string"
                assert 0 < c.call("TTL", sk) <= 603
                assert int(c.call("ZSCORE", ix, s["id"])) == s["expires_at"]
        assert sorted(listed(a, user)) == sorted(listed(b, user)) == sorted(
            s["id"] for s in ss)
    assert len(nodes) >= 2, "13 users' sessions all on one primary: the tags do not spread"

    # a close removes the record and the index entry, on the user's node
    user, ss = users[-1], made[users[-1]]
    ix = keys.index_key(user)
    assert b.delete("/session/%s" % ss[0]["id"], token=make_token(user)).status_code == 204
    assert keys.call(ix, "ZSCORE", ix, ss[0]["id"]) is None
    assert keys.call(ix, "EXISTS", keys.session_key(ss[0]["id"])) == 0

    # the cap (4) stays exact, across two processes at once
    user = users[0]
    tok = make_token(user)
    answers, lock = [], threading.Lock()

    def creates(srv):
        for _ in range(6):
            r = srv.post("/session", token=tok)
            with lock:
                answers.append((r.status_code, r.json()))

    ts = [threading.Thread(target=creates, args=((a, b)[k % 2],)) for k in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert sorted({st for st, _ in answers}) == [201], answers[:3]
    evicted = [e for _, body in answers for e in body["evicted"]]
    assert len(evicted) == len(set(evicted)) == 3 + 36 - 4, "each session evicted once"
    now_listed = listed(a, user)
    assert len(now_listed) == 4 and not set(now_listed) & set(evicted)
    ix = keys.index_key(user)
    with keys.client(ix) as c:
        assert sorted(c.call("ZRANGE", ix, 0, -1)) == sorted(now_listed)
        assert not any(c.call("EXISTS", keys.session_key(e)) for e in evicted)

    # close-all: exact count, the index left with the kept one, then nothing
    user, ss = users[1], made[users[1]]
    tok = make_token(user)
    r = a.delete("/users/%s/sessions?except=%s" % (q(user), ss[1]["id"]), token=tok)
    assert assert_json(r, 200) == {"closed": 2}
    ix = keys.index_key(user)
    assert keys.call(ix, "ZRANGE", ix, 0, -1) == [ss[1]["id"]]
    assert assert_json(b.delete("/users/%s/sessions" % q(user), token=tok), 200) == \
        {"closed": 1}
    assert keys.call(ix, "EXISTS", ix) == 0
    assert not any(keys.call(ix, "EXISTS", keys.session_key(s["id"])) for s in ss)
    for s in ss:
        assert_unauthorized(a.get("/validate", token=s["token"]))


def test_prefixes_keep_stores_apart(spawn, suite_cluster):
    """Two prefixes on one cluster are two stores; no prefix is "ss"."""
    cl = suite_cluster
    p1, p2 = new_cluster_prefix(), new_cluster_prefix()
    a = spawn("sessiond", env={"STORE_URL": cl.url(prefix=p1)})
    b = spawn("sessiond", env={"STORE_URL": cl.url(prefix=p2, seeds=1)})
    user = uid("pfx")
    tok = make_token(user)
    s, t = a.create(tok), b.create(tok)
    assert listed(a, user) == [s["id"]] and listed(b, user) == [t["id"]]
    assert_problem(b.get("/session/%s" % s["id"], token=tok), 404)
    assert_unauthorized(b.get("/validate", token=s["token"]))
    assert assert_json(b.delete("/users/%s/sessions" % q(user), token=tok), 200) == {"closed": 1}
    assert a.get("/validate", token=s["token"]).status_code == 200
    k1 = ClusterKeySpace(cl, p1).session_key(s["id"])
    assert ClusterKeySpace(cl, p1).call(k1, "EXISTS", k1) == 1
    # no prefix in the URL: "ss"
    c = spawn("sessiond", env={"STORE_URL": cl.url()})
    u = c.create(tok)
    k = ClusterKeySpace(cl, "ss").session_key(u["id"])
    assert ClusterKeySpace(cl, "ss").call(k, "EXISTS", k) == 1
    assert c.delete("/session/%s" % u["id"], token=tok).status_code == 204


# ==========================================================================
# sessionctl copy from redis:// (old schema, old ids) to a cluster
# ==========================================================================

def legacy_id(length):
    return "".join(random.choice(B64) for _ in range(length))


def record_as(rec, new_id, created_at=None, last_seen_at=None, version=None):
    """A session record (src/record.c) with another id (and times): the
    header's id length and the id itself rewritten, the rest unchanged;
    version=1 gives the 36-byte header of records older versions wrote
    (no idle timeout, no token generation)."""
    hl = 36 if rec[0] == 1 else 52
    idlen = rec[1]
    h = bytearray(rec[:hl])
    h[1] = len(new_id)
    if created_at is not None:
        h[12:20] = struct.pack("<q", created_at)
    if last_seen_at is not None:
        h[20:28] = struct.pack("<q", last_seen_at)
    if version == 1:
        h = h[:36]
        h[0] = 1
    return bytes(h) + new_id.encode("ascii") + rec[hl + idlen:]


def write_old_schema(db_keys, user, rec, sid, expires_at):
    """What an older version wrote on redis://: the record and the index entry."""
    db_keys.call(None, "SET", "ss:s:" + sid, rec, "EXAT", expires_at)
    db_keys.call(None, "ZADD", "ss:u:" + user, expires_at, sid)
    db_keys.call(None, "EXPIREAT", "ss:u:" + user, expires_at, "GT")


@pytest.fixture
def old_store(spawn, suite_redis):
    """A redis:// store (a database of the suite's redis-server) as a fleet
    would leave it: sessions made by sessiond (34-character ids, on redis://
    too), and sessions of older versions written in the old schema: ids of
    31 and 22 characters, some with a version 1 record (36-byte header).
    Each is read back on the source (an administrator's read: not a use, so
    nothing changes before the copy).  sessions: dicts user (u1, u2, u3),
    s (the source's view), token, kind ("new", or "31"/"22" and the record
    version, e.g. "31v1")."""
    db = suite_redis.new_db()
    url = suite_redis.url(db)
    src = spawn("sessiond", env={"STORE_URL": url, "TRUST_PROXY": "1"})
    db_keys = RedisKeySpace(suite_redis, db)
    users = {"u1": uid("cp1"), "u2": uid("cp2") + "/{\u00fc}", "u3": uid("cp3")}
    sessions = []
    for name, user in users.items():
        tok = make_token(user)
        for k in range(2 if name != "u3" else 1):
            s = src.create(tok, {"ttl": 900, "data": {"n": k, "who": name}},
                           headers={"User-Agent": "copy/%d" % k,
                                    "X-Forwarded-For": "192.0.2.%d" % (k + 1)})
            assert len(s["id"]) == TAGGED_ID_LEN and s["id"][-TAG_LEN:] == user_tag(user), \
                "a new id on redis:// is not 34 characters ending with its user's tag: %s" % s["id"]
            sessions.append({"user": name, "s": s, "token": s["token"], "kind": "new"})
    now = int(time.time())
    # older versions' ids, each with its last use (u3: least recently used
    # first, for the cap test)
    legacy = {
        "u1": [(31, 2, now - 400), (22, 2, now - 300), (31, 1, now - 200)],
        "u2": [(22, 2, now - 400)],
        "u3": [(31, 2, now - 500), (22, 1, now - 450)],
    }
    for name, specs in legacy.items():
        user = users[name]
        base = next(x["s"] for x in sessions if x["user"] == name)
        rec = db_keys.raw(None, "GET", "ss:s:" + base["id"])
        assert rec is not None and rec[0] == 2, rec
        for length, version, seen in specs:
            sid = legacy_id(length)
            write_old_schema(db_keys, user, record_as(rec, sid, seen - 50, seen, version), sid,
                             base["expires_at"])
            got = assert_json(src.get("/session/%s" % sid, token=admin_token()), 200)
            assert got["last_seen_at"] == seen and got["user_id"] == user, got
            sessions.append({"user": name, "s": got, "kind": "%dv%d" % (length, version),
                             "token": make_token(user, sid=sid, exp_in=600)})
    for x in sessions:
        x["view"] = assert_json(src.get("/session/%s" % x["s"]["id"], token=admin_token()), 200)
    return {"url": url, "src": src, "users": users, "sessions": sessions, "db_keys": db_keys}


def test_copy_from_redis_with_old_ids_to_a_cluster(spawn, suite_cluster, old_store, tmp_path):
    cl = suite_cluster
    old = old_store
    users = old["users"]
    sessions = old["sessions"]
    prefix = new_cluster_prefix()
    url = cl.url(prefix=prefix)
    keys = ClusterKeySpace(cl, prefix)
    n = len(sessions)
    rc, out, err = run_ctl(tmp_path, "copy", old["url"], url)
    assert rc == 0, err
    assert COPY_RE.search(err).groups() == (str(n), "0"), err
    # again: every id is found, the old ones (in their user's slot) too
    rc, out, err = run_ctl(tmp_path, "copy", old["url"], url)
    assert rc == 0 and COPY_RE.search(err).groups() == ("0", str(n)), err
    # the cluster's export is the source's: every record once (no alias)
    rc, exp_src, err = run_ctl(tmp_path, "export", env={"STORE_URL": old["url"]})
    assert rc == 0, err
    rc, exp_dst, err = run_ctl(tmp_path, "export", env={"STORE_URL": url})
    assert rc == 0, err
    assert sorted(exp_dst.splitlines()) == sorted(exp_src.splitlines())
    rc, stats, err = run_ctl(tmp_path, "stats", env={"STORE_URL": url})
    assert rc == 0 and json.loads(stats) == {"store": "redis-cluster", "live_sessions": n}, err

    # where each record is: a new id in its tag's slot, an old one in its
    # user's slot with an alias (holding the user's tag) in the id's
    for x in sessions:
        user, sid = users[x["user"]], x["s"]["id"]
        ix = keys.index_key(user)
        if x["kind"] == "new":
            sk = keys.session_key(sid)
            assert keys.call(keys.alias_key(sid), "EXISTS", keys.alias_key(sid)) == 0
        else:
            sk = keys.session_key(sid, user)
            ak = keys.alias_key(sid)
            assert keys.call(ak, "GET", ak) == user_tag(user), "alias %s" % ak
            assert keys.call(ak, "TTL", ak) > 0, "alias %s never expires" % ak
        assert keyslot(cl, sk) == keyslot(cl, ix), (sk, ix)
        assert keys.call(sk, "EXISTS", sk) == 1, sk
        assert keys.call(ix, "ZSCORE", ix, sid) is not None, (ix, sid)

    # the cap, least recently used first, reaches an old id (u3: a new
    # session and two old ones, the one of 31 characters used least recently)
    u3 = users["u3"]
    u3_old = [x["s"]["id"] for x in sessions if x["user"] == "u3" and x["kind"] != "new"]
    capped = spawn("sessiond", env={"STORE_URL": url, "SESSION_MAX_PER_USER": "3"})
    s = capped.create(make_token(u3))
    assert s["evicted"] == [u3_old[0]], (s["evicted"], u3_old)
    assert_problem(capped.get("/session/%s" % u3_old[0], token=admin_token()), 404)
    ix = keys.index_key(u3)
    assert keys.call(ix, "EXISTS", keys.session_key(u3_old[0], u3)) == 0
    assert keys.call(ix, "ZSCORE", ix, u3_old[0]) is None
    assert u3_old[0] not in listed(capped, u3) and u3_old[1] in listed(capped, u3)
    live = [x for x in sessions if x["s"]["id"] != u3_old[0]]

    # every other copied session: read by id, validated with its token, listed
    new = spawn("sessiond", env={"STORE_URL": url})
    for x in live:
        sid = x["s"]["id"]
        got = assert_json(new.get("/session/%s" % sid, token=admin_token()), 200)
        assert view(got) == view(x["view"]), (x["kind"], sid)
        assert assert_json(new.get("/session/%s" % sid, token=make_token(users[x["user"]])),
                           200)["id"] == sid
        v = new.get("/validate", token=x["token"])
        assert v.status_code == 200, (x["kind"], sid, v.text)
        assert v.headers.get("X-Session-Id") == sid
    for name in ("u1", "u2"):
        assert listed(new, users[name]) == listed(old["src"], users[name]), name
    rc, out, err = run_ctl(tmp_path, "show", u3_old[1], env={"STORE_URL": url})
    assert rc == 0 and json.loads(out)["id"] == u3_old[1], err

    # closed one by one: a new id, an old one of 31 and one of 22 characters
    u1 = users["u1"]
    u1_tok = make_token(u1)
    by_kind = {x["kind"]: x for x in sessions if x["user"] == "u1"}
    for x in (by_kind["new"], by_kind["31v2"], by_kind["22v2"]):
        sid = x["s"]["id"]
        assert new.delete("/session/%s" % sid, token=u1_tok).status_code == 204, x["kind"]
        assert_problem(new.get("/session/%s" % sid, token=admin_token()), 404)
        assert_unauthorized(new.get("/validate", token=x["token"]))
        assert_problem(new.delete("/session/%s" % sid, token=u1_tok), 404)
        assert keys.call(keys.index_key(u1), "EXISTS", keys.session_key(sid, u1)) == 0
        assert sid not in listed(new, u1)
    # closed all: each user's exact count, old ids included (u1: a new one
    # and the version 1 record; u2: two new ones and an old one)
    left = listed(new, u1)
    assert len(left) == 2 and by_kind["31v1"]["s"]["id"] in left
    r = new.delete("/users/%s/sessions" % q(u1), token=admin_token())
    assert assert_json(r, 200) == {"closed": 2}
    u2 = users["u2"]
    r = new.delete("/users/%s/sessions" % q(u2), token=make_token(u2))
    assert assert_json(r, 200) == {"closed": 3}
    for x in sessions:
        if x["user"] in ("u1", "u2"):
            assert_unauthorized(new.get("/validate", token=x["token"]))
            assert_problem(new.get("/session/%s" % x["s"]["id"], token=admin_token()), 404)
    for user in (u1, u2):
        assert listed(new, user) == []
        assert keys.call(keys.index_key(user), "EXISTS", keys.index_key(user)) == 0
    # the source still has them all: the copy only read it
    for x in sessions:
        assert old["src"].get("/session/%s" % x["s"]["id"], token=admin_token()).status_code == 200


def test_an_id_of_34_characters_with_another_users_tag(spawn, suite_cluster, suite_redis,
                                                      tmp_path):
    """An id of the new length whose last 3 characters are not its user's
    tag cannot be found from its id on a cluster, so it is refused there
    (docs/REDIS.md "Cluster"): a redis:// store may hold such sessions (an
    import takes ids of 22 to 64 characters).  Refusing one must not cost
    the others: `sessionctl copy` copies every other session, says what it
    did not copy and exits non-zero; `sessionctl import` counts the line
    refused and imports the rest; nothing of the refused session is left on
    the cluster."""
    db = suite_redis.new_db()
    src_url = suite_redis.url(db)
    src = spawn("sessiond", env={"STORE_URL": src_url})
    user, other = uid("mis"), uid("oth")
    while user_tag(other) == user_tag(user):
        other = uid("oth")
    tok = make_token(user)
    made = [src.create(tok, {"data": {"k": k}}) for k in range(6)]
    db_keys = RedisKeySpace(suite_redis, db)
    rec = db_keys.raw(None, "GET", "ss:s:" + made[0]["id"])
    odd = legacy_id(31) + user_tag(other)
    write_old_schema(db_keys, user, record_as(rec, odd), odd, made[0]["expires_at"])
    assert src.get("/session/%s" % odd, token=tok).status_code == 200
    prefix = new_cluster_prefix()
    url = suite_cluster.url(prefix=prefix)
    keys = ClusterKeySpace(suite_cluster, prefix)

    def nothing_of_odd():
        for k in (keys.alias_key(odd), keys.session_key(odd), keys.user_slot_session_key(odd, user)):
            assert keys.call(k, "EXISTS", k) == 0, k
        ix = keys.index_key(user)
        assert keys.call(ix, "ZSCORE", ix, odd) is None

    rc, _, err = run_ctl(tmp_path, "copy", src_url, url)
    assert rc != 0, "a session not copied, and the copy exits 0: %s" % err
    assert odd in err or "refused 1" in err or "invalid" in err, err
    new = spawn("sessiond", env={"STORE_URL": url})
    assert sorted(listed(new, user)) == sorted(s["id"] for s in made), \
        "the copy stopped at the session it refused: %s" % err
    for s in made:
        assert new.get("/validate", token=s["token"]).status_code == 200
    assert_problem(new.get("/session/%s" % odd, token=tok), 404)
    assert listed(new, other) == []
    nothing_of_odd()

    # import: the line refused, the others imported
    prefix2 = new_cluster_prefix()
    url2 = suite_cluster.url(prefix=prefix2)
    keys = ClusterKeySpace(suite_cluster, prefix2)
    rc, exported, err = run_ctl(tmp_path, "export", env={"STORE_URL": src_url})
    assert rc == 0 and len(exported.splitlines()) == 7, err
    lines = sorted(exported.splitlines(), key=lambda line: odd not in line)  # the odd one first
    rc, _, err = run_ctl(tmp_path, "import", env={"STORE_URL": url2},
                         stdin="\n".join(lines) + "\n")
    m = re.search(r"imported (\d+), already present (\d+), expired (\d+), refused (\d+)", err)
    assert rc != 0 and m and m.groups() == ("6", "0", "0", "1"), (rc, err)
    other_srv = spawn("sessiond", env={"STORE_URL": url2})
    assert sorted(listed(other_srv, user)) == sorted(s["id"] for s in made)
    nothing_of_odd()


# ==========================================================================
# under load: a primary killed, slots resharded
# ==========================================================================

def place_users(srv, group_of, wanted, tries=400):
    """LoadClients whose users' sessions live where wanted says: for each
    group (group_of(slot of the user's tag)), that many users.  A user's
    place is found from a first session's id (its last 3 characters, the
    user's tag), which stays one of the client's acknowledged creates."""
    found = {g: [] for g in wanted}
    for _ in range(tries):
        if all(len(found[g]) >= n for g, n in wanted.items()):
            break
        c = LoadClient(prefix="cl")
        s = srv.create(c.token, {"ttl": 3600})
        g = group_of(tag_slot(s["id"]))
        if g in found and len(found[g]) < wanted[g]:
            c.live.add(s["id"])
            found[g].append(c)
        else:
            assert srv.delete("/session/%s" % s["id"], token=c.token).status_code == 204
    assert all(len(found[g]) >= n for g, n in wanted.items()), \
        "no users found for %r after %d tries" % (wanted, tries)
    return found


def run_load(srv, clients):
    stop = threading.Event()
    threads = [threading.Thread(target=load, args=(srv.port, c, stop)) for c in clients]
    for t in threads:
        t.start()
    return stop, threads


def stop_load(stop, threads):
    stop.set()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads), "a client hung"


def wait_every_user_served(clients, t_from, limit=RESUME_S):
    """Waits until every client had a success after t_from; answers
    {user: seconds from t_from to its first success} and fails when one
    took longer than limit."""
    wait_until(lambda: all(c.successes_after(t_from) for c in clients), timeout=limit + 3,
               interval=0.1)
    first = {}
    for c in clients:
        after = c.successes_after(t_from)
        first[c.user] = (min(after) - t_from) if after else None
    late = {u: s for u, s in first.items() if s is None or s > limit}
    assert not late, "users without a success within %.0f s: %r" % (limit, late)
    return first


def check_acknowledged(srv, clients, where):
    """Every acknowledged create reads 200, every acknowledged close 404,
    and each user's list holds the first and none of the second."""
    checked = 0
    for c in clients:
        got = read_all(srv.port, c.token, c.live | c.closed)
        lost = sorted(s for s in c.live if got[s] != 200)
        back = sorted(s for s in c.closed if got[s] != 404)
        assert not lost, "%s: %d acknowledged creates lost: %s" % (
            where, len(lost), [(s, got[s]) for s in lost[:5]])
        assert not back, "%s: %d acknowledged closes undone: %s" % (
            where, len(back), [(s, got[s]) for s in back[:5]])
        checked += len(got)
        r = srv.get("/users/%s/sessions" % q(c.user), token=c.token)
        ids = {s["id"] for s in assert_json(r, 200)["sessions"]}
        assert c.live <= ids, "%s: %d live sessions not listed" % (where, len(c.live - ids))
        assert not (c.closed & ids), "%s: closed sessions listed" % where
    return checked


def summary(clients, t0, what):
    answers = [(t, k, s) for c in clients for t, k, s in c.answers]
    gap, gap_from, gap_to = longest_outage(clients, t0)
    n503 = sum(1 for _, _, s in answers if s == 503)
    return ("%s: %d answers, %d of them 503 with Retry-After; the longest stretch without any "
            "success: %.2f s (%+.2f s to %+.2f s)"
            % (what, len(answers), n503, gap, gap_from - t0, gap_to - t0))


@pytest.mark.concurrency
def test_primary_killed_under_load_loses_no_acknowledged_write(spawn, own_cluster):
    """kill -9 of a primary: its replica takes over (2 replicas each, so
    the promoted primary still has one to acknowledge REDIS_WAIT_REPLICAS=1).
    Users of the other primaries keep being served meanwhile."""
    cl = own_cluster(replicas_per_primary=2)
    srv = spawn("sessiond", env=dict(WAIT, STORE_URL=cl.url()))
    assert srv.get("/readyz").status_code == 200
    primaries = cl.primaries()
    victim = primaries[0]
    by_port = place_users(srv, lambda slot: cl.primary_for_slot(slot).port,
                          {p.port: 2 for p in primaries})
    hit = by_port[victim.port]
    spared = [c for p, cs in by_port.items() if p != victim.port for c in cs]
    clients = hit + spared
    stop, threads = run_load(srv, clients)
    try:
        time.sleep(1.5)
        before = sum(1 for c in clients for _, _, s in list(c.answers) if s in (201, 204))
        t_kill = time.monotonic()
        assert cl.kill_primary(0) is victim
        failover_s = cl.wait_failover(timeout=20)
        t_done = time.monotonic()
        first = wait_every_user_served(clients, t_done)
        time.sleep(1.0)  # and keeps serving
    finally:
        stop_load(stop, threads)
    bad = [b for c in clients for b in c.bad]
    assert not bad, "answers the contract does not allow during a failover: %s" % bad[:10]
    print(summary(clients, t_kill, "kill -9 of %r, healthy again %.2f s later" % (
        victim, failover_s)))
    print("first success per user after the failover: %s" % {
        u: round(s, 2) for u, s in first.items()})
    assert before > 20, "the load made no progress before the kill"
    checked = check_acknowledged(srv, clients, "after the failover")
    print("acknowledged writes checked: %d" % checked)
    # the other primaries' users were served while the victim's slots had none
    if failover_s > 1.0:
        idle = [c.user for c in spared
                if not [t for t in c.successes_after(t_kill + 0.2) if t < t_kill + failover_s]]
        assert not idle, ("users whose slots stayed on live primaries got no success during "
                          "the %.1f s failover: %r" % (failover_s, idle))
    # the killed node back (as a replica): still serving
    cl.restart_killed()
    assert srv.create(make_token(uid("after")))["id"]


@pytest.mark.concurrency
def test_reshard_under_load_loses_no_acknowledged_write(spawn, own_cluster):
    """`redis-cli --cluster reshard` of 3000 slots from one primary to
    another, while users whose slots move (and users whose slots stay)
    create and close: MOVED, ASK and TRYAGAIN are the service's business."""
    cl = own_cluster()
    srv = spawn("sessiond", env=dict(WAIT, STORE_URL=cl.url()))
    src, dst, third = cl.primaries()
    src_slots = sorted(s for a, b, p, _ in cl.cluster_slots() if p == src.port
                       for s in range(a, b + 1))
    moving = set(src_slots[:3000])  # redis-cli takes the source's lowest slots

    def group(slot):
        if slot in moving:
            return "moving"
        owner = cl.primary_for_slot(slot)
        return "src" if owner is src else "other"

    placed = place_users(srv, group, {"moving": 4, "src": 1, "other": 2})
    clients = [c for cs in placed.values() for c in cs]
    stop, threads = run_load(srv, clients)
    try:
        time.sleep(1.5)  # sessions to move
        t0 = time.monotonic()
        proc = cl.reshard(src, dst, len(moving))
        seconds = cl.wait_reshard(proc, timeout=120)
        t_done = time.monotonic()
        first = wait_every_user_served(clients, t_done)
        time.sleep(1.0)
    finally:
        stop_load(stop, threads)
    bad = [b for c in clients for b in c.bad]
    assert not bad, "answers the contract does not allow during a reshard: %s" % bad[:10]
    print(summary(clients, t0, "reshard of %d slots in %.2f s" % (len(moving), seconds)))
    print("first success per user after the reshard: %s" % {
        u: round(s, 2) for u, s in first.items()})
    moved_users = placed["moving"]
    during = [c.user for c in moved_users if not [t for t in c.successes_after(t0) if t < t_done]]
    print("users of moving slots without a success during the reshard: %d of %d"
          % (len(during), len(moved_users)))
    assert wait_until(lambda: all(cl.primary_for_slot(s) is dst for s in moving), timeout=10)
    check_acknowledged(srv, clients, "after the reshard")
    # the moved users' sessions are on the target now, each with its index
    prefix = "ss"
    keys = ClusterKeySpace(cl, prefix)
    for c in moved_users:
        ix = keys.index_key(c.user)
        assert cl.primary_for_slot(slot_of(ix)) is dst
        with dst.client() as r:
            indexed = set(r.call("ZRANGE", ix, 0, -1))
            assert c.live <= indexed
            assert all(r.call("EXISTS", keys.session_key(s)) for s in sorted(c.live)[:50])
    # a process started now learns the new map from its seeds
    late = spawn("sessiond", env=dict(WAIT, STORE_URL=cl.url(seeds=1)))
    for c in moved_users:
        assert late.get("/session/%s" % sorted(c.live)[0], token=c.token).status_code == 200
        assert late.create(c.token)["id"]
