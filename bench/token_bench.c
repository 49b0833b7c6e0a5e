/* token_bench -- caller tokens from a JWKS for `make bench`, and an
 * in-process micro-benchmark of token_verify (token.h) per algorithm.
 *
 *   build/token_bench --mint DIR SUB
 *   build/token_bench
 *
 * --mint generates an RSA-2048, an EC P-256 and an Ed25519 key (OpenSSL 3
 * EVP) and writes into DIR (which must exist): jwks.json, their public keys
 * as a JWKS with a "kid" each (the RSA key twice, pinned to RS256 and to
 * PS256); and rs256.tok, es256.tok, eddsa.tok, one caller token each,
 * {"sub":SUB,"exp":now+86400}, header {"alg":..,"kid":..} (ES256 as raw
 * r || s, RFC 7518 3.4). The private keys are never written.
 *
 * Without arguments it times token_verify, one thread, for HS256, RS256,
 * PS256, ES256 and EdDSA caller tokens and for the service's own session
 * tokens (HS256, token_sign_session: their claims are read without the
 * JSON library; row "session"): uncached (TOKENS distinct tokens,
 * differing in "exp", each verified once, so the verified-token cache
 * never answers) and cached (one token again and again), in microseconds
 * per verification, the median of REPS runs. Each run is a thread of its
 * own: the cache is per thread, so every run starts with an empty one. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "b64.h"
#include "jwks.h"
#include "session.h"
#include "token.h"

#define TOKENS 400        /* distinct tokens per uncached run */
#define CACHED_ROUNDS 200000 /* verifications per cached run */
#define REPS 5            /* runs per figure; the median is printed */
#define TEXT_MAX 8192     /* a JWKS or a token built here */

/* The service's own secret, for HS256 (at least 32 bytes, as JWT_SECRET). */
static const unsigned char SECRET[] = "token-bench-secret-0123456789abcdefghij";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("token_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- keys and their JWKs ---- */

typedef struct bench_keys {
    EVP_PKEY *rsa, *ec, *ed;
} bench_keys;

static void keys_generate(bench_keys *k)
{
    k->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    k->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    k->ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (k->rsa == NULL || k->ec == NULL || k->ed == NULL)
        die("key generation failed");
}

static void keys_release(bench_keys *k)
{
    EVP_PKEY_free(k->rsa);
    EVP_PKEY_free(k->ec);
    EVP_PKEY_free(k->ed);
}

/* The big-endian bytes of k's integer parameter name, base64url, into out:
 * width bytes left-padded with zeros (an EC coordinate), or 0 for the
 * minimal length (an RSA modulus or exponent). */
static void b64_param(const EVP_PKEY *k, const char *name, int width, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char raw[1024];
    if (EVP_PKEY_get_bn_param(k, name, &bn) != 1 || BN_num_bytes(bn) > (int)sizeof raw)
        die("cannot read the key's %s", name);
    int n = width > 0 ? BN_bn2binpad(bn, raw, width) : BN_bn2bin(bn, raw);
    BN_free(bn);
    if (n <= 0)
        die("cannot encode the key's %s", name);
    b64url_encode(raw, (size_t)n, out);
}

/* The public JWKs of k as a JWKS document, into out. Kids: bench-rs256
 * and bench-ps256 (the RSA key, pinned to each algorithm), bench-es256,
 * bench-eddsa. */
static void jwks_text(const bench_keys *k, char *out, size_t outlen)
{
    char n[400], e[16], x[64], y[64], ed[64];
    unsigned char raw[32];
    size_t rl = sizeof raw;

    b64_param(k->rsa, OSSL_PKEY_PARAM_RSA_N, 0, n);
    b64_param(k->rsa, OSSL_PKEY_PARAM_RSA_E, 0, e);
    b64_param(k->ec, OSSL_PKEY_PARAM_EC_PUB_X, 32, x);
    b64_param(k->ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32, y);
    if (EVP_PKEY_get_raw_public_key(k->ed, raw, &rl) != 1 || rl != sizeof raw)
        die("cannot read the Ed25519 public key");
    b64url_encode(raw, rl, ed);
    int w = snprintf(out, outlen,
        "{\"keys\":[\n"
        "{\"kty\":\"RSA\",\"kid\":\"bench-rs256\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"},\n"
        "{\"kty\":\"RSA\",\"kid\":\"bench-ps256\",\"use\":\"sig\",\"alg\":\"PS256\",\"n\":\"%s\",\"e\":\"%s\"},\n"
        "{\"kty\":\"EC\",\"kid\":\"bench-es256\",\"use\":\"sig\",\"alg\":\"ES256\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},\n"
        "{\"kty\":\"OKP\",\"kid\":\"bench-eddsa\",\"use\":\"sig\",\"alg\":\"EdDSA\",\"crv\":\"Ed25519\",\"x\":\"%s\"}\n"
        "]}",
        n, e, n, e, x, y, ed);
    if (w < 0 || (size_t)w >= outlen)
        die("the JWKS does not fit");
}

/* ---- tokens ---- */

/* The algorithms, their kid in jwks_text, and the key that signs them
 * (NULL: HS256 with SECRET). */
typedef struct alg_case {
    const char *alg, *kid;
    EVP_PKEY *key;
} alg_case;

/* The JWS signature of msg[0..mlen) for a's algorithm into sig; its
 * length. ES256 comes out of OpenSSL as DER and goes into the token as
 * r || s, 32 bytes each. */
static size_t sign_raw(const alg_case *a, const char *msg, size_t mlen, unsigned char *sig,
                       size_t max)
{
    if (a->key == NULL) {
        unsigned int ml = 0;
        if (max < 32 || HMAC(EVP_sha256(), SECRET, (int)(sizeof SECRET - 1),
                             (const unsigned char *)msg, mlen, sig, &ml) == NULL)
            die("HMAC failed");
        return ml;
    }
    int eddsa = strcmp(a->alg, "EdDSA") == 0, es256 = strcmp(a->alg, "ES256") == 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    size_t sl = max;
    if (md == NULL ||
        EVP_DigestSignInit_ex(md, &pc, eddsa ? NULL : "SHA256", NULL, NULL, a->key, NULL) != 1)
        die("%s: cannot start signing", a->alg);
    if (strcmp(a->alg, "PS256") == 0 && /* RFC 7518 3.5: MGF1-SHA256, salt of 32 bytes */
        (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md_name(pc, "SHA256", NULL) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) != 1))
        die("PS256: cannot set the padding");
    if (EVP_DigestSign(md, sig, &sl, (const unsigned char *)msg, mlen) != 1)
        die("%s: signing failed", a->alg);
    EVP_MD_CTX_free(md);
    if (!es256)
        return sl;
    const unsigned char *der = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &der, (long)sl);
    if (es == NULL || max < 64 || BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32)
        die("ES256: cannot convert the signature");
    ECDSA_SIG_free(es);
    return 64;
}

/* A caller token {"sub":sub,"exp":exp} for a's algorithm, malloc'd. */
static char *sign_token(const alg_case *a, const char *sub, long long exp)
{
    char header[128], claims[256];
    unsigned char sig[1024];
    int hl = a->key ? snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\"}", a->alg, a->kid)
                    : snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    int cl = snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":%lld}", sub, exp);
    if (hl < 0 || (size_t)hl >= sizeof header || cl < 0 || (size_t)cl >= sizeof claims)
        die("the subject is too long");
    size_t h64 = B64_ENCODED_LEN((size_t)hl), c64 = B64_ENCODED_LEN((size_t)cl);
    char *tok = malloc(h64 + 1 + c64 + 1 + B64_ENCODED_LEN(sizeof sig) + 1);
    if (tok == NULL)
        die("out of memory");
    b64url_encode((const unsigned char *)header, (size_t)hl, tok);
    tok[h64] = '.';
    b64url_encode((const unsigned char *)claims, (size_t)cl, tok + h64 + 1);
    size_t mlen = h64 + 1 + c64;
    size_t sl = sign_raw(a, tok, mlen, sig, sizeof sig);
    tok[mlen] = '.';
    b64url_encode(sig, sl, tok + mlen + 1);
    return tok;
}

/* ---- --mint ---- */

/* Writes text and a newline to DIR/name. */
static void write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        die("%s: path too long", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) == EOF || fputc('\n', f) == EOF || fclose(f) != 0)
        die("cannot write %s", path);
}

static int mint(const char *dir, const char *sub)
{
    static char text[TEXT_MAX];
    bench_keys k;
    for (const char *c = sub; *c; c++) /* written into the claims as is */
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
            die("SUB must not need escaping in JSON");
    keys_generate(&k);
    jwks_text(&k, text, sizeof text);
    write_file(dir, "jwks.json", text);

    const alg_case cases[] = { { "RS256", "bench-rs256", k.rsa },
                               { "ES256", "bench-es256", k.ec },
                               { "EdDSA", "bench-eddsa", k.ed } };
    const char *files[] = { "rs256.tok", "es256.tok", "eddsa.tok" };
    long long exp = (long long)time(NULL) + 86400;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = sign_token(&cases[i], sub, exp);
        write_file(dir, files[i], tok);
        free(tok);
    }
    keys_release(&k);
    return 0;
}

/* ---- the micro-benchmark ---- */

/* One run of one algorithm, on a thread of its own (an empty cache). */
typedef struct run {
    const token_policy *policy;
    char *const *toks; /* TOKENS + 1 distinct tokens: [0..TOKENS) timed, [TOKENS] warms up */
    int64_t now;
    double uncached_us, cached_us;
} run;

static void verify_or_die(const run *r, const char *tok)
{
    token_claims who;
    if (token_verify(r->policy, tok, strlen(tok), r->now, &who) != RC_OK)
        die("a token was refused");
}

static void *run_thread(void *arg)
{
    run *r = arg;
    /* the first verification of a thread allocates its cache: not timed */
    verify_or_die(r, r->toks[TOKENS]);

    double t0 = now_s();
    for (size_t i = 0; i < TOKENS; i++)
        verify_or_die(r, r->toks[i]);
    r->uncached_us = (now_s() - t0) * 1e6 / TOKENS;

    const char *tok = r->toks[0]; /* in the cache after one more verification */
    size_t len = strlen(tok);
    token_claims who;
    verify_or_die(r, tok);
    t0 = now_s();
    for (size_t i = 0; i < CACHED_ROUNDS; i++)
        if (token_verify(r->policy, tok, len, r->now, &who) != RC_OK)
            die("a cached token was refused");
    r->cached_us = (now_s() - t0) * 1e6 / CACHED_ROUNDS;
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int micro(void)
{
    static char text[TEXT_MAX];
    char err[300];
    bench_keys k;
    jwks *ks = NULL;
    keys_generate(&k);
    jwks_text(&k, text, sizeof text);
    if (jwks_parse(text, strlen(text), &ks, NULL, NULL, err, sizeof err) != RC_OK)
        die("jwks_parse: %s", err);
    /* as the service's defaults: no issuer or audience, 30 s of leeway */
    const token_policy policy = { SECRET, sizeof SECRET - 1, NULL, NULL, 30, "session:admin",
                                  NULL, 0, ks };

    const alg_case cases[] = { { "HS256", NULL, NULL },
                               { "RS256", "bench-rs256", k.rsa },
                               { "PS256", "bench-ps256", k.rsa },
                               { "ES256", "bench-es256", k.ec },
                               { "EdDSA", "bench-eddsa", k.ed } };
    enum { NALGS = sizeof cases / sizeof cases[0], NCASES = NALGS + 1 }; /* + session */
    static char *toks[NCASES][TOKENS + 1];
    int64_t now = (int64_t)time(NULL);
    for (size_t c = 0; c < NALGS; c++)
        for (size_t i = 0; i <= TOKENS; i++) /* one exp each: no two tokens alike */
            toks[c][i] = sign_token(&cases[c], "bench-user", (long long)now + 86400 + (long long)i);
    for (size_t i = 0; i <= TOKENS; i++) { /* a session each */
        char sid[SESSION_ID_MAX + 1];
        if (session_id_generate(sid) != RC_OK ||
            token_sign_session(&policy, "bench-user", sid, now, now + 86400, &toks[NALGS][i]) !=
                RC_OK)
            die("cannot sign a session token");
    }

    /* runs interleaved across algorithms, so a slow spell of a shared
     * machine does not land on one algorithm alone */
    double unc[NCASES][REPS], hit[NCASES][REPS];
    for (size_t rep = 0; rep < REPS; rep++) {
        for (size_t c = 0; c < NCASES; c++) {
            run r = { &policy, toks[c], now, 0, 0 };
            pthread_t th;
            if (pthread_create(&th, NULL, run_thread, &r) != 0 || pthread_join(th, NULL) != 0)
                die("cannot run a thread");
            unc[c][rep] = r.uncached_us;
            hit[c][rep] = r.cached_us;
        }
    }

    printf("token_verify micro-benchmark (one thread, in process; us per verification, "
           "median of %d runs; uncached: %d distinct tokens once each, cached: one token %d times):\n",
           REPS, TOKENS, CACHED_ROUNDS);
    printf("%-7s %6s %12s %10s %8s\n", "alg", "bytes", "uncached us", "cached us", "ratio");
    for (size_t c = 0; c < NCASES; c++) {
        double u = median(unc[c], REPS), h = median(hit[c], REPS);
        printf("%-7s %6zu %12.2f %10.3f %7.0fx\n", c < NALGS ? cases[c].alg : "session",
               strlen(toks[c][0]), u, h, u / h);
    }

    for (size_t c = 0; c < NCASES; c++)
        for (size_t i = 0; i <= TOKENS; i++)
            free(toks[c][i]);
    jwks_free(ks);
    keys_release(&k);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--mint") == 0)
        return mint(argv[2], argv[3]);
    if (argc == 1)
        return micro();
    fprintf(stderr, "usage: token_bench [--mint DIR SUB]\n");
    return 2;
}
