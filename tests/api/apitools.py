"""Shared helpers for the black-box API suite of sessionService.

Everything here talks to the real binaries over real sockets; nothing imports
project code.  conftest.py turns the process pool into fixtures.
"""

import base64
import contextlib
import hashlib
import hmac
import json
import os
import resource
import re
import secrets
import signal
import socket
import struct
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import jwt
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("SESSIOND_BIN_DIR") or (REPO / "build")).resolve()
BINARIES = ("sessiond", "createSession", "readSession", "closeSession")

# One random 48-character secret per test session.
SECRET = secrets.token_urlsafe(36)
assert len(SECRET) == 48

ADMIN_SCOPE = "session:admin"
START_TIMEOUT = float(os.environ.get("SESSIOND_START_TIMEOUT", "10"))
ID_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
SESSION_FIELDS = {"id", "user_id", "created_at", "expires_at", "last_seen_at",
                  "ip", "user_agent", "data", "idle_timeout",
                  "idle_expires_at"}
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:",
                      "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer")
PASSTHROUGH_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                   "TSAN_OPTIONS", "MSAN_OPTIONS", "ASAN_SYMBOLIZER_PATH",
                   "LLVM_SYMBOLIZER_PATH")


# --------------------------------------------------------------------------
# global response checks (filled by every request this suite makes)
# --------------------------------------------------------------------------

VIOLATIONS = []


def _presented_tokens(headers):
    """Token strings a request carried (Authorization and Cookie values)."""
    out = []
    for name, value in headers:
        lname = name.lower()
        if lname == "authorization":
            parts = value.split(None, 1)
            if len(parts) == 2:
                out.append(parts[1].strip())
        elif lname == "cookie":
            for piece in value.split(";"):
                if "=" in piece:
                    out.append(piece.split("=", 1)[1].strip())
    found = []
    for tok in out:
        if len(tok) >= 16:
            found.append(tok)
        segs = tok.split(".")
        if len(segs) >= 3 and len(segs[2]) >= 16:
            found.append(segs[2])
    return found


# libmicrohttpd 0.9.75 answers a few malformed requests itself, before the
# service sees them (an unparseable request line, a header line without a
# colon, a Content-Length that is not a number, a bad chunk size), with its
# own HTML page instead of problem+json. Tests of exactly those requests set
# this flag; test_errors_http.py::test_framing_errors_answered_by_the_library
# keeps the limitation visible (xfail, strict).
LIBRARY_PAGES_ALLOWED = False


def _library_page(status, ctype, body):
    return (LIBRARY_PAGES_ALLOWED and status in (400, 413, 414, 431) and ctype == ""
            and b"<html>" in body[:400])


def inspect_response(what, req_headers, status, resp_headers, body):
    """Contract checks that hold for every answer.  Records violations."""
    problems = []
    if status == 500 or (status >= 500 and status != 503):
        problems.append("server answered %d" % status)
    ctype = ""
    for name, value in resp_headers:
        if name.lower() == "content-type":
            ctype = value
    if status >= 400 and _library_page(status, ctype, body):
        pass
    elif status >= 400:
        media = ctype.split(";")[0].strip().lower()
        if media != "application/problem+json":
            problems.append("%d answer has Content-Type %r, not application/problem+json"
                            % (status, ctype))
        elif what.startswith("HEAD "):
            if body:  # HEAD: GET's headers, never a body (RFC 9110, 9.3.2)
                problems.append("%d answer to HEAD has a body: %r" % (status, body[:80]))
        else:
            try:
                doc = json.loads(body.decode("utf-8"))
            except Exception as exc:  # noqa: BLE001
                problems.append("%d problem body is not JSON: %r (%s)" % (status, body[:200], exc))
            else:
                if not isinstance(doc, dict):
                    problems.append("%d problem body is not an object" % status)
                else:
                    if doc.get("status") != status or isinstance(doc.get("status"), bool):
                        problems.append("problem 'status' %r != HTTP status %d"
                                        % (doc.get("status"), status))
                    for key in ("type", "title", "detail"):
                        if not isinstance(doc.get(key), str):
                            problems.append("problem body lacks string %r: %r" % (key, doc))
    blob = body + b"\n" + "\n".join("%s: %s" % (n, v) for n, v in resp_headers).encode(
        "utf-8", "replace")
    if SECRET.encode() in blob:
        problems.append("answer contains JWT_SECRET")
    for tok in _presented_tokens(req_headers):
        if tok.encode("utf-8", "replace") in blob:
            problems.append("answer echoes the presented token (or its signature)")
    for p in problems:
        VIOLATIONS.append("%s -> %s" % (what, p))


_orig_send = requests.Session.send


def _checked_send(self, request, **kwargs):
    resp = _orig_send(self, request, **kwargs)
    try:
        body = resp.content or b""
        inspect_response("%s %s" % (request.method, request.url),
                         list(request.headers.items()), resp.status_code,
                         list(resp.headers.items()), body)
    except Exception as exc:  # noqa: BLE001 - never break the request itself
        VIOLATIONS.append("check of %s %s crashed: %r" % (request.method, request.url, exc))
    return resp


requests.Session.send = _checked_send


# --------------------------------------------------------------------------
# tokens
# --------------------------------------------------------------------------

OMIT = object()


def now():
    return int(time.time())


def make_token(sub, secret=None, exp_in=3600, scope=None, **claims):
    """A caller token made with PyJWT (HS256).  Pass claim=OMIT to drop one."""
    t = now()
    payload = {"sub": sub, "iat": t, "exp": t + exp_in}
    if scope is not None:
        payload["scope"] = scope
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not OMIT}
    return jwt.encode(payload, secret or SECRET, algorithm="HS256")


def admin_token(sub=None, secret=None, **claims):
    return make_token(sub or uid("admin"), secret=secret, scope=ADMIN_SCOPE, **claims)


def b64u(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(seg):
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def _json_bytes(obj):
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, str):
        return obj.encode("utf-8")
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def hmac_sig(signing_input, secret=None, digest=hashlib.sha256):
    if isinstance(signing_input, str):
        signing_input = signing_input.encode("ascii")
    key = (secret or SECRET).encode("utf-8")
    return b64u(hmac.new(key, signing_input, digest).digest())


def hand_token(header=None, claims=None, secret=None, digest=hashlib.sha256, sig=None):
    """A token built by hand. header/claims: dict (compact JSON) or raw str/bytes.

    sig: None = a correct HMAC over the segments; a str = used verbatim."""
    if header is None:
        header = {"alg": "HS256", "typ": "JWT"}
    h = b64u(_json_bytes(header))
    c = b64u(_json_bytes(claims))
    signing_input = "%s.%s" % (h, c)
    if sig is None:
        sig = hmac_sig(signing_input, secret, digest)
    return "%s.%s" % (signing_input, sig)


def std_claims(sub, exp_in=3600, **extra):
    t = now()
    d = {"sub": sub, "iat": t, "exp": t + exp_in}
    d.update(extra)
    return {k: v for k, v in d.items() if v is not OMIT}


def decode_token(token, **kw):
    """Verify a token the service issued, with PyJWT and the shared secret
    (every check on: a token with "aud" needs audience=...)."""
    return jwt.decode(token, SECRET, algorithms=["HS256"], **kw)


def uid(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:16])


def q(user_id):
    """Percent-encode a user id as one path segment (%2F for '/')."""
    return quote(user_id, safe="")


# --------------------------------------------------------------------------
# problem+json
# --------------------------------------------------------------------------

def assert_problem(resp, status):
    assert resp.status_code == status, "expected %d, got %d: %r" % (
        status, resp.status_code, resp.text[:500])
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/problem+json", ctype
    body = resp.json()
    assert isinstance(body, dict), body
    assert body.get("status") == status and not isinstance(body.get("status"), bool), body
    for key in ("type", "title"):
        assert isinstance(body.get(key), str) and body[key] != "", (key, body)
    assert isinstance(body.get("detail"), str), body
    return body


def assert_json(resp, status):
    assert resp.status_code == status, "expected %d, got %d: %r" % (
        status, resp.status_code, resp.text[:500])
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", ctype
    return resp.json()


def no_store(resp):
    cc = resp.headers.get("Cache-Control", "")
    return "no-store" in [p.strip().lower() for p in cc.split(",")]


def www_auth(resp):
    return resp.headers.get("WWW-Authenticate", "")


def assert_unauthorized(resp, token_presented=True):
    assert_problem(resp, 401)
    wa = www_auth(resp)
    assert re.match(r"(?i)^bearer\b", wa), "WWW-Authenticate: %r" % wa
    if token_presented:
        assert re.search(r'error="invalid_token"', wa), "WWW-Authenticate: %r" % wa
    else:
        assert "invalid_token" not in wa, "WWW-Authenticate: %r" % wa


def allow_set(resp):
    allow = resp.headers.get("Allow")
    assert allow is not None, "405 without Allow header"
    return {m.strip().upper() for m in allow.split(",") if m.strip()}


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


_DEAD_SOCKETS = []


def dead_port():
    """A port on 127.0.0.1 where nothing listens, for the whole run: a socket
    is bound there and kept, never listening, so a connection is refused and
    no server this suite starts can be given the port meanwhile (a port from
    free_port() is free only until someone binds it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    _DEAD_SOCKETS.append(s)
    return s.getsockname()[1]


def binary_path(name):
    path = BIN_DIR / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("executable %s not found (build first, or set SESSIOND_BIN_DIR)" % path,
                    pytrace=False)
    return path


def base_env(port, store_url):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "JWT_SECRET": SECRET,
        "STORE_URL": store_url,
    }
    for name in PASSTHROUGH_ENV:
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def apply_env(env, overrides):
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


class Client:
    """HTTP to self.base ("http://host:port"): a service process, or the
    gateway in front of them."""

    def request(self, method, path, token=None, headers=None, timeout=10, **kw):
        h = {}
        if token is not None:
            h["Authorization"] = "Bearer %s" % token
        if headers:
            h.update(headers)
        with requests.Session() as s:
            return s.request(method, self.base + path, headers=h, timeout=timeout, **kw)

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token=token, **kw)

    def post(self, path, token=None, **kw):
        return self.request("POST", path, token=token, **kw)

    def delete(self, path, token=None, **kw):
        return self.request("DELETE", path, token=token, **kw)

    def create(self, token, body=None, expect=201, **kw):
        """POST /session; the new session (with its Location checked) when
        expect is 201, else the response."""
        if body is None:
            r = self.post("/session", token=token, **kw)
        else:
            r = self.post("/session", token=token, json=body, **kw)
        assert r.status_code == expect, "POST /session: expected %d, got %d: %s" % (
            expect, r.status_code, r.text[:500])
        if expect != 201:
            return r
        doc = r.json()
        assert r.headers.get("Location") == "/session/%s" % doc["id"], r.headers
        return doc


class Server(Client):
    """One running service process."""

    def __init__(self, binary, workdir, env=None, store_url=None, cwd=None):
        """store_url: the STORE_URL to give (default: an LMDB directory of its
        own in workdir); a STORE_URL in env wins over it."""
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if store_url is None:
            store_url = LmdbStores().url(None, self.workdir)
        self.cwd = Path(cwd) if cwd else self.workdir / "cwd"
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = apply_env(base_env(self.port, store_url), env)
        self.store_url = self.env.get("STORE_URL", store_url)
        if "PORT" in self.env and self.env["PORT"] != str(self.port):
            self.port = int(self.env["PORT"])
        self.stderr_path = self.workdir / ("%s-%d.stderr" % (binary, self.port))
        self.proc = None
        self.signals_sent = set()
        self.allow_exit = False  # set by tests that expect the process to stop itself
        self.base = "http://127.0.0.1:%d" % self.port
        self.rlimits = {}  # resource.RLIMIT_* -> (soft, hard), set before start
        self.wrapper = []  # argv that runs the binary (given as "$0"), set before start
        self.hung_on_sigterm = None  # seconds waited, when terminate() had to kill

    # -- lifecycle ----------------------------------------------------------
    def start(self, wait=True):
        path = binary_path(self.binary)
        self._stderr = open(self.stderr_path, "wb")
        limits = dict(self.rlimits)

        def apply_limits():
            for which, value in limits.items():
                resource.setrlimit(which, value)

        self.proc = subprocess.Popen(self.wrapper + [str(path)], cwd=str(self.cwd), env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr,
                                     preexec_fn=apply_limits if limits else None)
        if wait:
            self.wait_ready()
        return self

    def stderr_text(self):
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("%s exited with status %s before answering /healthz; stderr:\n%s"
                            % (self.binary, self.proc.returncode, self.stderr_text()),
                            pytrace=False)
            try:
                with requests.Session() as s:
                    r = s.get(self.base + "/healthz", timeout=1)
                if r.status_code == 200:
                    return
                last = "status %d" % r.status_code
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.05)
        self.kill()
        pytest.fail("%s did not answer GET /healthz 200 within %.0f s (%s); stderr:\n%s"
                    % (self.binary, timeout, last, self.stderr_text()), pytrace=False)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=5.0):
        """SIGTERM, wait, then SIGKILL.  Returns (returncode, seconds taken)."""
        if self.proc is None:
            return None, 0.0
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.signals_sent.add(signal.SIGTERM)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.hung_on_sigterm = timeout  # a problem (problems()), not a kill -9 by a test
                self.proc.kill()
                self.proc.wait(10)
        self._close_stderr()
        return self.proc.returncode, time.monotonic() - t0

    def kill(self):
        """kill -9, at once."""
        if self.proc is not None and self.proc.poll() is None:
            self.signals_sent.add(signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(10)
        self._close_stderr()

    def _close_stderr(self):
        f = getattr(self, "_stderr", None)
        if f is not None and not f.closed:
            f.close()

    def problems(self):
        """What teardown holds against this process (after it stopped)."""
        out = []
        if self.proc is None:
            return out
        rc = self.proc.returncode
        hung = self.hung_on_sigterm
        if hung is not None:
            out.append("%s did not exit within %.0f s of SIGTERM (killed; a sanitizer's "
                       "report at exit is lost)" % (self.binary, hung))
        elif signal.SIGKILL in self.signals_sent:
            pass  # the test killed it (kill -9 scenes)
        elif signal.SIGTERM in self.signals_sent:
            if rc != 0 and not self.allow_exit:
                out.append("%s exited with status %s after SIGTERM (a clean shutdown is 0)"
                           % (self.binary, rc))
        elif not self.allow_exit:
            out.append("%s exited with status %s on its own (not from our signal)"
                       % (self.binary, rc))
        text = self.stderr_text()
        for pat in SANITIZER_PATTERNS:
            if pat in text:
                out.append("%s stderr contains %r" % (self.binary, pat))
        if SECRET in text:
            out.append("%s stderr contains JWT_SECRET" % self.binary)
        if out:
            out.append("stderr of %s (last 4000 chars):\n%s" % (self.binary, text[-4000:]))
        return out

    def new_user_session(self, user=None, **body):
        """Create a session for a fresh (or given) user with that user's own token."""
        user = user or uid()
        tok = make_token(user)
        s = self.create(tok, body or None)
        return user, tok, s

    def metrics(self):
        r = self.get("/metrics")
        assert r.status_code == 200, r.text[:300]
        return parse_metrics(r.text)


# --------------------------------------------------------------------------
# stores: what STORE_URL a spawned process gets
# --------------------------------------------------------------------------

class LmdbStores:
    """LMDB: each store is a directory.  store=None is a fresh directory in
    the process's work directory; store=PATH is that directory (processes
    given the same PATH share one store)."""

    kind = "lmdb"

    def url(self, store, workdir):
        path = Path(store) if store is not None else Path(workdir) / "store"
        path.mkdir(parents=True, exist_ok=True)
        return "lmdb://%s" % path

    def describe(self):
        return "lmdb (a temporary directory per store)"


class RedisStores:
    """Redis: each store is a database number of one shared redis-server.
    store=None is a database no other process got; store=KEY (any path or
    name) is one database per distinct KEY, so processes given the same KEY
    share one store, exactly as with LMDB directories."""

    kind = "redis"

    def __init__(self, redis):
        self.redis = redis
        self.by_key = {}

    def url(self, store, workdir):
        if store is None:
            return self.redis.url(self.redis.new_db())
        key = str(store)
        if key not in self.by_key:
            self.by_key[key] = self.redis.new_db()
        return self.redis.url(self.by_key[key])

    def keyspace(self, srv):
        """The keys of the store a process uses (a Server, or its STORE_URL)."""
        url = getattr(srv, "store_url", srv)
        return RedisKeySpace(self.redis, int(url.rsplit("/", 1)[1]))

    def describe(self):
        return "redis (127.0.0.1:%d, a database per store)" % self.redis.port


# The store kinds that keep sessions in Redis (the same records, commands and
# native expiry; "sentinel" finds the primary through Sentinels, "cluster"
# spreads the keys over the slots of a Redis Cluster, so its key names
# differ: tests that look at keys ask stores.keyspace(srv) for them).
REDIS_KINDS = ("redis", "sentinel", "cluster")


class SentinelStores(RedisStores):
    """Redis through Sentinel: each store is a database number of one shared
    Sentinel set (1 primary, 2 replicas, 3 Sentinels), reached as
    redis-sentinel://sentinels.../mymaster/db; store=None and store=KEY as
    RedisStores."""

    kind = "sentinel"

    def __init__(self, sentinel_set):
        super().__init__(sentinel_set)

    def describe(self):
        return "redis-sentinel (Sentinels on ports %s, a database per store)" % ", ".join(
            str(s.port) for s in self.redis.sentinels)


class ClusterStores:
    """Redis Cluster: a cluster has database 0 only, so each store is a key
    prefix (the path of redis-cluster://seeds.../PREFIX, [A-Za-z0-9._-],
    1..32 characters) on one shared cluster.  store=None is a prefix no
    other process got; store=KEY is one prefix per distinct KEY, so
    processes given the same KEY share one store, as with RedisStores'
    databases.  self.redis is the RedisCluster (client_for_key, slot_of)."""

    kind = "cluster"

    def __init__(self, cluster):
        self.redis = cluster
        self.cluster = cluster
        self.by_key = {}

    def new_prefix(self):
        return new_cluster_prefix()

    def url(self, store, workdir):
        if store is None:
            return self.cluster.url(prefix=self.new_prefix())
        key = str(store)
        if key not in self.by_key:
            self.by_key[key] = self.new_prefix()
        return self.cluster.url(prefix=self.by_key[key])

    def keyspace(self, srv):
        url = getattr(srv, "store_url", srv)
        return ClusterKeySpace(self.cluster, cluster_url_prefix(url))

    def describe(self):
        return "redis-cluster (seeds on ports %s, a key prefix per store)" % ", ".join(
            str(n.port) for n in self.cluster.data_nodes[:3])


_PREFIXES_GIVEN = [0]


def new_cluster_prefix():
    """A key prefix no other store of this test session got."""
    _PREFIXES_GIVEN[0] += 1
    return "t%d-%s" % (_PREFIXES_GIVEN[0], secrets.token_hex(3))


def cluster_url_prefix(url):
    """The key prefix of a redis-cluster:// URL ("ss" when it names none)."""
    rest = url.split("://", 1)[1]
    rest = rest.rsplit("@", 1)[-1]
    _, slash, prefix = rest.partition("/")
    return prefix if slash and prefix else "ss"


# --------------------------------------------------------------------------
# the keys of a store on Redis (docs/REDIS.md "Keys")
# --------------------------------------------------------------------------

# A session id as the service makes them since the cluster support: 9
# characters of time stamp, 22 of randomness, then its user's 3-character
# placement tag.  Ids of any other length (older versions: 31 or 22
# characters; imports) are "foreign".
TAGGED_ID_LEN = 34
TAG_LEN = 3
_B64_SORTED = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def user_tag(user):
    """A user's placement tag: the 64-bit FNV-1a hash of the user id's UTF-8
    bytes, through MurmurHash3's 64-bit finalizer, whose top 18 bits are 3
    characters of base64url in ASCII order.  It mirrors src/session.c
    (session_id_tag; docs/REDIS.md "Cluster"), since the tag is part of the
    stored data's format; test_cluster.py checks it against the ids the
    service makes, so a change there shows up in one place."""
    m = 0xFFFFFFFFFFFFFFFF
    h = 0xcbf29ce484222325
    for b in user.encode("utf-8") if isinstance(user, str) else user:
        h ^= b
        h = (h * 0x100000001b3) & m
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & m
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & m
    h ^= h >> 33
    return "".join(_B64_SORTED[(h >> (58 - 6 * i)) & 63] for i in range(TAG_LEN))


class RedisKeySpace:
    """The keys of one store on one Redis (redis://, redis-sentinel://):
    ss:s:<id> (the record), ss:u:<user> (the user's index), in database db.
    client(key) is a Resp to the primary (use it in a `with`)."""

    cluster = False

    def __init__(self, redis, db):
        self.redis = redis
        self.db = db

    def session_key(self, sid, user=None):
        return "ss:s:" + sid

    def index_key(self, user):
        return "ss:u:" + user

    def alias_key(self, sid):
        return None

    def client(self, key):
        return self.redis.client(db=self.db)

    def call(self, key, *args):
        with self.client(key) as c:
            return c.call(*args)

    def raw(self, key, *args):
        """A bulk reply (GET of a record) as bytes."""
        with self.client(key) as c:
            return c.raw(*args)

    def scan(self, pattern="ss:*"):
        out = []
        with self.client(None) as c:
            cursor = "0"
            while True:
                cursor, keys = c.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
                out.extend(keys)
                if cursor == "0":
                    return out


class ClusterKeySpace(RedisKeySpace):
    """The keys of one store on a Redis Cluster, under its prefix P
    (docs/REDIS.md "Cluster"):
      P:{T}:s:<id>    the record of a session whose id is TAGGED_ID_LEN long
                      (T: the id's last 3 characters, its user's tag);
      P:{U}:s:<id>    the record of a session with a foreign id (U: the
                      tag of its user, so it shares the index's slot);
      P:{T}:a:<id>    for a foreign id: U (T: the id's last 3 characters);
      P:{U}:u:<user>  the user's index (ZSET of ids scored by expires_at);
      P:{t}:ready     the readiness probe's key, one per primary.
    client(key) is a Resp to the primary that serves the key's slot now."""

    cluster = True

    def __init__(self, cluster, prefix):
        super().__init__(cluster, 0)
        self.prefix = prefix

    @staticmethod
    def tagged(sid):
        return len(sid) == TAGGED_ID_LEN

    def session_key(self, sid, user=None):
        if self.tagged(sid):
            return "%s:{%s}:s:%s" % (self.prefix, sid[-TAG_LEN:], sid)
        assert user is not None, "a foreign id's record lives in its user's slot: give user"
        return self.user_slot_session_key(sid, user)

    def user_slot_session_key(self, sid, user):
        """Where the record of id sid would be as a foreign id of user."""
        return "%s:{%s}:s:%s" % (self.prefix, user_tag(user), sid)

    def index_key(self, user):
        return "%s:{%s}:u:%s" % (self.prefix, user_tag(user), user)

    def alias_key(self, sid):
        return "%s:{%s}:a:%s" % (self.prefix, sid[-TAG_LEN:], sid)

    def client(self, key):
        return self.redis.client_for_key(key)

    def scan(self, pattern=None):
        """Every key of this store (or matching pattern) on every primary."""
        pattern = pattern or "%s:*" % self.prefix
        out = []
        for node in self.redis.primaries():
            with node.client() as c:
                cursor = "0"
                while True:
                    cursor, keys = c.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
                    out.extend(keys)
                    if cursor == "0":
                        break
        return out


class Pool:
    """Starts processes and, at teardown, stops them and collects problems."""

    def __init__(self, tmp_factory, name, stores=None):
        self.tmp_factory = tmp_factory
        self.name = name
        self.stores = stores or LmdbStores()
        self.servers = []

    def start(self, binary="sessiond", env=None, store=None, cwd=None, wait=True):
        """store: None for a store of its own, or a key (an LMDB directory
        path, or any name) shared by every process started with the same key.
        A STORE_URL in env overrides both."""
        workdir = self.tmp_factory.mktemp(self.name)
        own_url = env is not None and env.get("STORE_URL") is not None
        url = None if own_url else self.stores.url(store, workdir)
        srv = Server(binary, workdir, env=env, store_url=url, cwd=cwd)
        self.servers.append(srv)
        srv.start(wait=wait)
        return srv

    def close(self):
        problems = []
        for srv in self.servers:
            srv.terminate()
            problems.extend(srv.problems())
        return problems


def run_until_exit(binary, env_overrides, workdir, timeout=5.0, cwd=None):
    """Start a binary that is expected to refuse its configuration."""
    workdir = Path(workdir)
    store = workdir / "store"
    store.mkdir(parents=True, exist_ok=True)
    cwd = Path(cwd) if cwd else workdir / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = apply_env(base_env(port, "lmdb://%s" % store), env_overrides)
    proc = subprocess.Popen([str(binary_path(binary))], cwd=str(cwd), env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("%s did not exit within %.0f s with %r; stderr:\n%s"
                    % (binary, timeout, env_overrides, err.decode("utf-8", "replace")),
                    pytrace=False)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# raw HTTP
# --------------------------------------------------------------------------

class RawResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<RawResponse %d %r>" % (self.status, self.body[:200])


class SocketOwner:
    """close() and `with` support for a client that holds self.sock."""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawConn(SocketOwner):
    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.sent = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sent += data[:65536]
        self.sock.sendall(data)

    def try_send(self, data):
        """sendall that tolerates the server closing early."""
        try:
            self.send(data)
            return True
        except OSError:
            return False

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _read_line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head_request=False):
        """Parse one response; None when the server closed without answering."""
        try:
            while True:
                while b"\r\n\r\n" not in self.buf:
                    self._fill()
                head, self.buf = self.buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ", 2)
                status = int(parts[1])
                reason = parts[2] if len(parts) > 2 else ""
                headers = []
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers.append((name.strip(), value.strip()))
                if 100 <= status < 200:
                    continue
                break
        except EOFError:
            if self.buf:
                raise AssertionError("connection closed mid-response: %r" % self.buf[:300])
            return None
        hdr = {n.lower(): v for n, v in headers}
        body = b""
        if head_request or status in (204, 304):
            body = b""
        elif "chunked" in hdr.get("transfer-encoding", "").lower():
            while True:
                size = int(self._read_line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_line() != b"":
                        pass
                    break
                body += self._read_exact(size)
                self._read_exact(2)
        elif "content-length" in hdr:
            body = self._read_exact(int(hdr["content-length"]))
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            body, self.buf = self.buf, b""
        resp = RawResponse(status, reason, headers, body)
        inspect_response("raw %r" % self.sent[:80], _raw_req_headers(self.sent), status,
                         headers, body)
        return resp

    def wait_closed(self, timeout):
        """True if the server closes the connection within timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False



def _raw_req_headers(sent):
    headers = []
    try:
        head = sent.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        for line in head.split("\r\n")[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers.append((name.strip(), value.strip()))
    except Exception:  # noqa: BLE001
        pass
    return headers


def raw_request(port, data, timeout=5.0):
    """Send bytes on a fresh connection and parse one answer (None: closed unanswered).

    When the answer says Connection: close, the connection must then close with
    no further bytes after the declared message (a well-framed response)."""
    with RawConn(port, timeout) as conn:
        conn.try_send(data)
        resp = conn.read_response()
        if resp is not None and "close" in (resp.header("Connection") or "").lower():
            conn.wait_closed(2.0)
            # libmicrohttpd 0.9.75 sends its own page for a bad Content-Length
            # with the header block twice (see LIBRARY_PAGES_ALLOWED).
            assert conn.buf == b"" or (LIBRARY_PAGES_ALLOWED and b"</html>" in conn.buf), \
                "bytes after a complete %d response: %r" % (
                resp.status, conn.buf[:300])
        return resp


def http_request_bytes(method, path, headers=None, body=b"", host="127.0.0.1"):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host]
    for name, value in (headers or {}).items():
        lines.append("%s: %s" % (name, value))
    if body and not any(k.lower() in ("content-length", "transfer-encoding")
                        for k in (headers or {})):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --------------------------------------------------------------------------
# Prometheus text
# --------------------------------------------------------------------------

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


class Metrics:
    def __init__(self, text):
        self.text = text
        self.samples = []  # (name, labels, value)
        self.types = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3]
                continue
            m = _SAMPLE_RE.match(line)
            assert m, "unparsable metrics line: %r" % line
            name, labelstr, value = m.group(1), m.group(2) or "", m.group(3)
            labels = {}
            pos = 0
            while pos < len(labelstr):
                lm = _LABEL_RE.match(labelstr, pos)
                assert lm, "bad labels in metrics line: %r" % line
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
            self.samples.append((name, labels, float(value)))

    def select(self, name, **labels):
        return [(ls, v) for n, ls, v in self.samples
                if n == name and all(ls.get(k) == str(val) for k, val in labels.items())]

    def value(self, name, **labels):
        return sum(v for _, v in self.select(name, **labels))

    def names(self):
        return {n for n, _, _ in self.samples}


def parse_metrics(text):
    return Metrics(text)


def wait_until(predicate, timeout=2.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


# --------------------------------------------------------------------------
# creates racing with other requests of the same user
# --------------------------------------------------------------------------

def creates_racing(server, token, meanwhile, total=150, batch=25, workers=2):
    """Creates up to `total` sessions one after another while `workers`
    threads call meanwhile() in a loop.  After each batch, answers
    (created ids, True) as soon as some created session is live but not
    listed (the check stops early then); (created ids, False) otherwise."""
    import threading
    made = []
    user = decode_token(token)["sub"]
    for _ in range(0, total, batch):
        done = threading.Event()
        errors = []

        def loop():
            try:
                while not done.is_set():
                    meanwhile()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=loop) for _ in range(workers)]
        for t in threads:
            t.start()
        try:
            for _ in range(batch):
                made.append(server.create(token)["id"])
        finally:
            done.set()
            for t in threads:
                t.join(30)
        assert not errors, errors
        r = server.get("/users/%s/sessions" % q(user), token=token)
        listed = {s["id"] for s in r.json()["sessions"]}
        unlisted = [i for i in made if i not in listed]
        live_unlisted = [i for i in unlisted
                         if server.get("/session/%s" % i, token=token).status_code == 200]
        if live_unlisted:
            return made, live_unlisted
    return made, []


def answered_despite_resets(port, reqs, gone, stall=None):
    """Sends reqs[i] on a connection of its own, then resets (RST, not FIN)
    the connections whose index is in gone, all while stall (a context
    manager: a paused store, say) holds if one is given. Returns the
    answers of the others, index -> RawResponse (None: none came)."""
    conns = []
    try:
        for _ in reqs:
            conns.append(RawConn(port, timeout=10))
        with stall if stall is not None else contextlib.nullcontext():
            for cn, req in zip(conns, reqs):
                cn.send(req)
            if stall is not None:
                time.sleep(0.2)  # every request is waiting
            for i in gone:
                conns[i].sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                conns[i].close()
            if stall is not None:
                time.sleep(0.05)
        return {i: cn.read_response() for i, cn in enumerate(conns) if i not in gone}
    finally:
        for cn in conns:
            cn.close()
