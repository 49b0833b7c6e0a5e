/* cred.c -- the caller's token in a request's headers (see cred.h). */
#include <string.h>
#include "cred.h"

/* Whether value begins with the Bearer scheme and a space; its length. */
static size_t bearer_scheme(const char *value, size_t len)
{
    static const char scheme[] = "bearer";
    size_t n = sizeof scheme - 1;
    if (len <= n || !str_starts_nocase((str_t){ value, len }, scheme) || value[n] != ' ')
        return 0;
    return n;
}

rc_t cred_bearer(const char *value, size_t len, str_t *token)
{
    size_t n = bearer_scheme(value, len), i;
    if (n == 0)
        return RC_INVALID;
    for (i = n; i < len && value[i] == ' '; i++)
        ;
    size_t end = len;
    while (end > i && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    if (end == i)
        return RC_INVALID;
    if (memchr(value + i, ' ', end - i) || memchr(value + i, '\t', end - i) ||
        memchr(value + i, ',', end - i))
        return RC_INVALID;
    *token = (str_t){ value + i, end - i };
    return RC_OK;
}

int cred_bearer_offered(const char *value, size_t len)
{
    size_t n = bearer_scheme(value, len);
    if (n == 0)
        return 0;
    for (size_t i = n; i < len; i++)
        if (value[i] != ' ' && value[i] != '\t')
            return 1;
    return 0;
}

rc_t cred_cookie(const char *value, size_t len, const char *name, size_t nlen, str_t *out)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ';'))
            i++;
        size_t start = i;
        while (i < len && value[i] != ';')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        const char *eq = memchr(value + start, '=', end - start);
        if (eq == NULL)
            continue;
        size_t klen = (size_t)(eq - (value + start));
        while (klen > 0 && value[start + klen - 1] == ' ')
            klen--;
        if (klen != nlen || memcmp(value + start, name, nlen) != 0)
            continue;
        const char *v = eq + 1;
        size_t vlen = (size_t)(value + end - v);
        while (vlen > 0 && *v == ' ') {
            v++;
            vlen--;
        }
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
            v++;
            vlen -= 2;
        }
        *out = (str_t){ v, vlen };
        return RC_OK;
    }
    return RC_NOT_FOUND;
}
