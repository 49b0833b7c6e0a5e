/* handlers.h -- the route table and its handlers: decode, check, call the
 * core, render. Which executable serves which route is a bit set. */
#ifndef HANDLERS_H
#define HANDLERS_H

#include <stddef.h>
#include "http.h"

enum {
    GROUP_CREATE = 1u << 0,   /* createSession */
    GROUP_READ = 1u << 1,     /* readSession */
    GROUP_CLOSE = 1u << 2,    /* closeSession */
    GROUP_ALWAYS = 1u << 3,   /* health, readiness, metrics: every process */
    GROUP_ALL = GROUP_CREATE | GROUP_READ | GROUP_CLOSE | GROUP_ALWAYS
};

extern const http_route handlers_routes[];
extern const size_t handlers_nroutes;
extern const char *const handlers_metric_names[];
extern const unsigned handlers_nmetrics;
extern const unsigned handlers_metric_other;

#endif
