/* lmdb_view.c -- the LMDB store read by a process that never writes it
 * (see lmdb_view.h). */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "lmdb_view.h"
#include "record.h"
#include "store_lmdb.h"

struct lmdb_view {
    MDB_env *env;
    MDB_dbi sessions;
    MDB_txn *txn; /* the one read transaction, reset between lookups */
    char data_path[4096], lock_path[4096];
    struct stat data, lock; /* the files' identities when opened */
};

/* Both files of the environment exist: a view never makes lock.mdb (it
 * would be this process's, with its owner and mode, and the services
 * could then not open their own store). */
static int files(lmdb_view *v, struct stat *data, struct stat *lock)
{
    return stat(v->data_path, data) == 0 && stat(v->lock_path, lock) == 0;
}

rc_t lmdb_view_open(const char *path, lmdb_view **out, char *err, size_t errlen)
{
    MDB_txn *txn = NULL;
    int rc = ENAMETOOLONG;
    lmdb_view *v = calloc(1, sizeof *v);
    if (v == NULL)
        return RC_NOMEM;
    int n = snprintf(v->data_path, sizeof v->data_path, "%s/data.mdb", path);
    int m = snprintf(v->lock_path, sizeof v->lock_path, "%s/lock.mdb", path);
    if (n < 0 || (size_t)n >= sizeof v->data_path || m < 0 || (size_t)m >= sizeof v->lock_path)
        goto fail;
    if (!files(v, &v->data, &v->lock)) {
        rc = errno;
        goto fail;
    }
    /* maxreaders as the services set it: whoever makes the lock file sizes
     * its reader table; the map size is the environment's own */
    if ((rc = mdb_env_create(&v->env)) != MDB_SUCCESS)
        goto fail;
    if ((rc = mdb_env_set_maxdbs(v->env, 4)) != MDB_SUCCESS ||
        (rc = mdb_env_set_maxreaders(v->env, 1024)) != MDB_SUCCESS ||
        (rc = mdb_env_open(v->env, path, MDB_RDONLY | MDB_NOTLS, 0600)) != MDB_SUCCESS)
        goto fail;
    int dead = 0;
    mdb_reader_check(v->env, &dead);
    /* a handle opened in a transaction is everyone's once it commits */
    if ((rc = mdb_txn_begin(v->env, NULL, MDB_RDONLY, &txn)) != MDB_SUCCESS ||
        (rc = mdb_dbi_open(txn, STORE_LMDB_SESSIONS, 0, &v->sessions)) != MDB_SUCCESS)
        goto fail;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != MDB_SUCCESS || (rc = mdb_txn_begin(v->env, NULL, MDB_RDONLY, &txn)) != MDB_SUCCESS)
        goto fail;
    mdb_txn_reset(txn);
    v->txn = txn;
    *out = v;
    return RC_OK;
fail:
    snprintf(err, errlen, "cannot open the LMDB store at %.200s: %s", path, mdb_strerror(rc));
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (v->env != NULL)
        mdb_env_close(v->env);
    free(v);
    return RC_UNAVAILABLE;
}

static int renew(lmdb_view *v)
{
    int rc = mdb_txn_renew(v->txn);
    if (rc == MDB_MAP_RESIZED && mdb_env_set_mapsize(v->env, 0) == MDB_SUCCESS)
        rc = mdb_txn_renew(v->txn); /* a service grew the map: adopt its size */
    return rc;
}

rc_t lmdb_view_get(lmdb_view *v, const char *id, size_t len, lmdb_view_fn fn, void *arg)
{
    MDB_val k = { len, (void *)id }, val;
    session_t s;
    if (renew(v) != MDB_SUCCESS)
        return RC_UNAVAILABLE;
    int rc = mdb_get(v->txn, v->sessions, &k, &val);
    rc_t out = rc == MDB_SUCCESS    ? RC_OK
               : rc == MDB_NOTFOUND ? RC_NOT_FOUND
                                    : RC_UNAVAILABLE;
    if (out == RC_OK && record_decode(val.mv_data, val.mv_size, &s) != RC_OK)
        out = RC_INVALID;
    if (out == RC_OK)
        fn(&s, arg);
    mdb_txn_reset(v->txn);
    return out;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

int lmdb_view_stale(const lmdb_view *v)
{
    struct stat data, lock;
    return !files((lmdb_view *)v, &data, &lock) || !same_file(&data, &v->data) ||
           !same_file(&lock, &v->lock);
}

void lmdb_view_close(lmdb_view *v)
{
    if (v == NULL)
        return;
    mdb_txn_abort(v->txn);
    mdb_env_close(v->env);
    free(v);
}
