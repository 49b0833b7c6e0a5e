/* metrics.h -- lock-free counters and latency histograms, rendered in the
 * Prometheus text format (version 0.0.4).
 *
 * Requests are counted by (route, method, status) and timed per route;
 * routes are small integer ids whose names the caller passes when
 * rendering. Store calls are timed and their failures counted per
 * operation, sessions counted as created and as closed by reason. */
#ifndef METRICS_H
#define METRICS_H

#include <stdint.h>
#include "buf.h"
#include "rc.h"

#define METRICS_ROUTES_MAX 12
#define METRICS_STORE_OPS_MAX 12

typedef enum metrics_method {
    METRICS_GET = 0,
    METRICS_POST,
    METRICS_DELETE,
    METRICS_OTHER_METHOD,
    METRICS_METHODS
} metrics_method;

/* The contract's close reasons, in the order of store_close_reason. */
typedef enum metrics_close_reason {
    METRICS_CLOSED = 0,        /* "closed": one DELETE /session/{id} */
    METRICS_CLOSED_ALL,        /* "closed_all": DELETE /users/{user_id}/sessions */
    METRICS_CLOSED_EXPIRED,    /* "expired" */
    METRICS_CLOSED_IDLE,       /* "idle" */
    METRICS_CLOSED_EVICTED,    /* "evicted": over SESSION_MAX_PER_USER */
    METRICS_CLOSED_TOKEN_REUSE, /* "token_reuse" */
    METRICS_CLOSE_REASONS
} metrics_close_reason;

/* The reason's name in metrics and logs ("closed", ...). */
const char *metrics_close_reason_name(metrics_close_reason reason);

metrics_method metrics_method_of(const char *method);
void metrics_request(unsigned route, metrics_method method, unsigned status,
                     uint64_t usec);
void metrics_sessions_created(uint64_t n);
void metrics_sessions_closed(metrics_close_reason reason, uint64_t n);
/* One store call: op indexes the names given to metrics_render. */
void metrics_store(unsigned op, rc_t rc, uint64_t usec);

typedef struct metrics_names {
    const char *const *routes;    /* route id -> pattern */
    unsigned nroutes;
    const char *const *store_ops; /* store op id -> name */
    unsigned nstore_ops;
} metrics_names;

/* live < 0: the store cannot count its sessions (the gauge is left out). */
rc_t metrics_render(buf_t *out, const metrics_names *names, int64_t live);

#endif
