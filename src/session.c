/* session.c -- session identity rules, binary record, JSON form, and the
 * POST /session body decoder. */
#include <errno.h>
#include <stdatomic.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "b64.h"
#include "session.h"

#define REC_VERSION 1
#define REC_HEADER 36
#define REC_LAST_SEEN_OFF 20 /* after version, lengths, created_at */
#define UA_ABSENT 0xFFFF

int session_id_valid(const char *id, size_t len)
{
    if (len < SESSION_ID_MIN || len > SESSION_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int session_text_valid(const char *s, size_t len, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + n > len)
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        /* overlong forms, surrogates, beyond U+10FFFF, C1 controls */
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
            (n == 4 && cp < 0x10000) || (cp >= 0xD800 && cp <= 0xDFFF) ||
            cp > 0x10FFFF || (cp >= 0x80 && cp <= 0x9F))
            return 0;
        i += n;
    }
    return 1;
}

int session_user_valid(const char *s, size_t len)
{
    if (!session_text_valid(s, len, SESSION_USER_MAX))
        return 0;
    return s[0] != ' ' && s[0] != '\t' && s[len - 1] != ' ' && s[len - 1] != '\t';
}

void session_id_make(uint64_t stamp, const unsigned char raw[16], char id[SESSION_ID_MAX + 1])
{
    /* the base64url characters in ASCII order: 6 bits a character */
    static const char sorted[] =
        "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    for (int i = SESSION_ID_TIME - 1; i >= 0; i--, stamp >>= 6)
        id[i] = sorted[stamp & 63];
    b64url_encode(raw, 16, id + SESSION_ID_TIME);
}

/* The last stamp this process gave out: stamps only grow, so that ids made
 * here arrive at the store in order even within a millisecond. */
static _Atomic uint64_t last_stamp;

uint64_t session_id_stamp(uint64_t ms, uint64_t last)
{
    uint64_t want = ms << SESSION_ID_SEQ_BITS;
    return want > last ? want : last + 1;
}

rc_t session_id_generate(char id[SESSION_ID_MAX + 1])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t prev = atomic_load(&last_stamp), next;
    do
        next = session_id_stamp(ms, prev);
    while (!atomic_compare_exchange_weak(&last_stamp, &prev, next));
    unsigned char raw[16];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return RC_ERR;
        }
        got += (size_t)n;
    }
    session_id_make(next, raw, id);
    return RC_OK;
}

int session_live(const session_t *s, int64_t now)
{
    return now < s->expires_at;
}

static void put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_i64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static unsigned get_u16(const unsigned char *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int64_t get_i64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | p[i];
    return (int64_t)u;
}

rc_t session_encode(const session_t *s, buf_t *out)
{
    size_t idlen = strlen(s->id);
    if (idlen > SESSION_ID_MAX || s->user_id.len > SESSION_USER_MAX ||
        s->ip.len > SESSION_IP_MAX || s->user_agent.len > SESSION_UA_MAX ||
        s->data.len > SESSION_DATA_MAX)
        return RC_INVALID;
    unsigned char h[REC_HEADER];
    h[0] = REC_VERSION;
    h[1] = (unsigned char)idlen;
    put_u16(h + 2, (unsigned)s->user_id.len);
    put_u16(h + 4, (unsigned)s->ip.len);
    put_u16(h + 6, s->user_agent.p ? (unsigned)s->user_agent.len : UA_ABSENT);
    put_u32(h + 8, (uint32_t)s->data.len);
    put_i64(h + 12, s->created_at);
    put_i64(h + REC_LAST_SEEN_OFF, s->last_seen_at);
    put_i64(h + 28, s->expires_at);
    if (buf_reserve(out, sizeof h + idlen + s->user_id.len + s->ip.len +
                             s->user_agent.len + s->data.len) != RC_OK)
        return RC_NOMEM;
    buf_append(out, h, sizeof h);
    buf_append(out, s->id, idlen);
    buf_append(out, s->user_id.p, s->user_id.len);
    buf_append(out, s->ip.p, s->ip.len);
    if (s->user_agent.p)
        buf_append(out, s->user_agent.p, s->user_agent.len);
    buf_append(out, s->data.p, s->data.len);
    return RC_OK;
}

rc_t session_record_set_last_seen(void *rec, size_t len, int64_t last_seen)
{
    if (len < REC_HEADER)
        return RC_INVALID;
    put_i64((unsigned char *)rec + REC_LAST_SEEN_OFF, last_seen);
    return RC_OK;
}

rc_t session_decode(const void *rec, size_t len, session_t *s)
{
    const unsigned char *p = rec;
    if (len < REC_HEADER || p[0] != REC_VERSION)
        return RC_INVALID;
    size_t idlen = p[1], ulen = get_u16(p + 2), iplen = get_u16(p + 4);
    unsigned ualen_raw = get_u16(p + 6);
    size_t ualen = ualen_raw == UA_ABSENT ? 0 : ualen_raw;
    size_t dlen = get_u32(p + 8);
    if (idlen > SESSION_ID_MAX || ulen > SESSION_USER_MAX || iplen > SESSION_IP_MAX ||
        ualen > SESSION_UA_MAX || dlen > SESSION_DATA_MAX ||
        len != REC_HEADER + idlen + ulen + iplen + ualen + dlen)
        return RC_INVALID;
    const char *q = (const char *)p + REC_HEADER;
    if (!session_id_valid(q, idlen)) /* found by fuzz_record: a NUL in the id */
        return RC_INVALID;
    memcpy(s->id, q, idlen);
    s->id[idlen] = '\0';
    q += idlen;
    s->user_id = (str_t){ q, ulen };
    q += ulen;
    s->ip = (str_t){ q, iplen };
    q += iplen;
    s->user_agent = ualen_raw == UA_ABSENT ? STR_NULL : (str_t){ q, ualen };
    q += ualen;
    s->data = (str_t){ q, dlen };
    s->created_at = get_i64(p + 12);
    s->last_seen_at = get_i64(p + REC_LAST_SEEN_OFF);
    s->expires_at = get_i64(p + 28);
    return RC_OK;
}

rc_t session_render(const session_t *s, const char *token, buf_t *out)
{
    rc_t rc = RC_OK;
#define A(x) do { if ((rc = (x)) != RC_OK) return rc; } while (0)
    A(buf_append_cstr(out, "{\"id\":"));
    A(buf_append_json_str(out, s->id, strlen(s->id)));
    A(buf_append_cstr(out, ",\"user_id\":"));
    A(buf_append_json_str(out, s->user_id.p, s->user_id.len));
    A(buf_append_cstr(out, ",\"created_at\":"));
    A(buf_append_i64(out, s->created_at));
    A(buf_append_cstr(out, ",\"expires_at\":"));
    A(buf_append_i64(out, s->expires_at));
    A(buf_append_cstr(out, ",\"last_seen_at\":"));
    A(buf_append_i64(out, s->last_seen_at));
    A(buf_append_cstr(out, ",\"ip\":"));
    A(buf_append_json_str(out, s->ip.p, s->ip.len));
    A(buf_append_cstr(out, ",\"user_agent\":"));
    if (s->user_agent.p)
        A(buf_append_json_str(out, s->user_agent.p, s->user_agent.len));
    else
        A(buf_append_cstr(out, "null"));
    A(buf_append_cstr(out, ",\"data\":"));
    if (s->data.len)
        A(buf_append(out, s->data.p, s->data.len));
    else
        A(buf_append_cstr(out, "{}"));
    if (token) {
        A(buf_append_cstr(out, ",\"token\":"));
        A(buf_append_json_str(out, token, strlen(token)));
    }
    A(buf_append_cstr(out, "}"));
#undef A
    return rc;
}

size_t session_json_depth(const char *text, size_t len)
{
    size_t depth = 0, max = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}

/* Byte spans of the member values of a top-level JSON object, in order.
 * The text must already be known to be one valid JSON object (jansson
 * checked it); this only finds where each value starts and ends, so that
 * values can be kept exactly as the client wrote them. Returns the number of
 * members found (at most max). */
typedef struct span {
    size_t off, len;
} span;

static size_t skip_ws(const char *t, size_t i, size_t len)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

static size_t skip_string(const char *t, size_t i, size_t len)
{
    for (i++; i < len && t[i] != '"'; i++)
        if (t[i] == '\\')
            i++;
    return i + 1;
}

static size_t skip_value(const char *t, size_t i, size_t len)
{
    if (t[i] == '"')
        return skip_string(t, i, len);
    if (t[i] == '{' || t[i] == '[') {
        size_t depth = 0;
        for (; i < len; i++) {
            if (t[i] == '"') {
                i = skip_string(t, i, len) - 1;
            } else if (t[i] == '{' || t[i] == '[') {
                depth++;
            } else if (t[i] == '}' || t[i] == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return len;
    }
    while (i < len && t[i] != ',' && t[i] != '}' && t[i] != ']' && t[i] != ' ' &&
           t[i] != '\t' && t[i] != '\n' && t[i] != '\r')
        i++;
    return i;
}

static size_t member_spans(const char *t, size_t len, span *out, size_t max)
{
    size_t n = 0, i = skip_ws(t, 0, len);
    if (i >= len || t[i] != '{')
        return 0;
    i = skip_ws(t, i + 1, len);
    while (i < len && t[i] == '"' && n < max) {
        i = skip_ws(t, skip_string(t, i, len), len); /* key */
        i = skip_ws(t, i + 1, len);                  /* ':' */
        size_t end = skip_value(t, i, len);
        out[n].off = i;
        out[n].len = end - i;
        n++;
        i = skip_ws(t, end, len);
        if (i < len && t[i] == ',')
            i = skip_ws(t, i + 1, len);
    }
    return n;
}

/* Copies a valid JSON value without insignificant whitespace. The result is
 * malloc'd and NUL-terminated; the caller frees it. */
static char *compact(const char *t, size_t len, size_t *outlen)
{
    char *o = malloc(len + 1);
    size_t n = 0;
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '"') {
            size_t e = skip_string(t, i, len);
            memcpy(o + n, t + i, e - i);
            n += e - i;
            i = e - 1;
        } else if (t[i] != ' ' && t[i] != '\t' && t[i] != '\n' && t[i] != '\r') {
            o[n++] = t[i];
        }
    }
    o[n] = '\0';
    *outlen = n;
    return o;
}

static rc_t refuse(session_request_t *req, const char *why)
{
    strncpy(req->detail, why, sizeof req->detail - 1);
    req->detail[sizeof req->detail - 1] = '\0';
    return RC_INVALID;
}

rc_t session_request_parse(const char *body, size_t len, int64_t max_ttl,
                           session_request_t *req)
{
    json_t *root = NULL;
    rc_t rc = RC_OK;
    const char *key;
    json_t *val;

    memset(req, 0, sizeof *req);
    if (len == 0)
        goto defaults;
    if (session_json_depth(body, len) > 32)
        return refuse(req, "JSON nesting deeper than 32 levels");
    /* Integers as reals: a big integer inside "data" is valid JSON and is
     * kept verbatim from the raw text, so it must not fail the parse. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    if (root == NULL)
        return refuse(req, "body is not well-formed JSON (or has duplicate keys)");
    if (!json_is_object(root)) {
        rc = refuse(req, "body must be a JSON object");
        goto out;
    }
    span spans[3];
    size_t nspans = member_spans(body, len, spans, 3), idx = 0;
    if (json_object_size(root) > 3 || nspans != json_object_size(root)) {
        rc = refuse(req, "unknown field in body");
        goto out;
    }
    json_object_foreach(root, key, val) {
        const span *sp = &spans[idx++]; /* jansson iterates in document order */
        if (strcmp(key, "user_id") == 0) {
            size_t ulen = json_is_string(val) ? json_string_length(val) : 0;
            if (!json_is_string(val) ||
                !session_user_valid(json_string_value(val), ulen)) {
                rc = refuse(req, "user_id must be a string of 1 to 256 bytes without control "
                                 "characters or spaces at either end");
                goto out;
            }
            memcpy(req->user_id, json_string_value(val), ulen + 1);
            req->user_id_len = ulen;
            req->has_user_id = 1;
        } else if (strcmp(key, "ttl") == 0) {
            /* An integer literal: digits only (60.0 and 6e1 are refused). */
            const char *num = body + sp->off;
            size_t k = 0;
            long long ttl = 0;
            while (k < sp->len && num[k] >= '0' && num[k] <= '9' && ttl <= max_ttl)
                ttl = ttl * 10 + (num[k++] - '0');
            if (!json_is_number(val) || k == 0 || k != sp->len || ttl < 1 || ttl > max_ttl) {
                rc = refuse(req, "ttl must be an integer from 1 to SESSION_MAX_TTL");
                goto out;
            }
            req->ttl = ttl;
            req->has_ttl = 1;
        } else if (strcmp(key, "data") == 0) {
            if (!json_is_object(val)) {
                rc = refuse(req, "data must be a JSON object");
                goto out;
            }
            req->data_json = compact(body + sp->off, sp->len, &req->data_len);
            if (req->data_json == NULL) {
                rc = RC_NOMEM;
                goto out;
            }
            if (req->data_len > SESSION_DATA_MAX) {
                rc = refuse(req, "data is larger than 4096 bytes once serialized");
                goto out;
            }
        } else {
            rc = refuse(req, "unknown field in body");
            goto out;
        }
    }
defaults:
    if (req->data_json == NULL) {
        req->data_json = strdup("{}");
        if (req->data_json == NULL) {
            rc = RC_NOMEM;
            goto out;
        }
        req->data_len = 2;
    }
out:
    json_decref(root);
    if (rc != RC_OK) {
        free(req->data_json);
        req->data_json = NULL;
    }
    return rc;
}

/* Copies a string member into space (which has room reserved). */
static str_t keep(buf_t *space, const char *p, size_t n)
{
    str_t v = { space->p + space->len, n };
    buf_append(space, p, n);
    return v;
}

static int time_member(json_t *v, const char *text, const span *sp, int64_t *out)
{
    /* integer literal only, read from the text (jansson saw a real) */
    long long x = 0;
    size_t k = 0;
    if (!json_is_number(v))
        return 0;
    while (k < sp->len && text[sp->off + k] >= '0' && text[sp->off + k] <= '9' && x < 1000000000000LL)
        x = x * 10 + (text[sp->off + k++] - '0');
    if (k == 0 || k != sp->len)
        return 0;
    *out = x;
    return 1;
}

rc_t session_parse_json(const char *text, size_t len, session_t *s, buf_t *space)
{
    const char *key;
    json_t *val, *root;
    span spans[8];
    unsigned seen = 0;
    rc_t rc = RC_INVALID;

    memset(s, 0, sizeof *s);
    buf_reset(space);
    if (len == 0 || session_json_depth(text, len) > 33 || buf_reserve(space, len + 8) != RC_OK)
        return RC_INVALID;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    if (root == NULL || !json_is_object(root) || json_object_size(root) != 8 ||
        member_spans(text, len, spans, 8) != 8)
        goto out;
    size_t i = 0;
    json_object_foreach(root, key, val) {
        const span *sp = &spans[i++];
        if (strcmp(key, "id") == 0 && json_is_string(val) &&
            session_id_valid(json_string_value(val), json_string_length(val))) {
            memcpy(s->id, json_string_value(val), json_string_length(val) + 1);
            seen |= 1;
        } else if (strcmp(key, "user_id") == 0 && json_is_string(val) &&
                   session_user_valid(json_string_value(val), json_string_length(val))) {
            s->user_id = keep(space, json_string_value(val), json_string_length(val));
            seen |= 2;
        } else if (strcmp(key, "created_at") == 0 && time_member(val, text, sp, &s->created_at)) {
            seen |= 4;
        } else if (strcmp(key, "expires_at") == 0 && time_member(val, text, sp, &s->expires_at)) {
            seen |= 8;
        } else if (strcmp(key, "last_seen_at") == 0 &&
                   time_member(val, text, sp, &s->last_seen_at)) {
            seen |= 16;
        } else if (strcmp(key, "ip") == 0 && json_is_string(val) &&
                   json_string_length(val) <= SESSION_IP_MAX) {
            s->ip = keep(space, json_string_value(val), json_string_length(val));
            seen |= 32;
        } else if (strcmp(key, "user_agent") == 0 &&
                   (json_is_null(val) ||
                    (json_is_string(val) && json_string_length(val) <= SESSION_UA_MAX))) {
            if (json_is_string(val))
                s->user_agent = keep(space, json_string_value(val), json_string_length(val));
            seen |= 64;
        } else if (strcmp(key, "data") == 0 && json_is_object(val)) {
            char *d;
            size_t dlen;
            if ((d = compact(text + sp->off, sp->len, &dlen)) == NULL) {
                rc = RC_NOMEM;
                goto out;
            }
            if (dlen <= SESSION_DATA_MAX)
                s->data = keep(space, d, dlen);
            free(d);
            if (dlen > SESSION_DATA_MAX)
                goto out;
            seen |= 128;
        } else {
            goto out;
        }
    }
    if (seen == 255 && s->created_at <= s->expires_at)
        rc = RC_OK;
out:
    json_decref(root);
    return rc;
}

void session_request_free(session_request_t *req)
{
    free(req->data_json);
    req->data_json = NULL;
}
