"""Configuration: refusal at start, .env files, the listening line
(API.md "Configuration", CONTRACT-NOTES "Processes and configuration")."""

import re
import secrets
import socket

import pytest

from apitools import (BINARIES, SECRET, assert_problem, make_token, run_until_exit,
                      wait_until)

SHORT_SECRET = secrets.token_hex(16)[:31]  # 31 bytes
OTHER_SECRET = secrets.token_urlsafe(36)   # 48 characters, not the suite's secret

REFUSALS = [
    ("JWT_SECRET", {"JWT_SECRET": None}),
    ("JWT_SECRET", {"JWT_SECRET": SHORT_SECRET}),
    ("JWT_SECRET", {"JWT_SECRET": ""}),
    ("JWT_SECRET_PREVIOUS", {"JWT_SECRET_PREVIOUS": SHORT_SECRET}),
    ("JWT_SECRET_PREVIOUS", {"JWT_SECRET_PREVIOUS": ""}),
    ("PORT", {"PORT": "abc"}),
    ("PORT", {"PORT": "70000"}),
    ("PORT", {"PORT": "0"}),
    ("PORT", {"PORT": "-1"}),
    ("PORT", {"PORT": "80x"}),
    ("SESSION_TTL", {"SESSION_TTL": "-5"}),
    ("SESSION_TTL", {"SESSION_TTL": "ten"}),
    ("SESSION_MAX_TTL", {"SESSION_MAX_TTL": "abc"}),
    ("STORE_URL", {"STORE_URL": "ftp://x"}),
    ("STORE_URL", {"STORE_URL": "nonsense"}),
    ("LOG_LEVEL", {"LOG_LEVEL": "loud"}),
    ("TRUST_PROXY", {"TRUST_PROXY": "2"}),
    ("JWT_LEEWAY", {"JWT_LEEWAY": "-1"}),
    ("THREADS", {"THREADS": "257"}),
    ("THREADS", {"THREADS": "many"}),
    ("CONNECTION_LIMIT", {"CONNECTION_LIMIT": "0"}),
    ("CONNECTION_LIMIT", {"CONNECTION_LIMIT": "65537"}),
    ("CONNECTION_TIMEOUT", {"CONNECTION_TIMEOUT": "0"}),
    ("CONNECTION_TIMEOUT", {"CONNECTION_TIMEOUT": "3601"}),
    ("LMDB_MAP_SIZE", {"LMDB_MAP_SIZE": "1000"}),
    ("LMDB_MAP_SIZE", {"LMDB_MAP_SIZE": "lots"}),
    ("PURGE_INTERVAL", {"PURGE_INTERVAL": "0"}),
    ("PURGE_INTERVAL", {"PURGE_INTERVAL": "86401"}),
    ("HOST", {"HOST": "999.999.999.999"}),
    ("STORE_URL", {"STORE_URL": "redis-sentinel://127.0.0.1:26379"}),       # no master name
    ("STORE_URL", {"STORE_URL": "redis-sentinel://127.0.0.1/mymaster"}),    # no port
    ("STORE_URL", {"STORE_URL": "redis-cluster://127.0.0.1"}),              # no port
    ("STORE_URL", {"STORE_URL": "redis-cluster:///ss"}),                    # no seed
    ("STORE_URL", {"STORE_URL": "redis-cluster://127.0.0.1:7000/a{b}"}),    # prefix: [A-Za-z0-9._-]
    ("STORE_URL", {"STORE_URL": "redis-cluster://127.0.0.1:7000/" + "p" * 33}),  # prefix > 32
    ("STORE_URL", {"STORE_URL": "redis-cluster://127.0.0.1:7000/a/b"}),     # one path segment
    ("STORE_URL", {"STORE_URL": "redis-cluster://127.0.0.1:7000/0"}),       # a database, not a prefix
    ("REDIS_WAIT_REPLICAS", {"REDIS_WAIT_REPLICAS": "17"}),
    ("REDIS_WAIT_REPLICAS", {"REDIS_WAIT_REPLICAS": "-1"}),
    ("REDIS_WAIT_TIMEOUT_MS", {"REDIS_WAIT_TIMEOUT_MS": "0"}),
    ("REDIS_WAIT_TIMEOUT_MS", {"REDIS_WAIT_TIMEOUT_MS": "60001"}),
    ("REDIS_SENTINEL_PASSWORD", {"REDIS_SENTINEL_PASSWORD": ""}),
]


def refusal_id(case):
    var, env = case
    return "%s=%r" % (var, env[var])


def assert_refused(rc, err, var, secret_values=(SECRET,)):
    assert rc == 2, "exit status %s (want 2); stderr:\n%s" % (rc, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, "want exactly one stderr line, got:\n%s" % err
    assert re.search(r"\b%s\b" % re.escape(var), lines[0]), \
        "stderr line does not name %s: %r" % (var, lines[0])
    assert "config" in lines[0], lines[0]
    for value in secret_values:
        if value:
            assert value not in err, "stderr contains the secret"


@pytest.mark.parametrize("case", REFUSALS, ids=[refusal_id(c) for c in REFUSALS])
def test_bad_value_refused_at_start(tmp_path, case):
    var, env = case
    rc, out, err = run_until_exit("sessiond", env, tmp_path)
    assert_refused(rc, err, var, (SECRET, SHORT_SECRET))
    assert out.strip() == "" or SECRET not in out


@pytest.mark.parametrize("binary", BINARIES)
def test_every_binary_refuses_missing_secret(tmp_path, binary):
    rc, out, err = run_until_exit(binary, {"JWT_SECRET": None}, tmp_path)
    assert_refused(rc, err, "JWT_SECRET")


@pytest.mark.parametrize("binary", BINARIES)
def test_every_binary_refuses_bad_port(tmp_path, binary):
    rc, out, err = run_until_exit(binary, {"PORT": "abc"}, tmp_path)
    assert_refused(rc, err, "PORT")


def test_secret_of_exactly_32_bytes_is_enough(spawn, user):
    key = secrets.token_hex(16)
    assert len(key) == 32
    srv = spawn("sessiond", env={"JWT_SECRET": key})
    r = srv.get("/users/%s/sessions" % user, token=make_token(user, secret=key))
    assert r.status_code == 200
    assert_problem(srv.get("/users/%s/sessions" % user, token=make_token(user)), 401)


@pytest.mark.parametrize("binary", BINARIES)
def test_a_port_in_use_is_refused_with_one_line(tmp_path, binary):
    """Another server holds the port: the binary exits 1 with one line
    naming PORT and the address, and does not take the port over."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.settimeout(5)
        holder.bind(("127.0.0.1", 0))
        holder.listen(8)
        port = holder.getsockname()[1]
        rc, out, err = run_until_exit(binary, {"PORT": str(port)}, tmp_path)
        assert rc == 1, "exit status %s (want 1); stderr:\n%s" % (rc, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, "want exactly one stderr line, got:\n%s" % err
        assert "PORT: cannot listen on 127.0.0.1:%d" % port in lines[0], lines[0]
        assert SECRET not in err
        # the holder still gets the connections
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            got, _ = holder.accept()
            got.close()
    finally:
        holder.close()


def test_listening_line(spawn):
    srv = spawn("sessiond")
    pat = re.compile(r"listening on 127\.0\.0\.1:%d\b" % srv.port)
    assert wait_until(lambda: pat.search(srv.stderr_text()), timeout=2), srv.stderr_text()


# ---------------------------------------------------------------- .env

def write(path, text):
    path.write_text(text)
    return path


def token_works(srv, user, secret):
    r = srv.get("/users/%s/sessions" % user, token=make_token(user, secret=secret))
    return r.status_code == 200


def test_dotenv_in_working_directory(spawn, tmp_path, user):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    write(cwd / ".env", "# settings for the test\n\nJWT_SECRET=%s\n# SESSION_TTL=5\n"
                        "SESSION_TTL=321\n" % OTHER_SECRET)
    srv = spawn("sessiond", env={"JWT_SECRET": None}, cwd=cwd)
    assert token_works(srv, user, OTHER_SECRET)
    assert not token_works(srv, user, SECRET)
    s = srv.create(make_token(user, secret=OTHER_SECRET))
    assert s["expires_at"] == s["created_at"] + 321  # the commented 5 was not read


def test_env_file_variable(spawn, tmp_path, user):
    cfg = write(tmp_path / "elsewhere.conf", "JWT_SECRET=%s\nSESSION_TTL=222\n" % OTHER_SECRET)
    srv = spawn("sessiond", env={"JWT_SECRET": None, "ENV_FILE": str(cfg)})
    assert token_works(srv, user, OTHER_SECRET)
    s = srv.create(make_token(user, secret=OTHER_SECRET))
    assert s["expires_at"] == s["created_at"] + 222


def test_real_environment_wins_over_file(spawn, tmp_path, user):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    write(cwd / ".env", "JWT_SECRET=%s\nSESSION_TTL=111\nSESSION_MAX_TTL=5000\n" % OTHER_SECRET)
    srv = spawn("sessiond", env={"SESSION_MAX_TTL": "4000"}, cwd=cwd)  # JWT_SECRET=SECRET set
    assert token_works(srv, user, SECRET)
    assert not token_works(srv, user, OTHER_SECRET)
    tok = make_token(user)
    s = srv.create(tok)
    assert s["expires_at"] == s["created_at"] + 111  # taken from the file
    long = srv.create(tok, {"ttl": 4000})  # the environment's 4000, not the file's 5000
    assert long["expires_at"] == long["created_at"] + 4000
    assert_problem(srv.post("/session", token=tok, json={"ttl": 4001}), 400)


def test_dotenv_syntax_export_quotes_whitespace(spawn, tmp_path, user):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    write(cwd / ".env", "export JWT_SECRET=\"%s\"\n  SESSION_TTL = '432'\n"
                        "# a comment\n\n LOG_LEVEL = warn  \n" % OTHER_SECRET)
    srv = spawn("sessiond", env={"JWT_SECRET": None}, cwd=cwd)
    assert token_works(srv, user, OTHER_SECRET)
    s = srv.create(make_token(user, secret=OTHER_SECRET))
    assert s["expires_at"] == s["created_at"] + 432


def test_bad_value_in_dotenv_is_refused(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    write(cwd / ".env", "PORT=abc\n")
    rc, out, err = run_until_exit("sessiond", {"PORT": None}, tmp_path, cwd=cwd)
    assert_refused(rc, err, "PORT")


def test_malformed_dotenv_is_refused(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    write(cwd / ".env", "# fine\nthis line is not a setting\nSESSION_TTL=60\n")
    rc, out, err = run_until_exit("sessiond", {}, tmp_path, cwd=cwd)
    assert rc == 2, (rc, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert ".env" in lines[0] and "2" in lines[0] or "ENV_FILE" in lines[0], lines[0]
    assert SECRET not in err


def test_malformed_env_file_is_refused(tmp_path):
    cfg = write(tmp_path / "broken.conf", "JWT_SECRET\n")
    rc, out, err = run_until_exit("sessiond", {"ENV_FILE": str(cfg)}, tmp_path)
    assert rc == 2, (rc, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "ENV_FILE" in lines[0] or "broken.conf" in lines[0], lines[0]
    assert SECRET not in err


def test_short_secret_in_dotenv_is_refused_without_echo(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    write(cwd / ".env", "JWT_SECRET=%s\n" % SHORT_SECRET)
    rc, out, err = run_until_exit("sessiond", {"JWT_SECRET": None}, tmp_path, cwd=cwd)
    assert_refused(rc, err, "JWT_SECRET", (SHORT_SECRET,))


def test_missing_dotenv_is_not_an_error(spawn):
    srv = spawn("sessiond")  # its working directory has no .env
    assert srv.get("/healthz").status_code == 200
