/* config.h -- the service's settings: one declarative table, validated once.
 *
 * Values come from the real environment, then from a .env file (ENV_FILE or
 * ./.env), then from the table's defaults. Any value that does not parse or is
 * out of bounds makes config_load fail with one line naming the variable; the
 * process must then refuse to start. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "rc.h"

/* SESSION_LIMIT_POLICY, in the order of its names (config.c). */
typedef enum config_limit_policy {
    CONFIG_LIMIT_EVICT_OLDEST,
    CONFIG_LIMIT_REFUSE
} config_limit_policy;

typedef struct config {
    char *host;
    int64_t port;
    char *jwt_secret;      /* never logged */
    size_t jwt_secret_len;
    /* a second HS256 key, accepted and never used to sign (NULL: none);
     * never logged */
    char *jwt_secret_previous;
    size_t jwt_secret_previous_len;
    /* a JWKS file of an identity provider's public keys (NULL: none);
     * loaded by keys_from_config (keys.h) */
    char *jwt_jwks_file;
    char *jwt_issuer;      /* NULL when unset */
    char *jwt_audience;    /* NULL when unset */
    int64_t jwt_leeway;
    int64_t session_ttl;
    int64_t session_max_ttl;
    char *store_url;
    char *admin_scope;
    char *session_cookie;
    int64_t trust_proxy;
    int64_t log_level;     /* a log_level */
    int64_t threads;       /* 0 = one per CPU */
    int64_t connection_limit;
    int64_t connection_timeout;
    int64_t lmdb_map_size;
    int64_t purge_interval;
    int64_t redis_timeout_ms;
    char *redis_sentinel_password; /* AUTH to the Sentinels (NULL: none); never logged */
    int64_t redis_wait_replicas;   /* WAIT for this many replicas after writes (0: off) */
    int64_t redis_wait_timeout_ms; /* ... at most this long */
    int64_t lmdb_sync;     /* a store_sync (store.h) */
    int64_t session_max_per_user; /* 0 = no cap */
    int64_t session_limit_policy; /* a config_limit_policy */
    int64_t session_idle_timeout; /* default idle timeout of new sessions; 0 = none */
    int64_t session_refresh_grace; /* seconds a replaced session token still works */
} config;

/* Looks a variable up; returns NULL when it is not set. */
typedef const char *(*config_lookup_fn)(const char *name, void *arg);

/* Fills c from lookup (see config_load for the usual sources). On failure
 * writes one line naming the variable into err and returns RC_INVALID.
 * c owns its strings afterwards, even on failure: release with config_free. */
rc_t config_load_from(config *c, config_lookup_fn lookup, void *arg,
                      char *err, size_t errlen);

/* Reads ENV_FILE (or ./.env when ENV_FILE is unset and the file exists),
 * then the environment, into c. Same contract as config_load_from. */
rc_t config_load(config *c, char *err, size_t errlen);
/* config_load for a reload (SIGHUP): the same, except that an ENV_FILE
 * that is a pipe is refused, as a reload must never wait for a writer. */
rc_t config_reload(config *c, char *err, size_t errlen);
/* config_load for a tool that opens the store but signs and verifies no
 * token (sessionctl): the same sources and checks, but JWT_SECRET may be
 * unset. */
rc_t config_load_tool(config *c, char *err, size_t errlen);

/* config_load for a process that is not the service's own (the nginx
 * module, gate.h): the settings file at path only, which must exist and
 * is never a pipe; the process environment is not read. */
rc_t config_load_file(config *c, const char *path, char *err, size_t errlen);

void config_free(config *c);

/* Called by config_parse_env for each KEY=VALUE pair (views into the
 * input; not NUL-terminated). Return non-zero to stop with RC_ERR. */
typedef int (*config_pair_fn)(const char *key, size_t klen,
                              const char *val, size_t vlen, void *arg);

/* Parses .env text: KEY=VALUE lines, optional "export " prefix, '#'
 * comments, blank lines, values optionally in matching single or double
 * quotes. Pure: no I/O, no allocation. On a malformed line returns
 * RC_INVALID and sets *bad_line (1-based). */
rc_t config_parse_env(const char *text, size_t len, config_pair_fn fn,
                      void *arg, size_t *bad_line);

#endif
