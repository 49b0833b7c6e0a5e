/* handlers.c -- one function per route of the contract, and the route
 * table. Handlers answer RC_OK after filling r->status / r->out, or a core
 * rc_t with a detail; http.c renders errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "session.h"
#include "touch.h"

#define NOT_FOUND_DETAIL "no live session with this id"
#define TOUCH_EVERY 60 /* seconds: last_seen_at may lag this much */

/* Verifies the caller's token (Bearer, or the session cookie when
 * cookie_too). Whether a session token's session is live is not checked
 * here: see token_session. */
static rc_t caller_token(http_request *r, token_claims *who, int cookie_too)
{
    const http_service *svc = r->svc;
    const char *h = http_header(r, "Authorization");
    str_t tok;

    int bearer = h != NULL && http_bearer(h, strlen(h), &tok) == RC_OK;
    if (h != NULL)
        r->token_presented = 1;
    if (!bearer) {
        /* No Bearer token: /validate falls back to the session cookie. */
        const char *c = cookie_too ? http_header(r, "Cookie") : NULL;
        const char *name = svc->cfg->session_cookie;
        if (c == NULL || http_cookie_get(c, strlen(c), name, strlen(name), &tok) != RC_OK)
            return http_fail(r, RC_UNAUTHORIZED,
                             h ? "the Authorization header is not a Bearer token"
                               : "a bearer token is required");
        r->token_presented = 1;
    }
    rc_t rc = token_verify(&svc->policy, tok.p, tok.len, r->now, who);
    if (rc == RC_NOMEM)
        return rc;
    if (rc != RC_OK)
        return http_fail(r, RC_UNAUTHORIZED, "the token is invalid or expired");
    return RC_OK;
}

/* Judges the read of a session token's session (r->op.rc, the record in
 * r->rec): it must be live and belong to the token's sub. On RC_OK the
 * session is decoded into *live (views into r->rec) when live != NULL. */
static rc_t token_session(http_request *r, const token_claims *who, session_t *live)
{
    session_t s;
    rc_t rc = r->op.rc;
    if (rc == RC_OK && session_decode(r->rec.p, r->rec.len, &s) != RC_OK)
        rc = RC_ERR;
    if (rc == RC_NOT_FOUND ||
        (rc == RC_OK && !str_eq(s.user_id, (str_t){ who->sub, who->sub_len })))
        return http_fail(r, RC_UNAUTHORIZED, "the session of this token is closed or expired");
    if (rc != RC_OK)
        return rc;
    if (live != NULL)
        *live = s;
    return RC_OK;
}

/* Reads session id (a string that lives in r) into r->rec, then runs then
 * with the outcome in r->op.rc: at once where reads are local (LMDB), and
 * deferred to the commit queue, which pipelines the reads of many requests,
 * where each read is a round trip (Redis). */
static rc_t read_then(http_request *r, const char *id, http_handler then)
{
    r->op = (store_op){ .kind = STORE_OP_GET, .id = id, .now = r->now, .rec = &r->rec };
    if (r->svc->store->remote)
        return http_defer(r, then);
    r->op.rc = store_get(r->svc->store, id, r->now, &r->rec);
    return then(r);
}

static rc_t session_checked(http_request *r)
{
    rc_t rc = token_session(r, &r->who, NULL);
    return rc == RC_OK ? r->after_auth(r) : rc;
}

/* Verifies the caller into r->who, then runs next. For a session token its
 * session is read first (read_then: deferred where reads are round trips)
 * and must be live and the token's sub's (token_session). */
static rc_t authenticate_then(http_request *r, http_handler next)
{
    rc_t rc = caller_token(r, &r->who, 0);
    if (rc != RC_OK)
        return rc;
    if (!r->who.has_sid)
        return next(r);
    r->after_auth = next;
    return read_then(r, r->who.sid, session_checked);
}

static int is_json_type(const char *ct)
{
    static const char want[] = "application/json";
    size_t n = sizeof want - 1;
    if (ct == NULL || strncasecmp(ct, want, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/* The User-Agent as kept: at most SESSION_UA_MAX bytes of valid text,
 * other bytes replaced by '?'. */
static str_t user_agent(http_request *r, char *out)
{
    const char *ua = http_header(r, "User-Agent");
    if (ua == NULL)
        return STR_NULL;
    size_t n = strlen(ua);
    if (n > SESSION_UA_MAX)
        n = SESSION_UA_MAX;
    memcpy(out, ua, n); // NOLINT(bugprone-not-null-terminated-result): a str_t, not a C string
    if (n && !session_text_valid(out, n, SESSION_UA_MAX))
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
                out[i] = '?';
    return (str_t){ out, n };
}

static int caller_may_act_for(const token_claims *who, str_t user)
{
    return who->is_admin || str_eq(user, (str_t){ who->sub, who->sub_len });
}

static rc_t reply_json(http_request *r, unsigned status)
{
    r->status = status;
    r->content_type = "application/json";
    return RC_OK;
}

/* A create between its two halves: what the continuation needs once the
 * record is committed. */
typedef struct create_ctx {
    session_t s;
    session_request_t req;
    char user[SESSION_USER_MAX + 1];
    char ip[SESSION_IP_MAX + 1], ua[SESSION_UA_MAX];
    int attempts;
    buf_t evicted; /* ids closed to stay under SESSION_MAX_PER_USER */
} create_ctx;

static void create_ctx_free(void *p)
{
    create_ctx *c = p;
    session_request_free(&c->req);
    buf_free(&c->evicted);
    free(c);
}

static rc_t create_done(http_request *r);

/* Turns the object just rendered into out into one with "evicted": the
 * ids in ids (NUL-terminated, one after the other). */
static rc_t render_evicted(const buf_t *ids, buf_t *out)
{
    rc_t rc;
    if (out->len == 0 || out->p[out->len - 1] != '}')
        return RC_ERR;
    out->len--;
    if ((rc = buf_append_cstr(out, ",\"evicted\":[")) != RC_OK)
        return rc;
    for (size_t at = 0; at < ids->len;) {
        size_t n = strlen(ids->p + at);
        if ((at && (rc = buf_append_cstr(out, ",")) != RC_OK) ||
            (rc = buf_append_json_str(out, ids->p + at, n)) != RC_OK)
            return rc;
        at += n + 1;
    }
    return buf_append_cstr(out, "]}");
}

/* Draws a fresh id and defers the insert. */
static rc_t create_put(http_request *r, create_ctx *c)
{
    rc_t rc = session_id_generate(c->s.id);
    if (rc != RC_OK)
        return rc;
    const config *cfg = r->svc->cfg;
    r->op = (store_op){ .kind = STORE_OP_PUT, .s = &c->s, .now = r->now,
                        .max_per_user = cfg->session_max_per_user,
                        .refuse = cfg->session_limit_policy == 1, .evicted = &c->evicted };
    return http_defer(r, create_done);
}

static rc_t create_authed(http_request *r)
{
    const http_service *svc = r->svc;
    const token_claims *who = &r->who;
    rc_t rc;
    /* A stolen browser token must not mint sessions that outlive the
     * victim's logout (contract v2). */
    if (who->has_sid)
        return http_fail(r, RC_DENIED, "a session token cannot open another session");
    if (r->body.len > 0 && !is_json_type(http_header(r, "Content-Type")))
        return http_fail(r, RC_UNSUPPORTED, "the body must be application/json");
    create_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RC_NOMEM;
    r->ctx = c; /* freed with the request */
    r->ctx_free = create_ctx_free;
    rc = session_request_parse(r->body.p, r->body.len, svc->cfg->session_max_ttl, &c->req);
    if (rc == RC_INVALID)
        return http_fail(r, rc, c->req.detail);
    if (rc != RC_OK)
        return rc;

    session_t *s = &c->s;
    str_t user = c->req.has_user_id ? (str_t){ c->req.user_id, c->req.user_id_len }
                                    : (str_t){ who->sub, who->sub_len };
    if (!caller_may_act_for(who, user))
        return http_fail(r, RC_DENIED, "only an administrator may open a session for another user");
    memcpy(c->user, user.p, user.len);
    c->user[user.len] = '\0';
    s->user_id = (str_t){ c->user, user.len };
    s->created_at = s->last_seen_at = r->now;
    s->expires_at = r->now + (c->req.has_ttl ? c->req.ttl : svc->cfg->session_ttl);
    http_client_ip(r, c->ip, sizeof c->ip);
    s->ip = (str_t){ c->ip, strlen(c->ip) };
    s->user_agent = user_agent(r, c->ua);
    s->data = (str_t){ c->req.data_json, c->req.data_len };
    return create_put(r, c);
}

/* After the insert: another id on the (astronomically rare) collision,
 * else the session's token and the 201. */
static rc_t create_done(http_request *r)
{
    create_ctx *c = r->ctx;
    session_t *s = &c->s;
    char *token = NULL;
    rc_t rc = r->op.rc;
    if (rc == RC_EXISTS && ++c->attempts < 3)
        return create_put(r, c);
    if (rc == RC_FULL)
        return http_fail(r, RC_FULL, "the session store is full; retry later");
    if (rc == RC_LIMIT)
        return http_fail(r, RC_LIMIT, "the user holds SESSION_MAX_PER_USER live sessions");
    if (rc != RC_OK)
        return rc;
    metrics_sessions_created(1);
    if (r->op.count)
        metrics_sessions_closed(METRICS_CLOSED_EVICTED, r->op.count);
    http_note_session(r, s->id, strlen(s->id));
    if ((rc = token_sign_session(&r->svc->policy, c->user, s->id, s->created_at, s->expires_at,
                                 &token)) != RC_OK)
        return rc;
    if ((rc = session_render(s, token, &r->out)) == RC_OK &&
        (rc = render_evicted(&c->evicted, &r->out)) == RC_OK) {
        char loc[16 + SESSION_ID_MAX];
        int n = snprintf(loc, sizeof loc, "/session/%s", s->id);
        http_add_header(r, "Location", loc, (size_t)n);
        rc = reply_json(r, 201);
    }
    memset(token, 0, strlen(token));
    free(token);
    return rc;
}

static rc_t read_done(http_request *r)
{
    session_t s;
    rc_t rc = r->op.rc;
    if (rc == RC_OK && session_decode(r->rec.p, r->rec.len, &s) != RC_OK)
        rc = RC_ERR;
    /* another user's session looks exactly like an unknown one */
    if (rc == RC_NOT_FOUND || (rc == RC_OK && !caller_may_act_for(&r->who, s.user_id)))
        return http_fail(r, RC_NOT_FOUND, NOT_FOUND_DETAIL);
    if (rc == RC_OK)
        rc = session_render(&s, NULL, &r->out);
    return rc == RC_OK ? reply_json(r, 200) : rc;
}

static rc_t read_authed(http_request *r)
{
    str_t id = r->params[0];
    if (!session_id_valid(id.p, id.len))
        return http_fail(r, RC_NOT_FOUND, NOT_FOUND_DETAIL);
    http_note_session(r, id.p, id.len);
    memcpy(r->op_id, id.p, id.len);
    r->op_id[id.len] = '\0';
    return read_then(r, r->op_id, read_done);
}

/* A close between its halves. */
typedef struct close_ctx {
    char id[SESSION_ID_MAX + 1];
    char owner[SESSION_USER_MAX + 1];
    size_t owner_len;
    int is_admin, as_admin;
} close_ctx;

static rc_t close_done(http_request *r);

/* Defers the delete: as the owner first; an administrator may then close
 * anyone's. */
static rc_t close_del(http_request *r, close_ctx *c)
{
    str_t owner = c->as_admin ? STR_NULL : (str_t){ c->owner, c->owner_len };
    r->op = (store_op){ .kind = STORE_OP_DEL, .id = c->id, .user = owner, .now = r->now };
    return http_defer(r, close_done);
}

static rc_t close_authed(http_request *r)
{
    str_t id = r->params[0];
    if (!session_id_valid(id.p, id.len))
        return http_fail(r, RC_NOT_FOUND, NOT_FOUND_DETAIL);
    http_note_session(r, id.p, id.len);
    close_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RC_NOMEM;
    r->ctx = c; /* freed with the request */
    r->ctx_free = free;
    memcpy(c->id, id.p, id.len);
    memcpy(c->owner, r->who.sub, r->who.sub_len);
    c->owner_len = r->who.sub_len;
    c->is_admin = r->who.is_admin;
    return close_del(r, c);
}

static rc_t close_done(http_request *r)
{
    close_ctx *c = r->ctx;
    rc_t rc = r->op.rc;
    if (rc == RC_NOT_FOUND && c->is_admin && !c->as_admin) {
        c->as_admin = 1;
        return close_del(r, c);
    }
    if (rc == RC_NOT_FOUND)
        return http_fail(r, RC_NOT_FOUND, NOT_FOUND_DETAIL);
    if (rc != RC_OK)
        return rc;
    metrics_sessions_closed(c->as_admin ? METRICS_CLOSED_BY_ADMIN : METRICS_CLOSED_BY_USER, 1);
    r->status = 204;
    return RC_OK;
}

typedef struct list_state {
    buf_t *out;
    int first;
    rc_t rc;
} list_state;

static int render_one(const session_t *s, void *arg)
{
    list_state *ls = arg;
    if (!ls->first && (ls->rc = buf_append_cstr(ls->out, ",")) != RC_OK)
        return 1;
    ls->first = 0;
    ls->rc = session_render(s, NULL, ls->out);
    return ls->rc != RC_OK;
}

/* The {user_id} of the path, if the caller may act for it. *valid is 0 for
 * a string no user id can be (such a user has no sessions). */
static rc_t user_param(http_request *r, const token_claims *who, str_t *user, int *valid)
{
    *user = r->params[0];
    if (!caller_may_act_for(who, *user))
        return http_fail(r, RC_DENIED, "only that user or an administrator may do this");
    *valid = session_user_valid(user->p, user->len);
    return RC_OK;
}

static rc_t list_done(http_request *r)
{
    const list_state *ls = r->ctx;
    rc_t rc = r->op.rc;
    if (rc == RC_OK)
        rc = ls->rc;
    if (rc == RC_OK)
        rc = buf_append_cstr(&r->out, "]}");
    return rc == RC_OK ? reply_json(r, 200) : rc;
}

/* The list is read and rendered on the bulk queue's threads (http.h): an
 * event thread never walks one user's sessions, however many. */
static rc_t list_authed(http_request *r)
{
    str_t user;
    int valid = 0;
    rc_t rc = user_param(r, &r->who, &user, &valid);
    if (rc != RC_OK)
        return rc;
    list_state *ls = calloc(1, sizeof *ls);
    if (ls == NULL)
        return RC_NOMEM;
    r->ctx = ls; /* freed with the request */
    r->ctx_free = free;
    *ls = (list_state){ &r->out, 1, RC_OK };
    if ((rc = buf_append_cstr(&r->out, "{\"sessions\":[")) != RC_OK)
        return rc;
    /* user is a view into r's path parameters: it lives as long as r */
    r->op = (store_op){ .kind = STORE_OP_LIST, .user = user, .now = r->now,
                        .each = render_one, .arg = ls };
    if (!valid) { /* a string no user id can be: such a user has no sessions */
        r->op.rc = RC_OK;
        return list_done(r);
    }
    return http_defer(r, list_done);
}

static rc_t close_all_done(http_request *r)
{
    rc_t rc = r->op.rc;
    size_t closed = r->op.count;
    if (rc != RC_OK)
        return rc;
    metrics_sessions_closed(METRICS_CLOSED_BY_CLOSE_ALL, closed);
    if ((rc = buf_append_cstr(&r->out, "{\"closed\":")) != RC_OK ||
        (rc = buf_append_i64(&r->out, (int64_t)closed)) != RC_OK ||
        (rc = buf_append_cstr(&r->out, "}")) != RC_OK)
        return rc;
    return reply_json(r, 200);
}

static rc_t close_all_authed(http_request *r)
{
    str_t user;
    int valid = 0;
    rc_t rc = user_param(r, &r->who, &user, &valid);
    if (rc != RC_OK)
        return rc;
    char *except = calloc(1, SESSION_ID_MAX + 2);
    if (except == NULL)
        return RC_NOMEM;
    r->ctx = except; /* freed with the request */
    r->ctx_free = free;
    rc_t q = http_query(r, "except", except, SESSION_ID_MAX + 2);
    if (q == RC_INVALID)
        return http_fail(r, RC_INVALID, "except must be a session id");
    /* user is a view into r's path parameters: it lives as long as r */
    r->op = (store_op){ .kind = STORE_OP_DEL_USER, .user = user,
                              .id = q == RC_OK ? except : NULL, .now = r->now };
    if (!valid) { /* a string no user id can be: such a user has no sessions */
        r->op.rc = RC_OK;
        r->op.count = 0;
        return close_all_done(r);
    }
    return http_defer(r, close_all_done);
}

static rc_t validate_done(http_request *r)
{
    session_t s = { 0 };
    rc_t rc = token_session(r, &r->who, &s);
    if (rc != RC_OK)
        return rc;
    http_note_session(r, s.id, strlen(s.id));
    http_add_header(r, "X-User-Id", s.user_id.p, s.user_id.len);
    http_add_header(r, "X-Session-Id", s.id, strlen(s.id));
    if ((rc = buf_append_cstr(&r->out, "{\"user_id\":")) != RC_OK ||
        (rc = buf_append_json_str(&r->out, s.user_id.p, s.user_id.len)) != RC_OK ||
        (rc = buf_append_cstr(&r->out, ",\"session_id\":")) != RC_OK ||
        (rc = buf_append_json_str(&r->out, s.id, strlen(s.id))) != RC_OK ||
        (rc = buf_append_cstr(&r->out, ",\"expires_at\":")) != RC_OK ||
        (rc = buf_append_i64(&r->out, s.expires_at)) != RC_OK ||
        (rc = buf_append_cstr(&r->out, "}")) != RC_OK)
        return rc;
    if (r->now - s.last_seen_at >= TOUCH_EVERY && r->svc->touches != NULL)
        touch_queue_add(r->svc->touches, s.id); /* written in the background */
    return reply_json(r, 200);
}

static rc_t h_validate(http_request *r)
{
    rc_t rc = caller_token(r, &r->who, 1);
    if (rc != RC_OK)
        return rc;
    if (!r->who.has_sid)
        return http_fail(r, RC_UNAUTHORIZED, "not a session token");
    return read_then(r, r->who.sid, validate_done);
}

static rc_t h_healthz(http_request *r)
{
    rc_t rc = buf_append_cstr(&r->out, "{\"status\":\"ok\"}");
    return rc == RC_OK ? reply_json(r, 200) : rc;
}

static rc_t readyz_done(http_request *r)
{
    if (r->op.rc != RC_OK)
        return http_fail(r, RC_UNAVAILABLE, "the session store does not answer, or refuses writes");
    rc_t rc = buf_append_cstr(&r->out, "{\"status\":\"ready\"}");
    return rc == RC_OK ? reply_json(r, 200) : rc;
}

/* Where asking the store is a round trip (Redis), the ping goes through the
 * commit queue like any store work: an event thread never waits on the
 * network, so /healthz and everything else on it go on meanwhile. */
static rc_t h_readyz(http_request *r)
{
    r->op = (store_op){ .kind = STORE_OP_PING };
    if (r->svc->store->remote)
        return http_defer(r, readyz_done);
    r->op.rc = store_ping(r->svc->store);
    return readyz_done(r);
}

static rc_t h_metrics(http_request *r)
{
    metrics_names names = { handlers_metric_names, handlers_nmetrics, store_op_names, store_nops };
    size_t live = 0;
    int counted = store_count(r->svc->store, &live) == RC_OK;
    rc_t rc = metrics_render(&r->out, &names, counted ? (int64_t)live : -1);
    if (rc != RC_OK)
        return rc;
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4";
    return RC_OK;
}


static rc_t h_create(http_request *r)
{
    return authenticate_then(r, create_authed);
}

static rc_t h_read(http_request *r)
{
    return authenticate_then(r, read_authed);
}

static rc_t h_close(http_request *r)
{
    return authenticate_then(r, close_authed);
}

static rc_t h_list(http_request *r)
{
    return authenticate_then(r, list_authed);
}

static rc_t h_close_all(http_request *r)
{
    return authenticate_then(r, close_all_authed);
}

enum { M_SESSION, M_SESSION_ID, M_USER_SESSIONS, M_VALIDATE, M_HEALTHZ, M_READYZ,
       M_METRICS, M_OTHER, M_COUNT };

const char *const handlers_metric_names[M_COUNT] = {
    "/session", "/session/{id}", "/users/{user_id}/sessions", "/validate",
    "/healthz", "/readyz", "/metrics", "other",
};
const unsigned handlers_nmetrics = M_COUNT;
const unsigned handlers_metric_other = M_OTHER;

const http_route handlers_routes[] = {
    /* method, pattern, handler, served by, metric, no-store */
    { "POST", "/session", h_create, GROUP_CREATE, M_SESSION, 1 },
    { "GET", "/session/{id}", h_read, GROUP_READ, M_SESSION_ID, 1 },
    { "DELETE", "/session/{id}", h_close, GROUP_CLOSE, M_SESSION_ID, 1 },
    { "GET", "/users/{user_id}/sessions", h_list, GROUP_READ, M_USER_SESSIONS, 1 },
    { "DELETE", "/users/{user_id}/sessions", h_close_all, GROUP_CLOSE, M_USER_SESSIONS, 1 },
    { "GET", "/validate", h_validate, GROUP_READ, M_VALIDATE, 1 },
    { "GET", "/healthz", h_healthz, GROUP_ALWAYS, M_HEALTHZ, 0 },
    { "GET", "/readyz", h_readyz, GROUP_ALWAYS, M_READYZ, 0 },
    { "GET", "/metrics", h_metrics, GROUP_ALWAYS, M_METRICS, 0 },
};
const size_t handlers_nroutes = sizeof handlers_routes / sizeof handlers_routes[0];
