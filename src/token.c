/* token.c -- HS256 verification (our own, strict) and signing (libjwt). */
#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include "b64.h"
#include "token.h"

#define SIG_LEN 32               /* SHA-256 */
#define TIME_MAX 253402300799LL  /* 9999-12-31T23:59:59Z */

int token_mac_equal(const unsigned char *a, const unsigned char *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

/* Decodes one base64url segment and parses it as exactly one JSON object
 * without duplicate keys. Returns NULL on any failure. */
static json_t *decode_object(const char *seg, size_t len)
{
    unsigned char stack[1024];
    unsigned char *raw = stack;
    size_t rawlen;
    json_t *obj = NULL;

    if (len == 0)
        return NULL;
    if (B64_DECODED_MAX(len) > sizeof stack) {
        raw = malloc(B64_DECODED_MAX(len));
        if (raw == NULL)
            return NULL;
    }
    if (b64url_decode(seg, len, raw, &rawlen) != RC_OK)
        goto out;
    if (session_json_depth((const char *)raw, rawlen) > 8)
        goto out;
    obj = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
out:
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

static rc_t check_claims(const token_policy *p, json_t *claims, int64_t now,
                         token_claims *out)
{
    json_t *sub = json_object_get(claims, "sub");
    if (!json_is_string(sub))
        return RC_UNAUTHORIZED;
    size_t sub_len = json_string_length(sub);
    if (!session_text_valid(json_string_value(sub), sub_len, SESSION_USER_MAX))
        return RC_UNAUTHORIZED;

    int present;
    double exp = 0, nbf = 0, iat = 0;
    if (numeric_date(claims, "exp", &present, &exp) != RC_OK || !present)
        return RC_UNAUTHORIZED;
    if ((double)now > exp + (double)p->leeway)
        return RC_UNAUTHORIZED;
    if (numeric_date(claims, "nbf", &present, &nbf) != RC_OK ||
        (present && nbf > (double)(now + p->leeway)))
        return RC_UNAUTHORIZED;
    if (numeric_date(claims, "iat", &present, &iat) != RC_OK ||
        (present && iat > (double)(now + p->leeway)))
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

    json_t *sid = json_object_get(claims, "sid");
    out->has_sid = sid != NULL;
    if (sid != NULL) {
        if (!json_is_string(sid) ||
            !session_id_valid(json_string_value(sid), json_string_length(sid)))
            return RC_UNAUTHORIZED;
        memcpy(out->sid, json_string_value(sid), json_string_length(sid) + 1);
    }

    memcpy(out->sub, json_string_value(sub), sub_len + 1);
    out->sub_len = sub_len;
    out->exp = (int64_t)exp;
    out->is_admin = scope != NULL && p->admin_scope != NULL &&
                    has_word(json_string_value(scope), p->admin_scope);
    return RC_OK;
}

rc_t token_verify(const token_policy *p, const char *tok, size_t len,
                  int64_t now, token_claims *out)
{
    json_t *header = NULL, *claims = NULL;
    rc_t rc = RC_UNAUTHORIZED;

    memset(out, 0, sizeof *out);
    if (tok == NULL || len == 0 || len > TOKEN_MAX)
        return RC_UNAUTHORIZED;
    const char *d1 = memchr(tok, '.', len);
    if (d1 == NULL)
        return RC_UNAUTHORIZED;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
        return RC_UNAUTHORIZED;
    size_t hlen = (size_t)(d1 - tok), plen = (size_t)(d2 - d1 - 1);
    size_t slen = len - (size_t)(d2 + 1 - tok);

    /* Header first: the algorithm is pinned before any key is used. */
    header = decode_object(tok, hlen);
    if (header == NULL)
        goto out;
    json_t *alg = json_object_get(header, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0 ||
        json_object_get(header, "crit") != NULL)
        goto out;

    unsigned char sig[B64_DECODED_MAX(64)];
    size_t siglen;
    if (slen != B64_ENCODED_LEN(SIG_LEN) ||
        b64url_decode(d2 + 1, slen, sig, &siglen) != RC_OK || siglen != SIG_LEN)
        goto out;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), p->key, (int)p->key_len, (const unsigned char *)tok,
             (size_t)(d2 - tok), mac, &maclen) == NULL || maclen != SIG_LEN)
        goto out;
    if (!token_mac_equal(mac, sig, SIG_LEN))
        goto out;

    claims = decode_object(d1 + 1, plen);
    if (claims == NULL)
        goto out;
    rc = check_claims(p, claims, now, out);
out:
    json_decref(header);
    json_decref(claims);
    if (rc != RC_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

rc_t token_sign_session(const token_policy *p, const char *sub, const char *sid,
                        int64_t iat, int64_t exp, char **out)
{
    jwt_t *jwt = NULL;
    rc_t rc = RC_NOMEM;
    char jti[SESSION_ID_MAX + 1];

    *out = NULL;
    if (session_id_generate(jti) != RC_OK)
        return RC_ERR;
    if (jwt_new(&jwt) != 0)
        return RC_NOMEM;
    if (jwt_add_grant(jwt, "sub", sub) != 0 ||
        jwt_add_grant(jwt, "sid", sid) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)iat) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)exp) != 0 ||
        jwt_add_grant(jwt, "jti", jti) != 0 ||
        (p->issuer != NULL && jwt_add_grant(jwt, "iss", p->issuer) != 0))
        goto out;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, p->key, (int)p->key_len) != 0)
        goto out;
    char *s = jwt_encode_str(jwt);
    if (s == NULL)
        goto out;
    *out = s;
    rc = RC_OK;
out:
    jwt_free(jwt);
    return rc;
}
