/* gate.h -- the session check of a gateway: the nginx module's fast path
 * (nginx/ngx_http_sessiond_module.c), with the service's own parts.
 *
 * A request's session token (Bearer, else the SESSION_COOKIE cookie, as
 * GET /validate takes it) is verified with the service's verifier, its
 * session read from the LMDB store the services write (lmdb_view.h), and
 * judged by the service's rules (session.h). The gate never writes: what
 * needs a write, or a judgement that only the service makes, is handed
 * back to the caller as GATE_ASK, which then asks the service's /validate
 * (a use to record, a token of an earlier generation, a store that is not
 * LMDB or does not answer). So the service remains the one writer, and
 * every answer the gate gives itself is the one /validate would give.
 *
 * A gate is made once from a settings file (config_load_file) and then
 * used by one thread of one process; it opens the store lazily, at its
 * first check, so a process may make it and fork (nginx's master) as long
 * as the master itself never checks. */
#ifndef GATE_H
#define GATE_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "config.h"
#include "rc.h"
#include "session.h"

typedef enum gate_verdict {
    GATE_LIVE,    /* a live session's current token: user and sid are set */
    GATE_REFUSED, /* what /validate answers 401 to */
    GATE_ASK      /* only the service may answer: ask its /validate */
} gate_verdict;

typedef struct gate_result {
    gate_verdict verdict;
    int presented;   /* a token was presented (a 401 then says invalid_token) */
    const char *why; /* a few words for a debug log; never token bytes */
    char user[SESSION_USER_MAX + 1];
    size_t user_len;
    char sid[SESSION_ID_MAX + 1];
    size_t sid_len;
} gate_result;

typedef struct gate gate;

/* A gate for the settings file at env_path (config_load_file: the same
 * table, bounds and messages as the services'; an lmdb:// path must be
 * absolute). RC_OK and *out (gate_free); RC_INVALID with one line naming
 * the variable in err; RC_NOMEM. Opens no store. */
rc_t gate_new(const char *env_path, gate **out, char *err, size_t errlen);

/* The settings the gate was made from (for the caller's messages). */
const config *gate_config(const gate *g);

/* Why this process's last attempt to open the store failed (for the
 * caller's log: a store the process may not read makes every check ask
 * the service); NULL when it did not fail. */
const char *gate_store_problem(const gate *g);

/* Judges a request at now from its Authorization and Cookie header values
 * (p == NULL: the header is absent). Fills *out; never fails: anything
 * the gate cannot decide is GATE_ASK, among them every token that is not
 * as the service's signer writes them (token_verify_session). Allocates
 * nothing but the verifier's cache, once per thread, and the store's view
 * when it opens it (the first check, and after the store failed or was
 * made again, once a second at most: a few syscalls, then a stat() of its
 * two files once a second). */
void gate_check(gate *g, str_t authorization, str_t cookie, int64_t now, gate_result *out);

/* Closes the store's view of this process (nginx: a worker's exit). */
void gate_release(gate *g);

void gate_free(gate *g);

#endif
