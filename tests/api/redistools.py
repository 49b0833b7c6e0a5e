"""A real redis-server for the black-box suite, and a tiny RESP client.

Redis is Debian's redis-server (scripts/deps.sh test installs it).  When it is
missing, every test that needs it fails with a message saying so: the Redis
half of the suite must never be skipped silently.
"""

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from apitools import SocketOwner, free_port, wait_until

REDIS_SERVER = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)


def require_redis_server():
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed, so the Redis half of the suite cannot run "
                    "(Debian: apt-get install redis-server, or scripts/deps.sh test)",
                    pytrace=False)
    return REDIS_SERVER


# --------------------------------------------------------------------------
# RESP (RESP2 is all we need: commands out as arrays of bulk strings)
# --------------------------------------------------------------------------

class RespError(Exception):
    """An error reply (-ERR ..., -NOAUTH ..., -LOADING ...)."""


def _arg(a):
    if isinstance(a, bytes):
        return a
    if isinstance(a, str):
        return a.encode("utf-8")
    return str(a).encode("ascii")


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _arg(a)
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def url_auth(password, user=None):
    """The "[user]:password@" part of a Redis URL ("" without a password)."""
    return "" if password is None else "%s:%s@" % (user or "", password)


class Resp(SocketOwner):
    """One connection to Redis.  call() answers str for bulk/simple strings
    (bytes when not UTF-8), int, None, or a list; raises RespError on -ERR."""

    def __init__(self, port, host="127.0.0.1", password=None, user=None, db=0, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        if password is not None:
            if user is not None:
                self.call("AUTH", user, password)
            else:
                self.call("AUTH", password)
        if db:
            self.call("SELECT", db)


    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    @staticmethod
    def _text(b):
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return b

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return self._text(rest)
        if kind == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._text(self._exact(n))
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError("unexpected RESP reply %r" % line[:100])

    def call(self, *args):
        self.sock.sendall(encode_command(*args))
        r = self._reply()
        if isinstance(r, RespError):
            raise r
        return r

    def raw(self, *args):
        """Like call(), but answers the record bytes of a GET unchanged."""
        self.sock.sendall(encode_command(*args))
        line = self._line()
        if line.startswith(b"$"):
            n = int(line[1:])
            return None if n < 0 else self._exact(n)
        raise ConnectionError("raw() is for bulk replies, got %r" % line[:100])


# --------------------------------------------------------------------------
# redis-server
# --------------------------------------------------------------------------

class Redis:
    """One redis-server on a loopback port, with its files in workdir.

    Persistence as production should run it: no RDB snapshots, AOF with
    fsync after every write (see docs/REDIS.md "Durability")."""

    def __init__(self, workdir, port=None, password=None, appendonly=True,
                 appendfsync="always", databases=16, extra_args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.name = "redis-server"
        self.password = password
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.databases = databases
        self.extra_args = list(extra_args)
        self.proc = None
        self.log = None
        self.starts = 0
        self._next_db = 1  # 0 is left to hand-written tests

    # -- lifecycle ------------------------------------------------------------
    def args(self):
        args = [require_redis_server(),
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.workdir), "--daemonize", "no",
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", self.appendfsync,
                "--databases", str(self.databases)]
        if self.password is not None:
            args += ["--requirepass", self.password]
        return args + self.extra_args

    def start(self, timeout=10.0):
        """Starts (or restarts, from the same directory) and waits until it
        answers PING (after loading its AOF)."""
        assert not self.alive(), "redis-server already running"
        self.log = open(self.workdir / "redis.log", "ab")
        self.proc = subprocess.Popen(self.args(), cwd=str(self.workdir),
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.starts += 1
        # gives up at once when the process exits (a port taken meanwhile, a
        # bad config) instead of at the timeout
        if not wait_until(lambda: self.ready() or not self.alive(), timeout=timeout,
                          interval=0.02) or not self.alive():
            status = ("exited with status %s" % self.proc.poll() if not self.alive()
                      else "did not answer PING within %.0f s" % timeout)
            self.kill()
            pytest.fail("%s on port %d %s; log:\n%s" % (self.name, self.port, status,
                                                       self.log_text()[-3000:]), pytrace=False)
        return self

    def ready(self):
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            with self.client(timeout=1) as c:
                return c.call("PING") == "PONG"
        except (OSError, ConnectionError, RespError):
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Graceful shutdown (SIGTERM: Redis flushes its AOF and exits)."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close_log()

    def kill(self):
        """kill -9, at once: nothing is flushed that was not already."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self._close_log()

    def pause(self):
        """SIGSTOP: Redis keeps its connections but answers nothing."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def paused(self):
        """with red.paused(): ... (SIGSTOP, then SIGCONT whatever happens)."""
        self.pause()
        try:
            yield self
        finally:
            self.resume()

    def _close_log(self):
        if self.log is not None and not self.log.closed:
            self.log.close()

    def log_text(self):
        try:
            return (self.workdir / "redis.log").read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- addressing -----------------------------------------------------------
    def new_db(self):
        """A database number (1 and up) no other caller got from this server."""
        if self._next_db >= self.databases:
            pytest.fail("redis-server on port %d has no database left (%d); raise its "
                        "`databases`" % (self.port, self.databases), pytrace=False)
        db = self._next_db
        self._next_db += 1
        return db

    def url(self, db=0, password=None, user=None, host="127.0.0.1"):
        auth = url_auth(self.password if password is None else password, user)
        return "redis://%s%s:%d/%d" % (auth, host, self.port, db)

    def client(self, db=0, timeout=5.0):
        return Resp(self.port, password=self.password, db=db, timeout=timeout)


# --------------------------------------------------------------------------
# high-availability topologies (API.md "(v2) Redis high availability")
# --------------------------------------------------------------------------
#
# RedisSentinelSet (1 primary, N replicas, M Sentinels) and RedisCluster
# (P primaries, R replicas each), real processes on loopback ports in
# temporary directories.  Both kill everything they started on stop(), when
# their start() fails half way, and at interpreter exit (an atexit backstop),
# and put the tail of every node's log into the message of a failed start.

REDIS_CLI = shutil.which("redis-cli") or (
    "/usr/bin/redis-cli" if os.path.exists("/usr/bin/redis-cli") else None)

CLUSTER_SLOTS = 16384
CLUSTER_BUS_OFFSET = 10000  # a cluster node's bus port is its port + 10000

_LIVE_TOPOLOGIES = set()  # started and not yet stopped (for the atexit backstop)
_TOPOLOGY_LOCK = threading.Lock()


def _kill_live_topologies():
    for topo in list(_LIVE_TOPOLOGIES):
        try:
            topo.kill_all()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(_kill_live_topologies)


def require_redis_cli():
    if REDIS_CLI is None:
        pytest.fail("redis-cli is not installed, so a Redis Cluster cannot be created "
                    "(Debian: apt-get install redis-tools, or scripts/deps.sh test)",
                    pytrace=False)
    return REDIS_CLI


# Ports this process handed out recently (a port is free until its server
# binds it: two nodes of one topology must not be given the same one).
_HANDED_OUT = set()


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port_pair(offset=CLUSTER_BUS_OFFSET, tries=2000):
    """A port p below 65536 - offset such that p and p + offset are both
    free on 127.0.0.1 (a cluster node listens on both: clients on p, the
    cluster bus on p + 10000).  Both are taken, when possible, below the
    kernel's ephemeral range (ip_local_port_range) and above the
    well-known ports (10000 and up), where no outgoing
    connection and no free_port() (bind to port 0) can take them meanwhile."""
    lo_eph, hi_eph = _ephemeral_range()
    top = 65535 - offset
    low_band = [(10000, lo_eph - 1 - offset)] if lo_eph - 1 - offset > 10000 else []
    bands = low_band + [(1024, top)]
    with _TOPOLOGY_LOCK:
        for lo, hi in bands:
            for _ in range(tries):
                p = random.randint(lo, hi)
                if p in _HANDED_OUT or p + offset in _HANDED_OUT:
                    continue
                if _bindable(p) and _bindable(p + offset):
                    _HANDED_OUT.update((p, p + offset))
                    return p
    raise RuntimeError("no free port pair (p, p+%d) found below %d" % (offset, top))


def _free_port_unique():
    with _TOPOLOGY_LOCK:
        for _ in range(100):
            p = free_port()
            if p not in _HANDED_OUT:
                _HANDED_OUT.add(p)
                return p
    return free_port()


def _kv(flat):
    """A flat [k1, v1, k2, v2 ...] reply as a dict."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def _info(text):
    out = {}
    for line in (text or "").splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def crc16_xmodem(data):
    """CRC16-CCITT (XMODEM: poly 0x1021, init 0), Redis Cluster's key hash."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def slot_of(key):
    """The cluster slot of a key: CRC16 of the hash tag (the bytes between
    the first '{' and the first '}' after it, when there are any) or of the
    whole key, modulo 16384.  `{user}.x` hashes "user"; `a{}b` and `{}{x}`
    (empty first tag) hash the whole key."""
    k = _arg(key)
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    return crc16_xmodem(k) % CLUSTER_SLOTS


def _addr_in_use(node):
    text = node.log_text()
    return "Address already in use" in text or "Could not create server TCP" in text


class _ConfNode(Redis):
    """A redis-server started from a config file of its own (`redis-server
    node.conf`), so that what Sentinel writes there (REPLICAOF + CONFIG
    REWRITE on a failover) is what a restart reads, as in production."""

    def __init__(self, workdir, port, password=None, settings=(), databases=16, name=None):
        super().__init__(workdir, port=port, password=password, databases=databases)
        self.name = name or ("node-%d" % port)
        self.settings = list(settings)
        self.conf = self.workdir / "node.conf"

    def write_conf(self, extra=()):
        lines = ["port %d" % self.port, "bind 127.0.0.1", "dir %s" % self.workdir,
                 "daemonize no", "logfile \"\"", 'save ""',
                 "appendonly %s" % ("yes" if self.appendonly else "no"),
                 "appendfsync %s" % self.appendfsync,
                 "databases %d" % self.databases]
        if self.password is not None:
            lines += ["requirepass %s" % self.password, "masterauth %s" % self.password]
        lines += list(self.settings) + list(extra)
        self.conf.write_text("\n".join(lines) + "\n")

    def args(self):
        if not self.conf.exists():
            self.write_conf()
        return [require_redis_server(), str(self.conf)]

    def role(self):
        """ROLE's first element ("master", "slave", "sentinel"), None if down."""
        try:
            with self.client(timeout=1) as c:
                return c.call("ROLE")[0]
        except (OSError, ConnectionError, RespError):
            return None

    def info(self, section="replication"):
        with self.client(timeout=2) as c:
            return _info(c.call("INFO", section))

    def __repr__(self):
        return "<%s 127.0.0.1:%d%s>" % (self.name, self.port, "" if self.alive() else " down")


class _SentinelNode(_ConfNode):
    """`redis-server sentinel.conf --sentinel`; password = its requirepass."""

    def __init__(self, workdir, port, password, conf_lines, name):
        super().__init__(workdir, port, password=password, name=name)
        self.conf = self.workdir / "sentinel.conf"
        self.conf_lines = conf_lines

    def write_conf(self, extra=()):
        self.conf.write_text("\n".join(self.conf_lines + list(extra)) + "\n")

    def args(self):
        if not self.conf.exists():
            self.write_conf()
        return [require_redis_server(), str(self.conf), "--sentinel"]


class _Topology:
    """What both topologies share: their processes, stop/kill, log tails."""

    kind = "topology"

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_nodes = []
        self.extra_nodes = []  # sentinels
        self.children = []     # other processes (redis-cli --cluster reshard)
        self.killed = []
        self.start_seconds = None

    def all_nodes(self):
        return self.data_nodes + self.extra_nodes

    def live_nodes(self):
        return [n for n in self.data_nodes if n.alive()]

    def logs(self, chars=1500, first=None):
        """The tail of every node's log (first=node: that one first)."""
        parts = []
        nodes = self.all_nodes()
        if first is not None and first in nodes:
            nodes = [first] + [n for n in nodes if n is not first]
        for n in nodes:
            parts.append("--- %s (127.0.0.1:%d, %s) log tail ---\n%s"
                         % (n.name, n.port, "running" if n.alive() else "not running",
                            n.log_text()[-chars:]))
        for path in sorted(self.workdir.glob("*.out")):
            parts.append("--- %s ---\n%s"
                         % (path.name, path.read_text("utf-8", "replace")[-chars:]))
        return "\n".join(parts)

    def fail(self, what, first=None):
        pytest.fail("%s: %s\n%s" % (self.kind, what, self.logs(first=first)), pytrace=False)

    def kill_all(self):
        """kill -9 of everything this topology started (no flush, at once)."""
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        for n in self.all_nodes():
            n.kill()

    def stop(self):
        """SIGTERM to every process at once, SIGKILL to whatever still runs
        after 5 s.  Leaves nothing running."""
        try:
            for p in self.children:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)
            nodes = [n for n in self.all_nodes() if n.alive()]
            for n in nodes:
                try:
                    n.proc.send_signal(signal.SIGCONT)  # a paused node cannot exit
                    n.proc.terminate()
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            for n in nodes:
                try:
                    n.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self.kill_all()
            _LIVE_TOPOLOGIES.discard(self)

    def _start_node(self, node, deadline):
        try:
            node.start(timeout=max(1.0, deadline - time.monotonic()))
        except BaseException:  # Redis.start's failure names only that node
            if _addr_in_use(node):
                raise
            self.fail("%r did not start" % node, first=node)

    def _start_with_retries(self, attempt_once, attempts=3):
        """Runs attempt_once(); on a port that was taken meanwhile (another
        process bound it between our check and the server's bind), starts
        again from scratch on new ports.  Kills everything on any failure."""
        _LIVE_TOPOLOGIES.add(self)
        t0 = time.monotonic()
        for attempt in range(attempts):
            try:
                attempt_once()
                self.start_seconds = time.monotonic() - t0
                return self
            except BaseException:
                in_use = any(_addr_in_use(n) for n in self.all_nodes())
                self.stop()
                if not in_use or attempt == attempts - 1:
                    raise
                _LIVE_TOPOLOGIES.add(self)
                self._reset_for_retry()
        return self

    def _reset_for_retry(self):
        raise NotImplementedError


# --------------------------------------------------------------------------
# Sentinel
# --------------------------------------------------------------------------

class RedisSentinelSet(_Topology):
    """1 primary + `replicas` replicas + `sentinels` Sentinels (quorum 2),
    on free loopback ports, each in a directory of its own under workdir.

    Data nodes: AOF with fsync always, no RDB snapshots (as production),
    `repl-diskless-sync-delay 0` (a replica syncs at once, not after 5 s),
    `masterauth` = `requirepass` = password on every node (any of them may
    become the primary).  min_replicas_to_write / min_replicas_max_lag set
    `min-replicas-to-write` / `min-replicas-max-lag` on every node (off by
    default).

    Sentinels: `down-after-milliseconds 1000`, `failover-timeout 3000`,
    `parallel-syncs 1`, `resolve-hostnames no`, `announce-ip 127.0.0.1`;
    `requirepass` + `sentinel sentinel-pass` = sentinel_password when set.
    Each Sentinel gets a fixed `sentinel myid` and its config lists the other
    Sentinels (`known-sentinel`) and the replicas (`known-replica`), the very
    lines Sentinel writes itself: otherwise they would find each other only
    through hello messages (one every 2 s) and the replicas through INFO
    (every 10 s), and a start would take 2 to 10 s longer.
    """

    kind = "Redis Sentinel set"

    def __init__(self, workdir, replicas=2, sentinels=3, master_name="mymaster",
                 password=None, sentinel_password=None, quorum=2,
                 down_after_ms=1000, failover_timeout_ms=3000,
                 min_replicas_to_write=0, min_replicas_max_lag=10, databases=16):
        super().__init__(workdir)
        self.n_replicas = replicas
        self.n_sentinels = sentinels
        self.master_name = master_name
        self.password = password
        self.sentinel_password = sentinel_password
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.min_replicas_to_write = min_replicas_to_write
        self.min_replicas_max_lag = min_replicas_max_lag
        self.databases = databases
        self._next_db = 1
        self.attempt = 0
        self._build()

    # -- layout ---------------------------------------------------------------
    def _build(self):
        base = self.workdir / ("try%d" % self.attempt) if self.attempt else self.workdir
        settings = ["repl-diskless-sync yes", "repl-diskless-sync-delay 0"]
        if self.min_replicas_to_write:
            settings += ["min-replicas-to-write %d" % self.min_replicas_to_write,
                         "min-replicas-max-lag %d" % self.min_replicas_max_lag]
        self.data_nodes = []
        for i in range(1 + self.n_replicas):
            self.data_nodes.append(_ConfNode(base / ("data%d" % i), _free_port_unique(),
                                             password=self.password, settings=settings,
                                             databases=self.databases, name="data%d" % i))
        primary = self.data_nodes[0]
        for n in self.data_nodes[1:]:
            n.write_conf(["replicaof 127.0.0.1 %d" % primary.port])
        primary.write_conf()
        ports = [_free_port_unique() for _ in range(self.n_sentinels)]
        ids = ["%040x" % random.getrandbits(160) for _ in ports]
        self.extra_nodes = []
        for i, (port, myid) in enumerate(zip(ports, ids)):
            d = base / ("sentinel%d" % i)
            d.mkdir(parents=True, exist_ok=True)
            m = self.master_name
            lines = ["port %d" % port, "bind 127.0.0.1", "daemonize no", 'logfile ""',
                     "dir %s" % d,
                     "sentinel myid %s" % myid,
                     "sentinel resolve-hostnames no",
                     "sentinel announce-hostnames no",
                     "sentinel announce-ip 127.0.0.1",
                     "sentinel monitor %s 127.0.0.1 %d %d" % (m, primary.port, self.quorum),
                     "sentinel down-after-milliseconds %s %d" % (m, self.down_after_ms),
                     "sentinel failover-timeout %s %d" % (m, self.failover_timeout_ms),
                     "sentinel parallel-syncs %s 1" % m]
            if self.password is not None:
                lines.append("sentinel auth-pass %s %s" % (m, self.password))
            if self.sentinel_password is not None:
                lines += ["requirepass %s" % self.sentinel_password,
                          "sentinel sentinel-pass %s" % self.sentinel_password]
            for n in self.data_nodes[1:]:
                lines.append("sentinel known-replica %s 127.0.0.1 %d" % (m, n.port))
            for j, (p2, id2) in enumerate(zip(ports, ids)):
                if j != i:
                    lines.append("sentinel known-sentinel %s 127.0.0.1 %d %s" % (m, p2, id2))
            self.extra_nodes.append(_SentinelNode(d, port, self.sentinel_password, lines,
                                                  name="sentinel%d" % i))

    def _reset_for_retry(self):
        self.attempt += 1
        self.killed = []
        self._build()

    @property
    def sentinels(self):
        return self.extra_nodes

    # -- lifecycle ------------------------------------------------------------
    def start(self, timeout=20.0):
        """Starts the data nodes, waits until every replica's link to the
        primary is up, then the Sentinels, and waits until every Sentinel
        sees the primary, all replicas and all other Sentinels (connected,
        none down).  Fails with every node's log tail."""
        return self._start_with_retries(lambda: self._start_once(timeout))

    def _start_once(self, timeout):
        deadline = time.monotonic() + timeout
        for n in self.data_nodes:
            self._start_node(n, deadline)
        if not wait_until(self._replicas_synced, timeout=max(0.1, deadline - time.monotonic()),
                          interval=0.05):
            self.fail("replicas did not sync with the primary within %.0f s" % timeout)
        for s in self.sentinels:
            self._start_node(s, deadline)
        if not wait_until(self._sentinels_agree, timeout=max(0.1, deadline - time.monotonic()),
                          interval=0.05):
            self.fail("the Sentinels did not all see the primary, %d replicas and %d other "
                      "Sentinels within %.0f s; last view: %r"
                      % (self.n_replicas, self.n_sentinels - 1, timeout, self._last_view))

    def _replicas_synced(self, primary=None):
        primary = primary or self.data_nodes[0]
        for n in self.data_nodes:
            if n is primary or not n.alive():
                continue
            try:
                info = n.info()
            except (OSError, ConnectionError, RespError):
                return False
            if (info.get("role") != "slave" or info.get("master_port") != str(primary.port)
                    or info.get("master_link_status") != "up"
                    or info.get("master_sync_in_progress") != "0"):
                return False
        return True

    _last_view = None

    def _sentinels_agree(self, primary_port=None, replicas=None):
        if primary_port is None:
            primary_port = self.data_nodes[0].port
        if replicas is None:
            replicas = {n.port for n in self.data_nodes if n.port != primary_port and n.alive()}
        for s in self.sentinels:
            if not s.alive():
                continue
            try:
                with s.client(timeout=1) as c:
                    m = _kv(c.call("SENTINEL", "MASTER", self.master_name))
                    reps = [_kv(r) for r in c.call("SENTINEL", "REPLICAS", self.master_name)]
                    sens = [_kv(r) for r in c.call("SENTINEL", "SENTINELS", self.master_name)]
            except (OSError, ConnectionError, RespError) as exc:
                self._last_view = (s.name, repr(exc))
                return False
            self._last_view = (s.name, m.get("port"), m.get("flags"),
                               [(r.get("port"), r.get("flags")) for r in reps],
                               [(r.get("port"), r.get("flags")) for r in sens])
            if m.get("port") != str(primary_port) or m.get("flags") != "master":
                return False
            # Connected (no s_down, no disconnected), and its last INFO says
            # it replicates this primary.  Not master-link-status: a Sentinel
            # refreshes a replica's INFO only every 10 s, so a replica that
            # was restarted would look unsynced for up to 10 s after it is
            # (_replicas_synced asks the replicas themselves).
            ok_reps = {int(r["port"]) for r in reps
                       if r.get("flags") == "slave" and r.get("role-reported") == "slave"
                       and r.get("master-port") == str(primary_port)}
            if not replicas <= ok_reps:
                return False
            # "master_down" on a Sentinel is only its cached vote on the old
            # primary (cleared 5 s after the failover): not a problem.
            live_others = sum(1 for x in self.sentinels if x is not s and x.alive())
            linked = [r for r in sens if "sentinel" in r.get("flags", "").split(",")
                      and not {"s_down", "o_down", "disconnected"}
                      & set(r.get("flags", "").split(","))]
            if len(linked) < live_others:
                return False
        return True

    # -- addressing -----------------------------------------------------------
    def url(self, db=0, user=None, password=None):
        """redis-sentinel://[[user]:password@]127.0.0.1:p1,.../mymaster[/db]"""
        auth = url_auth(self.password if password is None else password, user)
        hosts = ",".join("127.0.0.1:%d" % s.port for s in self.sentinels)
        tail = "/%d" % db if db else ""
        return "redis-sentinel://%s%s/%s%s" % (auth, hosts, self.master_name, tail)

    def new_db(self):
        """A database number (1 and up) no other caller got from this set."""
        if self._next_db >= self.databases:
            pytest.fail("the Sentinel set has no database left (%d); raise its `databases`"
                        % self.databases, pytrace=False)
        db = self._next_db
        self._next_db += 1
        return db

    def node_by_port(self, port):
        for n in self.data_nodes:
            if n.port == int(port):
                return n
        raise KeyError("no data node on port %s" % port)

    def sentinel_client(self, i=0, timeout=2.0):
        return self.sentinels[i].client(timeout=timeout)

    def master_addr(self, sentinel=None):
        """(host, port) that one Sentinel (default: the first that answers)
        names for the master; None when none answers."""
        for s in ([sentinel] if sentinel is not None else self.sentinels):
            if not s.alive():
                continue
            try:
                with s.client(timeout=1) as c:
                    r = c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
                    if r:
                        return r[0], int(r[1])
            except (OSError, ConnectionError, RespError):
                continue
        return None

    def primary(self):
        """The current primary's node, as a Sentinel names it."""
        addr = self.master_addr()
        if addr is None:
            self.fail("no Sentinel answered SENTINEL GET-MASTER-ADDR-BY-NAME")
        return self.node_by_port(addr[1])

    def replicas(self):
        p = self.primary()
        return [n for n in self.data_nodes if n is not p]

    def client(self, db=0, timeout=5.0):
        """A Resp to the current primary."""
        return self.primary().client(db=db, timeout=timeout)

    # -- failures -------------------------------------------------------------
    def kill_primary(self):
        """kill -9 of the current primary; answers its node."""
        p = self.primary()
        p.kill()
        self.killed.append(p)
        return p

    def wait_failover(self, timeout=15.0, old=None):
        """Waits until every live Sentinel names a primary other than the
        killed one (`old`, default the last killed) and that node answers
        ROLE master.  Answers (the new primary's node, seconds waited)."""
        old = old or (self.killed[-1] if self.killed else None)
        t0 = time.monotonic()
        found = {}

        def done():
            ports = set()
            for s in self.sentinels:
                if s.alive():
                    a = self.master_addr(s)
                    if a is None:
                        return False
                    ports.add(a[1])
            if len(ports) != 1:
                return False
            port = ports.pop()
            if old is not None and port == old.port:
                return False
            node = self.node_by_port(port)
            if node.role() != "master":
                return False
            found["node"] = node
            return True

        if not wait_until(done, timeout=timeout, interval=0.05):
            self.fail("no failover within %.0f s (Sentinels name %r)"
                      % (timeout, [self.master_addr(s) for s in self.sentinels]))
        return found["node"], time.monotonic() - t0

    def wait_synced(self, timeout=15.0):
        """Waits until every live data node other than the primary is its
        replica with the link up, and every Sentinel agrees."""
        p = self.primary()
        if not wait_until(lambda: self._replicas_synced(p), timeout=timeout, interval=0.05):
            self.fail("replicas did not sync with %r within %.0f s" % (p, timeout))
        if not wait_until(lambda: self._sentinels_agree(p.port), timeout=timeout, interval=0.05):
            self.fail("the Sentinels did not agree on %r and its replicas within %.0f s; "
                      "last view: %r" % (p, timeout, self._last_view))
        return p

    def restart_killed(self, as_replica=True, timeout=None):
        """Brings every killed node back.  as_replica=True: its config gets
        `replicaof <current primary>` first, so it starts as a replica (what
        an operator does); False: it starts with the config it died with, so
        a killed primary comes back as a stale primary, answering ROLE master
        and accepting writes (lost later), until a Sentinel turns it into a
        replica: measured 21 s on Redis 7.0 (Sentinel waits for 8 s of the
        wrong role, and refreshes a replica's INFO every 10 s).  Waits until
        it is a synced replica of the current primary."""
        if timeout is None:
            timeout = 20.0 if as_replica else 45.0
        p = self.primary()
        while self.killed:
            n = self.killed.pop()
            if as_replica:
                n.write_conf(["replicaof 127.0.0.1 %d" % p.port])
            n.start()
        return self.wait_synced(timeout=timeout)


# --------------------------------------------------------------------------
# Cluster
# --------------------------------------------------------------------------

class RedisCluster(_Topology):
    """A Redis Cluster of `primaries` primaries with `replicas_per_primary`
    replicas each, created with `redis-cli --cluster create`.

    Nodes: `cluster-enabled yes`, `cluster-node-timeout` node_timeout_ms
    (1000), AOF with fsync always and no RDB snapshots,
    `repl-diskless-sync-delay 0`, `requirepass` = `masterauth` = password.
    `cluster-require-full-coverage no`: with the default (yes) the whole
    cluster refuses every command (CLUSTERDOWN) as soon as one slot has no
    live primary, so a kill -9 of one primary would stop all traffic until
    its replica is promoted, plus a rejoin delay; with no, only the dead
    primary's slots are unavailable meanwhile, which is what a production
    cluster of session stores should do, and what the service must handle
    (CLUSTERDOWN for some keys, answers for the others).

    Ports: each node's port p and bus port p + 10000 are both free and
    below the ephemeral range (free_port_pair).  Node 0..primaries-1 are
    given to redis-cli first, but redis-cli chooses the roles; nodes() and
    primaries() answer what the cluster says."""

    kind = "Redis Cluster"

    def __init__(self, workdir, primaries=3, replicas_per_primary=1, password=None,
                 node_timeout_ms=1000):
        super().__init__(workdir)
        self.n_primaries = primaries
        self.replicas_per_primary = replicas_per_primary
        self.password = password
        self.node_timeout_ms = node_timeout_ms
        self.attempt = 0
        self._build()

    def _build(self):
        base = self.workdir / ("try%d" % self.attempt) if self.attempt else self.workdir
        settings = ["cluster-enabled yes", "cluster-config-file nodes.conf",
                    "cluster-node-timeout %d" % self.node_timeout_ms,
                    "cluster-require-full-coverage no",
                    "repl-diskless-sync yes", "repl-diskless-sync-delay 0"]
        total = self.n_primaries * (1 + self.replicas_per_primary)
        self.data_nodes = [
            _ConfNode(base / ("node%d" % i), free_port_pair(), password=self.password,
                      settings=settings, databases=1, name="node%d" % i)
            for i in range(total)]

    def _reset_for_retry(self):
        self.attempt += 1
        self.killed = []
        self.children = []
        self._build()

    # -- redis-cli ------------------------------------------------------------
    def cli_args(self):
        args = [require_redis_cli()]
        if self.password is not None:
            args += ["-a", self.password, "--no-auth-warning"]
        return args

    def _cli(self, name, args, timeout=30.0):
        out = self.workdir / ("%s.out" % name)
        with open(out, "ab") as f:
            p = subprocess.Popen(self.cli_args() + args, stdin=subprocess.DEVNULL,
                                 stdout=f, stderr=subprocess.STDOUT)
            self.children.append(p)
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
                self.fail("redis-cli %s did not finish within %.0f s" % (args[:2], timeout))
        if rc != 0:
            self.fail("redis-cli %s exited with %d" % (" ".join(args[:2]), rc))

    # -- lifecycle ------------------------------------------------------------
    def start(self, timeout=30.0):
        """Starts every node, creates the cluster with redis-cli, and waits
        until every node says cluster_state:ok, knows every node, agrees on
        the slot map, and every replica's link to its primary is up."""
        return self._start_with_retries(lambda: self._start_once(timeout))

    def _start_once(self, timeout):
        require_redis_cli()
        deadline = time.monotonic() + timeout
        for n in self.data_nodes:
            self._start_node(n, deadline)
        self._cli("create", ["--cluster", "create"]
                  + ["127.0.0.1:%d" % n.port for n in self.data_nodes]
                  + ["--cluster-replicas", str(self.replicas_per_primary), "--cluster-yes"],
                  timeout=max(1.0, deadline - time.monotonic()))
        if not wait_until(self.healthy, timeout=max(0.1, deadline - time.monotonic()),
                          interval=0.05):
            self.fail("the cluster was not healthy within %.0f s: %s" % (timeout, self._why))

    _why = ""

    def _call(self, node, *args, timeout=2.0):
        with node.client(timeout=timeout) as c:
            return c.call(*args)

    def cluster_nodes(self, via=None):
        """CLUSTER NODES as seen by `via` (default: the first live node):
        a list of dicts id, port, flags (set), master (id or None), slots
        (list of (first, last)), link."""
        via = via or self.live_nodes()[0]
        out = []
        for line in self._call(via, "CLUSTER", "NODES").splitlines():
            f = line.split()
            if len(f) < 8:
                continue
            addr = f[1].split("@")[0]
            slots = []
            for s in f[8:]:
                if s.startswith("["):
                    continue  # a slot being migrated / imported
                a, _, b = s.partition("-")
                slots.append((int(a), int(b or a)))
            out.append({"id": f[0], "port": int(addr.rsplit(":", 1)[1]),
                        "flags": set(f[2].split(",")),
                        "master": None if f[3] == "-" else f[3],
                        "slots": slots, "link": f[7]})
        return out

    def cluster_slots(self, via=None):
        """CLUSTER SLOTS as [(first, last, primary port, [replica ports])].
        Replica ports are sorted: each node lists a primary's replicas in
        the order it learned them, so two nodes' lists may differ in order
        for good.  Which replicas are listed lags too: a node lists a
        replica once gossip told it the replica's offset (measured: some 8 s
        after a failover re-attached a sibling replica to the promoted one),
        so healthy() compares only which primary serves which slots."""
        via = via or self.live_nodes()[0]
        out = []
        for r in self._call(via, "CLUSTER", "SLOTS"):
            out.append((int(r[0]), int(r[1]), int(r[2][1]), sorted(int(x[1]) for x in r[3:])))
        return sorted(out)

    def healthy(self):
        """Every live node: cluster_state:ok, every live node known and
        connected, the same primary for every slot, all 16384 slots served
        by live primaries that answer ROLE master; every other live node a
        synced replica of one of them."""
        try:
            live = self.live_nodes()
            ports = {n.port for n in live}
            maps = []
            for n in live:
                info = _info(self._call(n, "CLUSTER", "INFO"))
                if info.get("cluster_state") != "ok":
                    self._why = "%r says cluster_state:%s" % (n, info.get("cluster_state"))
                    return False
                if int(info.get("cluster_known_nodes", 0)) < len(self.data_nodes):
                    self._why = "%r knows %s nodes" % (n, info.get("cluster_known_nodes"))
                    return False
                view = self.cluster_nodes(n)
                for v in view:
                    if v["port"] in ports and (v["link"] != "connected"
                                               or v["flags"] & {"fail", "fail?", "handshake"}):
                        self._why = "%r sees %d as %s %s" % (n, v["port"], v["flags"], v["link"])
                        return False
                maps.append([(a, b, p) for a, b, p, _ in self.cluster_slots(n)])
            if any(m != maps[0] for m in maps):
                self._why = "the nodes disagree about the slot map"
                return False
            covered = sum(b - a + 1 for a, b, _ in maps[0])
            if covered != CLUSTER_SLOTS:
                self._why = "only %d slots are served" % covered
                return False
            primaries = {p for _, _, p in maps[0]}
            for p in primaries:
                if p not in ports or self.node_by_port(p).role() != "master":
                    self._why = "slots are served by %d, which is not a live primary" % p
                    return False
            for n in live:
                if n.port in primaries:
                    continue
                info = n.info()
                if info.get("role") != "slave" or info.get("master_link_status") != "up" \
                        or info.get("master_sync_in_progress") != "0" \
                        or int(info.get("master_port", 0)) not in primaries:
                    self._why = "replica %r is not synced: %s" % (
                        n, {k: info.get(k) for k in ("role", "master_port", "master_link_status")})
                    return False
            self._why = ""
            return True
        except (OSError, ConnectionError, RespError, IndexError) as exc:
            self._why = repr(exc)
            return False

    # -- addressing -----------------------------------------------------------
    def url(self, seeds=3, user=None, password=None, prefix=None):
        """redis-cluster://[[user]:password@]127.0.0.1:p1,127.0.0.1:p2,...[/prefix]
        (prefix: the service's key prefix, [A-Za-z0-9._-], 1..32
        characters; none: the service's default, "ss")."""
        auth = url_auth(self.password if password is None else password, user)
        hosts = ",".join("127.0.0.1:%d" % n.port for n in self.data_nodes[:seeds])
        return "redis-cluster://%s%s%s" % (auth, hosts, "/" + prefix if prefix else "")

    def node_by_port(self, port):
        for n in self.data_nodes:
            if n.port == int(port):
                return n
        raise KeyError("no cluster node on port %s" % port)

    def node_id(self, node):
        return self._call(node, "CLUSTER", "MYID")

    def nodes(self):
        """Every node object (node0.. in creation order), with .node_id and
        .role set from the cluster's current view ("master", "slave", or
        "down" for a node that is not running)."""
        view = {v["port"]: v for v in self.cluster_nodes()}
        for n in self.data_nodes:
            v = view.get(n.port)
            n.node_id = v["id"] if v else None
            n.role_now = ("down" if not n.alive() else
                          "master" if v and "master" in v["flags"] else "slave")
        return list(self.data_nodes)

    def primaries(self):
        """The live primaries, ordered by their first slot (a promoted
        replica takes its primary's place in this order)."""
        seen = []
        for a, _, p, _ in self.cluster_slots():
            n = self.node_by_port(p)
            if n not in seen:
                seen.append(n)
        return seen

    def primary_for_slot(self, slot):
        for a, b, p, _ in self.cluster_slots():
            if a <= slot <= b:
                return self.node_by_port(p)
        return None

    @staticmethod
    def slot_of(key):
        return slot_of(key)

    def client_for_key(self, key, timeout=5.0):
        """A Resp to the primary that serves the key's slot (CLUSTER SLOTS)."""
        n = self.primary_for_slot(slot_of(key))
        if n is None:
            self.fail("no primary serves slot %d" % slot_of(key))
        return n.client(timeout=timeout)

    def client(self, timeout=5.0):
        return self.live_nodes()[0].client(timeout=timeout)

    # -- failures -------------------------------------------------------------
    def kill_primary(self, i=0):
        """kill -9 of the i-th live primary (ordered by first slot)."""
        p = self.primaries()[i]
        p.kill()
        self.killed.append(p)
        return p

    def wait_failover(self, timeout=15.0):
        """Waits until the live nodes are healthy() again (cluster_state:ok,
        every slot served by a live primary, one slot map); answers the
        seconds waited."""
        t0 = time.monotonic()
        if not wait_until(self.healthy, timeout=timeout, interval=0.05):
            self.fail("no healthy cluster within %.0f s after the failover: %s"
                      % (timeout, self._why))
        return time.monotonic() - t0

    def restart_killed(self, timeout=20.0):
        """Restarts every killed node from its directory (nodes.conf): it
        rejoins as a replica of the node that took its slots.  Waits until
        the cluster is healthy with it."""
        while self.killed:
            self.killed.pop().start()
        return self.wait_failover(timeout)

    def reshard(self, from_node, to_node, slots, extra=()):
        """`redis-cli --cluster reshard` of `slots` slots from one primary to
        another (node objects or node ids), started and not waited for:
        answers the Popen (its output goes to reshard-N.out; see
        wait_reshard)."""
        src = from_node if isinstance(from_node, str) else self.node_id(from_node)
        dst = to_node if isinstance(to_node, str) else self.node_id(to_node)
        seed = self.live_nodes()[0]
        out = self.workdir / ("reshard-%d.out" % len(self.children))
        f = open(out, "ab")
        try:
            p = subprocess.Popen(self.cli_args() + [
                "--cluster", "reshard", "127.0.0.1:%d" % seed.port,
                "--cluster-from", src, "--cluster-to", dst,
                "--cluster-slots", str(slots), "--cluster-yes"] + list(extra),
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        finally:
            f.close()
        p.out_path = out
        self.children.append(p)
        return p

    def wait_reshard(self, proc, timeout=60.0):
        """Waits for a reshard() and fails (with its output) unless it
        exited 0.  Answers the seconds waited."""
        t0 = time.monotonic()
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            rc = None
        if rc != 0:
            self.fail("redis-cli --cluster reshard %s; output:\n%s" % (
                "did not finish within %.0f s" % timeout if rc is None else "exited %d" % rc,
                proc.out_path.read_text("utf-8", "replace")[-3000:]))
        return time.monotonic() - t0
