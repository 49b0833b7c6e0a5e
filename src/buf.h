/* buf.h -- length-counted strings and a growable byte buffer.
 *
 * str_t is a view (pointer + length) that owns nothing. buf_t owns its
 * bytes; it is always NUL-terminated after a successful append so that its
 * contents can be handed to C APIs. Appends report RC_NOMEM and leave the
 * buffer unchanged on allocation failure. */
#ifndef BUF_H
#define BUF_H

#include <stddef.h>
#include <stdint.h>
#include "rc.h"

typedef struct str {
    const char *p;
    size_t len;
} str_t;

#define STR_LIT(s) ((str_t){ (s), sizeof(s) - 1 })
#define STR_NULL ((str_t){ NULL, 0 })

int str_eq(str_t a, str_t b);
/* FNV-1a of p[0..len): a spread for hash tables, not a secret. */
uint32_t str_hash(const char *p, size_t len);
int str_eq_cstr(str_t a, const char *b);
/* ASCII case-insensitive prefix test. */
int str_starts_nocase(str_t s, const char *prefix);

typedef struct buf {
    char *p;
    size_t len;
    size_t cap;
} buf_t;

#define BUF_INIT ((buf_t){ NULL, 0, 0 })

rc_t buf_reserve(buf_t *b, size_t extra);
rc_t buf_append(buf_t *b, const void *p, size_t len);
rc_t buf_append_cstr(buf_t *b, const char *s);
rc_t buf_append_i64(buf_t *b, int64_t v);
/* Appends s as a JSON string literal (quotes included), escaping '"', '\\'
 * and control characters. s is assumed to be valid UTF-8. */
rc_t buf_append_json_str(buf_t *b, const char *s, size_t len);
/* Percent-decodes in[0..len) into out (room for len bytes). RC_INVALID on
 * a malformed escape. '+' is not special. Pure. */
rc_t str_pct_decode(const char *in, size_t len, char *out, size_t *outlen);

void buf_reset(buf_t *b);
void buf_free(buf_t *b);
/* Hands the bytes to the caller (free() them); b is left empty. */
char *buf_steal(buf_t *b);

#endif
