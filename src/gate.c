/* gate.c -- a gateway's session check (see gate.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cred.h"
#include "gate.h"
#include "lmdb_view.h"
#include "token.h"

#define LMDB_SCHEME "lmdb://"

struct gate {
    config cfg;
    token_policy policy;
    char *lmdb_path;    /* NULL: the store is not LMDB, every session is asked */
    lmdb_view *view;    /* this process's, opened at its first check */
    int64_t retry_at;   /* no view: when to try opening it again */
    int64_t checked_at; /* the second the view was last checked for staleness */
    char problem[300];  /* why the view cannot be opened ("": it can) */
};

/* Whether url names one of the services' stores (store.c's schemes; the
 * rest of a Redis URL is the services' to check). */
static int known_store(const char *url)
{
    static const char *const schemes[] = { "lmdb://", "redis://", "redis-sentinel://",
                                           "redis-cluster://" };
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (strncmp(url, schemes[i], strlen(schemes[i])) == 0)
            return 1;
    return 0;
}

/* The store's directory for STORE_URL url: NULL unless lmdb://. Allocates
 * (free). RC_INVALID unless the path is absolute: the services take a
 * relative one from their working directory, which the gate cannot know,
 * and reading another directory's store would answer for sessions that
 * the services' own store has closed. */
static rc_t lmdb_dir(const char *url, char **out)
{
    *out = NULL;
    if (strncmp(url, LMDB_SCHEME, strlen(LMDB_SCHEME)) != 0)
        return RC_OK;
    const char *path = url + strlen(LMDB_SCHEME);
    if (path[0] != '/')
        return RC_INVALID;
    return (*out = strdup(path)) != NULL ? RC_OK : RC_NOMEM;
}

rc_t gate_new(const char *env_path, gate **out, char *err, size_t errlen)
{
    gate *g = calloc(1, sizeof *g);
    if (g == NULL) {
        snprintf(err, errlen, "out of memory");
        return RC_NOMEM;
    }
    rc_t rc = config_load_file(&g->cfg, env_path, err, errlen);
    if (rc == RC_OK && !known_store(g->cfg.store_url)) {
        snprintf(err, errlen, "STORE_URL: unknown scheme (expected lmdb, redis, "
                 "redis-sentinel or redis-cluster)");
        rc = RC_INVALID;
    }
    if (rc == RC_OK && (rc = lmdb_dir(g->cfg.store_url, &g->lmdb_path)) != RC_OK)
        snprintf(err, errlen, rc == RC_NOMEM ? "out of memory" : "STORE_URL: the nginx module "
                 "needs an absolute lmdb:// path (the services read a relative one from their "
                 "working directory)");
    if (rc != RC_OK) {
        gate_free(g);
        return rc;
    }
    g->policy = (token_policy){
        .key = (const unsigned char *)g->cfg.jwt_secret,
        .key_len = g->cfg.jwt_secret_len,
        .previous = (const unsigned char *)g->cfg.jwt_secret_previous,
        .previous_len = g->cfg.jwt_secret_previous_len,
        .issuer = g->cfg.jwt_issuer,
        .audience = g->cfg.jwt_audience,
        .leeway = g->cfg.jwt_leeway,
        .admin_scope = g->cfg.admin_scope,
        /* an identity provider's token is never a session token, which is
         * all /validate takes: its keys are not needed to refuse it */
        .jwks = NULL,
    };
    *out = g;
    return RC_OK;
}

const config *gate_config(const gate *g)
{
    return &g->cfg;
}

const char *gate_store_problem(const gate *g)
{
    return g->problem[0] ? g->problem : NULL;
}

static gate_verdict result(gate_result *out, gate_verdict v, const char *why)
{
    out->verdict = v;
    out->why = why;
    return v;
}

/* The token as /validate takes it: Bearer, else the session cookie. */
static int find_token(const gate *g, str_t authz, str_t cookie, str_t *tok, int *presented)
{
    const char *name = g->cfg.session_cookie;
    *presented = authz.p != NULL && cred_bearer_offered(authz.p, authz.len);
    if (authz.p != NULL && cred_bearer(authz.p, authz.len, tok) == RC_OK)
        return 1;
    if (cookie.p != NULL && cred_cookie(cookie.p, cookie.len, name, strlen(name), tok) == RC_OK) {
        *presented = 1;
        return 1;
    }
    return 0;
}

/* This process's view of the store, (re)opened as needed; NULL for now. */
static lmdb_view *view(gate *g, int64_t now)
{
    if (g->view != NULL && g->checked_at != now) {
        g->checked_at = now;
        if (lmdb_view_stale(g->view)) { /* the store was made again */
            lmdb_view_close(g->view);
            g->view = NULL;
        }
    }
    if (g->view == NULL && now >= g->retry_at) {
        if (lmdb_view_open(g->lmdb_path, &g->view, g->problem, sizeof g->problem) != RC_OK) {
            g->view = NULL;
            g->retry_at = now + 1;
        } else {
            g->problem[0] = '\0';
        }
        g->checked_at = now;
    }
    return g->view;
}

typedef struct judging {
    const token_claims *who;
    int64_t now;
    int64_t grace;
    gate_result *out;
} judging;

/* exec.c's judgement of a session token's own session (judge_auth), as
 * far as it needs no write: anything else is the service's to answer. */
static gate_verdict judge_session(const session_t *s, const judging *j)
{
    gate_result *out = j->out;
    if (!str_eq(s->user_id, (str_t){ j->who->sub, j->who->sub_len }))
        return result(out, GATE_REFUSED, "the session is another user's");
    if (!session_live(s, j->now))
        return result(out, GATE_REFUSED, "the session has ended");
    if (session_token_verdict(s, j->who->gen, j->now, j->grace) != SESSION_TOKEN_CURRENT)
        return result(out, GATE_ASK, "a token of another generation");
    if (session_use_due(s, j->now) != SESSION_DUE_NONE)
        return result(out, GATE_ASK, "a use to record");
    memcpy(out->user, s->user_id.p, s->user_id.len);
    out->user[s->user_id.len] = '\0';
    out->user_len = s->user_id.len;
    out->sid_len = strlen(s->id);
    memcpy(out->sid, s->id, out->sid_len + 1);
    return result(out, GATE_LIVE, "live");
}

static void judge(const session_t *s, void *arg)
{
    judge_session(s, arg);
}

static gate_verdict check(gate *g, str_t authorization, str_t cookie, int64_t now,
                          gate_result *out)
{
    str_t tok;
    token_claims who;
    out->user_len = out->sid_len = 0;
    out->user[0] = out->sid[0] = '\0';
    if (!find_token(g, authorization, cookie, &tok, &out->presented))
        return result(out, GATE_REFUSED, "no session token");
    rc_t rc = token_verify_session(&g->policy, tok.p, tok.len, now, &who);
    if (rc == RC_INVALID || rc == RC_NOMEM)
        return result(out, GATE_ASK, "not a token as the service signs them");
    if (rc != RC_OK)
        return result(out, GATE_REFUSED, "the token is invalid or expired");
    if (!who.has_sid)
        return result(out, GATE_REFUSED, "not a session token");
    if (g->lmdb_path == NULL)
        return result(out, GATE_ASK, "the store is not LMDB");
    lmdb_view *v = view(g, now);
    if (v == NULL)
        return result(out, GATE_ASK, "the store cannot be opened");
    judging j = { &who, now, g->cfg.session_refresh_grace, out };
    rc = lmdb_view_get(v, who.sid, strlen(who.sid), judge, &j);
    if (rc == RC_NOT_FOUND)
        return result(out, GATE_REFUSED, "no such session");
    if (rc == RC_INVALID)
        return result(out, GATE_ASK, "a record this gate cannot read");
    if (rc != RC_OK) {
        /* opened again a second later at the soonest */
        lmdb_view_close(g->view);
        g->view = NULL;
        g->retry_at = now + 1;
        snprintf(g->problem, sizeof g->problem, "the LMDB store at %.200s failed a read",
                 g->lmdb_path);
        return result(out, GATE_ASK, "the store failed");
    }
    return out->verdict; /* judge's */
}

void gate_check(gate *g, str_t authorization, str_t cookie, int64_t now, gate_result *out)
{
    check(g, authorization, cookie, now, out);
}

void gate_release(gate *g)
{
    if (g == NULL)
        return;
    lmdb_view_close(g->view);
    g->view = NULL;
}

void gate_free(gate *g)
{
    if (g == NULL)
        return;
    gate_release(g);
    free(g->lmdb_path);
    config_free(&g->cfg);
    free(g);
}
