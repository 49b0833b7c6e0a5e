/* test_redis_url.c -- store_redis_url_parse, the pure parser of the part of
 * STORE_URL after "redis://": [[user]:password@]host[:port][/db]
 * (docs/REDIS.md, src/store_redis.h). No Redis is needed. */
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
    return UNIT_SUMMARY();
}
