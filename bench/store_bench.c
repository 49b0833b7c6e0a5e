/* store_bench -- in-process micro-benchmark of a store: put, get, list, del
 * per second, one thread, through the store interface (store.h).
 *
 *   build/store_bench STORE_URL [N]
 *   build/store_bench --seed STORE_URL N [TOKENS K]
 *   build/store_bench --fsync DIR
 *   build/store_bench --batches STORE_URL THREADS SECONDS
 *
 * Prints one line per operation: "<scheme> <op> <ops/s>". Puts are durable
 * one by one (each is a committed write), as the service does them.
 * --seed fills the store with N live sessions (4 per user, a 100-byte user
 * agent, empty data) for the scale figures, syncing once at the end; with
 * TOKENS and K, it also writes the session tokens of K of them, spread
 * evenly, one per line to the file TOKENS (signed with $JWT_SECRET, as the
 * sessiond that serves the store will verify them).
 * --fsync times a 4 KiB write + fdatasync in DIR (the disk's floor under
 * every durable commit) and prints the median and p90 in milliseconds.
 * --batches measures the store's durable create capacity without HTTP:
 * THREADS threads (the commit lane's: 2 on LMDB, 1 on Redis) each write
 * batches of B new sessions of one user with store_batch, back to back, for
 * SECONDS per B in 1 2 4 8 16 32; one line per B: creates/s and the mean
 * time of a batch. With C connections in a closed loop at most C creates
 * are in flight, so the line of B = C / THREADS is the most creates/s the
 * store allows C connections (the HTTP work comes on top). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "session.h"
#include "store.h"
#include "token.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_one(const session_t *s, void *arg)
{
    (void)s;
    (*(size_t *)arg)++;
    return 0;
}

static const char ua100[] =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 OK";

/* A session as a browser login would make it: a 100-byte user agent, empty
 * data, a fresh id ending with its user's placement tag, as the service
 * makes them (on a Redis Cluster an untagged id costs an alias key more).
 * user must outlive s. */
static void sample_session(session_t *s, const char *user, int64_t now, int64_t ttl)
{
    memset(s, 0, sizeof *s);
    s->user_id = (str_t){ user, strlen(user) };
    session_id_generate_for(s->user_id, s->id);
    s->created_at = s->last_seen_at = now;
    s->expires_at = now + ttl;
    s->ip = STR_LIT("203.0.113.7");
    s->user_agent = (str_t){ ua100, sizeof ua100 - 1 };
    s->data = STR_LIT("{}");
}

/* --seed's session tokens: signed as sessiond signs them (JWT_SECRET of
 * the environment, no issuer, no audience) for k of the n sessions, spread
 * evenly, one per line in path. */
typedef struct token_out {
    FILE *f;
    token_policy pol;
    size_t every;
} token_out;

static int token_out_open(token_out *t, const char *path, size_t n, size_t k)
{
    const char *secret = getenv("JWT_SECRET");
    memset(t, 0, sizeof *t);
    if (secret == NULL || strlen(secret) < 32 || k == 0 || k > n) {
        fprintf(stderr, "seed: tokens need JWT_SECRET (32+ bytes) and 0 < K <= N\n");
        return 1;
    }
    t->pol.key = (const unsigned char *)secret;
    t->pol.key_len = strlen(secret);
    t->every = n / k;
    t->f = fopen(path, "w");
    if (t->f == NULL) {
        perror(path);
        return 1;
    }
    return 0;
}

static int token_write(token_out *t, const session_t *s, int64_t now)
{
    char user[SESSION_USER_MAX + 1], *tok = NULL;
    snprintf(user, sizeof user, "%.*s", (int)s->user_id.len, s->user_id.p);
    if (token_sign_session(&t->pol, user, s->id, now, s->expires_at, &tok) != RC_OK)
        return 1;
    fprintf(t->f, "%s\n", tok);
    free(tok);
    return 0;
}

static int seed(const char *url, size_t n, const char *tokens, size_t k)
{
    store_options opt = { .map_size = 1LL << 33, .timeout_ms = 1000, .sync = STORE_SYNC_NONE };
    char err[256], user[32];
    store_t *st;
    if (store_open(url, &opt, &st, err, sizeof err) != RC_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    token_out t = { 0 };
    if (tokens != NULL && token_out_open(&t, tokens, n, k) != 0)
        return 1;
    int64_t now = (int64_t)time(NULL);
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        session_t s;
        snprintf(user, sizeof user, "user-%zu", i / 4);
        sample_session(&s, user, now, 86400);
        if (store_put(st, &s) != RC_OK) {
            fprintf(stderr, "seed: put %zu failed\n", i);
            return 1;
        }
        if (t.f != NULL && i % t.every == 0 && i / t.every < k && token_write(&t, &s, now) != 0) {
            fprintf(stderr, "seed: token %zu failed\n", i);
            return 1;
        }
    }
    if (t.f != NULL && fclose(t.f) != 0) {
        perror(tokens);
        return 1;
    }
    store_close(st); /* syncs */
    fprintf(stderr, "seeded %zu sessions in %.1f s\n", n, now_s() - t0);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int fsync_probe(const char *dir)
{
    char path[4096], page[4096];
    enum { N = 200 };
    double t[N];
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    memset(page, 'x', sizeof page);
    for (int i = 0; i < N; i++) {
        double t0 = now_s();
        if (pwrite(fd, page, sizeof page, (off_t)(i % 16) * 4096) != (ssize_t)sizeof page ||
            fdatasync(fd) != 0) {
            perror("fsync probe");
            return 1;
        }
        t[i] = (now_s() - t0) * 1000;
    }
    close(fd);
    unlink(path);
    qsort(t, N, sizeof t[0], cmp_double);
    printf("disk: 4 KiB write + fdatasync: median %.2f ms, p90 %.2f ms\n", t[N / 2], t[N * 9 / 10]);
    return 0;
}

typedef struct batcher {
    store_t *st;
    size_t b;
    double until;
    size_t batches, failed;
    double busy; /* seconds inside store_batch */
} batcher;

static void *batch_loop(void *arg)
{
    batcher *w = arg;
    session_t s[32];
    store_op op[32], *ops[32];
    const char *user = "bench-user";
    while (now_s() < w->until) {
        int64_t now = (int64_t)time(NULL);
        for (size_t i = 0; i < w->b; i++) {
            sample_session(&s[i], user, now, 3600);
            op[i] = (store_op){ .kind = STORE_OP_PUT, .s = &s[i], .now = now };
            ops[i] = &op[i];
        }
        double t0 = now_s();
        store_batch(w->st, ops, w->b);
        w->busy += now_s() - t0;
        w->batches++;
        for (size_t i = 0; i < w->b; i++)
            w->failed += op[i].rc != RC_OK;
    }
    return NULL;
}

static int batches(const char *url, size_t threads, double secs)
{
    static const size_t sizes[] = { 1, 2, 4, 8, 16, 32 };
    store_options opt = { .map_size = 1LL << 32, .timeout_ms = 1000, .sync = STORE_SYNC_FULL };
    char err[256];
    store_t *st;
    if (threads < 1 || threads > 8 || secs <= 0) {
        fprintf(stderr, "batches: 1..8 threads, a positive time\n");
        return 2;
    }
    if (store_open(url, &opt, &st, err, sizeof err) != RC_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        batcher w[8];
        pthread_t tid[8];
        double t0 = now_s();
        size_t started = 0, n = 0, nb = 0, failed = 0;
        double busy = 0;
        for (size_t i = 0; i < threads; i++) {
            w[i] = (batcher){ .st = st, .b = sizes[k], .until = t0 + secs };
            if (pthread_create(&tid[i], NULL, batch_loop, &w[i]) == 0)
                started++;
        }
        for (size_t i = 0; i < started; i++) {
            pthread_join(tid[i], NULL);
            nb += w[i].batches;
            n += w[i].batches * w[i].b;
            failed += w[i].failed;
            busy += w[i].busy;
        }
        double took = now_s() - t0;
        if (started != threads || failed > 0 || nb == 0) {
            fprintf(stderr, "batches: %zu threads of %zu started, %zu creates failed\n", started,
                    threads, failed);
            store_close(st);
            return 1;
        }
        printf("%s batch %2zu x %zu threads: %7.0f creates/s, %.2f ms per batch\n",
               store_scheme(st), sizes[k], threads, (double)n / took, busy * 1000 / (double)nb);
    }
    store_close(st);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--batches") == 0)
        return batches(argv[2], (size_t)strtoul(argv[3], NULL, 10), strtod(argv[4], NULL));
    if (argc == 3 && strcmp(argv[1], "--fsync") == 0)
        return fsync_probe(argv[2]);
    if ((argc == 4 || argc == 6) && strcmp(argv[1], "--seed") == 0)
        return seed(argv[2], (size_t)strtoul(argv[3], NULL, 10), argc == 6 ? argv[4] : NULL,
                    argc == 6 ? (size_t)strtoul(argv[5], NULL, 10) : 0);
    if (argc < 2) {
        fprintf(stderr, "usage: %s STORE_URL [N]\n", argv[0]);
        return 2;
    }
    size_t n = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 2000;
    store_options opt = { .map_size = 1LL << 30, .timeout_ms = 1000 };
    char err[256];
    store_t *st;
    if (store_open(argv[1], &opt, &st, err, sizeof err) != RC_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char (*ids)[SESSION_ID_MAX + 1] = calloc(n, sizeof *ids);
    char user[32];
    int64_t now = (int64_t)time(NULL);
    buf_t rec = BUF_INIT;
    snprintf(user, sizeof user, "bench-%ld", (long)now);

    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        session_t s;
        sample_session(&s, user, now, 3600);
        memcpy(ids[i], s.id, sizeof s.id);
        if (store_put(st, &s) != RC_OK) {
            fprintf(stderr, "put failed\n");
            return 1;
        }
    }
    double t1 = now_s();
    for (size_t i = 0; i < n; i++)
        if (store_get(st, ids[i], now, &rec) != RC_OK) {
            fprintf(stderr, "get failed\n");
            return 1;
        }
    double t2 = now_s();
    size_t lists = n / 100 ? n / 100 : 1, seen = 0;
    for (size_t i = 0; i < lists; i++)
        store_list(st, (str_t){ user, strlen(user) }, now, count_one, &seen);
    double t3 = now_s();
    for (size_t i = 0; i < n; i++)
        if (store_del(st, ids[i], STR_NULL, now) != RC_OK) {
            fprintf(stderr, "del failed\n");
            return 1;
        }
    double t4 = now_s();
    const char *scheme = store_scheme(st);
    printf("%s put %.0f\n", scheme, (double)n / (t1 - t0));
    printf("%s get %.0f\n", scheme, (double)n / (t2 - t1));
    printf("%s list(%zu sessions) %.0f\n", scheme, n, (double)lists / (t3 - t2));
    printf("%s del %.0f\n", scheme, (double)n / (t4 - t3));
    buf_free(&rec);
    free(ids);
    store_close(st);
    return 0;
}
