/* buf.c -- length-counted strings and growable buffers (see buf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"

uint32_t str_hash(const char *p, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

int str_eq(str_t a, str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int str_eq_cstr(str_t a, const char *b)
{
    return str_eq(a, (str_t){ b, strlen(b) });
}

int str_starts_nocase(str_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (s.len < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s.p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        char d = prefix[i];
        if (d >= 'A' && d <= 'Z')
            d = (char)(d - 'A' + 'a');
        if (c != d)
            return 0;
    }
    return 1;
}

rc_t buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return RC_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            return RC_NOMEM;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return RC_NOMEM;
    b->p = p;
    b->cap = cap;
    return RC_OK;
}

rc_t buf_append(buf_t *b, const void *p, size_t len)
{
    if (buf_reserve(b, len) != RC_OK)
        return RC_NOMEM;
    if (len)
        memcpy(b->p + b->len, p, len);
    b->len += len;
    b->p[b->len] = '\0';
    return RC_OK;
}

rc_t buf_append_cstr(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

/* Decimal, by hand: snprintf's "%lld" costs about 860 instructions a
 * number, and a session's JSON holds four (docs/BENCHMARKS.md). */
rc_t buf_append_i64(buf_t *b, int64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof tmp, *p = e;
    /* the magnitude as unsigned: -INT64_MIN does not fit an int64_t */
    uint64_t u = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return buf_append(b, p, (size_t)(e - p));
}

rc_t buf_append_json_str(buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX. */
    if (buf_reserve(b, len * 6 + 2) != RC_OK)
        return RC_NOMEM;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
    return RC_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

rc_t str_pct_decode(const char *in, size_t len, char *out, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            out[o++] = in[i];
            continue;
        }
        if (i + 2 >= len)
            return RC_INVALID;
        int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
        if (hi < 0 || lo < 0)
            return RC_INVALID;
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    *outlen = o;
    return RC_OK;
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void buf_free(buf_t *b)
{
    free(b->p);
    *b = BUF_INIT;
}

char *buf_steal(buf_t *b)
{
    char *p = b->p;
    *b = BUF_INIT;
    return p;
}
