/* store.c -- the registry of stores by STORE_URL scheme. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "metrics.h"
#include "store.h"
#include "store_lmdb.h"
#include "store_redis.h"

static const store_ops *const registry[] = {
    &store_lmdb_ops,
    &store_redis_ops,
    &store_redis_sentinel_ops,
    &store_redis_cluster_ops,
};

rc_t store_open(const char *url, const store_options *opt, store_t **out,
                char *err, size_t errlen)
{
    const char *sep = strstr(url, "://");
    *out = NULL;
    if (sep == NULL) {
        snprintf(err, errlen, "STORE_URL: not a scheme://... URL");
        return RC_INVALID;
    }
    size_t slen = (size_t)(sep - url);
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++) {
        const store_ops *ops = registry[i];
        if (strlen(ops->scheme) == slen && memcmp(ops->scheme, url, slen) == 0)
            return ops->open(sep + 3, opt, out, err, errlen);
    }
    snprintf(err, errlen,
             "STORE_URL: unknown scheme \"%.*s\" (expected lmdb, redis, redis-sentinel or redis-cluster)",
             (int)(slen > 20 ? 20 : slen), url);
    return RC_INVALID;
}

void store_close(store_t *st)
{
    if (st)
        st->ops->close(st);
}

void store_on_close(store_t *st, store_close_fn fn, void *arg)
{
    st->on_close = fn;
    st->on_close_arg = arg;
}

void store_tell_closed(store_t *st, store_close_reason why, const char *id, str_t user)
{
    if (st->on_close != NULL)
        st->on_close(st->on_close_arg, why, id, user);
}

const char *store_scheme(const store_t *st)
{
    return st->ops->scheme;
}

/* ---- timed calls ---- */

enum { OP_PUT, OP_GET, OP_DEL, OP_LIST, OP_DEL_USER, OP_TOUCH, OP_PURGE, OP_PING, OP_SCAN,
       OP_COUNT, OP_SWAP, NOPS };
const char *const store_op_names[NOPS] = {
    "put", "get", "del", "list", "del_user", "touch", "purge", "ping", "scan", "count", "swap",
};
const unsigned store_nops = NOPS;

static rc_t timed(unsigned op, uint64_t t0, rc_t rc)
{
    metrics_store(op, rc, clock_us() - t0);
    return rc;
}

static int id_ok(const char *id)
{
    return id != NULL && session_id_valid(id, strnlen(id, SESSION_ID_MAX + 1));
}

static int user_ok(str_t user)
{
    return user.p != NULL && user.len > 0 && user.len <= SESSION_USER_MAX;
}

/* The single calls are batches of one: a backend implements each operation
 * once, in its batch. */
static void one(store_t *st, store_op *o)
{
    store_batch(st, &o, 1);
}

rc_t store_put(store_t *st, const session_t *s)
{
    store_op o = { .kind = STORE_OP_PUT, .s = s, .now = s->created_at };
    one(st, &o);
    return o.rc;
}

rc_t store_get(store_t *st, const char *id, int64_t now, buf_t *rec)
{
    store_op o = { .kind = STORE_OP_GET, .id = id, .now = now, .rec = rec };
    one(st, &o);
    return o.rc;
}

rc_t store_del(store_t *st, const char *id, str_t owner, int64_t now)
{
    store_op o = { .kind = STORE_OP_DEL, .id = id, .user = owner, .now = now };
    one(st, &o);
    return o.rc;
}

rc_t store_list(store_t *st, str_t user, int64_t now, store_each_fn fn, void *arg)
{
    if (!user_ok(user))
        return RC_OK;
    uint64_t t0 = clock_us();
    return timed(OP_LIST, t0, st->ops->list(st, user, now, fn, arg));
}

rc_t store_del_user(store_t *st, str_t user, const char *except, int64_t now, size_t *count)
{
    store_op o = { .kind = STORE_OP_DEL_USER, .user = user, .id = except, .now = now };
    one(st, &o);
    *count = o.count;
    return o.rc;
}

void store_batch(store_t *st, store_op *const *ops, size_t n)
{
    store_op *todo[64];
    static const unsigned op_of[] = { [STORE_OP_GET] = OP_GET, [STORE_OP_PUT] = OP_PUT,
                                      [STORE_OP_DEL] = OP_DEL, [STORE_OP_DEL_USER] = OP_DEL_USER,
                                      [STORE_OP_PING] = OP_PING, [STORE_OP_LIST] = OP_LIST,
                                      [STORE_OP_TOUCH] = OP_TOUCH, [STORE_OP_SWAP] = OP_SWAP,
                                      [STORE_OP_COUNT] = OP_COUNT };
    while (n > 0) {
        /* the same checks as the single calls; at most 64 operations a batch */
        size_t k = 0, used = 0;
        for (; used < n && k < sizeof todo / sizeof todo[0]; used++) {
            store_op *w = ops[used];
            w->rc = RC_OK;
            w->count = 0;
            if ((w->kind == STORE_OP_DEL || w->kind == STORE_OP_GET ||
                 w->kind == STORE_OP_TOUCH || w->kind == STORE_OP_SWAP) && !id_ok(w->id))
                w->rc = RC_NOT_FOUND;
            else if (w->kind == STORE_OP_COUNT)
                w->rc = store_count(st, &w->count);
            else if (w->kind == STORE_OP_LIST)
                w->rc = store_list(st, w->user, w->now, w->each, w->arg);
            else if (w->kind == STORE_OP_DEL_USER && !user_ok(w->user))
                w->rc = RC_OK; /* such a user has no sessions */
            else
                todo[k++] = w;
        }
        if (k > 0) {
            uint64_t t0 = clock_us();
            st->ops->batch(st, todo, k);
            uint64_t dt = clock_us() - t0;
            for (size_t i = 0; i < k; i++)
                metrics_store(op_of[todo[i]->kind], todo[i]->rc, dt);
        }
        ops += used;
        n -= used;
    }
}

rc_t store_touch_many(store_t *st, const char (*ids)[SESSION_ID_MAX + 1], size_t n,
                      int64_t last_seen, int64_t now)
{
    if (n == 0)
        return RC_OK;
    uint64_t t0 = clock_us();
    return timed(OP_TOUCH, t0, st->ops->touch(st, ids, n, last_seen, now));
}

rc_t store_touch(store_t *st, const char *id, int64_t last_seen, int64_t now)
{
    char one[1][SESSION_ID_MAX + 1];
    if (!id_ok(id))
        return RC_NOT_FOUND;
    memcpy(one[0], id, strlen(id) + 1);
    return store_touch_many(st, (const char (*)[SESSION_ID_MAX + 1])one, 1, last_seen, now);
}

rc_t store_purge(store_t *st, int64_t now, size_t *count)
{
    uint64_t t0 = clock_us();
    return timed(OP_PURGE, t0, st->ops->purge(st, now, count));
}

void store_tend(store_t *st)
{
    if (st->ops->tend != NULL)
        st->ops->tend(st);
}

rc_t store_ping(store_t *st)
{
    store_op o = { .kind = STORE_OP_PING };
    one(st, &o);
    return o.rc;
}

rc_t store_scan(store_t *st, int64_t now, store_each_fn fn, void *arg)
{
    uint64_t t0 = clock_us();
    return timed(OP_SCAN, t0, st->ops->scan(st, now, fn, arg));
}

rc_t store_count(store_t *st, size_t *n)
{
    *n = 0;
    if (st->ops->count == NULL)
        return RC_UNSUPPORTED;
    uint64_t t0 = clock_us();
    return timed(OP_COUNT, t0, st->ops->count(st, n));
}
