/* test_exec.c -- the executor (exec.h) over a fake store whose answers the
 * tests choose: the retries it owns (a taken id on create, a close as
 * administrator), the caller's-session step (token generations, the use
 * written for an idle session), a refresh's compare-and-set, one batch for
 * many jobs, and where a job runs (inline or on a lane's thread). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "exec.h"
#include "unit.h"
#include "record.h"

#define NOW 1700000000LL
#define SID_ALICE "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAa"
#define SID_BAD "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAx"
#define SID_GONE "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAz"

typedef struct fake_store {
    store_t base;
    int taken;          /* PUTs still to answer RC_EXISTS */
    rc_t get_fails;     /* RC_OK: GETs answer from the one session below */
    char put_ids[8][SESSION_ID_MAX + 1];
    int puts, dels, batches;
    size_t largest;     /* most ops in one batch */
    pthread_t last_thread;
    /* alice's session */
    int64_t last_seen, idle;
    uint32_t gen;
    int64_t rotated_at;
    char touched[SESSION_ID_MAX + 1];
    int touches;         /* TOUCH ops */
    rc_t touch_fails;    /* RC_OK: TOUCH succeeds */
    int swaps;           /* SWAP ops */
    int rotate_first;    /* SWAPs still to lose to another process's refresh */
    int touch_first;     /* SWAPs still to lose to another process's touch */
    store_close_reason why; /* of the last DEL */
    touch_queue *tq;        /* asked while a background write is under way */
    int64_t noted_while_written;
    int64_t use_while_written; /* != 0: a use of alice's noted then, at this time */
    rc_t touch_many_fails;  /* RC_OK: background writes succeed */
    int writes;             /* background writes (store_touch_many calls) */
    int64_t written_at[4];  /* the last_seen_at of each */
} fake_store;

static void record_of(const fake_store *f, const char *id, const char *user, buf_t *rec)
{
    session_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "%s", id);
    s.user_id = (str_t){ user, strlen(user) };
    s.created_at = NOW - 7200;
    s.last_seen_at = f->last_seen;
    s.expires_at = NOW + 3600;
    s.idle_timeout = f->idle;
    s.gen = f->gen;
    s.rotated_at = f->rotated_at;
    s.ip = STR_LIT("192.0.2.1");
    s.data = STR_LIT("{}");
    buf_reset(rec);
    record_encode(&s, rec);
}

/* A SWAP on alice's session: lost to another process (which rotated or
 * touched first: the record found is handed back), or applied. */
static rc_t fake_swap(fake_store *f, store_op *o)
{
    buf_t now = BUF_INIT;
    rc_t rc;
    f->swaps++;
    if (f->rotate_first > 0 || f->touch_first > 0) {
        if (f->rotate_first > 0) {
            f->rotate_first--;
            f->gen++;
            f->rotated_at = o->now;
        } else {
            f->touch_first--;
            f->last_seen--; /* any change of the record */
        }
        record_of(f, SID_ALICE, "alice", o->rec);
        return RC_EXISTS;
    }
    record_of(f, SID_ALICE, "alice", &now);
    rc = now.len == o->rec->len && memcmp(now.p, o->rec->p, now.len) == 0 ? RC_OK : RC_EXISTS;
    if (rc == RC_OK) {
        f->gen = o->s->gen;
        f->rotated_at = o->s->rotated_at;
        f->last_seen = o->s->last_seen_at;
    }
    buf_free(&now);
    return rc;
}

static void fake_batch(store_t *base, store_op *const *ops, size_t n)
{
    fake_store *f = (fake_store *)base;
    f->batches++;
    f->last_thread = pthread_self();
    if (n > f->largest)
        f->largest = n;
    for (size_t i = 0; i < n; i++) {
        store_op *o = ops[i];
        switch (o->kind) {
        case STORE_OP_PUT:
            if (f->puts < 8)
                memcpy(f->put_ids[f->puts], o->s->id, SESSION_ID_MAX + 1);
            f->puts++;
            o->rc = f->taken > 0 ? (f->taken--, RC_EXISTS) : RC_OK;
            break;
        case STORE_OP_GET:
            if (f->get_fails != RC_OK)
                o->rc = f->get_fails;
            else if (strcmp(o->id, SID_ALICE) == 0)
                record_of(f, o->id, "alice", o->rec), o->rc = RC_OK;
            else if (strcmp(o->id, SID_BAD) == 0)
                buf_reset(o->rec), buf_append(o->rec, "junk", 4), o->rc = RC_OK;
            else
                o->rc = RC_NOT_FOUND;
            break;
        case STORE_OP_DEL: /* alice's session: anyone's close without an owner */
            f->dels++;
            f->why = o->why;
            o->rc = strcmp(o->id, SID_ALICE) == 0 &&
                            (o->user.p == NULL || str_eq_cstr(o->user, "alice"))
                        ? RC_OK
                        : RC_NOT_FOUND;
            break;
        case STORE_OP_TOUCH:
            f->touches++;
            o->rc = f->touch_fails;
            if (o->rc == RC_OK)
                f->last_seen = o->now;
            break;
        case STORE_OP_SWAP:
            o->rc = fake_swap(f, o);
            break;
        default:
            o->rc = RC_OK;
        }
    }
}

static rc_t fake_touch(store_t *base, const char (*ids)[SESSION_ID_MAX + 1], size_t n,
                       int64_t last_seen, int64_t now)
{
    fake_store *f = (fake_store *)base;
    (void)now;
    if (f->writes < 4)
        f->written_at[f->writes] = last_seen;
    f->writes++;
    if (n > 0)
        memcpy(f->touched, ids[0], SESSION_ID_MAX + 1);
    if (f->tq != NULL)
        f->noted_while_written = touch_queue_noted(f->tq, SID_ALICE);
    if (f->tq != NULL && f->use_while_written != 0)
        touch_queue_add(f->tq, SID_ALICE, f->use_while_written, 0);
    if (f->touch_many_fails != RC_OK)
        return f->touch_many_fails;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], SID_ALICE) == 0)
            f->last_seen = last_seen;
    return RC_OK;
}

/* A user's list: alice's session, as stored. */
static rc_t fake_list(store_t *base, str_t user, int64_t now, store_each_fn fn, void *arg)
{
    fake_store *f = (fake_store *)base;
    buf_t rec = BUF_INIT;
    session_t s;
    (void)now;
    if (!str_eq_cstr(user, "alice"))
        return RC_OK;
    record_of(f, SID_ALICE, "alice", &rec);
    rc_t rc = record_decode(rec.p, rec.len, &s);
    if (rc == RC_OK)
        fn(&s, arg);
    buf_free(&rec);
    return rc;
}

static const store_ops fake_ops = { .scheme = "fake", .batch = fake_batch, .touch = fake_touch,
                                    .list = fake_list };

static fake_store fresh_store(void)
{
    fake_store f;
    memset(&f, 0, sizeof f);
    f.base.ops = &fake_ops;
    f.last_seen = NOW;
    return f;
}

static exec_job create_job(session_t *s)
{
    memset(s, 0, sizeof *s);
    s->user_id = STR_LIT("alice");
    s->created_at = s->last_seen_at = NOW;
    s->expires_at = NOW + 60;
    s->data = STR_LIT("{}");
    return (exec_job){ .now = NOW, .has_op = 1, .fresh = s,
                       .op = { .kind = STORE_OP_PUT, .s = s, .now = NOW } };
}

static void run1(fake_store *f, exec_job *j, touch_queue *tq)
{
    exec_job *one = j;
    exec_run(&f->base, tq, &one, 1);
}

/* Another process drew the same id: a new one is drawn and the create tried
 * again, up to EXEC_CREATE_ATTEMPTS times in all. */
static void test_create_retries_a_taken_id(void)
{
    fake_store f = fresh_store();
    session_t s;
    exec_job j = create_job(&s);
    f.taken = EXEC_CREATE_ATTEMPTS - 1;
    run1(&f, &j, NULL);
    CHECK_EQ_INT(j.op.rc, RC_OK);
    CHECK_EQ_INT(f.puts, EXEC_CREATE_ATTEMPTS);
    CHECK(session_id_valid(s.id, strlen(s.id)));
    CHECK_STR_EQ(s.id, f.put_ids[EXEC_CREATE_ATTEMPTS - 1]); /* the id answered is the one stored */
    for (int a = 0; a < EXEC_CREATE_ATTEMPTS; a++)
        for (int b = a + 1; b < EXEC_CREATE_ATTEMPTS; b++)
            CHECK(strcmp(f.put_ids[a], f.put_ids[b]) != 0);

    f = fresh_store();
    j = create_job(&s);
    f.taken = 100;
    run1(&f, &j, NULL);
    CHECK_EQ_INT(j.op.rc, RC_EXISTS); /* given up: no endless loop */
    CHECK_EQ_INT(f.puts, EXEC_CREATE_ATTEMPTS);

    f = fresh_store();
    j = create_job(&s);
    run1(&f, &j, NULL);
    CHECK_EQ_INT(j.op.rc, RC_OK);
    CHECK_EQ_INT(f.puts, 1);
}

/* A session token's session is read first: live and the token's user's,
 * or the op never runs. */
static void test_callers_session_first(void)
{
    struct { const char *sid, *user; rc_t get_fails; rc_t want; } cases[] = {
        { SID_ALICE, "alice", RC_OK, RC_OK },
        { SID_ALICE, "mallory", RC_OK, RC_UNAUTHORIZED }, /* another user's session */
        { SID_GONE, "alice", RC_OK, RC_UNAUTHORIZED },    /* closed or expired */
        { SID_BAD, "alice", RC_OK, RC_UNAVAILABLE },      /* a record that does not decode */
        { SID_ALICE, "alice", RC_UNAVAILABLE, RC_UNAVAILABLE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_store f = fresh_store();
        session_t s;
        exec_job j = create_job(&s);
        f.get_fails = cases[i].get_fails;
        j.auth_sid = cases[i].sid;
        j.auth_user = (str_t){ cases[i].user, strlen(cases[i].user) };
        run1(&f, &j, NULL);
        CHECK_EQ_INT(j.auth_rc, cases[i].want);
        CHECK_EQ_INT(f.puts, cases[i].want == RC_OK ? 1 : 0);
        buf_free(&j.auth_rec);
    }
}

/* A close as owner that finds nothing is tried again as administrator only
 * when the job says so. */
static void test_close_as_admin(void)
{
    fake_store f = fresh_store();
    exec_job j = { .now = NOW, .has_op = 1, .admin_fallback = 1,
                   .op = { .kind = STORE_OP_DEL, .id = SID_ALICE, .user = STR_LIT("root"),
                           .now = NOW } };
    run1(&f, &j, NULL);
    CHECK_EQ_INT(j.op.rc, RC_OK);
    CHECK_EQ_INT(j.as_admin, 1);
    CHECK_EQ_INT(f.dels, 2);

    f = fresh_store();
    j.admin_fallback = 0;
    j.op.user = STR_LIT("mallory");
    run1(&f, &j, NULL);
    CHECK_EQ_INT(j.op.rc, RC_NOT_FOUND);
    CHECK_EQ_INT(j.as_admin, 0);
    CHECK_EQ_INT(f.dels, 1);

    f = fresh_store();
    j.admin_fallback = 1;
    j.op.user = STR_LIT("alice");
    run1(&f, &j, NULL);
    CHECK_EQ_INT(j.op.rc, RC_OK);
    CHECK_EQ_INT(j.as_admin, 0); /* the owner's own close */
    CHECK_EQ_INT(f.dels, 1);
}

/* Many jobs: one batch for their sessions, one for their ops. */
static void test_one_batch_per_step(void)
{
    fake_store f = fresh_store();
    session_t s[5];
    exec_job j[5], *jobs[5];
    for (int i = 0; i < 5; i++) {
        j[i] = create_job(&s[i]);
        j[i].auth_sid = SID_ALICE;
        j[i].auth_user = STR_LIT("alice");
        jobs[i] = &j[i];
    }
    exec_run(&f.base, NULL, jobs, 5);
    CHECK_EQ_INT(f.batches, 2);
    CHECK_EQ_INT(f.largest, 5);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(j[i].op.rc, RC_OK);
        buf_free(&j[i].auth_rec);
    }
}

/* What a read (GET) and a list of alice's session hand back as her
 * last_seen_at, through the executor with the queue tq. */
static int64_t read_last_seen(fake_store *f, touch_queue *tq)
{
    buf_t rec = BUF_INIT;
    session_t s;
    exec_job j = { .now = NOW, .has_op = 1,
                   .op = { .kind = STORE_OP_GET, .id = SID_ALICE, .now = NOW, .rec = &rec } };
    run1(f, &j, tq);
    int64_t seen = j.op.rc == RC_OK && record_decode(rec.p, rec.len, &s) == RC_OK ? s.last_seen_at : -1;
    buf_free(&rec);
    return seen;
}

static int list_one(const session_t *s, void *arg)
{
    *(int64_t *)arg = s->last_seen_at;
    return 0;
}

static int64_t list_last_seen(fake_store *f, touch_queue *tq)
{
    int64_t seen = -1;
    exec_job j = { .now = NOW, .has_op = 1,
                   .op = { .kind = STORE_OP_LIST, .user = STR_LIT("alice"), .now = NOW,
                           .each = list_one, .arg = &seen } };
    run1(f, &j, tq);
    CHECK(j.op.each == list_one && j.op.arg == &seen); /* the route's own, given back */
    return j.op.rc == RC_OK ? seen : -1;
}

/* Without an idle timeout, no use is written before the answer: one of a
 * session not recorded for SESSION_TOUCH_SOON seconds is noted for the
 * background writer; one not recorded for SESSION_TOUCH_EVERY (the
 * contract's lag of last_seen_at: under 60 s) is noted urgent, which wakes
 * the writer. Until written, reads and lists in this process show the use,
 * during the write too; then the store's value again. A full queue: the
 * urgent use is written before the answer. */
static void test_use_is_noted(void)
{
    touch_queue *tq = touch_queue_new();
    fake_store f = fresh_store();
    exec_job j = { .now = NOW, .auth_sid = SID_ALICE, .auth_user = STR_LIT("alice") };
    f.last_seen = NOW - SESSION_TOUCH_SOON + 1;
    run1(&f, &j, tq);
    CHECK_EQ_INT(touch_queue_noted(tq, SID_ALICE), 0);
    touch_queue_flush(tq, &f.base, NOW);
    CHECK_STR_EQ(f.touched, "");
    CHECK_EQ_INT(f.touches, 0);
    static const int64_t noted[] = { SESSION_TOUCH_SOON, SESSION_TOUCH_EVERY - 1,
                                     SESSION_TOUCH_EVERY, 600 };
    for (size_t i = 0; i < sizeof noted / sizeof noted[0]; i++) {
        int urgent = noted[i] >= SESSION_TOUCH_EVERY;
        f.last_seen = NOW - noted[i];
        f.touched[0] = '\0';
        buf_free(&j.auth_rec);
        j = (exec_job){ .now = NOW, .auth_sid = SID_ALICE, .auth_user = STR_LIT("alice") };
        run1(&f, &j, tq);
        CHECK_EQ_INT(j.auth_rc, RC_OK);
        CHECK_EQ_INT(f.touches, 0); /* not before the answer */
        CHECK_EQ_INT(f.last_seen, NOW - noted[i]);
        CHECK_EQ_INT(read_last_seen(&f, tq), NOW);
        CHECK_EQ_INT(list_last_seen(&f, tq), NOW);
        /* an urgent note wakes the writer at once; another lets it sleep */
        uint64_t deadline = clock_ms() + (urgent ? 5000 : 50);
        CHECK_EQ_INT(touch_queue_wait(tq, deadline), 1);
        if (urgent)
            CHECK(clock_ms() < deadline);
        else
            CHECK(clock_ms() >= deadline);
        f.tq = tq;
        f.noted_while_written = 0;
        CHECK_EQ_INT(touch_queue_flush(tq, &f.base, NOW + 1), RC_OK);
        f.tq = NULL;
        CHECK_STR_EQ(f.touched, SID_ALICE);
        CHECK_EQ_INT(f.noted_while_written, NOW); /* shown while it is written */
        CHECK_EQ_INT(f.last_seen, NOW); /* the use's time, not the flush's */
        /* shown until the next flush, for reads whose snapshot is older */
        CHECK_EQ_INT(touch_queue_noted(tq, SID_ALICE), NOW);
        CHECK_EQ_INT(touch_queue_flush(tq, &f.base, NOW + 1), RC_OK);
        CHECK_EQ_INT(touch_queue_noted(tq, SID_ALICE), 0);
        CHECK_EQ_INT(read_last_seen(&f, tq), NOW); /* the store's */
    }

    /* a full queue: the urgent use is written before the answer */
    for (int i = 0; i < TOUCH_QUEUE_MAX; i++) {
        char id[SESSION_ID_MAX + 1];
        snprintf(id, sizeof id, "FILLER%026d", i);
        CHECK_EQ_INT(touch_queue_add(tq, id, NOW, 0), RC_OK);
    }
    CHECK_EQ_INT(touch_queue_add(tq, SID_ALICE, NOW, 1), RC_FULL);
    f.last_seen = NOW - SESSION_TOUCH_EVERY;
    buf_free(&j.auth_rec);
    j = (exec_job){ .now = NOW, .auth_sid = SID_ALICE, .auth_user = STR_LIT("alice") };
    run1(&f, &j, tq);
    CHECK_EQ_INT(j.auth_rc, RC_OK);
    CHECK_EQ_INT(f.touches, 1); /* before the answer */
    session_t s;
    CHECK_EQ_INT(record_decode(j.auth_rec.p, j.auth_rec.len, &s), RC_OK);
    CHECK_EQ_INT(s.last_seen_at, NOW);
    buf_free(&j.auth_rec);
    touch_queue_flush(tq, &f.base, NOW);
    /* a queue told to stop ends the writer's wait at once */
    touch_queue_stop(tq);
    CHECK_EQ_INT(touch_queue_wait(tq, clock_ms() + 5000), 0);
    touch_queue_free(tq);

    /* without a queue (no background thread), the urgent use is written */
    f = fresh_store();
    f.last_seen = NOW - SESSION_TOUCH_EVERY;
    j = (exec_job){ .now = NOW, .auth_sid = SID_ALICE, .auth_user = STR_LIT("alice") };
    run1(&f, &j, NULL);
    CHECK_EQ_INT(f.touches, 1);
    buf_free(&j.auth_rec);
}

/* The background writer: each note written with its own use's time (one
 * store write per time); a failed write keeps its notes for the next one;
 * a use made while its session is being written is written after it when
 * it is later, and not again when it is not. */
static void test_touch_queue_writes(void)
{
    touch_queue *tq = touch_queue_new();
    fake_store f = fresh_store();
    f.last_seen = NOW - 100;
    CHECK_EQ_INT(touch_queue_add(tq, SID_ALICE, NOW - 1, 0), RC_OK);
    CHECK_EQ_INT(touch_queue_add(tq, SID_GONE, NOW - 2, 0), RC_OK);
    CHECK_EQ_INT(touch_queue_add(tq, SID_ALICE, NOW - 3, 0), RC_OK); /* earlier: kept NOW - 1 */
    CHECK_EQ_INT(touch_queue_flush(tq, &f.base, NOW), RC_OK);
    CHECK_EQ_INT(f.writes, 2);
    CHECK_EQ_INT(f.written_at[0], NOW - 2);
    CHECK_EQ_INT(f.written_at[1], NOW - 1);
    CHECK_EQ_INT(f.last_seen, NOW - 1);

    /* a failed write: noted still, and written by the next flush */
    f = fresh_store();
    touch_queue_flush(tq, &f.base, NOW); /* the landed notes go */
    f.last_seen = NOW - 100;
    f.touch_many_fails = RC_UNAVAILABLE;
    touch_queue_add(tq, SID_ALICE, NOW, 1);
    CHECK_EQ_INT(touch_queue_flush(tq, &f.base, NOW), RC_UNAVAILABLE);
    CHECK_EQ_INT(f.last_seen, NOW - 100);
    CHECK_EQ_INT(touch_queue_noted(tq, SID_ALICE), NOW);
    f.touch_many_fails = RC_OK;
    CHECK_EQ_INT(touch_queue_flush(tq, &f.base, NOW), RC_OK);
    CHECK_EQ_INT(f.last_seen, NOW);

    /* a later use during the write: written next; an equal one: not again */
    touch_queue_flush(tq, &f.base, NOW);
    f = fresh_store();
    f.tq = tq;
    f.use_while_written = NOW + 5;
    touch_queue_add(tq, SID_ALICE, NOW, 0);
    touch_queue_flush(tq, &f.base, NOW);
    CHECK_EQ_INT(touch_queue_flush(tq, &f.base, NOW + 5), RC_OK); /* noted again: NOW + 5 */
    CHECK_EQ_INT(f.writes, 2);
    CHECK_EQ_INT(f.written_at[1], NOW + 5);
    f.use_while_written = 0;
    touch_queue_flush(tq, &f.base, NOW + 5);
    CHECK_EQ_INT(f.writes, 2); /* the use during the second write was not later */
    touch_queue_free(tq);
}

static exec_job alice_job(uint32_t gen);

/* A refresh of a session unused for a minute (no idle timeout) is never
 * noted for the background writer (whose write would fail the rotation's
 * compare-and-set once), nor written before the rotation: the rotation
 * records the use, and succeeds at once. */
static void test_refresh_not_noted(void)
{
    touch_queue *tq = touch_queue_new();
    fake_store f = fresh_store();
    f.last_seen = NOW - 600;
    exec_job j = alice_job(0);
    j.refresh = 1;
    j.grace = 10;
    run1(&f, &j, tq);
    CHECK_EQ_INT(j.auth_rc, RC_OK);
    CHECK_EQ_INT(j.op.rc, RC_OK);
    CHECK_EQ_INT(touch_queue_noted(tq, SID_ALICE), 0);
    CHECK_EQ_INT(f.touches, 0);
    CHECK_EQ_INT(f.swaps, 1);
    CHECK_EQ_INT(j.cur.last_seen_at, NOW);
    buf_free(&j.auth_rec);
    touch_queue_free(tq);
}

static exec_job alice_job(uint32_t gen)
{
    return (exec_job){ .now = NOW, .auth_sid = SID_ALICE, .auth_user = STR_LIT("alice"),
                       .auth_gen = gen, .grace = 10 };
}

/* With an idle timeout, a use is written before the answer once
 * last_seen_at is session_idle_slack old (100 s: 5 s), and not before;
 * the record the route sees then carries it. A use the store cannot write
 * fails the request (503), and a session gone meanwhile is a 401. */
static void test_idle_use_is_written(void)
{
    touch_queue *tq = touch_queue_new();
    fake_store f = fresh_store();
    session_t s;
    f.idle = 100;
    f.last_seen = NOW - 4;
    exec_job j = alice_job(0);
    run1(&f, &j, tq);
    CHECK_EQ_INT(j.auth_rc, RC_OK);
    CHECK_EQ_INT(f.touches, 0);
    f.last_seen = NOW - 5;
    buf_free(&j.auth_rec);
    j = alice_job(0);
    run1(&f, &j, tq);
    CHECK_EQ_INT(j.auth_rc, RC_OK);
    CHECK_EQ_INT(f.touches, 1);
    CHECK_EQ_INT(f.batches, 3); /* its own batch, after the read */
    CHECK_EQ_INT(record_decode(j.auth_rec.p, j.auth_rec.len, &s), RC_OK);
    CHECK_EQ_INT(s.last_seen_at, NOW);
    touch_queue_flush(tq, &f.base, NOW);
    CHECK_STR_EQ(f.touched, ""); /* not also in the background */

    f.last_seen = NOW - 50;
    f.touch_fails = RC_UNAVAILABLE;
    buf_free(&j.auth_rec);
    j = alice_job(0);
    run1(&f, &j, NULL);
    CHECK_EQ_INT(j.auth_rc, RC_UNAVAILABLE);
    f.touch_fails = RC_NOT_FOUND;
    buf_free(&j.auth_rec);
    j = alice_job(0);
    run1(&f, &j, NULL);
    CHECK_EQ_INT(j.auth_rc, RC_UNAUTHORIZED);
    buf_free(&j.auth_rec);
    touch_queue_free(tq);
}

/* A session at generation 2, rotated 5 s ago, grace 10 s: its current token
 * and the previous one pass; an older one, or the previous one once its
 * window is over (judged to the second), is theft: the session is closed
 * (STORE_TOKEN_REUSE) and the request is a 401; a token newer than the
 * session (a store restored from a backup) is a 401 that closes nothing. */
static void test_token_generations(void)
{
    static const struct {
        uint32_t gen;
        int64_t rotated_ago;
        rc_t rc;
        int closed;
    } cases[] = {
        { 2, 5, RC_OK, 0 },  { 1, 5, RC_OK, 0 },           { 1, 10, RC_OK, 0 },
        { 1, 11, RC_UNAUTHORIZED, 1 }, { 0, 5, RC_UNAUTHORIZED, 1 },
        { 3, 5, RC_UNAUTHORIZED, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_store f = fresh_store();
        f.gen = 2;
        f.rotated_at = NOW - cases[i].rotated_ago;
        exec_job j = alice_job(cases[i].gen);
        j.has_op = 1;
        j.op = (store_op){ .kind = STORE_OP_PING, .now = NOW };
        run1(&f, &j, NULL);
        CHECK_EQ_INT(j.auth_rc, cases[i].rc);
        CHECK_EQ_INT(f.dels, cases[i].closed);
        if (cases[i].closed)
            CHECK_EQ_INT(f.why, STORE_TOKEN_REUSE);
        buf_free(&j.auth_rec);
    }
}

/* A refresh with a token of generation 0 at now and grace, on f: j's
 * record (from an earlier run) is freed first. */
static void refresh_on(fake_store *f, exec_job *j, int64_t now, int64_t grace)
{
    buf_free(&j->auth_rec);
    *j = alice_job(0);
    j->now = now;
    j->grace = grace;
    j->refresh = 1;
    run1(f, j, NULL);
}

/* A refresh rotates by one compare-and-set; one that loses to another
 * process's refresh with the same token answers that rotation (and writes
 * nothing more); one that loses to a touch tries again; one that always
 * loses gives up (503); one with a replaced token closes the session. */
static void test_refresh(void)
{
    fake_store f = fresh_store();
    exec_job j = { .auth_rec = BUF_INIT };
    refresh_on(&f, &j, NOW, 10);
    CHECK_EQ_INT(j.auth_rc, RC_OK);
    CHECK_EQ_INT(j.op.rc, RC_OK);
    CHECK_EQ_INT(f.swaps, 1);
    CHECK_EQ_INT(f.gen, 1);
    CHECK_EQ_INT(j.cur.gen, 1);
    CHECK_EQ_INT(j.cur.rotated_at, NOW);
    CHECK_EQ_INT(j.cur.last_seen_at, NOW);
    CHECK(str_eq_cstr(j.cur.user_id, "alice"));

    f = fresh_store();
    f.rotate_first = 1;
    refresh_on(&f, &j, NOW, 10);
    CHECK_EQ_INT(j.op.rc, RC_OK);
    CHECK_EQ_INT(f.swaps, 1);
    CHECK_EQ_INT(f.gen, 1);
    CHECK_EQ_INT(j.cur.gen, 1);

    f = fresh_store();
    f.touch_first = 2;
    refresh_on(&f, &j, NOW, 10);
    CHECK_EQ_INT(j.op.rc, RC_OK);
    CHECK_EQ_INT(f.swaps, 3);
    CHECK_EQ_INT(f.gen, 1);

    f = fresh_store();
    f.touch_first = EXEC_SWAP_ATTEMPTS;
    refresh_on(&f, &j, NOW, 10);
    CHECK_EQ_INT(j.op.rc, RC_UNAVAILABLE);
    CHECK_EQ_INT(f.swaps, EXEC_SWAP_ATTEMPTS);
    CHECK_EQ_INT(f.gen, 0);

    /* grace 0: a rotation by another process in the same second (found by
     * the compare-and-set) is still inside the window ... */
    f = fresh_store();
    f.rotate_first = 1;
    refresh_on(&f, &j, NOW + 1, 0);
    CHECK_EQ_INT(j.auth_rc, RC_OK);
    /* ... and one a second before is not: theft, the session closed */
    f = fresh_store();
    f.gen = 1;
    f.rotated_at = NOW - 1;
    refresh_on(&f, &j, NOW, 0);
    CHECK_EQ_INT(j.auth_rc, RC_UNAUTHORIZED);
    CHECK_EQ_INT(f.swaps, 0);
    CHECK_EQ_INT(f.dels, 1);
    CHECK_EQ_INT(f.why, STORE_TOKEN_REUSE);
    buf_free(&j.auth_rec);
}

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int parked, done, parked_before_done;
} waiter;

static void park(void *arg)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->parked = 1;
    pthread_mutex_unlock(&w->lock);
}

static void done(exec_job *j, int last)
{
    (void)last;
    waiter *w = j->arg;
    pthread_mutex_lock(&w->lock);
    w->parked_before_done = w->parked;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* On a local store a read runs inline and a write on a lane's thread
 * (parked first); on a remote store reads are queued too; after a drain
 * everything runs inline. */
static void test_where_jobs_run(void)
{
    for (int remote = 0; remote <= 1; remote++) {
        fake_store f = fresh_store();
        f.base.remote = remote;
        exec *e = exec_start(&f.base, NULL);
        CHECK(e != NULL);
        waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };
        buf_t rec = BUF_INIT;
        exec_job rd = { .now = NOW, .has_op = 1, .done = done, .arg = &w,
                        .op = { .kind = STORE_OP_GET, .id = SID_ALICE, .now = NOW, .rec = &rec } };
        int queued = exec_submit(e, &rd, park, &w);
        CHECK_EQ_INT(queued, remote);
        pthread_mutex_lock(&w.lock);
        while (queued && !w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        CHECK_EQ_INT(rd.op.rc, RC_OK);
        CHECK_EQ_INT(w.parked, remote);
        CHECK(pthread_equal(f.last_thread, pthread_self()) == !remote);

        session_t s;
        exec_job wr = create_job(&s);
        w = (waiter){ PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };
        wr.done = done;
        wr.arg = &w;
        CHECK_EQ_INT(exec_submit(e, &wr, park, &w), 1);
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        CHECK_EQ_INT(wr.op.rc, RC_OK);
        CHECK_EQ_INT(w.parked_before_done, 1);
        CHECK(!pthread_equal(f.last_thread, pthread_self()));

        exec_drain(e);
        w = (waiter){ PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };
        wr = create_job(&s);
        CHECK_EQ_INT(exec_submit(e, &wr, park, &w), 0);
        CHECK_EQ_INT(wr.op.rc, RC_OK);
        CHECK_EQ_INT(w.parked, 0);
        exec_free(e);
        buf_free(&rec);
    }
}

/* On a local store a validate reads inline; when that read finds a use to
 * write (an idle session), the job goes on in the commit lane. */
static void test_inline_read_then_queued_write(void)
{
    fake_store f = fresh_store();
    exec *e = exec_start(&f.base, NULL);
    CHECK(e != NULL);
    f.idle = 100;
    f.last_seen = NOW - 1;
    waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };
    exec_job j = alice_job(0);
    j.done = done;
    j.arg = &w;
    CHECK_EQ_INT(exec_submit(e, &j, park, &w), 0);
    CHECK_EQ_INT(j.auth_rc, RC_OK);
    CHECK_EQ_INT(f.touches, 0);

    f.last_seen = NOW - 60;
    buf_free(&j.auth_rec);
    j = alice_job(0);
    j.done = done;
    j.arg = &w;
    int queued = exec_submit(e, &j, park, &w);
    CHECK_EQ_INT(queued, 1);
    pthread_mutex_lock(&w.lock);
    while (queued && !w.done) /* never waits for a job that ran inline */
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    CHECK_EQ_INT(w.parked_before_done, 1);
    CHECK_EQ_INT(j.auth_rc, RC_OK);
    CHECK_EQ_INT(f.touches, 1);
    CHECK(!pthread_equal(f.last_thread, pthread_self()));
    exec_drain(e);
    exec_free(e);
    buf_free(&j.auth_rec);
}

int main(void)
{
    RUN(test_create_retries_a_taken_id);
    RUN(test_callers_session_first);
    RUN(test_close_as_admin);
    RUN(test_one_batch_per_step);
    RUN(test_use_is_noted);
    RUN(test_touch_queue_writes);
    RUN(test_refresh_not_noted);
    RUN(test_idle_use_is_written);
    RUN(test_token_generations);
    RUN(test_refresh);
    RUN(test_where_jobs_run);
    RUN(test_inline_read_then_queued_write);
    return UNIT_SUMMARY();
}
