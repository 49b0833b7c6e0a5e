/* server.c -- process lifecycle shared by sessiond and the split services. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "config.h"
#include "clock.h"
#include "api.h"
#include "exec.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "touch.h"

/* The background thread: writes noted last_seen_at values every second,
 * and at once when a note is urgent (touch.h); runs the store's own
 * housekeeping (store_tend) every second and purges expired sessions every
 * PURGE_INTERVAL seconds. */

/* Urgent writes start at least this long after the last one ended: a lone
 * urgent note is written at once, a storm of them (a store whose sessions
 * are all validated after a minute) in batches, not a commit each. With
 * 100,000 such sessions validated at 32 connections on LMDB, writing each
 * batch at once took 2,700 commits and 2.1 s of the writer's 5 s; 2 ms
 * apart, 380 commits and 0.65 s (docs/BENCHMARKS.md, the eighth pass). A
 * purge runs on this thread too: urgent writes wait behind it. */
#define URGENT_GAP_US 2000
typedef struct housekeeper {
    store_t *store;
    touch_queue *touches;
    int64_t purge_interval;
} housekeeper;

static void flush_touches(housekeeper *h)
{
    rc_t rc = touch_queue_flush(h->touches, h->store, clock_wall());
    if (rc != RC_OK)
        log_msg(LOG_WARN, "last_seen_at not recorded (kept for the next write): %s", rc_str(rc));
}

static void *housekeeping(void *arg)
{
    housekeeper *h = arg;
    int64_t next_purge = clock_wall() + h->purge_interval;
    uint64_t next_tick = clock_ms() + 1000, flushed = clock_us() - URGENT_GAP_US;
    while (touch_queue_wait(h->touches, next_tick)) {
        uint64_t since = clock_us() - flushed;
        if (since < URGENT_GAP_US) {
            struct timespec gap = { 0, (long)(URGENT_GAP_US - since) * 1000L };
            nanosleep(&gap, NULL);
        }
        flush_touches(h);
        flushed = clock_us();
        if (clock_ms() < next_tick)
            continue; /* woken by an urgent note */
        next_tick = clock_ms() + 1000;
        store_tend(h->store);
        log_flush();
        int64_t now = clock_wall();
        if (now >= next_purge) {
            size_t n = 0;
            rc_t rc = store_purge(h->store, now, &n);
            if (rc != RC_OK)
                log_msg(LOG_WARN, "purge: %s", rc_str(rc));
            else if (n) /* each counted and logged as it was told (told_closed) */
                log_msg(LOG_DEBUG, "purge: removed %zu expired session(s)", n);
            next_purge = now + h->purge_interval;
        }
    }
    flush_touches(h); /* what validate noted last */
    return NULL;
}

/* Every close a store makes, counted and logged once: the store tells
 * (store_on_close) after the close is durable, on the thread that made it. */
_Static_assert((int)STORE_CLOSE_REASONS == (int)METRICS_CLOSE_REASONS &&
                   (int)STORE_CLOSED_ALL == (int)METRICS_CLOSED_ALL &&
                   (int)STORE_EVICTED == (int)METRICS_CLOSED_EVICTED &&
                   (int)STORE_TOKEN_REUSE == (int)METRICS_CLOSED_TOKEN_REUSE,
               "store_close_reason and metrics_close_reason in the same order");

static void told_closed(void *arg, store_close_reason why, const char *id, str_t user)
{
    (void)arg;
    metrics_close_reason reason = (metrics_close_reason)why; /* the same order */
    metrics_sessions_closed(reason, 1);
    log_closed(metrics_close_reason_name(reason), id, user.p, user.len);
}

/* SIGHUP: the keys read again (JWT_JWKS_FILE, and JWT_SECRET and
 * JWT_SECRET_PREVIOUS from the .env, the real environment still winning)
 * and put in force whole; or, when anything in them is wrong, one error
 * line and the keys in force kept. Other settings are read at start only. */
static void reload_keys(keyring *ring)
{
    config next;
    keys *k = NULL;
    char err[512];
    if (config_reload(&next, err, sizeof err) != RC_OK ||
        keys_from_config(&next, &k, err, sizeof err) != RC_OK) {
        log_msg(LOG_ERROR, "reload refused, the keys in force are kept: %s", err);
    } else {
        log_msg(LOG_INFO, "reload: keys in force: JWT_SECRET%s, %zu JWKS key(s)",
                k->previous ? ", JWT_SECRET_PREVIOUS" : "", jwks_count(k->jwks));
        keyring_publish(ring, k);
    }
    config_free(&next);
    log_flush();
}

int server_main(const char *name, unsigned groups, int argc, char **argv)
{
    config cfg;
    char err[512];
    store_t *store = NULL;
    int status = 1;
    sigset_t sigs;

    if (argc == 2 && strcmp(argv[1], "--routes") == 0) {
        api_print_routes(stdout);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--routes]   (settings come from the environment and .env)\n",
                name);
        return 2;
    }
    /* Signals are taken by sigwait below; every thread inherits the mask.
     * Blocked first: a SIGHUP (a reload sent early, at boot) must never
     * end the process by its default action while it starts. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit fails the write (EFBIG): 503 */
    log_init(name, LOG_INFO);
    if (config_load(&cfg, err, sizeof err) != RC_OK) {
        fprintf(stderr, "%s: config: %s\n", name, err);
        config_free(&cfg);
        return 2;
    }
    log_set_level((log_level)cfg.log_level);
    keys *first = NULL;
    rc_t krc = keys_from_config(&cfg, &first, err, sizeof err);
    if (krc != RC_OK) {
        fprintf(stderr, "%s: %s%s\n", name, krc == RC_INVALID ? "config: " : "", err);
        config_free(&cfg);
        return krc == RC_INVALID ? 2 : 1;
    }
    keyring *ring = keyring_new(first);
    if (ring == NULL) {
        fprintf(stderr, "%s: out of memory\n", name);
        config_free(&cfg);
        return 1;
    }

    store_options opt = { .map_size = cfg.lmdb_map_size, .timeout_ms = cfg.redis_timeout_ms,
                          .sync = (store_sync)cfg.lmdb_sync,
                          .wait_replicas = cfg.redis_wait_replicas,
                          .wait_timeout_ms = cfg.redis_wait_timeout_ms,
                          .sentinel_password = cfg.redis_sentinel_password };
    rc_t rc = store_open(cfg.store_url, &opt, &store, err, sizeof err);
    if (rc != RC_OK) {
        fprintf(stderr, "%s: config: %s\n", name, err);
        keyring_free(ring);
        config_free(&cfg);
        return rc == RC_INVALID ? 2 : 1;
    }

    store_on_close(store, told_closed, NULL);
    http_service svc = { 0 };
    api app;
    exec *ex = NULL;
    housekeeper h = { .store = store, .touches = touch_queue_new(),
                      .purge_interval = cfg.purge_interval };
    pthread_t keeper;
    int keeping = 0;

    if (h.touches != NULL && pthread_create(&keeper, NULL, housekeeping, &h) == 0) {
        keeping = 1;
    } else {
        log_msg(LOG_WARN, "no background thread: last_seen_at is not recorded, "
                          "expired sessions are not purged");
    }
    if ((ex = exec_start(store, keeping ? h.touches : NULL)) == NULL) {
        fprintf(stderr, "%s: out of memory\n", name);
        goto out;
    }
    api_init(&app, &cfg, ring, ex, groups, &svc);
    if (http_start(&svc, err, sizeof err) != RC_OK) {
        fprintf(stderr, "%s: %s\n", name, err);
        goto out;
    }

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0 || sig == SIGHUP)
        if (sig == SIGHUP) {
            reload_keys(ring);
            sig = 0;
        }
    log_msg(LOG_INFO, "signal %d: shutting down (finishing requests in flight)", sig);
    http_drain(&svc, 10);
    status = 0;
out:
    exec_drain(ex); /* its queued jobs answered: no connection stays suspended */
    http_stop(&svc);
    exec_free(ex);
    if (keeping) {
        touch_queue_stop(h.touches);
        pthread_join(keeper, NULL);
    }
    touch_queue_free(h.touches);
    log_flush();
    store_close(store);
    keyring_free(ring); /* every thread that read it has ended (http_stop) */
    config_free(&cfg);
    return status;
}
