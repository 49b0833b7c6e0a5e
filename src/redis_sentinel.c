/* redis_sentinel.c -- the primary of a master name, asked of the Sentinels
 * and shared by the threads of the process (see redis_sentinel.h).
 *
 * One lock guards the primary last named and the state of a discovery in
 * progress; a discovery itself runs outside the lock, on the thread that
 * found the primary unknown or too old for it, while the others that need
 * one wait for its answer (a condition variable on the monotonic clock,
 * never past their deadline). Connections to the Sentinels are opened for
 * one discovery and closed after it: discoveries happen on a failover, a
 * start, or a failed connection, not per request. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "log.h"
#include "redis_sentinel.h"

#define NAMES_MAX 16     /* distinct host names of primaries looked up in a process's life */
#define WARN_EVERY_MS 5000

typedef struct named_host {
    char host[REDIS_SENTINEL_HOST_MAX + 1];
    resolve_t *res;
} named_host;

struct redis_sentinel {
    pthread_mutex_t lock;
    pthread_cond_t done; /* a discovery ended (CLOCK_MONOTONIC) */
    /* guarded by lock: */
    char host[REDIS_SENTINEL_HOST_MAX + 1]; /* the primary as named */
    char addr[RESOLVE_ADDR_MAX];            /* ... its numeric address */
    int port;                               /* 0: none named yet */
    int known;                              /* named, and not forgotten since */
    uint64_t named_us;   /* when the discovery that named it began (clock_us) */
    int asking;          /* a thread is asking the Sentinels */
    size_t first;        /* the Sentinel asked first */
    uint64_t discoveries;
    /* only the thread asking (asking == 1) touches these: */
    named_host names[NAMES_MAX];
    size_t nnames;
    uint64_t warned_ms;
    /* fixed at creation: */
    size_t n;
    redis_url_host hosts[REDIS_URL_HOSTS_MAX];
    resolve_t *res[REDIS_URL_HOSTS_MAX];
    char master[REDIS_URL_MASTER_MAX + 1];
    char *password; /* NULL: no AUTH */
    int64_t timeout_ms;
};

/* ---- pure parsers ---- */

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* A host as a Sentinel may name one: an IPv4 or IPv6 address, or a name. */
static int host_ok(const char *p, size_t len)
{
    if (len == 0 || len > REDIS_SENTINEL_HOST_MAX || memchr(p, '\0', len) != NULL)
        return 0;
    if (memchr(p, ':', len) != NULL) {
        char text[REDIS_SENTINEL_HOST_MAX + 1];
        unsigned char bin[16];
        memcpy(text, p, len);
        text[len] = '\0';
        return inet_pton(AF_INET6, text, bin) == 1;
    }
    for (size_t i = 0; i < len; i++)
        if (!name_char(p[i]))
            return 0;
    return 1;
}

/* Decimal 1..65535 without sign or leading zero. */
static int port_of(const char *p, size_t len)
{
    if (len == 0 || len > 5 || p[0] == '0')
        return 0;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        n = n * 10 + (p[i] - '0');
    }
    return n <= 65535 ? (int)n : 0;
}

rc_t redis_sentinel_parse_master(const redisReply *r, char host[REDIS_SENTINEL_HOST_MAX + 1],
                                 int *port)
{
    host[0] = '\0';
    *port = 0;
    if (r == NULL)
        return RC_INVALID;
    if (r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_ARRAY && r->elements == 0))
        return RC_NOT_FOUND;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element == NULL)
        return RC_INVALID;
    const redisReply *h = r->element[0], *p = r->element[1];
    if (h == NULL || p == NULL || h->type != REDIS_REPLY_STRING || h->str == NULL ||
        !host_ok(h->str, h->len))
        return RC_INVALID;
    int n = 0;
    if (p->type == REDIS_REPLY_STRING && p->str != NULL)
        n = port_of(p->str, p->len);
    else if (p->type == REDIS_REPLY_INTEGER && p->integer >= 1 && p->integer <= 65535)
        n = (int)p->integer;
    if (n == 0)
        return RC_INVALID;
    memcpy(host, h->str, h->len);
    host[h->len] = '\0';
    *port = n;
    return RC_OK;
}

rc_t redis_sentinel_parse_role(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element == NULL)
        return RC_INVALID;
    const redisReply *e = r->element[0];
    if (e == NULL || (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS) ||
        e->str == NULL)
        return RC_INVALID;
    return e->len == 6 && memcmp(e->str, "master", 6) == 0 ? RC_OK : RC_UNAVAILABLE;
}

/* ---- the shared primary ---- */

redis_sentinel *redis_sentinel_new(const redis_url_host *hosts, size_t nhosts,
                                   const char *master, const char *password,
                                   int64_t timeout_ms)
{
    if (nhosts == 0 || nhosts > REDIS_URL_HOSTS_MAX || strlen(master) > REDIS_URL_MASTER_MAX)
        return NULL;
    redis_sentinel *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->done, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->lock, NULL);
    s->n = nhosts;
    memcpy(s->hosts, hosts, nhosts * sizeof *hosts);
    memcpy(s->master, master, strlen(master) + 1);
    s->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    if (password != NULL && (s->password = strdup(password)) == NULL)
        goto fail;
    for (size_t i = 0; i < nhosts; i++)
        if ((s->res[i] = resolve_new(hosts[i].host)) == NULL)
            goto fail;
    return s;
fail:
    redis_sentinel_free(s);
    return NULL;
}

void redis_sentinel_free(redis_sentinel *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        resolve_free(s->res[i]);
    for (size_t i = 0; i < s->nnames; i++)
        resolve_free(s->names[i].res);
    if (s->password != NULL) {
        explicit_bzero(s->password, strlen(s->password));
        free(s->password);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->done);
    free(s);
}

static struct timeval tv_of(int64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    return tv;
}

/* Logs a discovery's trouble at most every WARN_EVERY_MS (the caller is the
 * thread asking). */
static int may_warn(redis_sentinel *s)
{
    uint64_t now = clock_ms();
    if (s->warned_ms != 0 && now - s->warned_ms < WARN_EVERY_MS)
        return 0;
    s->warned_ms = now;
    return 1;
}

/* Asks Sentinel i, by until_ms. RC_OK with host and *port; RC_NOT_FOUND
 * when it knows no primary of the master; RC_UNAVAILABLE when it does not
 * answer, or refuses (AUTH, not a Sentinel). */
static rc_t ask_one(redis_sentinel *s, size_t i, uint64_t until_ms,
                    char host[REDIS_SENTINEL_HOST_MAX + 1], int *port)
{
    char a[RESOLVE_ADDR_MAX];
    redisReply *auth = NULL, *r = NULL;
    redisContext *c = NULL;
    rc_t rc = RC_UNAVAILABLE;
    uint64_t now = clock_ms();
    if (now >= until_ms || resolve_get(s->res[i], (int64_t)(until_ms - now), a) != RC_OK)
        return RC_UNAVAILABLE;
    now = clock_ms();
    if (now >= until_ms)
        return RC_UNAVAILABLE;
    c = redisConnectWithTimeout(a, s->hosts[i].port, tv_of((int64_t)(until_ms - now)));
    if (c == NULL || c->err) {
        if (c != NULL)
            resolve_stale(s->res[i], a); /* its next address, then a new lookup */
        goto out;
    }
    now = clock_ms();
    if (now >= until_ms || redisSetTimeout(c, tv_of((int64_t)(until_ms - now))) != REDIS_OK)
        goto out;
    if (s->password != NULL) {
        const char *av[] = { "AUTH", s->password };
        size_t al[] = { 4, strlen(s->password) };
        redisAppendCommandArgv(c, 2, av, al);
    }
    const char *gv[] = { "SENTINEL", "get-master-addr-by-name", s->master };
    size_t gl[] = { 8, 23, strlen(s->master) };
    redisAppendCommandArgv(c, 3, gv, gl);
    if (s->password != NULL && (redisGetReply(c, (void **)&auth) != REDIS_OK || auth == NULL))
        goto out;
    if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
        goto out;
    if (auth != NULL && auth->type == REDIS_REPLY_ERROR) {
        if (may_warn(s))
            log_msg(LOG_WARN, "redis-sentinel: Sentinel %.255s:%d refused AUTH "
                    "(REDIS_SENTINEL_PASSWORD): %.200s", s->hosts[i].host, s->hosts[i].port,
                    auth->str);
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (may_warn(s))
            log_msg(LOG_WARN, "redis-sentinel: Sentinel %.255s:%d: %.200s", s->hosts[i].host,
                    s->hosts[i].port, r->str);
        goto out;
    }
    rc = redis_sentinel_parse_master(r, host, port);
    if (rc == RC_INVALID) {
        if (may_warn(s))
            log_msg(LOG_WARN, "redis-sentinel: Sentinel %.255s:%d gave a malformed answer to "
                    "SENTINEL get-master-addr-by-name", s->hosts[i].host, s->hosts[i].port);
        rc = RC_UNAVAILABLE;
    }
out:
    if (auth != NULL)
        freeReplyObject(auth);
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    return rc;
}

/* The numeric address of host (as named by a Sentinel), by deadline_ms. */
static rc_t address_of(redis_sentinel *s, const char *host, uint64_t deadline_ms,
                       char out[RESOLVE_ADDR_MAX])
{
    unsigned char bin[16];
    if (strlen(host) < RESOLVE_ADDR_MAX &&
        (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1)) {
        memcpy(out, host, strlen(host) + 1);
        return RC_OK;
    }
    named_host *nh = NULL;
    for (size_t i = 0; i < s->nnames && nh == NULL; i++)
        if (strcmp(s->names[i].host, host) == 0)
            nh = &s->names[i];
    if (nh == NULL) {
        if (s->nnames == NAMES_MAX) {
            if (may_warn(s))
                log_msg(LOG_ERROR, "redis-sentinel: more than %d host names of primaries "
                        "named; restart the process", NAMES_MAX);
            return RC_UNAVAILABLE;
        }
        resolve_t *res = resolve_new(host);
        if (res == NULL)
            return RC_UNAVAILABLE;
        nh = &s->names[s->nnames++];
        memcpy(nh->host, host, strlen(host) + 1);
        nh->res = res;
    }
    uint64_t now = clock_ms();
    if (now >= deadline_ms)
        return RC_UNAVAILABLE;
    return resolve_get(nh->res, (int64_t)(deadline_ms - now), out);
}

/* Asks the Sentinels from *first on, each bounded by the timeout and
 * deadline_ms; *first becomes the one that answered, or moves past those
 * that failed. */
static rc_t ask_all(redis_sentinel *s, size_t *first, uint64_t deadline_ms,
                    char host[REDIS_SENTINEL_HOST_MAX + 1], int *port)
{
    size_t start = *first, unknown = 0, failed = 0;
    for (size_t k = 0; k < s->n; k++) {
        size_t i = (start + k) % s->n;
        uint64_t now = clock_ms();
        if (now >= deadline_ms)
            break;
        uint64_t until = deadline_ms - now > (uint64_t)s->timeout_ms
            ? now + (uint64_t)s->timeout_ms : deadline_ms;
        rc_t rc = ask_one(s, i, until, host, port);
        if (rc == RC_OK) {
            *first = i;
            return RC_OK;
        }
        if (rc == RC_NOT_FOUND)
            unknown++;
        else
            failed++;
        if (*first == i)
            *first = (i + 1) % s->n;
    }
    if (unknown + failed > 0 && may_warn(s))
        log_msg(LOG_WARN, "redis-sentinel: no primary of \"%s\" named: %zu of %zu Sentinels "
                "asked did not answer, %zu know none", s->master, failed, s->n, unknown);
    return RC_UNAVAILABLE;
}

static void wait_until_ms(redis_sentinel *s, uint64_t deadline_ms)
{
    struct timespec ts = { (time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L };
    pthread_cond_timedwait(&s->done, &s->lock, &ts);
}

rc_t redis_sentinel_primary(redis_sentinel *s, uint64_t not_before_us, uint64_t deadline_ms,
                            char addr[RESOLVE_ADDR_MAX], int *port)
{
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->known && s->named_us >= not_before_us) {
            memcpy(addr, s->addr, RESOLVE_ADDR_MAX);
            *port = s->port;
            pthread_mutex_unlock(&s->lock);
            return RC_OK;
        }
        if (!s->asking)
            break;
        if (clock_ms() >= deadline_ms) {
            pthread_mutex_unlock(&s->lock);
            return RC_UNAVAILABLE;
        }
        wait_until_ms(s, deadline_ms); /* another thread's discovery */
    }
    s->asking = 1;
    size_t first = s->first;
    pthread_mutex_unlock(&s->lock);

    uint64_t began = clock_us();
    char host[REDIS_SENTINEL_HOST_MAX + 1], a[RESOLVE_ADDR_MAX];
    int p = 0;
    rc_t rc = ask_all(s, &first, deadline_ms, host, &p);
    if (rc == RC_OK && (rc = address_of(s, host, deadline_ms, a)) != RC_OK && may_warn(s))
        log_msg(LOG_WARN, "redis-sentinel: the primary's name %.255s does not resolve", host);

    pthread_mutex_lock(&s->lock);
    int changed = 0;
    s->asking = 0;
    s->first = first;
    s->discoveries++;
    if (rc == RC_OK) {
        changed = s->port != p || strcmp(s->host, host) != 0;
        memcpy(s->host, host, sizeof host);
        memcpy(s->addr, a, sizeof a);
        s->port = p;
        s->known = 1;
        s->named_us = began;
        memcpy(addr, a, sizeof a);
        *port = p;
    }
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->lock);
    if (changed)
        log_msg(LOG_INFO, "redis-sentinel: the Sentinels name %.255s:%d as the primary of \"%s\"",
                host, p, s->master);
    return rc;
}

void redis_sentinel_forget(redis_sentinel *s, const char *addr, int port)
{
    pthread_mutex_lock(&s->lock);
    if (s->known && s->port == port && strcmp(s->addr, addr) == 0)
        s->known = 0;
    pthread_mutex_unlock(&s->lock);
}

uint64_t redis_sentinel_discoveries(redis_sentinel *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t n = s->discoveries;
    pthread_mutex_unlock(&s->lock);
    return n;
}
