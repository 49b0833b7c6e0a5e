/* store_lmdb.c -- the embedded store on LMDB.
 *
 * Layout (one environment per STORE_URL path, three named databases):
 *   sessions  id                      -> session record (record_encode)
 *   by_user   user_id (dupsort)       -> created_at (8 bytes BE) + id
 *   by_exp    end (8 BE) + id         -> ""   (oldest first, for purge)
 * where a session's end is session_end: expires_at, or the idle deadline
 * when it is sooner (moved by every recorded use).
 * A batch of the request path's writes (store_batch, from the executor's
 * commit lane) is one transaction and one commit; any other write is a
 * transaction of its own. Either is durable as LMDB_SYNC asks (write_batch)
 * before the caller is answered. Readers reuse a per-thread read-only
 * transaction (mdb_txn_reset/renew). Processes on one file each map the
 * largest size it records and keep their new sessions within their own
 * LMDB_MAP_SIZE (map_hold below). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "log.h"
#include "store_lmdb.h"
#include "record.h"

#define PURGE_BATCH 1000
#define FREE_DBI 0 /* LMDB's own freelist database */
#define GROW_SECONDS 4      /* grow_ahead: seconds of growth written ahead */
#define GROW_MAX (64u << 20) /* at most this far past LMDB's last page */
#define GROW_GAP_US 10000 /* between two chunks: up to 25 MiB/s */
#define GROW_CHUNK (256u << 10) /* written per hold of the writer lock */
#define DIRECT_ALIGN 4096 /* O_DIRECT: offset, length and buffer aligned to the
                             logical block size (512 or 4096) */

typedef struct lmdb_store {
    store_t base;
    MDB_env *env;
    MDB_dbi sessions, by_user, by_exp;
    _Atomic int64_t failed_at; /* when the last commit failed; 0: it succeeded */
    pthread_key_t reader_key;
    pthread_rwlock_t map_lock; /* see map_hold */
    pthread_mutex_t adopt_lock; /* adopt_map: one thread at a time */
    unsigned map_gen; /* remaps tried; written holding both locks */
    int map_lost;     /* a remap failed: the environment is unusable */
    size_t map_limit; /* LMDB_MAP_SIZE: this process's new sessions stay within it */
    int sync_after; /* LMDB_SYNC=full: see write_batch */
    int direct_fd;  /* data.mdb with O_DIRECT for grow_ahead; -1: not grown */
    uint64_t grown_to; /* grow_ahead: the end of LMDB's pages at the last tick */
    _Atomic uint64_t grow_target; /* grow_step: the file size wanted; 0: none */
    _Atomic uint64_t grow_next_us; /* grow_step: no chunk before then */
    _Atomic int grow_off; /* the file system refused an O_DIRECT write */
    /* write transactions take turns in arrival order (take_turn) */
    pthread_mutex_t turn_lock;
    pthread_cond_t turn_wake;
    uint64_t next_turn, serving;
    /* Closes to tell (store_on_close), each a reason byte, the id and the
     * user id, NUL-terminated: those of the write transaction under way,
     * and those committed and not told yet. Touched only by the writer
     * whose turn it is. */
    buf_t closing, closed;
} lmdb_store;

rc_t store_lmdb_rc(int rc, const char *what)
{
    switch (rc) {
    case MDB_SUCCESS: return RC_OK;
    case MDB_NOTFOUND: return RC_NOT_FOUND;
    case MDB_KEYEXIST: return RC_EXISTS;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL: return RC_FULL;
    case ENOMEM: return RC_NOMEM;
    default:
        /* MDB_READERS_FULL, MDB_MAP_RESIZED (another process grew the map
         * past ours, and adopt_map could not take it on), MDB_PANIC,
         * MDB_CORRUPTED, and the OS's errors (ENOSPC, EIO, EFBIG...): the
         * store fails the command, which is 503, never a 500 */
        log_msg(LOG_ERROR, "lmdb: %s: %s", what, mdb_strerror(rc));
        return RC_UNAVAILABLE;
    }
}

static void be64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--, u >>= 8)
        p[i] = (unsigned char)u;
}

static int64_t from_be64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

static void reader_free(void *txn)
{
    mdb_txn_abort(txn);
}

/* ---- the map, shared by the processes on one file ----
 * They may have set different LMDB_MAP_SIZE (a new size rolled out one
 * process at a time). Each keeps its new sessions within its own size
 * (map_limit: room_left, grow_ahead), but when another grows the data past
 * its map, LMDB refuses all its transactions (MDB_MAP_RESIZED), reads too,
 * until it maps the size the file records, the largest any process set
 * (lmdb_open does so when the data is already past its own size).
 * mdb_env_set_mapsize(0) maps the file again, so no thread of this process
 * may be in a transaction or reading the environment meanwhile: each does
 * so holding map_lock shared (map_hold), and adopt_map takes it exclusive.
 * A read inside a write transaction holds it twice: glibc's rwlock, made
 * to prefer readers, lets the second hold in even while adopt_map waits
 * (POSIX does not promise it). So a thread inside a read of a store must
 * never wait for that store's write turn. */
static _Thread_local int map_holds; /* this thread's holds, of any store */

/* Takes the map shared; RC_UNAVAILABLE (and nothing held) once a remap
 * failed. *gen (if not NULL): the remaps tried so far. */
static rc_t map_hold(lmdb_store *st, unsigned *gen)
{
    pthread_rwlock_rdlock(&st->map_lock);
    if (st->map_lost) {
        pthread_rwlock_unlock(&st->map_lock);
        return RC_UNAVAILABLE;
    }
    map_holds++;
    if (gen != NULL)
        *gen = st->map_gen;
    return RC_OK;
}

static void map_release(lmdb_store *st)
{
    map_holds--;
    pthread_rwlock_unlock(&st->map_lock);
}

/* After a transaction's begin, holding the map at generation gen, met
 * MDB_MAP_RESIZED: maps the file's size, unless another thread did since
 * (those that met it at once queue here, not on map_lock, so each remap
 * waits only for the transactions under way) or this thread holds the map
 * (it cannot wait for the others to let go: 0, the error stands). 1: begin
 * again (after a failed remap, map_hold refuses). */
static int adopt_map(lmdb_store *st, unsigned gen)
{
    MDB_envinfo before, after;
    if (map_holds > 0)
        return 0;
    pthread_mutex_lock(&st->adopt_lock);
    if (st->map_gen == gen && !st->map_lost) {
        pthread_rwlock_wrlock(&st->map_lock);
        mdb_env_info(st->env, &before);
        int rc = mdb_env_set_mapsize(st->env, 0);
        if (rc == MDB_SUCCESS)
            mdb_env_info(st->env, &after);
        else
            st->map_lost = 1; /* LMDB may have unmapped the file */
        st->map_gen++;
        pthread_rwlock_unlock(&st->map_lock);
        if (rc != MDB_SUCCESS)
            log_msg(LOG_ERROR, "lmdb: cannot map the store again at the size another process "
                               "set (%s): every request to the store fails until a restart",
                    mdb_strerror(rc));
        else
            log_msg(LOG_INFO, "lmdb: another process grew the store: mapped %zu bytes (was %zu)",
                    after.me_mapsize, before.me_mapsize);
    }
    pthread_mutex_unlock(&st->adopt_lock);
    return 1;
}

/* The part of the map this process fills with new sessions: its own
 * LMDB_MAP_SIZE, or less while LMDB maps less. */
static size_t own_map(const lmdb_store *st, const MDB_envinfo *info)
{
    return info->me_mapsize < st->map_limit ? info->me_mapsize : st->map_limit;
}

/* The calling thread's read transaction, renewed, holding the map; end it
 * with reader_end. */
static rc_t reader(lmdb_store *st, MDB_txn **out)
{
    MDB_txn *txn = pthread_getspecific(st->reader_key);
    int rc, fresh = txn == NULL;
    unsigned gen;
    for (int again = 1;; again = 0) {
        if (map_hold(st, &gen) != RC_OK)
            return RC_UNAVAILABLE;
        rc = fresh ? mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) : mdb_txn_renew(txn);
        if (rc == MDB_SUCCESS)
            break;
        map_release(st);
        if (rc != MDB_MAP_RESIZED || !again || !adopt_map(st, gen))
            return store_lmdb_rc(rc, fresh ? "begin read" : "renew read");
    }
    if (fresh && pthread_setspecific(st->reader_key, txn) != 0) {
        mdb_txn_abort(txn);
        map_release(st);
        return RC_NOMEM;
    }
    *out = txn;
    return RC_OK;
}

static void reader_end(lmdb_store *st, MDB_txn *txn)
{
    mdb_txn_reset(txn);
    map_release(st);
}

/* A write transaction, holding the map; end it with commit or writer_abort. */
static rc_t writer(lmdb_store *st, MDB_txn **out)
{
    buf_reset(&st->closing); /* an aborted transaction's closes never happened */
    unsigned gen;
    for (int again = 1;; again = 0) {
        if (map_hold(st, &gen) != RC_OK)
            return RC_UNAVAILABLE;
        int rc = mdb_txn_begin(st->env, NULL, 0, out);
        if (rc == MDB_SUCCESS)
            return RC_OK;
        map_release(st);
        if (rc != MDB_MAP_RESIZED || !again || !adopt_map(st, gen))
            return store_lmdb_rc(rc, "begin write");
    }
}

static void writer_abort(lmdb_store *st, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    map_release(st);
}

static rc_t commit(lmdb_store *st, MDB_txn *txn)
{
    rc_t rc = store_lmdb_rc(mdb_txn_commit(txn), "commit");
    map_release(st);
    if (rc == RC_OK && st->closing.len > 0 &&
        buf_append(&st->closed, st->closing.p, st->closing.len) != RC_OK)
        log_msg(LOG_WARN, "lmdb: out of memory: closes committed but not told");
    buf_reset(&st->closing);
    return rc;
}

/* Tells the listener of the closes in closed (taken from st->closed once
 * their transactions committed and, with LMDB_SYNC=full, synced). */
static void tell(lmdb_store *st, const buf_t *closed)
{
    for (size_t at = 0; at < closed->len;) {
        const char *e = closed->p + at;
        const char *id = e + 1;
        const char *user = id + strlen(id) + 1;
        size_t ulen = strlen(user);
        store_tell_closed(&st->base, (store_close_reason)e[0], id, (str_t){ user, ulen });
        at = (size_t)(user + ulen + 1 - closed->p);
    }
}

/* Looks id up in txn and decodes it; the views point into the map. */
static rc_t fetch(lmdb_store *st, MDB_txn *txn, const char *id, session_t *s)
{
    MDB_val k = { strlen(id), (void *)id }, v;
    int rc = mdb_get(txn, st->sessions, &k, &v);
    if (rc != MDB_SUCCESS)
        return store_lmdb_rc(rc, "get");
    if (record_decode(v.mv_data, v.mv_size, s) != RC_OK) {
        log_msg(LOG_ERROR, "lmdb: undecodable record for a session");
        return RC_UNAVAILABLE;
    }
    return RC_OK;
}

/* Removes a session and its index entries, and notes the close (why) to
 * be told once committed. Copies what it needs from s first: s points into
 * pages this transaction may rewrite. */
static rc_t remove_session(lmdb_store *st, MDB_txn *txn, const session_t *s,
                           store_close_reason why)
{
    char id[SESSION_ID_MAX + 1], user[SESSION_USER_MAX];
    size_t idlen = strlen(s->id), ulen = s->user_id.len;
    unsigned char ukey[8 + SESSION_ID_MAX], ekey[8 + SESSION_ID_MAX];

    memcpy(id, s->id, idlen + 1);
    memcpy(user, s->user_id.p, ulen);
    be64(ukey, s->created_at);
    memcpy(ukey + 8, id, idlen);
    be64(ekey, session_end(s));
    memcpy(ekey + 8, id, idlen);

    MDB_val k = { idlen, id };
    int rc = mdb_del(txn, st->sessions, &k, NULL);
    if (rc != MDB_SUCCESS)
        return store_lmdb_rc(rc, "del session");
    MDB_val uk = { ulen, user }, uv = { 8 + idlen, ukey };
    rc = mdb_del(txn, st->by_user, &uk, &uv);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return store_lmdb_rc(rc, "del by_user");
    MDB_val ek = { 8 + idlen, ekey };
    rc = mdb_del(txn, st->by_exp, &ek, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return store_lmdb_rc(rc, "del by_exp");
    if (st->base.on_close != NULL) {
        char tag = (char)why;
        if (buf_append(&st->closing, &tag, 1) != RC_OK ||
            buf_append(&st->closing, id, idlen + 1) != RC_OK ||
            buf_append(&st->closing, user, ulen) != RC_OK ||
            buf_append(&st->closing, "", 1) != RC_OK)
            return RC_NOMEM;
    }
    return RC_OK;
}

/* Why a session found dead at now ended. */
static store_close_reason dead_why(const session_t *s, int64_t now)
{
    return session_ended_idle(s, now) ? STORE_IDLE : STORE_EXPIRED;
}

static int room_left(lmdb_store *st, int fresh);

/* Replaces the record of the session old (as decoded from txn) by rec, the
 * record of s (the same session, other header fields), moving its by_exp
 * entry when its end moved. */
static rc_t rewrite(lmdb_store *st, MDB_txn *txn, const session_t *old, const void *rec,
                    size_t len, const session_t *s)
{
    size_t idlen = strlen(s->id);
    unsigned char okey[8 + SESSION_ID_MAX], nkey[8 + SESSION_ID_MAX];
    int64_t was = session_end(old), end = session_end(s);
    be64(okey, was); /* old's views point into pages the put may rewrite */
    be64(nkey, end);
    memcpy(okey + 8, s->id, idlen);
    memcpy(nkey + 8, s->id, idlen);
    if (!room_left(st, 0))
        return RC_FULL; /* keep the reserve for deletes */
    MDB_val k = { idlen, (void *)s->id }, v = { len, (void *)rec };
    rc_t rc = store_lmdb_rc(mdb_put(txn, st->sessions, &k, &v, 0), "rewrite");
    if (rc != RC_OK || was == end)
        return rc;
    MDB_val ok = { 8 + idlen, okey }, nk = { 8 + idlen, nkey }, ev = { 0, "" };
    int mrc = mdb_del(txn, st->by_exp, &ok, NULL);
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
        return store_lmdb_rc(mrc, "move by_exp");
    return store_lmdb_rc(mdb_put(txn, st->by_exp, &nk, &ev, 0), "move by_exp");
}

/* Room left for new data, in pages: the untouched tail of the map plus
 * the freelist. Inserts stop while less than a reserve is left, so that
 * deletes and purges (which need fresh pages too: LMDB copies on write)
 * always succeed and can make room again. A new session (fresh) counts
 * the map up to this process's own LMDB_MAP_SIZE (own_map); a rewrite of
 * one, like a delete, the whole map. Only counts the freelist when the
 * tail alone is short, so the common case is one mdb_env_info call. */
static int room_left(lmdb_store *st, int fresh)
{
    MDB_envinfo info;
    MDB_stat stat;
    mdb_env_info(st->env, &info);
    mdb_env_stat(st->env, &stat);
    size_t pages = (fresh ? own_map(st, &info) : info.me_mapsize) / stat.ms_psize;
    size_t reserve = pages / 10;
    if (reserve < 32)
        reserve = 32;
    if (reserve > 1024)
        reserve = 1024;
    size_t tail = pages > info.me_last_pgno + 1 ? pages - info.me_last_pgno - 1 : 0;
    if (tail >= 2 * reserve)
        return 1;
    /* LMDB opens cursors on its freelist only in read-only transactions. */
    MDB_txn *rtxn;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t free_pages = 0;
    if (reader(st, &rtxn) != RC_OK)
        return tail >= reserve;
    if (mdb_cursor_open(rtxn, FREE_DBI, &cur) == MDB_SUCCESS) {
        while (tail + free_pages < 2 * reserve &&
               mdb_cursor_get(cur, &k, &v, MDB_NEXT) == MDB_SUCCESS)
            if (v.mv_size >= sizeof(size_t))
                free_pages += *(const size_t *)v.mv_data; /* an IDL: count, then ids */
        mdb_cursor_close(cur);
    }
    reader_end(st, rtxn);
    return tail + free_pages >= 2 * reserve;
}

/* ---- writes: each is an "apply" inside a transaction it is given; the
 * batch below (write_batch) runs many of them in one transaction and one
 * commit.
 * Applies answer RC_OK or RC_NOT_FOUND when their changes may be kept. */

typedef struct wop {
    rc_t (*apply)(lmdb_store *st, MDB_txn *txn, void *arg);
    void *arg;
    rc_t rc;
    struct wop *next;
} wop;

/* Whether an operation's result leaves the transaction usable: these are
 * decided before anything is written, or are the intended outcome. Any
 * other result (an LMDB error, a full map met halfway) may have left the
 * transaction half-changed or unusable. */
static int clean(rc_t rc)
{
    return rc == RC_OK || rc == RC_NOT_FOUND || rc == RC_EXISTS || rc == RC_INVALID ||
           rc == RC_LIMIT;
}

/* Remembers whether the store failed the last batch (its transaction, an
 * operation or the commit), for lmdb_ping. */
static void note_batch(lmdb_store *st, const wop *batch)
{
    int failed = 0, ok = 0;
    for (const wop *w = batch; w; w = w->next) {
        failed |= w->rc == RC_UNAVAILABLE;
        ok |= w->rc == RC_OK;
    }
    if (failed)
        atomic_store(&st->failed_at, clock_wall());
    else if (ok)
        atomic_store(&st->failed_at, 0);
}

/* Each operation alone in its own transaction: the slow path, after a
 * batch met an error. */
static void run_one_by_one(lmdb_store *st, wop *batch)
{
    for (wop *w = batch; w; w = w->next) {
        MDB_txn *txn;
        if ((w->rc = writer(st, &txn)) != RC_OK)
            continue;
        w->rc = w->apply(st, txn, w->arg);
        if (w->rc == RC_OK || w->rc == RC_NOT_FOUND) {
            rc_t rc = commit(st, txn);
            if (rc != RC_OK)
                w->rc = rc;
        } else {
            writer_abort(st, txn);
        }
    }
}

/* Runs a batch in one transaction and one commit. (Nested transactions
 * would isolate the operations, but LMDB allocates megabytes for each
 * one.) If an operation fails in a way that may leave the transaction
 * half-changed, the batch is abandoned and every operation runs alone. An
 * operation's rc is final only once the commit succeeded. */
static void run_batch(lmdb_store *st, wop *batch)
{
    MDB_txn *txn;
    rc_t rc = writer(st, &txn);
    if (rc != RC_OK) {
        for (wop *w = batch; w; w = w->next)
            w->rc = rc;
        return;
    }
    for (wop *w = batch; w; w = w->next) {
        w->rc = w->apply(st, txn, w->arg);
        if (!clean(w->rc)) {
            writer_abort(st, txn);
            run_one_by_one(st, batch);
            return;
        }
    }
    rc = commit(st, txn);
    if (rc != RC_OK)
        for (wop *w = batch; w; w = w->next)
            if (w->rc == RC_OK || w->rc == RC_NOT_FOUND)
                w->rc = rc;
}

/* Write transactions take turns in the order they asked. LMDB's own writer
 * lock is a plain mutex: a thread that commits and begins again at once
 * (a close-all's or a purge's chunks) would mostly win it back, and the
 * commit lane's batches behind it would wait for the whole stream. */
static void take_turn(lmdb_store *st)
{
    pthread_mutex_lock(&st->turn_lock);
    uint64_t mine = st->next_turn++;
    while (st->serving != mine)
        pthread_cond_wait(&st->turn_wake, &st->turn_lock);
    pthread_mutex_unlock(&st->turn_lock);
}

static void end_turn(lmdb_store *st)
{
    pthread_mutex_lock(&st->turn_lock);
    st->serving++;
    pthread_cond_broadcast(&st->turn_wake);
    pthread_mutex_unlock(&st->turn_lock);
}

/* One GROW_CHUNK of zeros past the end of data.mdb (grow_ahead below),
 * when a size is set and GROW_GAP_US have passed since the last chunk
 * ended; one thread at a time (it claims grow_next_us while it writes).
 * The chunk is written in a write transaction taking its turn with the
 * lanes, under LMDB's writer lock, so that no process writes pages
 * meanwhile, and with O_DIRECT: zeros left dirty in the page cache would be
 * written by the next commit's fdatasync, which flushes all of the file.
 * The new size reaches the journal with the next commit's sync. */
static void grow_step(lmdb_store *st)
{
    static _Alignas(DIRECT_ALIGN) char zeros[GROW_CHUNK]; /* never written */
    uint64_t want = atomic_load_explicit(&st->grow_target, memory_order_relaxed);
    uint64_t next = atomic_load_explicit(&st->grow_next_us, memory_order_relaxed), now = clock_us();
    if (want == 0 || now < next ||
        !atomic_compare_exchange_strong(&st->grow_next_us, &next, UINT64_MAX))
        return;
    MDB_txn *txn;
    struct stat sb = { 0 };
    ssize_t w = -1;
    int err = 0;
    take_turn(st);
    if (writer(st, &txn) == RC_OK) {
        /* under the lock, from the file's end as it is now */
        if (fstat(st->direct_fd, &sb) == 0 && (uint64_t)sb.st_size < want &&
            sb.st_size % DIRECT_ALIGN == 0) {
            uint64_t n = want - (uint64_t)sb.st_size;
            w = pwrite(st->direct_fd, zeros, n < GROW_CHUNK ? (size_t)n : GROW_CHUNK, sb.st_size);
            err = w < 0 ? errno : 0;
        }
        writer_abort(st, txn);
    }
    end_turn(st);
    atomic_store(&st->grow_next_us, clock_us() + GROW_GAP_US);
    if (w <= 0 || (uint64_t)(sb.st_size + w) >= want) /* done, or failing: until the next tick */
        atomic_compare_exchange_strong(&st->grow_target, &want, 0);
    if (err == EINVAL && !atomic_exchange(&st->grow_off, 1)) /* O_DIRECT opens, not writes */
        log_msg(LOG_INFO, "lmdb: data.mdb takes no O_DIRECT writes: not written ahead");
}

/* Applies the operations of batch (linked by next) in one transaction and
 * one commit, durable when it returns. Batches come from the executor's
 * commit lane (exec.h), which gathers the request path's writes: that is
 * the group commit. Two lane threads may call this at once; LMDB's writer
 * lock orders their transactions.
 *
 * With LMDB_SYNC=full the environment is opened with MDB_NOMETASYNC: a
 * commit syncs its data pages, then writes the meta page without waiting
 * for it; the meta page is synced here, after the writer lock is released,
 * so that the next batch's transaction and data sync overlap this one's
 * meta sync instead of waiting behind both. The batch is answered only
 * after that second sync: as durable as LMDB's own two-sync commit, in the
 * same order. */
static void write_batch(lmdb_store *st, wop *batch)
{
    if (atomic_load_explicit(&st->grow_target, memory_order_relaxed))
        grow_step(st);
    take_turn(st);
    run_batch(st, batch);
    buf_t closed = st->closed; /* told once durable, outside the turn */
    st->closed = BUF_INIT;
    end_turn(st);
    rc_t rc = RC_OK;
    if (st->sync_after) {
        /* outside map_lock: without MDB_WRITEMAP this is an fdatasync */
        rc = store_lmdb_rc(mdb_env_sync(st->env, 1), "sync");
        for (wop *w = batch; w && rc != RC_OK; w = w->next)
            w->rc = rc;
    }
    note_batch(st, batch);
    if (rc == RC_OK)
        tell(st, &closed);
    buf_free(&closed);
}

static rc_t write_op(lmdb_store *st, rc_t (*apply)(lmdb_store *, MDB_txn *, void *), void *arg)
{
    wop op = { apply, arg, RC_OK, NULL };
    write_batch(st, &op);
    return op.rc;
}

typedef struct put_args {
    const session_t *s;
    const buf_t *rec;
    int64_t max;    /* live sessions per user, 0: no cap (store_op) */
    int refuse;
    buf_t *evicted; /* may be NULL */
    size_t count;   /* out: sessions evicted */
} put_args;

typedef struct held {
    char id[SESSION_ID_MAX + 1];
    int64_t last_seen, created;
} held;

/* Least recently used first: last_seen_at, then created_at, then id. */
static int lru_first(const void *a, const void *b)
{
    const held *x = a, *y = b;
    if (x->last_seen != y->last_seen)
        return x->last_seen < y->last_seen ? -1 : 1;
    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Makes room, inside txn, for one more live session of a->s's user under
 * a->max: expired sessions of the user are removed; then, with the cap
 * reached, RC_LIMIT (refuse) or the least recently used live sessions are
 * removed and reported in a->evicted. Cheap below the cap: one cursor
 * count (index entries, expired ones included, bound the live sessions). */
static rc_t make_room(lmdb_store *st, MDB_txn *txn, put_args *a)
{
    str_t user = a->s->user_id;
    MDB_cursor *cur = NULL;
    held *h = NULL;
    size_t dups = 0, n = 0, live = 0;
    rc_t rc;
    if (a->max <= 0)
        return RC_OK;
    if ((rc = store_lmdb_rc(mdb_cursor_open(txn, st->by_user, &cur), "cursor")) != RC_OK)
        return rc;
    MDB_val k = { user.len, (void *)user.p }, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET);
    if (mrc == MDB_SUCCESS)
        mrc = mdb_cursor_count(cur, &dups);
    if (mrc == MDB_NOTFOUND || (mrc == MDB_SUCCESS && dups < (size_t)a->max)) {
        rc = RC_OK;
        goto out;
    }
    if (mrc != MDB_SUCCESS) {
        rc = store_lmdb_rc(mrc, "count");
        goto out;
    }
    if ((h = calloc(dups, sizeof *h)) == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST_DUP); mrc == MDB_SUCCESS && n < dups;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        size_t idlen = v.mv_size - 8;
        if (v.mv_size <= 8 || idlen > SESSION_ID_MAX)
            continue;
        memcpy(h[n].id, (char *)v.mv_data + 8, idlen);
        h[n++].id[idlen] = '\0';
    }
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        rc = store_lmdb_rc(mrc, "cap");
        goto out;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    for (size_t i = 0; i < n; i++) {
        session_t s;
        if ((rc = fetch(st, txn, h[i].id, &s)) == RC_NOT_FOUND)
            continue;
        if (rc != RC_OK)
            goto out;
        if (!session_live(&s, a->s->created_at)) {
            if ((rc = remove_session(st, txn, &s, dead_why(&s, a->s->created_at))) != RC_OK)
                goto out;
            continue;
        }
        h[live] = h[i]; /* live <= i: compacts in place */
        h[live].last_seen = s.last_seen_at;
        h[live++].created = s.created_at;
    }
    rc = RC_OK;
    if (live < (size_t)a->max)
        goto out;
    if (a->refuse) {
        rc = RC_LIMIT;
        goto out;
    }
    qsort(h, live, sizeof *h, lru_first);
    for (size_t i = 0; i < live - (size_t)a->max + 1; i++) {
        session_t s;
        if ((rc = fetch(st, txn, h[i].id, &s)) == RC_NOT_FOUND)
            rc = RC_UNAVAILABLE; /* read a moment ago in this transaction */
        if (rc != RC_OK || (rc = remove_session(st, txn, &s, STORE_EVICTED)) != RC_OK)
            goto out;
        if (a->evicted != NULL &&
            (rc = buf_append(a->evicted, h[i].id, strlen(h[i].id) + 1)) != RC_OK)
            goto out;
        a->count++;
    }
out:
    if (cur)
        mdb_cursor_close(cur);
    free(h);
    return rc;
}

/* mdb_put that first tries MDB_APPEND: ids and expiry keys mostly arrive in
 * order (ids begin with their creation stamp), and an append fills pages
 * where an insert at the end would split them half-empty. A key that is not
 * past the last one fails the append with MDB_KEYEXIST (LMDB compares it
 * with the last key) and goes in normally. */
static int put_in_order(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
    MDB_val k2 = *k, v2 = *v;
    int rc = mdb_put(txn, dbi, &k2, &v2, flags | MDB_APPEND);
    if (rc != MDB_KEYEXIST)
        return rc;
    return mdb_put(txn, dbi, k, v, flags);
}

static rc_t put_in(lmdb_store *st, MDB_txn *txn, void *arg)
{
    put_args *a = arg;
    const session_t *s = a->s;
    size_t idlen = strlen(s->id);
    a->count = 0; /* a batch abandoned halfway runs its operations again */
    if (a->evicted != NULL)
        buf_reset(a->evicted);
    unsigned char ukey[8 + SESSION_ID_MAX], ekey[8 + SESSION_ID_MAX];
    rc_t rc;
    if (!room_left(st, 1))
        return RC_FULL;
    MDB_val k = { idlen, (void *)s->id }, v = { a->rec->len, a->rec->p }, old;
    /* decided before anything is written: a taken id changes nothing */
    int mrc = mdb_get(txn, st->sessions, &k, &old);
    if (mrc != MDB_NOTFOUND)
        return mrc == MDB_SUCCESS ? RC_EXISTS : store_lmdb_rc(mrc, "get");
    if ((rc = make_room(st, txn, a)) != RC_OK)
        return rc;
    if ((rc = store_lmdb_rc(put_in_order(txn, st->sessions, &k, &v, MDB_NOOVERWRITE), "put")) != RC_OK)
        return rc;
    be64(ukey, s->created_at);
    memcpy(ukey + 8, s->id, idlen);
    MDB_val uk = { s->user_id.len, (void *)s->user_id.p }, uv = { 8 + idlen, ukey };
    if ((rc = store_lmdb_rc(mdb_put(txn, st->by_user, &uk, &uv, 0), "put by_user")) != RC_OK)
        return rc;
    be64(ekey, session_end(s));
    memcpy(ekey + 8, s->id, idlen);
    MDB_val ek = { 8 + idlen, ekey }, ev = { 0, "" };
    return store_lmdb_rc(put_in_order(txn, st->by_exp, &ek, &ev, 0), "put by_exp");
}

static rc_t lmdb_get(store_t *base, const char *id, int64_t now, buf_t *rec)
{
    lmdb_store *st = (lmdb_store *)base;
    MDB_txn *txn;
    session_t s;
    rc_t rc = reader(st, &txn);
    if (rc != RC_OK)
        return rc;
    MDB_val k = { strlen(id), (void *)id }, v;
    rc = store_lmdb_rc(mdb_get(txn, st->sessions, &k, &v), "get");
    if (rc == RC_OK && record_decode(v.mv_data, v.mv_size, &s) != RC_OK) {
        log_msg(LOG_ERROR, "lmdb: undecodable record for a session");
        rc = RC_UNAVAILABLE;
    } else if (rc == RC_OK && !session_live(&s, now)) {
        rc = RC_NOT_FOUND;
    }
    if (rc == RC_OK) {
        buf_reset(rec);
        rc = buf_append(rec, v.mv_data, v.mv_size);
    }
    reader_end(st, txn);
    return rc;
}

typedef struct del_args {
    const char *id;
    str_t owner;
    int64_t now;
    store_close_reason why;
} del_args;

static rc_t del_in(lmdb_store *st, MDB_txn *txn, void *arg)
{
    const del_args *a = arg;
    session_t s;
    rc_t rc = fetch(st, txn, a->id, &s);
    if (rc != RC_OK)
        return rc;
    if (!session_live(&s, a->now)) {
        /* Ended: behaves as absent; drop it while we hold the lock. */
        rc = remove_session(st, txn, &s, dead_why(&s, a->now));
        return rc == RC_OK ? RC_NOT_FOUND : rc;
    }
    if (a->owner.p != NULL && !str_eq(a->owner, s.user_id))
        return RC_NOT_FOUND;
    return remove_session(st, txn, &s, a->why);
}

static rc_t lmdb_list(store_t *base, str_t user, int64_t now, store_each_fn fn, void *arg)
{
    lmdb_store *st = (lmdb_store *)base;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    rc_t rc = reader(st, &txn);
    if (rc != RC_OK)
        return rc;
    if ((rc = store_lmdb_rc(mdb_cursor_open(txn, st->by_user, &cur), "cursor")) != RC_OK)
        goto out;
    MDB_val k = { user.len, (void *)user.p }, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET);
    if (mrc == MDB_NOTFOUND)
        goto out; /* no sessions: rc stays RC_OK */
    if (mrc == MDB_SUCCESS)
        mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
    while (mrc == MDB_SUCCESS) {
        char id[SESSION_ID_MAX + 1];
        size_t idlen = v.mv_size - 8;
        if (v.mv_size > 8 && idlen <= SESSION_ID_MAX) {
            memcpy(id, (char *)v.mv_data + 8, idlen);
            id[idlen] = '\0';
            session_t s;
            rc_t f = fetch(st, txn, id, &s);
            if (f != RC_OK && f != RC_NOT_FOUND) {
                rc = f; /* never a partial list that looks whole */
                goto out;
            }
            if (f == RC_OK && session_live(&s, now) && fn(&s, arg))
                break;
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV_DUP);
    }
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
        rc = store_lmdb_rc(mrc, "list");
out:
    if (cur)
        mdb_cursor_close(cur);
    reader_end(st, txn);
    return rc;
}

/* Close-all runs in transactions of at most DEL_USER_CHUNK sessions, each
 * queued like any write: one user's thousands of sessions never hold the
 * write lock (and everyone's creates and closes) for long, nor need a
 * transaction as big as the user's list. */
#define DEL_USER_CHUNK 1000

typedef struct del_user_args {
    str_t user;
    const char *except;
    int64_t now;
    size_t count; /* out: live sessions closed by this chunk */
    int more;     /* out: the chunk was full; run another */
} del_user_args;

/* One chunk: the user's first DEL_USER_CHUNK index entries but except's
 * are removed with their sessions (expired ones are removed without
 * counting; an entry without its session is dropped). */
static rc_t del_user_in(lmdb_store *st, MDB_txn *txn, void *arg)
{
    del_user_args *a = arg;
    MDB_cursor *cur = NULL;
    unsigned char (*keys)[8 + SESSION_ID_MAX] = NULL;
    size_t *lens = NULL, n = 0;
    rc_t rc;

    a->count = 0;
    a->more = 0;
    keys = malloc(DEL_USER_CHUNK * sizeof *keys);
    lens = malloc(DEL_USER_CHUNK * sizeof *lens);
    if (keys == NULL || lens == NULL) {
        rc = RC_NOMEM;
        goto out;
    }
    if ((rc = store_lmdb_rc(mdb_cursor_open(txn, st->by_user, &cur), "cursor")) != RC_OK)
        goto out;
    MDB_val k = { a->user.len, (void *)a->user.p }, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); /* the first entry, with its data */
    for (; mrc == MDB_SUCCESS && n < DEL_USER_CHUNK; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        size_t idlen = v.mv_size - 8;
        if (v.mv_size <= 8 || idlen > SESSION_ID_MAX)
            continue;
        if (a->except != NULL && strlen(a->except) == idlen &&
            memcmp((char *)v.mv_data + 8, a->except, idlen) == 0)
            continue;
        memcpy(keys[n], v.mv_data, v.mv_size);
        lens[n++] = v.mv_size;
    }
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        rc = store_lmdb_rc(mrc, "del_user");
        goto out;
    }
    a->more = n == DEL_USER_CHUNK;
    mdb_cursor_close(cur);
    cur = NULL;
    for (size_t i = 0; i < n; i++) {
        char id[SESSION_ID_MAX + 1];
        session_t s;
        memcpy(id, keys[i] + 8, lens[i] - 8);
        id[lens[i] - 8] = '\0';
        rc = fetch(st, txn, id, &s);
        if (rc == RC_NOT_FOUND) { /* an entry without its session */
            MDB_val uk = { a->user.len, (void *)a->user.p }, uv = { lens[i], keys[i] };
            if ((rc = store_lmdb_rc(mdb_del(txn, st->by_user, &uk, &uv), "del by_user")) != RC_OK)
                goto out;
            continue;
        }
        if (rc != RC_OK)
            goto out;
        int live = session_live(&s, a->now);
        if ((rc = remove_session(st, txn, &s, live ? STORE_CLOSED_ALL : dead_why(&s, a->now))) != RC_OK)
            goto out;
        if (live)
            a->count++;
    }
    rc = RC_OK;
out:
    if (cur)
        mdb_cursor_close(cur);
    free(keys);
    free(lens);
    if (rc != RC_OK)
        a->count = 0;
    return rc;
}

static rc_t lmdb_del_user(store_t *base, str_t user, const char *except, int64_t now,
                          size_t *count)
{
    del_user_args a = { user, except, now, 0, 0 };
    rc_t rc;
    *count = 0;
    do {
        if ((rc = write_op((lmdb_store *)base, del_user_in, &a)) == RC_OK)
            *count += a.count;
    } while (rc == RC_OK && a.more);
    return rc;
}

typedef struct touch_args {
    const char (*ids)[SESSION_ID_MAX + 1];
    size_t n;
    int64_t last_seen, now;
} touch_args;

/* Sets last_seen_at of the live session id (never backwards). */
static rc_t touch_one(lmdb_store *st, MDB_txn *txn, const char *id, int64_t last_seen,
                      int64_t now)
{
    MDB_val k = { strlen(id), (void *)id }, v;
    session_t s, moved;
    unsigned char rec[4096 + SESSION_DATA_MAX];
    rc_t rc = store_lmdb_rc(mdb_get(txn, st->sessions, &k, &v), "get");
    if (rc != RC_OK)
        return rc;
    if (record_decode(v.mv_data, v.mv_size, &s) != RC_OK || !session_live(&s, now))
        return RC_NOT_FOUND;
    if (s.last_seen_at >= last_seen)
        return RC_OK;
    if (v.mv_size > sizeof rec)
        return RC_ERR;
    memcpy(rec, v.mv_data, v.mv_size);
    record_set_last_seen(rec, v.mv_size, last_seen); /* decoded above: long enough */
    if (record_decode(rec, v.mv_size, &moved) != RC_OK)
        return RC_ERR;
    return rewrite(st, txn, &s, rec, v.mv_size, &moved);
}

static rc_t touch_in(lmdb_store *st, MDB_txn *txn, void *arg)
{
    const touch_args *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        rc_t rc = touch_one(st, txn, a->ids[i], a->last_seen, a->now);
        if (rc != RC_OK && rc != RC_NOT_FOUND)
            return rc;
    }
    return RC_OK;
}

/* The batch's TOUCH: one session, RC_NOT_FOUND told. */
static rc_t touch_op_in(lmdb_store *st, MDB_txn *txn, void *arg)
{
    const store_op *o = arg;
    return touch_one(st, txn, o->id, o->now, o->now);
}

typedef struct swap_args {
    const store_op *op;
    const buf_t *expect; /* a copy of op->rec: a batch run again compares the same */
    const buf_t *rec;    /* the new record, of op->s */
} swap_args;

static rc_t swap_in(lmdb_store *st, MDB_txn *txn, void *arg)
{
    const swap_args *a = arg;
    MDB_val k = { strlen(a->op->id), (void *)a->op->id }, v;
    session_t s;
    rc_t rc = store_lmdb_rc(mdb_get(txn, st->sessions, &k, &v), "get");
    if (rc != RC_OK)
        return rc;
    if (record_decode(v.mv_data, v.mv_size, &s) != RC_OK) {
        log_msg(LOG_ERROR, "lmdb: undecodable record for a session");
        return RC_UNAVAILABLE;
    }
    if (!session_live(&s, a->op->now))
        return RC_NOT_FOUND;
    if (v.mv_size != a->expect->len || memcmp(v.mv_data, a->expect->p, v.mv_size) != 0) {
        buf_reset(a->op->rec);
        return buf_append(a->op->rec, v.mv_data, v.mv_size) == RC_OK ? RC_EXISTS : RC_NOMEM;
    }
    return rewrite(st, txn, &s, a->rec->p, a->rec->len, a->op->s);
}

/* The request path's batches: the reads answered at once (they need no
 * transaction of ours), the writes in one transaction and one commit
 * (write_batch). Creates go last and in id order, so that they append
 * (put_in_order). */
typedef struct batch_item {
    wop w;
    buf_t rec;     /* PUT, SWAP: the record to write */
    buf_t expect;  /* SWAP: the record expected */
    put_args put;
    del_args del;
    swap_args swap;
    const store_op *op;
} batch_item;

static rc_t lmdb_ping(store_t *base);

static int creates_last_by_id(const void *a, const void *b)
{
    const store_op *x = (*(batch_item *const *)a)->op, *y = (*(batch_item *const *)b)->op;
    int px = x->kind == STORE_OP_PUT, py = y->kind == STORE_OP_PUT;
    if (px != py)
        return px - py;
    return px ? strcmp(x->s->id, y->s->id) : 0;
}

static void lmdb_batch(store_t *base, store_op *const *ops, size_t n)
{
    lmdb_store *st = (lmdb_store *)base;
    size_t writes = 0;
    for (size_t i = 0; i < n; i++) /* reads first: they need no transaction of ours */
        if (ops[i]->kind == STORE_OP_GET)
            ops[i]->rc = lmdb_get(base, ops[i]->id, ops[i]->now, ops[i]->rec);
        else
            writes++;
    if (writes == 0)
        return; /* the request path's reads: no allocation */
    batch_item *items = calloc(n, sizeof *items);
    batch_item **order = calloc(n, sizeof(batch_item *));
    wop *first = NULL, *last = NULL;
    if (items == NULL || order == NULL) {
        for (size_t i = 0; i < n; i++)
            ops[i]->rc = RC_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        store_op *o = ops[i];
        batch_item *it = &items[i];
        it->op = o;
        order[i] = it;
        switch (o->kind) {
        case STORE_OP_GET: /* done above */
            continue;
        case STORE_OP_PING:
            o->rc = lmdb_ping(base);
            continue;
        case STORE_OP_PUT:
            if ((o->rc = record_encode(o->s, &it->rec)) != RC_OK)
                continue;
            it->put = (put_args){ o->s, &it->rec, o->max_per_user, o->refuse, o->evicted, 0 };
            it->w = (wop){ put_in, &it->put, RC_OK, NULL };
            break;
        case STORE_OP_DEL:
            it->del = (del_args){ o->id, o->user, o->now, o->why };
            it->w = (wop){ del_in, &it->del, RC_OK, NULL };
            break;
        case STORE_OP_TOUCH:
            it->w = (wop){ touch_op_in, (void *)o, RC_OK, NULL };
            break;
        case STORE_OP_SWAP:
            if ((o->rc = record_encode(o->s, &it->rec)) != RC_OK ||
                (o->rc = buf_append(&it->expect, o->rec->p, o->rec->len)) != RC_OK)
                continue;
            it->swap = (swap_args){ o, &it->expect, &it->rec };
            it->w = (wop){ swap_in, &it->swap, RC_OK, NULL };
            break;
        case STORE_OP_DEL_USER: /* chunk by chunk, in transactions of its own */
            o->rc = lmdb_del_user(base, o->user, o->id, o->now, &o->count);
            continue;
        case STORE_OP_LIST: /* never batched: store_batch runs them itself */
        case STORE_OP_COUNT:
            o->rc = RC_UNAVAILABLE;
            continue;
        }
    }
    qsort(order, n, sizeof *order, creates_last_by_id); // NOLINT(bugprone-sizeof-expression): an array of pointers
    for (size_t i = 0; i < n; i++) {
        if (order[i]->w.apply == NULL)
            continue; /* refused before the chain */
        if (last)
            last->next = &order[i]->w;
        else
            first = &order[i]->w;
        last = &order[i]->w;
    }
    if (first)
        write_batch(st, first);
    for (size_t i = 0; i < n; i++) {
        buf_free(&items[i].rec);
        buf_free(&items[i].expect);
        if (items[i].w.apply == NULL)
            continue;
        ops[i]->rc = items[i].w.rc;
        if (ops[i]->kind == STORE_OP_PUT)
            ops[i]->count = items[i].w.rc == RC_OK ? items[i].put.count : 0;
    }
out:
    free(items);
    free(order);
}

static rc_t lmdb_touch(store_t *base, const char (*ids)[SESSION_ID_MAX + 1], size_t n,
                       int64_t last_seen, int64_t now)
{
    touch_args a = { ids, n, last_seen, now };
    return write_op((lmdb_store *)base, touch_in, &a);
}

/* The end of LMDB's pages in data.mdb, in bytes, and own_map in *mapsize;
 * 0 if unknown. */
static uint64_t pages_end(lmdb_store *st, uint64_t *mapsize)
{
    MDB_envinfo info;
    MDB_stat stat;
    if (map_hold(st, NULL) != RC_OK)
        return 0;
    int failed = mdb_env_info(st->env, &info) != MDB_SUCCESS ||
                 mdb_env_stat(st->env, &stat) != MDB_SUCCESS;
    map_release(st);
    if (failed)
        return 0;
    *mapsize = own_map(st, &info);
    return ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
}

/* Growing data.mdb ahead of LMDB. A commit whose pages land past the end
 * of the file makes the file system record new blocks and a new size, and
 * its fdatasync then also waits for a journal commit (on this machine's
 * ext4 a 4 KiB write and fdatasync took 0.22 ms past the end, 0.14 ms over
 * blocks the file has). So while the store grows, every tick sets a size
 * for the file: GROW_SECONDS of the last tick's growth ahead of LMDB's last
 * page (within GROW_MAX and own_map); and the commits (grow_step,
 * before a batch) write zeros up to it, a GROW_CHUNK at most every
 * GROW_GAP_US, so that the writing is spread over the second instead of
 * holding up a burst of batches. Commits then overwrite blocks the file
 * already has (but the first after each chunk, which carries the new size
 * to the journal). The zeros stay when the growth stops, until LMDB's pages
 * fill them; LMDB reads nothing past its last page. */
static void grow_ahead(lmdb_store *st)
{
    uint64_t mapsize = 0, end = pages_end(st, &mapsize);
    uint64_t grew = st->grown_to && end > st->grown_to ? end - st->grown_to : 0;
    st->grown_to = end;
    struct stat sb;
    if (grew == 0 || st->direct_fd < 0 || atomic_load(&st->grow_off) || fstat(st->direct_fd, &sb) != 0)
        return;
    uint64_t want = end + (grew * GROW_SECONDS < GROW_MAX ? grew * GROW_SECONDS : GROW_MAX);
    if (want > mapsize)
        want = mapsize;
    want -= want % DIRECT_ALIGN;
    if ((uint64_t)sb.st_size < want)
        atomic_store(&st->grow_target, want);
}

/* grow_ahead's descriptor: data.mdb opened again with O_DIRECT, checked to
 * be the file LMDB has open; -1 if that fails (a file system that refuses
 * O_DIRECT is not grown). */
static int open_direct(MDB_env *env, const char *path)
{
    char data[PATH_MAX];
    struct stat a, b;
    int lfd, fd = -1;
    if ((size_t)snprintf(data, sizeof data, "%s/data.mdb", path) >= sizeof data ||
        mdb_env_get_fd(env, &lfd) != MDB_SUCCESS ||
        (fd = open(data, O_WRONLY | O_DIRECT | O_CLOEXEC)) < 0 || fstat(fd, &a) != 0 ||
        fstat(lfd, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        log_msg(LOG_INFO, "lmdb: %s not opened for O_DIRECT writes: not written ahead", data);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* A process killed inside a read transaction (kill -9 of a split process,
 * of sessionctl export) leaves its reader slot behind: the snapshot it
 * pinned keeps every page freed since from reuse, and the map fills. */
static void lmdb_tend(store_t *base)
{
    lmdb_store *st = (lmdb_store *)base;
    int dead = 0;
    mdb_reader_check(st->env, &dead);
    if (dead)
        log_msg(LOG_INFO, "lmdb: cleared %d stale reader slot(s)", dead);
    grow_ahead(st);
}

/* One batch of purge: deletes up to max expired sessions. */
static rc_t purge_batch(lmdb_store *st, int64_t now, size_t max, size_t *done)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    char ids[PURGE_BATCH][SESSION_ID_MAX + 1];
    size_t n = 0;
    *done = 0;
    rc_t rc = writer(st, &txn);
    if (rc != RC_OK)
        return rc;
    if ((rc = store_lmdb_rc(mdb_cursor_open(txn, st->by_exp, &cur), "cursor")) != RC_OK)
        goto abort;
    MDB_val k, v;
    int mrc;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS && n < max;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= 8 || k.mv_size - 8 > SESSION_ID_MAX)
            continue;
        if (from_be64(k.mv_data) > now)
            break;
        memcpy(ids[n], (char *)k.mv_data + 8, k.mv_size - 8);
        ids[n++][k.mv_size - 8] = '\0';
    }
    mdb_cursor_close(cur);
    cur = NULL;
    for (size_t i = 0; i < n; i++) {
        session_t s;
        if (fetch(st, txn, ids[i], &s) != RC_OK || session_live(&s, now))
            continue;
        if ((rc = remove_session(st, txn, &s, dead_why(&s, now))) != RC_OK)
            goto abort;
        (*done)++;
    }
    if (n == 0) {
        writer_abort(st, txn);
        return RC_OK;
    }
    rc = commit(st, txn);
    if (rc != RC_OK)
        *done = 0;
    return rc;
abort:
    if (cur)
        mdb_cursor_close(cur);
    writer_abort(st, txn);
    *done = 0;
    return rc;
}

static rc_t lmdb_purge(store_t *base, int64_t now, size_t *count)
{
    lmdb_store *st = (lmdb_store *)base;
    size_t done, batch = PURGE_BATCH;
    rc_t rc;
    *count = 0;
    for (;;) {
        take_turn(st);
        rc = purge_batch(st, now, batch, &done);
        buf_t closed = st->closed;
        st->closed = BUF_INIT;
        end_turn(st);
        tell(st, &closed);
        buf_free(&closed);
        if (rc == RC_FULL && batch > 1) {
            batch /= 2; /* a nearly full map: smaller transactions fit */
            continue;
        }
        *count += done;
        if (rc != RC_OK || done < batch)
            return rc;
    }
}

/* RC_OK when a read transaction begins, unless the last commit failed (a
 * full disk, an I/O error) less than PING_FAILED_FOR seconds ago: then the
 * store is not ready, until a commit succeeds or that time has passed (and
 * the next failure says so again). */
#define PING_FAILED_FOR 10
static rc_t lmdb_ping(store_t *base)
{
    lmdb_store *st = (lmdb_store *)base;
    MDB_txn *txn;
    rc_t rc = reader(st, &txn);
    if (rc != RC_OK)
        return rc;
    reader_end(st, txn);
    int64_t failed = atomic_load(&st->failed_at);
    return failed && clock_wall() - failed < PING_FAILED_FOR ? RC_UNAVAILABLE : RC_OK;
}

static rc_t lmdb_scan(store_t *base, int64_t now, store_each_fn fn, void *arg)
{
    lmdb_store *st = (lmdb_store *)base;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    rc_t rc = reader(st, &txn);
    if (rc != RC_OK)
        return rc;
    if ((rc = store_lmdb_rc(mdb_cursor_open(txn, st->sessions, &cur), "cursor")) == RC_OK) {
        int mrc;
        while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
            session_t s;
            if (record_decode(v.mv_data, v.mv_size, &s) == RC_OK && session_live(&s, now) &&
                fn(&s, arg))
                break;
        }
        if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
            rc = store_lmdb_rc(mrc, "scan");
        mdb_cursor_close(cur);
    }
    reader_end(st, txn);
    return rc;
}

static rc_t lmdb_count(store_t *base, size_t *n)
{
    lmdb_store *st = (lmdb_store *)base;
    MDB_txn *txn;
    MDB_stat stat;
    rc_t rc = reader(st, &txn);
    if (rc != RC_OK)
        return rc;
    rc = store_lmdb_rc(mdb_stat(txn, st->sessions, &stat), "stat");
    if (rc == RC_OK)
        *n = stat.ms_entries;
    reader_end(st, txn);
    return rc;
}

static void lmdb_close(store_t *base)
{
    lmdb_store *st = (lmdb_store *)base;
    MDB_txn *txn = pthread_getspecific(st->reader_key);
    if (txn)
        mdb_txn_abort(txn);
    pthread_key_delete(st->reader_key);
    mdb_env_sync(st->env, 1); /* with LMDB_SYNC=meta|none: flush on the way out */
    mdb_env_close(st->env);
    if (st->direct_fd >= 0)
        close(st->direct_fd);
    pthread_mutex_destroy(&st->turn_lock);
    pthread_cond_destroy(&st->turn_wake);
    pthread_rwlock_destroy(&st->map_lock);
    pthread_mutex_destroy(&st->adopt_lock);
    buf_free(&st->closing);
    buf_free(&st->closed);
    free(st);
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static rc_t lmdb_open(const char *path, const store_options *opt, store_t **out,
                      char *err, size_t errlen)
{
    lmdb_store *st = calloc(1, sizeof *st);
    MDB_txn *txn = NULL;
    int rc, dead = 0;
    if (st == NULL) {
        snprintf(err, errlen, "STORE_URL: out of memory");
        return RC_NOMEM;
    }
    st->base.ops = &store_lmdb_ops;
    st->direct_fd = -1;
    st->map_limit = (size_t)opt->map_size;
    if (*path == '\0') {
        snprintf(err, errlen, "STORE_URL: lmdb:// needs a directory path");
        free(st);
        return RC_INVALID;
    }
    if (mkdir_p(path) != 0) {
        snprintf(err, errlen, "STORE_URL: cannot create directory %.200s: %s", path,
                 strerror(errno));
        free(st);
        return RC_INVALID;
    }
    if ((rc = mdb_env_create(&st->env)) != MDB_SUCCESS)
        goto fail;
    if ((rc = mdb_env_set_maxdbs(st->env, 4)) != MDB_SUCCESS ||
        (rc = mdb_env_set_maxreaders(st->env, 1024)) != MDB_SUCCESS ||
        (rc = mdb_env_set_mapsize(st->env, (size_t)opt->map_size)) != MDB_SUCCESS)
        goto fail;
    /* MDB_NOTLS: a reader slot belongs to its transaction, which we keep
     * per thread ourselves. */
    unsigned flags = MDB_NOTLS;
    if (opt->sync == STORE_SYNC_FULL || opt->sync == STORE_SYNC_META)
        flags |= MDB_NOMETASYNC; /* with 0, write_batch syncs the meta page itself */
    else if (opt->sync == STORE_SYNC_NONE)
        flags |= MDB_NOSYNC;
    st->sync_after = opt->sync == STORE_SYNC_FULL;
    if ((rc = mdb_env_open(st->env, path, flags, 0600)) != MDB_SUCCESS)
        goto fail;
    mdb_reader_check(st->env, &dead); /* clear slots of dead processes */
    if (dead)
        log_msg(LOG_INFO, "lmdb: cleared %d stale reader slot(s)", dead);
    /* Data already past our size (another process's larger LMDB_MAP_SIZE):
     * LMDB maps just the data, and a delete would find no page to copy
     * into; map the size the file records, at least the data's. */
    MDB_envinfo info;
    if (mdb_env_info(st->env, &info) == MDB_SUCCESS && info.me_mapsize > (size_t)opt->map_size &&
        (rc = mdb_env_set_mapsize(st->env, 0)) != MDB_SUCCESS)
        goto fail;
    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != MDB_SUCCESS ||
        (rc = mdb_dbi_open(txn, STORE_LMDB_SESSIONS, MDB_CREATE, &st->sessions)) != MDB_SUCCESS ||
        (rc = mdb_dbi_open(txn, "by_user", MDB_CREATE | MDB_DUPSORT, &st->by_user)) != MDB_SUCCESS ||
        (rc = mdb_dbi_open(txn, "by_exp", MDB_CREATE, &st->by_exp)) != MDB_SUCCESS)
        goto fail;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != MDB_SUCCESS)
        goto fail;
    if (pthread_key_create(&st->reader_key, reader_free) != 0) {
        rc = ENOMEM;
        goto fail;
    }
    pthread_mutex_init(&st->turn_lock, NULL);
    pthread_cond_init(&st->turn_wake, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_READER_NP); /* see map_hold */
    pthread_rwlock_init(&st->map_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&st->adopt_lock, NULL);
    if (opt->sync != STORE_SYNC_NONE) /* without syncs nothing waits for the journal */
        st->direct_fd = open_direct(st->env, path);
    *out = &st->base;
    return RC_OK;
fail:
    snprintf(err, errlen, "STORE_URL: cannot open LMDB at %.200s: %s", path, mdb_strerror(rc));
    if (txn)
        mdb_txn_abort(txn);
    if (st->env)
        mdb_env_close(st->env);
    free(st);
    return RC_INVALID;
}

const store_ops store_lmdb_ops = {
    .scheme = "lmdb",
    .open = lmdb_open,
    .close = lmdb_close,
    .list = lmdb_list,
    .batch = lmdb_batch,
    .touch = lmdb_touch,
    .tend = lmdb_tend,
    .purge = lmdb_purge,
    .scan = lmdb_scan,
    .count = lmdb_count,
};
