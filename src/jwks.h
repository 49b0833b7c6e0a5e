/* jwks.h -- an identity provider's public keys (a JWKS, RFC 7517) and the
 * signatures they verify: RS256 and PS256 with RSA keys of 2048 to 8192
 * bits, ES256 with EC keys on P-256 (RFC 7518), EdDSA with OKP keys on
 * Ed25519 (RFC 8037), all on OpenSSL 3's EVP API.
 *
 * A parsed set is immutable and may be shared by any number of threads.
 * Symmetric ("oct") keys are never loaded: HS256 is the service's own
 * secrets' business (token.c), never a JWKS key's. */
#ifndef JWKS_H
#define JWKS_H

#include <stddef.h>
#include <stdint.h>
#include "rc.h"

#define JWKS_FILE_MAX (1024 * 1024) /* bytes of a JWKS file */
#define JWKS_KEYS_MAX 256           /* entries of its "keys" array */
#define JWKS_KID_MAX 256            /* bytes of a "kid" */
#define JWKS_SIG_MAX 1024           /* bytes of a signature (an 8192-bit RSA key's) */
#define JWKS_TRIES_MAX 4            /* keys tried for one token (entries sharing a kid) */

typedef enum jwks_alg {
    JWKS_ALG_NONE = 0, /* not an algorithm a JWKS key verifies */
    JWKS_RS256,
    JWKS_PS256,
    JWKS_ES256,
    JWKS_EDDSA
} jwks_alg;

typedef struct jwks jwks;

/* Told why one entry of the set was skipped (one line, no key material). */
typedef void (*jwks_warn_fn)(void *arg, const char *why);

/* The algorithm a JWS header's "alg" value name[0..len) names, or
 * JWKS_ALG_NONE (HS256 included). */
jwks_alg jwks_alg_named(const char *name, size_t len);

/* Parses a JWKS from text[0..len). Pure: no I/O. Entries that cannot be
 * used (no "kid", an unsupported "kty", "crv" or "alg", "use" other than
 * "sig", an RSA modulus outside 2048..8192 bits, a point off its curve,
 * malformed members, an Ed25519 point of small order) are skipped, each told to warn (which may be NULL).
 * RC_OK: *out holds at least one usable key; the caller frees it with
 * jwks_free. RC_INVALID: not one JSON object with a "keys" array, or no
 * usable key; one line saying why in err. RC_NOMEM. */
rc_t jwks_parse(const char *text, size_t len, jwks **out, jwks_warn_fn warn, void *arg,
                char *err, size_t errlen);

/* jwks_parse of the file at path: a regular file of at most JWKS_FILE_MAX
 * bytes (opened without waiting: a FIFO is refused, never waited on). One
 * that cannot be read is RC_INVALID too, with the reason in err. */
rc_t jwks_load(const char *path, jwks **out, jwks_warn_fn warn, void *arg, char *err,
               size_t errlen);

void jwks_free(jwks *ks);

/* The number of usable keys in ks. */
size_t jwks_count(const jwks *ks);

/* A number no other set parsed by this process has (0 for NULL): what a
 * cache of verified tokens is keyed by. */
uint64_t jwks_serial(const jwks *ks);

/* Verifies the JWS signature sig[0..slen) of msg[0..mlen) (a token's
 * "header.claims") for alg with a key of ks named kid[0..kid_len) (the
 * first JWKS_TRIES_MAX of them that fit alg, when entries share it). RC_OK;
 * or RC_UNAUTHORIZED: no such key, or its type, curve or pinned "alg" does
 * not fit alg, or the signature is wrong or malformed; or RC_NOMEM. */
rc_t jwks_verify(const jwks *ks, const char *kid, size_t kid_len, jwks_alg alg,
                 const unsigned char *msg, size_t mlen, const unsigned char *sig, size_t slen);

#endif
