/* http.c -- the HTTP edge on libmicrohttpd (see http.h). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

/* ---- pure parsers ---- */

int http_path_match(const char *pattern, const char *path, size_t len,
                    char *space, size_t spacelen, str_t *params, size_t maxparams)
{
    size_t pi = 0, xi = 0, used = 0, np = 0, plen = strlen(pattern);
    int malformed = 0;
    if (len == 0 || path[0] != '/' || plen == 0 || pattern[0] != '/')
        return 0;
    for (;;) {
        /* both at a '/' */
        pi++;
        xi++;
        size_t pe = pi, xe = xi;
        while (pe < plen && pattern[pe] != '/')
            pe++;
        while (xe < len && path[xe] != '/')
            xe++;
        if (pattern[pi] == '{') {
            if (xe == xi || np == maxparams || spacelen - used < xe - xi)
                return 0;
            size_t outlen;
            if (str_pct_decode(path + xi, xe - xi, space + used, &outlen) != RC_OK) {
                malformed = 1;
                outlen = 0; /* names nothing */
            }
            params[np++] = (str_t){ space + used, outlen };
            used += outlen;
        } else if (pe - pi != xe - xi || memcmp(pattern + pi, path + xi, pe - pi) != 0) {
            return 0;
        }
        pi = pe;
        xi = xe;
        if (pi == plen || xi == len)
            return pi == plen && xi == len ? (malformed ? -1 : 1) : 0;
    }
}

/* ---- per-connection state (see "request deadlines" below) ---- */

#define NO_DEADLINE UINT64_MAX

struct http_conn {
    struct http_conn *prev, *next;
    int fd;
    _Atomic uint64_t deadline_us;
};

struct http_watch {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct http_conn *head;
    uint64_t timeout_us;
    int stop;
    pthread_t thread;
    _Atomic int in_flight; /* requests begun and not yet completed */
    _Atomic int draining;  /* shutting down: close connections after answers */
    _Atomic int held;      /* woken requests whose leader has not resumed them yet */
    _Atomic int stopping;  /* http_stop has begun: no connection is swept in */
    _Atomic int listen_fd; /* libmicrohttpd's listening socket, once known non-blocking; -1: no sweep */
    unsigned share;        /* CONNECTION_LIMIT with one event thread, else 0: no sweep */
};

/* ---- answers ---- */

static const char *reason(unsigned status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

static unsigned status_of(rc_t rc)
{
    switch (rc) {
    case RC_OK: return 200;
    case RC_INVALID: return 400;
    case RC_UNAUTHORIZED: return 401;
    case RC_DENIED: return 403;
    case RC_NOT_FOUND: return 404;
    case RC_EXISTS:
    case RC_LIMIT: return 409;
    case RC_TOO_LARGE: return 413;
    case RC_UNSUPPORTED: return 415;
    case RC_FULL:
    case RC_UNAVAILABLE:
    case RC_NOMEM: return 503;
    case RC_ERR:
    case RC_PENDING: return 500; /* never rendered: the answer comes later */
    }
    return 500;
}

static const char *default_detail(unsigned status)
{
    switch (status) {
    case 400: return "the request is malformed";
    case 401: return "a valid bearer token is required";
    case 403: return "the caller may not act on this user's sessions";
    case 404: return "no such resource";
    case 405: return "method not allowed on this path";
    case 413: return "request body larger than 16384 bytes";
    case 415: return "the body must be application/json";
    case 431: return "request headers larger than 8192 bytes";
    case 503: return "the session store is unavailable or full; retry later";
    default: return "internal error";
    }
}

/* Replaces r's answer by an RFC 9457 problem. */
static void problem(http_request *r, unsigned status, const char *detail)
{
    buf_reset(&r->out);
    r->nheaders = 0; /* the application's headers belong to its answer, not to a refusal */
    r->status = status;
    r->content_type = "application/problem+json";
    if (detail == NULL)
        detail = default_detail(status);
    if (buf_append_cstr(&r->out, "{\"type\":\"about:blank\",\"title\":") != RC_OK ||
        buf_append_json_str(&r->out, reason(status), strlen(reason(status))) != RC_OK ||
        buf_append_cstr(&r->out, ",\"status\":") != RC_OK ||
        buf_append_i64(&r->out, status) != RC_OK ||
        buf_append_cstr(&r->out, ",\"detail\":") != RC_OK ||
        buf_append_json_str(&r->out, detail, strlen(detail)) != RC_OK ||
        buf_append_cstr(&r->out, "}") != RC_OK)
        buf_reset(&r->out); /* out of memory: an empty body still carries the status */
    if (status == 503 && r->retry_after == 0)
        r->retry_after = 1;
}

static enum MHD_Result send_answer(http_request *r)
{
    struct MHD_Connection *c = r->conn;
    struct MHD_Response *resp;
    size_t len = r->out.len;
    if (len) {
        resp = MHD_create_response_from_buffer(len, buf_steal(&r->out), MHD_RESPMEM_MUST_FREE);
    } else {
        buf_free(&r->out);
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL)
        return MHD_NO;
    if (len && r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->route == NULL || r->route->no_store)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->status == 405 && r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                r->token_presented ? "Bearer error=\"invalid_token\""
                                                   : "Bearer");
    if (r->status == 503) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after > 0 ? r->retry_after : 1);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    for (unsigned i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    if (r->close_after || atomic_load_explicit(&r->svc->watch->draining, memory_order_relaxed))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->final_status = r->status;
    enum MHD_Result ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- request accessors ---- */

const char *http_header(http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

rc_t http_query(http_request *r, const char *name, char *out, size_t outlen)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    if (v == NULL)
        return RC_NOT_FOUND;
    char tmp[HTTP_QUERY_MAX];
    size_t len = strlen(v), n;
    if (len >= sizeof tmp)
        return RC_TOO_LARGE;
    if (str_pct_decode(v, len, tmp, &n) != RC_OK)
        return RC_INVALID;
    if (n >= outlen || memchr(tmp, '\0', n) != NULL)
        return RC_TOO_LARGE; /* decoded, it is no string that fits out */
    memcpy(out, tmp, n);
    out[n] = '\0';
    return RC_OK;
}

void http_client_ip(http_request *r, char *out, size_t outlen)
{
    out[0] = '\0';
    if (r->svc->cfg->trust_proxy) {
        const char *xff = http_header(r, "X-Forwarded-For");
        if (xff != NULL) {
            while (*xff == ' ' || *xff == '\t')
                xff++;
            size_t n = strcspn(xff, ", \t");
            char tmp[INET6_ADDRSTRLEN];
            unsigned char addr[16];
            if (n > 0 && n < sizeof tmp) {
                memcpy(tmp, xff, n);
                tmp[n] = '\0';
                if ((inet_pton(AF_INET, tmp, addr) == 1 || inet_pton(AF_INET6, tmp, addr) == 1) &&
                    n < outlen) {
                    memcpy(out, tmp, n + 1);
                    return;
                }
            }
        }
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)outlen);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)outlen);
}

void http_add_header(http_request *r, const char *name, const char *value, size_t len)
{
    if (r->nheaders == HTTP_MAX_OUT_HEADERS)
        return;
    size_t cap = sizeof r->headers[0].value - 1;
    if (len > cap)
        len = cap;
    r->headers[r->nheaders].name = name;
    memcpy(r->headers[r->nheaders].value, value, len);
    r->headers[r->nheaders].value[len] = '\0';
    r->nheaders++;
}

void http_note_session(http_request *r, const char *id, size_t len)
{
    if (len < sizeof r->log_sid) {
        memcpy(r->log_sid, id, len);
        r->log_sid[len] = '\0';
    }
}

rc_t http_fail(http_request *r, rc_t rc, const char *detail)
{
    snprintf(r->detail_buf, sizeof r->detail_buf, "%s", detail);
    r->detail = r->detail_buf;
    return rc;
}

/* ---- request deadlines ----
 * libmicrohttpd's CONNECTION_TIMEOUT is an idle timeout: a client that
 * trickles one byte a second never idles. So every connection also gets a
 * deadline by which its next request must be fully received (headers and
 * body); a watcher thread shuts down the socket of any connection past it,
 * which libmicrohttpd then sees as a closed peer. While an answer is being
 * sent the deadline is off (the idle timeout covers clients that do not
 * read). */

/* ---- accepting under load ----
 * libmicrohttpd 0.9.75's poll loop accepts one connection per turn, and a
 * turn first serves every ready connection: behind 512 busy connections a
 * turn lasts milliseconds, and new connections waited 45-106 ms (median)
 * while the loop took in 120-190 of them a second (docs/BENCHMARKS.md,
 * "Ninth pass"). So when the loop has not accepted a connection by itself
 * for SLOW_US, the event thread, at most once per SWEEP_US and when it
 * completes a request, takes every connection still waiting (accept4,
 * non-blocking) and gives it to its own loop (MHD_add_connection: queued,
 * and set up at the start of the loop's next turn, before that turn's own
 * accept). Only with one event thread (THREADS=1, the default on 2 CPUs):
 * in a pool the threads race for each connection, and one that keeps losing
 * would sweep every millisecond; not measured, so not done.
 *
 * What it takes keeps the loop one connection short of CONNECTION_LIMIT:
 * libmicrohttpd must never be full when it sets up a connection handed to
 * it (0.9.75 then returns with its cleanup mutex held, and the thread
 * deadlocks), nor when its own accept runs (it would close the connection,
 * where a full loop leaves it waiting in the kernel's queue). Until that
 * set-up, the loop's count only falls. A handed-over connection that fails
 * to be set up (no memory for its pool) stays counted in `swept`: the
 * budget shrinks by one, never grows. */
#define SWEEP_US 1000
#define SLOW_US 1000
static _Thread_local uint64_t next_sweep_us;
static _Thread_local uint64_t own_accept_us; /* this loop's last accept of its own */
static _Thread_local unsigned swept;          /* handed over, not yet set up */

/* on_connection's part: a connection set up by this thread's loop is one
 * handed over (those come first in a turn) or one it accepted itself. */
static void note_started(uint64_t now)
{
    if (swept > 0)
        swept--;
    else
        own_accept_us = now;
}

static void sweep_accept(struct http_watch *w, struct MHD_Connection *c, uint64_t now)
{
    if (now < next_sweep_us || now - own_accept_us < SLOW_US || atomic_load(&w->draining) ||
        atomic_load(&w->stopping))
        return;
    next_sweep_us = now + SWEEP_US;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
    int lfd = atomic_load(&w->listen_fd);
    if (ci == NULL || lfd < 0)
        return;
    struct MHD_Daemon *d = ci->daemon;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    if (di == NULL)
        return;
    /* those handed over before and not yet set up are not counted there */
    for (unsigned used = di->num_connections + swept; used + 1 < w->share; used++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break; /* none waiting (EAGAIN), or that one failed: the loop's turn */
        if (MHD_add_connection(d, fd, (struct sockaddr *)&ss, len) == MHD_YES)
            swept++; /* else it closed it (draining, no memory) */
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_watch *w = ((http_service *)cls)->watch;
    struct http_conn *hc = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        uint64_t now = clock_us();
        note_started(now);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        hc = calloc(1, sizeof *hc);
        if (hc == NULL || ci == NULL) {
            free(hc);
            return; /* untracked: the idle timeout still applies */
        }
        hc->fd = ci->connect_fd;
        atomic_store(&hc->deadline_us, now + w->timeout_us);
        pthread_mutex_lock(&w->lock);
        hc->next = w->head;
        if (w->head)
            w->head->prev = hc;
        w->head = hc;
        pthread_mutex_unlock(&w->lock);
        *socket_context = hc;
    } else if (hc != NULL) {
        /* Called before libmicrohttpd closes the socket: under the lock, the
         * watcher never touches a closed descriptor. */
        pthread_mutex_lock(&w->lock);
        if (hc->prev)
            hc->prev->next = hc->next;
        else
            w->head = hc->next;
        if (hc->next)
            hc->next->prev = hc->prev;
        pthread_mutex_unlock(&w->lock);
        free(hc);
        *socket_context = NULL;
    }
}

static void set_deadline(http_request *r, uint64_t when)
{
    if (r->hc != NULL)
        atomic_store_explicit(&r->hc->deadline_us, when, memory_order_relaxed);
}

/* Whether the client has closed its side. libmicrohttpd's event loop (seen
 * with its epoll loop; kept with its poll loop) can miss a close that
 * arrives together with the last bytes of a partial request, and would then
 * hold the connection (and a place under CONNECTION_LIMIT) until the
 * timeout; shutting the socket down here wakes it. Only asked of connections waiting for a request, never of one being
 * answered. */
static int peer_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void *watch_loop(void *arg)
{
    struct http_watch *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->wake, &w->lock, &until);
        uint64_t now = clock_us();
        for (struct http_conn *hc = w->head; hc; hc = hc->next) {
            uint64_t deadline = atomic_load_explicit(&hc->deadline_us, memory_order_relaxed);
            if (deadline == NO_DEADLINE)
                continue; /* being answered */
            if (deadline < now || peer_gone(hc->fd)) {
                shutdown(hc->fd, SHUT_RDWR);
                atomic_store(&hc->deadline_us, NO_DEADLINE);
            }
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- the request cycle ---- */

/* What a new request zeroes: its fields, not its buffers (http.h). */
#define HTTP_REQUEST_ZEROED offsetof(http_request, param_space)

typedef struct header_tally {
    size_t bytes;
    unsigned content_length, transfer_encoding, host, bad_name, folded;
} header_tally;

/* Whether value was read from a folded line (obs-fold). libmicrohttpd
 * 0.9.75 parses "Name: value" in place: the value follows the NUL that
 * replaced the colon, after optional SP/HT. A continuation line it appends
 * to a copy of the name made elsewhere in its pool ("User-Agent: abc" then
 * " def" arrives as "User-Agentdef": "abc"), so a value that does not follow
 * its name marks a fold. (Addresses compared as integers: after a fold the
 * two are in different places of the pool.) */
static int folded_line(const char *key, size_t klen, const char *value)
{
    uintptr_t k = (uintptr_t)key + klen + 1, v = (uintptr_t)value;
    if (value == NULL)
        return 0;
    if (v < k || v - k > HTTP_HEADERS_MAX)
        return 1;
    for (const char *p = key + klen + 1; (uintptr_t)p < v; p++)
        if (*p != ' ' && *p != '\t')
            return 1;
    return 0;
}

/* Bytes a field name (a token) cannot hold: RFC 9112 5.1 makes "Name : v"
 * a 400, and the delimiters of RFC 9110 5.6.2 have no place in one. */
static const unsigned char not_in_name[256] = {
    [' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1, ['"'] = 1, ['('] = 1, [')'] = 1,
    [','] = 1, ['/'] = 1, [':'] = 1, [';'] = 1, ['<'] = 1, ['='] = 1, ['>'] = 1,
    ['?'] = 1, ['@'] = 1, ['['] = 1, ['\\'] = 1, [']'] = 1, ['{'] = 1, ['}'] = 1,
};

/* The names that frame or authenticate a request. libmicrohttpd 0.9.75
 * appends a folded line (obs-fold) to the header's name: "Content-Length: 5"
 * + " x" arrives as "Content-Lengthx". A name that begins with one of these
 * and goes on hides the header, so the request is refused rather than read
 * with that header missing. */
enum { G_CONTENT_LENGTH, G_TRANSFER_ENCODING, G_HOST, G_OTHER };
static const struct {
    const char *name;
    size_t len;
    int which;
} guarded[] = {
    { "Content-Length", 14, G_CONTENT_LENGTH }, { "Transfer-Encoding", 17, G_TRANSFER_ENCODING },
    { "Host", 4, G_HOST }, { "Authorization", 13, G_OTHER }, { "Cookie", 6, G_OTHER },
    { "Connection", 10, G_OTHER },
};

/* One pass over a request header: its size, its name's bytes, a fold, and
 * the guarded names (each compared only when the first letters agree). */
static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    header_tally *t = cls;
    (void)kind;
    size_t klen = 0;
    unsigned bad = key[0] == '\0';
    for (; key[klen] != '\0'; klen++)
        bad |= not_in_name[(unsigned char)key[klen]];
    t->bytes += klen + (value ? strlen(value) : 0) + 4;
    t->folded += folded_line(key, klen, value);
    int first = key[0] | 0x20; /* ASCII lower case */
    for (size_t i = 0; i < sizeof guarded / sizeof guarded[0]; i++) {
        size_t n = guarded[i].len;
        if ((guarded[i].name[0] | 0x20) != first || klen < n ||
            strncasecmp(key, guarded[i].name, n) != 0)
            continue;
        if (klen > n) {
            bad = 1;
            continue;
        }
        t->content_length += guarded[i].which == G_CONTENT_LENGTH;
        t->transfer_encoding += guarded[i].which == G_TRANSFER_ENCODING;
        t->host += guarded[i].which == G_HOST;
    }
    t->bad_name += bad;
    return MHD_YES;
}

static void route_request(http_request *r, const char *url)
{
    const http_service *svc = r->svc;
    size_t len = strlen(url), alen = 0;
    int known = 0;
    unsigned metric = svc->metric_other;

    int foreign = 0;
    /* HEAD is GET without the body (RFC 9110, 9.3.2): same route, status
     * and headers; libmicrohttpd leaves the body out itself */
    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    for (size_t i = 0; i < svc->nroutes; i++) {
        const http_route *rt = &svc->routes[i];
        int m = http_path_match(rt->pattern, url, len, r->param_space,
                                sizeof r->param_space, r->params, HTTP_MAX_PARAMS);
        if (m == 0)
            continue;
        int mine = rt->served;
        if (strcmp(rt->method, method) == 0) {
            if (!mine) {
                foreign = 1; /* served by another process: 404 here */
                continue;
            }
            r->route = rt;
            r->metric = rt->metric;
            r->bad_escape = m < 0;
            return;
        }
        if (!mine)
            continue;
        if (!known)
            metric = rt->metric;
        known = 1;
        size_t ml = strlen(rt->method);
        if (alen + ml + 2 < sizeof r->allow_buf) {
            if (alen) {
                memcpy(r->allow_buf + alen, ", ", 2);
                alen += 2;
            }
            memcpy(r->allow_buf + alen, rt->method, ml);
            alen += ml;
            r->allow_buf[alen] = '\0';
        }
    }
    r->route = NULL;
    if (foreign)
        known = 0;
    r->early_status = known ? 405 : 404;
    r->allow = known ? r->allow_buf : NULL;
    r->detail = known ? NULL : "no such route";
    r->metric = metric;
}

/* Checks made once the headers are in: framing, header size, body size. */
static void check_request(http_request *r, const char *version)
{
    struct MHD_Connection *c = r->conn;
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    header_tally t = { 0, 0, 0, 0, 0, 0 };
    int http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &t);
    if (t.bytes > HTTP_HEADERS_MAX) {
        r->early_status = 431;
        r->close_after = 1;
    } else if (t.bad_name) {
        r->early_status = 400;
        r->close_after = 1;
        r->detail = "malformed header field name";
    } else if (t.folded) {
        /* RFC 9112 5.2: a server may refuse obs-fold with 400 */
        r->early_status = 400;
        r->close_after = 1;
        r->detail = "folded header lines (obs-fold) are not accepted";
    } else if (http11 && t.host != 1) {
        r->early_status = 400;
        r->close_after = 1;
        r->detail = "HTTP/1.1 requests need exactly one Host header";
    } else if (t.content_length > 1 || t.transfer_encoding > 1) {
        r->early_status = 400;
        r->close_after = 1;
        r->detail = "repeated Content-Length or Transfer-Encoding";
    } else if (te != NULL && cl != NULL) {
        r->early_status = 400;
        r->close_after = 1;
        r->detail = "Content-Length together with Transfer-Encoding";
    } else if (te != NULL && strcasecmp(te, "chunked") != 0) {
        r->early_status = 400;
        r->close_after = 1;
        r->detail = "unsupported Transfer-Encoding";
    } else if (cl != NULL && strtoull(cl, NULL, 10) > HTTP_BODY_MAX) {
        r->early_status = 413;
        r->close_after = 1;
    }
    if (r->close_after) {
        r->route = NULL; /* whatever the path, the request is not served */
        if (r->early_status != 400)
            r->detail = NULL;
    }
}

/* Turns a result into r's answer: a problem for any rc but RC_OK. */
static void settle(http_request *r, rc_t rc)
{
    if (rc == RC_OK)
        return;
    unsigned status = status_of(rc);
    if (status == 500)
        log_msg(LOG_ERROR, "%s %s: %s", r->method, r->route ? r->route->pattern : "-", rc_str(rc));
    problem(r, status, r->detail);
}

void http_suspend(void *arg)
{
    http_request *r = arg;
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
}

/* ---- waking a batch ----
 * libmicrohttpd 0.9.75 signals the event loop on every resume (an eventfd
 * write), and its loop takes each time only the connections resumed so
 * far: resumed one by one from a lane's thread, a batch of 12 cost the
 * event thread 6-7 turns, each a poll and a pass over every connection
 * (docs/BENCHMARKS.md, "Fifth pass"). So a lane's thread chains the
 * batch's requests as it completes them and resumes only the last; that
 * one's event thread resumes the others (wake_followers) before it
 * answers, or when its connection ends without an answer (on_completed),
 * and they are all taken in its next turn. While shutting down, each is
 * resumed at once, and http_stop waits for the chained ones (held). */

static _Thread_local http_request *woken_chain; /* this thread's batch so far */

static void resume_chain(http_request *f)
{
    while (f != NULL) {
        http_request *next = f->next_woken; /* f may be answered and gone once resumed */
        MHD_resume_connection(f->conn);
        f = next;
    }
}

void http_wake(http_request *r, int last)
{
    struct http_watch *w = r->svc->watch;
    atomic_store_explicit(&r->woken, 1, memory_order_release);
    r->followers = NULL;
    r->next_woken = woken_chain;
    woken_chain = r;
    int draining = atomic_load(&w->draining);
    if (!last && !draining)
        return;
    woken_chain = NULL;
    if (draining) {
        resume_chain(r);
        return;
    }
    int n = 0;
    for (http_request *f = r->next_woken; f != NULL; f = f->next_woken)
        n++;
    if (n > 0)
        atomic_fetch_add(&w->held, n);
    r->nfollowers = n;
    r->followers = r->next_woken;
    MHD_resume_connection(r->conn); /* publishes followers: libmicrohttpd's lock */
}

/* On r's event thread, once r is resumed: the requests woken with it. */
static void wake_followers(http_request *r)
{
    http_request *f = r->followers;
    if (f == NULL)
        return;
    r->followers = NULL;
    resume_chain(f);
    atomic_fetch_sub(&r->svc->watch->held, r->nfollowers);
}

static enum MHD_Result respond(http_request *r)
{
    if (r->suspended) {
        if (!atomic_load_explicit(&r->woken, memory_order_acquire))
            return MHD_YES; /* spurious call while the application works */
        r->suspended = 0;
        wake_followers(r);
        settle(r, r->svc->resume(r));
        r->responded = 1;
        return send_answer(r);
    }
    set_deadline(r, NO_DEADLINE);
    if (r->early_status) {
        r->responded = 1;
        problem(r, r->early_status, r->detail);
        return send_answer(r);
    }
    r->now = clock_wall();
    r->status = 200;
    r->detail = NULL;
    rc_t rc = r->svc->serve(r);
    if (rc == RC_PENDING)
        return MHD_YES; /* the work may be done already: r is not touched here */
    settle(r, rc);
    r->responded = 1;
    return send_answer(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    http_request *r = *con_cls;
    if (r == NULL) {
        r = malloc(sizeof *r);
        if (r == NULL)
            return MHD_NO;
        memset(r, 0, HTTP_REQUEST_ZEROED);
        r->log_sid[0] = '\0';
        *con_cls = r;
        r->svc = cls;
        r->conn = c;
        atomic_fetch_add(&r->svc->watch->in_flight, 1);
        r->method = method;
        r->t0_us = clock_us();
        r->metric = r->svc->metric_other;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->hc = ci ? ci->socket_context : NULL;
        route_request(r, url); /* first, so that even a refusal counts under its route */
        check_request(r, version);
        if (r->close_after)
            return respond(r); /* framing errors: answer now and close */
        return MHD_YES; /* answer on a later call: keeps the connection alive */
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->responded || r->early_status) {
            /* Discard the body of a request we refuse; libmicrohttpd only
             * lets us answer once it is all in, so a client that keeps
             * streaming past HTTP_DISCARD_MAX is cut off instead. */
            r->discarded += n;
            return r->discarded > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        if (r->body.len + n > HTTP_BODY_MAX) {
            r->early_status = 413;
            r->close_after = 1;
            r->discarded = r->body.len + n;
            return MHD_YES;
        }
        if (buf_append(&r->body, upload, n) != RC_OK)
            return MHD_NO;
        return MHD_YES;
    }
    if (r->responded)
        return MHD_YES;
    return respond(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_request *r = *con_cls;
    (void)cls;
    (void)toe;
    if (r == NULL)
        return;
    wake_followers(r); /* resumed, but its connection ended before its answer */
    uint64_t now = clock_us();
    if (r->responded) {
        metrics_request(r->metric, metrics_method_of(r->method), r->final_status,
                        now - r->t0_us);
        if (log_enabled(r->final_status >= 500 ? LOG_ERROR : LOG_INFO)) {
            char ip[64];
            http_client_ip(r, ip, sizeof ip);
            log_request(r->method, r->svc->metric_names[r->metric], r->final_status,
                        now - r->t0_us, r->log_sid, ip);
        }
    }
    /* the next request on this connection must arrive within the timeout */
    set_deadline(r, now + r->svc->watch->timeout_us);
    atomic_fetch_sub(&r->svc->watch->in_flight, 1);
    sweep_accept(r->svc->watch, c, now);
    if (r->state_free)
        r->state_free(r->state);
    buf_free(&r->body);
    buf_free(&r->out);
    free(r);
    *con_cls = NULL;
}

static size_t unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s); /* keep the path raw: segments are decoded after splitting */
}

/* Refuses connections once draining (they are closed as accepted). */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    const struct http_watch *w = cls;
    (void)addr;
    (void)addrlen;
    return atomic_load(&w->draining) ? MHD_NO : MHD_YES;
}

rc_t http_start(http_service *svc, char *err, size_t errlen)
{
    const config *cfg = svc->cfg;
    struct sockaddr_storage ss;
    /* poll(2), not epoll: libmicrohttpd 0.9.75's epoll loop takes a
     * suspended connection out of its set and puts it back on resume (two
     * epoll_ctl and a read that finds nothing, per request on a Redis
     * store), and with 512 connections it served 60-3,800 requests/s where
     * its poll loop serves 50,000 (docs/BENCHMARKS.md, "Issue 17"). */
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, cfg->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "HOST: not an address");
        return RC_INVALID;
    }
    /* THREADS=0: one event thread per CPU but one, at least one. The CPU
     * left over runs the executor's lanes and the housekeeper, and whatever
     * shares the host (the gateway, Redis); docs/BENCHMARKS.md, "Threads and
     * the p99", has the measurements behind it. */
    unsigned threads = (unsigned)cfg->threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 1 ? (unsigned)n - 1 : 1;
    }
    struct MHD_OptionItem ops[] = {
        { MHD_OPTION_SOCK_ADDR, 0, &ss },
        { MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0, NULL },
        { MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->connection_limit, NULL },
        { MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->connection_timeout, NULL },
        /* see HTTP_POOL_SIZE: oversized headers answered by us, at a cost */
        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_POOL_SIZE, NULL },
        { MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL },
        { MHD_OPTION_STRICT_FOR_CLIENT, -1, NULL }, /* we check, and answer problem+json */
        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, svc },
        { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, svc },
        { MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape_none, NULL },
        { MHD_OPTION_END, 0, NULL },
    };
    struct http_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return RC_NOMEM;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->timeout_us = (uint64_t)cfg->connection_timeout * 1000000u;
    w->listen_fd = -1;
    w->share = threads == 1 ? (unsigned)cfg->connection_limit : 0;
    svc->watch = w;
    if (pthread_create(&w->thread, NULL, watch_loop, w) != 0) {
        snprintf(err, errlen, "cannot start the connection watcher");
        free(w);
        svc->watch = NULL;
        return RC_ERR;
    }
    svc->daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, accept_policy, w, on_request, svc,
                                   MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (svc->daemon == NULL) {
        snprintf(err, errlen, "PORT: cannot listen on %s:%lld (in use, or not permitted)",
                 cfg->host, (long long)cfg->port);
        return RC_ERR;
    }
    const union MHD_DaemonInfo *li = MHD_get_daemon_info(svc->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    /* a sweep must never block: with a blocking socket the loop alone accepts */
    if (li != NULL && (fcntl(li->listen_fd, F_GETFL) & O_NONBLOCK) != 0)
        atomic_store(&w->listen_fd, li->listen_fd);
    log_msg(LOG_INFO, "listening on %s:%lld (%u threads)", cfg->host, (long long)cfg->port,
            threads);
    log_flush();
    return RC_OK;
}

void http_drain(http_service *svc, int seconds)
{
    if (svc->daemon == NULL || svc->watch == NULL)
        return;
    /* No new connections from here on: accept_policy closes them at once.
     * (Not MHD_quiesce_daemon: in libmicrohttpd 0.9.75 it races the pool's
     * threads taking the listening socket out of their epoll sets, and
     * panics when a thread was first.) */
    atomic_store(&svc->watch->draining, 1);
    for (int i = 0; i < seconds * 20 && atomic_load(&svc->watch->in_flight) > 0; i++)
        usleep(50 * 1000);
    if (atomic_load(&svc->watch->in_flight) > 0)
        log_msg(LOG_WARN, "shutdown: %d request(s) still in flight after %d s",
                atomic_load(&svc->watch->in_flight), seconds);
}

void http_stop(http_service *svc)
{
    struct http_watch *w = svc->watch;
    /* The application's queued work must be finished first (api_stop:
     * libmicrohttpd refuses to stop with a connection still suspended),
     * and the requests woken with a leader resumed by its event thread. */
    for (int i = 0; w != NULL && i < 2000 && atomic_load(&w->held) > 0; i++)
        usleep(1000);
    if (w != NULL)
        atomic_store(&w->stopping, 1);
    if (svc->daemon)
        MHD_stop_daemon(svc->daemon);
    svc->daemon = NULL;
    if (w != NULL) {
        pthread_mutex_lock(&w->lock);
        w->stop = 1;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        free(w);
        svc->watch = NULL;
    }
}
