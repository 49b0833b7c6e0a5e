/* test_token.c -- token_verify (our strict HS256 verifier), token_sign_session
 * (our signer, checked with libjwt) and token_mac_equal. Hostile tokens are built here with
 * b64url_encode and OpenSSL's HMAC, so each case changes one thing. */
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "b64.h"
#include "token.h"
#include "unit.h"

#define NOW 1700000000LL
#define LEEWAY 30

static const unsigned char KEY[] = "k3y-for-unit-tests-0123456789abcdef";
#define KEY_LEN (sizeof KEY - 1)

static const char HS[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static token_policy policy(void)
{
    token_policy p = { KEY, KEY_LEN, NULL, NULL, LEEWAY, "session:admin", NULL, 0, NULL };
    return p;
}

/* ---- building tokens ---- */

static char *b64(const void *data, size_t len)
{
    char *out = malloc(B64_ENCODED_LEN(len) + 1);
    if (out == NULL)
        abort();
    b64url_encode(data, len, out);
    return out;
}

static void hmac256(const unsigned char *key, size_t keylen, const char *in, size_t len,
                    unsigned char mac[32])
{
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)in, len, mac,
             &maclen) == NULL || maclen != 32)
        abort();
}

/* "hseg.pseg.<HMAC-SHA256 of 'hseg.pseg' under key>", segments taken as given. */
static char *sign_segs_key(const unsigned char *key, size_t keylen, const char *hseg,
                           const char *pseg)
{
    size_t hl = strlen(hseg), pl = strlen(pseg);
    char *t = malloc(hl + pl + 2 + 44 + 1);
    if (t == NULL)
        abort();
    memcpy(t, hseg, hl);
    t[hl] = '.';
    memcpy(t + hl + 1, pseg, pl);
    unsigned char mac[32];
    hmac256(key, keylen, t, hl + 1 + pl, mac);
    t[hl + 1 + pl] = '.';
    b64url_encode(mac, 32, t + hl + 2 + pl);
    return t;
}

static char *sign_segs(const char *hseg, const char *pseg)
{
    return sign_segs_key(KEY, KEY_LEN, hseg, pseg);
}

static char *mk_key(const unsigned char *key, size_t keylen, const char *hdr,
                    const char *payload)
{
    char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload));
    char *t = sign_segs_key(key, keylen, h, p);
    free(h);
    free(p);
    return t;
}

static char *mk(const char *hdr, const char *payload)
{
    return mk_key(KEY, KEY_LEN, hdr, payload);
}

/* Token with header hdr and a printf-formatted payload. */
__attribute__((format(printf, 2, 3)))
static char *mkf(const char *hdr, const char *fmt, ...)
{
    char payload[12000];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(payload, sizeof payload, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof payload)
        abort();
    return mk(hdr, payload);
}

/* Verifies tok (then frees it) under p at now; returns the rc. */
static rc_t vfy(const token_policy *p, char *tok, int64_t now, token_claims *c)
{
    token_claims scratch;
    rc_t rc = token_verify(p, tok, strlen(tok), now, c ? c : &scratch);
    free(tok);
    return rc;
}

static int refused(char *tok)
{
    token_policy p = policy();
    return vfy(&p, tok, NOW, NULL) == RC_UNAUTHORIZED;
}

static int accepted(char *tok)
{
    token_policy p = policy();
    return vfy(&p, tok, NOW, NULL) == RC_OK;
}

static int refused_at(char *tok, int64_t now)
{
    token_policy p = policy();
    return vfy(&p, tok, now, NULL) == RC_UNAUTHORIZED;
}

static int accepted_at(char *tok, int64_t now)
{
    token_policy p = policy();
    return vfy(&p, tok, now, NULL) == RC_OK;
}

static int refused_by(const token_policy *p, char *tok)
{
    return vfy(p, tok, NOW, NULL) == RC_UNAUTHORIZED;
}

static int accepted_by(const token_policy *p, char *tok)
{
    return vfy(p, tok, NOW, NULL) == RC_OK;
}

/* The plain valid claims used as the base of most cases. */
#define GOOD "{\"sub\":\"alice\",\"exp\":%lld}"
#define EXP (NOW + 600)

/* ---- RFC 7515 Appendix A.1 ---- */

static const char A1_TOKEN[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    "."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/* The JWK "k" of the A.1 example (RFC 7515 A.1.1). */
static const char A1_K[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75"
    "aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
static const char A1_HEADER[] = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
static const char A1_PAYLOAD[] =
    "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

static void test_rfc7515_a1(void)
{
    unsigned char key[B64_DECODED_MAX(sizeof A1_K)];
    size_t keylen = 0;
    CHECK_EQ_INT(b64url_decode(A1_K, strlen(A1_K), key, &keylen), RC_OK);
    CHECK_EQ_INT(keylen, 64);
    /* RFC 7515 A.1.1 lists the first key octets: [3, 35, 53, 75, 43, 15, ...] */
    CHECK(key[0] == 3 && key[1] == 35 && key[2] == 53 && key[3] == 75 &&
          key[4] == 43 && key[5] == 15);

    token_policy p = policy();
    p.key = key;
    p.key_len = keylen;
    token_claims c;

    /* The A.1 payload has no "sub": refused even with the right key and a
     * clock before its exp. */
    CHECK_EQ_INT(token_verify(&p, A1_TOKEN, strlen(A1_TOKEN), 1300819000, &c),
                 RC_UNAUTHORIZED);
    CHECK(c.sub_len == 0 && c.sub[0] == '\0' && c.has_sid == 0);

    /* The segments are exactly the RFC's octets. */
    char *h = b64(A1_HEADER, strlen(A1_HEADER));
    char *pl = b64(A1_PAYLOAD, strlen(A1_PAYLOAD));
    const char *d1 = strchr(A1_TOKEN, '.'), *d2 = strrchr(A1_TOKEN, '.');
    CHECK(strlen(h) == (size_t)(d1 - A1_TOKEN) && memcmp(h, A1_TOKEN, strlen(h)) == 0);
    CHECK(strlen(pl) == (size_t)(d2 - d1 - 1) && memcmp(pl, d1 + 1, strlen(pl)) == 0);
    free(h);
    free(pl);

    /* Known answer: HMAC-SHA256(key, signing input) == the A.1 signature. */
    unsigned char want[B64_DECODED_MAX(64)];
    size_t wantlen = 0;
    CHECK_EQ_INT(b64url_decode(d2 + 1, strlen(d2 + 1), want, &wantlen), RC_OK);
    CHECK_EQ_INT(wantlen, 32);
    unsigned char mac[32];
    hmac256(key, keylen, A1_TOKEN, (size_t)(d2 - A1_TOKEN), mac);
    CHECK(memcmp(mac, want, 32) == 0);
    /* RFC 7515 A.1.1 lists the signature octets: [116, 24, 223, 180, ...] */
    CHECK(want[0] == 116 && want[1] == 24 && want[2] == 223 && want[3] == 180 &&
          want[31] == 121);
    /* The same signing input under another key gives another MAC. */
    unsigned char other[32];
    hmac256(KEY, KEY_LEN, A1_TOKEN, (size_t)(d2 - A1_TOKEN), other);
    CHECK(memcmp(other, want, 32) != 0);

    /* The RFC's header and key, a payload with "sub": accepted before exp. */
    static const char with_sub[] =
        "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n"
        " \"http://example.com/is_root\":true,\r\n \"sub\":\"joe\"}";
    char *t = mk_key(key, keylen, A1_HEADER, with_sub);
    CHECK(strncmp(t, "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.", 41) == 0);
    CHECK_EQ_INT(token_verify(&p, t, strlen(t), 1300819000, &c), RC_OK);
    CHECK_STR_EQ(c.sub, "joe");
    CHECK_EQ_INT(c.sub_len, 3);
    CHECK_EQ_INT(c.exp, 1300819380);
    CHECK_EQ_INT(c.has_sid, 0);
    CHECK_EQ_INT(c.is_admin, 0);
    /* ... with issuer "joe" required, still accepted; "jane" refused */
    p.issuer = "joe";
    CHECK_EQ_INT(token_verify(&p, t, strlen(t), 1300819000, &c), RC_OK);
    p.issuer = "jane";
    CHECK_EQ_INT(token_verify(&p, t, strlen(t), 1300819000, &c), RC_UNAUTHORIZED);
    p.issuer = NULL;
    /* ... after exp + leeway refused; exactly at exp + leeway accepted */
    CHECK_EQ_INT(token_verify(&p, t, strlen(t), 1300819380 + LEEWAY + 1, &c),
                 RC_UNAUTHORIZED);
    CHECK_EQ_INT(token_verify(&p, t, strlen(t), 1300819380 + LEEWAY, &c), RC_OK);
    /* ... under our test key instead of the RFC's: refused */
    token_policy q = policy();
    CHECK_EQ_INT(token_verify(&q, t, strlen(t), 1300819000, &c), RC_UNAUTHORIZED);
    free(t);
}

/* ---- algorithm pinning ---- */

static char *mk_alg_sha(const EVP_MD *md, const char *hdr, const char *payload)
{
    char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload));
    size_t hl = strlen(h), pl = strlen(p);
    char *t = malloc(hl + pl + 2 + 90);
    if (t == NULL)
        abort();
    sprintf(t, "%s.%s", h, p);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(md, KEY, (int)KEY_LEN, (unsigned char *)t, hl + pl + 1, mac, &maclen) == NULL)
        abort();
    t[hl + pl + 1] = '.';
    b64url_encode(mac, maclen, t + hl + pl + 2);
    free(h);
    free(p);
    return t;
}

static char *mk_unsigned(const char *hdr, const char *payload)
{
    char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload));
    char *t = malloc(strlen(h) + strlen(p) + 3);
    if (t == NULL)
        abort();
    sprintf(t, "%s.%s.", h, p);
    free(h);
    free(p);
    return t;
}

static void test_alg(void)
{
    char good[128];
    snprintf(good, sizeof good, GOOD, EXP);

    CHECK(accepted(mk(HS, good)));
    CHECK(accepted(mk("{\"alg\":\"HS256\"}", good)));

    static const char *const nones[] = { "none", "None", "NONE", "nOnE" };
    for (size_t i = 0; i < 4; i++) {
        char hdr[64];
        snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", nones[i]);
        CHECK(refused(mk_unsigned(hdr, good)));  /* empty signature */
        CHECK(refused(mk(hdr, good)));           /* a valid HS256 MAC */
    }

    /* Other algorithms: with their own MAC, and with a valid HS256 MAC. */
    CHECK(refused(mk_alg_sha(EVP_sha384(), "{\"alg\":\"HS384\"}", good)));
    CHECK(refused(mk("{\"alg\":\"HS384\"}", good)));
    CHECK(refused(mk_alg_sha(EVP_sha512(), "{\"alg\":\"HS512\"}", good)));
    CHECK(refused(mk("{\"alg\":\"HS512\"}", good)));
    CHECK(refused(mk("{\"alg\":\"RS256\"}", good)));  /* key confusion */
    CHECK(refused(mk("{\"alg\":\"hs256\"}", good)));
    CHECK(refused(mk("{\"alg\":\"HS256 \"}", good)));
    CHECK(refused(mk("{\"typ\":\"JWT\"}", good)));    /* missing alg */
    CHECK(refused(mk("{}", good)));
    CHECK(refused(mk("{\"alg\":256}", good)));        /* not a string */
    CHECK(refused(mk("{\"alg\":[\"HS256\"]}", good)));
    CHECK(refused(mk("{\"alg\":null}", good)));
    CHECK(refused(mk("{\"alg\":true}", good)));

    /* Headers of the very length of the usual HS256 header, which the
     * verifier knows by its bytes without parsing: another algorithm, or a
     * crit, with a valid HS256 MAC, is still refused. */
    static const char *const same_len[] = {
        "{\"alg\":\"HS384\",\"typ\":\"JWT\"}", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
        "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
        "{\"alg\":\"HS256\",\"crit\":[12]}",
    };
    for (size_t i = 0; i < sizeof same_len / sizeof same_len[0]; i++) {
        char *h = b64(same_len[i], strlen(same_len[i]));
        CHECK_EQ_INT(strlen(h), 36); /* as "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" */
        free(h);
        if (i < 3 || i == 4)
            CHECK(refused(mk(same_len[i], good)));
        else
            CHECK(accepted(mk(same_len[i], good))); /* typ is not checked */
    }
    CHECK(accepted(mk("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", good)));
}

/* ---- signature ---- */

static void test_signature(void)
{
    char good[128];
    snprintf(good, sizeof good, GOOD, EXP);

    /* wrong key */
    static const unsigned char other[] = "another-key-another-key-another-key!";
    CHECK(refused(mk_key(other, sizeof other - 1, HS, good)));
    /* a key that differs from the right one in its last byte */
    unsigned char near[KEY_LEN];
    memcpy(near, KEY, KEY_LEN);
    near[KEY_LEN - 1] ^= 1;
    CHECK(refused(mk_key(near, KEY_LEN, HS, good)));

    /* signature stripped: two segments, or an empty third one */
    char *t = mk(HS, good);
    char *d2 = strrchr(t, '.');
    *d2 = '\0';
    CHECK(refused(strdup(t)));            /* "h.p" */
    d2[0] = '.';
    d2[1] = '\0';
    CHECK(refused(strdup(t)));            /* "h.p." */
    free(t);

    /* one character of the signature altered (first char, stays canonical) */
    t = mk(HS, good);
    d2 = strrchr(t, '.');
    d2[1] = d2[1] == 'A' ? 'B' : 'A';
    CHECK(refused(t));
    /* a character in the middle */
    t = mk(HS, good);
    d2 = strrchr(t, '.');
    d2[20] = d2[20] == 'x' ? 'y' : 'x';
    CHECK(refused(t));

    /* signature truncated / extended by one byte (valid base64url) */
    t = mk(HS, good);
    d2 = strrchr(t, '.');
    {
        unsigned char sig[48];
        size_t sl;
        CHECK_EQ_INT(b64url_decode(d2 + 1, strlen(d2 + 1), sig, &sl), RC_OK);
        char *h = strndup(t, (size_t)(d2 - t));
        char enc31[64], enc33[64];
        b64url_encode(sig, 31, enc31);
        sig[32] = 0;
        b64url_encode(sig, 33, enc33);
        char *t31 = malloc(strlen(h) + 70), *t33 = malloc(strlen(h) + 70);
        sprintf(t31, "%s.%s", h, enc31);
        sprintf(t33, "%s.%s", h, enc33);
        CHECK(refused(t31));
        CHECK(refused(t33));
        free(h);
    }
    free(t);

    /* payload altered after signing: other claims, same signature */
    t = mk(HS, good);
    {
        char evil[128];
        snprintf(evil, sizeof evil, "{\"sub\":\"mallory\",\"exp\":%lld}", EXP);
        char *h = b64(HS, strlen(HS)), *p = b64(evil, strlen(evil));
        d2 = strrchr(t, '.');
        char *forged = malloc(strlen(h) + strlen(p) + strlen(d2) + 2);
        sprintf(forged, "%s.%s%s", h, p, d2);
        CHECK(refused(forged));
        free(h);
        free(p);
    }
    free(t);
    /* header altered after signing */
    t = mk(HS, good);
    {
        char *h = b64("{\"alg\":\"HS256\"}", 15);
        char *d1 = strchr(t, '.');
        char *forged = malloc(strlen(h) + strlen(d1) + 1);
        sprintf(forged, "%s%s", h, d1);
        CHECK(refused(forged));
        free(h);
    }
    free(t);
}

/* ---- time ---- */

static void test_time(void)
{
    /* expired: now > exp + leeway refused; exactly exp + leeway accepted */
    CHECK(refused(mkf(HS, GOOD, NOW - 100)));
    CHECK(refused(mkf(HS, GOOD, NOW - LEEWAY - 1)));
    CHECK(accepted(mkf(HS, GOOD, NOW - LEEWAY)));
    CHECK(accepted(mkf(HS, GOOD, NOW)));
    CHECK(refused_at(mkf(HS, GOOD, NOW), NOW + LEEWAY + 1));
    CHECK(accepted_at(mkf(HS, GOOD, NOW), NOW + LEEWAY));

    /* nbf / iat in the future: beyond the leeway refused, within accepted */
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", EXP, NOW + LEEWAY + 1)));
    CHECK(accepted(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", EXP, NOW + LEEWAY)));
    CHECK(accepted(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", EXP, NOW - 10)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iat\":%lld}", EXP, NOW + LEEWAY + 1)));
    CHECK(accepted(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iat\":%lld}", EXP, NOW + LEEWAY)));
    CHECK(accepted(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iat\":%lld}", EXP, NOW - 10)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":\"%lld\"}", EXP, NOW)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iat\":-1}", EXP)));

    /* exp missing, not a number, negative, absurd */
    CHECK(refused(mk(HS, "{\"sub\":\"alice\"}")));
    CHECK(refused(mkf(HS, "{\"sub\":\"alice\",\"exp\":\"%lld\"}", EXP)));
    CHECK(refused(mk(HS, "{\"sub\":\"alice\",\"exp\":-1}")));
    CHECK(refused_at(mk(HS, "{\"sub\":\"alice\",\"exp\":-1}"), 0));
    CHECK(refused(mk(HS, "{\"sub\":\"alice\",\"exp\":null}")));
    CHECK(refused(mk(HS, "{\"sub\":\"alice\",\"exp\":true}")));
    CHECK(refused(mk(HS, "{\"sub\":\"alice\",\"exp\":1e300}")));
    CHECK(refused(mk(HS, "{\"sub\":\"alice\",\"exp\":[1]}")));
    /* the upper bound of a NumericDate: 9999-12-31T23:59:59Z */
    CHECK(accepted(mk(HS, "{\"sub\":\"alice\",\"exp\":253402300799}")));
    CHECK(refused(mk(HS, "{\"sub\":\"alice\",\"exp\":253402300800}")));
    CHECK(refused(mk(HS, "{\"sub\":\"alice\",\"exp\":9223372036854775807}")));
    CHECK(refused(mkf(HS, "{\"sub\":\"alice\",\"exp\":%lld,\"nbf\":253402300800}", EXP)));
    /* a real-number exp in range is a NumericDate */
    CHECK(accepted(mkf(HS, "{\"sub\":\"alice\",\"exp\":%lld.5}", EXP)));

    token_claims c;
    token_policy p = policy();
    CHECK_EQ_INT(vfy(&p, mkf(HS, GOOD, EXP), NOW, &c), RC_OK);
    CHECK_EQ_INT(c.exp, EXP);
}

/* ---- sub ---- */

static void test_sub(void)
{
    char big[300];
    token_claims c;
    token_policy p = policy();

    CHECK(refused(mkf(HS, "{\"exp\":%lld}", EXP)));                    /* missing */
    CHECK(refused(mkf(HS, "{\"sub\":\"\",\"exp\":%lld}", EXP)));       /* empty */
    CHECK(refused(mkf(HS, "{\"sub\":42,\"exp\":%lld}", EXP)));         /* number */
    CHECK(refused(mkf(HS, "{\"sub\":null,\"exp\":%lld}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":[\"a\"],\"exp\":%lld}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":{},\"exp\":%lld}", EXP)));

    memset(big, 'u', 257);
    big[257] = '\0';
    CHECK(refused(mkf(HS, "{\"sub\":\"%s\",\"exp\":%lld}", big, EXP)));
    big[256] = '\0';
    CHECK_EQ_INT(vfy(&p, mkf(HS, "{\"sub\":\"%s\",\"exp\":%lld}", big, EXP), NOW, &c), RC_OK);
    CHECK_EQ_INT(c.sub_len, 256);
    CHECK_STR_EQ(c.sub, big);
    /* 256 bytes made of 2-byte characters is fine; 257 bytes is not */
    char multi[600] = "";
    for (int i = 0; i < 128; i++)
        strcat(multi, "\xc3\xa9");
    CHECK(accepted(mkf(HS, "{\"sub\":\"%s\",\"exp\":%lld}", multi, EXP)));
    strcat(multi, "x");
    CHECK(refused(mkf(HS, "{\"sub\":\"%s\",\"exp\":%lld}", multi, EXP)));

    /* control characters */
    CHECK(refused(mkf(HS, "{\"sub\":\"a\\u0001b\",\"exp\":%lld}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\\u0085b\",\"exp\":%lld}", EXP)));  /* C1 */
    CHECK(refused(mkf(HS, "{\"sub\":\"a\xc2\x85" "b\",\"exp\":%lld}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\\u0000b\",\"exp\":%lld}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\\u007fb\",\"exp\":%lld}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\\nb\",\"exp\":%lld}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\\u009fb\",\"exp\":%lld}", EXP)));
    CHECK(accepted(mkf(HS, "{\"sub\":\"a\\u00a0b\",\"exp\":%lld}", EXP)));
    CHECK(accepted(mkf(HS, "{\"sub\":\"\\u00e9l\\u00e8ve \\ud83d\\ude00\",\"exp\":%lld}", EXP)));

    CHECK_EQ_INT(vfy(&p, mkf(HS, "{\"sub\":\"bob@example.com\",\"exp\":%lld}", EXP), NOW, &c),
                 RC_OK);
    CHECK_STR_EQ(c.sub, "bob@example.com");
    CHECK_EQ_INT(c.sub_len, 15);
}

/* ---- structure and encoding ---- */

/* Appends '=' padding to a segment up to a multiple of 4 (malloc'd). */
static char *pad(const char *seg)
{
    size_t l = strlen(seg);
    char *o = malloc(l + 4);
    memcpy(o, seg, l);
    while (l % 4)
        o[l++] = '=';
    o[l] = '\0';
    return o;
}

static const char ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Sets one of the unused trailing bits of a segment whose length is not a
 * multiple of 4 (the decoded bytes stay the same). */
static void set_trailing_bit(char *seg)
{
    size_t l = strlen(seg);
    const char *pos = strchr(ALPHA, seg[l - 1]);
    seg[l - 1] = ALPHA[(pos - ALPHA) + 1];
}

/* The claims of a valid token into good, and its header and claims
 * segments (the caller frees both). */
static void good_parts(char good[128], char **h, char **p)
{
    snprintf(good, 128, GOOD, EXP);
    *h = b64(HS, strlen(HS));
    *p = b64(good, strlen(good));
}

/* segments: duplicate keys, padding, too many or too few */
static void test_structure_segments(void)
{
    char good[128], *h, *p;
    good_parts(good, &h, &p);
    /* Sanity: the parts as given verify. */
    CHECK(accepted(sign_segs(h, p)));

    /* duplicate keys */
    CHECK(refused(mk("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", good)));
    CHECK(refused(mk("{\"alg\":\"none\",\"alg\":\"HS256\"}", good)));
    CHECK(refused(mkf(HS, "{\"sub\":\"alice\",\"sub\":\"alice\",\"exp\":%lld}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"alice\",\"exp\":%lld,\"exp\":%lld}", EXP, EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"mallory\",\"sub\":\"alice\",\"exp\":%lld}", EXP)));

    /* '=' padding on each segment (re-signed so the MAC matches) */
    {
        /* header/payload lengths chosen so that padding is needed */
        const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\" }";   /* 28 bytes */
        char pl[128];
        snprintf(pl, sizeof pl, "{\"sub\":\"al\",\"exp\":%lld}", EXP); /* 29 bytes */
        char *hh = b64(hdr, strlen(hdr)), *pp = b64(pl, strlen(pl));
        CHECK(strlen(hh) % 4 != 0 && strlen(pp) % 4 != 0);
        CHECK(accepted(sign_segs(hh, pp)));
        char *hp = pad(hh), *ppd = pad(pp);
        CHECK(refused(sign_segs(hp, pp)));
        CHECK(refused(sign_segs(hh, ppd)));
        /* the 43-char signature with one '=' */
        char *t = sign_segs(hh, pp);
        char *sp = malloc(strlen(t) + 2);
        sprintf(sp, "%s=", t);
        CHECK(refused(sp));
        free(t);
        /* padding with '=' on a segment that needs none */
        char *t2 = malloc(strlen(h) + 2);
        sprintf(t2, "%s=", h);
        CHECK(refused(sign_segs(t2, p)));
        free(t2);
        free(hh);
        free(pp);
        free(hp);
        free(ppd);
    }

    /* extra segments */
    {
        char *t = sign_segs(h, p);
        char *t4 = malloc(strlen(t) + 50);
        sprintf(t4, "%s.%s", t, "AAAA");
        CHECK(refused(t4));
        t4 = malloc(strlen(t) + 2);
        sprintf(t4, "%s.", t);
        CHECK(refused(t4));
        t4 = malloc(strlen(t) + 2);
        sprintf(t4, ".%s", t);
        CHECK(refused(t4));
        char *sig = strrchr(t, '.') + 1;
        t4 = malloc(2 * strlen(t) + 2);
        sprintf(t4, "%s.%s", t, sig);  /* h.p.s.s */
        CHECK(refused(t4));
        free(t);
        /* no dots at all */
        CHECK(refused(strdup(h)));
        /* h..s (empty payload) */
        CHECK(refused(sign_segs(h, "")));
        /* .p.s (empty header) */
        CHECK(refused(sign_segs("", p)));
    }

    free(h);
    free(p);
}

/* header and claims: JSON objects, UTF-8, depth, crit */
static void test_structure_json(void)
{
    char good[128], *h, *p;
    good_parts(good, &h, &p);
    /* header / claims not JSON objects */
    CHECK(refused(mk("[\"HS256\"]", good)));
    CHECK(refused(mk("[{\"alg\":\"HS256\"}]", good)));
    CHECK(refused(mk("\"HS256\"", good)));
    CHECK(refused(mk("{\"alg\":\"HS256\"", good)));
    CHECK(accepted(mk("{\"alg\":\"HS256\"} ", good)));  /* trailing JSON whitespace */
    CHECK(refused(mk("{\"alg\":\"HS256\"}{}", good)));
    CHECK(refused(mk(HS, "not json")));
    CHECK(refused(mk(HS, "")));
    CHECK(refused(mkf(HS, "[{\"sub\":\"alice\",\"exp\":%lld}]", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"alice\",\"exp\":%lld} x", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"alice\",\"exp\":%lld}{}", EXP)));
    CHECK(refused(mk(HS, "null")));
    CHECK(refused(mk(HS, "42")));
    /* invalid UTF-8 inside the claims */
    CHECK(refused(mkf(HS, "{\"sub\":\"a\xff\",\"exp\":%lld}", EXP)));

    /* nesting: depth 8 accepted, 9 refused */
    CHECK(accepted(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"x\":[[[[[[[1]]]]]]]}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"x\":[[[[[[[[1]]]]]]]]}", EXP)));

    /* crit */
    CHECK(refused(mk("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", good)));
    CHECK(refused(mk("{\"alg\":\"HS256\",\"crit\":[]}", good)));
    CHECK(refused(mk("{\"alg\":\"HS256\",\"crit\":null}", good)));
    /* unknown header parameters are fine */
    CHECK(accepted(mk("{\"alg\":\"HS256\",\"kid\":\"k1\"}", good)));

    free(h);
    free(p);
}

/* base64url: the alphabet, canonical trailing bits */
static void test_structure_base64(void)
{
    char good[128], *h, *p;
    good_parts(good, &h, &p);
    /* non-base64url characters, with a MAC valid over the bytes sent */
    {
        char *hh = strdup(h);
        hh[3] = '+';
        CHECK(refused(sign_segs(hh, p)));
        hh[3] = '/';
        CHECK(refused(sign_segs(hh, p)));
        hh[3] = '.';
        free(hh);
        char *pp = strdup(p);
        pp[5] = '+';
        CHECK(refused(sign_segs(h, pp)));
        pp[5] = '/';
        CHECK(refused(sign_segs(h, pp)));
        pp[5] = ' ';
        CHECK(refused(sign_segs(h, pp)));
        free(pp);
        /* signature in the standard alphabet: find one with '-' or '_' */
        int found = 0;
        for (int i = 0; i < 200 && !found; i++) {
            char *t = mkf(HS, "{\"sub\":\"u%d\",\"exp\":%lld}", i, EXP);
            char *sig = strrchr(t, '.') + 1;
            if (strpbrk(sig, "-_") != NULL) {
                found = 1;
                CHECK(accepted(strdup(t)));
                for (char *q = sig; *q; q++)
                    *q = *q == '-' ? '+' : *q == '_' ? '/' : *q;
                CHECK(refused(t));
            } else {
                free(t);
            }
        }
        CHECK(found);
    }

    /* non-canonical base64url: non-zero trailing bits */
    {
        char *t = sign_segs(h, p);
        char *sig = strrchr(t, '.') + 1;
        CHECK_EQ_INT(strlen(sig) % 4, 3);
        char *nc = strdup(t);
        set_trailing_bit(strrchr(nc, '.') + 1);
        /* the decoded MAC is the same bytes... */
        unsigned char a[48], b[48];
        size_t al = 0, bl = 0;
        CHECK_EQ_INT(b64url_decode(sig, strlen(sig), a, &al), RC_OK);
        CHECK_EQ_INT(b64url_decode(strrchr(nc, '.') + 1, 43, b, &bl), RC_INVALID);
        (void)b;
        CHECK(refused(nc));  /* ...but the encoding is not canonical */
        free(t);

        const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\" }";
        char pl[128];
        snprintf(pl, sizeof pl, "{\"sub\":\"al\",\"exp\":%lld}", EXP);
        char *hh = b64(hdr, strlen(hdr)), *pp = b64(pl, strlen(pl));
        set_trailing_bit(hh);
        CHECK(refused(sign_segs(hh, pp)));
        free(hh);
        hh = b64(hdr, strlen(hdr));
        set_trailing_bit(pp);
        CHECK(refused(sign_segs(hh, pp)));
        free(hh);
        free(pp);
        /* a segment of length 1 mod 4 */
        char *h5 = malloc(strlen(h) + 2);
        sprintf(h5, "%sA", h);
        CHECK(refused(sign_segs(h5, p)));
        free(h5);
    }

    free(h);
    free(p);
}

/* length: empty, NULL, over TOKEN_MAX */
static void test_structure_length(void)
{
    char good[128], *h, *p;
    good_parts(good, &h, &p);
    /* length: empty, NULL, over TOKEN_MAX */
    {
        token_policy pol = policy();
        token_claims c;
        CHECK_EQ_INT(token_verify(&pol, "", 0, NOW, &c), RC_UNAUTHORIZED);
        CHECK_EQ_INT(token_verify(&pol, NULL, 0, NOW, &c), RC_UNAUTHORIZED);
        CHECK_EQ_INT(token_verify(&pol, "..", 2, NOW, &c), RC_UNAUTHORIZED);
        CHECK_EQ_INT(token_verify(&pol, ".", 1, NOW, &c), RC_UNAUTHORIZED);

        char filler[8000];
        memset(filler, 'f', 5800);
        filler[5800] = '\0';
        char *t = mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"x\":\"%s\"}", EXP, filler);
        CHECK(strlen(t) > 7800 && strlen(t) <= TOKEN_MAX);
        CHECK(accepted(t));
        memset(filler, 'f', 6300);
        filler[6300] = '\0';
        t = mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"x\":\"%s\"}", EXP, filler);
        CHECK(strlen(t) > TOKEN_MAX);
        CHECK(refused(t));
        /* a valid token passed with len one past TOKEN_MAX */
        t = mkf(HS, GOOD, EXP);
        char *big = calloc(1, TOKEN_MAX + 2);
        memcpy(big, t, strlen(t));
        CHECK_EQ_INT(token_verify(&pol, big, TOKEN_MAX + 1, NOW, &c), RC_UNAUTHORIZED);
        /* and the same token with its exact length verifies, even when the
         * buffer goes on (len is honoured, no NUL needed) */
        big[strlen(t)] = 'Z';
        CHECK_EQ_INT(token_verify(&pol, big, strlen(t), NOW, &c), RC_OK);
        /* trailing garbage counted in len */
        CHECK_EQ_INT(token_verify(&pol, big, strlen(t) + 1, NOW, &c), RC_UNAUTHORIZED);
        free(big);
        free(t);
    }
    free(h);
    free(p);
}

/* ---- iss / aud ---- */

static void test_iss_aud(void)
{
    token_policy p = policy();
    p.issuer = "https://issuer.example";

    CHECK(accepted_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iss\":\"https://issuer.example\"}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iss\":\"https://evil.example\"}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iss\":\"https://issuer.example/\"}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld}", EXP)));   /* missing */
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iss\":7}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iss\":[\"https://issuer.example\"]}", EXP)));
    /* not checked when the policy has no issuer */
    CHECK(accepted(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iss\":\"whoever\"}", EXP)));

    p = policy();
    p.audience = "sessions";
    CHECK(accepted_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":\"sessions\"}", EXP)));
    CHECK(accepted_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":[\"other\",\"sessions\"]}", EXP)));
    CHECK(accepted_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":[\"sessions\"]}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":[\"other\",\"more\"]}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":[]}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":\"other\"}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":\"sessions2\"}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld}", EXP)));   /* missing */
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":5}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":[\"sessions\",5]}", EXP)));
    CHECK(accepted(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":\"whatever\"}", EXP)));

    /* both at once */
    p.issuer = "iss1";
    CHECK(accepted_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iss\":\"iss1\",\"aud\":\"sessions\"}", EXP)));
    CHECK(refused_by(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"iss\":\"iss2\",\"aud\":\"sessions\"}", EXP)));
}

/* ---- scope / sid ---- */

static int admin_of(const char *scope_json)
{
    token_policy p = policy();
    token_claims c;
    rc_t rc = vfy(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"scope\":%s}", EXP, scope_json),
                  NOW, &c);
    return rc == RC_OK ? c.is_admin : -1;
}

static void test_scope_sid(void)
{
    CHECK_EQ_INT(admin_of("\"session:admin\""), 1);
    CHECK_EQ_INT(admin_of("\"openid session:admin profile\""), 1);
    CHECK_EQ_INT(admin_of("\"openid  session:admin\""), 1);
    CHECK_EQ_INT(admin_of("\"session:administrator\""), 0);
    CHECK_EQ_INT(admin_of("\"xsession:admin\""), 0);
    CHECK_EQ_INT(admin_of("\"openid profile\""), 0);
    CHECK_EQ_INT(admin_of("\"\""), 0);
    CHECK_EQ_INT(admin_of("42"), -1);                        /* non-string refused */
    CHECK_EQ_INT(admin_of("[\"session:admin\"]"), -1);
    CHECK_EQ_INT(admin_of("null"), -1);
    {
        token_policy p = policy();
        token_claims c;
        CHECK_EQ_INT(vfy(&p, mkf(HS, GOOD, EXP), NOW, &c), RC_OK);
        CHECK_EQ_INT(c.is_admin, 0);  /* no scope */
        p.admin_scope = NULL;
        CHECK_EQ_INT(vfy(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"scope\":\"session:admin\"}", EXP),
                         NOW, &c), RC_OK);
        CHECK_EQ_INT(c.is_admin, 0);  /* no admin scope configured */
    }

    token_policy p = policy();
    token_claims c;
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"sid\":\"short\"}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"sid\":\"aaaaaaaaaaaaaaaaaaaaa\"}", EXP))); /* 21 */
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"sid\":\"aaaaaaaaaaaaaaaaaaaaa!\"}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"sid\":\"\"}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"sid\":12345}", EXP)));
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"sid\":null}", EXP)));
    char sid65[70];
    memset(sid65, 'b', 65);
    sid65[65] = '\0';
    CHECK(refused(mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"sid\":\"%s\"}", EXP, sid65)));
    sid65[64] = '\0';
    CHECK_EQ_INT(vfy(&p, mkf(HS, "{\"sub\":\"a\",\"exp\":%lld,\"sid\":\"%s\"}", EXP, sid65), NOW, &c),
                 RC_OK);
    CHECK_EQ_INT(c.has_sid, 1);
    CHECK_STR_EQ(c.sid, sid65);

    const char *sid = "Ab0_-Ab0_-Ab0_-Ab0_-Ab";
    CHECK_EQ_INT(vfy(&p, mkf(HS, "{\"sub\":\"carol\",\"exp\":%lld,\"sid\":\"%s\"}", EXP, sid), NOW, &c),
                 RC_OK);
    CHECK_EQ_INT(c.has_sid, 1);
    CHECK_STR_EQ(c.sid, sid);
    CHECK_STR_EQ(c.sub, "carol");
    CHECK_EQ_INT(vfy(&p, mkf(HS, GOOD, EXP), NOW, &c), RC_OK);
    CHECK_EQ_INT(c.has_sid, 0);

    /* on refusal the output is cleared */
    memset(&c, 0x5a, sizeof c);
    CHECK_EQ_INT(vfy(&p, mkf(HS, "{\"sub\":\"carol\",\"exp\":%lld,\"sid\":\"bad\"}", EXP), NOW, &c),
                 RC_UNAUTHORIZED);
    CHECK(c.has_sid == 0 && c.sub[0] == '\0' && c.sub_len == 0 && c.is_admin == 0);
}

/* ---- round trip with token_sign_session ---- */

static json_t *payload_of(const char *tok)
{
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    if (d1 == NULL || d2 == NULL || d1 == d2)
        return NULL;
    size_t n = (size_t)(d2 - d1 - 1);
    unsigned char *raw = malloc(B64_DECODED_MAX(n) + 1);
    size_t rl = 0;
    json_t *j = NULL;
    if (b64url_decode(d1 + 1, n, raw, &rl) == RC_OK)
        j = json_loadb((const char *)raw, rl, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    return j;
}

static void test_round_trip(void)
{
    token_policy p = policy();
    token_claims c;
    char sid[SESSION_ID_MAX + 1];
    char *tok = NULL;

    CHECK_EQ_INT(session_id_generate(sid), RC_OK);
    CHECK_EQ_INT(token_sign_session(&p, "alice", sid, NOW, NOW + 3600, &tok), RC_OK);
    CHECK(tok != NULL);
    if (tok == NULL)
        return;
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &c), RC_OK);
    CHECK_EQ_INT(c.has_sid, 1);
    CHECK_STR_EQ(c.sid, sid);
    CHECK_STR_EQ(c.sub, "alice");
    CHECK_EQ_INT(c.sub_len, 5);
    CHECK_EQ_INT(c.exp, NOW + 3600);
    CHECK_EQ_INT(c.is_admin, 0);
    /* expiry of the issued token is enforced */
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW + 3600 + LEEWAY + 1, &c),
                 RC_UNAUTHORIZED);
    /* another key refuses it */
    token_policy q = p;
    q.key = (const unsigned char *)"a-different-32-byte-secret-key!!";
    q.key_len = 32;
    CHECK_EQ_INT(token_verify(&q, tok, strlen(tok), NOW, &c), RC_UNAUTHORIZED);
    json_t *j = payload_of(tok);
    CHECK(j != NULL);
    CHECK(json_object_get(j, "iss") == NULL);
    CHECK(json_is_string(json_object_get(j, "jti")));
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "iat")), NOW);
    json_decref(j);
    /* with an issuer policy, the token without iss is refused */
    q = p;
    q.issuer = "https://sessions.example";
    CHECK_EQ_INT(token_verify(&q, tok, strlen(tok), NOW, &c), RC_UNAUTHORIZED);
    free(tok);
    tok = NULL;

    /* with an issuer: carried and checked */
    p.issuer = "https://sessions.example";
    CHECK_EQ_INT(token_sign_session(&p, "bob \xc3\xa9", sid, NOW, NOW + 60, &tok), RC_OK);
    if (tok == NULL)
        return;
    j = payload_of(tok);
    CHECK(j != NULL);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "iss")), "https://sessions.example");
    CHECK_STR_EQ(json_string_value(json_object_get(j, "sid")), sid);
    json_decref(j);
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &c), RC_OK);
    CHECK_STR_EQ(c.sub, "bob \xc3\xa9");
    CHECK_STR_EQ(c.sid, sid);
    CHECK_EQ_INT(c.exp, NOW + 60);
    q = p;
    q.issuer = "https://other.example";
    CHECK_EQ_INT(token_verify(&q, tok, strlen(tok), NOW, &c), RC_UNAUTHORIZED);
    free(tok);

    /* two tokens for the same session differ (jti) */
    char *t1 = NULL, *t2 = NULL;
    CHECK_EQ_INT(token_sign_session(&p, "alice", sid, NOW, NOW + 60, &t1), RC_OK);
    CHECK_EQ_INT(token_sign_session(&p, "alice", sid, NOW, NOW + 60, &t2), RC_OK);
    CHECK(t1 && t2 && strcmp(t1, t2) != 0);
    free(t1);
    free(t2);

    /* with an audience: carried, so that the service's own check passes */
    p.audience = "sessions-api";
    tok = NULL;
    CHECK_EQ_INT(token_sign_session(&p, "alice", sid, NOW, NOW + 60, &tok), RC_OK);
    if (tok == NULL)
        return;
    j = payload_of(tok);
    CHECK(j != NULL);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "aud")), "sessions-api");
    json_decref(j);
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &c), RC_OK);
    CHECK_STR_EQ(c.sid, sid);
    q = p;
    q.audience = "another-api";
    CHECK_EQ_INT(token_verify(&q, tok, strlen(tok), NOW, &c), RC_UNAUTHORIZED);
    free(tok);
}

/* Only a token verified with the service's own secret is a session token:
 * an identity provider's token carries an OIDC "sid" of its own, which is
 * neither read nor checked (contract v2, "Tightened rules"). */
static void test_sid_only_with_own_key(void)
{
    token_policy p = policy();
    token_claims c;
    char claims[256];
    const char *sid = "Ab0_-Ab0_-Ab0_-Ab0_-Ab";
    int n = snprintf(claims, sizeof claims, "{\"sub\":\"carol\",\"exp\":%lld,\"sid\":\"%s\"}",
                     (long long)EXP, sid);
    CHECK_EQ_INT(token_claims_parse(&p, claims, (size_t)n, NOW, 1, &c), RC_OK);
    CHECK_EQ_INT(c.has_sid, 1);
    CHECK_STR_EQ(c.sid, sid);
    CHECK_EQ_INT(token_claims_parse(&p, claims, (size_t)n, NOW, 0, &c), RC_OK);
    CHECK_EQ_INT(c.has_sid, 0);
    CHECK_STR_EQ(c.sub, "carol");
    /* an OIDC sid is not a session id: refused from our own key, ignored
     * from a provider's */
    n = snprintf(claims, sizeof claims,
                 "{\"sub\":\"carol\",\"exp\":%lld,\"sid\":\"08a5019c-17e1-4977-8f42-65a12843ea02.x\"}",
                 (long long)EXP);
    CHECK_EQ_INT(token_claims_parse(&p, claims, (size_t)n, NOW, 1, &c), RC_UNAUTHORIZED);
    CHECK_EQ_INT(token_claims_parse(&p, claims, (size_t)n, NOW, 0, &c), RC_OK);
    CHECK_EQ_INT(c.has_sid, 0);
    /* every other rule still holds without the own key */
    n = snprintf(claims, sizeof claims, "{\"sub\":\"carol\",\"exp\":%lld}", (long long)(NOW - 3600));
    CHECK_EQ_INT(token_claims_parse(&p, claims, (size_t)n, NOW, 0, &c), RC_UNAUTHORIZED);
    CHECK_EQ_INT(token_claims_parse(&p, "{\"sub\":1}", 9, NOW, 0, &c), RC_UNAUTHORIZED);
    CHECK_EQ_INT(token_claims_parse(&p, "[]", 2, NOW, 0, &c), RC_UNAUTHORIZED);
    CHECK_EQ_INT(token_claims_parse(&p, "{\"sub\":\"a\",\"sub\":\"b\"}", 21, NOW, 0, &c),
                 RC_UNAUTHORIZED);
}

/* Every token the signer issues is accepted by libjwt, an independent
 * implementation: signature, header and claims. */
static void test_signer_against_libjwt(void)
{
    static const char *const subs[] = { "alice", "bob \xc3\xa9", "q\"uote\\back", "tab\tx" };
    static const char *const issuers[] = { NULL, "https://sessions.example" };
    token_policy p = policy();
    char sid[SESSION_ID_MAX + 1];
    CHECK_EQ_INT(session_id_generate(sid), RC_OK);
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        for (size_t k = 0; k < 2; k++) {
            p.issuer = issuers[k];
            char *tok = NULL;
            jwt_t *jwt = NULL;
            CHECK_EQ_INT(token_sign_session(&p, subs[i], sid, NOW, NOW + 120, &tok), RC_OK);
            if (tok == NULL)
                continue;
            CHECK(strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0);
            CHECK_EQ_INT(jwt_decode(&jwt, tok, KEY, (int)KEY_LEN), 0);
            if (jwt != NULL) {
                CHECK_EQ_INT(jwt_get_alg(jwt), JWT_ALG_HS256);
                CHECK_STR_EQ(jwt_get_grant(jwt, "sub"), subs[i]);
                CHECK_STR_EQ(jwt_get_grant(jwt, "sid"), sid);
                CHECK_EQ_INT(jwt_get_grant_int(jwt, "iat"), NOW);
                CHECK_EQ_INT(jwt_get_grant_int(jwt, "exp"), NOW + 120);
                CHECK(jwt_get_grant(jwt, "jti") != NULL);
                if (issuers[k])
                    CHECK_STR_EQ(jwt_get_grant(jwt, "iss"), issuers[k]);
                else
                    CHECK(jwt_get_grant(jwt, "iss") == NULL);
                jwt_free(jwt);
                jwt = NULL;
            }
            /* one flipped signature bit: libjwt refuses it too */
            size_t n = strlen(tok);
            tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
            CHECK(jwt_decode(&jwt, tok, KEY, (int)KEY_LEN) != 0);
            jwt_free(jwt);
            free(tok);
        }
    }
}

/* ---- token_mac_equal ---- */

/* The signer's HMAC-SHA256 (token.c's own pads over SHA-256) against
 * OpenSSL's HMAC(), for keys shorter than, equal to and longer than
 * SHA-256's 64-byte block, signing (JWT_SECRET) and verifying (a token of
 * JWT_SECRET_PREVIOUS), on the thread's cache and without one (a key too
 * long for the cache). */
static void test_mac_against_openssl_hmac(void)
{
    static const size_t lens[] = { 1, 31, 32, 63, 64, 65, 100, 4096, 5000 };
    static unsigned char key[5000], other[40];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (unsigned char)(i * 131 + 7);
    memset(other, 'o', sizeof other);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        token_policy p = { .key = key, .key_len = lens[k] };
        for (int64_t exp = 2000000000; exp < 2000000003; exp++) {
            char *tok = NULL;
            CHECK_EQ_INT(token_sign_session(&p, "alice", "macAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                            1700000000, exp, &tok), RC_OK);
            if (tok == NULL)
                continue;
            const char *dot = strrchr(tok, '.');
            unsigned char want[32], sig[64];
            unsigned int wl = 0;
            size_t sl = 0;
            HMAC(EVP_sha256(), key, (int)lens[k], (const unsigned char *)tok,
                 (size_t)(dot - tok), want, &wl);
            CHECK_EQ_INT(b64url_decode(dot + 1, strlen(dot + 1), sig, &sl), RC_OK);
            CHECK(wl == 32 && sl == 32 && memcmp(want, sig, 32) == 0);
            /* the same key as JWT_SECRET_PREVIOUS verifies it */
            token_policy q = { .key = other, .key_len = sizeof other, .previous = key,
                               .previous_len = lens[k] };
            token_claims c;
            CHECK_EQ_INT(token_verify(&q, tok, strlen(tok), 1700000001, &c), RC_OK);
            q.previous_len = lens[k] - 1;
            CHECK_EQ_INT(token_verify(&q, tok, strlen(tok), 1700000001, &c), RC_UNAUTHORIZED);
            free(tok);
        }
    }
}

static void test_mac_equal(void)
{
    unsigned char a[32], b[32];
    for (int i = 0; i < 32; i++)
        a[i] = b[i] = (unsigned char)(i * 7);
    CHECK(token_mac_equal(a, b, 32));
    CHECK(token_mac_equal(a, b, 0));
    b[0] ^= 0x80;
    CHECK(!token_mac_equal(a, b, 32));
    CHECK(token_mac_equal(a + 1, b + 1, 31));
    b[0] = a[0];
    b[31] ^= 1;
    CHECK(!token_mac_equal(a, b, 32));
    CHECK(token_mac_equal(a, b, 31));
    b[31] = a[31];
    b[16] = (unsigned char)~b[16];
    CHECK(!token_mac_equal(a, b, 32));

    /* Behaviour of the verifier: the right MAC passes, a MAC differing in a
     * single bit of its first or last byte (re-encoded canonically) fails. */
    char *t = mkf(HS, GOOD, EXP);
    char *d2 = strrchr(t, '.');
    unsigned char sig[48];
    size_t sl = 0;
    CHECK_EQ_INT(b64url_decode(d2 + 1, strlen(d2 + 1), sig, &sl), RC_OK);
    CHECK_EQ_INT(sl, 32);
    CHECK(accepted(strdup(t)));
    for (int which = 0; which < 3; which++) {
        int idx = which == 0 ? 0 : which == 1 ? 31 : 15;
        unsigned char s2[32];
        memcpy(s2, sig, 32);
        s2[idx] ^= 1;
        char *u = strdup(t);
        b64url_encode(s2, 32, strrchr(u, '.') + 1);
        CHECK(refused(u));
    }
    free(t);
}

/* token_verify_session: a session token as the signer writes it is
 * verified (again from the cache, as such); a caller token of the same key,
 * a token of another header or with claims over the stack's segment, is
 * RC_INVALID, even when token_verify has verified and cached it; a forged
 * or expired one of the signer's form is RC_UNAUTHORIZED. */
static void test_verify_session(void)
{
    token_policy p = policy();
    token_claims c;
    char *s = NULL;
    const char *sid = "VSAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    CHECK_EQ_INT(token_sign_session(&p, "alice", sid, 1700000000, 1700000100, &s), RC_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(token_verify_session(&p, s, strlen(s), 1700000050, &c), RC_OK);
        CHECK(c.has_sid && strcmp(c.sid, sid) == 0 && strcmp(c.sub, "alice") == 0);
    }
    CHECK_EQ_INT(token_verify_session(&p, s, strlen(s), 1700000100 + LEEWAY + 1, &c),
                 RC_UNAUTHORIZED);
    char *caller = mkf(HS, "{\"sub\":\"alice\",\"iat\":%d,\"exp\":%d}", 1700000000, 1700000100);
    CHECK_EQ_INT(token_verify(&p, caller, strlen(caller), 1700000050, &c), RC_OK);
    CHECK_EQ_INT(token_verify_session(&p, caller, strlen(caller), 1700000050, &c), RC_INVALID);
    char *other = mkf("{\"typ\":\"JWT\",\"alg\":\"HS256\"}",
                      "{\"exp\":%d,\"iat\":%d,\"jti\":\"j\",\"sid\":\"%s\",\"sub\":\"alice\"}",
                      1700000100, 1700000000, sid);
    CHECK_EQ_INT(token_verify(&p, other, strlen(other), 1700000050, &c), RC_OK);
    CHECK_EQ_INT(token_verify_session(&p, other, strlen(other), 1700000050, &c), RC_INVALID);
    char big[1400];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *large = mkf(HS, "{\"exp\":%d,\"iat\":%d,\"jti\":\"%s\",\"sid\":\"%s\",\"sub\":\"alice\"}",
                      1700000100, 1700000000, big, sid);
    CHECK_EQ_INT(token_verify(&p, large, strlen(large), 1700000050, &c), RC_OK);
    CHECK_EQ_INT(token_verify_session(&p, large, strlen(large), 1700000050, &c), RC_INVALID);
    token_policy q = p;
    q.key = (const unsigned char *)"another-key-0123456789abcdef0123";
    q.key_len = 32;
    CHECK_EQ_INT(token_verify_session(&q, s, strlen(s), 1700000050, &c), RC_UNAUTHORIZED);
    free(s), free(caller), free(other), free(large);
}

/* JWT_SECRET_PREVIOUS: a token signed with it (a caller's, or a session
 * token issued before the rotation) verifies, as a session token too; one
 * signed with neither does not; without it set, the old token is refused;
 * the service signs with JWT_SECRET only. */
static void test_previous_secret(void)
{
    static const unsigned char old_key[] = "an-old-32-byte-secret-key-------";
    token_policy old = policy(), p = policy();
    token_claims c;
    const char *sid = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAa";
    old.key = old_key;
    old.key_len = 32;
    char *before = NULL, *after = NULL;
    CHECK_EQ_INT(token_sign_session(&old, "alice", sid, NOW, NOW + 60, &before), RC_OK);
    if (before == NULL)
        return;
    CHECK_EQ_INT(token_verify(&p, before, strlen(before), NOW, &c), RC_UNAUTHORIZED);
    p.previous = old_key;
    p.previous_len = 32;
    CHECK_EQ_INT(token_verify(&p, before, strlen(before), NOW, &c), RC_OK);
    CHECK_EQ_INT(c.has_sid, 1);
    CHECK_STR_EQ(c.sid, sid);
    CHECK_EQ_INT(token_verify(&p, before, strlen(before), NOW, &c), RC_OK); /* cached */
    CHECK_EQ_INT(token_sign_session(&p, "alice", sid, NOW, NOW + 60, &after), RC_OK);
    if (after != NULL) {
        CHECK_EQ_INT(token_verify(&p, after, strlen(after), NOW, &c), RC_OK);
        CHECK_EQ_INT(token_verify(&old, after, strlen(after), NOW, &c), RC_UNAUTHORIZED);
    }
    /* the cache is per policy: without the previous key again, refused */
    p.previous = NULL;
    p.previous_len = 0;
    CHECK_EQ_INT(token_verify(&p, before, strlen(before), NOW, &c), RC_UNAUTHORIZED);
    token_policy third = policy();
    static const unsigned char other[] = "a-third-32-byte-secret-key------";
    third.previous = other;
    third.previous_len = 32;
    CHECK_EQ_INT(token_verify(&third, before, strlen(before), NOW, &c), RC_UNAUTHORIZED);
    free(before);
    free(after);
}

/* A refresh's token: the generation in its jti, the very same string for
 * the same (secret, session, generation, times), another for another
 * generation or secret; a create's token is generation 0; a jti that only
 * looks like a generation (no dot, a leading zero, past 2^32) is 0 too. */
static void test_rotated(void)
{
    token_policy p = policy();
    token_claims c;
    const char *sid = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAa";
    char *a = NULL, *b = NULL, *other = NULL, *first = NULL;
    CHECK_EQ_INT(token_sign_rotated(&p, "alice", sid, 0, NOW, NOW + 60, &a), RC_ERR);
    CHECK(a == NULL);
    CHECK_EQ_INT(token_sign_rotated(&p, "alice", sid, 3, NOW, NOW + 60, &a), RC_OK);
    CHECK_EQ_INT(token_sign_rotated(&p, "alice", sid, 3, NOW, NOW + 60, &b), RC_OK);
    CHECK_EQ_INT(token_sign_rotated(&p, "alice", sid, 4, NOW, NOW + 60, &other), RC_OK);
    CHECK_EQ_INT(token_sign_session(&p, "alice", sid, NOW, NOW + 60, &first), RC_OK);
    if (!a || !b || !other || !first)
        return;
    CHECK_STR_EQ(a, b);
    CHECK(strcmp(a, other) != 0);
    CHECK_EQ_INT(token_verify(&p, a, strlen(a), NOW, &c), RC_OK);
    CHECK_EQ_INT(c.gen, 3);
    CHECK_STR_EQ(c.sid, sid);
    CHECK_EQ_INT(token_verify(&p, other, strlen(other), NOW, &c), RC_OK);
    CHECK_EQ_INT(c.gen, 4);
    CHECK_EQ_INT(token_verify(&p, first, strlen(first), NOW, &c), RC_OK);
    CHECK_EQ_INT(c.gen, 0);
    json_t *j = payload_of(a);
    CHECK(j != NULL);
    CHECK(strncmp(json_string_value(json_object_get(j, "jti")), "3.", 2) == 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "iat")), NOW);
    json_decref(j);
    token_policy q = p;
    q.key = (const unsigned char *)"a-different-32-byte-secret-key!!";
    q.key_len = 32;
    char *d = NULL;
    CHECK_EQ_INT(token_sign_rotated(&q, "alice", sid, 3, NOW, NOW + 60, &d), RC_OK);
    if (d) {
        j = payload_of(d);
        json_t *k = payload_of(a);
        CHECK(strcmp(json_string_value(json_object_get(j, "jti")),
                     json_string_value(json_object_get(k, "jti"))) != 0);
        json_decref(j);
        json_decref(k);
    }
    free(a);
    free(b);
    free(other);
    free(first);
    free(d);

    static const struct {
        const char *jti;
        uint32_t gen;
    } jtis[] = {
        { "\"5.abc\"", 5 }, { "\"4294967295.x\"", 4294967295u }, { "\"4294967296.x\"", 0 },
        { "\"05.x\"", 0 },  { "\"5\"", 0 },                     { "\"5x.y\"", 0 },
        { "7", 0 },         { "\"AAAAAAAAAAAAAAAAAAAAAA\"", 0 },
    };
    for (size_t i = 0; i < sizeof jtis / sizeof jtis[0]; i++) {
        char claims[256];
        snprintf(claims, sizeof claims,
                 "{\"sub\":\"a\",\"exp\":%lld,\"sid\":\"%s\",\"jti\":%s}",
                 (long long)NOW + 60, sid, jtis[i].jti);
        CHECK_EQ_INT(token_claims_parse(&p, claims, strlen(claims), NOW, 1, &c), RC_OK);
        CHECK_EQ_INT(c.gen, jtis[i].gen);
    }
}

/* The bit-at-a-time decoder the table-driven one replaced: the reference. */
static int ref_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

static rc_t ref_decode(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
    if (len % 4 == 1)
        return RC_INVALID;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = ref_value((unsigned char)in[i]);
        if (v < 0)
            return RC_INVALID;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return RC_INVALID;
    *outlen = o;
    return RC_OK;
}

/* b64url_decode agrees with the reference on every length up to 40, on
 * strings of the alphabet (canonical or not) and with a stray byte. */
static void test_b64_decode_matches_reference(void)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        char in[41];
        size_t len = (size_t)(round % 41);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = chars[(seed >> 16) % 64];
        }
        if (round % 7 == 0 && len > 0) { /* a byte outside the alphabet */
            seed = seed * 1103515245u + 12345u;
            in[(seed >> 16) % len] = (char)((seed >> 8) & 0xff) == 'A' ? '=' : (char)((seed >> 8) & 0xff);
        }
        unsigned char a[32], b[32];
        size_t al = 0, bl = 0;
        rc_t ra = b64url_decode(in, len, a, &al), rb = ref_decode(in, len, b, &bl);
        CHECK_EQ_INT(ra, rb);
        if (ra == RC_OK && rb == RC_OK) {
            CHECK_EQ_INT(al, bl);
            CHECK(memcmp(a, b, al) == 0);
        }
    }
}

/* A session token's claims are read without the JSON library when they are
 * written as the signer writes them (token.c, plain_claims); every other
 * text goes to the JSON library. The two readers must agree: each text
 * below, and each one-byte change of it (a byte removed, replaced, or
 * inserted), is checked as it is and behind a leading space (the same JSON,
 * which only the JSON library reads), at times around iat and exp, under
 * policies with and without an issuer and an audience. */
static void claims_agree(const token_policy *p, const char *json, size_t len)
{
    static const int64_t at[] = { NOW - LEEWAY - 2, NOW, NOW + 600 + LEEWAY + 1 };
    char spaced[600];
    if (len + 1 > sizeof spaced)
        return;
    spaced[0] = ' ';
    memcpy(spaced + 1, json, len);
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        token_claims a, b;
        rc_t ra = token_claims_parse(p, json, len, at[k], 1, &a);
        rc_t rb = token_claims_parse(p, spaced, len + 1, at[k], 1, &b);
        CHECK_EQ_INT(ra, rb);
        if (ra != rb || memcmp(&a, &b, sizeof a) != 0) {
            CHECK(memcmp(&a, &b, sizeof a) == 0);
            fprintf(stderr, "  claims read apart: %.*s at %lld\n", (int)len, json,
                    (long long)at[k]);
            return;
        }
    }
}

static void test_plain_claims_agree_with_json(void)
{
    static const char bytes[] = "\"\\{}:,.0159-eE aZ_\x01\x7f\xc3\xa9";
    token_policy plain = policy(), named = policy();
    named.issuer = "https://id.example";
    named.audience = "sessions-api";
    const char *sid = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAbcd";
    char claims[5][512];
    int n[5];
    /* the signer's own shapes: a create's token and a rotation's */
    n[0] = snprintf(claims[0], sizeof claims[0],
                    "{\"exp\":%lld,\"iat\":%lld,\"jti\":\"x0_-Ab\",\"sid\":\"%s\",\"sub\":\"alice\"}",
                    (long long)(NOW + 600), (long long)NOW, sid);
    n[1] = snprintf(claims[1], sizeof claims[1],
                    "{\"exp\":%lld,\"iat\":%lld,\"jti\":\"12.abc\",\"sid\":\"%s\",\"sub\":\"a b\"}",
                    (long long)(NOW + 600), (long long)NOW, sid);
    n[2] = snprintf(claims[2], sizeof claims[2],
                    "{\"aud\":\"sessions-api\",\"exp\":%lld,\"iat\":%lld,\"iss\":"
                    "\"https://id.example\",\"jti\":\"7.q\",\"sid\":\"%s\",\"sub\":\"bob\"}",
                    (long long)(NOW + 600), (long long)NOW, sid);
    n[3] = snprintf(claims[3], sizeof claims[3],
                    "{\"exp\":0,\"iat\":%lld,\"jti\":\"\",\"sid\":\"%s\",\"sub\":\"0\"}",
                    (long long)NOW, sid);
    /* past 9999-12-31, the latest date a token may name */
    n[4] = snprintf(claims[4], sizeof claims[4],
                    "{\"exp\":999999999999,\"iat\":%lld,\"jti\":\"1.\",\"sid\":\"%s\",\"sub\":\"c\"}",
                    (long long)NOW, sid);
    const token_policy *pols[] = { &plain, &named };
    for (size_t pi = 0; pi < 2; pi++)
        for (int c = 0; c < 5; c++) {
            const char *t = claims[c];
            size_t len = (size_t)n[c];
            char m[512];
            claims_agree(pols[pi], t, len);
            for (size_t i = 0; i < len; i++) {
                memcpy(m, t, i); /* without byte i */
                memcpy(m + i, t + i + 1, len - i - 1);
                claims_agree(pols[pi], m, len - 1);
                for (size_t b = 0; b < sizeof bytes - 1; b++) {
                    memcpy(m, t, len); /* byte i replaced */
                    m[i] = bytes[b];
                    claims_agree(pols[pi], m, len);
                    memcpy(m, t, i); /* a byte inserted before i */
                    m[i] = bytes[b];
                    memcpy(m + i + 1, t + i, len - i);
                    claims_agree(pols[pi], m, len + 1);
                }
            }
        }
    /* and the text the signer writes is read to the claims it was given */
    token_claims out;
    CHECK_EQ_INT(token_claims_parse(&named, claims[2], (size_t)n[2], NOW, 1, &out), RC_OK);
    CHECK_STR_EQ(out.sub, "bob");
    CHECK_STR_EQ(out.sid, sid);
    CHECK_EQ_INT(out.gen, 7);
    CHECK_EQ_INT(out.exp, NOW + 600);
    CHECK_EQ_INT(token_claims_parse(&plain, claims[1], (size_t)n[1], NOW, 1, &out), RC_OK);
    CHECK_EQ_INT(out.gen, 12);
    CHECK_EQ_INT(out.sub_len, 3);
}

int main(void)
{
    RUN(test_b64_decode_matches_reference);
    RUN(test_rfc7515_a1);
    RUN(test_signer_against_libjwt);
    RUN(test_alg);
    RUN(test_signature);
    RUN(test_time);
    RUN(test_sub);
    RUN(test_structure_segments);
    RUN(test_structure_json);
    RUN(test_structure_base64);
    RUN(test_structure_length);
    RUN(test_iss_aud);
    RUN(test_scope_sid);
    RUN(test_round_trip);
    RUN(test_rotated);
    RUN(test_previous_secret);
    RUN(test_sid_only_with_own_key);
    RUN(test_plain_claims_agree_with_json);
    RUN(test_mac_equal);
    RUN(test_mac_against_openssl_hmac);
    RUN(test_verify_session);
    return UNIT_SUMMARY();
}
