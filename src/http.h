/* http.h -- the HTTP transport: libmicrohttpd, limits, framing checks,
 * request deadlines, routing by path, suspend/resume, and the one place
 * where core results become statuses (problem+json). It knows nothing of
 * tokens, sessions or stores: a routed request is handed to the
 * application's serve function (api.c), which fills the answer.
 *
 * A request's memory (its http_request, body and answer, and the
 * application's state hung on it) is allocated on its first callback and
 * freed in one place, when libmicrohttpd reports the request completed. */
#ifndef HTTP_H
#define HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "config.h"
#include "rc.h"

#define HTTP_BODY_MAX 16384
#define HTTP_HEADERS_MAX 8192
#define HTTP_DISCARD_MAX (1024 * 1024) /* refused body bytes read before cutting off */
#define HTTP_MAX_PARAMS 2
#define HTTP_MAX_OUT_HEADERS 4
#define HTTP_OUT_HEADER_MAX 264
#define HTTP_LOG_ID_MAX 64
#define HTTP_PARAM_SPACE 1024
#define HTTP_QUERY_MAX 512 /* a query argument as sent, for http_query */
/* libmicrohttpd's per-connection memory: request headers that fit in it
 * reach check_request and get the service's problem+json 431 (about 32 KB
 * in one header, 21 KB in 80 or 15 KB in 250: tests/api/test_errors_http.py);
 * larger ones get the library's own page. It is cleared after every
 * request, so its size costs time (32 KiB against 20 KiB: 1-2 % of a
 * read), and above 32 KiB libmicrohttpd maps each pool of its own, which
 * at 512 connections put p99 at 0.4-1.3 s, with timeouts (BENCHMARKS,
 * "Seventh pass"). */
#define HTTP_POOL_SIZE 32768

typedef struct http_request http_request;

/* A route as the transport sees it: what to match, how to label it. */
typedef struct http_route {
    const char *method;
    const char *pattern;   /* '/'-separated; a "{name}" segment captures */
    unsigned metric;       /* metrics route id */
    int no_store;          /* answers carry Cache-Control: no-store */
    int served;            /* 0: another process serves it (404 here, not 405) */
    const void *data;      /* the application's own description of it */
} http_route;

typedef struct http_service {
    const config *cfg;
    const http_route *routes;
    size_t nroutes;
    const char *const *metric_names;
    unsigned nmetrics;
    unsigned metric_other;         /* id for unmatched paths */
    /* The application: serve is called on an event thread once a routed
     * request is in, with r->now set. It answers RC_OK with the answer in r
     * (status, out, content_type, headers), or an error rc (r->detail may
     * say why: http_fail) that becomes a problem+json answer, or
     * RC_PENDING after http_suspend, when it has queued work: once that is
     * done (http_wake), resume is called on an event thread and answers
     * as serve would have. */
    rc_t (*serve)(http_request *r);
    rc_t (*resume)(http_request *r);
    void *app;
    void *daemon;                  /* struct MHD_Daemon * */
    struct http_watch *watch;      /* request deadlines (http.c) */
} http_service;

struct http_request {
    const http_service *svc;
    void *conn;                    /* struct MHD_Connection * */
    const char *method;
    const http_route *route;
    str_t params[HTTP_MAX_PARAMS];
    int bad_escape;                /* a param's escape was malformed (http_path_match) */
    buf_t body;
    int64_t now;
    uint64_t t0_us;
    /* early decision by http.c (framing, limits, routing) */
    unsigned early_status;
    const char *allow;
    int close_after;
    /* the answer */
    unsigned status;
    buf_t out;
    const char *content_type;
    const char *detail;            /* for problem+json */
    int token_presented;           /* 401: add error="invalid_token" */
    int retry_after;               /* 503: seconds */
    unsigned nheaders;
    unsigned final_status;         /* what was sent, for metrics */
    unsigned metric;               /* metrics route id */
    int responded;
    size_t discarded;              /* body bytes read and dropped */
    struct http_conn *hc;          /* the connection's deadline (http.c) */
    int suspended;                 /* waiting for the application's work */
    _Atomic int woken;             /* that work is done (http_wake) */
    http_request *followers;       /* woken with this one, resumed by its event thread */
    int nfollowers;                /* how many (counted in the watch's held) */
    http_request *next_woken;      /* link in a batch's list of woken requests */
    void *state;                   /* the application's, freed with the */
    void (*state_free)(void *);    /* request by state_free */
    /* Buffers, from here on: a new request zeroes only the fields above
     * (http.c, HTTP_REQUEST_ZEROED), so each is read only as far as it was
     * written: params' bytes, allow when set, headers up to nheaders,
     * detail when it points here, log_sid (set to "" at the start). */
    char param_space[HTTP_PARAM_SPACE];
    char allow_buf[32];
    char detail_buf[160];
    char log_sid[HTTP_LOG_ID_MAX + 1]; /* the session this request was about */
    struct {
        const char *name;
        char value[HTTP_OUT_HEADER_MAX];
    } headers[HTTP_MAX_OUT_HEADERS];
};

/* Starts the daemon on cfg->host:cfg->port with cfg's limits.
 * RC_ERR with err set when it cannot listen. */
rc_t http_start(http_service *svc, char *err, size_t errlen);
/* Graceful part of a shutdown: stops accepting connections, then waits up
 * to seconds for the requests in flight to be answered. */
void http_drain(http_service *svc, int seconds);
/* Closes every connection and stops the threads. */
void http_stop(http_service *svc);

/* Request accessors for the application. */
const char *http_header(http_request *r, const char *name);
/* A query argument, percent-decoded into out (size outlen). RC_NOT_FOUND
 * when absent, RC_INVALID when its percent-encoding is malformed,
 * RC_TOO_LARGE when it is longer than HTTP_QUERY_MAX as sent, or decoded
 * does not fit out or holds a NUL byte. */
rc_t http_query(http_request *r, const char *name, char *out, size_t outlen);
/* The client address as text (TRUST_PROXY honoured). */
void http_client_ip(http_request *r, char *out, size_t outlen);
/* Adds a response header; value is copied (truncated to fit). */
void http_add_header(http_request *r, const char *name, const char *value, size_t len);
/* Names the session a request is about, for its log line. */
void http_note_session(http_request *r, const char *id, size_t len);
/* Sets a detail message for an error answer (copied); returns rc. */
rc_t http_fail(http_request *r, rc_t rc, const char *detail);
/* Parks r's connection: only from serve (or from what it calls), before
 * anything that will call http_wake can run. */
void http_suspend(void *r);
/* The queued work of a suspended request is done (from any thread): its
 * connection is resumed, and svc->resume answers it on an event thread.
 * A thread that completes a batch calls it for each of the batch's
 * requests, last set on the final call: the connections are then resumed
 * at once by the event thread of that last one ("waking a batch", http.c). */
void http_wake(http_request *r, int last);

/* ---- pure parsers (no I/O; unit-tested and fuzzed) ---- */

/* Matches path[0..len) against pattern. Captured segments are decoded into
 * space (size spacelen) and returned as params. Returns 1 on match, 0 when
 * it does not match, -1 when it matches but a captured segment's escape is
 * malformed (that param is then empty: it names nothing). */
int http_path_match(const char *pattern, const char *path, size_t len,
                    char *space, size_t spacelen, str_t *params, size_t maxparams);

#endif
