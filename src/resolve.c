/* resolve.c -- host names looked up off the request path (see resolve.h).
 *
 * The handle and its thread share one struct with a count of owners: the
 * handle drops its share in resolve_free, the thread when it sees `stop`
 * after its current lookup, and whichever is last frees it. So a shutdown
 * never waits for a stalled resolver. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include "log.h"
#include "resolve.h"

struct resolve {
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* the thread: a lookup is wanted, or stop */
    pthread_cond_t done;    /* the callers: a lookup finished */
    char *host;
    char addr[RESOLVE_ADDRS][RESOLVE_ADDR_MAX]; /* IPv4 first, as getaddrinfo found them */
    size_t naddr;           /* 0: none known yet */
    size_t cur;             /* the one in use */
    int want;               /* a lookup is asked for */
    int stop;
    int owners;             /* the handle and the thread */
    uint64_t lookups;       /* finished lookups, to tell waiters one ended */
    int numeric;            /* host is an address: no thread */
};

static void release(resolve_t *r)
{
    /* called with r->lock held; unlocks */
    int last = --r->owners == 0;
    pthread_mutex_unlock(&r->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->done);
    free(r->host);
    free(r);
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* One getaddrinfo, outside the lock: up to RESOLVE_ADDRS distinct
 * addresses as text, IPv4 ones first (as hiredis itself would try them: a
 * Redis bound to 127.0.0.1 is reached through "localhost" even where ::1
 * comes first). Returns how many. */
static size_t look_up(const char *host, char out[RESOLVE_ADDRS][RESOLVE_ADDR_MAX])
{
    struct addrinfo hints, *res = NULL;
    size_t n = 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        log_msg(LOG_WARN, "resolve %.200s: %s", host,
                rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return 0;
    }
    for (int family = AF_INET; family; family = family == AF_INET ? AF_INET6 : 0) {
        for (const struct addrinfo *ai = res; ai != NULL && n < RESOLVE_ADDRS; ai = ai->ai_next) {
            if (ai->ai_family != family)
                continue;
            const void *a = family == AF_INET6
                ? (const void *)&((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr
                : (const void *)&((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
            if (inet_ntop(family, a, out[n], RESOLVE_ADDR_MAX) == NULL)
                continue;
            int seen = 0;
            for (size_t i = 0; i < n && !seen; i++)
                seen = strcmp(out[i], out[n]) == 0;
            if (!seen)
                n++;
        }
    }
    freeaddrinfo(res);
    return n;
}

static void *lookups(void *arg)
{
    resolve_t *r = arg;
    char addr[RESOLVE_ADDRS][RESOLVE_ADDR_MAX];
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        if (!r->want) {
            struct timespec until;
            deadline_in(&until, RESOLVE_REFRESH_S * 1000);
            if (pthread_cond_timedwait(&r->wake, &r->lock, &until) == ETIMEDOUT)
                r->want = 1; /* the address may have moved */
            continue;
        }
        r->want = 0;
        pthread_mutex_unlock(&r->lock);
        size_t n = look_up(r->host, addr);
        pthread_mutex_lock(&r->lock);
        if (n > 0) {
            memcpy(r->addr, addr, sizeof addr);
            r->naddr = n;
            r->cur = 0;
        }
        r->lookups++;
        pthread_cond_broadcast(&r->done);
        if (!r->stop) {
            /* at most one lookup a second (connects failing, a name that
             * does not resolve) */
            struct timespec pause;
            deadline_in(&pause, 1000);
            while (!r->stop && pthread_cond_timedwait(&r->wake, &r->lock, &pause) != ETIMEDOUT)
                ;
        }
    }
    release(r);
    return NULL;
}

resolve_t *resolve_new(const char *host)
{
    resolve_t *r = calloc(1, sizeof *r);
    if (r == NULL || (r->host = strdup(host)) == NULL) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    pthread_cond_init(&r->done, NULL);
    unsigned char bin[16];
    if (strlen(host) < RESOLVE_ADDR_MAX &&
        (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1)) {
        memcpy(r->addr[0], host, strlen(host) + 1);
        r->naddr = 1;
        r->numeric = 1;
        r->owners = 1;
        return r;
    }
    r->owners = 2;
    r->want = 1; /* look it up at once, before the first request needs it */
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int started = pthread_create(&t, &attr, lookups, r) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        pthread_mutex_lock(&r->lock);
        r->owners = 1;
        release(r);
        return NULL;
    }
    return r;
}

void resolve_free(resolve_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->wake);
    release(r);
}

rc_t resolve_get(resolve_t *r, int64_t wait_ms, char out[RESOLVE_ADDR_MAX])
{
    pthread_mutex_lock(&r->lock);
    if (r->naddr == 0) {
        uint64_t seen = r->lookups;
        struct timespec until;
        deadline_in(&until, wait_ms > 0 ? wait_ms : 0);
        r->want = 1;
        pthread_cond_signal(&r->wake);
        while (r->naddr == 0 && r->lookups == seen &&
               pthread_cond_timedwait(&r->done, &r->lock, &until) != ETIMEDOUT)
            ;
    }
    rc_t rc = r->naddr > 0 ? RC_OK : RC_UNAVAILABLE;
    if (rc == RC_OK)
        memcpy(out, r->addr[r->cur], RESOLVE_ADDR_MAX);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void resolve_stale(resolve_t *r, const char *addr)
{
    if (r->numeric)
        return;
    pthread_mutex_lock(&r->lock);
    if (r->naddr > 0 && strcmp(r->addr[r->cur], addr) == 0)
        r->cur = (r->cur + 1) % r->naddr; /* the next address, then a new lookup */
    if (r->cur == 0) {
        r->want = 1;
        pthread_cond_signal(&r->wake);
    }
    pthread_mutex_unlock(&r->lock);
}
