/* body.h -- the decoders of request bodies: pure functions over (bytes,
 * length), unit-tested and fuzzed. Their refusals name the limits they
 * enforce from the constants that set them. */
#ifndef BODY_H
#define BODY_H

#include <stddef.h>
#include <stdint.h>
#include "rc.h"
#include "session.h"

#define BODY_DEPTH_MAX 32 /* JSON nesting refused beyond this */

/* The decoded body of POST /session. */
typedef struct body_create {
    int has_user_id;
    char user_id[SESSION_USER_MAX + 1];
    size_t user_id_len;
    int has_ttl;
    int64_t ttl;
    int has_idle_timeout;
    int64_t idle_timeout; /* 0: none */
    char *data_json; /* malloc'd compact "data", "{}" when absent; free with body_create_free */
    size_t data_len;
    char detail[160]; /* why the body was refused */
} body_create_t;

/* Parses the body of POST /session. Pure over (body, len): an empty body is
 * all defaults. RC_INVALID with req->detail set on anything the contract
 * refuses. max_ttl bounds "ttl" and "idle_timeout". */
rc_t body_create_parse(const char *body, size_t len, int64_t max_ttl, body_create_t *req);
void body_create_free(body_create_t *req);

#endif
