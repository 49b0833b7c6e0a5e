/* touch.c -- coalesced last_seen_at updates (see touch.h). */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "log.h"
#include "touch.h"

#define SET_SLOTS (2 * TOUCH_QUEUE_MAX) /* open addressing, at most half full */

typedef char session_id[SESSION_ID_MAX + 1];

/* A set of notes: the ids in arrival order (what the store is given), each
 * with its latest use and its slot in the hash set. */
typedef struct notes {
    size_t n;
    session_id *ids;
    int64_t *at;
    uint32_t *slot_of;
    uint32_t *set; /* index + 1 into ids, 0 = empty */
} notes;

struct touch_queue {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    notes cur;       /* noted since the last flush began */
    notes flying;    /* being written by the flush under way */
    notes landed;    /* written by the last flush (shown until the next) */
    session_id *scratch; /* the flush's: the ids of one time */
    atomic_size_t noted; /* cur.n + flying.n + landed.n, read without the lock */
    int urgent, stop;
};

static int notes_init(notes *ns)
{
    ns->ids = calloc(TOUCH_QUEUE_MAX, sizeof *ns->ids);
    ns->at = calloc(TOUCH_QUEUE_MAX, sizeof *ns->at);
    ns->slot_of = calloc(TOUCH_QUEUE_MAX, sizeof *ns->slot_of);
    ns->set = calloc(SET_SLOTS, sizeof *ns->set);
    return ns->ids != NULL && ns->at != NULL && ns->slot_of != NULL && ns->set != NULL;
}

static void notes_free(notes *ns)
{
    free(ns->ids);
    free(ns->at);
    free(ns->slot_of);
    free(ns->set);
}

/* The index + 1 of id in ns, or 0 with *slot set to where it would go. */
static size_t find(const notes *ns, const char *id, uint32_t hash, uint32_t *slot)
{
    uint32_t at = hash % SET_SLOTS;
    for (;; at = (at + 1) % SET_SLOTS) {
        uint32_t e = ns->set[at];
        if (e == 0) {
            *slot = at;
            return 0;
        }
        if (strcmp(ns->ids[e - 1], id) == 0)
            return e;
    }
}

touch_queue *touch_queue_new(void)
{
    touch_queue *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines are clock_ms */
    pthread_cond_init(&q->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&q->lock, NULL);
    q->scratch = calloc(TOUCH_QUEUE_MAX, sizeof *q->scratch);
    if (q->scratch == NULL || !notes_init(&q->cur) || !notes_init(&q->flying) ||
        !notes_init(&q->landed)) {
        touch_queue_free(q);
        return NULL;
    }
    return q;
}

void touch_queue_free(touch_queue *q)
{
    if (q == NULL)
        return;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->wake);
    notes_free(&q->cur);
    notes_free(&q->flying);
    notes_free(&q->landed);
    free(q->scratch);
    free(q);
}

/* Notes id (len bytes, hash h) in ns at time at, or moves its time later.
 * RC_FULL when ns is full. Under the lock. */
static rc_t note(notes *ns, const char *id, size_t len, uint32_t h, int64_t at)
{
    uint32_t slot;
    size_t e = find(ns, id, h, &slot);
    if (e != 0) {
        if (ns->at[e - 1] < at)
            ns->at[e - 1] = at;
        return RC_OK;
    }
    if (ns->n == TOUCH_QUEUE_MAX)
        return RC_FULL;
    size_t i = ns->n++;
    memcpy(ns->ids[i], id, len + 1);
    ns->at[i] = at;
    ns->slot_of[i] = slot;
    ns->set[slot] = (uint32_t)(i + 1);
    return RC_OK;
}

static void notes_clear(notes *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        ns->set[ns->slot_of[i]] = 0;
    ns->n = 0;
}

static void count_noted(touch_queue *q)
{
    atomic_store(&q->noted, q->cur.n + q->flying.n + q->landed.n);
}

rc_t touch_queue_add(touch_queue *q, const char *id, int64_t at, int urgent)
{
    size_t len = strlen(id);
    if (len > SESSION_ID_MAX)
        return RC_INVALID;
    uint32_t h = str_hash(id, len), slot;
    rc_t rc = RC_OK;
    pthread_mutex_lock(&q->lock);
    size_t e = find(&q->flying, id, h, &slot);
    if (e != 0 && q->flying.at[e - 1] >= at) {
        urgent = 0; /* being written now, this use with it */
    } else {
        if (e != 0)
            urgent = 0; /* being written now, a little earlier: this use later */
        if ((rc = note(&q->cur, id, len, h, at)) == RC_OK)
            count_noted(q);
        else
            urgent = 0;
    }
    if (urgent && !q->urgent) {
        q->urgent = 1;
        pthread_cond_signal(&q->wake);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

static int64_t noted_in(const notes *ns, const char *id, uint32_t h)
{
    uint32_t slot;
    size_t e = find(ns, id, h, &slot);
    return e != 0 ? ns->at[e - 1] : 0;
}

int64_t touch_queue_noted(touch_queue *q, const char *id)
{
    if (atomic_load(&q->noted) == 0)
        return 0;
    size_t len = strlen(id);
    if (len > SESSION_ID_MAX)
        return 0;
    uint32_t h = str_hash(id, len);
    pthread_mutex_lock(&q->lock);
    int64_t seen = noted_in(&q->cur, id, h), t;
    if ((t = noted_in(&q->flying, id, h)) > seen)
        seen = t;
    if ((t = noted_in(&q->landed, id, h)) > seen)
        seen = t;
    pthread_mutex_unlock(&q->lock);
    return seen;
}

int touch_queue_wait(touch_queue *q, uint64_t deadline_ms)
{
    struct timespec until = { .tv_sec = (time_t)(deadline_ms / 1000u),
                              .tv_nsec = (long)(deadline_ms % 1000u) * 1000000L };
    pthread_mutex_lock(&q->lock);
    while (!q->urgent && !q->stop)
        if (pthread_cond_timedwait(&q->wake, &q->lock, &until) == ETIMEDOUT)
            break;
    q->urgent = 0;
    int go = !q->stop;
    pthread_mutex_unlock(&q->lock);
    return go;
}

void touch_queue_stop(touch_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

/* Writes the notes of b, each with its own use's time: one store write per
 * distinct time (a batch spans a second or two), stopping at the first
 * that fails. */
static rc_t write_notes(touch_queue *q, const notes *b, store_t *st, int64_t now)
{
    int64_t done = INT64_MIN; /* every time up to here is written */
    for (;;) {
        int64_t t = INT64_MAX;
        for (size_t i = 0; i < b->n; i++)
            if (b->at[i] > done && b->at[i] < t)
                t = b->at[i];
        if (t == INT64_MAX)
            return RC_OK;
        size_t k = 0;
        for (size_t i = 0; i < b->n; i++)
            if (b->at[i] == t)
                memcpy(q->scratch[k++], b->ids[i], sizeof *q->scratch);
        rc_t rc = store_touch_many(st, (const char (*)[SESSION_ID_MAX + 1])q->scratch, k, t, now);
        if (rc != RC_OK)
            return rc; /* all noted again: no store call per time while it fails */
        done = t;
    }
}

rc_t touch_queue_flush(touch_queue *q, store_t *st, int64_t now)
{
    pthread_mutex_lock(&q->lock);
    assert(q->flying.n == 0); /* one flush at a time */
    notes batch = q->cur;
    q->cur = q->flying;
    q->flying = batch;
    pthread_mutex_unlock(&q->lock);
    rc_t rc = batch.n > 0 ? write_notes(q, &batch, st, now) : RC_OK;
    pthread_mutex_lock(&q->lock);
    notes_clear(&q->landed);
    if (rc != RC_OK) {
        /* not written: noted again for the next flush (a use can wait) */
        size_t dropped = 0;
        for (size_t i = 0; i < q->flying.n; i++) {
            size_t len = strlen(q->flying.ids[i]);
            if (note(&q->cur, q->flying.ids[i], len, str_hash(q->flying.ids[i], len),
                     q->flying.at[i]) != RC_OK)
                dropped++;
        }
        if (dropped > 0)
            log_msg(LOG_WARN, "touch: %zu use(s) not recorded: the queue is full", dropped);
        notes_clear(&q->flying);
    } else {
        /* written: still shown until the next flush, to reads that took
         * their snapshot before this write landed (a long list) */
        batch = q->landed;
        q->landed = q->flying;
        q->flying = batch;
    }
    count_noted(q);
    pthread_mutex_unlock(&q->lock);
    return rc;
}
