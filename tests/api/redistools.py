"""A real redis-server for the black-box suite, and a tiny RESP client.

Redis is Debian's redis-server (scripts/deps.sh test installs it).  When it is
missing, every test that needs it fails with a message saying so: the Redis
half of the suite must never be skipped silently.
"""

import os
import shutil
import signal
import socket
import subprocess
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
        if not wait_until(self.ready, timeout=timeout, interval=0.02):
            self.kill()
            pytest.fail("redis-server on port %d did not answer PING within %.0f s; log:\n%s"
                        % (self.port, timeout, self.log_text()[-3000:]), pytrace=False)
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
        if password is None:
            password = self.password
        auth = ""
        if password is not None:
            auth = "%s:%s@" % (user or "", password)
        return "redis://%s%s:%d/%d" % (auth, host, self.port, db)

    def client(self, db=0, timeout=5.0):
        return Resp(self.port, password=self.password, db=db, timeout=timeout)
