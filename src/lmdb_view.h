/* lmdb_view.h -- the LMDB store's sessions, read by a process that never
 * writes them (the nginx module, through gate.h).
 *
 * The services own the environment (store_lmdb.c creates it, writes it,
 * sets its map size and reader table); a view opens it read-only, without
 * creating anything (not even LMDB's lock file: it waits for the services
 * to make both), and reads one record per
 * lookup in its one read transaction, renewed and reset around each read,
 * so it never pins old pages between lookups. LMDB is multi-process: a
 * close committed by a service is seen by the next lookup.
 *
 * A view belongs to the process that opened it (LMDB forbids using an
 * environment across fork) and to one thread at a time. */
#ifndef LMDB_VIEW_H
#define LMDB_VIEW_H

#include <stddef.h>
#include "rc.h"
#include "session.h"

typedef struct lmdb_view lmdb_view;

/* Opens the store's environment in directory path read-only. RC_OK and
 * *out (lmdb_view_close); RC_UNAVAILABLE when there is no store there yet,
 * it cannot be read (permissions), or it has no sessions database, with
 * why in err; RC_NOMEM. Never logs. */
rc_t lmdb_view_open(const char *path, lmdb_view **out, char *err, size_t errlen);

/* Called inside lmdb_view_get's transaction with the session decoded: its
 * views point into the map and die when fn returns. */
typedef void (*lmdb_view_fn)(const session_t *s, void *arg);

/* Looks session id[0..len) up and calls fn with it. RC_OK (fn was called);
 * RC_NOT_FOUND (no such record: closed, purged or never made); RC_INVALID
 * (a record this code cannot decode: a newer version's?); RC_UNAVAILABLE
 * (the store failed). No allocation. */
rc_t lmdb_view_get(lmdb_view *v, const char *id, size_t len, lmdb_view_fn fn, void *arg);

/* Whether the store at the view's path is no longer the one the view has
 * open: its data file or its lock file gone or replaced (a store deleted
 * and made again; a lock file deleted while the services were stopped,
 * whose readers they would no longer see). */
int lmdb_view_stale(const lmdb_view *v);

void lmdb_view_close(lmdb_view *v);

#endif
