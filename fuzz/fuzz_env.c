/* fuzz_env -- the .env parser (config_parse_env) and the settings table
 * (config_load_from) over whatever it yields.
 *
 * Oracles (any failure abort()s): every pair handed to the callback has a
 * key matching [A-Za-z_][A-Za-z0-9_]* and a value without NUL, '\n' or any
 * other control character below 0x20 but tab (the parser's rule, src/config.c);
 * and "a parsed .env value round-trips": written back as KEY="VALUE",
 * KEY='VALUE' (the parser has no escapes, so any value fits between quotes),
 * "export KEY=\"VALUE\"" and, exactly when the value does not start with a
 * quote or a blank and does not end with a blank, as bare KEY=VALUE, each
 * line parses again to that single pair; a bare line that does not qualify
 * must not give the pair back. On RC_OK the callback ran once per line that
 * is neither blank nor a '#' comment. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"

typedef struct pairs {
    char *k[32], *v[32];
    size_t n;     /* kept (at most 32) */
    size_t calls; /* all pairs seen */
} pairs;

typedef struct one {
    const char *key, *val;
    size_t klen, vlen;
    int n, same;
} one;

static int expect_one(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
    one *o = arg;
    o->n++;
    o->same = klen == o->klen && vlen == o->vlen && memcmp(key, o->key, klen) == 0 &&
              memcmp(val, o->val, vlen) == 0;
    return 0;
}

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Parses `line` (prefix + key + "=" + open + val + close); 1 when it gives
 * exactly the pair back. */
static int reparse(const char *prefix, const char *key, size_t klen, const char *val, size_t vlen,
                   const char *quote)
{
    size_t pl = strlen(prefix), ql = strlen(quote);
    size_t len = pl + klen + 1 + ql + vlen + ql;
    char *line = malloc(len);
    memcpy(line, prefix, pl);
    memcpy(line + pl, key, klen);
    line[pl + klen] = '=';
    memcpy(line + pl + klen + 1, quote, ql);
    memcpy(line + pl + klen + 1 + ql, val, vlen);
    memcpy(line + pl + klen + 1 + ql + vlen, quote, ql);
    one o = { key, val, klen, vlen, 0, 0 };
    size_t bad = 0;
    rc_t rc = config_parse_env(line, len, expect_one, &o, &bad);
    free(line);
    return rc == RC_OK && o.n == 1 && o.same;
}

static int keep(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
    pairs *p = arg;
    p->calls++;
    if (klen == 0)
        abort();
    for (size_t i = 0; i < klen; i++) {
        char c = key[i];
        if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (i > 0 && c >= '0' && c <= '9')))
            abort();
    }
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)val[i];
        if (c < 0x20 && c != '\t') /* NUL and '\n' included */
            abort();
    }
    if (!reparse("", key, klen, val, vlen, "\"") || !reparse("", key, klen, val, vlen, "'") ||
        !reparse("export ", key, klen, val, vlen, "\""))
        abort();
    int bare = vlen == 0 || (!blank(val[0]) && val[0] != '"' && val[0] != '\'' &&
                             !blank(val[vlen - 1]));
    if (reparse("", key, klen, val, vlen, "") != bare)
        abort();

    if (p->n == 32)
        return 0;
    p->k[p->n] = strndup(key, klen);
    p->v[p->n] = strndup(val, vlen);
    p->n++;
    return 0;
}

static const char *lookup(const char *name, void *arg)
{
    pairs *p = arg;
    for (size_t i = p->n; i-- > 0;)
        if (strcmp(p->k[i], name) == 0)
            return p->v[i];
    return NULL;
}

/* Lines that are neither blank nor comments (the parser's trimming). */
static size_t content_lines(const char *t, size_t len)
{
    size_t n = 0;
    for (size_t pos = 0; pos < len;) {
        size_t end = pos;
        while (end < len && t[end] != '\n')
            end++;
        size_t a = pos;
        while (a < end && blank(t[a]))
            a++;
        if (a < end && t[a] != '#')
            n++;
        pos = end + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pairs p = { .n = 0 };
    size_t line = 0;
    char err[256];
    config c;
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    if (config_parse_env(text, size, keep, &p, &line) == RC_OK) {
        if (p.calls != content_lines(text, size))
            abort();
        config_load_from(&c, lookup, &p, err, sizeof err);
        config_free(&c);
    }
    for (size_t i = 0; i < p.n; i++) {
        free(p.k[i]);
        free(p.v[i]);
    }
    free(text);
    return 0;
}
