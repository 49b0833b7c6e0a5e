/* token.c -- tokens: our own strict verifier (HS256: HMAC-SHA256 on
 * OpenSSL's SHA-256, the key's pads hashed once per thread; the JWKS
 * algorithms through jwks.c) and our own HS256 signer. (libjwt signed
 * session tokens at first; its JSON, libb64 and one-shot HMAC took half of a
 * create's CPU, see docs/BENCHMARKS.md. The unit tests check every token
 * signed here with libjwt, an independent implementation.) */
/* SHA256_Init/Update/Final: deprecated by OpenSSL 3.0, kept by it, and
 * the one SHA-256 interface that never allocates (see hmac_pads) */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <jansson.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "b64.h"
#include "buf.h"
#include "token.h"
#include "jtext.h"

#define SIG_LEN 32               /* SHA-256 */
#define TIME_MAX 253402300799LL  /* 9999-12-31T23:59:59Z */

int token_mac_equal(const unsigned char *a, const unsigned char *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

/* HMAC-SHA256 (RFC 2104) with the key's two padded blocks hashed once: a
 * MAC is then two SHA-256 states copied and finished, with no allocation
 * and no lookup (OpenSSL 3's EVP_MAC allocates a digest context at every
 * reinitialisation, HMAC() several). The unit tests check the MACs against
 * OpenSSL's HMAC() and every signed token with libjwt. */
typedef struct hmac_pads {
    SHA256_CTX inner, outer;
} hmac_pads;

static void pads_init(hmac_pads *h, const unsigned char *key, size_t len)
{
    unsigned char k[SHA256_CBLOCK], pad[SHA256_CBLOCK];
    memset(k, 0, sizeof k);
    if (len > sizeof k) { /* a long key is its digest (not SHA256(), which may fail) */
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, key, len);
        SHA256_Final(k, &c);
        OPENSSL_cleanse(&c, sizeof c);
    } else if (len > 0) {
        memcpy(k, key, len);
    }
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    SHA256_Init(&h->inner);
    SHA256_Update(&h->inner, pad, sizeof pad);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    SHA256_Init(&h->outer);
    SHA256_Update(&h->outer, pad, sizeof pad);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
}

static void pads_mac(const hmac_pads *h, const void *msg, size_t len,
                     unsigned char out[SIG_LEN])
{
    SHA256_CTX c = h->inner;
    unsigned char inner[SIG_LEN];
    SHA256_Update(&c, msg, len);
    SHA256_Final(inner, &c);
    c = h->outer;
    SHA256_Update(&c, inner, sizeof inner);
    SHA256_Final(out, &c);
    OPENSSL_cleanse(inner, sizeof inner);
    OPENSSL_cleanse(&c, sizeof c);
}

#define SEGMENT_STACK 1024 /* a segment decoded on the stack; longer ones malloc'd */

/* Decodes the non-empty base64url segment seg[0..len) into stack (of
 * SEGMENT_STACK bytes) or, when longer, a malloc'd buffer. Returns the
 * bytes (*n of them; to free() when not stack) or NULL on any failure. */
static unsigned char *decode_segment(const char *seg, size_t len, unsigned char *stack,
                                     size_t *n)
{
    unsigned char *raw = stack;
    if (len == 0)
        return NULL;
    if (B64_DECODED_MAX(len) > SEGMENT_STACK && (raw = malloc(B64_DECODED_MAX(len))) == NULL)
        return NULL;
    if (b64url_decode(seg, len, raw, n) == RC_OK)
        return raw;
    if (raw != stack)
        free(raw);
    return NULL;
}

/* Parses json[0..len) as exactly one JSON object without duplicate keys.
 * Returns NULL on any failure. */
static json_t *parse_object(const char *json, size_t len)
{
    if (jtext_depth(json, len) > 8)
        return NULL;
    json_t *obj = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* Decodes one base64url segment and parses it as exactly one JSON object
 * without duplicate keys. Returns NULL on any failure. */
static json_t *decode_object(const char *seg, size_t len)
{
    unsigned char stack[SEGMENT_STACK];
    size_t rawlen;
    unsigned char *raw = decode_segment(seg, len, stack, &rawlen);
    if (raw == NULL)
        return NULL;
    json_t *obj = parse_object((const char *)raw, rawlen);
    if (raw != stack)
        free(raw);
    return obj;
}

/* Reads an optional NumericDate. RC_OK with *present set; RC_INVALID when
 * present but not a number in [0, TIME_MAX]. Fractions are truncated toward
 * the safe side by the callers' comparisons. */
static rc_t numeric_date(json_t *claims, const char *name, int *present, double *out)
{
    json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (v == NULL)
        return RC_OK;
    if (!json_is_number(v))
        return RC_INVALID;
    double d = json_number_value(v);
    if (!isfinite(d) || d < 0 || d > (double)TIME_MAX)
        return RC_INVALID;
    *out = d;
    return RC_OK;
}

static int has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    const char *p = list;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        if ((size_t)(e - p) == wl && memcmp(p, word, wl) == 0)
            return 1;
        p = e;
    }
    return 0;
}

static int audience_ok(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (json_is_array(aud)) {
        size_t i;
        json_t *el;
        int found = 0;
        json_array_foreach(aud, i, el) {
            if (!json_is_string(el))
                return 0;
            if (strcmp(json_string_value(el), want) == 0)
                found = 1;
        }
        return found;
    }
    return 0;
}

/* The time-dependent part of a token: checked on every use, also when the
 * rest of the verification comes from the cache. */
typedef struct token_times {
    double exp, nbf, iat;
    int has_nbf, has_iat;
} token_times;

static int times_ok(const token_policy *p, const token_times *t, int64_t now)
{
    if ((double)now > t->exp + (double)p->leeway)
        return 0;
    if (t->has_nbf && t->nbf > (double)(now + p->leeway))
        return 0;
    if (t->has_iat && t->iat > (double)(now + p->leeway))
        return 0;
    return 1;
}

/* The generation a session token's jti names: "<gen>.<mac>" for a token
 * made by a refresh (token_sign_rotated), 0 for any other (the token of a
 * create has a random jti without a dot). */
static uint32_t jti_gen(const char *s, size_t len)
{
    uint64_t g = 0;
    size_t k = 0;
    if (s == NULL || len == 0 || s[0] < '1' || s[0] > '9')
        return 0;
    for (; k < len && s[k] >= '0' && s[k] <= '9' && g <= UINT32_MAX; k++)
        g = g * 10 + (uint64_t)(s[k] - '0');
    return k < len && s[k] == '.' && g <= UINT32_MAX ? (uint32_t)g : 0;
}

/* The claims the checks act on, as views into the parsed token: strings
 * are not NUL-terminated but scope (NULL: absent, as sid and jti). */
typedef struct claim_view {
    const char *sub, *sid, *jti, *scope;
    size_t sub_len, sid_len, jti_len;
    token_times t;
} claim_view;

/* Reads a claims object into v, with the checks that need its JSON: the
 * claims' types, exp present, the issuer and audience. own_key: the token
 * was verified with one of this service's own secrets; only such a token
 * can be a session token, so "sid" is read only then (an identity
 * provider's tokens carry an OIDC "sid" of their own, which means nothing
 * here). Views into claims; RC_OK or RC_UNAUTHORIZED. */
static rc_t json_claims(const token_policy *p, json_t *claims, int own_key, claim_view *v)
{
    json_t *sub = json_object_get(claims, "sub");
    if (!json_is_string(sub))
        return RC_UNAUTHORIZED;
    v->sub = json_string_value(sub);
    v->sub_len = json_string_length(sub);

    int present;
    if (numeric_date(claims, "exp", &present, &v->t.exp) != RC_OK || !present ||
        numeric_date(claims, "nbf", &v->t.has_nbf, &v->t.nbf) != RC_OK ||
        numeric_date(claims, "iat", &v->t.has_iat, &v->t.iat) != RC_OK)
        return RC_UNAUTHORIZED;

    if (p->issuer != NULL) {
        json_t *iss = json_object_get(claims, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), p->issuer) != 0)
            return RC_UNAUTHORIZED;
    }
    if (p->audience != NULL && !audience_ok(json_object_get(claims, "aud"), p->audience))
        return RC_UNAUTHORIZED;

    json_t *scope = json_object_get(claims, "scope");
    if (scope != NULL && !json_is_string(scope))
        return RC_UNAUTHORIZED;
    v->scope = scope != NULL ? json_string_value(scope) : NULL;

    json_t *sid = own_key ? json_object_get(claims, "sid") : NULL;
    if (sid != NULL) {
        if (!json_is_string(sid))
            return RC_UNAUTHORIZED;
        v->sid = json_string_value(sid);
        v->sid_len = json_string_length(sid);
        json_t *jti = json_object_get(claims, "jti");
        if (json_is_string(jti)) {
            v->jti = json_string_value(jti);
            v->jti_len = json_string_length(jti);
        }
    }
    return RC_OK;
}

/* ---- the claims of a session token, read without a JSON library ---- */

typedef struct scan {
    const char *p, *end;
} scan;

static int lit(scan *c, const char *l, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, l, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

#define LIT(c, l) lit((c), (l), sizeof(l) - 1)

/* A JSON string of printable ASCII without '"' and '\\' (what needs no
 * escape and no UTF-8 check): its characters into *at, *n. */
static int plain(scan *c, const char **at, size_t *n)
{
    if (!LIT(c, "\""))
        return 0;
    const char *q = c->p;
    while (q < c->end && *q != '"') {
        if (*q < 0x20 || *q > 0x7e || *q == '\\')
            return 0;
        q++;
    }
    if (q == c->end)
        return 0;
    *at = c->p;
    *n = (size_t)(q - c->p);
    c->p = q + 1;
    return 1;
}

/* A plain string equal to want (a policy's issuer or audience). */
static int plain_is(scan *c, const char *want)
{
    const char *at;
    size_t n;
    return plain(c, &at, &n) && n == strlen(want) && memcmp(at, want, n) == 0;
}

/* A NumericDate as an integer of 1 to 12 digits, no leading zero, at most
 * TIME_MAX: exact as a double. */
static int date(scan *c, double *out)
{
    int64_t v = 0;
    const char *q = c->p;
    while (q < c->end && *q >= '0' && *q <= '9' && q - c->p < 12)
        v = v * 10 + (*q++ - '0');
    if (q == c->p || (*c->p == '0' && q - c->p > 1) || v > TIME_MAX)
        return 0;
    c->p = q;
    *out = (double)v;
    return 1;
}

/* Reads claims written exactly as session_claims writes them under p,
 * {["aud":A,]"exp":N,"iat":N[,"iss":I],"jti":S,"sid":S,"sub":S} with A and
 * I the policy's own audience and issuer, every string plain and every
 * number a date as date() reads it, into v. 0 for any other text, which
 * the JSON parser then reads: every text this accepts, json_claims reads
 * to the same view (a differential unit test and the token fuzzer hold
 * the two to that). Only for tokens of the service's own secrets. */
static int plain_claims(const token_policy *p, const char *json, size_t len, claim_view *v)
{
    scan c = { json, json + len };
    if (!LIT(&c, "{"))
        return 0;
    if (p->audience != NULL && !(LIT(&c, "\"aud\":") && plain_is(&c, p->audience) &&
                                 LIT(&c, ",")))
        return 0;
    if (!LIT(&c, "\"exp\":") || !date(&c, &v->t.exp) || !LIT(&c, ",\"iat\":") ||
        !date(&c, &v->t.iat))
        return 0;
    v->t.has_iat = 1;
    if (p->issuer != NULL && !(LIT(&c, ",\"iss\":") && plain_is(&c, p->issuer)))
        return 0;
    return LIT(&c, ",\"jti\":") && plain(&c, &v->jti, &v->jti_len) &&
           LIT(&c, ",\"sid\":") && plain(&c, &v->sid, &v->sid_len) &&
           LIT(&c, ",\"sub\":") && plain(&c, &v->sub, &v->sub_len) && LIT(&c, "}") &&
           c.p == c.end;
}

/* The checks of a claims view both readers share, into out. */
static rc_t accept_claims(const token_policy *p, const claim_view *v, int64_t now,
                          token_claims *out)
{
    if (!session_user_valid(v->sub, v->sub_len) || !times_ok(p, &v->t, now))
        return RC_UNAUTHORIZED;
    out->has_sid = v->sid != NULL;
    if (v->sid != NULL) {
        if (!session_id_valid(v->sid, v->sid_len))
            return RC_UNAUTHORIZED;
        memcpy(out->sid, v->sid, v->sid_len);
        out->sid[v->sid_len] = '\0';
        out->gen = jti_gen(v->jti, v->jti_len);
    }
    memcpy(out->sub, v->sub, v->sub_len);
    out->sub[v->sub_len] = '\0';
    out->sub_len = v->sub_len;
    out->exp = (int64_t)v->t.exp;
    out->is_admin = v->scope != NULL && p->admin_scope != NULL &&
                    has_word(v->scope, p->admin_scope);
    return RC_OK;
}

/* Checks the claims json[0..len) of a verified token into out (and its
 * times into t): those of a session token as they are usually written
 * without the JSON library, anything else with it. RC_OK or
 * RC_UNAUTHORIZED. */
static rc_t check_claims(const token_policy *p, const char *json, size_t len, int64_t now,
                         int own_key, int strict, int *plain, token_claims *out,
                         token_times *t)
{
    claim_view v;
    json_t *claims = NULL;
    rc_t rc = RC_UNAUTHORIZED;
    memset(&v, 0, sizeof v);
    *plain = own_key && plain_claims(p, json, len, &v);
    if (*plain) {
        rc = accept_claims(p, &v, now, out);
    } else if (strict) {
        rc = RC_INVALID; /* not as the signer writes them: not for token_verify_session */
    } else {
        memset(&v, 0, sizeof v);
        claims = parse_object(json, len);
        if (claims != NULL && json_claims(p, claims, own_key, &v) == RC_OK)
            rc = accept_claims(p, &v, now, out);
    }
    *t = v.t;
    json_decref(claims);
    return rc;
}

/* ---- a per-thread cache of verified tokens ----
 * Services present the same tokens again and again (a session token on
 * every request). A token's verification is a pure function of its bytes,
 * the policy and the clock; the cache keeps the outcome of the first two for
 * tokens that passed, keyed by the whole token (compared in constant time),
 * and the clock is checked again on every use. Only successes are cached;
 * a session token's liveness is never cached (that is the store's job). */

#define CACHE_SLOTS 256
#define CACHE_TOKEN_MAX 2048 /* an identity provider's tokens run to 1.5 KiB */

typedef struct cached {
    size_t len; /* 0: empty */
    char tok[CACHE_TOKEN_MAX];
    token_claims claims;
    token_times times;
    int signer_shaped; /* verified as token_verify_session verifies */
} cached;

typedef struct cache {
    /* the policy the entries were verified under */
    unsigned char key[4096], previous[4096];
    size_t key_len, previous_len;
    char *issuer, *audience, *admin_scope;
    int64_t leeway;
    uint64_t jwks_serial; /* the JWKS's (jwks_serial): a reloaded set is another */
    hmac_pads pads, previous_pads; /* of key and previous */
    cached slot[CACHE_SLOTS];
} cache;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* Wipes the secrets a cache keeps. */
static void cache_forget_keys(cache *c)
{
    OPENSSL_cleanse(c->key, sizeof c->key);
    OPENSSL_cleanse(c->previous, sizeof c->previous);
    OPENSSL_cleanse(&c->pads, sizeof c->pads);
    OPENSSL_cleanse(&c->previous_pads, sizeof c->previous_pads);
}

static void cache_free(void *arg)
{
    cache *c = arg;
    cache_forget_keys(c);
    free(c->issuer);
    free(c->audience);
    free(c->admin_scope);
    free(c);
}

static void cache_key_init(void)
{
    if (pthread_key_create(&cache_key, cache_free) != 0)
        abort(); /* at most once per process; no key means no threads either */
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The calling thread's cache for policy p, emptied if p changed; NULL when
 * out of memory or the key is too long to keep (then nothing is cached). */
static cache *cache_for(const token_policy *p)
{
    pthread_once(&cache_once, cache_key_init);
    cache *c = pthread_getspecific(cache_key);
    if (p->key_len > sizeof c->key || p->previous_len > sizeof c->previous)
        return NULL;
    if (c != NULL && c->key_len == p->key_len && c->leeway == p->leeway &&
        CRYPTO_memcmp(c->key, p->key, p->key_len) == 0 && c->previous_len == p->previous_len &&
        (p->previous_len == 0 || CRYPTO_memcmp(c->previous, p->previous, p->previous_len) == 0) &&
        c->jwks_serial == jwks_serial(p->jwks) && same_str(c->issuer, p->issuer) &&
        same_str(c->audience, p->audience) && same_str(c->admin_scope, p->admin_scope))
        return c;
    if (c == NULL) {
        if ((c = calloc(1, sizeof *c)) == NULL || pthread_setspecific(cache_key, c) != 0) {
            free(c);
            return NULL;
        }
    } else {
        free(c->issuer);
        free(c->audience);
        free(c->admin_scope);
        c->issuer = c->audience = c->admin_scope = NULL;
        memset(c->slot, 0, sizeof c->slot);
        cache_forget_keys(c); /* a rotated secret is not kept */
    }
    memcpy(c->key, p->key, p->key_len);
    c->key_len = p->key_len;
    if (p->previous_len > 0)
        memcpy(c->previous, p->previous, p->previous_len);
    c->previous_len = p->previous_len;
    c->jwks_serial = jwks_serial(p->jwks);
    c->leeway = p->leeway;
    if ((p->issuer && !(c->issuer = strdup(p->issuer))) ||
        (p->audience && !(c->audience = strdup(p->audience))) ||
        (p->admin_scope && !(c->admin_scope = strdup(p->admin_scope)))) {
        c->key_len = (size_t)-1; /* matches no policy: rebuilt next time */
        return NULL;
    }
    pads_init(&c->pads, p->key, p->key_len);
    pads_init(&c->previous_pads, p->previous, p->previous_len);
    return c;
}

static cached *cache_slot(cache *c, const char *tok, size_t len)
{
    /* FNV-1a over the signature's last characters: spread, not secret (a
     * collision only costs a full verification) */
    size_t from = len > 16 ? len - 16 : 0;
    return &c->slot[str_hash(tok + from, len - from) % CACHE_SLOTS];
}

/* HMAC-SHA256 of msg under p's key (previous: JWT_SECRET_PREVIOUS) into
 * mac, with the thread's pads of it (or pads made here, when the thread
 * has no cache for p). RC_OK: the low-level SHA-256 calls cannot fail. */
static rc_t hs256_with(const token_policy *p, int previous, const char *msg, size_t len,
                       unsigned char mac[SIG_LEN])
{
    cache *c = cache_for(p);
    if (c != NULL) {
        pads_mac(previous ? &c->previous_pads : &c->pads, msg, len, mac);
        return RC_OK;
    }
    hmac_pads local;
    pads_init(&local, previous ? p->previous : p->key, previous ? p->previous_len : p->key_len);
    pads_mac(&local, msg, len, mac);
    OPENSSL_cleanse(&local, sizeof local);
    return RC_OK;
}

static rc_t hs256(const token_policy *p, const char *msg, size_t len,
                  unsigned char mac[SIG_LEN])
{
    return hs256_with(p, 0, msg, len, mac);
}

/* The header every session token carries, {"alg":"HS256","typ":"JWT"},
 * already encoded. */
static const char SIGNED_HEADER[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/* strict: only tokens as the signer writes them (token_verify_session),
 * anything else RC_INVALID; *shaped: the token was of that form. */
static rc_t verify_uncached(const token_policy *p, const char *tok, size_t len,
                            int64_t now, int strict, token_claims *out, token_times *t,
                            int *shaped);

static rc_t verify(const token_policy *p, const char *tok, size_t len, int64_t now,
                   int strict, token_claims *out)
{
    memset(out, 0, sizeof *out);
    if (tok == NULL || len == 0 || len > TOKEN_MAX)
        return RC_UNAUTHORIZED;
    cache *c = len <= CACHE_TOKEN_MAX ? cache_for(p) : NULL;
    cached *e = c ? cache_slot(c, tok, len) : NULL;
    if (e != NULL && e->len == len && CRYPTO_memcmp(e->tok, tok, len) == 0 &&
        (e->signer_shaped || !strict)) {
        if (!times_ok(p, &e->times, now))
            return RC_UNAUTHORIZED;
        *out = e->claims;
        return RC_OK;
    }
    token_times t;
    int shaped = 0;
    rc_t rc = verify_uncached(p, tok, len, now, strict, out, &t, &shaped);
    if (rc == RC_OK && e != NULL) {
        memcpy(e->tok, tok, len);
        e->len = len;
        e->claims = *out;
        e->times = t;
        e->signer_shaped = shaped;
    }
    return rc;
}

rc_t token_verify(const token_policy *p, const char *tok, size_t len,
                  int64_t now, token_claims *out)
{
    return verify(p, tok, len, now, 0, out);
}

rc_t token_verify_session(const token_policy *p, const char *tok, size_t len,
                          int64_t now, token_claims *out)
{
    return verify(p, tok, len, now, 1, out);
}

/* The HS256 signature seg[0..slen) of msg[0..mlen), with JWT_SECRET or
 * JWT_SECRET_PREVIOUS: RC_OK or RC_UNAUTHORIZED. */
static rc_t verify_hs256(const token_policy *p, const char *msg, size_t mlen, const char *seg,
                         size_t slen)
{
    unsigned char sig[B64_DECODED_MAX(64)], mac[SIG_LEN];
    size_t siglen;
    if (slen != B64_ENCODED_LEN(SIG_LEN) || b64url_decode(seg, slen, sig, &siglen) != RC_OK ||
        siglen != SIG_LEN || hs256(p, msg, mlen, mac) != RC_OK)
        return RC_UNAUTHORIZED;
    if (token_mac_equal(mac, sig, SIG_LEN))
        return RC_OK;
    /* JWT_SECRET_PREVIOUS: a token signed before the secret's rotation */
    if (p->previous == NULL || hs256_with(p, 1, msg, mlen, mac) != RC_OK ||
        !token_mac_equal(mac, sig, SIG_LEN))
        return RC_UNAUTHORIZED;
    return RC_OK;
}

/* The signature seg[0..slen) of msg[0..mlen) with the JWKS key the
 * header's "kid" names, for its "alg" (alg): RC_OK, RC_UNAUTHORIZED (no
 * JWKS, another algorithm, no such key or one of another kind, a wrong
 * signature) or RC_NOMEM. */
static rc_t verify_jwks(const token_policy *p, json_t *header, json_t *alg, const char *msg,
                        size_t mlen, const char *seg, size_t slen)
{
    unsigned char sig[JWKS_SIG_MAX];
    size_t siglen;
    jwks_alg a = jwks_alg_named(json_string_value(alg), json_string_length(alg));
    json_t *kid = json_object_get(header, "kid");
    if (p->jwks == NULL || a == JWKS_ALG_NONE || !json_is_string(kid) ||
        slen > B64_ENCODED_LEN(JWKS_SIG_MAX) || b64url_decode(seg, slen, sig, &siglen) != RC_OK)
        return RC_UNAUTHORIZED;
    return jwks_verify(p->jwks, json_string_value(kid), json_string_length(kid), a,
                       (const unsigned char *)msg, mlen, sig, siglen);
}

static rc_t verify_uncached(const token_policy *p, const char *tok, size_t len,
                            int64_t now, int strict, token_claims *out, token_times *t,
                            int *shaped)
{
    json_t *header = NULL;
    rc_t rc = RC_UNAUTHORIZED;

    const char *d1 = memchr(tok, '.', len);
    if (d1 == NULL)
        return RC_UNAUTHORIZED;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
        return RC_UNAUTHORIZED;
    size_t hlen = (size_t)(d1 - tok), plen = (size_t)(d2 - d1 - 1);
    size_t slen = len - (size_t)(d2 + 1 - tok);

    /* Header first: the algorithm, and with it the keys that may verify
     * the token, is decided before any key is used. The header of every
     * session token (and of most HS256 libraries' tokens), byte for byte,
     * is known without parsing it: {"alg":"HS256","typ":"JWT"}. */
    int own_key;
    json_t *alg = NULL;
    if (hlen == sizeof SIGNED_HEADER - 1 && memcmp(tok, SIGNED_HEADER, hlen) == 0) {
        own_key = 1;
    } else if (strict) {
        return RC_INVALID;
    } else {
        header = decode_object(tok, hlen);
        if (header == NULL)
            goto out;
        alg = json_object_get(header, "alg");
        if (!json_is_string(alg) || json_object_get(header, "crit") != NULL)
            goto out;
        own_key = strcmp(json_string_value(alg), "HS256") == 0;
    }
    rc_t vrc = own_key ? verify_hs256(p, tok, (size_t)(d2 - tok), d2 + 1, slen)
                       : verify_jwks(p, header, alg, tok, (size_t)(d2 - tok), d2 + 1, slen);
    if (vrc != RC_OK) {
        rc = vrc == RC_NOMEM ? RC_NOMEM : RC_UNAUTHORIZED;
        goto out;
    }

    unsigned char stack[SEGMENT_STACK];
    size_t rawlen;
    if (strict && B64_DECODED_MAX(plen) > SEGMENT_STACK)
        return RC_INVALID; /* longer than any the signer writes */
    unsigned char *raw = decode_segment(d1 + 1, plen, stack, &rawlen);
    if (raw == NULL)
        goto out;
    /* only a token of the service's own secrets can be a session token */
    int plain = 0;
    rc = check_claims(p, (const char *)raw, rawlen, now, own_key, strict, &plain, out, t);
    *shaped = plain && header == NULL;
    if (raw != stack)
        free(raw);
out:
    json_decref(header);
    if (rc != RC_OK)
        memset(out, 0, sizeof *out);
    return rc;
}


/* The claims, sorted by name, as compact JSON. */
static rc_t session_claims(const token_policy *p, const char *sub, const char *sid,
                           int64_t iat, int64_t exp, const char *jti, buf_t *b)
{
    rc_t rc;
    if ((rc = buf_append_cstr(b, "{")) != RC_OK)
        return rc;
    /* the service's own audience check applies to its session tokens too */
    if (p->audience != NULL &&
        ((rc = buf_append_cstr(b, "\"aud\":")) != RC_OK ||
         (rc = buf_append_json_str(b, p->audience, strlen(p->audience))) != RC_OK ||
         (rc = buf_append_cstr(b, ",")) != RC_OK))
        return rc;
    if ((rc = buf_append_cstr(b, "\"exp\":")) != RC_OK ||
        (rc = buf_append_i64(b, exp)) != RC_OK ||
        (rc = buf_append_cstr(b, ",\"iat\":")) != RC_OK ||
        (rc = buf_append_i64(b, iat)) != RC_OK)
        return rc;
    if (p->issuer != NULL &&
        ((rc = buf_append_cstr(b, ",\"iss\":")) != RC_OK ||
         (rc = buf_append_json_str(b, p->issuer, strlen(p->issuer))) != RC_OK))
        return rc;
    if ((rc = buf_append_cstr(b, ",\"jti\":")) != RC_OK ||
        (rc = buf_append_json_str(b, jti, strlen(jti))) != RC_OK ||
        (rc = buf_append_cstr(b, ",\"sid\":")) != RC_OK ||
        (rc = buf_append_json_str(b, sid, strlen(sid))) != RC_OK ||
        (rc = buf_append_cstr(b, ",\"sub\":")) != RC_OK ||
        (rc = buf_append_json_str(b, sub, strlen(sub))) != RC_OK)
        return rc;
    return buf_append(b, "}", 1);
}

static rc_t sign(const token_policy *p, const char *sub, const char *sid, int64_t iat,
                 int64_t exp, const char *jti, char **out)
{
    buf_t claims = BUF_INIT, tok = BUF_INIT;
    unsigned char mac[SIG_LEN];
    rc_t rc;

    *out = NULL;
    if ((rc = session_claims(p, sub, sid, iat, exp, jti, &claims)) != RC_OK)
        goto out;
    size_t hl = sizeof SIGNED_HEADER - 1, pl = B64_ENCODED_LEN(claims.len);
    if ((rc = buf_reserve(&tok, hl + 1 + pl + 1 + B64_ENCODED_LEN(SIG_LEN) + 1)) != RC_OK)
        goto out;
    memcpy(tok.p, SIGNED_HEADER, hl);
    tok.p[hl] = '.';
    b64url_encode((const unsigned char *)claims.p, claims.len, tok.p + hl + 1);
    tok.len = hl + 1 + pl;
    if ((rc = hs256(p, tok.p, tok.len, mac)) != RC_OK)
        goto out;
    tok.p[tok.len++] = '.';
    b64url_encode(mac, SIG_LEN, tok.p + tok.len);
    tok.len += B64_ENCODED_LEN(SIG_LEN);
    *out = buf_steal(&tok);
out:
    OPENSSL_cleanse(mac, sizeof mac);
    buf_free(&claims);
    buf_free(&tok);
    return rc;
}

rc_t token_sign_session(const token_policy *p, const char *sub, const char *sid,
                        int64_t iat, int64_t exp, char **out)
{
    char jti[SESSION_ID_MAX + 1];
    *out = NULL;
    if (session_id_generate(jti) != RC_OK)
        return RC_ERR;
    return sign(p, sub, sid, iat, exp, jti, out);
}

/* The jti of generation gen of session sid: "<gen>." and the first
 * JTI_MAC_BYTES of HMAC(secret, "jti" NUL sid NUL gen), so that every
 * process makes the very same token for a generation. */
#define JTI_MAC_BYTES 16

rc_t token_sign_rotated(const token_policy *p, const char *sub, const char *sid, uint32_t gen,
                        int64_t iat, int64_t exp, char **out)
{
    char msg[8 + SESSION_ID_MAX + 16], jti[16 + B64_ENCODED_LEN(JTI_MAC_BYTES) + 1];
    unsigned char mac[SIG_LEN];
    *out = NULL;
    int n = snprintf(msg, sizeof msg, "jti%c%s%c%u", 0, sid, 0, (unsigned)gen);
    if (gen == 0 || n <= 0 || (size_t)n >= sizeof msg || hs256(p, msg, (size_t)n, mac) != RC_OK)
        return RC_ERR;
    int k = snprintf(jti, sizeof jti, "%u.", (unsigned)gen);
    b64url_encode(mac, JTI_MAC_BYTES, jti + k);
    jti[k + (int)B64_ENCODED_LEN(JTI_MAC_BYTES)] = '\0';
    OPENSSL_cleanse(mac, sizeof mac);
    return sign(p, sub, sid, iat, exp, jti, out);
}

rc_t token_claims_parse(const token_policy *p, const char *json, size_t len, int64_t now,
                        int own_key, token_claims *out)
{
    token_times t;
    memset(out, 0, sizeof *out);
    int plain;
    rc_t rc = check_claims(p, json, len, now, own_key, 0, &plain, out, &t);
    if (rc != RC_OK)
        memset(out, 0, sizeof *out);
    return rc;
}
