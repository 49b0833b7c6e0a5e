/* store.c -- the registry of stores by STORE_URL scheme. */
#include <stdio.h>
#include <string.h>
#include "store.h"
#include "store_lmdb.h"
#include "store_redis.h"

static const store_ops *const registry[] = {
    &store_lmdb_ops,
    &store_redis_ops,
};

rc_t store_open(const char *url, const store_options *opt, store_t **out,
                char *err, size_t errlen)
{
    const char *sep = strstr(url, "://");
    *out = NULL;
    if (sep == NULL) {
        snprintf(err, errlen, "STORE_URL: not a scheme://... URL");
        return RC_INVALID;
    }
    size_t slen = (size_t)(sep - url);
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++) {
        const store_ops *ops = registry[i];
        if (strlen(ops->scheme) == slen && memcmp(ops->scheme, url, slen) == 0)
            return ops->open(sep + 3, opt, out, err, errlen);
    }
    snprintf(err, errlen, "STORE_URL: unknown scheme \"%.*s\" (expected lmdb or redis)",
             (int)(slen > 20 ? 20 : slen), url);
    return RC_INVALID;
}
