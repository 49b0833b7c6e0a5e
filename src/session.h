/* session.h -- a session and its identity: the session_t view, id
 * generation, the rules for ids, user ids and text, liveness. Its binary
 * form is record.h, its JSON form session_json.h.
 *
 * A session_t is a view: its str_t fields point into memory owned by
 * someone else (a decoded record buffer, a parsed request). */
#ifndef SESSION_H
#define SESSION_H

#include <stdint.h>
#include "buf.h"
#include "rc.h"

#define SESSION_ID_TIME 9      /* the creation stamp's prefix, see session_id_make */
#define SESSION_ID_SEQ_BITS 10 /* a stamp is milliseconds << 10 | a sequence */
#define SESSION_ID_LEN 31      /* that prefix, then 16 random bytes in base64url */
#define SESSION_ID_TAG 3       /* the user's placement tag, at the end of a session's id */
#define SESSION_ID_TAGGED_LEN (SESSION_ID_LEN + SESSION_ID_TAG)
#define SESSION_ID_MIN 22
#define SESSION_ID_MAX 64
#define SESSION_USER_MAX 256
#define SESSION_DATA_MAX 4096
#define SESSION_UA_MAX 512
#define SESSION_IP_MAX 64

typedef struct session {
    char id[SESSION_ID_MAX + 1];
    str_t user_id;
    int64_t created_at;
    int64_t expires_at;
    int64_t last_seen_at;
    str_t ip;
    str_t user_agent;   /* p == NULL: absent (rendered as null) */
    str_t data;         /* serialized JSON object, rendered verbatim */
    int64_t idle_timeout; /* seconds; 0: none (contract v2, idle timeout) */
    /* token rotation: the generation of the session's current token (0:
     * never refreshed, the token of its create) and when it was made */
    uint32_t gen;
    int64_t rotated_at;
} session_t;

/* How a presented session token stands against its session
 * (session_token_verdict). */
typedef enum session_verdict {
    SESSION_TOKEN_CURRENT, /* the current token */
    SESSION_TOKEN_GRACE,   /* the previous one, inside SESSION_REFRESH_GRACE */
    SESSION_TOKEN_REUSED,  /* a replaced one, outside its window: theft */
    SESSION_TOKEN_UNKNOWN  /* newer than the session knows (a restored store) */
} session_verdict;

/* [A-Za-z0-9_-]{22,64} */
int session_id_valid(const char *id, size_t len);
/* Non-empty UTF-8 of at most max bytes without C0, DEL or C1 controls. */
int session_text_valid(const char *s, size_t len, size_t max);
/* A user id (a token's sub, a body's user_id): session_text_valid with
 * SESSION_USER_MAX, and no space or tab at either end -- it travels in the
 * X-User-Id header, where an HTTP parser would trim them and " alice" would
 * pass for "alice". */
int session_user_valid(const char *s, size_t len);
/* Writes the id of a session with creation stamp `stamp` and the random
 * bytes raw: SESSION_ID_TIME characters of the stamp in an alphabet whose
 * ASCII order is its numeric order, then raw in base64url, then a NUL. Ids
 * sort by creation, so a store's B-tree takes new sessions at one edge, by
 * appends that fill its pages (few pages written per commit, none left half
 * empty); the 128 random bits make them unguessable as before (like UUIDv7
 * or ULID). Pure. */
void session_id_make(uint64_t stamp, const unsigned char raw[16], char id[SESSION_ID_MAX + 1]);
/* The stamp after last for a clock reading of ms: ms << SESSION_ID_SEQ_BITS,
 * or last + 1 when that is not past *last (the same millisecond, or a
 * clock stepped back), so stamps only grow. Pure. */
uint64_t session_id_stamp(uint64_t ms, uint64_t last);
/* session_id_make with the next stamp and 16 bytes from getrandom(2).
 * RC_ERR only if the OS CSPRNG fails. */
rc_t session_id_generate(char id[SESSION_ID_MAX + 1]);
/* The placement tag of user: SESSION_ID_TAG characters of base64url (never
 * '{' or '}') from 18 bits of the user id's FNV-1a hash (mixed). A session id made
 * by session_id_generate_for ends with its user's tag, so a store that
 * keeps each user's sessions together (Redis Cluster: one hash slot per
 * user, docs/REDIS.md) finds a session's place from its id alone. The
 * tag is part of the stored data's format: it never changes. Pure. */
void session_id_tag(str_t user, char tag[SESSION_ID_TAG]);
/* Whether id is as session_id_generate_for makes them: SESSION_ID_TAGGED_LEN
 * characters, whatever its tag (an id of another length came from an
 * older version or an import). Pure. */
int session_id_tagged(const char *id, size_t len);
/* A new session's id for user: session_id_generate, then user's tag.
 * RC_ERR only if the OS CSPRNG fails. */
rc_t session_id_generate_for(str_t user, char id[SESSION_ID_MAX + 1]);
/* The idle timeout's slack: a session unused since last_seen_at ends
 * within max(2, idle/20) s after last_seen_at + idle (the contract's
 * precision), and use is recorded once it is that old (exec.c), so a use
 * at t keeps it live through t + idle. Pure. */
int64_t session_idle_slack(int64_t idle);
/* When s ends if unused: expires_at, or with an idle timeout the earlier of
 * expires_at and last_seen_at + idle + slack. Stores file sessions by it
 * (LMDB's purge index, Redis's key expiry). Pure. */
int64_t session_end(const session_t *s);
/* The contract's idle_expires_at: last_seen_at + idle_timeout, never past
 * expires_at; -1 without an idle timeout. Pure. */
int64_t session_idle_expires_at(const session_t *s);
/* Without an idle timeout, last_seen_at lags the last use by less than
 * SESSION_TOUCH_EVERY seconds (the contract's 60): a use SESSION_TOUCH_SOON
 * old is noted for the background writer (about a second, with one to
 * spare), and one this old is noted urgent (the writer woken at once), so
 * that no use waits for a write (touch.h). */
#define SESSION_TOUCH_EVERY 60
#define SESSION_TOUCH_SOON 58

/* What a use of a session at now asks of the store (session_use_due). */
typedef enum session_due {
    SESSION_DUE_NONE,  /* last_seen_at is recent enough: nothing */
    SESSION_DUE_LATER, /* no idle timeout, SESSION_TOUCH_SOON old: record it soon */
    SESSION_DUE_NOW    /* as old as the lag allowed (session_idle_slack with an idle
                        * timeout, else SESSION_TOUCH_EVERY): record it now */
} session_due;

/* Whether a use of s at now must be recorded, and how soon: the rule that
 * keeps last_seen_at within the contract's lag and an idle session from
 * ending early (exec.c applies it; gate.c asks the service whenever a use
 * is due). A session with an idle timeout is never LATER: its use is
 * recorded with the session's new end (a Redis key's expiry, LMDB's expiry
 * index) when it is a slack old, and not before; the background writer
 * only moves last_seen_at. Pure. */
session_due session_use_due(const session_t *s, int64_t now);

/* Live at now: now < session_end(s). */
int session_live(const session_t *s, int64_t now);
/* Why a session that is not live at now ended: 1 for its idle timeout, 0
 * for its absolute expiry. */
int session_ended_idle(const session_t *s, int64_t now);
/* A session token of generation gen presented at now, with grace seconds
 * for the previous generation (judged to the second: it works through
 * rotated_at + grace). Pure. */
session_verdict session_token_verdict(const session_t *s, uint32_t gen, int64_t now,
                                      int64_t grace);

#endif
