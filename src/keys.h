/* keys.h -- the keys in force: the HS256 secrets and an identity
 * provider's JWKS, as one immutable set that a reload (SIGHUP) replaces
 * whole.
 *
 * Readers never see a half-built set: a set is complete before it is
 * published, and is then only read. Reclamation is by reference counts
 * that only the slow path touches: the keyring holds one reference to the
 * set in force, and each thread that reads keys holds one to the set it
 * last saw. A reader's fast path is one atomic load (has the set in force
 * changed since this thread last looked?); only after a publish does each
 * thread, once, take the new set and drop the old one under the keyring's
 * lock. The last reference frees a set, so a set lives exactly as long as
 * some thread may still be reading it. */
#ifndef KEYS_H
#define KEYS_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "jwks.h"
#include "rc.h"
#include "token.h"

typedef struct keys {
    unsigned char *secret;   /* JWT_SECRET; never logged */
    size_t secret_len;
    unsigned char *previous; /* JWT_SECRET_PREVIOUS, NULL: none; never logged */
    size_t previous_len;
    jwks *jwks;              /* JWT_JWKS_FILE's keys, NULL: none */
    /* the keyring's own, under its lock: never touched by readers (and a
     * published set is freed by the keyring only, never by keys_free) */
    uint64_t serial;
    unsigned refs;
    struct keyring *ring;
} keys;

typedef struct keyring keyring;

/* The set configuration c names: copies of its secrets, and the file of
 * JWT_JWKS_FILE loaded (its skipped entries logged at warn once the whole
 * set is good). RC_OK and *out (keys_free); RC_INVALID with one line in
 * err that names JWT_JWKS_FILE and says why; RC_NOMEM. */
rc_t keys_from_config(const config *c, keys **out, char *err, size_t errlen);

/* A set of copies of the secrets, taking set (may be NULL). */
rc_t keys_new(const char *secret, size_t secret_len, const char *previous, size_t previous_len,
              jwks *set, keys **out);

/* Frees a set that was never published. */
void keys_free(keys *k);

/* Points p's keys (key, previous, jwks) at k's: valid as long as k is
 * (for a set from keyring_get, until this thread's next keyring_get). */
void keys_apply(const keys *k, token_policy *p);

/* A keyring whose first set in force is initial (taken). NULL when out of
 * memory (initial is then freed). */
keyring *keyring_new(keys *initial);

/* Puts next (taken) in force: each thread reads it from its next
 * keyring_get on. */
void keyring_publish(keyring *kr, keys *next);

/* The set in force, as this thread holds it: valid until this thread
 * calls keyring_get or keyring_leave again, or exits. NULL when out of
 * memory. */
const keys *keyring_get(keyring *kr);

/* Drops this thread's set (a thread that ends drops it by itself). */
void keyring_leave(keyring *kr);

/* Frees kr and its set in force. Every thread that read it must have
 * ended or called keyring_leave. */
void keyring_free(keyring *kr);

#endif
