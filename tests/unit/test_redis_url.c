/* test_redis_url.c -- store_redis_url_parse, the pure parser of the part of
 * STORE_URL after "redis://": [[user]:password@]host[:port][/db]
 * (docs/REDIS.md, src/store_redis.h), and store_redis_url_parse_as for the
 * parts after "redis-sentinel://" (host:port[,host:port...]/master-name[/db])
 * and "redis-cluster://" (host:port[,host:port...]). No Redis is needed. */
#include <stdlib.h>
#include <string.h>
#include "store_redis.h"
#include "unit.h"

static char err[256];

static rc_t parse(const char *target, redis_url *u)
{
    err[0] = '\0';
    return store_redis_url_parse(target, strlen(target), u, err, sizeof err);
}

/* Parses target and checks every field. */
#define CHECK_URL(target, host_, port_, user_, password_, has_pw_, db_)   \
    do {                                                                  \
        redis_url u_;                                                     \
        memset(&u_, 0x5a, sizeof u_); /* garbage: the parser must reset */ \
        CHECK_EQ_INT(parse(target, &u_), RC_OK);                          \
        CHECK_STR_EQ(u_.host, host_);                                     \
        CHECK_EQ_INT(u_.port, port_);                                     \
        CHECK_STR_EQ(u_.user, user_);                                     \
        CHECK_STR_EQ(u_.password, password_);                             \
        CHECK_EQ_INT(u_.has_password, has_pw_);                           \
        CHECK_EQ_INT(u_.db, db_);                                         \
        CHECK_EQ_INT(u_.kind, REDIS_URL_PLAIN);                           \
        CHECK_EQ_INT(u_.nhosts, 1);                                       \
        CHECK_STR_EQ(u_.hosts[0].host, host_);                            \
        CHECK_EQ_INT(u_.hosts[0].port, port_);                            \
        CHECK_STR_EQ(u_.master, "");                                      \
    } while (0)

/* Refused with RC_INVALID and an error line that names STORE_URL. */
#define CHECK_REFUSED(target)                                             \
    do {                                                                  \
        redis_url u_;                                                     \
        rc_t rc_ = parse(target, &u_);                                    \
        unit_checks++;                                                    \
        if (rc_ != RC_INVALID)                                            \
            UNIT_FAIL_AT(__FILE__, __LINE__, "redis://%s: want RC_INVALID, got %d", \
                         target, (int)rc_);                               \
        else if (strstr(err, "STORE_URL") == NULL)                        \
            UNIT_FAIL_AT(__FILE__, __LINE__, "redis://%s: error does not name " \
                         "STORE_URL: \"%s\"", target, err);               \
    } while (0)

static void test_host_only(void)
{
    CHECK_URL("localhost", "localhost", 6379, "", "", 0, 0);
    CHECK_URL("127.0.0.1", "127.0.0.1", 6379, "", "", 0, 0);
    CHECK_URL("redis-1.internal_net.example", "redis-1.internal_net.example", 6379, "", "", 0, 0);
    CHECK_URL("h", "h", 6379, "", "", 0, 0);
}

static void test_host_port(void)
{
    CHECK_URL("localhost:6380", "localhost", 6380, "", "", 0, 0);
    CHECK_URL("10.0.0.5:1", "10.0.0.5", 1, "", "", 0, 0);
    CHECK_URL("10.0.0.5:65535", "10.0.0.5", 65535, "", "", 0, 0);
    CHECK_URL("h:06379", "h", 6379, "", "", 0, 0);
}

static void test_password(void)
{
    CHECK_URL(":secret@localhost", "localhost", 6379, "", "secret", 1, 0);
    CHECK_URL(":secret@localhost:7000/3", "localhost", 7000, "", "secret", 1, 3);
    /* a ':' in the password needs no encoding: the first ':' ends the user */
    CHECK_URL(":a:b:c@h", "h", 6379, "", "a:b:c", 1, 0);
    /* an empty password is no password (no AUTH) */
    CHECK_URL(":@h", "h", 6379, "", "", 0, 0);
}

static void test_user_and_password(void)
{
    CHECK_URL("alice:secret@localhost", "localhost", 6379, "alice", "secret", 1, 0);
    CHECK_URL("alice:secret@10.1.2.3:6390/7", "10.1.2.3", 6390, "alice", "secret", 1, 7);
    CHECK_URL("default:pw@h", "h", 6379, "default", "pw", 1, 0);
    CHECK_URL("al%69ce:pw@h", "h", 6379, "alice", "pw", 1, 0);
}

static void test_percent_encoded_password(void)
{
    CHECK_URL(":p%40ss%3Aw%2Fd@h", "h", 6379, "", "p@ss:w/d", 1, 0);
    CHECK_URL(":%25%2f%2F@h:1/1", "h", 1, "", "%//", 1, 1);
    CHECK_URL("u%3Ax:%C3%A9t%C3%A9@h", "h", 6379, "u:x", "\xc3\xa9t\xc3\xa9", 1, 0);
    /* the last '@' ends the credentials, so a raw '@' in the password works too */
    CHECK_URL(":a@b@h:6000", "h", 6000, "", "a@b", 1, 0);
    /* '+' is not a space in a URL's userinfo */
    CHECK_URL(":a+b@h", "h", 6379, "", "a+b", 1, 0);
}

static void test_ipv6(void)
{
    CHECK_URL("[::1]", "::1", 6379, "", "", 0, 0);
    CHECK_URL("[::1]:6380", "::1", 6380, "", "", 0, 0);
    CHECK_URL("[::1]/2", "::1", 6379, "", "", 0, 2);
    CHECK_URL("[fe80::1:2]:7000/9", "fe80::1:2", 7000, "", "", 0, 9);
    CHECK_URL(":pw@[::1]:6380/4", "::1", 6380, "", "pw", 1, 4);
    CHECK_URL("u:pw@[2001:db8::5]", "2001:db8::5", 6379, "u", "pw", 1, 0);
}

static void test_db(void)
{
    CHECK_URL("h/0", "h", 6379, "", "", 0, 0);
    CHECK_URL("h/15", "h", 6379, "", "", 0, 15);
    CHECK_URL("h:6380/15", "h", 6380, "", "", 0, 15);
    CHECK_URL("h/", "h", 6379, "", "", 0, 0);   /* empty path: database 0 */
    CHECK_URL("h/65535", "h", 6379, "", "", 0, 65535);
}

static void test_refusals(void)
{
    /* no host */
    CHECK_REFUSED("");
    CHECK_REFUSED(":6379");
    CHECK_REFUSED("/0");
    CHECK_REFUSED(":pw@");
    CHECK_REFUSED(":pw@:6379");
    CHECK_REFUSED("u:pw@/1");
    /* ports out of range or not numbers */
    CHECK_REFUSED("h:0");
    CHECK_REFUSED("h:00");
    CHECK_REFUSED("h:65536");
    CHECK_REFUSED("h:99999");
    CHECK_REFUSED("h:4294967297");       /* would wrap a 32-bit int to 1 */
    CHECK_REFUSED("h:18446744073709551617");
    CHECK_REFUSED("h:");
    CHECK_REFUSED("h:-1");
    CHECK_REFUSED("h:+1");
    CHECK_REFUSED("h: 1");
    CHECK_REFUSED("h:abc");
    CHECK_REFUSED("h:63 79");
    CHECK_REFUSED("h:6379x");
    CHECK_REFUSED("h:1:2");
    /* databases that are not numbers */
    CHECK_REFUSED("h/abc");
    CHECK_REFUSED("h/1x");
    CHECK_REFUSED("h/-1");
    CHECK_REFUSED("h/+1");
    CHECK_REFUSED("h/ 1");
    CHECK_REFUSED("h/1/2");
    CHECK_REFUSED("h/0x10");
    CHECK_REFUSED("h:6379/abc");
    CHECK_REFUSED("h/65536");
    CHECK_REFUSED("h/99999999999999999999");
    /* IPv6 */
    CHECK_REFUSED("[]");
    CHECK_REFUSED("[]:6379");
    CHECK_REFUSED("[::1");
    CHECK_REFUSED("[::1]x");
    CHECK_REFUSED("[::1]6379");
    CHECK_REFUSED("[::1]:");
    CHECK_REFUSED("[::1]:0");
    CHECK_REFUSED("[::1]:65536");
    CHECK_REFUSED("[::1]:abc");
    CHECK_REFUSED("[::1]/abc");
    CHECK_REFUSED("::1");                /* unbracketed: ':' ends the host */
    CHECK_REFUSED("[a b]:6379");         /* brackets hold an IPv6 address, nothing else */
    CHECK_REFUSED("[zz!]");
    CHECK_REFUSED("[::1 ]");
    CHECK_REFUSED("[127.0.0.1]");
    CHECK_REFUSED("[h\xc3\xa9]");
    /* bad characters in the host */
    CHECK_REFUSED("ho st");
    CHECK_REFUSED("host!");
    CHECK_REFUSED("h%41");
    CHECK_REFUSED("h\tx");
    CHECK_REFUSED("h\xc3\xa9");
    CHECK_REFUSED("h?db=1");
    CHECK_REFUSED("h#frag");
    CHECK_REFUSED("h,i");
    /* credentials */
    CHECK_REFUSED("user@h");             /* no ':' before '@' */
    CHECK_REFUSED("@h");
    CHECK_REFUSED(":%zz@h");             /* bad percent-encoding */
    CHECK_REFUSED(":%4@h");
    CHECK_REFUSED(":abc%@h");
    CHECK_REFUSED(":%00@h");             /* NUL cannot be sent in AUTH */
    CHECK_REFUSED("u%00:pw@h");
    CHECK_REFUSED("u%g0:pw@h");
}

static void test_lengths(void)
{
    char buf[1024];
    redis_url u;
    /* host: 255 bytes fit, 256 do not */
    memset(buf, 'a', 255);
    buf[255] = '\0';
    CHECK_EQ_INT(parse(buf, &u), RC_OK);
    CHECK_EQ_INT(strlen(u.host), 255);
    memset(buf, 'a', 256);
    buf[256] = '\0';
    CHECK_REFUSED(buf);
    /* password: 255 bytes fit, 256 do not */
    buf[0] = ':';
    memset(buf + 1, 'p', 255);
    strcpy(buf + 256, "@h");
    CHECK_EQ_INT(parse(buf, &u), RC_OK);
    CHECK_EQ_INT(strlen(u.password), 255);
    CHECK_STR_EQ(u.host, "h");
    buf[0] = ':';
    memset(buf + 1, 'p', 256);
    strcpy(buf + 257, "@h");
    CHECK_REFUSED(buf);
    /* user: 127 bytes fit, 128 do not */
    memset(buf, 'u', 127);
    strcpy(buf + 127, ":pw@h");
    CHECK_EQ_INT(parse(buf, &u), RC_OK);
    CHECK_EQ_INT(strlen(u.user), 127);
    memset(buf, 'u', 128);
    strcpy(buf + 128, ":pw@h");
    CHECK_REFUSED(buf);
    /* the len argument bounds the parse: bytes after it are not read */
    const char *t = "h:6380/2trailing";
    CHECK_EQ_INT(store_redis_url_parse(t, 8, &u, err, sizeof err), RC_OK);
    CHECK_STR_EQ(u.host, "h");
    CHECK_EQ_INT(u.port, 6380);
    CHECK_EQ_INT(u.db, 2);
    CHECK_EQ_INT(store_redis_url_parse(t, 6, &u, err, sizeof err), RC_OK);
    CHECK_EQ_INT(u.port, 6380);
    CHECK_EQ_INT(u.db, 0);
}

/* ---- redis-sentinel:// and redis-cluster:// ---- */

static const char *const SCHEME[] = {"redis://", "redis-sentinel://", "redis-cluster://"};

static rc_t parse_as(redis_url_kind kind, const char *target, redis_url *u)
{
    err[0] = '\0';
    memset(u, 0x5a, sizeof *u); /* garbage: the parser must reset */
    return store_redis_url_parse_as(kind, target, strlen(target), u, err, sizeof err);
}

/* Parses target as kind and checks the common fields; hosts is
 * "host port host port ..." as one string of words. */
static void check_list(int line, redis_url_kind kind, const char *target, const char *hosts,
                       const char *user, const char *password, const char *master, int db)
{
    redis_url *u = malloc(sizeof *u);
    if (u == NULL)
        return;
    unit_checks++;
    rc_t rc = parse_as(kind, target, u);
    if (rc != RC_OK) {
        UNIT_FAIL_AT(__FILE__, line, "%s%s: want RC_OK, got %d (%s)", SCHEME[kind], target,
                     (int)rc, err);
        free(u);
        return;
    }
    char want[2048], got[2048] = "";
    snprintf(want, sizeof want, "%s", hosts);
    size_t n = 0;
    for (size_t i = 0; i < u->nhosts && i < REDIS_URL_HOSTS_MAX; i++)
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%s %d", i ? " " : "", u->hosts[i].host,
                              u->hosts[i].port);
    if (strcmp(want, got) != 0 || u->kind != kind || strcmp(u->user, user) != 0 ||
        strcmp(u->password, password) != 0 || u->has_password != (password[0] != '\0') ||
        strcmp(u->master, master) != 0 || u->db != db || strcmp(u->host, u->hosts[0].host) != 0 ||
        u->port != u->hosts[0].port)
        UNIT_FAIL_AT(__FILE__, line,
                     "%s%s: got kind %d hosts \"%s\" user \"%s\" password \"%s\" master \"%s\" "
                     "db %d host \"%s\" port %d",
                     SCHEME[kind], target, (int)u->kind, got, u->user, u->password, u->master,
                     u->db, u->host, u->port);
    free(u);
}

#define CHECK_SENTINEL(target, hosts, user, password, master, db) \
    check_list(__LINE__, REDIS_URL_SENTINEL, target, hosts, user, password, master, db)
#define CHECK_CLUSTER(target, hosts, user, password) \
    check_list(__LINE__, REDIS_URL_CLUSTER, target, hosts, user, password, "", 0)

/* A cluster URL's key prefix. */
static void check_prefix(int line, const char *target, const char *prefix)
{
    redis_url *u = malloc(sizeof *u);
    if (u == NULL)
        return;
    unit_checks++;
    rc_t rc = parse_as(REDIS_URL_CLUSTER, target, u);
    if (rc != RC_OK || strcmp(u->prefix, prefix) != 0 || u->db != 0)
        UNIT_FAIL_AT(__FILE__, line, "redis-cluster://%s: rc %d prefix \"%s\" db %d (want \"%s\")",
                     target, (int)rc, rc == RC_OK ? u->prefix : "", rc == RC_OK ? u->db : 0,
                     prefix);
    free(u);
}

#define CHECK_PREFIX(target, prefix) check_prefix(__LINE__, target, prefix)

/* Refused with RC_INVALID, an error that names STORE_URL and (when want is
 * not NULL) says want, and nothing left in *u. */
static void check_refused_as(int line, redis_url_kind kind, const char *target, const char *want)
{
    redis_url *u = malloc(sizeof *u);
    if (u == NULL)
        return;
    rc_t rc = parse_as(kind, target, u);
    unit_checks++;
    if (rc != RC_INVALID)
        UNIT_FAIL_AT(__FILE__, line, "%s%s: want RC_INVALID, got %d", SCHEME[kind], target,
                     (int)rc);
    else if (strstr(err, "STORE_URL") == NULL || (want != NULL && strstr(err, want) == NULL))
        UNIT_FAIL_AT(__FILE__, line, "%s%s: error \"%s\" (want STORE_URL and \"%s\")",
                     SCHEME[kind], target, err, want ? want : "");
    else if (u->password[0] != '\0' || u->user[0] != '\0' || u->host[0] != '\0' || u->nhosts != 0)
        UNIT_FAIL_AT(__FILE__, line, "%s%s: refused, but fields are left behind", SCHEME[kind],
                     target);
    free(u);
}

#define CHECK_SENTINEL_REFUSED(target, want) \
    check_refused_as(__LINE__, REDIS_URL_SENTINEL, target, want)
#define CHECK_CLUSTER_REFUSED(target, want) \
    check_refused_as(__LINE__, REDIS_URL_CLUSTER, target, want)

static void test_plain_through_parse_as(void)
{
    redis_url u, v;
    const char *t = "al%69ce:p%40ss@[::1]:6380/4";
    CHECK_EQ_INT(parse_as(REDIS_URL_PLAIN, t, &u), RC_OK);
    CHECK_EQ_INT(parse(t, &v), RC_OK);
    CHECK_STR_EQ(u.host, "::1");
    CHECK_STR_EQ(u.user, "alice");
    CHECK_STR_EQ(u.password, "p@ss");
    CHECK_EQ_INT(u.port, 6380);
    CHECK_EQ_INT(u.db, 4);
    CHECK_STR_EQ(v.host, u.host);
    CHECK_EQ_INT(v.port, u.port);
    CHECK_EQ_INT(v.db, u.db);
    /* a list is not a redis:// host */
    CHECK_EQ_INT(parse_as(REDIS_URL_PLAIN, "h:1,i:2", &u), RC_INVALID);
    /* an unknown kind */
    CHECK_EQ_INT(parse_as((redis_url_kind)3, "h:1", &u), RC_INVALID);
    CHECK_EQ_INT(parse_as((redis_url_kind)-1, "h:1", &u), RC_INVALID);
}

static void test_sentinel_valid(void)
{
    CHECK_SENTINEL("127.0.0.1:26379/mymaster", "127.0.0.1 26379", "", "", "mymaster", 0);
    CHECK_SENTINEL("s1:26379,s2:26380,s3:26381/mymaster/3",
                   "s1 26379 s2 26380 s3 26381", "", "", "mymaster", 3);
    CHECK_SENTINEL("[::1]:26379,[fe80::1:2]:26380,10.0.0.1:1/m", "::1 26379 fe80::1:2 26380 10.0.0.1 1",
                   "", "", "m", 0);
    CHECK_SENTINEL(":secret@s1:26379/mymaster", "s1 26379", "", "secret", "mymaster", 0);
    CHECK_SENTINEL("alice:secret@s1:26379,s2:26379/mymaster/15", "s1 26379 s2 26379", "alice",
                   "secret", "mymaster", 15);
    CHECK_SENTINEL(":@s1:1/m", "s1 1", "", "", "m", 0);
    /* percent-encoding in credentials, as for redis:// */
    CHECK_SENTINEL("u%3Ax:p%40ss%3Aw%2Fd@s:26379/m", "s 26379", "u:x", "p@ss:w/d", "m", 0);
    CHECK_SENTINEL(":a@b@s:26379/m", "s 26379", "", "a@b", "m", 0);
    CHECK_SENTINEL(":a/b@s:26379/m/2", "s 26379", "", "a/b", "m", 2);
    CHECK_SENTINEL(":a,b@s:26379/m", "s 26379", "", "a,b", "m", 0);
    /* master names: the whole alphabet, 128 bytes */
    CHECK_SENTINEL("s:1/Az09._-", "s 1", "", "", "Az09._-", 0);
    CHECK_SENTINEL("s:1/m/", "s 1", "", "", "m", 0);       /* empty db: 0 */
    CHECK_SENTINEL("s:1/m/65535", "s 1", "", "", "m", 65535);
    char t[512], name[200];
    memset(name, 'n', 128);
    name[128] = '\0';
    snprintf(t, sizeof t, "s:1/%s/1", name);
    CHECK_SENTINEL(t, "s 1", "", "", name, 1);
    /* the same port on different hosts, the same host on different ports */
    CHECK_SENTINEL("a:1,b:1,a:2/m", "a 1 b 1 a 2", "", "", "m", 0);
    /* 16 Sentinels */
    CHECK_SENTINEL("h:1,h:2,h:3,h:4,h:5,h:6,h:7,h:8,h:9,h:10,h:11,h:12,h:13,h:14,h:15,h:16/m",
                   "h 1 h 2 h 3 h 4 h 5 h 6 h 7 h 8 h 9 h 10 h 11 h 12 h 13 h 14 h 15 h 16", "",
                   "", "m", 0);
    /* len bounds the parse */
    redis_url u;
    CHECK_EQ_INT(store_redis_url_parse_as(REDIS_URL_SENTINEL, "s:1/m/2trailing", 7, &u, err,
                                          sizeof err), RC_OK);
    CHECK_STR_EQ(u.master, "m");
    CHECK_EQ_INT(u.db, 2);
}

static void test_cluster_valid(void)
{
    CHECK_CLUSTER("127.0.0.1:7000", "127.0.0.1 7000", "", "");
    CHECK_CLUSTER("n1:7000,n2:7001,n3:7002", "n1 7000 n2 7001 n3 7002", "", "");
    CHECK_CLUSTER("[::1]:7000,[2001:db8::5]:7001", "::1 7000 2001:db8::5 7001", "", "");
    CHECK_CLUSTER(":pw@n1:7000,n2:7000", "n1 7000 n2 7000", "", "pw");
    CHECK_CLUSTER("default:pw@n1:7000", "n1 7000", "default", "pw");
    CHECK_CLUSTER(":p%40ss%3Aw%2Fd@n:1", "n 1", "", "p@ss:w/d");
    CHECK_CLUSTER(":%25%2f%2F@n:65535", "n 65535", "", "%//");
    CHECK_CLUSTER("u%3Ax:%C3%A9t%C3%A9@n:1", "n 1", "u:x", "\xc3\xa9t\xc3\xa9");
    CHECK_CLUSTER(":a+b@n:1", "n 1", "", "a+b");
    CHECK_CLUSTER("n:06379", "n 6379", "", "");
    CHECK_CLUSTER("h:1,h:2,h:3,h:4,h:5,h:6,h:7,h:8,h:9,h:10,h:11,h:12,h:13,h:14,h:15,h:16",
                  "h 1 h 2 h 3 h 4 h 5 h 6 h 7 h 8 h 9 h 10 h 11 h 12 h 13 h 14 h 15 h 16", "", "");
    /* hosts of 255 bytes */
    char t[600], host[300];
    memset(host, 'a', 255);
    host[255] = '\0';
    snprintf(t, sizeof t, "%s:1", host);
    char want[320];
    snprintf(want, sizeof want, "%s 1", host);
    CHECK_CLUSTER(t, want, "", "");
}

static void test_sentinel_refused(void)
{
    /* the host list */
    CHECK_SENTINEL_REFUSED("", NULL);
    CHECK_SENTINEL_REFUSED("/mymaster", "needs host:port");
    CHECK_SENTINEL_REFUSED(":pw@/mymaster", "needs host:port");
    CHECK_SENTINEL_REFUSED("s1:26379,/mymaster", "no empty entry");
    CHECK_SENTINEL_REFUSED(",s1:26379/mymaster", "no empty entry");
    CHECK_SENTINEL_REFUSED("s1:26379,,s2:26379/mymaster", "no empty entry");
    CHECK_SENTINEL_REFUSED(",/m", "no empty entry");
    CHECK_SENTINEL_REFUSED("s1/mymaster", "needs host:port for every host");
    CHECK_SENTINEL_REFUSED("s1:26379,s2/mymaster", "needs host:port for every host");
    CHECK_SENTINEL_REFUSED("[::1]/mymaster", "needs host:port for every host");
    CHECK_SENTINEL_REFUSED(":26379/mymaster", "needs a host");
    CHECK_SENTINEL_REFUSED("s1:26379,:26380/m", "needs a host");
    CHECK_SENTINEL_REFUSED("s1:26379,s1:26379/m", "twice");
    CHECK_SENTINEL_REFUSED("h:1,h:2,h:3,h:4,h:5,h:6,h:7,h:8,h:9,h:10,h:11,h:12,h:13,h:14,h:15,h:16,"
                           "h:17/m", "more than 16 hosts");
    /* ports */
    CHECK_SENTINEL_REFUSED("s:0/m", "port");
    CHECK_SENTINEL_REFUSED("s:65536/m", "port");
    CHECK_SENTINEL_REFUSED("s:4294967297/m", "port");
    CHECK_SENTINEL_REFUSED("s:1,t:99999/m", "port");
    CHECK_SENTINEL_REFUSED("s:/m", "port");
    CHECK_SENTINEL_REFUSED("s:-1/m", "port");
    CHECK_SENTINEL_REFUSED("s:1x/m", "port");
    CHECK_SENTINEL_REFUSED("s:1:2/m", "port");
    CHECK_SENTINEL_REFUSED("s: 1/m", "port");
    CHECK_SENTINEL_REFUSED("[::1]:0/m", "port");
    /* hosts */
    CHECK_SENTINEL_REFUSED("s s:1/m", "bad character");
    CHECK_SENTINEL_REFUSED("s;t:1/m", "bad character");
    CHECK_SENTINEL_REFUSED("s%41:1/m", "bad character");
    CHECK_SENTINEL_REFUSED("::1:26379/m", NULL);
    CHECK_SENTINEL_REFUSED("[::1:26379/m", "IPv6");
    CHECK_SENTINEL_REFUSED("[]:1/m", "IPv6");
    CHECK_SENTINEL_REFUSED("[127.0.0.1]:1/m", "IPv6");
    CHECK_SENTINEL_REFUSED("[::1]x:1/m", "junk after");
    /* the master name */
    CHECK_SENTINEL_REFUSED("s:26379", "needs /master-name");
    CHECK_SENTINEL_REFUSED("s1:26379,s2:26379", "needs /master-name");
    CHECK_SENTINEL_REFUSED("s:26379/", "master name of 1..128");
    CHECK_SENTINEL_REFUSED("s:26379//0", "master name of 1..128");
    CHECK_SENTINEL_REFUSED("s:26379/my master", "[A-Za-z0-9._-]");
    CHECK_SENTINEL_REFUSED("s:26379/my%20master", "[A-Za-z0-9._-]");
    CHECK_SENTINEL_REFUSED("s:26379/m:1", "[A-Za-z0-9._-]");
    CHECK_SENTINEL_REFUSED("s:26379/m,n", "[A-Za-z0-9._-]");
    CHECK_SENTINEL_REFUSED("s:26379/m\xc3\xa9", "[A-Za-z0-9._-]");
    CHECK_SENTINEL_REFUSED("s:26379/m?x=1", "[A-Za-z0-9._-]");
    CHECK_SENTINEL_REFUSED("s:26379/m#f", "[A-Za-z0-9._-]");
    char t[512], name[200];
    memset(name, 'n', 129);
    name[129] = '\0';
    snprintf(t, sizeof t, "s:1/%s", name);
    CHECK_SENTINEL_REFUSED(t, "master name of 1..128");
    /* the database */
    CHECK_SENTINEL_REFUSED("s:1/m/x", "database");
    CHECK_SENTINEL_REFUSED("s:1/m/-1", "database");
    CHECK_SENTINEL_REFUSED("s:1/m/65536", "database");
    CHECK_SENTINEL_REFUSED("s:1/m/1/2", "database");
    CHECK_SENTINEL_REFUSED("s:1/m/99999999999999999999", "database");
    /* credentials, as for redis:// */
    CHECK_SENTINEL_REFUSED("user@s:1/m", "credentials");
    CHECK_SENTINEL_REFUSED(":%zz@s:1/m", "password");
    CHECK_SENTINEL_REFUSED(":%00@s:1/m", "password");
    CHECK_SENTINEL_REFUSED(":abc%@s:1/m", "password");
    CHECK_SENTINEL_REFUSED("u%00:pw@s:1/m", "user");
    /* the error never quotes the URL: it may hold a password */
    redis_url u;
    CHECK_EQ_INT(parse_as(REDIS_URL_SENTINEL, ":hunter2@s:1/bad name", &u), RC_INVALID);
    CHECK(strstr(err, "hunter2") == NULL);
    CHECK(strstr(err, "bad name") == NULL);
}

static void test_cluster_refused(void)
{
    CHECK_CLUSTER_REFUSED("", NULL);
    CHECK_CLUSTER_REFUSED(":pw@", NULL);
    CHECK_CLUSTER_REFUSED("n1:7000,", "no empty entry");
    CHECK_CLUSTER_REFUSED(",n1:7000", "no empty entry");
    CHECK_CLUSTER_REFUSED("n1:7000,,n2:7001", "no empty entry");
    CHECK_CLUSTER_REFUSED(",", "no empty entry");
    CHECK_CLUSTER_REFUSED("n1", "needs host:port for every host");
    CHECK_CLUSTER_REFUSED("n1:7000,n2", "needs host:port for every host");
    CHECK_CLUSTER_REFUSED("[::1]", "needs host:port for every host");
    CHECK_CLUSTER_REFUSED("n1:7000,n1:7000", "twice");
    CHECK_CLUSTER_REFUSED("[::1]:7000,[::1]:7000", "twice");
    CHECK_CLUSTER_REFUSED("h:1,h:2,h:3,h:4,h:5,h:6,h:7,h:8,h:9,h:10,h:11,h:12,h:13,h:14,h:15,h:16,"
                          "h:17", "more than 16 hosts");
    /* no database, not even 0 */
    CHECK_CLUSTER_REFUSED("n1:7000/0", "no database");
    CHECK_CLUSTER_REFUSED("n1:7000/1", "no database");
    CHECK_CLUSTER_REFUSED("n1:7000,n2:7000/3", "no database");
    CHECK_CLUSTER_REFUSED("n1:7000/65536", "no database");
    /* the path is a key prefix: 1..32 of [A-Za-z0-9._-], not all digits */
    CHECK_PREFIX("n1:7000", "ss");
    CHECK_PREFIX("n1:7000,n2:7001/mymaster", "mymaster");
    CHECK_PREFIX("n1:7000/a", "a");
    CHECK_PREFIX("n1:7000/0a", "0a");
    CHECK_PREFIX("n1:7000/app-1.sessions_v2", "app-1.sessions_v2");
    CHECK_PREFIX("n1:7000/abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345");
    CHECK_CLUSTER_REFUSED("n1:7000/abcdefghijklmnopqrstuvwxyz0123456", "key prefix is 1..32");
    CHECK_CLUSTER_REFUSED("n1:7000/", "key prefix is 1..32");
    CHECK_CLUSTER_REFUSED("n1:7000/a{b}", "[A-Za-z0-9._-]");
    CHECK_CLUSTER_REFUSED("n1:7000/a}", "[A-Za-z0-9._-]");
    CHECK_CLUSTER_REFUSED("n1:7000/a/b", "[A-Za-z0-9._-]");
    CHECK_CLUSTER_REFUSED("n1:7000/a:b", "[A-Za-z0-9._-]");
    CHECK_CLUSTER_REFUSED("n1:7000/a*", "[A-Za-z0-9._-]");
    /* ports */
    CHECK_CLUSTER_REFUSED("n:0", "port");
    CHECK_CLUSTER_REFUSED("n:65536", "port");
    CHECK_CLUSTER_REFUSED("n:18446744073709551617", "port");
    CHECK_CLUSTER_REFUSED("n:1,m:0", "port");
    CHECK_CLUSTER_REFUSED("n:", "port");
    CHECK_CLUSTER_REFUSED("n:+1", "port");
    CHECK_CLUSTER_REFUSED("[::1]:65536", "port");
    CHECK_CLUSTER_REFUSED("[::1]:", "port");
    /* hosts */
    CHECK_CLUSTER_REFUSED("n 1:7000", "bad character");
    CHECK_CLUSTER_REFUSED("n\t:7000", "bad character");
    CHECK_CLUSTER_REFUSED("n?:7000", "bad character");
    CHECK_CLUSTER_REFUSED("[a b]:7000", "IPv6");
    char t[600], host[300];
    memset(host, 'a', 256);
    host[256] = '\0';
    snprintf(t, sizeof t, "%s:1", host);
    CHECK_CLUSTER_REFUSED(t, "needs a host");
    /* credentials */
    CHECK_CLUSTER_REFUSED("@n:1", "credentials");
    CHECK_CLUSTER_REFUSED(":%4@n:1", "password");
    CHECK_CLUSTER_REFUSED("u%g0:pw@n:1", "user");
    memset(t, 'p', sizeof t);
    t[0] = ':';
    strcpy(t + 257, "@n:1");
    CHECK_CLUSTER_REFUSED(t, "STORE_URL"); /* a password over 255 bytes */
}

int main(void)
{
    RUN(test_host_only);
    RUN(test_host_port);
    RUN(test_password);
    RUN(test_user_and_password);
    RUN(test_percent_encoded_password);
    RUN(test_ipv6);
    RUN(test_db);
    RUN(test_refusals);
    RUN(test_lengths);
    RUN(test_plain_through_parse_as);
    RUN(test_sentinel_valid);
    RUN(test_cluster_valid);
    RUN(test_sentinel_refused);
    RUN(test_cluster_refused);
    return UNIT_SUMMARY();
}
