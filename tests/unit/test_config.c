/* test_config.c -- config_parse_env (pure .env parser) and config_load_from
 * over a static table of variables (the real environment is never read). */
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "unit.h"

/* ---- config_parse_env ---- */

typedef struct pairs {
    size_t n;
    char key[16][64];
    char val[16][128];
    int stop_at; /* stop (return non-zero) at this pair number; 0 = never */
} pairs;

static int collect(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
    pairs *p = arg;
    if (p->n >= 16 || klen >= 64 || vlen >= 128)
        return 1;
    memcpy(p->key[p->n], key, klen);
    p->key[p->n][klen] = '\0';
    memcpy(p->val[p->n], val, vlen);
    p->val[p->n][vlen] = '\0';
    p->n++;
    return p->stop_at != 0 && (int)p->n == p->stop_at;
}

static rc_t parse(const char *text, pairs *p, size_t *bad)
{
    memset(p, 0, sizeof *p);
    *bad = 0;
    return config_parse_env(text, strlen(text), collect, p, bad);
}

static void test_parse_basic(void)
{
    pairs p;
    size_t bad;
    const char *text =
        "# a comment\n"
        "\n"
        "   \n"
        "A=1\n"
        "export B=two\n"
        "  export   C = three  \n"
        "D=\"quoted value\"\n"
        "E='single # not a comment'\n"
        "F=\n"
        "G=\"\"\n"
        "\t# indented comment\n"
        "H_2=x=y\n"
        "_I=\"  spaced  \"\r\n"
        "J=tab\there";
    CHECK_EQ_INT(parse(text, &p, &bad), RC_OK);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(p.n, 10);
    CHECK_STR_EQ(p.key[0], "A");
    CHECK_STR_EQ(p.val[0], "1");
    CHECK_STR_EQ(p.key[1], "B");
    CHECK_STR_EQ(p.val[1], "two");
    CHECK_STR_EQ(p.key[2], "C");
    CHECK_STR_EQ(p.val[2], "three");
    CHECK_STR_EQ(p.key[3], "D");
    CHECK_STR_EQ(p.val[3], "quoted value");
    CHECK_STR_EQ(p.key[4], "E");
    CHECK_STR_EQ(p.val[4], "single # not a comment");
    CHECK_STR_EQ(p.key[5], "F");
    CHECK_STR_EQ(p.val[5], "");
    CHECK_STR_EQ(p.key[6], "G");
    CHECK_STR_EQ(p.val[6], "");
    CHECK_STR_EQ(p.key[7], "H_2");
    CHECK_STR_EQ(p.val[7], "x=y");
    CHECK_STR_EQ(p.key[8], "_I");
    CHECK_STR_EQ(p.val[8], "  spaced  ");
    CHECK_STR_EQ(p.key[9], "J");
    CHECK_STR_EQ(p.val[9], "tab\there");

    /* empty input, only comments */
    CHECK_EQ_INT(parse("", &p, &bad), RC_OK);
    CHECK_EQ_INT(p.n, 0);
    CHECK_EQ_INT(parse("# x\n\n#y=1\n", &p, &bad), RC_OK);
    CHECK_EQ_INT(p.n, 0);
    /* a key named export, and a key starting with export */
    CHECK_EQ_INT(parse("export=1\nexporter=2\n", &p, &bad), RC_OK);
    CHECK_EQ_INT(p.n, 2);
    CHECK_STR_EQ(p.key[0], "export");
    CHECK_STR_EQ(p.key[1], "exporter");
    /* CRLF line ends */
    CHECK_EQ_INT(parse("A=1\r\nB=2\r\n", &p, &bad), RC_OK);
    CHECK_EQ_INT(p.n, 2);
    CHECK_STR_EQ(p.val[0], "1");
    CHECK_STR_EQ(p.val[1], "2");
    /* the length is honoured: the text after len is not read */
    {
        pairs q;
        memset(&q, 0, sizeof q);
        const char *t = "A=1\nB=2";
        CHECK_EQ_INT(config_parse_env(t, 4, collect, &q, &bad), RC_OK);
        CHECK_EQ_INT(q.n, 1);
    }
    /* the callback stops the parse with RC_ERR */
    {
        pairs q;
        memset(&q, 0, sizeof q);
        q.stop_at = 1;
        const char *t = "A=1\nB=2\n";
        CHECK_EQ_INT(config_parse_env(t, strlen(t), collect, &q, &bad), RC_ERR);
        CHECK_EQ_INT(q.n, 1);
    }
    /* bad_line may be NULL */
    CHECK_EQ_INT(config_parse_env("oops", 4, collect, &p, NULL), RC_INVALID);
}

static void test_parse_malformed(void)
{
    pairs p;
    size_t bad;
    CHECK_EQ_INT(parse("A=1\nnoequals\nB=2\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 2);
    CHECK_EQ_INT(parse("# c\n\nA=1\n1BAD=2\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 4);
    CHECK_EQ_INT(parse("BA-D=1\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 1);
    CHECK_EQ_INT(parse("=value\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 1);
    CHECK_EQ_INT(parse("A B=1\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 1);
    CHECK_EQ_INT(parse("A=1\nB=\"unterminated\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 2);
    CHECK_EQ_INT(parse("A=1\nB=2\nC='mismatched\"\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 3);
    CHECK_EQ_INT(parse("A=\"\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 1);
    CHECK_EQ_INT(parse("\n\n\nexport\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 4);
    CHECK_EQ_INT(parse("A=1\r\nB\r\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 2);
    /* a control character in the value */
    CHECK_EQ_INT(parse("A=x\x01y\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(bad, 1);
    {
        static const char t[] = "A=1\nB=x\0y\n";
        CHECK_EQ_INT(config_parse_env(t, sizeof t - 1, collect, &p, &bad), RC_INVALID);
        CHECK_EQ_INT(bad, 2);
    }
    /* pairs before the bad line were reported */
    CHECK_EQ_INT(parse("A=1\nB=2\n???\n", &p, &bad), RC_INVALID);
    CHECK_EQ_INT(p.n, 2);
    CHECK_EQ_INT(bad, 3);
}

/* ---- config_load_from ---- */

typedef struct var {
    const char *name, *value;
} var;

static const char SECRET32[] = "0123456789abcdefghijklmnopqrstuv";   /* 32 bytes */
static const char SECRET31[] = "0123456789abcdefghijklmnopqrstu";    /* 31 bytes */

/* lookup over a NULL-terminated table */
static const char *lookup(const char *name, void *arg)
{
    for (const var *v = arg; v->name; v++)
        if (strcmp(v->name, name) == 0)
            return v->value;
    return NULL;
}

static rc_t load(const var *vars, config *c, char *err, size_t errlen)
{
    err[0] = '\0';
    return config_load_from(c, lookup, (void *)vars, err, errlen);
}

static void test_defaults(void)
{
    static const var vars[] = { { "JWT_SECRET", SECRET32 }, { NULL, NULL } };
    config c;
    char err[256];
    CHECK_EQ_INT(load(vars, &c, err, sizeof err), RC_OK);
    CHECK_STR_EQ(c.host, "127.0.0.1");
    CHECK_EQ_INT(c.port, 8080);
    CHECK_STR_EQ(c.jwt_secret, SECRET32);
    CHECK_EQ_INT(c.jwt_secret_len, 32);
    CHECK(c.jwt_issuer == NULL);
    CHECK(c.jwt_audience == NULL);
    CHECK_EQ_INT(c.jwt_leeway, 30);
    CHECK_EQ_INT(c.session_ttl, 3600);
    CHECK_EQ_INT(c.session_max_ttl, 2592000);
    CHECK_STR_EQ(c.store_url, "lmdb://./data");
    CHECK_STR_EQ(c.admin_scope, "session:admin");
    CHECK_STR_EQ(c.session_cookie, "session");
    CHECK_EQ_INT(c.trust_proxy, 0);
    CHECK_EQ_INT(c.log_level, 1); /* info */
    CHECK_EQ_INT(c.threads, 0);
    CHECK_EQ_INT(c.connection_limit, 1024);
    CHECK_EQ_INT(c.connection_timeout, 10);
    CHECK_EQ_INT(c.lmdb_map_size, 4294967296LL);
    CHECK_EQ_INT(c.purge_interval, 60);
    CHECK_EQ_INT(c.redis_timeout_ms, 1000);
    CHECK(c.redis_sentinel_password == NULL);
    CHECK_EQ_INT(c.redis_wait_replicas, 0);
    CHECK_EQ_INT(c.redis_wait_timeout_ms, 500);
    config_free(&c);
    CHECK(c.host == NULL && c.jwt_secret == NULL && c.store_url == NULL);
    config_free(&c); /* twice is harmless after the first cleared the slots */
}

static void test_all_set(void)
{
    static const var vars[] = {
        { "HOST", "::1" },
        { "PORT", "65535" },
        { "JWT_SECRET", SECRET32 },
        { "JWT_ISSUER", "https://issuer.example" },
        { "JWT_AUDIENCE", "sessions api" },
        { "JWT_LEEWAY", "0" },
        { "SESSION_TTL", "60" },
        { "SESSION_MAX_TTL", "120" },
        { "STORE_URL", "lmdb:///var/lib/sessions" },
        { "ADMIN_SCOPE", "sessions:root" },
        { "SESSION_COOKIE", "sid" },
        { "TRUST_PROXY", "1" },
        { "LOG_LEVEL", "error" },
        { "THREADS", "4" },
        { "CONNECTION_LIMIT", "1" },
        { "CONNECTION_TIMEOUT", "3600" },
        { "LMDB_MAP_SIZE", "1048576" },
        { "PURGE_INTERVAL", "86400" },
        { "REDIS_TIMEOUT_MS", "10" },
        { "REDIS_SENTINEL_PASSWORD", "s3ntinel pw" },
        { "REDIS_WAIT_REPLICAS", "16" },
        { "REDIS_WAIT_TIMEOUT_MS", "60000" },
        { NULL, NULL },
    };
    config c;
    char err[256];
    CHECK_EQ_INT(load(vars, &c, err, sizeof err), RC_OK);
    CHECK_STR_EQ(c.host, "::1");
    CHECK_EQ_INT(c.port, 65535);
    CHECK_STR_EQ(c.jwt_issuer, "https://issuer.example");
    CHECK_STR_EQ(c.jwt_audience, "sessions api");
    CHECK_EQ_INT(c.jwt_leeway, 0);
    CHECK_EQ_INT(c.session_ttl, 60);
    CHECK_EQ_INT(c.session_max_ttl, 120);
    CHECK_STR_EQ(c.store_url, "lmdb:///var/lib/sessions");
    CHECK_STR_EQ(c.admin_scope, "sessions:root");
    CHECK_STR_EQ(c.session_cookie, "sid");
    CHECK_EQ_INT(c.trust_proxy, 1);
    CHECK_EQ_INT(c.log_level, 3);
    CHECK_EQ_INT(c.threads, 4);
    CHECK_EQ_INT(c.connection_limit, 1);
    CHECK_EQ_INT(c.connection_timeout, 3600);
    CHECK_EQ_INT(c.lmdb_map_size, 1048576);
    CHECK_EQ_INT(c.purge_interval, 86400);
    CHECK_EQ_INT(c.redis_timeout_ms, 10);
    CHECK_STR_EQ(c.redis_sentinel_password, "s3ntinel pw");
    CHECK_EQ_INT(c.redis_wait_replicas, 16);
    CHECK_EQ_INT(c.redis_wait_timeout_ms, 60000);
    config_free(&c);
    CHECK(c.redis_sentinel_password == NULL);
}

/* Loads the defaults plus one variable; returns the rc, err filled. */
static rc_t load_one(const char *name, const char *value, char *err, size_t errlen)
{
    var vars[] = { { "JWT_SECRET", SECRET32 }, { name, value }, { NULL, NULL } };
    config c;
    rc_t rc = load(vars, &c, err, errlen);
    config_free(&c);
    return rc;
}

static int refused_naming(const char *name, const char *value, const char *expect_in_err)
{
    char err[256];
    rc_t rc = load_one(name, value, err, sizeof err);
    if (rc != RC_INVALID) {
        fprintf(stderr, "  %s=%s: rc %d\n", name, value, (int)rc);
        return 0;
    }
    if (strstr(err, expect_in_err) == NULL) {
        fprintf(stderr, "  %s=%s: err \"%s\" lacks \"%s\"\n", name, value, err, expect_in_err);
        return 0;
    }
    return 1;
}

static int ok_one(const char *name, const char *value)
{
    char err[256];
    rc_t rc = load_one(name, value, err, sizeof err);
    if (rc != RC_OK)
        fprintf(stderr, "  %s=%s: rc %d err \"%s\"\n", name, value, (int)rc, err);
    return rc == RC_OK;
}

static void test_secret(void)
{
    config c;
    char err[256];

    /* missing */
    static const var none[] = { { "PORT", "8080" }, { NULL, NULL } };
    CHECK_EQ_INT(load(none, &c, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "JWT_SECRET") != NULL);
    CHECK(strchr(err, '\n') == NULL);
    config_free(&c);

    /* 31 bytes refused, 32 accepted; the error never shows the secret */
    static const var short_[] = { { "JWT_SECRET", SECRET31 }, { NULL, NULL } };
    CHECK_EQ_INT(load(short_, &c, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "JWT_SECRET") != NULL);
    CHECK(strstr(err, SECRET31) == NULL);
    CHECK(strstr(err, "0123456789") == NULL);
    CHECK(strstr(err, "abcdef") == NULL);
    config_free(&c);

    static const var empty[] = { { "JWT_SECRET", "" }, { NULL, NULL } };
    CHECK_EQ_INT(load(empty, &c, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "JWT_SECRET") != NULL);
    config_free(&c);

    static const var ok[] = { { "JWT_SECRET", SECRET32 }, { NULL, NULL } };
    CHECK_EQ_INT(load(ok, &c, err, sizeof err), RC_OK);
    CHECK_EQ_INT(c.jwt_secret_len, 32);
    config_free(&c);

    /* 4096 accepted, 4097 refused (without echoing it) */
    char *big = malloc(4098);
    memset(big, 'S', 4097);
    big[4097] = '\0';
    var bigv[] = { { "JWT_SECRET", big }, { NULL, NULL } };
    CHECK_EQ_INT(load(bigv, &c, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "JWT_SECRET") != NULL);
    CHECK(strstr(err, "SSSSSSSS") == NULL);
    config_free(&c);
    big[4096] = '\0';
    CHECK_EQ_INT(load(bigv, &c, err, sizeof err), RC_OK);
    CHECK_EQ_INT(c.jwt_secret_len, 4096);
    config_free(&c);
    free(big);

    /* an error on a later variable does not quote the secret either */
    static const var later[] = { { "JWT_SECRET", SECRET32 }, { "PORT", "x" }, { NULL, NULL } };
    CHECK_EQ_INT(load(later, &c, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, SECRET32) == NULL);
    config_free(&c);
}

/* JWT_SECRET_PREVIOUS: optional; when set, 32..4096 bytes like JWT_SECRET,
 * and a refusal names it without quoting it. */
static void test_secret_previous(void)
{
    config c;
    char err[256];
    static const var none[] = { { "JWT_SECRET", SECRET32 }, { NULL, NULL } };
    CHECK_EQ_INT(load(none, &c, err, sizeof err), RC_OK);
    CHECK(c.jwt_secret_previous == NULL);
    CHECK_EQ_INT(c.jwt_secret_previous_len, 0);
    config_free(&c);
    static const var both[] = { { "JWT_SECRET", SECRET32 },
                                { "JWT_SECRET_PREVIOUS", "p------------------------------33" },
                                { NULL, NULL } };
    CHECK_EQ_INT(load(both, &c, err, sizeof err), RC_OK);
    CHECK_STR_EQ(c.jwt_secret_previous, "p------------------------------33");
    CHECK_EQ_INT(c.jwt_secret_previous_len, 33);
    CHECK_EQ_INT(c.jwt_secret_len, 32);
    config_free(&c);
    static const var shortv[] = { { "JWT_SECRET", SECRET32 },
                                  { "JWT_SECRET_PREVIOUS", "previous-but-short" },
                                  { NULL, NULL } };
    CHECK_EQ_INT(load(shortv, &c, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "JWT_SECRET_PREVIOUS") != NULL);
    CHECK(strstr(err, "previous-but-short") == NULL);
    config_free(&c);
    static const var empty[] = { { "JWT_SECRET", SECRET32 }, { "JWT_SECRET_PREVIOUS", "" },
                                 { NULL, NULL } };
    CHECK_EQ_INT(load(empty, &c, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "JWT_SECRET_PREVIOUS") != NULL);
    config_free(&c);
    /* the previous secret alone is no secret */
    static const var alone[] = { { "JWT_SECRET_PREVIOUS", SECRET32 }, { NULL, NULL } };
    CHECK_EQ_INT(load(alone, &c, err, sizeof err), RC_INVALID);
    CHECK(strstr(err, "JWT_SECRET:") != NULL);
    config_free(&c);
}

static void test_refusals(void)
{
    CHECK(refused_naming("PORT", "abc", "PORT"));
    CHECK(refused_naming("PORT", "0", "PORT"));
    CHECK(refused_naming("PORT", "70000", "PORT"));
    CHECK(refused_naming("PORT", "65536", "PORT"));
    CHECK(refused_naming("PORT", "", "PORT"));
    CHECK(refused_naming("PORT", "-1", "PORT"));
    CHECK(refused_naming("PORT", " 80", "PORT"));
    CHECK(refused_naming("PORT", "80 ", "PORT"));
    CHECK(refused_naming("PORT", "8080x", "PORT"));
    CHECK(refused_naming("PORT", "0x50", "PORT"));
    CHECK(refused_naming("PORT", "99999999999999999999999", "PORT"));
    CHECK(ok_one("PORT", "1"));
    CHECK(ok_one("PORT", "65535"));

    CHECK(refused_naming("SESSION_TTL", "-5", "SESSION_TTL"));
    CHECK(refused_naming("SESSION_TTL", "0", "SESSION_TTL"));
    CHECK(refused_naming("SESSION_MAX_TTL", "-1", "SESSION_MAX_TTL"));
    CHECK(refused_naming("JWT_LEEWAY", "-1", "JWT_LEEWAY"));
    CHECK(refused_naming("JWT_LEEWAY", "3601", "JWT_LEEWAY"));
    CHECK(refused_naming("LMDB_MAP_SIZE", "1048575", "LMDB_MAP_SIZE"));
    CHECK(refused_naming("THREADS", "257", "THREADS"));
    CHECK(refused_naming("CONNECTION_LIMIT", "0", "CONNECTION_LIMIT"));
    CHECK(refused_naming("PURGE_INTERVAL", "0", "PURGE_INTERVAL"));
    CHECK(refused_naming("REDIS_TIMEOUT_MS", "9", "REDIS_TIMEOUT_MS"));
    CHECK(refused_naming("REDIS_TIMEOUT_MS", "60001", "REDIS_TIMEOUT_MS"));
    CHECK(refused_naming("REDIS_WAIT_REPLICAS", "-1", "REDIS_WAIT_REPLICAS"));
    CHECK(refused_naming("REDIS_WAIT_REPLICAS", "17", "REDIS_WAIT_REPLICAS"));
    CHECK(refused_naming("REDIS_WAIT_REPLICAS", "one", "REDIS_WAIT_REPLICAS"));
    CHECK(refused_naming("REDIS_WAIT_TIMEOUT_MS", "0", "REDIS_WAIT_TIMEOUT_MS"));
    CHECK(refused_naming("REDIS_WAIT_TIMEOUT_MS", "60001", "REDIS_WAIT_TIMEOUT_MS"));
    CHECK(refused_naming("REDIS_SENTINEL_PASSWORD", "", "REDIS_SENTINEL_PASSWORD"));
    CHECK(ok_one("REDIS_WAIT_REPLICAS", "0"));
    CHECK(ok_one("REDIS_WAIT_TIMEOUT_MS", "1"));

    /* SESSION_TTL above SESSION_MAX_TTL */
    {
        static const var vars[] = {
            { "JWT_SECRET", SECRET32 }, { "SESSION_TTL", "7200" },
            { "SESSION_MAX_TTL", "3600" }, { NULL, NULL },
        };
        config c;
        char err[256];
        CHECK_EQ_INT(load(vars, &c, err, sizeof err), RC_INVALID);
        CHECK(strstr(err, "SESSION_TTL") != NULL);
        config_free(&c);
        static const var eq[] = {
            { "JWT_SECRET", SECRET32 }, { "SESSION_TTL", "3600" },
            { "SESSION_MAX_TTL", "3600" }, { NULL, NULL },
        };
        CHECK_EQ_INT(load(eq, &c, err, sizeof err), RC_OK);
        config_free(&c);
        /* the default SESSION_TTL (3600) yields to an explicit smaller max */
        static const var small[] = {
            { "JWT_SECRET", SECRET32 }, { "SESSION_MAX_TTL", "60" }, { NULL, NULL },
        };
        CHECK_EQ_INT(load(small, &c, err, sizeof err), RC_OK);
        CHECK_EQ_INT(c.session_ttl, 60);
        CHECK_EQ_INT(c.session_max_ttl, 60);
        config_free(&c);
    }

    CHECK(refused_naming("STORE_URL", "/var/lib/sessions", "STORE_URL"));
    CHECK(refused_naming("STORE_URL", "lmdb:/x", "STORE_URL"));
    CHECK(refused_naming("STORE_URL", "://x", "STORE_URL"));
    CHECK(refused_naming("STORE_URL", "", "STORE_URL"));
    CHECK(ok_one("STORE_URL", "lmdb://./data2"));
    CHECK(ok_one("STORE_URL", "redis://localhost:6379/0"));

    CHECK(refused_naming("LOG_LEVEL", "loud", "LOG_LEVEL"));
    CHECK(refused_naming("LOG_LEVEL", "INFO", "LOG_LEVEL"));
    CHECK(refused_naming("LOG_LEVEL", "", "LOG_LEVEL"));
    CHECK(ok_one("LOG_LEVEL", "debug"));
    CHECK(ok_one("LOG_LEVEL", "warn"));

    CHECK(refused_naming("TRUST_PROXY", "2", "TRUST_PROXY"));
    CHECK(refused_naming("TRUST_PROXY", "yes", "TRUST_PROXY"));
    CHECK(refused_naming("TRUST_PROXY", "-1", "TRUST_PROXY"));
    CHECK(ok_one("TRUST_PROXY", "1"));

    CHECK(refused_naming("HOST", "localhost", "HOST"));
    CHECK(refused_naming("HOST", "not an address", "HOST"));
    CHECK(refused_naming("HOST", "256.0.0.1", "HOST"));
    CHECK(refused_naming("HOST", "", "HOST"));
    CHECK(refused_naming("HOST", "127.0.0.1:8080", "HOST"));
    CHECK(ok_one("HOST", "::1"));
    CHECK(ok_one("HOST", "0.0.0.0"));
    CHECK(ok_one("HOST", "::"));

    CHECK(refused_naming("ADMIN_SCOPE", "two words", "ADMIN_SCOPE"));
    CHECK(refused_naming("ADMIN_SCOPE", "", "ADMIN_SCOPE"));
    CHECK(refused_naming("SESSION_COOKIE", "a;b", "SESSION_COOKIE"));
    CHECK(refused_naming("SESSION_COOKIE", "a=b", "SESSION_COOKIE"));
    CHECK(refused_naming("JWT_ISSUER", "", "JWT_ISSUER"));
    CHECK(refused_naming("JWT_ISSUER", "bad\x01issuer", "JWT_ISSUER"));
    CHECK(refused_naming("JWT_AUDIENCE", "line\nbreak", "JWT_AUDIENCE"));

    /* the error is one line, fits the buffer, and is NUL-terminated when
     * the buffer is small */
    {
        char err[16];
        memset(err, 'x', sizeof err);
        CHECK_EQ_INT(load_one("PORT", "abc", err, sizeof err), RC_INVALID);
        CHECK(memchr(err, '\0', sizeof err) != NULL);
        CHECK(strncmp(err, "PORT", 4) == 0);
    }
}

int main(void)
{
    RUN(test_parse_basic);
    RUN(test_parse_malformed);
    RUN(test_defaults);
    RUN(test_all_set);
    RUN(test_secret);
    RUN(test_secret_previous);
    RUN(test_refusals);
    return UNIT_SUMMARY();
}
