/* fuzz_record -- the stores' binary session record and the export line
 * parser: never crash; what decodes re-encodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "session.h"
#include "store_redis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    session_t s;
    buf_t again = BUF_INIT, space = BUF_INIT;
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (session_decode(copy, size, &s) == RC_OK) {
        if (session_encode(&s, &again) != RC_OK || again.len != size ||
            memcmp(again.p, copy, size) != 0)
            abort();
    }
    buf_reset(&again);
    if (session_parse_json(copy, size, &s, &space) == RC_OK &&
        session_render(&s, NULL, &again) != RC_OK)
        abort();
    redis_url u;
    char err[128], *z = malloc(size + 1);
    memcpy(z, data, size);
    z[size] = '\0';
    store_redis_url_parse(z, strlen(z), &u, err, sizeof err);
    free(z);
    buf_free(&again);
    buf_free(&space);
    free(copy);
    return 0;
}
