/* touch.c -- coalesced last_seen_at updates (see touch.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
    atomic_size_t noted; /* cur.n + flying.n, read without the lock */
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
    if (!notes_init(&q->cur) || !notes_init(&q->flying)) {
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
    free(q);
}

rc_t touch_queue_add(touch_queue *q, const char *id, int64_t at, int urgent)
{
    size_t len = strlen(id);
    if (len > SESSION_ID_MAX)
        return RC_INVALID;
    uint32_t h = str_hash(id, len), slot;
    rc_t rc = RC_OK;
    int pending = 1; /* in cur: for the next flush */
    pthread_mutex_lock(&q->lock);
    size_t e;
    if (find(&q->flying, id, h, &slot) != 0) {
        pending = 0; /* being written now, with the flush's clock: within a second of at */
    } else if ((e = find(&q->cur, id, h, &slot)) != 0) {
        if (q->cur.at[e - 1] < at)
            q->cur.at[e - 1] = at;
    } else if (q->cur.n == TOUCH_QUEUE_MAX) {
        rc = RC_FULL;
        pending = 0;
    } else {
        size_t i = q->cur.n++;
        memcpy(q->cur.ids[i], id, len + 1);
        q->cur.at[i] = at;
        q->cur.slot_of[i] = slot;
        q->cur.set[slot] = (uint32_t)(i + 1);
        atomic_store(&q->noted, q->cur.n + q->flying.n);
    }
    if (pending && urgent && !q->urgent) {
        q->urgent = 1;
        pthread_cond_signal(&q->wake);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int64_t touch_queue_noted(touch_queue *q, const char *id)
{
    if (atomic_load(&q->noted) == 0)
        return 0;
    size_t len = strlen(id);
    if (len > SESSION_ID_MAX)
        return 0;
    uint32_t h = str_hash(id, len), slot;
    int64_t seen = 0;
    pthread_mutex_lock(&q->lock);
    size_t e = find(&q->cur, id, h, &slot);
    if (e != 0)
        seen = q->cur.at[e - 1];
    if ((e = find(&q->flying, id, h, &slot)) != 0 && q->flying.at[e - 1] > seen)
        seen = q->flying.at[e - 1];
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

rc_t touch_queue_flush(touch_queue *q, store_t *st, int64_t now)
{
    pthread_mutex_lock(&q->lock);
    notes batch = q->cur; /* flying is empty: one flush at a time */
    q->cur = q->flying;
    q->flying = batch;
    pthread_mutex_unlock(&q->lock);
    if (batch.n == 0)
        return RC_OK;
    rc_t rc = store_touch_many(st, (const char (*)[SESSION_ID_MAX + 1])batch.ids, batch.n,
                               now, now);
    pthread_mutex_lock(&q->lock); /* written (or lost): reads see the store again */
    for (size_t i = 0; i < q->flying.n; i++)
        q->flying.set[q->flying.slot_of[i]] = 0;
    q->flying.n = 0;
    atomic_store(&q->noted, q->cur.n);
    pthread_mutex_unlock(&q->lock);
    return rc;
}
