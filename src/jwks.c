/* jwks.c -- a JWKS parsed into OpenSSL public keys, and JWS signature
 * checks with them (see jwks.h). Every entry is judged on its own: what
 * cannot be used is skipped with a reason, never half-loaded. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "b64.h"
#include "jtext.h"
#include "jwks.h"

#define RSA_BITS_MIN 2048
#define RSA_BITS_MAX 8192
#define P256_BYTES 32
#define ED25519_BYTES 32
#define DEPTH_MAX 16

typedef enum kty { KTY_RSA, KTY_EC, KTY_OKP } kty;

typedef struct jwks_key {
    char kid[JWKS_KID_MAX + 1];
    size_t kid_len;
    kty type;
    jwks_alg pinned;  /* its "alg"; JWKS_ALG_NONE: any algorithm of its type */
    size_t sig_len;   /* the length of its signatures */
    EVP_PKEY *pkey;
} jwks_key;

struct jwks {
    uint64_t serial;
    size_t n;
    jwks_key keys[];
};

static atomic_uint_fast64_t last_serial;

jwks_alg jwks_alg_named(const char *name, size_t len)
{
    static const struct {
        const char *name;
        jwks_alg alg;
    } names[] = { { "RS256", JWKS_RS256 }, { "PS256", JWKS_PS256 },
                  { "ES256", JWKS_ES256 }, { "EdDSA", JWKS_EDDSA } };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0)
            return names[i].alg;
    return JWKS_ALG_NONE;
}

static int fits(kty t, jwks_alg alg)
{
    switch (alg) {
    case JWKS_RS256:
    case JWKS_PS256:
        return t == KTY_RSA;
    case JWKS_ES256:
        return t == KTY_EC;
    case JWKS_EDDSA:
        return t == KTY_OKP;
    default:
        return 0;
    }
}

/* The bytes of the base64url member name of k into out (room for max),
 * RC_OK with *len; RC_INVALID with why when absent or malformed. */
static rc_t member_bytes(json_t *k, const char *name, unsigned char *out, size_t max,
                         size_t *len, char *why, size_t whylen)
{
    json_t *v = json_object_get(k, name);
    if (!json_is_string(v)) {
        snprintf(why, whylen, "no \"%s\" string", name);
        return RC_INVALID;
    }
    size_t sl = json_string_length(v);
    if (sl == 0 || B64_DECODED_MAX(sl) > max ||
        b64url_decode(json_string_value(v), sl, out, len) != RC_OK) {
        snprintf(why, whylen, "\"%s\" is not base64url of a fitting length", name);
        return RC_INVALID;
    }
    return RC_OK;
}

/* A public key of type name ("RSA", "EC") from params, or NULL. */
static EVP_PKEY *from_params(const char *name, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
    EVP_PKEY *pkey = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static rc_t rsa_key(json_t *k, jwks_key *key, char *why, size_t whylen)
{
    unsigned char n[RSA_BITS_MAX / 8 + 1], e[9];
    size_t nl, el;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    rc_t rc = RC_INVALID;

    if (member_bytes(k, "n", n, sizeof n, &nl, why, whylen) != RC_OK ||
        member_bytes(k, "e", e, sizeof e, &el, why, whylen) != RC_OK)
        return RC_INVALID;
    if ((bn = BN_bin2bn(n, (int)nl, NULL)) == NULL || (be = BN_bin2bn(e, (int)el, NULL)) == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    int bits = BN_num_bits(bn);
    if (bits < RSA_BITS_MIN || bits > RSA_BITS_MAX) {
        snprintf(why, whylen, "an RSA modulus of %d bits (%d to %d are used)", bits,
                 RSA_BITS_MIN, RSA_BITS_MAX);
        goto out;
    }
    /* e = 1 would let anyone sign; an even e is no RSA key */
    if (BN_num_bits(be) > 64 || !BN_is_odd(be) || BN_is_one(be) || !BN_is_odd(bn)) {
        snprintf(why, whylen, "not a valid RSA public key");
        goto out;
    }
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1) {
        rc = RC_NOMEM;
        goto out;
    }
    if ((key->pkey = from_params("RSA", bld)) == NULL) {
        snprintf(why, whylen, "not a valid RSA public key");
        goto out;
    }
    key->type = KTY_RSA;
    key->sig_len = (size_t)BN_num_bytes(bn);
    rc = RC_OK;
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return rc;
}

static int string_is(json_t *v, const char *want)
{
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

static rc_t ec_key(json_t *k, jwks_key *key, char *why, size_t whylen)
{
    unsigned char pub[1 + 2 * P256_BYTES + 2];
    size_t xl, yl;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY_CTX *check = NULL;

    if (!string_is(json_object_get(k, "crv"), "P-256")) {
        snprintf(why, whylen, "an EC key not on P-256");
        return RC_INVALID;
    }
    pub[0] = 0x04; /* uncompressed point: x, then y */
    if (member_bytes(k, "x", pub + 1, P256_BYTES + 1, &xl, why, whylen) != RC_OK ||
        member_bytes(k, "y", pub + 1 + P256_BYTES, P256_BYTES + 1, &yl, why, whylen) != RC_OK)
        return RC_INVALID;
    if (xl != P256_BYTES || yl != P256_BYTES) {
        snprintf(why, whylen, "EC coordinates that are not %d bytes", P256_BYTES);
        return RC_INVALID;
    }
    rc_t rc = RC_NOMEM;
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                         1 + 2 * P256_BYTES) != 1)
        goto out;
    key->pkey = from_params("EC", bld);
    /* a point off the curve must never be used (invalid-curve attacks):
     * OpenSSL 3.0's import refuses one already; the check says so here */
    if (key->pkey == NULL || (check = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL)) == NULL ||
        EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(key->pkey);
        key->pkey = NULL;
        snprintf(why, whylen, "an EC point that is not on P-256");
        rc = RC_INVALID;
        goto out;
    }
    key->type = KTY_EC;
    key->sig_len = 2 * P256_BYTES;
    rc = RC_OK;
out:
    EVP_PKEY_CTX_free(check);
    OSSL_PARAM_BLD_free(bld);
    return rc;
}

/* The encodings of the Ed25519 points of small order (y, little-endian;
 * the sign bit of x, bit 255, is ignored): 0, 1, the two y of the points
 * of order 8, p - 1, and 0 and 1 again written as p and p + 1. With such a
 * point as the public key, R = that point and S = 0 verify any message:
 * OpenSSL 3.0 does not refuse them, so we do. */
static const unsigned char SMALL_ORDER[][ED25519_BYTES] = {
    { 0x00 },
    { 0x01 },
    { 0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
      0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05 },
    { 0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
      0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a },
    { 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
    { 0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
    { 0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
};

static int small_order(const unsigned char x[ED25519_BYTES])
{
    for (size_t i = 0; i < sizeof SMALL_ORDER / sizeof SMALL_ORDER[0]; i++)
        if (memcmp(x, SMALL_ORDER[i], ED25519_BYTES - 1) == 0 &&
            (x[ED25519_BYTES - 1] & 0x7f) == SMALL_ORDER[i][ED25519_BYTES - 1])
            return 1;
    return 0;
}

static rc_t okp_key(json_t *k, jwks_key *key, char *why, size_t whylen)
{
    unsigned char x[ED25519_BYTES + 2];
    size_t xl;
    if (!string_is(json_object_get(k, "crv"), "Ed25519")) {
        snprintf(why, whylen, "an OKP key not on Ed25519");
        return RC_INVALID;
    }
    if (member_bytes(k, "x", x, sizeof x, &xl, why, whylen) != RC_OK)
        return RC_INVALID;
    if (xl != ED25519_BYTES) {
        snprintf(why, whylen, "an Ed25519 key that is not %d bytes", ED25519_BYTES);
        return RC_INVALID;
    }
    if (small_order(x)) {
        snprintf(why, whylen, "an Ed25519 point of small order (it would verify forgeries)");
        return RC_INVALID;
    }
    key->pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, xl);
    if (key->pkey == NULL) {
        snprintf(why, whylen, "not a valid Ed25519 public key");
        return RC_INVALID;
    }
    key->type = KTY_OKP;
    key->sig_len = 2 * ED25519_BYTES;
    return RC_OK;
}

/* Whether key_ops (absent, or an array of strings) allows "verify". */
static int ops_allow_verify(json_t *ops)
{
    size_t i;
    json_t *op;
    if (ops == NULL)
        return 1;
    if (!json_is_array(ops))
        return 0;
    json_array_foreach(ops, i, op) {
        if (string_is(op, "verify"))
            return 1;
    }
    return 0;
}

/* One entry of "keys" into key. RC_OK; RC_INVALID with why (it is skipped);
 * RC_NOMEM. */
static rc_t parse_key(json_t *k, jwks_key *key, char *why, size_t whylen)
{
    memset(key, 0, sizeof *key);
    if (!json_is_object(k)) {
        snprintf(why, whylen, "not a JSON object");
        return RC_INVALID;
    }
    json_t *kid = json_object_get(k, "kid"), *kt = json_object_get(k, "kty");
    json_t *use = json_object_get(k, "use"), *alg = json_object_get(k, "alg");
    if (!json_is_string(kid) || json_string_length(kid) == 0 ||
        json_string_length(kid) > JWKS_KID_MAX) {
        snprintf(why, whylen, "no \"kid\" (a string of 1 to %d bytes) to match tokens by",
                 JWKS_KID_MAX);
        return RC_INVALID;
    }
    key->kid_len = json_string_length(kid);
    memcpy(key->kid, json_string_value(kid), key->kid_len);
    if (!json_is_string(kt)) {
        snprintf(why, whylen, "no \"kty\"");
        return RC_INVALID;
    }
    if (use != NULL && !string_is(use, "sig")) {
        snprintf(why, whylen, "\"use\" is not \"sig\"");
        return RC_INVALID;
    }
    if (!ops_allow_verify(json_object_get(k, "key_ops"))) {
        snprintf(why, whylen, "\"key_ops\" does not allow \"verify\"");
        return RC_INVALID;
    }
    if (alg != NULL) {
        key->pinned = json_is_string(alg) ? jwks_alg_named(json_string_value(alg),
                                                           json_string_length(alg))
                                          : JWKS_ALG_NONE;
        if (key->pinned == JWKS_ALG_NONE) {
            snprintf(why, whylen, "an \"alg\" that is not RS256, PS256, ES256 or EdDSA");
            return RC_INVALID;
        }
    }
    const char *t = json_string_value(kt);
    rc_t rc;
    if (strcmp(t, "RSA") == 0)
        rc = rsa_key(k, key, why, whylen);
    else if (strcmp(t, "EC") == 0)
        rc = ec_key(k, key, why, whylen);
    else if (strcmp(t, "OKP") == 0)
        rc = okp_key(k, key, why, whylen);
    else if (strcmp(t, "oct") == 0) {
        snprintf(why, whylen, "a symmetric (\"oct\") key: HS256 is verified with JWT_SECRET only");
        return RC_INVALID;
    } else {
        snprintf(why, whylen, "a key type that is not RSA, EC or OKP");
        return RC_INVALID;
    }
    if (rc == RC_OK && key->pinned != JWKS_ALG_NONE && !fits(key->type, key->pinned)) {
        snprintf(why, whylen, "an \"alg\" that does not fit its key type");
        EVP_PKEY_free(key->pkey);
        key->pkey = NULL;
        rc = RC_INVALID;
    }
    ERR_clear_error();
    return rc;
}

/* The kid of entry k for a warning, when it is short printable ASCII. */
static const char *printable_kid(json_t *k)
{
    json_t *kid = json_is_object(k) ? json_object_get(k, "kid") : NULL;
    if (!json_is_string(kid) || json_string_length(kid) > 64)
        return NULL;
    for (const char *p = json_string_value(kid); *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
            return NULL;
    return json_string_value(kid);
}

rc_t jwks_parse(const char *text, size_t len, jwks **out, jwks_warn_fn warn, void *arg,
                char *err, size_t errlen)
{
    json_t *root = NULL;
    jwks *ks = NULL;
    rc_t rc = RC_INVALID;
    char why[160], first[256] = "";
    size_t skipped = 0;

    *out = NULL;
    if (len > JWKS_FILE_MAX) {
        snprintf(err, errlen, "larger than %d bytes", JWKS_FILE_MAX);
        return RC_INVALID;
    }
    if (jtext_depth(text, len) > DEPTH_MAX) {
        snprintf(err, errlen, "JSON nested deeper than %d levels", DEPTH_MAX);
        return RC_INVALID;
    }
    json_error_t jerr;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "not JSON (line %d, column %d)", jerr.line, jerr.column);
        return RC_INVALID;
    }
    json_t *keys = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_array(keys)) {
        snprintf(err, errlen, "not a JSON object with a \"keys\" array");
        goto out;
    }
    size_t n = json_array_size(keys);
    if (n > JWKS_KEYS_MAX) {
        snprintf(err, errlen, "more than %d keys", JWKS_KEYS_MAX);
        goto out;
    }
    if ((ks = calloc(1, sizeof *ks + n * sizeof ks->keys[0])) == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *k = json_array_get(keys, i);
        rc_t krc = parse_key(k, &ks->keys[ks->n], why, sizeof why);
        if (krc == RC_NOMEM) {
            rc = RC_NOMEM;
            goto out;
        }
        if (krc == RC_OK) {
            ks->n++;
            continue;
        }
        char line[256];
        const char *kid = printable_kid(k);
        if (kid != NULL)
            snprintf(line, sizeof line, "key %zu (kid \"%s\") skipped: %s", i, kid, why);
        else
            snprintf(line, sizeof line, "key %zu skipped: %s", i, why);
        if (skipped++ == 0)
            snprintf(first, sizeof first, "%s", line);
        if (warn != NULL)
            warn(arg, line);
    }
    if (ks->n == 0) {
        if (n == 0)
            snprintf(err, errlen, "no usable key (the \"keys\" array is empty)");
        else
            snprintf(err, errlen, "no usable key (%zu skipped; %s)", skipped, first);
        goto out;
    }
    ks->serial = atomic_fetch_add(&last_serial, 1) + 1;
    *out = ks;
    ks = NULL;
    rc = RC_OK;
out:
    jwks_free(ks);
    json_decref(root);
    return rc;
}

rc_t jwks_load(const char *path, jwks **out, jwks_warn_fn warn, void *arg, char *err,
               size_t errlen)
{
    struct stat st;
    char *text = NULL;
    rc_t rc = RC_INVALID;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not stall a start */
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return RC_INVALID;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        goto out;
    }
    if (st.st_size > JWKS_FILE_MAX) {
        snprintf(err, errlen, "%s is larger than %d bytes", path, JWKS_FILE_MAX);
        goto out;
    }
    size_t want = (size_t)st.st_size, got = 0;
    if ((text = malloc(want + 1)) == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    while (got < want) {
        ssize_t r = read(fd, text + got, want - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, r < 0 ? strerror(errno) : "short read");
            goto out;
        }
        got += (size_t)r;
    }
    char inner[400];
    rc = jwks_parse(text, got, out, warn, arg, inner, sizeof inner);
    if (rc == RC_INVALID)
        snprintf(err, errlen, "%s: %s", path, inner);
out:
    free(text);
    close(fd);
    return rc;
}

void jwks_free(jwks *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->n; i++)
        EVP_PKEY_free(ks->keys[i].pkey);
    free(ks);
}

size_t jwks_count(const jwks *ks)
{
    return ks ? ks->n : 0;
}

uint64_t jwks_serial(const jwks *ks)
{
    return ks ? ks->serial : 0;
}

/* An ES256 signature (r || s, 32 bytes each) as the DER that OpenSSL
 * verifies, into der (room for max). Its length, or 0. */
static size_t ecdsa_der(const unsigned char *sig, unsigned char *der, size_t max)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, P256_BYTES, NULL), *s = BN_bin2bn(sig + P256_BYTES, P256_BYTES, NULL);
    size_t len = 0;
    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* es owns them */
        int need = i2d_ECDSA_SIG(es, NULL);
        unsigned char *p = der;
        if (need > 0 && (size_t)need <= max && i2d_ECDSA_SIG(es, &p) == need)
            len = (size_t)need;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len;
}

static rc_t verify_with(const jwks_key *key, jwks_alg alg, const unsigned char *msg,
                        size_t mlen, const unsigned char *sig, size_t slen)
{
    unsigned char der[2 * P256_BYTES + 16];
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    rc_t rc = RC_UNAUTHORIZED;

    if (slen != key->sig_len)
        return RC_UNAUTHORIZED;
    if (alg == JWKS_ES256) {
        if ((slen = ecdsa_der(sig, der, sizeof der)) == 0)
            goto out;
        sig = der;
    }
    if ((md = EVP_MD_CTX_new()) == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    const char *digest = alg == JWKS_EDDSA ? NULL : "SHA256";
    if (EVP_DigestVerifyInit_ex(md, &pctx, digest, NULL, NULL, key->pkey, NULL) != 1)
        goto out;
    if (alg == JWKS_RS256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
        goto out;
    /* RFC 7518 3.5: MGF1 with SHA-256, a salt as long as the hash */
    if (alg == JWKS_PS256 &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        goto out;
    if (EVP_DigestVerify(md, sig, slen, msg, mlen) == 1)
        rc = RC_OK;
out:
    EVP_MD_CTX_free(md); /* frees pctx too */
    ERR_clear_error();   /* no failure of ours left for the thread's next caller */
    return rc;
}

rc_t jwks_verify(const jwks *ks, const char *kid, size_t kid_len, jwks_alg alg,
                 const unsigned char *msg, size_t mlen, const unsigned char *sig, size_t slen)
{
    if (ks == NULL || alg == JWKS_ALG_NONE)
        return RC_UNAUTHORIZED;
    unsigned tried = 0;
    for (size_t i = 0; i < ks->n && tried < JWKS_TRIES_MAX; i++) {
        const jwks_key *k = &ks->keys[i];
        if (k->kid_len != kid_len || memcmp(k->kid, kid, kid_len) != 0 || !fits(k->type, alg) ||
            (k->pinned != JWKS_ALG_NONE && k->pinned != alg))
            continue;
        tried++;
        rc_t rc = verify_with(k, alg, msg, mlen, sig, slen);
        if (rc != RC_UNAUTHORIZED)
            return rc;
    }
    return RC_UNAUTHORIZED;
}
