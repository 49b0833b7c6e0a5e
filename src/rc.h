/* rc.h -- the one vocabulary of results shared by the core.
 *
 * Every core function (config, token, session, store, ...) answers with an
 * rc_t. Only the HTTP layer (http.c) turns these into status
 * codes; the token and store code never see HTTP. */
#ifndef RC_H
#define RC_H

typedef enum rc {
    RC_OK = 0,
    RC_ERR,          /* internal failure: a bug or an OS error we cannot name */
    RC_NOMEM,        /* allocation failed */
    RC_INVALID,      /* malformed input from outside */
    RC_UNAUTHORIZED, /* no credentials, or credentials refused */
    RC_DENIED,       /* authenticated, but not allowed to do this */
    RC_NOT_FOUND,    /* no such live thing (or not visible to the caller) */
    RC_EXISTS,       /* a key that must be new is already there */
    RC_TOO_LARGE,    /* input over a configured bound */
    RC_UNSUPPORTED,  /* a media type or feature we do not speak */
    RC_FULL,         /* the store has no room left */
    RC_UNAVAILABLE,  /* the store cannot be reached, or refused or failed a command */
    RC_LIMIT,        /* a per-user limit is reached (SESSION_MAX_PER_USER, refuse) */
    RC_PENDING       /* not done yet: queued work will finish it (http.h, serve) */
} rc_t;

/* A short lowercase name for logs ("not_found", ...). Never NULL. */
const char *rc_str(rc_t rc);

#endif
