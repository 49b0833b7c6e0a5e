/* api.h -- the request path, between the transport (http.h) and the core:
 * for a routed request, the caller's token checked as its route declares
 * (routes.h), the body decoded, the route's store work built and handed to
 * the executor (exec.h), the result rendered, and any failure turned into
 * the answer's status by http.c. The one module that knows all three. */
#ifndef API_H
#define API_H

#include <stddef.h>
#include <stdio.h>
#include "config.h"
#include "exec.h"
#include "http.h"
#include "keys.h"
#include "routes.h"
#include "token.h"

#define API_ROUTES_MAX 16

typedef struct api {
    /* issuer, audience, leeway, admin scope; no keys: route_policy adds
     * the keyring's to a copy for each use */
    token_policy policy;
    route_env env;
    exec *exec;
    http_route routes[API_ROUTES_MAX];
    size_t nroutes;
    const char *metric_names[API_ROUTES_MAX + 1];
    unsigned nmetrics;
} api;

/* Sets a up for the routes of routes_table served by a process of groups
 * (GROUP_ALWAYS is added), with the keys in force in ring and the executor
 * e; cfg, ring and e must outlive a. Then points svc (whose cfg it sets)
 * at it. */
void api_init(api *a, const config *cfg, keyring *ring, exec *e, unsigned groups,
              http_service *svc);

/* The route table as text, one route a line: method, pattern, the
 * executables serving it, its authentication (for `--routes`, which the
 * tests and docs checks read). */
void api_print_routes(FILE *out);

#endif
