/* routes.h -- the contract's routes as data: one table (routes_table) in
 * which each route declares its method and path pattern, the processes
 * that serve it, how its caller authenticates, its body decoder, the
 * function that builds its store work and the function that renders the
 * result. Everything else that lists routes (the four executables, the 405
 * Allow header, the metrics labels, docs/openapi.yaml, deploy/nginx.conf,
 * the tests) derives from this table or is checked against it
 * (`sessiond --routes` prints it).
 *
 * Build and render functions are pure: they read a route_call and write
 * into it (the job for the executor, the answer's body and headers), and
 * know nothing of HTTP, threads or the kind of store. A failure is a core
 * rc_t with a detail; api.c turns it into the status. */
#ifndef ROUTES_H
#define ROUTES_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "config.h"
#include "exec.h"
#include "keys.h"
#include "rc.h"
#include "session.h"
#include "token.h"
#include "body.h"

enum {
    GROUP_CREATE = 1u << 0,   /* createSession */
    GROUP_READ = 1u << 1,     /* readSession */
    GROUP_CLOSE = 1u << 2,    /* closeSession */
    GROUP_ALWAYS = 1u << 3,   /* health, readiness, metrics: every process */
    GROUP_ALL = GROUP_CREATE | GROUP_READ | GROUP_CLOSE | GROUP_ALWAYS
};

/* How a route's caller proves who it is (api.c checks it before build):
 *   NONE     anyone;
 *   CALLER   a caller token (Authorization: Bearer); a session token is
 *            refused with 403 once its session is known live;
 *   SESSION  a session token, from Authorization or the session cookie,
 *            whose session is live (its record is in job.auth_rec);
 *   EITHER   a caller token, or a session token whose session is live;
 *   OWN      as SESSION, but a caller token is 403 (it authenticates, and
 *            is not allowed: only the session's own token acts on it). */
typedef enum route_auth { ROUTE_AUTH_NONE, ROUTE_AUTH_CALLER, ROUTE_AUTH_SESSION,
                          ROUTE_AUTH_EITHER, ROUTE_AUTH_OWN } route_auth;

#define ROUTE_PARAMS_MAX 2

/* What a route may ask of the request beyond its path and body (api.c
 * answers through the transport). */
typedef struct route_io {
    const char *(*header)(void *arg, const char *name);
    /* RC_NOT_FOUND when absent, RC_INVALID when its percent-encoding is
     * malformed, RC_TOO_LARGE when it decodes to no string that fits out */
    rc_t (*query)(void *arg, const char *name, char *out, size_t outlen);
    void (*client_ip)(void *arg, char *out, size_t outlen);
    /* adds a header to the answer (value copied; dropped from an error answer) */
    void (*add_header)(void *arg, const char *name, const char *value, size_t len);
    void *arg;
} route_io;

/* What every call shares: the configuration, the token policy, and names
 * the metrics page prints. */
typedef struct route_env {
    const config *cfg;
    const token_policy *policy; /* its keys are the keyring's when keys is set */
    keyring *keys;              /* the keys in force (NULL: policy's own) */
    const char *const *metric_names;
    unsigned nmetrics;
} route_env;

typedef struct list_state {
    buf_t *out;
    int first;
    rc_t rc;
} list_state;

/* One request, from its decoding to its answer. Allocated by api.c and
 * freed in one place (route_call_free). */
typedef struct route_call {
    /* in */
    const route_env *env;
    route_io io;                    /* the request beyond path and body */
    int64_t now;
    str_t params[ROUTE_PARAMS_MAX];
    int bad_escape;                 /* a param's escape was malformed: it is "" */
    str_t raw_body;                 /* the request's body, for the decoder */
    token_claims who;               /* the caller (auth != NONE) */
    body_create_t body;         /* the decoded body (decoder) */
    /* the store work: build fills it, the executor runs it */
    exec_job job;
    rc_t early;                     /* a refusal decided before the job (api.c) */
    /* scratch that outlives build, for the executor and render */
    session_t s;
    buf_t rec;                      /* a GET's record */
    buf_t evicted;                  /* a create's evicted ids */
    list_state list;
    /* out */
    buf_t *out;                     /* the answer's body (api.c's) */
    const char *content_type;
    const char *detail;             /* why, on failure */
    /* Buffers, from here on: a new call zeroes only the fields above
     * (api.c), so each is read only as far as it was written; about is ""
     * at the start. */
    char user[SESSION_USER_MAX + 1];
    char ip[SESSION_IP_MAX + 1];
    char ua[SESSION_UA_MAX];
    char id[SESSION_ID_MAX + 2];
    char about[SESSION_ID_MAX + 1]; /* the session the request is about, for its log line */
    char detail_buf[160];
} route_call;

typedef rc_t (*route_fn)(route_call *c);

typedef struct route {
    const char *method;
    const char *pattern;   /* '/'-separated; a "{name}" segment captures */
    unsigned groups;       /* processes serving it (GROUP_*) */
    route_auth auth;
    route_fn decode;       /* the body's decoder; NULL: the body is ignored */
    route_fn build;        /* fills c->job (has_op 0: no store work) */
    route_fn render;       /* the answer, from c->job's results */
    unsigned ok_status;    /* 200, 201, 204 */
    int no_store;          /* answers carry Cache-Control: no-store */
} route;

extern const route routes_table[];
extern const size_t routes_count;

/* The token policy in force for c into *out: env's, with the keyring's
 * keys of this moment. Valid until this thread next asks (keys.h):
 * fetch it for each use, never keep it. RC_OK or RC_NOMEM. */
rc_t route_policy(const route_call *c, token_policy *out);

/* Sets c->detail (copied) and returns rc. */
rc_t route_fail(route_call *c, rc_t rc, const char *detail);
/* Releases what c holds (not c itself). */
void route_call_free(route_call *c);

#endif
