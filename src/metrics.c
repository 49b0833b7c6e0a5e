/* metrics.c -- counters and histograms (see metrics.h). Relaxed atomics:
 * each number is exact; a histogram's _count is the sum of its buckets, so
 * every histogram is consistent in itself. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "metrics.h"

static const unsigned statuses[] = {
    200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 413, 415, 431, 500, 503
};
#define NSTATUS (sizeof statuses / sizeof statuses[0])
#define STATUS_OTHER NSTATUS /* last slot: anything else */

static const char *const method_names[METRICS_METHODS] = { "GET", "POST", "DELETE", "other" };
static const char *const reason_names[METRICS_CLOSE_REASONS] = {
    "closed", "closed_all", "expired", "idle", "evicted", "token_reuse"
};

/* Upper bounds in microseconds; the last bucket is +Inf. */
static const uint64_t bounds_us[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000
};
#define NBUCKET (sizeof bounds_us / sizeof bounds_us[0])

typedef struct histogram {
    atomic_uint_fast64_t bucket[NBUCKET + 1];
    atomic_uint_fast64_t sum_us;
} histogram;

static atomic_uint_fast64_t requests[METRICS_ROUTES_MAX][METRICS_METHODS][NSTATUS + 1];
static histogram route_time[METRICS_ROUTES_MAX];
static histogram store_time[METRICS_STORE_OPS_MAX];
static atomic_uint_fast64_t store_errors[METRICS_STORE_OPS_MAX][3];
static atomic_uint_fast64_t created;
static atomic_uint_fast64_t closed[METRICS_CLOSE_REASONS];

metrics_method metrics_method_of(const char *m)
{
    if (strcmp(m, "GET") == 0) return METRICS_GET;
    if (strcmp(m, "POST") == 0) return METRICS_POST;
    if (strcmp(m, "DELETE") == 0) return METRICS_DELETE;
    return METRICS_OTHER_METHOD;
}

static void observe(histogram *h, uint64_t usec)
{
    size_t b = 0;
    while (b < NBUCKET && usec > bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, usec, memory_order_relaxed);
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
    observe(&route_time[route], usec);
}

void metrics_sessions_created(uint64_t n)
{
    atomic_fetch_add_explicit(&created, n, memory_order_relaxed);
}

const char *metrics_close_reason_name(metrics_close_reason reason)
{
    return reason < METRICS_CLOSE_REASONS ? reason_names[reason] : "other";
}

void metrics_sessions_closed(metrics_close_reason reason, uint64_t n)
{
    if (reason < METRICS_CLOSE_REASONS)
        atomic_fetch_add_explicit(&closed[reason], n, memory_order_relaxed);
}

void metrics_store(unsigned op, rc_t rc, uint64_t usec)
{
    if (op >= METRICS_STORE_OPS_MAX)
        return;
    observe(&store_time[op], usec);
    int kind = rc == RC_UNAVAILABLE ? 0 : rc == RC_FULL ? 1
             : (rc == RC_ERR || rc == RC_NOMEM) ? 2 : -1;
    if (kind >= 0)
        atomic_fetch_add_explicit(&store_errors[op][kind], 1, memory_order_relaxed);
}

static uint64_t load(atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

#define LINE(...) do { snprintf(line, sizeof line, __VA_ARGS__); \
        if ((rc = buf_append_cstr(out, line)) != RC_OK) return rc; } while (0)

/* One labelled histogram series: label is e.g. route="/session". */
static rc_t render_histogram(buf_t *out, const char *name, const char *label, histogram *h)
{
    char line[384];
    rc_t rc = RC_OK;
    uint64_t cum = 0;
    for (size_t b = 0; b <= NBUCKET; b++) {
        cum += load(&h->bucket[b]);
        if (b < NBUCKET)
            LINE("%s_bucket{%s,le=\"%g\"} %llu\n", name, label, (double)bounds_us[b] / 1e6,
                 (unsigned long long)cum);
        else
            LINE("%s_bucket{%s,le=\"+Inf\"} %llu\n", name, label, (unsigned long long)cum);
    }
    LINE("%s_sum{%s} %.6f\n", name, label, (double)load(&h->sum_us) / 1e6);
    LINE("%s_count{%s} %llu\n", name, label, (unsigned long long)cum);
    return rc;
}

static int histogram_used(histogram *h)
{
    for (size_t b = 0; b <= NBUCKET; b++)
        if (load(&h->bucket[b]))
            return 1;
    return 0;
}

rc_t metrics_render(buf_t *out, const metrics_names *names, int64_t live)
{
    char line[384], label[160];
    rc_t rc = RC_OK;

    LINE("# HELP sessiond_requests_total HTTP requests by route, method and status.\n");
    LINE("# TYPE sessiond_requests_total counter\n");
    for (unsigned r = 0; r < names->nroutes && r < METRICS_ROUTES_MAX; r++)
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
                     names->routes[r], method_names[m], st, (unsigned long long)v);
            }
    LINE("# HELP sessiond_request_duration_seconds Time from request to answer, by route.\n");
    LINE("# TYPE sessiond_request_duration_seconds histogram\n");
    for (unsigned r = 0; r < names->nroutes && r < METRICS_ROUTES_MAX; r++) {
        if (!histogram_used(&route_time[r]))
            continue;
        snprintf(label, sizeof label, "route=\"%s\"", names->routes[r]);
        if ((rc = render_histogram(out, "sessiond_request_duration_seconds", label,
                                   &route_time[r])) != RC_OK)
            return rc;
    }
    LINE("# HELP sessiond_sessions_created_total Sessions created by this process.\n");
    LINE("# TYPE sessiond_sessions_created_total counter\n");
    LINE("sessiond_sessions_created_total %llu\n", (unsigned long long)load(&created));
    LINE("# HELP sessiond_sessions_closed_total Sessions closed by this process, by reason.\n");
    LINE("# TYPE sessiond_sessions_closed_total counter\n");
    for (unsigned i = 0; i < METRICS_CLOSE_REASONS; i++)
        LINE("sessiond_sessions_closed_total{reason=\"%s\"} %llu\n", reason_names[i],
             (unsigned long long)load(&closed[i]));
    if (live >= 0) {
        LINE("# HELP sessiond_sessions_live Sessions in the store (expired ones count until "
             "they are purged).\n");
        LINE("# TYPE sessiond_sessions_live gauge\n");
        LINE("sessiond_sessions_live %lld\n", (long long)live);
    }
    LINE("# HELP sessiond_store_errors_total Failed store calls, by operation and kind.\n");
    LINE("# TYPE sessiond_store_errors_total counter\n");
    static const char *const kinds[3] = { "unavailable", "full", "error" };
    for (unsigned op = 0; op < names->nstore_ops && op < METRICS_STORE_OPS_MAX; op++)
        for (unsigned k = 0; k < 3; k++)
            LINE("sessiond_store_errors_total{op=\"%s\",kind=\"%s\"} %llu\n",
                 names->store_ops[op], kinds[k], (unsigned long long)load(&store_errors[op][k]));
    LINE("# HELP sessiond_store_duration_seconds Time of store calls, by operation.\n");
    LINE("# TYPE sessiond_store_duration_seconds histogram\n");
    for (unsigned op = 0; op < names->nstore_ops && op < METRICS_STORE_OPS_MAX; op++) {
        if (!histogram_used(&store_time[op]))
            continue;
        snprintf(label, sizeof label, "op=\"%s\"", names->store_ops[op]);
        if ((rc = render_histogram(out, "sessiond_store_duration_seconds", label,
                                   &store_time[op])) != RC_OK)
            return rc;
    }
    return rc;
}
#undef LINE
