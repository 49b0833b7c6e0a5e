/* store_redis.c -- the distributed store on Redis (hiredis).
 *
 * Keys:
 *   ss:s:<id>     STRING  the session record (record_encode), with a native
 *                         expiry at expires_at (SET ... EXAT), so Redis drops
 *                         expired sessions itself
 *   ss:u:<user>   ZSET    the user's session ids, scored by expires_at; the
 *                         key expires with the user's last session
 * Create is one server-side script (CREATE_SCRIPT: the session, its index
 * entry and the per-user cap in one atomic step; it reaches the user's other
 * session keys by prefix, so it needs one Redis, not a Cluster). Every other
 * command touches one key. Close is a DEL: of two racing closes exactly one
 * sees 1. See docs/REDIS.md. Each worker thread has its own connection (no lock on the
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
#include "clock.h"
#include "log.h"
#include "resolve.h"
#include "store_redis.h"
#include "record.h"

#define RECONNECT_MS 200
#define IDLE_CHECK_MS 100 /* a connection idle this long is checked before use */
#define KEY_MAX (8 + SESSION_USER_MAX)
#define PUT_ARGC 13

typedef struct redis_store {
    store_t base;
    redis_url url;
    struct timeval timeout;
    int64_t timeout_ms;
    resolve_t *host;   /* url.host, looked up off the request path */
    pthread_key_t conn_key;
} redis_store;

typedef struct rconn {
    redisContext *c;
    uint64_t retry_at_ms;
    uint64_t used_ms; /* last handed out */
} rconn;

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
    cn->retry_at_ms = clock_ms() + RECONNECT_MS;
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
    uint64_t now = clock_ms();
    if (cn->c != NULL && now - cn->used_ms >= IDLE_CHECK_MS && went_stale(cn->c)) {
        redisFree(cn->c); /* reopened at once below, not after a back-off */
        cn->c = NULL;
    }
    cn->used_ms = now;
    if (cn->c != NULL)
        return cn;
    if (now < cn->retry_at_ms)
        return NULL;
    /* REDIS_TIMEOUT_MS bounds the connect as a whole, the host name's
     * lookup included (resolve.h: never getaddrinfo on this thread) */
    char addr[RESOLVE_ADDR_MAX];
    if (resolve_get(st->host, st->timeout_ms, addr) != RC_OK) {
        cn->retry_at_ms = clock_ms() + RECONNECT_MS;
        return NULL;
    }
    int64_t left = st->timeout_ms - (int64_t)(clock_ms() - now);
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
    redisContext *c = left > 0 ? redisConnectWithTimeout(addr, st->url.port, tv) : NULL;
    if (c == NULL || c->err || redisSetTimeout(c, st->timeout) != REDIS_OK ||
        !handshake(st, c)) {
        if (c != NULL && c->err)
            resolve_stale(st->host, addr); /* try its next address, then look again */
        if (c)
            redisFree(c);
        cn->retry_at_ms = clock_ms() + RECONNECT_MS;
        return NULL;
    }
    redisEnableKeepAlive(c);
    cn->c = c;
    return cn;
}

/* An error reply: Redis refused or failed the command (OOM, READONLY,
 * NOREPLICAS, LOADING, BUSY, MASTERDOWN, ...). Whatever it says, the store
 * is unavailable for it: 503, never 500. */
static rc_t reply_error(const redisReply *r)
{
    if (strncmp(r->str, "OOM", 3) == 0)
        return RC_FULL;
    log_msg(LOG_WARN, "redis: %.200s", r->str);
    return RC_UNAVAILABLE;
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
 * Error replies are returned as replies for the caller to judge.
 * deadline_ms (monotonic; 0: none): the connect and the round trip end by
 * then, or RC_UNAVAILABLE (a reply cut short drops the connection). */
static rc_t pipeline_by(redis_store *st, const rcmd *cmds, size_t n, redisReply **out,
                        uint64_t deadline_ms)
{
    rconn *cn = conn(st);
    memset(out, 0, n * sizeof(redisReply *));
    if (cn == NULL)
        return RC_UNAVAILABLE;
    int shortened = 0;
    if (deadline_ms != 0) {
        uint64_t now = clock_ms();
        if (now >= deadline_ms)
            return RC_UNAVAILABLE; /* the connect took the whole budget */
        uint64_t left = deadline_ms - now;
        if (left < (uint64_t)st->timeout_ms) {
            struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
            if (redisSetTimeout(cn->c, tv) != REDIS_OK)
                goto broken;
            shortened = 1;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (redisAppendCommandArgv(cn->c, cmds[i].argc, cmds[i].argv, cmds[i].lens) != REDIS_OK)
            goto broken;
    for (size_t i = 0; i < n; i++)
        if (redisGetReply(cn->c, (void **)&out[i]) != REDIS_OK || out[i] == NULL)
            goto broken;
    if (shortened && redisSetTimeout(cn->c, st->timeout) != REDIS_OK)
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

static rc_t pipeline(redis_store *st, const rcmd *cmds, size_t n, redisReply **out)
{
    return pipeline_by(st, cmds, n, out, 0);
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
    if (rc == RC_OK && record_decode(rec->p, rec->len, s) != RC_OK) {
        log_msg(LOG_ERROR, "redis: undecodable record for a session");
        return RC_UNAVAILABLE; /* a store that fails: never a list one short */
    }
    if (rc == RC_OK && !session_live(s, now))
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

/* Drops index entries whose expires_at has passed (creates are atomic, so
 * an entry without its session is dead too: list skips it, close-all and
 * the create script at the cap remove it). */
#define PRUNE_MAX 1000 /* entries a prune takes at once */

static void prune(redis_store *st, str_t user, int64_t now)
{
    char ukey[KEY_MAX], when[24], most[8];
    size_t ulen = user_key(ukey, user);
    i64_text(when, now);
    snprintf(most, sizeof most, "%d", PRUNE_MAX);
    for (;;) {
        redisReply *r;
        const char *pa[] = { "ZRANGEBYSCORE", ukey, "-inf", when, "LIMIT", "0", most };
        size_t pl[] = { 13, ulen, 4, strlen(when), 5, 1, strlen(most) };
        if (cmd(st, &r, 7, pa, pl) != RC_OK)
            return;
        size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        rcmd *cmds = n ? calloc(n, sizeof *cmds) : NULL;
        redisReply **out = n ? calloc(n, sizeof(redisReply *)) : NULL;
        const char **av = n ? calloc(3 * n, sizeof *av) : NULL;
        size_t *lv = n ? calloc(3 * n, sizeof *lv) : NULL;
        if (n == 0 || cmds == NULL || out == NULL || av == NULL || lv == NULL)
            goto done;
        for (size_t i = 0; i < n; i++) { /* one ZREM each: only its remover tells */
            av[3 * i] = "ZREM", lv[3 * i] = 4;
            av[3 * i + 1] = ukey, lv[3 * i + 1] = ulen;
            av[3 * i + 2] = r->element[i]->str, lv[3 * i + 2] = r->element[i]->len;
            cmds[i] = (rcmd){ 3, av + 3 * i, lv + 3 * i };
        }
        if (pipeline(st, cmds, n, out) == RC_OK) {
            for (size_t i = 0; i < n; i++)
                if (out[i]->type == REDIS_REPLY_INTEGER && out[i]->integer == 1 &&
                    session_id_valid(r->element[i]->str, r->element[i]->len))
                    store_tell_closed(&st->base, STORE_EXPIRED, r->element[i]->str, user);
            free_replies(out, n);
        }
    done:
        free(cmds);
        free(out);
        free(av);
        free(lv);
        freeReplyObject(r);
        if (n < PRUNE_MAX)
            return;
    }
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
        rc = RC_UNAVAILABLE;
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
        /* nil: closed or expired since the ZRANGE; another user's session
         * (an entry left by an older version): not this user's */
        rc_t got = live_record(r, now, &x->rec, &x->s);
        freeReplyObject(r);
        if (got == RC_OK && str_eq(x->s.user_id, user))
            nf++;
        else if (got != RC_OK && got != RC_NOT_FOUND && rc == RC_OK)
            rc = got; /* never a partial list that looks whole */
    }
    if (rc != RC_OK)
        goto out;
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

/* One command of close-all's pipelines, on one session key. */
typedef struct del_cmd {
    const char *argv[2];
    size_t lens[2];
    char key[KEY_MAX];
} del_cmd;

/* Close-all works through the index DEL_USER_CHUNK ids at a time: each
 * chunk is two pipelined round trips, between which Redis serves everyone
 * else. */
#define DEL_USER_CHUNK 1000

/* One chunk of close-all, ids[0..n): the GETs, then the DELs of those that
 * are live and the user's own (an index entry may point at a session that
 * is gone, or, left by an older version, at another user's: those are
 * unindexed). The owner of a session never changes and ids are never
 * reused, so the check holds until the DEL, and each DEL decides alone
 * whether this close-all closed that session (1) or someone else did first
 * (0). *count grows by the sessions closed. */
static rc_t del_chunk(redis_store *st, str_t user, redisReply *const *ids, size_t n,
                      const char *except, int64_t now, size_t *count)
{
    const char *gone[DEL_USER_CHUNK], *stale[DEL_USER_CHUNK];
    del_cmd *dels = calloc(n, sizeof *dels);
    rcmd cmds[DEL_USER_CHUNK];
    redisReply *replies[DEL_USER_CHUNK];
    buf_t rec = BUF_INIT;
    size_t nd = 0, ng = 0, nstale = 0, keep = 0;
    rc_t rc = RC_OK;
    if (dels == NULL)
        return RC_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *id = ids[i]->str;
        if (except != NULL && strcmp(id, except) == 0)
            continue;
        del_cmd *d = &dels[nd];
        d->argv[0] = "GET";
        d->lens[0] = 3;
        d->argv[1] = d->key;
        d->lens[1] = session_key(d->key, id);
        gone[nd] = id;
        cmds[nd++] = (rcmd){ 2, d->argv, d->lens };
    }
    if (nd == 0 || (rc = pipeline(st, cmds, nd, replies)) != RC_OK)
        goto out;
    for (size_t i = 0; i < nd; i++) {
        session_t s;
        rc_t got = live_record(replies[i], now, &rec, &s);
        if (got == RC_OK && !str_eq(s.user_id, user))
            got = RC_NOT_FOUND; /* another user's: not in this index */
        if (got == RC_OK) {
            dels[keep] = dels[i]; /* keep <= i: compacts in place */
            dels[keep].argv[0] = "DEL";
            dels[keep].argv[1] = dels[keep].key;
            gone[keep] = gone[i];
            cmds[keep] = (rcmd){ 2, dels[keep].argv, dels[keep].lens };
            keep++;
        } else if (got == RC_NOT_FOUND) {
            stale[nstale++] = gone[i];
        } else if (rc == RC_OK) {
            rc = got;
        }
    }
    free_replies(replies, nd);
    if (rc != RC_OK)
        goto out;
    if (nstale)
        unindex(st, user, stale, nstale);
    if (keep == 0 || (rc = pipeline(st, cmds, keep, replies)) != RC_OK)
        goto out;
    for (size_t i = 0; i < keep; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            if (rc == RC_OK)
                rc = reply_error(replies[i]);
        } else if (replies[i]->type == REDIS_REPLY_INTEGER && replies[i]->integer == 1) {
            gone[ng++] = gone[i]; /* ng <= i: compacts in place */
        }
    }
    free_replies(replies, keep);
    for (size_t i = 0; i < ng; i++)
        store_tell_closed(&st->base, STORE_CLOSED_ALL, gone[i], user);
    *count += ng;
    if (ng)
        unindex(st, user, gone, ng);
out:
    buf_free(&rec);
    free(dels);
    return rc;
}

/* Every live session of user but except, chunk by chunk (del_chunk). */
static rc_t redis_del_user(store_t *base, str_t user, const char *except, int64_t now,
                           size_t *count)
{
    redis_store *st = (redis_store *)base;
    redisReply *ids = NULL;
    *count = 0;
    rc_t rc = index_ids(st, user, &ids);
    for (size_t at = 0; rc == RC_OK && at < ids->elements; at += DEL_USER_CHUNK) {
        size_t k = ids->elements - at < DEL_USER_CHUNK ? ids->elements - at : DEL_USER_CHUNK;
        rc = del_chunk(st, user, ids->element + at, k, except, now, count);
    }
    if (rc == RC_OK)
        prune(st, user, now);
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
    char skey[KEY_MAX], ukey[KEY_MAX], exp[24], now[24], max[24];
    const char *argv[2][PUT_ARGC];
    size_t lens[2][PUT_ARGC];
    size_t first;   /* its first reply in the round; SIZE_MAX: not sent */
    redis_store *st;
} wscratch;

/* A create, in one atomic step on the server (a script: Redis runs it
 * alone, so concurrent creates of one user through any number of processes
 * see each other whole):
 * 1. a taken id changes nothing: answer 0 (ids are never reused, and the
 *    user's index never gains an id of another user's session);
 * 2. the index's expired entries go; with the cap reached, entries whose
 *    session is gone or belongs to someone else go too, then refuse
 *    (answer 2) or close the least recently used live sessions
 *    (last_seen_at, created_at, id: read from the records' fixed header,
 *    see record_encode);
 * 3. the session with its native expiry, its index entry, and the index
 *    key's expiry (NX sets a first one, GT only ever extends it).
 * Answers {1, evicted ids...}. The keys of other sessions are reached by
 * prefix (ARGV[8]); docs/REDIS.md. */
static const char CREATE_SCRIPT[] =
    /* a shebang: Redis checks maxmemory (OOM) before the script runs, not
     * only until its first write */
    "#!lua\n"
    "local skey, ukey = KEYS[1], KEYS[2]\n"
    "local exp, id, max = ARGV[2], ARGV[3], tonumber(ARGV[5])\n"
    "if redis.call('EXISTS', skey) == 1 then return {0} end\n"
    "local dead = redis.call('ZRANGEBYSCORE', ukey, '-inf', ARGV[4])\n"
    "for _, m in ipairs(dead) do redis.call('ZREM', ukey, m) end\n"
    "local out = {1, dead}\n"
    "if max > 0 and redis.call('ZCARD', ukey) >= max then\n"
    "  local function i64(r, at)\n"
    "    local v = 0\n"
    "    for k = at + 7, at, -1 do v = v * 256 + string.byte(r, k) end\n"
    "    return v\n"
    "  end\n"
    "  local live = {}\n"
    "  for _, m in ipairs(redis.call('ZRANGE', ukey, 0, -1)) do\n"
    "    local r = redis.call('GET', ARGV[8] .. m)\n"
    "    local mine = false\n"
    "    if r and #r >= 36 then\n"
    "      local idl = string.byte(r, 2)\n"
    "      local ul = string.byte(r, 3) + 256 * string.byte(r, 4)\n"
    "      mine = string.sub(r, 37 + idl, 36 + idl + ul) == ARGV[7]\n"
    "    end\n"
    "    if mine then live[#live + 1] = { m, i64(r, 21), i64(r, 13) }\n"
    "    else redis.call('ZREM', ukey, m) end\n"
    "  end\n"
    "  if #live >= max then\n"
    "    if ARGV[6] == '1' then return {2, dead} end\n"
    "    local function bytes_lt(x, y)\n" /* as strcmp: Lua's < follows the locale */
    "      for k = 1, math.min(#x, #y) do\n"
    "        local p, q = string.byte(x, k), string.byte(y, k)\n"
    "        if p ~= q then return p < q end\n"
    "      end\n"
    "      return #x < #y\n"
    "    end\n"
    "    table.sort(live, function(a, b)\n"
    "      if a[2] ~= b[2] then return a[2] < b[2] end\n"
    "      if a[3] ~= b[3] then return a[3] < b[3] end\n"
    "      return bytes_lt(a[1], b[1])\n"
    "    end)\n"
    "    for k = 1, #live - max + 1 do\n"
    "      redis.call('DEL', ARGV[8] .. live[k][1])\n"
    "      redis.call('ZREM', ukey, live[k][1])\n"
    "      out[#out + 1] = live[k][1]\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('SET', skey, ARGV[1], 'EXAT', exp)\n"
    "redis.call('ZADD', ukey, exp, id)\n"
    "redis.call('EXPIREAT', ukey, exp, 'NX')\n"
    "redis.call('EXPIREAT', ukey, exp, 'GT')\n"
    "return out\n";

static void put_commands(wscratch *x, const store_op *o, rcmd *cmd)
{
    const session_t *s = o->s;
    i64_text(x->exp, s->expires_at);
    i64_text(x->now, s->created_at);
    i64_text(x->max, o->max_per_user > 0 ? o->max_per_user : 0);
    const char *const argv[PUT_ARGC] = {
        "EVAL", CREATE_SCRIPT, "2", x->skey, x->ukey,
        x->rec.p, x->exp, s->id, x->now, x->max, o->refuse ? "1" : "0", s->user_id.p, "ss:s:",
    };
    const size_t lens[PUT_ARGC] = {
        4, sizeof CREATE_SCRIPT - 1, 1, session_key(x->skey, s->id),
        user_key(x->ukey, s->user_id), x->rec.len, strlen(x->exp), strlen(s->id),
        strlen(x->now), strlen(x->max), 1, s->user_id.len, 5,
    };
    memcpy(x->argv[0], argv, sizeof argv);
    memcpy(x->lens[0], lens, sizeof lens);
    *cmd = (rcmd){ PUT_ARGC, x->argv[0], x->lens[0] };
}

/* Tells of the index entries the script found dead (sessions Redis
 * dropped when they expired). */
static void tell_dead(redis_store *st, const redisReply *dead, str_t user)
{
    for (size_t i = 0; i < dead->elements; i++) {
        const redisReply *e = dead->element[i];
        if (e->type == REDIS_REPLY_STRING && session_id_valid(e->str, e->len))
            store_tell_closed(&st->base, STORE_EXPIRED, e->str, user);
    }
}

/* The script's answer: {0} (id taken), {2, dead} (refused at the cap), or
 * {1, dead, evicted ids...}. */
static rc_t put_result(redis_store *st, store_op *o, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR)
        return reply_error(r);
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return RC_UNAVAILABLE;
    long long verdict = r->element[0]->integer;
    if (verdict == 0)
        return RC_EXISTS;
    if (r->elements < 2 || r->element[1]->type != REDIS_REPLY_ARRAY ||
        (verdict != 1 && verdict != 2))
        return RC_UNAVAILABLE;
    tell_dead(st, r->element[1], o->s->user_id);
    if (verdict == 2)
        return RC_LIMIT;
    if (o->evicted != NULL)
        buf_reset(o->evicted);
    for (size_t i = 2; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        if (session_id_valid(e->str, e->len))
            store_tell_closed(&st->base, STORE_EVICTED, e->str, o->s->user_id);
        if (o->evicted != NULL && buf_append(o->evicted, e->str, e->len + 1) != RC_OK)
            return RC_NOMEM; /* committed, but cannot be told: the answer is a 503 */
        o->count++;
    }
    return RC_OK;
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
                       store_op *const *ops, wscratch *w, size_t n, uint64_t deadline_ms,
                       void (*judge)(store_op *, wscratch *, redisReply *const *))
{
    if (nc == 0)
        return;
    rc_t rc = pipeline_by(st, cmds, nc, r, deadline_ms);
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
        o->rc = put_result(x->st, o, r[0]);
    else if (o->kind == STORE_OP_GET)
        o->rc = live_record(r[0], o->now, o->rec, &x->s);
    else
        o->rc = closable(x, r[0], o->user, o->now);
}

static void judge_second(store_op *o, wscratch *x, redisReply *const *r)
{
    if (r[0]->type == REDIS_REPLY_ERROR)
        o->rc = reply_error(r[0]);
    else
        o->rc = r[0]->type == REDIS_REPLY_INTEGER && r[0]->integer == 1 ? RC_OK : RC_NOT_FOUND;
    if (o->rc == RC_OK) /* this DEL removed it: of two racing closes, only one tells */
        store_tell_closed(&x->st->base, STORE_CLOSED, o->id, x->s.user_id);
}

static rc_t redis_ping(store_t *base);

/* The request path's store work: its rounds (and a connect, a host name's
 * lookup included) end within REDIS_TIMEOUT_MS in all. */
static void redis_batch(store_t *base, store_op *const *ops, size_t n)
{
    redis_store *st = (redis_store *)base;
    uint64_t deadline = clock_ms() + (uint64_t)st->timeout_ms;
    wscratch *w = calloc(n, sizeof *w);
    rcmd *cmds = calloc(2 * n, sizeof *cmds); /* at most two commands an operation */
    redisReply **r = calloc(2 * n, sizeof(redisReply *));
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
        x->st = st;
        if (o->kind == STORE_OP_PUT) {
            if ((o->rc = record_encode(o->s, &x->rec)) != RC_OK)
                continue;
            x->first = nc;
            put_commands(x, o, cmds + nc++);
        } else if (o->kind == STORE_OP_DEL || o->kind == STORE_OP_GET) {
            x->first = nc;
            x->argv[0][0] = "GET";
            x->lens[0][0] = 3;
            x->argv[0][1] = x->skey;
            x->lens[0][1] = session_key(x->skey, o->id);
            cmds[nc++] = (rcmd){ 2, x->argv[0], x->lens[0] };
        }
    }
    round_trip(st, cmds, nc, r, ops, w, n, deadline, judge_first);
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
    round_trip(st, cmds, nc, r, ops, w, n, deadline, judge_second);
    for (size_t i = 0; i < n; i++) {
        if (ops[i]->kind == STORE_OP_DEL_USER)
            ops[i]->rc = redis_del_user(base, ops[i]->user, ops[i]->id, ops[i]->now,
                                        &ops[i]->count);
        else if (ops[i]->kind == STORE_OP_PING)
            ops[i]->rc = redis_ping(base);
    }
out:
    if (w != NULL)
        for (size_t i = 0; i < n; i++)
            buf_free(&w[i].rec);
    free(w);
    free(cmds);
    free(r);
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
    record_set_last_seen(rec.p, rec.len, last_seen); /* decoded by fetch: long enough */
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

/* A write, not a PING: a Redis that answers but refuses writes (a replica
 * after a failover: READONLY; min-replicas-to-write: NOREPLICAS; OOM) is
 * not ready. */
static rc_t redis_ping(store_t *base)
{
    redisReply *r;
    const char *pa[] = { "SET", "ss:ready", "1", "PX", "10000" };
    size_t pl[] = { 3, 8, 1, 2, 5 };
    rc_t rc = cmd((redis_store *)base, &r, 5, pa, pl);
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
            rc = RC_UNAVAILABLE;
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
    resolve_free(st->host);
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
    st->timeout_ms = ms;
    st->timeout.tv_sec = ms / 1000;
    st->timeout.tv_usec = (ms % 1000) * 1000;
    if ((st->host = resolve_new(st->url.host)) == NULL) {
        snprintf(err, errlen, "STORE_URL: out of memory");
        free(st);
        return RC_NOMEM;
    }
    if (pthread_key_create(&st->conn_key, conn_free) != 0) {
        snprintf(err, errlen, "STORE_URL: out of thread keys");
        resolve_free(st->host);
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
    .list = redis_list,
    .batch = redis_batch,
    .touch = redis_touch,
    .purge = redis_purge,
    .scan = redis_scan,
    .count = NULL, /* no cheap exact count: SCAN is O(n) */
};
