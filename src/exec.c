/* exec.c -- the executor of the request path (see exec.h): the steps of a
 * job, and the two lanes that run queued jobs. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "exec.h"
#include "log.h"
#include "metrics.h"
#include "record.h"

/* Commit-lane threads. On LMDB two: one batch's transaction is applied and
 * its data synced while the previous batch's meta page syncs (store_lmdb.c,
 * LMDB_SYNC=full), the store's writer lock keeping the transactions in
 * order. On Redis one: its connection then carries everything queued in one
 * pipeline (two split the batches, measured slower). */
#define COMMIT_THREADS_LOCAL 2
#define COMMIT_THREADS_REMOTE 1
#define BULK_THREADS 2
#define LANE_THREADS_MAX 2

typedef struct lane {
    pthread_mutex_t lock;
    pthread_cond_t work;
    exec_job *head, *tail;
    int stop;
    size_t batch_max; /* jobs a thread takes at once */
    size_t nthreads;
    pthread_t threads[LANE_THREADS_MAX];
    exec *e;
} lane;

struct exec {
    store_t *store;
    touch_queue *touches;
    lane *commit, *bulk;
};

/* ---- the steps ---- */

enum { WRITE_NONE, WRITE_TOUCH, WRITE_REUSED }; /* exec_job.auth_write */

static int writes(const exec_job *j)
{
    return j->refresh ||
           (j->has_op && (j->op.kind == STORE_OP_PUT || j->op.kind == STORE_OP_DEL ||
                          j->op.kind == STORE_OP_DEL_USER));
}

static int bulky(const exec_job *j)
{
    return j->has_op && (j->op.kind == STORE_OP_LIST || j->op.kind == STORE_OP_DEL_USER);
}

/* Judges the read of a job's own session: live, auth_user's, a token of a
 * generation in force; and whether this use must be written. */
static void judge_auth(exec_job *j, rc_t rc, touch_queue *touches)
{
    session_t s;
    j->authed = 1;
    j->auth_write = WRITE_NONE;
    if (rc == RC_OK && record_decode(j->auth_rec.p, j->auth_rec.len, &s) != RC_OK) {
        log_msg(LOG_ERROR, "a stored session record does not decode");
        rc = RC_UNAVAILABLE; /* the store failed us: 503 */
    }
    if (rc == RC_NOT_FOUND || (rc == RC_OK && !str_eq(s.user_id, j->auth_user)))
        rc = RC_UNAUTHORIZED;
    if (rc == RC_OK) {
        session_verdict v = session_token_verdict(&s, j->auth_gen, j->now, j->grace);
        if (v == SESSION_TOKEN_REUSED)
            j->auth_write = WRITE_REUSED;
        if (v == SESSION_TOKEN_REUSED || v == SESSION_TOKEN_UNKNOWN)
            rc = RC_UNAUTHORIZED;
    }
    session_due due = rc == RC_OK ? session_use_due(&s, j->now) : SESSION_DUE_NONE;
    /* Where a use due goes:
     *  - a refresh: its rotation records it (a background write meanwhile
     *    would fail its compare-and-set); with an idle timeout, a use due
     *    now is written first too, for the answer of the grace path;
     *  - a session with an idle timeout (never LATER): written before the
     *    answer, the only write that moves its end in the store;
     *  - else noted for the background writer, urgent when due now (this
     *    process's reads show it until written); written before the answer
     *    when the queue is full or missing. */
    int write_now = due == SESSION_DUE_NOW;
    if (j->refresh)
        write_now = write_now && s.idle_timeout > 0;
    else if (due != SESSION_DUE_NONE && s.idle_timeout == 0 && touches != NULL &&
             touch_queue_add(touches, s.id, j->now, write_now) == RC_OK)
        write_now = 0;
    if (write_now)
        j->auth_write = WRITE_TOUCH;
    j->auth_rc = rc;
}

/* The session a TOUCH of j moves the expiry of: auth_rec decoded. */
static rc_t auth_session(exec_job *j, session_t *s)
{
    return record_decode(j->auth_rec.p, j->auth_rec.len, s) == RC_OK ? RC_OK : RC_UNAVAILABLE;
}

/* Step 1 for the jobs not read yet: one batch of GETs. */
static void auth_read(store_t *st, touch_queue *touches, exec_job *const *jobs, size_t n,
                      exec_job **ready, store_op **ops)
{
    store_op one_auth[1];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->auth_sid != NULL && !jobs[i]->authed)
            ready[k++] = jobs[i];
    if (k == 0)
        return;
    store_op *auth = k > 1 ? calloc(k, sizeof *auth) : one_auth;
    if (auth == NULL) {
        for (size_t i = 0; i < k; i++)
            ready[i]->auth_rc = RC_NOMEM;
        return;
    }
    for (size_t i = 0; i < k; i++) {
        auth[i] = (store_op){ .kind = STORE_OP_GET, .id = ready[i]->auth_sid,
                              .now = ready[i]->now, .rec = &ready[i]->auth_rec };
        ops[i] = &auth[i];
    }
    store_batch(st, ops, k);
    for (size_t i = 0; i < k; i++)
        judge_auth(ready[i], auth[i].rc, touches);
    if (auth != one_auth)
        free(auth);
}

/* Step 1's writes, one batch: the uses to record, the thefts to close. */
static void auth_writes(store_t *st, exec_job *const *jobs, size_t n, exec_job **ready,
                        store_op **ops)
{
    store_op one_w[1];
    session_t one_s[1];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->auth_write != WRITE_NONE)
            ready[k++] = jobs[i];
    if (k == 0)
        return;
    store_op *w = k > 1 ? calloc(k, sizeof *w) : one_w;
    session_t *s = k > 1 ? calloc(k, sizeof *s) : one_s;
    if (w == NULL || s == NULL) {
        for (size_t i = 0; i < k; i++)
            ready[i]->auth_rc = RC_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < k; i++) {
        exec_job *j = ready[i];
        if (j->auth_write == WRITE_REUSED)
            w[i] = (store_op){ .kind = STORE_OP_DEL, .id = j->auth_sid, .user = j->auth_user,
                               .now = j->now, .why = STORE_TOKEN_REUSE };
        else
            w[i] = (store_op){ .kind = STORE_OP_TOUCH, .id = j->auth_sid, .now = j->now,
                               .s = auth_session(j, &s[i]) == RC_OK ? &s[i] : NULL };
        ops[i] = &w[i];
    }
    store_batch(st, ops, k);
    for (size_t i = 0; i < k; i++) {
        exec_job *j = ready[i];
        rc_t rc = w[i].rc;
        if (j->auth_write == WRITE_TOUCH && rc == RC_OK)
            record_set_last_seen(j->auth_rec.p, j->auth_rec.len, j->now);
        else if (rc == RC_NOT_FOUND || (rc == RC_OK && j->auth_write == WRITE_REUSED))
            j->auth_rc = RC_UNAUTHORIZED; /* closed meanwhile; or closed now as stolen */
        else if (rc != RC_OK)
            j->auth_rc = rc; /* a use or a theft the store could not record: 503 */
        j->auth_write = WRITE_NONE;
    }
out:
    if (w != one_w)
        free(w);
    if (s != one_s)
        free(s);
}

/* A refresh's next move on the session as now read into auth_rec: 1 when
 * a SWAP (or a theft's close) is to be tried, 0 when the job is done. */
static int refresh_next(exec_job *j)
{
    session_t *s = &j->cur;
    if (record_decode(j->auth_rec.p, j->auth_rec.len, s) != RC_OK) {
        j->op.rc = RC_UNAVAILABLE;
        return 0;
    }
    if (!str_eq(s->user_id, j->auth_user)) {
        j->auth_rc = RC_UNAUTHORIZED;
        return 0;
    }
    switch (session_token_verdict(s, j->auth_gen, j->now, j->grace)) {
    case SESSION_TOKEN_CURRENT:
        j->rotated = *s;
        j->rotated.gen = s->gen + 1;
        j->rotated.rotated_at = j->now;
        if (j->rotated.last_seen_at < j->now)
            j->rotated.last_seen_at = j->now; /* a refresh is a use */
        j->op = (store_op){ .kind = STORE_OP_SWAP, .id = j->auth_sid, .now = j->now,
                            .rec = &j->auth_rec, .s = &j->rotated };
        return 1;
    case SESSION_TOKEN_GRACE: /* rotated by another refresh: answer its token */
        j->op.rc = RC_OK;
        return 0;
    case SESSION_TOKEN_REUSED:
        j->op = (store_op){ .kind = STORE_OP_DEL, .id = j->auth_sid, .user = j->auth_user,
                            .now = j->now, .why = STORE_TOKEN_REUSE };
        return 1;
    case SESSION_TOKEN_UNKNOWN:
        break;
    }
    j->auth_rc = RC_UNAUTHORIZED;
    return 0;
}

/* What a refresh's store op answered: 1 to try again. */
static int refresh_after(exec_job *j, int attempt)
{
    if (j->op.kind == STORE_OP_DEL) { /* the theft closed (or already gone) */
        if (j->op.rc == RC_OK || j->op.rc == RC_NOT_FOUND)
            j->auth_rc = RC_UNAUTHORIZED;
        return 0;
    }
    if (j->op.rc == RC_OK) { /* rotated: the session is now the rotated one */
        j->cur = j->rotated;
        return 0;
    }
    if (j->op.rc == RC_NOT_FOUND) {
        j->auth_rc = RC_UNAUTHORIZED; /* closed or ended meanwhile */
        return 0;
    }
    if (j->op.rc != RC_EXISTS)
        return 0; /* the store failed: 503 */
    if (attempt >= EXEC_SWAP_ATTEMPTS) {
        j->op.rc = RC_UNAVAILABLE; /* changed under us every time: retry later */
        return 0;
    }
    return refresh_next(j); /* auth_rec holds the record found */
}

/* The uses this process noted and has not written yet, shown in what a
 * read or a list hands back (touch.h): a read right after a use shows it.
 * A read's is looked up before the store is read (noted_at): a use not
 * noted then is written, and the read sees it. */
static void show_noted(int64_t at, buf_t *rec)
{
    session_t s;
    if (at != 0 && record_decode(rec->p, rec->len, &s) == RC_OK && s.last_seen_at < at)
        record_set_last_seen(rec->p, rec->len, at);
}

static int list_noted(const session_t *s, void *arg)
{
    exec_job *j = arg;
    int64_t at = touch_queue_noted(j->touches, s->id);
    if (at <= s->last_seen_at)
        return j->list_each(s, j->list_arg);
    session_t seen = *s;
    seen.last_seen_at = at;
    return j->list_each(&seen, j->list_arg);
}

/* Applies the ops of the jobs in ready[0..n) with one store_batch. */
static void apply(store_t *st, exec_job **ready, store_op **ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ops[i] = &ready[i]->op;
    if (n > 0)
        store_batch(st, ops, n);
}

/* Creates are counted here; closes by the store's listener (server.c),
 * which hears of every one, whoever made it. */
static void count(const exec_job *j)
{
    if (j->op.rc == RC_OK && j->op.kind == STORE_OP_PUT && j->fresh != NULL)
        metrics_sessions_created(1);
}

void exec_run(store_t *st, touch_queue *touches, exec_job *const *jobs, size_t n)
{
    exec_job *one_job[1];
    store_op *one_op[1];
    exec_job **ready = n > 1 ? calloc(n, sizeof(exec_job *)) : one_job;
    store_op **ops = n > 1 ? calloc(n, sizeof(store_op *)) : one_op;
    size_t k = 0;
    if (ready == NULL || ops == NULL) {
        for (size_t i = 0; i < n; i++)
            jobs[i]->auth_rc = jobs[i]->op.rc = RC_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!jobs[i]->authed)
            jobs[i]->auth_rc = RC_OK;
        jobs[i]->as_admin = 0;
    }
    /* step 1: the callers' own sessions, one batch; then their writes */
    auth_read(st, touches, jobs, n, ready, ops);
    auth_writes(st, jobs, n, ready, ops);
    /* step 2: the ops of those let through, one batch per attempt */
    for (size_t i = 0; i < n; i++) {
        exec_job *j = jobs[i];
        if (j->auth_rc != RC_OK)
            continue;
        if (j->refresh) {
            j->has_op = 1;
            if (!refresh_next(j))
                continue;
        }
        if (!j->has_op)
            continue;
        if (j->fresh != NULL && (j->op.rc = session_id_generate_for(j->fresh->user_id, j->fresh->id)) != RC_OK)
            continue;
        j->noted_at = 0;
        if (j->op.kind == STORE_OP_GET && !j->refresh && j->op.id != NULL && touches != NULL)
            j->noted_at = touch_queue_noted(touches, j->op.id);
        if (j->op.kind == STORE_OP_LIST && touches != NULL) {
            j->touches = touches;
            j->list_each = j->op.each;
            j->list_arg = j->op.arg;
            j->op.each = list_noted;
            j->op.arg = j;
        }
        ready[k++] = j;
    }
    for (int attempt = 1; k > 0; attempt++) {
        apply(st, ready, ops, k);
        size_t again = 0;
        for (size_t i = 0; i < k; i++) {
            exec_job *j = ready[i];
            if (j->fresh != NULL && j->op.rc == RC_EXISTS && attempt < EXEC_CREATE_ATTEMPTS) {
                /* another process drew the same id: astronomically rare */
                if ((j->op.rc = session_id_generate_for(j->fresh->user_id, j->fresh->id)) == RC_OK)
                    ready[again++] = j;
            } else if (j->admin_fallback && !j->as_admin && j->op.rc == RC_NOT_FOUND) {
                j->as_admin = 1;
                j->op.user = STR_NULL;
                ready[again++] = j;
            } else if (j->refresh && refresh_after(j, attempt)) {
                ready[again++] = j;
            }
        }
        k = again;
    }
    for (size_t i = 0; i < n; i++) {
        exec_job *j = jobs[i];
        if (!j->has_op || j->auth_rc != RC_OK)
            continue;
        count(j);
        if (j->op.kind == STORE_OP_GET && !j->refresh && j->op.rc == RC_OK && j->op.rec != NULL)
            show_noted(j->noted_at, j->op.rec);
        if (j->op.each == list_noted) {
            j->op.each = j->list_each;
            j->op.arg = j->list_arg;
        }
    }
out:
    if (ready != one_job)
        free(ready);
    if (ops != one_op)
        free(ops);
}

/* ---- the lanes ---- */

static void *lane_loop(void *arg)
{
    lane *q = arg;
    exec_job *jobs[EXEC_BATCH_MAX];
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->head == NULL && !q->stop)
            pthread_cond_wait(&q->work, &q->lock);
        if (q->head == NULL)
            break;
        size_t n = 0;
        for (; q->head != NULL && n < q->batch_max; q->head = q->head->next)
            jobs[n++] = q->head;
        if (q->head == NULL)
            q->tail = NULL;
        else
            pthread_cond_signal(&q->work); /* the rest for another thread */
        pthread_mutex_unlock(&q->lock);
        exec_run(q->e->store, q->e->touches, jobs, n);
        /* collected first: a job may be gone once its done returns */
        for (size_t i = 0; i < n; i++)
            jobs[i]->done(jobs[i], i + 1 == n);
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* A lane with up to nthreads threads; NULL when none could start (its
 * jobs then run inline). */
static lane *lane_start(exec *e, size_t nthreads, size_t batch_max)
{
    lane *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->work, NULL);
    q->batch_max = batch_max;
    q->e = e;
    while (q->nthreads < nthreads && q->nthreads < LANE_THREADS_MAX &&
           pthread_create(&q->threads[q->nthreads], NULL, lane_loop, q) == 0)
        q->nthreads++;
    if (q->nthreads == 0) {
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->work);
        free(q);
        return NULL;
    }
    return q;
}

static void lane_drain(lane *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->lock);
    for (size_t i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    q->nthreads = 0;
}

static void lane_free(lane *q)
{
    if (q == NULL)
        return;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->work);
    free(q);
}

exec *exec_start(store_t *st, touch_queue *touches)
{
    exec *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->store = st;
    e->touches = touches;
    e->commit = lane_start(e, st->remote ? COMMIT_THREADS_REMOTE : COMMIT_THREADS_LOCAL,
                           EXEC_BATCH_MAX);
    e->bulk = lane_start(e, BULK_THREADS, 1);
    if (e->commit == NULL || e->bulk == NULL)
        log_msg(LOG_WARN, "executor: threads could not start; store work runs inline");
    return e;
}

static int enqueue(lane *q, exec_job *j, void (*park)(void *), void *park_arg)
{
    pthread_mutex_lock(&q->lock);
    if (q->stop) {
        pthread_mutex_unlock(&q->lock);
        return 0;
    }
    park(park_arg);
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->lock);
    return 1;
}

int exec_submit(exec *e, exec_job *j, void (*park)(void *), void *park_arg)
{
    lane *q = bulky(j) ? e->bulk : writes(j) || e->store->remote ? e->commit : NULL;
    if (q != NULL && enqueue(q, j, park, park_arg))
        return 1;
    if (q == NULL && j->auth_sid != NULL) {
        /* a local read: its auth step here; a write it finds goes queued */
        exec_job *one = j;
        exec_job *ready[1];
        store_op *ops[1];
        j->auth_rc = RC_OK;
        auth_read(e->store, e->touches, &one, 1, ready, ops);
        if (j->auth_write != WRITE_NONE && e->commit != NULL &&
            enqueue(e->commit, j, park, park_arg))
            return 1;
    }
    exec_job *one = j;
    exec_run(e->store, e->touches, &one, 1);
    return 0;
}

void exec_drain(exec *e)
{
    if (e == NULL)
        return;
    lane_drain(e->commit);
    lane_drain(e->bulk);
}

void exec_free(exec *e)
{
    if (e == NULL)
        return;
    lane_free(e->commit);
    lane_free(e->bulk);
    free(e);
}
