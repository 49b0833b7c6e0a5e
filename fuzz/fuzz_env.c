/* fuzz_env -- the .env parser and the settings table over whatever it
 * yields: never crashes, never leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"

typedef struct pairs {
    char *k[32], *v[32];
    size_t n;
} pairs;

static int keep(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
    pairs *p = arg;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pairs p = { .n = 0 };
    size_t line = 0;
    char err[256];
    config c;
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    if (config_parse_env(text, size, keep, &p, &line) == RC_OK) {
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
