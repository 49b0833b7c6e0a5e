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
# signed with other keys: the refusal path (fuzz_token cannot forge HMAC)
put("token", "valid-wrong-key", tok(H, C, b"another-key-another-key-another-key"))
put("token", "alg-none", b64(b'{"alg":"none"}') + b"." + b64(C) + b".")
put("token", "dup-keys", tok(H, b'{"sub":"a","sub":"b","exp":1700003600}', b"x" * 32))
put("token", "crit", tok(b'{"alg":"HS256","crit":["x"]}', C, b"x" * 32))
put("token", "padded", tok(H, C, b"y" * 32) + b"=")
put("token", "issuer", b"I" + tok(H, b'{"sub":"a","exp":1700003600,"iss":"iss","aud":["aud"]}', b"z" * 32))
put("token", "four-segments", tok(H, C, b"q" * 32) + b".eA")

# signed with fuzz_token's own KEY: these pass the signature, so the claims
# checks behind it run (a leading "I" selects the iss/aud policy; see
# fuzz/fuzz_token.c). The fuzz target's clock is 1700000000, leeway 30.
OWN = [
    ("own-valid", H, C),
    ("own-no-sid", H, b'{"sub":"alice","exp":1700003600}'),
    ("own-admin", H, b'{"sub":"root","exp":1700003600,"scope":"read session:admin write"}'),
    ("own-admin-prefix", H, b'{"sub":"root","exp":1700003600,"scope":"session:administrator"}'),
    ("own-expired", H, b'{"sub":"alice","exp":1699999969}'),
    ("own-exp-leeway", H, b'{"sub":"alice","exp":1699999970.5}'),
    ("own-nbf-future", H, b'{"sub":"alice","exp":1700003600,"nbf":1700000031}'),
    ("own-iat-future", H, b'{"sub":"alice","exp":1700003600,"iat":1700000030}'),
    ("own-bad-sid", H, b'{"sub":"alice","exp":1700003600,"sid":"short"}'),
    ("own-sid-number", H, b'{"sub":"alice","exp":1700003600,"sid":12}'),
    ("own-sub-space", H, b'{"sub":" alice","exp":1700003600}'),
    ("own-sub-ctrl", H, b'{"sub":"al\\u0085ice","exp":1700003600}'),
    ("own-sub-256", H, b'{"sub":"' + b"u" * 256 + b'","exp":1700003600}'),
    ("own-sub-257", H, b'{"sub":"' + b"u" * 257 + b'","exp":1700003600}'),
    ("own-dup-keys", H, b'{"sub":"a","sub":"b","exp":1700003600}'),
    ("own-crit", b'{"alg":"HS256","crit":["exp"]}', C),
    ("own-alg-HS512", b'{"alg":"HS512"}', C),
    ("own-header-dup", b'{"alg":"HS256","alg":"HS256"}', C),
    ("own-deep", H, b'{"sub":"a","exp":1700003600,"x":' + b"[" * 8 + b"]" * 8 + b"}"),
    ("own-claims-array", H, b'["sub","alice"]'),
]
for name, h, c in OWN:
    put("token", name, tok(h, c))
put("token", "own-issuer", b"I" + tok(H, b'{"sub":"a","exp":1700003600,"iss":"iss","aud":["x","aud"]}'))
put("token", "own-issuer-wrong-aud", b"I" + tok(H, b'{"sub":"a","exp":1700003600,"iss":"iss","aud":"other"}'))
put("token", "own-non-canonical-sig", tok(H, C)[:-1] + b"B")

# plain JSON claims objects: token_claims_parse directly
CLAIMS = [
    ("json-valid", C),
    ("json-min", b'{"sub":"a","exp":1700000000}'),
    ("json-admin", b'{"sub":"ops","exp":1700003600,"scope":"session:admin"}'),
    ("json-scope-nonstring", b'{"sub":"ops","exp":1700003600,"scope":["session:admin"]}'),
    ("json-scope-tab", b'{"sub":"ops","exp":1700003600,"scope":"x\\tsession:admin"}'),
    ("json-sid-64", b'{"sub":"a","exp":1700003600,"sid":"' + b"A" * 64 + b'"}'),
    ("json-sid-65", b'{"sub":"a","exp":1700003600,"sid":"' + b"A" * 65 + b'"}'),
    ("json-sid-21", b'{"sub":"a","exp":1700003600,"sid":"' + b"A" * 21 + b'"}'),
    ("json-sid-null", b'{"sub":"a","exp":1700003600,"sid":null}'),
    ("json-sub-nul", b'{"sub":"a\\u0000b","exp":1700003600}'),
    ("json-sub-utf8", '{"sub":"\u00e9l\u00e8ve \U0001F600","exp":1700003600}'.encode()),
    ("json-sub-surrogate", b'{"sub":"\\ud800","exp":1700003600}'),
    ("json-sub-pair", b'{"sub":"\\ud83d\\ude00","exp":1700003600}'),
    ("json-sub-del", b'{"sub":"a\x7f","exp":1700003600}'),
    ("json-sub-tab-end", b'{"sub":"a\\t","exp":1700003600}'),
    ("json-sub-empty", b'{"sub":"","exp":1700003600}'),
    ("json-sub-256-multibyte", b'{"sub":"' + "\u00e9".encode() * 128 + b'","exp":1700003600}'),
    ("json-no-exp", b'{"sub":"a"}'),
    ("json-exp-string", b'{"sub":"a","exp":"1700003600"}'),
    ("json-exp-negative", b'{"sub":"a","exp":-1,"nbf":0}'),
    ("json-exp-max", b'{"sub":"a","exp":253402300799}'),
    ("json-exp-over-max", b'{"sub":"a","exp":253402300800}'),
    ("json-exp-huge", b'{"sub":"a","exp":1e308}'),
    ("json-exp-fraction", b'{"sub":"a","exp":1699999969.999}'),
    ("json-nbf-leeway", b'{"sub":"a","exp":1700003600,"nbf":1700000030}'),
    ("json-iat-float", b'{"sub":"a","exp":1700003600,"iat":1700000030.5}'),
    ("json-dup", b'{"sub":"a","exp":1700003600,"exp":1}'),
    ("json-deep-9", b'{"sub":"a","exp":1700003600,"x":' + b"[" * 8 + b"]" * 8 + b"}"),
    ("json-deep-string", b'{"sub":"[[[[[[[[[[","exp":1700003600}'),
    ("json-array", b'[{"sub":"a","exp":1700003600}]'),
    ("json-trailing", b'{"sub":"a","exp":1700003600} x'),
    ("json-ws", b' \n{ "sub" : "a" , "exp" : 1700003600 }\n'),
    ("json-escaped-key", b'{"s\\u0075b":"a","exp":1700003600}'),
]
for name, c in CLAIMS:
    put("token", name, c)
put("token", "json-issuer", b'I{"sub":"a","exp":1700003600,"iss":"iss","aud":"aud"}')
put("token", "json-issuer-aud-array", b'I{"sub":"a","exp":1700003600,"iss":"iss","aud":["x","aud"]}')
put("token", "json-issuer-aud-mixed", b'I{"sub":"a","exp":1700003600,"iss":"iss","aud":["aud",1]}')
put("token", "json-issuer-missing", b'I{"sub":"a","exp":1700003600,"aud":"aud"}')
put("token", "json-issuer-wrong", b'I{"sub":"a","exp":1700003600,"iss":"is","aud":"aud"}')
# the signer's own claims text (token.c reads it without jansson), plain
# and signed, without and with the issuer and audience
SIGNED = (b'{"exp":1700003600,"iat":1700000000,"jti":"3.x_-0","sid":"'
          + b"A" * 31 + b'bcd","sub":"alice"}')
SIGNED_I = (b'{"aud":"aud","exp":1700003600,"iat":1700000000,"iss":"iss","jti":"r","sid":"'
            + b"A" * 31 + b'bcd","sub":"bob"}')
put("token", "signer-claims", SIGNED)
put("token", "signer-claims-issuer", b"I" + SIGNED_I)
put("token", "signer-token", tok(H, SIGNED))
put("token", "signer-token-issuer", b"I" + tok(H, SIGNED_I))

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

put("env", "quotes", b"A='a\"b'\nB=\"it's\"\nC=\"\"\nD=''\nE=\n_F1 = \"  spaced  \"  \n")
put("env", "export", b"export   X=1\nexport=2\nexportY=3\n\t# indented comment\n   \n")
put("env", "crlf", b"PORT=8081\r\nHOST=\"::1\"\r\n")
put("env", "hash-tab", b"K=a # not a comment\nT=a\tb\nQ=\"x\"y\"\n")
put("env", "lone-quote", b"K=\"\n")
put("env", "del", b"K=a\x7fb\n")

put("path", "session", b"/session/AAAAAAAAAAAAAAAAAAAAAA")
put("path", "user", b"/users/a%2Fb/sessions")
put("path", "bad-escape", b"/users/%zz/sessions")
put("path", "trailing", b"/session/")

put("cookie", "cookies", b"a=b; session=\"tok.en.x\"; c=d")
put("cookie", "bearer", b"Bearer   abc.def.ghi  ")
put("cookie", "prefix", b"xsession=1;session=2")

put("path", "healthz", b"/healthz")
put("path", "user-escapes", b"/users/%41l%69ce%20%2F%25/sessions")
put("path", "nul", b"/session/%00AAAAAAAAAAAAAAAAAAAAA")
put("path", "short-escape", b"/session/abc%4")
put("path", "extra-segment", b"/users/x/sessions/")
put("path", "long", b"/users/" + b"%41" * 400 + b"/sessions")
put("path", "over-space", b"/session/" + b"a" * 1025)
put("cookie", "empty-quoted", b'session=""; session=x')


def record(id_, user, ip, ua, data, c=1700000000, ls=1700000000, e=1700003600, v2=None):
    """A record of version 1, or of version 2 when v2 = (idle, gen, rotated_at)."""
    ual = 0xFFFF if ua is None else len(ua)
    h = struct.pack("<BBHHHIqqq", 2 if v2 else 1, len(id_), len(user), len(ip), ual, len(data),
                    c, ls, e)
    if v2:
        h += struct.pack("<IIq", *v2)
    return h + id_ + user + ip + (ua or b"") + data


put("record", "session", record(b"AAAAAAAAAAAAAAAAAAAAAA", b"alice", b"127.0.0.1", b"curl/8", b"{}"))
put("record", "no-ua", record(b"BBBBBBBBBBBBBBBBBBBBBB", b"bob", b"::1", None, b'{"a":1}'))
put("record", "export-line", json.dumps({
    "id": "AAAAAAAAAAAAAAAAAAAAAA", "user_id": "alice", "created_at": 1700000000,
    "expires_at": 1700003600, "last_seen_at": 1700000000, "ip": "127.0.0.1",
    "user_agent": None, "data": {"n": 1}}).encode())
put("record", "redis-url", b":p%40ss@[::1]:6380/3")
put("record", "v2-idle", record(b"D" * 31, b"carol", b"10.0.0.1", b"ua", b"{}", v2=(900, 0, 0)))
put("record", "v2-rotated", record(b"E" * 31, b"dave", b"::1", None, b'{"r":[]}', ls=1700000100,
                                   v2=(0, 7, 1700000050)))
put("record", "export-line-v2", json.dumps({
    "id": "D" * 31, "user_id": "carol", "created_at": 1700000000, "expires_at": 1700003600,
    "last_seen_at": 1700000000, "idle_timeout": 900, "idle_expires_at": 1700000900,
    "ip": "10.0.0.1", "user_agent": "ua", "data": {}, "token_generation": 3,
    "rotated_at": 1700000040}).encode())
put("record", "empty-ua", record(b"C" * 64, b"u" * 256, b"", b"", b"{}"))
put("record", "export-escapes", json.dumps({
    "user_agent": "", "ip": "\u0000\"\\", "data": {"k": [1, {"x": "\u00e9\n"}], "e": {}},
    "id": "B" * 22, "user_id": "\u00e9 x", "created_at": 0, "expires_at": 0,
    "last_seen_at": 99999999999}, indent=1).encode())

# fuzz_redis: every input goes to the slot function, the MOVED/ASK parser,
# the CLUSTER SLOTS map (as RESP) and the URL parser of each redis form.
# Redirections as Redis 7.0.15 sends them, with every endpoint type:
put("redis", "moved-ip", b"MOVED 12182 127.0.0.1:47003")
put("redis", "moved-hostname", b"MOVED 12182 node-47003.example:47003")
put("redis", "moved-same-host", b"MOVED 12182 :47003")
put("redis", "moved-unknown", b"MOVED 12182 ?:47003")
put("redis", "ask", b"ASK 100 127.0.0.1:47002")
put("redis", "moved-ipv6", b"MOVED 3999 2001:db8::7:1:6381")
put("redis", "moved-leading-zero", b"MOVED 012 h:6379")
put("redis", "tryagain", b"TRYAGAIN Multiple keys request during rehashing of slot")
# keys and hash tags
put("redis", "key-tag", b"{user1000}.following")
put("redis", "key-empty-tag", b"a{}b{c}")
put("redis", "key-nested", b"{{a}}")
put("redis", "key-two-tags", b"foo{bar}{zap}")
put("redis", "key-binary", bytes(range(256)))
# URLs: each form is tried as redis://, redis-sentinel:// and redis-cluster://
put("redis", "url-plain", b":p%40ss@[::1]:6380/3")
put("redis", "url-sentinel", b"alice:s%3Acret@s1:26379,[::1]:26380,10.0.0.3:26381/mymaster/2")
put("redis", "url-cluster", b":pw@n1:7000,n2:7001,[2001:db8::5]:7002")
put("redis", "url-16-hosts", b",".join(b"h:%d" % p for p in range(1, 17)) + b"/m")
put("redis", "url-17-hosts", b",".join(b"h:%d" % p for p in range(1, 18)))
put("redis", "url-trailing-comma", b"n1:7000,")
put("redis", "url-master-128", b"s:1/" + b"m" * 128)
put("redis", "url-duplicate", b"n:1,n:1")


def resp(x):
    """RESP2 text of x: int, bytes (bulk), None (nil) or a list (array)."""
    if x is None:
        return b"$-1\r\n"
    if isinstance(x, int):
        return b":%d\r\n" % x
    if isinstance(x, bytes):
        return b"$%d\r\n%s\r\n" % (len(x), x)
    return b"*%d\r\n" % len(x) + b"".join(resp(e) for e in x)


IDS = [b"84fe6f4f9d8b854f08875563bb4dd1bc57a8f846", b"be59e57b56a2bbb548ebbfc89471542bc794eec7",
       b"241e0f5b40295746b963640cfd3dbb69175368a6", b"d7eeca1515dbee334d00c5c9f3767c289f2392b8"]
# CLUSTER SLOTS of Redis 7.0.15 with cluster-preferred-endpoint-type ip,
# hostname (one node without: "?") and unknown-endpoint (a NULL host)
put("redis", "slots-ip", resp([
    [0, 9, [b"127.0.0.1", 47003, IDS[2], []], [b"127.0.0.1", 47006, IDS[3], []]],
    [10, 5460, [b"127.0.0.1", 47001, IDS[0], [b"hostname", b"node-47001.example"]]],
    [5461, 10922, [b"127.0.0.1", 47002, IDS[1], [b"hostname", b"node-47002.example"]]],
    [10923, 16383, [b"127.0.0.1", 47003, IDS[2], []], [b"127.0.0.1", 47006, IDS[3], []]]]))
put("redis", "slots-hostname", resp([
    [0, 5460, [b"node-47001.example", 47001, IDS[0], [b"ip", b"127.0.0.1"]]],
    [5461, 10922, [b"node-47002.example", 47002, IDS[1], [b"ip", b"127.0.0.1"]]],
    [10923, 16383, [b"?", 47003, IDS[2], [b"ip", b"127.0.0.1"]]]]))
put("redis", "slots-unknown-endpoint", resp([
    [0, 5460, [None, 47001, IDS[0], [b"ip", b"127.0.0.1", b"hostname", b"node-47001.example"]]],
    [5461, 16383, [None, 47002, IDS[1], [b"ip", b"::1"]]]]))
put("redis", "slots-redis3", resp([[0, 8191, [b"10.0.0.1", 7000]], [8192, 16383, [b"::1", 7001]]]))
put("redis", "slots-overlap", resp([[0, 10, [b"h", 7000]], [10, 20, [b"i", 7000]]]))
put("redis", "slots-two-ids", resp([[0, 1, [b"h", 7000, IDS[0]]], [2, 3, [b"h", 7000, IDS[1]]]]))
put("redis", "slots-64-primaries", resp([[i, i, [b"h", 7000 + i]] for i in range(64)]))
put("redis", "slots-65-primaries", resp([[i, i, [b"h", 7000 + i]] for i in range(65)]))
put("redis", "slots-replica-empty-ip", resp([
    [0, 16383, [b"", 7000, IDS[0], [b"ip", b"", b"hostname", b""]], [None, 7001, IDS[1], []]]]))
put("redis", "slots-empty", b"*0\r\n")
put("redis", "slots-error", b"-ERR This instance has cluster support disabled\r\n")
# Sentinel: SENTINEL get-master-addr-by-name and ROLE as Redis 7.0.15 answers
put("redis", "sentinel-master", resp([b"127.0.0.1", b"40123"]))
put("redis", "sentinel-master-name", resp([b"redis-0.redis.svc.local", b"6379"]))
put("redis", "sentinel-master-ipv6", resp([b"::1", 6380]))
put("redis", "sentinel-master-nil", b"$-1\r\n")
put("redis", "sentinel-noauth", b"-NOAUTH Authentication required.\r\n")
put("redis", "role-master", resp([b"master", 5432, [[b"127.0.0.1", b"40125", b"5432"]]]))
put("redis", "role-replica", resp([b"slave", b"127.0.0.1", 40123, b"connected", 5432]))
put("redis", "role-sentinel", resp([b"sentinel", [b"mymaster"]]))

# JWKS files (fuzz_jwks): real public keys of every supported kind, and
# the entries a set may hold that are skipped.
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519


def b64s(n_or_bytes, width=None):
    if isinstance(n_or_bytes, int):
        n = n_or_bytes
        n_or_bytes = n.to_bytes(width or (n.bit_length() + 7) // 8, "big")
    return b64(n_or_bytes).decode()


def rsa_jwk(bits, kid, **extra):
    pub = rsa.generate_private_key(65537, bits).public_key().public_numbers()
    return dict(kty="RSA", kid=kid, n=b64s(pub.n), e=b64s(pub.e), **extra)


def ec_jwk(curve, crv, width, kid, **extra):
    pub = ec.generate_private_key(curve).public_key().public_numbers()
    return dict(kty="EC", crv=crv, kid=kid, x=b64s(pub.x, width), y=b64s(pub.y, width), **extra)


def raw_jwk(key, crv, kid):
    from cryptography.hazmat.primitives import serialization
    x = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return dict(kty="OKP", crv=crv, kid=kid, x=b64s(x))


RSA_K = rsa_jwk(2048, "r1", use="sig", alg="RS256")
EC_K = ec_jwk(ec.SECP256R1(), "P-256", 32, "e1", use="sig")
ED_K = raw_jwk(ed25519.Ed25519PrivateKey.generate(), "Ed25519", "o1")


def jwks(*keys, compact=True):
    return json.dumps({"keys": list(keys)}, separators=(",", ":") if compact else None).encode()


put("jwks", "every-kind", jwks(RSA_K, EC_K, ED_K, compact=False))
put("jwks", "rsa-ps256", jwks(rsa_jwk(3072, "r3", alg="PS256", key_ops=["verify"])))
put("jwks", "ec-only", jwks(EC_K))
put("jwks", "ed-only", jwks(ED_K))
put("jwks", "skipped-and-kept", jwks(
    {"kty": "oct", "kid": "s", "k": "c2VjcmV0"}, rsa_jwk(1024, "small"),
    ec_jwk(ec.SECP384R1(), "P-384", 48, "p384"), raw_jwk(x25519.X25519PrivateKey.generate(), "X25519", "x"),
    dict(RSA_K, use="enc", kid="enc"), dict(EC_K, alg="RS256", kid="mismatch"),
    dict(ED_K, kid=""), {"kty": "RSA", "kid": "no-n", "e": "AQAB"}, ED_K))
put("jwks", "no-usable", jwks({"kty": "oct", "kid": "s", "k": "c2VjcmV0"}))
put("jwks", "empty", b'{"keys":[]}')
put("jwks", "not-object", b'[{"keys":[]}]')
put("jwks", "dup-kid", jwks(EC_K, dict(EC_K, y=EC_K["x"])))
