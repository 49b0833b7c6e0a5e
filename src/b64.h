/* b64.h -- base64url without padding (RFC 4648 section 5), strict.
 *
 * Decoding refuses '=', any byte outside the url-safe alphabet, a length of
 * 1 mod 4 and non-zero trailing bits, so that each byte string has exactly
 * one accepted encoding (no signature malleability). */
#ifndef B64_H
#define B64_H

#include <stddef.h>
#include "rc.h"

/* Characters needed to encode n bytes (no padding, no NUL). */
#define B64_ENCODED_LEN(n) (((n) * 4 + 2) / 3)
/* Upper bound of bytes decoded from n characters. */
#define B64_DECODED_MAX(n) (((n) * 3) / 4)

/* Writes B64_ENCODED_LEN(len) characters to out, then a NUL. */
void b64url_encode(const unsigned char *in, size_t len, char *out);

/* A byte's value in base64url's alphabet plus one; 0: not in it. */
extern const unsigned char b64url_value1[256];

/* Decodes in[0..len) into out (room for B64_DECODED_MAX(len) bytes).
 * RC_OK with *outlen set, or RC_INVALID. */
rc_t b64url_decode(const char *in, size_t len, unsigned char *out, size_t *outlen);

#endif
