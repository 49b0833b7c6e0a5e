/* session_json.c -- the JSON form of a session (see session_json.h). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "jtext.h"
#include "session_json.h"

#define MEMBERS_MAX 12 /* the 8 of v1, idle_timeout, idle_expires_at, and an export's rotation */

static rc_t render(const session_t *s, const char *token, int export, buf_t *out)
{
    rc_t rc = RC_OK;
#define A(x) do { if ((rc = (x)) != RC_OK) return rc; } while (0)
    A(buf_append_cstr(out, "{\"id\":"));
    A(buf_append_json_str(out, s->id, strlen(s->id)));
    A(buf_append_cstr(out, ",\"user_id\":"));
    A(buf_append_json_str(out, s->user_id.p, s->user_id.len));
    A(buf_append_cstr(out, ",\"created_at\":"));
    A(buf_append_i64(out, s->created_at));
    A(buf_append_cstr(out, ",\"expires_at\":"));
    A(buf_append_i64(out, s->expires_at));
    A(buf_append_cstr(out, ",\"last_seen_at\":"));
    A(buf_append_i64(out, s->last_seen_at));
    A(buf_append_cstr(out, ",\"idle_timeout\":"));
    A(buf_append_i64(out, s->idle_timeout));
    A(buf_append_cstr(out, ",\"idle_expires_at\":"));
    if (s->idle_timeout > 0)
        A(buf_append_i64(out, session_idle_expires_at(s)));
    else
        A(buf_append_cstr(out, "null"));
    A(buf_append_cstr(out, ",\"ip\":"));
    A(buf_append_json_str(out, s->ip.p, s->ip.len));
    A(buf_append_cstr(out, ",\"user_agent\":"));
    if (s->user_agent.p)
        A(buf_append_json_str(out, s->user_agent.p, s->user_agent.len));
    else
        A(buf_append_cstr(out, "null"));
    A(buf_append_cstr(out, ",\"data\":"));
    if (s->data.len)
        A(buf_append(out, s->data.p, s->data.len));
    else
        A(buf_append_cstr(out, "{}"));
    if (export) {
        A(buf_append_cstr(out, ",\"token_generation\":"));
        A(buf_append_i64(out, s->gen));
        A(buf_append_cstr(out, ",\"rotated_at\":"));
        A(buf_append_i64(out, s->rotated_at));
    }
    if (token) {
        A(buf_append_cstr(out, ",\"token\":"));
        A(buf_append_json_str(out, token, strlen(token)));
    }
    A(buf_append_cstr(out, "}"));
#undef A
    return rc;
}

rc_t session_json_render(const session_t *s, const char *token, buf_t *out)
{
    return render(s, token, 0, out);
}

rc_t session_json_render_export(const session_t *s, buf_t *out)
{
    return render(s, NULL, 1, out);
}

/* Copies a string member into space (which has room reserved). */
static str_t keep(buf_t *space, const char *p, size_t n)
{
    str_t v = { space->p + space->len, n };
    buf_append(space, p, n);
    return v;
}

/* A non-negative integer literal of at most max, read from the text
 * (jansson saw a real). */
static int int_member(json_t *v, const char *text, const jtext_span *sp, int64_t max,
                      int64_t *out)
{
    long long x = 0;
    size_t k = 0;
    if (!json_is_number(v))
        return 0;
    while (k < sp->len && text[sp->off + k] >= '0' && text[sp->off + k] <= '9' && x <= max)
        x = x * 10 + (text[sp->off + k++] - '0');
    if (k == 0 || k != sp->len || x > max)
        return 0;
    *out = x;
    return 1;
}

#define TIME_MAX 999999999999LL

static int time_member(json_t *v, const char *text, const jtext_span *sp, int64_t *out)
{
    return int_member(v, text, sp, TIME_MAX, out);
}

rc_t session_json_parse(const char *text, size_t len, session_t *s, buf_t *space)
{
    const char *key;
    json_t *val, *root;
    jtext_span spans[MEMBERS_MAX];
    unsigned seen = 0;
    int64_t n;
    rc_t rc = RC_INVALID;

    memset(s, 0, sizeof *s);
    buf_reset(space);
    if (len == 0 || jtext_depth(text, len) > 33 || buf_reserve(space, len + 8) != RC_OK)
        return RC_INVALID;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    if (root == NULL || !json_is_object(root) || json_object_size(root) > MEMBERS_MAX ||
        jtext_members(text, len, spans, MEMBERS_MAX) != json_object_size(root))
        goto out;
    size_t i = 0;
    json_object_foreach(root, key, val) {
        const jtext_span *sp = &spans[i++];
        if (strcmp(key, "id") == 0 && json_is_string(val) &&
            session_id_valid(json_string_value(val), json_string_length(val))) {
            memcpy(s->id, json_string_value(val), json_string_length(val) + 1);
            seen |= 1;
        } else if (strcmp(key, "user_id") == 0 && json_is_string(val) &&
                   session_user_valid(json_string_value(val), json_string_length(val))) {
            s->user_id = keep(space, json_string_value(val), json_string_length(val));
            seen |= 2;
        } else if (strcmp(key, "created_at") == 0 && time_member(val, text, sp, &s->created_at)) {
            seen |= 4;
        } else if (strcmp(key, "expires_at") == 0 && time_member(val, text, sp, &s->expires_at)) {
            seen |= 8;
        } else if (strcmp(key, "last_seen_at") == 0 &&
                   time_member(val, text, sp, &s->last_seen_at)) {
            seen |= 16;
        } else if (strcmp(key, "ip") == 0 && json_is_string(val) &&
                   json_string_length(val) <= SESSION_IP_MAX) {
            s->ip = keep(space, json_string_value(val), json_string_length(val));
            seen |= 32;
        } else if (strcmp(key, "user_agent") == 0 &&
                   (json_is_null(val) ||
                    (json_is_string(val) && json_string_length(val) <= SESSION_UA_MAX))) {
            if (json_is_string(val))
                s->user_agent = keep(space, json_string_value(val), json_string_length(val));
            seen |= 64;
        } else if (strcmp(key, "data") == 0 && json_is_object(val)) {
            char *d;
            size_t dlen;
            if ((d = jtext_compact(text + sp->off, sp->len, &dlen)) == NULL) {
                rc = RC_NOMEM;
                goto out;
            }
            if (dlen <= SESSION_DATA_MAX)
                s->data = keep(space, d, dlen);
            free(d);
            if (dlen > SESSION_DATA_MAX)
                goto out;
            seen |= 128;
        } else if (strcmp(key, "idle_timeout") == 0 && !(seen & 256) &&
                   int_member(val, text, sp, UINT32_MAX, &s->idle_timeout)) {
            seen |= 256;
        } else if (strcmp(key, "idle_expires_at") == 0 && !(seen & 512) &&
                   (json_is_null(val) || time_member(val, text, sp, &n))) {
            seen |= 512; /* derived from the others: read and dropped */
        } else if (strcmp(key, "token_generation") == 0 && !(seen & 1024) &&
                   int_member(val, text, sp, UINT32_MAX, &n)) {
            s->gen = (uint32_t)n;
            seen |= 1024;
        } else if (strcmp(key, "rotated_at") == 0 && !(seen & 2048) &&
                   time_member(val, text, sp, &s->rotated_at)) {
            seen |= 2048;
        } else {
            goto out;
        }
    }
    if ((seen & 255) == 255 && s->created_at <= s->expires_at)
        rc = RC_OK;
out:
    json_decref(root);
    return rc;
}
