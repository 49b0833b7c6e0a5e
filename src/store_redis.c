/* store_redis.c -- the distributed store on Redis (hiredis).
 *
 * Keys:
 *   ss:s:<id>     STRING  the session record (record_encode), with a native
 *                         expiry at session_end (SET ... EXAT): expires_at,
 *                         or with an idle timeout the idle deadline, moved
 *                         on by each use (TOUCH) -- Redis drops expired and
 *                         idle sessions itself
 *   ss:u:<user>   ZSET    the user's session ids, scored by expires_at; the
 *                         key expires with the user's last session
 * Create is one server-side script (CREATE_SCRIPT: the session, its index
 * entry and the per-user cap in one atomic step; it reaches the user's other
 * session keys by prefix, so it needs one Redis, not a Cluster). A use
 * (TOUCH_SCRIPT) and a token rotation (SWAP_SCRIPT, a compare-and-set) are
 * one-key scripts; every other command touches one key. Scripts are sent
 * by their SHA-1 (EVALSHA), and again whole (EVAL) to a Redis that answers
 * NOSCRIPT (retry_noscript). Close is ZREM then
 * DEL: of two racing closes exactly one sees DEL answer 1, and an index
 * entry whose key is gone while its score is in the future is a session that
 * ended idle (a close unindexes before it deletes), told by whoever ZREMs it.
 * See docs/REDIS.md. Each worker thread has its own connection (no lock on the
 * hot path); a broken connection is dropped and reopened on the next call,
 * at most every RECONNECT_MS while Redis is down.
 *
 * redis-sentinel:// (redis_sentinel.c): a connection goes to the primary
 * the Sentinels name, shared by all threads; each new connection checks
 * ROLE is master before anything else is sent. After a failure on a
 * connection (broken, READONLY, a ROLE that is not master) that thread's
 * next connect asks the Sentinels again, never the old address.
 *
 * REDIS_WAIT_REPLICAS: every batch that wrote ends with one WAIT on the
 * connection that wrote (in the pipeline of its last round); fewer
 * acknowledgements than asked make the batch's writes RC_UNAVAILABLE. */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "log.h"
#include "redis_nodes.h"
#include "redis_sentinel.h"
#include "resolve.h"
#include "store_redis.h"
#include "record.h"

#define RECONNECT_MS 200
#define IDLE_CHECK_MS 100 /* a connection idle this long is checked before use */
/* the longest key: a cluster's "<prefix>:{tag}:u:" and a user id */
#define KEY_MAX (REDIS_URL_PREFIX_MAX + 16 + SESSION_USER_MAX)
#define PUT_ARGC 14

#define WAIT_WARN_EVERY_MS 5000

typedef struct redis_store {
    store_t base;
    redis_url url;
    struct timeval timeout;
    int64_t timeout_ms;
    resolve_t *host;   /* url.host, looked up off the request path (redis://) */
    redis_sentinel *sentinel; /* redis-sentinel://: who the primary is; else NULL */
    redis_nodes_shared *cluster; /* redis-cluster://: what its threads share; else NULL */
    int64_t wait_replicas;    /* REDIS_WAIT_REPLICAS: WAIT after writes (0: none) */
    int64_t wait_timeout_ms;  /* REDIS_WAIT_TIMEOUT_MS */
    char wait_n[24], wait_ms[24]; /* their text, WAIT's arguments */
    atomic_uint_fast64_t wait_warned_ms;
    atomic_int wait_short;    /* the last WAIT came short: WAIT only after writes that succeeded */
    pthread_key_t conn_key;
} redis_store;

typedef struct rconn {
    redisContext *c;
    uint64_t retry_at_ms;
    uint64_t used_ms; /* last handed out */
    int doomed;       /* Sentinel: the node refused a write (READONLY): drop before use */
    uint64_t failed_us; /* Sentinel: when this thread's connection last failed
                         * (clock_us; 0: never): its next primary must be
                         * named after that */
    char addr[RESOLVE_ADDR_MAX]; /* Sentinel: the node c is connected to */
    int port;
    redis_nodes *nodes; /* Cluster: this thread's map and connections (c unused) */
} rconn;

/* ---- URL ---- */

static const char *const url_scheme[] = {"redis://", "redis-sentinel://", "redis-cluster://"};

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* Parses one host[:port] in [h, hend): a name of [A-Za-z0-9._-] or an
 * [IPv6] address, into host (room for REDIS_URL_HOST_MAX + 1; NUL-terminated,
 * no brackets) and *port (left alone when there is no port and need_port is
 * 0). The refusals of redis:// are worded as they always were. */
static rc_t endpoint_parse(const char *h, const char *hend, int need_port, const char *scheme,
                           char *host, int *port, char *err, size_t errlen)
{
    const char *pstart = NULL;
    if (h < hend && *h == '[') {
        const char *close = memchr(h, ']', (size_t)(hend - h));
        if (close == NULL || close == h + 1 || (size_t)(close - h - 1) > REDIS_URL_HOST_MAX) {
            snprintf(err, errlen, "STORE_URL: bad [IPv6] host");
            return RC_INVALID;
        }
        memcpy(host, h + 1, (size_t)(close - h - 1));
        host[close - h - 1] = '\0';
        unsigned char addr[16];
        if (inet_pton(AF_INET6, host, addr) != 1) {
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
        if (nend == h || (size_t)(nend - h) > REDIS_URL_HOST_MAX) {
            snprintf(err, errlen, "STORE_URL: %s needs a host", scheme);
            return RC_INVALID;
        }
        for (const char *p = h; p < nend; p++) {
            if (!name_char(*p)) {
                snprintf(err, errlen, "STORE_URL: bad character in host");
                return RC_INVALID;
            }
        }
        memcpy(host, h, (size_t)(nend - h));
        host[nend - h] = '\0';
        if (colon)
            pstart = colon + 1;
    }
    if (pstart == NULL && need_port) {
        snprintf(err, errlen, "STORE_URL: %s needs host:port for every host", scheme);
        return RC_INVALID;
    }
    if (pstart != NULL) {
        long n = 0;
        const char *p = pstart;
        for (; p < hend && *p >= '0' && *p <= '9' && n <= 65535; p++)
            n = n * 10 + (*p - '0');
        if (p != hend || p == pstart || n < 1 || n > 65535) {
            snprintf(err, errlen, "STORE_URL: port must be 1..65535");
            return RC_INVALID;
        }
        *port = (int)n;
    }
    return RC_OK;
}

/* A database number in [p, end): digits, 0..65535; empty is 0. */
static rc_t db_parse(const char *p, const char *end, int *db, char *err, size_t errlen)
{
    long n = 0;
    for (; p < end && *p >= '0' && *p <= '9' && n < 100000; p++)
        n = n * 10 + (*p - '0');
    if (p != end || n > 65535) {
        snprintf(err, errlen, "STORE_URL: database must be a number");
        return RC_INVALID;
    }
    *db = (int)n;
    return RC_OK;
}

/* Parses host:port[,host:port...] in [h, hend) into u->hosts. */
static rc_t host_list_parse(const char *h, const char *hend, const char *scheme, redis_url *u,
                            char *err, size_t errlen)
{
    for (const char *p = h;;) {
        const char *comma = memchr(p, ',', (size_t)(hend - p));
        const char *pend = comma ? comma : hend;
        if (pend == p) {
            snprintf(err, errlen, "STORE_URL: %s needs host:port[,host:port...] with no empty entry",
                     scheme);
            return RC_INVALID;
        }
        if (u->nhosts == REDIS_URL_HOSTS_MAX) {
            snprintf(err, errlen, "STORE_URL: more than %d hosts", REDIS_URL_HOSTS_MAX);
            return RC_INVALID;
        }
        redis_url_host *e = &u->hosts[u->nhosts];
        rc_t rc = endpoint_parse(p, pend, 1, scheme, e->host, &e->port, err, errlen);
        if (rc != RC_OK)
            return rc;
        for (size_t i = 0; i < u->nhosts; i++) {
            if (u->hosts[i].port == e->port && strcmp(u->hosts[i].host, e->host) == 0) {
                snprintf(err, errlen, "STORE_URL: a host:port is listed twice");
                return RC_INVALID;
            }
        }
        u->nhosts++;
        if (comma == NULL)
            return RC_OK;
        p = comma + 1;
    }
}

/* Reads master-name[/db] in [p, end) (after the hosts' '/') into u. */
static rc_t master_parse(const char *p, const char *end, redis_url *u, char *err, size_t errlen)
{
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *nend = slash ? slash : end;
    if (nend == p || (size_t)(nend - p) > REDIS_URL_MASTER_MAX) {
        snprintf(err, errlen, "STORE_URL: redis-sentinel:// needs a master name of 1..%d bytes",
                 REDIS_URL_MASTER_MAX);
        return RC_INVALID;
    }
    for (const char *q = p; q < nend; q++) {
        if (!name_char(*q)) {
            snprintf(err, errlen, "STORE_URL: a master name is made of [A-Za-z0-9._-]");
            return RC_INVALID;
        }
    }
    memcpy(u->master, p, (size_t)(nend - p));
    u->master[nend - p] = '\0';
    return slash ? db_parse(slash + 1, end, &u->db, err, errlen) : RC_OK;
}

/* A cluster's key prefix: the path after the hosts (at slash, or NULL). */
static rc_t prefix_parse(const char *slash, const char *end, redis_url *u, char *err,
                         size_t errlen)
{
    const char *p = slash ? slash + 1 : end;
    size_t n = (size_t)(end - p), digits = 0;
    if (slash == NULL) {
        memcpy(u->prefix, "ss", 3);
        return RC_OK;
    }
    if (n == 0 || n > REDIS_URL_PREFIX_MAX) {
        snprintf(err, errlen, "STORE_URL: a redis-cluster:// key prefix is 1..%d bytes",
                 REDIS_URL_PREFIX_MAX);
        return RC_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (!name_char(p[i])) {
            snprintf(err, errlen, "STORE_URL: a redis-cluster:// key prefix is made of "
                     "[A-Za-z0-9._-]");
            return RC_INVALID;
        }
        digits += p[i] >= '0' && p[i] <= '9';
    }
    if (digits == n) {
        snprintf(err, errlen,
                 "STORE_URL: redis-cluster:// takes no database (a cluster has only database 0); "
                 "its path is a key prefix, which cannot be a number");
        return RC_INVALID;
    }
    memcpy(u->prefix, p, n);
    u->prefix[n] = '\0';
    return RC_OK;
}

rc_t store_redis_url_parse_as(redis_url_kind kind, const char *t, size_t len, redis_url *u,
                              char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (kind != REDIS_URL_PLAIN && kind != REDIS_URL_SENTINEL && kind != REDIS_URL_CLUSTER) {
        snprintf(err, errlen, "STORE_URL: not a redis URL");
        return RC_INVALID;
    }
    u->kind = kind;
    const char *scheme = url_scheme[kind];
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
            goto refused;
        }
        size_t ul = (size_t)(colon - t), pl = (size_t)(at - colon - 1), n;
        if (ul >= sizeof u->user || pl >= sizeof u->password ||
            str_pct_decode(t, ul, u->user, &n) != RC_OK || memchr(u->user, '\0', n)) {
            snprintf(err, errlen, "STORE_URL: bad user name");
            goto refused;
        }
        u->user[n] = '\0';
        if (str_pct_decode(colon + 1, pl, u->password, &n) != RC_OK ||
            memchr(u->password, '\0', n)) {
            snprintf(err, errlen, "STORE_URL: bad password encoding");
            goto refused;
        }
        u->password[n] = '\0';
        u->has_password = n > 0;
        h = at + 1;
    }
    const char *slash = memchr(h, '/', (size_t)(end - h));
    const char *hend = slash ? slash : end;
    if (kind == REDIS_URL_PLAIN) {
        if (endpoint_parse(h, hend, 0, scheme, u->hosts[0].host, &u->port, err, errlen) != RC_OK)
            goto refused;
        u->hosts[0].port = u->port;
        u->nhosts = 1;
        if (slash != NULL && slash + 1 < end &&
            db_parse(slash + 1, end, &u->db, err, errlen) != RC_OK)
            goto refused;
    } else {
        if (host_list_parse(h, hend, scheme, u, err, errlen) != RC_OK)
            goto refused;
        if (kind == REDIS_URL_CLUSTER && prefix_parse(slash, end, u, err, errlen) != RC_OK)
            goto refused;
        if (kind == REDIS_URL_SENTINEL && slash == NULL) {
            snprintf(err, errlen, "STORE_URL: redis-sentinel:// needs /master-name after the hosts");
            goto refused;
        }
        if (kind == REDIS_URL_SENTINEL && master_parse(slash + 1, end, u, err, errlen) != RC_OK)
            goto refused;
        u->port = u->hosts[0].port;
    }
    memcpy(u->host, u->hosts[0].host, sizeof u->host);
    return RC_OK;
refused:
    /* nothing half-parsed is left behind, the password least of all */
    explicit_bzero(u, sizeof *u);
    u->port = 6379;
    return RC_INVALID;
}

rc_t store_redis_url_parse(const char *t, size_t len, redis_url *u, char *err, size_t errlen)
{
    return store_redis_url_parse_as(REDIS_URL_PLAIN, t, len, u, err, errlen);
}

/* ---- connections ---- */

static void conn_free(void *p)
{
    rconn *rc = p;
    if (rc->c)
        redisFree(rc->c);
    redis_nodes_free(rc->nodes);
    free(rc);
}

/* The calling thread's state (its rconn), made on first use. */
static rconn *thread_conn(redis_store *st)
{
    rconn *cn = pthread_getspecific(st->conn_key);
    if (cn == NULL) {
        cn = calloc(1, sizeof *cn);
        if (cn == NULL || pthread_setspecific(st->conn_key, cn) != 0) {
            free(cn);
            return NULL;
        }
    }
    return cn;
}

/* Cluster: the calling thread's map and connections. */
static redis_nodes *nodes_of(redis_store *st)
{
    rconn *cn = thread_conn(st);
    if (cn != NULL && cn->nodes == NULL)
        cn->nodes = redis_nodes_new(st->cluster);
    return cn != NULL ? cn->nodes : NULL;
}

/* Sentinel: the node of cn failed: this thread asks the Sentinels before
 * it connects again, and so does every other thread (forget). */
static void failed(redis_store *st, rconn *cn)
{
    if (st->sentinel == NULL)
        return;
    cn->failed_us = clock_us();
    if (cn->port != 0)
        redis_sentinel_forget(st->sentinel, cn->addr, cn->port);
}

static void drop(redis_store *st, rconn *cn)
{
    if (cn->c) {
        redisFree(cn->c);
        failed(st, cn);
    }
    cn->c = NULL;
    cn->doomed = 0;
    cn->retry_at_ms = clock_ms() + RECONNECT_MS;
}

/* Sentinel: an error reply that says the node is no primary (any more):
 * the connection is dropped before its next use. */
static void note(redis_store *st, rconn *cn, const redisReply *r)
{
    if (st->sentinel != NULL && r != NULL && r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "READONLY", 8) == 0 && !cn->doomed) {
        cn->doomed = 1;
        cn->retry_at_ms = clock_ms() + RECONNECT_MS; /* the back-off starts now */
    }
}

/* AUTH, then (Sentinel) ROLE, then SELECT, on a new connection. 0 when one
 * is refused or the node is not a primary. */
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
    if (st->sentinel != NULL) {
        /* a Sentinel may name a replica not yet promoted, or a node
         * demoted since: nothing is sent to a node that is no primary */
        r = redisCommand(c, "ROLE");
        rc_t role = redis_sentinel_parse_role(r);
        if (role != RC_OK)
            log_msg(LOG_WARN, "redis-sentinel: the node named as primary %s",
                    role == RC_UNAVAILABLE ? "is not a primary (ROLE)" : "did not answer ROLE");
        if (r)
            freeReplyObject(r);
        if (role != RC_OK)
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

/* Opens a connection for cn by deadline (clock_ms) to the address that
 * serves: redis:// the URL's host (looked up by resolve.c), redis-sentinel://
 * the primary the Sentinels name, named after this thread's last failure.
 * NULL when none answers in time. */
static redisContext *open_conn(redis_store *st, rconn *cn, uint64_t deadline)
{
    char addr[RESOLVE_ADDR_MAX];
    int port = st->url.port;
    if (st->sentinel != NULL) {
        if (redis_sentinel_primary(st->sentinel, cn->failed_us, deadline, addr, &port) != RC_OK)
            return NULL;
    } else if (resolve_get(st->host, (int64_t)(deadline - clock_ms()), addr) != RC_OK) {
        return NULL;
    }
    uint64_t now = clock_ms();
    int64_t left = now < deadline ? (int64_t)(deadline - now) : 0;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
    redisContext *c = left > 0 ? redisConnectWithTimeout(addr, port, tv) : NULL;
    if (c == NULL || c->err || redisSetTimeout(c, st->timeout) != REDIS_OK ||
        !handshake(st, c)) {
        if (c != NULL && c->err && st->sentinel == NULL)
            resolve_stale(st->host, addr); /* try its next address, then look again */
        if (c)
            redisFree(c);
        if (st->sentinel != NULL) { /* ask the Sentinels again, all threads */
            cn->failed_us = clock_us();
            redis_sentinel_forget(st->sentinel, addr, port);
        }
        return NULL;
    }
    memcpy(cn->addr, addr, sizeof addr);
    cn->port = port;
    return c;
}

/* The calling thread's connection, opened if needed; NULL while Redis is
 * unreachable. */
static rconn *conn(redis_store *st)
{
    rconn *cn = thread_conn(st);
    if (cn == NULL)
        return NULL;
    uint64_t now = clock_ms();
    if (cn->c != NULL && cn->doomed) { /* a replica now: ask the Sentinels, after the back-off */
        redisFree(cn->c);
        cn->c = NULL;
        cn->doomed = 0;
        failed(st, cn);
    }
    if (cn->c != NULL && now - cn->used_ms >= IDLE_CHECK_MS && went_stale(cn->c)) {
        redisFree(cn->c); /* reopened at once below, not after a back-off */
        cn->c = NULL;
        failed(st, cn); /* closed by a failover, or a restart: ask again */
    }
    cn->used_ms = now;
    if (cn->c != NULL)
        return cn;
    if (now < cn->retry_at_ms)
        return NULL;
    /* REDIS_TIMEOUT_MS bounds the connect as a whole, the host name's
     * lookup and the Sentinels' answer included (resolve.h: never
     * getaddrinfo on this thread) */
    redisContext *c = open_conn(st, cn, now + (uint64_t)st->timeout_ms);
    if (c == NULL) {
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
    if (strncmp(r->str, REDIS_NODES_ERR, strlen(REDIS_NODES_ERR)) != 0) /* logged there */
        log_msg(LOG_WARN, "redis: %.200s", r->str);
    return RC_UNAVAILABLE;
}

static rc_t cluster_cmd(redis_store *st, redisReply **out, int argc, const char **argv,
                        const size_t *lens);

/* Runs one command. RC_OK with *out (free with freeReplyObject), or
 * RC_UNAVAILABLE (connection problem; the connection is dropped), or the
 * rc of an error reply. */
static rc_t cmd(redis_store *st, redisReply **out, int argc, const char **argv,
                const size_t *lens)
{
    *out = NULL;
    if (st->cluster != NULL)
        return cluster_cmd(st, out, argc, argv, lens);
    rconn *cn = conn(st);
    if (cn == NULL)
        return RC_UNAVAILABLE;
    redisReply *r = redisCommandArgv(cn->c, argc, argv, lens);
    if (r == NULL) {
        drop(st, cn);
        return RC_UNAVAILABLE;
    }
    note(st, cn, r);
    if (r->type == REDIS_REPLY_ERROR) {
        rc_t rc = reply_error(r);
        freeReplyObject(r);
        return rc;
    }
    *out = r;
    return RC_OK;
}

/* Keys (docs/REDIS.md). redis:// and redis-sentinel://: ss:s:<id>,
 * ss:u:<user>. redis-cluster://: <prefix>:{T}:s:<id>, <prefix>:{U}:u:<user>
 * and <prefix>:{T}:a:<id>, where U is the user's placement tag
 * (session_id_tag) and T the last SESSION_ID_TAG characters of the id: a
 * new session's id ends with its user's tag, so its key shares the slot of
 * its user's index. A session whose id is not tagged (older versions,
 * imports) is kept in its user's slot all the same, and an alias key in
 * its id's slot names that slot's tag (resolve_aliases). */

static size_t cut(int n)
{
    return n < 0 ? 0 : (size_t)n < KEY_MAX ? (size_t)n : KEY_MAX - 1;
}

/* The last SESSION_ID_TAG characters of id (all of it when shorter). */
static const char *id_tag(const char *id)
{
    size_t len = strlen(id);
    return len >= SESSION_ID_TAG ? id + len - SESSION_ID_TAG : id;
}

/* The key of session id, on a cluster in the slot of tag (NULL: the id's
 * own). KEY_MAX bytes at most: an index entry that is no id may be longer,
 * and its key is then cut, never overrun. */
static size_t session_key_at(const redis_store *st, char *out, const char *tag, const char *id)
{
    if (st->cluster == NULL)
        return cut(snprintf(out, KEY_MAX, "ss:s:%s", id));
    return cut(snprintf(out, KEY_MAX, "%s:{%.*s}:s:%s", st->url.prefix, SESSION_ID_TAG,
                        tag ? tag : id_tag(id), id));
}

static size_t session_key(const redis_store *st, char *out, const char *id)
{
    return session_key_at(st, out, NULL, id);
}

/* The key of a session of user (whatever its id): in the user's slot. */
static size_t user_session_key(const redis_store *st, char *out, str_t user, const char *id)
{
    char tag[SESSION_ID_TAG];
    session_id_tag(user, tag);
    return session_key_at(st, out, tag, id);
}

/* The prefix of the keys of user's sessions (the create script's ARGV[8]). */
static size_t session_prefix(const redis_store *st, char *out, str_t user)
{
    char tag[SESSION_ID_TAG];
    if (st->cluster == NULL)
        return cut(snprintf(out, KEY_MAX, "ss:s:"));
    session_id_tag(user, tag);
    return cut(snprintf(out, KEY_MAX, "%s:{%.*s}:s:", st->url.prefix, SESSION_ID_TAG, tag));
}

static size_t user_key(const redis_store *st, char *out, str_t user)
{
    size_t n;
    if (st->cluster == NULL) {
        memcpy(out, "ss:u:", 5); // NOLINT(bugprone-not-null-terminated-result): a key with a length
        n = 5;
    } else {
        char tag[SESSION_ID_TAG];
        session_id_tag(user, tag);
        n = cut(snprintf(out, KEY_MAX, "%s:{%.*s}:u:", st->url.prefix, SESSION_ID_TAG, tag));
    }
    memcpy(out + n, user.p, user.len);
    return n + user.len;
}

/* Cluster: the alias of an untagged id, in the id's own slot. */
static size_t alias_key(const redis_store *st, char *out, const char *id)
{
    return cut(snprintf(out, KEY_MAX, "%s:{%.*s}:a:%s", st->url.prefix, SESSION_ID_TAG,
                        id_tag(id), id));
}

static void i64_text(char *out, int64_t v)
{
    snprintf(out, 24, "%lld", (long long)v);
}

/* ---- operations ---- */

/* One command of a pipeline. */
typedef redis_cmd rcmd;

/* Sends n commands in one write and reads their n replies (one round trip;
 * Redis runs them in order, and with appendfsync always, fsyncs them
 * together). RC_OK with every reply in out (free each), or RC_UNAVAILABLE
 * when the connection failed (the connection is dropped, out is empty).
 * Error replies are returned as replies for the caller to judge.
 * deadline_ms (monotonic; 0: none): the connect and the round trip end by
 * then, or RC_UNAVAILABLE (a reply cut short drops the connection).
 * wait_ms: the round holds a WAIT of that timeout, so its replies may take
 * that much longer than REDIS_TIMEOUT_MS. */
static rc_t pipeline_once(redis_store *st, const rcmd *cmds, size_t n, redisReply **out,
                          uint64_t deadline_ms, int64_t wait_ms)
{
    if (st->cluster != NULL) {
        redis_nodes *nd = nodes_of(st);
        if (nd == NULL) {
            memset(out, 0, n * sizeof(redisReply *));
            return RC_NOMEM;
        }
        return redis_nodes_pipeline(nd, cmds, n, out, deadline_ms, wait_ms);
    }
    rconn *cn = conn(st);
    memset(out, 0, n * sizeof(redisReply *));
    if (cn == NULL)
        return RC_UNAVAILABLE;
    uint64_t budget = (uint64_t)(st->timeout_ms + wait_ms);
    if (deadline_ms != 0) {
        uint64_t now = clock_ms();
        if (now >= deadline_ms)
            return RC_UNAVAILABLE; /* the connect took the whole budget */
        if (deadline_ms - now < budget)
            budget = deadline_ms - now;
    }
    int reset = budget != (uint64_t)st->timeout_ms;
    if (reset) {
        struct timeval tv = { (time_t)(budget / 1000), (suseconds_t)(budget % 1000) * 1000 };
        if (redisSetTimeout(cn->c, tv) != REDIS_OK)
            goto broken;
    }
    for (size_t i = 0; i < n; i++)
        if (redisAppendCommandArgv(cn->c, cmds[i].argc, cmds[i].argv, cmds[i].lens) != REDIS_OK)
            goto broken;
    for (size_t i = 0; i < n; i++) {
        if (redisGetReply(cn->c, (void **)&out[i]) != REDIS_OK || out[i] == NULL)
            goto broken;
        note(st, cn, out[i]);
    }
    if (reset && redisSetTimeout(cn->c, st->timeout) != REDIS_OK)
        goto broken;
    return RC_OK;
broken:
    for (size_t i = 0; i < n; i++)
        if (out[i])
            freeReplyObject(out[i]);
    memset(out, 0, n * sizeof(redisReply *));
    drop(st, cn);
    return RC_UNAVAILABLE;
}

static rc_t retry_noscript(redis_store *st, const rcmd *cmds, size_t n, redisReply **out,
                           uint64_t deadline_ms, int64_t wait_ms);

/* pipeline_once, and the scripts a node did not have sent again whole. */
static rc_t pipeline_by(redis_store *st, const rcmd *cmds, size_t n, redisReply **out,
                        uint64_t deadline_ms, int64_t wait_ms)
{
    rc_t rc = pipeline_once(st, cmds, n, out, deadline_ms, wait_ms);
    return rc == RC_OK ? retry_noscript(st, cmds, n, out, deadline_ms, wait_ms) : rc;
}

static rc_t pipeline(redis_store *st, const rcmd *cmds, size_t n, redisReply **out)
{
    return pipeline_by(st, cmds, n, out, 0, 0);
}

/* cmd on a cluster: a pipeline of one. */
static rc_t cluster_cmd(redis_store *st, redisReply **out, int argc, const char **argv,
                        const size_t *lens)
{
    rcmd one = { argc, argv, lens };
    redisReply *r;
    rc_t rc = pipeline(st, &one, 1, &r);
    if (rc != RC_OK || r == NULL)
        return rc != RC_OK ? rc : RC_UNAVAILABLE;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = reply_error(r);
        freeReplyObject(r);
        return rc != RC_OK ? rc : RC_UNAVAILABLE;
    }
    *out = r;
    return RC_OK;
}

/* WAIT's answer: RC_OK when at least REDIS_WAIT_REPLICAS replicas
 * acknowledged every write sent before it on that connection. */
static rc_t wait_result(redis_store *st, const redisReply *r)
{
    int met = r->type == REDIS_REPLY_INTEGER && r->integer >= st->wait_replicas;
    atomic_store(&st->wait_short, !met);
    if (r->type == REDIS_REPLY_ERROR)
        return reply_error(r);
    if (met)
        return RC_OK;
    uint64_t now = clock_ms(), last = atomic_load(&st->wait_warned_ms);
    if ((last == 0 || now - last >= WAIT_WARN_EVERY_MS) &&
        atomic_compare_exchange_strong(&st->wait_warned_ms, &last, now))
        log_msg(LOG_WARN, "redis: %lld of %lld replicas acknowledged within %lld ms "
                "(REDIS_WAIT_REPLICAS): the writes are answered 503",
                r->type == REDIS_REPLY_INTEGER ? (long long)r->integer : -1LL,
                (long long)st->wait_replicas, (long long)st->wait_timeout_ms);
    return RC_UNAVAILABLE;
}

/* WAIT as a command of a round (rcmd points at st's texts). */
static rcmd wait_command(redis_store *st, const char **argv, size_t *lens)
{
    argv[0] = "WAIT", lens[0] = 4;
    argv[1] = st->wait_n, lens[1] = strlen(st->wait_n);
    argv[2] = st->wait_ms, lens[2] = strlen(st->wait_ms);
    return (rcmd){ 3, argv, lens };
}

/* A WAIT of its own after writes sent by the calling thread (close-all,
 * readiness, a batch while WAITs come short), by deadline_ms (0: none).
 * RC_OK at once when REDIS_WAIT_REPLICAS is 0. */
static rc_t wait_acks_by(redis_store *st, uint64_t deadline_ms)
{
    if (st->wait_replicas <= 0)
        return RC_OK;
    const char *argv[3];
    size_t lens[3];
    rcmd w = wait_command(st, argv, lens);
    redisReply *r;
    rc_t rc = pipeline_by(st, &w, 1, &r, deadline_ms, st->wait_timeout_ms);
    if (rc != RC_OK)
        return rc;
    rc = wait_result(st, r);
    freeReplyObject(r);
    return rc;
}

static rc_t wait_acks(redis_store *st)
{
    return wait_acks_by(st, 0);
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
    size_t gl[] = { 3, session_key(st, skey, id) };
    rc_t rc = cmd(st, &r, 2, ga, gl);
    if (rc != RC_OK)
        return rc;
    rc = live_record(r, now, rec, s);
    freeReplyObject(r);
    return rc;
}

/* Removes the index entries ids[0..n) of user by one pipelined ZREM each,
 * and tells why for each entry whose ZREM answered 1: of processes racing
 * to remove one entry, only the one that removed it tells. 0 when the round
 * trip failed or Redis refused a ZREM. */
static int zrem_tell(redis_store *st, str_t user, redisReply *const *ids, size_t n,
                     store_close_reason why)
{
    if (n == 0)
        return 1;
    char ukey[KEY_MAX];
    size_t ulen = user_key(st, ukey, user);
    int ok = 0;
    rcmd *cmds = calloc(n, sizeof *cmds);
    redisReply **out = calloc(n, sizeof(redisReply *));
    const char **av = calloc(3 * n, sizeof *av);
    size_t *lv = calloc(3 * n, sizeof *lv);
    if (cmds == NULL || out == NULL || av == NULL || lv == NULL)
        goto done;
    for (size_t i = 0; i < n; i++) {
        av[3 * i] = "ZREM", lv[3 * i] = 4;
        av[3 * i + 1] = ukey, lv[3 * i + 1] = ulen;
        av[3 * i + 2] = ids[i]->str, lv[3 * i + 2] = ids[i]->len;
        cmds[i] = (rcmd){ 3, av + 3 * i, lv + 3 * i };
    }
    if (pipeline(st, cmds, n, out) != RC_OK)
        goto done;
    ok = 1;
    for (size_t i = 0; i < n; i++) {
        if (out[i]->type == REDIS_REPLY_ERROR)
            ok = 0;
        else if (out[i]->type == REDIS_REPLY_INTEGER && out[i]->integer == 1 &&
                 session_id_valid(ids[i]->str, ids[i]->len))
            store_tell_closed(&st->base, why, ids[i]->str, user);
    }
    free_replies(out, n);
done:
    free(cmds);
    free(out);
    free(av);
    free(lv);
    return ok;
}

/* Drops index entries whose expires_at has passed, telling each as expired
 * (creates are atomic and closes unindex before they delete, so an entry
 * without its session whose score is still ahead ended idle: list and
 * close-all tell those, see zrem_tell). */
#define PRUNE_MAX 1000 /* entries a prune takes at once */

static void prune(redis_store *st, str_t user, int64_t now)
{
    char ukey[KEY_MAX], when[24], most[8];
    size_t ulen = user_key(st, ukey, user);
    i64_text(when, now);
    snprintf(most, sizeof most, "%d", PRUNE_MAX);
    for (;;) {
        redisReply *r;
        const char *pa[] = { "ZRANGEBYSCORE", ukey, "-inf", when, "LIMIT", "0", most };
        size_t pl[] = { 13, ulen, 4, strlen(when), 5, 1, strlen(most) };
        if (cmd(st, &r, 7, pa, pl) != RC_OK)
            return;
        size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        /* a ZREM refused (READONLY, ...) would find the same entries again */
        int ok = zrem_tell(st, user, r->element, n, STORE_EXPIRED);
        freeReplyObject(r);
        if (n < PRUNE_MAX || !ok)
            return;
    }
}

/* ZREMs ids from the user's index, up to 128 a command. The first failure's
 * rc (the ZREMs after it are not sent). */
static rc_t unindex(redis_store *st, str_t user, const char *const *ids, size_t n)
{
    char ukey[KEY_MAX];
    redisReply *r;
    const char *argv[2 + 128];
    size_t lens[2 + 128];
    argv[0] = "ZREM";
    lens[0] = 4;
    argv[1] = ukey;
    lens[1] = user_key(st, ukey, user);
    while (n > 0) {
        size_t k = n > 128 ? 128 : n;
        for (size_t i = 0; i < k; i++) {
            argv[2 + i] = ids[i];
            lens[2 + i] = strlen(ids[i]);
        }
        rc_t rc = cmd(st, &r, (int)(2 + k), argv, lens);
        if (rc != RC_OK)
            return rc;
        freeReplyObject(r);
        ids += k;
        n -= k;
    }
    return RC_OK;
}

/* The entries of the user's index (all of them, live or not), as a
 * ZRANGE ... WITHSCORES reply: id, score (expires_at), id, score, ... */
static rc_t index_entries(redis_store *st, str_t user, redisReply **out)
{
    char ukey[KEY_MAX];
    const char *za[] = { "ZRANGE", ukey, "0", "-1", "WITHSCORES" };
    size_t zl[] = { 6, user_key(st, ukey, user), 1, 2, 10 };
    rc_t rc = cmd(st, out, 5, za, zl);
    if (rc == RC_OK && ((*out)->type != REDIS_REPLY_ARRAY || (*out)->elements % 2 != 0)) {
        freeReplyObject(*out);
        *out = NULL;
        rc = RC_UNAVAILABLE;
    }
    if (rc == RC_OK)
        for (size_t i = 0; i < (*out)->elements; i++)
            if ((*out)->element[i]->type != REDIS_REPLY_STRING) {
                freeReplyObject(*out);
                *out = NULL;
                return RC_UNAVAILABLE;
            }
    return rc;
}

/* An index entry met with its session key gone ended idle when its score
 * (expires_at) is still ahead of now; at or past it, it expired (prune's). */
static int ended_idle(const redisReply *score, int64_t now)
{
    return strtod(score->str, NULL) > (double)now;
}

/* One command of list's and close-all's pipelines, on one session key. */
typedef struct del_cmd {
    const char *argv[2];
    size_t lens[2];
    char key[KEY_MAX];
    redisReply *id, *score; /* its index entry */
} del_cmd;

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
    redisReply *ents = NULL, **idle = NULL, **got_r = NULL;
    found *f = NULL;
    del_cmd *g = NULL;
    rcmd *cmds = NULL;
    size_t n = 0, nf = 0, nidle = 0;
    rc_t rc = index_entries(st, user, &ents);
    if (rc != RC_OK || (n = ents->elements / 2) == 0)
        goto out;
    f = calloc(n, sizeof *f);
    idle = calloc(n, sizeof(redisReply *));
    g = calloc(n, sizeof *g);
    cmds = calloc(n, sizeof *cmds);
    got_r = calloc(n, sizeof(redisReply *));
    if (f == NULL || idle == NULL || g == NULL || cmds == NULL || got_r == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    /* one round trip: pipeline a GET per id */
    for (size_t i = 0; i < n; i++) {
        g[i].argv[0] = "GET", g[i].lens[0] = 3;
        g[i].argv[1] = g[i].key;
        g[i].lens[1] = user_session_key(st, g[i].key, user, ents->element[2 * i]->str);
        cmds[i] = (rcmd){ 2, g[i].argv, g[i].lens };
    }
    if ((rc = pipeline(st, cmds, n, got_r)) != RC_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = got_r[i];
        got_r[i] = NULL;
        found *x = &f[nf];
        /* nil: closed or expired since the ZRANGE, or ended idle (told
         * below); another user's session (an entry left by an older
         * version): not this user's */
        if (r->type == REDIS_REPLY_NIL && ended_idle(ents->element[2 * i + 1], now))
            idle[nidle++] = ents->element[2 * i];
        rc_t got = live_record(r, now, &x->rec, &x->s);
        freeReplyObject(r);
        if (got == RC_OK && str_eq(x->s.user_id, user))
            nf++;
        else if (got != RC_OK && got != RC_NOT_FOUND && rc == RC_OK)
            rc = got; /* never a partial list that looks whole */
    }
    if (rc != RC_OK)
        goto out;
    zrem_tell(st, user, idle, nidle, STORE_IDLE);
    prune(st, user, now);
    qsort(f, nf, sizeof *f, newest_first);
    for (size_t i = 0; i < nf; i++)
        if (fn(&f[i].s, arg))
            break;
out:
    if (f != NULL)
        for (size_t i = 0; i < n; i++)
            buf_free(&f[i].rec);
    if (got_r != NULL)
        free_replies(got_r, n);
    free(got_r);
    free(g);
    free(cmds);
    free(f);
    free(idle);
    if (ents)
        freeReplyObject(ents);
    return rc;
}


/* Close-all works through the index DEL_USER_CHUNK ids at a time: each
 * chunk is two pipelined round trips, between which Redis serves everyone
 * else. */
#define DEL_USER_CHUNK 1000

/* One chunk of close-all, the n index entries ents[0..2n) (id, score,
 * ...): the GETs, then the ZREM and the DELs of those that are live and the
 * user's own. An entry whose session is gone ended idle if its score is
 * still ahead (told by whoever ZREMs it; prune tells the expired ones); one
 * that points at another user's session (left by an older version) is
 * unindexed. The owner of a session never changes and ids are never
 * reused, so the check holds until the DEL, and each DEL decides alone
 * whether this close-all closed that session (1) or someone else did first
 * (0): those it closed are told, even if the ZREM was refused. The entries
 * go before the DELs, as in a close: a list that finds a key gone finds its
 * entry gone too, so never takes a close for an idle end. *count grows by
 * the sessions closed. */
static rc_t del_chunk(redis_store *st, str_t user, redisReply *const *ents, size_t n,
                      const char *except, int64_t now, size_t *count)
{
    const char *gone[DEL_USER_CHUNK], *stale[DEL_USER_CHUNK];
    redisReply *idle[DEL_USER_CHUNK];
    del_cmd *dels = calloc(n, sizeof *dels);
    rcmd cmds[DEL_USER_CHUNK + 1];
    redisReply *replies[DEL_USER_CHUNK + 1];
    const char **zv = NULL; /* the ZREM of the entries of the sessions to close */
    size_t *zl = NULL;
    char ukey[KEY_MAX];
    buf_t rec = BUF_INIT;
    size_t nd = 0, ng = 0, nstale = 0, nidle = 0, keep = 0;
    rc_t rc = RC_OK;
    if (dels == NULL)
        return RC_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *id = ents[2 * i]->str;
        if (except != NULL && strcmp(id, except) == 0)
            continue;
        del_cmd *d = &dels[nd];
        d->argv[0] = "GET";
        d->lens[0] = 3;
        d->argv[1] = d->key;
        d->lens[1] = user_session_key(st, d->key, user, id);
        d->id = ents[2 * i];
        d->score = ents[2 * i + 1];
        gone[nd] = id;
        cmds[nd++] = (rcmd){ 2, d->argv, d->lens };
    }
    if (nd == 0 || (rc = pipeline(st, cmds, nd, replies)) != RC_OK)
        goto out;
    for (size_t i = 0; i < nd; i++) {
        session_t s;
        if (replies[i]->type == REDIS_REPLY_NIL) { /* gone: ended idle, or expired */
            if (ended_idle(dels[i].score, now))
                idle[nidle++] = dels[i].id;
            continue;
        }
        rc_t got = live_record(replies[i], now, &rec, &s);
        if (got == RC_OK && !str_eq(s.user_id, user)) {
            stale[nstale++] = gone[i]; /* another user's: not in this index */
        } else if (got == RC_OK) {
            dels[keep] = dels[i]; /* keep <= i: compacts in place */
            dels[keep].argv[0] = "DEL";
            dels[keep].argv[1] = dels[keep].key;
            gone[keep] = gone[i];
            /* the GETs are answered: their commands may be overwritten */
            cmds[keep + 1] = (rcmd){ 2, dels[keep].argv, dels[keep].lens };
            keep++;
        } else if (got != RC_NOT_FOUND && rc == RC_OK) {
            rc = got;
        } /* RC_NOT_FOUND: there but no longer live; Redis drops it soon */
    }
    free_replies(replies, nd);
    if (rc != RC_OK)
        goto out;
    zrem_tell(st, user, idle, nidle, STORE_IDLE);
    if (nstale)
        unindex(st, user, stale, nstale);
    if (keep == 0)
        goto out;
    /* one round trip: one ZREM of their entries, then a DEL each (Redis
     * runs them in that order; in one pipeline, so that a broken link does
     * not leave live sessions unindexed, out of a retry's reach) */
    zv = malloc((2 + keep) * sizeof *zv);
    zl = malloc((2 + keep) * sizeof *zl);
    if (zv == NULL || zl == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    zv[0] = "ZREM", zl[0] = 4;
    zv[1] = ukey, zl[1] = user_key(st, ukey, user);
    for (size_t i = 0; i < keep; i++)
        zv[2 + i] = gone[i], zl[2 + i] = strlen(gone[i]);
    cmds[0] = (rcmd){ (int)(2 + keep), zv, zl };
    if ((rc = pipeline(st, cmds, keep + 1, replies)) != RC_OK)
        goto out;
    if (replies[0]->type == REDIS_REPLY_ERROR)
        rc = reply_error(replies[0]);
    for (size_t i = 0; i < keep; i++) {
        const redisReply *d = replies[i + 1];
        if (d->type == REDIS_REPLY_ERROR) {
            if (rc == RC_OK)
                rc = reply_error(d);
        } else if (d->type == REDIS_REPLY_INTEGER && d->integer == 1) {
            gone[ng++] = gone[i]; /* ng <= i: compacts in place */
        }
    }
    free_replies(replies, keep + 1);
    for (size_t i = 0; i < ng; i++)
        store_tell_closed(&st->base, STORE_CLOSED_ALL, gone[i], user);
    *count += ng;
out:
    buf_free(&rec);
    free(dels);
    free(zv);
    free(zl);
    return rc;
}

/* Every live session of user but except, chunk by chunk (del_chunk). */
static rc_t redis_del_user(store_t *base, str_t user, const char *except, int64_t now,
                           size_t *count)
{
    redis_store *st = (redis_store *)base;
    redisReply *ents = NULL;
    *count = 0;
    rc_t rc = index_entries(st, user, &ents);
    size_t n = rc == RC_OK ? ents->elements / 2 : 0;
    for (size_t at = 0; rc == RC_OK && at < n; at += DEL_USER_CHUNK) {
        size_t k = n - at < DEL_USER_CHUNK ? n - at : DEL_USER_CHUNK;
        rc = del_chunk(st, user, ents->element + 2 * at, k, except, now, count);
    }
    if (rc == RC_OK)
        prune(st, user, now);
    if (rc == RC_OK && *count > 0)
        rc = wait_acks(st); /* the closes are answered once replicas have them */
    if (ents)
        freeReplyObject(ents);
    return rc;
}

/* ---- the request path's operations, many at once ----
 * Round 1 pipelines every create's script, every use's and token
 * rotation's script, and every read's and close's GET; round 2 the ZREM and
 * DEL of the closes whose session is live and theirs. With appendfsync
 * always, Redis syncs each round's writes together. Close-all runs alone
 * afterwards (its commands depend on the index it reads). */

typedef struct wscratch {
    buf_t rec;      /* create, rotation: the encoded record; close: the fetched one */
    session_t s;    /* read, close, rotation: the fetched session (views into a record) */
    char skey[KEY_MAX], ukey[KEY_MAX], sprefix[KEY_MAX], exp[24], now[24], max[24], end[24];
    char tagbuf[SESSION_ID_TAG]; /* cluster: an untagged id's slot, from its alias */
    const char *tag; /* cluster: the tag of the session's slot (NULL: the id's own) */
    int settled;     /* its rc is final before round 1 (an alias that was not there) */
    unsigned char seen[8]; /* use: the new last_seen_at, as a record holds it */
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
 * 2. the index's expired entries go (returned: told as expired); with the
 *    cap reached, entries whose session is gone (ended idle: their score is
 *    still ahead; returned) or belongs to someone else go too, then refuse
 *    (answer 2) or close the least recently used live sessions
 *    (last_seen_at, created_at, id: read from the records' fixed header,
 *    see record_encode; the user id follows the header, 36 bytes in a
 *    version 1 record, 52 in version 2);
 * 3. the session with its native expiry at session_end (ARGV[9]), its
 *    index entry scored expires_at (ARGV[2]), and the index key's expiry at
 *    expires_at (NX sets a first one, GT only ever extends it).
 * Answers {1, expired ids, idle ids, evicted ids...}. The keys of other
 * sessions are reached by prefix (ARGV[8]); docs/REDIS.md. */
static const char CREATE_SCRIPT[] =
    /* a shebang: Redis checks maxmemory (OOM) before the script runs, not
     * only until its first write */
    "#!lua\n"
    "local skey, ukey = KEYS[1], KEYS[2]\n"
    "local exp, id, max = ARGV[2], ARGV[3], tonumber(ARGV[5])\n"
    "if redis.call('EXISTS', skey) == 1 then return {0} end\n"
    "local dead = redis.call('ZRANGEBYSCORE', ukey, '-inf', ARGV[4])\n"
    "for _, m in ipairs(dead) do redis.call('ZREM', ukey, m) end\n"
    "local idle = {}\n"
    "local out = {1, dead, idle}\n"
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
    "      local hl = 52\n"
    "      if string.byte(r, 1) == 1 then hl = 36 end\n"
    "      local idl = string.byte(r, 2)\n"
    "      local ul = string.byte(r, 3) + 256 * string.byte(r, 4)\n"
    "      mine = string.sub(r, hl + 1 + idl, hl + idl + ul) == ARGV[7]\n"
    "    end\n"
    "    if mine then live[#live + 1] = { m, i64(r, 21), i64(r, 13) }\n"
    "    else\n"
    "      if not r then idle[#idle + 1] = m end\n"
    "      redis.call('ZREM', ukey, m)\n"
    "    end\n"
    "  end\n"
    "  if #live >= max then\n"
    "    if ARGV[6] == '1' then return {2, dead, idle} end\n"
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
    "redis.call('SET', skey, ARGV[1], 'EXAT', ARGV[9])\n"
    "redis.call('ZADD', ukey, exp, id)\n"
    "redis.call('EXPIREAT', ukey, exp, 'NX')\n"
    "redis.call('EXPIREAT', ukey, exp, 'GT')\n"
    "return out\n";

/* A use of a session (STORE_OP_TOUCH, and the background touches): its
 * record's last_seen_at (bytes 20..27 of either record version) becomes
 * ARGV[1] (8 bytes, little-endian) unless it is already that late -- never
 * backwards -- and the key's expiry moves to ARGV[2] (unix seconds; "0":
 * kept). SETRANGE keeps the key's expiry and never creates a key closed
 * meanwhile; nothing else of the record is rewritten, so a use never undoes
 * a concurrent token rotation (SWAP_SCRIPT). Answers 0 when the key is
 * gone, 1 otherwise. */
static const char TOUCH_SCRIPT[] =
    "#!lua\n"
    "local key = KEYS[1]\n"
    "if redis.call('EXISTS', key) == 0 then return 0 end\n"
    "local cur = redis.call('GETRANGE', key, 20, 27)\n"
    "if #cur ~= 8 then return redis.error_reply('ERR sessiond: not a session record') end\n"
    "local function i64(b)\n"
    "  local v = 0\n"
    "  for k = 8, 1, -1 do v = v * 256 + string.byte(b, k) end\n"
    "  return v\n"
    "end\n"
    "if i64(cur) >= i64(ARGV[1]) then return 1 end\n"
    "redis.call('SETRANGE', key, 20, ARGV[1])\n"
    "if ARGV[2] ~= '0' then redis.call('EXPIREAT', key, ARGV[2]) end\n"
    "return 1\n";

/* A token rotation (STORE_OP_SWAP): a compare-and-set of the record. When
 * the stored record is byte for byte ARGV[1], it becomes ARGV[2] with the
 * key's expiry at ARGV[3] (session_end of the new record): answers 1.
 * Answers 0 when the key is gone, else the record it found. */
static const char SWAP_SCRIPT[] =
    "#!lua\n"
    "local r = redis.call('GET', KEYS[1])\n"
    "if not r then return 0 end\n"
    "if r == ARGV[1] then\n"
    "  redis.call('SET', KEYS[1], ARGV[2], 'EXAT', ARGV[3])\n"
    "  return 1\n"
    "end\n"
    "return r\n";

#define TOUCH_ARGC 6
#define SWAP_ARGC 7

/* The scripts and their SHA-1s in hex, for EVALSHA: a create is then about
 * 300 bytes on the wire instead of 2 KiB. It matters for durability's
 * cost: with appendfsync always Redis fsyncs once per turn of its event
 * loop, and reads a client's pipeline 16 KiB per turn (docs/BENCHMARKS.md,
 * "Fourth pass"). A script whose hash could not be made goes as EVAL. */
enum { SCRIPT_CREATE, SCRIPT_TOUCH, SCRIPT_SWAP, SCRIPTS };
typedef struct script {
    const char *text;
    size_t len;
    char sha[2 * SHA_DIGEST_LENGTH + 1]; /* "" until hashed, or if it failed */
} script;
static script scripts[SCRIPTS] = {
    { CREATE_SCRIPT, sizeof CREATE_SCRIPT - 1, "" },
    { TOUCH_SCRIPT, sizeof TOUCH_SCRIPT - 1, "" },
    { SWAP_SCRIPT, sizeof SWAP_SCRIPT - 1, "" },
};
static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

static void scripts_hash(void)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < SCRIPTS; i++) {
        unsigned char md[SHA_DIGEST_LENGTH];
        if (SHA1((const unsigned char *)scripts[i].text, scripts[i].len, md) == NULL)
            continue;
        for (size_t k = 0; k < SHA_DIGEST_LENGTH; k++) {
            scripts[i].sha[2 * k] = hex[md[k] >> 4];
            scripts[i].sha[2 * k + 1] = hex[md[k] & 15];
        }
        scripts[i].sha[2 * SHA_DIGEST_LENGTH] = '\0';
    }
}

/* The first two words of script which's command: EVALSHA and its hash, or
 * EVAL and its text. */
static void script_words(int which, const char **argv, size_t *lens)
{
    const script *sc = &scripts[which];
    if (sc->sha[0] != '\0') {
        argv[0] = "EVALSHA", lens[0] = 7;
        argv[1] = sc->sha, lens[1] = 2 * SHA_DIGEST_LENGTH;
    } else {
        argv[0] = "EVAL", lens[0] = 4;
        argv[1] = sc->text, lens[1] = sc->len;
    }
}

/* The script an EVALSHA command names; NULL for any other command. */
static const script *evalsha_of(const rcmd *c)
{
    if (c->argc < 2 || c->lens[0] != 7 || memcmp(c->argv[0], "EVALSHA", 7) != 0 ||
        c->lens[1] != 2 * SHA_DIGEST_LENGTH)
        return NULL;
    for (size_t i = 0; i < SCRIPTS; i++)
        if (memcmp(c->argv[1], scripts[i].sha, 2 * SHA_DIGEST_LENGTH) == 0)
            return &scripts[i];
    return NULL;
}

static int noscript(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= 8 &&
           memcmp(r->str, "NOSCRIPT", 8) == 0;
}

/* After a round trip of cmds that succeeded: every EVALSHA answered
 * NOSCRIPT -- that Redis has not got the script (a primary new since a
 * failover, a cluster node that never ran it, SCRIPT FLUSH) and ran
 * nothing -- goes again as EVAL, which runs it and caches it, in one more
 * round trip; its answer takes the NOSCRIPT's place in out. When the
 * pipeline ended with a WAIT, the WAIT goes again after them, so that it
 * covers their writes, and the worse of the two WAIT answers stands (on a
 * cluster each covers only the nodes its own round wrote). RC_OK, or, when
 * that round trip failed, RC_UNAVAILABLE with out emptied (as a pipeline
 * cut short). */
static rc_t retry_noscript(redis_store *st, const rcmd *cmds, size_t n, redisReply **out,
                           uint64_t deadline_ms, int64_t wait_ms)
{
    size_t k = 0, words = 0;
    for (size_t i = 0; i < n; i++)
        if (noscript(out[i]) && evalsha_of(&cmds[i]) != NULL) {
            k++;
            words += (size_t)cmds[i].argc;
        }
    if (k == 0)
        return RC_OK;
    int wait_last = cmds[n - 1].argc > 0 && cmds[n - 1].lens[0] == 4 &&
                    strncasecmp(cmds[n - 1].argv[0], "WAIT", 4) == 0;
    size_t m = k + (size_t)wait_last;
    rcmd *again = calloc(m, sizeof *again);
    size_t *at = calloc(m, sizeof *at), *lens = calloc(words, sizeof *lens);
    const char **argv = calloc(words, sizeof *argv);
    redisReply **got = calloc(m, sizeof(redisReply *));
    rc_t rc = RC_NOMEM;
    if (again == NULL || at == NULL || lens == NULL || argv == NULL || got == NULL)
        goto out;
    size_t j = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        const script *sc = evalsha_of(&cmds[i]);
        if (sc == NULL || !noscript(out[i]))
            continue;
        size_t argc = (size_t)cmds[i].argc;
        memcpy(argv + w, cmds[i].argv, argc * sizeof *argv);
        memcpy(lens + w, cmds[i].lens, argc * sizeof *lens);
        argv[w] = "EVAL", lens[w] = 4;
        argv[w + 1] = sc->text, lens[w + 1] = sc->len;
        again[j] = (rcmd){ cmds[i].argc, argv + w, lens + w };
        at[j++] = i;
        w += argc;
    }
    if (wait_last) {
        again[j] = cmds[n - 1];
        at[j] = n - 1;
    }
    rc = pipeline_once(st, again, m, got, deadline_ms, wait_ms);
    if (rc == RC_OK) {
        for (j = 0; j < k; j++) {
            freeReplyObject(out[at[j]]);
            out[at[j]] = got[j];
        }
        if (wait_last) {
            redisReply *first = out[n - 1], *second = got[k];
            int keep_first = first->type != REDIS_REPLY_INTEGER ||
                             (second->type == REDIS_REPLY_INTEGER &&
                              first->integer <= second->integer);
            freeReplyObject(keep_first ? second : first);
            out[n - 1] = keep_first ? first : second;
        }
    }
out:
    if (rc != RC_OK) {
        for (size_t i = 0; i < n; i++)
            if (out[i])
                freeReplyObject(out[i]);
        memset(out, 0, n * sizeof(redisReply *));
        rc = RC_UNAVAILABLE;
    }
    free(again);
    free(at);
    free(lens);
    free(argv);
    free(got);
    return rc;
}

static void put_commands(wscratch *x, const store_op *o, rcmd *cmd)
{
    const session_t *s = o->s;
    i64_text(x->exp, s->expires_at);
    i64_text(x->now, s->created_at);
    i64_text(x->max, o->max_per_user > 0 ? o->max_per_user : 0);
    i64_text(x->end, session_end(s));
    const char *const argv[PUT_ARGC] = {
        NULL, NULL, "2", x->skey, x->ukey,
        x->rec.p, x->exp, s->id, x->now, x->max, o->refuse ? "1" : "0", s->user_id.p, x->sprefix,
        x->end,
    };
    const size_t lens[PUT_ARGC] = {
        0, 0, 1, user_session_key(x->st, x->skey, s->user_id, s->id),
        user_key(x->st, x->ukey, s->user_id), x->rec.len, strlen(x->exp), strlen(s->id),
        strlen(x->now), strlen(x->max), 1, s->user_id.len,
        session_prefix(x->st, x->sprefix, s->user_id), strlen(x->end),
    };
    memcpy(x->argv[0], argv, sizeof argv);
    memcpy(x->lens[0], lens, sizeof lens);
    script_words(SCRIPT_CREATE, x->argv[0], x->lens[0]);
    *cmd = (rcmd){ PUT_ARGC, x->argv[0], x->lens[0] };
}

/* A TOUCH_SCRIPT command on key (klen bytes) into argv and lens
 * (TOUCH_ARGC each): seen holds the new last_seen_at (8 bytes), exat the
 * key's new expiry as text ("0": kept). The caller keeps them until sent. */
static rcmd touch_command(const char **argv, size_t *lens, const char *key, size_t klen,
                          const unsigned char *seen, const char *exat)
{
    script_words(SCRIPT_TOUCH, argv, lens);
    argv[2] = "1", lens[2] = 1;
    argv[3] = key, lens[3] = klen;
    argv[4] = (const char *)seen, lens[4] = 8;
    argv[5] = exat, lens[5] = strlen(exat);
    return (rcmd){ TOUCH_ARGC, argv, lens };
}

/* last_seen_at as a record holds it: 8 bytes, little-endian. */
static void seen_bytes(unsigned char out[8], int64_t last_seen)
{
    uint64_t u = (uint64_t)last_seen;
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(u >> (8 * i));
}

/* A use at o->now of the session o->s as its caller read it (may be NULL:
 * the key's expiry stays): the key then expires at session_end of that
 * session with last_seen_at = now, so Redis drops it when it ends idle. */
static rcmd touch_op_command(wscratch *x, const store_op *o)
{
    seen_bytes(x->seen, o->now);
    if (o->s != NULL) {
        session_t used = *o->s;
        used.last_seen_at = o->now;
        i64_text(x->end, session_end(&used));
    } else {
        memcpy(x->end, "0", 2);
    }
    return touch_command(x->argv[0], x->lens[0], x->skey,
                         session_key_at(x->st, x->skey, x->tag, o->id), x->seen,
                         x->end);
}

/* A rotation: expected record o->rec, new record (encoded in x->rec). */
static rcmd swap_command(wscratch *x, const store_op *o)
{
    i64_text(x->end, session_end(o->s));
    const char *const argv[SWAP_ARGC] = {
        NULL, NULL, "1", x->skey, o->rec->p ? o->rec->p : "", x->rec.p, x->end,
    };
    const size_t lens[SWAP_ARGC] = {
        0, 0, 1, user_session_key(x->st, x->skey, o->s->user_id, o->id),
        o->rec->len, x->rec.len,
        strlen(x->end),
    };
    memcpy(x->argv[0], argv, sizeof argv);
    memcpy(x->lens[0], lens, sizeof lens);
    script_words(SCRIPT_SWAP, x->argv[0], x->lens[0]);
    return (rcmd){ SWAP_ARGC, x->argv[0], x->lens[0] };
}

/* Tells why for each id of an array the create script returned. */
static void tell_each(redis_store *st, const redisReply *ids, str_t user, store_close_reason why)
{
    for (size_t i = 0; i < ids->elements; i++) {
        const redisReply *e = ids->element[i];
        if (e->type == REDIS_REPLY_STRING && session_id_valid(e->str, e->len))
            store_tell_closed(&st->base, why, e->str, user);
    }
}

/* The script's answer: {0} (id taken), {2, expired, idle} (refused at the
 * cap), or {1, expired, idle, evicted ids...}; the expired and the idle
 * entries it removed are told as such. */
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
    if (r->elements < 3 || r->element[1]->type != REDIS_REPLY_ARRAY ||
        r->element[2]->type != REDIS_REPLY_ARRAY || (verdict != 1 && verdict != 2))
        return RC_UNAVAILABLE;
    tell_each(st, r->element[1], o->s->user_id, STORE_EXPIRED);
    tell_each(st, r->element[2], o->s->user_id, STORE_IDLE);
    if (verdict == 2)
        return RC_LIMIT;
    if (o->evicted != NULL)
        buf_reset(o->evicted);
    for (size_t i = 3; i < r->elements; i++) {
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

/* TOUCH_SCRIPT's answer: 1 used, 0 gone. */
static rc_t touch_result(const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR)
        return reply_error(r);
    if (r->type != REDIS_REPLY_INTEGER || (r->integer != 0 && r->integer != 1))
        return RC_UNAVAILABLE;
    return r->integer == 1 ? RC_OK : RC_NOT_FOUND;
}

/* SWAP_SCRIPT's answer: 1 replaced, 0 gone, or the record found instead:
 * into o->rec, RC_EXISTS while it is live at o->now, else RC_NOT_FOUND. */
static rc_t swap_result(store_op *o, wscratch *x, const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER && (r->integer == 0 || r->integer == 1))
        return r->integer == 1 ? RC_OK : RC_NOT_FOUND;
    if (r->type == REDIS_REPLY_ERROR)
        return reply_error(r);
    if (r->type != REDIS_REPLY_STRING)
        return RC_UNAVAILABLE;
    rc_t rc = live_record(r, o->now, o->rec, &x->s);
    return rc == RC_OK ? RC_EXISTS : rc;
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
 * judge); on a broken connection every op of the round gets its rc. When
 * waited is not NULL, the round's last command is a WAIT: its verdict
 * (wait_result, or the round's failure) goes to *waited. */
static void round_trip(redis_store *st, const rcmd *cmds, size_t nc, redisReply **r,
                       store_op *const *ops, wscratch *w, size_t n, uint64_t deadline_ms,
                       rc_t *waited, void (*judge)(store_op *, wscratch *, redisReply *const *))
{
    if (nc == 0)
        return;
    rc_t rc = pipeline_by(st, cmds, nc, r, deadline_ms, waited ? st->wait_timeout_ms : 0);
    for (size_t i = 0; i < n; i++) {
        if (w[i].first == SIZE_MAX)
            continue;
        if (rc != RC_OK)
            ops[i]->rc = rc;
        else
            judge(ops[i], &w[i], r + w[i].first);
    }
    if (waited != NULL)
        *waited = rc == RC_OK ? wait_result(st, r[nc - 1]) : rc;
    if (rc == RC_OK)
        free_replies(r, nc);
}

/* Whether op wrote what its answer acknowledges (a WAIT must cover it). */
static int acknowledges_write(const store_op *o)
{
    return o->rc == RC_OK && (o->kind == STORE_OP_PUT || o->kind == STORE_OP_TOUCH ||
                              o->kind == STORE_OP_SWAP || o->kind == STORE_OP_DEL);
}

static void judge_first(store_op *o, wscratch *x, redisReply *const *r)
{
    if (o->kind == STORE_OP_PUT)
        o->rc = put_result(x->st, o, r[0]);
    else if (o->kind == STORE_OP_GET)
        o->rc = live_record(r[0], o->now, o->rec, &x->s);
    else if (o->kind == STORE_OP_TOUCH)
        o->rc = touch_result(r[0]);
    else if (o->kind == STORE_OP_SWAP)
        o->rc = swap_result(o, x, r[0]);
    else
        o->rc = closable(x, r[0], o->user, o->now);
}

/* A close's ZREM (r[0]) and DEL (r[1]): the DEL decides. */
static void judge_second(store_op *o, wscratch *x, redisReply *const *r)
{
    if (r[1]->type == REDIS_REPLY_ERROR)
        o->rc = reply_error(r[1]);
    else
        o->rc = r[1]->type == REDIS_REPLY_INTEGER && r[1]->integer == 1 ? RC_OK : RC_NOT_FOUND;
    if (o->rc == RC_OK) /* this DEL removed it: of two racing closes, only one tells */
        store_tell_closed(&x->st->base, o->why, o->id, x->s.user_id);
}

static rc_t redis_ping(store_t *base);

/* Cluster: whether the node that took o's write acknowledged it with
 * enough replicas -- and for a create of an untagged id, the node that
 * took its alias too (without it the session cannot be found by id). */
static int cluster_acked(redis_store *st, const store_op *o, const wscratch *x)
{
    redis_nodes *nd = nodes_of(st);
    if (nd == NULL || redis_nodes_acks(nd, x->skey, strlen(x->skey)) < st->wait_replicas)
        return 0;
    if (o->kind == STORE_OP_PUT && !session_id_tagged(o->s->id, strlen(o->s->id))) {
        char akey[KEY_MAX];
        size_t alen = alias_key(st, akey, o->s->id);
        return redis_nodes_acks(nd, akey, alen) >= st->wait_replicas;
    }
    return 1;
}

/* A tag as session_id_tag writes them. */
static int tag_valid(const char *t, size_t len)
{
    if (len != SESSION_ID_TAG)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
              (t[i] >= '0' && t[i] <= '9') || t[i] == '-' || t[i] == '_'))
            return 0;
    return 1;
}

/* Cluster: the slot of each operation's session, when its id is not tagged
 * (made by an older version, or imported). A create writes its id's alias
 * first (<prefix>:{T}:a:<id> = its user's tag, expiring at the session's
 * expires_at; a create refused after it leaves an alias to nothing, which
 * is harmless); a read, use or close whose caller names no owner reads the
 * alias: none, no session. A tagged id of a create must carry its user's
 * tag (RC_INVALID: it could not be found from its id). One round trip for
 * all of them, none when every id is tagged. */
static void resolve_aliases(redis_store *st, store_op *const *ops, wscratch *w, size_t n,
                            uint64_t deadline)
{
    rcmd *cmds = NULL;
    redisReply **r = NULL;
    size_t *of = NULL, k = 0;
    if (st->cluster == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        store_op *o = ops[i];
        wscratch *x = &w[i];
        x->st = st;
        const char *id = o->kind == STORE_OP_PUT ? (o->s ? o->s->id : NULL) : o->id;
        if (id == NULL || o->kind == STORE_OP_DEL_USER || o->kind == STORE_OP_PING)
            continue;
        char utag[SESSION_ID_TAG];
        if (o->kind == STORE_OP_PUT && session_id_tagged(id, strlen(id))) {
            session_id_tag(o->s->user_id, utag);
            if (memcmp(utag, id_tag(id), SESSION_ID_TAG) != 0) {
                o->rc = RC_INVALID;
                x->settled = 1;
            }
            continue;
        }
        if (session_id_tagged(id, strlen(id)) || o->kind == STORE_OP_SWAP)
            continue; /* found from its id, or from its user (user_session_key) */
        str_t owner = o->kind == STORE_OP_PUT ? o->s->user_id
                    : o->kind == STORE_OP_TOUCH && o->s ? o->s->user_id
                    : o->kind == STORE_OP_DEL ? o->user : STR_NULL;
        if (owner.p != NULL && o->kind != STORE_OP_PUT) {
            session_id_tag(owner, x->tagbuf);
            x->tag = x->tagbuf;
            continue;
        }
        x->first = k++;
    }
    if (k == 0)
        return;
    cmds = calloc(k, sizeof *cmds);
    r = calloc(k, sizeof(redisReply *));
    of = calloc(k, sizeof *of);
    rc_t rc = cmds && r && of ? RC_OK : RC_NOMEM;
    if (rc != RC_OK)
        for (size_t i = 0; i < n; i++)
            if (w[i].first != SIZE_MAX) {
                ops[i]->rc = rc;
                w[i].settled = 1;
            }
    k = 0;
    for (size_t i = 0; i < n && rc == RC_OK; i++) {
        store_op *o = ops[i];
        wscratch *x = &w[i];
        if (x->first == SIZE_MAX || x->settled || x->tag != NULL)
            continue;
        const char *id = o->kind == STORE_OP_PUT ? o->s->id : o->id;
        if (o->kind != STORE_OP_PUT && o->kind != STORE_OP_GET && o->kind != STORE_OP_TOUCH &&
            o->kind != STORE_OP_DEL)
            continue;
        x->argv[1][1] = x->ukey;
        x->lens[1][1] = alias_key(st, x->ukey, id);
        if (o->kind == STORE_OP_PUT) {
            session_id_tag(o->s->user_id, x->tagbuf);
            i64_text(x->exp, o->s->expires_at);
            x->argv[1][0] = "SET", x->lens[1][0] = 3;
            x->argv[1][2] = x->tagbuf, x->lens[1][2] = SESSION_ID_TAG;
            x->argv[1][3] = "EXAT", x->lens[1][3] = 4;
            x->argv[1][4] = x->exp, x->lens[1][4] = strlen(x->exp);
            cmds[k] = (rcmd){ 5, x->argv[1], x->lens[1] };
        } else {
            x->argv[1][0] = "GET", x->lens[1][0] = 3;
            cmds[k] = (rcmd){ 2, x->argv[1], x->lens[1] };
        }
        of[k++] = i;
    }
    if (rc == RC_OK && k > 0)
        rc = pipeline_by(st, cmds, k, r, deadline, 0);
    for (size_t j = 0; j < k; j++) {
        store_op *o = ops[of[j]];
        wscratch *x = &w[of[j]];
        x->settled = 1;
        if (rc != RC_OK)
            o->rc = rc;
        else if (r[j]->type == REDIS_REPLY_ERROR)
            o->rc = reply_error(r[j]);
        else if (o->kind == STORE_OP_PUT)
            x->settled = 0; /* the alias is there: the create goes ahead */
        else if (r[j]->type == REDIS_REPLY_NIL)
            o->rc = RC_NOT_FOUND;
        else if (r[j]->type == REDIS_REPLY_STRING && tag_valid(r[j]->str, r[j]->len)) {
            memcpy(x->tagbuf, r[j]->str, SESSION_ID_TAG);
            x->tag = x->tagbuf;
            x->settled = 0;
        } else
            o->rc = RC_UNAVAILABLE;
    }
    if (rc == RC_OK)
        free_replies(r, k);
    for (size_t i = 0; i < n; i++)
        w[i].first = SIZE_MAX;
    free(cmds);
    free(r);
    free(of);
}

/* The request path's store work: its rounds (and a connect, a host name's
 * lookup included) end within REDIS_TIMEOUT_MS in all, plus
 * REDIS_WAIT_TIMEOUT_MS when a WAIT follows its writes. */
static void redis_batch(store_t *base, store_op *const *ops, size_t n)
{
    redis_store *st = (redis_store *)base;
    int waiting = st->wait_replicas > 0;
    /* the WAIT rides in the pipeline of the last writes; after one came
     * short, it is sent only once writes succeeded (a round of its own),
     * so that writes Redis refuses (NOREPLICAS) answer at once */
    int eager = waiting && !atomic_load(&st->wait_short);
    uint64_t deadline = clock_ms() + (uint64_t)st->timeout_ms +
                        (waiting ? (uint64_t)st->wait_timeout_ms : 0);
    wscratch *w = calloc(n, sizeof *w);
    /* at most two commands an operation, and a WAIT */
    rcmd *cmds = calloc(2 * n + 1, sizeof *cmds);
    redisReply **r = calloc(2 * n + 1, sizeof(redisReply *));
    const char *wait_argv[3];
    size_t wait_lens[3], nc = 0, writes = 0, closes = 0;
    rc_t waited = RC_OK;
    if (w == NULL || cmds == NULL || r == NULL) {
        for (size_t i = 0; i < n; i++)
            ops[i]->rc = RC_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        w[i].first = SIZE_MAX;
        w[i].st = st;
    }
    resolve_aliases(st, ops, w, n, deadline);
    /* round 1: creates, uses, rotations, and the GETs of reads and closes */
    for (size_t i = 0; i < n; i++) {
        store_op *o = ops[i];
        wscratch *x = &w[i];
        x->first = SIZE_MAX;
        if (x->settled)
            continue;
        if (o->kind == STORE_OP_PUT) {
            if ((o->rc = record_encode(o->s, &x->rec)) != RC_OK)
                continue;
            x->first = nc;
            put_commands(x, o, cmds + nc++);
            writes++;
        } else if (o->kind == STORE_OP_TOUCH) {
            x->first = nc;
            cmds[nc++] = touch_op_command(x, o);
            writes++;
        } else if (o->kind == STORE_OP_SWAP) {
            if (o->s == NULL || o->rec == NULL) {
                o->rc = RC_INVALID;
                continue;
            }
            if ((o->rc = record_encode(o->s, &x->rec)) != RC_OK)
                continue;
            x->first = nc;
            cmds[nc++] = swap_command(x, o);
            writes++;
        } else if (o->kind == STORE_OP_DEL || o->kind == STORE_OP_GET) {
            x->first = nc;
            x->argv[0][0] = "GET";
            x->lens[0][0] = 3;
            x->argv[0][1] = x->skey;
            x->lens[0][1] = session_key_at(st, x->skey, x->tag, o->id);
            cmds[nc++] = (rcmd){ 2, x->argv[0], x->lens[0] };
            closes += o->kind == STORE_OP_DEL;
        }
    }
    /* WAIT: one per batch, after its last write. In this round when no
     * close may add a round of writes; else in round 2, or alone */
    int wait_now = eager && writes > 0 && closes == 0;
    if (wait_now)
        cmds[nc++] = wait_command(st, wait_argv, wait_lens);
    round_trip(st, cmds, nc, r, ops, w, n, deadline, wait_now ? &waited : NULL, judge_first);
    int wait_owed = eager && writes > 0 && closes > 0;
    /* round 2: ZREM, then DEL, of the closes that may go ahead. The entry
     * goes first: whoever finds the key gone then finds the entry gone too,
     * so a closed session is never taken for one that ended idle (an entry
     * without its key, scored ahead: redis_list) */
    nc = 0;
    for (size_t i = 0; i < n; i++) {
        store_op *o = ops[i];
        wscratch *x = &w[i];
        if (o->kind != STORE_OP_DEL || x->first == SIZE_MAX || o->rc != RC_OK) {
            x->first = SIZE_MAX;
            continue;
        }
        x->first = nc;
        x->argv[0][0] = "ZREM";
        x->lens[0][0] = 4;
        x->argv[0][1] = x->ukey;
        x->lens[0][1] = user_key(st, x->ukey, x->s.user_id);
        x->argv[0][2] = o->id;
        x->lens[0][2] = strlen(o->id);
        x->argv[1][0] = "DEL";
        x->lens[1][0] = 3;
        x->argv[1][1] = x->skey;
        x->lens[1][1] = strlen(x->skey);
        cmds[nc++] = (rcmd){ 3, x->argv[0], x->lens[0] };
        cmds[nc++] = (rcmd){ 2, x->argv[1], x->lens[1] };
    }
    if (nc > 0 && eager)
        wait_owed = 1;
    if (wait_owed) /* after the closes, or alone: a round of one */
        cmds[nc++] = wait_command(st, wait_argv, wait_lens);
    round_trip(st, cmds, nc, r, ops, w, n, deadline, wait_owed ? &waited : NULL, judge_second);
    if (waiting && !eager)
        for (size_t i = 0; i < n; i++)
            if (acknowledges_write(ops[i])) {
                waited = wait_acks_by(st, deadline);
                break;
            }
    /* too few replicas have them: not acknowledged. On a cluster each
     * node's WAIT judges the writes that went to it */
    for (size_t i = 0; waiting && i < n; i++) {
        if (!acknowledges_write(ops[i]))
            continue;
        if (st->cluster != NULL && cluster_acked(st, ops[i], &w[i]))
            continue;
        if (st->cluster != NULL || waited != RC_OK)
            ops[i]->rc = waited != RC_OK ? waited : RC_UNAVAILABLE;
    }
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

/* One background touch's command (touch.c's flush). */
typedef struct touch_cmd {
    const char *argv[TOUCH_ARGC];
    size_t lens[TOUCH_ARGC];
    char key[KEY_MAX];
    char tag[SESSION_ID_TAG];
    int gone; /* cluster: an untagged id without its alias */
} touch_cmd;

/* Cluster: the tags of the untagged ids among ids, from their aliases (a
 * missing alias: gone). One round trip; none when every id is tagged. */
static rc_t touch_aliases(redis_store *st, const char (*ids)[SESSION_ID_MAX + 1], size_t n,
                          touch_cmd *t)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !session_id_tagged(ids[i], strlen(ids[i]));
    if (st->cluster == NULL || k == 0)
        return RC_OK;
    rcmd *cmds = calloc(k, sizeof *cmds);
    redisReply **r = calloc(k, sizeof(redisReply *));
    size_t *of = calloc(k, sizeof *of);
    rc_t rc = RC_NOMEM;
    if (cmds == NULL || r == NULL || of == NULL)
        goto out;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (session_id_tagged(ids[i], strlen(ids[i])))
            continue;
        t[i].argv[0] = "GET", t[i].lens[0] = 3;
        t[i].argv[1] = t[i].key, t[i].lens[1] = alias_key(st, t[i].key, ids[i]);
        cmds[k] = (rcmd){ 2, t[i].argv, t[i].lens };
        of[k++] = i;
    }
    if ((rc = pipeline(st, cmds, k, r)) != RC_OK)
        goto out;
    for (size_t j = 0; j < k; j++) {
        touch_cmd *x = &t[of[j]];
        if (r[j]->type == REDIS_REPLY_STRING && tag_valid(r[j]->str, r[j]->len))
            memcpy(x->tag, r[j]->str, SESSION_ID_TAG);
        else if (r[j]->type == REDIS_REPLY_ERROR && rc == RC_OK)
            rc = reply_error(r[j]);
        else
            x->gone = 1;
    }
    free_replies(r, k);
out:
    free(cmds);
    free(r);
    free(of);
    return rc;
}

/* The background touches: one TOUCH_SCRIPT each, all in one round trip.
 * Their sessions have no idle timeout (a use of one that has is a
 * STORE_OP_TOUCH on the request path), so the keys' expiry stays. Gone
 * sessions are skipped; the first error reply is the answer. */
static rc_t redis_touch(store_t *base, const char (*ids)[SESSION_ID_MAX + 1], size_t n,
                        int64_t last_seen, int64_t now)
{
    redis_store *st = (redis_store *)base;
    (void)now;
    if (n == 0)
        return RC_OK;
    unsigned char seen[8];
    seen_bytes(seen, last_seen);
    touch_cmd *t = calloc(n, sizeof *t);
    rcmd *cmds = calloc(n, sizeof *cmds);
    redisReply **r = calloc(n, sizeof(redisReply *));
    rc_t rc = RC_NOMEM;
    size_t k = 0;
    if (t == NULL || cmds == NULL || r == NULL)
        goto out;
    if ((rc = touch_aliases(st, ids, n, t)) != RC_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        /* a valid id (touch.c checks them): its key fits */
        if (t[i].gone)
            continue;
        const char *tag = session_id_tagged(ids[i], strlen(ids[i])) ? NULL : t[i].tag;
        cmds[k++] = touch_command(t[i].argv, t[i].lens, t[i].key,
                                  session_key_at(st, t[i].key, tag, ids[i]), seen, "0");
    }
    n = k;
    if (n == 0)
        goto out;
    if ((rc = pipeline(st, cmds, n, r)) != RC_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        rc_t got = rc == RC_OK ? touch_result(r[i]) : RC_OK; /* logs the first error only */
        if (got != RC_OK && got != RC_NOT_FOUND)
            rc = got;
    }
    free_replies(r, n);
out:
    free(t);
    free(cmds);
    free(r);
    return rc;
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
static rc_t ready_cluster(redis_store *st);

static rc_t ready_write(redis_store *st)
{
    if (st->cluster != NULL)
        return ready_cluster(st);
    redisReply *r;
    const char *pa[] = { "SET", "ss:ready", "1", "PX", "10000" };
    size_t pl[] = { 3, 8, 1, 2, 5 };
    rc_t rc = cmd(st, &r, 5, pa, pl);
    if (rc == RC_OK)
        freeReplyObject(r);
    return rc;
}

/* Readiness: the write, and with REDIS_WAIT_REPLICAS its WAIT (too few
 * replicas: writes are refused, so not ready). */
static rc_t redis_ping(store_t *base)
{
    redis_store *st = (redis_store *)base;
    rc_t rc = ready_write(st);
    return rc == RC_OK ? wait_acks(st) : rc;
}

/* A key in slot: "<prefix>:{t}:ready" with the first tag t (base64url,
 * then decimal) that hashes there. 0 when none was found. */
static size_t ready_key(const redis_store *st, char *out, uint16_t slot)
{
    static const char b64[] = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    char t[16];
    for (unsigned i = 0; i < 64u * 64u * 64u; i++) {
        t[0] = b64[i >> 12], t[1] = b64[(i >> 6) & 63], t[2] = b64[i & 63];
        if (redis_cluster_slot(t, 3) == slot)
            return cut(snprintf(out, KEY_MAX, "%s:{%.3s}:ready", st->url.prefix, t));
    }
    for (unsigned i = 0; i < 10000000u; i++) {
        int n = snprintf(t, sizeof t, "%u", i);
        if (redis_cluster_slot(t, (size_t)n) == slot)
            return cut(snprintf(out, KEY_MAX, "%s:{%s}:ready", st->url.prefix, t));
    }
    return 0;
}

/* Cluster readiness: every slot has a primary, and each primary takes a
 * write (SET of a key in one of its slots): a cluster that lost a primary
 * until its failover, or that refuses writes, is not ready. */
static rc_t ready_cluster(redis_store *st)
{
    redis_nodes *nd = nodes_of(st);
    const redis_slot_map *m = nd ? redis_nodes_map(nd, 0) : NULL;
    if (m == NULL || m->covered < REDIS_CLUSTER_SLOTS)
        return RC_UNAVAILABLE;
    size_t nn = m->nnodes, k = 0;
    char (*keys)[KEY_MAX] = calloc(nn, KEY_MAX);
    const char *(*argv)[5] = calloc(nn, sizeof *argv);
    size_t (*lens)[5] = calloc(nn, sizeof *lens);
    rcmd *cmds = calloc(nn, sizeof *cmds);
    redisReply **r = calloc(nn, sizeof(redisReply *));
    rc_t rc = RC_NOMEM;
    if (keys == NULL || argv == NULL || lens == NULL || cmds == NULL || r == NULL)
        goto out;
    for (size_t j = 0; j < nn; j++) {
        uint16_t slot = 0;
        while (slot < REDIS_CLUSTER_SLOTS && m->slot_node[slot] != j)
            slot++;
        if (slot == REDIS_CLUSTER_SLOTS)
            continue; /* a node left without slots (MOVED) */
        size_t kl = ready_key(st, keys[k], slot);
        if (kl == 0)
            continue;
        const char *a[5] = { "SET", keys[k], "1", "PX", "10000" };
        const size_t l[5] = { 3, kl, 1, 2, 5 };
        memcpy(argv[k], a, sizeof a);
        memcpy(lens[k], l, sizeof l);
        cmds[k] = (rcmd){ 5, argv[k], lens[k] };
        k++;
    }
    if ((rc = pipeline(st, cmds, k, r)) != RC_OK)
        goto out;
    for (size_t j = 0; j < k; j++)
        if (r[j]->type == REDIS_REPLY_ERROR && rc == RC_OK)
            rc = reply_error(r[j]);
    free_replies(r, k);
out:
    free(keys);
    free(argv);
    free(lens);
    free(cmds);
    free(r);
    return rc;
}

/* Cluster: SCAN walks one node's keys, so each primary of the map is
 * walked in turn; the records of each page are read in one round trip.
 * During a slot migration a session may be met twice or not at all (as
 * SCAN promises on one Redis for keys changed meanwhile). */
static rc_t cluster_scan(redis_store *st, int64_t now, store_each_fn fn, void *arg)
{
    redis_nodes *nd = nodes_of(st);
    const redis_slot_map *m = nd ? redis_nodes_map(nd, 0) : NULL;
    if (m == NULL)
        return RC_UNAVAILABLE;
    size_t nn = m->nnodes;
    redis_node *nodes = calloc(nn, sizeof *nodes); /* the map may change meanwhile */
    char match[KEY_MAX];
    buf_t rec = BUF_INIT;
    rc_t rc = RC_NOMEM;
    if (nodes == NULL)
        return rc;
    memcpy(nodes, m->nodes, nn * sizeof *nodes);
    snprintf(match, sizeof match, "%s:{*}:s:*", st->url.prefix);
    rc = RC_OK;
    int stop = 0;
    for (size_t j = 0; j < nn && rc == RC_OK && !stop; j++) {
        char cursor[32] = "0";
        do {
            redisReply *r, **got = NULL;
            const char *sa[] = { "SCAN", cursor, "MATCH", match, "COUNT", "1000" };
            size_t sl[] = { 4, strlen(cursor), 5, strlen(match), 5, 4 };
            rcmd scan = { 6, sa, sl };
            if ((rc = redis_nodes_at(nd, nodes[j].host, nodes[j].port, &scan, &r, 0)) != RC_OK)
                break;
            if (r->type == REDIS_REPLY_ERROR) {
                rc = reply_error(r);
                freeReplyObject(r);
                break;
            }
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                r->element[0]->type != REDIS_REPLY_STRING ||
                r->element[0]->len >= sizeof cursor || r->element[1]->type != REDIS_REPLY_ARRAY) {
                freeReplyObject(r);
                rc = RC_UNAVAILABLE;
                break;
            }
            memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
            redisReply *keys = r->element[1];
            size_t nk = keys->elements;
            rcmd *gets = calloc(nk ? nk : 1, sizeof *gets);
            const char *(*ga)[2] = calloc(nk ? nk : 1, sizeof *ga);
            size_t (*gl)[2] = calloc(nk ? nk : 1, sizeof *gl);
            got = calloc(nk ? nk : 1, sizeof(redisReply *));
            if (gets == NULL || ga == NULL || gl == NULL || got == NULL)
                rc = RC_NOMEM;
            for (size_t i = 0; rc == RC_OK && i < nk; i++) {
                ga[i][0] = "GET", gl[i][0] = 3;
                ga[i][1] = keys->element[i]->str, gl[i][1] = keys->element[i]->len;
                gets[i] = (rcmd){ 2, ga[i], gl[i] };
            }
            if (rc == RC_OK && nk > 0 && (rc = pipeline(st, gets, nk, got)) == RC_OK) {
                for (size_t i = 0; i < nk; i++) {
                    session_t sess;
                    const char *id = strstr(keys->element[i]->str, "}:s:");
                    rc_t g = RC_NOT_FOUND;
                    if (id != NULL && session_id_valid(id + 4, strlen(id + 4)))
                        g = live_record(got[i], now, &rec, &sess);
                    if (g == RC_OK && !stop)
                        stop = fn(&sess, arg);
                    else if (g != RC_OK && g != RC_NOT_FOUND && rc == RC_OK)
                        rc = g;
                }
                free_replies(got, nk);
            }
            free(gets);
            free(ga);
            free(gl);
            free(got);
            freeReplyObject(r);
        } while (rc == RC_OK && !stop && strcmp(cursor, "0") != 0);
    }
    buf_free(&rec);
    free(nodes);
    return rc;
}

static rc_t redis_scan(store_t *base, int64_t now, store_each_fn fn, void *arg)
{
    redis_store *st = (redis_store *)base;
    char cursor[32] = "0";
    rc_t rc = RC_OK;
    buf_t rec = BUF_INIT;
    if (st->cluster != NULL)
        return cluster_scan(st, now, fn, arg);
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
    redis_sentinel_free(st->sentinel);
    redis_nodes_shared_free(st->cluster);
    explicit_bzero(&st->url, sizeof st->url); /* the password */
    free(st);
}

/* Opens redis:// (kind REDIS_URL_PLAIN) or redis-sentinel:// (kind
 * REDIS_URL_SENTINEL) at target. */
static rc_t open_kind(redis_url_kind kind, const store_ops *ops, const char *target,
                      const store_options *opt, store_t **out, char *err, size_t errlen)
{
    pthread_once(&scripts_once, scripts_hash);
    redis_store *st = calloc(1, sizeof *st);
    if (st == NULL) {
        snprintf(err, errlen, "STORE_URL: out of memory");
        return RC_NOMEM;
    }
    st->base.ops = ops;
    st->base.remote = 1;
    rc_t rc = store_redis_url_parse_as(kind, target, strlen(target), &st->url, err, errlen);
    if (rc != RC_OK) {
        free(st);
        return rc;
    }
    int64_t ms = opt->timeout_ms > 0 ? opt->timeout_ms : 1000;
    st->timeout_ms = ms;
    st->timeout.tv_sec = ms / 1000;
    st->timeout.tv_usec = (ms % 1000) * 1000;
    st->wait_replicas = opt->wait_replicas > 0 ? opt->wait_replicas : 0;
    st->wait_timeout_ms = opt->wait_timeout_ms > 0 ? opt->wait_timeout_ms : 500;
    snprintf(st->wait_n, sizeof st->wait_n, "%lld", (long long)st->wait_replicas);
    snprintf(st->wait_ms, sizeof st->wait_ms, "%lld", (long long)st->wait_timeout_ms);
    atomic_init(&st->wait_warned_ms, 0);
    atomic_init(&st->wait_short, 0);
    if (kind == REDIS_URL_SENTINEL)
        st->sentinel = redis_sentinel_new(st->url.hosts, st->url.nhosts, st->url.master,
                                          opt->sentinel_password, ms);
    else if (kind == REDIS_URL_CLUSTER)
        st->cluster = redis_nodes_shared_new(&st->url, ms);
    else
        st->host = resolve_new(st->url.host);
    if (st->sentinel == NULL && st->host == NULL && st->cluster == NULL) {
        snprintf(err, errlen, "STORE_URL: out of memory");
        explicit_bzero(&st->url, sizeof st->url);
        free(st);
        return RC_NOMEM;
    }
    if (pthread_key_create(&st->conn_key, conn_free) != 0) {
        snprintf(err, errlen, "STORE_URL: out of thread keys");
        resolve_free(st->host);
        redis_sentinel_free(st->sentinel);
        redis_nodes_shared_free(st->cluster);
        explicit_bzero(&st->url, sizeof st->url);
        free(st);
        return RC_ERR;
    }
    /* Redis may be down at start: the service starts anyway, answers 503
     * and reconnects when it is back. Say so once. */
    if (ready_write(st) != RC_OK) {
        if (kind == REDIS_URL_SENTINEL)
            log_msg(LOG_WARN, "redis-sentinel: no primary of \"%s\" answers yet (Sentinels "
                    "%s:%d...); will retry", st->url.master, st->url.host, st->url.port);
        else if (kind == REDIS_URL_CLUSTER)
            log_msg(LOG_WARN, "redis-cluster: not every slot's primary answers yet (seeds "
                    "%s:%d...); will retry", st->url.host, st->url.port);
        else
            log_msg(LOG_WARN, "redis at %s:%d does not answer yet; will retry", st->url.host,
                    st->url.port);
    }
    *out = &st->base;
    return RC_OK;
}

static rc_t redis_open(const char *target, const store_options *opt, store_t **out,
                       char *err, size_t errlen)
{
    return open_kind(REDIS_URL_PLAIN, &store_redis_ops, target, opt, out, err, errlen);
}

static rc_t sentinel_open(const char *target, const store_options *opt, store_t **out,
                          char *err, size_t errlen)
{
    return open_kind(REDIS_URL_SENTINEL, &store_redis_sentinel_ops, target, opt, out, err,
                     errlen);
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

static rc_t cluster_open(const char *target, const store_options *opt, store_t **out,
                         char *err, size_t errlen)
{
    return open_kind(REDIS_URL_CLUSTER, &store_redis_cluster_ops, target, opt, out, err, errlen);
}

/* The same store, its primary found through Sentinels. */
const store_ops store_redis_sentinel_ops = {
    .scheme = "redis-sentinel",
    .open = sentinel_open,
    .close = redis_close,
    .list = redis_list,
    .batch = redis_batch,
    .touch = redis_touch,
    .purge = redis_purge,
    .scan = redis_scan,
    .count = NULL,
};

/* The same store on a Redis Cluster: keys placed by hash tags, commands
 * routed by slot (redis_nodes.c). */
const store_ops store_redis_cluster_ops = {
    .scheme = "redis-cluster",
    .open = cluster_open,
    .close = redis_close,
    .list = redis_list,
    .batch = redis_batch,
    .touch = redis_touch,
    .purge = redis_purge,
    .scan = redis_scan,
    .count = NULL,
};
