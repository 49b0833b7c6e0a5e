/* store_redis.h -- the distributed store on Redis (redis://...), for many
 * service instances on many hosts sharing one set of sessions. */
#ifndef STORE_REDIS_H
#define STORE_REDIS_H

#include <stddef.h>
#include "rc.h"
#include "store.h"

extern const store_ops store_redis_ops;

typedef struct redis_url {
    char host[256];
    int port;
    char user[128];      /* empty: no ACL user (AUTH password) */
    char password[256];  /* empty: no AUTH */
    int has_password;
    int db;
} redis_url;

/* Parses the part of a redis URL after "redis://":
 * [[user]:password@]host[:port][/db], host may be [IPv6]; user and password
 * are percent-decoded. Pure. RC_INVALID with err set on anything else. */
rc_t store_redis_url_parse(const char *target, size_t len, redis_url *out,
                           char *err, size_t errlen);

#endif
