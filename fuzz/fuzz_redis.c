/* fuzz_redis -- the pure parts of the Redis Sentinel and Cluster clients:
 * key slots (redis_cluster_slot), MOVED/ASK (redis_cluster_redirect), the
 * slot map from a CLUSTER SLOTS reply (redis_cluster_map_from_slots,
 * redis_cluster_map_move), the Sentinel replies
 * (redis_sentinel_parse_master, redis_sentinel_parse_role) and STORE_URL's redis forms
 * (store_redis_url_parse_as: redis://, redis-sentinel://, redis-cluster://).
 * Every input goes to each of them.
 *
 * Oracles (any failure abort()s):
 *   - slot: below 16384, equal to a bitwise CRC16/XMODEM (no table) of the
 *     hash tag when there is a non-empty one, else of the whole key; so a
 *     key and its tag alone have the same slot;
 *   - redirect: on RC_OK the fields are in range and rendering them back
 *     ("MOVED|ASK <slot> <host>:<port>", the host "" or "?" by kind) gives
 *     exactly the input (the accepted form is canonical), which parses to
 *     the same fields; on RC_INVALID *out is all zero;
 *   - slot map: the input read as RESP (a small bounded reader here, not
 *     hiredis's, whose allocation follows an attacker's counts) into a
 *     redisReply tree; on RC_OK every slot names a node or none, covered
 *     counts the slots that name one, every node owns a slot and is
 *     well-formed and distinct; moving an owned slot to its own node
 *     changes nothing; on RC_INVALID the map is empty and err names
 *     CLUSTER SLOTS;
 *   - URL, for each kind: on RC_OK every field within its bounds (hosts
 *     1..16, each non-empty, of [A-Za-z0-9._-] or an IPv6 address, port
 *     1..65535, no host:port twice; master 1..128 bytes of [A-Za-z0-9._-]
 *     for a Sentinel, else empty; db 0..65535, 0 on a cluster), and the URL
 *     rendered back from the fields (IPv6 in brackets, every port written,
 *     in the credentials only '%' and a user's ':' percent-encoded: the
 *     length limits apply to the encoded text, and this encoding is never
 *     longer than the one parsed) parses to the same fields; on RC_INVALID
 *     err names STORE_URL and no user, password or host is left in *out. */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "redis_cluster.h"
#include "redis_sentinel.h"
#include "store_redis.h"

/* ---- slots ---- */

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

static void check_slot(const uint8_t *data, size_t size)
{
    uint16_t slot = redis_cluster_slot((const char *)data, size);
    size_t from = 0, n = size;
    size_t open = 0;
    while (open < size && data[open] != '{')
        open++;
    if (open < size) {
        size_t close = open + 1;
        while (close < size && data[close] != '}')
            close++;
        if (close < size && close > open + 1) {
            from = open + 1;
            n = close - from;
        }
    }
    if (slot >= REDIS_CLUSTER_SLOTS || slot != crc16_bitwise(data + from, n) % 16384)
        abort();
    if (n != size && redis_cluster_slot((const char *)data + from, n) != slot)
        abort();
}

/* ---- redirections ---- */

static void check_redirect(const uint8_t *data, size_t size)
{
    redis_redirect r, again;
    static const redis_redirect zero;
    if (redis_cluster_redirect((const char *)data, size, &r) != RC_OK) {
        if (memcmp(&r, &zero, sizeof r) != 0)
            abort();
        return;
    }
    if (r.slot >= REDIS_CLUSTER_SLOTS || r.port < 1 || r.port > 65535 ||
        memchr(r.host, '\0', sizeof r.host) == NULL ||
        (r.kind == REDIS_HOST_NAME) != (r.host[0] != '\0') ||
        (r.type != REDIS_REDIRECT_MOVED && r.type != REDIS_REDIRECT_ASK))
        abort();
    char text[400];
    int n = snprintf(text, sizeof text, "%s %u %s:%d", r.type == REDIS_REDIRECT_ASK ? "ASK" : "MOVED",
                     (unsigned)r.slot, r.kind == REDIS_HOST_UNKNOWN ? "?" : r.host, r.port);
    if (n < 0 || (size_t)n != size || memcmp(text, data, size) != 0)
        abort();
    if (redis_cluster_redirect(text, (size_t)n, &again) != RC_OK || again.type != r.type ||
        again.slot != r.slot || again.kind != r.kind || strcmp(again.host, r.host) != 0 ||
        again.port != r.port)
        abort();
}

/* ---- a bounded RESP reader, for the slot map ---- */

#define RESP_DEPTH 6
#define RESP_NODES 20000 /* replies in one tree */

typedef struct reader {
    const char *p, *end;
    size_t nodes;
} reader;

static void reply_free(redisReply *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->elements && r->element != NULL; i++)
        reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

/* The line after the type byte, up to "\r\n": [*s, *s + *n). */
static int line(reader *rd, const char **s, size_t *n)
{
    const char *q = rd->p;
    while (q + 1 < rd->end && !(q[0] == '\r' && q[1] == '\n'))
        q++;
    if (q + 1 >= rd->end)
        return -1;
    *s = rd->p;
    *n = (size_t)(q - rd->p);
    rd->p = q + 2;
    return 0;
}

static int integer(const char *s, size_t n, long long *v)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long u = 0;
    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n || n - i > 19)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        u = u * 10 + (unsigned long long)(s[i] - '0');
    }
    if (u > (neg ? 9223372036854775808ull : 9223372036854775807ull))
        return -1;
    *v = neg ? (u == 0 ? 0 : -(long long)(u - 1) - 1) : (long long)u;
    return 0;
}

static redisReply *read_reply(reader *rd, int depth)
{
    const char *s;
    size_t n;
    long long v;
    if (rd->p >= rd->end || depth > RESP_DEPTH || ++rd->nodes > RESP_NODES)
        return NULL;
    char type = *rd->p++;
    if (line(rd, &s, &n) != 0)
        return NULL;
    redisReply *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    switch (type) {
    case ':':
        if (integer(s, n, &v) != 0)
            goto bad;
        r->type = REDIS_REPLY_INTEGER;
        r->integer = v;
        return r;
    case '+':
    case '-':
        r->type = type == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_ERROR;
        if ((r->str = malloc(n + 1)) == NULL)
            goto bad;
        memcpy(r->str, s, n);
        r->str[n] = '\0';
        r->len = n;
        return r;
    case '$':
        if (integer(s, n, &v) != 0 || v < -1 || v > 4096)
            goto bad;
        if (v == -1) {
            r->type = REDIS_REPLY_NIL;
            return r;
        }
        if ((size_t)(rd->end - rd->p) < (size_t)v + 2 || rd->p[v] != '\r' || rd->p[v + 1] != '\n')
            goto bad;
        r->type = REDIS_REPLY_STRING;
        if ((r->str = malloc((size_t)v + 1)) == NULL)
            goto bad;
        memcpy(r->str, rd->p, (size_t)v);
        r->str[v] = '\0';
        r->len = (size_t)v;
        rd->p += v + 2;
        return r;
    case '*':
        if (integer(s, n, &v) != 0 || v < -1 || v > 4096)
            goto bad;
        if (v == -1) {
            r->type = REDIS_REPLY_NIL;
            return r;
        }
        r->type = REDIS_REPLY_ARRAY;
        if (v > 0 && (r->element = calloc((size_t)v, sizeof *r->element)) == NULL)
            goto bad;
        r->elements = (size_t)v;
        for (size_t i = 0; i < r->elements; i++)
            if ((r->element[i] = read_reply(rd, depth + 1)) == NULL)
                goto bad;
        return r;
    default:
        goto bad;
    }
bad:
    reply_free(r);
    return NULL;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* A host as both parsers promise it: [A-Za-z0-9._-]+ or an IPv6 address. */
static int host_ok(const char *h)
{
    unsigned char addr[16];
    if (h[0] == '\0')
        return 0;
    if (strchr(h, ':') != NULL)
        return inet_pton(AF_INET6, h, addr) == 1;
    for (; *h; h++)
        if (!name_char(*h))
            return 0;
    return 1;
}

static void check_map(const uint8_t *data, size_t size)
{
    reader rd = {(const char *)data, (const char *)data + size, 0};
    redisReply *r = read_reply(&rd, 0);
    static redis_slot_map map, map_copy; /* 38 KB each: not on the stack, not per run */
    static uint8_t no_slots[REDIS_CLUSTER_SLOTS];
    redis_slot_map *m = &map, *copy = &map_copy;
    char err[160] = "";
    if (no_slots[0] != REDIS_SLOT_NONE)
        memset(no_slots, REDIS_SLOT_NONE, sizeof no_slots);
    rc_t rc = redis_cluster_map_from_slots(r, m, err, sizeof err);
    if (rc != RC_OK) {
        if (rc != RC_INVALID || strstr(err, "CLUSTER SLOTS") == NULL || m->nnodes != 0 ||
            m->covered != 0 || memcmp(m->slot_node, no_slots, sizeof no_slots) != 0)
            abort();
        goto out;
    }
    size_t covered = 0, first_slot[REDIS_CLUSTER_NODES_MAX] = {0};
    int owns[REDIS_CLUSTER_NODES_MAX] = {0};
    if (m->nnodes > REDIS_CLUSTER_NODES_MAX)
        abort();
    for (size_t s = 0; s < REDIS_CLUSTER_SLOTS; s++) {
        uint8_t i = m->slot_node[s];
        if (i == REDIS_SLOT_NONE) {
            if (redis_cluster_map_node(m, (uint16_t)s) != NULL)
                abort();
            continue;
        }
        if (i >= m->nnodes || redis_cluster_map_node(m, (uint16_t)s) != &m->nodes[i])
            abort();
        if (!owns[i])
            first_slot[i] = s;
        owns[i] = 1;
        covered++;
    }
    if (covered != m->covered)
        abort();
    for (size_t i = 0; i < m->nnodes; i++) {
        const redis_node *n = &m->nodes[i];
        if (!owns[i] || n->port < 1 || n->port > 65535 || memchr(n->host, '\0', sizeof n->host) == NULL ||
            memchr(n->id, '\0', sizeof n->id) == NULL || memchr(n->ip, '\0', sizeof n->ip) == NULL ||
            (n->id[0] != '\0' && strlen(n->id) != REDIS_CLUSTER_ID_LEN))
            abort();
        if (n->kind == REDIS_HOST_NAME ? !host_ok(n->host) : n->host[0] != '\0')
            abort();
        for (size_t j = 0; j < i; j++)
            if (m->nodes[j].kind == n->kind && m->nodes[j].port == n->port &&
                strcmp(m->nodes[j].host, n->host) == 0)
                abort();
        /* a node's own slot moved to it: nothing changes */
        memcpy(copy, m, sizeof *m);
        if (redis_cluster_map_move(copy, (uint16_t)first_slot[i], n->kind, n->host, n->port) != RC_OK ||
            memcmp(copy, m, sizeof *m) != 0)
            abort();
    }
out:
    reply_free(r);
}

/* ---- Sentinel replies ---- */

/* The same reply tree through the Sentinel client's parsers: on RC_OK a
 * host both parsers promise (IPv4 is a name of digits and dots) and a port
 * in range, which renders back to the reply's own port text; otherwise an
 * empty host and port 0. ROLE: RC_OK exactly when the first element is
 * the string "master". */
static void check_sentinel(const uint8_t *data, size_t size)
{
    reader rd = {(const char *)data, (const char *)data + size, 0};
    redisReply *r = read_reply(&rd, 0);
    char host[REDIS_SENTINEL_HOST_MAX + 1];
    int port = -1;
    rc_t rc = redis_sentinel_parse_master(r, host, &port);
    if (rc == RC_OK) {
        if (!host_ok(host) || port < 1 || port > 65535 || r->type != REDIS_REPLY_ARRAY ||
            r->elements != 2 || strlen(host) != r->element[0]->len)
            abort();
        const redisReply *p = r->element[1];
        char text[8];
        snprintf(text, sizeof text, "%d", port);
        if (p->type == REDIS_REPLY_STRING ? strlen(text) != p->len || memcmp(text, p->str, p->len)
                                          : p->type != REDIS_REPLY_INTEGER || p->integer != port)
            abort();
    } else if ((rc != RC_INVALID && rc != RC_NOT_FOUND) || host[0] != '\0' || port != 0) {
        abort();
    }
    rc = redis_sentinel_parse_role(r);
    int master = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                 (r->element[0]->type == REDIS_REPLY_STRING ||
                  r->element[0]->type == REDIS_REPLY_STATUS) &&
                 r->element[0]->len == 6 && memcmp(r->element[0]->str, "master", 6) == 0;
    if ((rc == RC_OK) != master || (rc != RC_OK && rc != RC_UNAVAILABLE && rc != RC_INVALID))
        abort();
    reply_free(r);
}

/* ---- URLs ---- */

/* Percent-encodes s at o, only the bytes that need it: '%', and for a user
 * name ':' (its first ':' ends it). No longer than the input's own
 * encoding, so within the parser's limits on encoded lengths. */
static size_t pct_encode(const char *s, char *o, int user)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '%' || (user && c == ':')) {
            o[k++] = '%';
            o[k++] = hex[c >> 4];
            o[k++] = hex[c & 15];
        } else {
            o[k++] = (char)c;
        }
    }
    return k;
}

static int same_url(const redis_url *a, const redis_url *b)
{
    if (a->kind != b->kind || strcmp(a->host, b->host) != 0 || a->port != b->port ||
        strcmp(a->user, b->user) != 0 || strcmp(a->password, b->password) != 0 ||
        a->has_password != b->has_password || a->db != b->db || a->nhosts != b->nhosts ||
        strcmp(a->master, b->master) != 0 || strcmp(a->prefix, b->prefix) != 0)
        return 0;
    for (size_t i = 0; i < a->nhosts; i++)
        if (strcmp(a->hosts[i].host, b->hosts[i].host) != 0 || a->hosts[i].port != b->hosts[i].port)
            return 0;
    return 1;
}

static void check_url(redis_url_kind kind, const uint8_t *data, size_t size, redis_url *u,
                      redis_url *again, char *text)
{
    char err[200] = "";
    if (store_redis_url_parse_as(kind, (const char *)data, size, u, err, sizeof err) != RC_OK) {
        if (strstr(err, "STORE_URL") == NULL || u->user[0] != '\0' || u->password[0] != '\0' ||
            u->host[0] != '\0' || u->nhosts != 0 || u->has_password)
            abort();
        return;
    }
    size_t max = kind == REDIS_URL_PLAIN ? 1 : REDIS_URL_HOSTS_MAX;
    size_t ml = strnlen(u->master, sizeof u->master);
    if (u->kind != kind || u->nhosts < 1 || u->nhosts > max || u->db < 0 || u->db > 65535 ||
        (kind == REDIS_URL_CLUSTER && u->db != 0) || ml == sizeof u->master ||
        (kind == REDIS_URL_SENTINEL ? ml == 0 : ml != 0) ||
        memchr(u->user, '\0', sizeof u->user) == NULL ||
        memchr(u->password, '\0', sizeof u->password) == NULL ||
        u->has_password != (u->password[0] != '\0') ||
        memchr(u->host, '\0', sizeof u->host) == NULL || strcmp(u->host, u->hosts[0].host) != 0 ||
        u->port != u->hosts[0].port)
        abort();
    for (size_t i = 0; i < ml; i++)
        if (!name_char(u->master[i]))
            abort();
    /* a cluster's key prefix: 1..32 name characters, not all digits ("ss"
     * by default); no prefix elsewhere */
    size_t pl = strnlen(u->prefix, sizeof u->prefix), digits = 0;
    if (pl == sizeof u->prefix || (kind == REDIS_URL_CLUSTER ? pl == 0 : pl != 0))
        abort();
    for (size_t i = 0; i < pl; i++) {
        if (!name_char(u->prefix[i]))
            abort();
        digits += u->prefix[i] >= '0' && u->prefix[i] <= '9';
    }
    if (pl > 0 && digits == pl)
        abort();
    for (size_t i = 0; i < u->nhosts; i++) {
        const redis_url_host *h = &u->hosts[i];
        if (memchr(h->host, '\0', sizeof h->host) == NULL || !host_ok(h->host) || h->port < 1 ||
            h->port > 65535)
            abort();
        for (size_t j = 0; j < i; j++)
            if (u->hosts[j].port == h->port && strcmp(u->hosts[j].host, h->host) == 0)
                abort();
    }
    /* render it back and parse again */
    size_t k = 0;
    if (u->user[0] != '\0' || u->password[0] != '\0') {
        k += pct_encode(u->user, text + k, 1);
        text[k++] = ':';
        k += pct_encode(u->password, text + k, 0);
        text[k++] = '@';
    }
    for (size_t i = 0; i < u->nhosts; i++) {
        int colon = strchr(u->hosts[i].host, ':') != NULL;
        k += (size_t)sprintf(text + k, "%s%s%s%s:%d", i ? "," : "", colon ? "[" : "",
                             u->hosts[i].host, colon ? "]" : "", u->hosts[i].port);
    }
    if (kind == REDIS_URL_SENTINEL)
        k += (size_t)sprintf(text + k, "/%s", u->master);
    if (kind == REDIS_URL_CLUSTER)
        k += (size_t)sprintf(text + k, "/%s", u->prefix);
    if (u->db != 0)
        k += (size_t)sprintf(text + k, "/%d", u->db);
    if (store_redis_url_parse_as(kind, text, k, again, err, sizeof err) != RC_OK ||
        !same_url(u, again))
        abort();
    if (kind == REDIS_URL_PLAIN) {
        if (store_redis_url_parse((const char *)data, size, again, err, sizeof err) != RC_OK ||
            !same_url(u, again))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_slot(data, size);
    check_redirect(data, size);
    check_map(data, size);
    check_sentinel(data, size);
    redis_url *u = malloc(sizeof *u), *again = malloc(sizeof *again);
    /* the rendering: credentials at most 3 x 383 bytes, 16 hosts of at
     * most 255 + 8 bytes, a master name and a db */
    char *text = malloc(2 * 3 * 512 + 16 * 300 + 256);
    if (u == NULL || again == NULL || text == NULL)
        abort();
    for (int kind = REDIS_URL_PLAIN; kind <= REDIS_URL_CLUSTER; kind++)
        check_url((redis_url_kind)kind, data, size, u, again, text);
    free(u);
    free(again);
    free(text);
    return 0;
}
