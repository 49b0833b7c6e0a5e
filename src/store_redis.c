/* store_redis.c -- the distributed store on Redis (hiredis).
 *
 * Keys (every command touches exactly one key, so every command is in one
 * hash slot and the schema works unchanged on Redis Cluster):
 *   ss:s:<id>     STRING  the session record (session_encode), with a native
 *                         expiry at expires_at (SET ... EXAT), so Redis drops
 *                         expired sessions itself
 *   ss:u:<user>   ZSET    the user's session ids, scored by expires_at; the
 *                         key expires with the user's last session
 * Create adds the index entry first, then the session (SET NX): a crash in
 * between leaves only an index entry without a session, which readers skip
 * and remove. Close is a DEL: of two racing closes exactly one sees 1. See
 * docs/REDIS.md. Each worker thread has its own connection (no lock on the
 * hot path); a broken connection is dropped and reopened on the next call,
 * at most every RECONNECT_MS while Redis is down. */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "log.h"
#include "store_redis.h"

#define RECONNECT_MS 200
#define IDLE_CHECK_MS 100 /* a connection idle this long is checked before use */
#define KEY_MAX (8 + SESSION_USER_MAX)

typedef struct redis_store {
    store_t base;
    redis_url url;
    struct timeval timeout;
    pthread_key_t conn_key;
} redis_store;

typedef struct rconn {
    redisContext *c;
    uint64_t retry_at_ms;
    uint64_t used_ms; /* last handed out */
} rconn;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- URL ---- */

rc_t store_redis_url_parse(const char *t, size_t len, redis_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    const char *end = t + len;
    const char *at = NULL;
    for (const char *p = t; p < end; p++)
        if (*p == '@')
            at = p; /* the last '@': a password may hold '@' only if encoded */
    const char *h = t;
    if (at != NULL) {
        const char *colon = memchr(t, ':', (size_t)(at - t));
        if (colon == NULL) {
            snprintf(err, errlen, "STORE_URL: credentials must be [user]:password@");
            return RC_INVALID;
        }
        size_t ul = (size_t)(colon - t), pl = (size_t)(at - colon - 1), n;
        if (ul >= sizeof u->user || pl >= sizeof u->password ||
            str_pct_decode(t, ul, u->user, &n) != RC_OK || memchr(u->user, '\0', n)) {
            snprintf(err, errlen, "STORE_URL: bad user name");
            return RC_INVALID;
        }
        u->user[n] = '\0';
        if (str_pct_decode(colon + 1, pl, u->password, &n) != RC_OK ||
            memchr(u->password, '\0', n)) {
            snprintf(err, errlen, "STORE_URL: bad password encoding");
            return RC_INVALID;
        }
        u->password[n] = '\0';
        u->has_password = n > 0;
        h = at + 1;
    }
    const char *slash = memchr(h, '/', (size_t)(end - h));
    const char *hend = slash ? slash : end;
    const char *pstart = NULL;
    if (h < hend && *h == '[') {
        const char *close = memchr(h, ']', (size_t)(hend - h));
        if (close == NULL || close == h + 1 || (size_t)(close - h - 1) >= sizeof u->host) {
            snprintf(err, errlen, "STORE_URL: bad [IPv6] host");
            return RC_INVALID;
        }
        memcpy(u->host, h + 1, (size_t)(close - h - 1));
        unsigned char addr[16];
        if (inet_pton(AF_INET6, u->host, addr) != 1) {
            snprintf(err, errlen, "STORE_URL: [host] must be an IPv6 address");
            return RC_INVALID;
        }
        if (close + 1 < hend) {
            if (close[1] != ':') {
                snprintf(err, errlen, "STORE_URL: junk after [IPv6] host");
                return RC_INVALID;
            }
            pstart = close + 2;
        }
    } else {
        const char *colon = memchr(h, ':', (size_t)(hend - h));
        const char *nend = colon ? colon : hend;
        if (nend == h || (size_t)(nend - h) >= sizeof u->host) {
            snprintf(err, errlen, "STORE_URL: redis:// needs a host");
            return RC_INVALID;
        }
        for (const char *p = h; p < nend; p++) {
            char c = *p;
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_')) {
                snprintf(err, errlen, "STORE_URL: bad character in host");
                return RC_INVALID;
            }
        }
        memcpy(u->host, h, (size_t)(nend - h));
        if (colon)
            pstart = colon + 1;
    }
    if (pstart != NULL) {
        long port = 0;
        const char *p = pstart;
        for (; p < hend && *p >= '0' && *p <= '9' && port <= 65535; p++)
            port = port * 10 + (*p - '0');
        if (p != hend || p == pstart || port < 1 || port > 65535) {
            snprintf(err, errlen, "STORE_URL: port must be 1..65535");
            return RC_INVALID;
        }
        u->port = (int)port;
    }
    if (slash != NULL && slash + 1 < end) {
        long db = 0;
        const char *p = slash + 1;
        for (; p < end && *p >= '0' && *p <= '9' && db < 100000; p++)
            db = db * 10 + (*p - '0');
        if (p != end || db > 65535) {
            snprintf(err, errlen, "STORE_URL: database must be a number");
            return RC_INVALID;
        }
        u->db = (int)db;
    }
    return RC_OK;
}

/* ---- connections ---- */

static void conn_free(void *p)
{
    rconn *rc = p;
    if (rc->c)
        redisFree(rc->c);
    free(rc);
}

static void drop(rconn *cn)
{
    if (cn->c)
        redisFree(cn->c);
    cn->c = NULL;
    cn->retry_at_ms = now_ms() + RECONNECT_MS;
}

static int handshake(redis_store *st, redisContext *c)
{
    redisReply *r;
    if (st->url.has_password) {
        if (st->url.user[0])
            r = redisCommand(c, "AUTH %s %s", st->url.user, st->url.password);
        else
            r = redisCommand(c, "AUTH %s", st->url.password);
        int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
        if (!ok)
            return 0;
    }
    if (st->url.db != 0) {
        r = redisCommand(c, "SELECT %d", st->url.db);
        int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Whether an idle connection was closed by the other side (Redis restarted,
 * or a proxy timed it out): Redis never sends anything unasked, so any
 * readable state -- EOF, reset, stray bytes -- means it is of no use. */
static int went_stale(const redisContext *c)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN | POLLRDHUP };
    return poll(&p, 1, 0) != 0;
}

/* The calling thread's connection, opened if needed; NULL while Redis is
 * unreachable. */
static rconn *conn(redis_store *st)
{
    rconn *cn = pthread_getspecific(st->conn_key);
    if (cn == NULL) {
        cn = calloc(1, sizeof *cn);
        if (cn == NULL || pthread_setspecific(st->conn_key, cn) != 0) {
            free(cn);
            return NULL;
        }
    }
    uint64_t now = now_ms();
    if (cn->c != NULL && now - cn->used_ms >= IDLE_CHECK_MS && went_stale(cn->c)) {
        redisFree(cn->c); /* reopened at once below, not after a back-off */
        cn->c = NULL;
    }
    cn->used_ms = now;
    if (cn->c != NULL)
        return cn;
    if (now < cn->retry_at_ms)
        return NULL;
    redisContext *c = redisConnectWithTimeout(st->url.host, st->url.port, st->timeout);
    if (c == NULL || c->err || redisSetTimeout(c, st->timeout) != REDIS_OK ||
        !handshake(st, c)) {
        if (c)
            redisFree(c);
        cn->retry_at_ms = now_ms() + RECONNECT_MS;
        return NULL;
    }
    redisEnableKeepAlive(c);
    cn->c = c;
    return cn;
}

static rc_t reply_error(const redisReply *r)
{
    if (strncmp(r->str, "OOM", 3) == 0)
        return RC_FULL;
    if (strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "READONLY", 8) == 0 ||
        strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "MASTERDOWN", 10) == 0 ||
        strncmp(r->str, "TRYAGAIN", 8) == 0 || strncmp(r->str, "CLUSTERDOWN", 11) == 0)
        return RC_UNAVAILABLE;
    log_msg(LOG_ERROR, "redis: %.200s", r->str);
    return RC_ERR;
}

/* Runs one command. RC_OK with *out (free with freeReplyObject), or
 * RC_UNAVAILABLE (connection problem; the connection is dropped), or the
 * rc of an error reply. */
static rc_t cmd(redis_store *st, redisReply **out, int argc, const char **argv,
                const size_t *lens)
{
    *out = NULL;
    rconn *cn = conn(st);
    if (cn == NULL)
        return RC_UNAVAILABLE;
    redisReply *r = redisCommandArgv(cn->c, argc, argv, lens);
    if (r == NULL) {
        drop(cn);
        return RC_UNAVAILABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc_t rc = reply_error(r);
        freeReplyObject(r);
        return rc;
    }
    *out = r;
    return RC_OK;
}

static size_t session_key(char *out, const char *id)
{
    return (size_t)snprintf(out, KEY_MAX, "ss:s:%s", id);
}

static size_t user_key(char *out, str_t user)
{
    memcpy(out, "ss:u:", 5); // NOLINT(bugprone-not-null-terminated-result): a key with a length
    memcpy(out + 5, user.p, user.len);
    return 5 + user.len;
}

static void i64_text(char *out, int64_t v)
{
    snprintf(out, 24, "%lld", (long long)v);
}

/* ---- operations ---- */

/* One command of a pipeline. */
typedef struct rcmd {
    int argc;
    const char **argv;
    const size_t *lens;
} rcmd;

/* Sends n commands in one write and reads their n replies (one round trip;
 * Redis runs them in order, and with appendfsync always, fsyncs them
 * together). RC_OK with every reply in out (free each), or RC_UNAVAILABLE
 * when the connection failed (the connection is dropped, out is empty).
 * Error replies are returned as replies for the caller to judge. */
static rc_t pipeline(redis_store *st, const rcmd *cmds, size_t n, redisReply **out)
{
    rconn *cn = conn(st);
    memset(out, 0, n * sizeof(redisReply *));
    if (cn == NULL)
        return RC_UNAVAILABLE;
    for (size_t i = 0; i < n; i++)
        if (redisAppendCommandArgv(cn->c, cmds[i].argc, cmds[i].argv, cmds[i].lens) != REDIS_OK)
            goto broken;
    for (size_t i = 0; i < n; i++)
        if (redisGetReply(cn->c, (void **)&out[i]) != REDIS_OK || out[i] == NULL)
            goto broken;
    return RC_OK;
broken:
    for (size_t i = 0; i < n; i++)
        if (out[i])
            freeReplyObject(out[i]);
    memset(out, 0, n * sizeof(redisReply *));
    drop(cn);
    return RC_UNAVAILABLE;
}

static void free_replies(redisReply **r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r[i])
            freeReplyObject(r[i]);
}

/* A GET reply: the live session's record into rec (reset first), decoded
 * into s (views into rec). RC_NOT_FOUND for absent or expired. */
static rc_t live_record(const redisReply *r, int64_t now, buf_t *rec, session_t *s)
{
    if (r->type == REDIS_REPLY_ERROR)
        return reply_error(r);
    if (r->type != REDIS_REPLY_STRING)
        return RC_NOT_FOUND;
    buf_reset(rec);
    rc_t rc = buf_append(rec, r->str, r->len);
    if (rc == RC_OK && (session_decode(rec->p, rec->len, s) != RC_OK || !session_live(s, now)))
        rc = RC_NOT_FOUND;
    return rc;
}

/* Fetches the live record of id into rec. */
static rc_t fetch(redis_store *st, const char *id, int64_t now, buf_t *rec, session_t *s)
{
    char skey[KEY_MAX];
    redisReply *r;
    const char *ga[] = { "GET", skey };
    size_t gl[] = { 3, session_key(skey, id) };
    rc_t rc = cmd(st, &r, 2, ga, gl);
    if (rc != RC_OK)
        return rc;
    rc = live_record(r, now, rec, s);
    freeReplyObject(r);
    return rc;
}

static rc_t redis_get(store_t *base, const char *id, int64_t now, buf_t *rec)
{
    session_t s;
    return fetch((redis_store *)base, id, now, rec, &s);
}

/* Drops index entries whose expires_at has passed: they are dead for sure,
 * whereas an entry without its session may be a create in flight (between
 * its ZADD and its SET) and is only ever removed this way, once expired. */
static void prune(redis_store *st, str_t user, int64_t now)
{
    char ukey[KEY_MAX], when[24];
    redisReply *r;
    i64_text(when, now);
    const char *pa[] = { "ZREMRANGEBYSCORE", ukey, "-inf", when };
    size_t pl[] = { 16, user_key(ukey, user), 4, strlen(when) };
    if (cmd(st, &r, 4, pa, pl) == RC_OK)
        freeReplyObject(r);
}

static void unindex(redis_store *st, str_t user, const char *const *ids, size_t n)
{
    char ukey[KEY_MAX];
    redisReply *r;
    const char *argv[2 + 128];
    size_t lens[2 + 128];
    argv[0] = "ZREM";
    lens[0] = 4;
    argv[1] = ukey;
    lens[1] = user_key(ukey, user);
    while (n > 0) {
        size_t k = n > 128 ? 128 : n;
        for (size_t i = 0; i < k; i++) {
            argv[2 + i] = ids[i];
            lens[2 + i] = strlen(ids[i]);
        }
        if (cmd(st, &r, (int)(2 + k), argv, lens) == RC_OK)
            freeReplyObject(r);
        ids += k;
        n -= k;
    }
}

/* The ids in the user's index (all of them, live or not). */
static rc_t index_ids(redis_store *st, str_t user, redisReply **out)
{
    char ukey[KEY_MAX];
    const char *za[] = { "ZRANGE", ukey, "0", "-1" };
    size_t zl[] = { 6, user_key(ukey, user), 1, 2 };
    rc_t rc = cmd(st, out, 4, za, zl);
    if (rc == RC_OK && (*out)->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(*out);
        *out = NULL;
        rc = RC_ERR;
    }
    return rc;
}

typedef struct found {
    buf_t rec;
    session_t s;
} found;

static int newest_first(const void *a, const void *b)
{
    const found *x = a, *y = b;
    if (x->s.created_at != y->s.created_at)
        return x->s.created_at < y->s.created_at ? 1 : -1;
    return strcmp(y->s.id, x->s.id);
}

static rc_t redis_list(store_t *base, str_t user, int64_t now, store_each_fn fn, void *arg)
{
    redis_store *st = (redis_store *)base;
    redisReply *ids = NULL;
    found *f = NULL;
    size_t nf = 0;
    rc_t rc = index_ids(st, user, &ids);
    if (rc != RC_OK || ids->elements == 0)
        goto out;
    rconn *cn = conn(st);
    if (cn == NULL) {
        rc = RC_UNAVAILABLE;
        goto out;
    }
    f = calloc(ids->elements, sizeof *f);
    if (f == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    /* one round trip: pipeline a GET per id */
    char skey[KEY_MAX];
    for (size_t i = 0; i < ids->elements; i++) {
        const char *ga[] = { "GET", skey };
        size_t gl[] = { 3, session_key(skey, ids->element[i]->str) };
        redisAppendCommandArgv(cn->c, 2, ga, gl);
    }
    for (size_t i = 0; i < ids->elements; i++) {
        redisReply *r = NULL;
        if (redisGetReply(cn->c, (void **)&r) != REDIS_OK || r == NULL) {
            drop(cn);
            rc = RC_UNAVAILABLE;
            goto out;
        }
        found *x = &f[nf];
        if (r->type == REDIS_REPLY_STRING && buf_append(&x->rec, r->str, r->len) == RC_OK &&
            session_decode(x->rec.p, x->rec.len, &x->s) == RC_OK && session_live(&x->s, now))
            nf++;
        freeReplyObject(r);
    }
    prune(st, user, now);
    qsort(f, nf, sizeof *f, newest_first);
    for (size_t i = 0; i < nf; i++)
        if (fn(&f[i].s, arg))
            break;
out:
    if (f != NULL)
        for (size_t i = 0; i < (ids ? ids->elements : 0); i++)
            buf_free(&f[i].rec);
    free(f);
    if (ids)
        freeReplyObject(ids);
    return rc;
}

/* One DEL of close-all's pipeline. */
typedef struct del_cmd {
    const char *argv[2];
    size_t lens[2];
    char key[KEY_MAX];
} del_cmd;

static rc_t redis_del_user(store_t *base, str_t user, const char *except, int64_t now,
                           size_t *count)
{
    redis_store *st = (redis_store *)base;
    redisReply *ids = NULL, **replies = NULL;
    const char **gone = NULL;
    del_cmd *dels = NULL;
    rcmd *cmds = NULL;
    size_t ng = 0, nd = 0;
    (void)now; /* Redis has already dropped expired keys: DEL answers 0 */
    *count = 0;
    rc_t rc = index_ids(st, user, &ids);
    if (rc != RC_OK || ids->elements == 0)
        goto out;
    size_t n = ids->elements;
    gone = calloc(n, sizeof *gone);
    dels = calloc(n, sizeof *dels);
    cmds = calloc(n, sizeof *cmds);
    replies = calloc(n, sizeof(redisReply *));
    if (gone == NULL || dels == NULL || cmds == NULL || replies == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    /* every DEL in one round trip; each still decides alone whether this
     * close-all closed that session (1) or someone else did first (0) */
    for (size_t i = 0; i < n; i++) {
        const char *id = ids->element[i]->str;
        if (except != NULL && strcmp(id, except) == 0)
            continue;
        del_cmd *d = &dels[nd];
        d->argv[0] = "DEL";
        d->lens[0] = 3;
        d->argv[1] = d->key;
        d->lens[1] = session_key(d->key, id);
        gone[nd] = id; /* for now: the id of each DEL */
        cmds[nd++] = (rcmd){ 2, d->argv, d->lens };
    }
    if (nd == 0 || (rc = pipeline(st, cmds, nd, replies)) != RC_OK)
        goto out;
    for (size_t i = 0; i < nd; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            if (rc == RC_OK)
                rc = reply_error(replies[i]);
        } else if (replies[i]->type == REDIS_REPLY_INTEGER && replies[i]->integer == 1) {
            gone[ng++] = gone[i]; /* ng <= i: compacts in place */
        }
        /* 0: closed, expired, or a create between its ZADD and its SET:
         * left to expiry-based pruning, never unindexed here */
    }
    free_replies(replies, nd);
    *count = ng;
    if (ng)
        unindex(st, user, gone, ng);
    prune(st, user, now);
out:
    free(gone);
    free(dels);
    free(cmds);
    free(replies);
    if (ids)
        freeReplyObject(ids);
    return rc;
}

/* ---- the request path's operations, many at once ----
 * Round 1 pipelines every create's commands and every read's and close's
 * GET; round 2
 * the DEL and ZREM of the closes whose session is live and theirs. With
 * appendfsync always, Redis syncs each round's writes together. Close-all
 * runs alone afterwards (its commands depend on the index it reads). */

typedef struct wscratch {
    buf_t rec;      /* create: the encoded record; close: the fetched one */
    session_t s;    /* read, close: the fetched session (views into the record) */
    char skey[KEY_MAX], ukey[KEY_MAX], exp[24], now[24];
    const char *argv[5][6];
    size_t lens[5][6];
    size_t first;   /* its first reply in the round; SIZE_MAX: not sent */
} wscratch;

/* A create's commands, in this order, in one round trip:
 * 1. the index entry first: a crash after it leaves a dangling id, never a
 *    session that close-all cannot find;
 * 2. the session, with its native expiry (NX: ids are never reused);
 * 3. housekeeping: drop the index's expired entries, and let the index key
 *    live as long as its longest session (NX sets a first expiry, GT only
 *    ever extends it). */
#define PUT_CMDS 5
static void put_commands(wscratch *x, const session_t *s, rcmd *cmds)
{
    size_t sk = session_key(x->skey, s->id), uk = user_key(x->ukey, s->user_id);
    size_t idl = strlen(s->id);
    i64_text(x->exp, s->expires_at);
    i64_text(x->now, s->created_at);
    size_t el = strlen(x->exp);
    static const char *const name[PUT_CMDS] = { "ZADD", "SET", "ZREMRANGEBYSCORE", "EXPIREAT",
                                                "EXPIREAT" };
    const char *const args[PUT_CMDS][5] = {
        { x->ukey, x->exp, s->id },
        { x->skey, x->rec.p, "EXAT", x->exp, "NX" },
        { x->ukey, "-inf", x->now },
        { x->ukey, x->exp, "NX" },
        { x->ukey, x->exp, "GT" },
    };
    const size_t lens[PUT_CMDS][5] = {
        { uk, el, idl }, { sk, x->rec.len, 4, el, 2 }, { uk, 4, strlen(x->now) },
        { uk, el, 2 }, { uk, el, 2 },
    };
    static const int argc[PUT_CMDS] = { 4, 6, 4, 4, 4 };
    for (int c = 0; c < PUT_CMDS; c++) {
        x->argv[c][0] = name[c];
        x->lens[c][0] = strlen(name[c]);
        for (int i = 1; i < argc[c]; i++) {
            x->argv[c][i] = args[c][i - 1];
            x->lens[c][i] = lens[c][i - 1];
        }
        cmds[c] = (rcmd){ argc[c], x->argv[c], x->lens[c] };
    }
}

static rc_t put_result(redisReply *const *r)
{
    if (r[0]->type == REDIS_REPLY_ERROR)
        return reply_error(r[0]);
    if (r[1]->type == REDIS_REPLY_ERROR)
        return reply_error(r[1]);
    return r[1]->type == REDIS_REPLY_NIL ? RC_EXISTS : RC_OK;
}

/* A close's GET reply: RC_OK when it holds a live session of owner (any
 * owner when owner.p is NULL), decoded into x->s. The owner of a session
 * never changes and ids are never reused, so reading, checking, then DEL is
 * race-free: the DEL decides who closed it. */
static rc_t closable(wscratch *x, const redisReply *r, str_t owner, int64_t now)
{
    rc_t rc = live_record(r, now, &x->rec, &x->s);
    if (rc == RC_OK && owner.p != NULL && !str_eq(owner, x->s.user_id))
        rc = RC_NOT_FOUND;
    return rc;
}

/* Sends the n commands of a round and hands each op its replies (through
 * judge); on a broken connection every op of the round gets its rc. */
static void round_trip(redis_store *st, const rcmd *cmds, size_t nc, redisReply **r,
                       store_op *const *ops, wscratch *w, size_t n,
                       void (*judge)(store_op *, wscratch *, redisReply *const *))
{
    if (nc == 0)
        return;
    rc_t rc = pipeline(st, cmds, nc, r);
    for (size_t i = 0; i < n; i++) {
        if (w[i].first == SIZE_MAX)
            continue;
        if (rc != RC_OK)
            ops[i]->rc = rc;
        else
            judge(ops[i], &w[i], r + w[i].first);
    }
    if (rc == RC_OK)
        free_replies(r, nc);
}


static void judge_first(store_op *o, wscratch *x, redisReply *const *r)
{
    if (o->kind == STORE_OP_PUT)
        o->rc = put_result(r);
    else if (o->kind == STORE_OP_GET)
        o->rc = live_record(r[0], o->now, o->rec, &x->s);
    else
        o->rc = closable(x, r[0], o->user, o->now);
}

static void judge_second(store_op *o, wscratch *x, redisReply *const *r)
{
    (void)x;
    if (r[0]->type == REDIS_REPLY_ERROR)
        o->rc = reply_error(r[0]);
    else
        o->rc = r[0]->type == REDIS_REPLY_INTEGER && r[0]->integer == 1 ? RC_OK : RC_NOT_FOUND;
}

static void redis_batch(store_t *base, store_op *const *ops, size_t n)
{
    redis_store *st = (redis_store *)base;
    wscratch *w = calloc(n, sizeof *w);
    rcmd *cmds = calloc(PUT_CMDS * n, sizeof *cmds);
    redisReply **r = calloc(PUT_CMDS * n, sizeof(redisReply *));
    size_t nc = 0;
    if (w == NULL || cmds == NULL || r == NULL) {
        for (size_t i = 0; i < n; i++)
            ops[i]->rc = RC_NOMEM;
        goto out;
    }
    /* round 1: creates, and the GETs of reads and closes */
    for (size_t i = 0; i < n; i++) {
        store_op *o = ops[i];
        wscratch *x = &w[i];
        x->first = SIZE_MAX;
        if (o->kind == STORE_OP_PUT) {
            if ((o->rc = session_encode(o->s, &x->rec)) != RC_OK)
                continue;
            x->first = nc;
            put_commands(x, o->s, cmds + nc);
            nc += PUT_CMDS;
        } else if (o->kind == STORE_OP_DEL || o->kind == STORE_OP_GET) {
            x->first = nc;
            x->argv[0][0] = "GET";
            x->lens[0][0] = 3;
            x->argv[0][1] = x->skey;
            x->lens[0][1] = session_key(x->skey, o->id);
            cmds[nc++] = (rcmd){ 2, x->argv[0], x->lens[0] };
        }
    }
    round_trip(st, cmds, nc, r, ops, w, n, judge_first);
    /* round 2: DEL and ZREM of the closes that may go ahead */
    nc = 0;
    for (size_t i = 0; i < n; i++) {
        store_op *o = ops[i];
        wscratch *x = &w[i];
        if (o->kind != STORE_OP_DEL || x->first == SIZE_MAX || o->rc != RC_OK) {
            x->first = SIZE_MAX;
            continue;
        }
        x->first = nc;
        x->argv[0][0] = "DEL";
        x->lens[0][0] = 3;
        x->argv[0][1] = x->skey;
        x->lens[0][1] = strlen(x->skey);
        x->argv[1][0] = "ZREM";
        x->lens[1][0] = 4;
        x->argv[1][1] = x->ukey;
        x->lens[1][1] = user_key(x->ukey, x->s.user_id);
        x->argv[1][2] = o->id;
        x->lens[1][2] = strlen(o->id);
        cmds[nc++] = (rcmd){ 2, x->argv[0], x->lens[0] };
        cmds[nc++] = (rcmd){ 3, x->argv[1], x->lens[1] };
    }
    round_trip(st, cmds, nc, r, ops, w, n, judge_second);
    for (size_t i = 0; i < n; i++)
        if (ops[i]->kind == STORE_OP_DEL_USER)
            ops[i]->rc = redis_del_user(base, ops[i]->user, ops[i]->id, ops[i]->now,
                                        &ops[i]->count);
out:
    if (w != NULL)
        for (size_t i = 0; i < n; i++)
            buf_free(&w[i].rec);
    free(w);
    free(cmds);
    free(r);
}

static rc_t redis_put(store_t *base, const session_t *s)
{
    store_op o = { .kind = STORE_OP_PUT, .s = s };
    store_op *one = &o;
    redis_batch(base, &one, 1);
    return o.rc;
}

static rc_t redis_del(store_t *base, const char *id, str_t owner, int64_t now)
{
    store_op o = { .kind = STORE_OP_DEL, .id = id, .user = owner, .now = now };
    store_op *one = &o;
    redis_batch(base, &one, 1);
    return o.rc;
}

static rc_t touch_one(redis_store *st, const char *id, int64_t last_seen, int64_t now)
{
    buf_t rec = BUF_INIT;
    session_t s;
    char skey[KEY_MAX];
    redisReply *r;
    rc_t rc = fetch(st, id, now, &rec, &s);
    if (rc != RC_OK)
        goto out;
    for (int i = 0; i < 8; i++)
        rec.p[SESSION_REC_LAST_SEEN_OFF + i] = (char)((uint64_t)last_seen >> (8 * i));
    /* XX: never resurrect a session closed meanwhile; KEEPTTL: same expiry */
    const char *sa[] = { "SET", skey, rec.p, "XX", "KEEPTTL" };
    size_t sl[] = { 3, session_key(skey, id), rec.len, 2, 7 };
    if ((rc = cmd(st, &r, 5, sa, sl)) == RC_OK) {
        if (r->type == REDIS_REPLY_NIL)
            rc = RC_NOT_FOUND;
        freeReplyObject(r);
    }
out:
    buf_free(&rec);
    return rc;
}

static rc_t redis_touch(store_t *base, const char (*ids)[SESSION_ID_MAX + 1], size_t n,
                        int64_t last_seen, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        rc_t rc = touch_one((redis_store *)base, ids[i], last_seen, now);
        if (rc != RC_OK && rc != RC_NOT_FOUND)
            return rc;
    }
    return RC_OK;
}

static rc_t redis_purge(store_t *base, int64_t now, size_t *count)
{
    (void)base;
    (void)now;
    *count = 0; /* sessions expire natively; indexes are pruned as they are used */
    return RC_OK;
}

static rc_t redis_ping(store_t *base)
{
    redisReply *r;
    const char *pa[] = { "PING" };
    size_t pl[] = { 4 };
    rc_t rc = cmd((redis_store *)base, &r, 1, pa, pl);
    if (rc == RC_OK)
        freeReplyObject(r);
    return rc;
}

static rc_t redis_scan(store_t *base, int64_t now, store_each_fn fn, void *arg)
{
    redis_store *st = (redis_store *)base;
    char cursor[32] = "0";
    rc_t rc = RC_OK;
    buf_t rec = BUF_INIT;
    do {
        redisReply *r;
        const char *sa[] = { "SCAN", cursor, "MATCH", "ss:s:*", "COUNT", "1000" };
        size_t sl[] = { 4, strlen(cursor), 5, 6, 5, 4 };
        if ((rc = cmd(st, &r, 6, sa, sl)) != RC_OK)
            break;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof cursor) {
            freeReplyObject(r);
            rc = RC_ERR;
            break;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
        redisReply *keys = r->element[1];
        int stop = 0;
        for (size_t i = 0; i < keys->elements && !stop; i++) {
            session_t s;
            const char *id = keys->element[i]->str + 5;
            if (!session_id_valid(id, strlen(id)))
                continue;
            rc_t g = fetch(st, id, now, &rec, &s);
            if (g == RC_OK)
                stop = fn(&s, arg);
            else if (g != RC_NOT_FOUND)
                rc = g;
        }
        freeReplyObject(r);
        if (stop || rc != RC_OK)
            break;
    } while (strcmp(cursor, "0") != 0);
    buf_free(&rec);
    return rc;
}

static void redis_close(store_t *base)
{
    redis_store *st = (redis_store *)base;
    rconn *cn = pthread_getspecific(st->conn_key);
    if (cn)
        conn_free(cn);
    pthread_key_delete(st->conn_key);
    free(st);
}

static rc_t redis_open(const char *target, const store_options *opt, store_t **out,
                       char *err, size_t errlen)
{
    redis_store *st = calloc(1, sizeof *st);
    if (st == NULL) {
        snprintf(err, errlen, "STORE_URL: out of memory");
        return RC_NOMEM;
    }
    st->base.ops = &store_redis_ops;
    st->base.remote = 1;
    rc_t rc = store_redis_url_parse(target, strlen(target), &st->url, err, errlen);
    if (rc != RC_OK) {
        free(st);
        return rc;
    }
    int64_t ms = opt->timeout_ms > 0 ? opt->timeout_ms : 1000;
    st->timeout.tv_sec = ms / 1000;
    st->timeout.tv_usec = (ms % 1000) * 1000;
    if (pthread_key_create(&st->conn_key, conn_free) != 0) {
        snprintf(err, errlen, "STORE_URL: out of thread keys");
        free(st);
        return RC_ERR;
    }
    /* Redis may be down at start: the service starts anyway, answers 503
     * and reconnects when it is back. Say so once. */
    if (redis_ping(&st->base) != RC_OK)
        log_msg(LOG_WARN, "redis at %s:%d does not answer yet; will retry", st->url.host,
                st->url.port);
    *out = &st->base;
    return RC_OK;
}

const store_ops store_redis_ops = {
    .scheme = "redis",
    .open = redis_open,
    .close = redis_close,
    .put = redis_put,
    .get = redis_get,
    .del = redis_del,
    .list = redis_list,
    .del_user = redis_del_user,
    .batch = redis_batch,
    .touch = redis_touch,
    .purge = redis_purge,
    .ping = redis_ping,
    .scan = redis_scan,
    .count = NULL, /* no cheap exact count: SCAN is O(n) */
};
