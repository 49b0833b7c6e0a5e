/* store_lmdb.h -- the embedded store: one LMDB environment per path,
 * shared by every process on the host. */
#ifndef STORE_LMDB_H
#define STORE_LMDB_H

#include "store.h"

extern const store_ops store_lmdb_ops;

/* The named database of session records (id -> record_encode), which
 * lmdb_view.h reads too. */
#define STORE_LMDB_SESSIONS "sessions"

/* The core result of an LMDB (or OS) error code; what names the failing
 * step in the log line written for anything but the expected outcomes.
 * Any failure of the store is RC_UNAVAILABLE (a 503), never RC_ERR. */
rc_t store_lmdb_rc(int mdb_rc, const char *what);

#endif
