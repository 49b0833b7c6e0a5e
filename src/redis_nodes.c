/* redis_nodes.c -- a thread's slot map, its connections to a Redis
 * Cluster's primaries, and routed pipelines (see redis_nodes.h). */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "log.h"
#include "redis_nodes.h"
#include "resolve.h"

#define CONN_MAX (REDIS_CLUSTER_NODES_MAX + REDIS_URL_HOSTS_MAX)
#define NAMES_MAX 64          /* node host names looked up in the background */
#define RECONNECT_MS 200      /* a node that failed is not tried again sooner */
#define IDLE_CHECK_MS 100     /* a connection idle this long is checked before use */
#define PASSES 16             /* rounds of redirections and retries for one pipeline */
#define TRYAGAIN_MS 20        /* the pause before a TRYAGAIN is sent again */
#define WARN_EVERY_MS 5000

struct redis_nodes_shared {
    const redis_url *url;
    int64_t timeout_ms;
    pthread_mutex_t lock; /* names */
    size_t nnames;
    struct {
        char name[REDIS_CLUSTER_HOST_MAX + 1];
        resolve_t *r;
    } names[NAMES_MAX];
    atomic_uint_fast64_t warned_ms;
};

typedef struct cnode {
    char host[REDIS_CLUSTER_HOST_MAX + 1]; /* a name or a numeric address */
    int port;
    redisContext *c;
    uint64_t retry_at_ms, used_ms;
    int64_t tmo_ms; /* the read timeout set on c */
    int dirty; /* writes sent since its last WAIT */
    long long acks; /* its last WAIT's answer; -1: failed, or broke with writes unacknowledged */
} cnode;

struct redis_nodes {
    redis_nodes_shared *sh;
    redis_slot_map *map, *spare; /* NULL until the first CLUSTER SLOTS */
    uint64_t refresh_at_ms;      /* no CLUSTER SLOTS before then */
    int stale;                   /* a MOVED or a failure: read the map again */
    int lost;                    /* a connection with unacknowledged writes broke */
    unsigned char *wrote;        /* per slot: 1 + the connection of its last write, or 0 */
    size_t nconn;
    cnode conn[CONN_MAX];
};

/* ---- shared ---- */

redis_nodes_shared *redis_nodes_shared_new(const redis_url *url, int64_t timeout_ms)
{
    redis_nodes_shared *sh = calloc(1, sizeof *sh);
    if (sh == NULL)
        return NULL;
    sh->url = url;
    sh->timeout_ms = timeout_ms;
    pthread_mutex_init(&sh->lock, NULL);
    atomic_init(&sh->warned_ms, 0);
    return sh;
}

void redis_nodes_shared_free(redis_nodes_shared *sh)
{
    if (sh == NULL)
        return;
    for (size_t i = 0; i < sh->nnames; i++)
        resolve_free(sh->names[i].r);
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

/* One warning every WARN_EVERY_MS for the whole store: a node that is down
 * fails every command of its slots, and the log must not say so each time. */
static void warn(redis_nodes_shared *sh, const char *what, const cnode *cn)
{
    uint64_t now = clock_ms(), last = atomic_load(&sh->warned_ms);
    if ((last == 0 || now - last >= WARN_EVERY_MS) &&
        atomic_compare_exchange_strong(&sh->warned_ms, &last, now))
        log_msg(LOG_WARN, "redis-cluster: node %s:%d %s", cn->host, cn->port, what);
}

/* The numeric address of host into addr, a name looked up off this thread
 * (resolve.h) and waited for at most wait_ms. */
static rc_t address(redis_nodes_shared *sh, const char *host, int64_t wait_ms,
                    char addr[RESOLVE_ADDR_MAX])
{
    unsigned char bin[sizeof(struct in6_addr)];
    size_t len = strlen(host);
    if (len < RESOLVE_ADDR_MAX &&
        (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1)) {
        memcpy(addr, host, len + 1);
        return RC_OK;
    }
    resolve_t *r = NULL;
    pthread_mutex_lock(&sh->lock);
    for (size_t i = 0; i < sh->nnames && r == NULL; i++)
        if (strcmp(sh->names[i].name, host) == 0)
            r = sh->names[i].r;
    if (r == NULL && sh->nnames < NAMES_MAX && (r = resolve_new(host)) != NULL) {
        snprintf(sh->names[sh->nnames].name, sizeof sh->names[0].name, "%s", host);
        sh->names[sh->nnames++].r = r;
    }
    pthread_mutex_unlock(&sh->lock);
    if (r == NULL)
        return RC_UNAVAILABLE;
    return resolve_get(r, wait_ms, addr);
}

/* ---- replies of our own ---- */

static redisReply *own_error(const char *what)
{
    redisReply *r = calloc(1, sizeof *r);
    size_t n = strlen(REDIS_NODES_ERR) + strlen(what);
    if (r == NULL || (r->str = malloc(n + 1)) == NULL) {
        free(r);
        return NULL;
    }
    snprintf(r->str, n + 1, "%s%s", REDIS_NODES_ERR, what);
    r->type = REDIS_REPLY_ERROR;
    r->len = n;
    return r;
}

static redisReply *own_integer(long long v)
{
    redisReply *r = calloc(1, sizeof *r);
    if (r != NULL) {
        r->type = REDIS_REPLY_INTEGER;
        r->integer = v;
    }
    return r;
}

/* ---- a thread's connections ---- */

redis_nodes *redis_nodes_new(redis_nodes_shared *sh)
{
    redis_nodes *nd = calloc(1, sizeof *nd);
    if (nd != NULL)
        nd->sh = sh;
    return nd;
}

void redis_nodes_free(redis_nodes *nd)
{
    if (nd == NULL)
        return;
    for (size_t i = 0; i < nd->nconn; i++)
        if (nd->conn[i].c)
            redisFree(nd->conn[i].c);
    free(nd->map);
    free(nd->spare);
    free(nd->wrote);
    free(nd);
}

static void drop(redis_nodes *nd, cnode *cn)
{
    if (cn->c != NULL)
        redisFree(cn->c);
    cn->c = NULL;
    if (cn->dirty) {
        nd->lost = 1;
        cn->acks = -1;
    }
    cn->dirty = 0;
    cn->retry_at_ms = clock_ms() + RECONNECT_MS;
    nd->stale = 1; /* a failover, perhaps: the map may have changed */
}

/* The connection slot of (host, port), added when new; -1 when the table
 * is full of live connections. */
static int conn_of(redis_nodes *nd, const char *host, int port)
{
    for (size_t i = 0; i < nd->nconn; i++)
        if (nd->conn[i].port == port && strcmp(nd->conn[i].host, host) == 0)
            return (int)i;
    size_t at = nd->nconn;
    if (at == CONN_MAX) { /* reuse a slot without a connection */
        for (at = 0; at < CONN_MAX && nd->conn[at].c != NULL; at++)
            ;
        if (at == CONN_MAX)
            return -1;
    } else {
        nd->nconn++;
    }
    cnode *cn = &nd->conn[at];
    memset(cn, 0, sizeof *cn);
    snprintf(cn->host, sizeof cn->host, "%s", host);
    cn->port = port;
    return (int)at;
}

/* Whether an idle connection was closed by the other side: Redis sends
 * nothing unasked, so anything readable means it is of no use. */
static int went_stale(const redisContext *c)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN | POLLRDHUP };
    return poll(&p, 1, 0) != 0;
}

static int authenticate(const redis_url *u, redisContext *c)
{
    if (!u->has_password)
        return 1;
    redisReply *r = u->user[0] ? redisCommand(c, "AUTH %s %s", u->user, u->password)
                               : redisCommand(c, "AUTH %s", u->password);
    int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Connects cn when it has no connection, within deadline (the name's lookup
 * included), and sets its read timeout to what is left of budget_ms and
 * the deadline. 0 when it cannot be used now. */
static int ready(redis_nodes *nd, cnode *cn, uint64_t deadline, int64_t budget_ms)
{
    uint64_t now = clock_ms();
    if (cn->c != NULL && now - cn->used_ms >= IDLE_CHECK_MS && went_stale(cn->c)) {
        redisFree(cn->c); /* reopened at once below, not after a back-off */
        cn->c = NULL;
        if (cn->dirty) {
            nd->lost = 1;
            cn->acks = -1;
        }
        cn->dirty = 0;
        nd->stale = 1;
    }
    cn->used_ms = now;
    if (now >= deadline)
        return 0;
    int64_t left = (int64_t)(deadline - now);
    if (cn->c == NULL) {
        char addr[RESOLVE_ADDR_MAX];
        if (now < cn->retry_at_ms)
            return 0;
        if (address(nd->sh, cn->host, left, addr) != RC_OK) {
            cn->retry_at_ms = clock_ms() + RECONNECT_MS;
            warn(nd->sh, "has no address (name lookup)", cn);
            return 0;
        }
        now = clock_ms();
        left = now < deadline ? (int64_t)(deadline - now) : 0;
        struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
        redisContext *c = left > 0 ? redisConnectWithTimeout(addr, cn->port, tv) : NULL;
        if (c == NULL || c->err || redisSetTimeout(c, tv) != REDIS_OK ||
            !authenticate(nd->sh->url, c)) {
            if (c)
                redisFree(c);
            cn->retry_at_ms = clock_ms() + RECONNECT_MS;
            nd->stale = 1;
            warn(nd->sh, "does not answer", cn);
            return 0;
        }
        redisEnableKeepAlive(c);
        cn->c = c;
        cn->tmo_ms = left;
        now = clock_ms();
        left = now < deadline ? (int64_t)(deadline - now) : 0;
    }
    if (budget_ms < left)
        left = budget_ms;
    /* rounded down to an eighth of REDIS_TIMEOUT_MS, so that the timeout of
     * a connection in steady use stays put: no setsockopt per pipeline */
    int64_t q = nd->sh->timeout_ms / 8;
    if (q > 1 && left > q)
        left -= left % q;
    if (left <= 0)
        return 0;
    if (left == cn->tmo_ms)
        return 1;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
    if (redisSetTimeout(cn->c, tv) != REDIS_OK) {
        drop(nd, cn);
        return 0;
    }
    cn->tmo_ms = left;
    return 1;
}

/* ---- the slot map ---- */

/* Asks the node of cn for CLUSTER SLOTS into nd->spare; 1 when it gave a
 * map with at least one slot served (nodes named "the same host" get cn's
 * host, nodes without an endpoint their "ip"). */
static int read_map(redis_nodes *nd, cnode *cn, uint64_t deadline)
{
    if (!ready(nd, cn, deadline, nd->sh->timeout_ms))
        return 0;
    redisReply *r = redisCommand(cn->c, "CLUSTER SLOTS");
    if (r == NULL) {
        drop(nd, cn);
        return 0;
    }
    char err[160];
    rc_t rc = redis_cluster_map_from_slots(r, nd->spare, err, sizeof err);
    if (rc != RC_OK && r->type != REDIS_REPLY_ERROR)
        log_msg(LOG_WARN, "redis-cluster: node %s:%d: CLUSTER SLOTS refused: %s", cn->host,
                cn->port, err);
    freeReplyObject(r);
    if (rc != RC_OK || nd->spare->covered == 0)
        return 0;
    for (size_t i = 0; i < nd->spare->nnodes; i++) {
        redis_node *n = &nd->spare->nodes[i];
        if (n->kind == REDIS_HOST_SAME) {
            memcpy(n->host, cn->host, sizeof n->host);
            n->kind = REDIS_HOST_NAME;
        } else if (n->kind == REDIS_HOST_UNKNOWN && n->ip[0]) {
            memcpy(n->host, n->ip, strlen(n->ip) + 1); /* ip is the shorter */
            n->kind = REDIS_HOST_NAME;
        }
    }
    return 1;
}

/* Reads the map when there is none, or when it is stale and the last read
 * is REDIS_NODES_REFRESH_MS old: from a node already connected, else a
 * node of the map, else a seed of the URL. */
static void refresh(redis_nodes *nd, uint64_t deadline)
{
    uint64_t now = clock_ms();
    if (nd->map != NULL && (!nd->stale || now < nd->refresh_at_ms))
        return;
    if (nd->map == NULL && now < nd->refresh_at_ms)
        return;
    nd->refresh_at_ms = now + REDIS_NODES_REFRESH_MS;
    if (nd->spare == NULL && (nd->spare = malloc(sizeof *nd->spare)) == NULL)
        return;
    int tried[CONN_MAX] = { 0 };
    for (int pass = 0; pass < 3; pass++) {
        size_t count = pass == 0 ? nd->nconn
                     : pass == 1 ? (nd->map ? nd->map->nnodes : 0)
                                 : nd->sh->url->nhosts;
        for (size_t i = 0; i < count; i++) {
            int k;
            if (pass == 0) {
                k = nd->conn[i].c != NULL ? (int)i : -1;
            } else if (pass == 1) {
                const redis_node *n = &nd->map->nodes[i];
                k = n->kind == REDIS_HOST_NAME ? conn_of(nd, n->host, n->port) : -1;
            } else {
                const redis_url_host *h = &nd->sh->url->hosts[i];
                k = conn_of(nd, h->host, h->port);
            }
            if (k < 0 || tried[k])
                continue;
            tried[k] = 1;
            if (clock_ms() >= deadline)
                return;
            if (read_map(nd, &nd->conn[k], deadline)) {
                redis_slot_map *old = nd->map;
                nd->map = nd->spare;
                nd->spare = old;
                /* a cluster still forming, or one that lost a primary:
                 * read again (readiness asks nothing of the missing slots) */
                nd->stale = nd->map->covered < REDIS_CLUSTER_SLOTS;
                return;
            }
        }
    }
}

const redis_slot_map *redis_nodes_map(redis_nodes *nd, uint64_t deadline_ms)
{
    if (deadline_ms == 0)
        deadline_ms = clock_ms() + (uint64_t)nd->sh->timeout_ms;
    refresh(nd, deadline_ms);
    return nd->map;
}

/* The connection of the primary serving slot; -1 when none is known. */
static int route(redis_nodes *nd, uint16_t slot)
{
    const redis_node *n = nd->map ? redis_cluster_map_node(nd->map, slot) : NULL;
    if (n == NULL || n->kind != REDIS_HOST_NAME) {
        nd->stale = 1;
        return -1;
    }
    return conn_of(nd, n->host, n->port);
}

/* ---- commands ---- */

static int named(const redis_cmd *c, const char *name)
{
    size_t n = strlen(name);
    return c->argc > 0 && c->lens[0] == n && strncasecmp(c->argv[0], name, n) == 0;
}

static int key_slot(const redis_cmd *c, uint16_t *slot)
{
    int at = named(c, "EVAL") || named(c, "EVALSHA") ? 3 : 1;
    if (c->argc <= at || named(c, "WAIT") || named(c, "ASKING"))
        return 0;
    *slot = redis_cluster_slot(c->argv[at], c->lens[at]);
    return 1;
}

/* Commands whose effect a WAIT must cover. */
static int writes(const redis_cmd *c)
{
    static const char *const reads[] = { "GET", "ZRANGE", "ZRANGEBYSCORE", "ZCARD", "SCAN",
                                         "EXISTS", "PING", "CLUSTER", "ASKING", NULL };
    for (size_t i = 0; reads[i]; i++)
        if (named(c, reads[i]))
            return 0;
    return 1;
}

static int is_error(const redisReply *r, const char *word)
{
    size_t n = strlen(word);
    return r->type == REDIS_REPLY_ERROR && r->len > n && strncmp(r->str, word, n) == 0 &&
           r->str[n] == ' ';
}

/* The fewest acknowledgements of the WAIT cmd sent to every dirty node. */
static redisReply *wait_all(redis_nodes *nd, const redis_cmd *cmd, uint64_t deadline,
                            int64_t wait_ms)
{
    long long asked = cmd->argc > 1 ? strtoll(cmd->argv[1], NULL, 10) : 0, fewest = asked;
    int sent[CONN_MAX] = { 0 };
    redisReply *bad = NULL;
    if (nd->lost)
        bad = own_error("a connection with writes not yet acknowledged broke");
    for (size_t k = 0; k < nd->nconn; k++) {
        cnode *cn = &nd->conn[k];
        if (!cn->dirty)
            continue;
        if (cn->c == NULL || !ready(nd, cn, deadline, nd->sh->timeout_ms + wait_ms) ||
            redisAppendCommandArgv(cn->c, cmd->argc, cmd->argv, cmd->lens) != REDIS_OK) {
            if (cn->c)
                drop(nd, cn);
            cn->acks = -1;
            if (bad == NULL)
                bad = own_error("a node written to could not be asked to WAIT");
            continue;
        }
        sent[k] = 1;
    }
    for (size_t k = 0; k < nd->nconn; k++) {
        if (!sent[k])
            continue;
        cnode *cn = &nd->conn[k];
        redisReply *r = NULL;
        if (redisGetReply(cn->c, (void **)&r) != REDIS_OK || r == NULL) {
            drop(nd, cn);
            cn->acks = -1;
            if (bad == NULL)
                bad = own_error("a node's connection broke during WAIT");
            continue;
        }
        cn->dirty = 0;
        cn->acks = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        if (r->type == REDIS_REPLY_INTEGER && r->integer < fewest)
            fewest = r->integer;
        if (r->type != REDIS_REPLY_INTEGER && bad == NULL)
            bad = r;
        else
            freeReplyObject(r);
    }
    nd->lost = 0;
    return bad != NULL ? bad : own_integer(fewest);
}

/* One round: sends the commands todo[0..ntodo) to their nodes (target[],
 * ASKING first where ask[]), reads every reply into out[], or an error of
 * our own for those that could not be sent or answered. */
static void round_once(redis_nodes *nd, const redis_cmd *cmds, const size_t *todo, size_t ntodo,
                       const int *target, const unsigned char *ask, const uint16_t *slot,
                       redisReply **out, uint64_t deadline, int64_t budget)
{
    static const char *asking_argv[] = { "ASKING" };
    static const size_t asking_lens[] = { 6 };
    int usable[CONN_MAX];
    for (size_t k = 0; k < CONN_MAX; k++)
        usable[k] = -1; /* -1: not asked yet; 0: down; 1: sending */
    for (size_t t = 0; t < ntodo; t++) {
        size_t i = todo[t];
        int k = target[i];
        if (k < 0)
            continue;
        cnode *cn = &nd->conn[k];
        if (usable[k] < 0)
            usable[k] = ready(nd, cn, deadline, budget);
        if (usable[k] == 1 && ask[i] &&
            redisAppendCommandArgv(cn->c, 1, asking_argv, asking_lens) != REDIS_OK)
            usable[k] = 0;
        if (usable[k] == 1 &&
            redisAppendCommandArgv(cn->c, cmds[i].argc, cmds[i].argv, cmds[i].lens) != REDIS_OK)
            usable[k] = 0;
    }
    for (size_t t = 0; t < ntodo; t++) {
        size_t i = todo[t];
        int k = target[i];
        if (k < 0) {
            out[i] = own_error("CLUSTERDOWN no primary known for the slot");
            continue;
        }
        cnode *cn = &nd->conn[k];
        redisReply *r = NULL;
        if (usable[k] == 1 && ask[i]) {
            if (redisGetReply(cn->c, (void **)&r) != REDIS_OK || r == NULL)
                usable[k] = 0;
            else
                freeReplyObject(r);
            r = NULL;
        }
        if (usable[k] == 1 && (redisGetReply(cn->c, (void **)&r) != REDIS_OK || r == NULL)) {
            usable[k] = 0;
            r = NULL;
        }
        if (usable[k] != 1 && cn->c != NULL) {
            warn(nd->sh, "failed: connection broken or timed out", cn);
            drop(nd, cn);
        }
        if (r != NULL && r->type != REDIS_REPLY_ERROR && writes(&cmds[i])) {
            /* a write refused (an error reply: NOREPLICAS, MOVED...) wrote
             * nothing a WAIT must cover; one that got no reply fails */
            cn->dirty = 1;
            if (nd->wrote != NULL)
                nd->wrote[slot[i]] = (unsigned char)(k + 1);
        }
        out[i] = r != NULL ? r : own_error("node unreachable");
    }
}

rc_t redis_nodes_pipeline(redis_nodes *nd, const redis_cmd *cmds, size_t n, redisReply **out,
                          uint64_t deadline_ms, int64_t wait_ms)
{
    memset(out, 0, n * sizeof(redisReply *));
    int waiting = n > 0 && named(&cmds[n - 1], "WAIT");
    size_t m = waiting ? n - 1 : n;
    int64_t budget = nd->sh->timeout_ms + wait_ms;
    if (deadline_ms == 0)
        deadline_ms = clock_ms() + (uint64_t)budget;
    size_t *todo = malloc((m + 1) * sizeof *todo);
    int *target = malloc((m + 1) * sizeof *target);
    unsigned char *ask = calloc(m + 1, 1);
    uint16_t *slot = malloc((m + 1) * sizeof *slot);
    rc_t rc = RC_NOMEM;
    if (todo == NULL || target == NULL || ask == NULL || slot == NULL)
        goto out;
    if (nd->wrote == NULL)
        nd->wrote = calloc(REDIS_CLUSTER_SLOTS, 1); /* NULL: redis_nodes_acks says "unknown" */
    size_t ntodo = m;
    for (size_t i = 0; i < m; i++) {
        todo[i] = i;
        if (!key_slot(&cmds[i], &slot[i]))
            slot[i] = 0;
        target[i] = -1;
    }
    for (int pass = 0; ntodo > 0; pass++) {
        refresh(nd, deadline_ms);
        for (size_t t = 0; t < ntodo; t++)
            if (target[todo[t]] < 0)
                target[todo[t]] = route(nd, slot[todo[t]]);
        round_once(nd, cmds, todo, ntodo, target, ask, slot, out, deadline_ms, budget);
        size_t again = 0;
        int pause = 0;
        for (size_t t = 0; t < ntodo; t++) {
            size_t i = todo[t];
            redisReply *r = out[i];
            redis_redirect to;
            if (r == NULL)
                continue; /* out of memory for our own error: RC_NOMEM below */
            int moved = r->type == REDIS_REPLY_ERROR &&
                        redis_cluster_redirect(r->str, r->len, &to) == RC_OK;
            int k = target[i];
            if (moved && to.kind == REDIS_HOST_SAME) { /* the host of the node that answered */
                memcpy(to.host, nd->conn[k].host, sizeof to.host);
                to.kind = REDIS_HOST_NAME;
            }
            if (moved && to.kind != REDIS_HOST_NAME)
                moved = 0; /* "?": nowhere to go; the error stands */
            if (moved && pass + 1 < PASSES) {
                if (to.type == REDIS_REDIRECT_MOVED) {
                    if (nd->map != NULL) /* RC_FULL: the re-read settles it */
                        (void)redis_cluster_map_move(nd->map, to.slot, to.kind, to.host, to.port);
                    nd->stale = 1; /* other slots may have moved with it */
                    target[i] = conn_of(nd, to.host, to.port);
                    ask[i] = 0;
                } else {
                    target[i] = conn_of(nd, to.host, to.port);
                    ask[i] = 1;
                }
            } else if (is_error(r, "TRYAGAIN") && pass + 1 < PASSES) {
                pause = 1; /* the slot is migrating: its keys are on two nodes */
                ask[i] = 0;
                target[i] = -1;
            } else {
                if (is_error(r, "CLUSTERDOWN"))
                    nd->stale = 1;
                continue; /* the reply stands */
            }
            freeReplyObject(r);
            out[i] = NULL;
            todo[again++] = i;
        }
        ntodo = again;
        if (ntodo > 0 && pause) {
            uint64_t now = clock_ms();
            if (now + TRYAGAIN_MS >= deadline_ms)
                break;
            struct timespec ts = { 0, TRYAGAIN_MS * 1000000L };
            nanosleep(&ts, NULL);
        }
        if (clock_ms() >= deadline_ms)
            break;
    }
    for (size_t t = 0; t < ntodo; t++)
        if (out[todo[t]] == NULL)
            out[todo[t]] = own_error("TRYAGAIN the slot did not settle in time");
    if (waiting)
        out[n - 1] = wait_all(nd, &cmds[n - 1], deadline_ms, wait_ms);
    rc = RC_OK;
    for (size_t i = 0; i < n; i++)
        if (out[i] == NULL)
            rc = RC_NOMEM;
    if (rc != RC_OK)
        for (size_t i = 0; i < n; i++) {
            if (out[i])
                freeReplyObject(out[i]);
            out[i] = NULL;
        }
out:
    free(todo);
    free(target);
    free(ask);
    free(slot);
    return rc;
}

rc_t redis_nodes_at(redis_nodes *nd, const char *host, int port, const redis_cmd *cmd,
                    redisReply **out, uint64_t deadline_ms)
{
    if (deadline_ms == 0)
        deadline_ms = clock_ms() + (uint64_t)nd->sh->timeout_ms;
    int k = conn_of(nd, host, port);
    redisReply *r = NULL;
    if (k >= 0 && ready(nd, &nd->conn[k], deadline_ms, nd->sh->timeout_ms)) {
        r = redisCommandArgv(nd->conn[k].c, cmd->argc, cmd->argv, cmd->lens);
        if (r == NULL)
            drop(nd, &nd->conn[k]);
    }
    *out = r != NULL ? r : own_error("node unreachable");
    return *out ? RC_OK : RC_NOMEM;
}

long long redis_nodes_acks(const redis_nodes *nd, const char *key, size_t len)
{
    uint16_t slot = redis_cluster_slot(key, len);
    int k = nd->wrote != NULL ? nd->wrote[slot] - 1 : -1;
    return k >= 0 && (size_t)k < nd->nconn ? nd->conn[k].acks : -1;
}
