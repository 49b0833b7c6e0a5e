/* test_store.c -- the LMDB store, through store.h's interface only, in a
 * temporary directory that is removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "store.h"
#include "store_lmdb.h"
#include "unit.h"
#include "record.h"

#define NOW 1700000000LL
#define MiB (1024 * 1024)

static char tmpdir[] = "/tmp/sessionservice-store-XXXXXX";

static store_t *open_at(const char *sub, int64_t map_size)
{
    char url[512], err[256] = "";
    store_options opt = { .map_size = map_size, .timeout_ms = 1000 };
    store_t *st = NULL;
    snprintf(url, sizeof url, "lmdb://%s/%s", tmpdir, sub);
    rc_t rc = store_open(url, &opt, &st, err, sizeof err);
    if (rc != RC_OK)
        fprintf(stderr, "  store_open(%s): %s: %s\n", url, rc_str(rc), err);
    return rc == RC_OK ? st : NULL;
}

/* A session whose views point at static text (user must outlive it). */
static session_t mk(const char *id, const char *user, int64_t created, int64_t expires)
{
    session_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "%s", id);
    s.user_id = (str_t){ user, strlen(user) };
    s.created_at = created;
    s.last_seen_at = created;
    s.expires_at = expires;
    s.ip = STR_LIT("192.0.2.7");
    s.user_agent = STR_LIT("unit/1.0");
    s.data = STR_LIT("{\"k\":1}");
    return s;
}

/* A distinct valid id for number n and a tag. */
static void idn(char out[SESSION_ID_MAX + 1], const char *tag, int n)
{
    snprintf(out, SESSION_ID_MAX + 1, "%s%018d", tag, n);
}

static rc_t get_session(store_t *st, const char *id, int64_t now, buf_t *rec, session_t *s)
{
    rc_t rc = store_get(st, id, now, rec);
    if (rc == RC_OK && record_decode(rec->p, rec->len, s) != RC_OK)
        return RC_ERR;
    return rc;
}

/* ---- list collection ---- */

typedef struct seen {
    int n, stop_after;
    char ids[64][SESSION_ID_MAX + 1];
    int64_t created[64];
} seen;

static int collect(const session_t *s, void *arg)
{
    seen *c = arg;
    if (c->n < 64) {
        strcpy(c->ids[c->n], s->id);
        c->created[c->n] = s->created_at;
    }
    c->n++;
    return c->stop_after != 0 && c->n >= c->stop_after;
}

/* ---- tests ---- */

static void test_open_errors(void)
{
    char err[256];
    store_options opt = { .map_size = 64 * MiB, .timeout_ms = 1000 };
    store_t *st = (store_t *)&opt; /* must be reset to NULL */
    err[0] = '\0';
    CHECK_EQ_INT(store_open("memcached://localhost", &opt, &st, err, sizeof err), RC_INVALID);
    CHECK(st == NULL);
    CHECK(err[0] != '\0');
    err[0] = '\0';
    CHECK_EQ_INT(store_open("no-scheme-here", &opt, &st, err, sizeof err), RC_INVALID);
    CHECK(err[0] != '\0');
    err[0] = '\0';
    CHECK_EQ_INT(store_open("lmdb://", &opt, &st, err, sizeof err), RC_INVALID);
    CHECK(err[0] != '\0');
    CHECK(st == NULL);
    err[0] = '\0';
    CHECK_EQ_INT(store_open("lmdb:///dev/null/sub", &opt, &st, err, sizeof err), RC_INVALID);
    CHECK(err[0] != '\0');
    CHECK(st == NULL);
    /* the Redis schemes: redis-sentinel:// needs its master name; a
     * cluster's path is a key prefix, never a database; a cluster that
     * does not answer yet is opened (503 until it does) */
    CHECK_EQ_INT(store_open("redis-sentinel://127.0.0.1:26379", &opt, &st, err, sizeof err),
                 RC_INVALID);
    CHECK(strstr(err, "master") != NULL);
    CHECK(st == NULL);
    CHECK_EQ_INT(store_open("redis-cluster://127.0.0.1:7000/0", &opt, &st, err, sizeof err),
                 RC_INVALID);
    CHECK(strstr(err, "no database") != NULL);
    CHECK(st == NULL);
    CHECK_EQ_INT(store_open("redis-cluster://127.0.0.1:1/app", &opt, &st, err, sizeof err), RC_OK);
    CHECK(st != NULL);
    if (st != NULL) {
        CHECK_STR_EQ(store_scheme(st), "redis-cluster");
        CHECK_EQ_INT(store_ping(st), RC_UNAVAILABLE);
        store_close(st);
        st = NULL;
    }
    CHECK_EQ_INT(store_open("memcached://127.0.0.1:11211", &opt, &st, err, sizeof err),
                 RC_INVALID);
    CHECK(strstr(err, "unknown scheme") != NULL && strstr(err, "redis-cluster") != NULL);
    CHECK(st == NULL);
}

static void test_basic(void)
{
    store_t *st = open_at("basic", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    CHECK_STR_EQ(store_scheme(st), "lmdb");
    CHECK_EQ_INT(store_ping(st), RC_OK);

    buf_t rec = BUF_INIT;
    session_t s = mk("basic0000000000000000001", "alice", NOW, NOW + 3600), d;
    s.last_seen_at = NOW + 5;

    /* put / get round trip */
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    buf_append_cstr(&rec, "stale bytes that get must reset");
    CHECK_EQ_INT(get_session(st, s.id, NOW, &rec, &d), RC_OK);
    CHECK_STR_EQ(d.id, s.id);
    CHECK(str_eq_cstr(d.user_id, "alice"));
    CHECK_EQ_INT(d.created_at, NOW);
    CHECK_EQ_INT(d.expires_at, NOW + 3600);
    CHECK_EQ_INT(d.last_seen_at, NOW + 5);
    CHECK(str_eq_cstr(d.ip, "192.0.2.7"));
    CHECK(str_eq_cstr(d.user_agent, "unit/1.0"));
    CHECK(str_eq_cstr(d.data, "{\"k\":1}"));

    /* a session without user agent */
    session_t nua = mk("basic0000000000000000002", "alice", NOW, NOW + 3600);
    nua.user_agent = STR_NULL;
    CHECK_EQ_INT(store_put(st, &nua), RC_OK);
    CHECK_EQ_INT(get_session(st, nua.id, NOW, &rec, &d), RC_OK);
    CHECK(d.user_agent.p == NULL);

    /* duplicate id: RC_EXISTS, the first one unchanged */
    session_t dup = mk(s.id, "mallory", NOW + 1, NOW + 7200);
    CHECK_EQ_INT(store_put(st, &dup), RC_EXISTS);
    CHECK_EQ_INT(get_session(st, s.id, NOW, &rec, &d), RC_OK);
    CHECK(str_eq_cstr(d.user_id, "alice"));
    CHECK_EQ_INT(d.expires_at, NOW + 3600);
    {
        seen c = { 0 };
        CHECK_EQ_INT(store_list(st, STR_LIT("mallory"), NOW, collect, &c), RC_OK);
        CHECK_EQ_INT(c.n, 0);
    }

    /* unknown id */
    CHECK_EQ_INT(store_get(st, "unknown000000000000000000", NOW, &rec), RC_NOT_FOUND);

    /* expiry: expires_at <= now is gone */
    CHECK_EQ_INT(store_get(st, s.id, NOW + 3599, &rec), RC_OK);
    CHECK_EQ_INT(store_get(st, s.id, NOW + 3600, &rec), RC_NOT_FOUND);
    CHECK_EQ_INT(store_get(st, s.id, NOW + 100000, &rec), RC_NOT_FOUND);
    session_t dead = mk("basic0000000000000000003", "alice", NOW - 100, NOW);
    CHECK_EQ_INT(store_put(st, &dead), RC_OK);
    CHECK_EQ_INT(store_get(st, dead.id, NOW, &rec), RC_NOT_FOUND);
    CHECK_EQ_INT(store_get(st, dead.id, NOW - 1, &rec), RC_OK);

    /* delete: wrong owner refused and the session is still there */
    CHECK_EQ_INT(store_del(st, s.id, STR_LIT("bob"), NOW), RC_NOT_FOUND);
    CHECK_EQ_INT(store_del(st, s.id, STR_LIT("alic"), NOW), RC_NOT_FOUND);
    CHECK_EQ_INT(store_del(st, s.id, STR_LIT("alice2"), NOW), RC_NOT_FOUND);
    CHECK_EQ_INT(store_get(st, s.id, NOW, &rec), RC_OK);
    /* right owner: OK, then the second delete is RC_NOT_FOUND */
    CHECK_EQ_INT(store_del(st, s.id, STR_LIT("alice"), NOW), RC_OK);
    CHECK_EQ_INT(store_get(st, s.id, NOW, &rec), RC_NOT_FOUND);
    CHECK_EQ_INT(store_del(st, s.id, STR_LIT("alice"), NOW), RC_NOT_FOUND);
    CHECK_EQ_INT(store_del(st, s.id, STR_NULL, NOW), RC_NOT_FOUND);
    /* owner NULL: any owner */
    CHECK_EQ_INT(store_del(st, nua.id, STR_NULL, NOW), RC_OK);
    CHECK_EQ_INT(store_del(st, nua.id, STR_NULL, NOW), RC_NOT_FOUND);
    /* an expired session cannot be deleted (it is absent) */
    CHECK_EQ_INT(store_del(st, dead.id, STR_NULL, NOW), RC_NOT_FOUND);
    CHECK_EQ_INT(store_del(st, "unknown000000000000000000", STR_NULL, NOW), RC_NOT_FOUND);
    /* the id is free again */
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    CHECK_EQ_INT(store_get(st, s.id, NOW, &rec), RC_OK);
    {
        seen c = { 0 };
        CHECK_EQ_INT(store_list(st, STR_LIT("alice"), NOW, collect, &c), RC_OK);
        CHECK_EQ_INT(c.n, 1);
        CHECK_STR_EQ(c.ids[0], s.id);
    }

    buf_free(&rec);
    store_close(st);
}

static void test_list(void)
{
    store_t *st = open_at("list", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    session_t a = mk("list00000000000000000000a", "u1", NOW - 300, NOW + 100);
    session_t b = mk("list00000000000000000000b", "u1", NOW - 100, NOW + 100);
    session_t c = mk("list00000000000000000000c", "u1", NOW - 200, NOW + 100);
    session_t x = mk("list00000000000000000000x", "u1", NOW - 50, NOW);   /* expired */
    session_t o = mk("list00000000000000000000o", "u10", NOW - 10, NOW + 100);
    session_t p = mk("list00000000000000000000p", "u", NOW - 10, NOW + 100);
    CHECK_EQ_INT(store_put(st, &a), RC_OK);
    CHECK_EQ_INT(store_put(st, &b), RC_OK);
    CHECK_EQ_INT(store_put(st, &c), RC_OK);
    CHECK_EQ_INT(store_put(st, &x), RC_OK);
    CHECK_EQ_INT(store_put(st, &o), RC_OK);
    CHECK_EQ_INT(store_put(st, &p), RC_OK);

    seen s = { 0 };
    CHECK_EQ_INT(store_list(st, STR_LIT("u1"), NOW, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 3);
    CHECK_STR_EQ(s.ids[0], b.id);  /* newest first */
    CHECK_STR_EQ(s.ids[1], c.id);
    CHECK_STR_EQ(s.ids[2], a.id);
    CHECK(s.created[0] > s.created[1] && s.created[1] > s.created[2]);

    /* before x expired it is listed first */
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(store_list(st, STR_LIT("u1"), NOW - 1, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 4);
    CHECK_STR_EQ(s.ids[0], x.id);

    /* stop early */
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    CHECK_EQ_INT(store_list(st, STR_LIT("u1"), NOW, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 2);
    CHECK_STR_EQ(s.ids[0], b.id);

    /* other users, prefixes, unknown */
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(store_list(st, STR_LIT("u10"), NOW, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 1);
    CHECK_STR_EQ(s.ids[0], o.id);
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(store_list(st, STR_LIT("u"), NOW, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 1);
    CHECK_STR_EQ(s.ids[0], p.id);
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(store_list(st, STR_LIT("nobody"), NOW, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 0);
    /* everything expired */
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(store_list(st, STR_LIT("u1"), NOW + 100, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 0);

    /* after a delete the list follows */
    CHECK_EQ_INT(store_del(st, c.id, STR_LIT("u1"), NOW), RC_OK);
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(store_list(st, STR_LIT("u1"), NOW, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 2);
    CHECK_STR_EQ(s.ids[0], b.id);
    CHECK_STR_EQ(s.ids[1], a.id);
    store_close(st);
}

static int has_id(const seen *s, const char *id)
{
    for (int i = 0; i < s->n && i < 64; i++)
        if (strcmp(s->ids[i], id) == 0)
            return 1;
    return 0;
}

static void test_scan(void)
{
    store_t *st = open_at("scan", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    seen s = { 0 };
    CHECK_EQ_INT(store_scan(st, NOW, collect, &s), RC_OK);   /* empty store */
    CHECK_EQ_INT(s.n, 0);

    session_t a = mk("scan00000000000000000000a", "u1", NOW - 30, NOW + 100);
    session_t b = mk("scan00000000000000000000b", "u2", NOW - 20, NOW + 100);
    session_t c = mk("scan00000000000000000000c", "u3", NOW - 10, NOW + 5);
    session_t x = mk("scan00000000000000000000x", "u1", NOW - 40, NOW);  /* expired */
    CHECK_EQ_INT(store_put(st, &a), RC_OK);
    CHECK_EQ_INT(store_put(st, &b), RC_OK);
    CHECK_EQ_INT(store_put(st, &c), RC_OK);
    CHECK_EQ_INT(store_put(st, &x), RC_OK);

    /* every live session, once, in any order */
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(store_scan(st, NOW, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 3);
    CHECK(has_id(&s, a.id) && has_id(&s, b.id) && has_id(&s, c.id));
    CHECK(!has_id(&s, x.id));
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(store_scan(st, NOW - 1, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 4);
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(store_scan(st, NOW + 5, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 2);
    CHECK(!has_id(&s, c.id));
    /* stop early */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    CHECK_EQ_INT(store_scan(st, NOW, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 1);
    /* after a delete */
    CHECK_EQ_INT(store_del(st, b.id, STR_NULL, NOW), RC_OK);
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(store_scan(st, NOW, collect, &s), RC_OK);
    CHECK_EQ_INT(s.n, 2);
    CHECK(!has_id(&s, b.id));
    store_close(st);
}

static void test_del_user(void)
{
    store_t *st = open_at("deluser", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    buf_t rec = BUF_INIT;
    char ids[6][SESSION_ID_MAX + 1];
    for (int i = 0; i < 6; i++)
        idn(ids[i], "delu", i);
    /* carol: 0..3 live, 4 expired; dave: 5 */
    for (int i = 0; i < 4; i++) {
        session_t s = mk(ids[i], "carol", NOW - 10 * i, NOW + 100);
        CHECK_EQ_INT(store_put(st, &s), RC_OK);
    }
    session_t x = mk(ids[4], "carol", NOW - 50, NOW - 1);
    CHECK_EQ_INT(store_put(st, &x), RC_OK);
    session_t d = mk(ids[5], "dave", NOW, NOW + 100);
    CHECK_EQ_INT(store_put(st, &d), RC_OK);

    size_t count = 999;
    /* with except: all but that one */
    CHECK_EQ_INT(store_del_user(st, STR_LIT("carol"), ids[2], NOW, &count), RC_OK);
    CHECK_EQ_INT(count, 3);
    CHECK_EQ_INT(store_get(st, ids[0], NOW, &rec), RC_NOT_FOUND);
    CHECK_EQ_INT(store_get(st, ids[1], NOW, &rec), RC_NOT_FOUND);
    CHECK_EQ_INT(store_get(st, ids[2], NOW, &rec), RC_OK);
    CHECK_EQ_INT(store_get(st, ids[3], NOW, &rec), RC_NOT_FOUND);
    CHECK_EQ_INT(store_get(st, ids[5], NOW, &rec), RC_OK);
    {
        seen s = { 0 };
        CHECK_EQ_INT(store_list(st, STR_LIT("carol"), NOW - 100, collect, &s), RC_OK);
        CHECK_EQ_INT(s.n, 1);
        CHECK_STR_EQ(s.ids[0], ids[2]);
    }
    /* an except id that is not the user's changes nothing about counting */
    CHECK_EQ_INT(store_del_user(st, STR_LIT("carol"), ids[5], NOW, &count), RC_OK);
    CHECK_EQ_INT(count, 1);
    CHECK_EQ_INT(store_get(st, ids[2], NOW, &rec), RC_NOT_FOUND);
    CHECK_EQ_INT(store_get(st, ids[5], NOW, &rec), RC_OK);
    /* nothing left */
    count = 999;
    CHECK_EQ_INT(store_del_user(st, STR_LIT("carol"), NULL, NOW, &count), RC_OK);
    CHECK_EQ_INT(count, 0);
    count = 999;
    CHECK_EQ_INT(store_del_user(st, STR_LIT("nobody"), NULL, NOW, &count), RC_OK);
    CHECK_EQ_INT(count, 0);

    /* without except */
    for (int i = 0; i < 3; i++) {
        char id[SESSION_ID_MAX + 1];
        idn(id, "delv", i);
        session_t s = mk(id, "erin", NOW + i, NOW + 100);
        CHECK_EQ_INT(store_put(st, &s), RC_OK);
    }
    CHECK_EQ_INT(store_del_user(st, STR_LIT("erin"), NULL, NOW, &count), RC_OK);
    CHECK_EQ_INT(count, 3);
    {
        seen s = { 0 };
        CHECK_EQ_INT(store_list(st, STR_LIT("erin"), NOW, collect, &s), RC_OK);
        CHECK_EQ_INT(s.n, 0);
    }
    /* dave untouched; user names are exact (no prefix match) */
    CHECK_EQ_INT(store_del_user(st, STR_LIT("dav"), NULL, NOW, &count), RC_OK);
    CHECK_EQ_INT(count, 0);
    CHECK_EQ_INT(store_get(st, ids[5], NOW, &rec), RC_OK);
    buf_free(&rec);
    store_close(st);
}

static void test_touch_purge(void)
{
    store_t *st = open_at("touch", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    buf_t rec = BUF_INIT;
    session_t s = mk("touch000000000000000000001", "frank", NOW, NOW + 100), d;
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    CHECK_EQ_INT(store_touch(st, s.id, NOW + 42, NOW + 10), RC_OK);
    CHECK_EQ_INT(get_session(st, s.id, NOW + 10, &rec, &d), RC_OK);
    CHECK_EQ_INT(d.last_seen_at, NOW + 42);
    CHECK_EQ_INT(d.created_at, NOW);
    CHECK_EQ_INT(d.expires_at, NOW + 100);
    CHECK(str_eq_cstr(d.user_id, "frank"));
    CHECK(str_eq_cstr(d.data, "{\"k\":1}"));
    CHECK_EQ_INT(store_touch(st, s.id, NOW + 50, NOW + 20), RC_OK);
    CHECK_EQ_INT(get_session(st, s.id, NOW + 20, &rec, &d), RC_OK);
    CHECK_EQ_INT(d.last_seen_at, NOW + 50);
    /* absent and expired sessions are skipped (nothing is created) */
    CHECK_EQ_INT(store_touch(st, "unknown000000000000000000", NOW, NOW), RC_OK);
    CHECK_EQ_INT(get_session(st, "unknown000000000000000000", NOW, &rec, &d), RC_NOT_FOUND);
    CHECK_EQ_INT(store_touch(st, s.id, NOW + 100, NOW + 100), RC_OK); /* expired */
    CHECK_EQ_INT(get_session(st, s.id, NOW + 99, &rec, &d), RC_OK);
    CHECK_EQ_INT(d.last_seen_at, NOW + 50);
    {
        /* a batch: live ones updated, absent ones skipped */
        session_t t = mk("touch000000000000000000002", "frank", NOW, NOW + 100);
        char ids[3][SESSION_ID_MAX + 1] = { "touch000000000000000000001",
                                            "unknown000000000000000000",
                                            "touch000000000000000000002" };
        CHECK_EQ_INT(store_put(st, &t), RC_OK);
        CHECK_EQ_INT(store_touch_many(st, (const char (*)[SESSION_ID_MAX + 1])ids, 3, NOW + 60,
                                      NOW + 30), RC_OK);
        CHECK_EQ_INT(get_session(st, s.id, NOW + 30, &rec, &d), RC_OK);
        CHECK_EQ_INT(d.last_seen_at, NOW + 60);
        CHECK_EQ_INT(get_session(st, t.id, NOW + 30, &rec, &d), RC_OK);
        CHECK_EQ_INT(d.last_seen_at, NOW + 60);
        CHECK_EQ_INT(store_del(st, t.id, STR_NULL, NOW + 30), RC_OK);
    }
    {
        seen c = { 0 };
        CHECK_EQ_INT(store_list(st, STR_LIT("frank"), NOW, collect, &c), RC_OK);
        CHECK_EQ_INT(c.n, 1);
    }

    /* purge: expired (expires_at <= now) removed, live kept */
    session_t e1 = mk("purge000000000000000000001", "gina", NOW - 100, NOW - 10);
    session_t e2 = mk("purge000000000000000000002", "gina", NOW - 100, NOW);
    session_t e3 = mk("purge000000000000000000003", "hank", NOW - 100, NOW - 1);
    session_t l1 = mk("purge000000000000000000004", "gina", NOW - 100, NOW + 1);
    CHECK_EQ_INT(store_put(st, &e1), RC_OK);
    CHECK_EQ_INT(store_put(st, &e2), RC_OK);
    CHECK_EQ_INT(store_put(st, &e3), RC_OK);
    CHECK_EQ_INT(store_put(st, &l1), RC_OK);
    size_t count = 999;
    CHECK_EQ_INT(store_purge(st, NOW, &count), RC_OK);
    CHECK_EQ_INT(count, 3);
    /* the purged records are gone even for a clock before their expiry */
    CHECK_EQ_INT(store_get(st, e1.id, NOW - 50, &rec), RC_NOT_FOUND);
    CHECK_EQ_INT(store_get(st, e2.id, NOW - 50, &rec), RC_NOT_FOUND);
    CHECK_EQ_INT(store_get(st, e3.id, NOW - 50, &rec), RC_NOT_FOUND);
    {
        seen c = { 0 };
        CHECK_EQ_INT(store_list(st, STR_LIT("gina"), NOW - 50, collect, &c), RC_OK);
        CHECK_EQ_INT(c.n, 1);
        CHECK_STR_EQ(c.ids[0], l1.id);
    }
    CHECK_EQ_INT(store_get(st, l1.id, NOW, &rec), RC_OK);
    CHECK_EQ_INT(store_get(st, s.id, NOW, &rec), RC_OK);
    CHECK_EQ_INT(store_purge(st, NOW, &count), RC_OK);
    CHECK_EQ_INT(count, 0);
    /* the id of a purged session can be used again */
    CHECK_EQ_INT(store_put(st, &e1), RC_OK);
    CHECK_EQ_INT(store_del(st, e1.id, STR_NULL, NOW - 20), RC_OK);

    /* more than one batch */
    enum { MANY = 2100 };
    int all = 1;
    for (int i = 0; i < MANY; i++) {
        char id[SESSION_ID_MAX + 1];
        idn(id, "many", i);
        session_t m = mk(id, i % 2 ? "ivan" : "judy", NOW - 1000, NOW + 200 + i % 7);
        if (store_put(st, &m) != RC_OK)
            all = 0;
    }
    CHECK(all);
    /* at NOW + 199 only frank's session and l1 have expired */
    CHECK_EQ_INT(store_purge(st, NOW + 199, &count), RC_OK);
    CHECK_EQ_INT(count, 2);
    CHECK_EQ_INT(store_purge(st, NOW + 300, &count), RC_OK);
    CHECK_EQ_INT(count, MANY);
    {
        seen c = { 0 };
        CHECK_EQ_INT(store_list(st, STR_LIT("ivan"), 0, collect, &c), RC_OK);
        CHECK_EQ_INT(c.n, 0);
    }
    buf_free(&rec);
    store_close(st);
}

static void test_reopen(void)
{
    store_t *st = open_at("reopen", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    session_t s = mk("reopen00000000000000000001", "kate", NOW, NOW + 100);
    session_t t = mk("reopen00000000000000000002", "kate", NOW + 1, NOW + 100);
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    CHECK_EQ_INT(store_put(st, &t), RC_OK);
    CHECK_EQ_INT(store_touch(st, s.id, NOW + 9, NOW), RC_OK);
    store_close(st);

    st = open_at("reopen", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    buf_t rec = BUF_INIT;
    session_t d;
    CHECK_EQ_INT(get_session(st, s.id, NOW, &rec, &d), RC_OK);
    CHECK(str_eq_cstr(d.user_id, "kate"));
    CHECK_EQ_INT(d.last_seen_at, NOW + 9);
    seen c = { 0 };
    CHECK_EQ_INT(store_list(st, STR_LIT("kate"), NOW, collect, &c), RC_OK);
    CHECK_EQ_INT(c.n, 2);
    CHECK_STR_EQ(c.ids[0], t.id);
    CHECK_EQ_INT(store_put(st, &s), RC_EXISTS);
    buf_free(&rec);
    store_close(st);
}

static long long file_size(const char *sub)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s/data.mdb", tmpdir, sub);
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* n sessions of user with ids tag00...; each record about 1 KiB. */
static void put_many(store_t *st, const char *tag, int from, int n)
{
    static char pad[810];
    memset(pad, 'x', sizeof pad);
    memcpy(pad, "{\"pad\":\"", 8);
    memcpy(pad + sizeof pad - 2, "\"}", 2);
    for (int i = from; i < from + n; i++) {
        char id[SESSION_ID_MAX + 1], user[16];
        idn(id, tag, i);
        snprintf(user, sizeof user, "u%d", i % 50);
        session_t s = mk(id, user, NOW + i, NOW + 100000);
        s.data = (str_t){ pad, sizeof pad };
        CHECK_EQ_INT(store_put(st, &s), RC_OK);
    }
}

/* Commits (one session each, as the commit lane's batches would) until the
 * file's size has stayed the same for three of them, GROW_GAP_US apart so
 * that each may write a chunk ahead; returns that size. */
static long long settle(store_t *st, const char *sub, const char *tag, int *next)
{
    long long last = -1;
    for (int i = 0, same = 0; i < 500 && same < 3; i++) {
        put_many(st, tag, (*next)++, 1);
        usleep(11000); /* grow_step's GROW_GAP_US (10 ms), and a little */
        long long now = file_size(sub);
        same = now == last ? same + 1 : 0;
        last = now;
    }
    return last;
}

/* While the store grows, the housekeeping tick sets a size to write ahead
 * of LMDB's pages and the commits write it a chunk at a time (grow_ahead,
 * grow_step), so that commits overwrite blocks the file has; a store that
 * does not grow is left as it is; never past the map. */
static void test_grow_ahead(void)
{
    char probe[512];
    snprintf(probe, sizeof probe, "%s/direct-probe", tmpdir);
    static _Alignas(4096) char block[4096];
    int fd = open(probe, O_CREAT | O_WRONLY | O_DIRECT, 0600);
    int direct = fd >= 0 && pwrite(fd, block, sizeof block, 0) == (ssize_t)sizeof block;
    if (fd >= 0)
        close(fd);
    unlink(probe);
    if (!direct) {
        printf("  skipped: %s takes no O_DIRECT writes, so the store is not grown there\n", tmpdir);
        return;
    }
    store_t *st = open_at("grow", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    int next = 0;
    put_many(st, "grow", next, 100);
    next += 100;
    store_tend(st); /* the first tick only notes where the pages end */
    long long s0 = file_size("grow");
    store_tend(st);
    CHECK_EQ_INT(file_size("grow"), s0); /* not growing: nothing written ahead */
    put_many(st, "grow", next, 1000);
    next += 1000;
    long long s1 = file_size("grow");
    CHECK(s1 > s0 + 512 * 1024); /* LMDB extended the file itself */
    store_tend(st);
    long long s2 = settle(st, "grow", "grow", &next);
    CHECK(s2 >= s1 + 2 * (s1 - s0)); /* more than one tick's growth ahead */
    put_many(st, "grow", next, 500); /* fits in what was written ahead */
    next += 500;
    CHECK_EQ_INT(file_size("grow"), s2);
    store_close(st);

    st = open_at("grow", 64 * MiB); /* LMDB reads nothing past its pages */
    CHECK(st != NULL);
    if (st == NULL)
        return;
    size_t n = 0;
    CHECK_EQ_INT(store_count(st, &n), RC_OK);
    CHECK_EQ_INT((long long)n, next);
    buf_t rec = BUF_INIT;
    int found = 0;
    for (int i = 0; i < next; i++) {
        session_t d;
        char id[SESSION_ID_MAX + 1];
        idn(id, "grow", i);
        found += get_session(st, id, NOW, &rec, &d) == RC_OK && d.created_at == NOW + i;
    }
    CHECK_EQ_INT(found, next);
    put_many(st, "grow", next, 10);
    buf_free(&rec);
    store_close(st);

    /* a map of 2 MiB: the space written ahead stops at its end */
    st = open_at("grow-small", 2 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    next = 0;
    put_many(st, "small", next, 10);
    next += 10;
    store_tend(st);
    put_many(st, "small", next, 1000);
    next += 1000;
    store_tend(st);
    CHECK(settle(st, "grow-small", "small", &next) > 1 * MiB);
    CHECK(file_size("grow-small") <= 2 * MiB);
    store_close(st);
}

static void test_full(void)
{
    static char data[SESSION_DATA_MAX + 1];
    memset(data, ' ', SESSION_DATA_MAX);
    data[0] = '{';
    data[SESSION_DATA_MAX - 1] = '}';

    store_t *st = open_at("full", 1 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    int stored = 0;
    rc_t rc = RC_OK;
    char id[SESSION_ID_MAX + 1];
    while (stored < 2000) {
        idn(id, "full", stored);
        session_t s = mk(id, "liam", NOW + stored, NOW + 3600);
        s.data = (str_t){ data, SESSION_DATA_MAX };
        rc = store_put(st, &s);
        if (rc != RC_OK)
            break;
        stored++;
    }
    CHECK_EQ_INT(rc, RC_FULL);
    CHECK(stored > 10);   /* 1 MiB holds a good number of 4 KiB records */
    CHECK(stored < 256);
    /* still full for the next one; the failed put left nothing behind */
    idn(id, "full", stored);
    session_t extra = mk(id, "liam", NOW, NOW + 3600);
    extra.data = (str_t){ data, SESSION_DATA_MAX };
    CHECK_EQ_INT(store_put(st, &extra), RC_FULL);
    buf_t rec = BUF_INIT;
    CHECK_EQ_INT(store_get(st, id, NOW, &rec), RC_NOT_FOUND);

    /* every earlier session is intact */
    int intact = 1;
    for (int i = 0; i < stored; i++) {
        session_t d;
        idn(id, "full", i);
        if (store_get(st, id, NOW, &rec) != RC_OK ||
            record_decode(rec.p, rec.len, &d) != RC_OK || strcmp(d.id, id) != 0 ||
            !str_eq_cstr(d.user_id, "liam") || d.data.len != SESSION_DATA_MAX ||
            d.created_at != NOW + i)
            intact = 0;
    }
    CHECK(intact);
    seen c = { 0 };
    CHECK_EQ_INT(store_list(st, STR_LIT("liam"), NOW, collect, &c), RC_OK);
    CHECK_EQ_INT(c.n, stored);
    CHECK_EQ_INT(store_ping(st), RC_OK);

    /* a full store can still delete, and is intact after a reopen */
    idn(id, "full", 0);
    CHECK_EQ_INT(store_del(st, id, STR_LIT("liam"), NOW), RC_OK);
    store_close(st);
    st = open_at("full", 1 * MiB);
    CHECK(st != NULL);
    if (st == NULL) {
        buf_free(&rec);
        return;
    }
    intact = 1;
    for (int i = 1; i < stored; i++) {
        idn(id, "full", i);
        if (store_get(st, id, NOW, &rec) != RC_OK)
            intact = 0;
    }
    CHECK(intact);
    size_t count = 0;
    CHECK_EQ_INT(store_del_user(st, STR_LIT("liam"), NULL, NOW, &count), RC_OK);
    CHECK_EQ_INT(count, (size_t)stored - 1);
    /* room again */
    CHECK_EQ_INT(store_put(st, &extra), RC_OK);
    buf_free(&rec);
    store_close(st);
}

/* ---- concurrency ---- */

typedef struct race {
    store_t *st;
    const char *id;
    pthread_barrier_t *go;
    rc_t rc;
} race;

/* store_batch: every write answers what its single call would have,
 * in one batch; creates in any order (appends and the fallback). */
static void test_write_batch(void)
{
    store_t *st = open_at("batch", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    enum { N = 40 };
    char ids[N][SESSION_ID_MAX + 1];
    session_t ss[N];
    store_op w[N + 8], *ops[N + 8];
    size_t n = 0;
    /* descending, ascending and a duplicate, all in one batch */
    for (int i = 0; i < N; i++) {
        idn(ids[i], i % 2 ? "bAsc" : "bDsc", i % 2 ? i : N - i);
        ss[i] = mk(ids[i], i < N / 2 ? "carol" : "dave", NOW, NOW + 100 + i);
        w[n] = (store_op){ .kind = STORE_OP_PUT, .s = &ss[i], .rc = RC_ERR };
        ops[n] = &w[n];
        n++;
    }
    w[n] = (store_op){ .kind = STORE_OP_PUT, .s = &ss[3], .rc = RC_ERR };
    ops[n] = &w[n];
    n++;
    store_batch(st, ops, n);
    int all_ok = 1;
    for (int i = 0; i < N; i++)
        all_ok &= w[i].rc == RC_OK;
    CHECK(all_ok);
    CHECK_EQ_INT(w[N].rc, RC_EXISTS);
    buf_t rec = BUF_INIT;
    session_t got;
    int all_read = 1;
    for (int i = 0; i < N; i++)
        all_read &= get_session(st, ids[i], NOW, &rec, &got) == RC_OK &&
                    got.expires_at == NOW + 100 + i;
    CHECK(all_read);

    /* closes: by the owner, by another user, of an absent or malformed id,
     * as an administrator; close-all with an exception */
    n = 0;
    store_op d[6];
    d[0] = (store_op){ .kind = STORE_OP_DEL, .id = ids[0], .user = STR_LIT("carol"), .now = NOW };
    d[1] = (store_op){ .kind = STORE_OP_DEL, .id = ids[1], .user = STR_LIT("mallory"), .now = NOW };
    d[2] = (store_op){ .kind = STORE_OP_DEL, .id = "bNone000000000000000000", .user = STR_NULL, .now = NOW };
    d[3] = (store_op){ .kind = STORE_OP_DEL, .id = "bad id", .user = STR_NULL, .now = NOW };
    d[4] = (store_op){ .kind = STORE_OP_DEL, .id = ids[2], .user = STR_NULL, .now = NOW };
    d[5] = (store_op){ .kind = STORE_OP_DEL_USER, .user = STR_LIT("dave"), .id = ids[N - 1],
                          .now = NOW };
    for (int i = 0; i < 6; i++)
        ops[i] = &d[i];
    store_batch(st, ops, 6);
    CHECK_EQ_INT(d[0].rc, RC_OK);
    CHECK_EQ_INT(d[1].rc, RC_NOT_FOUND);
    CHECK_EQ_INT(d[2].rc, RC_NOT_FOUND);
    CHECK_EQ_INT(d[3].rc, RC_NOT_FOUND);
    CHECK_EQ_INT(d[4].rc, RC_OK);
    CHECK_EQ_INT(d[5].rc, RC_OK);
    CHECK_EQ_INT(d[5].count, N / 2 - 1);
    CHECK_EQ_INT(get_session(st, ids[0], NOW, &rec, &got), RC_NOT_FOUND);
    CHECK_EQ_INT(get_session(st, ids[1], NOW, &rec, &got), RC_OK);
    CHECK_EQ_INT(get_session(st, ids[2], NOW, &rec, &got), RC_NOT_FOUND);
    CHECK_EQ_INT(get_session(st, ids[N - 1], NOW, &rec, &got), RC_OK);
    CHECK_EQ_INT(get_session(st, ids[N - 2], NOW, &rec, &got), RC_NOT_FOUND);
    buf_free(&rec);
    store_close(st);
}

static void *deleter(void *arg)
{
    race *r = arg;
    pthread_barrier_wait(r->go);
    r->rc = store_del(r->st, r->id, STR_LIT("mona"), NOW);
    return NULL;
}

static void test_concurrent_delete(void)
{
    store_t *st = open_at("race", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    enum { ROUNDS = 50, THREADS = 4 };
    int exactly_one = 1, others_not_found = 1;
    for (int round = 0; round < ROUNDS; round++) {
        char id[SESSION_ID_MAX + 1];
        idn(id, "race", round);
        session_t s = mk(id, "mona", NOW, NOW + 100);
        if (store_put(st, &s) != RC_OK) {
            exactly_one = 0;
            break;
        }
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, THREADS);
        pthread_t th[THREADS];
        race r[THREADS];
        int n = round % 2 ? 2 : THREADS; /* pairs, and groups of four */
        pthread_barrier_destroy(&go);
        pthread_barrier_init(&go, NULL, (unsigned)n);
        for (int i = 0; i < n; i++) {
            r[i] = (race){ st, id, &go, RC_ERR };
            pthread_create(&th[i], NULL, deleter, &r[i]);
        }
        int oks = 0;
        for (int i = 0; i < n; i++) {
            pthread_join(th[i], NULL);
            if (r[i].rc == RC_OK)
                oks++;
            else if (r[i].rc != RC_NOT_FOUND)
                others_not_found = 0;
        }
        pthread_barrier_destroy(&go);
        if (oks != 1) {
            fprintf(stderr, "  round %d: %d deletes answered RC_OK\n", round, oks);
            exactly_one = 0;
        }
    }
    CHECK(exactly_one);
    CHECK(others_not_found);
    store_close(st);
}

typedef struct worker {
    store_t *st;
    int n;
    int ok;
} worker;

static void *writer_reader(void *arg)
{
    worker *w = arg;
    buf_t rec = BUF_INIT;
    w->ok = 1;
    for (int i = 0; i < 40; i++) {
        char id[SESSION_ID_MAX + 1];
        snprintf(id, sizeof id, "par%02d%018d", w->n, i);
        session_t s = mk(id, "nina", NOW + i, NOW + 100);
        if (store_put(w->st, &s) != RC_OK || store_get(w->st, id, NOW, &rec) != RC_OK)
            w->ok = 0;
    }
    buf_free(&rec);
    return NULL;
}

static void test_concurrent_put_get(void)
{
    store_t *st = open_at("parallel", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    enum { T = 4 };
    pthread_t th[T];
    worker w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (worker){ st, i, 0 };
        pthread_create(&th[i], NULL, writer_reader, &w[i]);
    }
    int all = 1;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        all &= w[i].ok;
    }
    CHECK(all);
    seen c = { 0 };
    CHECK_EQ_INT(store_list(st, STR_LIT("nina"), NOW, collect, &c), RC_OK);
    CHECK_EQ_INT(c.n, T * 40);
    size_t count = 0;
    CHECK_EQ_INT(store_del_user(st, STR_LIT("nina"), NULL, NOW, &count), RC_OK);
    CHECK_EQ_INT(count, T * 40);
    store_close(st);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Every failure of LMDB or of the OS under it is "unavailable" (503),
 * never an internal error (500): contract v2, "Tightened rules". */
static void test_error_mapping(void)
{
    static const int failures[] = { MDB_MAP_RESIZED, MDB_PANIC, MDB_CORRUPTED, MDB_READERS_FULL,
                                    MDB_BAD_TXN, MDB_VERSION_MISMATCH, ENOSPC, EIO, EFBIG,
                                    EDQUOT, EROFS, EACCES };
    for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++)
        CHECK_EQ_INT(store_lmdb_rc(failures[i], "test"), RC_UNAVAILABLE);
    CHECK_EQ_INT(store_lmdb_rc(MDB_SUCCESS, "test"), RC_OK);
    CHECK_EQ_INT(store_lmdb_rc(MDB_NOTFOUND, "test"), RC_NOT_FOUND);
    CHECK_EQ_INT(store_lmdb_rc(MDB_KEYEXIST, "test"), RC_EXISTS);
    CHECK_EQ_INT(store_lmdb_rc(MDB_MAP_FULL, "test"), RC_FULL);
    CHECK_EQ_INT(store_lmdb_rc(ENOMEM, "test"), RC_NOMEM);
}

/* What a store's close listener heard: "reason id user" lines. */
typedef struct heard {
    char lines[64][SESSION_ID_MAX + SESSION_USER_MAX + 8];
    int n;
} heard;

static void listen_close(void *arg, store_close_reason why, const char *id, str_t user)
{
    heard *h = arg;
    if (h->n < 64)
        snprintf(h->lines[h->n++], sizeof h->lines[0], "%d %s %.*s", (int)why, id,
                 (int)user.len, user.p);
}

static int heard_line(const heard *h, store_close_reason why, const char *id, const char *user)
{
    char want[sizeof h->lines[0]];
    int found = 0;
    snprintf(want, sizeof want, "%d %s %s", (int)why, id, user);
    for (int i = 0; i < h->n; i++)
        found += strcmp(h->lines[i], want) == 0;
    return found;
}

/* Every removal is told once, with its reason, after its commit; a close
 * that closes nothing tells nothing. */
static void test_close_listener(void)
{
    store_t *st = open_at("listen", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    heard h = { .n = 0 };
    store_on_close(st, listen_close, &h);
    char a[SESSION_ID_MAX + 1], b[SESSION_ID_MAX + 1], c[SESSION_ID_MAX + 1],
        d[SESSION_ID_MAX + 1], e[SESSION_ID_MAX + 1], f[SESSION_ID_MAX + 1];
    idn(a, "lsnA", 1);
    idn(b, "lsnB", 2);
    idn(c, "lsnC", 3);
    idn(d, "lsnD", 4);
    idn(e, "lsnE", 5);
    idn(f, "lsnF", 6);
    session_t sa = mk(a, "ann", NOW, NOW + 100), sb = mk(b, "ann", NOW + 1, NOW + 100),
              sc = mk(c, "ann", NOW + 2, NOW + 100), sd = mk(d, "ann", NOW, NOW + 5),
              se = mk(e, "bob", NOW, NOW + 100), sf = mk(f, "bob", NOW + 1, NOW + 100);
    const session_t *all[] = { &sa, &sb, &sc, &sd, &se, &sf };
    for (size_t i = 0; i < 6; i++)
        CHECK_EQ_INT(store_put(st, all[i]), RC_OK);
    CHECK_EQ_INT(h.n, 0);

    CHECK_EQ_INT(store_del(st, a, STR_LIT("ann"), NOW), RC_OK);
    CHECK_EQ_INT(heard_line(&h, STORE_CLOSED, a, "ann"), 1);
    CHECK_EQ_INT(store_del(st, a, STR_LIT("ann"), NOW), RC_NOT_FOUND);
    CHECK_EQ_INT(store_del(st, b, STR_LIT("bob"), NOW), RC_NOT_FOUND); /* not bob's */
    CHECK_EQ_INT(h.n, 1);

    size_t n = 0;
    CHECK_EQ_INT(store_del_user(st, STR_LIT("ann"), c, NOW + 10, &n), RC_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(heard_line(&h, STORE_CLOSED_ALL, b, "ann"), 1);
    CHECK_EQ_INT(heard_line(&h, STORE_EXPIRED, d, "ann"), 1); /* met dead on the way */
    CHECK_EQ_INT(h.n, 3);

    /* a create over the cap evicts bob's least recently used */
    char g[SESSION_ID_MAX + 1];
    idn(g, "lsnG", 7);
    session_t sg = mk(g, "bob", NOW + 2, NOW + 100);
    store_op put = { .kind = STORE_OP_PUT, .s = &sg, .now = NOW + 2, .max_per_user = 2 };
    store_op *one = &put;
    store_batch(st, &one, 1);
    CHECK_EQ_INT(put.rc, RC_OK);
    CHECK_EQ_INT(heard_line(&h, STORE_EVICTED, e, "bob"), 1);
    CHECK_EQ_INT(h.n, 4);

    /* a refused create tells nothing */
    put.refuse = 1;
    sg.id[0] = 'x';
    store_batch(st, &one, 1);
    CHECK_EQ_INT(put.rc, RC_LIMIT);
    CHECK_EQ_INT(h.n, 4);

    /* the purge tells each expired session */
    CHECK_EQ_INT(store_purge(st, NOW + 1000, &n), RC_OK);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(heard_line(&h, STORE_EXPIRED, c, "ann"), 1);
    CHECK_EQ_INT(heard_line(&h, STORE_EXPIRED, f, "bob"), 1);
    CHECK_EQ_INT(heard_line(&h, STORE_EXPIRED, g, "bob"), 1);
    CHECK_EQ_INT(h.n, 7);
    store_close(st);
}

static store_op op1(store_t *st, store_op o)
{
    store_op *one = &o;
    store_batch(st, &one, 1);
    return o;
}

/* The idle timeout in the store: a session with one is live until
 * session_end (last_seen_at + idle + slack), a TOUCH moves that (never
 * backwards, never on a dead session), and the purge removes the idle ones
 * by the moved deadline, telling them as idle. */
static void test_idle(void)
{
    store_t *st = open_at("idle", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    heard h = { .n = 0 };
    store_on_close(st, listen_close, &h);
    char a[SESSION_ID_MAX + 1], b[SESSION_ID_MAX + 1];
    buf_t rec = BUF_INIT;
    session_t got;
    idn(a, "idlA", 1);
    idn(b, "idlB", 2);
    session_t sa = mk(a, "ann", NOW, NOW + 1000), sb = mk(b, "ann", NOW, NOW + 1000);
    sa.idle_timeout = sb.idle_timeout = 10; /* slack 2: ends at last_seen + 12 */
    CHECK_EQ_INT(store_put(st, &sa), RC_OK);
    CHECK_EQ_INT(store_put(st, &sb), RC_OK);
    CHECK_EQ_INT(get_session(st, a, NOW + 11, &rec, &got), RC_OK);
    CHECK_EQ_INT(got.idle_timeout, 10);
    CHECK_EQ_INT(get_session(st, a, NOW + 12, &rec, &got), RC_NOT_FOUND);

    store_op t = op1(st, (store_op){ .kind = STORE_OP_TOUCH, .id = a, .now = NOW + 8 });
    CHECK_EQ_INT(t.rc, RC_OK);
    CHECK_EQ_INT(get_session(st, a, NOW + 19, &rec, &got), RC_OK);
    CHECK_EQ_INT(got.last_seen_at, NOW + 8);
    t = op1(st, (store_op){ .kind = STORE_OP_TOUCH, .id = a, .now = NOW + 5 }); /* older */
    CHECK_EQ_INT(t.rc, RC_OK);
    CHECK_EQ_INT(get_session(st, a, NOW + 19, &rec, &got), RC_OK);
    CHECK_EQ_INT(got.last_seen_at, NOW + 8);
    t = op1(st, (store_op){ .kind = STORE_OP_TOUCH, .id = b, .now = NOW + 13 }); /* b ended */
    CHECK_EQ_INT(t.rc, RC_NOT_FOUND);

    /* the purge at NOW + 13 finds b ended idle, and a (moved to NOW + 20) not */
    size_t n = 0;
    CHECK_EQ_INT(store_purge(st, NOW + 13, &n), RC_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(heard_line(&h, STORE_IDLE, b, "ann"), 1);
    CHECK_EQ_INT(store_purge(st, NOW + 19, &n), RC_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(store_purge(st, NOW + 20, &n), RC_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(heard_line(&h, STORE_IDLE, a, "ann"), 1);
    CHECK_EQ_INT(h.n, 2);
    buf_free(&rec);
    store_close(st);
}

/* SWAP: a compare-and-set of the record (a refresh), that hands back the
 * record found when it is another; a theft's close tells token_reuse. */
static void test_swap(void)
{
    store_t *st = open_at("swap", 64 * MiB);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    heard h = { .n = 0 };
    store_on_close(st, listen_close, &h);
    char a[SESSION_ID_MAX + 1];
    buf_t rec = BUF_INIT, found = BUF_INIT;
    session_t cur, next, got;
    idn(a, "swpA", 1);
    session_t sa = mk(a, "ann", NOW, NOW + 1000);
    CHECK_EQ_INT(store_put(st, &sa), RC_OK);
    CHECK_EQ_INT(get_session(st, a, NOW, &rec, &cur), RC_OK);
    next = cur;
    next.gen = 1;
    next.rotated_at = next.last_seen_at = NOW + 3;
    buf_append(&found, rec.p, rec.len);
    store_op s = op1(st, (store_op){ .kind = STORE_OP_SWAP, .id = a, .now = NOW + 3,
                                     .rec = &found, .s = &next });
    CHECK_EQ_INT(s.rc, RC_OK);
    CHECK_EQ_INT(get_session(st, a, NOW + 3, &found, &got), RC_OK);
    CHECK_EQ_INT(got.gen, 1);
    CHECK_EQ_INT(got.rotated_at, NOW + 3);
    CHECK_EQ_INT(got.last_seen_at, NOW + 3);

    /* the same swap again: the record is another now, handed back */
    buf_reset(&found);
    buf_append(&found, rec.p, rec.len);
    s = op1(st, (store_op){ .kind = STORE_OP_SWAP, .id = a, .now = NOW + 4, .rec = &found,
                            .s = &next });
    CHECK_EQ_INT(s.rc, RC_EXISTS);
    CHECK_EQ_INT(record_decode(found.p, found.len, &got), RC_OK);
    CHECK_EQ_INT(got.gen, 1);

    /* on a session gone: not found */
    store_op d = op1(st, (store_op){ .kind = STORE_OP_DEL, .id = a, .user = STR_LIT("ann"),
                                     .now = NOW + 5, .why = STORE_TOKEN_REUSE });
    CHECK_EQ_INT(d.rc, RC_OK);
    CHECK_EQ_INT(heard_line(&h, STORE_TOKEN_REUSE, a, "ann"), 1);
    s = op1(st, (store_op){ .kind = STORE_OP_SWAP, .id = a, .now = NOW + 6, .rec = &found,
                            .s = &next });
    CHECK_EQ_INT(s.rc, RC_NOT_FOUND);
    buf_free(&rec);
    buf_free(&found);
    store_close(st);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    RUN(test_error_mapping);
    RUN(test_open_errors);
    RUN(test_basic);
    RUN(test_list);
    RUN(test_scan);
    RUN(test_del_user);
    RUN(test_touch_purge);
    RUN(test_reopen);
    RUN(test_grow_ahead);
    RUN(test_full);
    RUN(test_write_batch);
    RUN(test_close_listener);
    RUN(test_idle);
    RUN(test_swap);
    RUN(test_concurrent_delete);
    RUN(test_concurrent_put_get);
    CHECK_EQ_INT(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    CHECK(access(tmpdir, F_OK) != 0);
    return UNIT_SUMMARY();
}
