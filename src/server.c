/* server.c -- process lifecycle shared by sessiond and the split services. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "config.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "store.h"

typedef struct purger {
    store_t *store;
    int64_t interval;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
} purger;

static void *purge_loop(void *arg)
{
    purger *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += p->interval;
        while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
            ;
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->lock);
        size_t n = 0;
        rc_t rc = store_purge(p->store, (int64_t)time(NULL), &n);
        if (rc != RC_OK)
            log_msg(LOG_WARN, "purge: %s", rc_str(rc));
        else if (n)
            log_msg(LOG_DEBUG, "purge: removed %zu expired session(s)", n);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int server_main(const char *name, unsigned groups)
{
    config cfg;
    char err[512];
    store_t *store = NULL;
    int status = 1;
    sigset_t sigs;

    log_init(name, LOG_INFO);
    if (config_load(&cfg, err, sizeof err) != RC_OK) {
        fprintf(stderr, "%s: config: %s\n", name, err);
        config_free(&cfg);
        return 2;
    }
    log_set_level((log_level)cfg.log_level);

    /* Signals are taken by sigwait below; every thread inherits the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    store_options opt = { .map_size = cfg.lmdb_map_size, .timeout_ms = cfg.redis_timeout_ms,
                          .sync = (int)cfg.lmdb_sync };
    rc_t rc = store_open(cfg.store_url, &opt, &store, err, sizeof err);
    if (rc != RC_OK) {
        fprintf(stderr, "%s: config: %s\n", name, err);
        config_free(&cfg);
        return rc == RC_INVALID ? 2 : 1;
    }

    http_service svc = {
        .cfg = &cfg,
        .store = store,
        .policy = {
            .key = (const unsigned char *)cfg.jwt_secret,
            .key_len = cfg.jwt_secret_len,
            .issuer = cfg.jwt_issuer,
            .audience = cfg.jwt_audience,
            .leeway = cfg.jwt_leeway,
            .admin_scope = cfg.admin_scope,
        },
        .routes = handlers_routes,
        .nroutes = handlers_nroutes,
        .groups = groups | GROUP_ALWAYS,
        .metric_names = handlers_metric_names,
        .nmetrics = handlers_nmetrics,
        .metric_other = handlers_metric_other,
    };
    purger p = { .store = store, .interval = cfg.purge_interval,
                 .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };
    pthread_t purge_thread;
    int purging = 0;

    if (http_start(&svc, err, sizeof err) != RC_OK) {
        fprintf(stderr, "%s: %s\n", name, err);
        goto out;
    }
    if (pthread_create(&purge_thread, NULL, purge_loop, &p) == 0)
        purging = 1;
    else
        log_msg(LOG_WARN, "purge thread not started: expired sessions stay until read");

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    log_msg(LOG_INFO, "signal %d: shutting down", sig);
    status = 0;
out:
    http_stop(&svc);
    if (purging) {
        pthread_mutex_lock(&p.lock);
        p.stop = 1;
        pthread_cond_signal(&p.wake);
        pthread_mutex_unlock(&p.lock);
        pthread_join(purge_thread, NULL);
    }
    store_close(store);
    config_free(&cfg);
    return status;
}
