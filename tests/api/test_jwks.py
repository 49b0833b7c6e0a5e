"""Caller tokens from an identity provider's keys, and SIGHUP reloads
(contract v2, "Keys" and "Tightened rules"; "Authentication" for the claims).

JWT_JWKS_FILE names a JWKS (RFC 7517). Caller tokens signed RS256 or PS256
(RSA, 2048 bits or more), ES256 (EC P-256) or EdDSA (OKP Ed25519) verify
with the key their header's "kid" names, when the key's type fits the alg,
its "alg" (if any) is the token's alg and its "use" (if any) is "sig".
HS256 stays the business of JWT_SECRET / JWT_SECRET_PREVIOUS: no JWKS key
ever verifies it. A token verified with a JWKS key is always a caller token,
never a session token. Unusable keys are skipped with a warning; a file
that is missing, malformed or without a usable key stops the start (2, one
line naming JWT_JWKS_FILE). SIGHUP reloads the file and the two secrets
from the .env file (the real environment still wins): a good reload is in
force within 1 s, a bad one keeps everything as it was and logs one error
line.

None of this touches the store, so every test but two smoke tests runs on
LMDB only. No log line may hold a token (or a fragment of one) or a key
secret: an autouse fixture below reads every log this module made.
"""

import hashlib
import json
import os
import re
import secrets
import signal
import threading
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (ec, ed448, ed25519, padding, rsa,
                                                       x25519)
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from apitools import (BINARIES, OMIT, SECRET, RawConn, assert_problem, assert_unauthorized,
                      _json_bytes, b64u, hand_token, http_request_bytes, make_token, q, run_until_exit,
                      std_claims, uid, wait_until)

LMDB = pytest.mark.lmdb_only(reason="JWKS verification and key reloads do not touch the store")

ISS = "https://idp.example.test/"
AUD = "session-service"

# HS256 secrets of the reload tests (never the suite's SECRET, never logged)
S0, S1, S2, S3 = (secrets.token_urlsafe(36) for _ in range(4))
SHORT = secrets.token_hex(16)[:31]  # 31 bytes: refused as a secret
# the "k" of the JWKS's symmetric key: ASCII, so hand_token can HMAC with it
OCT_SECRET = secrets.token_urlsafe(36)
NEVER_LOGGED = (S0, S1, S2, S3, SHORT, OCT_SECRET, b64u(OCT_SECRET))


# --------------------------------------------------------------------------
# log checks: no token, no token fragment, no key secret, in any log line
# --------------------------------------------------------------------------

_MINTED = []    # tokens made by the running test
_SERVERS = []   # every process this module started


def _track(tok):
    _MINTED.append(tok)
    return tok


def _started(srv):
    _SERVERS.append(srv)
    return srv


@pytest.fixture(autouse=True)
def _no_token_in_logs():
    _MINTED.clear()
    offsets = {id(s): len(s.stderr_text()) for s in _SERVERS}
    yield
    problems = []
    for srv in _SERVERS:
        whole = srv.stderr_text()
        text = whole[offsets.get(id(srv), 0):]
        for value in NEVER_LOGGED:
            if value in whole:
                problems.append("%s logged a secret or key value" % srv.binary)
        for tok in _MINTED:
            segs = tok.split(".")
            frags = [segs[1][:40]] if len(segs) > 1 and len(segs[1]) >= 40 else []
            if len(segs) > 2 and len(segs[2]) >= 16:
                frags.append(segs[2][:24])
            if any(f in text for f in frags):
                problems.append("%s logged a token (or a fragment of one): %s..."
                                % (srv.binary, tok[:40]))
                break
    _MINTED.clear()
    assert not problems, "\n".join(sorted(set(problems)))


# --------------------------------------------------------------------------
# keys, JWKs and tokens
# --------------------------------------------------------------------------

class Keys:
    """The private keys of the module (RSA ones are slow to make: once)."""

    def __init__(self):
        self.rs = rsa.generate_private_key(65537, 2048)
        self.rs2 = rsa.generate_private_key(65537, 2048)
        self.rs_nokid = rsa.generate_private_key(65537, 2048)
        self.rs2047 = rsa.generate_private_key(65537, 2047)
        self.rs1024 = rsa.generate_private_key(65537, 1024)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ec2 = ec.generate_private_key(ec.SECP256R1())
        self.ec384 = ec.generate_private_key(ec.SECP384R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.ed2 = ed25519.Ed25519PrivateKey.generate()
        self.ed448 = ed448.Ed448PrivateKey.generate()
        self.x25519 = x25519.X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def keys():
    return Keys()


def _ub(i, length=None):
    length = length or max(1, (i.bit_length() + 7) // 8)
    return b64u(i.to_bytes(length, "big"))


def rsa_jwk(key, kid, **extra):
    nums = key.public_key().public_numbers()
    d = {"kty": "RSA", "kid": kid, "n": _ub(nums.n), "e": _ub(nums.e)}
    d.update(extra)
    return {k: v for k, v in d.items() if v is not OMIT}


def ec_jwk(key, kid, **extra):
    nums = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8
    crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
    d = {"kty": "EC", "kid": kid, "crv": crv, "x": _ub(nums.x, size), "y": _ub(nums.y, size)}
    d.update(extra)
    return d


def okp_jwk(key, kid, crv, **extra):
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    d = {"kty": "OKP", "kid": kid, "crv": crv, "x": b64u(raw)}
    d.update(extra)
    return d


def good_jwks(k):
    """kid -> JWK of every usable key of the module's main file."""
    return {
        # no "alg": verifies RS256 and PS256; members the service does not
        # know (x5t) are ignored (RFC 7517 section 4)
        "rsa": rsa_jwk(k.rs, "rsa", use="sig", x5t=b64u(hashlib.sha1(b"rsa").digest())),
        "rs2-rs256": rsa_jwk(k.rs2, "rs2-rs256", alg="RS256"),
        "rs2-ps256": rsa_jwk(k.rs2, "rs2-ps256", alg="PS256", use="sig"),
        "ec": ec_jwk(k.ec, "ec", alg="ES256", use="sig"),
        "ed": okp_jwk(k.ed, "ed", "Ed25519", alg="EdDSA"),
    }


def skipped_jwks(k):
    """Entries the service must skip (a warning each), in no useful order."""
    nums = k.ec.public_key().public_numbers()
    off_curve = ec_jwk(k.ec, "ec-offcurve")
    off_curve["y"] = _ub(nums.y ^ 1, 32)
    return [
        {"kty": "oct", "kid": "oct", "k": b64u(OCT_SECRET)},
        {"kty": "oct", "kid": "oct-hs256", "k": b64u(OCT_SECRET), "alg": "HS256"},
        rsa_jwk(k.rs1024, "rsa1024"),
        rsa_jwk(k.rs2047, "rsa2047"),
        ec_jwk(k.ec384, "p384"),
        okp_jwk(k.x25519, "x25519", "X25519"),
        okp_jwk(k.ed448, "ed448", "Ed448"),
        rsa_jwk(k.rs_nokid, OMIT),
        rsa_jwk(k.rs, "enc", use="enc"),
        rsa_jwk(k.rs, "rs512", alg="RS512"),
        rsa_jwk(k.rs, "oaep", alg="RSA-OAEP"),
        {"kty": "RSA", "kid": "rsa-malformed", "e": "AQAB"},
        off_curve,
    ]


def shared_kid_jwks(k):
    """Entries sharing one kid (CONTRACT-NOTES: providers do during their own
    rotations; a token passes when one of them that fits its alg verifies it)."""
    return [rsa_jwk(k.rs2, "shared", alg="RS256"), ec_jwk(k.ec2, "shared", alg="ES256")]


def main_jwks(k):
    good = list(good_jwks(k).values())
    bad = skipped_jwks(k)
    mixed = []
    for i in range(max(len(good), len(bad))):  # good and bad keys interleaved
        mixed.extend(bad[i:i + 1] + good[i:i + 1])
    return {"keys": mixed + shared_kid_jwks(k)}


def jwks_of(k, *kids, extra=()):
    """A JWKS of the named usable keys (kids of good_jwks), plus extra entries."""
    good = good_jwks(k)
    return {"keys": [good[kid] for kid in kids] + list(extra)}


def write_file(path, content, atomic=True):
    """Write text (or JSON for a dict) to path; atomic: a rename over it."""
    if not isinstance(content, str):
        content = json.dumps(content)
    if atomic:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(content)
        os.replace(tmp, path)
    else:
        path.write_text(content)
    return path


PRIVATE = {"rsa": "rs", "rs2-rs256": "rs2", "rs2-ps256": "rs2", "ec": "ec", "ed": "ed",
           "ec-new": "ec2", "ed-new": "ed2", "rsa-new": "rs2"}
ALG_OF = {"rsa": "RS256", "rs2-rs256": "RS256", "rs2-ps256": "PS256", "ec": "ES256",
          "ed": "EdDSA", "ec-new": "ES256", "ed-new": "EdDSA", "rsa-new": "RS256"}


def mint(k, kid, claims, alg=None, key=None, **headers):
    """A token made by PyJWT with the private key behind kid (or key)."""
    alg = alg or ALG_OF[kid]
    key = key if key is not None else getattr(k, PRIVATE[kid])
    if kid is not None:
        headers["kid"] = kid
    return _track(jwt.encode(claims, key, algorithm=alg, headers=headers))


def raw_sign(alg, key, msg, der=False):
    if alg in ("RS256", "RS384", "RS512"):
        h = {"RS256": hashes.SHA256(), "RS384": hashes.SHA384(), "RS512": hashes.SHA512()}[alg]
        return key.sign(msg, padding.PKCS1v15(), h)
    if alg == "PS256":
        return key.sign(msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                        hashes.SHA256())
    if alg == "ES256":
        sig = key.sign(msg, ec.ECDSA(hashes.SHA256()))
        if der:
            return sig
        r, s = decode_dss_signature(sig)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "EdDSA":
        return key.sign(msg)
    raise ValueError(alg)


def signed(alg, key, header, claims, der=False):
    """A token signed by hand: header and claims are dicts (compact JSON) or
    raw text, so that odd headers (a kid that is no string, duplicate
    members) can be made; alg says how to sign, whatever the header says."""
    h = b64u(_json_bytes(header))
    c = b64u(_json_bytes(claims))
    sig = raw_sign(alg, key, ("%s.%s" % (h, c)).encode("ascii"), der=der)
    return _track("%s.%s.%s" % (h, c, b64u(sig)))


def hs256(claims, secret, header=None):
    return _track(hand_token(header or {"alg": "HS256", "typ": "JWT"}, claims, secret=secret))


def hs_caller(user, secret=SECRET, **claims):
    return _track(make_token(user, secret=secret, **claims))


def signed_with(token, key):
    try:
        jwt.decode(token, key, algorithms=["HS256"],
                   options={"verify_aud": False, "verify_iss": False})
        return True
    except jwt.InvalidSignatureError:
        return False


def header_of(token):
    return jwt.get_unverified_header(token)


# --------------------------------------------------------------------------
# processes and logs
# --------------------------------------------------------------------------

def log_entries(srv):
    out = []
    for line in srv.stderr_text().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def error_lines(srv):
    return [e for e in log_entries(srv) if e.get("level") == "error"]


def warn_lines(srv):
    """Warnings: JSON lines at level warn, or plain lines that say warn(ing)."""
    out = []
    for line in srv.stderr_text().splitlines():
        if line.startswith("{"):
            try:
                if json.loads(line).get("level") == "warn":
                    out.append(line)
            except ValueError:
                pass
        elif re.search(r"(?i)\bwarn", line):
            out.append(line)
    return out


def hup(srv):
    srv.proc.send_signal(signal.SIGHUP)
    return time.monotonic()


def after(t0, seconds=1.0):
    """Sleep until `seconds` after t0 (when a reload must be in force)."""
    rest = t0 + seconds - time.monotonic()
    if rest > 0:
        time.sleep(rest)


def status(srv, token, user=None, session=None):
    """The status of one read made with token as Bearer."""
    if session is not None:
        return srv.get("/session/%s" % session, token=token).status_code
    return srv.get("/users/%s/sessions" % q(user), token=token).status_code


def works(srv, token, user):
    return status(srv, token, user) == 200


def statuses(srv, token, user, n=10, keep_alive=None):
    """Statuses of n reads on fresh connections, and n more on keep_alive
    (a requests.Session) when given: with several event threads, each
    thread's cache of verified tokens sees the token."""
    out = [status(srv, token, user) for _ in range(n)]
    if keep_alive is not None:
        for _ in range(n):
            r = keep_alive.get(srv.base + "/users/%s/sessions" % q(user),
                               headers={"Authorization": "Bearer " + token}, timeout=10)
            out.append(r.status_code)
    return out


@pytest.fixture(scope="module")
def jwks_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("jwks")


@pytest.fixture(scope="module")
def main_file(jwks_dir, keys):
    return write_file(jwks_dir / "main.json", main_jwks(keys))


@pytest.fixture(scope="module")
def idp(mspawn, main_file):
    """sessiond with the main JWKS (usable and skipped keys interleaved),
    JWT_ISSUER and JWT_AUDIENCE set, logging at debug."""
    return _started(mspawn("sessiond", env={"JWT_JWKS_FILE": str(main_file),
                                            "JWT_ISSUER": ISS, "JWT_AUDIENCE": AUD,
                                            "LOG_LEVEL": "debug"}))


def c(user, exp_in=3600, **extra):
    """Claims for the idp server (which checks iss and aud); claim=OMIT
    drops one (sub included)."""
    t = int(time.time())
    d = {"sub": user, "iat": t, "exp": t + exp_in, "iss": ISS, "aud": AUD}
    d.update(extra)
    return {k_: v for k_, v in d.items() if v is not OMIT}


# --------------------------------------------------------------------------
# what works: each algorithm, end to end (both stores)
# --------------------------------------------------------------------------

ROUND_TRIP = [("RS256", "rsa"), ("PS256", "rsa"), ("RS256", "rs2-rs256"),
              ("PS256", "rs2-ps256"), ("ES256", "ec"), ("EdDSA", "ed"), ("HS256", None)]


@pytest.mark.parametrize("alg,kid", ROUND_TRIP, ids=["%s-%s" % c_ for c_ in ROUND_TRIP])
def test_caller_token_of_each_algorithm_opens_reads_lists_and_closes(idp, keys, alg, kid):
    user = uid("idp")
    if alg == "HS256":
        tok = hs_caller(user, iss=ISS, aud=AUD)
    else:
        tok = mint(keys, kid, c(user, jti=uid("j")), alg=alg)
    s = idp.create(tok)
    assert s["user_id"] == user
    # the session token the service issues stays HS256, with its own secret
    assert header_of(s["token"])["alg"] == "HS256"
    claims = jwt.decode(s["token"], SECRET, algorithms=["HS256"], audience=AUD, issuer=ISS)
    assert claims["sub"] == user and claims["sid"] == s["id"], claims
    r = idp.get("/session/%s" % s["id"], token=tok)
    assert r.status_code == 200 and r.json()["id"] == s["id"], r.text
    r = idp.get("/users/%s/sessions" % q(user), token=tok)
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["sessions"]] == [s["id"]]
    r = idp.get("/validate", token=s["token"])
    assert r.status_code == 200 and r.headers.get("X-User-Id") == user, r.text
    assert idp.delete("/session/%s" % s["id"], token=tok).status_code == 204
    assert_problem(idp.get("/session/%s" % s["id"], token=tok), 404)
    assert_unauthorized(idp.get("/validate", token=s["token"]))


def test_jwks_token_with_a_sid_is_a_caller_token_never_a_session_token(idp, keys):
    """(v2) Tightened rules: identity providers put their own sid in their
    tokens; one naming a live session of the same user is still a caller
    token: /validate refuses it, it may open a session (a session token
    may not: 403), and it may not refresh (a plain caller token: 403)."""
    user = uid("sid")
    s = idp.create(hs_caller(user, iss=ISS, aud=AUD))
    for kid in ("rsa", "rs2-ps256", "ec", "ed"):
        tok = mint(keys, kid, c(user, sid=s["id"], jti=uid("j")))
        assert_unauthorized(idp.get("/validate", token=tok))
        assert_problem(idp.get("/validate", headers={"Cookie": "session=%s" % tok}), 401)
        assert_problem(idp.post("/session/%s/refresh" % s["id"], token=tok), 403)
        other = idp.create(tok)
        assert other["id"] != s["id"] and other["user_id"] == user
        r = idp.get("/session/%s" % s["id"], token=tok)
        assert r.status_code == 200 and r.json()["id"] == s["id"], r.text
    # the session itself was neither closed nor rotated by any of that
    r = idp.get("/validate", token=s["token"])
    assert r.status_code == 200 and r.headers.get("X-Session-Id") == s["id"], r.text
    r = idp.post("/session/%s/refresh" % s["id"], token=s["token"])
    assert r.status_code == 200, r.text
    # and a real session token may not open a session (what told them apart)
    assert_problem(idp.post("/session", token=r.json()["token"]), 403)


# --------------------------------------------------------------------------
# what is refused: the kid and the key's fit
# --------------------------------------------------------------------------

def _hdr(alg, **kw):
    h = {"alg": alg, "typ": "JWT"}
    h.update(kw)
    return h


def _tamper_claims(k, user):
    good = mint(k, "rsa", c(user))
    other = mint(k, "rsa", c(uid("victim")))
    h, _, s = good.split(".")
    return _track("%s.%s.%s" % (h, other.split(".")[1], s))


def _tamper_sig(k, user):
    tok = mint(k, "ec", c(user))
    h, cl, s = tok.split(".")
    raw = bytearray(jwt.utils.base64url_decode(s))
    raw[10] ^= 0x01
    return _track("%s.%s.%s" % (h, cl, b64u(bytes(raw))))


KEY_CASES = {
    # the kid
    "no-kid": lambda k, u: mint(k, None, c(u), alg="RS256", key=k.rs),
    "kid-null": lambda k, u: signed("RS256", k.rs, _hdr("RS256", kid=None), c(u)),
    "kid-number": lambda k, u: signed("RS256", k.rs, _hdr("RS256", kid=1), c(u)),
    "kid-array": lambda k, u: signed("RS256", k.rs, _hdr("RS256", kid=["rsa"]), c(u)),
    "kid-object": lambda k, u: signed("RS256", k.rs, _hdr("RS256", kid={"kid": "rsa"}), c(u)),
    "kid-empty": lambda k, u: mint(k, "", c(u), alg="RS256", key=k.rs),
    "kid-unknown": lambda k, u: mint(k, "nope", c(u), alg="RS256", key=k.rs),
    "kid-other-case": lambda k, u: mint(k, "RSA", c(u), alg="RS256", key=k.rs),
    "kid-prefix": lambda k, u: mint(k, "rs", c(u), alg="RS256", key=k.rs),
    "kid-longer": lambda k, u: mint(k, "rsa ", c(u), alg="RS256", key=k.rs),
    "kid-nul-inside": lambda k, u: mint(k, "rsa\u0000x", c(u), alg="RS256", key=k.rs),
    "kid-duplicate-member": lambda k, u: signed(
        "RS256", k.rs, '{"alg":"RS256","kid":"nope","kid":"rsa"}', c(u)),
    # a key of the set, the wrong signer
    "other-rsa-key-same-kid": lambda k, u: mint(k, "rsa", c(u), key=k.rs2),
    "other-ec-key-same-kid": lambda k, u: mint(k, "ec", c(u), key=k.ec2),
    "other-ed-key-same-kid": lambda k, u: mint(k, "ed", c(u), key=k.ed2),
    "tampered-claims": _tamper_claims,
    "tampered-signature": _tamper_sig,
    "es256-der-signature": lambda k, u: signed("ES256", k.ec, _hdr("ES256", kid="ec"), c(u),
                                               der=True),
    "es256-empty-signature": lambda k, u: _track(
        mint(k, "ec", c(u)).rsplit(".", 1)[0] + "."),
    # type, curve, alg and use of the key must fit the token's alg
    "rs256-kid-of-ec-key": lambda k, u: mint(k, "ec", c(u), alg="RS256", key=k.rs),
    "es256-kid-of-rsa-key": lambda k, u: mint(k, "rsa", c(u), alg="ES256", key=k.ec),
    "es256-kid-of-okp-key": lambda k, u: mint(k, "ed", c(u), alg="ES256", key=k.ec),
    "eddsa-kid-of-ec-key": lambda k, u: mint(k, "ec", c(u), alg="EdDSA", key=k.ed),
    "eddsa-kid-of-rsa-key": lambda k, u: mint(k, "rsa", c(u), alg="EdDSA", key=k.ed),
    "ps256-key-pinned-rs256": lambda k, u: mint(k, "rs2-rs256", c(u), alg="PS256"),
    "rs256-key-pinned-ps256": lambda k, u: mint(k, "rs2-ps256", c(u), alg="RS256"),
    # skipped entries: the signatures below are right for their keys
    "use-enc": lambda k, u: mint(k, "enc", c(u), alg="RS256", key=k.rs),
    "key-alg-rs512": lambda k, u: mint(k, "rs512", c(u), alg="RS256", key=k.rs),
    "key-alg-rs512-token-rs512": lambda k, u: mint(k, "rs512", c(u), alg="RS512", key=k.rs),
    "key-alg-rsa-oaep": lambda k, u: mint(k, "oaep", c(u), alg="RS256", key=k.rs),
    "rsa-1024-bit": lambda k, u: mint(k, "rsa1024", c(u), alg="RS256", key=k.rs1024),
    "rsa-2047-bit": lambda k, u: mint(k, "rsa2047", c(u), alg="RS256", key=k.rs2047),
    "ec-p384-as-es256": lambda k, u: mint(k, "p384", c(u), alg="ES256", key=k.ec384),
    "ec-p384-as-es384": lambda k, u: mint(k, "p384", c(u), alg="ES384", key=k.ec384),
    "okp-ed448": lambda k, u: mint(k, "ed448", c(u), alg="EdDSA", key=k.ed448),
    "okp-x25519": lambda k, u: mint(k, "x25519", c(u), alg="EdDSA", key=k.ed),
    "rsa-malformed-entry": lambda k, u: mint(k, "rsa-malformed", c(u), alg="RS256", key=k.rs),
    "ec-point-off-curve": lambda k, u: mint(k, "ec-offcurve", c(u), alg="ES256", key=k.ec),
    "entry-without-kid-no-kid": lambda k, u: mint(k, None, c(u), alg="RS256", key=k.rs_nokid),
    "entry-without-kid-empty-kid": lambda k, u: mint(k, "", c(u), alg="RS256",
                                                     key=k.rs_nokid),
    # keys offered by the token itself are never used
    "embedded-jwk": lambda k, u: signed(
        "ES256", k.ec2, _hdr("ES256", kid="ec", jwk=ec_jwk(k.ec2, "ec")), c(u)),
    "embedded-jwk-new-kid": lambda k, u: signed(
        "ES256", k.ec2, _hdr("ES256", kid="attacker", jwk=ec_jwk(k.ec2, "attacker")), c(u)),
    "jku-header": lambda k, u: signed(
        "ES256", k.ec2, _hdr("ES256", kid="attacker", jku="http://127.0.0.1:9/jwks.json"),
        c(u)),
    # malformed as for HS256
    "crit-header": lambda k, u: mint(k, "rsa", c(u), crit=["exp"]),
    "duplicate-claim": lambda k, u: signed(
        "EdDSA", k.ed, _hdr("EdDSA", kid="ed"),
        ('{"sub":"%s","sub":"%s","iss":"%s","aud":"%s","exp":%d}'
         % (u, uid("x"), ISS, AUD, int(time.time()) + 600))),
    "claims-not-an-object": lambda k, u: signed("EdDSA", k.ed, _hdr("EdDSA", kid="ed"),
                                                '["%s"]' % u),
}


@LMDB
@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_refused_kid_or_key(idp, keys, case):
    user = uid("k")
    tok = KEY_CASES[case](keys, user)
    assert_unauthorized(idp.get("/users/%s/sessions" % q(user), token=tok))
    assert_unauthorized(idp.post("/session", token=tok))


ALG_CASES = {
    "none": lambda k, u: _track(hand_token(_hdr("none", kid="rsa"), c(u), sig="")),
    "None": lambda k, u: _track(hand_token(_hdr("None", kid="rsa"), c(u), sig="")),
    "NONE-with-signature": lambda k, u: _track(
        "%s.%s" % (hand_token(_hdr("NONE", kid="rsa"), c(u), sig="").rstrip("."),
                   mint(k, "rsa", c(u)).split(".")[2])),
    "RS384": lambda k, u: mint(k, "rsa", c(u), alg="RS384"),
    "RS512": lambda k, u: mint(k, "rsa", c(u), alg="RS512"),
    "PS384": lambda k, u: mint(k, "rsa", c(u), alg="PS384"),
    "PS512": lambda k, u: mint(k, "rsa", c(u), alg="PS512"),
    "ES384-p384": lambda k, u: mint(k, "p384", c(u), alg="ES384", key=k.ec384),
    "HS384-secret": lambda k, u: _track(jwt.encode(c(u), SECRET, algorithm="HS384")),
    "HS512-secret": lambda k, u: _track(jwt.encode(c(u), SECRET, algorithm="HS512")),
    "rs256-lowercase": lambda k, u: signed("RS256", k.rs, _hdr("rs256", kid="rsa"), c(u)),
    "eddsa-lowercase": lambda k, u: signed("EdDSA", k.ed, _hdr("eddsa", kid="ed"), c(u)),
    "alg-missing": lambda k, u: signed("RS256", k.rs, {"typ": "JWT", "kid": "rsa"}, c(u)),
    "alg-not-a-string": lambda k, u: signed("RS256", k.rs, {"alg": ["RS256"], "kid": "rsa"},
                                            c(u)),
}


@LMDB
@pytest.mark.parametrize("case", sorted(ALG_CASES))
def test_refused_algorithm(idp, keys, case):
    user = uid("a")
    assert_unauthorized(idp.get("/users/%s/sessions" % q(user),
                                token=ALG_CASES[case](keys, user)))


def _pem(key, fmt=serialization.PublicFormat.SubjectPublicKeyInfo):
    return key.public_key().public_bytes(serialization.Encoding.PEM, fmt).decode("ascii")


CONFUSION_CASES = {
    # the classic attack: HS256 keyed with the public key's PEM text
    "rsa-spki-pem-kid": lambda k, u: hs256(c(u), _pem(k.rs), _hdr("HS256", kid="rsa")),
    "rsa-spki-pem-no-kid": lambda k, u: hs256(c(u), _pem(k.rs)),
    "rsa-pkcs1-pem-kid": lambda k, u: hs256(
        c(u), _pem(k.rs, serialization.PublicFormat.PKCS1), _hdr("HS256", kid="rsa")),
    "rsa-spki-pem-no-newline": lambda k, u: hs256(c(u), _pem(k.rs).rstrip("\n"),
                                                  _hdr("HS256", kid="rsa")),
    "ec-spki-pem-kid": lambda k, u: hs256(c(u), _pem(k.ec), _hdr("HS256", kid="ec")),
    "ed-spki-pem-kid": lambda k, u: hs256(c(u), _pem(k.ed), _hdr("HS256", kid="ed")),
    "rsa-jwk-text-kid": lambda k, u: hs256(c(u), json.dumps(good_jwks(k)["rsa"]),
                                           _hdr("HS256", kid="rsa")),
    "rsa-n-member-kid": lambda k, u: hs256(c(u), good_jwks(k)["rsa"]["n"],
                                           _hdr("HS256", kid="rsa")),
    # the JWKS's oct key never verifies anything
    "oct-key-kid": lambda k, u: hs256(c(u), OCT_SECRET, _hdr("HS256", kid="oct")),
    "oct-key-no-kid": lambda k, u: hs256(c(u), OCT_SECRET),
    "oct-k-text-kid": lambda k, u: hs256(c(u), b64u(OCT_SECRET), _hdr("HS256", kid="oct")),
    "oct-key-alg-hs256-kid": lambda k, u: hs256(c(u), OCT_SECRET, _hdr("HS256", kid="oct-hs256")),
}


@LMDB
@pytest.mark.parametrize("case", sorted(CONFUSION_CASES))
def test_hs256_never_verifies_with_a_jwks_key(idp, keys, case):
    user = uid("hs")
    tok = CONFUSION_CASES[case](keys, user)
    assert_unauthorized(idp.get("/users/%s/sessions" % q(user), token=tok))
    # the harness is right: the same claims with the service's secret pass
    assert idp.get("/users/%s/sessions" % q(user),
                   token=hs256(c(user), SECRET)).status_code == 200


# --------------------------------------------------------------------------
# claims: exactly as for HS256
# --------------------------------------------------------------------------

def _now():
    return int(time.time())


CLAIM_CASES = {
    # case: (claims builder(user), status)
    "good": (lambda u: c(u), 200),
    "expired": (lambda u: c(u, exp=_now() - 3600), 401),
    "expired-within-leeway": (lambda u: c(u, exp=_now() - 10), 200),
    "no-exp": (lambda u: c(u, exp=OMIT), 401),
    "exp-a-string": (lambda u: c(u, exp=str(_now() + 600)), 401),
    "no-sub": (lambda u: c(u, sub=OMIT), 401),
    "empty-sub": (lambda u: c(u, sub=""), 401),
    "sub-a-number": (lambda u: c(u, sub=12345), 401),
    "sub-257-bytes": (lambda u: c(u, sub="s" * 257), 401),
    "sub-control-char": (lambda u: c(u, sub=u + "\n"), 401),
    "nbf-in-the-future": (lambda u: c(u, nbf=_now() + 3600), 401),
    "nbf-past": (lambda u: c(u, nbf=_now() - 60), 200),
    "iat-in-the-future": (lambda u: c(u, iat=_now() + 3600), 401),
    "wrong-iss": (lambda u: c(u, iss="https://evil.example.test/"), 401),
    "no-iss": (lambda u: c(u, iss=OMIT), 401),
    "wrong-aud": (lambda u: c(u, aud="another-service"), 401),
    "no-aud": (lambda u: c(u, aud=OMIT), 401),
    "aud-array-with-ours": (lambda u: c(u, aud=["another-service", AUD]), 200),
    "aud-array-without-ours": (lambda u: c(u, aud=["another-service"]), 401),
}


@LMDB
@pytest.mark.parametrize("kid", ["rsa", "ec", "ed"])
@pytest.mark.parametrize("case", sorted(CLAIM_CASES))
def test_claims_are_checked_as_for_hs256(idp, keys, case, kid):
    user = uid("cl")
    build, want = CLAIM_CASES[case]
    claims = {k_: v for k_, v in build(user).items() if v is not OMIT}
    tok = signed(ALG_OF[kid], getattr(keys, PRIVATE[kid]), _hdr(ALG_OF[kid], kid=kid), claims)
    r = idp.get("/users/%s/sessions" % q(user), token=tok)
    if want == 200:
        assert r.status_code == 200, r.text
    else:
        assert_unauthorized(r)


@LMDB
@pytest.mark.parametrize("kid", ["rsa", "ec", "ed"])
def test_admin_scope_in_a_jwks_token_makes_an_administrator(idp, keys, kid):
    owner = uid("own")
    s = idp.create(hs_caller(owner, iss=ISS, aud=AUD))
    staff = uid("staff")
    adm = mint(keys, kid, c(staff, scope="openid session:admin email"))
    plain = mint(keys, kid, c(staff, scope="openid email session:admins"))
    r = idp.get("/session/%s" % s["id"], token=adm)
    assert r.status_code == 200 and r.json()["id"] == s["id"], r.text
    r = idp.get("/users/%s/sessions" % q(owner), token=adm)
    assert r.status_code == 200 and [x["id"] for x in r.json()["sessions"]] == [s["id"]]
    assert idp.create(adm, {"user_id": owner})["user_id"] == owner
    assert_problem(idp.get("/session/%s" % s["id"], token=plain), 404)
    assert_problem(idp.get("/users/%s/sessions" % q(owner), token=plain), 403)
    assert_problem(idp.post("/session", token=plain, json={"user_id": owner}), 403)


@LMDB
def test_hs256_kid_is_ignored(idp, keys):
    """CONTRACT-NOTES: an HS256 token's kid is ignored, HS256 means the
    secrets (whatever key of the JWKS the kid names)."""
    user = uid("hk")
    for kid in ("rsa", "oct", "nope"):
        tok = hs256(c(user), SECRET, _hdr("HS256", kid=kid))
        assert idp.get("/users/%s/sessions" % q(user), token=tok).status_code == 200, kid


@LMDB
def test_entries_sharing_a_kid(idp, keys):
    """CONTRACT-NOTES: several entries may share a kid; each verifies the
    tokens of its own alg, and nothing else."""
    user = uid("sh")
    assert works(idp, mint(keys, "shared", c(user), alg="RS256", key=keys.rs2), user)
    assert works(idp, mint(keys, "shared", c(user), alg="ES256", key=keys.ec2), user)
    for alg, key in (("RS256", keys.rs), ("ES256", keys.ec), ("PS256", keys.rs2),
                     ("EdDSA", keys.ed)):
        assert_unauthorized(idp.get("/users/%s/sessions" % q(user),
                                    token=mint(keys, "shared", c(user), alg=alg, key=key)))


@LMDB
def test_skipped_keys_are_warned_about_and_the_rest_serve(idp, keys):
    # every skipped entry of the main file said so (the file still served:
    # the tests above passed on its usable keys)
    assert len(warn_lines(idp)) >= len(skipped_jwks(keys)), idp.stderr_text()[-4000:]
    assert idp.alive()
    user = uid("w")
    for kid in good_jwks(keys):
        assert works(idp, mint(keys, kid, c(user)), user), kid


# --------------------------------------------------------------------------
# start refused
# --------------------------------------------------------------------------

def _refusal_files(k):
    good = json.dumps(jwks_of(k, "ec"))
    return {
        "missing": None,
        "a-directory": "DIR",
        "empty": "",
        "not-json": "keys: [ec]",
        "truncated": good[:-2],
        "json-array": "[%s]" % good,
        "json-string": json.dumps(good),
        "json-null": "null",
        "two-objects": good + " " + good,
        "trailing-garbage": good + " x",
        "no-keys-member": json.dumps({"key": jwks_of(k, "ec")["keys"]}),
        "keys-an-object": json.dumps({"keys": good_jwks(k)["ec"]}),
        "keys-a-string": json.dumps({"keys": "ec"}),
        "keys-empty": json.dumps({"keys": []}),
        "keys-not-objects": json.dumps({"keys": ["ec", 1, None, []]}),
        "only-oct": json.dumps({"keys": [skipped_jwks(k)[0]]}),
        "only-rsa-1024": json.dumps({"keys": [rsa_jwk(k.rs1024, "rsa1024")]}),
        "only-skipped-kinds": json.dumps({"keys": skipped_jwks(k)}),
    }


REFUSAL_CASES = ["missing", "a-directory", "empty", "not-json", "truncated", "json-array",
                 "json-string", "json-null", "two-objects", "trailing-garbage",
                 "no-keys-member", "keys-an-object", "keys-a-string", "keys-empty",
                 "keys-not-objects", "only-oct", "only-rsa-1024", "only-skipped-kinds"]


def assert_jwks_refused(rc, err):
    assert rc == 2, "exit status %s (want 2); stderr:\n%s" % (rc, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no line on stderr"
    assert any("JWT_JWKS_FILE" in line for line in lines), \
        "no stderr line names JWT_JWKS_FILE:\n%s" % err
    # one refusal line: the warnings about skipped entries are logged only
    # when the set is in force
    assert len(lines) == 1, "want one line:\n%s" % err
    for value in (SECRET,) + NEVER_LOGGED:
        assert value not in err, "stderr holds a secret or key value"


@pytest.mark.parametrize("case", REFUSAL_CASES)
def test_bad_jwks_file_refused_at_start(tmp_path, keys, case):
    content = _refusal_files(keys)[case]
    path = tmp_path / "jwks.json"
    if content == "DIR":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    rc, out, err = run_until_exit("sessiond", {"JWT_JWKS_FILE": str(path)}, tmp_path)
    assert_jwks_refused(rc, err)


def test_a_fifo_as_jwks_file_is_refused_without_waiting(tmp_path):
    # opening a FIFO for reading waits for a writer: a start must not hang
    path = tmp_path / "jwks.json"
    os.mkfifo(path)
    rc, out, err = run_until_exit("sessiond", {"JWT_JWKS_FILE": str(path)}, tmp_path)
    assert_jwks_refused(rc, err)


@pytest.mark.parametrize("binary", BINARIES)
def test_every_binary_refuses_a_missing_jwks_file(tmp_path, binary):
    rc, out, err = run_until_exit(binary, {"JWT_JWKS_FILE": str(tmp_path / "nope.json")},
                                  tmp_path)
    assert_jwks_refused(rc, err)


# --------------------------------------------------------------------------
# SIGHUP
# --------------------------------------------------------------------------

def env_text(secret=None, previous=None, **more):
    lines = ["# written by test_jwks.py"]
    if secret is not None:
        lines.append("JWT_SECRET=%s" % secret)
    if previous is not None:
        lines.append("JWT_SECRET_PREVIOUS=%s" % previous)
    lines.extend("%s=%s" % kv for kv in more.items())
    return "\n".join(lines) + "\n"


@LMDB
def test_reload_adds_a_kid_and_drops_a_removed_one(spawn, keys, tmp_path):
    """A token accepted before its key left the file is refused after the
    reload, the very same string, on new and kept-alive connections (each
    event thread keeps a cache of verified tokens)."""
    path = write_file(tmp_path / "jwks.json", jwks_of(keys, "rsa", "ec"))
    srv = _started(spawn("sessiond", env={"JWT_JWKS_FILE": str(path), "THREADS": "2",
                                          "LOG_LEVEL": "debug"}))
    user = uid("re")
    t_rsa = mint(keys, "rsa", std_claims(user))
    t_ec = mint(keys, "ec", std_claims(user))
    t_ed = mint(keys, "ed", std_claims(user))

    def raw_read(conn, tok):
        conn.send(http_request_bytes("GET", "/users/%s/sessions" % q(user),
                                     {"Authorization": "Bearer " + tok}))
        return conn.read_response()

    with requests.Session() as keep, RawConn(srv.port) as raw:
        assert set(statuses(srv, t_rsa, user, keep_alive=keep)) == {200}
        assert works(srv, t_ec, user)
        assert_unauthorized(srv.get("/users/%s/sessions" % q(user), token=t_ed))
        assert raw_read(raw, t_ec).status == 200

        write_file(path, jwks_of(keys, "ec", "ed"), atomic=False)  # rewritten in place
        t0 = hup(srv)
        assert wait_until(lambda: works(srv, t_ed, user), timeout=2.0), \
            "a kid added to the file is not accepted 2 s after SIGHUP"
        after(t0, 1.0)
        # the connection opened before the reload still serves
        r = raw_read(raw, t_ed)
        assert r is not None and r.status == 200, "a kept-alive connection lost: %r" % r
        assert set(statuses(srv, t_rsa, user, keep_alive=keep)) == {401}, \
            "a token of a removed key is still accepted after the reload"
        assert_unauthorized(srv.get("/users/%s/sessions" % q(user), token=t_rsa))
        assert_unauthorized(srv.get("/users/%s/sessions" % q(user),
                                    token=mint(keys, "rsa", std_claims(user))))
        assert set(statuses(srv, t_ec, user, n=4, keep_alive=keep)) == {200}
        assert set(statuses(srv, t_ed, user, n=4, keep_alive=keep)) == {200}

        # and back (a file replaced by a rename this time)
        write_file(path, jwks_of(keys, "rsa", "ec"))
        t0 = hup(srv)
        assert wait_until(lambda: works(srv, t_rsa, user), timeout=2.0)
        after(t0, 1.0)
        assert set(statuses(srv, t_ed, user, keep_alive=keep)) == {401}
        assert set(statuses(srv, t_rsa, user, n=4, keep_alive=keep)) == {200}
    assert error_lines(srv) == [], "a good reload logged an error"


@LMDB
def test_reload_rotates_the_secrets_from_the_env_file(spawn, keys, tmp_path):
    """The rotation of test_secret_rotation.py, done by SIGHUP on one
    process whose secrets come from ENV_FILE."""
    path = write_file(tmp_path / "jwks.json", jwks_of(keys, "ec"))
    envf = write_file(tmp_path / "service.env", env_text(S1))
    srv = _started(spawn("sessiond", env={"JWT_SECRET": None, "ENV_FILE": str(envf),
                                          "JWT_JWKS_FILE": str(path), "THREADS": "2",
                                          "LOG_LEVEL": "debug"}))
    user = uid("rot")
    h1, h2 = hs_caller(user, S1), hs_caller(user, S2)
    t_ec = mint(keys, "ec", std_claims(user))
    old = srv.create(h1)
    assert signed_with(old["token"], S1)
    assert works(srv, h1, user) and not works(srv, h2, user)
    for _ in range(6):
        assert srv.get("/validate", token=old["token"]).status_code == 200

    # step 2: the new secret signs, the old one is still accepted
    write_file(envf, env_text(S2, S1))
    t0 = hup(srv)
    assert wait_until(lambda: works(srv, h2, user), timeout=2.0), \
        "JWT_SECRET from the .env not in force 2 s after SIGHUP"
    after(t0, 1.0)
    new = srv.create(h2)
    assert signed_with(new["token"], S2) and not signed_with(new["token"], S1)
    assert signed_with(srv.create(h1)["token"], S2)  # S1 verifies, S2 signs
    assert works(srv, h1, user) and works(srv, t_ec, user)
    for s in (old, new):
        r = srv.get("/validate", token=s["token"])
        assert r.status_code == 200 and r.headers.get("X-Session-Id") == s["id"], r.text

    # step 3: the old secret is dropped; what it verified before is refused,
    # the same strings
    write_file(envf, env_text(S2))
    t0 = hup(srv)
    assert wait_until(lambda: not works(srv, h1, user), timeout=2.0), \
        "a secret dropped from the .env still verifies 2 s after SIGHUP"
    after(t0, 1.0)
    assert set(statuses(srv, h1, user)) == {401}
    for _ in range(6):
        assert_unauthorized(srv.get("/validate", token=old["token"]))
        assert srv.get("/validate", token=new["token"]).status_code == 200
    assert works(srv, h2, user) and works(srv, t_ec, user)
    assert error_lines(srv) == []


@LMDB
def test_reload_real_environment_still_wins(spawn, keys, tmp_path):
    """./.env in the working directory (no ENV_FILE), JWT_JWKS_FILE set
    there too; JWT_SECRET is also in the real environment, which wins at the
    start and at every reload, while JWT_SECRET_PREVIOUS, only in the file,
    counts."""
    path = write_file(tmp_path / "jwks.json", jwks_of(keys, "ec"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    dotenv = write_file(cwd / ".env", env_text(S1, JWT_JWKS_FILE=str(path)))
    srv = _started(spawn("sessiond", cwd=cwd, env={"LOG_LEVEL": "debug"}))  # JWT_SECRET=SECRET
    user = uid("env")
    h, h1, h2 = hs_caller(user), hs_caller(user, S1), hs_caller(user, S2)
    t_ed = mint(keys, "ed", std_claims(user))
    assert works(srv, h, user) and not works(srv, h1, user)
    assert works(srv, mint(keys, "ec", std_claims(user)), user), "JWT_JWKS_FILE from .env"
    assert not works(srv, t_ed, user)

    write_file(path, jwks_of(keys, "ec", "ed"))
    write_file(dotenv, env_text(S2, S1, JWT_JWKS_FILE=str(path)))
    t0 = hup(srv)
    assert wait_until(lambda: works(srv, t_ed, user) and works(srv, h1, user), timeout=2.0), \
        "the reload (new kid, JWT_SECRET_PREVIOUS from .env) not in force 2 s after SIGHUP"
    after(t0, 1.0)
    assert works(srv, h, user), "the real environment's JWT_SECRET lost to the .env"
    assert not works(srv, h2, user), "the .env's JWT_SECRET won over the real environment"
    s = srv.create(h1)
    assert signed_with(s["token"], SECRET)

    # CONTRACT-NOTES: a reload takes JWT_JWKS_FILE from the configuration
    # again, so a path changed in the .env counts
    other = write_file(tmp_path / "other.json", jwks_of(keys, "ed"))
    write_file(dotenv, env_text(S2, S1, JWT_JWKS_FILE=str(other)))
    t_ec = mint(keys, "ec", std_claims(user))
    t0 = hup(srv)
    assert wait_until(lambda: not works(srv, t_ec, user), timeout=2.0), \
        "JWT_JWKS_FILE changed in the .env: the old file still serves 2 s after SIGHUP"
    after(t0, 1.0)
    assert works(srv, t_ed, user) and works(srv, h, user) and works(srv, h1, user)
    assert error_lines(srv) == []


@LMDB
def test_failed_reload_keeps_every_key_and_logs_one_error(spawn, keys, tmp_path):
    path = write_file(tmp_path / "jwks.json", jwks_of(keys, "rsa", "ec", "ed"))
    envf = write_file(tmp_path / "service.env", env_text(S1, S0))
    srv = _started(spawn("sessiond", env={"JWT_SECRET": None, "ENV_FILE": str(envf),
                                          "JWT_JWKS_FILE": str(path), "THREADS": "2",
                                          "LOG_LEVEL": "debug"}))
    user = uid("keep")
    before = [mint(keys, kid, std_claims(user)) for kid in ("rsa", "ec", "ed")]
    before += [hs_caller(user, S1), hs_caller(user, S0)]
    h2 = hs_caller(user, S2)
    t_new = mint(keys, "ec-new", std_claims(user))
    sess = srv.create(before[3])
    new_file = {"keys": jwks_of(keys, "rsa", "ec", "ed")["keys"] + [ec_jwk(keys.ec2, "ec-new")]}

    def as_before(step):
        for tok in before:
            assert works(srv, tok, user), "%s: a key in force before was dropped" % step
        assert not works(srv, h2, user), "%s: the .env's new JWT_SECRET came in" % step
        assert not works(srv, t_new, user), "%s: the file's new kid came in" % step
        assert srv.get("/validate", token=sess["token"]).status_code == 200, step
        assert signed_with(srv.create(before[3])["token"], S1), step

    as_before("at start")
    failures = [
        # (what, JWKS file content or None to delete it, .env text)
        ("JWKS not JSON", "{\"keys\": [", env_text(S2, S1)),
        ("JWKS without a usable key",
         {"keys": [skipped_jwks(keys)[0], rsa_jwk(keys.rs1024, "rsa1024")]}, env_text(S2, S1)),
        ("JWKS not an object with keys", {"key": new_file["keys"]}, env_text(S2, S1)),
        ("JWKS file removed", None, env_text(S2, S1)),
        (".env with a short JWT_SECRET", new_file, env_text(SHORT, S1)),
        (".env with an empty JWT_SECRET_PREVIOUS", new_file, env_text(S2, "")),
        (".env with a line that is no setting", new_file,
         env_text(S2, S1) + "this line is not a setting\n"),
        # CONTRACT-NOTES: any value a start would refuse refuses the reload
        (".env with SESSION_TTL=ten", new_file, env_text(S2, S1, SESSION_TTL="ten")),
    ]
    for what, jwks_content, dotenv in failures:
        if jwks_content is None:
            path.unlink()
        else:
            write_file(path, jwks_content)
        write_file(envf, dotenv)
        errors = len(error_lines(srv))
        hup(srv)
        assert wait_until(lambda: len(error_lines(srv)) > errors, timeout=3.0), \
            "%s: no error line within 3 s of SIGHUP" % what
        as_before(what)
        assert srv.alive(), what
        assert len(error_lines(srv)) == errors + 1, \
            "%s: want one error line, got:\n%s" % (what, error_lines(srv)[errors:])

    # all fixed: the next reload takes everything
    write_file(path, new_file)
    write_file(envf, env_text(S2, S1))
    errors = len(error_lines(srv))
    t0 = hup(srv)
    assert wait_until(lambda: works(srv, t_new, user) and works(srv, h2, user), timeout=2.0), \
        "a good reload after failed ones is not in force 2 s after SIGHUP"
    after(t0, 1.0)
    assert not works(srv, before[4], user), "S0 left JWT_SECRET_PREVIOUS but still verifies"
    for tok in before[:4]:
        assert works(srv, tok, user)
    assert srv.get("/validate", token=sess["token"]).status_code == 200
    assert signed_with(srv.create(h2)["token"], S2)
    assert len(error_lines(srv)) == errors


@LMDB
def test_reload_never_waits_on_a_pipe_as_env_file(spawn, keys, tmp_path):
    # ENV_FILE may be a pipe at start (ENV_FILE=<(decrypt .env)); on SIGHUP
    # nobody writes to it: the reload must refuse it (one error line, keys
    # kept) rather than wait, and the process must still obey SIGTERM
    fifo = tmp_path / "env.fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "w") as f:
            f.write(env_text(S1))
    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    srv = _started(spawn("sessiond", env={"JWT_SECRET": None, "ENV_FILE": str(fifo)}))
    writer.join(timeout=5)
    user = uid("fifo")
    assert works(srv, hs_caller(user, S1), user)
    hup(srv)
    assert wait_until(lambda: len(error_lines(srv)) == 1, timeout=3.0), \
        "no error line within 3 s of SIGHUP with a pipe as ENV_FILE:\n" + srv.stderr_text()[-2000:]
    assert "ENV_FILE" in error_lines(srv)[0].get("msg", "")
    assert works(srv, hs_caller(user, S1), user)
    rc, took = srv.terminate()
    assert rc == 0 and took < 4.5, "SIGTERM after a reload: exit %s after %.1f s" % (rc, took)


@LMDB
@pytest.mark.parametrize("binary,method,path,want", [
    ("createSession", "POST", "/session", 201),
    ("readSession", "GET", "/users/{u}/sessions", 200),
    ("closeSession", "DELETE", "/users/{u}/sessions", 200),
])
def test_split_processes_verify_and_reload(spawn, keys, tmp_path, binary, method, path, want):
    f = write_file(tmp_path / "jwks.json", jwks_of(keys, "rsa"))
    srv = _started(spawn(binary, env={"JWT_JWKS_FILE": str(f), "LOG_LEVEL": "debug"}))
    user = uid("split")
    route = path.replace("{u}", q(user))

    def code(kid):
        return srv.request(method, route, token=mint(keys, kid, std_claims(user))).status_code

    assert code("rsa") == want
    assert code("ed") == 401
    write_file(f, jwks_of(keys, "ed"))
    t0 = hup(srv)
    assert wait_until(lambda: code("ed") == want, timeout=2.0), \
        "%s: a kid added to the file is not accepted 2 s after SIGHUP" % binary
    after(t0, 1.0)
    assert code("rsa") == 401


@LMDB
@pytest.mark.concurrency
def test_reloads_under_load_fail_no_request(spawn, keys, tmp_path):
    """Four clients read with RS256, PS256, ES256, EdDSA and HS256 caller
    tokens and validate a session token, on kept-alive connections, while
    the JWKS file and the .env change and SIGHUP comes 20 times. Every
    answer is 200: a reload drops no request, no connection, and no key
    that both versions hold."""
    file_a = jwks_of(keys, "rsa", "ec", "ed")
    file_b = {"keys": file_a["keys"] + [rsa_jwk(keys.rs2, "rsa-new", alg="RS256")]}
    path = write_file(tmp_path / "jwks.json", file_a)
    envf = write_file(tmp_path / "service.env", env_text(S1))
    srv = _started(spawn("sessiond", env={"JWT_SECRET": None, "ENV_FILE": str(envf),
                                          "JWT_JWKS_FILE": str(path), "THREADS": "4"}))
    user = uid("load")
    sess = srv.create(hs_caller(user, S1))
    # a few distinct tokens per kind, so that verifications miss the caches too
    tokens = []
    for i in range(6):
        cl = std_claims(user, jti="j%d" % i)
        tokens += [mint(keys, "rsa", cl), mint(keys, "rsa", cl, alg="PS256"),
                   mint(keys, "ec", cl), mint(keys, "ed", cl), hs_caller(user, S1, jti="j%d" % i)]
    stop = threading.Event()
    failures, counts = [], []
    lock = threading.Lock()

    def worker(n):
        done = 0
        with requests.Session() as s:
            i = n
            while not stop.is_set():
                i += 1
                tok = tokens[i % len(tokens)]
                which = i % 3
                try:
                    if which == 0:
                        url, auth = "/session/%s" % sess["id"], tok
                    elif which == 1:
                        url, auth = "/users/%s/sessions" % q(user), tok
                    else:
                        url, auth = "/validate", sess["token"]
                    r = s.get(srv.base + url, headers={"Authorization": "Bearer " + auth},
                              timeout=10)
                    if r.status_code != 200:
                        with lock:
                            failures.append("%s -> %d %s" % (url, r.status_code, r.text[:120]))
                except requests.RequestException as exc:
                    with lock:
                        failures.append("%s -> %r" % (url, exc))
                done += 1
        with lock:
            counts.append(done)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.2)
        for i in range(20):
            b = i % 2 == 0
            write_file(path, file_b if b else file_a)
            write_file(envf, env_text(S1, S0) if b else env_text(S1))
            hup(srv)
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not failures, "%d failed requests of %d, e.g.:\n%s" % (
        len(failures), sum(counts), "\n".join(failures[:10]))
    assert len(counts) == 4 and min(counts) >= 20, counts
    assert srv.alive()
    assert error_lines(srv) == [], error_lines(srv)[:3]
    # the last reload (file_a, no previous secret) is the one in force
    t0 = time.monotonic()
    assert wait_until(lambda: not works(srv, mint(keys, "rsa-new", std_claims(user)), user),
                      timeout=2.0)
    after(t0, 1.0)
    assert not works(srv, hs_caller(user, S0), user)
    assert works(srv, tokens[0], user)
