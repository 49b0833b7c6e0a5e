/* fuzz_cookie -- the Cookie and Authorization header parsers: never crash;
 * what they return lies inside the input, and agrees with itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cred.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    str_t v;
    char *h = malloc(size ? size : 1);
    memcpy(h, data, size);
    if (cred_cookie(h, size, "session", 7, &v) == RC_OK &&
        (v.p < h || v.p + v.len > h + size))
        abort();
    if (cred_bearer(h, size, &v) == RC_OK && (v.p < h || v.p + v.len > h + size || v.len == 0))
        abort();
    /* a well-formed bearer token is always an offered one */
    if (cred_bearer(h, size, &v) == RC_OK && !cred_bearer_offered(h, size))
        abort();
    free(h);
    return 0;
}
