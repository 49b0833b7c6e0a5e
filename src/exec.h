/* exec.h -- the one executor of the request path: runs the store work a
 * route built (an exec_job) and hands back the result.
 *
 * A job is up to two steps, always in this order:
 *   1. auth (auth_sid != NULL): the caller's own session, named by its
 *      session token, must be live and belong to auth_user; its record is
 *      kept in auth_rec. A closed, ended or foreign session is
 *      RC_UNAUTHORIZED in auth_rc, and step 2 does not run. The token's
 *      generation is judged against the session's (session_token_verdict):
 *      a replaced token used outside its grace window is theft, and the
 *      session is closed (STORE_TOKEN_REUSE) before the 401. The request
 *      is a use of the session: with an idle timeout, a use is written
 *      (a TOUCH, before the answer) once last_seen_at is
 *      session_idle_slack old, so that a session used at t lives through
 *      t + idle_timeout on every process; without one, it is noted for the
 *      background writer (touch.h) once it is SESSION_TOUCH_SOON old, and
 *      noted urgent (the writer woken at once) once it is
 *      SESSION_TOUCH_EVERY old; written before the answer only when the
 *      queue is full or missing. The reads and lists of step 2 show the
 *      uses noted and not yet written.
 *   2. op (has_op): one store operation, with the retries the executor
 *      owns: a create (fresh != NULL) draws a new session id before each
 *      attempt and tries again, up to EXEC_CREATE_ATTEMPTS, while the id is
 *      taken; a close with admin_fallback that finds no session of the
 *      caller's tries once more as an administrator (any owner); a refresh
 *      (refresh, on the auth session) rotates the session's token by a
 *      compare-and-set of its record (STORE_OP_SWAP), judged again on the
 *      record found when another process changed it first, up to
 *      EXEC_SWAP_ATTEMPTS: concurrent refreshes with one token rotate once.
 *
 * Where a job runs is decided here, from what it does and what the store
 * says of itself (store_t.remote: a read is a network round trip):
 *   - lists and close-alls: the bulk lane, its own threads, one job at a
 *     time, so that nothing waits behind one user's thousands of sessions;
 *   - writes, and every job on a remote store: the commit lane, whose
 *     threads take every job queued at once and run each step for all of
 *     them with one store_batch (one LMDB transaction and commit, or one
 *     pipelined Redis round trip);
 *   - the rest (reads of a local store): inline, on the caller's thread;
 *     when its auth step finds a write to make (a use to record, a theft
 *     to close), the job goes on in the commit lane.
 * Store work that can block (a disk sync, the network) thus never runs on
 * the caller's (an event) thread. */
#ifndef EXEC_H
#define EXEC_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "rc.h"
#include "session.h"
#include "store.h"
#include "touch.h"

#define EXEC_CREATE_ATTEMPTS 3
#define EXEC_BATCH_MAX 256
#define EXEC_SWAP_ATTEMPTS 4

typedef struct exec exec;
typedef struct exec_job exec_job;

struct exec_job {
    int64_t now;        /* the request's clock: expiry judged by it */
    /* step 1 */
    const char *auth_sid;
    str_t auth_user;
    uint32_t auth_gen;  /* the session token's generation */
    int64_t grace;      /* SESSION_REFRESH_GRACE */
    /* step 2 */
    int has_op;
    store_op op;
    session_t *fresh;   /* a create: its id is drawn here */
    int admin_fallback; /* a close as owner (op.user) that may then be as admin */
    int refresh;        /* rotate the token of the auth session (op built here) */
    /* results */
    rc_t auth_rc;
    buf_t auth_rec;     /* the caller's session record (freed by the job's owner) */
    int as_admin;       /* the close ran as administrator */
    session_t cur;      /* refresh: the session as it now is (views into auth_rec) */
    session_t rotated;  /* refresh: the rotated session being written */
    /* the executor's own */
    int authed;         /* step 1 read and judged */
    int auth_write;     /* step 1's write still to make (exec.c) */
    int64_t noted_at;         /* a read: the use noted for its session (touch.h) */
    touch_queue *touches;     /* a list: the uses noted, shown in what it lists */
    store_each_fn list_each;  /* a list: the route's own callback and its arg */
    void *list_arg;
    /* completion of a queued job: called on an executor thread, after which
     * the executor no longer touches the job; last is set on the call for
     * the final job of the batch the thread ran (the calls of one batch
     * come one after another, from one thread) */
    void (*done)(exec_job *j, int last);
    void *arg;
    exec_job *next;     /* queue link (the executor's) */
};

/* Starts the lanes' threads for st; touches (may be NULL) takes the notes
 * of note_use. NULL when out of memory; a lane whose threads cannot start
 * runs its jobs inline. */
exec *exec_start(store_t *st, touch_queue *touches);
/* Runs j: inline (returns 0, the results are in j) or queued (returns 1:
 * park(park_arg) was called before any executor thread could see j, and
 * j->done(j) will be called once its results are in). */
int exec_submit(exec *e, exec_job *j, void (*park)(void *), void *park_arg);
/* Finishes what is queued (calling each done) and joins the threads;
 * later jobs run inline. */
void exec_drain(exec *e);
void exec_free(exec *e);

/* The steps of n jobs on the calling thread, each step one store_batch for
 * all of them (what a lane's thread does with what it took). Exported for
 * unit tests. */
void exec_run(store_t *st, touch_queue *touches, exec_job *const *jobs, size_t n);

#endif
