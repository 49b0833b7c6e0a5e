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
    char addr[RESOLVE_ADDR_MAX];
    int have;               /* addr holds an address */
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

/* One getaddrinfo, outside the lock: the first address, as text. */
static int look_up(const char *host, char out[RESOLVE_ADDR_MAX])
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        log_msg(LOG_WARN, "resolve %.200s: %s", host,
                rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return 0;
    }
    const void *a = res->ai_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
    int ok = inet_ntop(res->ai_family, a, out, RESOLVE_ADDR_MAX) != NULL;
    freeaddrinfo(res);
    return ok;
}

static void *lookups(void *arg)
{
    resolve_t *r = arg;
    char addr[RESOLVE_ADDR_MAX];
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
        int ok = look_up(r->host, addr);
        pthread_mutex_lock(&r->lock);
        if (ok) {
            memcpy(r->addr, addr, sizeof addr);
            r->have = 1;
        }
        r->lookups++;
        pthread_cond_broadcast(&r->done);
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
        memcpy(r->addr, host, strlen(host) + 1);
        r->have = r->numeric = 1;
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
    if (!r->have && !r->numeric) {
        uint64_t seen = r->lookups;
        struct timespec until;
        deadline_in(&until, wait_ms > 0 ? wait_ms : 0);
        r->want = 1;
        pthread_cond_signal(&r->wake);
        while (!r->have && r->lookups == seen &&
               pthread_cond_timedwait(&r->done, &r->lock, &until) != ETIMEDOUT)
            ;
    }
    rc_t rc = r->have ? RC_OK : RC_UNAVAILABLE;
    if (rc == RC_OK)
        memcpy(out, r->addr, RESOLVE_ADDR_MAX);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void resolve_stale(resolve_t *r)
{
    if (r->numeric)
        return;
    pthread_mutex_lock(&r->lock);
    r->want = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}
