#!/usr/bin/python3
"""Writes the small seed corpora in fuzz/corpus/<target>/ (valid and
near-valid inputs). Run once; the seeds are committed."""
import base64, hashlib, hmac, json, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"fuzzing-key-fuzzing-key-fuzzing-key!"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def tok(header, claims, key=KEY):
    si = b64(header) + b"." + b64(claims)
    return si + b"." + b64(hmac.new(key, si, hashlib.sha256).digest())


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


H = b'{"alg":"HS256","typ":"JWT"}'
C = b'{"sub":"alice","exp":1700003600,"iat":1700000000,"sid":"AAAAAAAAAAAAAAAAAAAAAA"}'
put("token", "valid-wrong-key", tok(H, C, b"another-key-another-key-another-key"))
put("token", "alg-none", b64(b'{"alg":"none"}') + b"." + b64(C) + b".")
put("token", "dup-keys", tok(H, b'{"sub":"a","sub":"b","exp":1700003600}', b"x" * 32))
put("token", "crit", tok(b'{"alg":"HS256","crit":["x"]}', C, b"x" * 32))
put("token", "padded", tok(H, C, b"y" * 32) + b"=")
put("token", "issuer", b"I" + tok(H, b'{"sub":"a","exp":1700003600,"iss":"iss","aud":["aud"]}', b"z" * 32))
put("token", "four-segments", tok(H, C, b"q" * 32) + b".eA")

put("body", "empty", b"")
put("body", "all", b'{"user_id":"bob","ttl":600,"data":{"a":[1,2,{"b":null}],"s":"x\\u00e9"}}')
put("body", "big-int", b'{"data":{"n":12345678901234567890,"f":1.5e-7}}')
put("body", "dup", b'{"ttl":1,"ttl":2}')
put("body", "deep", b'{"data":' + b"[" * 40 + b"]" * 40 + b"}")
put("body", "float-ttl", b'{"ttl":60.0}')
put("body", "escaped-key", b'{"d\\u0061ta":{}}')

put("env", "basic", b"# comment\nPORT=8081\nexport HOST=127.0.0.1\nJWT_SECRET='0123456789abcdef0123456789abcdef'\n")
put("env", "bad", b"PORT 8081\nX=\"unterminated\n")
put("env", "all", b"JWT_SECRET=" + b"s" * 40 + b"\nSTORE_URL=redis://:pw@host:6379/2\nLOG_LEVEL=debug\nLMDB_SYNC=meta\nTHREADS=4\n")

put("path", "session", b"/session/AAAAAAAAAAAAAAAAAAAAAA")
put("path", "user", b"/users/a%2Fb/sessions")
put("path", "bad-escape", b"/users/%zz/sessions")
put("path", "trailing", b"/session/")

put("cookie", "cookies", b"a=b; session=\"tok.en.x\"; c=d")
put("cookie", "bearer", b"Bearer   abc.def.ghi  ")
put("cookie", "prefix", b"xsession=1;session=2")


def record(id_, user, ip, ua, data, c=1700000000, ls=1700000000, e=1700003600):
    ual = 0xFFFF if ua is None else len(ua)
    h = struct.pack("<BBHHHIqqq", 1, len(id_), len(user), len(ip), ual, len(data), c, ls, e)
    return h + id_ + user + ip + (ua or b"") + data


put("record", "session", record(b"AAAAAAAAAAAAAAAAAAAAAA", b"alice", b"127.0.0.1", b"curl/8", b"{}"))
put("record", "no-ua", record(b"BBBBBBBBBBBBBBBBBBBBBB", b"bob", b"::1", None, b'{"a":1}'))
put("record", "export-line", json.dumps({
    "id": "AAAAAAAAAAAAAAAAAAAAAA", "user_id": "alice", "created_at": 1700000000,
    "expires_at": 1700003600, "last_seen_at": 1700000000, "ip": "127.0.0.1",
    "user_agent": None, "data": {"n": 1}}).encode())
put("record", "redis-url", b":p%40ss@[::1]:6380/3")
