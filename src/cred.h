/* cred.h -- where a request carries its caller's token: the Bearer token
 * of an Authorization header, or a named cookie. Pure parsers over
 * (bytes, length), shared by the service's HTTP path (api.c) and the
 * gateway's check (gate.c); unit-tested and fuzzed. */
#ifndef CRED_H
#define CRED_H

#include <stddef.h>
#include "buf.h"
#include "rc.h"

/* Extracts the token of an Authorization header value: scheme "Bearer"
 * (any case), one or more spaces, the token, optional trailing spaces.
 * RC_INVALID when the value is not of that form. */
rc_t cred_bearer(const char *value, size_t len, str_t *token);

/* Whether an Authorization header value offers a credential under the
 * Bearer scheme, well-formed or not: "Bearer" (any case), a space, then
 * something other than blanks. What makes a 401 say invalid_token: with
 * another scheme, or a bare "Bearer", no token was presented (RFC 6750,
 * 3.1). */
int cred_bearer_offered(const char *value, size_t len);

/* Finds cookie `name` in a Cookie header value ("a=b; c=d"). A value in
 * double quotes is unquoted. RC_NOT_FOUND when absent. */
rc_t cred_cookie(const char *value, size_t len, const char *name, size_t nlen, str_t *out);

#endif
