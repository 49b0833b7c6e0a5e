/* jtext.c -- byte-level helpers over JSON text (see jtext.h). */
#include <stdlib.h>
#include <string.h>
#include "jtext.h"

size_t jtext_depth(const char *text, size_t len)
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

size_t jtext_members(const char *t, size_t len, jtext_span *out, size_t max)
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

char *jtext_compact(const char *t, size_t len, size_t *outlen)
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
