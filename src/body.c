/* body.c -- the decoders of request bodies (see body.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "body.h"
#include "jtext.h"

static rc_t refuse(body_create_t *req, const char *why)
{
    snprintf(req->detail, sizeof req->detail, "%s", why);
    return RC_INVALID;
}

/* A refusal that names the limit n it enforces: before, n, after. */
static rc_t refuse_over(body_create_t *req, const char *before, long long n, const char *after)
{
    snprintf(req->detail, sizeof req->detail, "%s%lld%s", before, n, after);
    return RC_INVALID;
}

/* An integer literal of digits only (60.0 and 6e1 are refused), at most
 * max, from the member's text. */
static int int_literal(const char *num, size_t len, int64_t max, int64_t *out)
{
    size_t k = 0;
    long long v = 0;
    while (k < len && num[k] >= '0' && num[k] <= '9' && v <= max)
        v = v * 10 + (num[k++] - '0');
    if (k == 0 || k != len || v > max)
        return 0;
    *out = v;
    return 1;
}

#define MEMBERS_MAX 4

rc_t body_create_parse(const char *body, size_t len, int64_t max_ttl, body_create_t *req)
{
    json_t *root = NULL;
    rc_t rc = RC_OK;
    const char *key;
    json_t *val;

    memset(req, 0, sizeof *req);
    if (len == 0)
        goto defaults;
    if (jtext_depth(body, len) > BODY_DEPTH_MAX)
        return refuse_over(req, "JSON nesting deeper than ", BODY_DEPTH_MAX, " levels");
    /* Integers as reals: a big integer inside "data" is valid JSON and is
     * kept verbatim from the raw text, so it must not fail the parse. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    if (root == NULL)
        return refuse(req, "body is not well-formed JSON (or has duplicate keys)");
    if (!json_is_object(root)) {
        rc = refuse(req, "body must be a JSON object");
        goto out;
    }
    jtext_span spans[MEMBERS_MAX];
    size_t nspans = jtext_members(body, len, spans, MEMBERS_MAX), idx = 0;
    if (json_object_size(root) > MEMBERS_MAX || nspans != json_object_size(root)) {
        rc = refuse(req, "unknown field in body");
        goto out;
    }
    json_object_foreach(root, key, val) {
        const jtext_span *sp = &spans[idx++]; /* jansson iterates in document order */
        if (strcmp(key, "user_id") == 0) {
            size_t ulen = json_is_string(val) ? json_string_length(val) : 0;
            if (!json_is_string(val) ||
                !session_user_valid(json_string_value(val), ulen)) {
                rc = refuse_over(req, "user_id must be a string of 1 to ", SESSION_USER_MAX,
                                 " bytes without control characters or spaces at either end");
                goto out;
            }
            memcpy(req->user_id, json_string_value(val), ulen + 1);
            req->user_id_len = ulen;
            req->has_user_id = 1;
        } else if (strcmp(key, "ttl") == 0) {
            if (!json_is_number(val) || !int_literal(body + sp->off, sp->len, max_ttl, &req->ttl) ||
                req->ttl < 1) {
                rc = refuse(req, "ttl must be an integer from 1 to SESSION_MAX_TTL");
                goto out;
            }
            req->has_ttl = 1;
        } else if (strcmp(key, "idle_timeout") == 0) {
            if (!json_is_number(val) ||
                !int_literal(body + sp->off, sp->len, max_ttl, &req->idle_timeout)) {
                rc = refuse(req, "idle_timeout must be 0 (none) or an integer from 1 to SESSION_MAX_TTL");
                goto out;
            }
            req->has_idle_timeout = 1;
        } else if (strcmp(key, "data") == 0) {
            if (!json_is_object(val)) {
                rc = refuse(req, "data must be a JSON object");
                goto out;
            }
            req->data_json = jtext_compact(body + sp->off, sp->len, &req->data_len);
            if (req->data_json == NULL) {
                rc = RC_NOMEM;
                goto out;
            }
            if (req->data_len > SESSION_DATA_MAX) {
                rc = refuse_over(req, "data is larger than ", SESSION_DATA_MAX,
                                 " bytes once serialized");
                goto out;
            }
        } else {
            rc = refuse(req, "unknown field in body");
            goto out;
        }
    }
defaults:
    if (req->data_json == NULL) {
        req->data_json = strdup("{}");
        if (req->data_json == NULL) {
            rc = RC_NOMEM;
            goto out;
        }
        req->data_len = 2;
    }
out:
    json_decref(root);
    if (rc != RC_OK) {
        free(req->data_json);
        req->data_json = NULL;
    }
    return rc;
}

void body_create_free(body_create_t *req)
{
    free(req->data_json);
    req->data_json = NULL;
}
