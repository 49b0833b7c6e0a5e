/* test_session.c -- ids, text rules, the binary record, the JSON form and
 * the POST /session body decoder. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "session.h"
#include "unit.h"
#include "record.h"
#include "session_json.h"
#include "body.h"
#include "jtext.h"

static const char ID_ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* ---- ids ---- */

/* The stamp prefix sorts like the stamp; the rest is the random bytes. */
static void test_id_make(void)
{
    static const unsigned char zero[16] = { 0 }, ones[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                          0xff, 0xff, 0xff, 0xff };
    char a[SESSION_ID_MAX + 1], b[SESSION_ID_MAX + 1];
    session_id_make(0, zero, a);
    CHECK_STR_EQ(a, "---------AAAAAAAAAAAAAAAAAAAAAA");
    session_id_make(1, zero, a);
    CHECK_STR_EQ(a, "--------0AAAAAAAAAAAAAAAAAAAAAA");
    session_id_make(64, ones, a);
    CHECK_STR_EQ(a, "-------0-_____________________w");
    CHECK(session_id_valid(a, strlen(a)));
    /* later stamps sort later, whatever the random part */
    static const uint64_t st[] = { 0, 1, 63, 64, 65, 4095, 4096, 1700000000000ULL << 10,
                                   (1700000000000ULL << 10) + 1, 1700000000001ULL << 10,
                                   253402300799999ULL << 10, (1ULL << 54) - 1 };
    int sorted = 1;
    for (size_t i = 0; i + 1 < sizeof st / sizeof st[0]; i++) {
        session_id_make(st[i], ones, a);
        session_id_make(st[i + 1], zero, b);
        if (strcmp(a, b) >= 0)
            sorted = 0;
    }
    CHECK(sorted);
    /* stamps: the clock's millisecond, or one past the last when that is
     * not later (same millisecond, clock stepped back) */
    CHECK(session_id_stamp(1000, 0) == 1000ULL << 10);
    CHECK(session_id_stamp(1000, 1000ULL << 10) == (1000ULL << 10) + 1);
    CHECK(session_id_stamp(999, (1000ULL << 10) + 5) == (1000ULL << 10) + 6);
    CHECK(session_id_stamp(1001, (1000ULL << 10) + 5) == 1001ULL << 10);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_id_generate(void)
{
    char first[SESSION_ID_MAX + 1];
    CHECK_EQ_INT(session_id_generate(first), RC_OK);
    enum { N = 10000 };
    char (*ids)[SESSION_ID_MAX + 1] = calloc(N, sizeof *ids);
    int all_ok = 1;
    for (int i = 0; i < N; i++) {
        memset(ids[i], '#', sizeof ids[i]);
        if (session_id_generate(ids[i]) != RC_OK ||
            strlen(ids[i]) != SESSION_ID_LEN ||
            strspn(ids[i], ID_ALPHABET) != SESSION_ID_LEN ||
            !session_id_valid(ids[i], strlen(ids[i])))
            all_ok = 0;
    }
    CHECK(all_ok);
    CHECK_EQ_INT(strlen(ids[0]), 31);
    CHECK(session_id_valid(ids[0], 31));
    qsort(ids, N, sizeof *ids, cmp_id);
    int distinct = 1;
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            distinct = 0;
    CHECK(distinct);
    /* 16 random bytes: the last character carries only 2 bits, so it is one
     * of A, Q, g, w (canonical base64url). */
    int last_ok = 1;
    for (int i = 0; i < N; i++)
        if (strchr("AQgw", ids[i][30]) == NULL)
            last_ok = 0;
    CHECK(last_ok);
    /* every alphabet character appears in the random part (not constant) */
    int seen[256] = { 0 };
    for (int i = 0; i < N; i++)
        for (int k = SESSION_ID_TIME; k < 30; k++)
            seen[(unsigned char)ids[i][k]] = 1;
    int all_seen = 1;
    for (const char *a = ID_ALPHABET; *a; a++)
        if (!seen[(unsigned char)*a])
            all_seen = 0;
    CHECK(all_seen);
    /* generated later, sorted later: stamps only grow */
    CHECK(strcmp(first, ids[0]) < 0);
    free(ids);
}

static void test_id_valid(void)
{
    char id[80];
    memset(id, 'a', sizeof id);
    CHECK(!session_id_valid(id, 0));
    CHECK(!session_id_valid(id, 21));
    CHECK(session_id_valid(id, 22));
    CHECK(session_id_valid(id, 40));
    CHECK(session_id_valid(id, 64));
    CHECK(!session_id_valid(id, 65));
    CHECK(!session_id_valid(id, 79));
    CHECK(session_id_valid("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 64));

    static const char bad[] = "+/=. !\"#$%&'()*:;<>?@[\\]^`{|}~\t\n\x7f\x80\xc3\xff";
    int all_refused = 1;
    for (size_t i = 0; i < sizeof bad - 1; i++) {
        memset(id, 'a', 22);
        id[10] = bad[i];
        if (session_id_valid(id, 22)) {
            fprintf(stderr, "  id with byte 0x%02x accepted\n", (unsigned char)bad[i]);
            all_refused = 0;
        }
    }
    CHECK(all_refused);
    memset(id, 'a', 22);
    id[21] = '\0';
    CHECK(!session_id_valid(id, 22)); /* an embedded NUL */
    memset(id, 'a', 22);
    id[0] = '+';
    CHECK(!session_id_valid(id, 22));
    memset(id, 'a', 22);
    id[21] = '/';
    CHECK(!session_id_valid(id, 22));
}

/* ---- text ---- */

#define TV(lit) session_text_valid((lit), sizeof(lit) - 1, 256)

static void test_user_valid(void)
{
    CHECK(session_user_valid("alice", 5));
    CHECK(session_user_valid("alice smith", 11));  /* inner spaces are fine */
    CHECK(!session_user_valid(" alice", 6));        /* X-User-Id would trim them */
    CHECK(!session_user_valid("alice ", 6));
    CHECK(!session_user_valid("\talice", 6));
    CHECK(!session_user_valid(" ", 1));
    CHECK(!session_user_valid("", 0));
    CHECK(!session_user_valid("a\x01", 2));
}

static void test_text_valid(void)
{
    CHECK(TV("alice"));
    CHECK(TV("a b"));
    CHECK(TV("~"));
    CHECK(TV("\xc3\xa9"));                 /* é */
    CHECK(TV("\xc2\xa0"));                 /* U+00A0, first after C1 */
    CHECK(TV("\xdf\xbf"));                 /* U+07FF */
    CHECK(TV("\xe0\xa0\x80"));             /* U+0800 */
    CHECK(TV("\xe2\x82\xac"));             /* € */
    CHECK(TV("\xed\x9f\xbf"));             /* U+D7FF */
    CHECK(TV("\xee\x80\x80"));             /* U+E000 */
    CHECK(TV("\xef\xbf\xbf"));             /* U+FFFF */
    CHECK(TV("\xf0\x90\x80\x80"));         /* U+10000 */
    CHECK(TV("\xf0\x9f\x98\x80"));         /* 😀 */
    CHECK(TV("\xf4\x8f\xbf\xbf"));         /* U+10FFFF */
    CHECK(TV("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"));

    /* overlong forms */
    CHECK(!TV("\xc0\xaf"));
    CHECK(!TV("\xc0\x80"));
    CHECK(!TV("\xc1\xbf"));
    CHECK(!TV("\xe0\x80\xaf"));
    CHECK(!TV("\xe0\x9f\xbf"));
    CHECK(!TV("\xf0\x80\x80\xaf"));
    CHECK(!TV("\xf0\x8f\xbf\xbf"));
    /* surrogates */
    CHECK(!TV("\xed\xa0\x80"));
    CHECK(!TV("\xed\xbf\xbf"));
    CHECK(!TV("\xed\xa0\xbd\xed\xb8\x80"));  /* CESU-8 pair */
    /* beyond U+10FFFF, invalid lead bytes */
    CHECK(!TV("\xf4\x90\x80\x80"));
    CHECK(!TV("\xf5\x80\x80\x80"));
    CHECK(!TV("\xf8\x88\x80\x80\x80"));
    CHECK(!TV("\xfe"));
    CHECK(!TV("\xff"));
    /* truncated / broken sequences */
    CHECK(!TV("\xc3"));
    CHECK(!TV("a\xc3"));
    CHECK(!TV("\xe2\x82"));
    CHECK(!TV("\xf0\x9f\x98"));
    CHECK(!TV("\xc3\x41"));
    CHECK(!TV("\xe2\x28\xac"));
    CHECK(!TV("\x80"));
    CHECK(!TV("a\xbf" "b"));
    /* controls: C0, DEL, C1 */
    CHECK(!TV("\x01"));
    CHECK(!TV("a\x1f"));
    CHECK(!TV("a\tb"));
    CHECK(!TV("a\nb"));
    CHECK(!TV("a\rb"));
    CHECK(!TV("a\x7f"));
    CHECK(!TV("\xc2\x80"));
    CHECK(!TV("a\xc2\x85" "b"));
    CHECK(!TV("\xc2\x9f"));
    CHECK(!session_text_valid("a\0b", 3, 256));
    /* the length is honoured: bytes after len are not read */
    CHECK(session_text_valid("ab\x01", 2, 256));

    /* length bounds */
    char s[600];
    memset(s, 'x', sizeof s);
    CHECK(!session_text_valid(s, 0, 256));
    CHECK(!session_text_valid("", 0, 256));
    CHECK(session_text_valid(s, 1, 256));
    CHECK(session_text_valid(s, 256, 256));
    CHECK(!session_text_valid(s, 257, 256));
    CHECK(session_text_valid(s, 512, 512));
    CHECK(!session_text_valid(s, 513, 512));
    CHECK(session_text_valid(s, 5, 5));
    CHECK(!session_text_valid(s, 6, 5));
    /* 2-byte characters: max counts bytes */
    for (int i = 0; i < 300; i += 2) {
        s[i] = '\xc3';
        s[i + 1] = '\xa9';
    }
    CHECK(session_text_valid(s, 256, 256));
    CHECK(!session_text_valid(s, 258, 256));
    CHECK(!session_text_valid(s, 255, 256)); /* cut mid-character */
}

/* ---- binary record ---- */

static session_t sample(void)
{
    session_t s;
    memset(&s, 0, sizeof s);
    strcpy(s.id, "AAAAbbbbCCCCdddd0123_-");
    s.user_id = STR_LIT("alice@example.com");
    s.created_at = 1700000000;
    s.expires_at = 1700003600;
    s.last_seen_at = 1700000100;
    s.ip = STR_LIT("2001:db8::1");
    s.user_agent = STR_LIT("curl/8.5.0");
    s.data = STR_LIT("{\"role\":\"admin\",\"n\":[1,2]}");
    s.idle_timeout = 900;
    s.gen = 7;
    s.rotated_at = 1700000050;
    return s;
}

static int same_str(str_t a, str_t b)
{
    return (a.p == NULL) == (b.p == NULL) && str_eq(a, b);
}

static int same_session(const session_t *a, const session_t *b)
{
    return strcmp(a->id, b->id) == 0 && same_str(a->user_id, b->user_id) &&
           a->created_at == b->created_at && a->expires_at == b->expires_at &&
           a->last_seen_at == b->last_seen_at && same_str(a->ip, b->ip) &&
           same_str(a->user_agent, b->user_agent) && same_str(a->data, b->data) &&
           a->idle_timeout == b->idle_timeout && a->gen == b->gen &&
           a->rotated_at == b->rotated_at;
}

static void test_record_round_trip(void)
{
    session_t s = sample(), d;
    buf_t rec = BUF_INIT;

    CHECK_EQ_INT(record_encode(&s, &rec), RC_OK);
    CHECK_EQ_INT(rec.len, 52 + strlen(s.id) + s.user_id.len + s.ip.len +
                              s.user_agent.len + s.data.len);
    memset(&d, 0x55, sizeof d);
    CHECK_EQ_INT(record_decode(rec.p, rec.len, &d), RC_OK);
    CHECK(same_session(&s, &d));
    /* views point into the record */
    CHECK(d.user_id.p >= rec.p && d.user_id.p < rec.p + rec.len);
    CHECK(d.data.p >= rec.p && d.data.p + d.data.len <= rec.p + rec.len);

    /* the stores' one setter changes last_seen_at and nothing else */
    {
        CHECK_EQ_INT(record_set_last_seen(rec.p, rec.len, 1800000000), RC_OK);
        CHECK_EQ_INT(record_decode(rec.p, rec.len, &d), RC_OK);
        CHECK_EQ_INT(d.last_seen_at, 1800000000);
        CHECK_EQ_INT(d.created_at, s.created_at);
        CHECK_EQ_INT(d.expires_at, s.expires_at);
        s.last_seen_at = 1800000000;
        CHECK(same_session(&s, &d));
        s = sample();
        CHECK_EQ_INT(record_set_last_seen(rec.p, 35, 1), RC_INVALID);
    }
    buf_free(&rec);

    /* without user agent: absent stays absent (p == NULL) */
    s = sample();
    s.user_agent = STR_NULL;
    CHECK_EQ_INT(record_encode(&s, &rec), RC_OK);
    CHECK_EQ_INT(record_decode(rec.p, rec.len, &d), RC_OK);
    CHECK(d.user_agent.p == NULL && d.user_agent.len == 0);
    CHECK(same_session(&s, &d));
    buf_free(&rec);

    /* an empty but present user agent stays present */
    s = sample();
    s.user_agent = (str_t){ "", 0 };
    CHECK_EQ_INT(record_encode(&s, &rec), RC_OK);
    CHECK_EQ_INT(record_decode(rec.p, rec.len, &d), RC_OK);
    CHECK(d.user_agent.p != NULL && d.user_agent.len == 0);
    buf_free(&rec);

    /* empty data, extreme times, max sizes */
    s = sample();
    s.data = (str_t){ "", 0 };
    s.created_at = INT64_MIN;
    s.expires_at = INT64_MAX;
    s.last_seen_at = -1;
    CHECK_EQ_INT(record_encode(&s, &rec), RC_OK);
    CHECK_EQ_INT(record_decode(rec.p, rec.len, &d), RC_OK);
    CHECK(same_session(&s, &d));
    buf_free(&rec);

    static char big[5000];
    memset(big, 'z', sizeof big);
    s = sample();
    memset(s.id, 'i', 64);
    s.id[64] = '\0';
    s.user_id = (str_t){ big, SESSION_USER_MAX };
    s.ip = (str_t){ big, SESSION_IP_MAX };
    s.user_agent = (str_t){ big, SESSION_UA_MAX };
    s.data = (str_t){ big, SESSION_DATA_MAX };
    CHECK_EQ_INT(record_encode(&s, &rec), RC_OK);
    CHECK_EQ_INT(record_decode(rec.p, rec.len, &d), RC_OK);
    CHECK(same_session(&s, &d));
    buf_free(&rec);

    /* over the bounds: refused */
    s = sample();
    s.user_id = (str_t){ big, SESSION_USER_MAX + 1 };
    CHECK_EQ_INT(record_encode(&s, &rec), RC_INVALID);
    s = sample();
    s.ip = (str_t){ big, SESSION_IP_MAX + 1 };
    CHECK_EQ_INT(record_encode(&s, &rec), RC_INVALID);
    s = sample();
    s.user_agent = (str_t){ big, SESSION_UA_MAX + 1 };
    CHECK_EQ_INT(record_encode(&s, &rec), RC_INVALID);
    s = sample();
    s.data = (str_t){ big, SESSION_DATA_MAX + 1 };
    CHECK_EQ_INT(record_encode(&s, &rec), RC_INVALID);
    CHECK_EQ_INT(rec.len, 0);
    buf_free(&rec);

    /* encode appends */
    s = sample();
    buf_append_cstr(&rec, "XY");
    CHECK_EQ_INT(record_encode(&s, &rec), RC_OK);
    CHECK_EQ_INT(record_decode(rec.p + 2, rec.len - 2, &d), RC_OK);
    CHECK(same_session(&s, &d));
    buf_free(&rec);

    /* session_live: now >= expires_at is expired */
    s = sample();
    s.idle_timeout = 0;
    CHECK(session_live(&s, s.expires_at - 1));
    CHECK(!session_live(&s, s.expires_at));
    CHECK(!session_live(&s, s.expires_at + 1));
}

/* A version 1 record (before the lifecycle fields) still decodes: no idle
 * timeout, never refreshed; re-encoded, it is a version 2 record. */
static void test_record_v1(void)
{
    session_t s = sample(), d, e;
    buf_t rec = BUF_INIT, v1 = BUF_INIT, again = BUF_INIT;
    CHECK_EQ_INT(record_encode(&s, &rec), RC_OK);
    CHECK_EQ_INT(rec.p[0], 2);
    buf_append(&v1, rec.p, 36);
    buf_append(&v1, rec.p + 52, rec.len - 52);
    v1.p[0] = 1;
    CHECK_EQ_INT(record_decode(v1.p, v1.len, &d), RC_OK);
    CHECK_STR_EQ(d.id, s.id);
    CHECK(same_str(d.user_id, s.user_id) && same_str(d.data, s.data));
    CHECK_EQ_INT(d.last_seen_at, s.last_seen_at);
    CHECK_EQ_INT(d.expires_at, s.expires_at);
    CHECK_EQ_INT(d.idle_timeout, 0);
    CHECK_EQ_INT(d.gen, 0);
    CHECK_EQ_INT(d.rotated_at, 0);
    CHECK_EQ_INT(record_set_last_seen(v1.p, v1.len, 1700000200), RC_OK);
    CHECK_EQ_INT(record_decode(v1.p, v1.len, &d), RC_OK);
    CHECK_EQ_INT(d.last_seen_at, 1700000200);
    CHECK_EQ_INT(record_encode(&d, &again), RC_OK);
    CHECK_EQ_INT(again.p[0], 2);
    CHECK_EQ_INT(record_decode(again.p, again.len, &e), RC_OK);
    CHECK(same_session(&d, &e));
    buf_free(&rec);
    buf_free(&v1);
    buf_free(&again);
}

/* The liveness rule at its edges: absolute expiry; an idle timeout of 100
 * s (slack 5 s) ends the session at last_seen_at + 105, never after
 * expires_at; the slack is max(2, idle/20). */
static void test_liveness_edges(void)
{
    session_t s = sample();
    s.idle_timeout = 0;
    CHECK_EQ_INT(session_end(&s), s.expires_at);
    CHECK_EQ_INT(session_idle_expires_at(&s), -1);
    s.idle_timeout = 100;
    s.last_seen_at = 1700000000;
    CHECK_EQ_INT(session_idle_slack(1), 2);
    CHECK_EQ_INT(session_idle_slack(59), 2);
    CHECK_EQ_INT(session_idle_slack(60), 3);
    CHECK_EQ_INT(session_idle_slack(100), 5);
    CHECK_EQ_INT(session_idle_slack(2592000), 129600);
    CHECK_EQ_INT(session_end(&s), 1700000105);
    CHECK_EQ_INT(session_idle_expires_at(&s), 1700000100);
    CHECK(session_live(&s, 1700000100)); /* used at last_seen: live through +idle */
    CHECK(session_live(&s, 1700000104));
    CHECK(!session_live(&s, 1700000105)); /* and ended by +idle+slack */
    CHECK(session_ended_idle(&s, 1700000105));
    /* a use at last_seen + 4 (not written: younger than the slack) keeps it
     * live through that use + idle */
    CHECK(session_live(&s, 1700000004 + 100));
    s.expires_at = 1700000050; /* the absolute expiry comes first */
    CHECK_EQ_INT(session_end(&s), 1700000050);
    CHECK_EQ_INT(session_idle_expires_at(&s), 1700000050);
    CHECK(session_live(&s, 1700000049));
    CHECK(!session_live(&s, 1700000050));
    CHECK(!session_ended_idle(&s, 1700000050));
    s.idle_timeout = 1; /* the smallest: slack 2 */
    CHECK_EQ_INT(session_end(&s), 1700000003);
}

/* When a use must be recorded: without an idle timeout, noted at 58 s,
 * due now at 60 (the contract's lag); with one, due now at the slack and
 * never before, whatever the slack (3600 s: 180), since only a recorded
 * use moves the session's end in the store. */
static void test_use_due(void)
{
    session_t s = sample();
    s.last_seen_at = 1700000000;
    s.idle_timeout = 0;
    CHECK_EQ_INT(session_use_due(&s, 1700000057), SESSION_DUE_NONE);
    CHECK_EQ_INT(session_use_due(&s, 1700000058), SESSION_DUE_LATER);
    CHECK_EQ_INT(session_use_due(&s, 1700000059), SESSION_DUE_LATER);
    CHECK_EQ_INT(session_use_due(&s, 1700000060), SESSION_DUE_NOW);
    CHECK_EQ_INT(session_use_due(&s, 1700000600), SESSION_DUE_NOW);
    s.idle_timeout = 100; /* slack 5 */
    CHECK_EQ_INT(session_use_due(&s, 1700000004), SESSION_DUE_NONE);
    CHECK_EQ_INT(session_use_due(&s, 1700000005), SESSION_DUE_NOW);
    s.idle_timeout = 3600; /* slack 180 */
    CHECK_EQ_INT(session_use_due(&s, 1700000058), SESSION_DUE_NONE);
    CHECK_EQ_INT(session_use_due(&s, 1700000100), SESSION_DUE_NONE);
    CHECK_EQ_INT(session_use_due(&s, 1700000179), SESSION_DUE_NONE);
    CHECK_EQ_INT(session_use_due(&s, 1700000180), SESSION_DUE_NOW);
}

/* Token generations against a session at generation 2 rotated at T, grace
 * 10: judged to the second. */
static void test_token_verdict(void)
{
    session_t s = sample();
    s.gen = 2;
    s.rotated_at = 1700000000;
    CHECK_EQ_INT(session_token_verdict(&s, 2, 1700009999, 10), SESSION_TOKEN_CURRENT);
    CHECK_EQ_INT(session_token_verdict(&s, 1, 1700000000, 10), SESSION_TOKEN_GRACE);
    CHECK_EQ_INT(session_token_verdict(&s, 1, 1700000010, 10), SESSION_TOKEN_GRACE);
    CHECK_EQ_INT(session_token_verdict(&s, 1, 1700000011, 10), SESSION_TOKEN_REUSED);
    CHECK_EQ_INT(session_token_verdict(&s, 1, 1700000000, 0), SESSION_TOKEN_GRACE);
    CHECK_EQ_INT(session_token_verdict(&s, 1, 1700000001, 0), SESSION_TOKEN_REUSED);
    CHECK_EQ_INT(session_token_verdict(&s, 0, 1700000000, 300), SESSION_TOKEN_REUSED);
    CHECK_EQ_INT(session_token_verdict(&s, 3, 1700000000, 10), SESSION_TOKEN_UNKNOWN);
    s.gen = 0;
    CHECK_EQ_INT(session_token_verdict(&s, 0, 1700000000, 10), SESSION_TOKEN_CURRENT);
}

static void test_record_garbled(void)
{
    session_t s = sample(), d;
    buf_t rec = BUF_INIT;
    CHECK_EQ_INT(record_encode(&s, &rec), RC_OK);
    unsigned char *copy = malloc(rec.len + 1);

    /* every truncation is refused */
    int all = 1;
    for (size_t n = 0; n < rec.len; n++) {
        memcpy(copy, rec.p, n);
        if (record_decode(copy, n, &d) != RC_INVALID)
            all = 0;
    }
    CHECK(all);
    /* one extra byte */
    memcpy(copy, rec.p, rec.len);
    copy[rec.len] = 'x';
    CHECK_EQ_INT(record_decode(copy, rec.len + 1, &d), RC_INVALID);
    /* wrong version (1 reads a 36-byte header: the lengths do not add up) */
    memcpy(copy, rec.p, rec.len);
    copy[0] = 3;
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    copy[0] = 1;
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    copy[0] = 0;
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    /* lengths that do not add up */
    memcpy(copy, rec.p, rec.len);
    copy[1]++;                       /* id length */
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    memcpy(copy, rec.p, rec.len);
    copy[1] = 200;                   /* id length above 64 */
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    memcpy(copy, rec.p, rec.len);
    copy[2]++;                       /* user length */
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    memcpy(copy, rec.p, rec.len);
    copy[5] = 1;                     /* ip length + 256 */
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    memcpy(copy, rec.p, rec.len);
    copy[6] = 0xff;                  /* ua length: 0xFFxx... */
    copy[7] = 0xfe;
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    memcpy(copy, rec.p, rec.len);
    copy[6] = 0xff;                  /* ua "absent" while bytes are there */
    copy[7] = 0xff;
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    memcpy(copy, rec.p, rec.len);
    copy[11] = 0x80;                 /* data length huge */
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    /* swapping lengths between fields that sum the same is not detectable;
     * but a header of zeros is */
    memset(copy, 0, rec.len);
    CHECK_EQ_INT(record_decode(copy, rec.len, &d), RC_INVALID);
    CHECK_EQ_INT(record_decode(copy, 0, &d), RC_INVALID);
    CHECK_EQ_INT(record_decode("", 0, &d), RC_INVALID);
    free(copy);
    buf_free(&rec);
}

/* ---- JSON form ---- */

/* Regression: found by fuzz/fuzz_record (a NUL byte inside the id). The
 * decoder accepted it, and re-encoding gave different bytes. */
static void test_record_fuzz_regressions(void)
{
    static const unsigned char nul_in_id[] = {
        0x01, 0x16, 0x03, 0x00, 0x03, 0x00, 0xff, 0xff, 0x07, 0x00, 0x00, 0x00,
        0x00, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf1, 0x53, 0x65,
        0x00, 0x00, 0x00, 0x00, 0x10, 0xff, 0x53, 0x47, 0x00, 0x00, 0x00, 0x42,
        'B', 'B', 'B', 0x00, 'B', 'B', 'B', 'B', 'B', 'B', 'B', 'B', 'B', 'B', 'B',
        'B', 'B', 'B', 'B', 'B', 'B', 'B', 'b', 'o', 'b', ':', ':', '0',
        '{', '"', 'a', '"', ':', '1', '}',
    };
    session_t d;
    unsigned char fixed[sizeof nul_in_id];
    CHECK_EQ_INT(record_decode(nul_in_id, sizeof nul_in_id, &d), RC_INVALID);
    /* the same record with a proper id decodes: the NUL is the reason */
    memcpy(fixed, nul_in_id, sizeof fixed);
    fixed[39] = 'B';
    CHECK_EQ_INT(record_decode(fixed, sizeof fixed, &d), RC_OK);
}

static void test_render(void)
{
    session_t s = sample();
    buf_t out = BUF_INIT;
    json_error_t e;

    CHECK_EQ_INT(session_json_render(&s, NULL, &out), RC_OK);
    json_t *j = json_loadb(out.p, out.len, JSON_REJECT_DUPLICATES, &e);
    CHECK(j != NULL);
    CHECK(json_is_object(j));
    CHECK_STR_EQ(json_string_value(json_object_get(j, "id")), s.id);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "user_id")), "alice@example.com");
    CHECK(json_is_integer(json_object_get(j, "created_at")));
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "created_at")), 1700000000);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "expires_at")), 1700003600);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "last_seen_at")), 1700000100);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "ip")), "2001:db8::1");
    CHECK_STR_EQ(json_string_value(json_object_get(j, "user_agent")), "curl/8.5.0");
    json_t *data = json_object_get(j, "data");
    CHECK(json_is_object(data));
    CHECK_STR_EQ(json_string_value(json_object_get(data, "role")), "admin");
    CHECK_EQ_INT(json_array_size(json_object_get(data, "n")), 2);
    CHECK(json_object_get(j, "token") == NULL);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "idle_timeout")), 900);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "idle_expires_at")), 1700001000);
    CHECK(json_object_get(j, "token_generation") == NULL); /* the export's, not the API's */
    CHECK_EQ_INT(json_object_size(j), 10);
    json_decref(j);
    buf_free(&out);

    /* null user agent, empty data, a token, text needing escapes */
    s.user_agent = STR_NULL;
    s.data = (str_t){ "", 0 };
    s.user_id = STR_LIT("q\"uo\\te \xc3\xa9 \x01 \x7f");
    s.ip = STR_LIT("127.0.0.1");
    s.idle_timeout = 0;
    CHECK_EQ_INT(session_json_render(&s, "aaa.bbb.ccc", &out), RC_OK);
    j = json_loadb(out.p, out.len, JSON_REJECT_DUPLICATES, &e);
    CHECK(j != NULL);
    CHECK(json_is_null(json_object_get(j, "user_agent")));
    CHECK(json_object_get(j, "user_agent") != NULL);
    CHECK(json_is_object(json_object_get(j, "data")));
    CHECK_EQ_INT(json_object_size(json_object_get(j, "data")), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "token")), "aaa.bbb.ccc");
    CHECK_STR_EQ(json_string_value(json_object_get(j, "user_id")), "q\"uo\\te \xc3\xa9 \x01 \x7f");
    CHECK_STR_EQ(json_string_value(json_object_get(j, "ip")), "127.0.0.1");
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "idle_timeout")), 0);
    CHECK(json_is_null(json_object_get(j, "idle_expires_at")));
    CHECK(json_object_get(j, "idle_expires_at") != NULL);
    CHECK_EQ_INT(json_object_size(j), 11);
    json_decref(j);
    /* the raw text has no raw control characters */
    int raw_ctl = 0;
    for (size_t i = 0; i < out.len; i++)
        if ((unsigned char)out.p[i] < 0x20 || out.p[i] == 0x7f)
            raw_ctl = 1;
    CHECK(!raw_ctl);
    buf_free(&out);

    /* render appends */
    s = sample();
    buf_append_cstr(&out, "[");
    CHECK_EQ_INT(session_json_render(&s, NULL, &out), RC_OK);
    buf_append_cstr(&out, "]");
    j = json_loadb(out.p, out.len, 0, &e);
    CHECK(json_is_array(j) && json_array_size(j) == 1);
    json_decref(j);
    buf_free(&out);
}

/* ---- POST /session body ---- */

#define MAXTTL 86400

static rc_t req(const char *body, body_create_t *r)
{
    return body_create_parse(body, strlen(body), MAXTTL, r);
}

/* RC_INVALID with a detail and no buffer left behind. */
static int refused(const char *body)
{
    body_create_t r;
    rc_t rc = req(body, &r);
    int ok = rc == RC_INVALID && r.detail[0] != '\0' && r.data_json == NULL;
    if (!ok)
        fprintf(stderr, "  body %.60s: rc %d detail \"%s\"\n", body, (int)rc, r.detail);
    body_create_free(&r);
    return ok;
}

static int accepted(const char *body)
{
    body_create_t r;
    rc_t rc = req(body, &r);
    if (rc != RC_OK)
        fprintf(stderr, "  body %.60s: rc %d detail \"%s\"\n", body, (int)rc, r.detail);
    body_create_free(&r);
    return rc == RC_OK;
}

static char *nested(int depth)
{
    /* {"data": {"a": ... {} ... }} with total depth `depth` (>= 2) */
    size_t cap = 16 + (size_t)depth * 8;
    char *b = malloc(cap);
    strcpy(b, "{\"data\":");
    for (int i = 0; i < depth - 2; i++)
        strcat(b, "{\"a\":");
    strcat(b, "{}");
    for (int i = 0; i < depth - 2; i++)
        strcat(b, "}");
    strcat(b, "}");
    return b;
}

/* POST /session bodies: defaults, every field, data kept as the client wrote it */
static void test_request_defaults_and_fields(void)
{
    body_create_t r;

    /* empty body: all defaults */
    CHECK_EQ_INT(body_create_parse("", 0, MAXTTL, &r), RC_OK);
    CHECK_EQ_INT(r.has_user_id, 0);
    CHECK_EQ_INT(r.has_ttl, 0);
    CHECK_STR_EQ(r.data_json, "{}");
    CHECK_EQ_INT(r.data_len, 2);
    body_create_free(&r);
    CHECK(r.data_json == NULL);
    CHECK_EQ_INT(body_create_parse(NULL, 0, MAXTTL, &r), RC_OK);
    body_create_free(&r);
    /* empty object: defaults too */
    CHECK_EQ_INT(req("{}", &r), RC_OK);
    CHECK_EQ_INT(r.has_user_id + r.has_ttl, 0);
    CHECK_STR_EQ(r.data_json, "{}");
    body_create_free(&r);

    /* all fields */
    CHECK_EQ_INT(req("{ \"user_id\" : \"bob\", \"ttl\": 60,\n"
                     "  \"data\": {\"k\": \"v\", \"n\": [1, 2, {\"x\": null}]} }", &r), RC_OK);
    CHECK_EQ_INT(r.has_user_id, 1);
    CHECK_STR_EQ(r.user_id, "bob");
    CHECK_EQ_INT(r.user_id_len, 3);
    CHECK_EQ_INT(r.has_ttl, 1);
    CHECK_EQ_INT(r.ttl, 60);
    CHECK(r.data_json != NULL);
    CHECK_EQ_INT(r.data_len, strlen(r.data_json));
    {
        json_t *d = json_loads(r.data_json, 0, NULL);
        CHECK(json_is_object(d));
        CHECK_STR_EQ(json_string_value(json_object_get(d, "k")), "v");
        CHECK_EQ_INT(json_array_size(json_object_get(d, "n")), 3);
        json_decref(d);
        CHECK(strchr(r.data_json, ' ') == NULL && strchr(r.data_json, '\n') == NULL);
    }
    body_create_free(&r);

    /* data is a compact serialization of the body's "data": it parses back
     * to an equal value, whatever the order of the fields, and brackets or
     * quotes inside strings do not confuse it */
    {
        static const char *const bodies[] = {
            "{\"data\":{\"a\":\"}\"},\"ttl\":5}",
            "{\"data\":{\"a\":\"\\\"}{[\"},\"ttl\":5,\"user_id\":\"u\"}",
            "{\"user_id\":\"u\", \"data\" : { \"x\" : [ 1 , {\"y\" : \"a  b\"} ] } , \"ttl\" : 7 }",
            "{\"ttl\":9,\"data\":{\"e\":\"\\u00e9\\n\",\"t\":true,\"f\":-1.5e3,\"z\":null}}",
            "{\"data\":{\"n\":123456789012345678901234567890}}",
        };
        for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
            json_t *root = json_loads(bodies[i], JSON_DECODE_INT_AS_REAL, NULL);
            CHECK(root != NULL);
            CHECK_EQ_INT(req(bodies[i], &r), RC_OK);
            if (r.data_json == NULL) {
                json_decref(root);
                continue;
            }
            CHECK_EQ_INT(r.data_len, strlen(r.data_json));
            json_t *back = json_loads(r.data_json, JSON_DECODE_INT_AS_REAL, NULL);
            CHECK(back != NULL && json_equal(back, json_object_get(root, "data")));
            json_decref(back);
            json_decref(root);
            body_create_free(&r);
        }
        /* big integers are valid JSON and kept as written */
        CHECK_EQ_INT(req(bodies[4], &r), RC_OK);
        CHECK_STR_EQ(r.data_json, "{\"n\":123456789012345678901234567890}");
        body_create_free(&r);
        CHECK_EQ_INT(req(bodies[0], &r), RC_OK);
        CHECK_EQ_INT(r.ttl, 5);
        CHECK_STR_EQ(r.data_json, "{\"a\":\"}\"}");
        body_create_free(&r);
        CHECK_EQ_INT(req(bodies[2], &r), RC_OK);
        CHECK_EQ_INT(r.ttl, 7);
        CHECK_STR_EQ(r.user_id, "u");
        CHECK_STR_EQ(r.data_json, "{\"x\":[1,{\"y\":\"a  b\"}]}");
        body_create_free(&r);
        /* an escaped key is the same key */
        CHECK_EQ_INT(req("{\"\\u0074tl\":7}", &r), RC_OK);
        CHECK_EQ_INT(r.has_ttl, 1);
        CHECK_EQ_INT(r.ttl, 7);
        body_create_free(&r);
        CHECK(refused("{\"\\u0074tl\":7,\"ttl\":7}"));  /* ...and a duplicate */
        CHECK(refused("{\"user_id\":\"a\",\"ttl\":5,\"data\":{},\"x\":1}"));
    }
}

/* POST /session bodies: ttl and user_id */
static void test_request_ttl_and_user_id(void)
{
    body_create_t r;

    /* ttl bounds and types */
    CHECK(accepted("{\"ttl\":1}"));
    CHECK(accepted("{\"ttl\":86400}"));
    CHECK(refused("{\"ttl\":86401}"));
    CHECK(refused("{\"ttl\":0}"));
    CHECK(refused("{\"ttl\":-1}"));
    CHECK(refused("{\"ttl\":-9223372036854775808}"));
    CHECK(refused("{\"ttl\":99999999999999999999}"));
    CHECK(refused("{\"ttl\":1.5}"));
    CHECK(refused("{\"ttl\":60.0}"));
    CHECK(refused("{\"ttl\":6e1}"));
    CHECK(refused("{\"ttl\":\"60\"}"));
    CHECK(refused("{\"ttl\":true}"));
    CHECK(refused("{\"ttl\":false}"));
    CHECK(refused("{\"ttl\":null}"));
    CHECK(refused("{\"ttl\":[60]}"));

    /* idle_timeout: 0 (none) or 1..max_ttl, an integer literal */
    CHECK_EQ_INT(req("{\"idle_timeout\":0}", &r), RC_OK);
    CHECK(r.has_idle_timeout && r.idle_timeout == 0);
    body_create_free(&r);
    CHECK_EQ_INT(req("{\"idle_timeout\":86400,\"ttl\":5,\"user_id\":\"x\",\"data\":{}}", &r), RC_OK);
    CHECK(r.has_idle_timeout && r.idle_timeout == 86400);
    body_create_free(&r);
    CHECK_EQ_INT(req("{}", &r), RC_OK);
    CHECK(!r.has_idle_timeout);
    body_create_free(&r);
    CHECK(refused("{\"idle_timeout\":86401}"));
    CHECK(refused("{\"idle_timeout\":-1}"));
    CHECK(refused("{\"idle_timeout\":1.5}"));
    CHECK(refused("{\"idle_timeout\":\"5\"}"));
    CHECK(refused("{\"idle_timeout\":true}"));
    CHECK(refused("{\"idle_timeout\":null}"));
    CHECK(refused("{\"idle_timeout\":5,\"idle_timeout\":6}"));

    /* user_id */
    CHECK(refused("{\"user_id\":\"\"}"));
    CHECK(refused("{\"user_id\":42}"));
    CHECK(refused("{\"user_id\":null}"));
    CHECK(refused("{\"user_id\":\"a\\u0001b\"}"));
    CHECK(refused("{\"user_id\":\"a\\nb\"}"));
    CHECK(refused("{\"user_id\":\"a\\u007f\"}"));
    CHECK(refused("{\"user_id\":\"a\\u0085\"}"));
    CHECK(refused("{\"user_id\":\"a\\u0000b\"}"));
    CHECK(accepted("{\"user_id\":\"\\u00e9\\ud83d\\ude00\"}"));
    {
        char body[400], u[300];
        memset(u, 'u', 257);
        u[257] = '\0';
        snprintf(body, sizeof body, "{\"user_id\":\"%s\"}", u);
        CHECK(refused(body));
        u[256] = '\0';
        snprintf(body, sizeof body, "{\"user_id\":\"%s\"}", u);
        CHECK_EQ_INT(req(body, &r), RC_OK);
        CHECK_EQ_INT(r.user_id_len, 256);
        CHECK_STR_EQ(r.user_id, u);
        body_create_free(&r);
    }
}

/* POST /session bodies: unknown fields; data */
static void test_request_data(void)
{
    body_create_t r;

    /* unknown field (even next to valid ones) */
    CHECK(refused("{\"user\":\"bob\"}"));
    CHECK(refused("{\"ttl\":60,\"extra\":1}"));
    CHECK(refused("{\"data\":{},\"id\":\"x\"}"));
    CHECK(refused("{\"User_Id\":\"bob\"}"));

    /* data */
    CHECK(refused("{\"data\":[]}"));
    CHECK(refused("{\"data\":\"x\"}"));
    CHECK(refused("{\"data\":1}"));
    CHECK(refused("{\"data\":null}"));
    CHECK(refused("{\"data\":true}"));
    {
        /* {"k":"<n x>"} serializes to 8 + n bytes */
        char *body = malloc(5000), *v = malloc(4100);
        memset(v, 'v', 4088);
        v[4088] = '\0';
        sprintf(body, "{\"data\":{\"k\":\"%s\"}}", v);
        CHECK_EQ_INT(req(body, &r), RC_OK);
        CHECK_EQ_INT(r.data_len, 4096);
        body_create_free(&r);
        v[4088] = 'v';
        v[4089] = '\0';
        sprintf(body, "{\"data\":{\"k\":\"%s\"}}", v);
        CHECK(refused(body));
        free(body);
        free(v);
    }
    {
        /* escapes count: data is kept as given (compacted), so 690 "\u00e9"
         * are 4140 bytes however short as UTF-8 */
        char body[8192];
        size_t n = (size_t)sprintf(body, "{\"data\":{\"k\":\"");
        for (int i = 0; i < 690; i++)
            n += (size_t)sprintf(body + n, "\\u00e9");
        sprintf(body + n, "\"}}");
        CHECK(refused(body));
        n = (size_t)sprintf(body, "{\"data\":{\"k\":\"");
        for (int i = 0; i < 681; i++)
            n += (size_t)sprintf(body + n, "\\u00e9");
        sprintf(body + n, "\"}}");
        body_create_t big;
        CHECK_EQ_INT(req(body, &big), RC_OK);
        CHECK_EQ_INT(big.data_len, 8 + 681 * 6);
        body_create_free(&big);
    }
    {
        /* 4096 bytes serialized is the limit even with whitespace in the body */
        char *body = malloc(9000), *v = malloc(4100);
        memset(v, 'v', 4088);
        v[4088] = '\0';
        sprintf(body, "{\"data\":{   \"k\"  :   \"%s\"   }   }", v);
        CHECK_EQ_INT(req(body, &r), RC_OK);
        CHECK_EQ_INT(r.data_len, 4096);
        body_create_free(&r);
        free(body);
        free(v);
    }
}

/* POST /session bodies: malformed: duplicate keys, not one object, bad UTF-8, depth */
static void test_request_malformed(void)
{
    body_create_t r;

    /* duplicate keys, at the top and nested */
    CHECK(refused("{\"ttl\":60,\"ttl\":60}"));
    CHECK(refused("{\"user_id\":\"a\",\"user_id\":\"b\"}"));
    CHECK(refused("{\"data\":{\"a\":1,\"a\":2}}"));

    /* not one JSON object */
    CHECK(refused("{} x"));
    CHECK(refused("{}{}"));
    CHECK(refused("{\"ttl\":60} {\"ttl\":60}"));
    CHECK(refused("{"));
    CHECK(refused("{\"ttl\":60,}"));
    CHECK(refused("   "));
    CHECK(refused("[]"));
    CHECK(refused("[{\"ttl\":60}]"));
    CHECK(refused("\"x\""));
    CHECK(refused("42"));
    CHECK(refused("null"));
    CHECK(refused("true"));
    CHECK(accepted(" {} \n"));
    {
        static const char nul[] = "{}\0";
        body_create_t q;
        CHECK_EQ_INT(body_create_parse(nul, sizeof nul - 1, MAXTTL, &q), RC_INVALID);
        body_create_free(&q);
    }

    /* invalid UTF-8 */
    CHECK(refused("{\"user_id\":\"a\xff\"}"));
    CHECK(refused("{\"user_id\":\"\xc0\xaf\"}"));
    CHECK(refused("{\"user_id\":\"\xed\xa0\x80\"}"));
    CHECK(refused("{\"data\":{\"k\":\"\xc3\"}}"));
    CHECK(refused("{\"\xff\":1}"));

    /* depth: 32 accepted, 33 refused */
    {
        char *b32 = nested(32), *b33 = nested(33);
        CHECK_EQ_INT(jtext_depth(b32, strlen(b32)), 32);
        CHECK_EQ_INT(jtext_depth(b33, strlen(b33)), 33);
        CHECK(accepted(b32));
        CHECK(refused(b33));
        CHECK_EQ_INT(req(b33, &r), RC_INVALID);
        CHECK(strstr(r.detail, "32") != NULL);
        body_create_free(&r);
        free(b32);
        free(b33);
        /* arrays count too */
        char arr[200];
        strcpy(arr, "{\"data\":{\"a\":");
        for (int i = 0; i < 31; i++)
            strcat(arr, "[");
        for (int i = 0; i < 31; i++)
            strcat(arr, "]");
        strcat(arr, "}}");
        CHECK_EQ_INT(jtext_depth(arr, strlen(arr)), 33);
        CHECK(refused(arr));
        /* a very deep body is refused, not crashed on */
        char *deep = malloc(200001);
        memset(deep, '[', 200000);
        deep[200000] = '\0';
        CHECK(refused(deep));
        free(deep);
    }
}

/* POST /session bodies: what a refusal leaves, and its detail */
static void test_request_refusals(void)
{
    body_create_t r;

    /* a refused body leaves the detail and nothing to free */
    CHECK_EQ_INT(req("{\"ttl\":0}", &r), RC_INVALID);
    CHECK(strstr(r.detail, "ttl") != NULL);
    CHECK(r.data_json == NULL);
    body_create_free(&r);
    CHECK_EQ_INT(req("{\"data\":{\"a\":1},\"ttl\":0}", &r), RC_INVALID);
    CHECK(r.data_json == NULL);
    body_create_free(&r);
    CHECK_EQ_INT(req("{\"user_id\":\"\"}", &r), RC_INVALID);
    CHECK(strstr(r.detail, "user_id") != NULL);
    body_create_free(&r);

    /* the limits a refusal names are the constants that set them */
    {
        char want[64];
        snprintf(want, sizeof want, "1 to %d bytes", SESSION_USER_MAX);
        CHECK(strstr(r.detail, want) != NULL);
        char *big = malloc(SESSION_DATA_MAX + 64);
        snprintf(big, SESSION_DATA_MAX + 64, "{\"data\":{\"k\":\"%0*d\"}}", SESSION_DATA_MAX, 0);
        CHECK_EQ_INT(req(big, &r), RC_INVALID);
        snprintf(want, sizeof want, "larger than %d bytes", SESSION_DATA_MAX);
        CHECK(strstr(r.detail, want) != NULL);
        body_create_free(&r);
        free(big);
        char *deep = nested(BODY_DEPTH_MAX + 1);
        CHECK_EQ_INT(req(deep, &r), RC_INVALID);
        snprintf(want, sizeof want, "deeper than %d levels", BODY_DEPTH_MAX);
        CHECK(strstr(r.detail, want) != NULL);
        body_create_free(&r);
        free(deep);
    }

    /* max_ttl is the caller's */
    CHECK_EQ_INT(body_create_parse("{\"ttl\":10}", 10, 9, &r), RC_INVALID);
    body_create_free(&r);
    CHECK_EQ_INT(body_create_parse("{\"ttl\":10}", 10, 10, &r), RC_OK);
    CHECK_EQ_INT(r.ttl, 10);
    body_create_free(&r);
}

static void test_json_depth(void)
{
#define D(lit) jtext_depth((lit), sizeof(lit) - 1)
    CHECK_EQ_INT(D(""), 0);
    CHECK_EQ_INT(D("42"), 0);
    CHECK_EQ_INT(D("{}"), 1);
    CHECK_EQ_INT(D("[[]]"), 2);
    CHECK_EQ_INT(D("[[],[[]]]"), 3);
    CHECK_EQ_INT(D("{\"a\":{},\"b\":{}}"), 2);
    CHECK_EQ_INT(D("\"[[[{{{\""), 0);
    CHECK_EQ_INT(D("{\"a\":\"}}}{{{[[[\"}"), 1);
    CHECK_EQ_INT(D("{\"[[[\":\"]]]\"}"), 1);
    CHECK_EQ_INT(D("{\"a\":\"\\\"[[[\"}"), 1);        /* escaped quote inside */
    CHECK_EQ_INT(D("[\"\\\\\",[[]]]"), 3);            /* "\\" then real brackets */
    CHECK_EQ_INT(D("[\"\\\\\\\"[\"]"), 1);            /* "\\\"[" */
    CHECK_EQ_INT(D("]]]{"), 1);                       /* stray closers */
    CHECK_EQ_INT(D("{{{"), 3);                        /* unclosed */
    CHECK_EQ_INT(D("[\"unterminated [[["), 1);
    CHECK_EQ_INT(jtext_depth("[[[[", 2), 2);   /* len honoured */
#undef D
}

/* The placement tag: fixed values (it is part of the stored data's format,
 * docs/REDIS.md: a change would lose every session on a cluster), ids that
 * end with it, and tags that spread users over the cluster's slots. */
static void test_id_tag(void)
{
    static const struct { const char *user, *tag; } fixed[] = {
        { "alice", "CFU" }, { "bob", "xZZ" }, { "", "vx-" }, { "\xc3\xbc" "n" "\xc3\xaf" "code", "51d" },
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        char tag[SESSION_ID_TAG + 1] = "";
        session_id_tag((str_t){ fixed[i].user, strlen(fixed[i].user) }, tag);
        CHECK_STR_EQ(tag, fixed[i].tag);
    }
    char id[SESSION_ID_MAX + 1];
    str_t alice = { "alice", 5 };
    CHECK_EQ_INT(session_id_generate_for(alice, id), RC_OK);
    CHECK_EQ_INT(strlen(id), SESSION_ID_TAGGED_LEN);
    CHECK_EQ_INT(strspn(id, ID_ALPHABET), SESSION_ID_TAGGED_LEN);
    CHECK_STR_EQ(id + SESSION_ID_LEN, "CFU");
    CHECK(session_id_valid(id, strlen(id)));
    CHECK(session_id_tagged(id, strlen(id)));
    CHECK(!session_id_tagged(id, SESSION_ID_LEN));           /* an older id */
    CHECK(!session_id_tagged("d1Xh0sN7bqV4m2p9Qk3yZg", 22)); /* older still */
    id[5] = '{';
    CHECK(!session_id_tagged(id, strlen(id)));
    /* slots of "{tag}" (CRC16 mod 16384) for 200,000 users: nearly all
     * 16384 slots are met, none more than a few times the mean */
    enum { USERS = 200000 };
    static unsigned short hits[16384];
    memset(hits, 0, sizeof hits);
    char user[32];
    for (int i = 0; i < USERS; i++) {
        int n = snprintf(user, sizeof user, "user-%d", i);
        char tag[SESSION_ID_TAG];
        session_id_tag((str_t){ user, (size_t)n }, tag);
        unsigned crc = 0;
        for (int k = 0; k < SESSION_ID_TAG; k++) {
            crc ^= (unsigned)(unsigned char)tag[k] << 8;
            for (int b = 0; b < 8; b++)
                crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
            crc &= 0xffff;
        }
        hits[crc % 16384]++;
    }
    int met = 0, most = 0;
    for (int i = 0; i < 16384; i++) {
        met += hits[i] > 0;
        most = hits[i] > most ? hits[i] : most;
    }
    CHECK(met > 16000);
    CHECK(most < 5 * USERS / 16384);
}

/* buf_append_i64 (the numbers of every JSON answer) writes what "%lld"
 * does, at the edges of int64_t and around every power of ten. */
static void test_append_i64(void)
{
    int64_t vals[80];
    size_t n = 0;
    vals[n++] = 0;
    vals[n++] = INT64_MAX;
    vals[n++] = INT64_MIN;
    vals[n++] = INT64_MIN + 1;
    for (int64_t p = 1; n + 4 <= sizeof vals / sizeof vals[0] && p <= INT64_MAX / 10; p *= 10) {
        vals[n++] = p;
        vals[n++] = p - 1;
        vals[n++] = -p;
        vals[n++] = -(p + 1);
    }
    for (size_t i = 0; i < n; i++) {
        buf_t b = BUF_INIT;
        char want[32];
        snprintf(want, sizeof want, "x%lld", (long long)vals[i]);
        CHECK(buf_append(&b, "x", 1) == RC_OK);
        CHECK(buf_append_i64(&b, vals[i]) == RC_OK);
        CHECK(buf_append(&b, "", 1) == RC_OK);
        CHECK_STR_EQ(b.p, want);
        buf_free(&b);
    }
}

int main(void)
{
    RUN(test_append_i64);
    RUN(test_id_make);
    RUN(test_id_generate);
    RUN(test_id_tag);
    RUN(test_id_valid);
    RUN(test_text_valid);
    RUN(test_user_valid);
    RUN(test_record_round_trip);
    RUN(test_record_v1);
    RUN(test_liveness_edges);
    RUN(test_use_due);
    RUN(test_token_verdict);
    RUN(test_record_garbled);
    RUN(test_record_fuzz_regressions);
    RUN(test_render);
    RUN(test_request_defaults_and_fields);
    RUN(test_request_ttl_and_user_id);
    RUN(test_request_data);
    RUN(test_request_malformed);
    RUN(test_request_refusals);
    RUN(test_json_depth);
    return UNIT_SUMMARY();
}
