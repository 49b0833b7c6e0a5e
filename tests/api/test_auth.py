"""Caller authentication (API.md "Authentication", CONTRACT-NOTES "Authentication details").

Hostile tokens are built by hand (base64url + hmac) so that exactly one thing
is wrong with each; everything else about them is valid.
"""

import hashlib
import json
import time

import jwt
import pytest

from apitools import (OMIT, SECRET, assert_json, assert_problem,
                      assert_unauthorized, b64u, b64u_decode, decode_token, hand_token, hmac_sig,
                      make_token, now, q, std_claims, uid)

HS = {"alg": "HS256", "typ": "JWT"}


def protected(server, user, token=None, headers=None):
    """GET /users/{user}/sessions: a route that needs a caller token."""
    return server.get("/users/%s/sessions" % q(user), token=token, headers=headers)


def accepted(server, user, token):
    r = protected(server, user, token)
    assert r.status_code == 200, "token refused: %d %s" % (r.status_code, r.text[:300])
    assert r.json() == {"sessions": []}, r.text[:300]  # users of these tests hold none


def refused(server, user, token):
    assert_unauthorized(protected(server, user, token))


# ---------------------------------------------------------------- header forms

def test_missing_authorization(server, user):
    assert_unauthorized(protected(server, user), token_presented=False)


def test_good_token_accepted(server, user):
    accepted(server, user, make_token(user))


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_scheme_is_case_insensitive(server, user, scheme):
    r = protected(server, user, headers={"Authorization": "%s %s" % (scheme, make_token(user))})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Token {tok}", "{tok}", "Bearer",
                                   "Bearer ", "Bearer{tok}", "Bearer {tok} extra",
                                   "Bearer {tok}.", "Bearer .{tok}"])
def test_malformed_authorization_header(server, user, value):
    r = protected(server, user, headers={"Authorization": value.format(tok=make_token(user))})
    assert_problem(r, 401)
    assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), r.headers


@pytest.mark.parametrize("value,presented", [
    ("Basic dXNlcjpwYXNz", False), ("Bearer", False), ("Bearer ", False), ("Token {tok}", False),
    ("Bearer not-a-token", True), ("bearer {tok} extra", True), ("Bearer {tok}.", True)])
def test_invalid_token_only_when_a_bearer_token_was_presented(server, user, value, presented):
    # RFC 6750 3.1: no error code when the request carries no bearer token
    r = protected(server, user, headers={"Authorization": value.format(tok=make_token(user))})
    assert_unauthorized(r, token_presented=presented)


def test_garbage_token(server, user):
    refused(server, user, "not-a-token")


# ---------------------------------------------------------------- algorithms

@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_with_empty_signature(server, user, alg):
    refused(server, user, hand_token({"alg": alg, "typ": "JWT"}, std_claims(user), sig=""))


@pytest.mark.parametrize("alg", ["none", "NONE"])
def test_alg_none_with_a_valid_hs256_signature(server, user, alg):
    refused(server, user, hand_token({"alg": alg, "typ": "JWT"}, std_claims(user)))


@pytest.mark.parametrize("alg,digest", [("HS384", hashlib.sha384), ("HS512", hashlib.sha512)])
def test_other_hmac_algorithms(server, user, alg, digest):
    refused(server, user, hand_token({"alg": alg, "typ": "JWT"}, std_claims(user),
                                     digest=digest))
    # the same via PyJWT
    t = now()
    refused(server, user, jwt.encode({"sub": user, "exp": t + 600}, SECRET, algorithm=alg))


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA", "hs256", "HS256 ",
                                 "HS2560", ""])
def test_other_alg_values_signed_with_hs256(server, user, alg):
    """Algorithm confusion: an HMAC-SHA256 signature under another alg name."""
    refused(server, user, hand_token({"alg": alg, "typ": "JWT"}, std_claims(user)))


def test_alg_missing_or_not_a_string(server, user):
    refused(server, user, hand_token({"typ": "JWT"}, std_claims(user)))
    refused(server, user, hand_token({"alg": ["HS256"], "typ": "JWT"}, std_claims(user)))
    refused(server, user, hand_token({"alg": None}, std_claims(user)))


def test_header_without_typ_is_fine(server, user):
    accepted(server, user, hand_token({"alg": "HS256"}, std_claims(user)))


# ---------------------------------------------------------------- signatures

def test_wrong_key(server, user):
    refused(server, user, make_token(user, secret="k" * 48))
    refused(server, user, make_token(user, secret=SECRET[:-1] + ("A" if SECRET[-1] != "A"
                                                                   else "B")))
    refused(server, user, make_token(user, secret=SECRET + "x"))
    refused(server, user, make_token(user, secret=SECRET[:32]))


def test_stripped_signature(server, user):
    tok = make_token(user)
    refused(server, user, tok.rsplit(".", 1)[0] + ".")


def test_altered_signature(server, user):
    tok = make_token(user)
    head, sig = tok.rsplit(".", 1)
    flipped = ("B" if sig[0] != "B" else "C") + sig[1:]
    refused(server, user, head + "." + flipped)
    mid = len(sig) // 2
    refused(server, user, head + "." + sig[:mid] + ("x" if sig[mid] != "x" else "y")
            + sig[mid + 1:])
    refused(server, user, head + "." + sig[:-1])            # one character short
    refused(server, user, head + "." + sig + "AAAA")          # three bytes longer
    refused(server, user, head + "." + b64u(b"\x00" * 32))    # all zero


def test_altered_payload(server, user):
    tok = make_token(user)
    h, c, s = tok.split(".")
    claims = json.loads(b64u_decode(c))
    claims["scope"] = "session:admin"
    refused(server, user, "%s.%s.%s" % (h, b64u(json.dumps(claims)), s))
    other = uid()
    claims = json.loads(b64u_decode(c))
    claims["sub"] = other
    refused(server, other, "%s.%s.%s" % (h, b64u(json.dumps(claims)), s))


def test_altered_header(server, user):
    tok = make_token(user)
    h, c, s = tok.split(".")
    refused(server, user, "%s.%s.%s" % (b64u('{"typ":"JWT","alg":"HS256"}'), c, s))


# ---------------------------------------------------------------- time claims

def test_expired_beyond_leeway(server, user):
    refused(server, user, make_token(user, exp_in=-120))
    refused(server, user, hand_token(HS, std_claims(user, exp_in=-3600)))


def test_exp_within_leeway_accepted(server, user):
    accepted(server, user, make_token(user, exp_in=-10))


def test_exp_as_float_accepted(server, user):
    accepted(server, user, hand_token(HS, std_claims(user, exp=now() + 600.5)))


@pytest.mark.parametrize("exp", [OMIT, "9999999999", None, True, [9999999999],
                                 {"t": 9999999999}],
                         ids=["missing", "string", "null", "bool", "array", "object"])
def test_exp_missing_or_wrong_type(server, user, exp):
    refused(server, user, hand_token(HS, std_claims(user, exp=exp)))


def test_nbf_in_future(server, user):
    refused(server, user, make_token(user, nbf=now() + 120))
    accepted(server, user, make_token(user, nbf=now() + 10))
    accepted(server, user, make_token(user, nbf=now() - 10))
    refused(server, user, hand_token(HS, std_claims(user, nbf="0")))


def test_iat_in_future(server, user):
    refused(server, user, make_token(user, iat=now() + 120))
    accepted(server, user, make_token(user, iat=now() + 10))
    refused(server, user, hand_token(HS, std_claims(user, iat="0")))


def test_iat_absent_is_fine(server, user):
    accepted(server, user, hand_token(HS, std_claims(user, iat=OMIT)))


# ---------------------------------------------------------------- sub

@pytest.mark.parametrize("sub", [OMIT, "", 123, None, True, ["alice"], {"id": "alice"},
                                 "a" * 257, "\u00e9" * 129, "bad\u0000nul", "ctl\u0001",
                                 "new\nline"],
                         ids=["missing", "empty", "number", "null", "bool", "array",
                              "object", "257-bytes", "258-utf8-bytes", "nul", "ctl",
                              "newline"])
def test_bad_sub(server, sub):
    claims = std_claims("placeholder")
    claims["sub"] = sub
    claims = {k: v for k, v in claims.items() if v is not OMIT}
    # the path names a plain user: were the token accepted, the answer would be 403
    refused(server, "someone", hand_token(HS, claims))


@pytest.mark.parametrize("sub", ["a" * 256, "\u00e9" * 128, "x/y z\u2713"])
def test_sub_boundaries_accepted(server, sub):
    accepted(server, sub, make_token(sub))


# ---------------------------------------------------------------- scope

def test_scope_not_a_string(server, user):
    refused(server, user, make_token(user, scope=["session:admin"]))
    refused(server, user, make_token(user, scope=1))


def test_scope_admin_must_match_a_whole_word(server, user):
    target = uid()
    for scope in ("session:admin2", "xsession:admin", "session:adm", "SESSION:ADMIN",
                  "session:admin,other"):
        r = protected(server, target, make_token(user, scope=scope))
        assert_problem(r, 403)
    for scope in ("session:admin", "a session:admin", "session:admin b", "a session:admin b"):
        r = protected(server, target, make_token(user, scope=scope))
        assert r.status_code == 200, (scope, r.text)


# ---------------------------------------------------------------- malformed tokens

def _padded(seg):
    return seg + "=" * (-len(seg) % 4)


def _claims_needing_padding(user):
    for n in range(8):
        c = std_claims(user, pad="x" * n)
        if len(b64u(json.dumps(c, separators=(",", ":")))) % 4:
            return c
    raise AssertionError("unreachable")


def _header_needing_padding():
    for n in range(8):
        h = {"alg": "HS256", "typ": "JWT", "kid": "k" * n}
        if len(b64u(json.dumps(h, separators=(",", ":")))) % 4:
            return h
    raise AssertionError("unreachable")


def test_padding_in_any_segment(server, user):
    # header
    h = b64u(json.dumps(_header_needing_padding(), separators=(",", ":")))
    c = b64u(json.dumps(std_claims(user), separators=(",", ":")))
    hp = _padded(h)
    assert hp != h
    refused(server, user, "%s.%s.%s" % (hp, c, hmac_sig("%s.%s" % (hp, c))))
    # the unpadded version of the same token is fine
    accepted(server, user, "%s.%s.%s" % (h, c, hmac_sig("%s.%s" % (h, c))))
    # claims
    h = b64u(json.dumps(HS, separators=(",", ":")))
    c = b64u(json.dumps(_claims_needing_padding(user), separators=(",", ":")))
    cp = _padded(c)
    assert cp != c
    refused(server, user, "%s.%s.%s" % (h, cp, hmac_sig("%s.%s" % (h, cp))))
    accepted(server, user, "%s.%s.%s" % (h, c, hmac_sig("%s.%s" % (h, c))))
    # signature (32 bytes -> 43 characters, so padding adds one '=')
    s = hmac_sig("%s.%s" % (h, c))
    assert len(s) == 43
    refused(server, user, "%s.%s.%s=" % (h, c, s))


def test_segment_count(server, user):
    tok = make_token(user)
    h, c, s = tok.split(".")
    refused(server, user, "%s.%s" % (h, c))
    refused(server, user, h)
    refused(server, user, "%s.%s.%s.%s" % (h, c, s, s))
    refused(server, user, "%s.%s.%s." % (h, c, s))
    refused(server, user, "%s.%s.%s.%s.%s" % (h, c, s, s, s))
    refused(server, user, "..")
    refused(server, user, ".%s.%s" % (c, s))
    refused(server, user, "%s..%s" % (h, s))
    # four segments where the MAC covers the first three (JWE-ish confusion)
    four = "%s.%s.%s" % (h, c, b64u("x"))
    refused(server, user, "%s.%s" % (four, hmac_sig(four)))


@pytest.mark.parametrize("header", [b"[]", b'"HS256"', b"null", b"42",
                                    b'{"alg":"HS256"', b"",
                                    b'{"alg":"HS256"}{}'],
                         ids=["array", "string", "null", "number", "truncated", "empty", "two-objects"])
def test_header_not_one_json_object(server, user, header):
    refused(server, user, hand_token(header, std_claims(user)))


@pytest.mark.parametrize("claims", [b"not json", b"[]", b'"sub"', b"null", b"",
                                    b'{"sub":"x"', b"{}{}", b"\xff\xfe"],
                         ids=["text", "array", "string", "null", "empty", "truncated",
                              "two-objects", "bad-utf8"])
def test_claims_not_one_json_object(server, user, claims):
    refused(server, user, hand_token(HS, claims))


def test_duplicate_keys_in_header(server, user):
    refused(server, user, hand_token(b'{"alg":"HS256","alg":"HS256"}', std_claims(user)))
    refused(server, user, hand_token(b'{"alg":"none","alg":"HS256"}', std_claims(user)))
    refused(server, user, hand_token(b'{"alg":"HS256","typ":"JWT","typ":"JWT"}',
                                     std_claims(user)))


def test_duplicate_keys_in_claims(server, user):
    t = now()
    other = uid()
    raw = ('{"sub":"%s","sub":"%s","exp":%d}' % (other, user, t + 600)).encode()
    refused(server, user, hand_token(HS, raw))
    refused(server, other, hand_token(HS, raw))
    raw = ('{"sub":"%s","exp":%d,"exp":%d}' % (user, t - 600, t + 600)).encode()
    refused(server, user, hand_token(HS, raw))
    raw = ('{"sub":"%s","exp":%d,"scope":"a","scope":"session:admin"}'
           % (user, t + 600)).encode()
    refused(server, other, hand_token(HS, raw))


def test_crit_header(server, user):
    refused(server, user, hand_token({"alg": "HS256", "crit": ["exp"]}, std_claims(user)))
    refused(server, user, hand_token({"alg": "HS256", "crit": ["b64"], "b64": False},
                                     std_claims(user)))
    refused(server, user, hand_token({"alg": "HS256", "crit": []}, std_claims(user)))


def _claims_with_urlsafe_chars(user):
    """Claims whose base64url form contains both '-' and '_'."""
    for n in range(12):
        c = std_claims(user, pad="x" * n + "???>>>~~~" * 4)
        enc = b64u(json.dumps(c, separators=(",", ":")))
        if "-" in enc and "_" in enc:
            return enc
    raise AssertionError("could not build claims with - and _")


def test_non_base64url_characters(server, user):
    h = b64u(json.dumps(HS, separators=(",", ":")))
    c = _claims_with_urlsafe_chars(user)
    accepted(server, user, "%s.%s.%s" % (h, c, hmac_sig("%s.%s" % (h, c))))
    # standard base64 alphabet instead of base64url, MAC recomputed over it
    std = c.replace("-", "+").replace("_", "/")
    refused(server, user, "%s.%s.%s" % (h, std, hmac_sig("%s.%s" % (h, std))))
    # characters outside any base64 alphabet, MAC recomputed
    for bad in ("!", " ", "*", "%", "\t"):
        mangled = c[:10] + bad + c[10:]
        refused(server, user, "%s.%s.%s" % (h, mangled, hmac_sig("%s.%s" % (h, mangled))))
    # in the signature
    s = hmac_sig("%s.%s" % (h, c))
    refused(server, user, "%s.%s.%s" % (h, c, s.replace("-", "+").replace("_", "/") + "!"))


# ---------------------------------------------------------------- session tokens

def test_live_session_token_works_as_caller_token(server, user):
    s = server.create(make_token(user))
    r = protected(server, user, s["token"])
    assert [x["id"] for x in assert_json(r, 200)["sessions"]] == [s["id"]]
    r = server.get("/session/%s" % s["id"], token=s["token"])
    assert assert_json(r, 200)["id"] == s["id"]
    # v2: it may not open another session (test_tightened.py)
    assert_problem(server.post("/session", token=s["token"]), 403)


def test_closed_session_token_refused_on_every_route(server, user):
    tok = make_token(user)
    s = server.create(tok)
    other = server.create(tok)
    assert server.delete("/session/%s" % s["id"], token=tok).status_code == 204
    t = s["token"]
    for method, path in (("GET", "/users/%s/sessions" % user),
                         ("DELETE", "/users/%s/sessions" % user),
                         ("GET", "/session/%s" % other["id"]),
                         ("DELETE", "/session/%s" % other["id"]),
                         ("GET", "/session/%s" % s["id"]),
                         ("POST", "/session"),
                         ("GET", "/validate")):
        assert_unauthorized(server.request(method, path, token=t))
    # nothing was changed by those attempts
    assert server.get("/session/%s" % other["id"], token=tok).status_code == 200


def test_session_token_with_forged_sid_refused(server, user):
    victim_user = uid()
    victim = server.create(make_token(victim_user))
    # correctly signed, sid of another user's live session
    refused(server, user, make_token(user, sid=victim["id"]))
    refused(server, victim_user, make_token(user, sid=victim["id"]))
    refused(server, user, make_token(user, sid="A" * 22))
    refused(server, user, make_token(user, sid=""))
    refused(server, user, make_token(user, sid=None))


def test_401_never_contains_token_or_secret(server, user):
    bad = [make_token(user, secret="q" * 48), make_token(user, exp_in=-999),
           hand_token({"alg": "none"}, std_claims(user), sig=""), "x" * 40 + ".y.z"]
    for tok in bad:
        r = protected(server, user, tok)
        assert r.status_code == 401
        blob = r.content + repr(dict(r.headers)).encode()
        assert tok.encode() not in blob
        assert SECRET.encode() not in blob
        for seg in tok.split("."):
            if len(seg) >= 20:
                assert seg.encode() not in blob


# ---------------------------------------------------------------- configuration

@pytest.fixture(scope="module")
def iss_aud_server(mspawn):
    return mspawn("sessiond", env={"JWT_ISSUER": "https://issuer.test",
                                   "JWT_AUDIENCE": "sessions-api"})


@pytest.fixture(scope="module")
def iss_server(mspawn):
    return mspawn("sessiond", env={"JWT_ISSUER": "https://issuer.test"})


def test_issuer_and_audience_enforced(iss_aud_server, user):
    srv = iss_aud_server
    iss, aud = "https://issuer.test", "sessions-api"
    accepted(srv, user, make_token(user, iss=iss, aud=aud))
    accepted(srv, user, make_token(user, iss=iss, aud=["other", aud]))
    accepted(srv, user, make_token(user, iss=iss, aud=[aud]))
    refused(srv, user, make_token(user, aud=aud))                       # no iss
    refused(srv, user, make_token(user, iss="https://evil.test", aud=aud))
    refused(srv, user, make_token(user, iss=iss + "/", aud=aud))
    refused(srv, user, make_token(user, iss=[iss], aud=aud))
    refused(srv, user, make_token(user, iss=iss))                       # no aud
    refused(srv, user, make_token(user, iss=iss, aud="other"))
    refused(srv, user, make_token(user, iss=iss, aud=["a", "b"]))
    refused(srv, user, make_token(user, iss=iss, aud=[]))
    refused(srv, user, make_token(user, iss=iss, aud=42))
    refused(srv, user, make_token(user, iss=iss, aud="sessions-api-x"))


def test_issued_tokens_carry_issuer(iss_server, user):
    tok = make_token(user, iss="https://issuer.test")
    s = iss_server.create(tok)
    claims = decode_token(s["token"], issuer="https://issuer.test")
    assert claims["iss"] == "https://issuer.test"
    r = iss_server.get("/validate", token=s["token"])
    assert r.status_code == 200, r.text
    refused(iss_server, user, make_token(user))


def test_issued_tokens_carry_issuer_with_audience(iss_aud_server, user):
    tok = make_token(user, iss="https://issuer.test", aud="sessions-api")
    s = iss_aud_server.create(tok)
    claims = decode_token(s["token"], audience="sessions-api", issuer="https://issuer.test")
    assert claims["iss"] == "https://issuer.test" and claims["aud"] == "sessions-api"


def test_leeway_zero(spawn, user):
    srv = spawn("sessiond", env={"JWT_LEEWAY": "0"})
    refused(srv, user, make_token(user, exp_in=-5))
    refused(srv, user, make_token(user, nbf=now() + 5))
    accepted(srv, user, make_token(user, exp_in=60))


def test_leeway_zero_token_minted_at_a_second_boundary(spawn, user):
    """A token minted by a caller whose clock agrees with ours, just after a
    second begins, with JWT_LEEWAY=0: its iat is the current second, so it is
    accepted.  (The server once read the coarse clock time(2), which lags the
    real one by up to a scheduler tick at each second boundary, and saw such
    an iat as one second in the future.)"""
    srv = spawn("sessiond", env={"JWT_LEEWAY": "0"})
    for _ in range(4):
        t = time.time()
        time.sleep(1.0 - (t - int(t)))  # wait for the next second ...
        while time.time() - int(time.time()) > 0.5:
            pass
        accepted(srv, user, make_token(user, exp_in=60))  # ... and mint at once


def test_custom_admin_scope(spawn, user):
    srv = spawn("sessiond", env={"ADMIN_SCOPE": "ops:root"})
    target = uid()
    assert srv.get("/users/%s/sessions" % target,
                   token=make_token(user, scope="ops:root")).status_code == 200
    assert_problem(srv.get("/users/%s/sessions" % target,
                           token=make_token(user, scope="session:admin")), 403)


def test_logs_never_contain_tokens_or_secret(spawn, user):
    srv = spawn("sessiond", env={"LOG_LEVEL": "debug"})
    tok = make_token(user)
    s = srv.create(tok)
    bad = make_token(user, secret="z" * 48)
    srv.get("/validate", token=s["token"])
    srv.get("/validate", headers={"Cookie": "session=%s" % s["token"]})
    srv.get("/users/%s/sessions" % user, token=bad)
    srv.delete("/session/%s" % s["id"], token=tok)
    srv.get("/validate", token=s["token"])
    time.sleep(0.2)
    srv.terminate()
    text = srv.stderr_text()
    for secret in (SECRET, tok, s["token"], bad, s["token"].split(".")[2], bad.split(".")[2]):
        assert secret not in text, "stderr contains a token or the secret"
