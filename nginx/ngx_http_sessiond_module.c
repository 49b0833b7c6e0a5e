/* ngx_http_sessiond_module.c -- the session check inside the gateway.
 *
 * An access-phase handler, like auth_request, that first asks the core's
 * gate (src/gate.h): the session token verified with the service's own
 * verifier, its session read from the LMDB store the services write, the
 * service's rules applied. A live session goes on with $sessiond_user_id
 * and $sessiond_session_id set; what /validate would refuse is a 401 with
 * WWW-Authenticate, as the service answers it; anything the gate cannot
 * decide without a write or the service's judgement (a use to record, a
 * token of an earlier generation, a Redis store, a store it cannot read)
 * runs the location of sessiond_auth_fallback as a subrequest, exactly as
 * auth_request would, so the service stays the one writer.
 *
 *   load_module /path/ngx_http_sessiond_module.so;
 *   http {
 *       sessiond_config /etc/sessionservice/.env;
 *       location /app/ {
 *           sessiond_auth on;
 *           sessiond_auth_fallback /_sessiond_validate;
 *           proxy_set_header X-User-Id $sessiond_user_id;
 *           proxy_set_header X-Session-Id $sessiond_session_id;
 *       }
 *   }
 *
 * The settings file is read in the master, at start, `nginx -t` and every
 * reload (a secret rotated in it needs `nginx -s reload`); each worker opens
 * the store read-only at its first check. This file is transport only:
 * headers in, a status or a subrequest out. */
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "clock.h"
#include "gate.h"

typedef struct {
    gate *gate;
} sessiond_main_conf;

typedef struct {
    ngx_flag_t enabled;
    ngx_str_t fallback;
} sessiond_loc_conf;

typedef struct {
    ngx_int_t rc;          /* what the check decided, when decided here */
    ngx_uint_t done;       /* the fallback subrequest has finished */
    ngx_uint_t status;     /* ... with this status */
    ngx_http_request_t *subrequest;
    ngx_str_t user;        /* the identity the request goes on with */
    ngx_str_t sid;
} sessiond_ctx;

static ngx_int_t sessiond_preconfiguration(ngx_conf_t *cf);
static ngx_int_t sessiond_postconfiguration(ngx_conf_t *cf);
static void *sessiond_create_main_conf(ngx_conf_t *cf);
static void *sessiond_create_loc_conf(ngx_conf_t *cf);
static char *sessiond_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);
static char *sessiond_config(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static void sessiond_exit_process(ngx_cycle_t *cycle);

static ngx_command_t sessiond_commands[] = {
    { ngx_string("sessiond_config"),
      NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
      sessiond_config,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },
    { ngx_string("sessiond_auth"),
      NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(sessiond_loc_conf, enabled),
      NULL },
    { ngx_string("sessiond_auth_fallback"),
      NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(sessiond_loc_conf, fallback),
      NULL },
    ngx_null_command
};

static ngx_http_module_t sessiond_module_ctx = {
    sessiond_preconfiguration,
    sessiond_postconfiguration,
    sessiond_create_main_conf,
    NULL,
    NULL,
    NULL,
    sessiond_create_loc_conf,
    sessiond_merge_loc_conf
};

ngx_module_t ngx_http_sessiond_module = {
    NGX_MODULE_V1,
    &sessiond_module_ctx,
    sessiond_commands,
    NGX_HTTP_MODULE,
    NULL,                  /* init master */
    NULL,                  /* init module */
    NULL,                  /* init process: the store opens at the first check */
    NULL,                  /* init thread */
    NULL,                  /* exit thread */
    sessiond_exit_process, /* exit process */
    NULL,                  /* exit master */
    NGX_MODULE_V1_PADDING
};

/* ---- configuration ---- */

static void *sessiond_create_main_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(sessiond_main_conf));
}

static void *sessiond_create_loc_conf(ngx_conf_t *cf)
{
    sessiond_loc_conf *lcf = ngx_pcalloc(cf->pool, sizeof(sessiond_loc_conf));
    if (lcf == NULL)
        return NULL;
    lcf->enabled = NGX_CONF_UNSET;
    return lcf;
}

static char *sessiond_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    sessiond_loc_conf *prev = parent, *conf = child;
    sessiond_main_conf *mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_sessiond_module);
    ngx_conf_merge_value(conf->enabled, prev->enabled, 0);
    ngx_conf_merge_str_value(conf->fallback, prev->fallback, "");
    if (!conf->enabled)
        return NGX_CONF_OK;
    if (mcf->gate == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sessiond_auth on\" needs \"sessiond_config\" in the http block");
        return NGX_CONF_ERROR;
    }
    if (conf->fallback.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sessiond_auth on\" needs \"sessiond_auth_fallback\", the "
                           "location that asks the service when the module cannot decide");
        return NGX_CONF_ERROR;
    }
    return NGX_CONF_OK;
}

static void free_gate(void *data)
{
    gate_free(data);
}

/* sessiond_config PATH: the services' settings file, through the same
 * table and checks; refused (nginx -t fails) with the variable named. */
static char *sessiond_config(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    sessiond_main_conf *mcf = conf;
    ngx_str_t *value = cf->args->elts, path = value[1];
    ngx_pool_cleanup_t *cln;
    char err[512];
    (void)cmd;
    if (mcf->gate != NULL)
        return "is duplicate";
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK)
        return NGX_CONF_ERROR;
    u_char *cpath = ngx_pnalloc(cf->pool, path.len + 1);
    if (cpath == NULL)
        return NGX_CONF_ERROR;
    ngx_memcpy(cpath, path.data, path.len);
    cpath[path.len] = '\0';
    if (gate_new((const char *)cpath, &mcf->gate, err, sizeof err) != RC_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "sessiond_config \"%s\": %s", cpath, err);
        return NGX_CONF_ERROR;
    }
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        gate_free(mcf->gate);
        mcf->gate = NULL;
        return NGX_CONF_ERROR;
    }
    cln->handler = free_gate;
    cln->data = mcf->gate;
    return NGX_CONF_OK;
}

static void sessiond_exit_process(ngx_cycle_t *cycle)
{
    sessiond_main_conf *mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_sessiond_module);
    if (mcf != NULL)
        gate_release(mcf->gate);
}

/* ---- variables ---- */

/* The handler of a no-op pool cleanup whose data is the request's ctx: an
 * internal redirect (error_page, try_files, a named location) clears the
 * modules' ctx, not the pool, so the identity the check found stays
 * reachable for the variables, as realip keeps its own. */
static void ctx_marker(void *data)
{
    (void)data;
}

/* The check's ctx of r's main request, also after an internal redirect. */
static sessiond_ctx *identity_ctx(ngx_http_request_t *r)
{
    r = r->main;
    sessiond_ctx *ctx = ngx_http_get_module_ctx(r, ngx_http_sessiond_module);
    if (ctx != NULL || !(r->internal || r->filter_finalize))
        return ctx;
    for (ngx_pool_cleanup_t *c = r->pool->cleanup; c != NULL; c = c->next)
        if (c->handler == ctx_marker)
            return c->data;
    return NULL;
}

static ngx_int_t sessiond_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
                                   uintptr_t data)
{
    sessiond_ctx *ctx = identity_ctx(r);
    ngx_str_t *s = ctx == NULL ? NULL : (ngx_str_t *)((char *)ctx + data);
    if (s == NULL || s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }
    v->len = s->len;
    v->data = s->data;
    v->valid = 1;
    v->not_found = 0;
    return NGX_OK;
}

static ngx_http_variable_t sessiond_vars[] = {
    { ngx_string("sessiond_user_id"), NULL, sessiond_variable,
      offsetof(sessiond_ctx, user), NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("sessiond_session_id"), NULL, sessiond_variable,
      offsetof(sessiond_ctx, sid), NGX_HTTP_VAR_NOCACHEABLE, 0 },
    ngx_http_null_variable
};

static ngx_int_t sessiond_preconfiguration(ngx_conf_t *cf)
{
    for (ngx_http_variable_t *v = sessiond_vars; v->name.len; v++) {
        ngx_http_variable_t *var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL)
            return NGX_ERROR;
        var->get_handler = v->get_handler;
        var->data = v->data;
    }
    return NGX_OK;
}

/* ---- the check ---- */

/* A 401 as the service answers it: WWW-Authenticate, value given. */
static ngx_int_t unauthorized(ngx_http_request_t *r, ngx_str_t value)
{
    ngx_table_elt_t *h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL)
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->lowcase_key = (u_char *)"www-authenticate";
    h->value = value;
    r->headers_out.www_authenticate = h;
    return NGX_HTTP_UNAUTHORIZED;
}

/* The value of the response header name of the fallback's upstream (the
 * service's X-User-Id and X-Session-Id); len 0 when absent. */
static ngx_str_t upstream_header(ngx_http_request_t *sr, const char *name)
{
    ngx_str_t none = ngx_null_string;
    if (sr->upstream == NULL)
        return none;
    size_t nlen = ngx_strlen(name);
    ngx_list_part_t *part = &sr->upstream->headers_in.headers.part;
    ngx_table_elt_t *h = part->elts;
    for (ngx_uint_t i = 0;; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL)
                return none;
            part = part->next;
            h = part->elts;
            i = 0;
        }
        if (h[i].hash != 0 && h[i].key.len == nlen &&
            ngx_strncasecmp(h[i].key.data, (u_char *)name, nlen) == 0)
            return h[i].value;
    }
}

/* The fallback's answer, as auth_request takes it: 2xx goes on (with the
 * service's identity headers), 401 and 403 are passed on (the 401 with
 * the service's WWW-Authenticate), a 5xx stays what it was (the store is
 * unavailable), anything else is the gateway's error. */
static ngx_int_t fallback_answer(ngx_http_request_t *r, sessiond_ctx *ctx)
{
    ngx_http_request_t *sr = ctx->subrequest;
    ngx_uint_t st = ctx->status;
    if (st >= NGX_HTTP_OK && st < NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->user = upstream_header(sr, "X-User-Id");
        ctx->sid = upstream_header(sr, "X-Session-Id");
        return NGX_OK;
    }
    if (st == NGX_HTTP_UNAUTHORIZED) {
        ngx_table_elt_t *h = sr->headers_out.www_authenticate;
        if (h == NULL && sr->upstream != NULL)
            h = sr->upstream->headers_in.www_authenticate;
        if (h != NULL)
            return unauthorized(r, h->value);
        return NGX_HTTP_UNAUTHORIZED;
    }
    if (st == NGX_HTTP_FORBIDDEN)
        return NGX_HTTP_FORBIDDEN;
    if (st >= NGX_HTTP_INTERNAL_SERVER_ERROR && st < 600)
        return (ngx_int_t)st;
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "sessiond: unexpected status %ui from the fallback location", st);
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

static ngx_int_t fallback_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    sessiond_ctx *ctx = data;
    ctx->done = 1;
    ctx->status = r->headers_out.status;
    return rc;
}

/* Runs the fallback location as auth_request runs its own: a subrequest
 * with the request's headers and no body, waited for. */
static ngx_int_t ask_service(ngx_http_request_t *r, sessiond_loc_conf *lcf, sessiond_ctx *ctx)
{
    ngx_http_post_subrequest_t *ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    ngx_http_request_t *sr;
    if (ps == NULL)
        return NGX_ERROR;
    ps->handler = fallback_done;
    ps->data = ctx;
    if (ngx_http_subrequest(r, &lcf->fallback, NULL, &sr, ps, NGX_HTTP_SUBREQUEST_WAITED) !=
        NGX_OK)
        return NGX_ERROR;
    /* no body is read for it; its own answer's body is dropped */
    sr->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (sr->request_body == NULL)
        return NGX_ERROR;
    sr->header_only = 1;
    ctx->subrequest = sr;
    return NGX_AGAIN;
}

/* The request's Cookie headers as one value, "; "-joined as $http_cookie
 * joins them for the fallback. NGX_OK (out->data NULL: none) or NGX_ERROR. */
static ngx_int_t cookies(ngx_http_request_t *r, ngx_str_t *out)
{
    ngx_array_t *a = &r->headers_in.cookies;
    ngx_table_elt_t **h = a->elts;
    ngx_str_null(out);
    if (a->nelts == 0)
        return NGX_OK;
    if (a->nelts == 1) {
        *out = h[0]->value;
        return NGX_OK;
    }
    size_t len = 0;
    for (ngx_uint_t i = 0; i < a->nelts; i++)
        len += h[i]->value.len + 2;
    u_char *p = ngx_pnalloc(r->pool, len);
    if (p == NULL)
        return NGX_ERROR;
    out->data = p;
    for (ngx_uint_t i = 0; i < a->nelts; i++) {
        if (i > 0) {
            *p++ = ';';
            *p++ = ' ';
        }
        p = ngx_cpymem(p, h[i]->value.data, h[i]->value.len);
    }
    out->len = (size_t)(p - out->data);
    return NGX_OK;
}

static ngx_str_t copy(ngx_http_request_t *r, const char *s, size_t len)
{
    ngx_str_t out = { 0, ngx_pnalloc(r->pool, len) };
    if (out.data != NULL) {
        ngx_memcpy(out.data, s, len);
        out.len = len;
    }
    return out;
}

/* this worker has logged that it cannot open the store (once until it can) */
static ngx_uint_t store_problem_told;

static ngx_int_t sessiond_access(ngx_http_request_t *r)
{
    sessiond_loc_conf *lcf = ngx_http_get_module_loc_conf(r, ngx_http_sessiond_module);
    sessiond_ctx *ctx;
    if (!lcf->enabled)
        return NGX_DECLINED;
    ctx = ngx_http_get_module_ctx(r, ngx_http_sessiond_module);
    if (ctx != NULL) {
        if (ctx->subrequest == NULL)
            return ctx->rc; /* decided here already (a rerun of the phase) */
        return ctx->done ? fallback_answer(r, ctx) : NGX_AGAIN;
    }
    ngx_pool_cleanup_t *marker = ngx_pool_cleanup_add(r->pool, 0);
    ctx = ngx_pcalloc(r->pool, sizeof(sessiond_ctx));
    if (ctx == NULL || marker == NULL)
        return NGX_ERROR;
    marker->handler = ctx_marker;
    marker->data = ctx;
    ngx_http_set_ctx(r, ctx, ngx_http_sessiond_module);

    sessiond_main_conf *mcf = ngx_http_get_module_main_conf(r, ngx_http_sessiond_module);
    ngx_table_elt_t *authz = r->headers_in.authorization;
    ngx_str_t ck;
    str_t a = { NULL, 0 }, c = { NULL, 0 };
    if (cookies(r, &ck) != NGX_OK)
        return NGX_ERROR;
    gate_result res;
    if (authz != NULL)
        a = (str_t){ (const char *)authz->value.data, authz->value.len };
    if (ck.data != NULL)
        c = (str_t){ (const char *)ck.data, ck.len };
    gate_check(mcf->gate, a, c, clock_wall(), &res);
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0, "sessiond: %s", res.why);

    switch (res.verdict) {
    case GATE_LIVE:
        ctx->user = copy(r, res.user, res.user_len);
        ctx->sid = copy(r, res.sid, res.sid_len);
        if (ctx->user.data == NULL || ctx->sid.data == NULL)
            return NGX_ERROR;
        return ctx->rc = NGX_OK;
    case GATE_REFUSED:
        if (res.presented) {
            ngx_str_t v = ngx_string("Bearer error=\"invalid_token\"");
            return ctx->rc = unauthorized(r, v);
        } else {
            ngx_str_t v = ngx_string("Bearer");
            return ctx->rc = unauthorized(r, v);
        }
    case GATE_ASK:
        break;
    }
    const char *problem = gate_store_problem(mcf->gate);
    if (problem != NULL && !store_problem_told) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "sessiond: %s; every check asks the fallback location until it can",
                      problem);
        store_problem_told = 1;
    } else if (problem == NULL) {
        store_problem_told = 0;
    }
    return ask_service(r, lcf, ctx);
}

static ngx_int_t sessiond_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_core_main_conf_t *cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    ngx_http_handler_pt *h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL)
        return NGX_ERROR;
    *h = sessiond_access;
    return NGX_OK;
}
