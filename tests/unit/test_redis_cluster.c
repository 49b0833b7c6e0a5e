/* test_redis_cluster.c -- the pure parts of the Redis Cluster client
 * (src/redis_cluster.h): key slots, MOVED/ASK, the slot map from CLUSTER
 * SLOTS. No Redis is needed: replies are RESP text captured from Redis
 * 7.0.15, parsed by hiredis's own reader (as the client will receive them),
 * or trees built by hand for what no reader produces.
 *
 * Expected slots were asked of a real node (redis-server 7.0.15
 * --cluster-enabled yes, CLUSTER KEYSLOT) and agree with this independent
 * Python implementation:
 *
 *   def crc16(b):
 *       c = 0
 *       for x in b:
 *           c ^= x << 8
 *           for _ in range(8):
 *               c = ((c << 1) ^ 0x1021 if c & 0x8000 else c << 1) & 0xFFFF
 *       return c
 *   def slot(k):
 *       s = k.find(b"{")
 *       if s >= 0:
 *           e = k.find(b"}", s + 1)
 *           if e > s + 1:
 *               k = k[s + 1:e]
 *       return crc16(k) % 16384
 */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include "redis_cluster.h"
#include "unit.h"

static char err[256];

/* ---- slots ---- */

/* The reference: CRC16/XMODEM bit by bit, no table. */
static uint16_t crc16_bitwise(const unsigned char *p, size_t n)
{
    unsigned c = 0;
    for (size_t i = 0; i < n; i++) {
        c ^= (unsigned)p[i] << 8;
        for (int b = 0; b < 8; b++)
            c = (c & 0x8000) ? ((c << 1) ^ 0x1021) & 0xFFFF : (c << 1) & 0xFFFF;
    }
    return (uint16_t)c;
}

static uint16_t slot_of(const char *key)
{
    return redis_cluster_slot(key, strlen(key));
}

static void test_crc(void)
{
    /* the CRC-16/XMODEM check value */
    CHECK_EQ_INT(crc16_bitwise((const unsigned char *)"123456789", 9), 0x31C3);
    CHECK_EQ_INT(slot_of("123456789"), 0x31C3 % 16384);
    /* the table-driven CRC agrees with the bitwise one on every byte value,
     * and on longer keys without braces */
    for (unsigned v = 0; v < 256; v++) {
        unsigned char b = (unsigned char)v;
        if (b == '{' || b == '}')
            continue;
        CHECK_EQ_INT(redis_cluster_slot((const char *)&b, 1), crc16_bitwise(&b, 1) % 16384);
    }
    unsigned char key[300];
    unsigned x = 12345;
    for (size_t n = 0; n < sizeof key; n++) {
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            key[i] = (unsigned char)(x >> 16);
            if (key[i] == '{')
                key[i] = 'x';
        }
        CHECK_EQ_INT(redis_cluster_slot((const char *)key, n), crc16_bitwise(key, n) % 16384);
    }
}

static void test_slots_known(void)
{
    /* CLUSTER KEYSLOT on Redis 7.0.15 */
    CHECK_EQ_INT(slot_of("123456789"), 12739);
    CHECK_EQ_INT(slot_of("foo"), 12182);
    CHECK_EQ_INT(slot_of("bar"), 5061);
    CHECK_EQ_INT(slot_of("a"), 15495);
    CHECK_EQ_INT(slot_of("x"), 16287);
    CHECK_EQ_INT(slot_of("user"), 5474);
    CHECK_EQ_INT(slot_of("alice"), 749);
    CHECK_EQ_INT(slot_of("Hello, World!"), 4054);
    CHECK_EQ_INT(slot_of("\xc3\xa9"), 10180); /* "é" in UTF-8 */
    CHECK_EQ_INT(slot_of(""), 0);
}

static void test_hash_tags(void)
{
    /* the tag alone is hashed */
    CHECK_EQ_INT(slot_of("{user}.x"), 5474);
    CHECK_EQ_INT(slot_of("{user}.x"), slot_of("user"));
    CHECK_EQ_INT(slot_of("ss:u:{alice}"), 749);
    CHECK_EQ_INT(slot_of("{user1000}.following"), 3443);
    CHECK_EQ_INT(slot_of("{user1000}.followers"), 3443);
    CHECK_EQ_INT(slot_of("user1000"), 3443);
    /* only the first tag counts */
    CHECK_EQ_INT(slot_of("foo{bar}{zap}"), 5061);
    CHECK_EQ_INT(slot_of("foo{bar}{zap}"), slot_of("bar"));
    CHECK_EQ_INT(slot_of("{a}{b}"), 15495);
    CHECK_EQ_INT(slot_of("a{b}c{d}"), 3300);
    /* the tag ends at the first '}' after the first '{': "{a" */
    CHECK_EQ_INT(slot_of("{{a}}"), 10276);
    CHECK_EQ_INT(slot_of("{{a}}"), slot_of("{a"));
    /* an empty tag: the whole key is hashed, later braces do not count */
    CHECK_EQ_INT(slot_of("a{}b"), 13694);
    CHECK_EQ_INT(slot_of("a{}b"), crc16_bitwise((const unsigned char *)"a{}b", 4) % 16384);
    CHECK_EQ_INT(slot_of("{}{x}"), 3257);
    CHECK(slot_of("{}{x}") != slot_of("x"));
    CHECK_EQ_INT(slot_of("{}"), 15257);
    /* no tag: '{' with no '}' after it, or '}' before '{' */
    CHECK_EQ_INT(slot_of("{"), 4092);
    CHECK_EQ_INT(slot_of("}"), 12090);
    CHECK_EQ_INT(slot_of("}{"), 12793);
    CHECK_EQ_INT(slot_of("{a"), 10276);
    /* bytes, NUL included: the length counts, not a terminator */
    CHECK_EQ_INT(redis_cluster_slot("a\0{b}", 6), 3300);
    CHECK_EQ_INT(redis_cluster_slot("a\0{b}", 6), slot_of("b"));
    CHECK_EQ_INT(redis_cluster_slot("\xff\xfe{\0}", 6), 0);
    CHECK_EQ_INT(redis_cluster_slot("{\0}", 3), 0);
    unsigned char all[256];
    for (unsigned i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    CHECK_EQ_INT(redis_cluster_slot((const char *)all, 256), 16155); /* tag "|" */
    CHECK_EQ_INT(slot_of("|"), 16155);
    /* len bounds the key: bytes after it are not read */
    CHECK_EQ_INT(redis_cluster_slot("foo{bar}", 3), slot_of("foo"));
    CHECK_EQ_INT(redis_cluster_slot("foo{bar}", 7), slot_of("foo{bar"));
    CHECK_EQ_INT(redis_cluster_slot("{b}", 2), slot_of("{b"));
    CHECK_EQ_INT(redis_cluster_slot(NULL, 0), 0);
}

/* ---- redirections ---- */

static rc_t redirect(const char *text, redis_redirect *r)
{
    memset(r, 0x5a, sizeof *r); /* garbage: the parser must reset */
    return redis_cluster_redirect(text, strlen(text), r);
}

#define CHECK_REDIRECT(text, type_, slot_, kind_, host_, port_)          \
    do {                                                                 \
        redis_redirect r_;                                               \
        CHECK_EQ_INT(redirect(text, &r_), RC_OK);                        \
        CHECK_EQ_INT(r_.type, type_);                                    \
        CHECK_EQ_INT(r_.slot, slot_);                                    \
        CHECK_EQ_INT(r_.kind, kind_);                                    \
        CHECK_STR_EQ(r_.host, host_);                                    \
        CHECK_EQ_INT(r_.port, port_);                                    \
    } while (0)

#define CHECK_NOT_REDIRECT(text)                                         \
    do {                                                                 \
        redis_redirect r_;                                               \
        rc_t rc_ = redirect(text, &r_);                                  \
        unit_checks++;                                                   \
        if (rc_ != RC_INVALID)                                           \
            UNIT_FAIL_AT(__FILE__, __LINE__, "\"%s\": want RC_INVALID, got %d", text, (int)rc_); \
        else if (r_.host[0] != '\0' || r_.port != 0 || r_.slot != 0)     \
            UNIT_FAIL_AT(__FILE__, __LINE__, "\"%s\": refused, but *out not reset", text); \
    } while (0)

static void test_redirect_valid(void)
{
    /* as Redis 7.0.15 sends them (cluster-preferred-endpoint-type ip,
     * hostname, unknown-endpoint, hostname with none set) */
    CHECK_REDIRECT("MOVED 12182 127.0.0.1:47003", REDIS_REDIRECT_MOVED, 12182, REDIS_HOST_NAME,
                   "127.0.0.1", 47003);
    CHECK_REDIRECT("MOVED 12182 node-47003.example:47003", REDIS_REDIRECT_MOVED, 12182,
                   REDIS_HOST_NAME, "node-47003.example", 47003);
    CHECK_REDIRECT("MOVED 12182 :47003", REDIS_REDIRECT_MOVED, 12182, REDIS_HOST_SAME, "", 47003);
    CHECK_REDIRECT("MOVED 12182 ?:47003", REDIS_REDIRECT_MOVED, 12182, REDIS_HOST_UNKNOWN, "",
                   47003);
    CHECK_REDIRECT("ASK 100 127.0.0.1:47002", REDIS_REDIRECT_ASK, 100, REDIS_HOST_NAME,
                   "127.0.0.1", 47002);
    CHECK_REDIRECT("ASK 100 :47002", REDIS_REDIRECT_ASK, 100, REDIS_HOST_SAME, "", 47002);
    /* IPv6 without brackets: the port follows the last ':' */
    CHECK_REDIRECT("MOVED 3999 ::1:6381", REDIS_REDIRECT_MOVED, 3999, REDIS_HOST_NAME, "::1", 6381);
    CHECK_REDIRECT("ASK 1 2001:db8::7:1:6379", REDIS_REDIRECT_ASK, 1, REDIS_HOST_NAME,
                   "2001:db8::7:1", 6379);
    CHECK_REDIRECT("MOVED 0 ::ffff:10.0.0.1:7000", REDIS_REDIRECT_MOVED, 0, REDIS_HOST_NAME,
                   "::ffff:10.0.0.1", 7000);
    /* bounds */
    CHECK_REDIRECT("MOVED 0 h:1", REDIS_REDIRECT_MOVED, 0, REDIS_HOST_NAME, "h", 1);
    CHECK_REDIRECT("MOVED 16383 h:65535", REDIS_REDIRECT_MOVED, 16383, REDIS_HOST_NAME, "h", 65535);
    CHECK_REDIRECT("ASK 16383 a_b-c.D9:80", REDIS_REDIRECT_ASK, 16383, REDIS_HOST_NAME, "a_b-c.D9",
                   80);
    char text[400], host[300];
    memset(host, 'h', 255);
    host[255] = '\0';
    snprintf(text, sizeof text, "MOVED 5 %s:6379", host);
    CHECK_REDIRECT(text, REDIS_REDIRECT_MOVED, 5, REDIS_HOST_NAME, host, 6379);
    /* len bounds the text */
    redis_redirect r;
    CHECK_EQ_INT(redis_cluster_redirect("ASK 7 h:6379 and more", 12, &r), RC_OK);
    CHECK_EQ_INT(r.port, 6379);
    CHECK_EQ_INT(redis_cluster_redirect("ASK 7 h:63790", 12, &r), RC_OK);
    CHECK_EQ_INT(r.port, 6379);
}

static void test_redirect_hostile(void)
{
    char text[400], host[300];
    /* other errors are not redirections */
    CHECK_NOT_REDIRECT("");
    CHECK_NOT_REDIRECT("MOVED");
    CHECK_NOT_REDIRECT("MOVED ");
    CHECK_NOT_REDIRECT("ASK");
    CHECK_NOT_REDIRECT("TRYAGAIN Multiple keys request during rehashing of slot");
    CHECK_NOT_REDIRECT("CLUSTERDOWN The cluster is down");
    CHECK_NOT_REDIRECT("READONLY You can't write against a read only replica.");
    CHECK_NOT_REDIRECT("CROSSSLOT Keys in request don't hash to the same slot");
    CHECK_NOT_REDIRECT("ERR unknown command");
    CHECK_NOT_REDIRECT("moved 1 h:1");
    CHECK_NOT_REDIRECT("MOVEDX 1 h:1");
    CHECK_NOT_REDIRECT("ASKING 1 h:1");
    CHECK_NOT_REDIRECT("-MOVED 1 h:1");
    /* slots */
    CHECK_NOT_REDIRECT("MOVED 16384 h:1");
    CHECK_NOT_REDIRECT("MOVED 99999 h:1");
    CHECK_NOT_REDIRECT("MOVED 4294967296 h:1");
    CHECK_NOT_REDIRECT("MOVED -1 h:1");
    CHECK_NOT_REDIRECT("MOVED +1 h:1");
    CHECK_NOT_REDIRECT("MOVED 01 h:1");
    CHECK_NOT_REDIRECT("MOVED 00 h:1");
    CHECK_NOT_REDIRECT("MOVED 1x h:1");
    CHECK_NOT_REDIRECT("MOVED 0x10 h:1");
    CHECK_NOT_REDIRECT("MOVED  1 h:1");
    CHECK_NOT_REDIRECT("MOVED 1  h:1");
    CHECK_NOT_REDIRECT("MOVED  h:1");
    CHECK_NOT_REDIRECT("MOVED 1");
    CHECK_NOT_REDIRECT("MOVED 1 ");
    CHECK_NOT_REDIRECT("MOVED\t1 h:1");
    /* ports */
    CHECK_NOT_REDIRECT("MOVED 1 h:0");
    CHECK_NOT_REDIRECT("MOVED 1 h:65536");
    CHECK_NOT_REDIRECT("MOVED 1 h:99999");
    CHECK_NOT_REDIRECT("MOVED 1 h:4294967297");
    CHECK_NOT_REDIRECT("MOVED 1 h:06379");
    CHECK_NOT_REDIRECT("MOVED 1 h:");
    CHECK_NOT_REDIRECT("MOVED 1 h");
    CHECK_NOT_REDIRECT("MOVED 1 h:-1");
    CHECK_NOT_REDIRECT("MOVED 1 h:+1");
    CHECK_NOT_REDIRECT("MOVED 1 h:6379 ");
    CHECK_NOT_REDIRECT("MOVED 1 h:6379\r\n");
    CHECK_NOT_REDIRECT("MOVED 1 h:6379 extra");
    CHECK_NOT_REDIRECT("MOVED 1 :");
    CHECK_NOT_REDIRECT("MOVED 1 ?:");
    /* hosts */
    CHECK_NOT_REDIRECT("MOVED 1 h h:1");
    CHECK_NOT_REDIRECT("MOVED 1 [::1]:6379");  /* Redis sends no brackets */
    CHECK_NOT_REDIRECT("MOVED 1 ::1::6379");   /* "::1:" is not an address */
    CHECK_NOT_REDIRECT("MOVED 1 1:2:6379");    /* a colon, not IPv6 */
    CHECK_NOT_REDIRECT("MOVED 1 h:x:6379");
    CHECK_NOT_REDIRECT("MOVED 1 ??:6379");
    CHECK_NOT_REDIRECT("MOVED 1 h?:6379");
    CHECK_NOT_REDIRECT("MOVED 1 h/x:6379");
    CHECK_NOT_REDIRECT("MOVED 1 h%41:6379");
    CHECK_NOT_REDIRECT("MOVED 1 fe80::1%eth0:6379");
    CHECK_NOT_REDIRECT("MOVED 1 h\xc3\xa9:6379");
    CHECK_NOT_REDIRECT("MOVED 1 h,i:6379");
    CHECK_NOT_REDIRECT("MOVED 1 h@i:6379");
    memset(host, 'h', 256);
    host[256] = '\0';
    snprintf(text, sizeof text, "MOVED 5 %s:6379", host);
    CHECK_NOT_REDIRECT(text);
    /* NUL inside */
    redis_redirect r;
    CHECK_EQ_INT(redis_cluster_redirect("MOVED 1 h\0x:6379", 16, &r), RC_INVALID);
    CHECK_EQ_INT(redis_cluster_redirect("MOVED 1\0h:6379", 14, &r), RC_INVALID);
    CHECK_EQ_INT(redis_cluster_redirect("MOVED 1 h:6379\0", 15, &r), RC_INVALID);
    CHECK_EQ_INT(redis_cluster_redirect(NULL, 0, &r), RC_INVALID);
}

/* ---- the slot map ---- */

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

static redis_slot_map *map_new(void)
{
    redis_slot_map *m = malloc(sizeof *m);
    if (m == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memset(m, 0x5a, sizeof *m); /* garbage: the parser must reset */
    return m;
}

static rc_t map_of(redisReply *r, redis_slot_map *m)
{
    err[0] = '\0';
    rc_t rc = redis_cluster_map_from_slots(r, m, err, sizeof err);
    if (r)
        freeReplyObject(r);
    return rc;
}

/* The invariants of every map: nodes in range, covered counted right,
 * every node owning a slot. */
static void check_map_sane(const redis_slot_map *m)
{
    size_t covered = 0;
    int owns[REDIS_CLUSTER_NODES_MAX] = {0};
    CHECK(m->nnodes <= REDIS_CLUSTER_NODES_MAX);
    for (size_t s = 0; s < REDIS_CLUSTER_SLOTS; s++) {
        if (m->slot_node[s] == REDIS_SLOT_NONE)
            continue;
        covered++;
        CHECK(m->slot_node[s] < m->nnodes);
        if (m->slot_node[s] < REDIS_CLUSTER_NODES_MAX)
            owns[m->slot_node[s]] = 1;
    }
    CHECK_EQ_INT(m->covered, covered);
    for (size_t i = 0; i < m->nnodes && i < REDIS_CLUSTER_NODES_MAX; i++)
        CHECK(owns[i]);
}

/* Redis 7.0.15, three primaries, cluster-preferred-endpoint-type ip, two
 * nodes with cluster-announce-hostname (metadata "hostname"), replicas on
 * two of them, slots 0-9 moved to the third (so it owns two ranges). */
static const char SLOTS_IP[] =
    "*4\r\n"
    "*4\r\n:0\r\n:9\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:47003\r\n$40\r\n241e0f5b40295746b963640cfd3dbb69175368a6\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:47006\r\n$40\r\nd7eeca1515dbee334d00c5c9f3767c289f2392b8\r\n*0\r\n"
    "*3\r\n:10\r\n:5460\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:47001\r\n$40\r\n84fe6f4f9d8b854f08875563bb4dd1bc57a8f846\r\n"
    "*2\r\n$8\r\nhostname\r\n$18\r\nnode-47001.example\r\n"
    "*4\r\n:5461\r\n:10922\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:47002\r\n$40\r\nbe59e57b56a2bbb548ebbfc89471542bc794eec7\r\n"
    "*2\r\n$8\r\nhostname\r\n$18\r\nnode-47002.example\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:47005\r\n$40\r\nebabd61b8eedddfb2da5ff9526c0cd9065329062\r\n*0\r\n"
    "*4\r\n:10923\r\n:16383\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:47003\r\n$40\r\n241e0f5b40295746b963640cfd3dbb69175368a6\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:47006\r\n$40\r\nd7eeca1515dbee334d00c5c9f3767c289f2392b8\r\n*0\r\n";

/* cluster-preferred-endpoint-type hostname; the third node has none: "?" */
static const char SLOTS_HOSTNAME[] =
    "*3\r\n"
    "*3\r\n:0\r\n:5460\r\n*4\r\n$18\r\nnode-47001.example\r\n:47001\r\n"
    "$40\r\n84fe6f4f9d8b854f08875563bb4dd1bc57a8f846\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "*3\r\n:5461\r\n:10922\r\n*4\r\n$18\r\nnode-47002.example\r\n:47002\r\n"
    "$40\r\nbe59e57b56a2bbb548ebbfc89471542bc794eec7\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "*3\r\n:10923\r\n:16383\r\n*4\r\n$1\r\n?\r\n:47003\r\n"
    "$40\r\n241e0f5b40295746b963640cfd3dbb69175368a6\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n";

/* cluster-preferred-endpoint-type unknown-endpoint: a NULL host */
static const char SLOTS_UNKNOWN_ENDPOINT[] =
    "*3\r\n"
    "*3\r\n:0\r\n:5460\r\n*4\r\n$-1\r\n:47001\r\n$40\r\n84fe6f4f9d8b854f08875563bb4dd1bc57a8f846\r\n"
    "*4\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nhostname\r\n$18\r\nnode-47001.example\r\n"
    "*3\r\n:5461\r\n:10922\r\n*4\r\n$-1\r\n:47002\r\n$40\r\nbe59e57b56a2bbb548ebbfc89471542bc794eec7\r\n"
    "*4\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nhostname\r\n$18\r\nnode-47002.example\r\n"
    "*3\r\n:10923\r\n:16383\r\n*4\r\n$-1\r\n:47003\r\n$40\r\n241e0f5b40295746b963640cfd3dbb69175368a6\r\n"
    "*4\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nhostname\r\n$18\r\nnode-47003.example\r\n";

static void test_map_redis7(void)
{
    redis_slot_map *m = map_new();
    CHECK_EQ_INT(map_of(RESP(SLOTS_IP), m), RC_OK);
    check_map_sane(m);
    CHECK_EQ_INT(m->nnodes, 3);
    CHECK_EQ_INT(m->covered, 16384);
    /* in order of first appearance: 47003 owns 0-9 and 10923-16383 */
    CHECK_EQ_INT(m->nodes[0].port, 47003);
    CHECK_EQ_INT(m->nodes[1].port, 47001);
    CHECK_EQ_INT(m->nodes[2].port, 47002);
    CHECK_EQ_INT(m->nodes[0].kind, REDIS_HOST_NAME);
    CHECK_STR_EQ(m->nodes[0].host, "127.0.0.1");
    CHECK_STR_EQ(m->nodes[0].id, "241e0f5b40295746b963640cfd3dbb69175368a6");
    CHECK_STR_EQ(m->nodes[0].ip, "");
    CHECK_STR_EQ(m->nodes[1].ip, ""); /* "hostname" is not kept */
    CHECK_EQ_INT(m->slot_node[0], 0);
    CHECK_EQ_INT(m->slot_node[9], 0);
    CHECK_EQ_INT(m->slot_node[10], 1);
    CHECK_EQ_INT(m->slot_node[5460], 1);
    CHECK_EQ_INT(m->slot_node[5461], 2);
    CHECK_EQ_INT(m->slot_node[10922], 2);
    CHECK_EQ_INT(m->slot_node[10923], 0);
    CHECK_EQ_INT(m->slot_node[16383], 0);
    CHECK(redis_cluster_map_node(m, 12182) == &m->nodes[0]); /* "foo" */
    CHECK(redis_cluster_map_node(m, slot_of("{user}.x")) == &m->nodes[2]);
    CHECK(redis_cluster_map_node(m, 16384) == NULL);

    CHECK_EQ_INT(map_of(RESP(SLOTS_HOSTNAME), m), RC_OK);
    check_map_sane(m);
    CHECK_EQ_INT(m->nnodes, 3);
    CHECK_EQ_INT(m->nodes[0].kind, REDIS_HOST_NAME);
    CHECK_STR_EQ(m->nodes[0].host, "node-47001.example");
    CHECK_STR_EQ(m->nodes[0].ip, "127.0.0.1");
    CHECK_EQ_INT(m->nodes[2].kind, REDIS_HOST_UNKNOWN);
    CHECK_STR_EQ(m->nodes[2].host, "");
    CHECK_STR_EQ(m->nodes[2].ip, "127.0.0.1");
    CHECK_EQ_INT(m->nodes[2].port, 47003);

    CHECK_EQ_INT(map_of(RESP(SLOTS_UNKNOWN_ENDPOINT), m), RC_OK);
    check_map_sane(m);
    CHECK_EQ_INT(m->nnodes, 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ_INT(m->nodes[i].kind, REDIS_HOST_SAME);
        CHECK_STR_EQ(m->nodes[i].host, "");
        CHECK_STR_EQ(m->nodes[i].ip, "127.0.0.1");
        CHECK_EQ_INT(m->nodes[i].port, 47001 + (int)i);
    }
    free(m);
}

static void test_map_older_and_partial(void)
{
    redis_slot_map *m = map_new();
    /* Redis 3: [host, port] only; Redis 4-6: [host, port, id] */
    CHECK_EQ_INT(map_of(RESP("*2\r\n*3\r\n:0\r\n:8191\r\n*2\r\n$8\r\n10.0.0.1\r\n:7000\r\n"
                             "*4\r\n:8192\r\n:16383\r\n*3\r\n$8\r\n10.0.0.2\r\n:7000\r\n"
                             "$40\r\n0123456789abcdef0123456789abcdef01234567\r\n"
                             "*2\r\n$8\r\n10.0.0.3\r\n:7000\r\n"),
                        m),
                 RC_OK);
    check_map_sane(m);
    CHECK_EQ_INT(m->nnodes, 2);
    CHECK_STR_EQ(m->nodes[0].id, "");
    CHECK_STR_EQ(m->nodes[1].id, "0123456789abcdef0123456789abcdef01234567");
    CHECK_STR_EQ(m->nodes[1].host, "10.0.0.2");
    /* an empty host (a node that does not know its address): the same host */
    CHECK_EQ_INT(map_of(RESP("*1\r\n*3\r\n:5\r\n:5\r\n*2\r\n$0\r\n\r\n:6379\r\n"), m), RC_OK);
    CHECK_EQ_INT(m->nodes[0].kind, REDIS_HOST_SAME);
    CHECK_EQ_INT(m->covered, 1);
    CHECK_EQ_INT(m->slot_node[5], 0);
    CHECK(redis_cluster_map_node(m, 4) == NULL);
    CHECK(redis_cluster_map_node(m, 6) == NULL);
    check_map_sane(m);
    /* no slots at all: a valid, empty map */
    CHECK_EQ_INT(map_of(RESP("*0\r\n"), m), RC_OK);
    CHECK_EQ_INT(m->nnodes, 0);
    CHECK_EQ_INT(m->covered, 0);
    CHECK(redis_cluster_map_node(m, 0) == NULL);
    check_map_sane(m);
    /* IPv6, metadata names of later versions, elements after the metadata */
    CHECK_EQ_INT(map_of(RESP("*1\r\n*3\r\n:0\r\n:16383\r\n*5\r\n$3\r\n::1\r\n:7000\r\n"
                             "$40\r\n0123456789abcdef0123456789abcdef01234567\r\n"
                             "*4\r\n$4\r\nzone\r\n$1\r\na\r\n$2\r\nip\r\n$3\r\n::1\r\n:42\r\n"),
                        m),
                 RC_OK);
    CHECK_STR_EQ(m->nodes[0].host, "::1");
    CHECK_STR_EQ(m->nodes[0].ip, "::1");
    CHECK_EQ_INT(m->covered, 16384);
    /* one primary in many single-slot ranges (after reshards) */
    char *big = malloc(16384 * 64 + 16);
    CHECK(big != NULL);
    if (big != NULL) {
        size_t n = (size_t)sprintf(big, "*16384\r\n");
        for (int s = 16383; s >= 0; s--)
            n += (size_t)sprintf(big + n, "*3\r\n:%d\r\n:%d\r\n*2\r\n$1\r\n%c\r\n:%d\r\n", s, s,
                                 'a' + s % 3, 7000 + s % 3);
        CHECK_EQ_INT(map_of(resp(big, n), m), RC_OK);
        check_map_sane(m);
        CHECK_EQ_INT(m->nnodes, 3);
        CHECK_EQ_INT(m->covered, 16384);
        CHECK_STR_EQ(redis_cluster_map_node(m, 16383)->host, "a");
        CHECK_EQ_INT(redis_cluster_map_node(m, 16382)->port, 7002);
        free(big);
    }
    free(m);
}

/* Refused with RC_INVALID, a reason naming CLUSTER SLOTS, and *m left
 * empty (no node, no slot). */
#define CHECK_MAP_REFUSED(reply)                                                \
    do {                                                                        \
        redis_slot_map *m_ = map_new();                                         \
        redisReply *r_ = (reply);                                               \
        unit_checks++;                                                          \
        if (r_ == NULL) /* the RESP text itself must be one whole reply */      \
            UNIT_FAIL_AT(__FILE__, __LINE__, "hiredis did not parse the reply"); \
        rc_t rc_ = map_of(r_, m_);                                              \
        if (rc_ != RC_INVALID)                                                  \
            UNIT_FAIL_AT(__FILE__, __LINE__, "want RC_INVALID, got %d", (int)rc_); \
        else if (strstr(err, "CLUSTER SLOTS") == NULL)                          \
            UNIT_FAIL_AT(__FILE__, __LINE__, "reason does not name CLUSTER SLOTS: \"%s\"", err); \
        else if (m_->nnodes != 0 || m_->covered != 0 || m_->slot_node[0] != REDIS_SLOT_NONE || \
                 m_->slot_node[16383] != REDIS_SLOT_NONE)                       \
            UNIT_FAIL_AT(__FILE__, __LINE__, "refused, but the map is not empty"); \
        free(m_);                                                               \
    } while (0)

#define N1 "*2\r\n$1\r\nh\r\n:7000\r\n"
#define ID_A "$40\r\n0123456789abcdef0123456789abcdef01234567\r\n"
#define ID_B "$40\r\nfedcba9876543210fedcba9876543210fedcba98\r\n"

static void test_map_hostile_resp(void)
{
    /* not an array of ranges */
    redis_slot_map *m = map_new();
    CHECK_EQ_INT(map_of(NULL, m), RC_INVALID);
    free(m);
    CHECK_MAP_REFUSED(RESP("-ERR This instance has cluster support disabled\r\n"));
    CHECK_MAP_REFUSED(RESP("$-1\r\n"));
    CHECK_MAP_REFUSED(RESP("*-1\r\n"));
    CHECK_MAP_REFUSED(RESP(":3\r\n"));
    CHECK_MAP_REFUSED(RESP("+OK\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n:0\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*-1\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*0\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*2\r\n:0\r\n:1\r\n"));                   /* no primary */
    /* start and end */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n$1\r\n0\r\n:1\r\n" N1));           /* a string */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n+1\r\n" N1));                /* a status */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n$-1\r\n:1\r\n" N1));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:5\r\n:4\r\n" N1));                /* start > end */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:-1\r\n:4\r\n" N1));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:16384\r\n" N1));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:16384\r\n:16384\r\n" N1));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:9223372036854775807\r\n" N1));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:-9223372036854775808\r\n:0\r\n" N1));
    /* a slot in two ranges, even for the same node */
    CHECK_MAP_REFUSED(RESP("*2\r\n*3\r\n:0\r\n:10\r\n" N1 "*3\r\n:10\r\n:20\r\n" N1));
    CHECK_MAP_REFUSED(RESP("*2\r\n*3\r\n:0\r\n:16383\r\n" N1
                           "*3\r\n:7\r\n:7\r\n*2\r\n$1\r\ni\r\n:7000\r\n"));
    /* nodes */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n$1\r\nh\r\n"));        /* not an array */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n"));  /* no port */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*0\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*-1\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:7000\r\n"));       /* host int */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n+h\r\n:7000\r\n"));       /* status */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n-h\r\n:7000\r\n"));       /* error */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n*0\r\n:7000\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n$4\r\n7000\r\n")); /* port str */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n$-1\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:65536\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:-7000\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:4294974296\r\n"));
    /* hosts */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\nh h\r\n:7000\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\nh\0h\r\n:7000\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$5\r\n[::1]\r\n:7000\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\n1:2\r\n:7000\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$2\r\n??\r\n:7000\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$4\r\nh\r\nx\r\n:7000\r\n"));
    /* ids */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:7000\r\n$3\r\nabc\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:7000\r\n"
                           "$40\r\n0123456789ABCDEF0123456789abcdef01234567\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:7000\r\n"
                           "$41\r\n0123456789abcdef0123456789abcdef012345678\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:7000\r\n$-1\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:7000\r\n:5\r\n"));
    /* one address with two ids, one id at two addresses */
    CHECK_MAP_REFUSED(RESP("*2\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:7000\r\n" ID_A
                           "*3\r\n:2\r\n:3\r\n*3\r\n$1\r\nh\r\n:7000\r\n" ID_B));
    CHECK_MAP_REFUSED(RESP("*2\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:7000\r\n" ID_A
                           "*3\r\n:2\r\n:3\r\n*2\r\n$1\r\nh\r\n:7000\r\n"));
    CHECK_MAP_REFUSED(RESP("*2\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:7000\r\n" ID_A
                           "*3\r\n:2\r\n:3\r\n*3\r\n$1\r\nh\r\n:7001\r\n" ID_A));
    /* metadata */
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*4\r\n$1\r\nh\r\n:7000\r\n" ID_A "$2\r\nip\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*4\r\n$1\r\nh\r\n:7000\r\n" ID_A "*-1\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*4\r\n$1\r\nh\r\n:7000\r\n" ID_A
                           "*1\r\n$2\r\nip\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*4\r\n$1\r\nh\r\n:7000\r\n" ID_A
                           "*2\r\n$2\r\nip\r\n:1\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*4\r\n$1\r\nh\r\n:7000\r\n" ID_A
                           "*2\r\n$2\r\nip\r\n$4\r\nhost\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*4\r\n$1\r\nh\r\n:7000\r\n" ID_A
                           "*2\r\n$2\r\nip\r\n$10\r\n127.0.0.1\0\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*4\r\n$1\r\nh\r\n:7000\r\n" ID_A
                           "*2\r\n*0\r\n$1\r\nx\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*3\r\n:0\r\n:1\r\n*4\r\n$1\r\nh\r\n:7000\r\n" ID_A
                           "*2\r\n$2\r\nip\r\n$46\r\n0000:0000:0000:0000:0000:0000:000.000.000.0000\r\n"));
    /* replicas: shape only, but that they must have */
    CHECK_MAP_REFUSED(RESP("*1\r\n*4\r\n:0\r\n:1\r\n" N1 ":5\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*4\r\n:0\r\n:1\r\n" N1 "*1\r\n$1\r\nr\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*4\r\n:0\r\n:1\r\n" N1 "*2\r\n:1\r\n:1\r\n"));
    CHECK_MAP_REFUSED(RESP("*1\r\n*4\r\n:0\r\n:1\r\n" N1 "*2\r\n$1\r\nr\r\n$1\r\n1\r\n"));
    /* one refused range spoils the map, wherever it is */
    CHECK_MAP_REFUSED(RESP("*3\r\n*3\r\n:0\r\n:1\r\n" N1 "*3\r\n:2\r\n:3\r\n" N1 "*3\r\n:9\r\n:8\r\n" N1));
}

static void test_map_replicas_kept_loose(void)
{
    redis_slot_map *m = map_new();
    /* a replica's port and host are not checked beyond their types: they
     * are not kept, and one odd replica must not take the map down */
    CHECK_EQ_INT(map_of(RESP("*1\r\n*5\r\n:0\r\n:16383\r\n" N1 "*2\r\n$-1\r\n:0\r\n"
                             "*3\r\n$3\r\nr r\r\n:70000\r\n:1\r\n"),
                        m),
                 RC_OK);
    CHECK_EQ_INT(m->nnodes, 1);
    CHECK_EQ_INT(m->covered, 16384);
    free(m);
}

/* Hand-built trees: NULL pointers no reader produces. */
static void test_map_hostile_trees(void)
{
    redisReply i0 = {.type = REDIS_REPLY_INTEGER, .integer = 0};
    redisReply i1 = {.type = REDIS_REPLY_INTEGER, .integer = 1};
    redisReply port = {.type = REDIS_REPLY_INTEGER, .integer = 7000};
    redisReply host = {.type = REDIS_REPLY_STRING, .str = (char *)"h", .len = 1};
    redisReply nostr = {.type = REDIS_REPLY_STRING, .str = NULL, .len = 3};
    redisReply *node_el[] = {&host, &port};
    redisReply node = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = node_el};
    redisReply *range_el[] = {&i0, &i1, &node};
    redisReply range = {.type = REDIS_REPLY_ARRAY, .elements = 3, .element = range_el};
    redisReply *top_el[] = {&range};
    redisReply top = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = top_el};
    redis_slot_map *m = map_new();

    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_OK);
    CHECK_EQ_INT(m->covered, 2);

    top.element = NULL;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
    top.element = top_el;
    top_el[0] = NULL;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
    top_el[0] = &range;
    range.element = NULL;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
    range.element = range_el;
    for (size_t i = 0; i < 3; i++) {
        redisReply *keep = range_el[i];
        range_el[i] = NULL;
        CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
        range_el[i] = keep;
    }
    node.element = NULL;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
    node.element = node_el;
    node_el[0] = NULL;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
    node_el[0] = &nostr; /* a string without bytes */
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
    node_el[0] = &host;
    node_el[1] = NULL;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
    node_el[1] = &port;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_OK);
    /* a tree that claims more metadata than it holds is the caller's bug;
     * an odd count or a NULL vector is refused */
    redisReply *meta_el[] = {&host, NULL};
    redisReply meta = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = meta_el};
    redisReply id = {.type = REDIS_REPLY_STRING,
                     .str = (char *)"0123456789abcdef0123456789abcdef01234567", .len = 40};
    redisReply *node4_el[] = {&host, &port, &id, &meta};
    redisReply node4 = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = node4_el};
    range_el[2] = &node4;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
    meta_el[1] = &host;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_OK);
    meta.element = NULL;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
    meta.element = meta_el;
    meta.elements = 1;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_INVALID);
    meta.elements = 0;
    meta.element = NULL; /* an empty array may have no vector */
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_OK);
    top.elements = 0;
    top.element = NULL;
    CHECK_EQ_INT(redis_cluster_map_from_slots(&top, m, err, sizeof err), RC_OK);
    CHECK_EQ_INT(m->covered, 0);
    free(m);
}

static void test_map_too_many_nodes(void)
{
    /* 64 primaries fit, 65 do not */
    char *text = malloc(65 * 64 + 16);
    CHECK(text != NULL);
    if (text == NULL)
        return;
    for (int nodes = 64; nodes <= 65; nodes++) {
        size_t n = (size_t)sprintf(text, "*%d\r\n", nodes);
        for (int i = 0; i < nodes; i++)
            n += (size_t)sprintf(text + n, "*3\r\n:%d\r\n:%d\r\n*2\r\n$1\r\nh\r\n:%d\r\n", i * 10,
                                 i * 10 + 9, 7000 + i);
        redis_slot_map *m = map_new();
        rc_t rc = map_of(resp(text, n), m);
        if (nodes == 64) {
            CHECK_EQ_INT(rc, RC_OK);
            CHECK_EQ_INT(m->nnodes, 64);
            CHECK_EQ_INT(m->covered, 640);
            check_map_sane(m);
        } else {
            CHECK_EQ_INT(rc, RC_INVALID);
            CHECK(strstr(err, "more than 64") != NULL);
        }
        free(m);
    }
    free(text);
}

static void test_map_move(void)
{
    redis_slot_map *m = map_new();
    CHECK_EQ_INT(map_of(RESP(SLOTS_IP), m), RC_OK);
    /* MOVED to a known node: the slot changes hands, no node is added */
    CHECK_EQ_INT(redis_cluster_map_move(m, 12182, REDIS_HOST_NAME, "127.0.0.1", 47001), RC_OK);
    CHECK_EQ_INT(m->nnodes, 3);
    CHECK_EQ_INT(redis_cluster_map_node(m, 12182)->port, 47001);
    CHECK_EQ_INT(m->covered, 16384);
    /* to a new node: added, without an id */
    CHECK_EQ_INT(redis_cluster_map_move(m, 0, REDIS_HOST_NAME, "::1", 7000), RC_OK);
    CHECK_EQ_INT(m->nnodes, 4);
    CHECK_STR_EQ(redis_cluster_map_node(m, 0)->host, "::1");
    CHECK_STR_EQ(redis_cluster_map_node(m, 0)->id, "");
    CHECK_EQ_INT(redis_cluster_map_move(m, 1, REDIS_HOST_SAME, "ignored", 7000), RC_OK);
    CHECK_EQ_INT(m->nnodes, 5);
    CHECK_EQ_INT(redis_cluster_map_node(m, 1)->kind, REDIS_HOST_SAME);
    CHECK_STR_EQ(redis_cluster_map_node(m, 1)->host, "");
    CHECK_EQ_INT(redis_cluster_map_move(m, 2, REDIS_HOST_SAME, "", 7000), RC_OK);
    CHECK_EQ_INT(m->nnodes, 5);
    check_map_sane(m);
    /* refused: out of range, a malformed host; the map is unchanged */
    CHECK_EQ_INT(redis_cluster_map_move(m, 16384, REDIS_HOST_NAME, "h", 1), RC_INVALID);
    CHECK_EQ_INT(redis_cluster_map_move(m, 5, REDIS_HOST_NAME, "h", 0), RC_INVALID);
    CHECK_EQ_INT(redis_cluster_map_move(m, 5, REDIS_HOST_NAME, "h", 65536), RC_INVALID);
    CHECK_EQ_INT(redis_cluster_map_move(m, 5, REDIS_HOST_NAME, "", 1), RC_INVALID);
    CHECK_EQ_INT(redis_cluster_map_move(m, 5, REDIS_HOST_NAME, "?", 1), RC_INVALID);
    CHECK_EQ_INT(redis_cluster_map_move(m, 5, REDIS_HOST_NAME, "a b", 1), RC_INVALID);
    CHECK_EQ_INT(redis_cluster_map_move(m, 5, REDIS_HOST_NAME, NULL, 1), RC_INVALID);
    CHECK_EQ_INT(redis_cluster_map_move(m, 5, (redis_host_kind)7, "h", 1), RC_INVALID);
    char host[300];
    memset(host, 'h', 256);
    host[256] = '\0';
    CHECK_EQ_INT(redis_cluster_map_move(m, 5, REDIS_HOST_NAME, host, 1), RC_INVALID);
    host[255] = '\0';
    CHECK_EQ_INT(redis_cluster_map_move(m, 5, REDIS_HOST_NAME, host, 1), RC_OK);
    CHECK_EQ_INT(m->nnodes, 6);
    check_map_sane(m);
    /* into an empty map: covered counts up */
    CHECK_EQ_INT(map_of(RESP("*0\r\n"), m), RC_OK);
    CHECK_EQ_INT(redis_cluster_map_move(m, 9, REDIS_HOST_NAME, "h", 1), RC_OK);
    CHECK_EQ_INT(m->covered, 1);
    CHECK_EQ_INT(redis_cluster_map_move(m, 9, REDIS_HOST_NAME, "h", 2), RC_OK);
    CHECK_EQ_INT(m->covered, 1);
    CHECK_EQ_INT(m->nnodes, 2); /* the first node keeps its place, slotless */
    /* a full map: RC_FULL, unchanged */
    for (int i = 2; i < REDIS_CLUSTER_NODES_MAX; i++)
        CHECK_EQ_INT(redis_cluster_map_move(m, (uint16_t)(100 + i), REDIS_HOST_NAME, "h", 100 + i),
                     RC_OK);
    CHECK_EQ_INT(m->nnodes, REDIS_CLUSTER_NODES_MAX);
    CHECK_EQ_INT(redis_cluster_map_move(m, 9, REDIS_HOST_NAME, "new", 1), RC_FULL);
    CHECK_EQ_INT(redis_cluster_map_node(m, 9)->port, 2);
    CHECK_EQ_INT(redis_cluster_map_move(m, 9, REDIS_HOST_NAME, "h", 1), RC_OK);
    CHECK_EQ_INT(redis_cluster_map_node(m, 9)->port, 1);
    free(m);
}

int main(void)
{
    RUN(test_crc);
    RUN(test_slots_known);
    RUN(test_hash_tags);
    RUN(test_redirect_valid);
    RUN(test_redirect_hostile);
    RUN(test_map_redis7);
    RUN(test_map_older_and_partial);
    RUN(test_map_hostile_resp);
    RUN(test_map_replicas_kept_loose);
    RUN(test_map_hostile_trees);
    RUN(test_map_too_many_nodes);
    RUN(test_map_move);
    return UNIT_SUMMARY();
}
