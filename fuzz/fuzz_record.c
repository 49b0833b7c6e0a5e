/* fuzz_record -- the stores' binary session record (record_decode /
 * record_encode), the JSON form of a session (session_json_parse /
 * session_json_render, e.g. an export line) and the redis URL parser.
 *
 * Oracles (any failure abort()s):
 *   - a record of the current version that decodes re-encodes to exactly
 *     the same bytes (one of version 1 re-encodes to the current version,
 *     which decodes to the same session, its new fields zero). This holds
 *     by design (src/record.c): every header field is derived from the
 *     views (lengths, the 0xFFFF "no user agent" mark, which no real length
 *     reaches as SESSION_UA_MAX < 0xFFFF, the three times copied bit for
 *     bit, idle_timeout, generation and rotated_at too), the id has no NUL (session_id_valid) so strlen gives its length
 *     back, and decode accepts only len == header + the field lengths, so
 *     there are no trailing bytes to lose;
 *   - a session parsed from JSON renders (the export's form, which carries
 *     every field), and the rendering parses back to
 *     the same session, whose rendering is byte for byte the first one; that
 *     session also encodes to a record which decodes to the same session;
 *   - store_redis_url_parse: on RC_OK, port in 1..65535, db in 0..65535,
 *     host non-empty, and has_password set exactly when a password is. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "session.h"
#include "store_redis.h"
#include "record.h"
#include "session_json.h"

static int same_str(str_t a, str_t b)
{
    return (a.p == NULL) == (b.p == NULL) && a.len == b.len &&
           (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int same_session(const session_t *a, const session_t *b)
{
    return strcmp(a->id, b->id) == 0 && same_str(a->user_id, b->user_id) &&
           a->created_at == b->created_at && a->expires_at == b->expires_at &&
           a->last_seen_at == b->last_seen_at && same_str(a->ip, b->ip) &&
           same_str(a->user_agent, b->user_agent) && same_str(a->data, b->data) &&
           a->idle_timeout == b->idle_timeout && a->gen == b->gen &&
           a->rotated_at == b->rotated_at;
}

static void json_form(const char *text, size_t size)
{
    session_t s, s2, s3;
    buf_t space = BUF_INIT, space2 = BUF_INIT, r1 = BUF_INIT, r2 = BUF_INIT, rec = BUF_INIT;
    if (session_json_parse(text, size, &s, &space) != RC_OK)
        goto out;
    if (session_json_render_export(&s, &r1) != RC_OK ||
        session_json_parse(r1.p, r1.len, &s2, &space2) != RC_OK || !same_session(&s, &s2) ||
        session_json_render_export(&s2, &r2) != RC_OK || r1.len != r2.len ||
        memcmp(r1.p, r2.p, r1.len) != 0)
        abort();
    if (record_encode(&s, &rec) != RC_OK || record_decode(rec.p, rec.len, &s3) != RC_OK ||
        !same_session(&s, &s3))
        abort();
out:
    buf_free(&space);
    buf_free(&space2);
    buf_free(&r1);
    buf_free(&r2);
    buf_free(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    session_t s;
    buf_t again = BUF_INIT;
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (record_decode(copy, size, &s) == RC_OK) {
        session_t back;
        if (record_encode(&s, &again) != RC_OK)
            abort();
        if (copy[0] == 1) { /* version 1: the same session, now version 2 */
            if (record_decode(again.p, again.len, &back) != RC_OK || !same_session(&s, &back) ||
                back.idle_timeout != 0 || back.gen != 0 || back.rotated_at != 0)
                abort();
        } else if (again.len != size || memcmp(again.p, copy, size) != 0) {
            abort();
        }
    }
    buf_free(&again);

    json_form(copy, size);

    redis_url u;
    char err[128], *z = malloc(size + 1);
    memcpy(z, data, size);
    z[size] = '\0';
    if (store_redis_url_parse(z, strlen(z), &u, err, sizeof err) == RC_OK &&
        (u.port < 1 || u.port > 65535 || u.db < 0 || u.db > 65535 || u.host[0] == '\0' ||
         memchr(u.host, '\0', sizeof u.host) == NULL ||
         memchr(u.password, '\0', sizeof u.password) == NULL ||
         memchr(u.user, '\0', sizeof u.user) == NULL || u.has_password != (u.password[0] != '\0')))
        abort();
    free(z);
    free(copy);
    return 0;
}
