/* config.c -- the settings table, .env parsing and validation. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config.h"
#include "log.h"

typedef enum cfg_type {
    CFG_INT,     /* decimal integer within [min, max] */
    CFG_BOOL,    /* 0 or 1 */
    CFG_STR,     /* non-empty, no control characters; NULL default = unset */
    CFG_WORD,    /* CFG_STR without spaces, ';', ',' or '=' (cookie name, scope) */
    CFG_SECRET,  /* min..max bytes; required unless it has a default ("": optional) */
    CFG_HOST,    /* IPv4 or IPv6 literal */
    CFG_URL,     /* scheme://rest */
    CFG_ENUM     /* one of the names in choices; stored as its index */
} cfg_type;

typedef struct cfg_entry {
    const char *name;
    cfg_type type;
    size_t offset;
    int64_t min, max;
    const char *def; /* NULL: unset (CFG_STR) or required (CFG_SECRET); "" for a
                      * CFG_SECRET: optional, unset */
    const char *const *choices; /* CFG_ENUM: NULL-terminated names */
} cfg_entry;

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const lmdb_syncs[] = { "full", "meta", "none", NULL }; /* store_sync */
static const char *const limit_policies[] = { "evict_oldest", "refuse", NULL }; /* config_limit_policy */

#define F(field) offsetof(config, field)

static const cfg_entry table[] = {
    { "HOST", CFG_HOST, F(host), 0, 0, "127.0.0.1", NULL },
    { "PORT", CFG_INT, F(port), 1, 65535, "8080", NULL },
    { "JWT_SECRET", CFG_SECRET, F(jwt_secret), 32, 4096, NULL, NULL },
    { "JWT_SECRET_PREVIOUS", CFG_SECRET, F(jwt_secret_previous), 32, 4096, "", NULL },
    { "JWT_JWKS_FILE", CFG_STR, F(jwt_jwks_file), 0, 0, NULL, NULL },
    { "JWT_ISSUER", CFG_STR, F(jwt_issuer), 0, 0, NULL, NULL },
    { "JWT_AUDIENCE", CFG_STR, F(jwt_audience), 0, 0, NULL, NULL },
    { "JWT_LEEWAY", CFG_INT, F(jwt_leeway), 0, 3600, "30", NULL },
    { "SESSION_TTL", CFG_INT, F(session_ttl), 1, 31622400, "3600", NULL },
    { "SESSION_MAX_TTL", CFG_INT, F(session_max_ttl), 1, 31622400, "2592000", NULL },
    { "STORE_URL", CFG_URL, F(store_url), 0, 0, "lmdb://./data", NULL },
    { "ADMIN_SCOPE", CFG_WORD, F(admin_scope), 0, 0, "session:admin", NULL },
    { "SESSION_COOKIE", CFG_WORD, F(session_cookie), 0, 0, "session", NULL },
    { "TRUST_PROXY", CFG_BOOL, F(trust_proxy), 0, 1, "0", NULL },
    { "LOG_LEVEL", CFG_ENUM, F(log_level), 0, 0, "info", log_levels },
    { "THREADS", CFG_INT, F(threads), 0, 256, "0", NULL },
    { "CONNECTION_LIMIT", CFG_INT, F(connection_limit), 1, 65536, "1024", NULL },
    { "CONNECTION_TIMEOUT", CFG_INT, F(connection_timeout), 1, 3600, "10", NULL },
    { "LMDB_MAP_SIZE", CFG_INT, F(lmdb_map_size), 1048576, 1099511627776LL, "4294967296", NULL },
    { "PURGE_INTERVAL", CFG_INT, F(purge_interval), 1, 86400, "60", NULL },
    { "REDIS_TIMEOUT_MS", CFG_INT, F(redis_timeout_ms), 10, 60000, "1000", NULL },
    { "REDIS_SENTINEL_PASSWORD", CFG_SECRET, F(redis_sentinel_password), 1, 512, "", NULL },
    { "REDIS_WAIT_REPLICAS", CFG_INT, F(redis_wait_replicas), 0, 16, "0", NULL },
    { "REDIS_WAIT_TIMEOUT_MS", CFG_INT, F(redis_wait_timeout_ms), 1, 60000, "500", NULL },
    { "LMDB_SYNC", CFG_ENUM, F(lmdb_sync), 0, 0, "full", lmdb_syncs },
    { "SESSION_MAX_PER_USER", CFG_INT, F(session_max_per_user), 0, 100000000, "1000", NULL },
    { "SESSION_LIMIT_POLICY", CFG_ENUM, F(session_limit_policy), 0, 0, "evict_oldest",
      limit_policies },
    { "SESSION_IDLE_TIMEOUT", CFG_INT, F(session_idle_timeout), 0, 31622400, "0", NULL },
    { "SESSION_REFRESH_GRACE", CFG_INT, F(session_refresh_grace), 0, 300, "10", NULL },
};

/* Frees s after overwriting it: the .env holds the secrets, and no copy of
 * them is left in freed memory (a reload makes new ones each time). */
static void forget(char *s, size_t len)
{
    if (s != NULL)
        explicit_bzero(s, len);
    free(s);
}

static int has_control(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return 1;
    }
    return 0;
}

static rc_t parse_int(const char *s, int64_t *out)
{
    if (*s == '\0')
        return RC_INVALID;
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return RC_INVALID;
    if (*p == '\0')
        return RC_INVALID;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return RC_INVALID;
    *out = v;
    return RC_OK;
}

/* Validates one value; on success stores it into c. Error text must never
 * quote the secret. */
static rc_t set_value(config *c, const cfg_entry *e, const char *v,
                      char *err, size_t errlen)
{
    void *slot = (char *)c + e->offset;
    int64_t n;

    switch (e->type) {
    case CFG_INT:
    case CFG_BOOL:
        if (parse_int(v, &n) != RC_OK || n < e->min || n > e->max) {
            snprintf(err, errlen, "%s: not an integer in %lld..%lld: \"%.40s\"",
                     e->name, (long long)e->min, (long long)e->max, v);
            return RC_INVALID;
        }
        *(int64_t *)slot = n;
        return RC_OK;
    case CFG_ENUM: {
        char names[128] = "";
        for (int i = 0; e->choices[i] != NULL; i++) {
            if (strcmp(v, e->choices[i]) == 0) {
                *(int64_t *)slot = i;
                return RC_OK;
            }
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                     i ? ", " : "", e->choices[i]);
        }
        snprintf(err, errlen, "%s: must be one of %s: \"%.40s\"", e->name, names, v);
        return RC_INVALID;
    }
    case CFG_SECRET: {
        size_t len = strlen(v);
        if (len < (size_t)e->min || len > (size_t)e->max) {
            snprintf(err, errlen, "%s: must be %lld to %lld bytes (got %zu)",
                     e->name, (long long)e->min, (long long)e->max, len);
            return RC_INVALID;
        }
        break;
    }
    case CFG_HOST: {
        unsigned char addr[16];
        if (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1) {
            snprintf(err, errlen, "%s: not an IPv4 or IPv6 address: \"%.60s\"",
                     e->name, v);
            return RC_INVALID;
        }
        break;
    }
    case CFG_URL: {
        const char *sep = strstr(v, "://");
        if (sep == NULL || sep == v || has_control(v)) {
            /* not quoted: a URL may hold a password */
            snprintf(err, errlen, "%s: not a scheme://... URL without control characters",
                     e->name);
            return RC_INVALID;
        }
        break;
    }
    case CFG_STR:
    case CFG_WORD:
        if (*v == '\0' || strlen(v) > 1024 || has_control(v) ||
            (e->type == CFG_WORD && strpbrk(v, " \t;,=\"") != NULL)) {
            snprintf(err, errlen, "%s: %s: \"%.60s\"", e->name,
                     e->type == CFG_WORD ? "must be one non-empty word"
                                         : "must be non-empty printable text",
                     v);
            return RC_INVALID;
        }
        break;
    }
    char *copy = strdup(v);
    if (copy == NULL) {
        snprintf(err, errlen, "%s: out of memory", e->name);
        return RC_NOMEM;
    }
    free(*(char **)slot);
    *(char **)slot = copy;
    return RC_OK;
}

static rc_t load(config *c, config_lookup_fn lookup, void *arg, int need_secret, char *err,
                 size_t errlen)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const cfg_entry *e = &table[i];
        const char *v = lookup(e->name, arg);
        if (v == NULL && !(e->type == CFG_SECRET && e->def != NULL && *e->def == '\0'))
            v = e->def; /* an optional secret ("" default) stays unset */
        if (v == NULL) {
            if (e->type == CFG_SECRET && e->def == NULL && need_secret) {
                snprintf(err, errlen, "%s: required (at least %lld bytes)",
                         e->name, (long long)e->min);
                return RC_INVALID;
            }
            continue; /* optional, unset */
        }
        rc_t rc = set_value(c, e, v, err, errlen);
        if (rc != RC_OK)
            return rc;
    }
    c->jwt_secret_len = c->jwt_secret ? strlen(c->jwt_secret) : 0;
    c->jwt_secret_previous_len = c->jwt_secret_previous ? strlen(c->jwt_secret_previous) : 0;
    /* SESSION_TTL's default (3600) yields to a lower SESSION_MAX_TTL: only a
     * SESSION_TTL that was given can conflict with it */
    if (lookup("SESSION_TTL", arg) == NULL && c->session_ttl > c->session_max_ttl)
        c->session_ttl = c->session_max_ttl;
    if (c->session_ttl > c->session_max_ttl) {
        snprintf(err, errlen, "SESSION_TTL: %lld is above SESSION_MAX_TTL (%lld)",
                 (long long)c->session_ttl, (long long)c->session_max_ttl);
        return RC_INVALID;
    }
    if (c->session_idle_timeout > c->session_max_ttl) {
        snprintf(err, errlen, "SESSION_IDLE_TIMEOUT: %lld is above SESSION_MAX_TTL (%lld)",
                 (long long)c->session_idle_timeout, (long long)c->session_max_ttl);
        return RC_INVALID;
    }
    return RC_OK;
}

void config_free(config *c)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        cfg_type t = table[i].type;
        if (t != CFG_INT && t != CFG_BOOL && t != CFG_ENUM) {
            char **slot = (char **)((char *)c + table[i].offset);
            if (t == CFG_SECRET)
                forget(*slot, *slot ? strlen(*slot) : 0);
            else
                free(*slot);
            *slot = NULL;
        }
    }
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

static int is_key_char(char ch, int first)
{
    return ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (!first && ch >= '0' && ch <= '9');
}

rc_t config_parse_env(const char *text, size_t len, config_pair_fn fn,
                      void *arg, size_t *bad_line)
{
    size_t pos = 0, line = 0;
    while (pos < len) {
        line++;
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        size_t a = pos, b = end;
        pos = end + 1;
        while (a < b && is_space(text[a]))
            a++;
        while (b > a && is_space(text[b - 1]))
            b--;
        if (a == b || text[a] == '#')
            continue;
        if (b - a > 7 && memcmp(text + a, "export", 6) == 0 && is_space(text[a + 6])) {
            a += 7;
            while (a < b && is_space(text[a]))
                a++;
        }
        size_t k = a;
        while (k < b && is_key_char(text[k], k == a))
            k++;
        size_t klen = k - a;
        while (k < b && is_space(text[k]))
            k++;
        if (klen == 0 || k == b || text[k] != '=')
            goto bad;
        size_t v = k + 1;
        while (v < b && is_space(text[v]))
            v++;
        size_t vend = b;
        if (v < vend && (text[v] == '"' || text[v] == '\'')) {
            if (vend - v < 2 || text[vend - 1] != text[v])
                goto bad;
            v++;
            vend--;
        }
        for (size_t i = v; i < vend; i++) {
            unsigned char ch = (unsigned char)text[i];
            if (ch == '\0' || (ch < 0x20 && ch != '\t'))
                goto bad;
        }
        if (fn(text + a, klen, text + v, vend - v, arg) != 0)
            return RC_ERR;
        continue;
    bad:
        if (bad_line)
            *bad_line = line;
        return RC_INVALID;
    }
    return RC_OK;
}

/* ---- loading from the process environment and a .env file ---- */


/* The .env file's values, one slot per setting of the table: a line whose
 * key is no setting is parsed and checked, then ignored, so the number of
 * lines never matters (nothing is dropped for want of room). */
#define NSETTINGS (sizeof table / sizeof table[0])

typedef struct env_file {
    char *values[NSETTINGS];
} env_file;

static int keep_pair(const char *key, size_t klen, const char *val, size_t vlen,
                     void *arg)
{
    env_file *f = arg;
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (strlen(table[i].name) == klen && memcmp(table[i].name, key, klen) == 0) {
            char *v = strndup(val, vlen);
            if (v == NULL)
                return 1;
            forget(f->values[i], f->values[i] ? strlen(f->values[i]) : 0);
            f->values[i] = v; /* a later line wins */
            return 0;
        }
    }
    return 0; /* not a setting of ours */
}

static const char *lookup_file(const char *name, void *arg)
{
    env_file *f = arg;
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(table[i].name, name) == 0)
            return f->values[i];
    return NULL;
}

static const char *lookup_env(const char *name, void *arg)
{
    env_file *f = arg;
    const char *v = getenv(name);
    if (v != NULL)
        return v;
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(table[i].name, name) == 0)
            return f->values[i];
    return NULL;
}

/* Reads the .env at path into f. no_wait (a reload): a pipe or socket is
 * refused rather than read, as nobody may be writing to it and the reload
 * would wait for ever; at start one is read (ENV_FILE=<(decrypt .env)). */
static rc_t read_env_file(const char *path, int must_exist, int no_wait, env_file *f,
                          char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | (no_wait ? O_NONBLOCK : 0));
    struct stat st;
    FILE *fp = NULL;
    if (fd < 0) {
        if (!must_exist && errno == ENOENT)
            return RC_OK;
        snprintf(err, errlen, "ENV_FILE: cannot read %.200s: %s", path, strerror(errno));
        return RC_INVALID;
    }
    if (no_wait && (fstat(fd, &st) != 0 || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        snprintf(err, errlen, "ENV_FILE: %.200s is a pipe, which a reload never waits on "
                 "(restart the process to read it)", path);
        close(fd);
        return RC_INVALID;
    }
    if ((fp = fdopen(fd, "rb")) == NULL) {
        close(fd);
        snprintf(err, errlen, "ENV_FILE: out of memory");
        return RC_NOMEM;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    rc_t rc = RC_OK;
    for (;;) {
        if (cap - len < 4096) {
            if (cap >= 1 << 20) {
                snprintf(err, errlen, "ENV_FILE: %.200s is larger than 1 MiB", path);
                rc = RC_INVALID;
                goto out;
            }
            char *p = malloc(cap + 8192); /* not realloc: the old copy is wiped */
            if (p == NULL) {
                rc = RC_NOMEM;
                snprintf(err, errlen, "ENV_FILE: out of memory");
                goto out;
            }
            if (text != NULL)
                memcpy(p, text, len);
            forget(text, cap);
            text = p;
            cap += 8192;
        }
        size_t got = fread(text + len, 1, cap - len, fp);
        len += got;
        if (got == 0)
            break;
    }
    size_t line = 0;
    rc = config_parse_env(text, len, keep_pair, f, &line);
    if (rc == RC_INVALID)
        snprintf(err, errlen, "ENV_FILE: %.200s line %zu: not KEY=VALUE", path, line);
    else if (rc != RC_OK)
        snprintf(err, errlen, "ENV_FILE: out of memory");
out:
    forget(text, cap);
    fclose(fp);
    return rc;
}

rc_t config_load_from(config *c, config_lookup_fn lookup, void *arg,
                      char *err, size_t errlen)
{
    return load(c, lookup, arg, 1, err, errlen);
}

/* Reads the settings file at path (the process environment when
 * file_only is 0, then path if it exists or must_exist), into c. */
static rc_t load_files(config *c, const char *path, int must_exist, int file_only,
                       int need_secret, int no_wait, char *err, size_t errlen)
{
    env_file f = { .values = { NULL } };
    rc_t rc = read_env_file(path, must_exist, no_wait, &f, err, errlen);
    if (rc == RC_OK)
        rc = load(c, file_only ? lookup_file : lookup_env, &f, need_secret, err, errlen);
    else
        memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NSETTINGS; i++)
        forget(f.values[i], f.values[i] ? strlen(f.values[i]) : 0);
    return rc;
}

static rc_t load_env(config *c, int need_secret, int no_wait, char *err, size_t errlen)
{
    const char *path = getenv("ENV_FILE");
    return load_files(c, path ? path : ".env", path != NULL, 0, need_secret, no_wait, err,
                      errlen);
}

rc_t config_load(config *c, char *err, size_t errlen)
{
    return load_env(c, 1, 0, err, errlen);
}

rc_t config_reload(config *c, char *err, size_t errlen)
{
    return load_env(c, 1, 1, err, errlen);
}

rc_t config_load_tool(config *c, char *err, size_t errlen)
{
    return load_env(c, 0, 0, err, errlen);
}

rc_t config_load_file(config *c, const char *path, char *err, size_t errlen)
{
    return load_files(c, path, 1, 1, 1, 1, err, errlen);
}
