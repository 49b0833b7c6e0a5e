/* fuzz_body -- the POST /session body decoder: never crashes or leaks, and
 * what it accepts obeys the contract's rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "session.h"
#include "body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    body_create_t req;
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    if (body_create_parse(body, size, 2592000, &req) == RC_OK) {
        if (req.has_ttl && (req.ttl < 1 || req.ttl > 2592000))
            abort();
        if (req.has_user_id && !session_user_valid(req.user_id, req.user_id_len))
            abort();
        if (req.data_len > SESSION_DATA_MAX)
            abort();
        json_t *d = json_loadb(req.data_json, req.data_len,
                               JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL); /* as the service */
        if (!json_is_object(d)) /* kept data must be a JSON object */
            abort();
        json_decref(d);
        body_create_free(&req);
    }
    free(body);
    return 0;
}
