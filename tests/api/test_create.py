"""POST /session — create (API.md "POST /session", CONTRACT-NOTES "Routes")."""

import json
import time

import jwt
import pytest

from apitools import (ADMIN_SCOPE, ID_RE, SESSION_FIELDS, admin_token, assert_json,
                      assert_problem, decode_token, http_request_bytes, make_token, no_store,
                      now, raw_request, uid)

MAX_TTL = 2592000


@pytest.fixture(scope="module")
def ttl_server(mspawn):
    return mspawn("sessiond", env={"SESSION_TTL": "120", "SESSION_MAX_TTL": "600"})


@pytest.fixture(scope="module")
def proxy_server(mspawn):
    return mspawn("sessiond", env={"TRUST_PROXY": "1"})


def post_raw(server, token, body, ctype="application/json", **kw):
    headers = {}
    if ctype is not None:
        headers["Content-Type"] = ctype
    return server.post("/session", token=token, data=body, headers=headers, **kw)


def nest(levels):
    """An object nested `levels` deep: nest(1) == {}, nest(2) == {"a": {}}."""
    obj = {}
    for _ in range(levels - 1):
        obj = {"a": obj}
    return obj


# ---------------------------------------------------------------- the answer

def test_create_answers_201_with_session_object(server, user):
    t0 = now()
    r = server.post("/session", token=make_token(user), headers={"User-Agent": "ua-test/1.0"})
    t1 = now()
    body = assert_json(r, 201)
    assert set(body) == SESSION_FIELDS | {"token", "evicted"}
    assert body["evicted"] == []
    assert ID_RE.match(body["id"]), body["id"]
    assert body["user_id"] == user
    for key in ("created_at", "expires_at", "last_seen_at"):
        assert type(body[key]) is int, (key, body[key])
    assert t0 - 2 <= body["created_at"] <= t1 + 2
    assert body["expires_at"] == body["created_at"] + 3600
    assert body["created_at"] <= body["last_seen_at"] <= body["expires_at"]
    assert body["ip"] == "127.0.0.1"
    assert body["user_agent"] == "ua-test/1.0"
    assert body["data"] == {}
    assert isinstance(body["token"], str) and body["token"].count(".") == 2
    assert r.headers.get("Location") == "/session/%s" % body["id"]
    assert no_store(r), r.headers.get("Cache-Control")


def test_ids_are_distinct_and_well_formed(server, user):
    tok = make_token(user)
    ids, jtis = set(), set()
    for _ in range(25):
        s = server.create(tok)
        assert ID_RE.match(s["id"]), s["id"]
        ids.add(s["id"])
        jtis.add(decode_token(s["token"])["jti"])
    assert len(ids) == 25
    assert len(jtis) == 25


def test_session_token_claims(server, user):
    s = server.create(make_token(user), {"ttl": 900})
    header = jwt.get_unverified_header(s["token"])
    assert header.get("alg") == "HS256"
    claims = decode_token(s["token"])  # signature checked with the shared secret
    for key in ("sub", "sid", "iat", "exp", "jti"):
        assert key in claims, claims
    assert claims["sub"] == user == s["user_id"]
    assert claims["sid"] == s["id"]
    assert claims["exp"] == s["expires_at"] == s["created_at"] + 900
    assert abs(claims["iat"] - s["created_at"]) <= 1
    assert isinstance(claims["jti"], str) and claims["jti"]
    assert "iss" not in claims  # JWT_ISSUER is not configured here
    assert "scope" not in claims  # a session token grants no administrator rights
    # the token does not verify with another key
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(s["token"], "x" * 48, algorithms=["HS256"])


def test_created_token_is_accepted_by_validate(server, user):
    s = server.create(make_token(user))
    r = server.get("/validate", token=s["token"])
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Session-Id") == s["id"]
    assert r.headers.get("X-User-Id") == user


# ---------------------------------------------------------------- body forms

def test_empty_body_without_content_type(server, user):
    r = post_raw(server, make_token(user), b"", ctype=None)
    body = assert_json(r, 201)
    assert body["data"] == {}
    assert body["expires_at"] == body["created_at"] + 3600


def test_empty_json_object(server, user):
    r = post_raw(server, make_token(user), b"{}")
    body = assert_json(r, 201)
    assert body["data"] == {} and body["user_id"] == user


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8",
                                   "application/json;charset=UTF-8",
                                   "Application/JSON"])
def test_json_content_type_variants_accepted(server, user, ctype):
    r = post_raw(server, make_token(user), b'{"ttl": 61}', ctype=ctype)
    body = assert_json(r, 201)
    assert body["expires_at"] == body["created_at"] + 61


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "text/json", "application/jsonx", "multipart/form-data"])
def test_non_json_content_type_is_415(server, user, ctype):
    r = post_raw(server, make_token(user), b'{"ttl": 60}', ctype=ctype)
    assert_problem(r, 415)
    # nothing was created
    r = server.get("/users/%s/sessions" % user, token=make_token(user))
    assert r.json() == {"sessions": []}


# ---------------------------------------------------------------- ttl

@pytest.mark.parametrize("ttl", [1, 60, 86400, MAX_TTL])
def test_ttl_in_range(server, user, ttl):
    s = server.create(make_token(user), {"ttl": ttl})
    assert s["expires_at"] == s["created_at"] + ttl
    # leeway: with ttl=1 the token may expire before this line decodes it
    assert decode_token(s["token"], leeway=60)["exp"] == s["expires_at"]


@pytest.mark.parametrize("raw", [b"0", b"-1", b"-3600", b"2592001", b"60.0", b"1.5",
                                 b'"60"', b"true", b"false", b"[60]", b"{}",
                                 b"18446744073709551617", b"-9223372036854775809",
                                 b"9223372036854775807", b"1e400"])
def test_ttl_invalid_is_400(server, user, raw):
    r = post_raw(server, make_token(user), b'{"ttl": ' + raw + b"}")
    assert_problem(r, 400)


def test_ttl_default_and_max_from_config(ttl_server, user):
    tok = make_token(user)
    s = ttl_server.create(tok)
    assert s["expires_at"] == s["created_at"] + 120
    s = ttl_server.create(tok, {"ttl": 600})
    assert s["expires_at"] == s["created_at"] + 600
    assert_problem(ttl_server.post("/session", token=tok, json={"ttl": 601}), 400)


def test_only_a_small_max_ttl_set(spawn, user):
    # SESSION_MAX_TTL below SESSION_TTL's default (3600), SESSION_TTL unset:
    # the service starts, and the default lifetime is the largest allowed
    srv = spawn("sessiond", env={"SESSION_MAX_TTL": "600"})
    tok = make_token(user)
    s = srv.create(tok)
    assert s["expires_at"] == s["created_at"] + 600
    assert srv.create(tok, {"ttl": 600})["expires_at"] <= now() + 601
    assert_problem(srv.post("/session", token=tok, json={"ttl": 601}), 400)


# ---------------------------------------------------------------- data

NESTED = {
    "s": "héllo ✓ \"quoted\" \\ back / slash \u0001",
    "emoji": "\U0001F600",
    "n": 42, "neg": -7, "f": 3.25, "zero": 0,
    "t": True, "fa": False, "nul": None,
    "arr": [1, "two", [3, [4, {"five": 5}]], {}, []],
    "obj": {"inner": {"deeper": {"k": "v"}}, "empty": {}},
    "": "empty key",
}


def test_data_is_returned_as_given(server, user):
    tok = make_token(user)
    s = server.create(tok, {"data": NESTED})
    assert s["data"] == NESTED
    r = server.get("/session/%s" % s["id"], token=tok)
    assert assert_json(r, 200)["data"] == NESTED


def test_data_numbers_are_returned_as_given(server, user):
    tok = make_token(user)
    raw = b'{"data": {"big": 12345678901234567890, "small": -9007199254740993, ' \
          b'"frac": 0.1, "exp": 1.5e-7}}'
    r = post_raw(server, tok, raw)
    created = assert_json(r, 201)
    expected = json.loads(raw)["data"]
    assert created["data"] == expected
    read = server.get("/session/%s" % created["id"], token=tok).json()
    assert read["data"] == expected


@pytest.mark.parametrize("data", [[], [1, 2], "text", 1, 0, True, None])
def test_data_not_an_object_is_400(server, user, data):
    assert_problem(server.post("/session", token=make_token(user), json={"data": data}), 400)


def test_data_size_limit(server, user):
    tok = make_token(user)
    ok = {"x": "a" * 4080}
    assert len(json.dumps(ok, separators=(",", ":"))) <= 4096
    s = server.create(tok, {"data": ok})
    assert s["data"] == ok
    too_big = {"x": "a" * 4100}
    assert_problem(server.post("/session", token=tok, json={"data": too_big}), 400)
    many_keys = {"k%04d" % i: i for i in range(600)}  # about 6 KB serialized
    assert_problem(server.post("/session", token=tok, json={"data": many_keys}), 400)


# ---------------------------------------------------------------- malformed bodies

@pytest.mark.parametrize("body", [
    {"foo": 1},
    {"ttl": 60, "extra": True},
    {"id": "AAAAAAAAAAAAAAAAAAAAAA"},
    {"token": "x"},
    {"TTL": 60},
    {"expires_at": 1},
], ids=["foo", "extra", "id", "token", "TTL-case", "expires_at"])
def test_unknown_field_is_400(server, user, body):
    assert_problem(server.post("/session", token=make_token(user), json=body), 400)


@pytest.mark.parametrize("raw", [
    b"{} x",
    b"{}{}",
    b'{"ttl": 60} {"ttl": 60}',
    b"{}]",
    b'{"ttl": 60',
    b'{"ttl": 60,}',
    b"{'ttl': 60}",
    b"{ttl: 60}",
    b'{"data": {"x": "\xff"}}',
    b'{"data": {"x": "\xc0\xaf"}}',
    b'{"data": {"x": "\xed\xa0\x80"}}',
    b'{"data": {"\xfe": 1}}',
    b'{"data": {"x": "a\x01b"}}',
    b'{"ttl": 60, "ttl": 60}',
    b'{"ttl": 60, "ttl": 70}',
    b'{"data": {"a": 1, "a": 2}}',
    b'{"data": {"a": {"b": 1, "b": 1}}}',
    b'{"data": {"x": NaN}}',
    b'{"ttl": Infinity}',
    b'{"data": {"x": 01}}',
    b'{"data": {"x": "\\x41"}}',
    b"[]",
    b"[{}]",
    b'"text"',
    b"42",
    b"null",
    b"true",
], ids=lambda raw: raw.decode("latin-1")[:40])
def test_malformed_body_is_400(server, user, raw):
    assert_problem(post_raw(server, make_token(user), raw), 400)


def test_depth_33_is_400_and_31_is_accepted(server, user):
    tok = make_token(user)
    # the top-level object is level 1, so {"data": nest(n)} is n + 1 levels deep
    assert_problem(post_raw(server, tok, json.dumps({"data": nest(32)}).encode()), 400)
    lists = []
    for _ in range(30):
        lists = [lists]
    # {"data": {"a": [[...]]}}: object, object, then 31 arrays = 33 levels
    assert_problem(post_raw(server, tok, json.dumps({"data": {"a": lists}}).encode()), 400)
    s = server.create(tok, {"data": nest(30)})
    assert s["data"] == nest(30)


def test_very_deep_nesting_is_400_not_a_crash(server, user):
    tok = make_token(user)
    for raw in (b'{"data":' + b"[" * 8000 + b"]" * 8000 + b"}",
                b'{"data":' + b'{"a":' * 3000,
                b"[" * 16000):
        assert len(raw) <= 16384
        assert_problem(post_raw(server, tok, raw), 400)
    assert server.get("/healthz").status_code == 200


# ---------------------------------------------------------------- user_id

def test_user_id_of_another_user_needs_admin(server, user):
    other = uid()
    r = server.post("/session", token=make_token(user), json={"user_id": other})
    assert_problem(r, 403)
    assert server.get("/users/%s/sessions" % other, token=admin_token()).json() == \
        {"sessions": []}
    # an unrelated scope is not the administrator scope
    r = server.post("/session", token=make_token(user, scope="session:read other"),
                    json={"user_id": other})
    assert_problem(r, 403)


def test_admin_creates_session_for_another_user(server, user):
    r = server.post("/session", token=admin_token(), json={"user_id": user, "ttl": 300})
    s = assert_json(r, 201)
    assert s["user_id"] == user
    claims = decode_token(s["token"])
    assert claims["sub"] == user and claims["sid"] == s["id"]
    assert "scope" not in claims or ADMIN_SCOPE not in str(claims["scope"]).split()
    # the user reads it with an ordinary token
    r = server.get("/session/%s" % s["id"], token=make_token(user))
    assert assert_json(r, 200)["id"] == s["id"]


def test_user_id_equal_to_caller_needs_no_admin(server, user):
    s = server.create(make_token(user), {"user_id": user})
    assert s["user_id"] == user


@pytest.mark.parametrize("bad", ["", "a" * 257, "\u00e9" * 129, "ab\u0000cd", "ab\u0001",
                                 "line\nbreak", "tab\there", "\u001f", "del\u007f",
                                 123, True, ["alice"], {"id": "alice"}],
                         ids=["empty", "257-bytes", "258-utf8-bytes", "nul", "ctl-01",
                              "newline", "tab", "ctl-1f", "del", "number", "bool", "array",
                              "object"])
def test_user_id_invalid_is_400(server, bad):
    assert_problem(server.post("/session", token=admin_token(), json={"user_id": bad}), 400)


@pytest.mark.parametrize("good", ["a" * 256, "\u00e9" * 128, "a/b c%2F\u2713"],
                         ids=["256-bytes", "256-utf8-bytes", "slash-space-unicode"])
def test_user_id_boundaries_accepted(server, good):
    s = server.create(admin_token(), {"user_id": good})
    assert s["user_id"] == good
    assert decode_token(s["token"])["sub"] == good


# ---------------------------------------------------------------- user agent, ip

def test_user_agent_null_when_absent(server, user):
    tok = make_token(user)
    # raw socket: HTTP client libraries add a User-Agent of their own
    resp = raw_request(server.port, http_request_bytes(
        "POST", "/session", {"Authorization": "Bearer %s" % tok}))
    assert resp is not None and resp.status == 201, resp
    s = resp.json()
    assert s["user_agent"] is None
    assert server.get("/session/%s" % s["id"], token=tok).json()["user_agent"] is None


def test_long_user_agent_is_truncated_to_512_bytes(server, user):
    ua = "agent/" + "x" * 994
    s = assert_json(server.post("/session", token=make_token(user),
                                headers={"User-Agent": ua}), 201)
    assert 0 < len(s["user_agent"].encode()) <= 512
    assert ua.startswith(s["user_agent"])


def test_ip_is_peer_address_and_forwarded_for_ignored_by_default(server, user):
    r = server.post("/session", token=make_token(user),
                    headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1"})
    assert assert_json(r, 201)["ip"] == "127.0.0.1"


def test_trust_proxy_takes_first_forwarded_for_entry(proxy_server, user):
    tok = make_token(user)
    r = proxy_server.post("/session", token=tok,
                          headers={"X-Forwarded-For": "203.0.113.7 , 10.0.0.1, 10.0.0.2"})
    assert assert_json(r, 201)["ip"] == "203.0.113.7"
    r = proxy_server.post("/session", token=tok, headers={"X-Forwarded-For": "198.51.100.4"})
    assert assert_json(r, 201)["ip"] == "198.51.100.4"
    r = proxy_server.post("/session", token=tok)
    assert assert_json(r, 201)["ip"] == "127.0.0.1"


def test_created_at_is_current_time(server, user):
    before = time.time()
    s = server.create(make_token(user))
    assert before - 2 <= s["created_at"] <= time.time() + 2
