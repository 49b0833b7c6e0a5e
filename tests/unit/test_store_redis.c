/* test_store_redis.c -- the Redis store against a scripted fake Redis: what
 * no black-box test can make a real server do on cue. Error replies of each
 * kind, replies of the wrong shape, a pipeline cut short by a closed or a
 * stalled connection, an AUTH that is refused. The fake listens on a free
 * loopback port, reads RESP commands and answers each with the next entry
 * of the test's script; it records every command it was sent. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "store.h"
#include "store_redis.h"
#include "unit.h"
#include "record.h"
#include "redis_cluster.h"

#define NOW 1700000000LL
#define SCRIPT_MAX 64
#define LOG_MAX 64
#define WORD_MAX 80 /* longer words are logged by their length */
#define BACKOFF_US 300000 /* past the store's reconnect back-off (200 ms) */

typedef enum { ACT_REPLY, ACT_CLOSE, ACT_STALL } act_kind;

typedef struct act {
    act_kind kind;
    char *p; /* ACT_REPLY: the raw RESP bytes sent back */
    size_t len;
} act;

typedef struct fake {
    int lfd, port;
    pthread_t th;
    pthread_mutex_t mu;
    act script[SCRIPT_MAX];
    size_t nscript, next;
    char log[LOG_MAX][256]; /* each command received, its arguments joined by spaces */
    size_t nlog;
    int conns, unscripted, stop;
    /* cluster nodes: CLUSTER SLOTS answered with this (when set) outside
     * the script, whenever it is asked; and an answer for every command
     * once the script is used up (when set), instead of an error */
    char *slots, *dflt;
    int ndflt;
} fake;

/* Length of the first complete RESP array command in b[0..n): 0 when more
 * bytes are needed, -1 for anything else. Its words go to line. */
static long take_command(const char *b, size_t n, char *line, size_t cap)
{
    size_t at = 0, used = 0;
    long argc = 0;
    if (n < 1 || b[0] != '*')
        return n ? -1 : 0;
    const char *eol = memchr(b, '\n', n);
    if (eol == NULL)
        return 0;
    argc = strtol(b + 1, NULL, 10);
    at = (size_t)(eol - b) + 1;
    line[0] = '\0';
    for (long i = 0; i < argc; i++) {
        if (at >= n)
            return 0;
        if (b[at] != '$')
            return -1;
        eol = memchr(b + at, '\n', n - at);
        if (eol == NULL)
            return 0;
        long len = strtol(b + at + 1, NULL, 10);
        at = (size_t)(eol - b) + 1;
        if (len < 0 || at + (size_t)len + 2 > n)
            return len < 0 ? -1 : 0;
        /* words longer than WORD_MAX bytes (scripts, records) are logged by
         * length, EVALSHA's 40 hex digits as <sha1>, short binary ones (a
         * TOUCH's last_seen_at) as x and their hex; keys (a cluster's are up
         * to 61 bytes here) in full */
        int bin = 0, sha = len == 40 && i == 1 && strncmp(line, "EVALSHA", 7) == 0;
        for (long k = 0; sha && k < len; k++)
            sha = strchr("0123456789abcdef", b[at + k]) != NULL && b[at + k] != '\0';
        for (long k = 0; k < len && len <= WORD_MAX; k++)
            bin |= (unsigned char)b[at + k] < 0x20 || (unsigned char)b[at + k] > 0x7e;
        int w;
        if (len > WORD_MAX) {
            w = snprintf(line + used, cap - used, "%s<%ld>", i ? " " : "", len);
        } else if (sha) {
            w = snprintf(line + used, cap - used, " <sha1>");
        } else if (bin) {
            char hex[2 * WORD_MAX + 1];
            for (long k = 0; k < len; k++)
                snprintf(hex + 2 * k, 3, "%02x", (unsigned char)b[at + k]);
            hex[2 * len] = '\0';
            w = snprintf(line + used, cap - used, "%sx%s", i ? " " : "", hex);
        } else {
            w = snprintf(line + used, cap - used, "%s%.*s", i ? " " : "", (int)len, b + at);
        }
        if (w > 0 && used + (size_t)w < cap)
            used += (size_t)w;
        at += (size_t)len + 2;
    }
    return (long)at;
}

static void *serve(void *arg)
{
    fake *f = arg;
    int cfd = -1, stalled = 0;
    char in[1 << 16];
    size_t have = 0;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        int stop = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stop)
            break;
        struct pollfd p[2] = { { .fd = f->lfd, .events = POLLIN },
                               { .fd = cfd, .events = POLLIN } };
        if (poll(p, cfd >= 0 && !stalled ? 2 : 1, 20) <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            int fd = accept(f->lfd, NULL, NULL);
            if (fd >= 0) {
                if (cfd >= 0)
                    close(cfd);
                cfd = fd;
                stalled = 0;
                have = 0;
                pthread_mutex_lock(&f->mu);
                f->conns++;
                pthread_mutex_unlock(&f->mu);
            }
            continue;
        }
        ssize_t got = read(cfd, in + have, sizeof in - have);
        if (got <= 0) {
            close(cfd);
            cfd = -1;
            continue;
        }
        have += (size_t)got;
        char line[sizeof f->log[0]];
        long used;
        while (cfd >= 0 && !stalled && (used = take_command(in, have, line, sizeof line)) > 0) {
            memmove(in, in + used, have - (size_t)used);
            have -= (size_t)used;
            pthread_mutex_lock(&f->mu);
            if (f->nlog < LOG_MAX)
                snprintf(f->log[f->nlog++], sizeof f->log[0], "%s", line);
            act a = { ACT_REPLY, "-ERR fake: unscripted\r\n", 23 };
            char own[4096];
            if (f->slots != NULL && strcmp(line, "CLUSTER SLOTS") == 0) {
                a.len = strlen(f->slots) < sizeof own ? strlen(f->slots) : 0;
                a.p = memcpy(own, f->slots, a.len);
            } else if (f->next < f->nscript) {
                a = f->script[f->next++];
            } else if (f->dflt != NULL) {
                a.len = strlen(f->dflt) < sizeof own ? strlen(f->dflt) : 0;
                a.p = memcpy(own, f->dflt, a.len);
                f->ndflt++;
            } else {
                f->unscripted++;
            }
            pthread_mutex_unlock(&f->mu);
            if (a.kind == ACT_CLOSE) {
                close(cfd);
                cfd = -1;
            } else if (a.kind == ACT_STALL) {
                stalled = 1;
            } else if (write(cfd, a.p, a.len) != (ssize_t)a.len) {
                close(cfd);
                cfd = -1;
            }
        }
    }
    if (cfd >= 0)
        close(cfd);
    return NULL;
}

static void fake_start(fake *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(f->lfd, 8) != 0 || getsockname(f->lfd, (struct sockaddr *)&a, &al) != 0) {
        perror("fake redis");
        exit(2);
    }
    f->port = ntohs(a.sin_port);
    pthread_create(&f->th, NULL, serve, f);
}

/* Stops the fake; every scripted answer must have been asked for, and
 * nothing beyond them. */
static void fake_stop(fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->th, NULL);
    close(f->lfd);
    CHECK_EQ_INT(f->unscripted, 0);
    CHECK_EQ_INT(f->next, f->nscript);
    for (size_t i = 0; i < f->nscript; i++)
        free(f->script[i].p);
    free(f->slots);
    free(f->dflt);
    pthread_mutex_destroy(&f->mu);
}

static void push(fake *f, act_kind kind, const char *p, size_t len)
{
    pthread_mutex_lock(&f->mu);
    if (f->nscript < SCRIPT_MAX) {
        act *a = &f->script[f->nscript++];
        a->kind = kind;
        a->len = len;
        a->p = NULL;
        if (p != NULL) {
            a->p = malloc(len);
            memcpy(a->p, p, len);
        }
    }
    pthread_mutex_unlock(&f->mu);
}

/* The next answer: raw RESP text. */
static void say(fake *f, const char *resp)
{
    push(f, ACT_REPLY, resp, strlen(resp));
}

/* The next answer: a bulk string of n bytes. */
static void say_bulk(fake *f, const void *p, size_t n)
{
    char *r = malloc(n + 32);
    int h = snprintf(r, 32, "$%zu\r\n", n);
    memcpy(r + h, p, n);
    memcpy(r + h + n, "\r\n", 2);
    push(f, ACT_REPLY, r, (size_t)h + n + 2);
    free(r);
}

static void say_close(fake *f) { push(f, ACT_CLOSE, NULL, 0); }
static void say_stall(fake *f) { push(f, ACT_STALL, NULL, 0); }

static const char *logged(fake *f, size_t i)
{
    pthread_mutex_lock(&f->mu);
    const char *s = i < f->nlog ? f->log[i] : "(none)";
    pthread_mutex_unlock(&f->mu);
    return s;
}

static int nlogged(fake *f)
{
    pthread_mutex_lock(&f->mu);
    int n = (int)f->nlog;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Opens the store on the fake (open writes its readiness key: answered OK
 * unless the test scripted the open itself). */
static store_t *open_on(fake *f, const char *userinfo, int script_open)
{
    char url[128], err[256] = "";
    store_options opt = { .timeout_ms = 300 };
    store_t *st = NULL;
    if (script_open)
        say(f, "+OK\r\n");
    snprintf(url, sizeof url, "redis://%s127.0.0.1:%d", userinfo, f->port);
    if (store_open(url, &opt, &st, err, sizeof err) != RC_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        exit(2);
    }
    return st;
}

static session_t mk(const char *id, const char *user, int64_t expires)
{
    session_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "%s", id);
    s.user_id = (str_t){ user, strlen(user) };
    s.created_at = s.last_seen_at = NOW - 10;
    s.expires_at = expires;
    s.ip = STR_LIT("192.0.2.7");
    s.user_agent = STR_LIT("unit/1.0");
    s.data = STR_LIT("{}");
    return s;
}

/* The record of a session as the store keeps it. */
static void say_record(fake *f, const char *id, const char *user, int64_t expires)
{
    session_t s = mk(id, user, expires);
    buf_t rec = BUF_INIT;
    record_encode(&s, &rec);
    say_bulk(f, rec.p, rec.len);
    buf_free(&rec);
}

#define ID_A "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAa"
#define ID_B "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAb"
#define ID_C "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAc"

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* What the close listener heard, "reason id user" per line. */
static char told[8][160];
static int ntold;

static void listen_close(void *arg, store_close_reason why, const char *id, str_t user)
{
    (void)arg;
    if (ntold < 8)
        snprintf(told[ntold++], sizeof told[0], "%d %s %.*s", (int)why, id, (int)user.len,
                 user.p);
}

/* Redis refused the command: the store is unavailable (a 503), whatever the
 * refusal says, except OOM, which is a full store. The connection stays. */
static void test_error_replies(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    buf_t rec = BUF_INIT;
    session_t s = mk(ID_A, "alice", NOW + 60);
    say(&f, "-ERR boom\r\n");
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_UNAVAILABLE);
    say(&f, "-LOADING Redis is loading the dataset in memory\r\n");
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_UNAVAILABLE);
    say(&f, "-READONLY You can't write against a read only replica.\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE);
    say(&f, "-NOREPLICAS Not enough good replicas to write.\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE);
    say(&f, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_FULL);
    say(&f, "-BUSY Redis is busy running a script.\r\n");
    CHECK_EQ_INT(store_del(st, ID_A, STR_LIT("alice"), NOW), RC_UNAVAILABLE);
    say(&f, "-MISCONF Errors writing to the AOF file\r\n");
    CHECK_EQ_INT(store_ping(st), RC_UNAVAILABLE);
    CHECK_STR_EQ(logged(&f, 0), "SET ss:ready 1 PX 10000");
    CHECK_STR_EQ(logged(&f, 1), "GET ss:s:" ID_A);
    const char *eval = logged(&f, 3); /* the script and the record by length */
    CHECK(strncmp(eval, "EVALSHA <sha1>", 14) == 0 &&
          strstr(eval, "> 2 ss:s:" ID_A " ss:u:alice <") != NULL &&
          strstr(eval, "> 1700000060 " ID_A " 1699999990 0 0 alice ss:s: 1700000060") != NULL);
    CHECK_EQ_INT(f.conns, 1); /* an error reply is an answer, not a broken link */
    buf_free(&rec);
    store_close(st);
    fake_stop(&f);
}

/* The create script's answers, and replies of a shape it never gives. */
static void test_create_answers(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    session_t s = mk(ID_A, "alice", NOW + 60);
    buf_t ev = BUF_INIT;
    store_op o = { .kind = STORE_OP_PUT, .s = &s, .max_per_user = 2, .evicted = &ev };
    store_op *one = &o;

    say(&f, "*1\r\n:0\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_EXISTS);
    ntold = 0;
    store_on_close(st, listen_close, NULL);
    /* refused at the cap, after dropping a dead index entry (expired) and
     * one whose session is gone before its expires_at (ended idle) */
    say(&f, "*3\r\n:2\r\n*1\r\n$31\r\n" ID_C "\r\n*1\r\n$31\r\n" ID_B "\r\n");
    o.refuse = 1;
    store_batch(st, &one, 1);
    CHECK_EQ_INT(o.rc, RC_LIMIT);
    CHECK_EQ_INT(ntold, 2);
    CHECK_STR_EQ(told[0], "2 " ID_C " alice"); /* STORE_EXPIRED: Redis dropped it, we met it */
    CHECK_STR_EQ(told[1], "3 " ID_B " alice"); /* STORE_IDLE */
    o.refuse = 0;
    ntold = 0;
    say(&f, "*5\r\n:1\r\n*0\r\n*0\r\n$31\r\n" ID_B "\r\n$31\r\n" ID_C "\r\n");
    store_batch(st, &one, 1);
    CHECK_EQ_INT(o.rc, RC_OK);
    CHECK_EQ_INT(o.count, 2);
    CHECK_EQ_INT(ntold, 2);
    CHECK_STR_EQ(told[0], "4 " ID_B " alice"); /* STORE_EVICTED */
    CHECK_STR_EQ(told[1], "4 " ID_C " alice");
    CHECK_EQ_INT(ev.len, 64);
    CHECK(ev.len == 64 && memcmp(ev.p, ID_B "\0" ID_C "\0", 64) == 0);
    /* not what the script returns: never taken for a success */
    const char *odd[] = { ":1\r\n", "*0\r\n", "*1\r\n$1\r\n1\r\n", "$-1\r\n", "+OK\r\n",
                          "*1\r\n:1\r\n", "*2\r\n:1\r\n*0\r\n", "*3\r\n:1\r\n*0\r\n:0\r\n",
                          "*3\r\n:3\r\n*0\r\n*0\r\n" };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        say(&f, odd[i]);
        CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE);
    }
    CHECK_EQ_INT(ntold, 2);
    CHECK_EQ_INT(f.conns, 1);
    buf_free(&ev);
    store_close(st);
    fake_stop(&f);
}

/* The key of a session with an idle timeout expires at its idle deadline
 * (session_end: last_seen_at + idle + slack), its index entry and the
 * index key at expires_at. */
static void test_create_expiry(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    session_t s = mk(ID_A, "alice", NOW + 3600);
    s.idle_timeout = 600; /* slack: 30 */
    say(&f, "*3\r\n:1\r\n*0\r\n*0\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    const char *eval = logged(&f, 1);
    CHECK(strstr(eval, "> 1700003600 " ID_A " 1699999990 0 0 alice ss:s: 1700000620") != NULL);
    store_close(st);
    fake_stop(&f);
}

/* A GET's answers: nil, a live record, an expired one, and bytes that are
 * no record (a 503, never a session that is quietly absent). */
static void test_get_answers(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    buf_t rec = BUF_INIT;
    session_t s;
    say(&f, "$-1\r\n");
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_NOT_FOUND);
    say_record(&f, ID_A, "alice", NOW + 60);
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_OK);
    CHECK(record_decode(rec.p, rec.len, &s) == RC_OK && strcmp(s.id, ID_A) == 0 &&
          str_eq_cstr(s.user_id, "alice"));
    say_record(&f, ID_A, "alice", NOW);
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_NOT_FOUND);
    say(&f, "$3\r\nabc\r\n");
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_UNAVAILABLE);
    buf_free(&rec);
    store_close(st);
    fake_stop(&f);
}

/* One operation's error reply stays with that operation: the others of the
 * same pipeline get their own answers. */
static void test_batch_error_stays_with_its_op(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    buf_t ra = BUF_INIT, rb = BUF_INIT;
    session_t s = mk(ID_C, "carol", NOW + 60);
    store_op a = { .kind = STORE_OP_GET, .id = ID_A, .now = NOW, .rec = &ra };
    store_op b = { .kind = STORE_OP_GET, .id = ID_B, .now = NOW, .rec = &rb };
    store_op c = { .kind = STORE_OP_PUT, .s = &s, .now = NOW };
    store_op *ops[] = { &a, &b, &c };
    say(&f, "-ERR only this one\r\n");
    say_record(&f, ID_B, "bob", NOW + 60);
    say(&f, "*3\r\n:1\r\n*0\r\n*0\r\n");
    store_batch(st, ops, 3);
    CHECK_EQ_INT(a.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(b.rc, RC_OK);
    CHECK_EQ_INT(c.rc, RC_OK);
    CHECK_EQ_INT(nlogged(&f), 4); /* the readiness write, then one round of three */
    buf_free(&ra);
    buf_free(&rb);
    store_close(st);
    fake_stop(&f);
}

/* A close reads the record, checks its owner, then deletes: a session of
 * another user is never deleted; a DEL that finds nothing lost the race. */
static void test_close_rounds(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    say_record(&f, ID_A, "alice", NOW + 60);
    say(&f, ":1\r\n");
    say(&f, ":1\r\n");
    ntold = 0;
    store_on_close(st, listen_close, NULL);
    CHECK_EQ_INT(store_del(st, ID_A, STR_LIT("alice"), NOW), RC_OK);
    CHECK_EQ_INT(ntold, 1);
    CHECK_STR_EQ(told[0], "0 " ID_A " alice"); /* STORE_CLOSED, told once the DEL removed it */
    /* the index entry goes first: whoever then finds the key gone finds
     * the entry gone too (a close is never taken for an idle end) */
    CHECK_STR_EQ(logged(&f, 2), "ZREM ss:u:alice " ID_A);
    CHECK_STR_EQ(logged(&f, 3), "DEL ss:s:" ID_A);

    say_record(&f, ID_A, "bob", NOW + 60);
    CHECK_EQ_INT(store_del(st, ID_A, STR_LIT("alice"), NOW), RC_NOT_FOUND);
    CHECK_EQ_INT(nlogged(&f), 5); /* the GET only */

    say_record(&f, ID_A, "alice", NOW + 60);
    say(&f, ":0\r\n");
    say(&f, ":0\r\n");
    CHECK_EQ_INT(store_del(st, ID_A, STR_LIT("alice"), NOW), RC_NOT_FOUND);
    /* the DEL decides, not the ZREM */
    say_record(&f, ID_A, "alice", NOW + 60);
    say(&f, ":1\r\n");
    say(&f, ":0\r\n");
    CHECK_EQ_INT(store_del(st, ID_A, STR_LIT("alice"), NOW), RC_NOT_FOUND);

    say_record(&f, ID_A, "alice", NOW + 60);
    say(&f, "-READONLY You can't write against a read only replica.\r\n");
    say(&f, "-READONLY You can't write against a read only replica.\r\n");
    CHECK_EQ_INT(store_del(st, ID_A, STR_LIT("alice"), NOW), RC_UNAVAILABLE);

    /* the link breaks between the two rounds */
    say_record(&f, ID_A, "alice", NOW + 60);
    say_close(&f);
    CHECK_EQ_INT(store_del(st, ID_A, STR_LIT("alice"), NOW), RC_UNAVAILABLE);
    CHECK_EQ_INT(ntold, 1); /* a close that lost the race, failed or was refused: not told */
    store_close(st);
    fake_stop(&f);
}

/* A close tells the reason its operation carries (a token reuse closes a
 * session for theft), once its DEL removed the session. */
static void test_close_tells_why(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    ntold = 0;
    store_on_close(st, listen_close, NULL);
    store_op o = { .kind = STORE_OP_DEL, .id = ID_A, .user = STR_LIT("alice"), .now = NOW,
                   .why = STORE_TOKEN_REUSE };
    store_op *one = &o;
    say_record(&f, ID_A, "alice", NOW + 60);
    say(&f, ":1\r\n");
    say(&f, ":1\r\n");
    store_batch(st, &one, 1);
    CHECK_EQ_INT(o.rc, RC_OK);
    CHECK_EQ_INT(ntold, 1);
    CHECK_STR_EQ(told[0], "5 " ID_A " alice"); /* STORE_TOKEN_REUSE */
    store_close(st);
    fake_stop(&f);
}

/* A use: the TOUCH script with last_seen_at as the record holds it (8
 * bytes, little-endian) and the key's new expiry, session_end of the
 * session with last_seen_at = now ("0": kept); its answers 1, 0 and errors.
 * The background touches send the same script, all in one round trip. */
static void test_touch_answers(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    session_t s = mk(ID_A, "alice", NOW + 3600);
    s.idle_timeout = 300; /* slack: 15 */
    store_op a = { .kind = STORE_OP_TOUCH, .id = ID_A, .now = NOW, .s = &s };
    store_op b = { .kind = STORE_OP_TOUCH, .id = ID_B, .now = NOW };
    store_op c = { .kind = STORE_OP_TOUCH, .id = ID_C, .now = NOW, .s = &s };
    store_op *ops[] = { &a, &b, &c };
    say(&f, ":1\r\n");
    say(&f, ":0\r\n");
    say(&f, "-READONLY You can't write against a read only replica.\r\n");
    store_batch(st, ops, 3);
    CHECK_EQ_INT(a.rc, RC_OK);
    CHECK_EQ_INT(b.rc, RC_NOT_FOUND);
    CHECK_EQ_INT(c.rc, RC_UNAVAILABLE);
    /* NOW = 0x6553f100 */
    const char *t = logged(&f, 1);
    CHECK(strncmp(t, "EVALSHA <sha1>", 14) == 0 &&
          strstr(t, "> 1 ss:s:" ID_A " x00f1536500000000 1700000315") != NULL);
    CHECK(strstr(logged(&f, 2), "> 1 ss:s:" ID_B " x00f1536500000000 0") != NULL);
    CHECK_EQ_INT(nlogged(&f), 4); /* one round */
    /* the script never answers otherwise: not a success */
    say(&f, "+OK\r\n");
    say(&f, ":2\r\n");
    store_op *two[] = { &a, &b };
    store_batch(st, two, 2);
    CHECK_EQ_INT(a.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(b.rc, RC_UNAVAILABLE);

    /* background touches: gone sessions are skipped; an error fails the flush */
    const char ids[2][SESSION_ID_MAX + 1] = { ID_A, ID_B };
    say(&f, ":1\r\n");
    say(&f, ":0\r\n");
    CHECK_EQ_INT(store_touch_many(st, ids, 2, NOW + 1, NOW + 1), RC_OK);
    CHECK(strstr(logged(&f, 6), "> 1 ss:s:" ID_A " x01f1536500000000 0") != NULL);
    CHECK(strstr(logged(&f, 7), "> 1 ss:s:" ID_B " x01f1536500000000 0") != NULL);
    say(&f, "-READONLY You can't write against a read only replica.\r\n");
    say(&f, ":1\r\n");
    CHECK_EQ_INT(store_touch_many(st, ids, 2, NOW + 1, NOW + 1), RC_UNAVAILABLE);
    CHECK_EQ_INT(nlogged(&f), 10);
    CHECK_EQ_INT(f.conns, 1);
    store_close(st);
    fake_stop(&f);
}

/* A rotation: the SWAP script with the record expected, the new one and
 * the key's expiry (session_end of the new one); its answers: 1 swapped, 0
 * gone, another live record (RC_EXISTS, and that record in rec), another
 * record no longer live, and errors. */
static void test_swap_answers(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    session_t old = mk(ID_A, "alice", NOW + 3600), now = old;
    now.gen = 1;
    now.rotated_at = NOW;
    now.idle_timeout = 60; /* slack: 3; last_seen_at NOW - 10 */
    buf_t rec = BUF_INIT, other = BUF_INIT;
    record_encode(&old, &rec);
    size_t oldlen = rec.len;
    store_op o = { .kind = STORE_OP_SWAP, .id = ID_A, .now = NOW, .s = &now, .rec = &rec };
    store_op *one = &o;
    say(&f, ":1\r\n");
    store_batch(st, &one, 1);
    CHECK_EQ_INT(o.rc, RC_OK);
    char want[80];
    snprintf(want, sizeof want, "> 1 ss:s:" ID_A " <%zu> <%zu> 1700000053", oldlen, oldlen);
    CHECK(strncmp(logged(&f, 1), "EVALSHA <sha1>", 14) == 0 && strstr(logged(&f, 1), want) != NULL);
    say(&f, ":0\r\n");
    store_batch(st, &one, 1);
    CHECK_EQ_INT(o.rc, RC_NOT_FOUND);
    /* someone else's rotation came first: the record found is handed back */
    session_t theirs = old;
    theirs.gen = 1;
    theirs.ip = STR_LIT("198.51.100.9");
    record_encode(&theirs, &other);
    say_bulk(&f, other.p, other.len);
    store_batch(st, &one, 1);
    CHECK_EQ_INT(o.rc, RC_EXISTS);
    CHECK(rec.len == other.len && memcmp(rec.p, other.p, other.len) == 0);
    /* ... unless it is no longer live */
    say_record(&f, ID_A, "alice", NOW);
    store_batch(st, &one, 1);
    CHECK_EQ_INT(o.rc, RC_NOT_FOUND);
    const char *odd[] = { "-BUSY Redis is busy running a script.\r\n", "+OK\r\n", ":2\r\n",
                          "$3\r\nabc\r\n" };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        say(&f, odd[i]);
        store_batch(st, &one, 1);
        CHECK_EQ_INT(o.rc, RC_UNAVAILABLE);
    }
    /* no record expected: nothing is sent */
    o.rec = NULL;
    store_batch(st, &one, 1);
    CHECK_EQ_INT(o.rc, RC_INVALID);
    CHECK_EQ_INT(nlogged(&f), 9);
    buf_free(&rec);
    buf_free(&other);
    store_close(st);
    fake_stop(&f);
}

static int collect(const session_t *s, void *arg)
{
    char *ids = arg;
    strcat(ids, s->id);
    strcat(ids, " ");
    return 0;
}

/* A user's index read WITHSCORES: an entry whose key is gone while its
 * score (expires_at) is ahead ended idle -- told as such by whoever ZREMs
 * it --, one whose score has passed expired (prune's). */
static void test_list_tells_idle_ends(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    ntold = 0;
    store_on_close(st, listen_close, NULL);
    char ids[256] = "";
    say(&f, "*6\r\n$31\r\n" ID_A "\r\n$10\r\n1700000060\r\n$31\r\n" ID_B
            "\r\n$10\r\n1700000060\r\n$31\r\n" ID_C "\r\n$10\r\n1699999990\r\n");
    say_record(&f, ID_A, "alice", NOW + 60);
    say(&f, "$-1\r\n");
    say(&f, "$-1\r\n");
    say(&f, ":1\r\n");                         /* ZREM of B */
    say(&f, "*1\r\n$31\r\n" ID_C "\r\n");      /* prune */
    say(&f, ":1\r\n");
    CHECK_EQ_INT(store_list(st, STR_LIT("alice"), NOW, collect, ids), RC_OK);
    CHECK_STR_EQ(ids, ID_A " ");
    CHECK_STR_EQ(logged(&f, 1), "ZRANGE ss:u:alice 0 -1 WITHSCORES");
    CHECK_STR_EQ(logged(&f, 5), "ZREM ss:u:alice " ID_B);
    CHECK_EQ_INT(ntold, 2);
    CHECK_STR_EQ(told[0], "3 " ID_B " alice"); /* STORE_IDLE */
    CHECK_STR_EQ(told[1], "2 " ID_C " alice"); /* STORE_EXPIRED */
    /* another process removed the entry first: it told, not this one */
    say(&f, "*2\r\n$31\r\n" ID_B "\r\n$10\r\n1700000060\r\n");
    say(&f, "$-1\r\n");
    say(&f, ":0\r\n");
    say(&f, "*0\r\n");
    ids[0] = '\0';
    CHECK_EQ_INT(store_list(st, STR_LIT("alice"), NOW, collect, ids), RC_OK);
    CHECK_STR_EQ(ids, "");
    CHECK_EQ_INT(ntold, 2);
    /* not an index read WITHSCORES gives: a 503, never a short list */
    say(&f, "*1\r\n$31\r\n" ID_B "\r\n");
    CHECK_EQ_INT(store_list(st, STR_LIT("alice"), NOW, collect, ids), RC_UNAVAILABLE);
    store_close(st);
    fake_stop(&f);
}

/* Close-all: the idle ends it meets are told, the index entries of the
 * sessions it closes go before their DELs, the expired ones are pruned. */
static void test_close_all_rounds(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    ntold = 0;
    store_on_close(st, listen_close, NULL);
    size_t count = 0;
    say(&f, "*6\r\n$31\r\n" ID_A "\r\n$10\r\n1700000060\r\n$31\r\n" ID_B
            "\r\n$10\r\n1700000060\r\n$31\r\n" ID_C "\r\n$10\r\n1699999990\r\n");
    say_record(&f, ID_A, "alice", NOW + 60);
    say(&f, "$-1\r\n");
    say(&f, "$-1\r\n");
    say(&f, ":1\r\n");                         /* ZREM of B: ended idle */
    say(&f, ":1\r\n");                         /* ZREM of A */
    say(&f, ":1\r\n");                         /* DEL of A */
    say(&f, "*1\r\n$31\r\n" ID_C "\r\n");      /* prune */
    say(&f, ":1\r\n");
    CHECK_EQ_INT(store_del_user(st, STR_LIT("alice"), NULL, NOW, &count), RC_OK);
    CHECK_EQ_INT(count, 1);
    CHECK_STR_EQ(logged(&f, 5), "ZREM ss:u:alice " ID_B);
    CHECK_STR_EQ(logged(&f, 6), "ZREM ss:u:alice " ID_A);
    CHECK_STR_EQ(logged(&f, 7), "DEL ss:s:" ID_A);
    CHECK_EQ_INT(ntold, 3);
    CHECK_STR_EQ(told[0], "3 " ID_B " alice"); /* STORE_IDLE */
    CHECK_STR_EQ(told[1], "1 " ID_A " alice"); /* STORE_CLOSED_ALL */
    CHECK_STR_EQ(told[2], "2 " ID_C " alice"); /* STORE_EXPIRED */
    /* the ZREM and the DELs share a round trip: a refusal fails the close-all */
    say(&f, "*4\r\n$31\r\n" ID_A "\r\n$10\r\n1700000060\r\n$31\r\n" ID_B
            "\r\n$10\r\n1700000060\r\n");
    say_record(&f, ID_A, "alice", NOW + 60);
    say_record(&f, ID_B, "alice", NOW + 60);
    say(&f, "-READONLY You can't write against a read only replica.\r\n");
    say(&f, "-READONLY You can't write against a read only replica.\r\n");
    say(&f, "-READONLY You can't write against a read only replica.\r\n");
    ntold = 0;
    CHECK_EQ_INT(store_del_user(st, STR_LIT("alice"), NULL, NOW, &count), RC_UNAVAILABLE);
    CHECK_EQ_INT(count, 0);
    CHECK_EQ_INT(ntold, 0);
    CHECK_STR_EQ(logged(&f, 13), "ZREM ss:u:alice " ID_A " " ID_B);
    CHECK_STR_EQ(logged(&f, 14), "DEL ss:s:" ID_A);
    CHECK_STR_EQ(logged(&f, 15), "DEL ss:s:" ID_B);
    CHECK_EQ_INT(nlogged(&f), 16);
    store_close(st);
    fake_stop(&f);
}

/* The connection closes after the first answer of a pipeline: every
 * operation of that round fails (503), the store waits out its back-off,
 * then connects again and works. */
static void test_pipeline_cut_by_close(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    buf_t r[3] = { BUF_INIT, BUF_INIT, BUF_INIT };
    store_op o[3];
    store_op *ops[3];
    const char *ids[3] = { ID_A, ID_B, ID_C };
    for (int i = 0; i < 3; i++) {
        o[i] = (store_op){ .kind = STORE_OP_GET, .id = ids[i], .now = NOW, .rec = &r[i] };
        ops[i] = &o[i];
    }
    say_record(&f, ID_A, "alice", NOW + 60);
    say_close(&f);
    store_batch(st, ops, 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(o[i].rc, RC_UNAVAILABLE);
    /* within the back-off: no new connection is tried */
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &r[0]), RC_UNAVAILABLE);
    CHECK_EQ_INT(nlogged(&f), 3);
    usleep(BACKOFF_US);
    say_record(&f, ID_A, "alice", NOW + 60);
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &r[0]), RC_OK);
    CHECK_EQ_INT(f.conns, 2);
    for (int i = 0; i < 3; i++)
        buf_free(&r[i]);
    store_close(st);
    fake_stop(&f);
}

/* The server answers the first command of a pipeline and then nothing: the
 * batch ends with 503s after REDIS_TIMEOUT_MS (300 ms here), not never. */
static void test_pipeline_cut_by_stall(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    buf_t ra = BUF_INIT, rb = BUF_INIT;
    session_t s = mk(ID_C, "carol", NOW + 60);
    store_op a = { .kind = STORE_OP_GET, .id = ID_A, .now = NOW, .rec = &ra };
    store_op c = { .kind = STORE_OP_PUT, .s = &s, .now = NOW };
    store_op *ops[] = { &a, &c };
    say_record(&f, ID_A, "alice", NOW + 60);
    say_stall(&f);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    store_batch(st, ops, 2);
    double took = ms_since(&t0);
    CHECK_EQ_INT(a.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(c.rc, RC_UNAVAILABLE);
    CHECK(took >= 250 && took < 5000); /* waited for the timeout, and no more than a hang bound */
    usleep(BACKOFF_US);
    say_record(&f, ID_A, "alice", NOW + 60);
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &ra), RC_OK);
    CHECK_EQ_INT(f.conns, 2);
    buf_free(&ra);
    buf_free(&rb);
    store_close(st);
    fake_stop(&f);
}

/* A refused AUTH: the store opens (Redis may be fixed later) but sends
 * nothing on an unauthenticated connection, and says 503. */
static void test_auth_refused(void)
{
    fake f;
    fake_start(&f);
    say(&f, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    store_t *st = open_on(&f, "app:s3cret@", 0);
    buf_t rec = BUF_INIT;
    usleep(BACKOFF_US);
    say(&f, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_UNAVAILABLE);
    usleep(BACKOFF_US);
    say(&f, "+OK\r\n");
    say_record(&f, ID_A, "alice", NOW + 60);
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_OK);
    CHECK_EQ_INT(nlogged(&f), 4);
    CHECK_STR_EQ(logged(&f, 0), "AUTH app s3cret");
    CHECK_STR_EQ(logged(&f, 1), "AUTH app s3cret");
    CHECK_STR_EQ(logged(&f, 2), "AUTH app s3cret");
    CHECK_STR_EQ(logged(&f, 3), "GET ss:s:" ID_A);
    buf_free(&rec);
    store_close(st);
    fake_stop(&f);
}

/* ---- REDIS_WAIT_REPLICAS ---- */

static store_t *open_url(const char *url, const store_options *opt)
{
    char err[256] = "";
    store_t *st = NULL;
    if (store_open(url, opt, &st, err, sizeof err) != RC_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        exit(2);
    }
    return st;
}

#define CREATED "*3\r\n:1\r\n*0\r\n*0\r\n" /* the create script: done, nothing else closed */

/* One WAIT per batch that wrote, after its last write (in the same
 * pipeline); reads send none. Fewer acknowledgements than asked, or an
 * error reply to WAIT: the writes of the batch are 503s, its reads stand. */
static void test_wait_after_writes(void)
{
    fake f;
    fake_start(&f);
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", f.port);
    store_options opt = { .timeout_ms = 300, .wait_replicas = 2, .wait_timeout_ms = 50 };
    say(&f, "+OK\r\n"); /* open's readiness write: no WAIT at open */
    store_t *st = open_url(url, &opt);
    session_t s = mk(ID_A, "alice", NOW + 60);
    buf_t rec = BUF_INIT;

    say(&f, CREATED);
    say(&f, ":2\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    CHECK(strncmp(logged(&f, 1), "EVALSHA <sha1>", 14) == 0);
    CHECK_STR_EQ(logged(&f, 2), "WAIT 2 50");
    say(&f, CREATED);
    say(&f, ":1\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE); /* one replica of two */
    /* a WAIT came short: from now on it follows writes that succeeded, in
     * a round of its own, so that a write Redis refuses (NOREPLICAS, with
     * min-replicas-to-write) is answered at once, without a WAIT */
    int before = nlogged(&f);
    say(&f, "-NOREPLICAS Not enough good replicas to write.\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE);
    CHECK_EQ_INT(nlogged(&f), before + 1);
    say(&f, "*1\r\n:0\r\n"); /* id taken: nothing written, nothing to wait for */
    CHECK_EQ_INT(store_put(st, &s), RC_EXISTS);
    CHECK_EQ_INT(nlogged(&f), before + 2);
    say(&f, CREATED);
    say(&f, "-ERR WAIT cannot be used with replica instances.\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE);
    CHECK_STR_EQ(logged(&f, before + 3), "WAIT 2 50");
    say(&f, CREATED);
    say(&f, ":2\r\n"); /* met again: the WAIT rides in the pipeline again */
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    say(&f, "*1\r\n:0\r\n"); /* id taken, but the batch had a write command: its WAIT is sent */
    say(&f, ":2\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_EXISTS);
    CHECK_STR_EQ(logged(&f, before + 7), "WAIT 2 50");
    before = nlogged(&f);
    say_record(&f, ID_A, "alice", NOW + 60);
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_OK);
    CHECK_EQ_INT(nlogged(&f), before + 1); /* a read: no WAIT */

    /* a close: GET, then ZREM, DEL and the WAIT in the second round */
    say_record(&f, ID_A, "alice", NOW + 60);
    say(&f, ":1\r\n");
    say(&f, ":1\r\n");
    say(&f, ":3\r\n");
    CHECK_EQ_INT(store_del(st, ID_A, STR_LIT("alice"), NOW), RC_OK);
    CHECK_STR_EQ(logged(&f, before + 1), "GET ss:s:" ID_A);
    CHECK_STR_EQ(logged(&f, before + 2), "ZREM ss:u:alice " ID_A);
    CHECK_STR_EQ(logged(&f, before + 3), "DEL ss:s:" ID_A);
    CHECK_STR_EQ(logged(&f, before + 4), "WAIT 2 50");
    say_record(&f, ID_A, "alice", NOW + 60);
    say(&f, ":1\r\n");
    say(&f, ":1\r\n");
    say(&f, ":0\r\n");
    CHECK_EQ_INT(store_del(st, ID_A, STR_LIT("alice"), NOW), RC_UNAVAILABLE);
    say(&f, "+OK\r\n"); /* readiness: the write, then (short before) its own WAIT */
    say(&f, ":2\r\n");
    CHECK_EQ_INT(store_ping(st), RC_OK);

    /* a create and a read and a close refused by its owner check in one
     * batch: round 1 is the script and the GETs, round 2 the WAIT alone;
     * the create is a 503, the read stands */
    session_t s2 = mk(ID_B, "bob", NOW + 60);
    buf_t r1 = BUF_INIT, r2 = BUF_INIT;
    store_op put = { .kind = STORE_OP_PUT, .s = &s2, .now = NOW };
    store_op get = { .kind = STORE_OP_GET, .id = ID_C, .now = NOW, .rec = &r1 };
    store_op del = { .kind = STORE_OP_DEL, .id = ID_A, .user = STR_LIT("alice"), .now = NOW };
    store_op *ops[] = { &put, &get, &del };
    say(&f, CREATED);
    say_record(&f, ID_C, "carol", NOW + 60);
    say_record(&f, ID_A, "mallory", NOW + 60);
    say(&f, ":1\r\n");
    before = nlogged(&f);
    store_batch(st, ops, 3);
    CHECK_EQ_INT(put.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(get.rc, RC_OK);
    CHECK_EQ_INT(del.rc, RC_NOT_FOUND);
    CHECK_EQ_INT(nlogged(&f), before + 4);
    CHECK_STR_EQ(logged(&f, before + 3), "WAIT 2 50");

    /* readiness: the write and its WAIT */
    say(&f, "+OK\r\n");
    say(&f, ":2\r\n");
    CHECK_EQ_INT(store_ping(st), RC_OK);
    say(&f, "+OK\r\n");
    say(&f, ":0\r\n");
    CHECK_EQ_INT(store_ping(st), RC_UNAVAILABLE);
    CHECK_EQ_INT(f.conns, 1); /* too few replicas is an answer, not a broken link */
    buf_free(&rec);
    buf_free(&r1);
    buf_free(&r2);
    store_close(st);
    fake_stop(&f);
}

#define NOSCRIPT "-NOSCRIPT No matching script. Please use EVAL.\r\n"

/* A Redis without the script (a primary new since a failover, a node that
 * never ran it, SCRIPT FLUSH) answers EVALSHA with NOSCRIPT and runs
 * nothing: the command goes again whole, as EVAL, with the same arguments,
 * and its answer is the operation's; only the commands answered NOSCRIPT
 * go again, and a WAIT that ended the pipeline goes again after them. */
static void test_noscript_sent_again(void)
{
    fake f;
    fake_start(&f);
    store_t *st = open_on(&f, "", 1);
    session_t s = mk(ID_A, "alice", NOW + 60);
    int at = nlogged(&f);
    say(&f, NOSCRIPT);
    say(&f, CREATED);
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    CHECK_EQ_INT(nlogged(&f), at + 2);
    const char *sha = logged(&f, (size_t)at), *whole = logged(&f, (size_t)at + 1);
    static const char head[] = "EVALSHA <sha1> 2 ss:s:" ID_A " ss:u:alice <";
    CHECK(strncmp(sha, head, sizeof head - 1) == 0);
    CHECK(strncmp(whole, "EVAL <", 6) == 0 &&
          strcmp(strchr(sha + 8, ' '), strchr(whole + 5, ' ')) == 0);
    /* sent by hash again next time: the EVAL cached it */
    say(&f, CREATED);
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    CHECK(strncmp(logged(&f, (size_t)at + 2), "EVALSHA <sha1> ", 15) == 0);
    /* NOSCRIPT to the EVAL too is an error like any other: no loop */
    say(&f, NOSCRIPT);
    say(&f, NOSCRIPT);
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE);
    CHECK_EQ_INT(nlogged(&f), at + 5);
    /* a batch: the GET's answer stays, the create alone goes again */
    buf_t rec = BUF_INIT;
    store_op o[2] = { { .kind = STORE_OP_GET, .id = ID_B, .now = NOW, .rec = &rec },
                      { .kind = STORE_OP_PUT, .s = &s } };
    store_op *ops[2] = { &o[0], &o[1] };
    say_record(&f, ID_B, "bob", NOW + 60);
    say(&f, NOSCRIPT);
    say(&f, CREATED);
    store_batch(st, ops, 2);
    CHECK_EQ_INT(o[0].rc, RC_OK);
    CHECK_EQ_INT(o[1].rc, RC_OK);
    CHECK_EQ_INT(nlogged(&f), at + 8);
    CHECK_STR_EQ(logged(&f, (size_t)at + 5), "GET ss:s:" ID_B);
    CHECK(strncmp(logged(&f, (size_t)at + 7), "EVAL <", 6) == 0);
    /* the second round trip cut short: unavailable, as any cut pipeline */
    say(&f, NOSCRIPT);
    say_close(&f);
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE);
    CHECK_EQ_INT(f.conns, 1);
    buf_free(&rec);
    store_close(st);
    fake_stop(&f);

    /* with REDIS_WAIT_REPLICAS: the WAIT goes again after the EVAL, and
     * its second answer is the one judged */
    fake_start(&f);
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", f.port);
    store_options opt = { .timeout_ms = 300, .wait_replicas = 1, .wait_timeout_ms = 50 };
    say(&f, "+OK\r\n");
    st = open_url(url, &opt);
    at = nlogged(&f);
    say(&f, NOSCRIPT);
    say(&f, ":1\r\n");
    say(&f, CREATED);
    say(&f, ":0\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE); /* the WAIT after the EVAL came short */
    CHECK_EQ_INT(nlogged(&f), at + 4);
    CHECK(strncmp(logged(&f, (size_t)at), "EVALSHA <sha1> ", 15) == 0);
    CHECK_STR_EQ(logged(&f, (size_t)at + 1), "WAIT 1 50");
    CHECK(strncmp(logged(&f, (size_t)at + 2), "EVAL <", 6) == 0);
    CHECK_STR_EQ(logged(&f, (size_t)at + 3), "WAIT 1 50");
    /* the first WAIT short, the second not: the worse stands (on a cluster
     * the second covers only the nodes of the writes sent again) */
    store_close(st);
    fake_stop(&f);
    fake_start(&f);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", f.port);
    say(&f, "+OK\r\n");
    st = open_url(url, &opt);
    say(&f, NOSCRIPT); /* both enough: done */
    say(&f, ":1\r\n");
    say(&f, CREATED);
    say(&f, ":1\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    say(&f, NOSCRIPT);
    say(&f, ":0\r\n");
    say(&f, CREATED);
    say(&f, ":1\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE);
    store_close(st);
    fake_stop(&f);
}

/* WAIT's own timeout may be longer than REDIS_TIMEOUT_MS: the round that
 * holds it waits that much longer, not less. */
static void test_wait_longer_than_timeout(void)
{
    fake f;
    fake_start(&f);
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", f.port);
    store_options opt = { .timeout_ms = 100, .wait_replicas = 1, .wait_timeout_ms = 2000 };
    say(&f, "+OK\r\n");
    store_t *st = open_url(url, &opt);
    session_t s = mk(ID_A, "alice", NOW + 60);
    say(&f, CREATED);
    say_stall(&f); /* WAIT blocks: the fake never answers it */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE);
    double took = ms_since(&t0);
    CHECK(took >= 1900 && took < 5000);
    store_close(st);
    fake_stop(&f);
}

/* ---- redis-sentinel:// against fake Sentinels and data nodes ---- */

/* A Sentinel's answer naming 127.0.0.1:port. */
static void say_primary(fake *sen, int port)
{
    char r[96], p[8];
    int n = snprintf(p, sizeof p, "%d", port);
    snprintf(r, sizeof r, "*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n", n, p);
    say(sen, r);
}

#define ROLE_MASTER "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"
#define ROLE_REPLICA "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:0\r\n"

static store_t *open_sentinel(const char *userinfo, const char *sentinels, const char *tail,
                              const char *sentinel_password)
{
    char url[256];
    snprintf(url, sizeof url, "redis-sentinel://%s%s/mymaster%s", userinfo, sentinels, tail);
    store_options opt = { .timeout_ms = 300, .sentinel_password = sentinel_password };
    return open_url(url, &opt);
}

/* The Sentinel is asked (with its own password), the primary it names
 * answers ROLE master before anything else is sent (after AUTH with the
 * URL's credentials), then SELECT and the commands. */
static void test_sentinel_discovery(void)
{
    fake sen, d;
    fake_start(&sen);
    fake_start(&d);
    say(&sen, "+OK\r\n");
    say_primary(&sen, d.port);
    say(&d, "+OK\r\n");
    say(&d, ROLE_MASTER);
    say(&d, "+OK\r\n");
    say(&d, "+OK\r\n");
    char hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", sen.port);
    store_t *st = open_sentinel("app:data-pw@", hosts, "/3", "sentinel-pw");
    CHECK_STR_EQ(store_scheme(st), "redis-sentinel");
    CHECK_STR_EQ(logged(&sen, 0), "AUTH sentinel-pw");
    CHECK_STR_EQ(logged(&sen, 1), "SENTINEL get-master-addr-by-name mymaster");
    CHECK_STR_EQ(logged(&d, 0), "AUTH app data-pw");
    CHECK_STR_EQ(logged(&d, 1), "ROLE");
    CHECK_STR_EQ(logged(&d, 2), "SELECT 3");
    CHECK_STR_EQ(logged(&d, 3), "SET ss:ready 1 PX 10000");
    buf_t rec = BUF_INIT;
    say_record(&d, ID_A, "alice", NOW + 60);
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_OK);
    CHECK_EQ_INT(sen.conns, 1);
    CHECK_EQ_INT(d.conns, 1);
    buf_free(&rec);
    store_close(st);
    fake_stop(&sen);
    fake_stop(&d);
}

/* A node named as the primary that answers ROLE slave gets nothing else;
 * after the back-off the Sentinels are asked again (never the same node
 * retried on its own), and the next primary they name serves. */
static void test_sentinel_names_a_replica(void)
{
    fake sen, d, d2;
    fake_start(&sen);
    fake_start(&d);
    fake_start(&d2);
    say_primary(&sen, d.port);
    say(&d, ROLE_REPLICA);
    char hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", sen.port);
    store_t *st = open_sentinel("", hosts, "", NULL);
    buf_t rec = BUF_INIT;
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_UNAVAILABLE); /* within the back-off */
    CHECK_EQ_INT(nlogged(&sen), 1);
    CHECK_EQ_INT(nlogged(&d), 1);
    CHECK_STR_EQ(logged(&d, 0), "ROLE");
    usleep(BACKOFF_US);
    say_primary(&sen, d2.port);
    say(&d2, ROLE_MASTER);
    say_record(&d2, ID_A, "alice", NOW + 60);
    CHECK_EQ_INT(store_get(st, ID_A, NOW, &rec), RC_OK);
    CHECK_EQ_INT(nlogged(&sen), 2);
    CHECK_STR_EQ(logged(&d2, 0), "ROLE");
    CHECK_STR_EQ(logged(&d2, 1), "GET ss:s:" ID_A);
    CHECK_EQ_INT(nlogged(&d), 1); /* the replica was never written to */
    buf_free(&rec);
    store_close(st);
    fake_stop(&sen);
    fake_stop(&d);
    fake_stop(&d2);
}

/* READONLY (the primary was demoted): that request is a 503, the
 * connection is dropped, and the next connect asks the Sentinels; so does
 * a connection the other side closed, even when the same node is named
 * again. The first Sentinel of the list is down: the second answers. */
static void test_sentinel_failover(void)
{
    fake sen, d, d2;
    fake_start(&sen);
    fake_start(&d);
    fake_start(&d2);
    say_primary(&sen, d.port);
    say(&d, ROLE_MASTER);
    say(&d, "+OK\r\n");
    char hosts[96];
    snprintf(hosts, sizeof hosts, "127.0.0.1:1,127.0.0.1:%d", sen.port); /* port 1: refused */
    store_t *st = open_sentinel("", hosts, "", NULL);
    session_t s = mk(ID_A, "alice", NOW + 60);
    say(&d, "-READONLY You can't write against a read only replica.\r\n");
    CHECK_EQ_INT(store_put(st, &s), RC_UNAVAILABLE);
    usleep(BACKOFF_US);
    say_primary(&sen, d2.port);
    say(&d2, ROLE_MASTER);
    say(&d2, CREATED);
    CHECK_EQ_INT(store_put(st, &s), RC_OK);
    CHECK_EQ_INT(nlogged(&sen), 2);
    CHECK_EQ_INT(nlogged(&d), 3); /* ROLE, SET ss:ready, the refused EVALSHA: nothing after */
    /* d2 closes the connection (a failover's CLIENT KILL): asked again */
    say(&d2, "+OK\r\n");
    CHECK_EQ_INT(store_ping(st), RC_OK);
    say_close(&d2);
    CHECK_EQ_INT(store_ping(st), RC_UNAVAILABLE);
    usleep(BACKOFF_US);
    say_primary(&sen, d2.port);
    say(&d2, ROLE_MASTER);
    say(&d2, "+OK\r\n");
    CHECK_EQ_INT(store_ping(st), RC_OK);
    CHECK_EQ_INT(nlogged(&sen), 3);
    CHECK_EQ_INT(d2.conns, 2);
    store_close(st);
    fake_stop(&sen);
    fake_stop(&d);
    fake_stop(&d2);
}

/* A Sentinel that knows no such master, or refuses AUTH: 503s, never a
 * guess; a bad ROLE answer likewise. */
static void test_sentinel_refusals(void)
{
    fake sen, d;
    fake_start(&sen);
    fake_start(&d);
    say(&sen, "$-1\r\n");
    char hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", sen.port);
    store_t *st = open_sentinel("", hosts, "", NULL);
    CHECK_EQ_INT(nlogged(&d), 0);
    usleep(BACKOFF_US);
    say(&sen, "-NOAUTH Authentication required.\r\n");
    CHECK_EQ_INT(store_ping(st), RC_UNAVAILABLE);
    usleep(BACKOFF_US);
    say(&sen, "*2\r\n$9\r\n127.0.0.1\r\n$1\r\n0\r\n");
    CHECK_EQ_INT(store_ping(st), RC_UNAVAILABLE);
    usleep(BACKOFF_US);
    say_primary(&sen, d.port);
    say(&d, "-ERR unknown command 'ROLE'\r\n");
    CHECK_EQ_INT(store_ping(st), RC_UNAVAILABLE);
    CHECK_EQ_INT(nlogged(&d), 1);
    usleep(BACKOFF_US);
    say_primary(&sen, d.port);
    say(&d, ROLE_MASTER);
    say(&d, "+OK\r\n");
    CHECK_EQ_INT(store_ping(st), RC_OK);
    CHECK_EQ_INT(nlogged(&sen), 5);
    store_close(st);
    fake_stop(&sen);
    fake_stop(&d);
}

/* ---- redis-cluster:// against fake nodes ---- */

/* A range of slots, its primary and (may be NULL) a replica, which is
 * named in the map and must never be sent anything. */
typedef struct srange {
    int lo, hi;
    const fake *primary, *replica;
} srange;

static size_t node_resp(char *out, size_t cap, int port)
{
    /* the id: 40 hex digits, one per address */
    int n = snprintf(out, cap, "*3\r\n$9\r\n127.0.0.1\r\n:%d\r\n$40\r\n%040d\r\n", port, port);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* f answers CLUSTER SLOTS, whenever asked, with these ranges (empty ones
 * left out): [start, end, [host, port, id], replica...] each, as Redis 7
 * gives them (metadata omitted, as before 7). */
static void set_slots(fake *f, const srange *r, size_t n)
{
    char buf[4096];
    size_t used, k = 0;
    for (size_t i = 0; i < n; i++)
        k += r[i].lo <= r[i].hi;
    used = (size_t)snprintf(buf, sizeof buf, "*%zu\r\n", k);
    for (size_t i = 0; i < n; i++) {
        if (r[i].lo > r[i].hi)
            continue;
        used += (size_t)snprintf(buf + used, sizeof buf - used, "*%d\r\n:%d\r\n:%d\r\n",
                                 r[i].replica ? 4 : 3, r[i].lo, r[i].hi);
        used += node_resp(buf + used, sizeof buf - used, r[i].primary->port);
        if (r[i].replica)
            used += node_resp(buf + used, sizeof buf - used, r[i].replica->port);
    }
    pthread_mutex_lock(&f->mu);
    free(f->slots);
    f->slots = strdup(buf);
    pthread_mutex_unlock(&f->mu);
}

/* f answers resp to every command past its script (NULL: an error, and
 * the test fails). */
static void set_default(fake *f, const char *resp)
{
    pthread_mutex_lock(&f->mu);
    free(f->dflt);
    f->dflt = resp ? strdup(resp) : NULL;
    pthread_mutex_unlock(&f->mu);
}

static int count_logged(fake *f, const char *prefix)
{
    int n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nlog; i++)
        n += strncmp(f->log[i], prefix, strlen(prefix)) == 0;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static const char *last_logged(fake *f)
{
    int n = nlogged(f);
    return n > 0 ? logged(f, (size_t)n - 1) : "(none)";
}

static int slot_of(const char *tag)
{
    return redis_cluster_slot(tag, strlen(tag));
}

/* The skip-th user "userN" whose placement tag's slot is in [lo, hi]. */
static void user_in(int lo, int hi, int skip, char user[16], char tag[4])
{
    for (int i = 0; i < 1000000; i++) {
        snprintf(user, 16, "user%d", i);
        session_id_tag((str_t){ user, strlen(user) }, tag);
        tag[SESSION_ID_TAG] = '\0';
        int s = slot_of(tag);
        if (s >= lo && s <= hi && skip-- == 0)
            return;
    }
    fprintf(stderr, "no user in slots %d..%d\n", lo, hi);
    exit(2);
}

/* The skip-th 3-character base64url tag whose slot is in [lo, hi]. */
static void tag_in(int lo, int hi, int skip, char tag[4])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (unsigned i = 0; i < 64u * 64u * 64u; i++) {
        tag[0] = b64[i >> 12], tag[1] = b64[(i >> 6) & 63], tag[2] = b64[i & 63], tag[3] = '\0';
        int s = slot_of(tag);
        if (s >= lo && s <= hi && skip-- == 0)
            return;
    }
    fprintf(stderr, "no tag in slots %d..%d\n", lo, hi);
    exit(2);
}

/* An id of len characters (34: tagged, 31: as older versions made them)
 * made of c and ending with tag. */
static void id_with(char id[SESSION_ID_MAX + 1], char c, size_t len, const char *tag)
{
    memset(id, c, len - SESSION_ID_TAG);
    memcpy(id + len - SESSION_ID_TAG, tag, SESSION_ID_TAG + 1);
}

/* The slot of the key of "SET <key> 1 PX 10000" (the readiness write),
 * by its hash tag; -1 when line is not that. */
static int ready_slot(const char *line, const char *prefix)
{
    char want[48];
    snprintf(want, sizeof want, "SET %s:{", prefix);
    const char *close = strchr(line, '}');
    if (strncmp(line, want, strlen(want)) != 0 || close == NULL ||
        strcmp(close, "}:ready 1 PX 10000") != 0)
        return -1;
    const char *open = line + strlen(want);
    return redis_cluster_slot(open, (size_t)(close - open));
}

/* Two primaries: A serves slots 0..8191, B 8192..16383. ua and ub are
 * users whose tags (ta, tb) fall in A's and B's halves, ida and idb
 * tagged ids of their sessions. */
typedef struct two {
    fake a, b;
    store_t *st;
    char ua[16], ub[16], ta[4], tb[4];
    char ida[SESSION_ID_MAX + 1], idb[SESSION_ID_MAX + 1];
    int sa, sb; /* the slots of ta and tb */
} two;

static const srange *halves(const two *c)
{
    static srange r[2];
    r[0] = (srange){ 0, 8191, &c->a, NULL };
    r[1] = (srange){ 8192, 16383, &c->b, NULL };
    return r;
}

/* Opens the store on the fakes with A as the seed; both answer the
 * readiness write of the open. */
static void two_open(two *c, const char *userinfo, const char *tail, const store_options *opt)
{
    char url[256];
    say(&c->a, "+OK\r\n");
    say(&c->b, "+OK\r\n");
    snprintf(url, sizeof url, "redis-cluster://%s127.0.0.1:%d%s", userinfo, c->a.port, tail);
    c->st = open_url(url, opt);
}

static void two_start(two *c, const char *tail, const store_options *opt)
{
    memset(c, 0, sizeof *c);
    fake_start(&c->a);
    fake_start(&c->b);
    set_slots(&c->a, halves(c), 2);
    set_slots(&c->b, halves(c), 2);
    user_in(0, 8191, 0, c->ua, c->ta);
    user_in(8192, 16383, 0, c->ub, c->tb);
    id_with(c->ida, 'C', SESSION_ID_TAGGED_LEN, c->ta);
    id_with(c->idb, 'C', SESSION_ID_TAGGED_LEN, c->tb);
    c->sa = slot_of(c->ta);
    c->sb = slot_of(c->tb);
    two_open(c, "", tail, opt);
}

static void two_stop(two *c)
{
    store_close(c->st);
    fake_stop(&c->a);
    fake_stop(&c->b);
}

static int slots_read(two *c)
{
    return count_logged(&c->a, "CLUSTER SLOTS") + count_logged(&c->b, "CLUSTER SLOTS");
}

#define TRYAGAIN "-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
#define REFRESH_US 150000 /* past the map's refresh limit (100 ms) */

/* The seeds are asked CLUSTER SLOTS in turn, after AUTH, until one gives
 * a map (port 1 refuses the connection, x is no cluster node); the other
 * primary gets AUTH and then its commands; a replica named in the map
 * gets nothing. Each key goes to the primary of its slot, in one round
 * for the whole batch. */
static void test_cluster_discovery(void)
{
    fake a, b, r, x;
    fake_start(&a);
    fake_start(&b);
    fake_start(&r);
    fake_start(&x);
    say(&x, "+OK\r\n");
    say(&x, "-ERR This instance has cluster support disabled\r\n");
    srange map[] = { { 0, 8191, &a, &r }, { 8192, 16383, &b, NULL } };
    set_slots(&a, map, 2);
    set_slots(&b, map, 2);
    set_slots(&r, map, 2);
    say(&a, "+OK\r\n"); /* AUTH */
    say(&a, "+OK\r\n"); /* the readiness write of the open */
    say(&b, "+OK\r\n");
    say(&b, "+OK\r\n");
    char url[160];
    snprintf(url, sizeof url, "redis-cluster://app:s3cret@127.0.0.1:1,127.0.0.1:%d,127.0.0.1:%d",
             x.port, a.port);
    store_options opt = { .timeout_ms = 300 };
    store_t *st = open_url(url, &opt);
    CHECK_STR_EQ(store_scheme(st), "redis-cluster");
    CHECK_STR_EQ(logged(&a, 0), "AUTH app s3cret");
    CHECK_STR_EQ(logged(&a, 1), "CLUSTER SLOTS");
    int s = ready_slot(logged(&a, 2), "ss");
    CHECK(s >= 0 && s <= 8191);
    CHECK_STR_EQ(logged(&b, 0), "AUTH app s3cret");
    s = ready_slot(logged(&b, 1), "ss");
    CHECK(s >= 8192 && s <= 16383);
    CHECK_EQ_INT(nlogged(&a), 3);
    CHECK_EQ_INT(nlogged(&b), 2);
    CHECK_EQ_INT(nlogged(&x), 2);
    CHECK_STR_EQ(logged(&x, 0), "AUTH app s3cret");
    CHECK_STR_EQ(logged(&x, 1), "CLUSTER SLOTS");

    char ua[16], ub[16], ta[4], tb[4], ida[SESSION_ID_MAX + 1], idb[SESSION_ID_MAX + 1];
    user_in(0, 8191, 0, ua, ta);
    user_in(8192, 16383, 0, ub, tb);
    id_with(ida, 'C', SESSION_ID_TAGGED_LEN, ta);
    id_with(idb, 'C', SESSION_ID_TAGGED_LEN, tb);
    buf_t ra = BUF_INIT, rb = BUF_INIT;
    session_t sb = mk(idb, ub, NOW + 60);
    store_op ga = { .kind = STORE_OP_GET, .id = ida, .now = NOW, .rec = &ra };
    store_op gb = { .kind = STORE_OP_GET, .id = idb, .now = NOW, .rec = &rb };
    store_op pb = { .kind = STORE_OP_PUT, .s = &sb, .now = NOW };
    store_op *ops[] = { &ga, &gb, &pb };
    say_record(&a, ida, ua, NOW + 60);
    say_record(&b, idb, ub, NOW + 60);
    say(&b, CREATED);
    store_batch(st, ops, 3);
    CHECK_EQ_INT(ga.rc, RC_OK);
    CHECK_EQ_INT(gb.rc, RC_OK);
    CHECK_EQ_INT(pb.rc, RC_OK);
    session_t got;
    CHECK(record_decode(ra.p, ra.len, &got) == RC_OK && strcmp(got.id, ida) == 0);
    CHECK(record_decode(rb.p, rb.len, &got) == RC_OK && strcmp(got.id, idb) == 0);
    char want[160];
    snprintf(want, sizeof want, "GET ss:{%s}:s:%s", ta, ida);
    CHECK_STR_EQ(logged(&a, 3), want);
    snprintf(want, sizeof want, "GET ss:{%s}:s:%s", tb, idb);
    CHECK_STR_EQ(logged(&b, 2), want);
    /* the create: both keys in the user's slot, and the prefix of its
     * other sessions' keys */
    snprintf(want, sizeof want, "> 2 ss:{%s}:s:%s ss:{%s}:u:%s <", tb, idb, tb, ub);
    CHECK(strncmp(logged(&b, 3), "EVALSHA <sha1>", 14) == 0 && strstr(logged(&b, 3), want) != NULL);
    snprintf(want, sizeof want, " %s ss:{%s}:s: ", ub, tb);
    CHECK(strstr(logged(&b, 3), want) != NULL);
    CHECK_EQ_INT(nlogged(&a), 4);
    CHECK_EQ_INT(nlogged(&b), 4);
    CHECK_EQ_INT(count_logged(&b, "CLUSTER SLOTS"), 0);
    CHECK_EQ_INT(a.conns, 1);
    CHECK_EQ_INT(b.conns, 1);
    CHECK_EQ_INT(r.conns, 0); /* the replica: never connected to */
    CHECK_EQ_INT(nlogged(&r), 0);
    buf_free(&ra);
    buf_free(&rb);
    store_close(st);
    fake_stop(&a);
    fake_stop(&b);
    fake_stop(&r);
    fake_stop(&x);
}

/* MOVED: the command goes to the node named, whose answer is the op's;
 * the map is corrected for that slot at once (the next command of the
 * slot goes there directly), and the whole map is read again, at most
 * every 100 ms. An empty host in MOVED is the host of the node that
 * answered. */
static void test_cluster_moved(void)
{
    two c;
    store_options opt = { .timeout_ms = 300 };
    two_start(&c, "", &opt);
    buf_t rec = BUF_INIT;
    session_t got;
    char key[128], want[160], err[96];
    snprintf(key, sizeof key, "ss:{%s}:s:%s", c.ta, c.ida);
    snprintf(want, sizeof want, "GET %s", key);
    /* the slot of ida moves to B: both nodes name B for it from now on */
    srange moved[] = { { 0, c.sa - 1, &c.a, NULL }, { c.sa, c.sa, &c.b, NULL },
                       { c.sa + 1, 8191, &c.a, NULL }, { 8192, 16383, &c.b, NULL } };
    set_slots(&c.a, moved, 4);
    set_slots(&c.b, moved, 4);
    snprintf(err, sizeof err, "-MOVED %d 127.0.0.1:%d\r\n", c.sa, c.b.port);
    say(&c.a, err);
    say_record(&c.b, c.ida, c.ua, NOW + 60);
    CHECK_EQ_INT(store_get(c.st, c.ida, NOW, &rec), RC_OK);
    CHECK(record_decode(rec.p, rec.len, &got) == RC_OK && strcmp(got.id, c.ida) == 0);
    CHECK_STR_EQ(last_logged(&c.a), want);
    CHECK_STR_EQ(last_logged(&c.b), want);
    CHECK_EQ_INT(count_logged(&c.a, "GET "), 1);
    CHECK_EQ_INT(count_logged(&c.b, "GET "), 1);
    /* B's answer is the op's, whatever it is */
    int na = nlogged(&c.a);
    say(&c.b, "$-1\r\n");
    CHECK_EQ_INT(store_get(c.st, c.ida, NOW, &rec), RC_NOT_FOUND);
    CHECK_EQ_INT(nlogged(&c.a), na); /* the map says B now: A is not asked */
    CHECK_STR_EQ(last_logged(&c.b), want);
    /* the map is read again (not sooner than 100 ms after the last read) */
    usleep(REFRESH_US);
    say_record(&c.b, c.idb, c.ub, NOW + 60);
    CHECK_EQ_INT(store_get(c.st, c.idb, NOW, &rec), RC_OK);
    CHECK_EQ_INT(slots_read(&c), 2);
    say_record(&c.b, c.ida, c.ua, NOW + 60);
    CHECK_EQ_INT(store_get(c.st, c.ida, NOW, &rec), RC_OK);
    CHECK_EQ_INT(count_logged(&c.a, "GET "), 1);
    CHECK_EQ_INT(count_logged(&c.b, "GET "), 4);
    /* MOVED with an empty host: the node that answered's host, B's port;
     * a batch: the other op (on B) is answered in the first round */
    char ua2[16], ta2[4], ida2[SESSION_ID_MAX + 1];
    int skip = 1;
    do
        user_in(0, 8191, skip++, ua2, ta2);
    while (slot_of(ta2) == c.sa);
    id_with(ida2, 'D', SESSION_ID_TAGGED_LEN, ta2);
    snprintf(err, sizeof err, "-MOVED %d :%d\r\n", slot_of(ta2), c.b.port);
    say(&c.a, err);
    say_record(&c.b, c.idb, c.ub, NOW + 60);
    say_record(&c.b, ida2, ua2, NOW + 60);
    buf_t r2 = BUF_INIT;
    store_op g1 = { .kind = STORE_OP_GET, .id = ida2, .now = NOW, .rec = &rec };
    store_op g2 = { .kind = STORE_OP_GET, .id = c.idb, .now = NOW, .rec = &r2 };
    store_op *ops[] = { &g1, &g2 };
    store_batch(c.st, ops, 2);
    CHECK_EQ_INT(g1.rc, RC_OK);
    CHECK_EQ_INT(g2.rc, RC_OK);
    CHECK(record_decode(rec.p, rec.len, &got) == RC_OK && strcmp(got.id, ida2) == 0);
    snprintf(want, sizeof want, "GET ss:{%s}:s:%s", ta2, ida2);
    CHECK_STR_EQ(last_logged(&c.a), want);
    CHECK_STR_EQ(last_logged(&c.b), want);
    CHECK_EQ_INT(c.a.conns, 1);
    CHECK_EQ_INT(c.b.conns, 1);
    buf_free(&rec);
    buf_free(&r2);
    two_stop(&c);
}

/* ASK: ASKING and the command go to the node named, for this command
 * only: the map is unchanged (the slot's next command goes to A again)
 * and not read again. */
static void test_cluster_ask(void)
{
    two c;
    store_options opt = { .timeout_ms = 300 };
    two_start(&c, "", &opt);
    buf_t rec = BUF_INIT;
    char want[160], err[96];
    snprintf(want, sizeof want, "GET ss:{%s}:s:%s", c.ta, c.ida);
    snprintf(err, sizeof err, "-ASK %d 127.0.0.1:%d\r\n", c.sa, c.b.port);
    say(&c.a, err);
    say(&c.b, "+OK\r\n"); /* ASKING */
    say_record(&c.b, c.ida, c.ua, NOW + 60);
    CHECK_EQ_INT(store_get(c.st, c.ida, NOW, &rec), RC_OK);
    int nb = nlogged(&c.b);
    CHECK_STR_EQ(logged(&c.b, (size_t)nb - 2), "ASKING");
    CHECK_STR_EQ(logged(&c.b, (size_t)nb - 1), want);
    say(&c.a, "$-1\r\n");
    CHECK_EQ_INT(store_get(c.st, c.ida, NOW, &rec), RC_NOT_FOUND); /* A's answer now */
    CHECK_STR_EQ(last_logged(&c.a), want);
    /* a create migrating (ASK): ASKING, then the script, there */
    session_t s = mk(c.ida, c.ua, NOW + 60);
    say(&c.a, err);
    say(&c.b, "+OK\r\n");
    say(&c.b, CREATED);
    CHECK_EQ_INT(store_put(c.st, &s), RC_OK);
    nb = nlogged(&c.b);
    CHECK_STR_EQ(logged(&c.b, (size_t)nb - 2), "ASKING");
    CHECK(strncmp(last_logged(&c.b), "EVALSHA <sha1>", 14) == 0);
    usleep(REFRESH_US);
    say_record(&c.a, c.ida, c.ua, NOW + 60);
    CHECK_EQ_INT(store_get(c.st, c.ida, NOW, &rec), RC_OK);
    CHECK_STR_EQ(last_logged(&c.a), want);
    CHECK_EQ_INT(slots_read(&c), 1); /* ASK leaves the map alone */
    CHECK_EQ_INT(nlogged(&c.b), nb);
    buf_free(&rec);
    two_stop(&c);
}

/* TRYAGAIN (a script on two keys while their slot migrates): sent again
 * after a pause; an answer that never settles is a 503 after at most 5
 * rounds, within REDIS_TIMEOUT_MS, never a hang; the other ops of the
 * batch are served. */
static void test_cluster_tryagain(void)
{
    two c;
    store_options opt = { .timeout_ms = 1000 };
    two_start(&c, "", &opt);
    session_t s = mk(c.ida, c.ua, NOW + 60);
    struct timespec t0;
    say(&c.a, TRYAGAIN);
    say(&c.a, CREATED);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(store_put(c.st, &s), RC_OK);
    double took = ms_since(&t0);
    CHECK(took >= 15 && took < 500); /* the pause (20 ms) */
    CHECK_EQ_INT(count_logged(&c.a, "EVALSHA "), 2);
    CHECK_EQ_INT(nlogged(&c.b), 1);

    /* forever: 16 rounds, then the TRYAGAIN stands (a 503) */
    set_default(&c.a, TRYAGAIN);
    buf_t rec = BUF_INIT;
    store_op put = { .kind = STORE_OP_PUT, .s = &s, .now = NOW };
    store_op get = { .kind = STORE_OP_GET, .id = c.idb, .now = NOW, .rec = &rec };
    store_op *ops[] = { &put, &get };
    say_record(&c.b, c.idb, c.ub, NOW + 60);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    store_batch(c.st, ops, 2);
    took = ms_since(&t0);
    CHECK_EQ_INT(put.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(get.rc, RC_OK);
    CHECK_EQ_INT(count_logged(&c.a, "EVALSHA "), 2 + 16);
    CHECK(took < 1000);
    CHECK_EQ_INT(count_logged(&c.b, "GET "), 1);
    store_close(c.st);

    /* a small REDIS_TIMEOUT_MS ends it first */
    set_default(&c.a, NULL);
    opt.timeout_ms = 60;
    two_open(&c, "", "", &opt);
    set_default(&c.a, TRYAGAIN);
    int before = count_logged(&c.a, "EVALSHA ");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(store_put(c.st, &s), RC_UNAVAILABLE);
    took = ms_since(&t0);
    int tries = count_logged(&c.a, "EVALSHA ") - before;
    CHECK(tries >= 2 && tries < 5);
    CHECK(took < 60 + 150); /* about REDIS_TIMEOUT_MS: with a scheduling margin */
    CHECK_EQ_INT(c.a.conns, 2);
    buf_free(&rec);
    two_stop(&c);
}

/* A node that closes the connection, or stalls: the ops of its slots are
 * 503s (the stall after REDIS_TIMEOUT_MS), those of the other node's
 * slots in the same batch are served; the failed node is left alone for
 * its back-off (its ops fail at once), then connected to again. */
static void test_cluster_node_fails(void)
{
    two c;
    store_options opt = { .timeout_ms = 200 };
    two_start(&c, "", &opt);
    buf_t ra = BUF_INIT, rb = BUF_INIT;
    session_t sb = mk(c.idb, c.ub, NOW + 60);
    store_op ga = { .kind = STORE_OP_GET, .id = c.ida, .now = NOW, .rec = &ra };
    store_op gb = { .kind = STORE_OP_GET, .id = c.idb, .now = NOW, .rec = &rb };
    store_op pb = { .kind = STORE_OP_PUT, .s = &sb, .now = NOW };
    store_op *ops[] = { &ga, &gb, &pb };
    say_close(&c.a);
    say_record(&c.b, c.idb, c.ub, NOW + 60);
    say(&c.b, CREATED);
    store_batch(c.st, ops, 3);
    CHECK_EQ_INT(ga.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(gb.rc, RC_OK);
    CHECK_EQ_INT(pb.rc, RC_OK);
    /* within the back-off: A is not tried, its ops fail at once */
    int na = nlogged(&c.a);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(store_get(c.st, c.ida, NOW, &ra), RC_UNAVAILABLE);
    CHECK(ms_since(&t0) < 100);
    CHECK_EQ_INT(nlogged(&c.a), na);
    CHECK_EQ_INT(c.a.conns, 1);
    usleep(BACKOFF_US);
    say_record(&c.a, c.ida, c.ua, NOW + 60);
    CHECK_EQ_INT(store_get(c.st, c.ida, NOW, &ra), RC_OK);
    CHECK_EQ_INT(c.a.conns, 2);
    /* the failure made the map due for a read: from the node still up */
    CHECK_EQ_INT(count_logged(&c.b, "CLUSTER SLOTS"), 1);

    /* A stalls: its op waits out the timeout, B's are served */
    say_stall(&c.a);
    say_record(&c.b, c.idb, c.ub, NOW + 60);
    say(&c.b, CREATED);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    store_batch(c.st, ops, 3);
    double took = ms_since(&t0);
    CHECK_EQ_INT(ga.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(gb.rc, RC_OK);
    CHECK_EQ_INT(pb.rc, RC_OK);
    CHECK(took >= 150 && took < 1000);
    usleep(BACKOFF_US);
    say_record(&c.a, c.ida, c.ua, NOW + 60);
    CHECK_EQ_INT(store_get(c.st, c.ida, NOW, &ra), RC_OK);
    CHECK_EQ_INT(c.a.conns, 3);
    CHECK_EQ_INT(c.b.conns, 1);
    buf_free(&ra);
    buf_free(&rb);
    two_stop(&c);
}

/* REDIS_WAIT_REPLICAS on a cluster: one WAIT to each node written to, and
 * each node's answer judges the writes that went to it; a node that only
 * read, or whose write was refused, gets no WAIT. */
static void test_cluster_wait_per_node(void)
{
    two c;
    store_options opt = { .timeout_ms = 300, .wait_replicas = 1, .wait_timeout_ms = 50 };
    two_start(&c, "", &opt);
    /* the open's readiness writes are owed a WAIT: a readiness check
     * (the writes and their WAIT) settles them */
    say(&c.a, "+OK\r\n");
    say(&c.a, ":1\r\n");
    say(&c.b, "+OK\r\n");
    say(&c.b, ":1\r\n");
    CHECK_EQ_INT(store_ping(c.st), RC_OK);
    CHECK_STR_EQ(last_logged(&c.a), "WAIT 1 50");
    CHECK_STR_EQ(last_logged(&c.b), "WAIT 1 50");

    session_t sa = mk(c.ida, c.ua, NOW + 60), sb = mk(c.idb, c.ub, NOW + 60);
    buf_t rec = BUF_INIT;
    store_op pa = { .kind = STORE_OP_PUT, .s = &sa, .now = NOW };
    store_op pb = { .kind = STORE_OP_PUT, .s = &sb, .now = NOW };
    store_op gb = { .kind = STORE_OP_GET, .id = c.idb, .now = NOW, .rec = &rec };
    store_op *both[] = { &pa, &pb };
    say(&c.a, CREATED);
    say(&c.a, ":1\r\n");
    say(&c.b, CREATED);
    say(&c.b, ":0\r\n"); /* B's shard has no replica left */
    store_batch(c.st, both, 2);
    CHECK_EQ_INT(pa.rc, RC_OK);
    CHECK_EQ_INT(pb.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(count_logged(&c.a, "WAIT "), 2);
    CHECK_EQ_INT(count_logged(&c.b, "WAIT "), 2);
    CHECK_STR_EQ(last_logged(&c.a), "WAIT 1 50");
    CHECK_STR_EQ(last_logged(&c.b), "WAIT 1 50");
    CHECK(strncmp(logged(&c.b, (size_t)nlogged(&c.b) - 2), "EVALSHA <sha1>", 14) == 0);

    /* a write to A and a read on B: B gets no WAIT (a WAIT came short
     * before: this one follows the writes in a round of its own) */
    store_op *mixed[] = { &pa, &gb };
    say(&c.a, CREATED);
    say(&c.a, ":1\r\n");
    say_record(&c.b, c.idb, c.ub, NOW + 60);
    store_batch(c.st, mixed, 2);
    CHECK_EQ_INT(pa.rc, RC_OK);
    CHECK_EQ_INT(gb.rc, RC_OK);
    CHECK_EQ_INT(count_logged(&c.a, "WAIT "), 3);
    CHECK_EQ_INT(count_logged(&c.b, "WAIT "), 2);
    CHECK(strncmp(last_logged(&c.b), "GET ", 4) == 0);
    /* the same, the WAIT back in the pipeline (the last one was met) */
    say(&c.a, CREATED);
    say(&c.a, ":1\r\n");
    say_record(&c.b, c.idb, c.ub, NOW + 60);
    store_batch(c.st, mixed, 2);
    CHECK_EQ_INT(pa.rc, RC_OK);
    CHECK_EQ_INT(gb.rc, RC_OK);
    CHECK_EQ_INT(count_logged(&c.a, "WAIT "), 4);
    CHECK_EQ_INT(count_logged(&c.b, "WAIT "), 2);

    /* A refuses its write: nothing written there, no WAIT owed */
    say(&c.a, "-NOREPLICAS Not enough good replicas to write.\r\n");
    say(&c.b, CREATED);
    say(&c.b, ":1\r\n");
    store_batch(c.st, both, 2);
    CHECK_EQ_INT(pa.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(pb.rc, RC_OK);
    CHECK_EQ_INT(count_logged(&c.a, "WAIT "), 4);
    CHECK_EQ_INT(count_logged(&c.b, "WAIT "), 3);
    CHECK(strncmp(last_logged(&c.a), "EVALSHA <sha1>", 14) == 0);
    /* both short: both writes 503 */
    say(&c.a, CREATED);
    say(&c.a, ":0\r\n");
    say(&c.b, CREATED);
    say(&c.b, ":0\r\n");
    store_batch(c.st, both, 2);
    CHECK_EQ_INT(pa.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(pb.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(c.a.conns, 1);
    CHECK_EQ_INT(c.b.conns, 1);
    buf_free(&rec);
    two_stop(&c);
}

/* Ids without their user's tag (31 characters: older versions, imports):
 * a read goes through the alias in the id's own slot; a create writes the
 * alias first; a 34-character id with another user's tag is refused
 * before anything is sent. */
static void test_cluster_untagged_ids(void)
{
    two c;
    store_options opt = { .timeout_ms = 300 };
    two_start(&c, "", &opt);
    char t[4], id[SESSION_ID_MAX + 1], want[160];
    tag_in(0, 8191, 0, t);
    id_with(id, 'E', SESSION_ID_LEN, t);
    buf_t rec = BUF_INIT;
    int na = nlogged(&c.a), nb = nlogged(&c.b);
    /* no alias: no session, and no GET of a session key */
    say(&c.a, "$-1\r\n");
    CHECK_EQ_INT(store_get(c.st, id, NOW, &rec), RC_NOT_FOUND);
    snprintf(want, sizeof want, "GET ss:{%s}:a:%s", t, id);
    CHECK_STR_EQ(last_logged(&c.a), want);
    CHECK_EQ_INT(nlogged(&c.a), na + 1);
    CHECK_EQ_INT(nlogged(&c.b), nb);
    /* the alias names the slot: the session's key there */
    fake *xyz = slot_of("XYZ") <= 8191 ? &c.a : &c.b;
    say(&c.a, "$3\r\nXYZ\r\n");
    say_record(xyz, id, "someone", NOW + 60);
    CHECK_EQ_INT(store_get(c.st, id, NOW, &rec), RC_OK);
    snprintf(want, sizeof want, "GET ss:{XYZ}:s:%s", id);
    CHECK_STR_EQ(last_logged(xyz), want);
    /* an alias that is no tag, or an error: 503 */
    say(&c.a, "$2\r\nxy\r\n");
    CHECK_EQ_INT(store_get(c.st, id, NOW, &rec), RC_UNAVAILABLE);
    say(&c.a, "-LOADING Redis is loading the dataset in memory\r\n");
    CHECK_EQ_INT(store_get(c.st, id, NOW, &rec), RC_UNAVAILABLE);
    /* a close that names the owner needs no alias: the owner's slot */
    say(&c.a, "$-1\r\n");
    CHECK_EQ_INT(store_del(c.st, id, (str_t){ c.ua, strlen(c.ua) }, NOW), RC_NOT_FOUND);
    snprintf(want, sizeof want, "GET ss:{%s}:s:%s", c.ta, id);
    CHECK_STR_EQ(last_logged(&c.a), want);

    /* a create: the alias (the user's tag, expiring with the session),
     * then the script in the user's slot */
    session_t s = mk(id, c.ua, NOW + 60);
    na = nlogged(&c.a);
    say(&c.a, "+OK\r\n");
    say(&c.a, CREATED);
    CHECK_EQ_INT(store_put(c.st, &s), RC_OK);
    CHECK_EQ_INT(nlogged(&c.a), na + 2);
    snprintf(want, sizeof want, "SET ss:{%s}:a:%s %s EXAT 1700000060", t, id, c.ta);
    CHECK_STR_EQ(logged(&c.a, (size_t)na), want);
    snprintf(want, sizeof want, "> 2 ss:{%s}:s:%s ss:{%s}:u:%s <", c.ta, id, c.ta, c.ua);
    CHECK(strncmp(logged(&c.a, (size_t)na + 1), "EVALSHA <sha1>", 14) == 0 &&
          strstr(logged(&c.a, (size_t)na + 1), want) != NULL);
    /* the alias refused: no create */
    say(&c.a, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    CHECK_EQ_INT(store_put(c.st, &s), RC_FULL);
    CHECK_EQ_INT(nlogged(&c.a), na + 3);
    /* the alias in B's slot, the user in A's: each to its node */
    char tb2[4], id2[SESSION_ID_MAX + 1];
    tag_in(8192, 16383, 0, tb2);
    id_with(id2, 'F', SESSION_ID_LEN, tb2);
    session_t s2 = mk(id2, c.ua, NOW + 90);
    say(&c.b, "+OK\r\n");
    say(&c.a, CREATED);
    CHECK_EQ_INT(store_put(c.st, &s2), RC_OK);
    snprintf(want, sizeof want, "SET ss:{%s}:a:%s %s EXAT 1700000090", tb2, id2, c.ta);
    CHECK_STR_EQ(last_logged(&c.b), want);
    snprintf(want, sizeof want, "> 2 ss:{%s}:s:%s ss:{%s}:u:%s <", c.ta, id2, c.ta, c.ua);
    CHECK(strstr(last_logged(&c.a), want) != NULL);

    /* 34 characters ending with another user's tag: refused, nothing sent */
    na = nlogged(&c.a), nb = nlogged(&c.b);
    session_t bad = mk(c.idb, c.ua, NOW + 60); /* idb ends with ub's tag */
    CHECK_EQ_INT(store_put(c.st, &bad), RC_INVALID);
    CHECK_EQ_INT(nlogged(&c.a), na);
    CHECK_EQ_INT(nlogged(&c.b), nb);
    buf_free(&rec);
    two_stop(&c);
}

/* Readiness: every slot has a primary in the map, and each primary takes
 * one write of a key in one of its slots. */
static void test_cluster_ping(void)
{
    fake n[3];
    for (int i = 0; i < 3; i++)
        fake_start(&n[i]);
    srange full[] = { { 0, 5460, &n[0], NULL }, { 5461, 10922, &n[1], NULL },
                      { 10923, 16383, &n[2], NULL } };
    for (int i = 0; i < 3; i++) {
        set_slots(&n[i], full, 3);
        say(&n[i], "+OK\r\n");
    }
    char url[96];
    snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d", n[1].port);
    store_options opt = { .timeout_ms = 300 };
    store_t *st = open_url(url, &opt);
    CHECK_STR_EQ(logged(&n[1], 0), "CLUSTER SLOTS");
    for (int i = 0; i < 3; i++)
        say(&n[i], "+OK\r\n");
    CHECK_EQ_INT(store_ping(st), RC_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(count_logged(&n[i], "SET "), 2); /* the open's, the ping's */
        int s = ready_slot(last_logged(&n[i]), "ss");
        CHECK(s >= full[i].lo && s <= full[i].hi);
    }
    CHECK_EQ_INT(count_logged(&n[0], "CLUSTER SLOTS") + count_logged(&n[2], "CLUSTER SLOTS"), 0);
    /* a primary that refuses writes: not ready */
    say(&n[0], "+OK\r\n");
    say(&n[1], "+OK\r\n");
    say(&n[2], "-MISCONF Errors writing to the AOF file\r\n");
    CHECK_EQ_INT(store_ping(st), RC_UNAVAILABLE);
    store_close(st);

    /* a map without a primary for slots 10923..16383: not ready, and no
     * write is sent */
    srange part[] = { { 0, 5460, &n[0], NULL }, { 5461, 10922, &n[1], NULL } };
    for (int i = 0; i < 3; i++)
        set_slots(&n[i], part, 2);
    int before[3];
    for (int i = 0; i < 3; i++)
        before[i] = nlogged(&n[i]);
    st = open_url(url, &opt);
    CHECK_EQ_INT(store_ping(st), RC_UNAVAILABLE);
    CHECK_EQ_INT(nlogged(&n[1]), before[1] + 1); /* CLUSTER SLOTS */
    CHECK_EQ_INT(nlogged(&n[0]), before[0]);
    CHECK_EQ_INT(nlogged(&n[2]), before[2]);
    /* a command for such a slot: a 503 at once, and the map is read again
     * (100 ms on), which now covers every slot: ready */
    char u[16], t[4], id[SESSION_ID_MAX + 1];
    user_in(10923, 16383, 0, u, t);
    id_with(id, 'G', SESSION_ID_TAGGED_LEN, t);
    buf_t rec = BUF_INIT;
    CHECK_EQ_INT(store_get(st, id, NOW, &rec), RC_UNAVAILABLE);
    CHECK_EQ_INT(nlogged(&n[2]), before[2]);
    for (int i = 0; i < 3; i++) {
        set_slots(&n[i], full, 3);
        say(&n[i], "+OK\r\n");
    }
    usleep(REFRESH_US);
    CHECK_EQ_INT(store_ping(st), RC_OK);
    for (int i = 0; i < 3; i++) {
        int s = ready_slot(last_logged(&n[i]), "ss");
        CHECK(s >= full[i].lo && s <= full[i].hi);
    }
    buf_free(&rec);
    store_close(st);
    for (int i = 0; i < 3; i++)
        fake_stop(&n[i]);
}

/* The URL's path is the prefix of every key; "/0" (a database, on a
 * cluster that has none) is refused at open, before anything is sent. */
static void test_cluster_prefix(void)
{
    two c;
    store_options opt = { .timeout_ms = 300 };
    two_start(&c, "/app", &opt);
    CHECK(ready_slot(logged(&c.a, 1), "app") >= 0);
    CHECK(ready_slot(logged(&c.b, 0), "app") >= 0);
    buf_t rec = BUF_INIT;
    char want[160], t[4], id[SESSION_ID_MAX + 1];
    say_record(&c.a, c.ida, c.ua, NOW + 60);
    CHECK_EQ_INT(store_get(c.st, c.ida, NOW, &rec), RC_OK);
    snprintf(want, sizeof want, "GET app:{%s}:s:%s", c.ta, c.ida);
    CHECK_STR_EQ(last_logged(&c.a), want);
    /* a close: its GET, the index's ZREM and the DEL */
    say_record(&c.a, c.ida, c.ua, NOW + 60);
    say(&c.a, ":1\r\n");
    say(&c.a, ":1\r\n");
    CHECK_EQ_INT(store_del(c.st, c.ida, (str_t){ c.ua, strlen(c.ua) }, NOW), RC_OK);
    snprintf(want, sizeof want, "ZREM app:{%s}:u:%s %s", c.ta, c.ua, c.ida);
    CHECK_STR_EQ(logged(&c.a, (size_t)nlogged(&c.a) - 2), want);
    snprintf(want, sizeof want, "DEL app:{%s}:s:%s", c.ta, c.ida);
    CHECK_STR_EQ(last_logged(&c.a), want);
    /* a create of an untagged id: its alias, its keys and its script's
     * prefix of the user's other sessions */
    tag_in(8192, 16383, 0, t);
    id_with(id, 'H', SESSION_ID_LEN, t);
    session_t s = mk(id, c.ua, NOW + 60);
    say(&c.b, "+OK\r\n");
    say(&c.a, CREATED);
    CHECK_EQ_INT(store_put(c.st, &s), RC_OK);
    snprintf(want, sizeof want, "SET app:{%s}:a:%s %s EXAT 1700000060", t, id, c.ta);
    CHECK_STR_EQ(last_logged(&c.b), want);
    snprintf(want, sizeof want, "> 2 app:{%s}:s:%s app:{%s}:u:%s <", c.ta, id, c.ta, c.ua);
    CHECK(strstr(last_logged(&c.a), want) != NULL);
    snprintf(want, sizeof want, " %s app:{%s}:s: ", c.ua, c.ta);
    CHECK(strstr(last_logged(&c.a), want) != NULL);
    say(&c.b, "$-1\r\n");
    CHECK_EQ_INT(store_get(c.st, id, NOW, &rec), RC_NOT_FOUND);
    snprintf(want, sizeof want, "GET app:{%s}:a:%s", t, id);
    CHECK_STR_EQ(last_logged(&c.b), want);
    /* no key without the prefix, anywhere */
    fake *both[] = { &c.a, &c.b };
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < nlogged(both[k]); i++)
            CHECK(strstr(logged(both[k], (size_t)i), "ss:") == NULL);
    buf_free(&rec);
    two_stop(&c);

    fake f;
    fake_start(&f);
    char url[96], err[256] = "";
    store_t *st = NULL;
    const char *refused[] = { "/0", "/15", "/" };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d%s", f.port, refused[i]);
        CHECK_EQ_INT(store_open(url, &opt, &st, err, sizeof err), RC_INVALID);
        CHECK(st == NULL);
        CHECK(strstr(err, "prefix") != NULL);
    }
    usleep(50000);
    CHECK_EQ_INT(f.conns, 0);
    CHECK_EQ_INT(nlogged(&f), 0);
    fake_stop(&f);
}

/* ---- redis-cluster://: known bugs in src/ (these fail until fixed) ---- */

/* BUG: a readiness check that finds the map without a primary for some
 * slots (read while the cluster was still forming, or lost slots) does
 * not make the map due for a read (store_redis.c, ready_cluster: it
 * returns RC_UNAVAILABLE without marking the map stale), so the thread
 * keeps that map, and /readyz answers 503, until a command happens to
 * meet an uncovered slot; a service kept out of rotation because it is
 * not ready gets no such command. Expected: the next check, 100 ms on,
 * reads the map again and finds the cluster whole. */
static void test_cluster_ping_rereads_partial_map(void)
{
    fake a, b;
    fake_start(&a);
    fake_start(&b);
    srange part[] = { { 0, 8191, &a, NULL } };
    srange full[] = { { 0, 8191, &a, NULL }, { 8192, 16383, &b, NULL } };
    set_slots(&a, part, 1);
    set_slots(&b, part, 1);
    char url[96];
    snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d", a.port);
    store_options opt = { .timeout_ms = 300 };
    store_t *st = open_url(url, &opt);
    CHECK_EQ_INT(store_ping(st), RC_UNAVAILABLE);
    CHECK_EQ_INT(nlogged(&a), 1); /* CLUSTER SLOTS, and no write */
    CHECK_EQ_INT(nlogged(&b), 0);
    /* the cluster is whole now */
    set_slots(&a, full, 2);
    set_slots(&b, full, 2);
    usleep(REFRESH_US);
    say(&a, "+OK\r\n");
    say(&b, "+OK\r\n");
    CHECK_EQ_INT(store_ping(st), RC_OK);
    CHECK_EQ_INT(count_logged(&a, "CLUSTER SLOTS") + count_logged(&b, "CLUSTER SLOTS"), 2);
    store_close(st);
    fake_stop(&a);
    fake_stop(&b);
}

/* BUG: with REDIS_WAIT_REPLICAS, the create of an untagged id (sessionctl
 * import and copy make them) writes two keys on two nodes: the alias in
 * the id's own slot (B here) and the record in its user's slot (A). B's
 * WAIT is sent and answers 0, yet the create is acknowledged (RC_OK):
 * store_redis.c's redis_batch judges each op by redis_nodes_acks of its
 * record's key (w[i].skey) alone. A failover of B then loses the alias,
 * and the session, whose record survived, is not found by its id (404).
 * Expected: RC_UNAVAILABLE, as for any write whose node's WAIT came
 * short. */
static void test_cluster_wait_covers_alias(void)
{
    two c;
    store_options opt = { .timeout_ms = 300, .wait_replicas = 1, .wait_timeout_ms = 50 };
    two_start(&c, "", &opt);
    say(&c.a, "+OK\r\n"); /* a readiness check: the open's writes get their WAIT */
    say(&c.a, ":1\r\n");
    say(&c.b, "+OK\r\n");
    say(&c.b, ":1\r\n");
    CHECK_EQ_INT(store_ping(c.st), RC_OK);
    char t[4], id[SESSION_ID_MAX + 1], want[160];
    tag_in(8192, 16383, 0, t);
    id_with(id, 'J', SESSION_ID_LEN, t);
    session_t s = mk(id, c.ua, NOW + 60);
    say(&c.b, "+OK\r\n"); /* the alias */
    say(&c.a, CREATED);
    say(&c.a, ":1\r\n");
    say(&c.b, ":0\r\n"); /* B's shard: no replica has the alias */
    CHECK_EQ_INT(store_put(c.st, &s), RC_UNAVAILABLE);
    snprintf(want, sizeof want, "SET ss:{%s}:a:%s %s EXAT 1700000060", t, id, c.ta);
    CHECK_STR_EQ(logged(&c.b, (size_t)nlogged(&c.b) - 2), want);
    CHECK_STR_EQ(last_logged(&c.b), "WAIT 1 50");
    CHECK_STR_EQ(last_logged(&c.a), "WAIT 1 50");
    two_stop(&c);
}

int main(void)
{
    RUN(test_error_replies);
    RUN(test_create_answers);
    RUN(test_create_expiry);
    RUN(test_get_answers);
    RUN(test_batch_error_stays_with_its_op);
    RUN(test_close_rounds);
    RUN(test_close_tells_why);
    RUN(test_touch_answers);
    RUN(test_swap_answers);
    RUN(test_list_tells_idle_ends);
    RUN(test_close_all_rounds);
    RUN(test_pipeline_cut_by_close);
    RUN(test_pipeline_cut_by_stall);
    RUN(test_auth_refused);
    RUN(test_wait_after_writes);
    RUN(test_noscript_sent_again);
    RUN(test_wait_longer_than_timeout);
    RUN(test_sentinel_discovery);
    RUN(test_sentinel_names_a_replica);
    RUN(test_sentinel_failover);
    RUN(test_sentinel_refusals);
    RUN(test_cluster_discovery);
    RUN(test_cluster_moved);
    RUN(test_cluster_ask);
    RUN(test_cluster_tryagain);
    RUN(test_cluster_node_fails);
    RUN(test_cluster_wait_per_node);
    RUN(test_cluster_untagged_ids);
    RUN(test_cluster_ping);
    RUN(test_cluster_prefix);
    RUN(test_cluster_ping_rereads_partial_map); /* fails: a bug in src/ */
    RUN(test_cluster_wait_covers_alias);        /* fails: a bug in src/ */
    return UNIT_SUMMARY();
}
