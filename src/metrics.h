/* metrics.h -- lock-free counters and a latency histogram, rendered in the
 * Prometheus text format (version 0.0.4).
 *
 * Requests are counted by (route, method, status); routes are small integer
 * ids whose names the caller passes when rendering. */
#ifndef METRICS_H
#define METRICS_H

#include <stdint.h>
#include "buf.h"
#include "rc.h"

#define METRICS_ROUTES_MAX 12

typedef enum metrics_method {
    METRICS_GET = 0,
    METRICS_POST,
    METRICS_DELETE,
    METRICS_OTHER_METHOD,
    METRICS_METHODS
} metrics_method;

metrics_method metrics_method_of(const char *method);
void metrics_request(unsigned route, metrics_method method, unsigned status,
                     uint64_t usec);
void metrics_sessions_created(uint64_t n);
void metrics_sessions_closed(uint64_t n);
/* route_names[i] names route id i (i < nroutes <= METRICS_ROUTES_MAX). */
rc_t metrics_render(buf_t *out, const char *const *route_names, unsigned nroutes);

#endif
