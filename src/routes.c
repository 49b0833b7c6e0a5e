/* routes.c -- the route table and, for each route, its pure build and
 * render functions (see routes.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"
#include "routes.h"
#include "store.h"
#include "record.h"
#include "session_json.h"
#include "body.h"

#define NOT_FOUND_DETAIL "no live session with this id"

rc_t route_policy(const route_call *c, token_policy *out)
{
    *out = *c->env->policy;
    if (c->env->keys != NULL) {
        const keys *k = keyring_get(c->env->keys);
        if (k == NULL)
            return RC_NOMEM;
        keys_apply(k, out);
    }
    return RC_OK;
}

rc_t route_fail(route_call *c, rc_t rc, const char *detail)
{
    snprintf(c->detail_buf, sizeof c->detail_buf, "%s", detail);
    c->detail = c->detail_buf;
    return rc;
}

void route_call_free(route_call *c)
{
    body_create_free(&c->body);
    buf_free(&c->job.auth_rec);
    buf_free(&c->rec);
    buf_free(&c->evicted);
}

static void add_header(route_call *c, const char *name, const char *value, size_t len)
{
    c->io.add_header(c->io.arg, name, value, len);
}

static void about(route_call *c, const char *id, size_t len)
{
    if (len < sizeof c->about && session_id_valid(id, len)) {
        memcpy(c->about, id, len);
        c->about[len] = '\0';
    }
}

static rc_t json(route_call *c)
{
    c->content_type = "application/json";
    return RC_OK;
}

static int caller_may_act_for(const token_claims *who, str_t user)
{
    return who->is_admin || str_eq(user, (str_t){ who->sub, who->sub_len });
}

/* ---- POST /session ---- */

static int is_json_type(const char *ct)
{
    static const char want[] = "application/json";
    size_t n = sizeof want - 1;
    if (ct == NULL || strncasecmp(ct, want, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/* The body of POST /session (the media type first). */
static rc_t decode_create(route_call *c)
{
    const char *body = c->raw_body.p;
    size_t len = c->raw_body.len;
    if (len > 0 && !is_json_type(c->io.header(c->io.arg, "Content-Type")))
        return route_fail(c, RC_UNSUPPORTED, "the body must be application/json");
    rc_t rc = body_create_parse(body, len, c->env->cfg->session_max_ttl, &c->body);
    if (rc == RC_INVALID)
        return route_fail(c, rc, c->body.detail);
    return rc;
}

/* The User-Agent as kept: at most SESSION_UA_MAX bytes of valid text,
 * other bytes replaced by '?'. */
static str_t user_agent(route_call *c)
{
    const char *ua = c->io.header(c->io.arg, "User-Agent");
    if (ua == NULL)
        return STR_NULL;
    size_t n = strlen(ua);
    if (n > SESSION_UA_MAX)
        n = SESSION_UA_MAX;
    memcpy(c->ua, ua, n); // NOLINT(bugprone-not-null-terminated-result): a str_t, not a C string
    if (n && !session_text_valid(c->ua, n, SESSION_UA_MAX))
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)c->ua[i] < 0x20 || (unsigned char)c->ua[i] >= 0x7f)
                c->ua[i] = '?';
    return (str_t){ c->ua, n };
}

static rc_t build_create(route_call *c)
{
    const config *cfg = c->env->cfg;
    const body_create_t *req = &c->body;
    str_t user = req->has_user_id ? (str_t){ req->user_id, req->user_id_len }
                                  : (str_t){ c->who.sub, c->who.sub_len };
    if (!caller_may_act_for(&c->who, user))
        return route_fail(c, RC_DENIED, "only an administrator may open a session for another user");
    session_t *s = &c->s;
    memcpy(c->user, user.p, user.len);
    c->user[user.len] = '\0';
    s->user_id = (str_t){ c->user, user.len };
    s->created_at = s->last_seen_at = c->now;
    s->expires_at = c->now + (req->has_ttl ? req->ttl : cfg->session_ttl);
    s->idle_timeout = req->has_idle_timeout ? req->idle_timeout : cfg->session_idle_timeout;
    c->io.client_ip(c->io.arg, c->ip, sizeof c->ip);
    s->ip = (str_t){ c->ip, strlen(c->ip) };
    s->user_agent = user_agent(c);
    s->data = (str_t){ req->data_json, req->data_len };
    c->job.has_op = 1;
    c->job.fresh = s; /* the executor draws the id */
    c->job.op = (store_op){ .kind = STORE_OP_PUT, .s = s, .now = c->now,
                            .max_per_user = cfg->session_max_per_user,
                            .refuse = cfg->session_limit_policy == CONFIG_LIMIT_REFUSE, .evicted = &c->evicted };
    return RC_OK;
}

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

static rc_t render_create(route_call *c)
{
    const session_t *s = &c->s;
    char *token = NULL;
    rc_t rc = c->job.op.rc;
    if (rc == RC_FULL)
        return route_fail(c, RC_FULL, "the session store is full; retry later");
    if (rc == RC_LIMIT)
        return route_fail(c, RC_LIMIT, "the user holds SESSION_MAX_PER_USER live sessions");
    if (rc == RC_EXISTS)
        return RC_UNAVAILABLE; /* EXEC_CREATE_ATTEMPTS ids taken: no id to give */
    if (rc != RC_OK)
        return rc;
    about(c, s->id, strlen(s->id));
    token_policy pol;
    if ((rc = route_policy(c, &pol)) != RC_OK ||
        (rc = token_sign_session(&pol, c->user, s->id, s->created_at, s->expires_at,
                                 &token)) != RC_OK)
        return rc;
    if ((rc = session_json_render(s, token, c->out)) == RC_OK &&
        (rc = render_evicted(&c->evicted, c->out)) == RC_OK) {
        char loc[16 + SESSION_ID_MAX];
        int n = snprintf(loc, sizeof loc, "/session/%s", s->id);
        add_header(c, "Location", loc, (size_t)n);
        rc = json(c);
    }
    memset(token, 0, strlen(token));
    free(token);
    return rc;
}

/* ---- GET and DELETE /session/{id} ---- */

/* The {id} of the path into c->id; 404 for a string no id can be (a
 * malformed escape included: API.md, "Any id outside the id alphabet"). */
static rc_t id_param(route_call *c)
{
    str_t id = c->params[0];
    if (!session_id_valid(id.p, id.len))
        return route_fail(c, RC_NOT_FOUND, NOT_FOUND_DETAIL);
    about(c, id.p, id.len);
    memcpy(c->id, id.p, id.len);
    c->id[id.len] = '\0';
    return RC_OK;
}

static rc_t build_read(route_call *c)
{
    rc_t rc = id_param(c);
    if (rc != RC_OK)
        return rc;
    c->job.has_op = 1;
    c->job.op = (store_op){ .kind = STORE_OP_GET, .id = c->id, .now = c->now, .rec = &c->rec };
    return RC_OK;
}

static rc_t render_read(route_call *c)
{
    session_t s;
    rc_t rc = c->job.op.rc;
    if (rc == RC_OK && record_decode(c->rec.p, c->rec.len, &s) != RC_OK)
        rc = RC_UNAVAILABLE; /* the store gave back what it cannot have stored */
    /* another user's session looks exactly like an unknown one */
    if (rc == RC_NOT_FOUND || (rc == RC_OK && !caller_may_act_for(&c->who, s.user_id)))
        return route_fail(c, RC_NOT_FOUND, NOT_FOUND_DETAIL);
    if (rc == RC_OK)
        rc = session_json_render(&s, NULL, c->out);
    return rc == RC_OK ? json(c) : rc;
}

/* As the owner; an administrator's close of another user's session is
 * retried by the executor without the owner (admin_fallback). */
static rc_t build_close(route_call *c)
{
    rc_t rc = id_param(c);
    if (rc != RC_OK)
        return rc;
    c->job.has_op = 1;
    c->job.admin_fallback = c->who.is_admin;
    c->job.op = (store_op){ .kind = STORE_OP_DEL, .id = c->id, .now = c->now,
                            .user = { c->who.sub, c->who.sub_len } };
    return RC_OK;
}

static rc_t render_close(route_call *c)
{
    rc_t rc = c->job.op.rc;
    if (rc == RC_NOT_FOUND)
        return route_fail(c, RC_NOT_FOUND, NOT_FOUND_DETAIL);
    return rc;
}

/* ---- POST /session/{id}/refresh ---- */

/* Only the session's own token may refresh it (ROUTE_AUTH_OWN); the
 * executor rotates it (exec.h). A token of another session: 404, as for
 * any session the caller cannot see. */
static rc_t build_refresh(route_call *c)
{
    rc_t rc = id_param(c);
    if (rc != RC_OK)
        return rc;
    if (strcmp(c->id, c->who.sid) != 0)
        return route_fail(c, RC_NOT_FOUND, NOT_FOUND_DETAIL);
    c->job.refresh = 1;
    return RC_OK;
}

/* The session as it now is, with the token of its current generation:
 * the very same string for every refresh that ends at this generation. */
static rc_t render_refresh(route_call *c)
{
    const session_t *s = &c->job.cur;
    char *token = NULL;
    rc_t rc = c->job.op.rc;
    if (rc == RC_FULL)
        return route_fail(c, RC_FULL, "the session store is full; retry later");
    if (rc != RC_OK)
        return rc;
    token_policy pol;
    if ((rc = route_policy(c, &pol)) != RC_OK ||
        (rc = token_sign_rotated(&pol, c->who.sub, s->id, s->gen, s->rotated_at,
                                 s->expires_at, &token)) != RC_OK)
        return rc;
    rc = session_json_render(s, token, c->out);
    memset(token, 0, strlen(token));
    free(token);
    return rc == RC_OK ? json(c) : rc;
}

/* ---- GET and DELETE /users/{user_id}/sessions ---- */

/* The {user_id} of the path, if the caller may act for it. A string no
 * user id can be names a user without sessions: no store work. */
static rc_t user_param(route_call *c, str_t *user)
{
    *user = c->params[0];
    if (c->bad_escape)
        return route_fail(c, RC_INVALID, "malformed percent-encoding in the path");
    if (!caller_may_act_for(&c->who, *user))
        return route_fail(c, RC_DENIED, "only that user or an administrator may do this");
    c->job.has_op = session_user_valid(user->p, user->len);
    return RC_OK;
}

/* Called by the store for each session, on the bulk lane's thread: a list
 * is rendered as it is read. */
static int render_one(const session_t *s, void *arg)
{
    list_state *ls = arg;
    if (!ls->first && (ls->rc = buf_append_cstr(ls->out, ",")) != RC_OK)
        return 1;
    ls->first = 0;
    ls->rc = session_json_render(s, NULL, ls->out);
    return ls->rc != RC_OK;
}

static rc_t build_list(route_call *c)
{
    str_t user;
    rc_t rc = user_param(c, &user);
    if (rc != RC_OK)
        return rc;
    c->list = (list_state){ c->out, 1, RC_OK };
    if ((rc = buf_append_cstr(c->out, "{\"sessions\":[")) != RC_OK)
        return rc;
    c->job.op = (store_op){ .kind = STORE_OP_LIST, .user = user, .now = c->now,
                            .each = render_one, .arg = &c->list };
    return RC_OK;
}

static rc_t render_list(route_call *c)
{
    rc_t rc = c->job.has_op ? c->job.op.rc : RC_OK;
    if (rc == RC_OK)
        rc = c->list.rc;
    if (rc == RC_OK)
        rc = buf_append_cstr(c->out, "]}");
    return rc == RC_OK ? json(c) : rc;
}

static rc_t build_close_all(route_call *c)
{
    str_t user;
    rc_t rc = user_param(c, &user);
    if (rc != RC_OK)
        return rc;
    /* an except that names no live session of the user is ignored, as is
     * one that decodes to no string an id could be (RC_TOO_LARGE); a
     * malformed one is refused: closing all would lose the one to keep */
    rc_t q = c->io.query(c->io.arg, "except", c->id, sizeof c->id);
    if (q == RC_INVALID)
        return route_fail(c, RC_INVALID, "except: malformed percent-encoding");
    c->job.op = (store_op){ .kind = STORE_OP_DEL_USER, .user = user,
                            .id = q == RC_OK ? c->id : NULL, .now = c->now };
    return RC_OK;
}

static rc_t render_close_all(route_call *c)
{
    rc_t rc = c->job.has_op ? c->job.op.rc : RC_OK;
    size_t closed = c->job.has_op ? c->job.op.count : 0;
    if (rc != RC_OK)
        return rc;
    if ((rc = buf_append_cstr(c->out, "{\"closed\":")) != RC_OK ||
        (rc = buf_append_i64(c->out, (int64_t)closed)) != RC_OK ||
        (rc = buf_append_cstr(c->out, "}")) != RC_OK)
        return rc;
    return json(c);
}

/* ---- GET /validate ---- */

/* The session token's session is the whole work: the executor reads it
 * (routes.h, ROUTE_AUTH_SESSION) and records its use. */
static rc_t build_validate(route_call *c)
{
    (void)c;
    return RC_OK;
}

static rc_t render_validate(route_call *c)
{
    session_t s;
    rc_t rc;
    if (record_decode(c->job.auth_rec.p, c->job.auth_rec.len, &s) != RC_OK)
        return RC_UNAVAILABLE;
    about(c, s.id, strlen(s.id));
    add_header(c, "X-User-Id", s.user_id.p, s.user_id.len);
    add_header(c, "X-Session-Id", s.id, strlen(s.id));
    if ((rc = buf_append_cstr(c->out, "{\"user_id\":")) != RC_OK ||
        (rc = buf_append_json_str(c->out, s.user_id.p, s.user_id.len)) != RC_OK ||
        (rc = buf_append_cstr(c->out, ",\"session_id\":")) != RC_OK ||
        (rc = buf_append_json_str(c->out, s.id, strlen(s.id))) != RC_OK ||
        (rc = buf_append_cstr(c->out, ",\"expires_at\":")) != RC_OK ||
        (rc = buf_append_i64(c->out, s.expires_at)) != RC_OK ||
        (rc = buf_append_cstr(c->out, "}")) != RC_OK)
        return rc;
    return json(c);
}

/* ---- health, readiness, metrics ---- */

static rc_t build_nothing(route_call *c)
{
    (void)c;
    return RC_OK;
}

static rc_t render_healthz(route_call *c)
{
    rc_t rc = buf_append_cstr(c->out, "{\"status\":\"ok\"}");
    return rc == RC_OK ? json(c) : rc;
}

static rc_t build_readyz(route_call *c)
{
    c->job.has_op = 1;
    c->job.op = (store_op){ .kind = STORE_OP_PING, .now = c->now };
    return RC_OK;
}

static rc_t render_readyz(route_call *c)
{
    if (c->job.op.rc != RC_OK)
        return route_fail(c, RC_UNAVAILABLE, "the session store does not answer, or refuses writes");
    rc_t rc = buf_append_cstr(c->out, "{\"status\":\"ready\"}");
    return rc == RC_OK ? json(c) : rc;
}

static rc_t build_metrics(route_call *c)
{
    c->job.has_op = 1;
    c->job.op = (store_op){ .kind = STORE_OP_COUNT, .now = c->now };
    return RC_OK;
}

static rc_t render_metrics(route_call *c)
{
    metrics_names names = { c->env->metric_names, c->env->nmetrics, store_op_names, store_nops };
    int counted = c->job.op.rc == RC_OK;
    rc_t rc = metrics_render(c->out, &names, counted ? (int64_t)c->job.op.count : -1);
    if (rc != RC_OK)
        return rc;
    c->content_type = "text/plain; version=0.0.4";
    return RC_OK;
}

/* ---- the table ---- */

#define NONE ROUTE_AUTH_NONE
#define CALLER ROUTE_AUTH_CALLER
#define SESSION ROUTE_AUTH_SESSION
#define EITHER ROUTE_AUTH_EITHER
#define OWN ROUTE_AUTH_OWN

const route routes_table[] = {
    /* method, pattern, served by, auth, decoder, build, render, status, no-store */
    { "POST", "/session", GROUP_CREATE, CALLER, decode_create, build_create, render_create, 201, 1 },
    { "GET", "/session/{id}", GROUP_READ, EITHER, NULL, build_read, render_read, 200, 1 },
    { "DELETE", "/session/{id}", GROUP_CLOSE, EITHER, NULL, build_close, render_close, 204, 1 },
    { "POST", "/session/{id}/refresh", GROUP_CREATE, OWN, NULL, build_refresh, render_refresh,
      200, 1 },
    { "GET", "/users/{user_id}/sessions", GROUP_READ, EITHER, NULL, build_list, render_list, 200, 1 },
    { "DELETE", "/users/{user_id}/sessions", GROUP_CLOSE, EITHER, NULL, build_close_all,
      render_close_all, 200, 1 },
    { "GET", "/validate", GROUP_READ, SESSION, NULL, build_validate, render_validate, 200, 1 },
    { "GET", "/healthz", GROUP_ALWAYS, NONE, NULL, build_nothing, render_healthz, 200, 0 },
    { "GET", "/readyz", GROUP_ALWAYS, NONE, NULL, build_readyz, render_readyz, 200, 0 },
    { "GET", "/metrics", GROUP_ALWAYS, NONE, NULL, build_metrics, render_metrics, 200, 0 },
};
const size_t routes_count = sizeof routes_table / sizeof routes_table[0];
