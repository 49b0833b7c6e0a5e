/* test_redis_sentinel.c -- the pure parts of the Sentinel client: the
 * answers to SENTINEL get-master-addr-by-name and to ROLE, as hiredis 0.14
 * parses them (replies captured from Redis 7.0.15, then hostile ones). The
 * discovery itself, against scripted fake Sentinels and data nodes, is in
 * test_store_redis.c. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "redis_sentinel.h"
#include "unit.h"

/* A reply parsed from RESP text by hiredis's reader; NULL if it is not one
 * whole reply. */
static redisReply *resp(const char *text, size_t len)
{
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    if (rd == NULL)
        return NULL;
    if (redisReaderFeed(rd, text, len) != REDIS_OK || redisReaderGetReply(rd, &reply) != REDIS_OK) {
        if (reply)
            freeReplyObject(reply);
        reply = NULL;
    }
    redisReaderFree(rd);
    return reply;
}

#define RESP(lit) resp(lit, sizeof lit - 1)

static rc_t master_of(const char *text, size_t len, char *host, int *port)
{
    redisReply *r = resp(text, len);
    if (r == NULL) {
        fprintf(stderr, "  not RESP: %.*s\n", (int)len, text);
        return RC_ERR;
    }
    rc_t rc = redis_sentinel_parse_master(r, host, port);
    freeReplyObject(r);
    return rc;
}

#define MASTER(lit, host, port) master_of(lit, sizeof lit - 1, host, port)

static void test_master_addr(void)
{
    char host[REDIS_SENTINEL_HOST_MAX + 1];
    int port = -1;
    /* as Redis 7.0.15 answers: the port is a bulk string */
    CHECK_EQ_INT(MASTER("*2\r\n$9\r\n127.0.0.1\r\n$5\r\n40123\r\n", host, &port), RC_OK);
    CHECK_STR_EQ(host, "127.0.0.1");
    CHECK_EQ_INT(port, 40123);
    CHECK_EQ_INT(MASTER("*2\r\n$3\r\n::1\r\n$4\r\n6379\r\n", host, &port), RC_OK);
    CHECK_STR_EQ(host, "::1");
    CHECK_EQ_INT(port, 6379);
    /* announce-hostnames yes: a name */
    CHECK_EQ_INT(MASTER("*2\r\n$23\r\nredis-0.redis.svc.local\r\n$1\r\n1\r\n", host, &port),
                 RC_OK);
    CHECK_STR_EQ(host, "redis-0.redis.svc.local");
    CHECK_EQ_INT(port, 1);
    /* an integer port is taken too */
    CHECK_EQ_INT(MASTER("*2\r\n$8\r\n10.0.0.5\r\n:6380\r\n", host, &port), RC_OK);
    CHECK_EQ_INT(port, 6380);

    /* the Sentinel knows no such master */
    port = 7;
    CHECK_EQ_INT(MASTER("$-1\r\n", host, &port), RC_NOT_FOUND);
    CHECK_EQ_INT(port, 0);
    CHECK_STR_EQ(host, "");
    CHECK_EQ_INT(MASTER("*-1\r\n", host, &port), RC_NOT_FOUND);
    CHECK_EQ_INT(MASTER("*0\r\n", host, &port), RC_NOT_FOUND);
    CHECK_EQ_INT(redis_sentinel_parse_master(NULL, host, &port), RC_INVALID);
}

static void test_master_addr_refused(void)
{
    static const char *const bad[] = {
        "-ERR unknown command 'SENTINEL'\r\n",
        "-NOAUTH Authentication required.\r\n",
        "+OK\r\n",
        ":6379\r\n",
        "$9\r\n127.0.0.1\r\n",
        "*1\r\n$9\r\n127.0.0.1\r\n",
        "*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n$1\r\nx\r\n",
        "*2\r\n$0\r\n\r\n$4\r\n6379\r\n",             /* empty host */
        "*2\r\n$9\r\n127.0.0.1\r\n$0\r\n\r\n",         /* empty port */
        "*2\r\n$9\r\n127.0.0.1\r\n$1\r\n0\r\n",        /* port 0 */
        "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n65536\r\n",    /* too large */
        "*2\r\n$9\r\n127.0.0.1\r\n$6\r\n100000\r\n",
        "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n06379\r\n",    /* leading zero */
        "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n+6379\r\n",
        "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n-6379\r\n",
        "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n63 79\r\n",
        "*2\r\n$9\r\n127.0.0.1\r\n:0\r\n",
        "*2\r\n$9\r\n127.0.0.1\r\n:-1\r\n",
        "*2\r\n$9\r\n127.0.0.1\r\n:65536\r\n",
        "*2\r\n$9\r\n127.0.0.1\r\n$-1\r\n",
        "*2\r\n$-1\r\n$4\r\n6379\r\n",                 /* nil host */
        "*2\r\n:1\r\n$4\r\n6379\r\n",
        "*2\r\n+127.0.0.1\r\n$4\r\n6379\r\n",          /* a status, not a bulk string */
        "*2\r\n*0\r\n$4\r\n6379\r\n",
        "*2\r\n$9\r\n127.0.0.1\r\n*0\r\n",
        "*2\r\n$10\r\n127.0.0.1/\r\n$4\r\n6379\r\n",   /* not a host */
        "*2\r\n$9\r\nhost name\r\n$4\r\n6379\r\n",
        "*2\r\n$4\r\n:::1\r\n$4\r\n6379\r\n",          /* ':' but no IPv6 address */
        "*2\r\n$14\r\n127.0.0.1:6379\r\n$4\r\n6379\r\n",
        "*2\r\n$5\r\n[::1]\r\n$4\r\n6379\r\n",
    };
    for (size_t i = 0; i <= sizeof bad / sizeof bad[0]; i++) {
        static const char nul[] = "*2\r\n$3\r\na\0b\r\n$4\r\n6379\r\n"; /* a NUL inside */
        const char *text = i < sizeof bad / sizeof bad[0] ? bad[i] : nul;
        size_t len = text == nul ? sizeof nul - 1 : strlen(text);
        char host[REDIS_SENTINEL_HOST_MAX + 1];
        int port = 9;
        rc_t rc = master_of(text, len, host, &port);
        if (rc != RC_INVALID)
            fprintf(stderr, "  accepted #%zu: %s\n", i, text);
        CHECK_EQ_INT(rc, RC_INVALID);
        CHECK_EQ_INT(port, 0);
        CHECK_STR_EQ(host, "");
    }
    /* a host of 255 bytes is taken, one of 256 is not */
    char text[600], host[REDIS_SENTINEL_HOST_MAX + 1], name[300];
    int port;
    memset(name, 'h', sizeof name);
    snprintf(text, sizeof text, "*2\r\n$255\r\n%.255s\r\n$4\r\n6379\r\n", name);
    CHECK_EQ_INT(master_of(text, strlen(text), host, &port), RC_OK);
    CHECK_EQ_INT(strlen(host), 255);
    snprintf(text, sizeof text, "*2\r\n$256\r\n%.256s\r\n$4\r\n6379\r\n", name);
    CHECK_EQ_INT(master_of(text, strlen(text), host, &port), RC_INVALID);
}

static rc_t role_of(const char *text, size_t len)
{
    redisReply *r = resp(text, len);
    if (r == NULL) {
        fprintf(stderr, "  not RESP: %.*s\n", (int)len, text);
        return RC_ERR;
    }
    rc_t rc = redis_sentinel_parse_role(r);
    freeReplyObject(r);
    return rc;
}

#define ROLE(lit) role_of(lit, sizeof lit - 1)

static void test_role(void)
{
    /* as Redis 7.0.15 answers (a primary with two replicas, a replica, a
     * replica still connecting, a Sentinel) */
    CHECK_EQ_INT(ROLE("*3\r\n$6\r\nmaster\r\n:5432\r\n*2\r\n*3\r\n$9\r\n127.0.0.1\r\n"
                      "$5\r\n40125\r\n$4\r\n5432\r\n*3\r\n$9\r\n127.0.0.1\r\n$5\r\n40127\r\n"
                      "$4\r\n5432\r\n"),
                 RC_OK);
    CHECK_EQ_INT(ROLE("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"), RC_OK);
    CHECK_EQ_INT(ROLE("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:40123\r\n$9\r\nconnected\r\n"
                      ":5432\r\n"),
                 RC_UNAVAILABLE);
    CHECK_EQ_INT(ROLE("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:40123\r\n$7\r\nconnect\r\n"
                      ":-1\r\n"),
                 RC_UNAVAILABLE);
    CHECK_EQ_INT(ROLE("*2\r\n$8\r\nsentinel\r\n*1\r\n$8\r\nmymaster\r\n"), RC_UNAVAILABLE);
    CHECK_EQ_INT(ROLE("*1\r\n$7\r\nmasters\r\n"), RC_UNAVAILABLE);
    CHECK_EQ_INT(ROLE("*1\r\n$6\r\nMASTER\r\n"), RC_UNAVAILABLE); /* Redis writes it lowercase */
    CHECK_EQ_INT(ROLE("*1\r\n$5\r\nmaste\r\n"), RC_UNAVAILABLE);
    CHECK_EQ_INT(ROLE("*1\r\n+master\r\n"), RC_OK);
    /* not a ROLE answer */
    CHECK_EQ_INT(ROLE("-NOAUTH Authentication required.\r\n"), RC_INVALID);
    CHECK_EQ_INT(ROLE("-ERR unknown command 'ROLE'\r\n"), RC_INVALID);
    CHECK_EQ_INT(ROLE("$6\r\nmaster\r\n"), RC_INVALID);
    CHECK_EQ_INT(ROLE("+master\r\n"), RC_INVALID);
    CHECK_EQ_INT(ROLE("*0\r\n"), RC_INVALID);
    CHECK_EQ_INT(ROLE("*-1\r\n"), RC_INVALID);
    CHECK_EQ_INT(ROLE("*1\r\n:1\r\n"), RC_INVALID);
    CHECK_EQ_INT(ROLE("*1\r\n$-1\r\n"), RC_INVALID);
    CHECK_EQ_INT(ROLE("*1\r\n*1\r\n$6\r\nmaster\r\n"), RC_INVALID);
    CHECK_EQ_INT(redis_sentinel_parse_role(NULL), RC_INVALID);
}

/* Nothing listens: a discovery gives up by its deadline, and the handle
 * frees cleanly (its host-name threads included). */
static void test_no_sentinel_answers(void)
{
    redis_url_host hosts[2] = { { "127.0.0.1", 1 }, { "localhost", 2 } };
    redis_sentinel *s = redis_sentinel_new(hosts, 2, "mymaster", "pw", 200);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    char addr[RESOLVE_ADDR_MAX];
    int port = 0;
    CHECK_EQ_INT(redis_sentinel_primary(s, 0, 0, addr, &port), RC_UNAVAILABLE); /* past */
    CHECK_EQ_INT(redis_sentinel_primary(s, 0, clock_ms() + 500, addr, &port), RC_UNAVAILABLE);
    CHECK(redis_sentinel_discoveries(s) >= 1);
    redis_sentinel_forget(s, "127.0.0.1", 1); /* nothing known: nothing to forget */
    redis_sentinel_free(s);
    CHECK(redis_sentinel_new(hosts, 0, "mymaster", NULL, 200) == NULL);
}

int main(void)
{
    RUN(test_master_addr);
    RUN(test_master_addr_refused);
    RUN(test_role);
    RUN(test_no_sentinel_answers);
    return UNIT_SUMMARY();
}
