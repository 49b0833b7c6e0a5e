/* touch.h -- coalesced last_seen_at updates.
 *
 * A use of a session is not written on the request's path when the lag rule
 * allows (session_use_due): the executor notes it here, and a background
 * thread writes the noted sessions (a store write per distinct use time),
 * about once a second, or at once when a note is urgent (a session unused for a minute:
 * its last_seen_at must move now, not in a second). Until a note is written
 * the process's own reads see it (touch_queue_noted), so a read right after
 * a use shows the use; a list whose snapshot is older than the write before
 * last may not. A full queue refuses notes (the caller then writes
 * the use itself, or lets the next use note it again). */
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
/* Notes a use of id (a valid session id) at time at; a session noted and
 * not written yet is kept once, with its latest use. urgent wakes the
 * writer (touch_queue_wait). RC_FULL when the queue is full and the note
 * was dropped. Thread-safe. */
rc_t touch_queue_add(touch_queue *q, const char *id, int64_t at, int urgent);
/* The latest use of id noted and not yet written to the store (a flush
 * under way included), or written by the last flush (shown until the next
 * one, for reads whose snapshot came before it landed); 0 when none.
 * Thread-safe; cheap when nothing is noted. */
int64_t touch_queue_noted(touch_queue *q, const char *id);
/* The writer's wait: returns when a note is urgent, or at the monotonic
 * deadline (clock_ms), or once touch_queue_stop was called; 0 in that last
 * case. */
int touch_queue_wait(touch_queue *q, uint64_t deadline_ms);
void touch_queue_stop(touch_queue *q);
/* Writes every noted session's last_seen_at, each the time of its latest
 * use noted (one store write per distinct time); now judges which sessions
 * still live. When the store fails, the notes are kept for the next flush.
 * One caller at a time. */
rc_t touch_queue_flush(touch_queue *q, store_t *st, int64_t now);

#endif
