/* test_routes.c -- the routes' build and render functions (routes.c), pure
 * as they are: a route_call filled by hand, the job's results set by the
 * test instead of a store. What no black-box test can make happen: a store
 * that hands back a record that does not decode, a create whose every id
 * was taken, an evicted list rendered into the 201. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "routes.h"
#include "unit.h"
#include "record.h"

#define NOW 1700000000LL
#define SECRET "0123456789abcdef0123456789abcdef"
#define SID "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAa"

static config cfg;
static token_policy policy;
static route_env env;
static const char *names[] = { "/session", "other" };

/* the request's headers: NULL-terminated name, value pairs */
static const char *const *headers;

static const char *io_header(void *arg, const char *name)
{
    (void)arg;
    for (const char *const *h = headers; h && h[0]; h += 2)
        if (strcasecmp(h[0], name) == 0)
            return h[1];
    return NULL;
}

static rc_t io_query(void *arg, const char *name, char *out, size_t outlen)
{
    const char *v = arg;
    (void)name;
    if (v == NULL)
        return RC_NOT_FOUND;
    if (strchr(v, '%') != NULL)
        return RC_INVALID; /* the tests' stand-in for a malformed escape */
    if (strlen(v) >= outlen)
        return RC_TOO_LARGE;
    strcpy(out, v);
    return RC_OK;
}

static void io_client_ip(void *arg, char *out, size_t outlen)
{
    (void)arg;
    snprintf(out, outlen, "192.0.2.9");
}

/* the answer's headers: "Name: value" each */
static char added[4][320];
static unsigned nadded;

static void io_add_header(void *arg, const char *name, const char *value, size_t len)
{
    (void)arg;
    if (nadded < 4)
        snprintf(added[nadded++], sizeof added[0], "%s: %.*s", name, (int)len, value);
}

static const route *find(const char *method, const char *pattern)
{
    for (size_t i = 0; i < routes_count; i++)
        if (strcmp(routes_table[i].method, method) == 0 &&
            strcmp(routes_table[i].pattern, pattern) == 0)
            return &routes_table[i];
    fprintf(stderr, "no route %s %s\n", method, pattern);
    exit(2);
}

/* A call from sub (an administrator when admin), with one path parameter. */
static route_call *call(const char *sub, int admin, const char *param, buf_t *out)
{
    route_call *c = calloc(1, sizeof *c);
    c->env = &env;
    c->io = (route_io){ io_header, io_query, io_client_ip, io_add_header, NULL };
    nadded = 0;
    c->now = NOW;
    c->out = out;
    buf_reset(out);
    snprintf(c->who.sub, sizeof c->who.sub, "%s", sub);
    c->who.sub_len = strlen(sub);
    c->who.is_admin = admin;
    if (param)
        c->params[0] = (str_t){ param, strlen(param) };
    return c;
}

static void done(route_call *c)
{
    route_call_free(c);
    free(c);
}

static void record(const char *id, const char *user, buf_t *rec)
{
    session_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "%s", id);
    s.user_id = (str_t){ user, strlen(user) };
    s.created_at = s.last_seen_at = NOW;
    s.expires_at = NOW + 60;
    s.ip = STR_LIT("192.0.2.1");
    s.data = STR_LIT("{}");
    buf_reset(rec);
    record_encode(&s, rec);
}

static int contains(const buf_t *b, const char *what)
{
    return b->len > 0 && memmem(b->p, b->len, what, strlen(what)) != NULL;
}

static void test_create(void)
{
    const route *rt = find("POST", "/session");
    buf_t out = BUF_INIT;
    static const char *const h[] = { "Content-Type", "application/json",
                                     "User-Agent", "agent\x01/1", NULL };
    headers = h;

    /* for another user: administrators only */
    route_call *c = call("alice", 0, NULL, &out);
    c->raw_body = STR_LIT("{\"user_id\":\"bob\"}");
    CHECK_EQ_INT(rt->decode(c), RC_OK);
    CHECK_EQ_INT(rt->build(c), RC_DENIED);
    CHECK(!c->job.has_op);
    done(c);

    c = call("root", 1, NULL, &out);
    c->raw_body = STR_LIT("{\"user_id\":\"bob\",\"ttl\":30}");
    CHECK_EQ_INT(rt->decode(c), RC_OK);
    CHECK_EQ_INT(rt->build(c), RC_OK);
    CHECK(c->job.has_op && c->job.op.kind == STORE_OP_PUT && c->job.fresh == &c->s);
    CHECK(str_eq_cstr(c->s.user_id, "bob"));
    CHECK_EQ_INT(c->s.expires_at, NOW + 30);
    CHECK_EQ_INT(c->job.op.max_per_user, cfg.session_max_per_user);
    CHECK(str_eq_cstr(c->s.ip, "192.0.2.9"));
    CHECK(str_eq_cstr(c->s.user_agent, "agent?/1")); /* control bytes replaced */

    /* every id taken: no id to give, a 503 -- never a 201 without a session */
    c->job.op.rc = RC_EXISTS;
    CHECK_EQ_INT(rt->render(c), RC_UNAVAILABLE);
    c->job.op.rc = RC_LIMIT;
    CHECK_EQ_INT(rt->render(c), RC_LIMIT);
    CHECK(c->detail && strstr(c->detail, "SESSION_MAX_PER_USER"));

    /* the 201: a token for this session, Location, the evicted ids */
    snprintf(c->s.id, sizeof c->s.id, "%s", SID);
    c->job.op.rc = RC_OK;
    buf_append(&c->evicted, "old1AAAAAAAAAAAAAAAAAAAAAAAAAAA\0old2AAAAAAAAAAAAAAAAAAAAAAAAAAA", 64);
    CHECK_EQ_INT(rt->render(c), RC_OK);
    CHECK(contains(&out, "\"evicted\":[\"old1AAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                         "\"old2AAAAAAAAAAAAAAAAAAAAAAAAAAA\"]}"));
    CHECK_EQ_INT(nadded, 1);
    CHECK_STR_EQ(added[0], "Location: /session/" SID);
    CHECK_STR_EQ(c->about, SID);
    const char *tok = out.p ? strstr(out.p, "\"token\":\"") : NULL;
    CHECK(tok != NULL);
    if (tok) {
        tok += 9;
        token_claims who;
        CHECK_EQ_INT(token_verify(&policy, tok, strcspn(tok, "\""), NOW, &who), RC_OK);
        CHECK(who.has_sid && strcmp(who.sid, SID) == 0 && strcmp(who.sub, "bob") == 0);
    }
    done(c);

    /* the media type is checked before the body */
    static const char *const plain[] = { "Content-Type", "text/plain", NULL };
    headers = plain;
    c = call("alice", 0, NULL, &out);
    c->raw_body = STR_LIT("{}");
    CHECK_EQ_INT(rt->decode(c), RC_UNSUPPORTED);
    done(c);
    headers = NULL;
    buf_free(&out);
}

static void test_read(void)
{
    const route *rt = find("GET", "/session/{id}");
    buf_t out = BUF_INIT;
    route_call *c = call("alice", 0, "not an id", &out);
    CHECK_EQ_INT(rt->build(c), RC_NOT_FOUND);
    done(c);

    c = call("alice", 0, SID, &out);
    CHECK_EQ_INT(rt->build(c), RC_OK);
    CHECK(c->job.op.kind == STORE_OP_GET && strcmp(c->job.op.id, SID) == 0);
    /* another user's session is an unknown one, to the byte */
    record(SID, "bob", &c->rec);
    c->job.op.rc = RC_OK;
    CHECK_EQ_INT(rt->render(c), RC_NOT_FOUND);
    const char *foreign = c->detail;
    c->job.op.rc = RC_NOT_FOUND;
    CHECK_EQ_INT(rt->render(c), RC_NOT_FOUND);
    CHECK_STR_EQ(c->detail, foreign);
    /* a record the store cannot have written: the store failed us (503) */
    buf_reset(&c->rec);
    buf_append(&c->rec, "junk", 4);
    c->job.op.rc = RC_OK;
    CHECK_EQ_INT(rt->render(c), RC_UNAVAILABLE);
    record(SID, "alice", &c->rec);
    CHECK_EQ_INT(rt->render(c), RC_OK);
    CHECK(contains(&out, "\"user_id\":\"alice\"") && !contains(&out, "token"));
    done(c);
    buf_free(&out);
}

static void test_close(void)
{
    const route *rt = find("DELETE", "/session/{id}");
    buf_t out = BUF_INIT;
    route_call *c = call("root", 1, SID, &out);
    CHECK_EQ_INT(rt->build(c), RC_OK);
    CHECK(c->job.op.kind == STORE_OP_DEL && str_eq_cstr(c->job.op.user, "root"));
    CHECK_EQ_INT(c->job.admin_fallback, 1);
    done(c);
    c = call("alice", 0, SID, &out);
    CHECK_EQ_INT(rt->build(c), RC_OK);
    CHECK_EQ_INT(c->job.admin_fallback, 0);
    c->job.op.rc = RC_NOT_FOUND;
    CHECK_EQ_INT(rt->render(c), RC_NOT_FOUND);
    c->job.op.rc = RC_UNAVAILABLE;
    CHECK_EQ_INT(rt->render(c), RC_UNAVAILABLE);
    done(c);
    buf_free(&out);
}

static void test_user_routes(void)
{
    const route *list = find("GET", "/users/{user_id}/sessions");
    const route *all = find("DELETE", "/users/{user_id}/sessions");
    buf_t out = BUF_INIT;
    route_call *c = call("alice", 0, "bob", &out);
    CHECK_EQ_INT(list->build(c), RC_DENIED);
    done(c);
    /* a string no user id can be: no store work, an empty list */
    c = call("root", 1, " padded", &out);
    CHECK_EQ_INT(list->build(c), RC_OK);
    CHECK(!c->job.has_op);
    CHECK_EQ_INT(list->render(c), RC_OK);
    CHECK(out.len == 15 && memcmp(out.p, "{\"sessions\":[]}", 15) == 0);
    done(c);

    c = call("alice", 0, "alice", &out);
    c->io.arg = "bad id";
    CHECK_EQ_INT(all->build(c), RC_OK); /* any string fits: the store judges */
    done(c);
    c = call("alice", 0, "alice", &out);
    c->io.arg = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    CHECK_EQ_INT(all->build(c), RC_OK); /* too long to name one: ignored */
    CHECK(c->job.has_op && c->job.op.id == NULL);
    done(c);
    c = call("alice", 0, "alice", &out);
    c->io.arg = "AAAA%zz";
    CHECK_EQ_INT(all->build(c), RC_INVALID); /* malformed: refused, nothing closed */
    done(c);
    /* a user id whose escape did not decode (http_path_match gave "") */
    c = call("root", 1, "", &out);
    c->bad_escape = 1;
    CHECK_EQ_INT(list->build(c), RC_INVALID);
    CHECK(!c->job.has_op);
    done(c);
    c = call("root", 1, "", &out);
    c->bad_escape = 1;
    CHECK_EQ_INT(all->build(c), RC_INVALID);
    CHECK(!c->job.has_op);
    done(c);
    c = call("alice", 0, "alice", &out);
    CHECK_EQ_INT(all->build(c), RC_OK);
    CHECK(c->job.has_op && c->job.op.kind == STORE_OP_DEL_USER && c->job.op.id == NULL);
    c->job.op.rc = RC_OK;
    c->job.op.count = 7;
    CHECK_EQ_INT(all->render(c), RC_OK);
    CHECK(out.len == 12 && memcmp(out.p, "{\"closed\":7}", 12) == 0);
    done(c);
    buf_free(&out);
}

static void test_validate(void)
{
    const route *rt = find("GET", "/validate");
    buf_t out = BUF_INIT;
    route_call *c = call("alice", 0, NULL, &out);
    CHECK_EQ_INT(rt->auth, ROUTE_AUTH_SESSION);
    CHECK_EQ_INT(rt->build(c), RC_OK);
    CHECK(!c->job.has_op && !c->job.refresh); /* the auth step is the whole work */
    record(SID, "alice", &c->job.auth_rec);
    CHECK_EQ_INT(rt->render(c), RC_OK);
    CHECK(contains(&out, "{\"user_id\":\"alice\",\"session_id\":\"" SID "\",\"expires_at\":"));
    CHECK_EQ_INT(nadded, 2);
    CHECK_STR_EQ(added[0], "X-User-Id: alice");
    CHECK_STR_EQ(added[1], "X-Session-Id: " SID);
    buf_reset(&c->job.auth_rec);
    CHECK_EQ_INT(rt->render(c), RC_UNAVAILABLE);
    done(c);
    buf_free(&out);
}

/* A refresh of SID by its own token, built, and rendered as the executor
 * would leave it at generation 3. */
static route_call *refreshed(const route *rt, buf_t *out)
{
    route_call *c = call("alice", 0, SID, out);
    snprintf(c->who.sid, sizeof c->who.sid, "%s", SID);
    CHECK_EQ_INT(rt->build(c), RC_OK);
    record(SID, "alice", &c->job.auth_rec);
    CHECK_EQ_INT(record_decode(c->job.auth_rec.p, c->job.auth_rec.len, &c->job.cur), RC_OK);
    c->job.cur.gen = 3;
    c->job.cur.rotated_at = NOW - 2;
    c->job.op.rc = RC_OK;
    CHECK_EQ_INT(rt->render(c), RC_OK);
    return c;
}

/* Only the session's own token refreshes it: another session's is 404
 * (as an unknown id), and the answer is the session with the token of its
 * current generation -- the same string whoever renders it. */
static void test_refresh(void)
{
    const route *rt = find("POST", "/session/{id}/refresh");
    buf_t out = BUF_INIT, out2 = BUF_INIT;
    CHECK_EQ_INT(rt->auth, ROUTE_AUTH_OWN);
    CHECK_EQ_INT(rt->ok_status, 200);
    CHECK(rt->no_store);
    route_call *c = call("alice", 0, SID, &out);
    snprintf(c->who.sid, sizeof c->who.sid, "%s", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBb");
    CHECK_EQ_INT(rt->build(c), RC_NOT_FOUND);
    CHECK(!c->job.refresh);
    done(c);
    c = refreshed(rt, &out);
    CHECK(c->job.refresh);
    CHECK(contains(&out, "\"id\":\"" SID "\""));
    CHECK(contains(&out, "\"token\":\"ey"));
    route_call *c2 = refreshed(rt, &out2);
    CHECK(out.len == out2.len && memcmp(out.p, out2.p, out.len) == 0);
    c2->job.op.rc = RC_UNAVAILABLE;
    buf_reset(&out2);
    CHECK_EQ_INT(rt->render(c2), RC_UNAVAILABLE);
    done(c);
    done(c2);
    buf_free(&out);
    buf_free(&out2);
}

static const char *cfg_lookup(const char *name, void *arg)
{
    (void)arg;
    return strcmp(name, "JWT_SECRET") == 0 ? SECRET : NULL;
}

int main(void)
{
    char err[256];
    if (config_load_from(&cfg, cfg_lookup, NULL, err, sizeof err) != RC_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    policy = (token_policy){ (const unsigned char *)cfg.jwt_secret, cfg.jwt_secret_len, NULL,
                             NULL, 30, cfg.admin_scope, NULL, 0, NULL };
    env = (route_env){ &cfg, &policy, NULL, names, 2 };
    RUN(test_create);
    RUN(test_read);
    RUN(test_close);
    RUN(test_user_routes);
    RUN(test_validate);
    RUN(test_refresh);
    config_free(&cfg);
    return UNIT_SUMMARY();
}
