/* fuzz_path -- route matching (http_path_match) of request paths against the
 * service's patterns, and the percent-decoder (str_pct_decode).
 *
 * Oracles (any failure abort()s):
 *   - a pattern without captures matches exactly the path equal to it;
 *   - when a pattern with captures matches, each parameter lies in the
 *     space buffer and is no longer than its raw path segment, and "a split
 *     path joins back": percent-encoding every parameter (every byte outside
 *     [A-Za-z0-9._~-] as %XX; and, second form, only '/' and '%' in lower
 *     case hex) and putting it in place of its {name} gives a path that
 *     matches again with identical parameters (the second match gets room
 *     for the longer encoded form: room is checked on raw bytes);
 *   - -1 (a malformed escape) only when the input has a '%', and then the
 *     path has the pattern's shape and a capture that does not decode is
 *     returned empty;
 *   - str_pct_decode: RC_INVALID only with a '%' in the input; on RC_OK the
 *     output is no longer than the input, and encoding it back and decoding
 *     again gives the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "http.h"
#include "session.h"

static const char HEX_UP[] = "0123456789ABCDEF", HEX_LOW[] = "0123456789abcdef";

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '~' || c == '-';
}

/* Percent-encodes s[0..n) at o; all: every byte but the unreserved ones,
 * else only '/' and '%'. Returns the bytes written (at most 3n). */
static size_t pct_encode(const char *s, size_t n, char *o, int all)
{
    const char *hex = all ? HEX_UP : HEX_LOW;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (all ? !unreserved(c) : (c == '/' || c == '%')) {
            o[k++] = '%';
            o[k++] = hex[c >> 4];
            o[k++] = hex[c & 15];
        } else {
            o[k++] = (char)c;
        }
    }
    return k;
}

/* The raw segment number idx (0: the one after the first '/') of p[0..n). */
static str_t segment(const char *p, size_t n, size_t idx)
{
    size_t i = 1, seg = 0;
    for (;;) {
        size_t e = i;
        while (e < n && p[e] != '/')
            e++;
        if (seg == idx)
            return (str_t){ p + i, e - i };
        if (e >= n)
            return STR_NULL;
        seg++;
        i = e + 1;
    }
}

/* The segment numbers of a pattern's captures; returns how many. */
static size_t capture_segments(const char *pattern, size_t *idx, size_t max)
{
    size_t n = 0, seg = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p == '/') {
            if (p[1] == '{' && n < max)
                idx[n++] = seg;
            seg++;
        }
    }
    return n;
}

/* Whether path[0..n) is pattern with each {name} replaced by the raw
 * segment the pattern's captures (at segment numbers idx) stand on. */
static int same_shape(const char *pattern, const char *path, size_t n, const size_t *idx,
                      size_t np)
{
    size_t k = 0, at = 0;
    for (const char *p = pattern; *p;) {
        if (*p == '{') {
            if (k == np)
                return 0;
            str_t raw = segment(path, n, idx[k++]);
            if (raw.p != path + at || at + raw.len > n)
                return 0;
            at += raw.len;
            p = strchr(p, '}') + 1;
        } else {
            if (at >= n || path[at] != *p)
                return 0;
            at++;
            p++;
        }
    }
    return k == np && at == n;
}

static void join_back(const char *pattern, const str_t *params, size_t np, int all)
{
    /* the pattern with each {name} replaced by its encoded parameter */
    char path[3 * HTTP_PARAM_SPACE + 64];
    char space[4 * HTTP_PARAM_SPACE];
    str_t again[HTTP_MAX_PARAMS];
    size_t n = 0, k = 0;
    for (const char *p = pattern; *p;) {
        if (*p == '{') {
            n += pct_encode(params[k].p, params[k].len, path + n, all);
            k++;
            p = strchr(p, '}') + 1;
        } else {
            path[n++] = *p++;
        }
    }
    if (k != np)
        abort();
    if (http_path_match(pattern, path, n, space, sizeof space, again, HTTP_MAX_PARAMS) != 1)
        abort();
    for (size_t i = 0; i < np; i++)
        if (again[i].len != params[i].len || memcmp(again[i].p, params[i].p, params[i].len) != 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *patterns[] = { "/session", "/session/{id}", "/users/{user_id}/sessions",
                                      "/validate", "/healthz" };
    char space[HTTP_PARAM_SPACE];
    str_t params[HTTP_MAX_PARAMS];
    char *path = malloc(size ? size : 1);
    memcpy(path, data, size);
    int has_pct = memchr(path, '%', size) != NULL;
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        const char *pat = patterns[i];
        size_t idx[HTTP_MAX_PARAMS];
        size_t np = capture_segments(pat, idx, HTTP_MAX_PARAMS);
        int m = http_path_match(pat, path, size, space, sizeof space, params, HTTP_MAX_PARAMS);
        if (m < -1 || m > 1 || (m == -1 && (!has_pct || np == 0)))
            abort();
        if (np == 0) {
            int same = size == strlen(pat) && memcmp(path, pat, size) == 0;
            if ((m == 1) != same)
                abort();
            continue;
        }
        if (m == -1) {
            /* the path has the pattern's shape, and a capture whose escape
             * does not decode is returned empty */
            int empty = 0;
            for (size_t j = 0; j < np; j++) {
                str_t raw = segment(path, size, idx[j]);
                char tmp[HTTP_PARAM_SPACE];
                size_t tn;
                if (raw.p == NULL || raw.len == 0 || raw.len > sizeof tmp)
                    abort();
                if (params[j].len == 0)
                    empty += str_pct_decode(raw.p, raw.len, tmp, &tn) == RC_INVALID;
            }
            if (empty == 0 || !same_shape(pat, path, size, idx, np))
                abort();
        }
        if (m != 1)
            continue;
        size_t used = 0;
        for (size_t j = 0; j < np; j++) {
            str_t raw = segment(path, size, idx[j]);
            if (params[j].p < space || params[j].p + params[j].len > space + sizeof space ||
                raw.p == NULL || params[j].len == 0 || params[j].len > raw.len ||
                (params[j].len != raw.len && memchr(raw.p, '%', raw.len) == NULL))
                abort();
            used += params[j].len;
        }
        if (used > sizeof space)
            abort();
        session_id_valid(params[0].p, params[0].len);
        session_text_valid(params[0].p, params[0].len, SESSION_USER_MAX);
        join_back(pat, params, np, 1);
        join_back(pat, params, np, 0);
    }

    char *out = malloc(size ? size : 1);
    size_t n = 0;
    rc_t rc = str_pct_decode(path, size, out, &n);
    if (rc != RC_OK && (rc != RC_INVALID || !has_pct))
        abort();
    if (rc == RC_OK) {
        if (n > size)
            abort();
        char *enc = malloc(3 * n + 1), *back = malloc(3 * n + 1);
        size_t en = pct_encode(out, n, enc, 1), bn = 0;
        if (str_pct_decode(enc, en, back, &bn) != RC_OK || bn != n || memcmp(back, out, n) != 0)
            abort();
        free(enc);
        free(back);
    }
    free(out);
    free(path);
    return 0;
}
