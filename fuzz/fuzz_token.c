/* fuzz_token -- caller tokens (token_verify) and their claim checks
 * (token_claims_parse), at now = NOW with leeway 30 and the key KEY below
 * (fuzz/make_seeds.py signs part of the seeds with the same key).
 *
 * Input: if the first byte is 'I' it is dropped and the policy also
 * requires iss "iss" and aud "aud"; the rest, R, is fed as is to both:
 *   - token_verify(R). The fuzzer cannot forge HMAC, so only seeds signed
 *     with KEY pass; the oracle recomputes the token's verdict independently:
 *     R must be h.c.s with s the canonical base64url of HMAC-SHA256(KEY,
 *     "h.c") (OpenSSL's one-shot HMAC here), h a canonical base64url JSON
 *     object without duplicate keys, nesting <= 8, alg "HS256" and no
 *     "crit"; then the verdict and claims must be exactly those of
 *     token_claims_parse(own_key 1) on the decoded c. Anything else must be
 *     refused. (Tokens are JSON claims objects signed: plain JSON inputs
 *     reach the claims checks directly, no signature needed.)
 *   - token_claims_parse(R, own_key 0 and 1). Oracle: on RC_OK, 0 < sub_len
 *     <= 256 and sub is NUL-terminated at sub_len and session_user_valid;
 *     has_sid only with own_key 1, and then sid is session_id_valid; exp
 *     lies in [NOW - leeway, 9999-12-31]; and sub, sid, is_admin ("scope" has
 *     the admin scope as a space-separated word), iss and aud agree with an
 *     independent reading of the JSON by jansson. own_key 1 accepts only
 *     what own_key 0 accepts, with the same sub/exp/is_admin, and refuses
 *     more only because of "sid". On refusal the output is all zero bytes.
 *     And with own_key 1, R and " " R (the same JSON, which token.c's
 *     reader of the signer's own claims text leaves to jansson) give the
 *     same verdict and the same claims.
 *   - token_verify_session(R) against token_verify(R): it accepts only
 *     what token_verify accepts, with the same claims, refuses only what
 *     token_verify refuses, and answers RC_INVALID for the rest.
 * Any oracle failure abort()s. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "session.h"
#include "token.h"
#include "jtext.h"

#define NOW 1700000000
#define LEEWAY 30
#define TIME_MAX 253402300799LL /* 9999-12-31T23:59:59Z, as token.c */

static const unsigned char KEY[] = "fuzzing-key-fuzzing-key-fuzzing-key!";

static const char ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void fail(void)
{
    abort();
}

/* base64url without padding, written here (not b64.c) to be independent. */
static size_t enc64(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        size_t n = len - i >= 3 ? 4 : len - i + 1;
        for (size_t k = 0; k < n; k++)
            out[o++] = ALPHABET[v >> (18 - 6 * k) & 63];
    }
    return o;
}

/* Decodes in[0..len) into a malloc'd buffer when it is the one canonical
 * encoding of some bytes (re-encoding gives it back); NULL otherwise. */
static unsigned char *dec64_canonical(const char *in, size_t len, size_t *outlen)
{
    unsigned char *out = malloc(len + 1);
    char *again = malloc(len + 4);
    size_t o = 0, bits = 0;
    uint32_t acc = 0;
    int ok = len % 4 != 1;
    for (size_t i = 0; ok && i < len; i++) {
        const char *c = in[i] ? memchr(ALPHABET, in[i], 64) : NULL;
        if (c == NULL) {
            ok = 0;
            break;
        }
        acc = (acc << 6 | (uint32_t)(c - ALPHABET)) & 0xFFFFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    ok = ok && enc64(out, o, again) == len && memcmp(again, in, len) == 0;
    free(again);
    if (!ok) {
        free(out);
        return NULL;
    }
    *outlen = o;
    return out;
}

static int all_zero(const token_claims *c)
{
    static const token_claims zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

static int same_claims(const token_claims *a, const token_claims *b)
{
    return a->sub_len == b->sub_len && memcmp(a->sub, b->sub, a->sub_len + 1) == 0 &&
           a->has_sid == b->has_sid && (!a->has_sid || strcmp(a->sid, b->sid) == 0) &&
           a->is_admin == b->is_admin && a->exp == b->exp;
}

/* scope is a space-separated list of words (RFC 8693 / OAuth "scope") */
static int scope_has(const char *scope, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = scope; *p;) {
        const char *sp = strchr(p, ' ');
        size_t n = sp ? (size_t)(sp - p) : strlen(p);
        if (n == wl && memcmp(p, word, wl) == 0)
            return 1;
        p += n;
        if (*p == ' ')
            p++;
    }
    return 0;
}

/* The claims token_claims_parse(p, json, len, NOW, own_key) returned. */
static void check_claims(const token_policy *p, const char *json, size_t len, int own_key,
                         rc_t rc, const token_claims *c)
{
    if (rc != RC_OK) {
        if (rc != RC_UNAUTHORIZED || !all_zero(c))
            fail();
        return;
    }
    if (c->sub_len == 0 || c->sub_len > SESSION_USER_MAX || c->sub[c->sub_len] != '\0' ||
        strlen(c->sub) != c->sub_len || !session_user_valid(c->sub, c->sub_len))
        fail();
    if (c->has_sid && (!own_key || memchr(c->sid, '\0', sizeof c->sid) == NULL ||
                       !session_id_valid(c->sid, strlen(c->sid))))
        fail();
    if (c->exp < NOW - p->leeway || c->exp > TIME_MAX)
        fail();

    /* the same object read here */
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o))
        fail();
    json_t *sub = json_object_get(o, "sub"), *sid = json_object_get(o, "sid");
    json_t *exp = json_object_get(o, "exp"), *scope = json_object_get(o, "scope");
    if (!json_is_string(sub) || json_string_length(sub) != c->sub_len ||
        memcmp(json_string_value(sub), c->sub, c->sub_len) != 0)
        fail();
    if (!json_is_number(exp) || c->exp != (int64_t)json_number_value(exp))
        fail();
    if (own_key && (sid != NULL) != (c->has_sid != 0))
        fail();
    if (c->has_sid && (!json_is_string(sid) || strcmp(json_string_value(sid), c->sid) != 0))
        fail();
    if (scope != NULL && !json_is_string(scope))
        fail();
    int admin = scope != NULL && p->admin_scope != NULL &&
                scope_has(json_string_value(scope), p->admin_scope);
    if (admin != c->is_admin)
        fail();
    if (p->issuer != NULL) {
        json_t *iss = json_object_get(o, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), p->issuer) != 0)
            fail();
    }
    if (p->audience != NULL) {
        json_t *aud = json_object_get(o, "aud"), *el;
        size_t i;
        int found = json_is_string(aud) && strcmp(json_string_value(aud), p->audience) == 0;
        json_array_foreach(aud, i, el) {
            if (!json_is_string(el))
                fail(); /* an array with a non-string is refused */
            if (strcmp(json_string_value(el), p->audience) == 0)
                found = 1;
        }
        if (!found)
            fail();
    }
    json_decref(o);
}

/* Both key kinds on one JSON text; returns the own_key 1 verdict. */
static rc_t fuzz_claims(const token_policy *p, const char *json, size_t len, token_claims *c1)
{
    token_claims c0;
    rc_t r0 = token_claims_parse(p, json, len, NOW, 0, &c0);
    check_claims(p, json, len, 0, r0, &c0);
    if (c0.has_sid)
        fail();
    rc_t r1 = token_claims_parse(p, json, len, NOW, 1, c1);
    check_claims(p, json, len, 1, r1, c1);
    char *spaced = malloc(len + 1);
    token_claims cs;
    if (spaced == NULL)
        fail();
    spaced[0] = ' ';
    memcpy(spaced + 1, json, len);
    if (token_claims_parse(p, spaced, len + 1, NOW, 1, &cs) != r1 || memcmp(&cs, c1, sizeof cs) != 0)
        fail();
    free(spaced);
    if (r1 == RC_OK && (r0 != RC_OK || c0.sub_len != c1->sub_len ||
                        memcmp(c0.sub, c1->sub, c0.sub_len) != 0 || c0.exp != c1->exp ||
                        c0.is_admin != c1->is_admin))
        fail();
    if (r0 == RC_OK && r1 != RC_OK) {
        /* only a "sid" that is not a valid session id refuses more */
        json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
        json_t *sid = json_object_get(o, "sid");
        if (sid == NULL || (json_is_string(sid) &&
                            session_id_valid(json_string_value(sid), json_string_length(sid))))
            fail();
        json_decref(o);
    }
    return r1;
}

/* The verdict token_verify must give on tok, found independently. */
static void check_verify(const token_policy *p, const char *tok, size_t len, rc_t rc,
                         const token_claims *got)
{
    if (rc != RC_OK && (rc != RC_UNAUTHORIZED || !all_zero(got)))
        fail();
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (len > TOKEN_MAX || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok))) {
        if (rc == RC_OK)
            fail();
        return;
    }
    /* the signature: HMAC-SHA256 over "h.c", canonical base64url */
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char sig[64];
    if (HMAC(EVP_sha256(), KEY, (int)(sizeof KEY - 1), (const unsigned char *)tok,
             (size_t)(d2 - tok), mac, &maclen) == NULL || maclen != 32)
        fail();
    size_t siglen = enc64(mac, 32, sig);
    int sig_ok = (size_t)(tok + len - (d2 + 1)) == siglen && memcmp(d2 + 1, sig, siglen) == 0;

    size_t hlen = 0, clen = 0;
    unsigned char *h = dec64_canonical(tok, (size_t)(d1 - tok), &hlen);
    unsigned char *c = dec64_canonical(d1 + 1, (size_t)(d2 - d1 - 1), &clen);
    int head_ok = 0;
    if (h != NULL && hlen > 0 && jtext_depth((const char *)h, hlen) <= 8) {
        json_t *o = json_loadb((const char *)h, hlen, JSON_REJECT_DUPLICATES, NULL);
        json_t *alg = json_object_get(o, "alg");
        head_ok = json_is_object(o) && json_is_string(alg) &&
                  strcmp(json_string_value(alg), "HS256") == 0 &&
                  json_object_get(o, "crit") == NULL;
        json_decref(o);
    }
    if (sig_ok && head_ok && c != NULL && clen > 0) {
        token_claims want;
        rc_t wrc = fuzz_claims(p, (const char *)c, clen, &want); /* as a session token */
        if (wrc != rc || (rc == RC_OK && !same_claims(got, &want)))
            fail();
    } else if (rc == RC_OK) {
        fail(); /* accepted what KEY did not sign, or a bad header or encoding */
    }
    free(h);
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    token_policy p = { KEY, sizeof KEY - 1, NULL, NULL, LEEWAY, "session:admin", NULL, 0, NULL };
    if (size > 0 && data[0] == 'I') {
        p.issuer = "iss";
        p.audience = "aud";
        data++;
        size--;
    }
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);

    token_claims c, s;
    rc_t rc = token_verify(&p, in, size, NOW, &c);
    check_verify(&p, in, size, rc, &c);
    /* token_verify_session (the gateway's): accepts only what token_verify
     * accepts, with the same claims, and refuses (RC_UNAUTHORIZED) only what
     * it refuses; anything else is RC_INVALID, left to token_verify */
    rc_t src = token_verify_session(&p, in, size, NOW, &s);
    if ((src == RC_OK && (rc != RC_OK || memcmp(&s, &c, sizeof s) != 0)) ||
        (src == RC_UNAUTHORIZED && rc != RC_UNAUTHORIZED) ||
        (src != RC_OK && src != RC_UNAUTHORIZED && src != RC_INVALID))
        fail();

    fuzz_claims(&p, in, size, &c);
    free(in);
    return 0;
}
