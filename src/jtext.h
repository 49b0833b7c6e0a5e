/* jtext.h -- byte-level helpers over JSON text, for what a parsed tree
 * loses: the nesting depth before a recursive parser sees a text, and
 * member values exactly as the client wrote them. */
#ifndef JTEXT_H
#define JTEXT_H

#include <stddef.h>

/* Maximum nesting depth of a JSON text, counted over its bytes (strings
 * skipped). Used to refuse deep texts before a recursive parser sees them.
 * Pure. */
size_t jtext_depth(const char *text, size_t len);

typedef struct jtext_span {
    size_t off, len;
} jtext_span;

/* Byte spans of the member values of a top-level JSON object, in order.
 * The text must already be known to be one valid JSON object (jansson
 * checked it); this only finds where each value starts and ends. Returns
 * the number of members found (at most max). */
size_t jtext_members(const char *text, size_t len, jtext_span *out, size_t max);

/* Copies a valid JSON value without insignificant whitespace. The result is
 * malloc'd and NUL-terminated (*outlen bytes before the NUL); the caller
 * frees it. NULL when out of memory. */
char *jtext_compact(const char *text, size_t len, size_t *outlen);

#endif
