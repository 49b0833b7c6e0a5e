"""The test tooling for Redis high availability (redistools.py:
RedisSentinelSet, RedisCluster; conftest.py: suite_sentinel, suite_cluster),
checked against real redis-server processes, before the service uses them.

The suite's shared topologies are only read and written here; what kills
nodes or moves slots runs on topologies of this module's own, with passwords
(so that requirepass, masterauth, Sentinel auth-pass / sentinel-pass and
redis-cli -a are exercised too).  No redis-server: every test fails, saying so.
"""

import random
import time
from urllib.parse import urlsplit

import pytest

from apitools import wait_until
from redistools import (CLUSTER_SLOTS, RedisCluster, RedisSentinelSet, Resp, RespError,
                        crc16_xmodem, slot_of)

pytestmark = pytest.mark.own_store

PASSWORD = "data-pw"
SENTINEL_PASSWORD = "sentinel-pw"


@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory):
    # down-after 2.5 s, not the tooling's 1 s: on a loaded machine (the whole
    # suite on several stores) a primary that answers late was once taken
    # for dead right after the test's own failover, and a second failover
    # made the checks below wait for the wrong node
    topo = RedisSentinelSet(tmp_path_factory.mktemp("sentinel-set"), password=PASSWORD,
                            sentinel_password=SENTINEL_PASSWORD, down_after_ms=2500,
                            failover_timeout_ms=6000)
    try:
        topo.start()
        print("Sentinel set started in %.2f s" % topo.start_seconds)
        yield topo
    finally:
        topo.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    topo = RedisCluster(tmp_path_factory.mktemp("cluster"), password=PASSWORD)
    try:
        topo.start()
        print("cluster started in %.2f s" % topo.start_seconds)
        yield topo
    finally:
        topo.stop()


def error_of(fn):
    try:
        fn()
    except (RespError, OSError, ConnectionError) as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------
# Sentinel
# --------------------------------------------------------------------------

def test_sentinel_set_starts_and_replicates(suite_sentinel):
    s = suite_sentinel
    print("suite Sentinel set started in %.2f s" % s.start_seconds)
    u = urlsplit(s.url(7))
    assert u.scheme == "redis-sentinel" and u.path == "/mymaster/7"
    assert u.netloc == ",".join("127.0.0.1:%d" % x.port for x in s.sentinels)
    assert s.url().endswith("/mymaster")
    assert s.start_seconds < 10, s.start_seconds
    primary = s.primary()
    assert primary.role() == "master"
    replicas = s.replicas()
    assert len(replicas) == 2 and all(r.role() == "slave" for r in replicas)
    key = "topo-test:%d" % random.getrandbits(32)
    with s.client() as c:
        c.call("SET", key, "v1")
        assert c.call("WAIT", 2, 2000) == 2
    for r in replicas:
        with r.client() as c:
            assert c.call("GET", key) == "v1"
            assert "READONLY" in error_of(lambda: c.call("SET", key, "v2"))
    with s.sentinel_client(1) as c:
        assert c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster") == [
            "127.0.0.1", str(primary.port)]


def test_sentinel_set_with_passwords(sentinel_set):
    s = sentinel_set
    u = urlsplit(s.url(3))
    assert u.password == PASSWORD and u.username == "" and u.path == "/mymaster/3"
    assert urlsplit(s.url(user="app")).username == "app"
    primary = s.primary()
    # the data nodes and the Sentinels each want their own password
    assert "NOAUTH" in error_of(lambda: Resp(primary.port).call("GET", "x"))
    assert "NOAUTH" in error_of(lambda: Resp(s.sentinels[0].port).call(
        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"))
    with Resp(s.sentinels[0].port, password=SENTINEL_PASSWORD) as c:
        assert int(c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")[1]) == primary.port
        m = dict(zip(*[iter(c.call("SENTINEL", "MASTER", "mymaster"))] * 2))
        assert (m["num-slaves"], m["num-other-sentinels"], m["quorum"]) == ("2", "2", "2")


def test_sentinel_failover_keeps_acknowledged_writes(sentinel_set):
    s = sentinel_set
    old = s.primary()
    keys = ["acked:%d" % i for i in range(50)]
    with s.client() as c:
        for k in keys:
            c.call("SET", k, k)
        assert c.call("WAIT", 1, 2000) >= 1
    t0 = time.monotonic()
    assert s.kill_primary() is old
    new, seconds = s.wait_failover(timeout=20)
    print("Sentinel failover: a new primary %.2f s after the kill" % (time.monotonic() - t0))
    assert seconds < 12, "the failover took %.1f s" % seconds
    assert new is not old and new.role() == "master"
    assert s.primary() is new
    with s.client() as c:
        assert c.call("MGET", *keys) == keys
        assert c.call("SET", "after-failover", "1") == "OK"
    t1 = time.monotonic()
    s.restart_killed()
    print("killed primary back as a replica in %.2f s" % (time.monotonic() - t1))
    assert old.role() == "slave"
    assert old.info()["master_port"] == str(new.port)
    with s.client() as c:
        assert c.call("WAIT", 2, 2000) == 2
    with old.client() as c:
        assert c.call("GET", "after-failover") == "1"
        assert c.call("GET", keys[-1]) == keys[-1]


# --------------------------------------------------------------------------
# Cluster
# --------------------------------------------------------------------------

def test_slot_of_agrees_with_cluster_keyslot(suite_cluster):
    rnd = random.Random(15)
    keys = ["{user}.x", "{user}.y", "user", "a{}b", "{}{x}", "{}", "}{", "{a", "a}", "{{a}}",
            "x{y}z{w}", "session:{u-123}:abc", "", "123456789", "\u00e9t\u00e9", b"\xff\x00{\x01}"]
    keys += ["".join(rnd.choice("ab{}xyz") for _ in range(rnd.randint(0, 12))) for _ in range(200)]
    with suite_cluster.client() as c:
        for k in keys:
            assert slot_of(k) == c.call("CLUSTER", "KEYSLOT", k), k
    assert crc16_xmodem(b"123456789") == 0x31C3  # the XMODEM check value
    assert slot_of("{user}.x") == slot_of("{user}.y") == slot_of("user")
    assert slot_of("a{}b") == crc16_xmodem(b"a{}b") % 16384  # empty tag: the whole key
    assert slot_of("{}{x}") == crc16_xmodem(b"{}{x}") % 16384


def test_cluster_starts_and_routes_keys(suite_cluster):
    cl = suite_cluster
    print("suite cluster started in %.2f s" % cl.start_seconds)
    assert cl.start_seconds < 15, cl.start_seconds
    u = urlsplit(cl.url())
    assert u.scheme == "redis-cluster" and u.path == ""
    assert u.netloc == ",".join("127.0.0.1:%d" % n.port for n in cl.data_nodes[:3])
    assert urlsplit(cl.url(prefix="t1-a.b")).path == "/t1-a.b"  # the service's key prefix
    nodes = cl.nodes()
    assert len(nodes) == 6
    assert sorted(n.role_now for n in nodes) == ["master"] * 3 + ["slave"] * 3
    assert all(n.port < 55536 for n in nodes)
    for n in nodes:
        with n.client() as c:
            assert "cluster_state:ok" in c.call("CLUSTER", "INFO")
    covered = sum(b - a + 1 for a, b, _, _ in cl.cluster_slots())
    assert covered == CLUSTER_SLOTS
    for key in ("{user}.x", "a{}b", "{}{x}", "topo-test:%d" % random.getrandbits(32)):
        owner = cl.primary_for_slot(slot_of(key))
        assert owner.role() == "master"
        with cl.client_for_key(key) as c:
            assert c.call("SET", key, "v") == "OK"  # no MOVED: the right node
            assert c.call("GET", key) == "v"
        others = [n for n in cl.primaries() if n is not owner]
        with others[0].client() as c:
            moved = error_of(lambda: c.call("GET", key))
            assert moved == "MOVED %d 127.0.0.1:%d" % (slot_of(key), owner.port)


def test_cluster_with_password(cluster):
    u = urlsplit(cluster.url(seeds=2))
    assert u.password == PASSWORD and len(u.netloc.split("@")[1].split(",")) == 2
    assert "NOAUTH" in error_of(lambda: Resp(cluster.data_nodes[0].port).call("PING"))


def test_cluster_failover_promotes_a_replica(cluster):
    cl = cluster
    victim = cl.primaries()[0]
    victim_id = next(v["id"] for v in cl.cluster_nodes() if v["port"] == victim.port)
    # the node asked learns who replicates whom by gossip: under the whole
    # suite's load it listed no replica of the victim yet, once
    replica_port = wait_until(lambda: next((v["port"] for v in cl.cluster_nodes()
                                            if v["master"] == victim_id), None), timeout=10)
    assert replica_port, "no node is listed as a replica of %d" % victim.port
    first = min(a for a, b, p, _ in cl.cluster_slots() if p == victim.port)
    keys = [k for k in ("{k%d}" % i for i in range(2000))
            if cl.primary_for_slot(slot_of(k)) is victim][:20]
    with victim.client() as c:
        for k in keys:
            c.call("SET", k, k)
        assert c.call("WAIT", 1, 2000) == 1
    t0 = time.monotonic()
    assert cl.kill_primary(0) is victim
    seconds = cl.wait_failover(timeout=20)
    print("cluster failover: healthy again %.2f s after the kill" % (time.monotonic() - t0))
    assert seconds < 12, "the failover took %.1f s" % seconds
    promoted = cl.primary_for_slot(first)
    assert promoted.port == replica_port and promoted.role() == "master"
    for n in cl.live_nodes():
        with n.client() as c:
            assert "cluster_state:ok" in c.call("CLUSTER", "INFO")
    for k in keys:
        with cl.client_for_key(k) as c:
            assert c.call("GET", k) == k
            assert c.call("SET", k, "new") == "OK"
    t1 = time.monotonic()
    cl.restart_killed()
    print("killed primary back as a replica in %.2f s" % (time.monotonic() - t1))
    assert victim.role() == "slave" and victim.info()["master_port"] == str(promoted.port)


def test_cluster_reshard(cluster):
    cl = cluster
    src, dst = cl.primaries()[0], cl.primaries()[1]
    src_slots = sorted(s for a, b, p, _ in cl.cluster_slots() if p == src.port
                       for s in range(a, b + 1))
    moving = set(src_slots[:100])  # redis-cli takes the source's lowest slots
    keys = [k for k in ("r%d" % i for i in range(20000)) if slot_of(k) in moving][:30]
    assert keys
    for k in keys:
        with cl.client_for_key(k) as c:
            c.call("SET", k, k)
    proc = cl.reshard(src, dst, 100)
    seconds = cl.wait_reshard(proc, timeout=60)
    print("reshard of 100 slots (%d keys): %.2f s" % (len(keys), seconds))
    # the nodes learn the new owners by gossip: the map is read until
    # every node asked agrees (a node's view lagged once under load)
    assert wait_until(lambda: all(cl.primary_for_slot(s) is dst for s in moving),
                      timeout=10), "the moved slots are not all on the target 10 s later"
    assert cl.primary_for_slot(src_slots[100]) is src
    for k in keys:
        with cl.client_for_key(k) as c:
            assert c.call("GET", k) == k
    assert cl.wait_failover(timeout=10) < 10  # every node agrees on the new map
