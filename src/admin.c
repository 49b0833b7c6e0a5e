/* admin.c -- sessionctl (see admin.h). Talks to the store directly, with the
 * same STORE_URL as the service; it needs no token or secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "admin.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "session.h"
#include "store.h"
#include "record.h"
#include "session_json.h"

static const char usage[] =
    "usage: sessionctl [--store URL] COMMAND [ARGS]\n"
    "  list USER               the user's live sessions, newest first (JSON lines)\n"
    "  show ID                 one session (JSON)\n"
    "  close ID                close one session\n"
    "  close-user USER [ID]    close all of USER's sessions (except ID)\n"
    "  stats                   number of live sessions and the store in use\n"
    "  export                  every live session as JSON lines on stdout\n"
    "  import                  JSON lines from stdin into the store (ids kept)\n"
    "  copy FROM_URL TO_URL    copy every live session between stores\n"
    "The store is --store (lmdb://PATH, redis://..., redis-sentinel://...), else\n"
    "STORE_URL. Settings (STORE_URL, LMDB_MAP_SIZE, LMDB_SYNC, REDIS_TIMEOUT_MS,\n"
    "REDIS_SENTINEL_PASSWORD, REDIS_WAIT_REPLICAS, REDIS_WAIT_TIMEOUT_MS) come from\n"
    "the environment and ENV_FILE or ./.env, checked as the service checks them;\n"
    "JWT_SECRET is not needed.\n";

static store_t *open_store(const config *cfg, const char *url)
{
    store_options opt = {
        .map_size = cfg->lmdb_map_size,
        .timeout_ms = cfg->redis_timeout_ms,
        .sync = (store_sync)cfg->lmdb_sync,
        .wait_replicas = cfg->redis_wait_replicas,
        .wait_timeout_ms = cfg->redis_wait_timeout_ms,
        .sentinel_password = cfg->redis_sentinel_password,
    };
    char err[512];
    store_t *st = NULL;
    if (store_open(url, &opt, &st, err, sizeof err) != RC_OK) {
        fprintf(stderr, "sessionctl: %s\n", err);
        return NULL;
    }
    return st;
}

static int fail(const char *what, rc_t rc)
{
    fprintf(stderr, "sessionctl: %s: %s\n", what, rc_str(rc));
    return 1;
}

typedef struct out_state {
    buf_t line;
    size_t n;
    rc_t rc;
    int export; /* the export's form (with the token rotation's state) */
} out_state;

static int print_one(const session_t *s, void *arg)
{
    out_state *o = arg;
    buf_reset(&o->line);
    if ((o->rc = o->export ? session_json_render_export(s, &o->line)
                           : session_json_render(s, NULL, &o->line)) != RC_OK)
        return 1;
    fwrite(o->line.p, 1, o->line.len, stdout);
    fputc('\n', stdout);
    o->n++;
    return 0;
}

static int count_one(const session_t *s, void *arg)
{
    (void)s;
    ((out_state *)arg)->n++;
    return 0;
}

typedef struct copy_state {
    store_t *to;
    size_t copied, existing, refused;
    rc_t rc;
} copy_state;

/* Writes one session to c->to. A session the store cannot place (on a
 * Redis Cluster, an id of the new length with another user's tag) is
 * named, counted and skipped; any other failure stops the copy. */
static int put_one(const session_t *s, void *arg)
{
    copy_state *c = arg;
    rc_t rc = store_put(c->to, s);
    if (rc == RC_OK) {
        c->copied++;
    } else if (rc == RC_EXISTS) {
        c->existing++;
    } else if (rc == RC_INVALID) {
        fprintf(stderr, "sessionctl: session %s cannot be placed in this store (its id "
                "does not end with its user's tag: docs/REDIS.md, \"Cluster\"): refused\n",
                s->id);
        c->refused++;
    } else {
        c->rc = rc;
    }
    return c->rc != RC_OK;
}

static int import_lines(store_t *st, int64_t now)
{
    copy_state c = { st, 0, 0, 0, RC_OK };
    buf_t space = BUF_INIT;
    char *line = NULL;
    size_t cap = 0, lineno = 0, expired = 0, bad = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        session_t s;
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        if (session_json_parse(line, (size_t)n, &s, &space) != RC_OK) {
            fprintf(stderr, "sessionctl: import: line %zu is not a session\n", lineno);
            bad++;
            continue;
        }
        if (!session_live(&s, now)) {
            expired++;
            continue;
        }
        if (put_one(&s, &c))
            break;
    }
    free(line);
    buf_free(&space);
    bad += c.refused;
    fprintf(stderr, "sessionctl: imported %zu, already present %zu, expired %zu, refused %zu\n",
            c.copied, c.existing, expired, bad);
    if (c.rc != RC_OK)
        return fail("import", c.rc);
    return bad ? 1 : 0;
}

static int run(const config *cfg, const char *url, char **argv, int argc);

int admin_main(int argc, char **argv)
{
    const char *url = NULL;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "--store") == 0) {
        url = argv[2];
        i = 3;
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    log_init("sessionctl", LOG_WARN);
    config cfg;
    char err[512];
    if (config_load_tool(&cfg, err, sizeof err) != RC_OK) {
        fprintf(stderr, "sessionctl: config: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    if (url == NULL)
        url = cfg.store_url;
    int status = run(&cfg, url, argv + i, argc - i);
    config_free(&cfg);
    return status;
}

/* One command (argv[0]) with its arguments, on the store at url. */
static int run(const config *cfg, const char *url, char **argv, int argc)
{
    int i = 1;
    const char *cmd = argv[0];
    int nargs = argc - i;
    int64_t now = clock_wall();

    if (strcmp(cmd, "copy") == 0) {
        if (nargs != 2) {
            fputs(usage, stderr);
            return 2;
        }
        store_t *from = open_store(cfg, argv[i]), *to = from ? open_store(cfg, argv[i + 1]) : NULL;
        if (to == NULL) {
            store_close(from);
            return 1;
        }
        copy_state c = { to, 0, 0, 0, RC_OK };
        rc_t rc = store_scan(from, now, put_one, &c);
        if (rc == RC_OK)
            rc = c.rc;
        fprintf(stderr, "sessionctl: copied %zu, already present %zu, refused %zu\n", c.copied,
                c.existing, c.refused);
        store_close(from);
        store_close(to);
        return rc != RC_OK ? fail("copy", rc) : c.refused ? 1 : 0;
    }

    int want = -1;
    if (strcmp(cmd, "list") == 0 || strcmp(cmd, "show") == 0 || strcmp(cmd, "close") == 0)
        want = 1;
    else if (strcmp(cmd, "stats") == 0 || strcmp(cmd, "export") == 0 ||
             strcmp(cmd, "import") == 0)
        want = 0;
    else if (strcmp(cmd, "close-user") == 0)
        want = nargs == 2 ? 2 : 1;
    if (want < 0 || nargs != want) {
        fputs(usage, stderr);
        return 2;
    }
    store_t *st = open_store(cfg, url);
    if (st == NULL)
        return 1;
    out_state o = { BUF_INIT, 0, RC_OK, 0 };
    rc_t rc = RC_OK;
    int status = 0;
    const char *arg = nargs ? argv[i] : "";

    if (strcmp(cmd, "list") == 0) {
        rc = store_list(st, (str_t){ arg, strlen(arg) }, now, print_one, &o);
    } else if (strcmp(cmd, "show") == 0) {
        buf_t rec = BUF_INIT;
        session_t s;
        rc = store_get(st, arg, now, &rec);
        if (rc == RC_OK && (rc = record_decode(rec.p, rec.len, &s)) == RC_OK)
            print_one(&s, &o);
        buf_free(&rec);
    } else if (strcmp(cmd, "close") == 0) {
        rc = store_del(st, arg, STR_NULL, now);
        if (rc == RC_OK)
            printf("closed 1\n");
    } else if (strcmp(cmd, "close-user") == 0) {
        size_t n = 0;
        rc = store_del_user(st, (str_t){ arg, strlen(arg) }, nargs == 2 ? argv[i + 1] : NULL,
                            now, &n);
        if (rc == RC_OK)
            printf("closed %zu\n", n);
    } else if (strcmp(cmd, "stats") == 0) {
        rc = store_scan(st, now, count_one, &o);
        if (rc == RC_OK)
            printf("{\"store\":\"%s\",\"live_sessions\":%zu}\n", store_scheme(st), o.n);
    } else if (strcmp(cmd, "export") == 0) {
        o.export = 1;
        rc = store_scan(st, now, print_one, &o);
        if (rc == RC_OK)
            fprintf(stderr, "sessionctl: exported %zu\n", o.n);
    } else {
        status = import_lines(st, now);
    }
    if (rc == RC_OK && o.rc != RC_OK)
        rc = o.rc;
    if (rc != RC_OK)
        status = fail(cmd, rc);
    fflush(stdout);
    buf_free(&o.line);
    store_close(st);
    return status;
}
