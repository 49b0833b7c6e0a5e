/* record.h -- the binary record of a session, as stores keep it: a fixed
 * little-endian header (version, field lengths, created_at, last_seen_at,
 * expires_at, idle_timeout, token generation, rotated_at), then the
 * variable fields. record.c is the one C reader and
 * writer; the others are store_redis.c's scripts: the create script reads
 * the user id (after a header of 36 or 52 bytes, by version), created_at
 * and last_seen_at of a user's sessions inside Redis, and the touch script
 * reads and rewrites last_seen_at (bytes 20..27 in every version) in place
 * (a change of layout changes them too, and REC_VERSION). */
#ifndef RECORD_H
#define RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "rc.h"
#include "session.h"

/* Appends the record of s to out (always the current version). */
rc_t record_encode(const session_t *s, buf_t *out);
/* Pure decoder: s's views point into rec, which must outlive s.
 * RC_INVALID on any inconsistency. */
rc_t record_decode(const void *rec, size_t len, session_t *s);
/* Sets last_seen_at in an encoded record of len bytes, in place: the one
 * field a store rewrites. RC_INVALID when rec is too short to be a record. */
rc_t record_set_last_seen(void *rec, size_t len, int64_t last_seen);

#endif
