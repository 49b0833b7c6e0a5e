/* api.c -- the request path (see api.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "cred.h"

/* ---- the request, as routes see it ---- */

static const char *io_header(void *arg, const char *name)
{
    return http_header(arg, name);
}

static rc_t io_query(void *arg, const char *name, char *out, size_t outlen)
{
    return http_query(arg, name, out, outlen);
}

static void io_client_ip(void *arg, char *out, size_t outlen)
{
    http_client_ip(arg, out, outlen);
}

static void io_add_header(void *arg, const char *name, const char *value, size_t len)
{
    http_add_header(arg, name, value, len);
}

static void call_free(void *p)
{
    route_call_free(p);
    free(p);
}

/* r's answer for the failure rc of c (its detail, its session). */
static rc_t fail(http_request *r, const route_call *c, rc_t rc)
{
    if (c->about[0])
        http_note_session(r, c->about, strlen(c->about));
    return c->detail ? http_fail(r, rc, c->detail) : rc;
}

/* Verifies the caller's token into c->who as mode asks: the Bearer token,
 * or for ROUTE_AUTH_SESSION the session cookie too. Whether a session
 * token's session is live is the executor's first step. */
static rc_t authenticate(http_request *r, route_call *c, route_auth mode)
{
    const char *h = http_header(r, "Authorization");
    str_t tok;
    size_t hlen = h != NULL ? strlen(h) : 0;
    int bearer = h != NULL && cred_bearer(h, hlen, &tok) == RC_OK;
    if (bearer || (h != NULL && cred_bearer_offered(h, hlen)))
        r->token_presented = 1;
    if (!bearer) {
        int cookie = mode == ROUTE_AUTH_SESSION || mode == ROUTE_AUTH_OWN;
        const char *ck = cookie ? http_header(r, "Cookie") : NULL;
        const char *name = c->env->cfg->session_cookie;
        if (ck == NULL || cred_cookie(ck, strlen(ck), name, strlen(name), &tok) != RC_OK)
            return route_fail(c, RC_UNAUTHORIZED,
                              h ? "the Authorization header is not a Bearer token"
                                : "a bearer token is required");
        r->token_presented = 1;
    }
    token_policy pol;
    rc_t rc = route_policy(c, &pol);
    if (rc == RC_OK)
        rc = token_verify(&pol, tok.p, tok.len, c->now, &c->who);
    if (rc == RC_NOMEM)
        return rc;
    if (rc != RC_OK)
        return route_fail(c, RC_UNAUTHORIZED, "the token is invalid or expired");
    if (mode == ROUTE_AUTH_SESSION && !c->who.has_sid)
        return route_fail(c, RC_UNAUTHORIZED, "not a session token");
    if (mode == ROUTE_AUTH_OWN && !c->who.has_sid)
        return route_fail(c, RC_DENIED, "only the session's own session token may do this");
    if (c->who.has_sid) {
        c->job.auth_sid = c->who.sid;
        c->job.auth_user = (str_t){ c->who.sub, c->who.sub_len };
        c->job.auth_gen = c->who.gen;
        c->job.grace = c->env->cfg->session_refresh_grace;
    }
    return RC_OK;
}

/* The answer, once the job (if any) is done. A refusal decided before the
 * job (c->early) comes after the caller's own session is known live: a
 * closed session's token is a 401 whatever else is wrong. */
static rc_t finish(http_request *r, route_call *c, rc_t early)
{
    const route *rt = r->route->data;
    if (c->job.auth_sid != NULL && c->job.auth_rc != RC_OK) {
        if (c->job.auth_rc == RC_UNAUTHORIZED)
            return http_fail(r, RC_UNAUTHORIZED, "the session of this token is closed or expired");
        return c->job.auth_rc;
    }
    rc_t rc = early != RC_OK ? early : rt->render(c);
    if (rc != RC_OK)
        return fail(r, c, rc);
    if (c->about[0])
        http_note_session(r, c->about, strlen(c->about));
    r->status = rt->ok_status;
    r->content_type = c->content_type;
    return RC_OK;
}

/* A queued job is done (on an executor thread): the route renders its
 * answer on an event thread (resume), not here. */
static void job_done(exec_job *j, int last)
{
    http_wake(j->arg, last);
}

static rc_t resume(http_request *r)
{
    route_call *c = r->state;
    return finish(r, c, c->early);
}

static rc_t serve(http_request *r)
{
    const api *a = r->svc->app;
    const route *rt = r->route->data;
    route_call *c = malloc(sizeof *c);
    if (c == NULL)
        return RC_NOMEM;
    memset(c, 0, offsetof(route_call, user)); /* the fields, not the buffers (routes.h) */
    c->about[0] = '\0';
    r->state = c; /* freed with the request */
    r->state_free = call_free;
    c->env = &a->env;
    c->io = (route_io){ io_header, io_query, io_client_ip, io_add_header, r };
    c->now = r->now;
    c->out = &r->out;
    memcpy(c->params, r->params, sizeof c->params);
    c->bad_escape = r->bad_escape;
    c->raw_body = (str_t){ r->body.p, r->body.len };

    rc_t rc = RC_OK;
    if (rt->auth != ROUTE_AUTH_NONE && (rc = authenticate(r, c, rt->auth)) != RC_OK)
        return fail(r, c, rc);
    if (rt->auth == ROUTE_AUTH_CALLER && c->who.has_sid)
        /* a stolen browser token must not mint sessions that outlive the
         * victim's logout (contract v2) */
        rc = route_fail(c, RC_DENIED, "a session token cannot open another session");
    else if (rt->decode == NULL || (rc = rt->decode(c)) == RC_OK)
        rc = rt->build(c);
    if (rc != RC_OK) {
        if (c->job.auth_sid == NULL)
            return fail(r, c, rc);
        c->job.has_op = 0; /* the caller's session is still checked first */
    }
    c->early = rc;
    if (!c->job.has_op && c->job.auth_sid == NULL)
        return finish(r, c, rc);
    c->job.now = c->now;
    c->job.done = job_done;
    c->job.arg = r;
    if (exec_submit(a->exec, &c->job, http_suspend, r))
        return RC_PENDING;
    return finish(r, c, rc);
}

/* ---- set-up ---- */

void api_init(api *a, const config *cfg, keyring *ring, exec *e, unsigned groups,
              http_service *svc)
{
    memset(a, 0, sizeof *a);
    /* the keys are the keyring's, read per use (route_policy) */
    a->policy = (token_policy){
        .issuer = cfg->jwt_issuer,
        .audience = cfg->jwt_audience,
        .leeway = cfg->jwt_leeway,
        .admin_scope = cfg->admin_scope,
    };
    a->exec = e;
    groups |= GROUP_ALWAYS;
    /* metrics labels: the table's patterns, each once, then "other" */
    for (size_t i = 0; i < routes_count && i < API_ROUTES_MAX; i++) {
        const route *rt = &routes_table[i];
        unsigned m = 0;
        while (m < a->nmetrics && strcmp(a->metric_names[m], rt->pattern) != 0)
            m++;
        if (m == a->nmetrics)
            a->metric_names[a->nmetrics++] = rt->pattern;
        a->routes[a->nroutes++] = (http_route){
            .method = rt->method, .pattern = rt->pattern, .metric = m, .no_store = rt->no_store,
            .served = (rt->groups & groups) != 0, .data = rt,
        };
    }
    a->metric_names[a->nmetrics] = "other";
    a->env = (route_env){ cfg, &a->policy, ring, a->metric_names, a->nmetrics + 1 };
    svc->cfg = cfg;
    svc->routes = a->routes;
    svc->nroutes = a->nroutes;
    svc->metric_names = a->metric_names;
    svc->nmetrics = a->nmetrics + 1;
    svc->metric_other = a->nmetrics;
    svc->serve = serve;
    svc->resume = resume;
    svc->app = a;
}

void api_print_routes(FILE *out)
{
    static const char *const auth[] = { "none", "caller", "session", "either", "own" };
    static const char *const exe[] = { "createSession", "readSession", "closeSession" };
    for (size_t i = 0; i < routes_count; i++) {
        const route *rt = &routes_table[i];
        fprintf(out, "%s %s sessiond", rt->method, rt->pattern);
        for (unsigned g = 0; g < 3; g++)
            if (rt->groups & (GROUP_ALWAYS | (1u << g)))
                fprintf(out, ",%s", exe[g]);
        fprintf(out, " %s\n", auth[rt->auth]);
    }
}
