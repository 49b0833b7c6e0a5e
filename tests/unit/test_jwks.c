/* test_jwks.c -- jwks_parse on hostile and unusable sets, jwks_verify and
 * token_verify with tokens of every JWKS algorithm (keys made and tokens
 * signed here with OpenSSL, each case changing one thing), the verified-
 * token cache across key sets, and the keyring's publish and per-thread
 * references. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "b64.h"
#include "jwks.h"
#include "keys.h"
#include "token.h"
#include "unit.h"

#define NOW 1700000000LL

static EVP_PKEY *rsa2048, *rsa1024, *p256, *p384, *ed25519, *x25519;

/* ---- keys as JWKS entries ---- */

static void b64_of_bn(EVP_PKEY *k, const char *name, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char raw[1100];
    if (EVP_PKEY_get_bn_param(k, name, &bn) != 1)
        abort();
    int n = BN_bn2bin(bn, raw);
    b64url_encode(raw, (size_t)n, out);
    BN_free(bn);
}

static void b64_of_coord(EVP_PKEY *k, const char *name, size_t width, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char raw[80];
    if (EVP_PKEY_get_bn_param(k, name, &bn) != 1 || BN_bn2binpad(bn, raw, (int)width) < 0)
        abort();
    b64url_encode(raw, width, out);
    BN_free(bn);
}

/* The public JWK of k as JSON text, with kid and the members in extra
 * (",\"alg\":\"RS256\"" ...) appended. */
static void jwk(EVP_PKEY *k, const char *kid, const char *extra, char *out, size_t outlen)
{
    char a[1500], b[200];
    if (EVP_PKEY_is_a(k, "RSA")) {
        b64_of_bn(k, OSSL_PKEY_PARAM_RSA_N, a);
        b64_of_bn(k, OSSL_PKEY_PARAM_RSA_E, b);
        snprintf(out, outlen, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}", kid,
                 a, b, extra);
    } else if (EVP_PKEY_is_a(k, "EC")) {
        char group[32];
        size_t gl;
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl);
        size_t w = strcmp(group, "prime256v1") == 0 ? 32 : 48;
        b64_of_coord(k, OSSL_PKEY_PARAM_EC_PUB_X, w, a);
        b64_of_coord(k, OSSL_PKEY_PARAM_EC_PUB_Y, w, b);
        snprintf(out, outlen,
                 "{\"kty\":\"EC\",\"crv\":\"%s\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}",
                 w == 32 ? "P-256" : "P-384", kid, a, b, extra);
    } else {
        unsigned char raw[64];
        size_t rl = sizeof raw;
        EVP_PKEY_get_raw_public_key(k, raw, &rl);
        b64url_encode(raw, rl, a);
        snprintf(out, outlen, "{\"kty\":\"OKP\",\"crv\":\"%s\",\"kid\":\"%s\",\"x\":\"%s\"%s}",
                 EVP_PKEY_is_a(k, "ED25519") ? "Ed25519" : "X25519", kid, a, extra);
    }
}

static int warned;
static char last_warning[300];

static void on_warn(void *arg, const char *why)
{
    (void)arg;
    warned++;
    snprintf(last_warning, sizeof last_warning, "%s", why);
}

/* jwks_parse of "{\"keys\":[" entries "]}". */
static rc_t parse_set(const char *entries, jwks **out)
{
    static char text[20000];
    char err[300];
    snprintf(text, sizeof text, "{\"keys\":[%s]}", entries);
    warned = 0;
    return jwks_parse(text, strlen(text), out, on_warn, NULL, err, sizeof err);
}

/* ---- tokens ---- */

static char *b64_json(const char *json)
{
    char *out = malloc(B64_ENCODED_LEN(strlen(json)) + 1);
    b64url_encode((const unsigned char *)json, strlen(json), out);
    return out;
}

/* A token header.claims.signature signed by k for alg ("RS256" ...). The
 * header is {"alg":alg[,"kid":kid]}. Caller frees. */
static char *sign_with(EVP_PKEY *k, const char *alg, const char *kid, const char *claims)
{
    char header[400];
    if (kid != NULL)
        snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid);
    else
        snprintf(header, sizeof header, "{\"alg\":\"%s\"}", alg);
    char *h = b64_json(header), *c = b64_json(claims);
    size_t mlen = strlen(h) + 1 + strlen(c);
    char *tok = malloc(mlen + 2 + 2000);
    sprintf(tok, "%s.%s", h, c);
    free(h);
    free(c);

    unsigned char sig[1100], raw[64];
    size_t sl = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    const char *digest = strcmp(alg, "EdDSA") == 0 ? NULL : "SHA256";
    if (EVP_DigestSignInit_ex(md, &pc, digest, NULL, NULL, k, NULL) != 1)
        abort();
    if (strcmp(alg, "PS256") == 0) {
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST);
    }
    if (EVP_DigestSign(md, sig, &sl, (const unsigned char *)tok, mlen) != 1)
        abort();
    EVP_MD_CTX_free(md);
    const unsigned char *s = sig;
    if (strcmp(alg, "ES256") == 0) { /* DER to r || s */
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &s, (long)sl);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
        ECDSA_SIG_free(es);
        s = raw;
        sl = 64;
    }
    tok[mlen] = '.';
    b64url_encode(s, sl, tok + mlen + 1);
    return tok;
}

static const char *claims_for(const char *sub, const char *extra)
{
    static char buf[400];
    snprintf(buf, sizeof buf, "{\"sub\":\"%s\",\"exp\":%lld%s}", sub, NOW + 600, extra);
    return buf;
}

static token_policy policy_with(const jwks *ks)
{
    static const unsigned char secret[] = "the-service-own-secret-0123456789abcdef";
    token_policy p = { secret, sizeof secret - 1, NULL, NULL, 30, "session:admin", NULL, 0, ks };
    return p;
}

static int accepted(const jwks *ks, const char *tok)
{
    token_policy p = policy_with(ks);
    token_claims who;
    return token_verify(&p, tok, strlen(tok), NOW, &who) == RC_OK;
}

/* ---- the tests ---- */

static void test_alg_names(void)
{
    CHECK_EQ_INT(jwks_alg_named("RS256", 5), JWKS_RS256);
    CHECK_EQ_INT(jwks_alg_named("PS256", 5), JWKS_PS256);
    CHECK_EQ_INT(jwks_alg_named("ES256", 5), JWKS_ES256);
    CHECK_EQ_INT(jwks_alg_named("EdDSA", 5), JWKS_EDDSA);
    CHECK_EQ_INT(jwks_alg_named("HS256", 5), JWKS_ALG_NONE);
    CHECK_EQ_INT(jwks_alg_named("none", 4), JWKS_ALG_NONE);
    CHECK_EQ_INT(jwks_alg_named("rs256", 5), JWKS_ALG_NONE);
    CHECK_EQ_INT(jwks_alg_named("RS2561", 6), JWKS_ALG_NONE);
    CHECK_EQ_INT(jwks_alg_named("RS25", 4), JWKS_ALG_NONE);
    CHECK_EQ_INT(jwks_alg_named("RS512", 5), JWKS_ALG_NONE);
}

static void test_every_supported_key(void)
{
    char e[4][2000], all[9000];
    jwk(rsa2048, "r", "", e[0], sizeof e[0]);
    jwk(p256, "e", ",\"use\":\"sig\",\"alg\":\"ES256\"", e[1], sizeof e[1]);
    jwk(ed25519, "o", ",\"key_ops\":[\"verify\"]", e[2], sizeof e[2]);
    jwk(rsa2048, "r2", ",\"alg\":\"PS256\",\"x5t\":\"ignored\",\"d\":\"ignored\"", e[3], sizeof e[3]);
    snprintf(all, sizeof all, "%s,%s,%s,%s", e[0], e[1], e[2], e[3]);
    jwks *ks = NULL;
    CHECK_EQ_INT(parse_set(all, &ks), RC_OK);
    CHECK_EQ_INT(jwks_count(ks), 4);
    CHECK_EQ_INT(warned, 0);
    CHECK(jwks_serial(ks) != 0);
    jwks *again = NULL;
    CHECK_EQ_INT(parse_set(all, &again), RC_OK);
    CHECK(jwks_serial(again) != jwks_serial(ks)); /* every parse is another set */
    CHECK_EQ_INT(jwks_serial(NULL), 0);
    jwks_free(again);
    jwks_free(ks);
}

/* Each entry alone is skipped with a warning, and a set of it alone is
 * refused (no usable key). */
static void skipped(const char *entry, const char *why)
{
    jwks *ks = NULL;
    char set[6000], good[2000];
    CHECK_EQ_INT(parse_set(entry, &ks), RC_INVALID);
    CHECK(ks == NULL);
    jwk(ed25519, "fine", "", good, sizeof good);
    snprintf(set, sizeof set, "%s,%s", entry, good);
    CHECK_EQ_INT(parse_set(set, &ks), RC_OK);
    CHECK_EQ_INT(jwks_count(ks), 1);
    CHECK_EQ_INT(warned, 1);
    if (strstr(last_warning, why) == NULL)
        UNIT_FAIL_AT(__FILE__, __LINE__, "warning \"%s\" does not say \"%s\"", last_warning, why);
    jwks_free(ks);
}

static void test_unusable_keys_are_skipped(void)
{
    char k[2000], mod[2000];
    jwk(rsa2048, "", "", k, sizeof k);
    skipped(k, "kid");
    jwk(p256, "x", "", k, sizeof k);
    skipped(strstr(k, "\"kid\"") ? "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"a\",\"y\":\"b\"}" : k,
            "kid");
    skipped("{\"kty\":\"RSA\",\"kid\":7}", "kid");
    char longkid[400];
    memset(longkid, 'k', 300);
    longkid[300] = '\0';
    jwk(ed25519, longkid, "", k, sizeof k);
    skipped(k, "kid");
    skipped("{\"kid\":\"a\"}", "kty");
    skipped("{\"kid\":\"a\",\"kty\":7}", "kty");
    skipped("{\"kid\":\"s\",\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}", "symmetric");
    skipped("{\"kid\":\"s\",\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"alg\":\"HS256\"}", "alg");
    skipped("{\"kid\":\"a\",\"kty\":\"DSA\"}", "key type");
    skipped("\"a string\"", "object");
    skipped("[]", "object");
    jwk(rsa2048, "a", ",\"use\":\"enc\"", k, sizeof k);
    skipped(k, "use");
    jwk(rsa2048, "a", ",\"use\":7", k, sizeof k);
    skipped(k, "use");
    jwk(rsa2048, "a", ",\"key_ops\":[\"encrypt\"]", k, sizeof k);
    skipped(k, "key_ops");
    jwk(rsa2048, "a", ",\"key_ops\":\"verify\"", k, sizeof k);
    skipped(k, "key_ops");
    jwk(rsa2048, "a", ",\"alg\":\"RS512\"", k, sizeof k);
    skipped(k, "alg");
    jwk(rsa2048, "a", ",\"alg\":\"RSA-OAEP\"", k, sizeof k);
    skipped(k, "alg");
    jwk(rsa2048, "a", ",\"alg\":\"ES256\"", k, sizeof k);
    skipped(k, "does not fit");
    jwk(p256, "a", ",\"alg\":\"RS256\"", k, sizeof k);
    skipped(k, "does not fit");
    jwk(ed25519, "a", ",\"alg\":\"ES256\"", k, sizeof k);
    skipped(k, "does not fit");
    jwk(rsa1024, "small", "", k, sizeof k);
    skipped(k, "1024 bits");
    jwk(p384, "a", "", k, sizeof k);
    skipped(k, "P-256");
    jwk(x25519, "a", "", k, sizeof k);
    skipped(k, "Ed25519");

    /* RSA: e of 1 (anyone could sign), an even e, a huge e */
    jwk(rsa2048, "a", "", k, sizeof k);
    snprintf(mod, sizeof mod, "%s", k);
    char *e = strstr(mod, "\"e\":\"AQAB\"");
    CHECK(e != NULL);
    if (e != NULL) {
        memcpy(e, "\"e\":\"AAAB\"", 10);
        skipped(mod, "not a valid RSA");
        memcpy(e, "\"e\":\"AQAB\"", 10);
    }
    if (e != NULL) {
        memcpy(e, "\"e\":\"AQAC\"", 10);
        skipped(mod, "not a valid RSA");
        memcpy(e, "\"e\":\"AQA=\"", 10); /* padding: not canonical base64url */
        skipped(mod, "base64url");
        memcpy(e, "\"e\":\"AQ+B\"", 10);
        skipped(mod, "base64url");
    }
    char *at = strstr(k, "\"e\":\"AQAB\"");
    if (at != NULL) { /* 65 bits */
        snprintf(mod, sizeof mod, "%.*s\"e\":\"AQAAAAAAAAAB\"}", (int)(at - k), k);
        skipped(mod, "not a valid RSA");
    }
    skipped("{\"kid\":\"a\",\"kty\":\"RSA\",\"e\":\"AQAB\"}", "\"n\"");
    skipped("{\"kid\":\"a\",\"kty\":\"RSA\",\"n\":\"\",\"e\":\"AQAB\"}", "\"n\"");
    skipped("{\"kid\":\"a\",\"kty\":\"RSA\",\"n\":7,\"e\":\"AQAB\"}", "\"n\"");
    /* 2048 bits with the top bits zero is a smaller modulus */
    jwk(rsa2048, "a", "", k, sizeof k);
    snprintf(mod, sizeof mod, "%s", k);
    char *n = strstr(mod, "\"n\":\"") + 5;
    n[0] = 'A';
    n[1] = 'A';
    skipped(mod, "bits");
    /* an even modulus is no RSA key */
    snprintf(mod, sizeof mod, "%s", k);
    n = strstr(mod, "\",\"e\"") - 1;
    *n = (char)(*n == 'A' ? 'E' : 'A'); /* the last character's bits change... */
    {
        jwks *ks = NULL;
        (void)parse_set(mod, &ks); /* ...odd or even, it must not crash */
        jwks_free(ks);
    }

    /* EC: a point off the curve, short and long coordinates, no y */
    jwk(p256, "a", "", k, sizeof k);
    snprintf(mod, sizeof mod, "%s", k);
    char *y = strstr(mod, "\"y\":\"") + 5;
    y[3] = (char)(y[3] == 'A' ? 'B' : 'A');
    skipped(mod, "not on P-256");
    skipped("{\"kid\":\"a\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}", "bytes");
    skipped("{\"kid\":\"a\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\"}", "\"y\"");
    skipped("{\"kid\":\"a\",\"kty\":\"EC\",\"x\":\"AAAA\",\"y\":\"AAAA\"}", "P-256");
    /* OKP: the points of small order, in every encoding OpenSSL would take:
     * with one of them as the key, a signature of R = that point and S = 0
     * verifies any message (a universal forgery) */
    static const char *const small_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000", /* order 4 */
        "0100000000000000000000000000000000000000000000000000000000000000", /* identity */
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", /* order 8 */
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", /* order 8 */
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p - 1: order 2 */
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p: 0 again */
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p + 1: 1 again */
    };
    for (size_t i = 0; i < sizeof small_order / sizeof small_order[0]; i++)
        for (int sign = 0; sign < 2; sign++) { /* with the sign bit of x clear and set */
            unsigned char raw[32];
            char x[64];
            for (int j = 0; j < 32; j++)
                sscanf(small_order[i] + 2 * j, "%2hhx", &raw[j]);
            raw[31] = (unsigned char)(sign ? raw[31] | 0x80 : raw[31] & 0x7f);
            b64url_encode(raw, 32, x);
            snprintf(k, sizeof k, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":\"%s\"}", x);
            skipped(k, "small order");
        }
    /* OKP: a short key, no x */
    skipped("{\"kid\":\"a\",\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}", "bytes");
    skipped("{\"kid\":\"a\",\"kty\":\"OKP\",\"crv\":\"Ed25519\"}", "\"x\"");
    skipped("{\"kid\":\"a\",\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AAAA\"}", "Ed25519");
}

static void refused(const char *text, size_t len, const char *why)
{
    jwks *ks = (jwks *)1;
    char err[300] = "";
    CHECK_EQ_INT(jwks_parse(text, len, &ks, NULL, NULL, err, sizeof err), RC_INVALID);
    CHECK(ks == NULL);
    if (strstr(err, why) == NULL)
        UNIT_FAIL_AT(__FILE__, __LINE__, "error \"%s\" does not say \"%s\"", err, why);
}

#define REFUSED(lit, why) refused(lit, sizeof lit - 1, why)

static void test_hostile_sets(void)
{
    REFUSED("", "not JSON");
    REFUSED("{", "not JSON");
    REFUSED("{\"keys\":[]} x", "not JSON");
    REFUSED("[]", "\"keys\" array");
    REFUSED("null", "not JSON");
    REFUSED("{}", "\"keys\" array");
    REFUSED("{\"keys\":{}}", "\"keys\" array");
    REFUSED("{\"keys\":null}", "\"keys\" array");
    REFUSED("{\"keys\":[]}", "empty");
    REFUSED("{\"keys\":[1,2,3]}", "no usable key (3 skipped");
    REFUSED("{\"keys\":[],\"keys\":[]}", "not JSON"); /* duplicate members */
    REFUSED("{\"keys\":[{\"kid\":\"a\",\"kid\":\"b\",\"kty\":\"OKP\"}]}", "not JSON");
    REFUSED("{\"keys\":[\"\xff\xfe\"]}", "not JSON"); /* invalid UTF-8 */
    REFUSED("{\"keys\":[\"a\0b\"]}", "not JSON");

    char deep[200];
    size_t d = 0;
    d += (size_t)snprintf(deep, sizeof deep, "{\"keys\":");
    for (int i = 0; i < 40; i++)
        deep[d++] = '[';
    for (int i = 0; i < 40; i++)
        deep[d++] = ']';
    deep[d++] = '}';
    refused(deep, d, "nested");

    size_t big = JWKS_FILE_MAX + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    refused(huge, big, "larger");
    free(huge);

    /* more than JWKS_KEYS_MAX entries */
    char *many = malloc(20 * (JWKS_KEYS_MAX + 2) + 20);
    size_t m = (size_t)sprintf(many, "{\"keys\":[");
    for (int i = 0; i <= JWKS_KEYS_MAX; i++)
        m += (size_t)sprintf(many + m, "%s{}", i ? "," : "");
    m += (size_t)sprintf(many + m, "]}");
    refused(many, m, "more than");
    free(many);
}

static void test_load(void)
{
    char err[400], path[] = "/tmp/test_jwks.XXXXXX", key[2000];
    jwks *ks = NULL;
    CHECK_EQ_INT(jwks_load("/nonexistent/jwks.json", &ks, NULL, NULL, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "cannot open") != NULL);
    CHECK_EQ_INT(jwks_load("/tmp", &ks, NULL, NULL, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "regular file") != NULL);
    int fd = mkstemp(path);
    jwk(p256, "e", "", key, sizeof key);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "{\"keys\":[%s]}\n", key);
    fclose(f);
    CHECK_EQ_INT(jwks_load(path, &ks, NULL, NULL, err, sizeof err), RC_OK);
    CHECK_EQ_INT(jwks_count(ks), 1);
    jwks_free(ks);
    f = fopen(path, "w");
    fprintf(f, "{\"keys\":[]}");
    fclose(f);
    CHECK_EQ_INT(jwks_load(path, &ks, NULL, NULL, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, path) != NULL && strstr(err, "no usable key") != NULL);
    CHECK(truncate(path, JWKS_FILE_MAX + 1) == 0);
    CHECK_EQ_INT(jwks_load(path, &ks, NULL, NULL, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "larger") != NULL);
    unlink(path);
}

/* The set every token test below verifies with. */
static jwks *the_set(void)
{
    char e[6][2000], all[12000];
    jwk(rsa2048, "rsa", "", e[0], sizeof e[0]);
    jwk(rsa2048, "rsa-pinned", ",\"alg\":\"RS256\"", e[1], sizeof e[1]);
    jwk(p256, "ec", "", e[2], sizeof e[2]);
    jwk(ed25519, "ed", "", e[3], sizeof e[3]);
    jwk(rsa1024, "small", "", e[4], sizeof e[4]);
    snprintf(e[5], sizeof e[5], "{\"kty\":\"oct\",\"kid\":\"sym\",\"k\":\"%s\"}",
             "dGhlLXNlcnZpY2Utb3duLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm");
    snprintf(all, sizeof all, "%s,%s,%s,%s,%s,%s", e[0], e[1], e[2], e[3], e[4], e[5]);
    jwks *ks = NULL;
    if (parse_set(all, &ks) != RC_OK)
        abort();
    return ks;
}

static void test_tokens_of_every_algorithm(void)
{
    jwks *ks = the_set();
    const char *c = claims_for("alice", "");
    struct {
        EVP_PKEY *k;
        const char *alg, *kid;
        int ok;
    } cases[] = {
        { rsa2048, "RS256", "rsa", 1 },
        { rsa2048, "PS256", "rsa", 1 },
        { rsa2048, "RS256", "rsa-pinned", 1 },
        { rsa2048, "PS256", "rsa-pinned", 0 },  /* the key is pinned to RS256 */
        { p256, "ES256", "ec", 1 },
        { ed25519, "EdDSA", "ed", 1 },
        { rsa2048, "RS256", NULL, 0 },           /* no kid */
        { rsa2048, "RS256", "nobody", 0 },       /* unknown kid */
        { rsa2048, "RS256", "ec", 0 },           /* a kid of another type */
        { p256, "ES256", "rsa", 0 },
        { ed25519, "EdDSA", "ec", 0 },
        { p256, "ES256", "ed", 0 },
        { rsa1024, "RS256", "small", 0 },        /* skipped at load */
        { rsa2048, "RS256", "sym", 0 },          /* oct: never loaded */
        { rsa2048, "RS384", "rsa", 0 },          /* an algorithm not served */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *alg = strcmp(cases[i].alg, "RS384") == 0 ? "RS256" : (char *)cases[i].alg;
        char *tok = sign_with(cases[i].k, alg, cases[i].kid, c);
        if (alg != cases[i].alg) { /* the header says RS384 */
            char *h = b64_json("{\"alg\":\"RS384\",\"kid\":\"rsa\"}");
            char *rest = strchr(tok, '.');
            char *t2 = malloc(strlen(h) + strlen(rest) + 1);
            sprintf(t2, "%s%s", h, rest);
            free(h);
            free(tok);
            tok = t2;
        }
        if (accepted(ks, tok) != cases[i].ok)
            UNIT_FAIL_AT(__FILE__, __LINE__, "case %zu (%s, kid %s): expected %s", i,
                         cases[i].alg, cases[i].kid ? cases[i].kid : "-",
                         cases[i].ok ? "accepted" : "refused");
        unit_checks++;
        /* the same token without any JWKS: refused */
        CHECK(!accepted(NULL, tok));
        free(tok);
    }
    jwks_free(ks);
}

/* Flips one bit of the signature segment's first character. */
static void tamper_signature(char *tok)
{
    char *s = strrchr(tok, '.') + 1;
    s[0] = (char)(s[0] == 'A' ? 'B' : 'A');
}

static void test_signatures_are_checked(void)
{
    jwks *ks = the_set();
    char c[400];
    snprintf(c, sizeof c, "%s", claims_for("alice", ""));
    struct {
        EVP_PKEY *k;
        const char *alg, *kid;
    } cases[] = { { rsa2048, "RS256", "rsa" }, { rsa2048, "PS256", "rsa" },
                  { p256, "ES256", "ec" }, { ed25519, "EdDSA", "ed" } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = sign_with(cases[i].k, cases[i].alg, cases[i].kid, c);
        CHECK(accepted(ks, tok));
        tamper_signature(tok);
        CHECK(!accepted(ks, tok));
        free(tok);
        /* another payload under the same signature */
        tok = sign_with(cases[i].k, cases[i].alg, cases[i].kid, c);
        char *other = sign_with(cases[i].k, cases[i].alg, cases[i].kid, claims_for("mallory", ""));
        char *sig = strrchr(tok, '.');
        *strrchr(other, '.') = '\0';
        char *forged = malloc(strlen(other) + strlen(sig) + 1);
        sprintf(forged, "%s%s", other, sig);
        CHECK(!accepted(ks, forged));
        /* a truncated signature */
        tok[strlen(tok) - 4] = '\0';
        CHECK(!accepted(ks, tok));
        free(forged);
        free(other);
        free(tok);
    }
    /* RS256 and PS256 are not interchangeable on one key */
    char *rs = sign_with(rsa2048, "RS256", "rsa", c), *ps = sign_with(rsa2048, "PS256", "rsa", c);
    char *h = b64_json("{\"alg\":\"PS256\",\"kid\":\"rsa\"}");
    char *swapped = malloc(strlen(h) + strlen(rs) + 1);
    sprintf(swapped, "%s%s", h, strchr(rs, '.'));
    CHECK(!accepted(ks, swapped));
    free(swapped);
    free(h);
    free(rs);
    free(ps);
    jwks_free(ks);
}

/* The forgery a small-order key allows, end to end: the key is not
 * loaded, so the token is refused. */
static void test_small_order_ed25519_forgery(void)
{
    unsigned char id[32] = { 1 }, sig[64] = { 1 }; /* R = identity, S = 0 */
    char x[64], set[2400], good[2000];
    b64url_encode(id, 32, x);
    jwk(ed25519, "fine", "", good, sizeof good);
    snprintf(set, sizeof set, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"weak\",\"x\":\"%s\"},%s", x, good);
    jwks *ks = NULL;
    CHECK_EQ_INT(parse_set(set, &ks), RC_OK);
    char *h = b64_json("{\"alg\":\"EdDSA\",\"kid\":\"weak\"}");
    char *c = b64_json(claims_for("anyone", ",\"scope\":\"session:admin\""));
    char tok[1200];
    int n = snprintf(tok, sizeof tok, "%s.%s.", h, c);
    b64url_encode(sig, 64, tok + n);
    CHECK(!accepted(ks, tok));
    free(h);
    free(c);
    jwks_free(ks);
}

static void test_es256_takes_only_raw_signatures(void)
{
    jwks *ks = the_set();
    const char *c = claims_for("alice", "");
    char *tok = sign_with(p256, "ES256", "ec", c);
    /* the same signature in DER, as some libraries wrongly send it */
    char *dot = strrchr(tok, '.');
    unsigned char raw[64], der[80];
    size_t rl;
    CHECK_EQ_INT(b64url_decode(dot + 1, strlen(dot + 1), raw, &rl), RC_OK);
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
    unsigned char *p = der;
    int dl = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    char *derform = malloc((size_t)(dot - tok) + 2 + B64_ENCODED_LEN((size_t)dl) + 1);
    memcpy(derform, tok, (size_t)(dot - tok) + 1);
    b64url_encode(der, (size_t)dl, derform + (dot - tok) + 1);
    CHECK(accepted(ks, tok));
    CHECK(!accepted(ks, derform));
    /* r = 0 and s = 0 */
    memset(raw, 0, sizeof raw);
    b64url_encode(raw, 64, dot + 1);
    CHECK(!accepted(ks, tok));
    free(derform);
    free(tok);
    jwks_free(ks);
}

/* The alg-confusion attack: an HS256 token keyed with a JWKS public key's
 * PEM (or its JWK text) verifies with no JWKS key. */
static void test_hs256_never_with_a_jwks_key(void)
{
    jwks *ks = the_set();
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, rsa2048);
    char *pem;
    long pl = BIO_get_mem_data(b, &pem);
    char *h = b64_json("{\"alg\":\"HS256\",\"kid\":\"rsa\"}"), *c = b64_json(claims_for("eve", ""));
    char msg[2000];
    int ml = snprintf(msg, sizeof msg, "%s.%s", h, c);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), pem, (int)pl, (unsigned char *)msg, (size_t)ml, mac, &maclen);
    msg[ml] = '.';
    b64url_encode(mac, 32, msg + ml + 1);
    CHECK(!accepted(ks, msg));
    /* and keyed with the oct key's bytes */
    static const char octkey[] = "the-service-own-secret-0123456789abcdeX";
    msg[ml] = '\0';
    HMAC(EVP_sha256(), octkey, (int)sizeof octkey - 1, (unsigned char *)msg, (size_t)ml, mac, &maclen);
    msg[ml] = '.';
    b64url_encode(mac, 32, msg + ml + 1);
    CHECK(!accepted(ks, msg));
    /* alg none, with a kid and an empty signature */
    char *n = b64_json("{\"alg\":\"none\",\"kid\":\"rsa\"}");
    snprintf(msg, sizeof msg, "%s.%s.", n, c);
    CHECK(!accepted(ks, msg));
    free(n);
    free(h);
    free(c);
    BIO_free(b);
    jwks_free(ks);
}

static void test_claims_as_for_hs256(void)
{
    jwks *ks = the_set();
    token_policy p = policy_with(ks);
    token_claims who;
    char *tok;

    /* a sid makes no session token: the identity provider's own */
    tok = sign_with(p256, "ES256", "ec", claims_for("alice", ",\"sid\":\"AAAAAAAAAAAAAAAAAAAAAA\""));
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &who), RC_OK);
    CHECK_EQ_INT(who.has_sid, 0);
    CHECK_STR_EQ(who.sub, "alice");
    free(tok);
    /* twice: the cached outcome says the same */
    tok = sign_with(p256, "ES256", "ec", claims_for("alice", ",\"sid\":\"AAAAAAAAAAAAAAAAAAAAAA\""));
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &who), RC_OK);
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &who), RC_OK);
    CHECK_EQ_INT(who.has_sid, 0);
    free(tok);

    tok = sign_with(rsa2048, "RS256", "rsa", claims_for("root", ",\"scope\":\"a session:admin\""));
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &who), RC_OK);
    CHECK_EQ_INT(who.is_admin, 1);
    free(tok);

    char exp[200];
    snprintf(exp, sizeof exp, "{\"sub\":\"alice\",\"exp\":%lld}", NOW - 31);
    tok = sign_with(ed25519, "EdDSA", "ed", exp);
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &who), RC_UNAUTHORIZED);
    free(tok);
    snprintf(exp, sizeof exp, "{\"exp\":%lld}", NOW + 60);
    tok = sign_with(ed25519, "EdDSA", "ed", exp);
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &who), RC_UNAUTHORIZED);
    free(tok);

    p.issuer = "https://idp.example";
    p.audience = "sessions";
    tok = sign_with(rsa2048, "PS256", "rsa",
                    claims_for("alice", ",\"iss\":\"https://idp.example\",\"aud\":[\"x\",\"sessions\"]"));
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &who), RC_OK);
    free(tok);
    tok = sign_with(rsa2048, "PS256", "rsa",
                    claims_for("alice", ",\"iss\":\"https://evil.example\",\"aud\":\"sessions\""));
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &who), RC_UNAUTHORIZED);
    free(tok);
    tok = sign_with(rsa2048, "PS256", "rsa", claims_for("alice", ",\"iss\":\"https://idp.example\""));
    CHECK_EQ_INT(token_verify(&p, tok, strlen(tok), NOW, &who), RC_UNAUTHORIZED);
    free(tok);
    /* a crit header is refused whatever the algorithm */
    char *h = b64_json("{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"crit\":[\"x\"],\"x\":1}");
    tok = sign_with(ed25519, "EdDSA", "ed", claims_for("alice", ""));
    char *t2 = malloc(strlen(h) + strlen(tok) + 1);
    sprintf(t2, "%s%s", h, strchr(tok, '.'));
    CHECK(!accepted(ks, t2));
    free(t2);
    free(h);
    free(tok);
    jwks_free(ks);
}

/* A token accepted with one set is refused with a set that lacks its key,
 * although the cache has it: the cache is keyed by the set. */
static void test_cache_follows_the_set(void)
{
    jwks *with = the_set(), *without = NULL;
    char only[2000];
    jwk(ed25519, "ed", "", only, sizeof only);
    CHECK_EQ_INT(parse_set(only, &without), RC_OK);
    char *tok = sign_with(rsa2048, "RS256", "rsa", claims_for("alice", ""));
    CHECK(accepted(with, tok));
    CHECK(accepted(with, tok));
    CHECK(!accepted(without, tok));
    CHECK(accepted(with, tok));
    free(tok);
    jwks_free(with);
    jwks_free(without);
}

/* ---- the keyring ---- */

static const char SECRET_A[] = "secret-a-0123456789abcdef0123456789";
static const char SECRET_B[] = "secret-b-0123456789abcdef0123456789";

typedef struct reader_arg {
    keyring *kr;
    volatile int *stop;
    atomic_long reads;
    long bad;
} reader_arg;

static void *reader(void *arg)
{
    reader_arg *r = arg;
    while (!*r->stop) {
        const keys *k = keyring_get(r->kr);
        /* a set is whole: its secret is one of the two, entirely */
        if (k == NULL || k->secret_len != sizeof SECRET_A - 1 ||
            (memcmp(k->secret, SECRET_A, k->secret_len) != 0 &&
             memcmp(k->secret, SECRET_B, k->secret_len) != 0))
            r->bad++;
        r->reads++;
    }
    return NULL; /* the thread's set is dropped by its end */
}

static keys *set_of(const char *secret, const char *previous)
{
    keys *k = NULL;
    if (keys_new(secret, strlen(secret), previous, previous ? strlen(previous) : 0, NULL, &k) !=
        RC_OK)
        abort();
    return k;
}

static void test_keyring(void)
{
    keyring *kr = keyring_new(set_of(SECRET_A, NULL));
    CHECK(kr != NULL);
    const keys *k = keyring_get(kr);
    CHECK(k != NULL && memcmp(k->secret, SECRET_A, k->secret_len) == 0);
    CHECK(k->previous == NULL);
    CHECK(keyring_get(kr) == k); /* nothing published: the same set */

    keyring_publish(kr, set_of(SECRET_B, SECRET_A));
    k = keyring_get(kr);
    CHECK(k != NULL && memcmp(k->secret, SECRET_B, k->secret_len) == 0);
    CHECK(k->previous != NULL && memcmp(k->previous, SECRET_A, k->previous_len) == 0);

    token_policy p = policy_with(NULL);
    keys_apply(k, &p);
    CHECK(p.key == k->secret && p.key_len == k->secret_len && p.previous == k->previous &&
          p.jwks == NULL);

    /* readers on four threads while sets are published: each sees whole sets */
    volatile int stop = 0;
    pthread_t t[4];
    reader_arg ra[4];
    for (int i = 0; i < 4; i++) {
        ra[i].kr = kr;
        ra[i].stop = &stop;
        ra[i].bad = 0;
        atomic_init(&ra[i].reads, 0);
        pthread_create(&t[i], NULL, reader, &ra[i]);
    }
    /* until every reader has read through many publishes */
    for (int i = 0; i < 1000000; i++) {
        keyring_publish(kr, set_of(i % 2 ? SECRET_A : SECRET_B, NULL));
        int all = i >= 2000;
        for (int j = 0; j < 4; j++)
            all = all && ra[j].reads >= 1000;
        if (all)
            break;
    }
    stop = 1;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(ra[i].bad, 0);
        CHECK(ra[i].reads > 0);
    }
    keyring_leave(kr);
    keyring_leave(kr); /* twice: nothing held, nothing done */
    keyring_free(kr);   /* LeakSanitizer checks that every set was freed */
}

static void test_keys_from_config(void)
{
    config c;
    memset(&c, 0, sizeof c);
    char secret[] = "the-secret-of-this-test-0123456789", path[] = "/tmp/test_keys.XXXXXX";
    c.jwt_secret = secret;
    c.jwt_secret_len = strlen(secret);
    keys *k = NULL;
    char err[400];
    CHECK_EQ_INT(keys_from_config(&c, &k, err, sizeof err), RC_OK);
    CHECK(k != NULL && k->jwks == NULL && k->previous == NULL);
    keys_free(k);

    int fd = mkstemp(path);
    CHECK(write(fd, "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"AAAA\"}]}", 45) == 45);
    close(fd);
    c.jwt_jwks_file = path;
    CHECK_EQ_INT(keys_from_config(&c, &k, err, sizeof err), RC_INVALID);
    CHECK(k == NULL);
    CHECK(strncmp(err, "JWT_JWKS_FILE: ", 15) == 0);
    CHECK(strstr(err, secret) == NULL);
    unlink(path);
    CHECK_EQ_INT(keys_from_config(&c, &k, err, sizeof err), RC_INVALID);
    CHECK(strncmp(err, "JWT_JWKS_FILE: ", 15) == 0 && strstr(err, "cannot open") != NULL);
}

int main(void)
{
    rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    if (!rsa2048 || !rsa1024 || !p256 || !p384 || !ed25519 || !x25519) {
        fprintf(stderr, "test_jwks: key generation failed\n");
        return 1;
    }
    RUN(test_alg_names);
    RUN(test_every_supported_key);
    RUN(test_unusable_keys_are_skipped);
    RUN(test_hostile_sets);
    RUN(test_load);
    RUN(test_tokens_of_every_algorithm);
    RUN(test_signatures_are_checked);
    RUN(test_small_order_ed25519_forgery);
    RUN(test_es256_takes_only_raw_signatures);
    RUN(test_hs256_never_with_a_jwks_key);
    RUN(test_claims_as_for_hs256);
    RUN(test_cache_follows_the_set);
    RUN(test_keyring);
    RUN(test_keys_from_config);
    EVP_PKEY_free(rsa2048);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(ed25519);
    EVP_PKEY_free(x25519);
    return UNIT_SUMMARY();
}
