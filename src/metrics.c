/* metrics.c -- counters and histogram (see metrics.h). Relaxed atomics:
 * each number is exact, the set is not a snapshot. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "metrics.h"

static const unsigned statuses[] = {
    200, 201, 204, 400, 401, 403, 404, 405, 408, 413, 415, 431, 500, 503
};
#define NSTATUS (sizeof statuses / sizeof statuses[0])
#define STATUS_OTHER NSTATUS /* last slot: anything else */

static const char *const method_names[METRICS_METHODS] = { "GET", "POST", "DELETE", "other" };

/* Upper bounds in microseconds; the last bucket is +Inf. */
static const uint64_t bounds_us[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000
};
#define NBUCKET (sizeof bounds_us / sizeof bounds_us[0])

static atomic_uint_fast64_t requests[METRICS_ROUTES_MAX][METRICS_METHODS][NSTATUS + 1];
static atomic_uint_fast64_t buckets[NBUCKET + 1];
static atomic_uint_fast64_t sum_us, count;
static atomic_uint_fast64_t created, closed;

metrics_method metrics_method_of(const char *m)
{
    if (strcmp(m, "GET") == 0) return METRICS_GET;
    if (strcmp(m, "POST") == 0) return METRICS_POST;
    if (strcmp(m, "DELETE") == 0) return METRICS_DELETE;
    return METRICS_OTHER_METHOD;
}

void metrics_request(unsigned route, metrics_method method, unsigned status,
                     uint64_t usec)
{
    size_t s = STATUS_OTHER;
    for (size_t i = 0; i < NSTATUS; i++)
        if (statuses[i] == status)
            s = i;
    if (route >= METRICS_ROUTES_MAX || method >= METRICS_METHODS)
        return;
    atomic_fetch_add_explicit(&requests[route][method][s], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < NBUCKET && usec > bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sum_us, usec, memory_order_relaxed);
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
}

void metrics_sessions_created(uint64_t n)
{
    atomic_fetch_add_explicit(&created, n, memory_order_relaxed);
}

void metrics_sessions_closed(uint64_t n)
{
    atomic_fetch_add_explicit(&closed, n, memory_order_relaxed);
}

static uint64_t load(atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

rc_t metrics_render(buf_t *out, const char *const *route_names, unsigned nroutes)
{
    char line[256];
    rc_t rc = RC_OK;
#define LINE(...) do { snprintf(line, sizeof line, __VA_ARGS__); \
        if ((rc = buf_append_cstr(out, line)) != RC_OK) return rc; } while (0)

    LINE("# HELP sessiond_requests_total HTTP requests by route, method and status.\n");
    LINE("# TYPE sessiond_requests_total counter\n");
    for (unsigned r = 0; r < nroutes && r < METRICS_ROUTES_MAX; r++)
        for (unsigned m = 0; m < METRICS_METHODS; m++)
            for (size_t s = 0; s <= NSTATUS; s++) {
                uint64_t v = load(&requests[r][m][s]);
                if (v == 0)
                    continue;
                char st[8];
                if (s == STATUS_OTHER)
                    snprintf(st, sizeof st, "other");
                else
                    snprintf(st, sizeof st, "%u", statuses[s]);
                LINE("sessiond_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
                     route_names[r], method_names[m], st, (unsigned long long)v);
            }
    LINE("# HELP sessiond_request_duration_seconds Time from request to answer.\n");
    LINE("# TYPE sessiond_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b <= NBUCKET; b++) {
        cum += load(&buckets[b]);
        if (b < NBUCKET)
            LINE("sessiond_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                 (double)bounds_us[b] / 1e6, (unsigned long long)cum);
        else
            LINE("sessiond_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                 (unsigned long long)cum);
    }
    LINE("sessiond_request_duration_seconds_sum %.6f\n", (double)load(&sum_us) / 1e6);
    LINE("sessiond_request_duration_seconds_count %llu\n", (unsigned long long)load(&count));
    LINE("# HELP sessiond_sessions_created_total Sessions created by this process.\n");
    LINE("# TYPE sessiond_sessions_created_total counter\n");
    LINE("sessiond_sessions_created_total %llu\n", (unsigned long long)load(&created));
    LINE("# HELP sessiond_sessions_closed_total Sessions closed by this process.\n");
    LINE("# TYPE sessiond_sessions_closed_total counter\n");
    LINE("sessiond_sessions_closed_total %llu\n", (unsigned long long)load(&closed));
#undef LINE
    return rc;
}
