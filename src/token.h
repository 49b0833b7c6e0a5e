/* token.h -- caller tokens in, session tokens out (JWS compact).
 *
 * Verification is our own narrow verifier: HS256 on OpenSSL's HMAC with the
 * service's own secrets, and RS256, PS256, ES256 and EdDSA with the keys of
 * an identity provider's JWKS (jwks.h), each algorithm tied to its kind of
 * key and never to another; signatures compared in constant time, header
 * and claims parsed strictly (one JSON object each, no duplicate keys, no
 * "crit", canonical unpadded base64url). Session tokens are HS256, signed
 * on the same per-thread keyed HMAC (token.c). Neither path logs or returns
 * token bytes in errors. */
#ifndef TOKEN_H
#define TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include "jwks.h"
#include "rc.h"
#include "session.h"

#define TOKEN_MAX 8192

typedef struct token_policy {
    const unsigned char *key;
    size_t key_len;
    const char *issuer;      /* NULL: iss not checked (and not issued) */
    const char *audience;    /* NULL: aud not checked */
    int64_t leeway;
    const char *admin_scope;
    /* JWT_SECRET_PREVIOUS (NULL: none): verifies, as key does, tokens
     * signed before a rotation of the secret; never signs */
    const unsigned char *previous;
    size_t previous_len;
    /* JWT_JWKS_FILE's keys (NULL: none): verify caller tokens signed
     * RS256, PS256, ES256 or EdDSA whose "kid" names one of them; such
     * tokens are never session tokens */
    const jwks *jwks;
} token_policy;

typedef struct token_claims {
    char sub[SESSION_USER_MAX + 1];
    size_t sub_len;
    /* a session token's session: set only for tokens verified with this
     * service's own secret (see token_claims_parse's own_key) */
    int has_sid;
    char sid[SESSION_ID_MAX + 1];
    uint32_t gen;   /* a session token's generation (token_sign_rotated; 0: its create's) */
    int is_admin;
    int64_t exp;
} token_claims;

/* Verifies tok[0..len) at time now. RC_OK and *out filled, or
 * RC_UNAUTHORIZED (any refusal), or RC_NOMEM. */
rc_t token_verify(const token_policy *p, const char *tok, size_t len,
                  int64_t now, token_claims *out);

/* token_verify for a token that should be a session token, as the signer
 * writes them (token_sign_session, token_sign_rotated: the usual header,
 * the claims in their order, plain strings), verified without any
 * allocation: RC_OK, RC_UNAUTHORIZED (a refusal: its signature or its
 * times), or RC_INVALID for any token not of that form, which only
 * token_verify may judge (gate.c then asks the service). */
rc_t token_verify_session(const token_policy *p, const char *tok, size_t len,
                          int64_t now, token_claims *out);

/* The claim checks of token_verify on a JSON claims object json[0..len),
 * as if its signature had been verified. own_key: with one of the service's
 * own secrets; when 0 (a key of an identity provider), "sid" is ignored and
 * the token is never a session token. Pure; for tests and fuzzing. RC_OK or
 * RC_UNAUTHORIZED. */
rc_t token_claims_parse(const token_policy *p, const char *json, size_t len, int64_t now,
                        int own_key, token_claims *out);

/* Signs a session token {sub, sid, iat, exp, jti[, iss][, aud]}. On RC_OK *out is a
 * malloc'd NUL-terminated string owned by the caller (free()). */
rc_t token_sign_session(const token_policy *p, const char *sub, const char *sid,
                        int64_t iat, int64_t exp, char **out);

/* Signs generation gen >= 1 of a session's token, made by a refresh at
 * iat: as token_sign_session, with a jti that names gen and is derived from
 * the secret, sid and gen, so that the same arguments always give the very
 * same token (concurrent refreshes, and a refresh repeated in its grace
 * window, answer the same string on every process). */
rc_t token_sign_rotated(const token_policy *p, const char *sub, const char *sid, uint32_t gen,
                        int64_t iat, int64_t exp, char **out);

/* Constant-time equality of two equal-length byte strings (the comparison
 * the verifier uses; exposed for the unit test). */
int token_mac_equal(const unsigned char *a, const unsigned char *b, size_t len);

#endif
