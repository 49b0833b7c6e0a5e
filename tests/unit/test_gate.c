/* test_gate.c -- the gateway's check (gate.h) against a real LMDB store
 * that the service's own store code writes, in a temporary directory:
 * every verdict, and each thing that makes the gate ask the service. */
#include <ftw.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "b64.h"
#include "gate.h"
#include "record.h"
#include "store.h"
#include "token.h"
#include "unit.h"

#define NOW 1700000000LL
#define SECRET "gate-test-secret-0123456789abcdef"
#define SID_A "gateAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define SID_I "gateIIIIIIIIIIIIIIIIIIIIIIIIIIII"
#define SID_R "gateRRRRRRRRRRRRRRRRRRRRRRRRRRRR"
#define SID_E "gateEEEEEEEEEEEEEEEEEEEEEEEEEEEE"

static char tmpdir[] = "/tmp/sessionservice-gate-XXXXXX";
static char env_path[512];
static token_policy policy = { .key = (const unsigned char *)SECRET, .key_len = sizeof SECRET - 1 };

static void write_env(const char *path, const char *store_url)
{
    FILE *f = fopen(path, "w");
    fprintf(f, "JWT_SECRET=%s\nSTORE_URL=%s\nSESSION_COOKIE=sc\nJWT_LEEWAY=0\n", SECRET,
            store_url);
    fclose(f);
}

/* The settings file names the store tmpdir/sub (its directory into dir). */
static void env_for_store(const char *sub, char *dir, size_t dirlen)
{
    char url[700];
    snprintf(dir, dirlen, "%s/%s", tmpdir, sub);
    snprintf(url, sizeof url, "lmdb://%s", dir);
    write_env(env_path, url);
}

/* The services' store, opened in this same process as the gate's view
 * (which LMDB advises against: closing one handle drops the other's file
 * locks). Harmless here, where no other process uses these stores. */
static store_t *open_store(const char *sub)
{
    char url[512], err[256] = "";
    store_options opt = { .map_size = 64 << 20, .timeout_ms = 1000 };
    store_t *st = NULL;
    snprintf(url, sizeof url, "lmdb://%s/%s", tmpdir, sub);
    if (store_open(url, &opt, &st, err, sizeof err) != RC_OK)
        fprintf(stderr, "  store_open(%s): %s\n", url, err);
    return st;
}

static void put(store_t *st, const session_t *s)
{
    store_op op = { .kind = STORE_OP_PUT, .s = s, .now = s->created_at };
    store_op *one = &op;
    store_batch(st, &one, 1);
    CHECK_EQ_INT(op.rc, RC_OK);
}

static session_t mk(const char *id, const char *user, int64_t created, int64_t expires)
{
    session_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "%s", id);
    s.user_id = (str_t){ user, strlen(user) };
    s.created_at = s.last_seen_at = created;
    s.expires_at = expires;
    s.ip = STR_LIT("192.0.2.7");
    s.data = STR_LIT("{}");
    return s;
}

/* A Bearer header value for sub's token of session sid, generation gen. */
static char *bearer(const char *sub, const char *sid, uint32_t gen, int64_t iat, int64_t exp)
{
    char *tok = NULL, *out;
    rc_t rc = gen == 0 ? token_sign_session(&policy, sub, sid, iat, exp, &tok)
                       : token_sign_rotated(&policy, sub, sid, gen, iat, exp, &tok);
    CHECK_EQ_INT(rc, RC_OK);
    out = malloc(strlen(tok) + 8);
    sprintf(out, "Bearer %s", tok);
    free(tok);
    return out;
}

/* A Bearer value for a token of header (NULL: the signer's) and claims
 * (NULL: the signer's shape for alice), HS256 with key. */
static char *raw_token(const char *header, const char *claims, const unsigned char *key)
{
    const char *h = header ? header : "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const char *c = claims ? claims : "{\"exp\":1700003600,\"iat\":1700000000,\"jti\":\"j\","
                                      "\"sid\":\"" SID_A "\",\"sub\":\"alice\"}";
    char *out = malloc(4096);
    size_t n = (size_t)sprintf(out, "Bearer ");
    size_t start = n;
    b64url_encode((const unsigned char *)h, strlen(h), out + n);
    n += B64_ENCODED_LEN(strlen(h));
    out[n++] = '.';
    b64url_encode((const unsigned char *)c, strlen(c), out + n);
    n += B64_ENCODED_LEN(strlen(c));
    unsigned char mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, (int)strlen((const char *)key), (const unsigned char *)out + start,
         n - start, mac, &ml);
    out[n++] = '.';
    b64url_encode(mac, ml, out + n);
    n += B64_ENCODED_LEN(ml);
    out[n] = '\0';
    return out;
}

static str_t S(const char *s)
{
    return (str_t){ s, s ? strlen(s) : 0 };
}

static gate_verdict check(gate *g, const char *authz, const char *cookie, int64_t now,
                          gate_result *r)
{
    gate_check(g, S(authz), S(cookie), now, r);
    return r->verdict;
}

static gate *new_gate(void)
{
    gate *g = NULL;
    char err[256] = "";
    rc_t rc = gate_new(env_path, &g, err, sizeof err);
    if (rc != RC_OK)
        fprintf(stderr, "  gate_new: %s\n", err);
    CHECK_EQ_INT(rc, RC_OK);
    return g;
}


static void test_verdicts(void)
{
    char url[600];
    snprintf(url, sizeof url, "lmdb://%s/main", tmpdir);
    write_env(env_path, url);
    store_t *st = open_store("main");
    session_t a = mk(SID_A, "alice", NOW, NOW + 3600);
    session_t idle = mk(SID_I, "alice", NOW, NOW + 3600);
    idle.idle_timeout = 100; /* slack 5 s */
    session_t rot = mk(SID_R, "alice", NOW, NOW + 3600);
    rot.gen = 2;
    rot.rotated_at = NOW;
    session_t ended = mk(SID_E, "alice", NOW - 100, NOW + 5);
    ended.last_seen_at = NOW;
    put(st, &a);
    put(st, &idle);
    put(st, &rot);
    put(st, &ended);
    gate *g = new_gate();
    gate_result r;
    char *ta = bearer("alice", SID_A, 0, NOW, NOW + 3600);

    /* a live session's current token, as Bearer */
    CHECK_EQ_INT(check(g, ta, NULL, NOW + 1, &r), GATE_LIVE);
    CHECK_STR_EQ(r.user, "alice");
    CHECK_EQ_INT(r.user_len, 5);
    CHECK_STR_EQ(r.sid, SID_A);
    CHECK_EQ_INT(r.sid_len, strlen(SID_A));
    CHECK_EQ_INT(r.presented, 1);

    /* ... and from the cookie SESSION_COOKIE names (sc), also when the
     * Authorization header is not Bearer */
    char cookie[1200];
    snprintf(cookie, sizeof cookie, "session=nope; sc=%s; x=y", ta + 7);
    CHECK_EQ_INT(check(g, NULL, cookie, NOW + 1, &r), GATE_LIVE);
    CHECK_STR_EQ(r.sid, SID_A);
    CHECK_EQ_INT(check(g, "Basic YWxpY2U6eA==", cookie, NOW + 1, &r), GATE_LIVE);
    snprintf(cookie, sizeof cookie, "session=%s", ta + 7);
    CHECK_EQ_INT(check(g, NULL, cookie, NOW + 1, &r), GATE_REFUSED); /* another cookie's name */
    CHECK_EQ_INT(r.presented, 0);

    /* no token; a bad one; an expired one; a token of another secret */
    CHECK_EQ_INT(check(g, NULL, NULL, NOW + 1, &r), GATE_REFUSED);
    CHECK_EQ_INT(r.presented, 0);
    CHECK_EQ_INT(check(g, "Bearer x.y.z", NULL, NOW + 1, &r), GATE_ASK); /* not signer's */
    CHECK_EQ_INT(r.presented, 1);
    CHECK_EQ_INT(check(g, "Basic YWxpY2U6eA==", NULL, NOW + 1, &r), GATE_REFUSED);
    CHECK_EQ_INT(r.presented, 0); /* no bearer token: no invalid_token (RFC 6750 3.1) */
    CHECK_EQ_INT(check(g, "Bearer ", NULL, NOW + 1, &r), GATE_REFUSED);
    CHECK_EQ_INT(r.presented, 0);
    CHECK_EQ_INT(check(g, "Bearer a b", NULL, NOW + 1, &r), GATE_REFUSED);
    CHECK_EQ_INT(r.presented, 1);
    char *short_lived = bearer("alice", SID_A, 0, NOW, NOW + 10);
    CHECK_EQ_INT(check(g, short_lived, NULL, NOW + 10, &r), GATE_LIVE);
    CHECK_EQ_INT(check(g, short_lived, NULL, NOW + 11, &r), GATE_REFUSED);
    token_policy other = policy;
    other.key = (const unsigned char *)"another-secret-0123456789abcdef!";
    char *forged = NULL;
    CHECK_EQ_INT(token_sign_session(&other, "alice", SID_A, NOW, NOW + 60, &forged), RC_OK);
    char fb[1200];
    snprintf(fb, sizeof fb, "Bearer %s", forged);
    CHECK_EQ_INT(check(g, fb, NULL, NOW + 1, &r), GATE_REFUSED);
    CHECK_EQ_INT(r.user_len, 0);
    /* a token of the secret not written as the signer writes them (a
     * caller token: no sid, other claims) is the service's to judge, as
     * is any other header; a forged one of that form is still refused */
    static const char caller[] = "{\"sub\":\"alice\",\"iat\":1700000000,\"exp\":1700003600}";
    static const char other_header[] = "{\"typ\":\"JWT\",\"alg\":\"HS256\"}";
    char *tc = raw_token(NULL, caller, (const unsigned char *)SECRET);
    char *th = raw_token(other_header, NULL, (const unsigned char *)SECRET);
    char *tf = raw_token(NULL, caller, (const unsigned char *)"another-secret-0123456789abcdef!");
    CHECK_EQ_INT(check(g, tc, NULL, NOW + 1, &r), GATE_ASK);
    CHECK_EQ_INT(check(g, th, NULL, NOW + 1, &r), GATE_ASK);
    CHECK_EQ_INT(check(g, tf, NULL, NOW + 1, &r), GATE_REFUSED);
    free(tc), free(th), free(tf);

    /* a token of another user for alice's session; of no stored session */
    char *tb = bearer("bob", SID_A, 0, NOW, NOW + 3600);
    CHECK_EQ_INT(check(g, tb, NULL, NOW + 1, &r), GATE_REFUSED);
    char *tn = bearer("alice", "gateNNNNNNNNNNNNNNNNNNNNNNNNNNNN", 0, NOW, NOW + 3600);
    CHECK_EQ_INT(check(g, tn, NULL, NOW + 1, &r), GATE_REFUSED);

    /* a session past its expires_at, with a token still valid */
    char *te = bearer("alice", SID_E, 0, NOW, NOW + 3600);
    CHECK_EQ_INT(check(g, te, NULL, NOW + 4, &r), GATE_LIVE);
    CHECK_EQ_INT(check(g, te, NULL, NOW + 5, &r), GATE_REFUSED);

    /* a use the service must record: SESSION_TOUCH_SOON (58 s) since the
     * last recorded one (noted in the background), or 60 (before the answer) */
    CHECK_EQ_INT(check(g, ta, NULL, NOW + SESSION_TOUCH_SOON - 1, &r), GATE_LIVE);
    CHECK_EQ_INT(check(g, ta, NULL, NOW + SESSION_TOUCH_SOON, &r), GATE_ASK);
    CHECK_EQ_INT(check(g, ta, NULL, NOW + 60, &r), GATE_ASK);
    CHECK_EQ_INT(r.user_len, 0);

    /* an idle timeout: asked once the use is its slack old; past the idle
     * end, refused (an idle-expired session is a closed one) */
    char *ti = bearer("alice", SID_I, 0, NOW, NOW + 3600);
    CHECK_EQ_INT(check(g, ti, NULL, NOW + 4, &r), GATE_LIVE);
    CHECK_EQ_INT(check(g, ti, NULL, NOW + 5, &r), GATE_ASK);
    CHECK_EQ_INT(check(g, ti, NULL, NOW + 104, &r), GATE_ASK);
    CHECK_EQ_INT(check(g, ti, NULL, NOW + 105, &r), GATE_REFUSED);

    /* tokens of a rotated session: its current one is live; the previous
     * one (grace) and older ones (reuse) are the service's to judge; a
     * newer one than it knows too */
    char *t2 = bearer("alice", SID_R, 2, NOW, NOW + 3600);
    char *t1 = bearer("alice", SID_R, 1, NOW, NOW + 3600);
    char *t0 = bearer("alice", SID_R, 0, NOW, NOW + 3600);
    char *t3 = bearer("alice", SID_R, 3, NOW, NOW + 3600);
    CHECK_EQ_INT(check(g, t2, NULL, NOW + 1, &r), GATE_LIVE);
    CHECK_EQ_INT(check(g, t1, NULL, NOW + 1, &r), GATE_ASK);
    CHECK_EQ_INT(check(g, t0, NULL, NOW + 1, &r), GATE_ASK);
    CHECK_EQ_INT(check(g, t3, NULL, NOW + 1, &r), GATE_ASK);

    /* a close is seen by the very next check */
    store_op del = { .kind = STORE_OP_DEL, .id = SID_A, .now = NOW + 2 };
    store_op *one = &del;
    store_batch(st, &one, 1);
    CHECK_EQ_INT(del.rc, RC_OK);
    CHECK_EQ_INT(check(g, ta, NULL, NOW + 2, &r), GATE_REFUSED);

    /* a use recorded by the service is seen too */
    store_op touch = { .kind = STORE_OP_TOUCH, .id = SID_I, .now = NOW + 50, .s = &idle };
    one = &touch;
    store_batch(st, &one, 1);
    CHECK_EQ_INT(touch.rc, RC_OK);
    CHECK_EQ_INT(check(g, ti, NULL, NOW + 54, &r), GATE_LIVE);

    free(ta), free(short_lived), free(forged), free(tb), free(tn), free(te), free(ti);
    free(t0), free(t1), free(t2), free(t3);
    gate_free(g);
    store_close(st);
}

/* Asked, never refused for it: a store that is not there yet, one that is
 * made again, a Redis store. */
static void test_asks(void)
{
    char dir[600];
    env_for_store("later", dir, sizeof dir);
    gate *g = new_gate();
    gate_result r;
    char *t = bearer("carol", SID_A, 0, NOW, NOW + 3600);

    CHECK(gate_store_problem(g) == NULL);
    CHECK_EQ_INT(check(g, t, NULL, NOW, &r), GATE_ASK); /* no store yet */
    CHECK(gate_store_problem(g) != NULL && strstr(gate_store_problem(g), "/later") != NULL);
    CHECK_EQ_INT(check(g, "Bearer x.y.z", NULL, NOW, &r), GATE_ASK);
    CHECK_EQ_INT(check(g, NULL, NULL, NOW, &r), GATE_REFUSED);
    store_t *st = open_store("later");
    session_t c = mk(SID_A, "carol", NOW, NOW + 3600);
    put(st, &c);
    CHECK_EQ_INT(check(g, t, NULL, NOW, &r), GATE_ASK); /* retried a second later */
    CHECK_EQ_INT(check(g, t, NULL, NOW + 1, &r), GATE_LIVE);
    CHECK(gate_store_problem(g) == NULL);

    /* the store deleted and made again, without carol's session */
    store_close(st);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_EQ_INT(system(cmd), 0);
    st = open_store("later");
    CHECK_EQ_INT(check(g, t, NULL, NOW + 1, &r), GATE_LIVE); /* looked at once a second */
    CHECK_EQ_INT(check(g, t, NULL, NOW + 2, &r), GATE_REFUSED);
    store_close(st);
    gate_free(g);

    write_env(env_path, "redis://127.0.0.1:1");
    g = new_gate();
    CHECK_EQ_INT(check(g, t, NULL, NOW, &r), GATE_ASK);
    CHECK_EQ_INT(check(g, NULL, NULL, NOW, &r), GATE_REFUSED);
    gate_free(g);
    free(t);
}

/* A record this code cannot decode (a newer version's) is asked about,
 * and the store stays open for the others. */
static void test_undecodable_record(void)
{
    char dir[600];
    env_for_store("junk", dir, sizeof dir);
    store_t *st = open_store("junk");
    session_t c = mk(SID_A, "erin", NOW, NOW + 3600);
    put(st, &c);
    store_close(st);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = { strlen(SID_I), (void *)SID_I }, v = { 5, (void *)"junk!" };
    CHECK(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 4) == 0 &&
          mdb_env_open(env, dir, 0, 0600) == 0 && mdb_txn_begin(env, NULL, 0, &txn) == 0 &&
          mdb_dbi_open(txn, "sessions", 0, &dbi) == 0 && mdb_put(txn, dbi, &k, &v, 0) == 0 &&
          mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    gate *g = new_gate();
    gate_result r;
    char *ta = bearer("erin", SID_A, 0, NOW, NOW + 3600);
    char *ti = bearer("erin", SID_I, 0, NOW, NOW + 3600);
    CHECK_EQ_INT(check(g, ti, NULL, NOW, &r), GATE_ASK);
    CHECK(gate_store_problem(g) == NULL);
    CHECK_EQ_INT(check(g, ta, NULL, NOW, &r), GATE_LIVE); /* the same second: still open */
    free(ta), free(ti);
    gate_free(g);
}

/* The settings as the services' table reads them; refused as the services
 * refuse them, and a relative lmdb:// path (which the services take from
 * their working directory) refused. */
static void test_settings(void)
{
    char sub[600], env2[800];
    snprintf(sub, sizeof sub, "%s/conf", tmpdir);
    mkdir(sub, 0700);
    snprintf(env2, sizeof env2, "%s/.env", sub);
    gate *g = NULL;
    char err[256] = "";
    write_env(env2, "lmdb://rel");
    CHECK_EQ_INT(gate_new(env2, &g, err, sizeof err), RC_INVALID);
    CHECK(g == NULL && strncmp(err, "STORE_URL", 9) == 0 && strstr(err, "absolute") != NULL);
    write_env(env2, "lmdb:///an/absolute/path");
    CHECK_EQ_INT(gate_new(env2, &g, err, sizeof err), RC_OK);
    if (g != NULL)
        CHECK_STR_EQ(gate_config(g)->session_cookie, "sc");
    gate_free(g);

    FILE *f = fopen(env2, "w");
    fprintf(f, "JWT_SECRET=short\n");
    fclose(f);
    g = NULL;
    CHECK_EQ_INT(gate_new(env2, &g, err, sizeof err), RC_INVALID);
    CHECK(g == NULL);
    CHECK(strncmp(err, "JWT_SECRET", 10) == 0);
    write_env(env2, "ftp://x");
    CHECK_EQ_INT(gate_new(env2, &g, err, sizeof err), RC_INVALID);
    CHECK(strncmp(err, "STORE_URL", 9) == 0);
    write_env(env2, "lmdb://");
    CHECK_EQ_INT(gate_new(env2, &g, err, sizeof err), RC_INVALID);
    CHECK(strncmp(err, "STORE_URL", 9) == 0);
    snprintf(env2, sizeof env2, "%s/missing.env", sub);
    CHECK_EQ_INT(gate_new(env2, &g, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "missing.env") != NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    snprintf(env_path, sizeof env_path, "%s/.env", tmpdir);
    RUN(test_verdicts);
    RUN(test_asks);
    RUN(test_undecodable_record);
    RUN(test_settings);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return UNIT_SUMMARY();
}
