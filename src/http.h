/* http.h -- the HTTP edge: libmicrohttpd daemon, route table matching,
 * request limits, and the one place where core results become statuses.
 *
 * A request's memory (its http_request, body and answer) is allocated on
 * its first callback and freed in one place, when libmicrohttpd reports the
 * request completed. Handlers (handlers.c) fill r->status / r->out on RC_OK
 * or return a core rc_t (with r->detail) that http.c renders as
 * problem+json. */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "config.h"
#include "rc.h"
#include "store.h"
#include "token.h"

#define HTTP_BODY_MAX 16384
#define HTTP_HEADERS_MAX 8192
#define HTTP_DISCARD_MAX (1024 * 1024) /* refused body bytes read before cutting off */
#define HTTP_MAX_PARAMS 2
#define HTTP_MAX_OUT_HEADERS 4
#define HTTP_PARAM_SPACE 1024
#define HTTP_POOL_SIZE 32768 /* libmicrohttpd's per-connection memory */

typedef struct http_request http_request;
typedef rc_t (*http_handler)(http_request *r);

typedef struct http_route {
    const char *method;
    const char *pattern;   /* '/'-separated; a "{name}" segment captures */
    http_handler handler;
    unsigned groups;       /* bit set of executables serving it */
    unsigned metric;       /* metrics route id */
    int no_store;          /* answers carry Cache-Control: no-store */
} http_route;

typedef struct http_service {
    const config *cfg;
    store_t *store;
    token_policy policy;
    const http_route *routes;
    size_t nroutes;
    unsigned groups;               /* routes served by this process */
    const char *const *metric_names;
    unsigned nmetrics;
    unsigned metric_other;         /* id for unmatched paths */
    void *daemon;                  /* struct MHD_Daemon * */
    struct http_watch *watch;      /* request deadlines (http.c) */
    struct http_commits *commits;  /* the commit queue and its threads (http.c) */
    struct http_commits *bulk;     /* lists and close-alls, beside it (http.c) */
    struct touch_queue *touches;   /* last_seen_at notes (touch.h) */
} http_service;

struct http_request {
    const http_service *svc;
    void *conn;                    /* struct MHD_Connection * */
    const char *method;
    const http_route *route;
    str_t params[HTTP_MAX_PARAMS];
    char param_space[HTTP_PARAM_SPACE];
    buf_t body;
    buf_t rec;                     /* scratch for a session record */
    int64_t now;
    uint64_t t0_us;
    /* early decision by http.c (framing, limits, routing) */
    unsigned early_status;
    const char *allow;
    char allow_buf[32];
    int close_after;
    /* the answer */
    unsigned status;
    buf_t out;
    const char *content_type;
    const char *detail;            /* for problem+json */
    char detail_buf[160];
    int token_presented;           /* 401: add error="invalid_token" */
    int retry_after;               /* 503: seconds */
    struct {
        const char *name;
        char value[SESSION_USER_MAX + 8];
    } headers[HTTP_MAX_OUT_HEADERS];
    unsigned nheaders;
    unsigned final_status;         /* what was sent, for metrics */
    unsigned metric;               /* metrics route id */
    int responded;
    size_t discarded;              /* body bytes read and dropped */
    struct http_conn *hc;          /* the connection's deadline (http.c) */
    char log_sid[SESSION_ID_MAX + 1]; /* the session this request was about */
    token_claims who;              /* the caller, once authenticated (handlers) */
    http_handler after_auth;       /* what runs once it is (handlers) */
    /* a deferred store operation (http_defer) */
    store_op op;
    char op_id[SESSION_ID_MAX + 1]; /* room for its id */
    http_handler then;             /* its continuation; NULL: none pending */
    int handled;                   /* the operation is done */
    http_request *next_queued;     /* commit queue link */
    void *ctx;                     /* handler state kept across the write, */
    void (*ctx_free)(void *ctx);   /* freed with the request */
};

/* Starts the daemon on cfg->host:cfg->port with cfg's limits.
 * RC_ERR with err set when it cannot listen. */
rc_t http_start(http_service *svc, char *err, size_t errlen);
/* Graceful part of a shutdown: stops accepting connections, then waits up
 * to seconds for the requests in flight to be answered. */
void http_drain(http_service *svc, int seconds);
/* Closes every connection and stops the threads. */
void http_stop(http_service *svc);

/* Request accessors for handlers. */
const char *http_header(http_request *r, const char *name);
/* A query argument, percent-decoded into out (size outlen).
 * RC_NOT_FOUND when absent, RC_INVALID on bad encoding or too long. */
rc_t http_query(http_request *r, const char *name, char *out, size_t outlen);
/* The client address as text (TRUST_PROXY honoured). */
void http_client_ip(http_request *r, char *out, size_t outlen);
/* Adds a response header; value is copied (truncated to fit). */
void http_add_header(http_request *r, const char *name, const char *value, size_t len);
/* Names the session a request is about, for its log line. */
void http_note_session(http_request *r, const char *id, size_t len);
/* Defers the store operation the handler has put in r->op: answer
 * http_defer(r, then) from the handler. The operation is applied with those
 * of other requests (store_batch: one commit, one round trip); then `then`
 * runs (on an event thread) with the outcome in r->op.rc, and renders the
 * answer or defers again. Keep what it needs in r->ctx. */
rc_t http_defer(http_request *r, http_handler then);
/* Sets a detail message for an error answer (copied). */
rc_t http_fail(http_request *r, rc_t rc, const char *detail);

/* ---- pure parsers (no I/O; unit-tested and fuzzed) ---- */

/* Matches path[0..len) against pattern. Captured segments are decoded into
 * space (size spacelen) and returned as params. Returns 1 on match, 0 when
 * it does not match, -1 when a segment's escape is malformed. */
int http_path_match(const char *pattern, const char *path, size_t len,
                    char *space, size_t spacelen, str_t *params, size_t maxparams);

/* Extracts the token of an Authorization header value: scheme "Bearer"
 * (any case), one or more spaces, the token, optional trailing spaces.
 * RC_INVALID when the value is not of that form. */
rc_t http_bearer(const char *value, size_t len, str_t *token);

/* Finds cookie `name` in a Cookie header value ("a=b; c=d"). A value in
 * double quotes is unquoted. RC_NOT_FOUND when absent. */
rc_t http_cookie_get(const char *value, size_t len, const char *name, size_t nlen,
                     str_t *out);

#endif
