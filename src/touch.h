/* touch.h -- coalesced last_seen_at updates.
 *
 * /validate may record last_seen_at up to a minute late, so it never writes
 * on the request's path: it notes the session here, and a background thread
 * writes every noted session in one store write about once a second. A full
 * queue drops notes (the next validate notes the session again). */
#ifndef TOUCH_H
#define TOUCH_H

#include <stdint.h>
#include "rc.h"
#include "store.h"

#define TOUCH_QUEUE_MAX 8192

typedef struct touch_queue touch_queue;

/* NULL when out of memory. Free with touch_queue_free. */
touch_queue *touch_queue_new(void);
void touch_queue_free(touch_queue *q);
/* Notes id (a valid session id); duplicates are kept once. Thread-safe. */
void touch_queue_add(touch_queue *q, const char *id);
/* Writes last_seen_at = now for every noted session. One caller at a time. */
rc_t touch_queue_flush(touch_queue *q, store_t *st, int64_t now);

#endif
