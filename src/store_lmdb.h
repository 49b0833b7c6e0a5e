/* store_lmdb.h -- the embedded store: one LMDB environment per path,
 * shared by every process on the host. */
#ifndef STORE_LMDB_H
#define STORE_LMDB_H

#include "store.h"

extern const store_ops store_lmdb_ops;

#endif
