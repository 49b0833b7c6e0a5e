/* fuzz_path -- route matching and percent-decoding of request paths, and
 * the query decoder: never crashes; captures stay inside their buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "http.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *patterns[] = { "/session", "/session/{id}", "/users/{user_id}/sessions",
                                      "/validate", "/healthz" };
    char space[HTTP_PARAM_SPACE];
    str_t params[HTTP_MAX_PARAMS];
    char *path = malloc(size ? size : 1);
    memcpy(path, data, size);
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        if (http_path_match(patterns[i], path, size, space, sizeof space, params,
                            HTTP_MAX_PARAMS) == 1 &&
            strchr(patterns[i], '{') != NULL) {
            if (params[0].p < space || params[0].p + params[0].len > space + sizeof space)
                abort();
            session_id_valid(params[0].p, params[0].len);
            session_text_valid(params[0].p, params[0].len, SESSION_USER_MAX);
        }
    }
    char *out = malloc(size ? size : 1);
    size_t n;
    if (str_pct_decode(path, size, out, &n) == RC_OK && n > size)
        abort();
    free(out);
    free(path);
    return 0;
}
