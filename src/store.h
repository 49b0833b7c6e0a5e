/* store.h -- where sessions live: a small table of operations chosen by the
 * scheme of STORE_URL (lmdb://PATH, redis://... or redis-sentinel://...; the
 * registry is in store.c, so nothing else includes a backend's header).
 *
 * Stores know sessions as records (record.h) and nothing of tokens or HTTP.
 * Every call answers a core rc_t. All operations are safe to call from many
 * threads at once. "now" is passed in so expiry is decided by one clock. */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "rc.h"
#include "session.h"
#include "record.h"

typedef struct store store_t;

/* Why a session was closed (the contract's close reasons). */
typedef enum store_close_reason {
    STORE_CLOSED,      /* one DELETE /session/{id} */
    STORE_CLOSED_ALL,  /* DELETE /users/{user_id}/sessions */
    STORE_EXPIRED,     /* past expires_at, and removed by a purge or by a request that met it */
    STORE_IDLE,        /* unused for its idle timeout */
    STORE_EVICTED,     /* over SESSION_MAX_PER_USER, least recently used */
    STORE_TOKEN_REUSE, /* a replaced session token was used again */
    STORE_CLOSE_REASONS
} store_close_reason;

/* Told of each session a store removed (store_on_close): once, after the
 * removal is durable, on the thread that removed it. id and user are valid
 * during the call only. */
typedef void (*store_close_fn)(void *arg, store_close_reason why, const char *id, str_t user);

/* LMDB_SYNC, in the order of its names (config.c). */
typedef enum store_sync {
    STORE_SYNC_FULL, /* fsync data and meta on every commit (power-loss durable) */
    STORE_SYNC_META, /* fsync data only (a power loss may undo the last commit) */
    STORE_SYNC_NONE  /* no fsync (survives a crash of the process, not of the host) */
} store_sync;

typedef struct store_options {
    int64_t map_size;   /* lmdb: map size in bytes */
    int64_t timeout_ms; /* redis: connect and command timeout */
    store_sync sync;    /* lmdb */
    int64_t wait_replicas;   /* redis: WAIT for this many replicas after writes (0: no WAIT) */
    int64_t wait_timeout_ms; /* redis: WAIT's timeout (0: 500) */
    const char *sentinel_password; /* redis-sentinel: AUTH to the Sentinels (NULL: none) */
} store_options;

/* Called once per session by list; s is valid only during the call.
 * Return non-zero to stop early. It must not write to the store it is
 * called from (on LMDB a write could wait behind the read it runs in:
 * store_lmdb.c, map_hold). */
typedef int (*store_each_fn)(const session_t *s, void *arg);

/* One operation of a batch (store_batch): the arguments of the single call
 * it stands for, and that call's answer once applied. */
typedef enum store_op_kind {
    STORE_OP_GET,      /* get(id, now, rec) */
    STORE_OP_PUT,      /* put(s) */
    STORE_OP_DEL,      /* del(id, user as owner, now) */
    STORE_OP_DEL_USER, /* del_user(user, id as except, now, &count) */
    STORE_OP_PING,     /* ping() */
    STORE_OP_TOUCH,    /* a use of session id at now: last_seen_at = now */
    STORE_OP_SWAP,     /* replace id's record by s's, if it is still rec */
    STORE_OP_LIST,     /* list(user, now, each, arg): run alone, never batched */
    STORE_OP_COUNT     /* count(&count): answered by store.c, never by a backend */
} store_op_kind;

typedef struct store_op {
    store_op_kind kind;
    const session_t *s;
    const char *id;
    str_t user;
    int64_t now;
    buf_t *rec;   /* GET: receives the record; SWAP: the record expected,
                   * and the one found when it is another */
    store_close_reason why; /* DEL: the reason told (STORE_CLOSED unless set) */
    /* PUT: at most max_per_user live sessions per user (0: no cap), judged
     * in the same atomic step as the insert. At the cap, refuse answers
     * RC_LIMIT and writes nothing; otherwise the user's least recently used
     * live sessions (last_seen_at, created_at, id) are closed to make room
     * and their ids appended to evicted (NUL-terminated, one after the
     * other; may be NULL). RC_EXISTS (id taken) is judged first. */
    int64_t max_per_user;
    int refuse;
    buf_t *evicted;
    store_each_fn each; /* LIST */
    void *arg;
    rc_t rc;      /* out */
    size_t count; /* out, DEL_USER; PUT: sessions evicted */
} store_op;


typedef struct store_ops {
    const char *scheme;
    /* target: the URL after "scheme://". On failure writes a line to err. */
    rc_t (*open)(const char *target, const store_options *opt, store_t **out,
                 char *err, size_t errlen);
    void (*close)(store_t *st);
    /* The primitive of the request path and of the single calls below
     * (store_put, store_get, store_del, store_del_user, store_ping are
     * batches of one): applies n independent operations (PUT, GET, DEL,
     * DEL_USER, PING; store.c answers LIST and COUNT itself), each with the
     * outcome its single call would have had, in as few durable commits
     * (LMDB) or round trips (Redis) as the store can. A PUT answers
     * RC_EXISTS if the id is taken, RC_FULL when the store has no room, and
     * is durable when it answers RC_OK. A GET copies the live session's
     * record into rec (reset first); RC_NOT_FOUND for absent or expired. A
     * DEL deletes a live session, only if it belongs to user when user.p is
     * not NULL; of two racing deletes exactly one answers RC_OK. A DEL_USER
     * deletes every live session of user but id (may be NULL), count
     * telling how many. */
    void (*batch)(store_t *st, store_op *const *ops, size_t n);
    /* The user's live sessions, newest first. */
    rc_t (*list)(store_t *st, str_t user, int64_t now, store_each_fn fn, void *arg);
    /* Sets last_seen_at of the live sessions among ids (absent ones are
     * skipped), in as few writes as the store allows. */
    rc_t (*touch)(store_t *st, const char (*ids)[SESSION_ID_MAX + 1], size_t n,
                  int64_t last_seen, int64_t now);
    /* Housekeeping the background thread runs about once a second (may be
     * NULL): LMDB clears the reader slots of dead processes, which would
     * otherwise pin an old snapshot and keep freed pages from reuse. */
    void (*tend)(store_t *st);
    /* Removes expired sessions; *count is how many. */
    rc_t (*purge)(store_t *st, int64_t now, size_t *count);
    /* Every live session, in no particular order (for export/migration). */
    rc_t (*scan)(store_t *st, int64_t now, store_each_fn fn, void *arg);
    /* Sessions stored (may include expired ones not yet purged). */
    rc_t (*count)(store_t *st, size_t *n);
} store_ops;

struct store {
    const store_ops *ops;
    int remote; /* a read costs a network round trip: batch reads too */
    store_close_fn on_close; /* store_on_close; NULL: nobody listens */
    void *on_close_arg;
};

/* Opens the store named by url ("scheme://target"). RC_INVALID with err set
 * for an unknown scheme or a bad target. The caller owns *out (store_close). */
rc_t store_open(const char *url, const store_options *opt, store_t **out,
                char *err, size_t errlen);
void store_close(store_t *st);
/* Who is told of closes (NULL: nobody). Set before the store is shared
 * between threads. A session Redis drops by itself (its key's expiry) is
 * told when its index entry is met by a list or a close-all. */
void store_on_close(store_t *st, store_close_fn fn, void *arg);
/* For the backends: tells st's listener, if any. */
void store_tell_closed(store_t *st, store_close_reason why, const char *id, str_t user);

/* The calls below go through the table of operations. They keep malformed
 * ids and user ids away from the stores (an id no session can have is
 * simply not found; a user id no user can have has no sessions), and time
 * every call and count its failures for /metrics. */
rc_t store_put(store_t *st, const session_t *s);
rc_t store_get(store_t *st, const char *id, int64_t now, buf_t *rec);
rc_t store_del(store_t *st, const char *id, str_t owner, int64_t now);
rc_t store_list(store_t *st, str_t user, int64_t now, store_each_fn fn, void *arg);
rc_t store_del_user(store_t *st, str_t user, const char *except, int64_t now, size_t *count);
/* The operations of many requests at once; sets every ops[i]->rc (and
 * count, rec). */
void store_batch(store_t *st, store_op *const *ops, size_t n);
/* ids must all be valid session ids (touch.c checks them). */
rc_t store_touch_many(store_t *st, const char (*ids)[SESSION_ID_MAX + 1], size_t n,
                      int64_t last_seen, int64_t now);
rc_t store_touch(store_t *st, const char *id, int64_t last_seen, int64_t now);
rc_t store_purge(store_t *st, int64_t now, size_t *count);
void store_tend(store_t *st);
rc_t store_ping(store_t *st);
rc_t store_scan(store_t *st, int64_t now, store_each_fn fn, void *arg);
/* Sessions in the store, expired ones included until purged;
 * RC_UNSUPPORTED when the store cannot count cheaply (Redis). */
rc_t store_count(store_t *st, size_t *n);
const char *store_scheme(const store_t *st);

/* Names of the timed operations, for metrics_render. */
extern const char *const store_op_names[];
extern const unsigned store_nops;

#endif
