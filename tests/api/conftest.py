"""Fixtures for the black-box API suite.

Binaries come from $SESSIOND_BIN_DIR (default <repo>/build).  Every process is
started with a clean environment on a free loopback port, with its own LMDB
directory and a temporary working directory (so no stray .env is read).
At teardown each process gets SIGTERM (then SIGKILL after 5 s); a process that
exited on its own with a non-zero status, or whose stderr shows a sanitizer
report or the secret, fails the test.

Every store, one suite.  Every test that spawns processes (through the
spawn, mspawn, pool or server fixtures) without choosing STORE_URL itself is
parametrized over the store: it runs once on LMDB ([lmdb]: a temporary
directory per store, as before), once on Redis ([redis]: one real
redis-server for the whole session, started on a free loopback port in a
temporary directory with `--save '' --appendonly yes --appendfsync always`,
and a database number of its own per store), once on Redis through
Sentinel ([sentinel]: one Sentinel set for the whole session, 1 primary, 2
replicas, 3 Sentinels, reached as redis-sentinel://..., a database number
of its own per store), and once on Redis Cluster ([cluster]: one cluster
for the whole session, 3 primaries and 3 replicas, reached as
redis-cluster://seed,seed,seed/PREFIX, a key prefix of its own per store,
since a cluster has database 0 only).  The parameter is module-scoped, so
module-shared servers are started once per store.  Tests that look at Redis
keys themselves check `store_kind in REDIS_KINDS` and take the store's keys
from `stores.keyspace(srv)` (apitools.RedisKeySpace / ClusterKeySpace: the
key names of that store, and client(key), a connection to the primary that
holds the key: the redis-server, the Sentinel set's primary, or the cluster
node serving the key's slot).

Markers:

  lmdb_only    the test is about LMDB itself (map size, purge of a full map);
               it runs only as [lmdb].
  own_store    the test chooses its STORE_URL(s) itself (test_redis.py,
               test_failover.py, test_cluster.py, test_sessionctl.py's
               migrations); it is not parametrized.

A missing redis-server (or redis-cli, for the cluster) fails every [redis],
[sentinel] and [cluster] test with a message saying so; it never skips them.
"""

import os

import pytest

import apitools
from apitools import ClusterStores, LmdbStores, Pool, RedisStores, SentinelStores
from redistools import Redis, RedisCluster, RedisSentinelSet, require_redis_cli, \
    require_redis_server

STORE_KINDS = ("lmdb", "redis", "sentinel", "cluster")
# SESSIOND_TEST_STORES=lmdb,cluster: only these (make test's ASan pass)
if os.environ.get("SESSIOND_TEST_STORES"):
    _only = tuple(k for k in os.environ["SESSIOND_TEST_STORES"].split(",") if k)
    if not _only or any(k not in STORE_KINDS for k in _only):
        raise SystemExit("SESSIOND_TEST_STORES: a comma-separated list of %s"
                         % ", ".join(STORE_KINDS))
    STORE_KINDS = _only
# Database numbers the suite's redis-server offers; every spawned process
# that needs a store of its own gets a fresh one.
SUITE_REDIS_DATABASES = 512


def pytest_configure(config):
    config.addinivalue_line("markers", "lmdb_only(reason): runs only on the LMDB store")
    config.addinivalue_line("markers", "own_store: chooses STORE_URL itself; "
                            "not parametrized over the store")
    config.addinivalue_line("markers", "concurrency: puts the service's threads under "
                            "pressure; tests/tsan.sh runs exactly these under ThreadSanitizer")


def pytest_generate_tests(metafunc):
    if "store_kind" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("own_store") is not None:
        return
    kinds = STORE_KINDS
    if metafunc.definition.get_closest_marker("lmdb_only") is not None:
        kinds = ("lmdb",)
    metafunc.parametrize("store_kind", kinds, indirect=True, scope="module")


@pytest.fixture(scope="module")
def store_kind(request):
    """One of STORE_KINDS (own_store tests get "lmdb", the harness default)."""
    return getattr(request, "param", "lmdb")


@pytest.fixture(scope="session")
def suite_redis(tmp_path_factory):
    """The session's redis-server (started on first use, stopped at the end)."""
    red = Redis(tmp_path_factory.mktemp("suite-redis"), databases=SUITE_REDIS_DATABASES)
    red.start()
    yield red
    died = not red.alive()
    red.stop()
    if died:
        pytest.fail("the suite's redis-server died during the run; log:\n%s"
                    % red.log_text()[-3000:], pytrace=False)


# --------------------------------------------------------------------------
# Redis high availability (API.md "(v2) Redis high availability", issue 15)
# --------------------------------------------------------------------------
#
# suite_sentinel (1 primary, 2 replicas, 3 Sentinels) and suite_cluster (3
# primaries, 3 replicas), each started on first use and stopped at the end of
# the session, are the [sentinel] and [cluster] store parameters.
#
#   SentinelStores (apitools.py): a database number per store, exactly as
#       RedisStores.
#   ClusterStores: a cluster has database 0 only, so a store is a key
#       prefix, the path of the URL (redis-cluster://seeds.../PREFIX, the
#       service's own extension: [A-Za-z0-9._-], 1..32 characters, default
#       "ss"); store=None is a fresh prefix, store=KEY the same prefix for
#       the same KEY.  Every module's servers share the one cluster at once,
#       each in its own prefix, so nothing is ever flushed.
#
# Tests that kill nodes or move slots (failover and reshard under load:
# test_failover.py, test_cluster.py) start topologies of their own
# (RedisSentinelSet / RedisCluster in a tmp dir, about 2 s each), never
# these shared ones.


def _topology_fixture(topology):
    topology.start()
    yield topology
    died = [n for n in topology.all_nodes() if not n.alive() and n not in topology.killed]
    logs = topology.logs() if died else ""
    topology.stop()
    if died:
        pytest.fail("the suite's %s lost %s during the run:\n%s"
                    % (topology.kind, ", ".join(repr(n) for n in died), logs), pytrace=False)


@pytest.fixture(scope="session")
def suite_sentinel(tmp_path_factory):
    """The session's Redis Sentinel set (started on first use, stopped at
    the end): 1 primary, 2 replicas, 3 Sentinels, no passwords."""
    require_redis_server()
    yield from _topology_fixture(RedisSentinelSet(tmp_path_factory.mktemp("suite-sentinel"),
                                                  databases=SUITE_REDIS_DATABASES))


@pytest.fixture(scope="session")
def suite_cluster(tmp_path_factory):
    """The session's Redis Cluster (started on first use, stopped at the
    end): 3 primaries, 1 replica each, no password."""
    require_redis_server()
    require_redis_cli()
    yield from _topology_fixture(RedisCluster(tmp_path_factory.mktemp("suite-cluster")))


@pytest.fixture(scope="module")
def stores(request, store_kind):
    """Where spawned processes keep their sessions (see LmdbStores, RedisStores,
    SentinelStores, ClusterStores in apitools.py)."""
    if store_kind == "redis":
        return RedisStores(request.getfixturevalue("suite_redis"))
    if store_kind == "sentinel":
        return SentinelStores(request.getfixturevalue("suite_sentinel"))
    if store_kind == "cluster":
        return ClusterStores(request.getfixturevalue("suite_cluster"))
    return LmdbStores()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(autouse=True)
def _contract_checks(request):
    """Every answer seen during a test: no 500, problem+json for 4xx/5xx,
    no echoed token or secret."""
    apitools.VIOLATIONS.clear()
    yield
    found = list(apitools.VIOLATIONS)
    apitools.VIOLATIONS.clear()
    if not found:
        return
    text = "contract violations in answers seen by this test:\n  " + "\n  ".join(found[:30])
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(text)  # the test already failed: show them, do not report twice
        return
    pytest.fail(text, pytrace=False)


def _pool_fixture(request, tmp_path_factory, name, stores):
    pool = Pool(tmp_path_factory, name, stores)
    yield pool
    problems = pool.close()
    if problems:
        pytest.fail("server process problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def spawn(request, tmp_path_factory, stores):
    """Function-scoped: spawn(binary="sessiond", env={...}, store=None, cwd=None)."""
    gen = _pool_fixture(request, tmp_path_factory, "srv", stores)
    pool = next(gen)
    yield pool.start
    next(gen, None)


@pytest.fixture(scope="module")
def mspawn(request, tmp_path_factory, stores):
    """Module-scoped variant of spawn, for servers shared by a test module."""
    gen = _pool_fixture(request, tmp_path_factory, "msrv", stores)
    pool = next(gen)
    yield pool.start
    next(gen, None)


@pytest.fixture
def pool(request, tmp_path_factory, stores):
    """Function-scoped Pool object, for tests that stop and restart processes."""
    gen = _pool_fixture(request, tmp_path_factory, "pool", stores)
    p = next(gen)
    yield p
    next(gen, None)


@pytest.fixture(scope="module")
def server(mspawn):
    """One all-in-one sessiond with default settings, shared by a module."""
    return mspawn("sessiond")


@pytest.fixture
def user():
    return apitools.uid()


@pytest.fixture
def admin():
    return apitools.admin_token()
