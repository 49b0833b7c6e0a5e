/* touch.c -- coalesced last_seen_at updates (see touch.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "touch.h"

#define SET_SLOTS (2 * TOUCH_QUEUE_MAX) /* open addressing, at most half full */

typedef char session_id[SESSION_ID_MAX + 1];

struct touch_queue {
    pthread_mutex_t lock;
    size_t n;
    session_id *ids;       /* the notes, in arrival order */
    session_id *spare;     /* swapped in by flush */
    uint32_t *set;         /* index + 1 into ids, 0 = empty */
};

touch_queue *touch_queue_new(void)
{
    touch_queue *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->ids = calloc(TOUCH_QUEUE_MAX, sizeof *q->ids);
    q->spare = calloc(TOUCH_QUEUE_MAX, sizeof *q->spare);
    q->set = calloc(SET_SLOTS, sizeof *q->set);
    if (q->ids == NULL || q->spare == NULL || q->set == NULL) {
        touch_queue_free(q);
        return NULL;
    }
    pthread_mutex_init(&q->lock, NULL);
    return q;
}

void touch_queue_free(touch_queue *q)
{
    if (q == NULL)
        return;
    if (q->set != NULL)
        pthread_mutex_destroy(&q->lock);
    free(q->ids);
    free(q->spare);
    free(q->set);
    free(q);
}

static uint32_t hash(const char *id)
{
    return str_hash(id, strlen(id));
}

void touch_queue_add(touch_queue *q, const char *id)
{
    size_t len = strlen(id);
    if (len > SESSION_ID_MAX)
        return;
    pthread_mutex_lock(&q->lock);
    if (q->n < TOUCH_QUEUE_MAX) {
        uint32_t slot = hash(id) % SET_SLOTS;
        for (;;) {
            uint32_t at = q->set[slot];
            if (at == 0) {
                memcpy(q->ids[q->n], id, len + 1);
                q->set[slot] = (uint32_t)++q->n;
                break;
            }
            if (strcmp(q->ids[at - 1], id) == 0)
                break; /* already noted */
            slot = (slot + 1) % SET_SLOTS;
        }
    }
    pthread_mutex_unlock(&q->lock);
}

rc_t touch_queue_flush(touch_queue *q, store_t *st, int64_t now)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->n;
    session_id *batch = q->ids;
    q->ids = q->spare;
    q->spare = batch;
    q->n = 0;
    if (n)
        memset(q->set, 0, SET_SLOTS * sizeof *q->set);
    pthread_mutex_unlock(&q->lock);
    return store_touch_many(st, (const char (*)[SESSION_ID_MAX + 1])batch, n, now, now);
}
