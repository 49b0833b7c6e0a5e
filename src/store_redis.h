/* store_redis.h -- the distributed store on Redis (redis://...), for many
 * service instances on many hosts sharing one set of sessions. */
#ifndef STORE_REDIS_H
#define STORE_REDIS_H

#include <stddef.h>
#include "rc.h"
#include "store.h"

extern const store_ops store_redis_ops;          /* redis:// */
extern const store_ops store_redis_sentinel_ops; /* redis-sentinel:// */
extern const store_ops store_redis_cluster_ops;  /* redis-cluster:// */

typedef enum redis_url_kind {
    REDIS_URL_PLAIN = 0, /* redis://          one server */
    REDIS_URL_SENTINEL,  /* redis-sentinel:// Sentinels that name the primary */
    REDIS_URL_CLUSTER    /* redis-cluster://  seed nodes of a Redis Cluster */
} redis_url_kind;

#define REDIS_URL_HOSTS_MAX 16   /* Sentinels or seed nodes in one URL */
#define REDIS_URL_HOST_MAX 255   /* bytes of one host, without the NUL */
#define REDIS_URL_MASTER_MAX 128 /* bytes of a Sentinel master name */
#define REDIS_URL_PREFIX_MAX 32  /* bytes of a cluster's key prefix */

typedef struct redis_url_host {
    char host[REDIS_URL_HOST_MAX + 1]; /* a name, or an IPv6 address without its brackets */
    int port;
} redis_url_host;

typedef struct redis_url {
    redis_url_kind kind;
    char host[REDIS_URL_HOST_MAX + 1]; /* hosts[0].host: the server, the first Sentinel or seed */
    int port;            /* hosts[0].port */
    char user[128];      /* empty: no ACL user (AUTH password) */
    char password[256];  /* empty: no AUTH */
    int has_password;
    int db;              /* always 0 on a cluster */
    size_t nhosts;       /* 1 (plain), 1..REDIS_URL_HOSTS_MAX */
    redis_url_host hosts[REDIS_URL_HOSTS_MAX];
    char master[REDIS_URL_MASTER_MAX + 1]; /* sentinel: the master name; else "" */
    char prefix[REDIS_URL_PREFIX_MAX + 1]; /* cluster: the keys' prefix ("ss"); else "" */
} redis_url;

/* Parses the part of a redis URL after "redis://":
 * [[user]:password@]host[:port][/db], host may be [IPv6]; user and password
 * are percent-decoded. Pure. RC_INVALID with err set on anything else.
 * The same as store_redis_url_parse_as(REDIS_URL_PLAIN, ...). */
rc_t store_redis_url_parse(const char *target, size_t len, redis_url *out,
                           char *err, size_t errlen);

/* Parses the part of a STORE_URL after the scheme of kind:
 *   REDIS_URL_PLAIN     [[user]:password@]host[:port][/db]            (port 6379 by default)
 *   REDIS_URL_SENTINEL  [[user]:password@]host:port[,host:port...]/master-name[/db]
 *   REDIS_URL_CLUSTER   [[user]:password@]host:port[,host:port...][/prefix] (no database)
 * A host is [A-Za-z0-9._-]+ or an [IPv6] address; in a list every host has
 * its port (1..65535), there are 1..REDIS_URL_HOSTS_MAX of them, none empty,
 * no host:port twice. The master name is 1..REDIS_URL_MASTER_MAX bytes of
 * [A-Za-z0-9._-]; db is 0..65535, an empty one is 0. A cluster's key
 * prefix (so that several services share one cluster, which has no
 * databases) is 1..REDIS_URL_PREFIX_MAX bytes of [A-Za-z0-9._-], "ss" when
 * absent; a path that is a number is refused (it would be read as a
 * database). The credentials end at
 * the last '@', user before the first ':' and password after it, both
 * percent-decoded (no NUL; under 128 and 256 bytes as written, before
 * decoding); they are the data nodes' (not the Sentinels'). Pure: fills
 * *out (reset first; host and port repeat hosts[0]); RC_OK, or RC_INVALID
 * with *out wiped and a one-line err naming STORE_URL that never quotes
 * the input (it may hold a password). */
rc_t store_redis_url_parse_as(redis_url_kind kind, const char *target, size_t len,
                              redis_url *out, char *err, size_t errlen);

#endif
